//! The behavioural matrix of rls-rules.md (T3, T4, T5, T6, T8, T11, T13) against real PostgreSQL as
//! the application role. T1/T2/T7/T9/T12/T14 are in `catalog.rs`.

mod common;

use common::*;
use domain::*;
use server_store::{PoolSettings, StoreError, bench_raw_copy_insert};
use sqlx::Row;

#[tokio::test]
async fn t3_one_pooled_connection_never_carries_a_tenant_into_the_next_request() {
    let h = setup_with(PoolSettings {
        max_connections: 1,
        ..PoolSettings::default()
    })
    .await;
    let a = provision(&h, "alpha", 2).await;
    let b = provision(&h, "beta", 0).await;
    push(
        &h,
        &a,
        Role::FieldUser,
        &[a.touch_change(&a.touch(0, "a's secret"))],
    )
    .await;
    for _ in 0..3 {
        let mut tx = h.app.begin_tenant(a.id).await.unwrap();
        assert_eq!(count(&mut tx, "journey_touches").await, 1);
        assert_eq!(count(&mut tx, "properties").await, 2);
        drop(tx); // rolled back, not committed: the context must still not survive
        let mut tx = h.app.begin_tenant(b.id).await.unwrap();
        assert_eq!(count(&mut tx, "journey_touches").await, 0);
        assert_eq!(count(&mut tx, "properties").await, 0);
        assert_eq!(
            count(&mut tx, "users").await,
            4,
            "b sees only its own four users"
        );
        let seen: String = sqlx::query_scalar("SELECT current_setting('app.tenant_id')")
            .fetch_one(tx.connection())
            .await
            .unwrap();
        assert_eq!(seen, b.id.to_string());
        tx.commit().await.unwrap();
    }
    h.teardown().await;
}

#[tokio::test]
async fn t3_a_connection_that_leaked_a_session_context_is_closed_at_checkout() {
    let h = setup_with(PoolSettings {
        max_connections: 1,
        ..PoolSettings::default()
    })
    .await;
    let a = provision(&h, "alpha", 1).await;
    let b = provision(&h, "beta", 0).await;
    // Simulate a bug: a session-level SET through the tenant transaction's connection.
    let mut tx = h.app.begin_tenant(a.id).await.unwrap();
    sqlx::query("SET SESSION app.tenant_id = 'ffffffff-ffff-ffff-ffff-ffffffffffff'")
        .execute(tx.connection())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // The next checkout finds the leftover context, closes that connection and opens a clean one.
    let mut tx = h.app.begin_tenant(b.id).await.unwrap();
    let pid_tenant: String = sqlx::query_scalar("SELECT current_setting('app.tenant_id')")
        .fetch_one(tx.connection())
        .await
        .unwrap();
    assert_eq!(pid_tenant, b.id.to_string());
    tx.commit().await.unwrap();
    // And a raw check: a fresh checkout through a plain transaction shows no context at all.
    let mut tx = h.app.begin_tenant(a.id).await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', '', true)")
        .execute(tx.connection())
        .await
        .unwrap();
    assert_eq!(count(&mut tx, "properties").await, 0);
    drop(tx);
    h.teardown().await;
}

#[tokio::test]
async fn t4_without_context_reads_are_empty_and_writes_are_refused_not_errors_of_casting() {
    let h = setup().await;
    let a = provision(&h, "alpha", 2).await;
    let raw = h.raw_app_pool(1).await;
    for table in [
        "properties",
        "storms",
        "users",
        "tenants",
        "change_log",
        "journey_touches",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&raw)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table} without context");
    }
    // After a local setting ended, the setting reads '' (not NULL): still zero rows, no cast error.
    let mut tx = raw.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(a.id.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM properties")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let err = sqlx::query("INSERT INTO storms (tenant_id, id, event_id, name, started_at, hail_size_in, wind_mph, affected_area, status) VALUES ($1, '01900000-0000-7000-8000-000000000000'::uuid, 'e', 'n', 1, 1, 1, 'a', 'active')")
        .bind(a.id.0)
        .execute(&raw)
        .await
        .expect_err("refused without context");
    assert_eq!(StoreError::from(err).code(), "forbidden");
    let updated = sqlx::query("UPDATE properties SET status = 'contracted'")
        .execute(&raw)
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 0);
    h.teardown().await;
}

#[tokio::test]
async fn t5_rows_cannot_be_stamped_with_or_moved_to_another_tenant() {
    let h = setup().await;
    let a = provision(&h, "alpha", 1).await;
    let b = provision(&h, "beta", 1).await;
    // As B, insert a storm stamped A.
    let mut tx = h.app.begin_tenant(b.id).await.unwrap();
    let err = sqlx::query("INSERT INTO storms (tenant_id, id, event_id, name, started_at, hail_size_in, wind_mph, affected_area, status) VALUES ($1, '01900000-0000-7000-8000-000000000000'::uuid, 'e', 'n', 1, 1, 1, 'a', 'active')")
        .bind(a.id.0)
        .execute(tx.connection())
        .await
        .expect_err("stamped with another tenant");
    assert!(matches!(StoreError::from(err), StoreError::Forbidden(_)));
    drop(tx);
    // As A, move A's property to B.
    let mut tx = h.app.begin_tenant(a.id).await.unwrap();
    let err = sqlx::query("UPDATE storms SET tenant_id = $1")
        .bind(b.id.0)
        .execute(tx.connection())
        .await
        .expect_err("moved away");
    assert!(matches!(StoreError::from(err), StoreError::Forbidden(_)));
    drop(tx);
    // As A, touch B's rows: nothing visible, nothing changed.
    let mut tx = h.app.begin_tenant(a.id).await.unwrap();
    let n = sqlx::query("DELETE FROM properties WHERE id = $1")
        .bind(b.properties[0].0)
        .execute(tx.connection())
        .await
        .unwrap();
    assert_eq!(n.rows_affected(), 0);
    tx.commit().await.unwrap();
    let mut tx = h.app.begin_tenant(b.id).await.unwrap();
    assert_eq!(count(&mut tx, "properties").await, 1);
    drop(tx);
    h.teardown().await;
}

#[tokio::test]
async fn t6_the_same_client_uuid_in_two_tenants_is_two_rows() {
    let h = setup().await;
    let a = provision(&h, "alpha", 1).await;
    let b = provision(&h, "beta", 1).await;
    let shared = TouchId::generate();
    for t in [&a, &b] {
        let mut touch = t.touch(0, &format!("from {}", t.slug));
        touch.id = shared;
        let out = push(&h, t, Role::FieldUser, &[t.touch_change(&touch)]).await;
        assert_eq!(statuses(&out), vec![sync_protocol::ReceiptStatus::Accepted]);
    }
    for t in [&a, &b] {
        let mut tx = h.app.begin_tenant(t.id).await.unwrap();
        let notes: String = sqlx::query_scalar("SELECT notes FROM journey_touches WHERE id = $1")
            .bind(shared.0)
            .fetch_one(tx.connection())
            .await
            .unwrap();
        assert_eq!(notes, format!("from {}", t.slug));
    }
    let su = h.superuser_pool().await;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM journey_touches WHERE id = $1")
        .bind(shared.0)
        .fetch_one(&su)
        .await
        .unwrap();
    assert_eq!(total, 2);
    h.teardown().await;
}

#[tokio::test]
async fn t8_hot_queries_use_the_tenant_index_as_an_index_condition() {
    let h = setup().await;
    let a = provision(&h, "alpha", 20).await;
    let batch: Vec<_> = (0..200)
        .map(|i| a.touch_change(&a.touch(i % 20, "n")))
        .collect();
    push(&h, &a, Role::FieldUser, &batch).await;
    let mut tx = h.app.begin_tenant(a.id).await.unwrap();
    // Small tables would be seq-scanned; the planner is told to prefer indexes, as on a large table.
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(tx.connection())
        .await
        .unwrap();
    let hot = [
        (
            "SELECT * FROM change_log WHERE tenant_id = $1 AND (txid, entity_id, id) > ('0'::xid8, '00000000-0000-0000-0000-000000000000'::uuid, '00000000-0000-0000-0000-000000000000'::uuid) ORDER BY txid, entity_id, id LIMIT 100",
            "change_log_tenant_txid_record",
        ),
        (
            "SELECT * FROM properties WHERE tenant_id = $1 AND id = ANY(ARRAY['01900000-0000-7000-8000-000000000000'::uuid])",
            "properties_pkey",
        ),
        (
            "SELECT * FROM journey_touches WHERE tenant_id = $1 AND property_id = '01900000-0000-7000-8000-000000000000'::uuid",
            "journey_touches_tenant_property",
        ),
        (
            "SELECT * FROM applied_changes WHERE tenant_id = $1 AND change_id = ANY(ARRAY['01900000-0000-7000-8000-000000000000'::uuid])",
            "applied_changes_pkey",
        ),
        (
            "SELECT * FROM users WHERE tenant_id = $1 AND lower(email) = lower('x@y.z')",
            "users_tenant_email",
        ),
    ];
    for (query, index) in hot {
        let rows = sqlx::query(&format!("EXPLAIN (FORMAT TEXT) {query}"))
            .bind(a.id.0)
            .fetch_all(tx.connection())
            .await
            .unwrap();
        let plan: Vec<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
        let plan = plan.join("\n");
        // On tiny test tables the planner may pick another tenant-led index (every index is, per the
        // catalog test); what matters is that tenant_id is an index condition, not a filter.
        assert!(
            plan.contains("Index Scan")
                || plan.contains("Index Only Scan")
                || plan.contains("Bitmap Index Scan"),
            "{query} (expected e.g. {index})\n{plan}"
        );
        assert!(
            plan.contains("Index Cond: ((tenant_id = ")
                || plan.contains("Index Cond: (tenant_id = "),
            "tenant_id is not an index condition:\n{plan}"
        );
    }
    drop(tx);
    h.teardown().await;
}

#[tokio::test]
async fn t11_bulk_ingest_works_as_the_app_role() {
    let h = setup().await;
    let a = provision(&h, "alpha", 10).await;
    let rows: Vec<JourneyTouch> = (0..2_000)
        .map(|i| a.touch(i % 10, "bulk\twith\ttabs\nand \\ newlines"))
        .collect();
    let mut tx = h.app.begin_tenant(a.id).await.unwrap();
    assert_eq!(bench_raw_copy_insert(&mut tx, &rows).await.unwrap(), 2_000);
    assert_eq!(
        bench_raw_copy_insert(&mut tx, &rows[..10]).await.unwrap(),
        0,
        "existing rows are skipped"
    );
    tx.commit().await.unwrap();
    let mut tx = h.app.begin_tenant(a.id).await.unwrap();
    assert_eq!(count(&mut tx, "journey_touches").await, 2_000);
    let notes: String = sqlx::query_scalar("SELECT notes FROM journey_touches LIMIT 1")
        .fetch_one(tx.connection())
        .await
        .unwrap();
    assert_eq!(notes, "bulk\twith\ttabs\nand \\ newlines");
    drop(tx);
    // COPY straight into the RLS table is refused for the app role.
    let raw = h.raw_app_pool(1).await;
    let mut conn = raw.acquire().await.unwrap();
    assert!(
        conn.copy_in_raw("COPY journey_touches FROM STDIN")
            .await
            .is_err()
    );
    h.teardown().await;
}

#[tokio::test]
async fn t13_the_control_plane_is_a_separate_role_that_sees_all_tenants_but_only_one_tenants_data_at_a_time()
 {
    let h = setup().await;
    let a = provision(&h, "alpha", 1).await;
    let b = provision(&h, "beta", 2).await;
    let mut ctl = h.control.begin().await.unwrap();
    let who: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(ctl.connection())
        .await
        .unwrap();
    assert_eq!(who, h.init.roles.control);
    assert_ne!(who, h.init.roles.app);
    let slugs: Vec<String> = ctl
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.slug)
        .collect();
    assert_eq!(slugs, vec!["alpha", "beta"]);
    // No tenant context: no tenant data.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM properties")
        .fetch_one(ctl.connection())
        .await
        .unwrap();
    assert_eq!(n, 0);
    ctl.enter_tenant(b.id).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM properties")
        .fetch_one(ctl.connection())
        .await
        .unwrap();
    assert_eq!(n, 2);
    drop(ctl);
    // The app role sees only its own tenant row.
    let mut tx = h.app.begin_tenant(a.id).await.unwrap();
    assert_eq!(count(&mut tx, "tenants").await, 1);
    assert_eq!(tx.tenant().await.unwrap().unwrap().slug, "alpha");
    drop(tx);
    // Provisioning wrote an audit entry in the new tenant.
    let mut tx = h.app.begin_tenant(b.id).await.unwrap();
    let audit = tx.list_audit(10).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "tenant.create"));
    drop(tx);
    h.teardown().await;
}
