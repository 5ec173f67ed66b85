//! The sync server benchmark: the real `stormops-server` binary in a child process on loopback, over a
//! fresh PostgreSQL database (`test_postgres`: the running one, or a private cluster), as the non-owner
//! application role under row-level security. Measures push throughput against the raw PostgreSQL
//! ceiling, pull throughput, the pull query with and without RLS, the empty-pull round trip, and 200
//! concurrent device loops with the server's peak memory. References are measured in the same run.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use domain::clock::HlcClock;
use domain::*;
use server_store::{AppPool, ControlPool, NewUser, PoolSettings};
use sqlx::postgres::PgPoolOptions;
use sync_client::{PushOutcome, SyncClient};
use sync_protocol::{Change, ChangeOp, Entity, LoginRequest, TokenPair};
use uuid::Uuid;

const PASSWORD: &str = "benchmark password";
const BATCH: usize = 1_000;
/// Batches pushed over HTTP (and inserted raw) for the throughput comparison.
const PUSH_BATCHES: usize = 200;
/// Raw and HTTP batches alternate in rounds of this many, so drift hits both alike.
const ROUND: usize = 20;
const PULL_ROWS: usize = PUSH_BATCHES * BATCH;
const PULL_PAGE: u32 = 10_000;
const PULL_RUNS: usize = 3;
const RLS_RUNS: usize = 3;
const EMPTY_PULLS: usize = 500;
const DEVICES: usize = 200;
const CREWS: usize = 20;
const LOOP_ITERATIONS: usize = 10;
const LOOP_TOUCHES: usize = 50;
const SERVER_POOL: u32 = 16;
/// Laptops signing in at once (a shift start, not all 200 in the same millisecond).
const LOGIN_CONCURRENCY: usize = 16;
const PACED_ITERATIONS: usize = 5;
/// A laptop's sync cadence when its user keeps logging: the engine syncs a debounce after each local
/// write (`EngineConfig::debounce`), else on its timer (`EngineConfig::interval`, a minute). The
/// debounce is the fastest a real laptop loops, so the paced loop uses it.
fn paced_think() -> Duration {
    desktop_core::EngineConfig::default().debounce
}

/// The pull feed's statement, as `server_store`'s pull runs it (kept identical for the RLS comparison).
const PULL_SQL: &str = "WITH horizon AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
     SELECT horizon.xmin::text::int8, c.txid, c.id, c.entity, c.entity_id, c.op, c.record, c.field_clocks
       FROM horizon LEFT JOIN LATERAL (
            SELECT l.txid::text::int8 AS txid, l.id, l.entity, l.entity_id, l.op, l.record, l.field_clocks
              FROM change_log l
             WHERE l.tenant_id = $1
               AND (l.txid, l.id) > ($2::int8::text::xid8, $3::uuid)
               AND l.txid < horizon.xmin
               AND ($4 OR (l.scope_crew IS NULL AND l.scope_user IS NULL) OR l.scope_crew = $5 OR l.scope_user = $6)
             ORDER BY l.txid, l.id
             LIMIT $7) c ON true";

type FeedRow = (
    i64,
    Option<i64>,
    Option<Uuid>,
    Option<String>,
    Option<Uuid>,
    Option<String>,
    Option<serde_json::Value>,
    Option<serde_json::Value>,
);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * p / 100.0).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The server binary next to this one (`target/release/stormops-server`), built if missing.
fn server_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the benchmark binary")?;
    let dir = exe
        .parent()
        .context("the benchmark binary has no directory")?;
    let path = dir.join("stormops-server");
    if !path.exists() {
        let release = dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "sync-server", "--bin", "stormops-server"]);
        if release {
            build.arg("--release");
        }
        let status = build.status().context("building stormops-server")?;
        anyhow::ensure!(status.success(), "building stormops-server failed");
    }
    anyhow::ensure!(path.exists(), "{} is missing", path.display());
    Ok(path)
}

/// `stormops-server serve` on a free loopback port; returns the child and its base URL.
fn spawn_server(app_url: &str, control_url: &str) -> anyhow::Result<(Child, String)> {
    let mut child = Command::new(server_binary()?)
        .arg("serve")
        .env("STORMOPS_DATABASE_URL", app_url)
        .env("STORMOPS_CONTROL_DATABASE_URL", control_url)
        .env("STORMOPS_BIND", "127.0.0.1:0")
        .env("STORMOPS_DB_POOL", SERVER_POOL.to_string())
        .env("STORMOPS_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting stormops-server")?;
    let stdout = child.stdout.take().context("server stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("reading the server's address")?;
    match line.trim().strip_prefix("listening on ") {
        Some(url) => Ok((child, url.to_owned())),
        None => {
            let _ = child.kill();
            bail!("stormops-server did not start: {line:?}")
        }
    }
}

/// Peak and current resident memory of a process, in MiB, from /proc/<pid>/status.
fn memory_mib(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading the server's /proc status")?;
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    Ok((field("VmHWM:"), field("VmRSS:")))
}

struct Tenant {
    id: TenantId,
    slug: String,
    storm: StormId,
    properties: Vec<PropertyId>,
    /// (email, crew) of the field users.
    field_users: Vec<(String, CrewId)>,
}

/// A tenant with `crews` crews, one field user per crew, a storm and `properties` properties.
async fn provision(
    control: &ControlPool,
    app: &AppPool,
    slug: &str,
    crews: usize,
    properties: usize,
    hash: &str,
) -> anyhow::Result<Tenant> {
    let created = sync_server::provisioning::provision_tenant(
        control,
        &format!("Bench {slug}"),
        Some(slug),
        PlanTier::Enterprise,
        &format!("admin@{slug}.example"),
        "Bench Admin",
        hash.to_owned(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("provisioning {slug}: {e:?}"))?;
    let now = Timestamp::now();
    let mut tx = control.begin_tenant(created.tenant_id).await?;
    let mut field_users = Vec::new();
    for c in 0..crews {
        let crew = if c == 0 {
            created.crew_id
        } else {
            let crew = Crew {
                id: CrewId::generate(),
                name: format!("Crew {c}"),
                chief_id: None,
            };
            tx.add_crew(&crew, now).await?;
            crew.id
        };
        let email = format!("field{c}@{slug}.example");
        tx.add_user(
            &NewUser {
                id: UserId::generate(),
                email: email.clone(),
                name: format!("Field {c}"),
                role: Role::FieldUser,
                crew_id: Some(crew),
                password_hash: hash.to_owned(),
            },
            now,
        )
        .await?;
        field_users.push((email, crew));
    }
    tx.commit().await?;
    let storm = StormId::generate();
    let props: Vec<Property> = (0..properties)
        .map(|n| Property {
            id: PropertyId::generate(),
            storm_id: storm,
            external_id: format!("B-{n}"),
            address: format!("{n} Elm St"),
            latitude: 35.2,
            longitude: -97.4,
            roof_age_years: Some(12.0),
            roof_material: Some(RoofMaterial::AsphaltShingle),
            square_feet: Some(2000.0),
            home_value: Some(Cents(30_000_000)),
            hail_size_in: Some(1.5),
            distance_to_core_km: Some(2.0),
            prior_claims: 0,
            owner_name: Some("Pat".into()),
            owner_phone: None,
            owner_email: None,
            status: PropertyStatus::New,
        })
        .collect();
    let hlc = Hlc::new(now.millis() as u64 - 60_000, 0, 0);
    let mut tx = app.begin_tenant(created.tenant_id).await?;
    tx.upsert_storms(
        &[Storm {
            id: storm,
            event_id: "BENCH".into(),
            name: "Bench hail".into(),
            started_at: now.plus_millis(-86_400_000),
            ended_at: None,
            hail_size_in: 2.0,
            wind_mph: 60.0,
            affected_area: "bench county".into(),
            status: StormStatus::Active,
        }],
        hlc,
        now,
    )
    .await?;
    tx.upsert_properties(&props, hlc, now).await?;
    tx.commit().await?;
    Ok(Tenant {
        id: created.tenant_id,
        slug: slug.to_owned(),
        storm,
        properties: props.iter().map(|p| p.id).collect(),
        field_users,
    })
}

fn touches(t: &Tenant, pair: &TokenPair, n: usize, offset: usize) -> Vec<JourneyTouch> {
    let now = Timestamp::now();
    (0..n)
        .map(|i| JourneyTouch {
            id: TouchId::generate(),
            property_id: t.properties[(offset + i) % t.properties.len()],
            storm_id: t.storm,
            user_id: pair.user_id,
            device_id: pair.device_id,
            channel: Channel::DoorKnock,
            result: TouchResult::Talked,
            notes: format!(
                "visit {i}: owner reports granule loss on the north slope, gutters dented"
            ),
            occurred_at: now,
        })
        .collect()
}

fn as_changes(rows: &[JourneyTouch], device: DeviceId, clock: &mut HlcClock) -> Vec<Change> {
    rows.iter()
        .map(|t| Change {
            id: ChangeId::generate(),
            hlc: clock
                .tick(Timestamp::now().millis() as u64)
                .unwrap_or_else(|_| Hlc::new(Timestamp::now().millis() as u64, 0, 1)),
            device_id: device,
            entity: Entity::JourneyTouch,
            entity_id: t.id.0,
            op: ChangeOp::Insert,
            payload: serde_json::to_value(t).unwrap_or_default(),
        })
        .collect()
}

async fn login(
    client: &SyncClient,
    slug: &str,
    email: &str,
    device: &str,
) -> anyhow::Result<TokenPair> {
    Ok(client
        .login(&LoginRequest {
            tenant_slug: slug.to_owned(),
            email: email.to_owned(),
            password: PASSWORD.to_owned(),
            device_id: DeviceId::generate(),
            device_name: device.to_owned(),
        })
        .await?)
}

async fn push_applied(
    client: &SyncClient,
    token: &str,
    changes: &[Change],
) -> anyhow::Result<usize> {
    match client.push(token, changes).await?.0 {
        PushOutcome::Applied(r) => Ok(r.receipts.len()),
        PushOutcome::Refused(r) => bail!("a benchmark batch was refused: {:?}", r.refused.first()),
    }
}

/// Pulls every page after `cursor`; returns (rows, final cursor).
async fn pull_all(
    client: &SyncClient,
    token: &str,
    cursor: Option<String>,
    limit: u32,
) -> anyhow::Result<(usize, String)> {
    let mut cursor = cursor;
    let mut rows = 0;
    loop {
        let (page, _) = client.pull(token, cursor.as_deref(), Some(limit)).await?;
        rows += page.changes.len();
        cursor = Some(page.next_cursor);
        if !page.has_more {
            return Ok((rows, cursor.unwrap_or_default()));
        }
    }
}

/// Pages through a tenant's feed with the pull statement on `pool`; returns the rows read.
async fn sql_pull(pool: &sqlx::PgPool, tenant: TenantId) -> anyhow::Result<usize> {
    let mut after = (0_i64, Uuid::nil());
    let mut total = 0;
    loop {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(tenant.0.to_string())
            .execute(&mut *tx)
            .await?;
        let rows: Vec<FeedRow> = sqlx::query_as(PULL_SQL)
            .bind(tenant.0)
            .bind(after.0)
            .bind(after.1)
            .bind(true)
            .bind(None::<Uuid>)
            .bind(Uuid::nil())
            .bind(i64::from(PULL_PAGE) + 1)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let page: Vec<(i64, Uuid)> = rows
            .iter()
            .filter_map(|r| Some((r.1?, r.2?)))
            .take(PULL_PAGE as usize)
            .collect();
        total += page.len();
        match page.last() {
            Some(last) if rows.len() > PULL_PAGE as usize => after = *last,
            _ => return Ok(total),
        }
    }
}

/// Runs the suite and returns its Markdown section.
pub fn run() -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(run_async())
}

struct Killer(Child);

impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run_async() -> anyhow::Result<String> {
    let db = test_postgres::fresh_database().await?;
    let result = measure(&db).await;
    let _ = db.drop_database().await;
    result
}

async fn measure(db: &test_postgres::TestDatabase) -> anyhow::Result<String> {
    let init = server_store::init_database(&db.server_url, &db.name, &db.role_prefix).await?;
    let settings = PoolSettings {
        max_connections: 4,
        ..PoolSettings::default()
    };
    let app = AppPool::connect(&init.app_url, &settings).await?;
    let control = ControlPool::connect(&init.control_url, &settings).await?;
    let hash = tokio::task::spawn_blocking(|| sync_server::auth::password::hash_password(PASSWORD))
        .await?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // A fleet of 200 laptops is an enterprise tenant (its plan allows 1,000 devices). The plan's request
    // rate is raised so the saturating loop measures the server, not the limiter (the `limits` suite
    // measures what rate limiting costs).
    let mut tx = control.begin().await?;
    tx.update_plan(
        PlanTier::Enterprise,
        &[(
            server_store::plans::PlanField::RequestsPerMinute,
            10_000_000,
        )],
        Timestamp::now(),
    )
    .await?;
    tx.commit().await?;
    let bench = provision(&control, &app, "bench", 1, 2_000, &hash).await?;
    let fleet = provision(&control, &app, "fleet", CREWS, 500, &hash).await?;

    let (child, base) = spawn_server(&init.app_url, &init.control_url)?;
    let server = Killer(child);
    let pid = server.0.id();
    let client = SyncClient::new(&base)?;
    let mut out = String::new();
    writeln!(
        out,
        "`stormops-server serve` (release) in a child process on loopback, application pool of {SERVER_POOL} connections, over PostgreSQL {} as the non-owner application role (row-level security forced). The client is `sync-client` (zstd for bodies over 8 KiB) in the benchmark process.\n",
        server_version(&init.app_url)
            .await
            .unwrap_or_else(|_| "?".into())
    )?;

    // (a) Push throughput against the raw ceiling, alternating rounds.
    let pusher = login(
        &client,
        &bench.slug,
        &bench.field_users[0].0,
        "bench pusher",
    )
    .await?;
    let mut clock = HlcClock::new(
        Hlc::node_of(pusher.device_id),
        sync_protocol::MAX_CLOCK_SKEW_MS,
    );
    let mut push_time = Duration::ZERO;
    let mut raw_time = Duration::ZERO;
    let mut push_latencies = Vec::new();
    let mut pushed = 0;
    let mut raw_rows = 0;
    for round in 0..PUSH_BATCHES / ROUND {
        for b in 0..ROUND {
            let rows = touches(&bench, &pusher, BATCH, round * ROUND + b);
            let started = Instant::now();
            let mut tx = app.begin_tenant(bench.id).await?;
            raw_rows += server_store::bench_raw_copy_insert(&mut tx, &rows).await? as usize;
            tx.commit().await?;
            raw_time += started.elapsed();
        }
        for b in 0..ROUND {
            let rows = touches(&bench, &pusher, BATCH, round * ROUND + b);
            let changes = as_changes(&rows, pusher.device_id, &mut clock);
            let started = Instant::now();
            pushed += push_applied(&client, &pusher.access_token, &changes).await?;
            let took = started.elapsed();
            push_time += took;
            push_latencies.push(took);
        }
    }
    anyhow::ensure!(
        pushed == PULL_ROWS && raw_rows == PULL_ROWS,
        "every row landed"
    );
    // A pool of its own (one connection, like one request's) for the in-process apply.
    let breakdown_pool = AppPool::connect(
        &init.app_url,
        &PoolSettings {
            max_connections: 1,
            ..PoolSettings::default()
        },
    )
    .await?;
    let parts = push_breakdown(&breakdown_pool, &bench, &pusher, &mut clock).await?;
    breakdown_pool.close().await;
    push_latencies.sort();
    let push_rate = pushed as f64 / push_time.as_secs_f64();
    let raw_rate = raw_rows as f64 / raw_time.as_secs_f64();
    writeln!(
        out,
        "### Push throughput ({PUSH_BATCHES} batches of {BATCH} journey touches, one device, sequential)\n"
    )?;
    writeln!(out, "| path | time | changes/s |\n|---|---|---|")?;
    writeln!(
        out,
        "| HTTP push (validation, idempotency, pull feed, audit; JSON + zstd) | {} | {push_rate:.0} |",
        ms(push_time)
    )?;
    writeln!(
        out,
        "| raw PostgreSQL ceiling (`bench_raw_copy_insert`: COPY into a TEMP table, INSERT … SELECT into the RLS table, as the app role, one transaction per 1,000) | {} | {raw_rate:.0} |",
        ms(raw_time)
    )?;
    writeln!(
        out,
        "| **HTTP push / raw ceiling** | | **{:.0} %** (target ≥ 50 %) |",
        100.0 * push_rate / raw_rate
    )?;
    writeln!(
        out,
        "\nOne 1,000-change push: p50 {}, p99 {}. Raw and HTTP batches alternate in rounds of {ROUND}. Per change the push writes two rows (the touch, and its pull-feed entry carrying the record as JSON text, whose key is the change id and so is also the idempotency record) plus one audit row per batch, and the client's JSON encoding and zstd share the same two cores; the raw ceiling writes the touch only.\n",
        ms(percentile(&push_latencies, 50.0)),
        ms(percentile(&push_latencies, 99.0))
    )?;

    writeln!(
        out,
        "Where one 1,000-change push's time goes (medians of {BREAKDOWN_BATCHES} batches, each step timed on its own in the benchmark process):\n"
    )?;
    writeln!(out, "| step | median |\n|---|---|")?;
    for (step, d) in [
        (
            "client: JSON encode + zstd (`sync-client`'s settings)",
            parts.encode,
        ),
        (
            "server: zstd decode + JSON decode of the request",
            parts.decode,
        ),
        (
            "server: `apply_push` + commit in-process (validation, idempotency, inserts, pull feed; no HTTP)",
            parts.apply,
        ),
        (
            "whole HTTP push (from the table above)",
            percentile(&push_latencies, 50.0),
        ),
    ] {
        writeln!(out, "| {step} | {} |", ms(d))?;
    }
    writeln!(out)?;

    // (b) Pull of the 200,000 pushed rows (plus the storm and properties) in pages of 10,000.
    let reader = login(
        &client,
        &bench.slug,
        &bench.field_users[0].0,
        "bench reader",
    )
    .await?;
    let mut pull_times = Vec::new();
    let mut pulled = 0;
    let mut end_cursor = String::new();
    for _ in 0..PULL_RUNS {
        let started = Instant::now();
        let (rows, cursor) = pull_all(&client, &reader.access_token, None, PULL_PAGE).await?;
        pull_times.push(started.elapsed());
        pulled = rows;
        end_cursor = cursor;
    }
    anyhow::ensure!(pulled >= PULL_ROWS, "the pull returned {pulled} rows");
    let pull_time = median(pull_times);
    writeln!(
        out,
        "### Pull ({pulled} rows, pages of {PULL_PAGE}, median of {PULL_RUNS})\n"
    )?;
    writeln!(
        out,
        "| measurement | value |\n|---|---|\n| full pull over HTTP | {} ({:.0} rows/s) |",
        ms(pull_time),
        pulled as f64 / pull_time.as_secs_f64()
    )?;

    // (c) The same pull statement with and without RLS, alternating; then the empty pull round trip.
    let with_rls = PgPoolOptions::new()
        .max_connections(1)
        .connect(&init.app_url)
        .await?;
    let without_rls = PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.superuser_url)
        .await?;
    let (mut rls_times, mut plain_times) = (Vec::new(), Vec::new());
    // Warm both; both must read the same rows.
    let expected_rows = sql_pull(&with_rls, bench.id).await?;
    anyhow::ensure!(
        expected_rows >= PULL_ROWS,
        "the statement read {expected_rows} rows"
    );
    for _ in 0..RLS_RUNS {
        for (pool, times) in [
            (&with_rls, &mut rls_times),
            (&without_rls, &mut plain_times),
        ] {
            let started = Instant::now();
            let rows = sql_pull(pool, bench.id).await?;
            times.push(started.elapsed());
            anyhow::ensure!(
                rows == expected_rows,
                "both paths read {expected_rows} rows, got {rows}"
            );
        }
    }
    let (rls, plain) = (median(rls_times), median(plain_times));
    writeln!(
        out,
        "| pull statement, all pages, as the app role under RLS (SQL only, no HTTP) | {} |",
        ms(rls)
    )?;
    writeln!(
        out,
        "| the identical statement as a superuser, which bypasses RLS (same explicit `tenant_id` filter) | {} |",
        ms(plain)
    )?;
    writeln!(
        out,
        "| **RLS overhead on the pull statement** | **{:+.1} %** (target ≤ 10 %) |",
        100.0 * (rls.as_secs_f64() / plain.as_secs_f64() - 1.0)
    )?;
    let mut empty = Vec::with_capacity(EMPTY_PULLS);
    for _ in 0..EMPTY_PULLS {
        let started = Instant::now();
        let (page, _) = client
            .pull(&reader.access_token, Some(&end_cursor), Some(PULL_PAGE))
            .await?;
        empty.push(started.elapsed());
        anyhow::ensure!(page.changes.is_empty(), "the empty pull returned rows");
    }
    empty.sort();
    writeln!(
        out,
        "| empty pull round trip over HTTP ({EMPTY_PULLS} calls) | p50 {}, p99 {} (target p50 < 5 ms) |\n",
        ms(percentile(&empty, 50.0)),
        ms(percentile(&empty, 99.0))
    )?;

    // (d) 200 devices: log in once each (PBKDF2 by design), then loop push 50 + pull.
    let fleet = Arc::new(fleet);
    let started = Instant::now();
    let mut logins = Vec::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(LOGIN_CONCURRENCY));
    for d in 0..DEVICES {
        let (client, fleet, gate) = (client.clone(), fleet.clone(), gate.clone());
        logins.push(tokio::spawn(async move {
            let _permit = gate.acquire().await;
            let t = Instant::now();
            let email = &fleet.field_users[d % CREWS].0;
            let pair = login(&client, &fleet.slug, email, &format!("laptop {d}")).await;
            (pair, t.elapsed())
        }));
    }
    let mut pairs = Vec::new();
    let mut login_latencies = Vec::new();
    for l in logins {
        let (pair, took) = l.await?;
        pairs.push(pair?);
        login_latencies.push(took);
    }
    let login_phase = started.elapsed();
    login_latencies.sort();
    // Every laptop starts synced (its first sync is not part of the loop).
    let mut cursors = Vec::new();
    for pair in &pairs {
        cursors.push(
            pull_all(&client, &pair.access_token, None, PULL_PAGE)
                .await?
                .1,
        );
    }
    let devices: Vec<(TokenPair, String)> = pairs.into_iter().zip(cursors).collect();
    let (closed, devices) = device_loops(&client, &fleet, devices, LOOP_ITERATIONS, None).await?;
    let think = paced_think();
    let paced_label = format!(
        "{} s between syncs (the engine's debounce, its fastest cadence)",
        think.as_secs_f64()
    );
    let (paced, _) = device_loops(&client, &fleet, devices, PACED_ITERATIONS, Some(think)).await?;
    let (hwm, rss) = memory_mib(pid)?;
    writeln!(
        out,
        "### {DEVICES} concurrent devices ({CREWS} crews of {} laptops; each loops: push {LOOP_TOUCHES} touches, then pull its crew's new rows)\n\nTwo readings of \"device loops\". **Realistic:** {PACED_ITERATIONS} iterations per device at the sync engine's own fastest cadence — it syncs {} s (its debounce) after a local write, otherwise once a minute on its timer — so each laptop pauses {} s between syncs, starts spread evenly over one pause; that is still {LOOP_TOUCHES} touches per laptop every {} s, far more than a crew logs. **Saturating:** {LOOP_ITERATIONS} iterations per device with no pause at all (a closed loop: 200 requests are always in flight, so latency is queueing — about in-flight requests ÷ throughput — whatever the per-request cost; the benchmark client shares the same two cores).\n",
        DEVICES / CREWS,
        think.as_secs_f64(),
        think.as_secs_f64(),
        think.as_secs_f64()
    )?;
    writeln!(out, "| measurement | value |\n|---|---|")?;
    writeln!(
        out,
        "| login phase: {DEVICES} password logins, {LOGIN_CONCURRENCY} at a time (PBKDF2-HMAC-SHA256 × 600,000 each, by design; the server verifies one per core at a time) | {} total; per login p50 {}, p99 {} |",
        ms(login_phase),
        ms(percentile(&login_latencies, 50.0)),
        ms(percentile(&login_latencies, 99.0))
    )?;
    for (label, stats) in [
        (paced_label.as_str(), &paced),
        ("no pause (closed loop, saturating)", &closed),
    ] {
        let mut all: Vec<Duration> = stats.push.iter().chain(&stats.pull).copied().collect();
        all.sort();
        writeln!(
            out,
            "| {label}: throughput | {} requests in {} ({:.0} requests/s, {:.0} pushed changes/s, {} rows pulled) |",
            all.len(),
            ms(stats.elapsed),
            all.len() as f64 / stats.elapsed.as_secs_f64(),
            stats.pushed as f64 / stats.elapsed.as_secs_f64(),
            stats.rows
        )?;
        writeln!(
            out,
            "| {label}: push of {LOOP_TOUCHES} / pull | p50 {} / {}, p99 {} / {} |",
            ms(percentile(&stats.push, 50.0)),
            ms(percentile(&stats.pull, 50.0)),
            ms(percentile(&stats.push, 99.0)),
            ms(percentile(&stats.pull, 99.0))
        )?;
        writeln!(
            out,
            "| **{label}: all requests** | **p50 {}, p99 {}** (target p99 < 250 ms); errors **{}** |",
            ms(percentile(&all, 50.0)),
            ms(percentile(&all, 99.0)),
            stats.errors
        )?;
    }
    writeln!(
        out,
        "| server memory (`/proc/<server pid>/status` of the child process) | **peak (VmHWM) {hwm:.1} MiB** over the whole run (target < 200 MB); {rss:.1} MiB resident at the end |"
    )?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    writeln!(
        out,
        "\nLoad average at the end of the run (other work on the machine adds noise): {}.",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )?;
    drop(server);
    app.close().await;
    control.close().await;
    Ok(out)
}

/// Batches timed step by step for the push breakdown.
const BREAKDOWN_BATCHES: usize = 15;

/// Medians of the steps of one push, each timed on its own.
struct PushParts {
    encode: Duration,
    decode: Duration,
    apply: Duration,
}

/// Times the steps of a 1,000-change push separately: the client's encoding, the server's decoding
/// and the server's apply with its commit, in-process on the application pool (no HTTP).
async fn push_breakdown(
    app: &AppPool,
    bench: &Tenant,
    pusher: &TokenPair,
    clock: &mut HlcClock,
) -> anyhow::Result<PushParts> {
    let (mut encode, mut decode, mut apply) = (Vec::new(), Vec::new(), Vec::new());
    // The first batch prepares the statements on the connection and is not counted.
    for b in 0..=BREAKDOWN_BATCHES {
        let rows = touches(bench, pusher, BATCH, b);
        let changes = as_changes(&rows, pusher.device_id, clock);
        let started = Instant::now();
        let json = serde_json::to_vec(&sync_protocol::PushRequest {
            changes: changes.clone(),
        })?;
        let body = zstd::bulk::compress(&json, sync_client::PUSH_ZSTD_LEVEL)?;
        encode.push(started.elapsed());
        let started = Instant::now();
        let plain = zstd::bulk::decompress(&body, json.len())?;
        let request: sync_protocol::PushRequest = serde_json::from_slice(&plain)?;
        decode.push(started.elapsed());
        let ctx = server_store::PushContext {
            user_id: pusher.user_id,
            device_id: pusher.device_id,
            role: pusher.role,
            crew_id: bench.field_users.first().map(|(_, crew)| *crew),
            now_ms: Timestamp::now().millis(),
        };
        let started = Instant::now();
        let mut tx = app.begin_tenant(bench.id).await?;
        match tx.apply_push(&ctx, &request.changes).await? {
            server_store::PushOutcome::Applied(_) => tx.commit().await?,
            server_store::PushOutcome::Refused(r) => bail!("refused in the breakdown: {r:?}"),
        }
        if b > 0 {
            apply.push(started.elapsed());
        }
    }
    Ok(PushParts {
        encode: median(encode),
        decode: median(decode),
        apply: median(apply),
    })
}

/// Latencies and counts of one device-loop phase.
struct LoopStats {
    push: Vec<Duration>,
    pull: Vec<Duration>,
    errors: usize,
    rows: usize,
    pushed: usize,
    elapsed: Duration,
}

/// Every device loops `iterations` times: push 50 touches, then pull until its feed is drained. With
/// `think`, each device pauses that long between iterations and the starts are spread over one pause;
/// without, all start together at a barrier. Returns the stats and each device's (tokens, cursor).
async fn device_loops(
    client: &SyncClient,
    fleet: &Arc<Tenant>,
    devices: Vec<(TokenPair, String)>,
    iterations: usize,
    think: Option<Duration>,
) -> anyhow::Result<(LoopStats, Vec<(TokenPair, String)>)> {
    let count = devices.len();
    let barrier = Arc::new(tokio::sync::Barrier::new(count));
    let started = Instant::now();
    let mut loops = Vec::new();
    for (d, (pair, cursor)) in devices.into_iter().enumerate() {
        let (client, fleet, barrier) = (client.clone(), fleet.clone(), barrier.clone());
        loops.push(tokio::spawn(async move {
            let mut clock = HlcClock::new(
                Hlc::node_of(pair.device_id),
                sync_protocol::MAX_CLOCK_SKEW_MS,
            );
            let (mut push_l, mut pull_l, mut errors, mut rows) =
                (Vec::new(), Vec::new(), 0usize, 0usize);
            let mut cursor = cursor;
            barrier.wait().await;
            if let Some(think) = think {
                tokio::time::sleep(think.mul_f64(d as f64 / count as f64)).await;
            }
            for i in 0..iterations {
                if i > 0
                    && let Some(think) = think
                {
                    tokio::time::sleep(think).await;
                }
                let batch = as_changes(
                    &touches(&fleet, &pair, LOOP_TOUCHES, i * LOOP_TOUCHES),
                    pair.device_id,
                    &mut clock,
                );
                let t = Instant::now();
                match client.push(&pair.access_token, &batch).await {
                    Ok((PushOutcome::Applied(_), _)) => {}
                    _ => errors += 1,
                }
                push_l.push(t.elapsed());
                loop {
                    let t = Instant::now();
                    match client
                        .pull(&pair.access_token, Some(&cursor), Some(PULL_PAGE))
                        .await
                    {
                        Ok((page, _)) => {
                            pull_l.push(t.elapsed());
                            rows += page.changes.len();
                            cursor = page.next_cursor;
                            if !page.has_more {
                                break;
                            }
                        }
                        Err(_) => {
                            pull_l.push(t.elapsed());
                            errors += 1;
                            break;
                        }
                    }
                }
            }
            (push_l, pull_l, errors, rows, pair, cursor)
        }));
    }
    let mut stats = LoopStats {
        push: Vec::new(),
        pull: Vec::new(),
        errors: 0,
        rows: 0,
        pushed: count * iterations * LOOP_TOUCHES,
        elapsed: Duration::ZERO,
    };
    let mut devices = Vec::with_capacity(count);
    for l in loops {
        let (p, q, e, r, pair, cursor) = l.await?;
        stats.push.extend(p);
        stats.pull.extend(q);
        stats.errors += e;
        stats.rows += r;
        devices.push((pair, cursor));
    }
    stats.elapsed = started.elapsed();
    stats.push.sort();
    stats.pull.sort();
    Ok((stats, devices))
}

async fn server_version(url: &str) -> anyhow::Result<String> {
    let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
    let v: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    Ok(v.split_whitespace().next().unwrap_or("?").to_owned())
}
