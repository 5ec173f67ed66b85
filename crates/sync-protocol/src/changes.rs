//! A change is one entry of a laptop's outbox as it travels to the server: which record, what
//! operation, the fields, its hybrid logical clock reading and the device that made it.

use domain::{ChangeId, DeviceId, Hlc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Which records travel through sync.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    Storm,
    Property,
    Territory,
    Assignment,
    Experiment,
    ArmAssignment,
    JourneyTouch,
    Outcome,
    PolicyDecision,
    UpliftScore,
    Crew,
    User,
    /// A storm's policy mode as the office set it (protocol 2 and later; see [`Entity::since_protocol`]).
    StormPolicy,
}

/// How a record changes over time, which decides how the server applies it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EntityKind {
    /// Inserted once, never changed: insert-if-absent.
    AppendOnly,
    /// Changed over time: merged per field, last writer (by HLC) wins.
    Mutable,
    /// Written only by the server (scores, assignments, experiments): clients cannot push it.
    ServerOwned,
}

impl Entity {
    pub const ALL: &'static [Entity] = &[
        Entity::Storm,
        Entity::Property,
        Entity::Territory,
        Entity::Assignment,
        Entity::Experiment,
        Entity::ArmAssignment,
        Entity::JourneyTouch,
        Entity::Outcome,
        Entity::PolicyDecision,
        Entity::UpliftScore,
        Entity::Crew,
        Entity::User,
        Entity::StormPolicy,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Entity::Storm => "storm",
            Entity::Property => "property",
            Entity::Territory => "territory",
            Entity::Assignment => "assignment",
            Entity::Experiment => "experiment",
            Entity::ArmAssignment => "arm_assignment",
            Entity::JourneyTouch => "journey_touch",
            Entity::Outcome => "outcome",
            Entity::PolicyDecision => "policy_decision",
            Entity::UpliftScore => "uplift_score",
            Entity::Crew => "crew",
            Entity::User => "user",
            Entity::StormPolicy => "storm_policy",
        }
    }

    pub fn parse(text: &str) -> Option<Entity> {
        Entity::ALL.iter().copied().find(|e| e.as_str() == text)
    }

    pub const fn kind(self) -> EntityKind {
        match self {
            Entity::JourneyTouch | Entity::Outcome | Entity::PolicyDecision => {
                EntityKind::AppendOnly
            }
            Entity::Storm | Entity::Property | Entity::Territory | Entity::Crew | Entity::User => {
                EntityKind::Mutable
            }
            Entity::Assignment
            | Entity::Experiment
            | Entity::ArmAssignment
            | Entity::UpliftScore
            | Entity::StormPolicy => EntityKind::ServerOwned,
        }
    }

    /// The first protocol version whose clients know this entity. A client of an older protocol would
    /// fail to decode a pull page holding it, so the server leaves such rows out of that client's pages
    /// (its cursor still moves past them: the client cannot use them anyway).
    pub const fn since_protocol(self) -> u32 {
        match self {
            Entity::StormPolicy => 2,
            _ => 1,
        }
    }

    /// The fields a field laptop may change on an existing mutable record. Everything else of the
    /// record is office- or server-owned and a push that touches it is refused.
    pub const fn client_writable_fields(self) -> &'static [&'static str] {
        match self {
            Entity::Property => &["status", "owner_name", "owner_phone", "owner_email"],
            _ => &[],
        }
    }
}

/// What a change does to its record.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    /// A new record; the payload is the whole record.
    Insert,
    /// Some fields of an existing mutable record; the payload is an object of those fields.
    Update,
    /// A tombstone; the payload is null.
    Delete,
}

impl ChangeOp {
    pub const fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Insert => "insert",
            ChangeOp::Update => "update",
            ChangeOp::Delete => "delete",
        }
    }

    pub fn parse(text: &str) -> Option<ChangeOp> {
        match text {
            "insert" => Some(ChangeOp::Insert),
            "update" => Some(ChangeOp::Update),
            "delete" => Some(ChangeOp::Delete),
            _ => None,
        }
    }
}

/// One change from a laptop's outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// Unique per change (UUIDv7): the idempotency key of the push.
    pub id: ChangeId,
    pub hlc: Hlc,
    pub device_id: DeviceId,
    pub entity: Entity,
    pub entity_id: Uuid,
    pub op: ChangeOp,
    pub payload: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entity_round_trips_through_its_text_and_json() {
        for e in Entity::ALL {
            assert_eq!(Entity::parse(e.as_str()), Some(*e));
            let json = serde_json::to_string(e).expect("serialises");
            assert_eq!(json, format!("\"{}\"", e.as_str()));
        }
        assert_eq!(Entity::parse("storm_policies"), None);
    }

    #[test]
    fn the_storm_policy_is_server_owned_and_new_in_protocol_two() {
        assert_eq!(Entity::StormPolicy.kind(), EntityKind::ServerOwned);
        assert_eq!(Entity::StormPolicy.since_protocol(), 2);
        assert!(Entity::StormPolicy.client_writable_fields().is_empty());
        // Everything protocol 1 knew is still served to it; nothing is newer than this build.
        let newer: Vec<Entity> = Entity::ALL
            .iter()
            .copied()
            .filter(|e| e.since_protocol() > 1)
            .collect();
        assert_eq!(newer, vec![Entity::StormPolicy]);
        assert!(
            Entity::ALL
                .iter()
                .all(|e| e.since_protocol() <= crate::PROTOCOL_VERSION)
        );
        // Protocol 1 clients are still served.
        const { assert!(crate::MIN_PROTOCOL_VERSION <= 1) };
    }
}
