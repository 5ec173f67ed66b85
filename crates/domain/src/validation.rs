//! Validation with typed errors: every record checks its own fields (required, bounded, in range, not in
//! the future) before any store or server accepts it. A failure names the field and a stable code.

use serde::{Deserialize, Serialize};

use crate::time::{Cents, Timestamp};

/// How far in the future a field timestamp may be (a laptop clock a little ahead is normal).
pub const MAX_FUTURE_SKEW_MS: i64 = 24 * 60 * 60 * 1000;
/// The earliest plausible timestamp (2000-01-01T00:00:00Z).
pub const EARLIEST_TIMESTAMP_MS: i64 = 946_684_800_000;
/// Longest short text (names, addresses, emails).
pub const MAX_SHORT_TEXT: usize = 256;
/// Longest free text (notes, reasons).
pub const MAX_LONG_TEXT: usize = 4_000;

/// A stable, machine-readable reason a record was refused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidationErrorCode {
    Required,
    TooLong,
    OutOfRange,
    Negative,
    InFuture,
    TooOld,
    InvalidFormat,
    Inconsistent,
}

impl ValidationErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::TooLong => "too_long",
            Self::OutOfRange => "out_of_range",
            Self::Negative => "negative",
            Self::InFuture => "in_future",
            Self::TooOld => "too_old",
            Self::InvalidFormat => "invalid_format",
            Self::Inconsistent => "inconsistent",
        }
    }
}

/// A record failed validation: which field, why (stable code), and a plain message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub code: ValidationErrorCode,
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(code: ValidationErrorCode, field: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            field: field.to_owned(),
            message: message.into(),
        }
    }
    /// The stable code as text, e.g. `validation.out_of_range`.
    pub fn stable_code(&self) -> String {
        format!("validation.{}", self.code.as_str())
    }
}

/// A record that can check itself. `now` is passed in so validation stays pure and testable.
pub trait Validate {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError>;
}

/// Field checks shared by every record.
pub(crate) mod check {
    use super::*;
    use ValidationErrorCode as C;

    pub fn required_text(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
        if value.trim().is_empty() {
            return Err(ValidationError::new(
                C::Required,
                field,
                format!("{field} is required"),
            ));
        }
        bounded_text(field, value, max)
    }

    pub fn bounded_text(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
        let len = value.chars().count();
        if len > max {
            return Err(ValidationError::new(
                C::TooLong,
                field,
                format!("{field} is {len} characters; at most {max} allowed"),
            ));
        }
        if value.chars().any(|c| c == '\0') {
            return Err(ValidationError::new(
                C::InvalidFormat,
                field,
                format!("{field} contains a NUL character"),
            ));
        }
        Ok(())
    }

    pub fn optional_text(
        field: &str,
        value: Option<&str>,
        max: usize,
    ) -> Result<(), ValidationError> {
        value.map_or(Ok(()), |v| bounded_text(field, v, max))
    }

    pub fn range(field: &str, value: f64, low: f64, high: f64) -> Result<(), ValidationError> {
        if !value.is_finite() || value < low || value > high {
            return Err(ValidationError::new(
                C::OutOfRange,
                field,
                format!("{field} must be between {low} and {high}, got {value}"),
            ));
        }
        Ok(())
    }

    pub fn optional_range(
        field: &str,
        value: Option<f64>,
        low: f64,
        high: f64,
    ) -> Result<(), ValidationError> {
        value.map_or(Ok(()), |v| range(field, v, low, high))
    }

    pub fn non_negative_money(field: &str, value: Cents) -> Result<(), ValidationError> {
        if value.0 < 0 {
            return Err(ValidationError::new(
                C::Negative,
                field,
                format!("{field} cannot be negative"),
            ));
        }
        Ok(())
    }

    pub fn timestamp(field: &str, value: Timestamp, now: Timestamp) -> Result<(), ValidationError> {
        if value.0 > now.0.saturating_add(MAX_FUTURE_SKEW_MS) {
            return Err(ValidationError::new(
                C::InFuture,
                field,
                format!("{field} is more than a day in the future"),
            ));
        }
        if value.0 < EARLIEST_TIMESTAMP_MS {
            return Err(ValidationError::new(
                C::TooOld,
                field,
                format!("{field} is before the year 2000"),
            ));
        }
        Ok(())
    }

    pub fn email(field: &str, value: &str) -> Result<(), ValidationError> {
        required_text(field, value, MAX_SHORT_TEXT)?;
        let mut parts = value.split('@');
        let ok = matches!((parts.next(), parts.next(), parts.next()), (Some(l), Some(d), None)
            if !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.') && !value.contains(char::is_whitespace));
        if !ok {
            return Err(ValidationError::new(
                C::InvalidFormat,
                field,
                format!("{field} is not an email address"),
            ));
        }
        Ok(())
    }

    pub fn slug(field: &str, value: &str) -> Result<(), ValidationError> {
        required_text(field, value, 63)?;
        let ok = value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !value.starts_with('-')
            && !value.ends_with('-');
        if !ok {
            return Err(ValidationError::new(
                C::InvalidFormat,
                field,
                format!("{field} may hold only lowercase letters, digits and inner hyphens"),
            ));
        }
        Ok(())
    }

    pub fn inconsistent(field: &str, message: impl Into<String>) -> ValidationError {
        ValidationError::new(C::Inconsistent, field, message)
    }
}

/// Makes a slug from a display name: lowercase ASCII letters and digits joined by single hyphens.
pub fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    slug.truncate(63);
    while slug.ends_with('-') {
        slug.pop();
    }
    slug
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugify_keeps_letters_and_digits() {
        assert_eq!(slugify("Acme Roofing & Sons, LLC"), "acme-roofing-sons-llc");
        assert_eq!(slugify("  --Hail 2026-- "), "hail-2026");
        assert_eq!(slugify("ÜBER"), "ber");
    }

    #[test]
    fn email_check_refuses_nonsense() {
        assert!(check::email("email", "crew@acme.example").is_ok());
        for bad in [
            "",
            "crew",
            "crew@",
            "@acme.com",
            "a@b@c.com",
            "crew@acme",
            "cr ew@acme.com",
        ] {
            assert!(check::email("email", bad).is_err(), "{bad}");
        }
    }
}
