//! Sync storage: the idempotent, all-or-nothing batched push ([`TenantTx::apply_push`]), the
//! commit-ordered pull feed ([`TenantTx::pull`]) and the server-side writers that feed it.

pub(crate) mod changelog;
mod mutable;
mod pull;
mod push;
mod writers;

pub use pull::{Cursor, PullPageWire, PullScope, PulledChangeWire};
pub use push::{PushContext, PushOutcome};
