//! The learning loop over real HTTP and PostgreSQL: an experiment over a synthetic storm, outcomes pushed
//! by the office, training refused with typed errors until the data suffice, then scores that reach a
//! laptop-style pull with their model version and watermark; two concurrent trainings register one
//! model; the health checks flag a bad uplift mean; and the role matrix of the admin routes.

mod harness;

use domain::*;
use harness::*;
use serde_json::{Value, json};
use sync_protocol::{Entity, ErrorCode};
use uplift::experiment::{arm_for, assignment_draw};
use uplift::synthetic::{SyntheticStorm, SyntheticStormConfig};
use uuid::Uuid;

const SYNTHETIC: usize = 1_200;

/// Writes a synthetic storm and its properties into `tenant` with the server-side writers.
async fn write_storm(h: &Harness, tenant: TenantId) -> SyntheticStorm {
    let storm = SyntheticStorm::generate(&SyntheticStormConfig {
        properties: SYNTHETIC,
        seed: 11,
        ..SyntheticStormConfig::default()
    })
    .expect("synthetic storm");
    let now = Timestamp::now();
    let clock = Hlc::new(now.millis() as u64 - 60_000, 0, 0);
    let mut tx = h.app.begin_tenant(tenant).await.expect("tx");
    tx.upsert_storms(&[harness::storm(storm.storm_id, now)], clock, now)
        .await
        .expect("storm");
    tx.upsert_properties(&storm.properties, clock, now)
        .await
        .expect("properties");
    tx.commit().await.expect("commit");
    storm
}

/// Outcomes drawn from the synthetic truth under each property's server-assigned arm (a seeded,
/// deterministic draw per property), for the properties at `range`.
fn outcomes(
    storm: &SyntheticStorm,
    seed: u64,
    share: f64,
    range: std::ops::Range<usize>,
) -> Vec<Outcome> {
    range
        .map(|i| {
            let p = &storm.properties[i];
            let arm = arm_for(seed, p.id, share).expect("arm");
            let chance = storm.true_p_hold[i]
                + if arm == Arm::Treatment {
                    storm.true_uplift[i]
                } else {
                    0.0
                };
            let converted = assignment_draw(0x0c0f_fee0, p.id) < chance;
            Outcome {
                id: OutcomeId::generate(),
                property_id: p.id,
                storm_id: storm.storm_id,
                converted,
                contract_value: Cents(if converted { 1_500_000 } else { 0 }),
                occurred_at: Timestamp::now(),
            }
        })
        .collect()
}

async fn push_outcomes(h: &Harness, session: &Session, records: &[Outcome]) {
    for chunk in records.chunks(500) {
        let changes: Vec<_> = chunk
            .iter()
            .map(|o| {
                change(
                    session,
                    Entity::Outcome,
                    o.id.0,
                    sync_protocol::ChangeOp::Insert,
                    o,
                )
            })
            .collect();
        let got = h.push(session, &changes).await;
        assert!(
            receipt_statuses("outcomes", &got)
                .iter()
                .all(|s| s == "accepted"),
            "{}",
            got.1
        );
    }
}

fn path(storm: StormId, tail: &str) -> String {
    format!("/v1/admin/storms/{storm}/{tail}")
}

#[tokio::test]
async fn experiment_outcomes_training_scores_and_health() {
    let h = Harness::start().await;
    let admin = h.a.session(Role::Admin).clone();
    let field = h.a.session(Role::FieldUser).clone();
    let storm = write_storm(&h, h.a.id).await;
    let train = path(storm.storm_id, "train");

    // No experiment yet: a typed refusal.
    let got = h.post(&train, Some(admin.access()), &json!({})).await;
    assert_error(
        "train without experiment",
        &got,
        422,
        ErrorCode::NoExperiment,
    );

    // The experiment assigns every property, deterministically by seed; a second one is refused.
    let got = h
        .post(
            &path(storm.storm_id, "experiment"),
            Some(admin.access()),
            &json!({ "treatment_share": 0.5 }),
        )
        .await;
    assert_ok("create experiment", &got);
    assert_eq!(got.1["assigned"], json!(SYNTHETIC));
    let seed = got.1["experiment"]["seed"].as_u64().expect("seed");
    let treated = storm
        .properties
        .iter()
        .filter(|p| arm_for(seed, p.id, 0.5).expect("arm") == Arm::Treatment)
        .count();
    assert_eq!(got.1["treatment"], json!(treated));
    assert_eq!(h.count(h.a.id, "arm_assignments").await, SYNTHETIC as i64);
    let again = h
        .post(
            &path(storm.storm_id, "experiment"),
            Some(admin.access()),
            &json!({ "treatment_share": 0.3 }),
        )
        .await;
    assert_error("second experiment", &again, 409, ErrorCode::Conflict);

    // Too few outcomes: 422 not_enough_data, and no model or score appears.
    let first = outcomes(&storm, seed, 0.5, 0..40);
    push_outcomes(&h, &admin, &first).await;
    let got = h.post(&train, Some(admin.access()), &json!({})).await;
    assert_error("too few outcomes", &got, 422, ErrorCode::NotEnoughData);
    assert!(
        got.1["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("not enough data: need 100 per arm, have ")),
        "{}",
        got.1
    );
    assert_eq!(h.count(h.a.id, "models").await, 0);
    assert_eq!(h.count(h.a.id, "uplift_scores").await, 0);

    // Every property's outcome, then two trainings at once: exactly one model for this data.
    let rest = outcomes(&storm, seed, 0.5, 40..SYNTHETIC);
    push_outcomes(&h, &admin, &rest).await;
    // Two training tasks of the same tenant at once (as two server instances' trainers would run).
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let state = h.server.state.clone();
            let (tenant, storm_id) = (h.a.id, storm.storm_id);
            tokio::spawn(async move {
                sync_server::learning::train_tenant_storm(&state, tenant, storm_id).await
            })
        })
        .collect();
    let mut summaries = Vec::new();
    for task in tasks {
        match task.await.expect("training task") {
            Ok(summary) => summaries.push(summary),
            Err(e) => assert_eq!(e.code(), "training_in_progress", "{e}"),
        }
    }
    let trained: Vec<_> = summaries.iter().filter(|s| s.retrained).collect();
    assert_eq!(trained.len(), 1, "{summaries:?}");
    assert_eq!(h.count(h.a.id, "models").await, 1);
    let summary = serde_json::to_value(trained[0]).expect("summary json");
    let summary = &summary;
    let version = summary["model"]["version"]
        .as_str()
        .expect("version")
        .to_owned();
    let watermark = summary["model"]["data_watermark"]
        .as_i64()
        .expect("watermark");
    assert_eq!(summary["scored"], json!(SYNTHETIC));
    assert!(summary["holdout_rows"].as_u64().is_some_and(|n| n > 300));
    assert!(
        summary["model"]["qini"]
            .as_f64()
            .is_some_and(f64::is_finite)
    );
    // Training again without new outcomes keeps the model in service.
    let got = h.post(&train, Some(admin.access()), &json!({})).await;
    assert_ok("retrain without news", &got);
    assert_eq!(got.1["retrained"], json!(false));
    assert_eq!(h.count(h.a.id, "models").await, 1);
    // Metering: the one trained model is one `model_runs` usage event; the refusals and the no-news
    // retrain meter nothing, and tenant B has none.
    let model_runs = "usage_events WHERE kind = 'model_runs'";
    assert_eq!(h.count(h.a.id, model_runs).await, 1);
    assert_eq!(h.count(h.b.id, model_runs).await, 0);

    // A laptop's pull brings every score with its provenance.
    let pulled = h
        .pull_until(&field, |all| {
            all.iter()
                .filter(|c| c.entity == Entity::UpliftScore)
                .count()
                >= SYNTHETIC
        })
        .await;
    let scores: Vec<UpliftScore> = pulled
        .iter()
        .filter(|c| c.entity == Entity::UpliftScore)
        .map(|c| serde_json::from_value(c.record.clone()).expect("score record"))
        .collect();
    assert_eq!(scores.len(), SYNTHETIC);
    assert!(scores.iter().all(|s| s.model_version == version
        && s.data_watermark == watermark
        && s.storm_id == storm.storm_id));

    // The experiment summary: arms, lift with CI and p-value, the model.
    let got = h
        .get(&path(storm.storm_id, "experiment"), Some(field.access()))
        .await;
    assert_error(
        "field user reads experiment",
        &got,
        403,
        ErrorCode::Forbidden,
    );
    let viewer = h.a.session(Role::Viewer).clone();
    let got = h
        .get(&path(storm.storm_id, "experiment"), Some(viewer.access()))
        .await;
    assert_ok("experiment summary", &got);
    let lift = &got.1["lift"];
    let (low, mid, high) = (
        lift["ci_low"].as_f64().expect("ci_low"),
        lift["lift"].as_f64().expect("lift"),
        lift["ci_high"].as_f64().expect("ci_high"),
    );
    assert!(low < mid && mid < high, "{lift}");
    assert!(
        lift["p_value"]
            .as_f64()
            .is_some_and(|p| (0.0..=1.0).contains(&p))
    );
    assert_eq!(got.1["model"]["version"], json!(version));
    assert_eq!(
        got.1["treatment"]["with_outcome"].as_u64().unwrap_or(0)
            + got.1["control"]["with_outcome"].as_u64().unwrap_or(0),
        SYNTHETIC as u64
    );

    // Health: a bad uplift mean (every score 0.6) raises an alert with its runbook, and is stored.
    let now = Timestamp::now();
    let bad: Vec<UpliftScore> = scores
        .iter()
        .map(|s| UpliftScore {
            uplift: 0.6,
            p_treat: 0.8,
            p_hold: 0.2,
            trained_at: now,
            ..s.clone()
        })
        .collect();
    let mut tx = h.app.begin_tenant(h.a.id).await.expect("tx");
    tx.upsert_uplift_scores(&bad, now)
        .await
        .expect("bad scores");
    tx.commit().await.expect("commit");
    let before = h.count(h.a.id, "data_quality_metrics").await;
    let got = h
        .get(&path(storm.storm_id, "health"), Some(admin.access()))
        .await;
    assert_ok("health", &got);
    let readings = got.1["readings"].as_array().expect("readings").clone();
    let mean: &Value = readings
        .iter()
        .find(|r| r["check"] == json!("uplift_mean"))
        .expect("uplift mean reading");
    assert_eq!(mean["status"], json!("alert"), "{mean}");
    assert!((mean["value"].as_f64().unwrap_or(0.0) - 0.6).abs() < 1e-9);
    assert_eq!(mean["runbook"], json!(uplift::health::RUNBOOK_UPLIFT));
    assert_eq!(
        h.count(h.a.id, "data_quality_metrics").await,
        before + readings.len() as i64
    );
    // The tenant's own thresholds replace the defaults: 0.6 is fine up to 0.7. Only an admin sets them;
    // bad ones are refused and change nothing.
    const THRESHOLDS: &str = "/v1/admin/health/thresholds";
    for (case, body) in [
        ("unknown name", json!({ "uplift_mean_hi": 0.7 })),
        ("not a number", json!({ "uplift_mean_high": "high" })),
        ("share above 1", json!({ "min_recent_volume_share": 1.5 })),
        (
            "crossed bounds",
            json!({ "uplift_mean_low": 0.8, "uplift_mean_high": 0.7 }),
        ),
        ("not an object", json!([0.7])),
    ] {
        let got = h.put(THRESHOLDS, Some(admin.access()), &body).await;
        assert_error(case, &got, 422, ErrorCode::ValidationFailed);
    }
    let got = h
        .put(
            THRESHOLDS,
            Some(viewer.access()),
            &json!({ "uplift_mean_high": 0.7 }),
        )
        .await;
    assert_error("viewer sets thresholds", &got, 403, ErrorCode::Forbidden);
    assert_eq!(h.count(h.a.id, "tenant_settings").await, 0);
    let got = h
        .put(
            THRESHOLDS,
            Some(admin.access()),
            &json!({ "uplift_mean_high": 0.7 }),
        )
        .await;
    assert_ok("admin sets thresholds", &got);
    let got = h.get(THRESHOLDS, Some(viewer.access())).await;
    assert_ok("viewer reads thresholds", &got);
    assert_eq!(got.1["thresholds"]["uplift_mean_high"], json!(0.7));
    assert_eq!(got.1["overrides"], json!({ "uplift_mean_high": 0.7 }));
    assert_eq!(got.1["defaults"]["uplift_mean_high"], json!(0.3));
    let stored = h.count(h.a.id, "data_quality_metrics").await;
    let got = h
        .get(&path(storm.storm_id, "health"), Some(viewer.access()))
        .await;
    assert_ok("health with tenant thresholds", &got);
    assert_eq!(
        h.count(h.a.id, "data_quality_metrics").await,
        stored,
        "a viewer's read stores nothing"
    );
    assert_eq!(got.1["thresholds"]["uplift_mean_high"], json!(0.7));
    let mean = got.1["readings"]
        .as_array()
        .and_then(|r| {
            r.iter()
                .find(|r| r["check"] == json!("uplift_mean"))
                .cloned()
        })
        .expect("uplift mean reading");
    assert_eq!(mean["status"], json!("ok"), "{mean}");
    assert_eq!(h.count(h.b.id, "tenant_settings").await, 0);

    // The operator CLI shows and changes the same thresholds and runs the same checks (and stores them).
    let (ok, got) = h.operator_cli(&["health", "thresholds", "--tenant", &h.a.slug]);
    assert!(ok, "{got}");
    assert_eq!(got["thresholds"]["uplift_mean_high"], json!(0.7));
    let (ok, got) = h.operator_cli(&[
        "health",
        "thresholds",
        "--tenant",
        &h.a.slug,
        "--set",
        "uplift_mean_hi=0.5",
    ]);
    assert!(!ok, "an unknown threshold is refused");
    assert_eq!(got["error"]["code"], json!("validation_failed"), "{got}");
    let (ok, got) = h.operator_cli(&["health", "thresholds", "--tenant", &h.a.slug, "--reset"]);
    assert!(ok, "{got}");
    assert_eq!(got["thresholds"]["uplift_mean_high"], json!(0.3));
    let stored = h.count(h.a.id, "data_quality_metrics").await;
    let storm_text = storm.storm_id.to_string();
    let (ok, got) = h.operator_cli(&[
        "health",
        "run",
        "--tenant",
        &h.a.slug,
        "--storm",
        &storm_text,
    ]);
    assert!(ok, "{got}");
    let cli_mean = got["readings"]
        .as_array()
        .and_then(|r| {
            r.iter()
                .find(|r| r["check"] == json!("uplift_mean"))
                .cloned()
        })
        .expect("uplift mean reading from the CLI");
    assert_eq!(
        cli_mean["status"],
        json!("alert"),
        "defaults are back: 0.6 is too high"
    );
    assert!(h.count(h.a.id, "data_quality_metrics").await > stored);
    let (ok, got) = h.operator_cli(&["health", "run", "--tenant", &h.a.slug, "--storm", "nope"]);
    assert!(!ok);
    assert_eq!(got["error"]["code"], json!("validation_failed"), "{got}");

    // The background trainer's round: nothing new since the model, nothing trained; after new
    // outcomes at its threshold, exactly this storm is retrained (the harness's storms have no experiment).
    let state = h.server.state.clone();
    let round = sync_server::learning::training_round(&state, 1)
        .await
        .expect("round");
    assert_eq!(round, 0);
    let more = outcomes(&storm, seed, 0.5, 0..25);
    push_outcomes(&h, &admin, &more).await;
    let round = sync_server::learning::training_round(&state, 26)
        .await
        .expect("round");
    assert_eq!(round, 0, "below the threshold");
    let round = sync_server::learning::training_round(&state, 25)
        .await
        .expect("round");
    assert_eq!(round, 1);
    assert_eq!(h.count(h.a.id, "models").await, 2);
    // Tenant B sees none of it.
    assert_eq!(h.count(h.b.id, "models").await, 0);
    assert_eq!(h.count(h.b.id, "data_quality_metrics").await, 0);
    h.stop().await;
}

#[tokio::test]
async fn admin_routes_follow_the_role_matrix() {
    let h = Harness::start().await;
    let storm = h.a.storm;
    let admin = h.a.session(Role::Admin).clone();
    // Writes: admin only.
    for role in [Role::CrewChief, Role::FieldUser, Role::Viewer] {
        let s = h.a.session(role);
        for p in [path(storm, "experiment"), path(storm, "train")] {
            let got = h
                .post(&p, Some(s.access()), &json!({ "treatment_share": 0.5 }))
                .await;
            assert_error(&format!("{role} POST {p}"), &got, 403, ErrorCode::Forbidden);
        }
    }
    let got = h
        .post(
            &path(storm, "experiment"),
            Some(admin.access()),
            &json!({ "treatment_share": 0.5 }),
        )
        .await;
    assert_ok("admin creates", &got);
    assert_eq!(got.1["assigned"], json!(PROPERTIES));
    let got = h
        .post(&path(storm, "train"), Some(admin.access()), &json!({}))
        .await;
    assert_error("six properties", &got, 422, ErrorCode::NotEnoughData);
    // Reads: admin, crew chief, viewer; never a field user.
    for role in ROLES {
        let s = h.a.session(role);
        for p in [
            path(storm, "experiment"),
            path(storm, "health"),
            "/v1/admin/models".to_owned(),
        ] {
            let got = h.get(&p, Some(s.access())).await;
            if role == Role::FieldUser {
                assert_error(&format!("{role} GET {p}"), &got, 403, ErrorCode::Forbidden);
            } else {
                assert_ok(&format!("{role} GET {p}"), &got);
            }
        }
    }
    // Another tenant's storm is not found; a bad id is a 400; no token is a 401.
    let got = h
        .get(
            &path(storm, "experiment"),
            Some(h.b.session(Role::Admin).access()),
        )
        .await;
    assert_error("cross-tenant", &got, 404, ErrorCode::NotFound);
    let got = h
        .get("/v1/admin/storms/nope/health", Some(admin.access()))
        .await;
    assert_error("bad id", &got, 400, ErrorCode::InvalidUuid);
    let got = h.get("/v1/admin/models", None).await;
    assert_error("no token", &got, 401, ErrorCode::Unauthenticated);
    h.stop().await;
}

/// Every property of a storm with an experiment has exactly one arm, by `arm_for`: the ones written when
/// the experiment was created, and the ones an office import adds afterwards (assigned by their push).
async fn arms_of_storm(
    h: &Harness,
    tenant: TenantId,
    storm: StormId,
) -> (i64, Vec<(Uuid, String)>) {
    let mut tx = h.app.begin_tenant(tenant).await.expect("tenant tx");
    let without: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM properties p WHERE p.storm_id = $1
            AND NOT EXISTS (SELECT 1 FROM arm_assignments a WHERE a.property_id = p.id)",
    )
    .bind(storm.0)
    .fetch_one(tx.connection())
    .await
    .expect("unassigned");
    let arms: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT a.property_id, a.arm FROM arm_assignments a
           JOIN properties p ON p.id = a.property_id WHERE p.storm_id = $1",
    )
    .bind(storm.0)
    .fetch_all(tx.connection())
    .await
    .expect("arms");
    tx.commit().await.expect("commit");
    (without, arms)
}

fn property_changes(
    session: &Session,
    storm: StormId,
    from: usize,
    n: usize,
) -> Vec<sync_protocol::Change> {
    (from..from + n)
        .map(|i| {
            let p = property(PropertyId::generate(), storm, i);
            change(
                session,
                Entity::Property,
                p.id.0,
                sync_protocol::ChangeOp::Insert,
                &p,
            )
        })
        .collect()
}

#[tokio::test]
async fn properties_imported_after_the_experiment_starts_get_their_arm() {
    let h = Harness::start().await;
    let admin = h.a.session(Role::Admin).clone();
    let field = h.a.session(Role::FieldUser).clone();
    let storm = write_storm(&h, h.a.id).await;
    let got = h
        .post(
            &path(storm.storm_id, "experiment"),
            Some(admin.access()),
            &json!({ "treatment_share": 0.7 }),
        )
        .await;
    assert_ok("create experiment", &got);
    let seed = got.1["experiment"]["seed"].as_u64().expect("seed");
    let experiment_id = got.1["experiment"]["id"].as_str().expect("id").to_owned();

    // The office imports 300 more properties after the experiment started.
    let late = property_changes(&admin, storm.storm_id, 50_000, 300);
    let pushed = h.push(&admin, &late).await;
    assert!(
        receipt_statuses("late import", &pushed)
            .iter()
            .all(|s| s == "accepted"),
        "{}",
        pushed.1
    );
    let (without, arms) = arms_of_storm(&h, h.a.id, storm.storm_id).await;
    assert_eq!(without, 0, "every property of the storm has an arm");
    assert_eq!(arms.len(), SYNTHETIC + 300, "exactly one arm per property");
    for (property, arm) in &arms {
        let expected = arm_for(seed, PropertyId::from_uuid(*property), 0.7).expect("arm");
        assert_eq!(arm, expected.as_str(), "arm of {property}");
    }

    // Replaying the import (a laptop retrying) changes nothing.
    let replay = h.push(&admin, &late).await;
    assert!(
        receipt_statuses("replayed import", &replay)
            .iter()
            .all(|s| s == "duplicate"),
        "{}",
        replay.1
    );
    assert_eq!(
        h.count(h.a.id, "arm_assignments").await,
        (SYNTHETIC + 300) as i64
    );

    // The new arms reach the field laptops through pull, so the offline policy can hold them.
    let late_ids: Vec<Uuid> = late.iter().map(|c| c.entity_id).collect();
    let pulled = h
        .pull_until(&field, |rows| {
            let arms = ids_of(rows, Entity::ArmAssignment);
            late_ids.iter().all(|id| arms.contains(id))
        })
        .await;
    let pulled_arms = ids_of(&pulled, Entity::ArmAssignment);
    assert!(late_ids.iter().all(|id| pulled_arms.contains(id)));
    assert!(pulled.iter().any(|r| r.entity == Entity::ArmAssignment
        && r.record["experiment_id"].as_str() == Some(experiment_id.as_str())));
}

#[tokio::test]
async fn an_experiment_created_during_an_import_leaves_no_property_without_an_arm() {
    let h = Harness::start().await;
    let admin = h.a.session(Role::Admin).clone();
    let storm_id = StormId::generate();
    let now = Timestamp::now();
    let mut tx = h.app.begin_tenant(h.a.id).await.expect("tx");
    tx.upsert_storms(&[harness::storm(storm_id, now)], hlc_now(), now)
        .await
        .expect("storm");
    tx.commit().await.expect("commit");

    // Twenty batches of properties race one experiment creation.
    let batches: Vec<_> = (0..20)
        .map(|b| property_changes(&admin, storm_id, b * 100, 100))
        .collect();
    let import = async {
        for batch in &batches {
            let got = h.push(&admin, batch).await;
            assert!(
                receipt_statuses("import batch", &got)
                    .iter()
                    .all(|s| s == "accepted"),
                "{}",
                got.1
            );
        }
    };
    let create = async {
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        h.post(
            &path(storm_id, "experiment"),
            Some(admin.access()),
            &json!({ "treatment_share": 0.5 }),
        )
        .await
    };
    let ((), created) = tokio::join!(import, create);
    assert_ok("experiment during import", &created);
    let (without, arms) = arms_of_storm(&h, h.a.id, storm_id).await;
    assert_eq!(
        without, 0,
        "no property of the storm is left without an arm"
    );
    assert_eq!(arms.len(), 2_000, "exactly one arm per property");
}
