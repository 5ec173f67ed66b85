//! `stormops-server system health` end to end: the real binary against a database holding two tenants,
//! as the operator runs it. Tenant figures are read under each tenant's own context, so they must agree
//! with what the application role counts there; the pull-horizon lag is seen while a writing
//! transaction is held open.

mod harness;

use domain::Role;
use harness::{Harness, touch_change};
use serde_json::Value;

fn tenant<'a>(report: &'a Value, slug: &str) -> &'a Value {
    report["tenants"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["slug"] == slug))
        .unwrap_or_else(|| panic!("{slug} missing from {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_health_reports_every_tenant_its_footprint_and_the_pull_lag() {
    let h = Harness::start().await;
    // Tenant A pushes a touch; tenant B pushes nothing.
    let field = h.a.session(Role::FieldUser).clone();
    let change = touch_change(&field, &h.a, 0, "knocked");
    let (status, body) = h.push(&field, &[change]).await;
    assert_eq!(status, 200, "{body}");

    // A writing transaction held open by another session of the application role.
    let raw = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&h.init.app_url)
        .await
        .expect("raw app pool");
    let mut open = raw.begin().await.expect("begin");
    let _: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint")
        .fetch_one(&mut *open)
        .await
        .expect("an xid");

    let (ok, report) = h.operator_cli(&["system", "health"]);
    assert!(ok, "{report}");
    open.rollback().await.expect("rollback");

    let listed = report["tenants"].as_array().map_or(0, Vec::len) as i64;
    assert!(listed >= 2, "{report}");
    let by_status: i64 = report["tenants_by_status"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_i64).sum())
        .unwrap_or(0);
    assert_eq!(by_status, listed, "every tenant is counted once by status");
    assert!(report["tenants_by_status"]["active"].as_i64() >= Some(2));

    let a = tenant(&report, &h.a.slug);
    let b = tenant(&report, &h.b.slug);
    for (fixture, line) in [(&h.a, a), (&h.b, b)] {
        // The rows include at least what the app role counts in the tenant's context.
        let properties = h.count(fixture.id, "properties").await;
        let users = h.count(fixture.id, "users").await;
        let rows = line["rows"].as_i64().expect("rows");
        assert!(rows >= properties + users, "{line}");
        assert!(line["estimated_bytes"].as_i64() > Some(0), "{line}");
        assert_eq!(line["status"], "active");
    }
    assert!(a["last_push_at"].as_i64().is_some(), "{a}");
    assert!(b["last_push_at"].is_null(), "{b}");
    let share: i64 = report["tenants"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter_map(|t| t["estimated_bytes"].as_i64())
                .sum()
        })
        .unwrap_or(0);
    let database = report["database_bytes"].as_i64().expect("database_bytes");
    assert!(
        share <= database,
        "tenant shares {share} exceed the database {database}"
    );
    // The open transaction began before the report was read: the lag is positive.
    assert!(
        report["pull_horizon_lag_secs"].as_f64() > Some(0.0),
        "{report}"
    );

    raw.close().await;
    h.stop().await;
}
