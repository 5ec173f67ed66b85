//! How the outbox stores a change's clock reading, entity, operation and state (migration 0012): compact
//! values instead of text, since every local write appends a row and every page written is encrypted.
//! The `state` column is 0 for a pending change and 1 for a refused one, spelled so in the statements.

use domain::Hlc;
use sync_protocol::{ChangeOp, Entity};

/// The `hlc` column's length: wall milliseconds (6 bytes), counter (3), node (8), big-endian.
pub(crate) const HLC_LEN: usize = 17;
const WALL_MAX: u64 = (1 << 48) - 1;
const COUNTER_MAX: u32 = (1 << 24) - 1;

/// A reading as the `hlc` column stores it. Big-endian, so byte order is the readings' order (wall
/// time, then counter, then node), as SQLite compares blobs.
pub(crate) fn hlc_bytes(hlc: Hlc) -> [u8; HLC_LEN] {
    let mut out = [0u8; HLC_LEN];
    out[..6].copy_from_slice(&hlc.wall_ms.min(WALL_MAX).to_be_bytes()[2..]);
    out[6..9].copy_from_slice(&hlc.counter.min(COUNTER_MAX).to_be_bytes()[1..]);
    out[9..].copy_from_slice(&hlc.node.to_be_bytes());
    out
}

/// The reading a stored `hlc` holds; `None` if it is not [`HLC_LEN`] bytes.
pub(crate) fn hlc_from_bytes(bytes: &[u8]) -> Option<Hlc> {
    let bytes: &[u8; HLC_LEN] = bytes.try_into().ok()?;
    let mut wall = [0u8; 8];
    wall[2..].copy_from_slice(&bytes[..6]);
    let mut counter = [0u8; 4];
    counter[1..].copy_from_slice(&bytes[6..9]);
    let mut node = [0u8; 8];
    node.copy_from_slice(&bytes[9..]);
    Some(Hlc::new(
        u64::from_be_bytes(wall),
        u32::from_be_bytes(counter),
        u64::from_be_bytes(node),
    ))
}

/// The `entity` column's value (the numbers migration 0012 gave the names; never renumbered).
pub(crate) const fn entity_code(entity: Entity) -> i64 {
    match entity {
        Entity::Storm => 1,
        Entity::Property => 2,
        Entity::Territory => 3,
        Entity::Assignment => 4,
        Entity::Experiment => 5,
        Entity::ArmAssignment => 6,
        Entity::JourneyTouch => 7,
        Entity::Outcome => 8,
        Entity::PolicyDecision => 9,
        Entity::UpliftScore => 10,
        Entity::Crew => 11,
        Entity::User => 12,
        Entity::StormPolicy => 13,
    }
}

/// The entity a stored `entity` value names.
pub(crate) fn entity_from_code(code: i64) -> Option<Entity> {
    Entity::ALL
        .iter()
        .copied()
        .find(|&entity| entity_code(entity) == code)
}

/// The `op` column's value.
pub(crate) const fn op_code(op: ChangeOp) -> i64 {
    match op {
        ChangeOp::Insert => 0,
        ChangeOp::Update => 1,
        ChangeOp::Delete => 2,
    }
}

/// The operation a stored `op` value names.
pub(crate) fn op_from_code(code: i64) -> Option<ChangeOp> {
    [ChangeOp::Insert, ChangeOp::Update, ChangeOp::Delete]
        .into_iter()
        .find(|&op| op_code(op) == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_readings_sort_as_the_readings_and_read_back() {
        let readings = [
            Hlc::new(0, 0, 0),
            Hlc::new(0, 0, u64::MAX),
            Hlc::new(0, 1, 0),
            Hlc::new(0, 99_999, 7),
            Hlc::new(1, 0, 0),
            Hlc::new(1_796_116_311_633, 5, 0x8612_c359_c7dd_ae00),
            Hlc::new(1_796_116_311_633, 256, 1),
            Hlc::new(9_999_999_999_999, 99_999, u64::MAX),
        ];
        for pair in readings.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(hlc_bytes(pair[0]) < hlc_bytes(pair[1]), "{pair:?}");
        }
        for hlc in readings {
            assert_eq!(hlc_from_bytes(&hlc_bytes(hlc)), Some(hlc));
        }
        assert_eq!(hlc_from_bytes(&[0u8; 16]), None);
    }

    #[test]
    fn every_entity_and_operation_has_its_own_code() {
        for &entity in Entity::ALL {
            assert_eq!(entity_from_code(entity_code(entity)), Some(entity));
        }
        let codes: Vec<i64> = Entity::ALL.iter().map(|&e| entity_code(e)).collect();
        assert_eq!(
            codes,
            (1..=13).collect::<Vec<_>>(),
            "as migration 0012 numbers them"
        );
        for op in [ChangeOp::Insert, ChangeOp::Update, ChangeOp::Delete] {
            assert_eq!(op_from_code(op_code(op)), Some(op));
        }
        assert_eq!(entity_from_code(0), None);
        assert_eq!(op_from_code(3), None);
    }
}
