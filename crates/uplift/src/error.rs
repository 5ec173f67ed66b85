//! The crate's typed error: every refusal has a stable machine-readable code and a plain message.

use domain::{Arm, PropertyId};

/// Why an uplift computation refused its input. `code()` is stable; the message is for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpliftError {
    /// An arm has fewer rows than the learner needs.
    #[error("not enough data: need {need} per arm, have {have}")]
    NotEnoughData { need: usize, have: usize },
    /// Every outcome in an arm is the same, so nothing can be learned about conversion there.
    #[error("only one outcome class in the {arm} arm: every outcome is {}", if *converted { "converted" } else { "not converted" })]
    SingleOutcomeClass { arm: Arm, converted: bool },
    /// A feature matrix holds NaN or infinity (the feature pipeline imputes; raw matrices must be clean).
    #[error("feature value at row {row}, column {column} is not a finite number")]
    NonFiniteFeature { row: usize, column: usize },
    /// A score is NaN or infinite.
    #[error("score at row {row} is not a finite number")]
    NonFiniteScore { row: usize },
    /// Two inputs that must line up do not.
    #[error("length mismatch: {what} has {got} entries, expected {expected}")]
    LengthMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// No rows at all.
    #[error("no rows to {action}")]
    EmptyInput { action: &'static str },
    /// The data make a ratio meaningless (e.g. a perfect curve with no area above random).
    #[error("degenerate input: {reason}")]
    DegenerateInput { reason: String },
    /// The perfect Qini curve without negative effects needs a positive overall effect.
    #[error(
        "the overall treatment effect is {total_effect}, not positive: the perfect Qini curve without negative effects is undefined"
    )]
    NoPositiveEffect { total_effect: f64 },
    /// A parameter is outside its allowed range.
    #[error("invalid {name}: {reason}")]
    InvalidParameter { name: &'static str, reason: String },
    /// A feature column named in a spec is not in the table.
    #[error("unknown column '{0}'")]
    UnknownColumn(String),
    /// A property already has this arm recorded.
    #[error("property {property} is already assigned to the {arm} arm")]
    AlreadyAssigned { property: PropertyId, arm: Arm },
    /// A property already has the other arm recorded; arms never change.
    #[error("property {property} is in the {existing} arm and cannot move to the {requested} arm")]
    ArmChangeRefused {
        property: PropertyId,
        existing: Arm,
        requested: Arm,
    },
    /// The numerical solver could not finish.
    #[error("the solver failed: {0}")]
    SolverFailed(String),
}

impl UpliftError {
    /// The stable code, e.g. `not_enough_data`.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::NotEnoughData { .. } => "not_enough_data",
            Self::SingleOutcomeClass { .. } => "single_outcome_class",
            Self::NonFiniteFeature { .. } => "non_finite_feature",
            Self::NonFiniteScore { .. } => "non_finite_score",
            Self::LengthMismatch { .. } => "length_mismatch",
            Self::EmptyInput { .. } => "empty_input",
            Self::DegenerateInput { .. } => "degenerate_input",
            Self::NoPositiveEffect { .. } => "no_positive_effect",
            Self::InvalidParameter { .. } => "invalid_parameter",
            Self::UnknownColumn(_) => "unknown_column",
            Self::AlreadyAssigned { .. } => "already_assigned",
            Self::ArmChangeRefused { .. } => "arm_change_refused",
            Self::SolverFailed(_) => "solver_failed",
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = UpliftError> = std::result::Result<T, E>;

/// Checks that `got` equals `expected`, naming `what` otherwise.
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(UpliftError::LengthMismatch {
            what,
            expected,
            got,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_enough_data_has_the_promised_code_and_message() {
        let e = UpliftError::NotEnoughData { need: 50, have: 3 };
        assert_eq!(e.code(), "not_enough_data");
        assert_eq!(e.to_string(), "not enough data: need 50 per arm, have 3");
    }
}
