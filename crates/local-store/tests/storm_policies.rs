//! The storm's policy mode as pulled from the server: a pulled row is stored and replaces the previous
//! one (the feed's order is the office's), the query answers it per storm, a tombstone removes it, an
//! invalid record is skipped without failing the page, and nothing of it ever enters the outbox.

mod support;

use domain::*;
use support::*;
use sync_protocol::{ChangeOp, Entity, PulledChange};

fn policy(storm: StormId, mode: PolicyMode, at: Timestamp) -> StormPolicy {
    StormPolicy {
        storm_id: storm,
        mode,
        updated_at: at,
        updated_by: Some(UserId::generate()),
    }
}

#[test]
fn pulled_policies_replace_each_other_per_storm_and_stay_out_of_the_outbox() {
    let mut f = support::tenant();
    let (one, two) = (storm(), storm());
    assert_eq!(f.store.storm_policy(one.id).expect("query"), None);

    let first = policy(one.id, PolicyMode::Aggressive, NOW.plus_millis(-2_000));
    let other = policy(two.id, PolicyMode::Conservative, NOW.plus_millis(-2_000));
    let report = f
        .store
        .apply_pulled_page(
            &[
                pulled(Entity::StormPolicy, one.id.0, &first),
                pulled(Entity::StormPolicy, two.id.0, &other),
            ],
            "c1",
            1,
        )
        .expect("page");
    assert_eq!((report.applied, report.skipped.len()), (2, 0));
    assert_eq!(f.store.storm_policy(one.id).expect("query"), Some(first));
    assert_eq!(
        f.store.storm_policy(two.id).expect("query"),
        Some(other.clone())
    );

    // The office changes storm one's mode (and a later row of the same page wins within a page too).
    let changed = policy(one.id, PolicyMode::Moderate, NOW.plus_millis(-1_000));
    let last = policy(one.id, PolicyMode::Conservative, NOW.plus_millis(-500));
    f.store
        .apply_pulled_page(
            &[
                pulled(Entity::StormPolicy, one.id.0, &changed),
                pulled(Entity::StormPolicy, one.id.0, &last),
            ],
            "c2",
            2,
        )
        .expect("page");
    assert_eq!(f.store.storm_policy(one.id).expect("query"), Some(last));
    assert_eq!(f.store.storm_policy(two.id).expect("query"), Some(other));

    // A record the laptop cannot validate is skipped; the page still applies and the old row stays.
    let mut bad = serde_json::to_value(policy(two.id, PolicyMode::Aggressive, NOW)).expect("json");
    bad["mode"] = serde_json::json!("reckless");
    let report = f
        .store
        .apply_pulled_page(
            &[PulledChange {
                entity: Entity::StormPolicy,
                entity_id: two.id.0,
                op: ChangeOp::Insert,
                record: bad,
                field_clocks: None,
            }],
            "c3",
            3,
        )
        .expect("page");
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(
        f.store.storm_policy(two.id).expect("query").map(|p| p.mode),
        Some(PolicyMode::Conservative)
    );

    // A tombstone (entity id = the storm id) removes it: the laptop falls back to the default.
    let report = f
        .store
        .apply_pulled_page(
            &[PulledChange {
                entity: Entity::StormPolicy,
                entity_id: two.id.0,
                op: ChangeOp::Delete,
                record: serde_json::Value::Null,
                field_clocks: None,
            }],
            "c4",
            4,
        )
        .expect("page");
    assert_eq!(report.deleted, 1);
    assert_eq!(f.store.storm_policy(two.id).expect("query"), None);

    // Pulled server-owned rows never reach the outbox.
    assert!(f.store.pending_changes(100).expect("outbox").is_empty());
    assert_eq!(
        f.store.sync_state().expect("state").cursor.as_deref(),
        Some("c4")
    );
}
