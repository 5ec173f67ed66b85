//! Re-stamping the outbox after the wall clock ran ahead and was corrected, against a real SQLCipher
//! file: the changes stamped beyond the server's bound get fresh readings in the same order, after
//! everything seen (including a pulled value the laptop then edited), the records' field clocks and
//! the `before` images follow, changes within the bound keep theirs, and the file's clock restarts.

mod support;

use domain::*;
use local_store::{PropertyUpdate, RecoveryKey, TenantStore};
use support::*;
use sync_protocol::{ChangeOp, Entity, ErrorCode, FieldClocks, PulledChange, Receipt};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

fn at(offset_ms: i64, node: u64) -> Hlc {
    Hlc::new((NOW.millis() + offset_ms) as u64, 0, node)
}

/// A property as the server sends it, its status written at `status_clock`.
fn from_server(p: &Property, status: PropertyStatus, status_clock: Hlc) -> PulledChange {
    let mut record = p.clone();
    record.status = status;
    let mut clocks = FieldClocks::new();
    clocks.insert("status".into(), status_clock);
    PulledChange {
        entity: Entity::Property,
        entity_id: p.id.0,
        op: ChangeOp::Insert,
        record: serde_json::to_value(record).expect("json"),
        field_clocks: Some(clocks),
    }
}

fn set_status(store: &mut TenantStore, p: &Property, status: PropertyStatus) -> ChangeId {
    store
        .update_property(
            p.id,
            &PropertyUpdate {
                status: Some(status),
                ..Default::default()
            },
        )
        .expect("status write")
}

fn status(store: &TenantStore, p: &Property) -> PropertyStatus {
    store.property(p.id).expect("read").expect("stored").status
}

#[test]
fn changes_stamped_beyond_the_bound_get_fresh_ordered_readings_after_what_was_seen() {
    let mut f = tenant();
    let s = storm();
    f.store.add_storm(&s).expect("storm");
    let storm_stamp = f.store.last_hlc();
    let (p, q) = (property(s.id, 1, "1 Elm St"), property(s.id, 2, "2 Elm St"));
    // Another laptop, 8 minutes ahead (within the 10 minute bound), set q's status; this one pulls it.
    let seen = at(8 * MINUTE, 7);
    f.store
        .apply_pulled_page(
            &[
                from_server(&p, PropertyStatus::New, at(-MINUTE, 9)),
                from_server(&q, PropertyStatus::Inspected, seen),
            ],
            "c1",
            1,
        )
        .expect("pull");

    // The wall clock jumps two hours ahead; the crew keeps working.
    f.clock.set(NOW.plus_millis(2 * HOUR));
    let t = touch(&p, UserId::generate(), f.store.device_id(), "knocked");
    let touch_change = f.store.add_touch(&t).expect("touch");
    let p1 = set_status(&mut f.store, &p, PropertyStatus::Contracted);
    // Made after seeing the other laptop's edit: it must stay ordered after it.
    let q1 = set_status(&mut f.store, &q, PropertyStatus::NotInterested);
    let p2 = set_status(&mut f.store, &p, PropertyStatus::DoNotContact);
    let before = f.store.pending_changes(100).expect("pending");
    assert_eq!(before.len(), 5);
    assert!(
        before[1..]
            .iter()
            .all(|c| c.hlc.wall_ms >= at(2 * HOUR, 0).wall_ms)
    );

    // The clock is corrected (a minute ahead of the server, which stands at NOW with a 10 min bound).
    f.clock.set(NOW.plus_millis(MINUTE));
    let bound_ms = at(10 * MINUTE, 0).wall_ms;
    let report = f.store.restamp_outbox(bound_ms, None).expect("restamp");
    assert_eq!(report.changes, 4, "{report:?}");
    assert_eq!(report.records, 2, "p and q carry re-stamped field clocks");
    assert_eq!(
        report.floor,
        Some(seen),
        "q's pulled clock, kept only in its update's before image"
    );
    assert!(report.clock_reset);

    let after = f.store.pending_changes(100).expect("pending");
    let ids = |changes: &[sync_protocol::Change]| changes.iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(ids(&after), ids(&before), "same changes, same order");
    assert_eq!(
        after[0].hlc, storm_stamp,
        "a change within the bound keeps its reading"
    );
    assert!(
        after.windows(2).all(|w| w[0].hlc < w[1].hlc),
        "strictly increasing"
    );
    assert!(
        after[1].hlc > seen,
        "ordered after everything seen: {:?}",
        after[1].hlc
    );
    let node = Hlc::node_of(f.store.device_id());
    assert!(
        after[1..]
            .iter()
            .all(|c| c.hlc.wall_ms <= bound_ms && c.hlc.node == node)
    );
    assert_eq!(
        after.iter().map(|c| &c.payload).collect::<Vec<_>>(),
        before.iter().map(|c| &c.payload).collect::<Vec<_>>(),
        "payloads untouched"
    );
    assert_eq!(report.first, Some(after[1].hlc));
    assert_eq!(report.last, Some(after[4].hlc));
    assert_eq!(
        f.store.last_hlc(),
        after[4].hlc,
        "the file's clock restarts from the last"
    );
    assert_eq!(status(&f.store, &p), PropertyStatus::DoNotContact);
    assert_eq!(status(&f.store, &q), PropertyStatus::NotInterested);

    // The server takes the touch, p1 and q1, and refuses p2; the crew discards p2, which restores p1's
    // value with p1's NEW reading (from p2's before image).
    f.store
        .apply_receipts(
            &[
                Receipt::accepted(touch_change),
                Receipt::accepted(p1),
                Receipt::accepted(q1),
                Receipt::refused(p2, ErrorCode::ValidationFailed, "test"),
            ],
            None,
        )
        .expect("receipts");
    f.store.discard_refused(p2).expect("discard");
    assert_eq!(status(&f.store, &p), PropertyStatus::Contracted);
    // An edit stamped between the new readings and the old ones (30 min ahead of the server's time)
    // wins here only if the records' clocks moved to the new readings.
    let between = at(30 * MINUTE, 9);
    f.store
        .apply_pulled_page(
            &[
                from_server(&p, PropertyStatus::Inspected, between),
                from_server(&q, PropertyStatus::InProgress, between),
            ],
            "c2",
            2,
        )
        .expect("pull");
    assert_eq!(
        status(&f.store, &p),
        PropertyStatus::Inspected,
        "p's restored clock moved"
    );
    assert_eq!(
        status(&f.store, &q),
        PropertyStatus::InProgress,
        "q's field clock moved"
    );

    // The file's clock (reset, then following the pulled page) is persisted: it survives a reopen.
    let clock = f.store.last_hlc();
    let placeholder =
        TenantStore::open_plain_for_benchmark(&f.dir.path().join("other.db")).expect("placeholder");
    drop(std::mem::replace(&mut f.store, placeholder));
    let reopened = f
        .data_dir
        .open_with_recovery_key(
            f.tenant_id,
            &RecoveryKey::parse(&f.recovery_key).expect("key"),
        )
        .expect("reopen");
    assert_eq!(reopened.last_hlc(), clock);
}

#[test]
fn nothing_changes_when_every_reading_is_within_the_bound() {
    let mut f = tenant();
    let s = storm();
    f.store.add_storm(&s).expect("storm");
    let p = property(s.id, 1, "1 Elm St");
    f.store.add_property(&p).expect("property");
    set_status(&mut f.store, &p, PropertyStatus::Inspected);
    let before = f.store.pending_changes(10).expect("pending");
    let clock = f.store.last_hlc();
    let report = f
        .store
        .restamp_outbox(at(10 * MINUTE, 0).wall_ms, None)
        .expect("restamp");
    assert_eq!(report, local_store::Restamped::default());
    assert_eq!(f.store.pending_changes(10).expect("pending"), before);
    assert_eq!(f.store.last_hlc(), clock);
}

#[test]
fn a_clock_beyond_the_bound_with_nothing_queued_is_reset_to_what_was_seen() {
    let mut f = tenant();
    let s = storm();
    f.store.add_storm(&s).expect("storm");
    let acknowledged = f.store.pending_changes(10).expect("pending");
    f.store
        .apply_receipts(&[Receipt::accepted(acknowledged[0].id)], None)
        .expect("receipt");
    // Nothing queued, but the file's clock ran ahead with the wall clock (an answer observed while it
    // was wrong): the next write would be stamped two hours ahead.
    f.clock.set(NOW.plus_millis(2 * HOUR));
    f.store
        .apply_receipts(&[], Some(at(-MINUTE, 0)))
        .expect("observe");
    assert!(f.store.last_hlc().wall_ms >= at(2 * HOUR, 0).wall_ms);
    f.clock.set(NOW);
    // The server acknowledged a reading a minute ago (a push's `server_hlc`): the clock follows it.
    let server_hlc = at(-MINUTE, 0);
    let report = f
        .store
        .restamp_outbox(at(10 * MINUTE, 0).wall_ms, Some(server_hlc))
        .expect("restamp");
    assert_eq!(report.floor, Some(server_hlc));
    assert_eq!(report.changes, 0);
    assert!(report.clock_reset);
    assert!(f.store.last_hlc().wall_ms <= at(10 * MINUTE, 0).wall_ms);
    let p = property(s.id, 1, "1 Elm St");
    f.store.add_property(&p).expect("property");
    let next = f.store.pending_changes(10).expect("pending")[0].hlc;
    assert_eq!(
        next.wall_ms,
        NOW.millis() as u64,
        "the next write reads the corrected clock"
    );
}
