//! The chaos suite: faults an operator and a field crew will meet, each against the real system —
//! PostgreSQL (a private cluster for restarts), the `stormops-server` process or the server in-process,
//! and laptops that are the real sync engine over real SQLCipher files behind fault proxies:
//! - [`pg_restart`]: PostgreSQL restarted while several laptops push;
//! - [`server_kill`]: the server process killed with SIGKILL mid-batch, several times, and restarted;
//! - [`network`]: drops mid-request, truncated responses, resets, latency and outages at the proxies;
//! - [`disk_full`]: the laptop's filesystem fills up (a small tmpfs; needs root to mount);
//! - [`clock_skew`]: laptops whose wall clocks are minutes or hours off.
//!
//! Every scenario checks nothing lost and nothing doubled (see [`fleet::verify_exactly_once`]) and
//! measures how long service took to come back, returning [`report::Finding`]s; a broken property
//! panics with its name. The integration tests run each at [`Scale::quick`] inside `cargo xtask test`
//! (asserting the properties, never timings); `cargo xtask chaos` runs [`Scale::full`] through the
//! `stormops-chaos` binary and writes `docs/chaos.md`.

pub mod clock_skew;
pub mod disk_full;
pub mod fleet;
pub mod network;
pub mod pg_restart;
pub mod report;
pub mod server_kill;

use std::time::Duration;

/// How hard a run pushes: laptops per tenant, touches per laptop per wave, fault rounds, how long a
/// network fault is held.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub laptops: usize,
    pub backlog: usize,
    pub rounds: usize,
    pub hold: Duration,
}

impl Scale {
    /// Inside `cargo xtask test`: every fault once or twice, small loads.
    pub fn quick() -> Self {
        Self {
            laptops: 3,
            backlog: 1_500,
            rounds: 2,
            hold: Duration::from_millis(1_500),
        }
    }

    /// `cargo xtask chaos`: more laptops, bigger waves, more rounds, longer faults.
    pub fn full() -> Self {
        Self {
            laptops: 6,
            backlog: 4_000,
            rounds: 5,
            hold: Duration::from_secs(5),
        }
    }
}
