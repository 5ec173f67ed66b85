//! The demo's learning loop: the office creates the storm's experiment over the admin route, pushes the
//! storm's outcomes, the server trains, the office sets the storm's policy mode on the server, the laptops
//! pull scores with their provenance and the office's mode, one laptop decides treat/hold offline with the
//! policy in the office's mode (it names none itself), and the experiment summary shows the lift with its
//! 95 % CI.

use anyhow::{Context, bail};
use desktop_core::policy::{DEFAULT_MODE, ModeSource};
use domain::*;
use sync_client::SyncClient;
use sync_protocol::{PROTOCOL_HEADER, PROTOCOL_VERSION};
use uplift::experiment::{arm_for, assignment_draw};
use uplift::policy::PolicyConfig;
use uplift::synthetic::SyntheticStorm;

use crate::laptop::Laptop;
use crate::step;

const TREATMENT_SHARE: f64 = 0.5;
/// The mode the office sets for the storm: not the product's default (moderate), so the crew chief's
/// decision visibly follows the office. Conservative treats the top 10 % of the treatment arm, well within
/// the crew's capacity, so the mode (not the capacity) is what decides how many get a visit.
const OFFICE_MODE: PolicyMode = PolicyMode::Conservative;
const CAPACITY: usize = 400;

/// The outcome of property `i` under the arm the server assigned: the synthetic storm's observed outcome
/// when the arms agree, else a seeded draw from the storm's ground truth under the server's arm.
fn converted(synthetic: &SyntheticStorm, i: usize, arm: Arm) -> bool {
    if synthetic.arms[i] == arm {
        return synthetic.converted[i];
    }
    let chance = synthetic.true_p_hold[i]
        + if arm == Arm::Treatment {
            synthetic.true_uplift[i]
        } else {
            0.0
        };
    assignment_draw(0x5eed_0fda_7a00_0001, synthetic.properties[i].id) < chance
}

fn number(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Sets the storm's policy mode on the server as the office: `PUT /v1/admin/storms/{storm}/policy`
/// (admins only). The server writes the mode and a tenant-wide `storm_policy` feed row together, so every
/// laptop of the tenant pulls it in its next sync.
async fn set_storm_policy(
    office: &Laptop,
    storm: StormId,
    mode: PolicyMode,
) -> anyhow::Result<serde_json::Value> {
    let response = reqwest::Client::new()
        .put(format!(
            "http://{}/v1/admin/storms/{storm}/policy",
            office.server
        ))
        .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string())
        .bearer_auth(office.access_token())
        .json(&serde_json::json!({ "mode": mode.as_str() }))
        .send()
        .await
        .context("setting the storm's policy mode")?;
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        bail!("setting the storm's policy mode: {status}: {body}");
    }
    serde_json::from_str(&body).context("decoding the storm's policy")
}

/// Steps 8 to 11 of the demo.
pub async fn run(
    office: &Laptop,
    laptops: &[Laptop],
    synthetic: &SyntheticStorm,
) -> anyhow::Result<()> {
    let storm = synthetic.storm_id;
    let admin = SyncClient::new(&format!("http://{}", office.server))?;
    let token = office.access_token();

    step("8. The office starts the storm's experiment: a random holdout, every property in an arm");
    let created = admin
        .admin_create_experiment(token, storm, TREATMENT_SHARE)
        .await
        .context("creating the experiment")?;
    let seed = created["experiment"]["seed"]
        .as_u64()
        .context("the experiment has no seed")?;
    println!(
        "   experiment over {} properties: {} treatment, {} control (holdout), treatment share {TREATMENT_SHARE}",
        created["assigned"], created["treatment"], created["control"]
    );

    step("9. The storm's outcomes come in (pushed by the office) and the server trains");
    let now = office.engine.with_store(|s| Ok(s.now())).await?;
    let mut outcomes = Vec::with_capacity(synthetic.properties.len());
    for (i, p) in synthetic.properties.iter().enumerate() {
        let arm = arm_for(seed, p.id, TREATMENT_SHARE)?;
        let converted = converted(synthetic, i, arm);
        outcomes.push(Outcome {
            id: OutcomeId::generate(),
            property_id: p.id,
            storm_id: storm,
            converted,
            contract_value: Cents(if converted { 1_450_000 } else { 0 }),
            occurred_at: now,
        });
    }
    let count = outcomes.len();
    office
        .engine
        .with_store(move |s| {
            for o in &outcomes {
                s.add_outcome(o)?;
            }
            Ok(())
        })
        .await?;
    let report = office.engine.sync_once().await?;
    println!(
        "   office pushed {count} outcomes ({} changes in {} batches)",
        report.pushed, report.push_batches
    );
    let summary = admin.admin_train(token, storm).await.context("training")?;
    let model = &summary["model"];
    let version = model["version"].as_str().unwrap_or("?").to_owned();
    println!(
        "   model {version} ({}) trained on {} rows; holdout of {}: Qini {:.3}, AUUC {:.3}, uplift@30% {:+.3}; {} properties rescored",
        model["learner"].as_str().unwrap_or("?"),
        model["training_rows"],
        summary["holdout_rows"],
        number(&model["qini"]),
        number(&model["auuc"]),
        number(&model["uplift_at_30"]),
        summary["scored"]
    );

    step(
        "10. The office sets the storm's policy mode; the laptops pull it with the new scores; the crew chief's laptop decides offline",
    );
    let policy = set_storm_policy(office, storm, OFFICE_MODE).await?;
    println!(
        "   office set the storm's policy mode to {} on the server (the product default is {DEFAULT_MODE})",
        policy["mode"].as_str().unwrap_or("?")
    );
    for laptop in laptops {
        laptop.engine.sync_once().await?;
        let scored = laptop
            .engine
            .with_store(move |s| s.scored_arms(storm))
            .await?;
        let versions: std::collections::BTreeSet<_> = scored
            .iter()
            .map(|(s, _)| s.model_version.clone())
            .collect();
        let watermark = scored.first().map_or(0, |(s, _)| s.data_watermark);
        let synced = laptop
            .engine
            .with_store(move |s| s.storm_policy(storm))
            .await?;
        println!(
            "   {:<22} {} properties scored, model {}, data watermark {watermark}, policy mode {}",
            laptop.name,
            scored.len(),
            versions.into_iter().collect::<Vec<_>>().join(", "),
            synced.as_ref().map_or("none", |p| p.mode.as_str())
        );
        if synced.map(|p| p.mode) != Some(OFFICE_MODE) {
            bail!("{} did not pull the office's policy mode", laptop.name);
        }
    }
    let chief = laptops
        .iter()
        .find(|l| l.role == Role::CrewChief)
        .context("no crew chief laptop")?;
    chief.go_offline();
    let user = chief.user_id;
    // No mode named here: the laptop decides in the office's mode for the storm, as last synced.
    let offline = chief
        .engine
        .with_store(move |s| {
            Ok(desktop_core::policy::decide_offline(
                s,
                storm,
                None,
                Some(CAPACITY),
                user,
            ))
        })
        .await??;
    let (used, decisions) = (offline.mode, offline.decisions);
    if used.source != ModeSource::Office || used.mode != OFFICE_MODE {
        bail!(
            "the offline decision used mode {} ({}), not the office's {OFFICE_MODE}",
            used.mode,
            used.source.as_str()
        );
    }
    if let Some(d) = decisions.iter().find(|d| d.mode != used.mode) {
        bail!("decision {} was made in mode {}", d.id, d.mode);
    }
    let arms = chief
        .engine
        .with_store(move |s| s.scored_arms(storm))
        .await?;
    let control: std::collections::HashSet<PropertyId> = arms
        .iter()
        .filter(|(_, a)| *a == Arm::Control)
        .map(|(s, _)| s.property_id)
        .collect();
    let treat = decisions
        .iter()
        .filter(|d| d.decision == Decision::Treat)
        .count();
    let control_held = decisions
        .iter()
        .filter(|d| control.contains(&d.property_id) && d.decision == Decision::Hold)
        .count();
    let source = match used.source {
        ModeSource::Office => "set by the office, synced",
        ModeSource::Caller => "named by the caller",
        ModeSource::Default => "the default",
    };
    println!(
        "   offline, no mode named: mode {} ({source}): at most the top {:.0}% of the {} treatment-arm properties, capacity {CAPACITY}",
        used.mode,
        100.0 * PolicyConfig::default().share(used.mode),
        arms.len() - control.len()
    );
    println!(
        "   treat {treat}, hold {}; all {control_held} of {} control-arm properties held",
        decisions.len() - treat,
        control.len()
    );
    if control_held != control.len() {
        bail!("a control-arm property was treated");
    }
    chief.go_online();
    let report = chief.engine.sync_once().await?;
    println!(
        "   back online: pushed {} decisions with model {version}",
        report.pushed
    );

    step("11. The experiment summary: what treating did, with its uncertainty");
    let summary = admin.admin_experiment_summary(token, storm).await?;
    let lift = &summary["lift"];
    println!(
        "   treatment converted {:.1}% of {}, control {:.1}% of {}",
        100.0 * number(&lift["treated_rate"]),
        summary["treatment"]["with_outcome"],
        100.0 * number(&lift["control_rate"]),
        summary["control"]["with_outcome"]
    );
    println!(
        "   lift {:+.1} points, 95% CI [{:+.1}, {:+.1}], p = {:.2e}",
        100.0 * number(&lift["lift"]),
        100.0 * number(&lift["ci_low"]),
        100.0 * number(&lift["ci_high"]),
        number(&lift["p_value"])
    );
    // Everyone takes the chief's decisions along, so the summary compares like with like.
    for laptop in laptops {
        laptop.engine.sync_once().await?;
    }
    office.engine.sync_once().await?;
    Ok(())
}
