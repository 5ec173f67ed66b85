//! The tenant lifecycle against real PostgreSQL as the application and control roles: provisioning with
//! typed errors and nothing half written, suspend/reactivate, export → import round trip compared table
//! by table, delete with export-or-force and a grace period, purge checked through the catalog, and the
//! audit log's append-only grant.
// Helpers of tests: a panic here is a failing test, which is what we want.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Harness, NOW, Tenant1};
use domain::*;
use server_store::{
    LifecycleError, NewRefreshToken, NewTenant, NewUser, PushOutcome, export_tenant,
    import_archive, parse_plan, provision_tenant,
};

const HOUR: i64 = 3_600_000;

fn new_tenant(slug: &str, plan: PlanTier) -> NewTenant {
    let crew = Crew {
        id: CrewId::generate(),
        name: "Default crew".into(),
        chief_id: None,
    };
    NewTenant {
        id: TenantId::generate(),
        name: format!("Tenant {slug}"),
        slug: slug.into(),
        plan,
        created_at: NOW,
        default_crew: crew,
        admin: NewUser {
            id: UserId::generate(),
            email: format!("admin@{slug}.example"),
            name: "Admin".into(),
            role: Role::Admin,
            crew_id: None,
            password_hash: "hash".into(),
        },
    }
}

async fn tenant_count(h: &Harness) -> i64 {
    let su = h.superuser_pool().await;
    sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(&su)
        .await
        .unwrap()
}

/// Rows of every tenant table belonging to `tenant`, counted as superuser (no policy in the way).
async fn rows_by_table(h: &Harness, tenant: TenantId) -> BTreeMap<String, i64> {
    let su = h.superuser_pool().await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attname = 'tenant_id' ORDER BY 1",
    )
    .fetch_all(&su)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for t in tables {
        // The superuser is subject to no policy only because it bypasses RLS; count explicitly.
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {t} WHERE tenant_id = $1"))
            .bind(tenant.0)
            .fetch_one(&su)
            .await
            .unwrap();
        out.insert(t, n);
    }
    out
}

/// A tenant with rows in as many tables as the service writes: users of every role, a crew with a chief
/// (the crews ↔ users cycle), a device and refresh token, a storm with properties, touches, outcomes,
/// decisions, a status edit (field clocks), an experiment with arms, scores and a model.
async fn busy_tenant(h: &Harness, slug: &str) -> Tenant1 {
    let t = common::provision(h, slug, 30).await;
    let changes: Vec<_> = (0..10)
        .flat_map(|i| {
            let touch = t.touch(i, &format!("note {i}, with \"quotes\" and a \\ backslash"));
            let outcome = t.outcome(i);
            vec![
                t.touch_change(&touch),
                t.change(
                    sync_protocol::Entity::Outcome,
                    outcome.id.0,
                    sync_protocol::ChangeOp::Insert,
                    &outcome,
                    2,
                ),
                t.status_change(i, PropertyStatus::InProgress, 3 + i as u64),
            ]
        })
        .collect();
    let outcome = common::push(h, &t, Role::FieldUser, &changes).await;
    assert!(matches!(outcome, PushOutcome::Applied(_)), "{outcome:?}");

    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    tx.add_crew(
        &Crew {
            id: CrewId::generate(),
            name: "Chief's crew".into(),
            chief_id: Some(t.chief),
        },
        NOW,
    )
    .await
    .unwrap();
    let experiment = Experiment {
        id: ExperimentId::generate(),
        storm_id: t.storm,
        treatment_share: 0.8,
        seed: u64::MAX - 3,
        started_at: NOW,
    };
    tx.insert_experiment(&experiment, NOW).await.unwrap();
    let arms: Vec<ArmAssignment> = t
        .properties
        .iter()
        .enumerate()
        .map(|(i, p)| ArmAssignment {
            experiment_id: experiment.id,
            property_id: *p,
            arm: if i % 5 == 0 {
                Arm::Control
            } else {
                Arm::Treatment
            },
            assigned_at: NOW,
        })
        .collect();
    tx.insert_arm_assignments(&arms, NOW).await.unwrap();
    let scores: Vec<UpliftScore> = t
        .properties
        .iter()
        .enumerate()
        .map(|(i, p)| UpliftScore {
            property_id: *p,
            storm_id: t.storm,
            uplift: 0.1 + i as f64 / 1000.0,
            p_treat: 0.3,
            p_hold: 0.2 - i as f64 / 1000.0,
            model_version: "m-1".into(),
            trained_at: NOW,
            data_watermark: 42,
        })
        .collect();
    tx.upsert_uplift_scores(&scores, NOW).await.unwrap();
    tx.insert_refresh_token(&NewRefreshToken {
        id: uuid::Uuid::now_v7(),
        family_id: uuid::Uuid::now_v7(),
        token_hash: vec![1, 2, 3, 0xff],
        user_id: t.field,
        device_id: t.device,
        issued_at: NOW,
        expires_at: Timestamp(NOW.0 + HOUR),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    t
}

fn read_table(dir: &Path, table: &str) -> Vec<u8> {
    std::fs::read(dir.join(format!("{table}.jsonl"))).unwrap()
}

#[tokio::test]
async fn provisioning_is_one_transaction_with_typed_errors() {
    let h = common::setup().await;
    let tenant = provision_tenant(&h.control, &new_tenant("acme", PlanTier::Trial))
        .await
        .unwrap();
    assert_eq!(tenant.status, TenantStatus::Active);
    assert_eq!(tenant.plan, PlanTier::Trial);
    let rows = rows_by_table(&h, tenant.id).await;
    assert_eq!(rows["users"], 1);
    assert_eq!(rows["crews"], 1);
    assert_eq!(rows["audit_log"], 1);

    // Taken slug: typed, and nothing of the second tenant is written.
    let before = tenant_count(&h).await;
    let duplicate = new_tenant("acme", PlanTier::Standard);
    let err = provision_tenant(&h.control, &duplicate).await.unwrap_err();
    assert!(
        matches!(err, LifecycleError::SlugTaken { ref slug } if slug == "acme"),
        "{err:?}"
    );
    assert_eq!(err.code(), "slug_taken");
    assert_eq!(tenant_count(&h).await, before);
    assert!(
        rows_by_table(&h, duplicate.id)
            .await
            .values()
            .all(|n| *n == 0)
    );

    // Unknown plan: typed before anything runs.
    let err = parse_plan("platinum").unwrap_err();
    assert_eq!(err.code(), "unknown_plan");
    assert!(err.to_string().contains("platinum"));
    assert_eq!(parse_plan(" enterprise ").unwrap(), PlanTier::Enterprise);

    let mut ctl = h.control.begin().await.unwrap();
    let log = ctl.lifecycle_log(tenant.id).await.unwrap();
    ctl.rollback().await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].action, "tenant.provision");
    h.teardown().await;
}

#[tokio::test]
async fn suspend_keeps_data_and_reactivate_restores_and_each_step_is_audited() {
    let h = common::setup().await;
    let t = common::provision(&h, "acme", 5).await;
    let before = rows_by_table(&h, t.id).await;
    let mut ctl = h.control.begin().await.unwrap();
    let l = ctl.suspend("acme", NOW).await.unwrap();
    assert_eq!(l.tenant.status, TenantStatus::Suspended);
    assert_eq!(l.state(), "suspended");
    // Suspending again changes nothing (and is not audited twice).
    ctl.suspend("acme", NOW).await.unwrap();
    ctl.commit().await.unwrap();
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    assert_eq!(
        tx.tenant().await.unwrap().unwrap().status,
        TenantStatus::Suspended
    );
    assert_eq!(common::count(&mut tx, "properties").await, 5);
    tx.commit().await.unwrap();

    let mut ctl = h.control.begin().await.unwrap();
    let l = ctl.reactivate("acme", NOW).await.unwrap();
    assert_eq!(l.tenant.status, TenantStatus::Active);
    let log = ctl.lifecycle_log(t.id).await.unwrap();
    ctl.commit().await.unwrap();
    let actions: Vec<_> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["tenant.suspend", "tenant.reactivate"]);
    let after = rows_by_table(&h, t.id).await;
    assert_eq!(after["audit_log"], before["audit_log"] + 2);
    assert_eq!(after["properties"], before["properties"]);

    let mut ctl = h.control.begin().await.unwrap();
    let err = ctl.suspend("nobody", NOW).await.unwrap_err();
    ctl.rollback().await.unwrap();
    assert_eq!(err.code(), "tenant_not_found");
    h.teardown().await;
}

#[tokio::test]
async fn export_then_import_round_trips_every_table_exactly() {
    let h = common::setup().await;
    let a = busy_tenant(&h, "acme").await;
    // Another tenant's rows must not leak into the archive.
    let other = busy_tenant(&h, "other").await;
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("acme-archive");
    let m = export_tenant(&h.app, &h.control, "acme", &first, NOW)
        .await
        .unwrap();
    let source_rows = rows_by_table(&h, a.id).await;
    // Every tenant table is in the archive with the tenant's exact row count (the export's own audit
    // entry is written after the snapshot).
    for (table, n) in &source_rows {
        let entry = m
            .tables
            .iter()
            .find(|e| &e.name == table)
            .unwrap_or_else(|| panic!("{table} missing"));
        let expected = if table == "audit_log" { n - 1 } else { *n };
        assert_eq!(entry.rows as i64, expected, "{table}");
    }
    assert!(m.tables.len() >= 21, "{:?}", m.tables);
    assert!(source_rows["journey_touches"] > 0 && source_rows["refresh_tokens"] > 0);
    let text = String::from_utf8(read_table(&first, "users")).unwrap();
    assert!(!text.contains(&other.slug) && !text.contains("tenant_id"));

    let imported = import_archive(&h.control, &first, "acme-copy", None, NOW)
        .await
        .unwrap();
    assert_eq!(imported.source_tenant, a.id);
    assert_ne!(imported.tenant.id, a.id);
    let second = dir.path().join("copy-archive");
    let m2 = export_tenant(&h.app, &h.control, "acme-copy", &second, NOW)
        .await
        .unwrap();
    assert_eq!(m.tables.len(), m2.tables.len());
    for (x, y) in m.tables.iter().zip(&m2.tables) {
        assert_eq!(x.name, y.name);
        assert_eq!(x.rows, y.rows, "{}", x.name);
        let (left, right) = (
            String::from_utf8(read_table(&first, &x.name)).unwrap(),
            String::from_utf8(read_table(&second, &y.name)).unwrap(),
        );
        for (n, (l, r)) in left.lines().zip(right.lines()).enumerate() {
            assert_eq!(
                l,
                r,
                "{} differs after the round trip at row {}",
                x.name,
                n + 1
            );
        }
        assert_eq!(x.sha256, y.sha256);
    }
    // The copy's users can sign in with the same emails (the unique index is per tenant).
    let mut tx = h.app.begin_tenant(imported.tenant.id).await.unwrap();
    assert!(
        tx.find_user_by_email("field@acme.example")
            .await
            .unwrap()
            .is_some()
    );
    tx.commit().await.unwrap();
    h.teardown().await;
}

#[tokio::test]
async fn a_tampered_or_misnamed_archive_is_refused_and_nothing_is_written() {
    let h = common::setup().await;
    busy_tenant(&h, "acme").await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a");
    export_tenant(&h.app, &h.control, "acme", &archive, NOW)
        .await
        .unwrap();
    // Exporting into an existing directory is refused.
    let err = export_tenant(&h.app, &h.control, "acme", &archive, NOW)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "io");

    // Slug taken: typed, nothing written.
    let before = tenant_count(&h).await;
    let err = import_archive(&h.control, &archive, "acme", None, NOW)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "slug_taken");

    let path = archive.join("properties.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    let i = bytes.iter().position(|b| *b == b'E').unwrap();
    bytes[i] = b'F';
    std::fs::write(&path, bytes).unwrap();
    let err = import_archive(&h.control, &archive, "copy", None, NOW)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_archive");
    assert!(err.to_string().contains("properties.jsonl"), "{err}");
    assert_eq!(tenant_count(&h).await, before);
    let mut ctl = h.control.begin().await.unwrap();
    assert!(ctl.find_tenant_by_slug("copy").await.unwrap().is_none());
    ctl.rollback().await.unwrap();
    h.teardown().await;
}

#[tokio::test]
async fn delete_needs_an_export_or_force_then_a_grace_period_then_the_purge_leaves_nothing() {
    let h = common::setup().await;
    let a = busy_tenant(&h, "acme").await;
    let b = busy_tenant(&h, "bystander").await;
    let b_before = rows_by_table(&h, b.id).await;

    let mut ctl = h.control.begin().await.unwrap();
    let err = ctl
        .request_deletion("acme", false, 24 * HOUR, NOW)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "export_required");
    ctl.rollback().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    export_tenant(&h.app, &h.control, "acme", &dir.path().join("x"), NOW)
        .await
        .unwrap();
    let mut ctl = h.control.begin().await.unwrap();
    let l = ctl
        .request_deletion("acme", false, 24 * HOUR, NOW)
        .await
        .unwrap();
    assert_eq!(l.state(), "deleting");
    assert_eq!(l.purge_after, Some(Timestamp(NOW.0 + 24 * HOUR)));
    ctl.commit().await.unwrap();

    // Mid-deletion: export, suspend and a second delete are typed errors.
    let err = export_tenant(&h.app, &h.control, "acme", &dir.path().join("y"), NOW)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "tenant_deleting");
    assert!(!dir.path().join("y").exists());
    let mut ctl = h.control.begin().await.unwrap();
    assert_eq!(
        ctl.suspend("acme", NOW).await.unwrap_err().code(),
        "tenant_deleted"
    );
    ctl.rollback().await.unwrap();
    let mut ctl = h.control.begin().await.unwrap();
    assert_eq!(
        ctl.request_deletion("acme", true, 0, NOW)
            .await
            .unwrap_err()
            .code(),
        "tenant_deleted"
    );
    ctl.rollback().await.unwrap();
    // Rows are kept during the grace period, and the purge waits for it.
    assert!(rows_by_table(&h, a.id).await["properties"] > 0);
    let mut ctl = h.control.begin().await.unwrap();
    let err = ctl
        .purge("acme", Timestamp(NOW.0 + HOUR))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "grace_period");
    ctl.rollback().await.unwrap();

    let mut ctl = h.control.begin().await.unwrap();
    let removed = ctl
        .purge("acme", Timestamp(NOW.0 + 25 * HOUR))
        .await
        .unwrap();
    assert!(removed.iter().map(|(_, n)| n).sum::<u64>() > 100);
    assert!(ctl.tenant_rows_left(a.id).await.unwrap().is_empty());
    ctl.commit().await.unwrap();
    // Checked independently, as superuser, across every table with a tenant_id column.
    let left = rows_by_table(&h, a.id).await;
    assert!(left.values().all(|n| *n == 0), "rows left: {left:?}");
    let mut ctl = h.control.begin().await.unwrap();
    assert!(ctl.find_tenant(a.id).await.unwrap().is_none());
    // The operator's log outlives the tenant: every step is there.
    let actions: Vec<_> = ctl
        .lifecycle_log(a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["tenant.export", "tenant.delete", "tenant.purge"]);
    assert_eq!(
        ctl.suspend("acme", NOW).await.unwrap_err().code(),
        "tenant_not_found"
    );
    ctl.rollback().await.unwrap();
    // The bystander lost nothing.
    assert_eq!(rows_by_table(&h, b.id).await, b_before);
    h.teardown().await;
}

#[tokio::test]
async fn force_deletes_without_export_and_reactivate_cancels_in_the_grace_period() {
    let h = common::setup().await;
    let a = common::provision(&h, "acme", 3).await;
    let mut ctl = h.control.begin().await.unwrap();
    ctl.request_deletion("acme", true, HOUR, NOW).await.unwrap();
    let purge = ctl.purge("acme", NOW).await.unwrap_err();
    assert_eq!(purge.code(), "grace_period");
    ctl.rollback().await.unwrap();
    let mut ctl = h.control.begin().await.unwrap();
    ctl.request_deletion("acme", true, HOUR, NOW).await.unwrap();
    let l = ctl.reactivate("acme", NOW).await.unwrap();
    assert_eq!(l.state(), "active");
    assert_eq!(l.purge_after, None);
    assert_eq!(
        ctl.purge("acme", NOW).await.unwrap_err().code(),
        "not_deleting"
    );
    ctl.rollback().await.unwrap();
    assert_eq!(rows_by_table(&h, a.id).await["properties"], 3);
    h.teardown().await;
}

#[tokio::test]
async fn the_application_role_cannot_update_or_delete_audit_entries() {
    let h = common::setup().await;
    let t = common::provision(&h, "acme", 1).await;
    let raw = h.raw_app_pool(1).await;
    for statement in [
        "UPDATE audit_log SET action = 'forged'",
        "DELETE FROM audit_log",
    ] {
        let mut tx = raw.begin().await.unwrap();
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(t.id.0.to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
        let err = sqlx::query(statement).execute(&mut *tx).await.unwrap_err();
        let code = err
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("42501"), "{statement}: {err}");
        tx.rollback().await.unwrap();
    }
    // Inserting (appending) still works, and the entries are all there.
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    let before = common::count(&mut tx, "audit_log").await;
    tx.insert_audit(
        &AuditEntry {
            id: AuditId::generate(),
            actor: Some(t.admin),
            action: "test.append".into(),
            target: "x".into(),
            device_id: None,
            request_id: Some("r-1".into()),
            at: NOW,
        },
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(common::count(&mut tx, "audit_log").await, before + 1);
    tx.commit().await.unwrap();
    // The application role has no access to the operator's lifecycle log at all.
    let err = sqlx::query("SELECT count(*) FROM tenant_lifecycle_log")
        .execute(&raw)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("42501")
    );
    raw.close().await;
    h.teardown().await;
}

/// The legacy import's bulk property writer writes exactly what the generic writer writes for a record it
/// creates — the row, its field clocks and its pull-feed entry — skips ids already stored without
/// updating them, and writes nothing on a re-run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_imported_properties_are_what_the_generic_writer_creates() {
    let h = common::setup().await;
    let generic = common::provision(&h, "bulk-generic", 0).await;
    let bulk = common::provision(&h, "bulk-fast", 0).await;
    let storm = StormId::generate();
    let properties: Vec<Property> = (0..40)
        .map(|n| {
            let mut p = common::property(PropertyId::generate(), storm, n);
            // Both present and absent optional fields, every material and status text path.
            if n % 3 == 0 {
                p.roof_age_years = None;
                p.roof_material = None;
                p.home_value = None;
                p.owner_name = None;
            }
            if n % 4 == 1 {
                p.roof_material = Some(RoofMaterial::Metal);
                p.owner_email = Some(format!("owner{n}@example.com"));
                p.prior_claims = 3;
                p.status = PropertyStatus::InProgress;
            }
            p
        })
        .collect();
    let clock = common::hlc(7);
    for (tenant, fast) in [(&generic, false), (&bulk, true)] {
        let mut tx = h.app.begin_tenant(tenant.id).await.unwrap();
        tx.upsert_storms(&[common::storm(storm)], common::hlc(1), NOW)
            .await
            .unwrap();
        let written = if fast {
            tx.insert_new_properties(&properties, clock, NOW)
                .await
                .unwrap()
        } else {
            tx.upsert_properties(&properties, clock, NOW).await.unwrap()
        };
        assert_eq!(written, 40);
        tx.commit().await.unwrap();
    }
    let su = h.superuser_pool().await;
    let rows = |tenant: TenantId| {
        let su = su.clone();
        async move {
            let rows: Vec<serde_json::Value> = sqlx::query_scalar(
                "SELECT to_jsonb(p) - 'tenant_id' FROM properties p WHERE tenant_id = $1 ORDER BY id",
            )
            .bind(tenant.0)
            .fetch_all(&su)
            .await
            .unwrap();
            let feed: Vec<serde_json::Value> = sqlx::query_scalar(
                "SELECT jsonb_build_array(entity, entity_id, op, record, field_clocks, scope_crew, scope_user)
                   FROM change_log WHERE tenant_id = $1 AND entity = 'property' ORDER BY entity_id",
            )
            .bind(tenant.0)
            .fetch_all(&su)
            .await
            .unwrap();
            (rows, feed)
        }
    };
    let (generic_rows, generic_feed) = rows(generic.id).await;
    let (bulk_rows, bulk_feed) = rows(bulk.id).await;
    assert_eq!(generic_rows.len(), 40);
    assert_eq!(generic_feed.len(), 40);
    assert_eq!(bulk_rows, generic_rows, "the same rows and field clocks");
    assert_eq!(bulk_feed, generic_feed, "the same feed entries");

    // A re-run with one new property and one changed known one: only the new one is written.
    let mut again = properties.clone();
    again[0].address = "changed by a re-run".into();
    let extra = common::property(PropertyId::generate(), storm, 99);
    again.push(extra.clone());
    let mut tx = h.app.begin_tenant(bulk.id).await.unwrap();
    assert_eq!(
        tx.insert_new_properties(&again, clock, NOW).await.unwrap(),
        1
    );
    assert_eq!(
        tx.insert_new_properties(&again, clock, NOW).await.unwrap(),
        0
    );
    // A property that fails validation refuses the whole call.
    let mut bad = extra.clone();
    bad.id = PropertyId::generate();
    bad.latitude = 200.0;
    assert!(tx.insert_new_properties(&[bad], clock, NOW).await.is_err());
    tx.rollback().await.unwrap();
    let mut tx = h.app.begin_tenant(bulk.id).await.unwrap();
    assert_eq!(
        tx.insert_new_properties(&again, clock, NOW).await.unwrap(),
        1
    );
    tx.commit().await.unwrap();
    let (rows_after, feed_after) = rows(bulk.id).await;
    assert_eq!(rows_after.len(), 41);
    assert_eq!(feed_after.len(), 41);
    assert!(
        rows_after
            .iter()
            .all(|r| r["address"] != "changed by a re-run"),
        "a known property is not updated"
    );
}
