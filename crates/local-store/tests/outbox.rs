//! The outbox against a real SQLCipher file: same-transaction writes, typed validation, receipts, the
//! inbox (retry, edit, discard), record sync states, and pulled pages that keep pending local writes.

mod support;

use domain::*;
use local_store::{PropertyUpdate, RecordSyncState, RecoveryKey, StoreError, TenantStore};
use serde_json::json;
use support::*;
use sync_protocol::{ChangeOp, Entity, ErrorCode, FieldClocks, PulledChange, Receipt};

fn pending(store: &TenantStore) -> i64 {
    store.pending_counts().expect("counts").pending
}

fn seeded() -> (Fixture, Storm, Property) {
    let mut f = tenant();
    let s = storm();
    f.store.add_storm(&s).expect("storm");
    let p = property(s.id, 1, "12 Elm St");
    f.store.add_property(&p).expect("property");
    (f, s, p)
}

#[test]
fn every_write_appends_its_change_in_hlc_order_and_the_clock_survives_a_reopen() {
    let (mut f, s, p) = seeded();
    let user = UserId::generate();
    let t = touch(&p, user, f.store.device_id(), "talked to owner");
    f.store.add_touch(&t).expect("touch");
    f.store
        .add_outcome(&outcome(&p, true, 1_250_000))
        .expect("outcome");
    f.store
        .add_decision(&decision(&p, Decision::Treat, user, NOW))
        .expect("decision");
    let changes = f.store.pending_changes(100).expect("pending");
    let entities: Vec<Entity> = changes.iter().map(|c| c.entity).collect();
    assert_eq!(
        entities,
        [
            Entity::Storm,
            Entity::Property,
            Entity::JourneyTouch,
            Entity::Outcome,
            Entity::PolicyDecision
        ]
    );
    assert!(changes.windows(2).all(|w| w[0].hlc < w[1].hlc), "HLC order");
    assert!(
        changes
            .iter()
            .all(|c| c.op == ChangeOp::Insert && c.device_id == f.store.device_id())
    );
    assert_eq!(changes[0].entity_id, s.id.0);
    let back: JourneyTouch =
        serde_json::from_value(changes[2].payload.clone()).expect("payload is the record");
    assert_eq!(back, t);
    assert_eq!(changes[2].id.0.get_version_num(), 7);
    // An append-only record's insert takes the record's id as its change id (migration 0011); a mutable
    // record's changes have ids of their own.
    assert_eq!(changes[2].id.0, t.id.0);
    assert_ne!(changes[0].id.0, s.id.0);
    assert_eq!(
        f.store
            .record_sync_state(Entity::JourneyTouch, t.id.0)
            .expect("state"),
        RecordSyncState::Pending { changes: 1 }
    );
    assert_eq!(f.store.pending_changes(2).expect("limited").len(), 2);

    let last = changes[4].hlc;
    assert_eq!(f.store.last_hlc(), last);
    let placeholder =
        TenantStore::open_plain_for_benchmark(&f.dir.path().join("other.db")).expect("placeholder");
    drop(std::mem::replace(&mut f.store, placeholder));
    let mut reopened = f
        .data_dir
        .open_with_recovery_key(
            f.tenant_id,
            &RecoveryKey::parse(&f.recovery_key).expect("key"),
        )
        .expect("reopen");
    assert_eq!(
        reopened.last_hlc(),
        last,
        "the clock's last reading is persisted in meta"
    );
    // Even with the wall clock behind, the next reading follows the persisted one.
    reopened.set_wall_clock(Box::new(local_store::ManualClock::new(
        NOW.plus_millis(-60_000),
    )));
    reopened
        .add_touch(&touch(&p, user, reopened.device_id(), ""))
        .expect("touch");
    assert!(reopened.pending_changes(100).expect("pending")[5].hlc > last);
}

#[test]
fn a_failed_write_leaves_neither_the_record_nor_its_change() {
    let (mut f, _, p) = seeded();
    let before = pending(&f.store);
    let mut bad = touch(&p, UserId::generate(), f.store.device_id(), "");
    bad.notes = "x".repeat(5_000);
    let err = f.store.add_touch(&bad).expect_err("too long");
    assert_eq!(err.code(), "validation.too_long");
    assert_eq!(f.store.record_counts().expect("counts").touches, 0);
    assert_eq!(pending(&f.store), before);

    // A batch whose second record collides fails as a whole: the first record is rolled back too.
    let good = touch(&p, UserId::generate(), f.store.device_id(), "first");
    let existing = touch(&p, UserId::generate(), f.store.device_id(), "existing");
    f.store.add_touch(&existing).expect("existing");
    let err = f
        .store
        .add_touches(&[good.clone(), existing.clone()])
        .expect_err("duplicate id");
    assert_eq!(err.code(), "store.already_exists");
    assert!(
        f.store
            .timeline(p.id)
            .expect("timeline")
            .iter()
            .all(|e| !matches!(e, local_store::TimelineEntry::Touch(t) if t.id == good.id))
    );
    assert_eq!(pending(&f.store), before + 1);

    // The same through the multi-row statements of a large batch: an id already stored, and an id twice
    // in the batch, each refuse the whole batch and name the record.
    let batch: Vec<JourneyTouch> = (0..150)
        .map(|i| {
            touch(
                &p,
                UserId::generate(),
                f.store.device_id(),
                &format!("batch {i}"),
            )
        })
        .collect();
    for (at, dup) in [(100, existing.clone()), (140, batch[3].clone())] {
        let mut with_dup = batch.clone();
        with_dup[at] = dup.clone();
        match f.store.add_touches(&with_dup).expect_err("duplicate id") {
            StoreError::AlreadyExists { entity, id } => {
                assert_eq!((entity, id), ("journey_touch", dup.id.to_string()));
            }
            other => panic!("expected already_exists, got {other:?}"),
        }
        assert_eq!(f.store.record_counts().expect("counts").touches, 1);
        assert_eq!(pending(&f.store), before + 1);
    }
    let ids = f
        .store
        .add_touches(&batch)
        .expect("the batch alone is fine");
    assert_eq!(ids.len(), 150);
    assert_eq!(f.store.record_counts().expect("counts").touches, 151);
    assert_eq!(pending(&f.store), before + 151);
    let queued = f.store.pending_changes(1_000).expect("pending");
    let touch_changes: Vec<_> = queued
        .iter()
        .filter(|c| c.entity == Entity::JourneyTouch)
        .collect();
    assert_eq!(
        touch_changes
            .iter()
            .skip(1)
            .map(|c| c.entity_id)
            .collect::<Vec<_>>(),
        batch.iter().map(|t| t.id.0).collect::<Vec<_>>(),
        "one change per touch, in the batch's order"
    );
    assert!(queued.windows(2).all(|w| w[0].hlc < w[1].hlc), "HLC order");
    let payload: JourneyTouch =
        serde_json::from_value(touch_changes[77].payload.clone()).expect("payload is the record");
    assert_eq!(payload, batch[76]);

    // A duplicate external id within the storm is refused the same way.
    let mut twin = property(p.storm_id, 1, "other address");
    twin.external_id = p.external_id.clone();
    assert_eq!(
        f.store
            .add_property(&twin)
            .expect_err("duplicate external id")
            .code(),
        "store.already_exists"
    );
    assert_eq!(pending(&f.store), before + 151);
}

#[test]
fn every_validation_error_surfaces_as_a_typed_error() {
    let (mut f, s, p) = seeded();
    let user = UserId::generate();
    let mut bad_storm = storm();
    bad_storm.hail_size_in = 11.0;
    let mut bad_property = property(s.id, 2, "1 Oak Ave");
    bad_property.latitude = 91.0;
    let mut future_touch = touch(&p, user, f.store.device_id(), "");
    future_touch.occurred_at = NOW.plus_millis(3 * 86_400_000);
    let negative = outcome(&p, true, -5);
    let mut unconverted_value = outcome(&p, false, 100);
    unconverted_value.converted = false;
    let mut override_without_reason = decision(&p, Decision::Hold, user, NOW);
    override_without_reason.is_override = true;
    let cases: Vec<(Result<ChangeId, StoreError>, &str, &str)> = vec![
        (
            f.store.add_storm(&bad_storm),
            "validation.out_of_range",
            "hail_size_in",
        ),
        (
            f.store.add_property(&bad_property),
            "validation.out_of_range",
            "latitude",
        ),
        (
            f.store.add_touch(&future_touch),
            "validation.in_future",
            "occurred_at",
        ),
        (
            f.store.add_outcome(&negative),
            "validation.negative",
            "contract_value",
        ),
        (
            f.store.add_outcome(&unconverted_value),
            "validation.inconsistent",
            "contract_value",
        ),
        (
            f.store.add_decision(&override_without_reason),
            "validation.required",
            "reason",
        ),
        (
            f.store.update_property(
                p.id,
                &PropertyUpdate {
                    owner_email: Some(Some("not-an-email".into())),
                    ..Default::default()
                },
            ),
            "validation.invalid_format",
            "owner_email",
        ),
    ];
    for (result, code, field) in cases {
        let err = result.expect_err(code);
        assert_eq!(err.code(), code);
        match err {
            StoreError::Validation(v) => assert_eq!(v.field, field),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }
    assert_eq!(pending(&f.store), 2, "only the seeded storm and property");
    assert_eq!(f.store.property(p.id).expect("read"), Some(p));
}

#[test]
fn receipts_settle_changes_and_record_states_follow() {
    let (mut f, _, p) = seeded();
    let t = touch(&p, UserId::generate(), f.store.device_id(), "");
    f.store.add_touch(&t).expect("touch");
    let changes = f.store.pending_changes(10).expect("pending");
    let receipts = vec![
        Receipt::accepted(changes[0].id),
        Receipt::duplicate(changes[1].id),
        Receipt::refused(
            changes[2].id,
            ErrorCode::ForeignReference,
            "property unknown on the server",
        ),
        Receipt::accepted(ChangeId::generate()),
    ];
    let server = Hlc::new(NOW.millis() as u64 + 5_000, 3, 99);
    let summary = f
        .store
        .apply_receipts(&receipts, Some(server))
        .expect("receipts");
    assert_eq!(
        (summary.synced, summary.refused, summary.unknown),
        (2, 1, 1)
    );
    assert_eq!(
        f.store
            .record_sync_state(Entity::Property, p.id.0)
            .expect("state"),
        RecordSyncState::Synced
    );
    assert_eq!(
        f.store
            .record_sync_state(Entity::JourneyTouch, t.id.0)
            .expect("state"),
        RecordSyncState::Refused {
            code: "foreign_reference".into(),
            reason: "property unknown on the server".into()
        }
    );
    let counts = f.store.pending_counts().expect("counts");
    assert_eq!((counts.pending, counts.refused), (0, 1));
    assert!(
        f.store.last_hlc() > server,
        "the server's clock reading is observed"
    );
    assert!(f.store.sync_state().expect("sync").last_push_at.is_some());
}

fn refuse_all(store: &mut TenantStore) {
    let receipts: Vec<Receipt> = store
        .pending_changes(100)
        .expect("pending")
        .iter()
        .map(|c| Receipt::refused(c.id, ErrorCode::ValidationFailed, "refused in test"))
        .collect();
    store.apply_receipts(&receipts, None).expect("receipts");
}

fn accept_all(store: &mut TenantStore) {
    let receipts: Vec<Receipt> = store
        .pending_changes(100)
        .expect("pending")
        .iter()
        .map(|c| Receipt::accepted(c.id))
        .collect();
    store.apply_receipts(&receipts, None).expect("receipts");
}

#[test]
fn inbox_changes_can_be_retried_edited_or_discarded() {
    let (mut f, _, p) = seeded();
    accept_all(&mut f.store);
    let user = UserId::generate();
    let retry = touch(&p, user, f.store.device_id(), "retry me");
    let edit = touch(&p, user, f.store.device_id(), "edit me");
    let discard = touch(&p, user, f.store.device_id(), "discard me");
    for t in [&retry, &edit, &discard] {
        f.store.add_touch(t).expect("touch");
    }
    f.store
        .update_property(
            p.id,
            &PropertyUpdate {
                status: Some(PropertyStatus::Inspected),
                ..Default::default()
            },
        )
        .expect("update");
    refuse_all(&mut f.store);
    let inbox = f.store.inbox().expect("inbox");
    assert_eq!(inbox.len(), 4);
    assert!(
        inbox
            .iter()
            .all(|i| i.code == "validation_failed" && i.reason == "refused in test")
    );
    let id_of = |entity_id: uuid::Uuid| {
        inbox
            .iter()
            .find(|i| i.change.entity_id == entity_id)
            .map(|i| i.change.id)
            .expect("in inbox")
    };

    f.store.retry_refused(id_of(retry.id.0)).expect("retry");
    assert_eq!(
        f.store
            .record_sync_state(Entity::JourneyTouch, retry.id.0)
            .expect("state"),
        RecordSyncState::Pending { changes: 1 }
    );
    assert_eq!(
        f.store
            .retry_refused(id_of(retry.id.0))
            .expect_err("no longer refused")
            .code(),
        "store.not_in_inbox"
    );

    // An edit is validated like a write: a bad payload changes nothing.
    let mut edited = edit.clone();
    edited.notes = "x".repeat(5_000);
    let err = f
        .store
        .edit_refused(
            id_of(edit.id.0),
            serde_json::to_value(&edited).expect("json"),
        )
        .expect_err("invalid edit");
    assert_eq!(err.code(), "validation.too_long");
    assert_eq!(f.store.inbox().expect("inbox").len(), 3);
    assert_eq!(
        f.store
            .record_sync_state(Entity::JourneyTouch, edit.id.0)
            .expect("state"),
        RecordSyncState::Refused {
            code: "validation_failed".into(),
            reason: "refused in test".into()
        }
    );
    edited.notes = "edited notes".into();
    let new_id = f
        .store
        .edit_refused(
            id_of(edit.id.0),
            serde_json::to_value(&edited).expect("json"),
        )
        .expect("edit");
    let pending_now = f.store.pending_changes(10).expect("pending");
    let resent = pending_now
        .iter()
        .find(|c| c.id == new_id)
        .expect("new change pending");
    assert_eq!(resent.payload["notes"], json!("edited notes"));
    // The edit is a new change with an id of its own, still found by its record.
    assert_ne!(new_id.0, edit.id.0);
    assert_eq!(
        f.store
            .record_sync_state(Entity::JourneyTouch, edit.id.0)
            .expect("state"),
        RecordSyncState::Pending { changes: 1 }
    );
    let stored = f
        .store
        .timeline(p.id)
        .expect("timeline")
        .into_iter()
        .find_map(|e| match e {
            local_store::TimelineEntry::Touch(t) if t.id == edit.id => Some(t),
            _ => None,
        });
    assert_eq!(stored.expect("edited touch").notes, "edited notes");

    // Discarding undoes the change locally.
    f.store
        .discard_refused(id_of(discard.id.0))
        .expect("discard touch");
    assert_eq!(
        f.store
            .record_sync_state(Entity::JourneyTouch, discard.id.0)
            .expect("state"),
        RecordSyncState::Synced
    );
    assert!(
        f.store
            .timeline(p.id)
            .expect("timeline")
            .iter()
            .all(|e| !matches!(e, local_store::TimelineEntry::Touch(t) if t.id == discard.id))
    );
    f.store
        .discard_refused(id_of(p.id.0))
        .expect("discard update");
    assert_eq!(
        f.store
            .property(p.id)
            .expect("read")
            .expect("exists")
            .status,
        PropertyStatus::New,
        "the refused update is undone"
    );
    assert!(f.store.inbox().expect("inbox").is_empty());
}

#[test]
fn a_pulled_page_keeps_pending_local_writes_until_acknowledged() {
    let (mut f, s, p) = seeded();
    accept_all(&mut f.store);
    f.store
        .update_property(
            p.id,
            &PropertyUpdate {
                status: Some(PropertyStatus::Inspected),
                ..Default::default()
            },
        )
        .expect("local write");
    let server_hlc = Hlc::new(NOW.millis() as u64 + 60_000, 0, 7);
    let mut server_record = p.clone();
    server_record.status = PropertyStatus::Contracted;
    server_record.owner_name = Some("Server Name".into());
    let clocks: FieldClocks = [
        ("status".to_owned(), server_hlc),
        ("owner_name".to_owned(), server_hlc),
    ]
    .into_iter()
    .collect();
    let page = |record: &Property| {
        vec![PulledChange {
            entity: Entity::Property,
            entity_id: p.id.0,
            op: ChangeOp::Insert,
            record: serde_json::to_value(record).expect("json"),
            field_clocks: Some(clocks.clone()),
        }]
    };
    let mut extra = page(&server_record);
    let sc = score(&p, 0.3);
    extra.push(pulled(Entity::UpliftScore, p.id.0, &sc));
    let mut invalid_score = score(&p, 0.3);
    invalid_score.uplift = 7.0;
    extra.push(pulled(
        Entity::UpliftScore,
        uuid::Uuid::now_v7(),
        &invalid_score,
    ));
    let report = f
        .store
        .apply_pulled_page(&extra, "cursor-1", 41)
        .expect("pull");
    assert_eq!(report.applied, 2);
    assert_eq!(report.skipped.len(), 1);
    assert!(
        report.skipped[0].reason.contains("validation.out_of_range"),
        "{:?}",
        report.skipped
    );

    let merged = f.store.property(p.id).expect("read").expect("exists");
    assert_eq!(
        merged.status,
        PropertyStatus::Inspected,
        "the pending local write wins"
    );
    assert_eq!(
        merged.owner_name.as_deref(),
        Some("Server Name"),
        "the server's other field is taken"
    );
    assert_eq!(f.store.score(p.id).expect("score"), Some(sc));
    let state = f.store.sync_state().expect("sync state");
    assert_eq!(
        (state.cursor.as_deref(), state.watermark),
        (Some("cursor-1"), Some(41))
    );
    assert!(
        f.store.last_hlc() > server_hlc,
        "later local writes order after the server's"
    );

    // Once acknowledged, the server's newer write wins at the next pull.
    accept_all(&mut f.store);
    f.store
        .apply_pulled_page(&page(&server_record), "cursor-2", 42)
        .expect("pull again");
    assert_eq!(
        f.store
            .property(p.id)
            .expect("read")
            .expect("exists")
            .status,
        PropertyStatus::Contracted
    );

    // A write made after the pull carries a newer clock than the server's and so wins over a replay.
    f.store
        .update_property(
            p.id,
            &PropertyUpdate {
                status: Some(PropertyStatus::NotInterested),
                ..Default::default()
            },
        )
        .expect("write");
    accept_all(&mut f.store);
    f.store
        .apply_pulled_page(&page(&server_record), "cursor-3", 43)
        .expect("replay");
    assert_eq!(
        f.store
            .property(p.id)
            .expect("read")
            .expect("exists")
            .status,
        PropertyStatus::NotInterested
    );
    assert_eq!(s.id, merged.storm_id);
}

#[test]
fn pulled_records_of_every_kind_are_stored_and_tombstones_delete() {
    let (mut f, s, p) = seeded();
    let territory = Territory {
        id: TerritoryId::generate(),
        storm_id: s.id,
        name: "North".into(),
        crew_id: None,
    };
    let assignment = Assignment {
        id: AssignmentId::generate(),
        storm_id: s.id,
        property_id: p.id,
        territory_id: Some(territory.id),
        crew_id: None,
        user_id: None,
    };
    let experiment = Experiment {
        id: ExperimentId::generate(),
        storm_id: s.id,
        treatment_share: 0.8,
        seed: u64::MAX,
        started_at: NOW,
    };
    let arm = ArmAssignment {
        experiment_id: experiment.id,
        property_id: p.id,
        arm: Arm::Control,
        assigned_at: NOW,
    };
    let crew = Crew {
        id: CrewId::generate(),
        name: "Crew A".into(),
        chief_id: None,
    };
    let user = User {
        id: UserId::generate(),
        email: "kim@acme.example".into(),
        name: "Kim".into(),
        role: Role::FieldUser,
        crew_id: Some(crew.id),
    };
    let remote_touch = touch(&p, user.id, DeviceId::generate(), "from another laptop");
    let page = vec![
        pulled(Entity::Territory, territory.id.0, &territory),
        pulled(Entity::Assignment, assignment.id.0, &assignment),
        pulled(Entity::Experiment, experiment.id.0, &experiment),
        pulled(Entity::ArmAssignment, p.id.0, &arm),
        pulled(Entity::Crew, crew.id.0, &crew),
        pulled(Entity::User, user.id.0, &user),
        pulled(Entity::JourneyTouch, remote_touch.id.0, &remote_touch),
        pulled(Entity::JourneyTouch, remote_touch.id.0, &remote_touch),
    ];
    let report = f.store.apply_pulled_page(&page, "c1", 1).expect("pull");
    assert_eq!(report.applied, 8);
    assert!(report.skipped.is_empty());
    assert_eq!(
        f.store.record_counts().expect("counts").touches,
        1,
        "append-only replays are ignored"
    );
    let in_territory = f
        .store
        .ranked_properties(&local_store::PropertyQuery {
            territory_id: Some(territory.id),
            ..Default::default()
        })
        .expect("query");
    assert_eq!(in_territory.len(), 1);
    let tombstone = PulledChange {
        entity: Entity::Assignment,
        entity_id: assignment.id.0,
        op: ChangeOp::Delete,
        record: serde_json::Value::Null,
        field_clocks: None,
    };
    let report = f
        .store
        .apply_pulled_page(&[tombstone], "c2", 2)
        .expect("pull");
    assert_eq!(report.deleted, 1);
    let in_territory = f
        .store
        .ranked_properties(&local_store::PropertyQuery {
            territory_id: Some(territory.id),
            ..Default::default()
        })
        .expect("query");
    assert!(in_territory.is_empty());
    assert_eq!(pending(&f.store), 2, "pulled records are not pushed back");
}

/// Append-only inserts keep no copy of the record in the outbox (migration 0005): their payload is read
/// back from the record. It must be the same JSON text the copy was, and it must survive the record's
/// deletion (a pulled tombstone) while the change is still pending or refused.
#[test]
fn append_only_payloads_are_the_records_text_and_survive_their_deletion() {
    let (mut f, _, p) = seeded();
    let user = UserId::generate();
    let mut t = touch(&p, user, f.store.device_id(), "knocked; \"granule\" loss ✓");
    t.occurred_at = NOW.plus_millis(-1);
    let o = outcome(&p, true, 1_250_075);
    let mut d = decision(&p, Decision::Hold, user, NOW);
    d.uplift_score = Some(0.1 + 0.2);
    d.model_version = Some("m-7".into());
    d.reason = Some("override: owner asked".into());
    d.is_override = true;
    f.store.add_touch(&t).expect("touch");
    f.store.add_outcome(&o).expect("outcome");
    f.store.add_decision(&d).expect("decision");
    // What the outbox always handed the engine: the record's JSON as a `Value` (keys sorted), which the
    // engine serialises into the push body.
    let as_pushed = |record: serde_json::Value| serde_json::to_string(&record).expect("json");
    let expected = [
        as_pushed(serde_json::to_value(&t).expect("json")),
        as_pushed(serde_json::to_value(&o).expect("json")),
        as_pushed(serde_json::to_value(&d).expect("json")),
    ];
    let texts = |store: &TenantStore| -> Vec<String> {
        store.pending_changes(100).expect("pending")[2..]
            .iter()
            .map(|c| serde_json::to_string(&c.payload).expect("json"))
            .collect()
    };
    assert_eq!(
        texts(&f.store),
        expected,
        "the pushed bytes are the record's"
    );

    // The server deletes the touch (and the decision) while their inserts are still pending here: the
    // changes keep their payloads.
    let tombstone = |entity: Entity, id: uuid::Uuid| PulledChange {
        entity,
        entity_id: id,
        op: ChangeOp::Delete,
        record: serde_json::Value::Null,
        field_clocks: None,
    };
    let report = f
        .store
        .apply_pulled_page(
            &[
                tombstone(Entity::JourneyTouch, t.id.0),
                tombstone(Entity::PolicyDecision, d.id.0),
            ],
            "c1",
            1,
        )
        .expect("pull");
    assert_eq!(report.deleted, 2);
    assert_eq!(f.store.record_counts().expect("counts").touches, 0);
    assert_eq!(
        texts(&f.store),
        expected,
        "still complete without the records"
    );

    // A refused insert whose record is gone is still shown whole in the inbox.
    let decision_change = f.store.pending_changes(100).expect("pending")[4].id;
    f.store
        .apply_receipts(
            &[Receipt {
                change_id: decision_change,
                status: sync_protocol::ReceiptStatus::Refused,
                code: Some(ErrorCode::UnknownRecord),
                reason: Some("no such property".into()),
            }],
            None,
        )
        .expect("receipts");
    let inbox = f.store.inbox().expect("inbox");
    assert_eq!(inbox.len(), 1);
    assert_eq!(
        serde_json::to_string(&inbox[0].change.payload).expect("json"),
        expected[2]
    );
    assert_eq!(pending(&f.store), 4);
}

#[test]
fn the_refresh_token_lives_in_the_encrypted_file() {
    let mut f = tenant();
    assert!(f.store.refresh_token().expect("read").is_none());
    f.store.set_refresh_token(Some("rt-123")).expect("store");
    assert_eq!(
        f.store
            .refresh_token()
            .expect("read")
            .as_deref()
            .map(String::as_str),
        Some("rt-123")
    );
    f.store.set_refresh_token(None).expect("clear");
    assert!(f.store.refresh_token().expect("read").is_none());
}
