//! The tenant platform benchmark (`cargo xtask bench tenant`), on a fresh PostgreSQL database as the
//! control and application roles: provisioning a tenant through the lifecycle path (target < 50 ms),
//! exporting a tenant of 100,000 rows into an archive with checksums (target < 2 s), and the legacy
//! SQLite import of 4,200 properties with their journeys, scores and experiments (target < 1 s).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use domain::*;
use server_store::{AppPool, ControlPool, PoolSettings};

const PROVISION_RUNS: usize = 40;
const EXPORT_PROPERTIES: usize = 25_000;
const EXPORT_RUNS: usize = 3;
const LEGACY_PROPERTIES: usize = 4_200;
const LEGACY_RUNS: usize = 3;

pub fn run() -> anyhow::Result<String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run_async())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn verdict(value: Duration, target: Duration) -> &'static str {
    if value < target { "met" } else { "MISSED" }
}

async fn run_async() -> anyhow::Result<String> {
    // Other work on the machine skews these figures; the section records how busy it was.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    let db = test_postgres::fresh_database().await?;
    let init = server_store::init_database(&db.server_url, &db.name, &db.role_prefix).await?;
    let pools = PoolSettings {
        max_connections: 4,
        ..PoolSettings::default()
    };
    let app = AppPool::connect(&init.app_url, &pools).await?;
    let control = ControlPool::connect(&init.control_url, &pools).await?;
    // PBKDF2 of the first admin's password is deliberately slow and done before the transaction; it is
    // measured separately below and not part of the provisioning figure.
    let hash_started = Instant::now();
    let hash = tokio::task::spawn_blocking(|| {
        sync_server::auth::password::hash_password("bench password 1")
    })
    .await??;
    let hash_time = hash_started.elapsed();

    // Provisioning: tenant, plan, first admin, default crew, audit entries, one transaction.
    let mut provision = Vec::with_capacity(PROVISION_RUNS);
    for i in 0..PROVISION_RUNS {
        let started = Instant::now();
        sync_server::provisioning::provision_tenant(
            &control,
            &format!("Bench Roofing {i}"),
            Some(&format!("bench-{i}")),
            PlanTier::Standard,
            &format!("admin{i}@bench.example"),
            "Admin",
            hash.clone(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
        provision.push(started.elapsed());
    }
    provision.sort();

    // Export: one tenant with ~100,000 rows (properties and scores with their pull-feed entries).
    let big = sync_server::provisioning::provision_tenant(
        &control,
        "Big Roofing",
        Some("big"),
        PlanTier::Enterprise,
        "admin@big.example",
        "Admin",
        hash.clone(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
    let now = Timestamp::now();
    let hlc = Hlc::new(now.millis() as u64, 0, 0);
    let storm_id = StormId::generate();
    let mut tx = app.begin_tenant(big.tenant_id).await?;
    tx.upsert_storms(
        &[Storm {
            id: storm_id,
            event_id: "NWS-BIG".into(),
            name: "Big hail".into(),
            started_at: now,
            ended_at: None,
            hail_size_in: 2.0,
            wind_mph: 60.0,
            affected_area: "Oklahoma".into(),
            status: StormStatus::Active,
        }],
        hlc,
        now,
    )
    .await?;
    let properties: Vec<Property> = (0..EXPORT_PROPERTIES)
        .map(|n| Property {
            id: PropertyId::generate(),
            storm_id,
            external_id: format!("B-{n}"),
            address: format!("{n} Bench Ave"),
            latitude: 35.0 + (n % 1000) as f64 / 1000.0,
            longitude: -97.0,
            roof_age_years: Some(10.0),
            roof_material: Some(RoofMaterial::Metal),
            square_feet: Some(1800.0),
            home_value: Some(Cents(25_000_000)),
            hail_size_in: Some(1.75),
            distance_to_core_km: Some(3.0),
            prior_claims: 1,
            owner_name: Some(format!("Owner {n}")),
            owner_phone: Some("405-555-0100".into()),
            owner_email: None,
            status: PropertyStatus::New,
        })
        .collect();
    for chunk in properties.chunks(5_000) {
        tx.upsert_properties(chunk, hlc, now).await?;
    }
    let scores: Vec<UpliftScore> = properties
        .iter()
        .map(|p| UpliftScore {
            property_id: p.id,
            storm_id,
            uplift: 0.12,
            p_treat: 0.3,
            p_hold: 0.18,
            model_version: "bench-1".into(),
            trained_at: now,
            data_watermark: 1,
        })
        .collect();
    for chunk in scores.chunks(5_000) {
        tx.upsert_uplift_scores(chunk, now).await?;
    }
    tx.commit().await?;
    let dir = tempfile::tempdir()?;
    let mut export = Vec::with_capacity(EXPORT_RUNS);
    let mut export_rows = 0;
    let mut export_bytes = 0u64;
    for run in 0..EXPORT_RUNS {
        let out = dir.path().join(format!("export-{run}"));
        let started = Instant::now();
        let manifest = server_store::export_tenant(&app, &control, "big", &out, Timestamp::now())
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", e.code()))?;
        export.push(started.elapsed());
        export_rows = manifest.total_rows();
        export_bytes = std::fs::read_dir(&out)?
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
    }
    export.sort();
    let export_median = export[EXPORT_RUNS / 2];

    // Legacy import: 4,200 properties with their history, into a fresh tenant each run.
    let legacy_db = dir.path().join("legacy.db");
    let generated = legacy_import::generate::generate(
        &legacy_db,
        &legacy_import::generate::GenerateOptions {
            properties: LEGACY_PROPERTIES,
            storms: 3,
            journeys_per_property: 3,
            ..Default::default()
        },
    )?;
    let mut legacy = Vec::with_capacity(LEGACY_RUNS);
    let mut written = 0;
    for run in 0..LEGACY_RUNS {
        let slug = format!("legacy-{run}");
        sync_server::provisioning::provision_tenant(
            &control,
            &format!("Legacy Roofing {run}"),
            Some(&slug),
            PlanTier::Standard,
            &format!("admin@{slug}.example"),
            "Admin",
            hash.clone(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
        let started = Instant::now();
        let report =
            sync_server::provisioning::import_legacy_with(&control, &slug, &legacy_db, false)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
        legacy.push(started.elapsed());
        written = report.written.total();
    }
    legacy.sort();
    let legacy_median = legacy[LEGACY_RUNS / 2];
    // The share of the import spent reading and validating the SQLite file (no database writes).
    let identity =
        legacy_import::ImportIdentity::for_user(TenantId::generate(), UserId::generate());
    let mut reading = Vec::with_capacity(LEGACY_RUNS);
    for _ in 0..LEGACY_RUNS {
        let started = Instant::now();
        let data = legacy_import::read_legacy(&legacy_db, &identity, Timestamp::now())?;
        reading.push(started.elapsed());
        anyhow::ensure!(
            data.rejected.is_empty(),
            "the sample database has no broken rows"
        );
    }
    reading.sort();
    let reading_median = reading[LEGACY_RUNS / 2];
    // The properties alone, written both ways into fresh tenants in this same run: the bulk writer the
    // import uses and the generic merge path it used before (same rows and feed entries, tested).
    let mut bulk_props = Vec::with_capacity(LEGACY_RUNS);
    let mut merge_props = Vec::with_capacity(LEGACY_RUNS);
    for run in 0..LEGACY_RUNS * 2 {
        let slug = format!("props-{run}");
        let made = sync_server::provisioning::provision_tenant(
            &control,
            &format!("Props Roofing {run}"),
            Some(&slug),
            PlanTier::Standard,
            &format!("admin@{slug}.example"),
            "Admin",
            hash.clone(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
        let identity = legacy_import::ImportIdentity::for_user(made.tenant_id, made.admin_user_id);
        let now = Timestamp::now();
        let data = legacy_import::read_legacy(&legacy_db, &identity, now)?;
        let hlc = Hlc::new(now.millis() as u64, 0, 0);
        let mut tx = app.begin_tenant(made.tenant_id).await?;
        tx.upsert_storms(&data.storms, hlc, now).await?;
        let started = Instant::now();
        if run % 2 == 0 {
            tx.insert_new_properties(&data.properties, hlc, now).await?;
            bulk_props.push(started.elapsed());
        } else {
            tx.upsert_properties(&data.properties, hlc, now).await?;
            merge_props.push(started.elapsed());
        }
        tx.commit().await?;
    }
    bulk_props.sort();
    merge_props.sort();
    let bulk_props_median = bulk_props[LEGACY_RUNS / 2];
    let merge_props_median = merge_props[LEGACY_RUNS / 2];
    app.close().await;
    control.close().await;
    let _ = db.drop_database().await;

    let p50 = percentile(&provision, 0.5);
    let p95 = percentile(&provision, 0.95);
    let mut out = String::new();
    writeln!(
        out,
        "Fresh PostgreSQL database; control and application roles under row-level security; 2 cores (1-minute load average {load} when the suite started).\n"
    )?;
    writeln!(out, "| measure | figure | target | |")?;
    writeln!(out, "|---|---|---|---|")?;
    writeln!(
        out,
        "| provision a tenant (tenant + plan + first admin + default crew + audit, one transaction), p50 of {PROVISION_RUNS} | {:.1} ms (p95 {:.1} ms, max {:.1} ms) | < 50 ms | {} |",
        ms(p50),
        ms(p95),
        ms(*provision.last().unwrap_or(&p50)),
        verdict(p50, Duration::from_millis(50))
    )?;
    writeln!(
        out,
        "| export a tenant of {export_rows} rows (one JSON-lines file per table, SHA-256, manifest), median of {EXPORT_RUNS} | {:.0} ms ({:.0} rows/s, {:.1} MB) | < 2 s | {} |",
        ms(export_median),
        export_rows as f64 / export_median.as_secs_f64(),
        export_bytes as f64 / 1e6,
        verdict(export_median, Duration::from_secs(2))
    )?;
    writeln!(
        out,
        "| legacy import of {} properties with {} journeys, {} scores, {} storms and experiments ({written} records, read + validate + write in one transaction), median of {LEGACY_RUNS} | {:.0} ms | < 1 s | {} |",
        generated.properties,
        generated.journeys,
        generated.scores,
        generated.storms,
        ms(legacy_median),
        verdict(legacy_median, Duration::from_secs(1))
    )?;
    writeln!(
        out,
        "| of which reading and validating the legacy SQLite file (no database writes), median of {LEGACY_RUNS} | {:.0} ms | | |",
        ms(reading_median)
    )?;
    writeln!(
        out,
        "| of which writing the {} properties with their feed entries (bulk writer of typed column arrays), median of {LEGACY_RUNS} | {:.0} ms | | |",
        generated.properties,
        ms(bulk_props_median)
    )?;
    writeln!(
        out,
        "| the same properties through the generic merge path (the import's writer before), same run, median of {LEGACY_RUNS} | {:.0} ms | | |",
        ms(merge_props_median)
    )?;
    writeln!(
        out,
        "\nThe first admin's password hash (PBKDF2, before the transaction) took {:.0} ms once and is not in the provisioning figure.",
        ms(hash_time)
    )?;
    Ok(out)
}
