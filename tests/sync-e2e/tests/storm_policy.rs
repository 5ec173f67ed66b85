//! The office's policy mode reaches the laptop end to end: the real server in-process (HTTP through a
//! fault proxy), real PostgreSQL, a real SQLCipher laptop file driven by the real sync engine. The office
//! sets `aggressive` through the admin API, the laptop syncs and decides offline in that mode (more
//! properties treated than moderate would), the office changes to `conservative`, the laptop re-syncs and
//! follows. A protocol-1 laptop of the same tenant keeps syncing and is never sent the policy.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use desktop_core::policy::{ModeSource, OfflineDecisions, decide_offline};
use domain::{
    Arm, ArmAssignment, Decision, DeviceId, Experiment, ExperimentId, PolicyMode, Role, StormId,
    Timestamp, UpliftScore,
};
use fault_proxy::Fault;
use sync_client::SyncClient;
use sync_server::state::ServerSettings;

const PROPERTIES: usize = 40;

fn treated(run: &OfflineDecisions) -> usize {
    run.decisions
        .iter()
        .filter(|d| d.decision == Decision::Treat)
        .count()
}

/// The storm's experiment (even properties treated, odd held out) and a score per property, written
/// server-side as training would write them, so they reach laptops through the ordinary pull.
async fn experiment_and_scores(backend: &Backend, t: &Tenant) {
    let now = Timestamp::now();
    let experiment = Experiment {
        id: ExperimentId::generate(),
        storm_id: t.storm,
        treatment_share: 0.5,
        seed: 7,
        started_at: now,
    };
    let arms: Vec<ArmAssignment> = t
        .properties
        .iter()
        .enumerate()
        .map(|(i, p)| ArmAssignment {
            experiment_id: experiment.id,
            property_id: *p,
            arm: if i % 2 == 0 {
                Arm::Treatment
            } else {
                Arm::Control
            },
            assigned_at: now,
        })
        .collect();
    let scores: Vec<UpliftScore> = t
        .properties
        .iter()
        .enumerate()
        .map(|(i, p)| UpliftScore {
            property_id: *p,
            storm_id: t.storm,
            uplift: 0.01 * (i as f64 + 1.0),
            p_treat: 0.5,
            p_hold: 0.5 - 0.01 * (i as f64 + 1.0),
            model_version: "e2e-1".into(),
            trained_at: now,
            data_watermark: 1,
        })
        .collect();
    let mut tx = backend.app.begin_tenant(t.id).await.unwrap();
    tx.insert_experiment(&experiment, now).await.unwrap();
    tx.insert_arm_assignments(&arms, now).await.unwrap();
    tx.upsert_uplift_scores(&scores, now).await.unwrap();
    tx.commit().await.unwrap();
}

async fn set_mode(server: std::net::SocketAddr, token: &str, storm: StormId, mode: &str) {
    let response = reqwest::Client::new()
        .put(format!("http://{server}/v1/admin/storms/{storm}/policy"))
        .header(
            sync_protocol::PROTOCOL_HEADER,
            sync_protocol::PROTOCOL_VERSION.to_string(),
        )
        .bearer_auth(token)
        .json(&serde_json::json!({ "mode": mode }))
        .send()
        .await
        .expect("the server answers");
    assert!(
        response.status().is_success(),
        "set {mode}: {}",
        response.status()
    );
}

/// Syncs until the laptop holds the storm's policy in `mode` (a pull may stop below a transaction still
/// open elsewhere in the cluster; the next sync brings the rest).
async fn sync_until_mode(l: &Laptop, storm: StormId, mode: PolicyMode) {
    for _ in 0..200 {
        l.engine.sync_once().await.expect("sync");
        let held = l
            .engine
            .with_store(move |s| s.storm_policy(storm))
            .await
            .unwrap();
        if held.map(|p| p.mode) == Some(mode) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the laptop never received the {mode} policy");
}

async fn decide(l: &Laptop, storm: StormId, mode: Option<PolicyMode>) -> OfflineDecisions {
    let user = l.user;
    l.engine
        .with_store(move |s| Ok(decide_offline(s, storm, mode, None, user)))
        .await
        .unwrap()
        .expect("decide offline")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_policy_mode_reaches_the_laptop_and_decides_offline() {
    let backend = Backend::fresh().await;
    let server = backend.serve(ServerSettings::default()).await;
    let dirs = tempfile::tempdir().unwrap();
    let t = backend
        .tenant(
            "Policy Roofing",
            &[("chief@policy.example", Role::CrewChief)],
            PROPERTIES,
            "Policy",
        )
        .await;
    experiment_and_scores(&backend, &t).await;
    let chief = laptop(
        server.addr,
        &t.slug,
        "chief@policy.example",
        &dirs.path().join("chief"),
        test_config(),
    )
    .await;
    let old = laptop_with_protocol(
        server.addr,
        &t.slug,
        "chief@policy.example",
        &dirs.path().join("old"),
        test_config(),
        1,
    )
    .await;

    let office = SyncClient::new(&format!("http://{}", server.addr))
        .unwrap()
        .login(&sync_protocol::LoginRequest {
            tenant_slug: t.slug.clone(),
            email: t.admin_email.clone(),
            password: PASSWORD.into(),
            device_id: DeviceId::generate(),
            device_name: "office".into(),
        })
        .await
        .expect("admin login");
    set_mode(server.addr, &office.access_token, t.storm, "aggressive").await;

    // The laptop syncs, then works offline: the decisions follow the office's mode.
    sync_until_mode(&chief, t.storm, PolicyMode::Aggressive).await;
    let policy = chief
        .engine
        .with_store({
            let storm = t.storm;
            move |s| s.storm_policy(storm)
        })
        .await
        .unwrap()
        .expect("synced");
    assert_eq!(policy.updated_by, Some(office.user_id));
    chief.proxy.set(Fault::Outage);
    let aggressive = decide(&chief, t.storm, None).await;
    assert_eq!(aggressive.mode.mode, PolicyMode::Aggressive);
    assert_eq!(aggressive.mode.source, ModeSource::Office);
    assert_eq!(aggressive.decisions.len(), PROPERTIES);
    assert!(
        aggressive
            .decisions
            .iter()
            .all(|d| d.mode == PolicyMode::Aggressive)
    );
    // What moderate would have done (the caller's mode wins over the office's, and says so).
    let moderate = decide(&chief, t.storm, Some(PolicyMode::Moderate)).await;
    assert_eq!(moderate.mode.source, ModeSource::Caller);
    assert!(
        moderate
            .decisions
            .iter()
            .all(|d| d.mode == PolicyMode::Moderate)
    );
    // 20 treatment-arm properties: aggressive treats half of them, moderate a quarter.
    assert_eq!((treated(&aggressive), treated(&moderate)), (10, 5));
    chief.proxy.set(Fault::Pass);

    // The office changes its mind; the laptop re-syncs and follows.
    set_mode(server.addr, &office.access_token, t.storm, "conservative").await;
    sync_until_mode(&chief, t.storm, PolicyMode::Conservative).await;
    let conservative = decide(&chief, t.storm, None).await;
    assert_eq!(conservative.mode.mode, PolicyMode::Conservative);
    assert_eq!(conservative.mode.source, ModeSource::Office);
    assert_eq!(treated(&conservative), 2);
    // The decisions reach the server with the mode they were made in.
    chief.engine.sync_once().await.expect("push decisions");
    let mut tx = backend.app.begin_tenant(t.id).await.unwrap();
    let modes: Vec<(String, i64)> =
        sqlx::query_as("SELECT mode, count(*) FROM policy_decisions GROUP BY mode ORDER BY mode")
            .fetch_all(tx.connection())
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        modes,
        vec![
            ("aggressive".to_owned(), PROPERTIES as i64),
            ("conservative".to_owned(), PROPERTIES as i64),
            ("moderate".to_owned(), PROPERTIES as i64),
        ]
    );

    // A protocol-1 laptop of the same tenant syncs the rest of the storm as before, without the policy:
    // it decides in the default mode.
    for _ in 0..200 {
        old.engine.sync_once().await.expect("protocol 1 syncs");
        let scored = old
            .engine
            .with_store({
                let storm = t.storm;
                move |s| s.scored_arms(storm)
            })
            .await
            .unwrap();
        if scored.len() == PROPERTIES {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let held = old
        .engine
        .with_store({
            let storm = t.storm;
            move |s| s.storm_policy(storm)
        })
        .await
        .unwrap();
    assert_eq!(held, None, "protocol 1 is never sent the policy");
    let by_default = decide(&old, t.storm, None).await;
    assert_eq!(by_default.mode.source, ModeSource::Default);
    assert_eq!(treated(&by_default), 5);
    server.stop().await;
}
