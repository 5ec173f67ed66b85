//! The pull feed against real PostgreSQL: a cursor that follows commit order (a transaction holding an
//! older txid open is never overtaken), a randomized concurrent version, scopes, tombstones, bad cursors.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::*;
use domain::*;
use rand::Rng;
use server_store::{Cursor, PushOutcome, StoreError};
use sync_protocol::{ChangeOp, Entity};

fn ids_of(changes: &[sync_protocol::PulledChange], entity: Entity) -> Vec<uuid::Uuid> {
    changes
        .iter()
        .filter(|c| c.entity == entity)
        .map(|c| c.entity_id)
        .collect()
}

#[tokio::test]
async fn a_row_committed_late_by_an_older_transaction_is_held_back_then_delivered() {
    let h = setup().await;
    let t = provision(&h, "acme", 2).await;
    let admin = t.scope(Role::Admin);
    let (_, start, _) = pull_until(&h, &t, &admin, None, "the provisioned rows", |rows| {
        t.provisioned(rows)
    })
    .await;

    // The older transaction writes first (smaller txid) and stays open.
    let early = t.touch(0, "early");
    let mut held = h.app.begin_tenant(t.id).await.unwrap();
    let out = held
        .apply_push(&t.ctx(Role::FieldUser), &[t.touch_change(&early)])
        .await
        .unwrap();
    assert!(matches!(out, PushOutcome::Applied(_)));
    // A later transaction writes and commits.
    let late = t.touch(1, "late");
    assert!(matches!(
        push(&h, &t, Role::FieldUser, &[t.touch_change(&late)]).await,
        PushOutcome::Applied(_)
    ));

    // While the older one is open, nothing at or past its txid is delivered and the cursor stays behind.
    let mut cursor = start.clone();
    for _ in 0..5 {
        let mut tx = h.app.begin_tenant(t.id).await.unwrap();
        let page = tx.pull(&admin, Some(&cursor), 100).await.unwrap();
        drop(tx);
        assert!(
            !ids_of(&page.changes, Entity::JourneyTouch).contains(&late.id.0),
            "the later commit overtook an open older transaction"
        );
        assert!(
            !ids_of(&page.changes, Entity::JourneyTouch).contains(&early.id.0),
            "uncommitted row delivered"
        );
        cursor = page.next_cursor;
    }
    held.commit().await.unwrap();

    // After the commit both arrive, the older first.
    let (changes, _, _) = pull_until(&h, &t, &admin, Some(cursor), "both touches", |rows| {
        has(rows, Entity::JourneyTouch, early.id.0) && has(rows, Entity::JourneyTouch, late.id.0)
    })
    .await;
    let touches = ids_of(&changes, Entity::JourneyTouch);
    assert_eq!(touches, vec![early.id.0, late.id.0]);
    h.teardown().await;
}

#[tokio::test]
async fn concurrent_writers_and_a_reader_never_lose_or_repeat_a_row() {
    let h = Arc::new(
        setup_with(server_store::PoolSettings {
            max_connections: 12,
            ..Default::default()
        })
        .await,
    );
    let t = Arc::new(provision(&h, "acme", 10).await);
    let admin = t.scope(Role::Admin);
    let (_, start, _) = pull_until(&h, &t, &admin, None, "the provisioned rows", |rows| {
        t.provisioned(rows)
    })
    .await;

    let mut writers = Vec::new();
    for w in 0..6 {
        let (h, t) = (h.clone(), t.clone());
        writers.push(tokio::spawn(async move {
            let mut committed = Vec::new();
            for round in 0..8 {
                let (batch, hold_ms, abort) = {
                    let mut rng = rand::thread_rng();
                    let n = rng.gen_range(1..5);
                    let batch: Vec<JourneyTouch> =
                        (0..n).map(|i| t.touch((w + i + round) % 10, "c")).collect();
                    (batch, rng.gen_range(0..15u64), rng.gen_bool(0.2))
                };
                let changes: Vec<_> = batch.iter().map(|b| t.touch_change(b)).collect();
                let mut tx = h.app.begin_tenant(t.id).await.unwrap();
                let out = tx
                    .apply_push(&t.ctx(Role::FieldUser), &changes)
                    .await
                    .unwrap();
                assert!(matches!(out, PushOutcome::Applied(_)));
                // Hold the transaction open a random while so commits interleave out of txid order.
                tokio::time::sleep(std::time::Duration::from_millis(hold_ms)).await;
                if abort {
                    tx.rollback().await.unwrap();
                } else {
                    tx.commit().await.unwrap();
                    committed.extend(batch.iter().map(|b| b.id.0));
                }
            }
            committed
        }));
    }
    // The reader pulls small pages all the while.
    let reader = {
        let (h, t) = (h.clone(), t.clone());
        tokio::spawn(async move {
            let mut cursor = start;
            let mut seen = Vec::new();
            for _ in 0..60 {
                let mut tx = h.app.begin_tenant(t.id).await.unwrap();
                let page = tx.pull(&admin, Some(&cursor), 3).await.unwrap();
                drop(tx);
                seen.extend(ids_of(&page.changes, Entity::JourneyTouch));
                cursor = page.next_cursor;
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            (seen, cursor)
        })
    };
    let mut committed = HashSet::new();
    for w in writers {
        committed.extend(w.await.unwrap());
    }
    let (mut seen, cursor) = reader.await.unwrap();
    let (rest, _, _) = pull_until(
        &h,
        &t,
        &admin,
        Some(cursor),
        "every committed touch not yet seen",
        |rows| {
            let got: HashSet<_> = seen
                .iter()
                .copied()
                .chain(ids_of(rows, Entity::JourneyTouch))
                .collect();
            committed.is_subset(&got)
        },
    )
    .await;
    seen.extend(ids_of(&rest, Entity::JourneyTouch));
    let unique: HashSet<_> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a row was delivered twice");
    assert_eq!(
        unique, committed,
        "delivered rows differ from committed rows (lost, or rolled back ones delivered)"
    );
    h.db.drop_database().await.ok();
}

#[tokio::test]
async fn scopes_follow_crews_and_users_and_tombstones_reach_the_crew() {
    let h = setup().await;
    let t = provision(&h, "acme", 3).await;
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    let territory_a = Territory {
        id: TerritoryId::generate(),
        storm_id: t.storm,
        name: "North".into(),
        crew_id: Some(t.crew),
    };
    let territory_b = Territory {
        id: TerritoryId::generate(),
        storm_id: t.storm,
        name: "South".into(),
        crew_id: Some(t.other_crew),
    };
    tx.upsert_territories(&[territory_a.clone(), territory_b.clone()], hlc(1), NOW)
        .await
        .unwrap();
    let to_crew_a = Assignment {
        id: AssignmentId::generate(),
        storm_id: t.storm,
        property_id: t.properties[0],
        territory_id: Some(territory_a.id),
        crew_id: None,
        user_id: None,
    };
    let to_crew_b = Assignment {
        id: AssignmentId::generate(),
        storm_id: t.storm,
        property_id: t.properties[1],
        territory_id: None,
        crew_id: Some(t.other_crew),
        user_id: None,
    };
    let to_field_user = Assignment {
        id: AssignmentId::generate(),
        storm_id: t.storm,
        property_id: t.properties[2],
        territory_id: None,
        crew_id: None,
        user_id: Some(t.field),
    };
    tx.upsert_assignments(
        &[to_crew_a.clone(), to_crew_b.clone(), to_field_user.clone()],
        NOW,
    )
    .await
    .unwrap();
    let score = UpliftScore {
        property_id: t.properties[0],
        storm_id: t.storm,
        uplift: 0.2,
        p_treat: 0.4,
        p_hold: 0.2,
        model_version: "m-1".into(),
        trained_at: NOW,
        data_watermark: 3,
    };
    tx.upsert_uplift_scores(&[score], NOW).await.unwrap();
    tx.commit().await.unwrap();

    let (field_rows, field_cursor, _) = pull_until(
        &h,
        &t,
        &t.scope(Role::FieldUser),
        None,
        "the provisioned rows, the crew's territory, the crew's and the user's assignments and the score",
        |rows| {
            t.provisioned(rows)
                && has(rows, Entity::Territory, territory_a.id.0)
                && has(rows, Entity::Assignment, to_crew_a.id.0)
                && has(rows, Entity::Assignment, to_field_user.id.0)
                && has(rows, Entity::UpliftScore, t.properties[0].0)
        },
    )
    .await;
    let assignments = ids_of(&field_rows, Entity::Assignment);
    assert!(
        assignments.contains(&to_crew_a.id.0),
        "the crew's assignment (through its territory)"
    );
    assert!(
        assignments.contains(&to_field_user.id.0),
        "the user's own assignment"
    );
    assert!(
        !assignments.contains(&to_crew_b.id.0),
        "another crew's assignment leaked"
    );
    let territories = ids_of(&field_rows, Entity::Territory);
    assert_eq!(territories, vec![territory_a.id.0]);
    assert_eq!(
        ids_of(&field_rows, Entity::UpliftScore),
        vec![t.properties[0].0]
    );
    assert_eq!(ids_of(&field_rows, Entity::Storm), vec![t.storm.0]);
    assert_eq!(ids_of(&field_rows, Entity::Property).len(), 3);
    // Mutable records carry their field clocks.
    let property = field_rows
        .iter()
        .find(|c| c.entity == Entity::Property)
        .unwrap();
    assert!(
        property
            .field_clocks
            .as_ref()
            .is_some_and(|c| c.contains_key("status"))
    );
    let (admin_rows, _, _) = pull_until(
        &h,
        &t,
        &t.scope(Role::Admin),
        None,
        "all three assignments",
        |rows| {
            [&to_crew_a, &to_crew_b, &to_field_user]
                .iter()
                .all(|a| has(rows, Entity::Assignment, a.id.0))
        },
    )
    .await;
    assert_eq!(ids_of(&admin_rows, Entity::Assignment).len(), 3);

    // Tombstones reach the crew that held the row.
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    assert_eq!(tx.delete_assignments(&[to_crew_a.id]).await.unwrap(), 1);
    tx.commit().await.unwrap();
    let (rows, _, _) = pull_until(
        &h,
        &t,
        &t.scope(Role::FieldUser),
        Some(field_cursor),
        "the tombstone of the crew's assignment",
        |rows| {
            rows.iter().any(|c| {
                (c.entity, c.op, c.entity_id)
                    == (Entity::Assignment, ChangeOp::Delete, to_crew_a.id.0)
            })
        },
    )
    .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].entity, rows[0].op, rows[0].entity_id),
        (Entity::Assignment, ChangeOp::Delete, to_crew_a.id.0)
    );
    h.teardown().await;
}

#[tokio::test]
async fn pushed_records_come_back_with_a_watermark_and_bad_cursors_are_refused() {
    let h = setup().await;
    let t = provision(&h, "acme", 1).await;
    let touch = t.touch(0, "hello");
    push(&h, &t, Role::FieldUser, &[t.touch_change(&touch)]).await;
    let (rows, cursor, last) = pull_until(
        &h,
        &t,
        &t.scope(Role::Viewer),
        None,
        "the provisioned rows and the pushed touch",
        |rows| t.provisioned(rows) && has(rows, Entity::JourneyTouch, touch.id.0),
    )
    .await;
    let pulled = rows
        .iter()
        .find(|c| c.entity == Entity::JourneyTouch)
        .unwrap();
    let back: JourneyTouch = serde_json::from_value(pulled.record.clone()).unwrap();
    assert_eq!(back, touch);
    assert!(last.watermark > 0);
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    // Pulling again from the end returns nothing new and keeps the position.
    let again = tx
        .pull(&t.scope(Role::Viewer), Some(&cursor), 100)
        .await
        .unwrap();
    assert!(again.changes.is_empty());
    assert!(again.watermark >= last.watermark);
    for bad in [
        "",
        "garbage",
        "c1.12.zz",
        "c1.-1.00000000000000000000000000000000",
    ] {
        let err = tx
            .pull(&t.scope(Role::Viewer), Some(bad), 10)
            .await
            .expect_err("bad cursor");
        assert!(matches!(err, StoreError::InvalidCursor(_)), "{bad}");
        assert_eq!(err.code(), "invalid_cursor");
    }
    assert!(tx.current_watermark().await.unwrap() > 0);
    drop(tx);
    h.teardown().await;
}

#[tokio::test]
async fn a_transaction_larger_than_a_page_comes_in_record_order_each_property_beside_its_score() {
    let h = setup().await;
    let t = provision(&h, "acme", 0).await;
    let admin = t.scope(Role::Admin);
    let (_, start, _) = pull_until(&h, &t, &admin, None, "the storm", |rows| {
        has(rows, Entity::Storm, t.storm.0)
    })
    .await;

    // One transaction writes 60 properties, then their scores (as a data import does).
    const N: usize = 60;
    let properties: Vec<Property> = (0..N)
        .map(|n| property(PropertyId::generate(), t.storm, n))
        .collect();
    let scores: Vec<UpliftScore> = properties
        .iter()
        .enumerate()
        .map(|(n, p)| UpliftScore {
            property_id: p.id,
            storm_id: t.storm,
            uplift: n as f64 / 100.0,
            p_treat: 0.3,
            p_hold: 0.2,
            model_version: "m1".into(),
            trained_at: NOW,
            data_watermark: 1,
        })
        .collect();
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    tx.upsert_properties(&properties, hlc(1), NOW)
        .await
        .unwrap();
    tx.upsert_uplift_scores(&scores, NOW).await.unwrap();
    tx.commit().await.unwrap();
    let all_came = |rows: &[sync_protocol::PulledChange]| {
        properties
            .iter()
            .all(|p| has(rows, Entity::Property, p.id.0) && has(rows, Entity::UpliftScore, p.id.0))
    };
    let awaited = "the properties and their scores";

    let (rows, _, _, cursors) =
        pull_pages_until(&h, &t, &admin, Some(start), 7, awaited, all_came).await;
    assert_eq!(rows.len(), 2 * N, "{}", describe(&rows));
    // Every page but the last stopped inside the transaction (a cursor at a row, not at an edge).
    let inside_pages: Vec<Cursor> = cursors
        .iter()
        .map(|c| Cursor::decode(c).expect("a cursor this server issued"))
        .filter(|c| c.id != uuid::Uuid::max())
        .collect();
    assert!(inside_pages.len() >= (2 * N).div_ceil(7) - 1, "{cursors:?}");
    // Record order across the pages (in change-id order, random), and each property's two changes side
    // by side: its own and its score's, which carries the property's id.
    let ids: Vec<uuid::Uuid> = rows.iter().map(|c| c.entity_id).collect();
    assert!(ids.windows(2).all(|w| w[0] <= w[1]), "{}", describe(&rows));
    for pair in rows.chunks(2) {
        assert_eq!(pair[0].entity_id, pair[1].entity_id, "{}", describe(&rows));
        let kinds: HashSet<Entity> = pair.iter().map(|c| c.entity).collect();
        assert_eq!(
            kinds,
            HashSet::from([Entity::Property, Entity::UpliftScore])
        );
    }

    // A cursor of the change-id order (from a server before the record order) inside that transaction
    // resumes at its start: the whole transaction comes again, and nothing before it. A page that stopped
    // inside the transaction (not at a horizon's edge, as a poll before it was visible did) names its txid.
    let txid = inside_pages[0].txid;
    let inside = format!("c1.{txid}.{}", uuid::Uuid::from_u128(1).simple());
    let (again, _, _, _) =
        pull_pages_until(&h, &t, &admin, Some(inside), 500, awaited, all_came).await;
    assert_eq!(
        again.iter().map(|c| c.entity_id).collect::<Vec<_>>(),
        ids,
        "{}",
        describe(&again)
    );
    // At the transaction's edge (where an older server's last page left a laptop), nothing of it again.
    let edge = format!("c1.{txid}.{}", uuid::Uuid::max().simple());
    let (after_edge, _, _) = pull_until(&h, &t, &admin, Some(edge), "the end", |_| true).await;
    assert!(after_edge.is_empty(), "{}", describe(&after_edge));
    h.teardown().await;
}
