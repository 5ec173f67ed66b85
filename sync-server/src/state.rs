//! What every handler shares: the two database pools, the token key, metrics, and server settings.

use std::sync::Arc;

use server_store::{AppPool, ControlPool};

use crate::auth::token::TokenKey;
use crate::metrics::Metrics;

/// Shared server state (cheap to clone).
#[derive(Clone, Debug)]
pub struct AppState {
    /// The application role's pool: every tenant query, under row-level security.
    pub app: AppPool,
    /// The control-plane role's pool: slug lookup at login, operator tasks.
    pub control: ControlPool,
    pub tokens: Arc<TokenKey>,
    pub metrics: Arc<Metrics>,
    pub settings: Arc<ServerSettings>,
    /// This instance's side of the per-tenant rate limiter and request counter.
    pub limiter: Arc<crate::rate_limit::RateLimiter>,
}

/// Tunables with production defaults; tests shorten them.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub access_ttl_ms: i64,
    pub refresh_ttl_ms: i64,
    pub max_clock_skew_ms: u64,
    /// Seconds between background training rounds; 0 disables the trainer.
    pub train_interval_secs: u64,
    /// New outcomes a storm needs before the background trainer retrains it.
    pub train_min_new_outcomes: u64,
    /// Per-tenant rate limits by plan. `stormops-server serve` turns them on (STORMOPS_RATE_LIMITS,
    /// default on); in-process servers built by tests and benchmarks opt in, so suites that hammer one
    /// tenant on purpose are not throttled. Quotas (users, devices, events, storage) always apply.
    pub rate_limits: bool,
    /// Seconds between metering rounds (request flush, storage sample, hourly rollup); 0 disables them.
    pub usage_interval_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            access_ttl_ms: crate::auth::token::ACCESS_TTL_MS,
            refresh_ttl_ms: crate::auth::token::REFRESH_TTL_MS,
            max_clock_skew_ms: sync_protocol::MAX_CLOCK_SKEW_MS,
            train_interval_secs: crate::learning::DEFAULT_TRAIN_INTERVAL_SECS,
            train_min_new_outcomes: crate::learning::DEFAULT_TRAIN_MIN_NEW_OUTCOMES,
            rate_limits: false,
            usage_interval_secs: crate::usage_task::DEFAULT_USAGE_INTERVAL_SECS,
        }
    }
}

/// The server's wall clock in Unix milliseconds (read at the edge, passed into logic).
pub fn now_ms() -> i64 {
    domain::Timestamp::now().millis()
}
