//! The product's closed vocabularies (roles, channels, results, decisions, modes, statuses), each with
//! a stable snake_case text form used on the wire, in both databases and in the CLI.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The text did not name a variant of the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} '{value}': expected one of {expected}")]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub value: String,
    pub expected: String,
}

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident : $kind:literal { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, PartialOrd, Ord)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),*
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The stable text form.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)*
                    other => Err(UnknownVariant {
                        kind: $kind,
                        value: other.chars().take(64).collect(),
                        expected: [$($text),*].join(", "),
                    }),
                }
            }
        }
    };
}

vocabulary!(
    /// What a user may do.
    Role: "role" { Admin => "admin", CrewChief => "crew_chief", FieldUser => "field_user", Viewer => "viewer" }
);

impl Role {
    /// Roles that may write field data (journeys, outcomes, decisions).
    pub const fn can_write_field_data(self) -> bool {
        matches!(self, Role::Admin | Role::CrewChief | Role::FieldUser)
    }
    /// Roles that may override a policy decision.
    pub const fn can_override_policy(self) -> bool {
        matches!(self, Role::Admin | Role::CrewChief)
    }
}

vocabulary!(
    /// A tenant's plan.
    PlanTier: "plan" { Trial => "trial", Standard => "standard", Enterprise => "enterprise" }
);

vocabulary!(
    /// A tenant's lifecycle status.
    TenantStatus: "tenant status" { Active => "active", Suspended => "suspended", Deleted => "deleted" }
);

vocabulary!(
    /// A device's status.
    DeviceStatus: "device status" { Active => "active", Revoked => "revoked" }
);

vocabulary!(
    /// A storm's status.
    StormStatus: "storm status" { Planned => "planned", Active => "active", Closed => "closed" }
);

vocabulary!(
    /// Where a property stands in the canvass.
    PropertyStatus: "property status" {
        New => "new", InProgress => "in_progress", Inspected => "inspected",
        Contracted => "contracted", NotInterested => "not_interested", DoNotContact => "do_not_contact"
    }
);

vocabulary!(
    /// A roof's material.
    RoofMaterial: "roof material" {
        AsphaltShingle => "asphalt_shingle", Metal => "metal", Tile => "tile",
        WoodShake => "wood_shake", Slate => "slate", Flat => "flat", Other => "other"
    }
);

vocabulary!(
    /// How a touch reached the homeowner.
    Channel: "channel" {
        DoorKnock => "door_knock", Call => "call", Text => "text", Mailer => "mailer",
        Inspection => "inspection", Estimate => "estimate", ContractSigned => "contract_signed"
    }
);

vocabulary!(
    /// What came of a touch.
    TouchResult: "touch result" {
        NoAnswer => "no_answer", Left => "left_info", Talked => "talked", Interested => "interested",
        NotInterested => "not_interested", Scheduled => "scheduled", Completed => "completed",
        Signed => "signed", Declined => "declined"
    }
);

vocabulary!(
    /// Treat (visit, call, offer an inspection) or hold.
    Decision: "decision" { Treat => "treat", Hold => "hold" }
);

vocabulary!(
    /// How far down the uplift ranking the policy treats.
    PolicyMode: "policy mode" { Conservative => "conservative", Moderate => "moderate", Aggressive => "aggressive" }
);

vocabulary!(
    /// An experiment arm.
    Arm: "arm" { Treatment => "treatment", Control => "control" }
);

vocabulary!(
    /// A metered unit.
    UsageKind: "usage kind" {
        EventsSynced => "events_synced", ModelRuns => "model_runs", StorageBytes => "storage_bytes", Requests => "requests"
    }
);

vocabulary!(
    /// A data-quality check's verdict.
    QualityStatus: "quality status" { Ok => "ok", Warn => "warn", Alert => "alert" }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_round_trips_through_text_and_json() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>(), Ok(*c));
            let json = serde_json::to_string(c).expect("serialises");
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(*r));
        }
    }

    #[test]
    fn unknown_text_names_the_choices() {
        let err = "owner".parse::<Role>().expect_err("not a role");
        assert_eq!(err.kind, "role");
        assert!(
            err.to_string()
                .contains("admin, crew_chief, field_user, viewer")
        );
    }

    #[test]
    fn viewers_cannot_write() {
        assert!(!Role::Viewer.can_write_field_data());
        assert!(Role::FieldUser.can_write_field_data());
        assert!(!Role::FieldUser.can_override_policy());
    }
}
