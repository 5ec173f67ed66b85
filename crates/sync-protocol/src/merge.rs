//! The merge rule for mutable records, applied identically by the server and every laptop: each field
//! carries the HLC of its last write; a write wins a field when its clock is greater. Clocks are totally
//! ordered (wall, counter, node), so the result does not depend on the order in which writes arrive:
//! every replica that has seen the same writes holds the same record.

use domain::Hlc;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The clock of the last write of each field of one record.
pub type FieldClocks = BTreeMap<String, Hlc>;

/// The result of a merge: the record, its field clocks, and which fields changed.
#[derive(Clone, Debug, PartialEq)]
pub struct MergeOutcome {
    pub record: Map<String, Value>,
    pub clocks: FieldClocks,
    pub changed: Vec<String>,
}

/// Whether a write (`incoming`, stamped `incoming_hlc`) wins a field over the current value.
fn wins(
    incoming: &Value,
    incoming_hlc: Hlc,
    current: Option<&Value>,
    current_hlc: Option<Hlc>,
) -> bool {
    match current_hlc {
        None => true,
        Some(c) if incoming_hlc > c => true,
        Some(c) if incoming_hlc < c => false,
        // Equal clocks only arise from a replay of the same write, or from a broken client reusing a
        // reading: compare the values' canonical text so every replica still picks the same one.
        Some(_) => match current {
            None => true,
            Some(cur) => {
                let (incoming_text, current_text) = (incoming.to_string(), cur.to_string());
                incoming_text > current_text
            }
        },
    }
}

/// Applies the fields of one update, stamped `hlc`, to a record.
pub fn merge_fields(
    record: &Map<String, Value>,
    clocks: &FieldClocks,
    update: &Map<String, Value>,
    hlc: Hlc,
) -> MergeOutcome {
    let mut merged = record.clone();
    let mut merged_clocks = clocks.clone();
    let mut changed = Vec::new();
    for (field, value) in update {
        if wins(value, hlc, record.get(field), clocks.get(field).copied()) {
            if record.get(field) != Some(value) {
                changed.push(field.clone());
            }
            merged.insert(field.clone(), value.clone());
            merged_clocks.insert(field.clone(), hlc);
        }
    }
    MergeOutcome {
        record: merged,
        clocks: merged_clocks,
        changed,
    }
}

/// Joins two replicas of one record field by field (state-based merge). Commutative, associative and
/// idempotent, so replicas converge whatever the order of exchange.
pub fn join_records(
    left: &Map<String, Value>,
    left_clocks: &FieldClocks,
    right: &Map<String, Value>,
    right_clocks: &FieldClocks,
) -> (Map<String, Value>, FieldClocks) {
    let mut record = left.clone();
    let mut clocks = left_clocks.clone();
    for (field, value) in right {
        let Some(right_hlc) = right_clocks.get(field).copied() else {
            // A field without a clock is part of the record's creation: it never beats a clocked write.
            record.entry(field.clone()).or_insert_with(|| value.clone());
            continue;
        };
        if wins(
            value,
            right_hlc,
            left.get(field),
            left_clocks.get(field).copied(),
        ) {
            record.insert(field.clone(), value.clone());
            clocks.insert(field.clone(), right_hlc);
        }
    }
    (record, clocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn later_write_wins_each_field_independently() {
        let record = obj(json!({"status": "new", "owner_name": "Pat"}));
        let a = merge_fields(
            &record,
            &FieldClocks::new(),
            &obj(json!({"status": "inspected"})),
            Hlc::new(10, 0, 1),
        );
        let b = merge_fields(
            &a.record,
            &a.clocks,
            &obj(json!({"status": "contracted", "owner_name": "Sam"})),
            Hlc::new(5, 0, 2),
        );
        // The older write loses `status` (already written at 10) but wins `owner_name` (never written).
        assert_eq!(
            b.record,
            obj(json!({"status": "inspected", "owner_name": "Sam"}))
        );
        assert_eq!(b.changed, vec!["owner_name".to_owned()]);
    }

    #[test]
    fn replaying_a_write_changes_nothing() {
        let update = obj(json!({"status": "inspected"}));
        let once = merge_fields(
            &Map::new(),
            &FieldClocks::new(),
            &update,
            Hlc::new(10, 0, 1),
        );
        let twice = merge_fields(&once.record, &once.clocks, &update, Hlc::new(10, 0, 1));
        assert_eq!(twice.record, once.record);
        assert!(twice.changed.is_empty());
    }

    #[test]
    fn equal_clocks_tie_break_on_value_deterministically() {
        let hlc = Hlc::new(10, 0, 1);
        let a = merge_fields(
            &Map::new(),
            &FieldClocks::new(),
            &obj(json!({"s": "a"})),
            hlc,
        );
        let ab = merge_fields(&a.record, &a.clocks, &obj(json!({"s": "b"})), hlc);
        let b = merge_fields(
            &Map::new(),
            &FieldClocks::new(),
            &obj(json!({"s": "b"})),
            hlc,
        );
        let ba = merge_fields(&b.record, &b.clocks, &obj(json!({"s": "a"})), hlc);
        assert_eq!(ab.record, ba.record);
    }

    fn arb_write() -> impl Strategy<Value = (Map<String, Value>, Hlc)> {
        (
            proptest::collection::btree_map(
                prop_oneof![Just("status"), Just("owner_name"), Just("owner_phone")],
                0i64..5,
                1..3,
            ),
            0u64..20,
            0u32..3,
            0u64..3,
        )
            .prop_map(|(fields, wall, counter, node)| {
                let map = fields
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), json!(v)))
                    .collect();
                (map, Hlc::new(wall, counter, node))
            })
    }

    proptest! {
        #[test]
        fn any_order_of_writes_converges(writes in proptest::collection::vec(arb_write(), 1..12), seed in any::<u64>()) {
            let apply = |order: &[(Map<String, Value>, Hlc)]| {
                order.iter().fold((Map::new(), FieldClocks::new()), |(r, c), (u, h)| {
                    let out = merge_fields(&r, &c, u, *h);
                    (out.record, out.clocks)
                })
            };
            let forward = apply(&writes);
            let mut shuffled = writes.clone();
            // A deterministic shuffle from the seed.
            let mut state = seed;
            for i in (1..shuffled.len()).rev() {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (state >> 33) as usize % (i + 1));
            }
            prop_assert_eq!(&apply(&shuffled), &forward);
            // Splitting the writes across two replicas and joining them gives the same record.
            let (left, right) = writes.split_at(writes.len() / 2);
            let (l, lc) = apply(left);
            let (r, rc) = apply(right);
            let joined = join_records(&l, &lc, &r, &rc);
            let joined_other_way = join_records(&r, &rc, &l, &lc);
            prop_assert_eq!(&joined, &forward);
            prop_assert_eq!(&joined_other_way, &forward);
        }
    }
}
