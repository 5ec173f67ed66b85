//! Push storage against real PostgreSQL as the application role: idempotent replays of every entity
//! kind, all-or-nothing refusal, the refusal rules, foreign references across tenants, merges.

mod common;

use common::*;
use domain::*;
use serde_json::json;
use server_store::PushOutcome;
use sync_protocol::{ChangeOp, Entity, ErrorCode, ReceiptStatus};

#[tokio::test]
async fn replaying_every_kind_of_push_is_a_duplicate_and_applies_nothing_twice() {
    let h = setup().await;
    let t = provision(&h, "acme", 3).await;
    let touch = t.touch(0, "knocked");
    let outcome = t.outcome(1);
    let decision = t.decision(2, false);
    let batch = vec![
        t.touch_change(&touch),
        t.change(Entity::Outcome, outcome.id.0, ChangeOp::Insert, &outcome, 2),
        t.change(
            Entity::PolicyDecision,
            decision.id.0,
            ChangeOp::Insert,
            &decision,
            3,
        ),
        t.status_change(0, PropertyStatus::Inspected, 4),
    ];
    let first = push(&h, &t, Role::FieldUser, &batch).await;
    assert_eq!(statuses(&first), vec![ReceiptStatus::Accepted; 4]);
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    let feed_after_first = count(&mut tx, "change_log").await;
    drop(tx);

    // The whole batch again, then each change alone: all duplicates, nothing applied again.
    let replay = push(&h, &t, Role::FieldUser, &batch).await;
    assert_eq!(statuses(&replay), vec![ReceiptStatus::Duplicate; 4]);
    for change in &batch {
        assert_eq!(
            statuses(&push(&h, &t, Role::FieldUser, std::slice::from_ref(change)).await),
            vec![ReceiptStatus::Duplicate]
        );
    }
    // A change repeated inside one batch counts once.
    let twice = t.touch_change(&t.touch(1, "again"));
    assert_eq!(
        statuses(&push(&h, &t, Role::FieldUser, &[twice.clone(), twice]).await),
        vec![ReceiptStatus::Accepted, ReceiptStatus::Duplicate]
    );

    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    assert_eq!(count(&mut tx, "journey_touches").await, 2);
    assert_eq!(count(&mut tx, "outcomes").await, 1);
    assert_eq!(count(&mut tx, "policy_decisions").await, 1);
    // Each accepted append-only change is remembered by its own feed row (keyed by the change id);
    // only the merge of the property, which has no feed row of its own, is in the ledger.
    assert_eq!(count(&mut tx, "applied_changes").await, 1);
    assert_eq!(
        count(&mut tx, "change_log").await,
        feed_after_first + 1,
        "replays add nothing to the feed"
    );
    let feed_ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM change_log")
        .fetch_all(tx.connection())
        .await
        .unwrap();
    for change in &batch[..3] {
        assert!(feed_ids.contains(&change.id.0), "{:?}", change.entity);
    }
    let ledger: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT change_id FROM applied_changes")
        .fetch_all(tx.connection())
        .await
        .unwrap();
    assert_eq!(ledger, vec![batch[3].id.0]);
    let status: String = sqlx::query_scalar("SELECT status FROM properties WHERE id = $1")
        .bind(t.properties[0].0)
        .fetch_one(tx.connection())
        .await
        .unwrap();
    assert_eq!(status, "inspected");
    drop(tx);
    h.teardown().await;
}

#[tokio::test]
async fn changes_that_leave_no_feed_row_of_their_own_are_still_never_applied_twice() {
    let h = setup().await;
    let t = provision(&h, "acme", 2).await;
    // Two changes of one record in one batch: one feed row (the first change's), the second in the ledger.
    let touch = t.touch(0, "twice in one batch");
    let (first, second) = (t.touch_change(&touch), t.touch_change(&touch));
    // Two merges of one property in one batch fold into one feed row; both change ids are remembered.
    let (merge_a, merge_b) = (
        t.status_change(1, PropertyStatus::Inspected, 7),
        t.status_change(1, PropertyStatus::InProgress, 8),
    );
    let batch = [
        first.clone(),
        second.clone(),
        merge_a.clone(),
        merge_b.clone(),
    ];
    assert_eq!(
        statuses(&push(&h, &t, Role::FieldUser, &batch).await),
        vec![ReceiptStatus::Accepted; 4]
    );
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    let feed_before = count(&mut tx, "change_log").await;
    assert_eq!(count(&mut tx, "journey_touches").await, 1);
    assert_eq!(count(&mut tx, "applied_changes").await, 3);
    drop(tx);
    // Every one of them, replayed alone or together, is a duplicate and writes nothing.
    for change in &batch {
        assert_eq!(
            statuses(&push(&h, &t, Role::FieldUser, std::slice::from_ref(change)).await),
            vec![ReceiptStatus::Duplicate]
        );
    }
    assert_eq!(
        statuses(&push(&h, &t, Role::FieldUser, &batch).await),
        vec![ReceiptStatus::Duplicate; 4]
    );
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    assert_eq!(count(&mut tx, "change_log").await, feed_before);
    assert_eq!(count(&mut tx, "applied_changes").await, 3);
    assert_eq!(count(&mut tx, "journey_touches").await, 1);
    drop(tx);
    h.teardown().await;
}

#[tokio::test]
async fn the_same_record_under_a_new_change_id_is_inserted_once() {
    let h = setup().await;
    let t = provision(&h, "acme", 1).await;
    let touch = t.touch(0, "once");
    assert_eq!(
        statuses(&push(&h, &t, Role::FieldUser, &[t.touch_change(&touch)]).await),
        vec![ReceiptStatus::Accepted]
    );
    assert_eq!(
        statuses(&push(&h, &t, Role::FieldUser, &[t.touch_change(&touch)]).await),
        vec![ReceiptStatus::Accepted]
    );
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    assert_eq!(count(&mut tx, "journey_touches").await, 1);
    // The second change id left no feed row, so the ledger holds it: its replay is a duplicate.
    assert_eq!(count(&mut tx, "applied_changes").await, 1);
    drop(tx);
    let again = t.touch_change(&touch);
    assert_eq!(
        statuses(&push(&h, &t, Role::FieldUser, std::slice::from_ref(&again)).await),
        vec![ReceiptStatus::Accepted]
    );
    assert_eq!(
        statuses(&push(&h, &t, Role::FieldUser, &[again]).await),
        vec![ReceiptStatus::Duplicate]
    );
    h.teardown().await;
}

#[tokio::test]
async fn one_bad_change_refuses_the_whole_batch_and_stores_nothing() {
    let h = setup().await;
    let t = provision(&h, "acme", 2).await;
    let mut bad = t.touch(1, "bad");
    bad.occurred_at = Timestamp(0);
    let batch = vec![
        t.touch_change(&t.touch(0, "good")),
        t.status_change(0, PropertyStatus::Inspected, 5),
        t.touch_change(&bad),
        t.touch_change(&t.touch(1, "good too")),
    ];
    let outcome = push(&h, &t, Role::FieldUser, &batch).await;
    let refused = refused(&outcome);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].change_id, batch[2].id);
    assert_eq!(refused[0].code, Some(ErrorCode::ValidationFailed));
    assert!(
        refused[0]
            .reason
            .as_deref()
            .unwrap()
            .starts_with("occurred_at"),
        "{refused:?}"
    );
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    assert_eq!(count(&mut tx, "journey_touches").await, 0);
    assert_eq!(count(&mut tx, "applied_changes").await, 0);
    let status: String = sqlx::query_scalar("SELECT status FROM properties WHERE id = $1")
        .bind(t.properties[0].0)
        .fetch_one(tx.connection())
        .await
        .unwrap();
    assert_eq!(status, "new");
    drop(tx);
    // The same batch without the bad change goes through, and is not a duplicate.
    let retry: Vec<_> = batch
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, c)| c.clone())
        .collect();
    assert_eq!(
        statuses(&push(&h, &t, Role::FieldUser, &retry).await),
        vec![ReceiptStatus::Accepted; 3]
    );
    h.teardown().await;
}

#[tokio::test]
async fn refusal_rules_name_the_reason() {
    let h = setup().await;
    let t = provision(&h, "acme", 2).await;
    let touch = t.touch(0, "x");
    let score = UpliftScore {
        property_id: t.properties[0],
        storm_id: t.storm,
        uplift: 0.1,
        p_treat: 0.3,
        p_hold: 0.2,
        model_version: "m".into(),
        trained_at: NOW,
        data_watermark: 1,
    };
    let mut wrong_id = t.touch(0, "y");
    let other_id = TouchId::generate();
    wrong_id.id = other_id;
    let mut foreign_device = t.touch_change(&t.touch(0, "z"));
    foreign_device.device_id = DeviceId::generate();
    let mut from_the_future = t.touch_change(&t.touch(0, "w"));
    from_the_future.hlc = Hlc::new(NOW.0 as u64 + 3_600_000, 0, 1);
    let mut unknown_field = serde_json::to_value(t.touch(1, "u")).unwrap();
    unknown_field["sneaky"] = json!(1);
    let unknown_field_id = uuid::Uuid::parse_str(unknown_field["id"].as_str().unwrap()).unwrap();
    let overriding = t.decision(0, true);
    let cases = vec![
        (
            Role::FieldUser,
            t.change(
                Entity::UpliftScore,
                t.properties[0].0,
                ChangeOp::Insert,
                &score,
                1,
            ),
            ErrorCode::ServerOwnedField,
        ),
        (
            Role::FieldUser,
            t.change(
                Entity::Assignment,
                uuid::Uuid::now_v7(),
                ChangeOp::Insert,
                &json!({}),
                1,
            ),
            ErrorCode::ServerOwnedField,
        ),
        (
            Role::FieldUser,
            t.change(
                Entity::JourneyTouch,
                touch.id.0,
                ChangeOp::Update,
                &json!({"notes": "edited"}),
                1,
            ),
            ErrorCode::AppendOnly,
        ),
        (
            Role::FieldUser,
            t.change(
                Entity::JourneyTouch,
                touch.id.0,
                ChangeOp::Delete,
                &serde_json::Value::Null,
                1,
            ),
            ErrorCode::AppendOnly,
        ),
        (
            Role::FieldUser,
            t.change(
                Entity::Property,
                t.properties[0].0,
                ChangeOp::Update,
                &json!({"address": "1 Other St"}),
                1,
            ),
            ErrorCode::ServerOwnedField,
        ),
        (
            Role::FieldUser,
            t.change(
                Entity::Property,
                PropertyId::generate().0,
                ChangeOp::Update,
                &json!({"status": "inspected"}),
                1,
            ),
            ErrorCode::UnknownRecord,
        ),
        (
            Role::FieldUser,
            t.change(
                Entity::Property,
                t.properties[0].0,
                ChangeOp::Update,
                &json!({"status": "exploded"}),
                1,
            ),
            ErrorCode::ValidationFailed,
        ),
        (
            Role::FieldUser,
            t.change(
                Entity::Property,
                t.properties[0].0,
                ChangeOp::Update,
                &json!({"colour": "red"}),
                1,
            ),
            ErrorCode::UnknownField,
        ),
        (
            Role::FieldUser,
            t.change(
                Entity::User,
                t.field.0,
                ChangeOp::Update,
                &json!({"role": "admin"}),
                1,
            ),
            ErrorCode::ServerOwnedField,
        ),
        (
            Role::FieldUser,
            t.change(
                Entity::Storm,
                StormId::generate().0,
                ChangeOp::Insert,
                &storm(StormId::generate()),
                1,
            ),
            ErrorCode::ServerOwnedField,
        ),
        (
            Role::FieldUser,
            t.change(
                Entity::PolicyDecision,
                overriding.id.0,
                ChangeOp::Insert,
                &overriding,
                1,
            ),
            ErrorCode::Forbidden,
        ),
        (
            Role::Viewer,
            t.touch_change(&t.touch(0, "v")),
            ErrorCode::Forbidden,
        ),
        (
            Role::FieldUser,
            t.change(
                Entity::JourneyTouch,
                touch.id.0,
                ChangeOp::Insert,
                &wrong_id,
                1,
            ),
            ErrorCode::ValidationFailed,
        ),
        (Role::FieldUser, foreign_device, ErrorCode::Forbidden),
        (Role::FieldUser, from_the_future, ErrorCode::ClockSkew),
        (
            Role::FieldUser,
            t.change(
                Entity::JourneyTouch,
                unknown_field_id,
                ChangeOp::Insert,
                &unknown_field,
                1,
            ),
            ErrorCode::UnknownField,
        ),
    ];
    for (role, change, code) in cases {
        let outcome = push(&h, &t, role, std::slice::from_ref(&change)).await;
        let refused = refused(&outcome);
        assert_eq!(refused.len(), 1, "{change:?}");
        assert_eq!(refused[0].code, Some(code), "{change:?} -> {refused:?}");
        assert_eq!(refused[0].status, ReceiptStatus::Refused);
    }
    // A crew chief may override; so may an admin.
    let d = t.decision(0, true);
    let ok = push(
        &h,
        &t,
        Role::CrewChief,
        &[t.change(Entity::PolicyDecision, d.id.0, ChangeOp::Insert, &d, 1)],
    )
    .await;
    assert_eq!(statuses(&ok), vec![ReceiptStatus::Accepted]);
    h.teardown().await;
}

#[tokio::test]
async fn a_reference_to_another_tenants_property_is_refused_without_revealing_it() {
    let h = setup().await;
    let a = provision(&h, "alpha", 1).await;
    let b = provision(&h, "beta", 1).await;
    // B's touch naming A's property (and A's storm), versus one naming a property that exists nowhere.
    let mut stolen = b.touch(0, "peek");
    stolen.property_id = a.properties[0];
    stolen.storm_id = a.storm;
    let mut invented = b.touch(0, "peek");
    invented.property_id = PropertyId::generate();
    invented.storm_id = StormId::generate();
    let out_stolen = push(&h, &b, Role::FieldUser, &[b.touch_change(&stolen)]).await;
    let out_invented = push(&h, &b, Role::FieldUser, &[b.touch_change(&invented)]).await;
    let (r1, r2) = (&refused(&out_stolen)[0], &refused(&out_invented)[0]);
    assert_eq!(r1.code, Some(ErrorCode::ForeignReference));
    assert_eq!(r2.code, Some(ErrorCode::ForeignReference));
    // Same words for both, apart from the id the caller sent itself.
    let redact = |r: &sync_protocol::Receipt, id: PropertyId| {
        r.reason.clone().unwrap().replace(&id.to_string(), "<id>")
    };
    assert_eq!(
        redact(r1, a.properties[0]),
        redact(r2, invented.property_id)
    );
    // A property of this tenant under the wrong storm is refused too.
    let mut mismatched = b.touch(0, "wrong storm");
    mismatched.storm_id = a.storm;
    let out = push(&h, &b, Role::FieldUser, &[b.touch_change(&mismatched)]).await;
    assert_eq!(refused(&out)[0].code, Some(ErrorCode::ForeignReference));
    // Both ids of this tenant, but the property is not in that storm.
    let mut tx = h.app.begin_tenant(b.id).await.unwrap();
    let second_storm = storm(StormId::generate());
    tx.upsert_storms(std::slice::from_ref(&second_storm), hlc(1), NOW)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut crossed = b.touch(0, "crossed");
    crossed.storm_id = second_storm.id;
    let out = push(&h, &b, Role::FieldUser, &[b.touch_change(&crossed)]).await;
    assert_eq!(refused(&out)[0].code, Some(ErrorCode::ValidationFailed));
    let mut tx = h.app.begin_tenant(a.id).await.unwrap();
    assert_eq!(count(&mut tx, "journey_touches").await, 0);
    drop(tx);
    h.teardown().await;
}

#[tokio::test]
async fn sql_looking_text_is_stored_verbatim() {
    let h = setup().await;
    let t = provision(&h, "acme", 1).await;
    let nasty = "'); DROP TABLE journey_touches; -- \\ \t\n $1 ::uuid \"quoted\" Robert'); --";
    let touch = t.touch(0, nasty);
    assert_eq!(
        statuses(&push(&h, &t, Role::FieldUser, &[t.touch_change(&touch)]).await),
        vec![ReceiptStatus::Accepted]
    );
    let change = t.change(
        Entity::Property,
        t.properties[0].0,
        ChangeOp::Update,
        &json!({"owner_name": nasty}),
        9,
    );
    assert_eq!(
        statuses(&push(&h, &t, Role::FieldUser, &[change]).await),
        vec![ReceiptStatus::Accepted]
    );
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    let notes: String = sqlx::query_scalar("SELECT notes FROM journey_touches")
        .fetch_one(tx.connection())
        .await
        .unwrap();
    let owner: String = sqlx::query_scalar("SELECT owner_name FROM properties WHERE id = $1")
        .bind(t.properties[0].0)
        .fetch_one(tx.connection())
        .await
        .unwrap();
    assert_eq!(notes, nasty);
    assert_eq!(owner, nasty);
    drop(tx);
    h.teardown().await;
}

#[tokio::test]
async fn property_fields_merge_by_clock_whatever_the_arrival_order() {
    let h = setup().await;
    let a = provision(&h, "alpha", 1).await;
    let b = provision(&h, "beta", 1).await;
    let writes = |t: &Tenant1| {
        vec![
            t.status_change(0, PropertyStatus::Inspected, 10),
            t.change(
                Entity::Property,
                t.properties[0].0,
                ChangeOp::Update,
                &json!({"status": "contracted", "owner_name": "Sam"}),
                5,
            ),
            t.change(
                Entity::Property,
                t.properties[0].0,
                ChangeOp::Update,
                &json!({"owner_phone": "555"}),
                7,
            ),
        ]
    };
    // Tenant A receives them in order, one push each; tenant B in reverse order, in one batch.
    for c in writes(&a) {
        assert!(matches!(
            push(&h, &a, Role::FieldUser, &[c]).await,
            PushOutcome::Applied(_)
        ));
    }
    let mut reversed = writes(&b);
    reversed.reverse();
    assert!(matches!(
        push(&h, &b, Role::CrewChief, &reversed).await,
        PushOutcome::Applied(_)
    ));
    let read = |t: Tenant1| {
        let h = &h;
        async move {
            let mut tx = h.app.begin_tenant(t.id).await.unwrap();
            let row: (String, Option<String>, Option<String>) = sqlx::query_as(
                "SELECT status, owner_name, owner_phone FROM properties WHERE id = $1",
            )
            .bind(t.properties[0].0)
            .fetch_one(tx.connection())
            .await
            .unwrap();
            row
        }
    };
    let expected = (
        "inspected".to_owned(),
        Some("Sam".to_owned()),
        Some("555".to_owned()),
    );
    assert_eq!(read(a).await, expected);
    assert_eq!(read(b).await, expected);
    h.teardown().await;
}

#[tokio::test]
async fn an_admin_creates_storms_and_properties_in_one_batch() {
    let h = setup().await;
    let t = provision(&h, "acme", 0).await;
    let s = storm(StormId::generate());
    let p = property(PropertyId::generate(), s.id, 1);
    let touch = JourneyTouch {
        property_id: p.id,
        storm_id: s.id,
        ..t.touch_with_no_property()
    };
    let batch = vec![
        t.change(Entity::Property, p.id.0, ChangeOp::Insert, &p, 2),
        t.change(Entity::Storm, s.id.0, ChangeOp::Insert, &s, 1),
        t.touch_change(&touch),
    ];
    assert_eq!(
        statuses(&push(&h, &t, Role::Admin, &batch).await),
        vec![ReceiptStatus::Accepted; 3]
    );
    h.teardown().await;
}

trait NoProperty {
    fn touch_with_no_property(&self) -> JourneyTouch;
}

impl NoProperty for Tenant1 {
    fn touch_with_no_property(&self) -> JourneyTouch {
        JourneyTouch {
            id: TouchId::generate(),
            property_id: PropertyId::nil(),
            storm_id: self.storm,
            user_id: self.admin,
            device_id: self.device,
            channel: Channel::Call,
            result: TouchResult::NoAnswer,
            notes: String::new(),
            occurred_at: NOW,
        }
    }
}

#[tokio::test]
async fn a_thousand_change_batch_is_applied_in_one_go() {
    let h = setup().await;
    let t = provision(&h, "acme", 50).await;
    let batch: Vec<_> = (0..1_000)
        .map(|i| t.touch_change(&t.touch(i % 50, &format!("touch {i}"))))
        .collect();
    assert_eq!(
        statuses(&push(&h, &t, Role::FieldUser, &batch).await),
        vec![ReceiptStatus::Accepted; 1_000]
    );
    assert_eq!(
        statuses(&push(&h, &t, Role::FieldUser, &batch).await),
        vec![ReceiptStatus::Duplicate; 1_000]
    );
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    assert_eq!(count(&mut tx, "journey_touches").await, 1_000);
    drop(tx);
    h.teardown().await;
}
