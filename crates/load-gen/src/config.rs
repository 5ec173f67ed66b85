//! How big a load run is: regular tenants and their laptops, the cadence of each laptop, and the three
//! special tenants that carry the statelessness checks (a small plan's monthly quota, a small plan's
//! request rate, a storm whose model both instances race to train).

use std::time::Duration;

/// A whole run's size and cadence.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Regular tenants (enterprise plan), each with its own laptops, crews, storm and properties.
    pub tenants: usize,
    pub laptops_per_tenant: usize,
    pub crews_per_tenant: usize,
    pub properties_per_tenant: usize,
    /// Touches pushed per sync.
    pub batch: usize,
    /// A laptop's pause between syncs (the engine syncs a debounce after each local write).
    pub think: Duration,
    /// Length of the timed load phase.
    pub duration: Duration,
    /// How often each tenant's office makes a request (usage, who-am-I, experiment summary).
    pub office_every: Duration,
    pub quota: QuotaConfig,
    pub rate: RateConfig,
    pub training: TrainingConfig,
}

/// The tenant on the trial plan whose monthly synced-events hard limit is reached during the load.
#[derive(Debug, Clone)]
pub struct QuotaConfig {
    pub laptops: usize,
    pub properties: usize,
    /// The trial plan's synced events per month (soft = hard for a trial).
    pub events_per_month: i64,
    /// Touches per push (the refusal total depends on it: the batch that crosses the limit is accepted).
    pub batch: usize,
}

/// The tenant on the standard plan whose requests per minute are exhausted in one burst.
#[derive(Debug, Clone)]
pub struct RateConfig {
    pub laptops: usize,
    pub requests_per_minute: i64,
}

/// The tenant whose storm has an experiment: its laptops log outcomes, both instances' background
/// trainers race to train it.
#[derive(Debug, Clone)]
pub struct TrainingConfig {
    pub laptops: usize,
    /// Properties of its synthetic storm; each outcome is on a property without one yet.
    pub properties: usize,
    /// Outcomes pushed before the load (enough for a first model).
    pub initial_outcomes: usize,
    /// Outcomes each of its laptops adds per sync.
    pub outcomes_per_sync: usize,
    /// The servers' background trainer interval and threshold.
    pub train_interval_secs: u64,
    pub min_new_outcomes: u64,
}

impl LoadConfig {
    /// The figures of `docs/load.md`: 20 tenants × 10 laptops at the engine's own fastest cadence.
    pub fn full() -> Self {
        Self {
            tenants: 20,
            laptops_per_tenant: 10,
            crews_per_tenant: 2,
            properties_per_tenant: 500,
            batch: 50,
            think: Duration::from_secs(2),
            duration: Duration::from_secs(60),
            office_every: Duration::from_secs(5),
            quota: QuotaConfig {
                laptops: 5,
                properties: 200,
                events_per_month: 5_000,
                batch: 50,
            },
            rate: RateConfig {
                laptops: 5,
                requests_per_minute: 300,
            },
            training: TrainingConfig {
                laptops: 5,
                properties: 4_000,
                initial_outcomes: 400,
                outcomes_per_sync: 10,
                train_interval_secs: 2,
                // Above the first outcomes, so the explicit race before the load trains the first model.
                min_new_outcomes: 500,
            },
        }
    }

    /// A few seconds with small counts: the integration test's size.
    pub fn quick() -> Self {
        Self {
            tenants: 2,
            laptops_per_tenant: 3,
            crews_per_tenant: 2,
            properties_per_tenant: 100,
            batch: 20,
            think: Duration::from_millis(100),
            duration: Duration::from_secs(8),
            office_every: Duration::from_secs(1),
            quota: QuotaConfig {
                laptops: 2,
                properties: 50,
                events_per_month: 300,
                batch: 20,
            },
            rate: RateConfig {
                laptops: 2,
                requests_per_minute: 40,
            },
            training: TrainingConfig {
                laptops: 2,
                properties: 2_400,
                initial_outcomes: 400,
                outcomes_per_sync: 20,
                train_interval_secs: 1,
                min_new_outcomes: 450,
            },
        }
    }

    /// Laptops in the timed load (the rate tenant's only burst before it).
    pub fn load_laptops(&self) -> usize {
        self.tenants * self.laptops_per_tenant + self.quota.laptops + self.training.laptops
    }

    /// Every tenant of the run, special ones included.
    pub fn all_tenants(&self) -> usize {
        self.tenants + 3
    }
}
