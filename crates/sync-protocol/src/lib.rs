//! The sync wire format shared by the laptop and the server: versioned handshake, changes, receipts,
//! pull pages, stable error codes, and the one merge rule both sides apply. This crate does no IO.

pub mod changes;
pub mod errors;
pub mod merge;
pub mod messages;

pub use changes::{Change, ChangeOp, Entity, EntityKind};
pub use errors::{ErrorBody, ErrorCode};
pub use merge::{FieldClocks, MergeOutcome, join_records, merge_fields};
pub use messages::*;

/// The protocol version this build speaks. Version 2 added the `storm_policy` entity to pull pages;
/// version 1 clients are still served, without it (`Entity::since_protocol`).
pub const PROTOCOL_VERSION: u32 = 2;
/// The oldest client protocol version the server still accepts; older clients get 426.
pub const MIN_PROTOCOL_VERSION: u32 = 1;
/// Most changes in one push batch.
pub const MAX_PUSH_CHANGES: usize = 5_000;
/// Most rows in one pull page.
pub const MAX_PULL_LIMIT: u32 = 10_000;
/// How far a client's clock may run ahead of the server's before its changes are refused.
pub const MAX_CLOCK_SKEW_MS: u64 = 10 * 60 * 1000;
/// The header carrying the client's protocol version on every request.
pub const PROTOCOL_HEADER: &str = "x-stormops-protocol";
