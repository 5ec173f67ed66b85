//! Legacy import: reads a contractor's single-tenant StormOps SQLite database (storms, properties,
//! journeys, uplift scores, experiments) into validated `domain` records for one tenant, with old integer
//! ids mapped to UUIDs deterministically ([`ids::legacy_uuid`]). Every row that fails validation is
//! reported (table, old id, reason) instead of imported; rows that depend on a rejected row are rejected
//! with it. This crate does no server IO: the caller writes [`LegacyData`] through server-store in one
//! tenant transaction. [`generate`] writes sample legacy databases for tests and benchmarks.
//!
//! The accepted schema is [`schema::LEGACY_SCHEMA`], documented in `docs/legacy-import.md`.

pub mod generate;
pub mod ids;
mod reader;
pub mod schema;

use domain::{DeviceId, Experiment, JourneyTouch, Property, Storm, TenantId, UpliftScore, UserId};

pub use ids::legacy_uuid;
pub use reader::read_legacy;

/// Who the imported history is attributed to: legacy journeys name no user or device, so they are
/// recorded as made by the importing admin on a per-tenant "legacy import" device id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportIdentity {
    pub tenant: TenantId,
    pub user: UserId,
    pub device: DeviceId,
}

impl ImportIdentity {
    /// The importing user, with the tenant's deterministic legacy-import device id.
    pub fn for_user(tenant: TenantId, user: UserId) -> Self {
        Self {
            tenant,
            user,
            device: DeviceId(legacy_uuid(tenant, "device", 0)),
        }
    }
}

/// A legacy row that is not imported, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RejectedRow {
    pub table: String,
    pub old_id: i64,
    pub reason: String,
}

/// Everything read from a legacy database: the valid records, and the rejected rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LegacyData {
    pub storms: Vec<Storm>,
    pub properties: Vec<Property>,
    pub touches: Vec<JourneyTouch>,
    pub scores: Vec<UpliftScore>,
    pub experiments: Vec<Experiment>,
    pub rejected: Vec<RejectedRow>,
}

impl LegacyData {
    /// Valid records read.
    pub fn valid_rows(&self) -> usize {
        self.storms.len()
            + self.properties.len()
            + self.touches.len()
            + self.scores.len()
            + self.experiments.len()
    }
}

/// Why a legacy database could not be read at all (bad rows are [`RejectedRow`]s, not errors).
#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    #[error("cannot read {path} as a StormOps SQLite database: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("the legacy database lacks the tables {0:?}")]
    MissingTables(Vec<String>),
    #[error("the legacy table {table} lacks the columns {columns:?}")]
    MissingColumns { table: String, columns: Vec<String> },
    #[error("could not write the sample database: {0}")]
    Generate(String),
}

impl LegacyError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            LegacyError::Unreadable { .. } => "legacy_unreadable",
            LegacyError::MissingTables(_) => "legacy_missing_tables",
            LegacyError::MissingColumns { .. } => "legacy_missing_columns",
            LegacyError::Generate(_) => "legacy_generate",
        }
    }
}
