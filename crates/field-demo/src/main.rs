//! `stormops-demo` (run by `cargo xtask demo`): a private PostgreSQL, the sync server, a demo tenant
//! provisioned by the operator CLI, an office desktop that creates a storm and imports its
//! properties, and headless field laptops that sync, go offline for the day, keep working, come back,
//! drain their outboxes and converge. It ends with a summary that proves server and laptops agree.

mod field_day;
mod laptop;
mod learning;
mod server_process;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use domain::*;
use laptop::Laptop;
use local_store::RecordCounts;
use server_process::ServerBinary;

const PASSWORD: &str = "demo-password-2026";
const PROPERTIES: usize = 3_000;
const PER_LAPTOP: usize = 400;

fn step(text: &str) {
    println!("\n== {text}");
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\ndemo failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let work_dir = std::env::var_os("STORMOPS_DEMO_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("stormops-demo"));
    let _ = std::fs::remove_dir_all(&work_dir);
    std::fs::create_dir_all(&work_dir)?;

    step("1. A private PostgreSQL");
    let superuser = test_postgres::server_url()
        .await
        .context("starting PostgreSQL")?;
    println!("   PostgreSQL at {}", redact(&superuser));

    step(
        "2. The operator sets up the sync server (stormops-server db init, tenant create, user add)",
    );
    let bin = std::env::current_exe()?.with_file_name("stormops-server");
    let server_bin = ServerBinary::init(bin, &superuser)?;
    println!(
        "   database stormops_demo with roles demo_owner, demo_app (no BYPASSRLS, owns nothing), demo_control"
    );
    let (tenant_id, slug) = server_bin.create_tenant(
        "Hailstone Roofing",
        "standard",
        "office@hailstone.example",
        PASSWORD,
    )?;
    println!(
        "   tenant Hailstone Roofing ({slug}, {tenant_id}) provisioned: plan, first admin and default crew in one transaction"
    );
    let crew = [
        ("chief@hailstone.example", "Casey Chief", "crew_chief"),
        ("ana@hailstone.example", "Ana Field", "field_user"),
        ("ben@hailstone.example", "Ben Field", "field_user"),
    ];
    for (email, name, role) in crew {
        server_bin.add_user(&slug, email, name, role, PASSWORD)?;
        println!("   user {name} <{email}> as {role}");
    }
    let server = server_bin.serve().await?;
    println!("   stormops-server serving at {}", server.url);

    step("3. The office creates a storm and imports its properties, then syncs them up");
    let office = Laptop::sign_in(
        "office desktop",
        &work_dir.join("office"),
        server.addr,
        &slug,
        "office@hailstone.example",
        PASSWORD,
    )
    .await?;
    let synthetic =
        uplift::synthetic::SyntheticStorm::generate(&uplift::synthetic::SyntheticStormConfig {
            properties: PROPERTIES,
            seed: 2026,
            ..Default::default()
        })?;
    let storm = Storm {
        id: synthetic.storm_id,
        event_id: "NWS-OUN-2026-0412".into(),
        name: "Norman hail, April 12".into(),
        started_at: Timestamp::now().plus_millis(-3 * 86_400_000),
        ended_at: Some(Timestamp::now().plus_millis(-3 * 86_400_000 + 3_600_000)),
        hail_size_in: 2.5,
        wind_mph: 65.0,
        affected_area: "Norman, OK and surroundings (15 km around the core)".into(),
        status: StormStatus::Active,
    };
    let properties = synthetic.properties.clone();
    let storm_for_office = storm.clone();
    office
        .engine
        .with_store(move |s| {
            s.add_storm(&storm_for_office)?;
            s.import_properties(&properties)
        })
        .await?;
    let report = office.engine.sync_once().await?;
    println!(
        "   pushed {} changes (storm + {PROPERTIES} properties) in {} batches, {:.1} s",
        report.pushed,
        report.push_batches,
        report.elapsed_ms as f64 / 1000.0
    );

    step("4. Three crew laptops sign in and take the storm with them");
    let mut laptops = Vec::new();
    for (i, (email, name, _)) in crew.iter().enumerate() {
        let laptop = Laptop::sign_in(
            &format!("{name}'s laptop"),
            &work_dir.join(format!("laptop-{i}")),
            server.addr,
            &slug,
            email,
            PASSWORD,
        )
        .await?;
        let report = laptop.engine.sync_once().await?;
        println!(
            "   {:<22} {:>10}: pulled {} records in {} pages",
            laptop.name,
            laptop.role.as_str(),
            report.pulled,
            report.pull_pages
        );
        laptops.push(laptop);
    }

    step("5. The trucks drive out of coverage: a day of work offline");
    let contested: Vec<PropertyId> = synthetic.properties.iter().take(5).map(|p| p.id).collect();
    let day_start = Timestamp::now().plus_millis(-8 * 3_600_000).millis();
    for (slot, laptop) in laptops.iter_mut().enumerate() {
        laptop.go_offline();
        laptop.start_agent();
        let plan = field_day::DayPlan {
            storm: storm.id,
            user: laptop.user_id,
            slot,
            slots: 3,
            per_laptop: PER_LAPTOP,
            day_start,
            contested: contested.clone(),
        };
        let work = laptop
            .engine
            .with_store(move |s| field_day::work_the_day(s, &plan))
            .await?;
        laptop.engine.notify_local_write();
        println!(
            "   {:<22} logged {} touches, {} outcomes, {} decisions, {} status edits (offline)",
            laptop.name, work.touches, work.outcomes, work.decisions, work.status_edits
        );
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for laptop in &laptops {
        let s = laptop.engine.status();
        println!(
            "   {:<22} status: {:?}, {} pending (oldest {:.0} s), last error: {}",
            laptop.name,
            s.connectivity,
            s.pending,
            s.oldest_pending_age_ms.unwrap_or(0) as f64 / 1000.0,
            s.last_error.as_ref().map_or("none", |e| e.code.as_str())
        );
    }

    step("6. Signal returns: the background agents notice and drain their outboxes");
    let drain_started = Instant::now();
    for laptop in &laptops {
        laptop.go_online();
    }
    let mut last_line: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let mut all_done = true;
        for laptop in &laptops {
            let s = laptop.engine.status();
            let line = format!(
                "{:?}/{:?} pushed {}/{} , pulled {}, pending {}",
                s.connectivity,
                s.phase,
                s.push.done,
                s.push.total.unwrap_or(0),
                s.pull.done,
                s.pending
            );
            if last_line.get(&laptop.name) != Some(&line) {
                println!("   {:<22} {line}", laptop.name);
                last_line.insert(laptop.name.clone(), line);
            }
            all_done &= s.pending == 0
                && s.last_success_at_ms.is_some()
                && s.connectivity == desktop_core::Connectivity::Online;
        }
        if all_done {
            break;
        }
        if drain_started.elapsed() > Duration::from_secs(120) {
            bail!("the laptops did not drain within two minutes");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    println!(
        "   all outboxes drained {:.1} s after the connection returned",
        drain_started.elapsed().as_secs_f64()
    );

    step("7. Everyone syncs once more so each laptop also has the others' work");
    for laptop in laptops.iter_mut() {
        laptop.stop_agent().await;
        laptop.engine.sync_once().await?;
    }
    office.engine.sync_once().await?;

    // Steps 8-11: experiment, outcomes, training, scores back to the laptops, the offline policy, lift.
    learning::run(&office, &laptops, &synthetic).await?;

    step("12. What a field user sees on the laptop: the ranked list and the status");
    show_ranked_list_and_status(&laptops[1], storm.id).await?;

    step("13. Summary: the server and every laptop agree");
    let office_counts = counts(&office).await?;
    let contested_view = |laptop: &Laptop| {
        let ids = contested.clone();
        let engine = std::sync::Arc::clone(&laptop.engine);
        async move {
            engine
                .with_store(move |s| {
                    Ok(ids
                        .iter()
                        .map(|id| s.property(*id).ok().flatten().map(|p| p.status))
                        .collect::<Vec<_>>())
                })
                .await
        }
    };
    let office_statuses = contested_view(&office).await?;
    println!(
        "   {:<22} {:>8} {:>8} {:>9} {:>10}",
        "", "touches", "outcomes", "decisions", "properties"
    );
    println!(
        "   {:<22} {:>8} {:>8} {:>9} {:>10}",
        "server (via office)",
        office_counts.touches,
        office_counts.outcomes,
        office_counts.decisions,
        office_counts.properties
    );
    let mut agree = true;
    for laptop in &laptops {
        let c = counts(laptop).await?;
        let statuses = contested_view(laptop).await?;
        let same = c.touches == office_counts.touches
            && c.outcomes == office_counts.outcomes
            && c.decisions == office_counts.decisions
            && c.properties == office_counts.properties
            && statuses == office_statuses;
        agree &= same;
        println!(
            "   {:<22} {:>8} {:>8} {:>9} {:>10}  {}",
            laptop.name,
            c.touches,
            c.outcomes,
            c.decisions,
            c.properties,
            if same { "agrees" } else { "DIFFERS" }
        );
    }
    let accepted = server
        .metric("stormops_sync_changes_total{status=\"accepted\",")
        .await?;
    let duplicates = server
        .metric("stormops_sync_changes_total{status=\"duplicate\",")
        .await?;
    println!(
        "   server accepted {accepted} changes ({duplicates} replays acknowledged as duplicates, applied once)"
    );
    println!(
        "   contested property statuses converged to: {:?}",
        office_statuses
            .iter()
            .flatten()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
    );
    if !agree {
        bail!("a laptop disagrees with the server");
    }

    step(
        "14. The operator's view: the tenant's usage against its plan and this month's invoice lines",
    );
    // The server's metering round runs every 3 s here: let it flush the last requests first.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (usage, invoice) = server_bin.usage_and_invoice(&slug)?;
    for line in usage.lines().chain(invoice.lines()) {
        println!("   {line}");
    }
    println!(
        "\nDemo finished in {:.1} s. Later parts add the desktop app opening on the demo tenant when a display is present.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The top of a laptop's ranked list (treat first, by uplift) and its status, as `stormops-field
/// properties` and `status` print them.
async fn show_ranked_list_and_status(laptop: &Laptop, storm: StormId) -> anyhow::Result<()> {
    let (rows, counts, pending, state) = laptop
        .engine
        .with_store(move |s| {
            let rows = s.ranked_properties(&local_store::PropertyQuery {
                storm_id: Some(storm),
                limit: 10,
                ..Default::default()
            })?;
            Ok((
                rows,
                s.record_counts()?,
                s.pending_counts()?,
                s.sync_state()?,
            ))
        })
        .await?;
    println!("   {}: the 10 properties most worth a visit", laptop.name);
    println!(
        "   {:>4}  {:<28} {:>8} {:>8}  {:<16} decision",
        "rank", "address", "uplift", "P(treat)", "status"
    );
    for (i, row) in rows.iter().enumerate() {
        println!(
            "   {:>4}  {:<28} {:>8} {:>8}  {:<16} {}",
            i + 1,
            row.property.address.chars().take(28).collect::<String>(),
            row.uplift.map_or("-".into(), |u| format!("{u:+.3}")),
            row.p_treat.map_or("-".into(), |p| format!("{p:.3}")),
            row.property.status.as_str(),
            row.latest_decision.map_or("-", |d| d.as_str())
        );
    }
    println!(
        "   status: {} properties ({} scored), {} touches, {} outcomes, {} decisions; {} pending, {} refused; cursor {}",
        counts.properties,
        counts.scored_properties,
        counts.touches,
        counts.outcomes,
        counts.decisions,
        pending.pending,
        pending.refused,
        state.cursor.as_deref().unwrap_or("-")
    );
    Ok(())
}

async fn counts(laptop: &Laptop) -> anyhow::Result<RecordCounts> {
    Ok(laptop.engine.with_store(|s| s.record_counts()).await?)
}

/// Hides a password in a connection URL.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if url[s + 3..at].contains(':') => {
            let user_end = url[s + 3..at].find(':').map_or(at, |i| s + 3 + i);
            format!("{}:***{}", &url[..user_end], &url[at..])
        }
        _ => url.to_owned(),
    }
}
