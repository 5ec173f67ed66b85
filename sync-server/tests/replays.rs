//! Idempotent replays over HTTP: every push shape (each append-only entity, a policy override, a
//! field user's property update, an admin's record creation and office-field update) sent twice gives
//! `duplicate` receipts and changes no row; a batch mixing seen and new changes applies only the new
//! ones; a replayed id with an altered payload is still a duplicate and changes nothing.

mod harness;

use domain::{PropertyStatus, Role, StormId, Timestamp};
use harness::*;
use serde_json::json;
use sync_client::PushOutcome;
use sync_protocol::{Change, ChangeOp, Entity, ReceiptStatus};

async fn push_typed(h: &Harness, s: &Session, changes: &[Change]) -> Vec<ReceiptStatus> {
    match h.client.push(s.access(), changes).await.expect("push").0 {
        PushOutcome::Applied(r) => {
            let ids: Vec<_> = r.receipts.iter().map(|r| r.change_id).collect();
            let sent: Vec<_> = changes.iter().map(|c| c.id).collect();
            assert_eq!(ids, sent, "one receipt per change, in order");
            r.receipts.iter().map(|r| r.status).collect()
        }
        PushOutcome::Refused(r) => panic!("refused: {r:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_batches_are_acknowledged_and_never_applied_twice() {
    let h = Harness::start().await;
    let (a, b) = (&h.a, &h.b);
    let field = a.session(Role::FieldUser);
    let chief = a.session(Role::CrewChief);
    let admin = a.session(Role::Admin);
    let new_storm = storm(StormId::generate(), Timestamp::now());

    let shapes: Vec<(&str, &Session, Change)> = vec![
        ("journey touch", field, touch_change(field, a, 0, "knocked")),
        (
            "outcome",
            field,
            outcome_change(field, a.properties[1], a.storm),
        ),
        (
            "policy decision",
            field,
            decision_change(field, a.properties[2], a.storm, false),
        ),
        (
            "policy override",
            chief,
            decision_change(chief, a.properties[3], a.storm, true),
        ),
        (
            "property status update",
            field,
            status_change(field, a.properties[4], PropertyStatus::Inspected),
        ),
        (
            "property owner update",
            chief,
            change(
                chief,
                Entity::Property,
                a.properties[5].0,
                ChangeOp::Update,
                &json!({ "owner_name": "Sam", "owner_phone": "555-0100" }),
            ),
        ),
        (
            "admin creates a storm",
            admin,
            change(
                admin,
                Entity::Storm,
                new_storm.id.0,
                ChangeOp::Insert,
                &new_storm,
            ),
        ),
        (
            "admin updates an office field",
            admin,
            change(
                admin,
                Entity::Property,
                a.properties[0].0,
                ChangeOp::Update,
                &json!({ "home_value": 41_000_000 }),
            ),
        ),
    ];

    for (shape, s, c) in &shapes {
        let before = h.counts(a.id).await;
        let first = push_typed(&h, s, std::slice::from_ref(c)).await;
        assert_eq!(first, vec![ReceiptStatus::Accepted], "{shape}: first push");
        let applied = h.counts(a.id).await;
        assert_ne!(applied, before, "{shape}: the first push wrote nothing");
        let property = h.property_json(a.id, a.properties[4]).await;
        for round in 0..2 {
            let again = push_typed(&h, s, std::slice::from_ref(c)).await;
            assert_eq!(
                again,
                vec![ReceiptStatus::Duplicate],
                "{shape}: replay {round}"
            );
            assert_eq!(
                h.counts(a.id).await,
                applied,
                "{shape}: replay {round} changed rows"
            );
        }
        // The same change id with another payload (a corrupted or tampered replay) changes nothing.
        let mut altered = c.clone();
        altered.payload = match c.entity {
            Entity::Property => json!({ "status": "lost" }),
            _ => {
                let mut p = c.payload.clone();
                p["occurred_at"] = json!(Timestamp::now().millis() - 5);
                p
            }
        };
        if c.entity == Entity::Property {
            altered.entity_id = a.properties[4].0;
        }
        assert_eq!(
            push_typed(&h, s, &[altered]).await,
            vec![ReceiptStatus::Duplicate],
            "{shape}: altered replay"
        );
        assert_eq!(h.counts(a.id).await, applied, "{shape}: altered replay");
        assert_eq!(
            h.property_json(a.id, a.properties[4]).await,
            property,
            "{shape}: an altered replay changed a property"
        );
    }
    assert_eq!(h.count(a.id, "storms").await, 2);
    let status = h
        .property_json(a.id, a.properties[4])
        .await
        .expect("property");
    assert_eq!(status["status"], json!("inspected"));

    // A mixed batch: seen, new, seen, new (one session per batch: a change belongs to its device).
    let seen1 = touch_change(field, a, 1, "seen 1");
    let seen2 = outcome_change(field, a.properties[2], a.storm);
    assert_eq!(
        push_typed(&h, field, &[seen1.clone(), seen2.clone()]).await,
        vec![ReceiptStatus::Accepted; 2]
    );
    let before = h.counts(a.id).await;
    let new1 = touch_change(field, a, 2, "new 1");
    let new2 = decision_change(field, a.properties[3], a.storm, false);
    let mixed = [seen1.clone(), new1.clone(), seen2.clone(), new2.clone()];
    let got = h.push(field, &mixed).await;
    assert_eq!(
        receipt_statuses("mixed batch", &got),
        vec!["duplicate", "accepted", "duplicate", "accepted"]
    );
    let after = h.counts(a.id).await;
    let delta: Vec<(&str, i64)> = after
        .iter()
        .zip(&before)
        .map(|((t, n), (_, m))| (*t, n - m))
        .collect();
    assert_eq!(
        delta,
        vec![
            ("journey_touches", 1),
            ("outcomes", 0),
            ("policy_decisions", 1),
            // Append-only changes are remembered by their feed rows (keyed by the change id), not the ledger.
            ("applied_changes", 0),
            ("change_log", 2),
            ("storms", 0),
            ("properties", 0),
        ],
        "only the new changes were applied"
    );
    assert_eq!(
        receipt_statuses("mixed batch replayed", &h.push(field, &mixed).await),
        vec!["duplicate"; 4]
    );
    assert_eq!(h.counts(a.id).await, after);

    // The same id twice inside one batch counts once.
    let twin = touch_change(field, a, 3, "twin");
    assert_eq!(
        receipt_statuses(
            "a change twice in one batch",
            &h.push(field, &[twin.clone(), twin.clone()]).await
        ),
        vec!["accepted", "duplicate"]
    );
    assert_eq!(h.counts(a.id).await[0].1, after[0].1 + 1);

    // A refused batch records nothing, so after the fix it is accepted, not a duplicate.
    let rider = touch_change(field, a, 4, "rider");
    let foreign = touch_change(field, b, 0, "foreign");
    let got = h.push(field, &[rider.clone(), foreign]).await;
    assert_eq!(
        refused_codes("refused batch", &got),
        vec!["foreign_reference"]
    );
    assert_eq!(
        push_typed(&h, field, std::slice::from_ref(&rider)).await,
        vec![ReceiptStatus::Accepted],
        "a change of a refused batch was remembered as applied"
    );

    // The idempotency ledger is per tenant: B may use the same change id for its own change.
    let bf = b.session(Role::FieldUser);
    let mut b_change = touch_change(bf, b, 0, "B's own");
    b_change.id = seen1.id;
    assert_eq!(
        push_typed(&h, bf, &[b_change]).await,
        vec![ReceiptStatus::Accepted],
        "A's change id made B's change a duplicate"
    );

    // The feed carries each appended record exactly once.
    let touch_ids = [seen1.entity_id, new1.entity_id, twin.entity_id];
    let rows = h
        .pull_until(a.session(Role::Viewer), |rows| {
            touch_ids
                .iter()
                .all(|id| rows.iter().any(|r| r.entity_id == *id))
        })
        .await;
    let touches = ids_of(&rows, Entity::JourneyTouch);
    let mut unique = touches.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), touches.len(), "a touch arrived twice");
    assert_eq!(
        touches.len() as i64,
        h.count(a.id, "journey_touches").await,
        "every stored touch arrived once"
    );
    h.stop().await;
}
