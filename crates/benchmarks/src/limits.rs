//! The cost of rate limiting and quota checks (`cargo xtask bench limits`; target: under 1 ms added to a
//! request's p50). Two server instances run in this process on one fresh database — one with rate limits
//! on, one with them off — and the same tenant pulls an empty page from each, alternating, so both see
//! the same machine load. Measured separately: the PostgreSQL reservation a limiter makes once per chunk,
//! and the quota statements a push runs (storage check and the month's event counter) against a tenant
//! transaction that does not run them.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use domain::*;
use server_store::plans::PlanField;
use server_store::{AppPool, ControlPool, PoolSettings};
use sync_protocol::LoginRequest;
use sync_server::serve::ServerConfig;
use sync_server::state::ServerSettings;

/// Empty pulls per mode (alternating on and off).
const PULLS: usize = 2_000;
/// Warm-up pulls per mode, not measured.
const WARMUP: usize = 100;
/// Direct reservations and quota rounds.
const ROUNDS: usize = 1_000;

pub fn run() -> anyhow::Result<String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run_async())
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * p / 100.0).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn diff(a: Duration, b: Duration) -> String {
    let d = a.as_secs_f64() - b.as_secs_f64();
    format!("{:+.3} ms", d * 1000.0)
}

async fn run_async() -> anyhow::Result<String> {
    let db = test_postgres::fresh_database().await?;
    let init = server_store::init_database(&db.server_url, &db.name, &db.role_prefix).await?;
    let pools = PoolSettings {
        max_connections: 4,
        ..PoolSettings::default()
    };
    let app = AppPool::connect(&init.app_url, &pools).await?;
    let control = ControlPool::connect(&init.control_url, &pools).await?;
    let password = "bench limits password";
    let hash =
        tokio::task::spawn_blocking(move || sync_server::auth::password::hash_password(password))
            .await??;
    let tenant = sync_server::provisioning::provision_tenant(
        &control,
        "Limits Roofing",
        Some("limits"),
        PlanTier::Standard,
        "admin@limits.example",
        "Admin",
        hash,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
    // A standard tenant well inside its limits: the measured path is the common one. Its request rate is
    // raised so that the measurement itself (thousands of pulls a minute) is not refused; the chunk size
    // stays at its cap (100), as for any tenant of 2,000 or more requests a minute.
    let mut tx = control.begin().await?;
    tx.update_plan(
        PlanTier::Standard,
        &[(PlanField::RequestsPerMinute, 1_000_000)],
        Timestamp::now(),
    )
    .await?;
    tx.commit().await?;

    let settings = |rate_limits| ServerSettings {
        rate_limits,
        train_interval_secs: 0,
        usage_interval_secs: 0,
        ..ServerSettings::default()
    };
    let config = |rate_limits| ServerConfig {
        database_url: init.app_url.clone(),
        control_database_url: init.control_url.clone(),
        pool_size: 8,
        settings: settings(rate_limits),
    };
    let on = sync_server::serve::start(&config(true), "127.0.0.1:0").await?;
    let off = sync_server::serve::start(&config(false), "127.0.0.1:0").await?;
    let mut clients = Vec::new();
    for server in [&on, &off] {
        let client = sync_client::SyncClient::new(&format!("http://{}", server.addr))?;
        let tokens = client
            .login(&LoginRequest {
                tenant_slug: "limits".into(),
                email: "admin@limits.example".into(),
                password: password.into(),
                device_id: DeviceId::generate(),
                device_name: "bench laptop".into(),
            })
            .await?;
        // Drain the feed once: every later pull is empty.
        let mut cursor: Option<String> = None;
        loop {
            let (page, _) = client
                .pull(&tokens.access_token, cursor.as_deref(), Some(1_000))
                .await?;
            cursor = Some(page.next_cursor);
            if !page.has_more {
                break;
            }
        }
        clients.push((client, tokens.access_token, cursor));
    }

    let mut on_times = Vec::with_capacity(PULLS);
    let mut off_times = Vec::with_capacity(PULLS);
    for i in 0..(WARMUP + PULLS) {
        for (n, (client, token, cursor)) in clients.iter().enumerate() {
            let started = Instant::now();
            let (page, _) = client.pull(token, cursor.as_deref(), Some(1_000)).await?;
            let took = started.elapsed();
            anyhow::ensure!(page.changes.is_empty(), "the pull was not empty");
            if i >= WARMUP {
                if n == 0 {
                    on_times.push(took);
                } else {
                    off_times.push(took);
                }
            }
        }
    }
    on_times.sort();
    off_times.sort();

    // The limiter's slow path: one reservation from the shared window (once per chunk of requests).
    let mut reservations = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        app.reserve_requests(tenant.tenant_id, Timestamp::now(), 100)
            .await?;
        reservations.push(started.elapsed());
    }
    reservations.sort();

    // The quota statements of a push, against the same tenant transaction without them.
    let mut with_quota = Vec::with_capacity(ROUNDS);
    let mut without_quota = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let mut tx = app.begin_tenant(tenant.tenant_id).await?;
        tx.tenant().await?;
        tx.commit().await?;
        without_quota.push(started.elapsed());
        let started = Instant::now();
        let mut tx = app.begin_tenant(tenant.tenant_id).await?;
        tx.tenant().await?;
        tx.check_storage().await?;
        tx.meter_synced_events(uuid::Uuid::now_v7(), 1, Timestamp::now())
            .await?;
        tx.commit().await?;
        with_quota.push(started.elapsed());
    }
    with_quota.sort();
    without_quota.sort();

    on.stop().await;
    off.stop().await;
    app.close().await;
    control.close().await;
    let _ = db.drop_database().await;

    let mut out = String::new();
    writeln!(
        out,
        "Two in-process servers on one fresh PostgreSQL database, one standard-plan tenant; {PULLS} empty \
         pulls on each (after {WARMUP} warm-up pulls), alternating, over loopback HTTP with the typed client."
    )?;
    writeln!(
        out,
        "\n### Empty pull with rate limiting on vs off (same run)\n\n| | p50 | p99 |\n|---|---|---|"
    )?;
    writeln!(
        out,
        "| limits off | {} | {} |",
        ms(percentile(&off_times, 50.0)),
        ms(percentile(&off_times, 99.0))
    )?;
    writeln!(
        out,
        "| limits on | {} | {} |",
        ms(percentile(&on_times, 50.0)),
        ms(percentile(&on_times, 99.0))
    )?;
    writeln!(
        out,
        "| **added by the limiter** | **{}** (target < 1 ms) | {} |",
        diff(percentile(&on_times, 50.0), percentile(&off_times, 50.0)),
        diff(percentile(&on_times, 99.0), percentile(&off_times, 99.0))
    )?;
    writeln!(
        out,
        "\nThe limiter's common path is in memory; once per chunk (100 requests at this rate, a twentieth \
         of the plan's minute for smaller plans) it reserves from PostgreSQL in one round trip:\n"
    )?;
    writeln!(out, "| | p50 | p99 |\n|---|---|---|")?;
    writeln!(
        out,
        "| one reservation from the shared window ({ROUNDS} ×) | {} | {} |",
        ms(percentile(&reservations, 50.0)),
        ms(percentile(&reservations, 99.0))
    )?;
    writeln!(
        out,
        "\n### Quota checks of a push ({ROUNDS} × a tenant transaction with and without them)\n"
    )?;
    writeln!(out, "| | p50 | p99 |\n|---|---|---|")?;
    writeln!(
        out,
        "| transaction without quota statements | {} | {} |",
        ms(percentile(&without_quota, 50.0)),
        ms(percentile(&without_quota, 99.0))
    )?;
    writeln!(
        out,
        "| with storage check + month's event counter | {} | {} |",
        ms(percentile(&with_quota, 50.0)),
        ms(percentile(&with_quota, 99.0))
    )?;
    writeln!(
        out,
        "| **added by the quota checks** | **{}** (target < 1 ms) | {} |",
        diff(
            percentile(&with_quota, 50.0),
            percentile(&without_quota, 50.0)
        ),
        diff(
            percentile(&with_quota, 99.0),
            percentile(&without_quota, 99.0)
        )
    )?;
    Ok(out)
}
