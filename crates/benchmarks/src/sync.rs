//! The laptop's sync engine end to end: a real SQLCipher tenant file, the real `SyncEngine`, the server
//! in-process on loopback over a fresh PostgreSQL database (`test_postgres`). Measures (a) draining a
//! week offline — 100,000 touches, outbox → HTTP → PostgreSQL → receipts → outbox cleared — next to the
//! raw PostgreSQL ceiling of the same run, with a breakdown of where the time goes; (b) a new laptop's
//! first sync of 200,000 scored properties; (c) an empty steady-state sync; (d) the idle agent's CPU.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use desktop_core::{EngineConfig, Phase, SignInRequest, SyncEngine, sign_in};
use domain::*;
use local_store::{DataDir, Passphrase, PulledText};
use server_store::{AppPool, ControlPool, NewUser, PoolSettings};
use sync_client::{PushOutcome, SyncClient};
use sync_protocol::{LoginRequest, MAX_PULL_LIMIT, MAX_PUSH_CHANGES, PushRequest};
use sync_server::serve::ServerConfig;
use sync_server::state::ServerSettings;

const PASSWORD: &str = "benchmark password";
const PASSPHRASE: &str = "benchmark passphrase 2026";
/// A week offline for a busy crew laptop.
const BACKLOG: usize = 100_000;
/// The largest batch the protocol allows: fewer round trips and transactions per drained change.
const PUSH_BATCH: usize = MAX_PUSH_CHANGES;
const FIRST_SYNC_PROPERTIES: usize = 200_000;
const EMPTY_SYNCS: usize = 200;
const IDLE_SECONDS: u64 = 10;
const TARGET_DRAIN_PER_S: f64 = 30_000.0;

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * p / 100.0).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// This process's CPU time (user + system) from /proc/self/stat, in clock ticks of 1/100 s (USER_HZ
/// is 100 on every Linux this runs on).
fn process_cpu() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("parsing /proc/self/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .context("a CPU time field of /proc/self/stat")
    };
    // `rest` starts at field 3 (state), so field n is at index n - 3.
    let total = ticks(14 - 3)? + ticks(15 - 3)?;
    Ok(Duration::from_millis(total * 10))
}

/// This process's minor page faults so far (field 10 of /proc/self/stat; 0 if unreadable): memory
/// touched for the first time.
fn minor_faults() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            rest.split_whitespace().nth(10 - 3)?.parse().ok()
        })
        .unwrap_or(0)
}

/// CPU time (user + system) of every `postgres` process on the machine, from /proc (processes that
/// cannot be read count nothing): PostgreSQL's share of a measured step, taken before and after it.
fn postgres_cpu() -> Duration {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    let ticks: u64 = entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|stat| {
            let (head, rest) = stat.rsplit_once(')')?;
            if !head.ends_with("(postgres") {
                return None;
            }
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum();
    Duration::from_millis(ticks * 10)
}

struct Tenant {
    id: TenantId,
    slug: String,
    admin_email: String,
    crew_email: String,
}

async fn provision(
    control: &ControlPool,
    slug: &str,
    password_hash: &str,
) -> anyhow::Result<Tenant> {
    let admin_email = format!("admin@{slug}.example");
    let created = sync_server::provisioning::provision_tenant(
        control,
        &format!("Sync bench {slug}"),
        Some(slug),
        PlanTier::Standard,
        &admin_email,
        "Bench Admin",
        password_hash.to_owned(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("provisioning {slug}: {e:?}"))?;
    let crew_email = format!("crew@{slug}.example");
    let mut tx = control.begin_tenant(created.tenant_id).await?;
    tx.add_user(
        &NewUser {
            id: UserId::generate(),
            email: crew_email.clone(),
            name: "Bench Crew".into(),
            role: Role::FieldUser,
            crew_id: Some(created.crew_id),
            password_hash: password_hash.to_owned(),
        },
        Timestamp::now(),
    )
    .await?;
    tx.commit().await?;
    Ok(Tenant {
        id: created.tenant_id,
        slug: created.slug,
        admin_email,
        crew_email,
    })
}

/// The storm a sync benchmark (and `examples/pull_apply_profile.rs`) writes its properties into.
pub fn storm(now: Timestamp) -> Storm {
    Storm {
        id: StormId::generate(),
        event_id: "NWS-BENCH".into(),
        name: "Bench hail".into(),
        started_at: now.plus_millis(-86_400_000),
        ended_at: None,
        hail_size_in: 2.0,
        wind_mph: 60.0,
        affected_area: "Norman, OK".into(),
        status: StormStatus::Active,
    }
}

/// The `n`th property of a sync benchmark's storm (also `examples/pull_apply_profile.rs`'s).
pub fn property(storm: StormId, n: usize) -> Property {
    Property {
        id: PropertyId::generate(),
        storm_id: storm,
        external_id: format!("P-{n}"),
        address: format!("{n} Bench Street"),
        latitude: 35.0 + (n % 1_000) as f64 * 0.0001,
        longitude: -97.0 - (n / 1_000) as f64 * 0.0001,
        roof_age_years: Some((n % 30) as f64),
        roof_material: Some(RoofMaterial::AsphaltShingle),
        square_feet: Some(1_500.0 + (n % 2_000) as f64),
        home_value: Some(Cents(20_000_000 + (n % 500) as i64 * 100_000)),
        hail_size_in: Some(1.0 + (n % 20) as f64 * 0.1),
        distance_to_core_km: Some((n % 50) as f64 * 0.2),
        prior_claims: (n % 3) as u32,
        owner_name: None,
        owner_phone: None,
        owner_email: None,
        status: PropertyStatus::New,
    }
}

/// The score of the `n`th property (`p`) of a sync benchmark's storm (also `examples/pull_apply_profile.rs`'s).
pub fn score(p: &Property, n: usize, now: Timestamp) -> UpliftScore {
    UpliftScore {
        property_id: p.id,
        storm_id: p.storm_id,
        uplift: (n % 200) as f64 / 1_000.0 - 0.05,
        p_treat: 0.3,
        p_hold: 0.2,
        model_version: "bench-1".into(),
        trained_at: now,
        data_watermark: 1,
    }
}

/// Writes a storm and `n` properties (with scores when `scored`) server-side, 10,000 per transaction.
async fn write_properties(
    app: &AppPool,
    tenant: TenantId,
    n: usize,
    scored: bool,
) -> anyhow::Result<(StormId, Vec<PropertyId>)> {
    let now = Timestamp::now();
    let hlc = Hlc::new(now.millis() as u64 - 60_000, 0, 0);
    let storm = storm(now);
    let mut tx = app.begin_tenant(tenant).await?;
    tx.upsert_storms(std::slice::from_ref(&storm), hlc, now)
        .await?;
    tx.commit().await?;
    let mut ids = Vec::with_capacity(n);
    for start in (0..n).step_by(10_000) {
        let chunk: Vec<Property> = (start..(start + 10_000).min(n))
            .map(|i| property(storm.id, i))
            .collect();
        let mut tx = app.begin_tenant(tenant).await?;
        tx.upsert_properties(&chunk, hlc, now).await?;
        if scored {
            let scores: Vec<UpliftScore> = chunk
                .iter()
                .enumerate()
                .map(|(i, p)| score(p, start + i, now))
                .collect();
            tx.upsert_uplift_scores(&scores, now).await?;
        }
        tx.commit().await?;
        ids.extend(chunk.iter().map(|p| p.id));
    }
    Ok((storm.id, ids))
}

/// A laptop: a new encrypted tenant file in `dir`, signed in, with an engine.
async fn laptop(
    server: &str,
    dir: &std::path::Path,
    slug: &str,
    email: &str,
    config: EngineConfig,
) -> anyhow::Result<(Arc<SyncEngine>, UserId, DeviceId)> {
    let data_dir = DataDir::new(dir)?;
    let passphrase = Passphrase::new_checked(PASSPHRASE)?;
    let signed = sign_in(
        &data_dir,
        SignInRequest {
            server_url: server,
            tenant_slug: slug,
            email,
            password: zeroize::Zeroizing::new(PASSWORD.to_owned()),
            local_user: "crew",
            passphrase: &passphrase,
            device_name: "bench laptop",
        },
    )
    .await
    .with_context(|| format!("{email} signing in"))?;
    let device = signed.store.device_id();
    let engine = SyncEngine::new(signed.store, data_dir, SyncClient::new(server)?, config);
    engine.accept_tokens(&signed.tokens).await?;
    Ok((engine, signed.tokens.user_id, device))
}

fn touches(
    user: UserId,
    device: DeviceId,
    storm: StormId,
    properties: &[PropertyId],
    n: usize,
) -> Vec<JourneyTouch> {
    let at = Timestamp::now().plus_millis(-3_600_000);
    (0..n)
        .map(|i| JourneyTouch {
            id: TouchId::generate(),
            property_id: properties[i % properties.len()],
            storm_id: storm,
            user_id: user,
            device_id: device,
            channel: Channel::DoorKnock,
            result: TouchResult::Talked,
            notes: format!("knocked, talked to the owner about the roof ({i})"),
            occurred_at: at,
        })
        .collect()
}

/// Logs `n` touches into the laptop's outbox (untimed), 10,000 per local transaction.
async fn log_backlog(
    engine: &SyncEngine,
    user: UserId,
    device: DeviceId,
    storm: StormId,
    properties: &[PropertyId],
    n: usize,
) -> anyhow::Result<()> {
    for start in (0..n).step_by(10_000) {
        let batch = touches(user, device, storm, properties, (n - start).min(10_000));
        engine
            .with_store(move |s| s.add_touches(&batch).map(|_| ()))
            .await?;
    }
    Ok(())
}

/// Where one drain's time goes, measured by running the engine's push loop by hand with timers.
#[derive(Default)]
struct Breakdown {
    outbox_read: Duration,
    encode: Duration,
    http_and_server: Duration,
    receipts: Duration,
    total: Duration,
}

async fn drain_by_hand(
    engine: &SyncEngine,
    client: &SyncClient,
    token: &str,
) -> anyhow::Result<Breakdown> {
    let mut b = Breakdown::default();
    let started = Instant::now();
    loop {
        let t = Instant::now();
        let changes = engine.with_store(|s| s.pending_changes(PUSH_BATCH)).await?;
        b.outbox_read += t.elapsed();
        if changes.is_empty() {
            break;
        }
        // The client encodes again inside `push`; this copy only times JSON + zstd on its own.
        let t = Instant::now();
        let json = serde_json::to_vec(&PushRequest {
            changes: changes.clone(),
        })?;
        let _ = zstd::bulk::compress(&json, sync_client::PUSH_ZSTD_LEVEL)?;
        b.encode += t.elapsed();
        let t = Instant::now();
        let (outcome, _) = client.push(token, &changes).await?;
        b.http_and_server += t.elapsed();
        let PushOutcome::Applied(response) = outcome else {
            anyhow::bail!("the benchmark batch was refused");
        };
        let t = Instant::now();
        let hlc = response.server_hlc;
        engine
            .with_store(move |s| s.apply_receipts(&response.receipts, Some(hlc)).map(|_| ()))
            .await?;
        b.receipts += t.elapsed();
    }
    b.total = started.elapsed();
    Ok(b)
}

/// Runs the suite and returns its Markdown section.
pub fn run() -> anyhow::Result<String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run_async())
}

/// What every part of the suite runs against: a fresh PostgreSQL database, the server in-process on
/// loopback, pools as the app and control roles, and the password hash of every provisioned user.
struct Bench {
    db: test_postgres::TestDatabase,
    server: sync_server::serve::RunningServer,
    url: String,
    app: AppPool,
    control: ControlPool,
    hash: String,
}

impl Bench {
    async fn start() -> anyhow::Result<Self> {
        let db = test_postgres::fresh_database().await?;
        let init = server_store::init_database(&db.server_url, &db.name, &db.role_prefix).await?;
        let config = ServerConfig {
            database_url: init.app_url.clone(),
            control_database_url: init.control_url.clone(),
            pool_size: 8,
            // The background trainer would compete for the same two cores; it is not what is measured.
            settings: ServerSettings {
                train_interval_secs: 0,
                ..ServerSettings::default()
            },
        };
        let server = sync_server::serve::start(&config, "127.0.0.1:0").await?;
        let url = format!("http://{}", server.addr);
        let pools = PoolSettings {
            max_connections: 4,
            ..PoolSettings::default()
        };
        let app = AppPool::connect(&init.app_url, &pools).await?;
        let control = ControlPool::connect(&init.control_url, &pools).await?;
        let hash =
            tokio::task::spawn_blocking(|| sync_server::auth::password::hash_password(PASSWORD))
                .await?
                .map_err(|e| anyhow::anyhow!("hashing: {e:?}"))?;
        Ok(Self {
            db,
            server,
            url,
            app,
            control,
            hash,
        })
    }

    /// A tenant holding `properties` properties with their uplift scores, settled the way autovacuum
    /// settles an import long before a new laptop signs in (visibility and hint bits set, statistics
    /// current, dirty pages flushed). Without that the first reader of 400,000 rows written seconds
    /// earlier pays for writing every one of their pages again, which no laptop meets in service.
    async fn scored_tenant(&self, slug: &str, properties: usize) -> anyhow::Result<Tenant> {
        use sqlx::Connection as _;
        let tenant = provision(&self.control, slug, &self.hash).await?;
        write_properties(&self.app, tenant.id, properties, true).await?;
        let mut su = sqlx::PgConnection::connect(&self.db.superuser_url).await?;
        sqlx::query("VACUUM (ANALYZE)").execute(&mut su).await?;
        sqlx::query("CHECKPOINT").execute(&mut su).await?;
        su.close().await?;
        Ok(tenant)
    }

    async fn stop(self) {
        self.server.stop().await;
        self.app.close().await;
        self.control.close().await;
        let _ = self.db.drop_database().await;
    }
}

async fn run_async() -> anyhow::Result<String> {
    let bench = Bench::start().await?;
    let (url, app, control, hash) = (&bench.url, &bench.app, &bench.control, &bench.hash);
    let dirs = tempfile::tempdir()?;
    let mut out = String::new();

    // (a) A week offline: drain 100,000 touches with the real engine.
    let week = provision(control, "week", hash).await?;
    let (storm, properties) = write_properties(app, week.id, 2_000, false).await?;
    let drain_config = EngineConfig {
        push_batch: PUSH_BATCH,
        pull_limit: MAX_PULL_LIMIT,
        ..EngineConfig::default()
    };
    let (engine, user, device) = laptop(
        url,
        &dirs.path().join("week"),
        &week.slug,
        &week.crew_email,
        drain_config.clone(),
    )
    .await?;
    engine.sync_once().await?;
    log_backlog(&engine, user, device, storm, &properties, BACKLOG).await?;
    let logged = engine.with_store(|s| s.pending_counts()).await?.pending;
    ensure!(logged == BACKLOG as i64, "the backlog is logged ({logged})");
    // The moment the push phase ends (the pull of what others wrote follows in the same sync).
    let mut status = engine.subscribe();
    let push_done = tokio::spawn(async move {
        while status.changed().await.is_ok() {
            if status.borrow().phase == Phase::Pulling {
                return Some(Instant::now());
            }
        }
        None
    });
    let started = Instant::now();
    let report = engine.sync_once().await?;
    let drain = started.elapsed();
    let push_elapsed = push_done
        .await?
        .map_or(drain, |at| at.duration_since(started));
    ensure!(
        report.pushed == BACKLOG as u64 && engine.status().pending == 0,
        "the whole backlog drained: {report:?}"
    );
    let drain_rate = BACKLOG as f64 / drain.as_secs_f64();
    let push_rate = BACKLOG as f64 / push_elapsed.as_secs_f64();

    // The raw PostgreSQL ceiling for the same rows, in the same batch size, in this run.
    let raw_rows = touches(user, device, storm, &properties, BACKLOG);
    let started = Instant::now();
    for chunk in raw_rows.chunks(PUSH_BATCH) {
        let mut tx = app.begin_tenant(week.id).await?;
        server_store::bench_raw_copy_insert(&mut tx, chunk).await?;
        tx.commit().await?;
    }
    let raw = started.elapsed();
    let raw_rate = BACKLOG as f64 / raw.as_secs_f64();

    // Where the time goes: the same drain by hand, each step timed.
    log_backlog(&engine, user, device, storm, &properties, BACKLOG).await?;
    let client = SyncClient::new(url)?;
    let pair = client
        .login(&LoginRequest {
            tenant_slug: week.slug.clone(),
            email: week.crew_email.clone(),
            password: PASSWORD.into(),
            device_id: device,
            device_name: "bench laptop".into(),
        })
        .await?;
    let parts = drain_by_hand(&engine, &client, &pair.access_token).await?;

    writeln!(
        out,
        "### A week offline: drain {BACKLOG} touches (real engine, batches of {PUSH_BATCH}, SQLCipher file → HTTP → PostgreSQL → receipts)\n"
    )?;
    writeln!(out, "| path | time | touches/s |\n|---|---|---|")?;
    writeln!(
        out,
        "| `sync_once`, push phase (outbox cleared) | {} | **{push_rate:.0}** (target ≥ {TARGET_DRAIN_PER_S:.0}) |",
        ms(push_elapsed)
    )?;
    writeln!(
        out,
        "| `sync_once` whole (push, then pull of {} rows) | {} | {drain_rate:.0} |",
        report.pulled,
        ms(drain)
    )?;
    writeln!(
        out,
        "| raw PostgreSQL ceiling (`bench_raw_copy_insert`, {PUSH_BATCH} per transaction) | {} | {raw_rate:.0} |",
        ms(raw)
    )?;
    writeln!(
        out,
        "| **push phase / raw ceiling** | | **{:.0} %** |",
        100.0 * push_rate / raw_rate
    )?;
    let share = |d: Duration| 100.0 * d.as_secs_f64() / parts.total.as_secs_f64();
    writeln!(
        out,
        "\nWhere a drain's time goes (the engine's push loop run by hand with timers, one step after another, another {BACKLOG} touches; total {}). The engine itself keeps two batches in flight and stores a batch's receipts and reads the next batch meanwhile, so its drain costs less than the sum of the rows below:\n",
        ms(parts.total)
    )?;
    writeln!(out, "| step | time | share |\n|---|---|---|")?;
    for (step, d) in [
        (
            "local outbox read (`pending_changes`, SQLCipher)",
            parts.outbox_read,
        ),
        (
            "HTTP round trip incl. the client's JSON + zstd and the server's decode, validation and apply",
            parts.http_and_server,
        ),
        (
            "  of which JSON encode + zstd alone (timed separately)",
            parts.encode,
        ),
        (
            "receipt apply (`apply_receipts`: outbox rows deleted, states set)",
            parts.receipts,
        ),
    ] {
        writeln!(out, "| {step} | {} | {:.0} % |", ms(d), share(d))?;
    }

    // (b) A new laptop's first sync of 200,000 scored properties.
    // Untimed: the tenant's import is written and settled (see `Bench::scored_tenant`).
    let big = bench.scored_tenant("first", FIRST_SYNC_PROPERTIES).await?;
    let (fresh, _, _) = laptop(
        url,
        &dirs.path().join("first"),
        &big.slug,
        &big.admin_email,
        drain_config.clone(),
    )
    .await?;
    let cpu_before = process_cpu()?;
    let postgres_before = postgres_cpu();
    let started = Instant::now();
    let first = fresh.sync_once().await?;
    let first_sync = started.elapsed();
    let first_cpu = process_cpu()?.saturating_sub(cpu_before);
    let first_postgres = postgres_cpu().saturating_sub(postgres_before);
    let counts = fresh.with_store(|s| s.record_counts()).await?;
    ensure!(
        counts.properties == FIRST_SYNC_PROPERTIES as i64
            && counts.scored_properties == FIRST_SYNC_PROPERTIES as i64,
        "every property and score arrived: {counts:?}"
    );
    writeln!(
        out,
        "\n### First sync of a new laptop: {FIRST_SYNC_PROPERTIES} properties with uplift scores\n"
    )?;
    writeln!(out, "| measurement | value |\n|---|---|")?;
    writeln!(
        out,
        "| `sync_once` ({} rows in {} pages of up to {MAX_PULL_LIMIT}, {:.1} MB received) | **{:.2} s** (target < 5 s) |",
        first.pulled,
        first.pull_pages,
        first.bytes_received as f64 / 1e6,
        first_sync.as_secs_f64()
    )?;
    writeln!(
        out,
        "| rows/s | {:.0} |",
        first.pulled as f64 / first_sync.as_secs_f64()
    )?;
    writeln!(
        out,
        "| process CPU during `sync_once` (engine, client and the in-process server; PostgreSQL's own processes not included) | {:.2} s |",
        first_cpu.as_secs_f64()
    )?;
    writeln!(
        out,
        "| CPU of PostgreSQL's processes during `sync_once` (all of the machine's `postgres` processes) | {:.2} s |",
        first_postgres.as_secs_f64()
    )?;
    // Where the first sync's time goes: the same pages fetched again without applying them, then applied
    // into another new tenant file without the network. The engine downloads a page while it applies the
    // one before, so the sync takes less than the two added up.
    let pair = client
        .login(&LoginRequest {
            tenant_slug: big.slug.clone(),
            email: big.admin_email.clone(),
            password: PASSWORD.into(),
            device_id: DeviceId::generate(),
            device_name: "bench reader".into(),
        })
        .await?;
    let started = Instant::now();
    let mut cursor: Option<String> = None;
    let mut fetched = 0usize;
    let mut pages = Vec::new();
    loop {
        let (page, _) = client
            .pull_raw(&pair.access_token, cursor.as_deref(), Some(MAX_PULL_LIMIT))
            .await?;
        fetched += page.changes.len();
        cursor = Some(page.next_cursor.clone());
        let more = page.has_more;
        pages.push(page);
        if !more {
            break;
        }
    }
    let fetch = started.elapsed();
    let pages = Arc::new(pages);
    // The same pages applied twice more, each into a new file: as the engine does (the long-pull mode
    // on, and its closing checkpoint timed), and with the file's usual settings.
    let mut applies = Vec::new();
    let mut apply_cpu = Duration::ZERO;
    for long in [true, false] {
        // Nothing else runs in this process meanwhile (the server is idle): its CPU is the apply's, both
        // threads (the page's writer and the thread decoding ahead of it).
        let cpu_before = process_cpu()?;
        let replay_dir = dirs.path().join(format!("replay-{long}"));
        let pages = Arc::clone(&pages);
        applies.push(
            tokio::task::spawn_blocking(move || -> anyhow::Result<Duration> {
                let data_dir = DataDir::new(&replay_dir)?;
                let passphrase = Passphrase::new_checked(PASSPHRASE)?;
                let mut store = data_dir
                    .create_tenant(
                        local_store::NewTenant {
                            tenant_id: None,
                            name: "replay",
                            user: "crew",
                            passphrase: &passphrase,
                        },
                        Timestamp::now(),
                    )?
                    .store;
                let started = Instant::now();
                if long {
                    store.set_long_pull(true)?;
                }
                for page in pages.iter() {
                    // The engine's own form: each record still the JSON text the server sent.
                    let texts: Vec<PulledText<'_>> = page
                        .changes
                        .iter()
                        .map(|c| PulledText {
                            entity: c.entity,
                            entity_id: c.entity_id,
                            op: c.op,
                            record: c.record.get(),
                            field_clocks: c.field_clocks.as_deref().map(|v| v.get()),
                        })
                        .collect();
                    store.apply_pulled_text(&texts, &page.next_cursor, page.watermark)?;
                }
                if long {
                    store.set_long_pull(false)?;
                }
                Ok(started.elapsed())
            })
            .await??,
        );
        if long {
            apply_cpu = process_cpu()?.saturating_sub(cpu_before);
        }
    }
    let (apply, apply_usual) = (applies[0], applies[1]);
    writeln!(
        out,
        "| of which pull over HTTP alone (server query + JSON + zstd + client decode; {fetched} rows fetched again, not applied) | {:.2} s |",
        fetch.as_secs_f64()
    )?;
    writeln!(
        out,
        "| of which local apply alone (`apply_pulled_text` of the same pages into another new SQLCipher file, no network; long-pull mode and its closing checkpoint, as the engine) | {:.2} s ({:.0} rows/s) |",
        apply.as_secs_f64(),
        fetched as f64 / apply.as_secs_f64()
    )?;
    writeln!(
        out,
        "| process CPU during that apply (the writing thread and the thread decoding ahead of it) | {:.2} s |",
        apply_cpu.as_secs_f64()
    )?;
    writeln!(
        out,
        "| the same apply with the file's usual settings (checkpoint every 1,000 pages, 64 MiB cache) | {:.2} s |",
        apply_usual.as_secs_f64()
    )?;
    writeln!(
        out,
        "| download and apply overlapped (their sum − `sync_once`) | {:.2} s |",
        (fetch + apply).saturating_sub(first_sync).as_secs_f64()
    )?;
    writeln!(
        out,
        "\nHow a first sync's pages are applied, and why (profiled with `perf record` on `cargo run --release -p benchmarks --example pull_apply_profile`, the same 400,000 records without server or network): most of a page's apply is SQLite's own work — inserting each property into its table and its two unique indexes (UUID text keys), and each page's commit writing and encrypting its log frames; turning the JSON into typed records was under a tenth of it. A first sync (a laptop with no property yet) builds the two rank indexes once at its end instead of inserting every property into them at its place in uplift order, which rewrote most of their pages on every page (about 40 % of the apply); the page's scores and new properties go in with multi-row statements, a statement's worth at a time so the writing overlaps the decoding, as `INSERT OR IGNORE` (a statement that a constraint could abort half-way makes SQLite copy each existing page it changes into a statement journal first: about a tenth of the writing; a skipped row is merged one by one, a chunk that met a stored score is upserted again); scores are one `WITHOUT ROWID` B-tree keyed by (property, storm) instead of a table and its primary-key index (local migration 0010); and SQLite is built without memory statistics (`LIBSQLITE3_FLAGS` in `.cargo/config.toml`), which took a global mutex on each of its millions of allocations. Together: apply of the profile 4.25 s → 3.6 s. At the end of the pull, a second connection on another thread copies the pull's log (about 200 MB) into the database while the first builds the rank indexes, instead of after them: that closing step 1.25 s → 0.85 s. Each page is still ONE local transaction with its cursor, applied in order, and a record already on the laptop or with pending local writes still takes the per-field merge. Within that: the page's properties and scores are decoded (and a property's clocks turned into their stored, grouped text) on a second thread just ahead of the thread writing them, since the laptop has two cores and the writer is the bottleneck; and clocks sent one per field, all the same clock on a record written in one go, are parsed once per record instead of once per field. A page's records are written scores first, then properties, then the rest (decisions, which set their property's latest decision, after the properties), each kind by id and each record's own changes in page order: the feed orders a server transaction's rows by their random change ids, so in page order every insert landed at a random place in the id-keyed B-trees (properties by id, scores by property) and every score pick-up read one; in id order (UUIDv7) they extend the trees at one end (the profile's apply: 6.23 → 5.29 s, means of five alternating runs; CPU under `perf` 5.33 → 4.69 s). The server now sends a transaction's rows in record order, `(txid, entity_id, id)` (server migration 20261202000000, cursors `c2.`), instead of in the order of their random change ids: this sync's server transactions hold 10,000 properties and their 10,000 scores each, so in change-id order a page boundary cut each transaction at random, and the scores on a transaction's second page rewrote the rows (and pages) of their properties written with the first. In record order a property and its score (whose entity id is the property's) travel together, and a page is a contiguous run of ids: the log the apply writes fell from 226.0 to 153.2 MiB and the apply with its closing checkpoint from 3.67–3.95 s to 2.93–3.06 s (`examples/pull_apply_profile`, `change` vs `record` order, three alternating runs each); a whole first sync (`examples/first_sync_profile`, old and new binaries alternately, each in a fresh process) from 5.11 / 4.38 / 4.22 s to 3.81 / 3.47 / 3.34 s, PostgreSQL's CPU in it from 0.98–1.04 to 0.84–0.85 s. A storm's retraining, one transaction of scores, now reaches a laptop as pages of contiguous properties too, instead of each page updating properties scattered over the whole table. Sending field clocks grouped by clock in pull pages (one clock per record instead of one per field: 358 → 235 MB of JSON for this sync) was built and measured, and dropped: neither the first sync's time nor its CPU moved beyond the noise, since zstd and the JSON scanning cost little per byte and the work is per record. On the server's side, the pull feed keeps each record as the JSON text printed when it was written (`change_log` columns of type `json`, server migration 20261201000000), so a pull sends it on as stored: PostgreSQL no longer prints every record again on every pull (`escape_json` alone had been about a fifth of its time here), which roughly halved both the pull alone and PostgreSQL's CPU during a first sync."
    )?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    writeln!(
        out,
        "\nLoad average after the first sync (other work on the machine adds noise): {}.",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )?;

    // (c) Steady state: nothing to push, nothing to pull.
    let mut latencies = Vec::with_capacity(EMPTY_SYNCS);
    for _ in 0..EMPTY_SYNCS {
        let started = Instant::now();
        let r = fresh.sync_once().await?;
        latencies.push(started.elapsed());
        ensure!(r.pushed == 0 && r.pulled == 0, "the sync was empty: {r:?}");
    }
    latencies.sort();
    writeln!(
        out,
        "\n### Empty steady-state sync ({EMPTY_SYNCS} × `sync_once`, nothing to push or pull)\n"
    )?;
    writeln!(out, "| p50 | p99 |\n|---|---|")?;
    writeln!(
        out,
        "| **{}** (target < 5 ms) | {} |",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0))
    )?;

    // (d) The idle agent: running, nothing to do.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let agent = tokio::spawn(Arc::clone(&fresh).run(stopped));
    // Its start-up sync is not idling: wait for it to finish first.
    let before = fresh.status().last_success_at_ms;
    let mut status = fresh.subscribe();
    while fresh.status().last_success_at_ms == before {
        status.changed().await?;
    }
    let cpu_before = process_cpu()?;
    let wall = Instant::now();
    tokio::time::sleep(Duration::from_secs(IDLE_SECONDS)).await;
    let cpu = process_cpu()?.saturating_sub(cpu_before);
    let idle_share = 100.0 * cpu.as_secs_f64() / wall.elapsed().as_secs_f64();
    let _ = stop.send(true);
    agent.await?;
    writeln!(
        out,
        "\n### Idle agent ({IDLE_SECONDS} s of `engine.run` with nothing to do)\n"
    )?;
    writeln!(
        out,
        "| process CPU (user + system) | share of one core |\n|---|---|"
    )?;
    writeln!(
        out,
        "| {} | **{idle_share:.2} %** (target < 1 %) |",
        ms(cpu)
    )?;
    writeln!(
        out,
        "\nThe CPU figure is the whole benchmark process (agent, idle in-process server and its pools), read from /proc/self/stat at 10 ms resolution; the agent wakes only on a trigger or its {} s interval.",
        EngineConfig::default().interval.as_secs()
    )?;

    bench.stop().await;
    Ok(out)
}

/// Profiling aid (`examples/first_sync_profile.rs`): part (b) alone — a new laptop's first sync of
/// `properties` scored properties, `runs` times, each into a new SQLCipher file — printing the time and
/// this process's CPU of each `sync_once`. Before each sync it prints `ready` and waits `pause`, so a
/// system-wide `perf record -a` can be started around the sync alone.
pub fn first_sync_profile(properties: usize, runs: usize, pause: Duration) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(async {
            let bench = Bench::start().await?;
            let big = bench.scored_tenant("first", properties).await?;
            let dirs = tempfile::tempdir()?;
            let config = EngineConfig {
                push_batch: PUSH_BATCH,
                pull_limit: MAX_PULL_LIMIT,
                ..EngineConfig::default()
            };
            for run in 0..runs {
                let (fresh, _, _) = laptop(
                    &bench.url,
                    &dirs.path().join(format!("first-{run}")),
                    &big.slug,
                    &big.admin_email,
                    config.clone(),
                )
                .await?;
                println!("ready");
                tokio::time::sleep(pause).await;
                let faults_before = minor_faults();
                let cpu_before = process_cpu()?;
                let postgres_before = postgres_cpu();
                let started = Instant::now();
                let report = fresh.sync_once().await?;
                let elapsed = started.elapsed();
                let cpu = process_cpu()?.saturating_sub(cpu_before);
                let postgres = postgres_cpu().saturating_sub(postgres_before);
                let faults = minor_faults().saturating_sub(faults_before);
                println!(
                    "run {run}: sync_once {:.2} s, process CPU {:.2} s, PostgreSQL CPU {:.2} s, {faults} page faults, {} rows, {:.1} MB",
                    elapsed.as_secs_f64(),
                    cpu.as_secs_f64(),
                    postgres.as_secs_f64(),
                    report.pulled,
                    report.bytes_received as f64 / 1e6
                );
            }
            bench.stop().await;
            Ok(())
        })
}
