//! The local store benchmark: SQLCipher against plain SQLite in the same run, same schema, same code
//! path (`TenantStore::open_plain_for_benchmark` is the reference). Measures bulk inserts of journey
//! touches with their outbox rows, the ranked filtered property query, and open + unlock with the KDF's
//! share of it. Temp dirs only; nothing persists.

use std::fmt::Write as _;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use domain::*;
use local_store::{CreatedTenant, DataDir, NewTenant, Passphrase, PropertyQuery, TenantStore};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sync_protocol::{ChangeOp, Entity, PulledChange};

const TOUCHES: usize = 100_000;
const SMALL_TX: usize = 1_000;
const PROPERTIES: usize = 50_000;
const QUERY_RUNS_PER_MIX: usize = 60;
/// Odd, for a true median; more than the other suites' repeats because the VMs this runs on vary by a
/// quarter from one run to the next, and the ratio target sits within that.
const INSERT_REPEATS: usize = 9;
const UNLOCK_REPEATS: usize = 9;
const PASSPHRASE: &str = "benchmark passphrase";
const STREETS: &[&str] = &[
    "Elm",
    "Oak",
    "Maple",
    "Cedar",
    "Pine",
    "Birch",
    "Walnut",
    "Hickory",
    "Willow",
    "Aspen",
    "Spruce",
    "Poplar",
    "Chestnut",
    "Magnolia",
    "Dogwood",
    "Sycamore",
    "Juniper",
    "Laurel",
    "Cypress",
    "Hawthorn",
    "Redbud",
    "Linden",
    "Alder",
    "Beech",
    "Hemlock",
    "Holly",
    "Larch",
    "Mulberry",
    "Pecan",
    "Sassafras",
];
const SUFFIXES: &[&str] = &["Street", "Avenue", "Road", "Lane", "Court", "Drive"];

/// Which store a measurement ran on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// SQLCipher with the page crypto the app uses (`sqlcipher-provider`).
    Cipher,
    /// SQLCipher with the app's page crypto, but every page encrypted and then signed on the writing
    /// thread (no hashing on a second core): what the second core adds.
    CipherOneThread,
    /// SQLCipher with its stock OpenSSL provider, for comparison.
    CipherStock,
    Plain,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Cipher => "SQLCipher",
            Kind::CipherOneThread => "SQLCipher, signed on the writing thread",
            Kind::CipherStock => "SQLCipher, stock provider",
            Kind::Plain => "plain SQLite",
        }
    }
}

/// A new, empty store of `kind` in `dir` (also the profiling examples').
pub fn open_fresh(kind: Kind, dir: &Path) -> anyhow::Result<TenantStore> {
    Ok(match kind {
        Kind::Cipher | Kind::CipherOneThread | Kind::CipherStock => {
            create_encrypted(kind, dir)?.store
        }
        Kind::Plain => TenantStore::open_plain_for_benchmark(&dir.join("plain.db"))?,
    })
}

/// A fresh encrypted tenant file in `dir`, keyed with `kind`'s page crypto, with its recovery key.
fn create_encrypted(kind: Kind, dir: &Path) -> anyhow::Result<CreatedTenant> {
    // Process-wide, for connections keyed from now on: each encrypted run says which it measures.
    local_store::use_stock_page_crypto(kind == Kind::CipherStock)?;
    local_store::sign_pages_alongside(kind == Kind::Cipher);
    let passphrase = Passphrase::new(PASSPHRASE);
    Ok(DataDir::new(dir)?.create_tenant(
        NewTenant {
            tenant_id: None,
            name: "Benchmark Roofing",
            user: "bench",
            passphrase: &passphrase,
        },
        Timestamp::now(),
    )?)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[((sorted.len() * p) / 100).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn rate(rows: usize, d: Duration) -> f64 {
    rows as f64 / d.as_secs_f64()
}

/// The 100,000 touches the insert benchmark logs (also `examples/insert_profile.rs`'s), on 2,000 properties.
pub fn touches(
    storm: StormId,
    user: UserId,
    device: DeviceId,
    now: Timestamp,
    rng: &mut ChaCha8Rng,
) -> Vec<JourneyTouch> {
    let properties: Vec<PropertyId> = (0..2_000).map(|_| PropertyId::generate()).collect();
    (0..TOUCHES)
        .map(|i| JourneyTouch {
            id: TouchId::generate(),
            property_id: properties[i % properties.len()],
            storm_id: storm,
            user_id: user,
            device_id: device,
            channel: Channel::ALL[rng.gen_range(0..Channel::ALL.len())],
            result: TouchResult::ALL[rng.gen_range(0..TouchResult::ALL.len())],
            notes: format!(
                "visit {i}: owner reports granule loss on the north slope, gutters dented"
            ),
            // Touches are logged as they happen: a week offline is a week of increasing times.
            occurred_at: now.plus_millis(-((TOUCHES - i) as i64) * 6_000),
        })
        .collect()
}

/// CPU time of every thread of this process so far (the sum of Linux's `/proc/self/task/*/schedstat`,
/// so a helper thread's work counts, e.g. the keyed page crypto's signing on a second core); `None`
/// elsewhere. Threads that have exited are not counted: measure across a span in which none exits.
pub fn process_cpu_time() -> Option<Duration> {
    let mut total = Duration::ZERO;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(text) = std::fs::read_to_string(task.ok()?.path().join("schedstat")) else {
            // The thread exited while being listed.
            continue;
        };
        total += Duration::from_nanos(text.split_whitespace().next()?.parse().ok()?);
    }
    Some(total)
}

/// Wall time and (where the platform tells) CPU time of one run, and the size of the WAL it left.
#[derive(Clone, Copy)]
struct Timing {
    wall: Duration,
    cpu: Option<Duration>,
    /// The write-ahead log's size after the run: for one transaction, every page it wrote (each page
    /// is encrypted once per frame written, so this is what the encryption is proportional to).
    wal_bytes: u64,
}

/// Medians of several runs of one configuration.
struct InsertFigures {
    wall: Duration,
    cpu: Option<Duration>,
    wal_bytes: u64,
}

impl InsertFigures {
    fn of(runs: &[Timing]) -> Self {
        let cpu: Option<Vec<Duration>> = runs.iter().map(|t| t.cpu).collect();
        let mut wal: Vec<u64> = runs.iter().map(|t| t.wal_bytes).collect();
        wal.sort_unstable();
        Self {
            wall: median(runs.iter().map(|t| t.wall).collect()),
            cpu: cpu.map(median),
            wal_bytes: wal[wal.len() / 2],
        }
    }
}

/// Inserts 100,000 touches (and their outbox rows) in transactions of `chunk` rows on a fresh store.
fn insert_run(kind: Kind, chunk: usize, rng: &mut ChaCha8Rng) -> anyhow::Result<Timing> {
    let dir = tempfile::tempdir()?;
    let mut store = open_fresh(kind, dir.path())?;
    let now = Timestamp::now();
    let rows = touches(
        StormId::generate(),
        UserId::generate(),
        store.device_id(),
        now,
        rng,
    );
    let cpu_started = process_cpu_time();
    let started = Instant::now();
    for batch in rows.chunks(chunk) {
        store.add_touches(batch)?;
    }
    let elapsed = started.elapsed();
    let cpu = process_cpu_time()
        .zip(cpu_started)
        .map(|(end, start)| end.saturating_sub(start));
    let mut wal_path = store.path().as_os_str().to_owned();
    wal_path.push("-wal");
    let wal_bytes = std::fs::metadata(&wal_path).map_or(0, |m| m.len());
    anyhow::ensure!(
        store.pending_counts()?.pending == TOUCHES as i64,
        "every touch has its outbox row"
    );
    Ok(Timing {
        wall: elapsed,
        cpu,
        wal_bytes,
    })
}

struct Fixture {
    storm: StormId,
    territories: Vec<TerritoryId>,
}

/// 50,000 properties of one storm: 80 % scored, 30 % with a decision, all in one of 8 territories.
fn populate(store: &mut TenantStore, seed: u64) -> anyhow::Result<Fixture> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let now = Timestamp::now();
    let storm = Storm {
        id: StormId::generate(),
        event_id: "BENCH-1".into(),
        name: "Benchmark hail".into(),
        started_at: now.plus_millis(-86_400_000),
        ended_at: None,
        hail_size_in: 2.0,
        wind_mph: 70.0,
        affected_area: "bench county".into(),
        status: StormStatus::Active,
    };
    store.add_storm(&storm)?;
    let properties: Vec<Property> = (0..PROPERTIES)
        .map(|i| {
            // One street in 5,000 is "Zebrawood": the rare-term search must scan the storm.
            let street = if i % 5_000 == 7 {
                "Zebrawood"
            } else {
                STREETS[rng.gen_range(0..STREETS.len())]
            };
            Property {
                id: PropertyId::generate(),
                storm_id: storm.id,
                external_id: format!("B-{i}"),
                address: format!(
                    "{} {street} {}, Hailville",
                    rng.gen_range(1..9_999),
                    SUFFIXES[rng.gen_range(0..SUFFIXES.len())]
                ),
                latitude: 35.0 + rng.gen_range(0.0..1.0),
                longitude: -97.0 - rng.gen_range(0.0..1.0),
                roof_age_years: Some(rng.gen_range(0.0..40.0)),
                roof_material: Some(RoofMaterial::AsphaltShingle),
                square_feet: Some(rng.gen_range(900.0..4_000.0)),
                home_value: Some(Cents(rng.gen_range(10_000_000..90_000_000))),
                hail_size_in: Some(rng.gen_range(0.5..3.0)),
                distance_to_core_km: Some(rng.gen_range(0.0..20.0)),
                prior_claims: rng.gen_range(0..3),
                owner_name: Some(format!("Owner {i}")),
                owner_phone: None,
                owner_email: None,
                status: PropertyStatus::ALL[rng.gen_range(0..3)],
            }
        })
        .collect();
    store.import_properties(&properties)?;
    let territories: Vec<TerritoryId> = (0..8).map(|_| TerritoryId::generate()).collect();
    let decider = UserId::generate();
    let mut page = Vec::with_capacity(PROPERTIES * 3);
    let pulled = |entity: Entity, id: uuid::Uuid, record: serde_json::Value| PulledChange {
        entity,
        entity_id: id,
        op: ChangeOp::Insert,
        record,
        field_clocks: None,
    };
    for (i, p) in properties.iter().enumerate() {
        if rng.gen_bool(0.8) {
            let uplift: f64 = rng.gen_range(-0.1..0.5);
            let score = UpliftScore {
                property_id: p.id,
                storm_id: storm.id,
                uplift,
                p_treat: 0.5,
                p_hold: (0.5 - uplift).clamp(0.0, 1.0),
                model_version: "bench-1".into(),
                trained_at: now,
                data_watermark: 1,
            };
            page.push(pulled(
                Entity::UpliftScore,
                p.id.0,
                serde_json::to_value(&score)?,
            ));
        }
        let assignment = Assignment {
            id: AssignmentId::generate(),
            storm_id: storm.id,
            property_id: p.id,
            territory_id: Some(territories[i % territories.len()]),
            crew_id: None,
            user_id: None,
        };
        page.push(pulled(
            Entity::Assignment,
            assignment.id.0,
            serde_json::to_value(&assignment)?,
        ));
        if rng.gen_bool(0.3) {
            let decision = PolicyDecision {
                id: DecisionId::generate(),
                property_id: p.id,
                storm_id: storm.id,
                decision: if rng.gen_bool(0.7) {
                    Decision::Treat
                } else {
                    Decision::Hold
                },
                mode: PolicyMode::Moderate,
                uplift_score: None,
                model_version: None,
                reason: None,
                is_override: false,
                decided_by: decider,
                decided_at: now,
            };
            page.push(pulled(
                Entity::PolicyDecision,
                decision.id.0,
                serde_json::to_value(&decision)?,
            ));
        }
    }
    let report = store.apply_pulled_page(&page, "bench", 1)?;
    anyhow::ensure!(
        report.skipped.is_empty(),
        "benchmark records are valid: {:?}",
        report.skipped.first()
    );
    Ok(Fixture {
        storm: storm.id,
        territories,
    })
}

/// The query mix: what a canvasser does with the list during a day.
fn query_mix(fixture: &Fixture) -> Vec<(&'static str, PropertyQuery)> {
    let base = PropertyQuery {
        storm_id: Some(fixture.storm),
        limit: 50,
        ..PropertyQuery::default()
    };
    vec![
        ("top 50 of the storm", base.clone()),
        (
            "page 20 (offset 1,000)",
            PropertyQuery {
                offset: 1_000,
                ..base.clone()
            },
        ),
        (
            "status = new",
            PropertyQuery {
                status: Some(PropertyStatus::New),
                ..base.clone()
            },
        ),
        (
            "decision = treat",
            PropertyQuery {
                decision: Some(Decision::Treat),
                ..base.clone()
            },
        ),
        (
            "territory",
            PropertyQuery {
                territory_id: Some(fixture.territories[3]),
                ..base.clone()
            },
        ),
        (
            "search \"elm\"",
            PropertyQuery {
                search: Some("elm".into()),
                ..base.clone()
            },
        ),
        (
            "search \"zebrawood\" (rare: full scan)",
            PropertyQuery {
                search: Some("zebrawood".into()),
                ..base.clone()
            },
        ),
        (
            "territory + treat + search \"oak\"",
            PropertyQuery {
                territory_id: Some(fixture.territories[1]),
                decision: Some(Decision::Treat),
                search: Some("oak".into()),
                ..base
            },
        ),
    ]
}

struct QueryFigures {
    per_mix: Vec<(&'static str, Duration, Duration, usize)>,
    overall_p50: Duration,
    overall_p95: Duration,
}

fn measure_queries(store: &TenantStore, fixture: &Fixture) -> anyhow::Result<QueryFigures> {
    let mix = query_mix(fixture);
    let mut all = Vec::new();
    let mut per_mix = Vec::new();
    for (name, query) in &mix {
        // One warm-up: the first run reads (and decrypts) the pages into the cache.
        let rows = store.ranked_properties(query)?.len();
        let mut samples = Vec::with_capacity(QUERY_RUNS_PER_MIX);
        for _ in 0..QUERY_RUNS_PER_MIX {
            let started = Instant::now();
            let found = store.ranked_properties(query)?;
            samples.push(started.elapsed());
            anyhow::ensure!(found.len() == rows, "stable results");
        }
        all.extend(samples.iter().copied());
        samples.sort();
        per_mix.push((
            *name,
            percentile(&samples, 50),
            percentile(&samples, 95),
            rows,
        ));
    }
    all.sort();
    Ok(QueryFigures {
        per_mix,
        overall_p50: percentile(&all, 50),
        overall_p95: percentile(&all, 95),
    })
}

/// PBKDF2 alone, exactly as an unlock derives the wrapping key.
fn kdf_once() -> Duration {
    let iterations = NonZeroU32::new(local_store::MIN_PBKDF2_ITERATIONS).unwrap_or(NonZeroU32::MIN);
    let mut out = [0u8; 32];
    let started = Instant::now();
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &[7u8; 16],
        PASSPHRASE.as_bytes(),
        &mut out,
    );
    started.elapsed()
}

/// Runs the store benchmark and returns its Markdown section.
pub fn run() -> anyhow::Result<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5702_0001);

    // Inserts: alternate the two stores so neither always runs on a warmer disk cache or a quieter machine.
    let mut runs: [[Vec<Timing>; 2]; 4] = Default::default();
    for _ in 0..INSERT_REPEATS {
        for (k, kind) in [
            Kind::Plain,
            Kind::Cipher,
            Kind::CipherStock,
            Kind::CipherOneThread,
        ]
        .into_iter()
        .enumerate()
        {
            runs[k][0].push(
                insert_run(kind, TOUCHES, &mut rng)
                    .with_context(|| format!("{} single-transaction insert", kind.label()))?,
            );
            runs[k][1].push(
                insert_run(kind, SMALL_TX, &mut rng)
                    .with_context(|| format!("{} 1,000-row inserts", kind.label()))?,
            );
        }
    }
    // Everything after this (and any suite run after this one) uses the app's page crypto.
    local_store::use_stock_page_crypto(false)?;
    local_store::sign_pages_alongside(true);
    let figures = runs.map(|per_kind| per_kind.map(|r| InsertFigures::of(&r)));
    let insert_load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    // Queries over 50,000 properties, and open + unlock of that file.
    let cipher_dir = tempfile::tempdir()?;
    let plain_dir = tempfile::tempdir()?;
    // Each store is measured while it is the only one open, as in the app (one tenant file per
    // process): with a second large connection open in the process, SQLCipher reads were measured
    // an order of magnitude slower.
    let CreatedTenant {
        store: mut cipher,
        recovery_key,
        ..
    } = create_encrypted(Kind::Cipher, cipher_dir.path())?;
    let tenant = cipher.tenant_id();
    let cipher_fixture = populate(&mut cipher, 11)?;
    let cipher_queries = measure_queries(&cipher, &cipher_fixture)?;
    drop(cipher);
    let mut plain = open_fresh(Kind::Plain, plain_dir.path())?;
    let plain_fixture = populate(&mut plain, 11)?;
    let plain_queries = measure_queries(&plain, &plain_fixture)?;
    drop(plain);

    let data_dir = DataDir::new(cipher_dir.path())?;
    // The passphrase unlock, the same open with the recovery key (everything but the key derivation and
    // unwrap) and PBKDF2 alone, interleaved and taking turns to go first (closing a store leaves file
    // work behind it); the best of each is the least disturbed by other work on the machine. The KDF's
    // share is the unlock less the recovery-key open: two whole opens, so a part never outweighs its whole.
    let mut unlock = Duration::MAX;
    let mut without_kdf = Duration::MAX;
    let mut kdf = Duration::MAX;
    for repeat in 0..UNLOCK_REPEATS {
        for turn in 0..3 {
            match (repeat + turn) % 3 {
                0 => kdf = kdf.min(kdf_once()),
                1 => {
                    let started = Instant::now();
                    let store =
                        data_dir.open(tenant, Some("bench"), &Passphrase::new(PASSPHRASE))?;
                    unlock = unlock.min(started.elapsed());
                    drop(store);
                }
                _ => {
                    let started = Instant::now();
                    let store = data_dir.open_with_recovery_key(tenant, &recovery_key)?;
                    without_kdf = without_kdf.min(started.elapsed());
                    drop(store);
                }
            }
        }
    }
    let mut plain_opens = Vec::new();
    for _ in 0..UNLOCK_REPEATS {
        let started = Instant::now();
        let store = TenantStore::open_plain_for_benchmark(&plain_dir.path().join("plain.db"))?;
        plain_opens.push(started.elapsed());
        drop(store);
    }
    let plain_open = median(plain_opens);

    let mut out = String::new();
    writeln!(
        out,
        "Local tenant store (`local-store`): SQLCipher 4 against plain SQLite in the same run, same schema, same code path"
    )?;
    writeln!(
        out,
        "(the plain store is `TenantStore::open_plain_for_benchmark`, through SQLite's own file layer; the encrypted store writes its log through `sqlcipher-provider`'s `held_wal`). Medians of {INSERT_REPEATS} runs for inserts, each on a fresh file.\n"
    )?;
    writeln!(
        out,
        "### Inserts: {TOUCHES} journey touches, each with its outbox row\n"
    )?;
    writeln!(
        out,
        "| transactions | plain SQLite | SQLCipher | SQLCipher / plain throughput (wall) | same, on the process's CPU time | SQLCipher, signed on the writing thread | one thread / plain (wall) | SQLCipher, stock provider | stock / plain (wall) | WAL left (plain / SQLCipher) |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|")?;
    for (mode, label) in [
        (0, "one transaction".to_owned()),
        (1, format!("{SMALL_TX}-row transactions")),
    ] {
        let (plain, cipher, stock, one_thread) = (
            &figures[0][mode],
            &figures[1][mode],
            &figures[2][mode],
            &figures[3][mode],
        );
        let cpu_ratio = plain.cpu.zip(cipher.cpu).map_or_else(
            || "n/a".to_owned(),
            |(p, c)| {
                format!(
                    "{:.0} % ({} vs {} CPU)",
                    p.as_secs_f64() / c.as_secs_f64() * 100.0,
                    ms(p),
                    ms(c)
                )
            },
        );
        writeln!(
            out,
            "| {label} | {} ({:.0} rows/s) | {} ({:.0} rows/s) | **{:.0} %** | {cpu_ratio} | {} | {:.0} % | {} | {:.0} % | {:.1} / {:.1} MiB |",
            ms(plain.wall),
            rate(TOUCHES, plain.wall),
            ms(cipher.wall),
            rate(TOUCHES, cipher.wall),
            plain.wall.as_secs_f64() / cipher.wall.as_secs_f64() * 100.0,
            ms(one_thread.wall),
            plain.wall.as_secs_f64() / one_thread.wall.as_secs_f64() * 100.0,
            ms(stock.wall),
            plain.wall.as_secs_f64() / stock.wall.as_secs_f64() * 100.0,
            plain.wal_bytes as f64 / 1_048_576.0,
            cipher.wal_bytes as f64 / 1_048_576.0
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "Target: SQLCipher insert throughput ≥ 85 % of plain SQLite's (untuned it was about 64 %). Touches are logged in time order, on 2,000 properties."
    )?;
    writeln!(
        out,
        "Load average after the inserts (other work on the 2 cores makes wall times noisy; CPU times much less so): {}.",
        insert_load
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )?;
    writeln!(
        out,
        "Wall time includes the same file-system work for both stores (WAL appends, checkpoint fsyncs); CPU time of all the process's threads (the inserting thread and the keyed page crypto's signing helper) counts what encryption costs in CPU, including the helper's spinning between pages; the helper makes the insert faster in wall time at a cost in CPU time."
    )?;
    writeln!(
        out,
        "That cost is proportional to the bytes written: every page written is AES-256-CBC encrypted and HMAC-SHA512 signed. With 1,000-row transactions each commit"
    )?;
    writeln!(
        out,
        "writes again the leaf pages a previous commit already wrote (the last hour's entries of the touches' (hour, property) index, the last pages of each table), so more bytes are encrypted per row than in one large transaction.\n"
    )?;
    writeln!(
        out,
        "### Ranked, filtered property query over {PROPERTIES} properties (page of 50)\n"
    )?;
    writeln!(
        out,
        "80 % scored, 30 % with a decision, 8 territories. {QUERY_RUNS_PER_MIX} runs per query after one warm-up run.\n"
    )?;
    writeln!(
        out,
        "| query | rows | plain p50 | plain p95 | SQLCipher p50 | SQLCipher p95 |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|")?;
    for ((name, pp50, pp95, rows), (_, cp50, cp95, _)) in
        plain_queries.per_mix.iter().zip(&cipher_queries.per_mix)
    {
        writeln!(
            out,
            "| {name} | {rows} | {} | {} | {} | {} |",
            ms(*pp50),
            ms(*pp95),
            ms(*cp50),
            ms(*cp95)
        )?;
    }
    writeln!(
        out,
        "| **all of the mix** | | **{}** | **{}** | **{}** | **{}** |\n",
        ms(plain_queries.overall_p50),
        ms(plain_queries.overall_p95),
        ms(cipher_queries.overall_p50),
        ms(cipher_queries.overall_p95)
    )?;
    writeln!(
        out,
        "### Open + unlock ({PROPERTIES}-property file, best of {UNLOCK_REPEATS})\n"
    )?;
    writeln!(out, "| | time |")?;
    writeln!(out, "|---|---|")?;
    writeln!(
        out,
        "| unlock (key file, PBKDF2-HMAC-SHA256 × {}, AES-GCM unwrap, PRAGMA key, checks, pragmas) | {} |",
        local_store::MIN_PBKDF2_ITERATIONS,
        ms(unlock)
    )?;
    writeln!(
        out,
        "| the same open with the recovery key (no key derivation or unwrap) | {} |",
        ms(without_kdf)
    )?;
    let derivation = unlock.saturating_sub(without_kdf);
    writeln!(
        out,
        "| so the key derivation and unwrap | {} (**{:.0} %** of unlock) |",
        ms(derivation),
        derivation.as_secs_f64() / unlock.as_secs_f64() * 100.0
    )?;
    writeln!(
        out,
        "| PBKDF2 alone, the same call outside the store (reference) | {} |",
        ms(kdf)
    )?;
    writeln!(
        out,
        "| plain SQLite open (reference) | {} |\n",
        ms(plain_open)
    )?;
    writeln!(out, "### Tuning chosen, and why\n")?;
    writeln!(
        out,
        "- **Page size stays 4096** (SQLCipher 4's default): changing it would stop a stock SQLCipher shell from opening the file with only the recovery key."
    )?;
    writeln!(
        out,
        "- **`PRAGMA cipher_memory_security = OFF`**: wiping every freed buffer costs insert throughput; the keys it would protect are zeroized by our own code (`zeroize`)."
    )?;
    writeln!(
        out,
        "- **WAL + `synchronous = NORMAL`** (both stores): one fsync per checkpoint instead of per commit; an application crash loses nothing committed, a power cut at most the last commits, never the file."
    )?;
    writeln!(
        out,
        "- **Prepared-statement cache** (`prepare_cached`, 64 statements): the insert, outbox and clock statements are parsed once per connection."
    )?;
    writeln!(
        out,
        "- **One outbox statement per batch, each payload serialised once** (`add_touches`): the record goes straight to its JSON text instead of through a JSON tree. This lowers both stores' CPU per row, so the encryption's fixed cost per written page is a larger share of what remains: the ratio above is the honest one for the faster code."
    )?;
    writeln!(
        out,
        "- **An append-only record's outbox row refers to the record instead of copying it** (local migration 0005): a touch, outcome or decision never changes after its insert, so its change's payload is read back from the record when the engine reads the outbox (and copied into the outbox row first if the record is ever deleted). That JSON copy was about 600 of the ~1,300 bytes written per touch; pending changes are read in `seq` order (the outbox holds only this device's writes, whose clock never goes back), which also drops the `(state, hlc)` index."
    )?;
    writeln!(
        out,
        "- **Outbox ids as 16-byte blobs, this device's id as NULL** (local migration 0006): ~116 bytes less per change with its index entries. The WAL column above is what one transaction wrote: every frame in it was encrypted once."
    )?;
    writeln!(
        out,
        "- **Field clocks stored grouped by clock** (local migration 0004): a record written in one go keeps one clock text instead of one per field, about 600 bytes less per pulled property, so fewer pages to encrypt on a first sync."
    )?;
    writeln!(
        out,
        "- **The rank column is kept by the statements that write scores and properties, not by row triggers** (migration 0004): a trigger makes SQLite keep a statement journal of every page a write touches; the decision triggers and the delete triggers stay."
    )?;
    writeln!(
        out,
        "- **Touch ids as 16-byte blobs, and `journey_touches_by_property` on the property alone** (local migration 0007): a touch's five ids were 36-character text; as blobs the row is ~100 bytes shorter and its id and property index entries about half as long (the timeline sorts a property's touches in memory, so the index no longer repeats the time). That index is where touches land at random places: each commit rewrites, and encrypts, every leaf page of it that it reaches, so its size is what 1,000-row transactions mostly pay for. Outcomes and decisions (a few a day) keep text ids."
    )?;
    writeln!(
        out,
        "- **One random read per batch for its change ids** (`add_touches`): each change id is still a UUIDv7 with 74 random bits, but the batch's bits come from one call to the system's random source instead of one call (and a lock) per id; the batch's ids are sorted (UUIDv7's monotonic form within a millisecond), so the outbox's `change_id` index is appended to instead of written at random places."
    )?;
    writeln!(
        out,
        "- **Multi-row `INSERT` statements** (`local-store` `multi_row`, local writes and pulled pages): a batch's touches and its outbox rows go in one statement per 64 rows instead of one statement per row each. Every statement execution opens and closes a cursor per table and index and goes through a bind/step/reset round; that was about 40 % of a 100,000-touch insert's CPU."
    )?;
    writeln!(
        out,
        "- **Touches indexed by (UTC day, property)** (local migration 0009), one index instead of `journey_touches_by_property` and `journey_touches_by_time`: keyed by property alone, each 1,000-touch commit landed at random places across every property's entries and rewrote (and encrypted) most of that index's leaf pages, about 70 % of the frames the commit wrote; keyed by day first, a commit of today's touches lands among today's entries. A property's timeline walks the distinct days (one seek each), a crew's day reads one value of the first column."
    )?;
    writeln!(
        out,
        "- **Touches indexed by (UTC hour, property), and no `outbox_by_record` entry for an append-only insert** (local migration 0011). Counted per B-tree from the write-ahead log of 100,000 touches in 1,000-row commits (each frame's page mapped to its B-tree with SQLite's `dbstat`: `crates/benchmarks/scripts/wal_frames_by_btree.py`), each commit rewrote about 23 pages of the (day, property) index, because a commit's touches land all over the day's entries; by hour, they land among the last hour or two's entries (about 5 a commit). The insert change of a touch, outcome or decision now takes the record's id as its change id (its only change; an edit of a refused insert is a new change with an id of its own), so it is found by the unique `change_id` index, and `outbox_by_record` is a partial index of the other changes: one B-tree less per touch. WAL frames per 100,000 touches: one transaction 11,253 → 10,226; 1,000-row commits 16,030 → 12,433. Tried and dropped: `journey_touches` as a `WITHOUT ROWID` table (one B-tree less, but SQLite splits such B-trees evenly instead of appending full pages, and the time index's entries carry the 16-byte id instead of a rowid: 10,241 and 12,557 frames, no better)."
    )?;
    writeln!(
        out,
        "- **Outbox rows with a binary clock reading and numbered entity, operation and state** (local migration 0012, `local-store`'s `outbox_columns`): the reading is 17 big-endian bytes (wall time, counter, node) that sort as the readings do, instead of 36 characters of text; entity, operation and state are small integers instead of words (a 0 or 1 takes no byte in SQLite's record). A touch's outbox row went from 115 to 71 bytes of record; WAL frames per 100,000 touches: one transaction 10,227 → 9,105, 1,000-row commits 12,433 → 11,254 (plain file, counted with `wal_frames_by_btree.py`). Both stores got about 10 % faster on this insert (no reading formatted as text either: `insert_profile`, 4 alternating runs each on the Intel Xeon VM of 2026-12-01, medians: one transaction plain 453 → 412 ms, SQLCipher 566 → 512 ms; 1,000-row commits plain 492 → 444 ms, SQLCipher 636 → 577 ms), so the ratio stayed where it was: what encryption saved, plain SQLite saved in CPU as well."
    )?;
    writeln!(
        out,
        "- **Touch rows with numbered channel and result, and this device's id as NULL** (local migration 0013, `local-store`'s `touch_columns`): a touch's channel and result are small integers instead of words, and its device is NULL when it is the file's own (nearly all of a laptop's touches; the statements that read touches put `meta`'s device id back), as the outbox's is since 0006. A touch row went from about 200 to about 165 bytes; WAL frames per 100,000 touches (plain file, `wal_frames_by_btree.py`): one transaction 9,105 → 8,357, 1,000-row commits 11,254 → 10,477. Unlike 0012, this saved the encrypted store more than plain SQLite, since it is pages that shrank, not CPU per row (`insert_profile`, 3–4 alternating runs each on the AMD EPYC VM of 2026-12-01, medians: one transaction plain 409 → 384 ms, SQLCipher 485 → 446 ms; 1,000-row commits plain 441 → 406 ms, SQLCipher 566 → 497 ms)."
    )?;
    writeln!(
        out,
        "- **SQLite without memory statistics** (`LIBSQLITE3_FLAGS=-DSQLITE_DEFAULT_MEMSTATUS=0` in `.cargo/config.toml`, both stores): with them, each allocation SQLite makes takes a global mutex to count it. A few per cent of a first sync's apply; within the noise here."
    )?;
    writeln!(
        out,
        "- **SQLCipher's page crypto keyed once per connection** (crate `sqlcipher-provider`, registered through SQLCipher's provider interface): the stock OpenSSL provider fetches OpenSSL's HMAC and AES implementations, allocates their contexts and expands both keys for every page, and takes a process-wide lock for each page's random IV. The keyed provider does the same AES-256-CBC and HMAC-SHA512 on the same bytes (the file format is unchanged: the stock provider and a stock SQLCipher read its files, and it reads theirs), keeping the AES key schedules, HMAC's hashed key blocks and a 4 KiB pool of OpenSSL randomness per connection. Timed inside SQLCipher's calls over a 100,000-touch insert (11,438 pages; 2026-11-30, AMD EPYC VM): HMAC 9.1–10.6 → 7.1–7.5 µs, AES 6.0–6.1 → 5.3–5.5 µs, IV 1.2–1.3 → 0.25 µs per page, about 17 → 13 µs in all. The stock-provider column above is the same run with SQLCipher's own provider."
    )?;
    writeln!(
        out,
        "- **A written page's signature is hashed on a second core while the page is encrypted** (`sqlcipher-provider`'s `signing_alongside`): SQLCipher encrypts a page and then signs its ciphertext and IV, one after the other on the writing thread, and neither can be split (CBC chains block to block, SHA-512 hashes in order). But the signature's inner hash only needs ciphertext that is already written, so one helper thread hashes each 512-byte stretch as soon as the writer has encrypted it, and the writer finishes the HMAC (page number, outer hash) in SQLCipher's signing call: a page costs about the slower of the two instead of their sum, with the same bytes on disk. The helper spins while pages come (a commit's pages are microseconds apart; waking a parked thread costs more) and parks after 200 µs without one; a writer that finds it parked or busy does its page alone. The helper hashes its own copy of the page, which the writer fills as it encrypts, never the writer's buffer, so when the helper is off its core (on a 2-core VM, about 10 times in a 100,000-touch insert) the writer gives the page up after 25 µs and signs it itself; before (2026-12-01), the writer had to wait until the helper ran again, a wait of a scheduler's time slice, and then did its pages alone for 100 ms: runs in which that happened took 500–526 ms instead of 475–495 (one transaction, `insert_profile`, AMD EPYC VM). Encrypting and signing 20,000 pages in a loop (2026-12-01 05:00 UTC, AMD EPYC VM, 2 cores): 14.5–16.1 µs a page on one thread, 9.5–11.8 µs with the helper; on the Intel Xeon VM of 2026-12-01 09:00 UTC, 10.3–10.7 µs on one thread and 8.3–9.6 µs with the helper (AES-256-CBC alone 3.7 µs, HMAC-SHA512 alone 6.6–7.3 µs: the helper's hash is the slower half there, so a page cannot cost less than the hash). The column \"signed on the writing thread\" above is the same provider with the helper off. It costs CPU time on the second core (the helper's hashing and spinning); the insert's own thread does less."
    )?;
    writeln!(
        out,
        "- **A commit's log frames held, their pages signed after SQLCipher hands them on** (`sqlcipher-provider`'s `held_wal`, a SQLite VFS the encrypted store opens its files through): SQLCipher's page codec hands SQLite each page to write the moment it has encrypted and signed it, so a signature hashed alongside its page's encryption still keeps the writer waiting where SHA-512 is the slower half (on the Intel Xeon VM of 2026-12-01 5.0 µs against 2.9 µs of AES a page). Through this layer the signing call of a page bound for the write-ahead log leaves the signature's place unfilled; the layer copies the page when SQLite writes it, queues its signature for the helper thread and holds the frame. At the commit's last frame (or before anything reads, syncs, sizes or truncates the log, or after 512 frames) it signs the newest pages the helper has not taken while the helper signs the oldest, puts each signature in its page, corrects SQLite's chained frame checksums (sums modulo 2^32 are linear, so each frame's is carried from the one SQLite computed instead of summed again over the page) and writes the frames together, in writes of at most 96 KiB (the unix VFS masks a write's length to 17 bits). The writer's commit then pays the AES, and the hashing runs beside it. The bytes are those SQLCipher writes, so a stock SQLCipher reads the file and recovers its log (`crates/sqlcipher-provider/tests/held_wal.rs` opens a copy of a database and its uncheckpointed log, spilled, rewritten-in-place and rolled-back transactions included, with the stock provider and SQLite's default VFS). A page is left unsigned only when its codec buffer is one a frame of a still-open log came from, so it is written by a connection whose files all go through the layer, which signs on the spot such a page written anywhere but a new frame. The plain reference store opens its file through SQLite's own layer: holding and copying frames only costs where no page is signed (through the layer plain SQLite took about 320 ms instead of about 305 ms). On that VM, 1,000-row transactions went from 76–78 % to 85–87 % of plain SQLite's throughput, one transaction from 83 % to 92–94 %."
    )?;
    writeln!(
        out,
        "- **What encryption still costs**: per page written, SHA-512 and AES-CBC themselves, in OpenSSL's assembly (HMAC-SHA512 and AES-256-CBC are SQLCipher 4's defaults, fixed by the recovery promise above, as is the 4,096-byte page). A one-transaction insert writes about 8,360 pages (33 MiB of WAL, about 340 bytes per touch with its outbox row: touch row about 165, outbox row about 78, its three index entries about 95, page space included). 1,000-row transactions write about 10,480: each commit rewrites the last, partly filled leaf of each of the five B-trees a touch lands in (the two tables, their id indexes and the (hour, property) index) and the interior pages above them, about 20 pages a commit. On one thread a page costs about 12 µs on the Intel Xeon VM of 2026-11-23 and 14–16 µs on the AMD EPYC VM of 2026-12-01; with the signing helper, about 10 µs there. So the ratio depends on the machine: it falls as a machine runs SQLite faster relative to its SHA-512 and AES, and it rises as the pages a touch writes fall. On the Intel Xeon VMs (plain SQLite does one transaction in about 450 ms) it is about 80 % with or without the helper: the helper takes the AES off the page's path, but HMAC-SHA512 alone costs 6.6–7.3 µs a page there, so even with nothing else left (no AES, no SQLCipher bookkeeping) the 10,380 pages of one transaction (before migration 0012) would have cost about 70 ms and the ratio could not pass about 86 % (1,000-row transactions: 12,490 pages, about 85 %). Fewer bytes per touch raise that ceiling only where plain SQLite does not save as much as encryption does (migration 0012 sped up both alike; migration 0013's smaller touch rows saved encryption more). On the AMD EPYC VM of 2026-12-01 14:00 UTC (Zen 5, 2 cores; `openssl speed`: AES-256-CBC and SHA-512 each about 3.7 µs a 4 KiB page; plain SQLite does one transaction in about 295 ms), pages time-stamped with the processor's counter (a throwaway build of `insert_profile`, 1,000-row transactions) took 3.6 µs on the writer to encrypt and copy, and the helper finished their hash 0.8–1.6 µs later: about 4.7 µs a page. A profile with call stacks of one 1,000-row run each (plain 306 ms, SQLCipher 390 ms) put 55 ms of the SQLCipher run in SQLCipher's page codec, about 5.2 µs for each of the 10,500 pages. Even pages that cost only their hash (3.7 µs) would leave that ratio at about 82 % there (SQLCipher 16 ms faster): the 85 % target for 1,000-row transactions needs fewer pages per touch, not faster page crypto. The hash is the slower half there as well (3.7 µs against about 3.5 µs of encryption and copying), so a page costs about its hash plus the first stretch's wait. Tried there and not kept (no difference beyond the noise): the helper prefetching each stretch's cache lines before hashing it; 256- or 1,024-byte stretches; a 128-byte first stretch, so that the hash starts sooner (the helper then finished 0.83–0.90 µs after the writer instead of 0.90–0.94). On the Intel Xeon VM of 2026-12-01 16:00 UTC (family 6 model 167; `openssl speed`: SHA-512 about 5.0 µs a 4 KiB page, AES-256-CBC about 2.9 µs, SHA-256 about 2.2 µs; plain SQLite does one transaction in about 295 ms), `insert_profile` with 1,000-row transactions took about 297 ms plain and 394 ms SQLCipher with the signature hashed alongside (helper off: 400 ms), and a throwaway build that left every written page unsigned, the AES kept, 341 ms (87 %): the signature kept the ratio under 85 % as long as it was made on the commit's path, which the held log frames below take it off. HMAC-SHA256 (2.2 µs a page there) would break the recovery promise: a stock shell would need `PRAGMA cipher_hmac_algorithm`."
    )?;
    writeln!(
        out,
        "- Not changed, on purpose: the KDF and HMAC settings (SQLCipher 4 defaults, so the stock shell opens the file with `PRAGMA key = \"x'<recovery key>'\";`); the checkpoint SQLite runs when a commit leaves more than 1,000 pages in the WAL (it is inside the timed call; measured with and without it (`NO_CHECKPOINT=1` on the `insert_profile` example of `benchmarks`): on the Intel Xeon VM a one-transaction insert took the same time within the noise; on the AMD EPYC VM of 2026-12-01 it is 250–350 ms of the one-transaction insert's wall time for both stores, off the CPU (copying the pages into the file, fsyncs). It stays where SQLite puts it: moving it to another connection would break the store's one connection per tenant file, and skipping it would only hide the work)."
    )?;
    writeln!(
        out,
        "- **`cache_size` = {} MiB, `temp_store = MEMORY`** (both stores): a 50,000-property storm stays decrypted in the page cache, so repeated list queries do not decrypt pages again.",
        local_store::CACHE_SIZE_KIB / 1024
    )?;
    writeln!(
        out,
        "- **Ranking walks an index** `(storm_id, score_uplift DESC, id)`: the score and latest decision are kept on the property row by triggers, so a page of 50 stops early instead of sorting the storm; only a rare search term scans the whole storm."
    )?;
    writeln!(
        out,
        "- Text search uses a lowercased, whitespace-collapsed address column with `instr` (FTS5 is compiled in, but a trigram index would slow every property write for a storm-scoped filter that already walks the rank index)."
    )?;
    writeln!(
        out,
        "- The KDF is deliberately slow (600,000 PBKDF2 iterations is the floor, not tunable): it is most of the unlock time, paid once per unlock."
    )?;
    Ok(out)
}
