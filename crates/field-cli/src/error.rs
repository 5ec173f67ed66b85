//! The CLI's error: a stable code (`store.*`, `validation.*`, `cli.*`, `import.*`), a plain message,
//! optional structured details (for `--json`), and the exit status.

use local_store::StoreError;
use serde_json::Value;

/// What went wrong, ready to print.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
}

impl CliError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// An argument that did not parse.
    pub fn invalid_argument(name: &str, detail: impl std::fmt::Display) -> Self {
        Self::new("cli.invalid_argument", format!("--{name}: {detail}"))
    }
}

impl From<StoreError> for CliError {
    fn from(err: StoreError) -> Self {
        let details = match &err {
            StoreError::Validation(v) => {
                Some(serde_json::json!({ "field": v.field, "code": v.stable_code() }))
            }
            _ => None,
        };
        Self {
            code: err.code(),
            message: err.to_string(),
            details,
        }
    }
}
