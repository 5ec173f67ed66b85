//! The store's typed errors, each with a stable code the HTTP layer maps to a status (client mistakes
//! are 4xx, never 500).

use domain::ValidationError;
use sync_protocol::ErrorCode;

/// Why the application role was refused at startup (rls-rules.md T2, T15).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartupCheckError {
    #[error("the application role {role} is a superuser, which skips row-level security")]
    Superuser { role: String },
    #[error("the application role {role} has BYPASSRLS, which skips row-level security")]
    BypassRls { role: String },
    #[error(
        "the application role {role} owns (or inherits the owner of) {objects:?}; the table owner can switch row-level security off"
    )]
    OwnsObjects { role: String, objects: Vec<String> },
    #[error("the application role {role} may TRUNCATE {tables:?}")]
    CanTruncate { role: String, tables: Vec<String> },
    #[error("the application role {role} may create objects in schema public")]
    CanCreate { role: String },
    #[error(
        "Citus is installed but citus.propagate_set_commands is '{value}', not 'local': tenant context would not reach the workers"
    )]
    CitusPropagation { value: String },
}

/// Every error the store returns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A database or network failure: not the client's fault.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("startup check failed: {0}")]
    StartupCheck(#[from] StartupCheckError),
    /// A pull cursor that this server did not issue (or that was altered).
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
    #[error("{0} not found")]
    NotFound(String),
    /// A unique key is taken (slug, email, model version).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A referenced record does not exist in this tenant.
    #[error("foreign reference: {0}")]
    ForeignReference(String),
    #[error("validation failed: {0}")]
    Validation(#[from] ValidationError),
    /// Row-level security refused a write (no tenant context, or a row stamped with another tenant).
    #[error("refused by row-level security: {0}")]
    Forbidden(String),
    /// A caller passed something unusable (a bad role prefix, an oversized batch).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A record stored in the database no longer reads back as its domain type: a bug or a bad migration.
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// A hard limit of the tenant's plan refuses this (more users, devices, events or storage).
    #[error("{0}")]
    QuotaExceeded(crate::quotas::QuotaRefusal),
}

impl StoreError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Database(_) => "database",
            StoreError::Migration(_) => "migration",
            StoreError::StartupCheck(_) => "startup_check",
            StoreError::InvalidCursor(_) => "invalid_cursor",
            StoreError::NotFound(_) => "not_found",
            StoreError::Conflict(_) => "conflict",
            StoreError::ForeignReference(_) => "foreign_reference",
            StoreError::Validation(_) => "validation_failed",
            StoreError::Forbidden(_) => "forbidden",
            StoreError::InvalidInput(_) => "invalid_input",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::QuotaExceeded(_) => "quota_exceeded",
        }
    }

    /// The wire error code the HTTP layer answers with.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            StoreError::Database(e) if is_unavailable(e) => ErrorCode::Unavailable,
            StoreError::Database(_)
            | StoreError::Migration(_)
            | StoreError::StartupCheck(_)
            | StoreError::Corrupt(_) => ErrorCode::Internal,
            StoreError::InvalidCursor(_) | StoreError::InvalidInput(_) => ErrorCode::InvalidRequest,
            StoreError::NotFound(_) => ErrorCode::NotFound,
            StoreError::Conflict(_) => ErrorCode::Conflict,
            StoreError::ForeignReference(_) => ErrorCode::ForeignReference,
            StoreError::Validation(_) => ErrorCode::ValidationFailed,
            StoreError::Forbidden(_) => ErrorCode::Forbidden,
            StoreError::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
        }
    }
}

fn is_unavailable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
    )
}

impl From<sqlx::Error> for StoreError {
    /// Maps integrity errors to typed errors; the message keeps the constraint name but never row data
    /// (PostgreSQL's DETAIL may hold another tenant's values, so it is dropped).
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &error {
            let constraint = db.constraint().unwrap_or("").to_owned();
            match db.code().as_deref() {
                Some("23505") => {
                    return StoreError::Conflict(format!("unique constraint {constraint}"));
                }
                Some("23503") => {
                    return StoreError::ForeignReference(format!("foreign key {constraint}"));
                }
                // 42501: insufficient privilege, including "new row violates row-level security policy".
                Some("42501") => return StoreError::Forbidden(db.message().to_owned()),
                _ => {}
            }
        }
        StoreError::Database(error)
    }
}
