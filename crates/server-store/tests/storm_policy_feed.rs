//! The storm's policy mode reaches the laptops through the pull feed: setting it writes one feed row in
//! the same statement, pulled by every role of the tenant (it is tenant-wide like the storm) and by no
//! other tenant; clients of protocol 1 are not sent it; laptops cannot push it; and the migration that
//! introduced the feed row backfills one for every policy set before it.
// Test helpers: a failed step fails the test on the spot.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use domain::*;
use server_store::PullScope;
use sqlx::Connection;
use sync_protocol::{ChangeOp, Entity, ErrorCode, PulledChange};

fn policies(changes: &[PulledChange]) -> Vec<StormPolicy> {
    changes
        .iter()
        .filter(|c| c.entity == Entity::StormPolicy)
        .map(|c| {
            assert_eq!(c.op, ChangeOp::Insert);
            assert!(
                c.field_clocks.is_none(),
                "a server-owned record has no clocks"
            );
            let policy: StormPolicy = serde_json::from_value(c.record.clone()).expect("record");
            assert_eq!(c.entity_id, policy.storm_id.0, "entity id is the storm id");
            policy
        })
        .collect()
}

const ROLES: [Role; 4] = [Role::Admin, Role::CrewChief, Role::FieldUser, Role::Viewer];

async fn set_policy(h: &Harness, t: &Tenant1, mode: PolicyMode, at: Timestamp) {
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    let set = tx
        .set_storm_policy(t.storm, mode, t.admin, at)
        .await
        .unwrap();
    assert_eq!(set.mode, mode);
    tx.commit().await.unwrap();
}

/// Whether `rows` hold a storm-policy row of `storm` set at `at` (the row one setting fed).
fn has_policy(rows: &[PulledChange], storm: StormId, at: Timestamp) -> bool {
    policies(rows)
        .iter()
        .any(|p| p.storm_id == storm && p.updated_at == at)
}

#[tokio::test]
async fn setting_the_policy_feeds_every_role_of_the_tenant_and_no_other_tenant() {
    let h = setup().await;
    let a = provision(&h, "acme", 2).await;
    let b = provision(&h, "bolt", 2).await;
    // Where each puller stands before the office sets anything.
    let mut cursors = Vec::new();
    for role in ROLES {
        let (before, cursor, _) = pull_until(
            &h,
            &a,
            &a.scope(role),
            None,
            "the provisioned rows",
            |rows| a.provisioned(rows),
        )
        .await;
        assert!(policies(&before).is_empty(), "{role}: no policy yet");
        cursors.push((role, cursor));
    }
    let (_, b_cursor, _) = pull_until(
        &h,
        &b,
        &b.scope(Role::Admin),
        None,
        "the provisioned rows",
        |rows| b.provisioned(rows),
    )
    .await;

    set_policy(&h, &a, PolicyMode::Aggressive, NOW).await;
    let expected = StormPolicy {
        storm_id: a.storm,
        mode: PolicyMode::Aggressive,
        updated_at: NOW,
        updated_by: Some(a.admin),
    };
    for (role, cursor) in &cursors {
        let (rows, _, _) = pull_until(
            &h,
            &a,
            &a.scope(*role),
            Some(cursor.clone()),
            "the storm's policy row",
            |rows| has(rows, Entity::StormPolicy, a.storm.0),
        )
        .await;
        assert_eq!(policies(&rows), vec![expected.clone()], "{role}");
    }

    // The other tenant's feed has nothing new, and its storm's policy is untouched.
    let mut tx = h.app.begin_tenant(b.id).await.unwrap();
    let page = tx
        .pull(&b.scope(Role::Admin), Some(&b_cursor), 500)
        .await
        .unwrap();
    assert!(policies(&page.changes).is_empty());
    assert_eq!(
        tx.storm_policy(b.storm).await.unwrap().updated_at,
        None,
        "never set"
    );
    // B cannot set A's storm's policy: under B's context A's storm does not exist.
    assert!(
        tx.set_storm_policy(a.storm, PolicyMode::Conservative, b.admin, NOW)
            .await
            .is_err()
    );
    drop(tx);

    // A change replaces it: a later pull carries the new mode (and the first sync sees both, in order).
    set_policy(&h, &a, PolicyMode::Conservative, Timestamp(NOW.0 + 1)).await;
    let (all, _, _) = pull_until(
        &h,
        &a,
        &a.scope(Role::FieldUser),
        None,
        "both policy rows of the storm (set at NOW and NOW + 1)",
        |rows| has_policy(rows, a.storm, NOW) && has_policy(rows, a.storm, Timestamp(NOW.0 + 1)),
    )
    .await;
    let modes: Vec<PolicyMode> = policies(&all).iter().map(|p| p.mode).collect();
    assert_eq!(
        modes,
        vec![PolicyMode::Aggressive, PolicyMode::Conservative]
    );
    h.teardown().await;
}

#[tokio::test]
async fn protocol_one_clients_are_not_sent_the_policy_and_laptops_cannot_push_it() {
    let h = setup().await;
    let t = provision(&h, "acme", 2).await;
    set_policy(&h, &t, PolicyMode::Aggressive, NOW).await;
    let current = t.scope(Role::FieldUser);
    let (rows, _, _) = pull_until(&h, &t, &current, None, "the storm's policy row", |rows| {
        has(rows, Entity::StormPolicy, t.storm.0)
    })
    .await;
    assert_eq!(policies(&rows).len(), 1);
    let old = PullScope {
        protocol: 1,
        ..current
    };
    let (rows_v1, _, _) = pull_until(
        &h,
        &t,
        &old,
        None,
        "every row a current client pulled but the policy",
        |v1| {
            rows.iter()
                .filter(|c| c.entity != Entity::StormPolicy)
                .all(|c| has(v1, c.entity, c.entity_id))
        },
    )
    .await;
    assert!(policies(&rows_v1).is_empty(), "protocol 1 cannot decode it");
    // Everything else is the same feed.
    assert_eq!(rows_v1.len(), rows.len() - 1);

    // A pushed policy is refused with the typed error and changes nothing.
    let forged = StormPolicy {
        storm_id: t.storm,
        mode: PolicyMode::Conservative,
        updated_at: NOW,
        updated_by: Some(t.field),
    };
    for role in [Role::FieldUser, Role::Admin] {
        let change = t.change(Entity::StormPolicy, t.storm.0, ChangeOp::Insert, &forged, 5);
        let out = push(&h, &t, role, &[change]).await;
        let receipts = refused(&out);
        assert_eq!(receipts.len(), 1);
        assert_eq!(receipts[0].code, Some(ErrorCode::ServerOwnedField));
    }
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    assert_eq!(
        tx.storm_policy(t.storm).await.unwrap().mode,
        PolicyMode::Aggressive
    );
    // Returned before the teardown: closing a pool waits for every connection it lent.
    tx.commit().await.unwrap();
    h.teardown().await;
}

#[tokio::test]
async fn the_migration_backfills_a_feed_row_for_every_policy_set_before_it() {
    let h = setup().await;
    let a = provision(&h, "acme", 1).await;
    let b = provision(&h, "bolt", 1).await;
    set_policy(&h, &a, PolicyMode::Aggressive, NOW).await;
    set_policy(&h, &b, PolicyMode::Conservative, NOW).await;
    // The database as it was before the migration: policies without feed rows.
    let su = h.superuser_pool().await;
    let removed = sqlx::query("DELETE FROM change_log WHERE entity = 'storm_policy'")
        .execute(&su)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(removed, 2);

    // The migration's statements, as the owner role that runs migrations (subject to FORCE RLS), in
    // one transaction as sqlx runs it.
    let mut owner = sqlx::PgConnection::connect(&h.init.owner_url)
        .await
        .unwrap();
    let mut tx = owner.begin().await.unwrap();
    sqlx::raw_sql(include_str!(
        "../../../migrations/server/20261130000000_storm_policy_feed.sql"
    ))
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();

    for (t, mode) in [(&a, PolicyMode::Aggressive), (&b, PolicyMode::Conservative)] {
        let (rows, _, _) = pull_until(
            &h,
            t,
            &t.scope(Role::FieldUser),
            None,
            "the storm's backfilled policy row",
            |rows| has(rows, Entity::StormPolicy, t.storm.0),
        )
        .await;
        let got = policies(&rows);
        assert_eq!(
            got.len(),
            1,
            "exactly one row per policy, in its own tenant"
        );
        assert_eq!(got[0].mode, mode);
        assert_eq!(got[0].updated_by, Some(t.admin));
    }
    // FORCE is back on both tables.
    let forced: Vec<(String, bool)> = sqlx::query_as(
        "SELECT relname::text, relforcerowsecurity FROM pg_class
          WHERE relname IN ('storm_policies', 'change_log') ORDER BY relname",
    )
    .fetch_all(&su)
    .await
    .unwrap();
    assert_eq!(
        forced,
        vec![
            ("change_log".to_owned(), true),
            ("storm_policies".to_owned(), true)
        ]
    );
    su.close().await;
    h.teardown().await;
}
