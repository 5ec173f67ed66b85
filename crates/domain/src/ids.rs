//! UUIDv7 id newtypes: one type per record kind so ids of different records cannot be mixed up.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($($(#[$meta:meta])* $name:ident),* $(,)?) => {$(
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh time-ordered (v7) id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }
            /// The inner UUID.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
            /// The nil id, used only as an explicit "none" in tests and fixtures.
            pub const fn nil() -> Self {
                Self(Uuid::nil())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    )*};
}

id_type!(
    /// A tenant (one contractor).
    TenantId,
    /// A user of a tenant.
    UserId,
    /// A crew (a team with a chief).
    CrewId,
    /// A registered laptop.
    DeviceId,
    /// A storm event.
    StormId,
    /// A property (a home).
    PropertyId,
    /// A territory of a storm.
    TerritoryId,
    /// Who works which property for a storm.
    AssignmentId,
    /// A storm's experiment.
    ExperimentId,
    /// A journey touch (append-only).
    TouchId,
    /// An outcome.
    OutcomeId,
    /// A policy decision.
    DecisionId,
    /// An uplift score row.
    ScoreId,
    /// A trained model.
    ModelId,
    /// A metered usage event.
    UsageEventId,
    /// A data-quality metric row.
    QualityMetricId,
    /// An audit entry.
    AuditId,
    /// One change in a device's outbox.
    ChangeId,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_v7_and_time_ordered() {
        let a = TouchId::generate();
        let b = TouchId::generate();
        assert_eq!(a.0.get_version_num(), 7);
        assert!(a < b, "v7 ids generated later sort later");
    }

    #[test]
    fn ids_round_trip_through_strings_and_json() {
        let id = PropertyId::generate();
        let parsed: PropertyId = id.to_string().parse().expect("parses");
        assert_eq!(parsed, id);
        let json = serde_json::to_string(&id).expect("serialises");
        assert_eq!(json, format!("\"{id}\""));
        assert!("not-a-uuid".parse::<PropertyId>().is_err());
    }
}
