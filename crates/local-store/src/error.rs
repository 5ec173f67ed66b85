//! The store's typed errors. Each has a stable code (`store.…`, `validation.…`) that callers match on,
//! and a plain message for a person. No variant ever carries key material.

use std::path::PathBuf;

use domain::ValidationError;

/// Everything that can go wrong in the local store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("wrong passphrase for the tenant file {path}")]
    WrongPassphrase { path: PathBuf },
    #[error("the recovery key does not open the tenant file {path}")]
    WrongRecoveryKey { path: PathBuf },
    #[error("the recovery key is malformed: expected 64 hexadecimal characters")]
    MalformedRecoveryKey,
    #[error("the passphrase is too short: use at least {min} characters")]
    WeakPassphrase { min: usize },
    #[error("no local user '{user}' is enrolled in {path}")]
    UnknownUser { user: String, path: PathBuf },
    #[error("the local user '{user}' is already enrolled in {path}")]
    UserExists { user: String, path: PathBuf },
    #[error("the local user name must be 1 to 64 characters without control characters")]
    InvalidUserName,
    #[error("the tenant file {path} is corrupt or truncated ({detail})")]
    Corrupt { path: PathBuf, detail: String },
    #[error("the key file {path} is unreadable or damaged ({detail})")]
    KeyFileDamaged { path: PathBuf, detail: String },
    #[error("the tenant file {path} is in use by another process; close it there first")]
    InUse { path: PathBuf },
    #[error("no tenant {tenant} in the data directory {dir}")]
    TenantNotFound { tenant: String, dir: PathBuf },
    #[error("a tenant file for {tenant} already exists in {dir}")]
    TenantExists { tenant: String, dir: PathBuf },
    #[error(
        "the tenant file {path} has schema version {found}; this program knows up to {supported}; update the program"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(transparent)]
    Validation(#[from] ValidationError),
    #[error("{entity} {id} already exists")]
    AlreadyExists { entity: &'static str, id: String },
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: String },
    #[error("change {change_id} is not in the inbox of refused changes")]
    NotInInbox { change_id: String },
    #[error("invalid {what}: {detail}")]
    InvalidInput { what: &'static str, detail: String },
    #[error("the local clock refused a reading: {0}")]
    Clock(#[from] domain::HlcError),
    #[error("a cryptographic operation failed: {0}")]
    Crypto(&'static str),
    #[error("file error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("local database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("stored data could not be read back: {0}")]
    Decode(String),
}

impl StoreError {
    /// The stable machine-readable code.
    pub fn code(&self) -> String {
        let code = match self {
            StoreError::WrongPassphrase { .. } => "store.wrong_passphrase",
            StoreError::WrongRecoveryKey { .. } => "store.wrong_recovery_key",
            StoreError::MalformedRecoveryKey => "store.malformed_recovery_key",
            StoreError::WeakPassphrase { .. } => "store.weak_passphrase",
            StoreError::UnknownUser { .. } => "store.unknown_user",
            StoreError::UserExists { .. } => "store.user_exists",
            StoreError::InvalidUserName => "store.invalid_user_name",
            StoreError::Corrupt { .. } => "store.corrupt",
            StoreError::KeyFileDamaged { .. } => "store.key_file_damaged",
            StoreError::InUse { .. } => "store.in_use",
            StoreError::TenantNotFound { .. } => "store.tenant_not_found",
            StoreError::TenantExists { .. } => "store.tenant_exists",
            StoreError::SchemaTooNew { .. } => "store.schema_too_new",
            StoreError::Validation(err) => return err.stable_code(),
            StoreError::AlreadyExists { .. } => "store.already_exists",
            StoreError::NotFound { .. } => "store.not_found",
            StoreError::NotInInbox { .. } => "store.not_in_inbox",
            StoreError::InvalidInput { .. } => "store.invalid_input",
            StoreError::Clock(_) => "store.clock",
            StoreError::Crypto(_) => "store.crypto",
            StoreError::Io { .. } => "store.io",
            // A full disk is the user's to fix (free space; nothing was written), not "try again".
            StoreError::Database(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) =>
            {
                "store.disk_full"
            }
            StoreError::Database(_) => "store.database",
            StoreError::Decode(_) => "store.decode",
        };
        code.to_owned()
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Shorthand for the store's results.
pub type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_has_its_own_code() {
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert_eq!(StoreError::Database(full).code(), "store.disk_full");
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert_eq!(StoreError::Database(busy).code(), "store.database");
    }
}
