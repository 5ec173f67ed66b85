//! One encrypted (SQLCipher 4) tenant file per tenant: keyed open with typed errors, the key lifecycle
//! (per-user passphrase slots, passphrase change, rekey, recovery key), client migrations, the outbox
//! written in the same transaction as every record, the inbox of refused changes, pulled-page merge, and
//! the queries the field app needs.
//!
//! Start at [`DataDir`]: `create_tenant`, `open`, `open_with_recovery_key`, `recover`. Each returns a
//! [`TenantStore`], which owns exactly one connection to exactly one tenant file.

mod account;
mod connection;
mod data_dir;
mod error;
mod key_file;
mod multi_row;
mod outbox;
mod outbox_columns;
mod policy_inputs;
mod pull;
mod queries;
mod restamp;
mod rows;
pub mod schema;
mod secrets;
mod store;
mod sync_log;
mod touch_columns;
mod wall_clock;
mod wipe;
mod writes;

pub use account::ServerAccount;
pub use connection::{
    CACHE_SIZE_KIB, PAGE_SIZE, pages_given_up_alongside, pages_signed_alongside,
    pages_signed_behind, sign_pages_alongside, use_stock_page_crypto,
};
pub use data_dir::{CreatedTenant, DataDir, NewTenant, ServerLink, TenantEntry};
pub use error::{StoreError, StoreResult};
pub use outbox::{InboxItem, PendingCounts, ReceiptSummary, RecordSyncState};
pub use pull::{PullReport, PulledText, SkippedRecord, SyncState};
pub use queries::{
    CrewDaySummary, PropertyQuery, RankedProperty, RecordCounts, TimelineEntry, UserDay,
    utc_day_range,
};
pub use restamp::Restamped;
pub use rows::search_text;
pub use secrets::{MIN_PASSPHRASE_CHARS, MIN_PBKDF2_ITERATIONS, Passphrase, RecoveryKey};
pub use store::{RekeyOutcome, TenantInfo, TenantStore};
pub use sync_log::{SYNC_LOG_KEEP, SyncLogEntry};
pub use wall_clock::{ManualClock, SystemClock, WallClock};
pub use writes::PropertyUpdate;
