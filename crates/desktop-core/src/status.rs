//! What the app and the CLI show about sync: online/offline/syncing/error, the phase, progress with
//! done/total changes and bytes in each direction, time left, pending count and age, last success,
//! and the inbox count. One value, published on a watch channel, read by every view.

use serde::Serialize;
use ts_rs::TS;

/// The engine's connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default, TS)]
#[serde(rename_all = "snake_case")]
pub enum Connectivity {
    /// Not yet tried.
    #[default]
    Unknown,
    Online,
    Offline,
    Syncing,
    /// The last sync failed with a non-retryable error (see `last_error`).
    Error,
    /// Offline work is kept; the user must sign in again to push it.
    NeedsSignIn,
    /// The server revoked this device; the tenant file was wiped.
    Revoked,
}

/// What a running sync is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default, TS)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Idle,
    Authenticating,
    Pushing,
    Pulling,
}

/// Progress of one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default, TS)]
pub struct Progress {
    pub done: u64,
    /// Known for pushes (the outbox size at start); for pulls the server's page flag says more follow.
    pub total: Option<u64>,
    pub bytes: u64,
}

/// The whole visible state.
#[derive(Debug, Clone, PartialEq, Serialize, Default, TS)]
pub struct SyncStatus {
    pub connectivity: Connectivity,
    pub phase: Phase,
    pub push: Progress,
    pub pull: Progress,
    /// Estimated milliseconds left in the current sync, from the push rate so far.
    pub eta_ms: Option<u64>,
    pub pending: i64,
    pub oldest_pending_age_ms: Option<i64>,
    pub refused: i64,
    pub last_success_at_ms: Option<i64>,
    pub last_error: Option<StatusError>,
    pub consecutive_failures: u32,
}

/// The last error, as a stable code and plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct StatusError {
    pub code: String,
    pub message: String,
    pub at_ms: i64,
}

impl SyncStatus {
    /// Estimated time left from progress so far, pushing at the measured rate.
    pub fn estimate_eta(done: u64, total: u64, elapsed_ms: u64) -> Option<u64> {
        if done == 0 || total <= done || elapsed_ms == 0 {
            return if total > 0 && total <= done {
                Some(0)
            } else {
                None
            };
        }
        let rate = done as f64 / elapsed_ms as f64;
        Some(((total - done) as f64 / rate).round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_follows_the_measured_rate() {
        assert_eq!(SyncStatus::estimate_eta(0, 100, 10), None);
        assert_eq!(SyncStatus::estimate_eta(50, 100, 1_000), Some(1_000));
        assert_eq!(SyncStatus::estimate_eta(100, 100, 1_000), Some(0));
    }
}
