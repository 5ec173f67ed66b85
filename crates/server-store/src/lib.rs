//! PostgreSQL for the sync server: roles, migrations, tenant-scoped transactions under row-level
//! security, the control plane, and sync storage (idempotent batched push, commit-ordered pull feed).
//!
//! Call sequence: [`init_database`] once (as a superuser) → [`AppPool::connect`] +
//! [`check_app_role`] + [`migrations_current`] at startup → per request or sync batch
//! [`AppPool::begin_tenant`] → operations on [`TenantTx`] → [`TenantTx::commit`].

pub mod accounts;
pub mod bench;
pub mod control;
pub mod directory;
pub mod error;
pub mod export;
pub mod imports;
pub mod init;
pub mod learning;
pub mod lifecycle;
pub mod metering;
pub mod office;
mod operator_access;
pub mod plans;
pub mod pool;
pub mod quotas;
mod rows;
pub mod sync;
pub mod system_health;
pub mod tenant_tables;
pub mod tx;

pub use accounts::{NewRefreshToken, NewUser, RefreshTokenRecord, RotateOutcome, UserCredentials};
pub use bench::bench_raw_copy_insert;
pub use control::NewTenant;
pub use directory::{AuditQuery, DirectoryUser, UserChange};
pub use error::{StartupCheckError, StoreError};
pub use export::{ArchiveManifest, ArchiveTable, ImportedArchive, export_tenant, import_archive};
pub use init::{
    DEFAULT_ROLE_PREFIX, InitOutput, MIGRATOR, MigrationStatus, RoleNames, RolePasswords,
    init_database, init_database_with_passwords,
};
pub use learning::{
    ArmCounts, ExperimentCounts, TrainingRow, storm_model_prefix, training_lock_key,
};
pub use lifecycle::{
    DEFAULT_GRACE_MS, LifecycleError, LifecycleLogEntry, TenantLifecycle, parse_plan,
    provision_tenant,
};
pub use pool::{AppPool, ControlPool, PoolSettings, PoolStats, check_app_role, migrations_current};
pub use sync::{Cursor, PullPageWire, PullScope, PulledChangeWire, PushContext, PushOutcome};
pub use system_health::{SystemHealth, TenantHealth, system_health};
pub use tx::{ControlTx, TenantTx};
