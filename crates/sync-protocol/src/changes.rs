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
            | Entity::UpliftScore => EntityKind::ServerOwned,
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
