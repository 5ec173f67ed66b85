//! What PostgreSQL says after a run, read as the application role inside each tenant's context (the
//! same row-level security the server runs under), never through the API under load:
//! - **exactly once**: every change holding a receipt is stored once, nothing without a receipt is
//!   stored, no refused change is stored, each append-only record has one feed row, and the month's
//!   synced-events counter equals the receipted changes (a retried push is never counted twice);
//! - **training once**: a storm's registered models each saw new data (distinct watermarks, strictly
//!   more training rows than the model before) and each is metered as one model run;
//! - **the rate window**: what the instances were granted, together, in each minute.

use std::collections::{BTreeMap, BTreeSet};

use domain::{StormId, TenantId};
use server_store::AppPool;
use sync_protocol::Entity;
use uuid::Uuid;

use crate::log::Ledger;

/// The exactly-once verdict over all tenants.
#[derive(Debug, Clone, Default)]
pub struct ExactlyOnce {
    pub tenants: usize,
    /// Distinct changes holding a receipt.
    pub receipted: u64,
    /// Receipted records not found.
    pub missing: u64,
    /// Stored records the generator holds no receipt for.
    pub unreceipted: u64,
    /// Records of refused batches that were stored anyway.
    pub refused_stored: u64,
    /// Append-only records whose feed-row count is not exactly one.
    pub feed_mismatch: u64,
    /// Tenants whose synced-events counter differs from their receipted changes.
    pub counter_mismatch: Vec<String>,
    /// Changes given up on without an answer.
    pub unsettled: u64,
}

impl ExactlyOnce {
    pub fn holds(&self) -> bool {
        self.missing == 0
            && self.unreceipted == 0
            && self.refused_stored == 0
            && self.feed_mismatch == 0
            && self.counter_mismatch.is_empty()
            && self.unsettled == 0
    }

    pub fn summary(&self) -> String {
        if self.holds() {
            format!(
                "{} receipted changes in {} tenants, each stored once; synced-events counters equal",
                self.receipted, self.tenants
            )
        } else {
            format!(
                "FAILS: {} receipted, {} missing, {} stored without receipt, {} refused but stored, {} feed mismatches, {} unsettled, counters off in {:?}",
                self.receipted,
                self.missing,
                self.unreceipted,
                self.refused_stored,
                self.feed_mismatch,
                self.unsettled,
                self.counter_mismatch
            )
        }
    }
}

fn table_of(entity: Entity) -> Option<&'static str> {
    match entity {
        Entity::JourneyTouch => Some("journey_touches"),
        Entity::Outcome => Some("outcomes"),
        Entity::Property => Some("properties"),
        Entity::Storm => Some("storms"),
        _ => None,
    }
}

async fn count(tx: &mut server_store::TenantTx, sql: &str, ids: &[Uuid]) -> anyhow::Result<u64> {
    let n: i64 = sqlx::query_scalar(sql)
        .bind(ids)
        .fetch_one(tx.connection())
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Compares each tenant's ledger with its rows.
pub async fn exactly_once(
    app: &AppPool,
    ledgers: &BTreeMap<TenantId, Ledger>,
) -> anyhow::Result<ExactlyOnce> {
    let mut out = ExactlyOnce {
        tenants: ledgers.len(),
        ..ExactlyOnce::default()
    };
    for (tenant, ledger) in ledgers {
        out.unsettled += ledger.unsettled;
        let changes: BTreeSet<Uuid> = ledger.receipted.iter().map(|r| r.change_id).collect();
        out.receipted += changes.len() as u64;
        let mut tx = app.begin_tenant(*tenant).await?;
        for entity in [
            Entity::Storm,
            Entity::Property,
            Entity::JourneyTouch,
            Entity::Outcome,
        ] {
            let Some(table) = table_of(entity) else {
                continue;
            };
            let ids: Vec<Uuid> = ledger
                .receipted
                .iter()
                .filter(|r| r.entity == entity)
                .map(|r| r.entity_id)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let refused: Vec<Uuid> = ledger
                .refused
                .iter()
                .filter(|(e, _)| *e == entity)
                .map(|(_, id)| *id)
                .collect();
            let found = count(
                &mut tx,
                &format!("SELECT count(*) FROM {table} WHERE id = ANY($1)"),
                &ids,
            )
            .await?;
            let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(tx.connection())
                .await?;
            let total = u64::try_from(total).unwrap_or(0);
            out.missing += ids.len() as u64 - found.min(ids.len() as u64);
            out.unreceipted += total.saturating_sub(found);
            out.refused_stored += count(
                &mut tx,
                &format!("SELECT count(*) FROM {table} WHERE id = ANY($1)"),
                &refused,
            )
            .await?;
            if matches!(entity, Entity::JourneyTouch | Entity::Outcome) {
                let feed = count(
                    &mut tx,
                    "SELECT count(*) FROM change_log WHERE entity_id = ANY($1)",
                    &ids,
                )
                .await?;
                out.feed_mismatch += feed.abs_diff(ids.len() as u64);
            }
        }
        let counted: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(used), 0)::bigint FROM quota_counters WHERE kind = 'synced_events'",
        )
        .fetch_one(tx.connection())
        .await?;
        if u64::try_from(counted).unwrap_or(0) != changes.len() as u64 {
            out.counter_mismatch.push(format!(
                "{tenant}: counter {counted}, receipted {}",
                changes.len()
            ));
        }
        tx.rollback().await?;
    }
    Ok(out)
}

/// The month's synced-events counter of a tenant.
pub async fn synced_events(app: &AppPool, tenant: TenantId) -> anyhow::Result<i64> {
    let mut tx = app.begin_tenant(tenant).await?;
    let n: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(used), 0)::bigint FROM quota_counters WHERE kind = 'synced_events'",
    )
    .fetch_one(tx.connection())
    .await?;
    tx.rollback().await?;
    Ok(n)
}

/// The minute windows of a tenant's rate limit: (window start, requests granted to all instances).
pub async fn rate_windows(app: &AppPool, tenant: TenantId) -> anyhow::Result<Vec<(i64, i64)>> {
    let mut tx = app.begin_tenant(tenant).await?;
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT window_start, granted FROM rate_windows ORDER BY window_start")
            .fetch_all(tx.connection())
            .await?;
    tx.rollback().await?;
    Ok(rows)
}

/// A storm's model registry.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// (data watermark, training rows), in training order.
    pub models: Vec<(i64, i64)>,
    /// Model runs metered for the tenant.
    pub model_runs: i64,
}

impl Registry {
    /// Models sharing a watermark with an earlier one.
    pub fn repeated_watermarks(&self) -> usize {
        let distinct: BTreeSet<i64> = self.models.iter().map(|m| m.0).collect();
        self.models.len() - distinct.len()
    }

    /// Models that saw no more training rows than the model before them (trained twice on one set of
    /// data: outcomes land on properties without one, so new data always means more rows).
    pub fn retrained_without_new_data(&self) -> usize {
        self.models.windows(2).filter(|w| w[1].1 <= w[0].1).count()
    }

    pub fn holds(&self) -> bool {
        !self.models.is_empty()
            && self.repeated_watermarks() == 0
            && self.retrained_without_new_data() == 0
            && self.model_runs == self.models.len() as i64
    }
}

pub async fn registry(app: &AppPool, tenant: TenantId, storm: StormId) -> anyhow::Result<Registry> {
    let mut tx = app.begin_tenant(tenant).await?;
    let models: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT m.data_watermark, m.training_rows::bigint
           FROM models m
           JOIN model_training_snapshots s ON s.tenant_id = m.tenant_id AND s.model_id = m.id
          WHERE s.storm_id = $1
          ORDER BY m.trained_at, m.id",
    )
    .bind(storm.0)
    .fetch_all(tx.connection())
    .await?;
    let model_runs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM usage_events WHERE kind = 'model_runs'")
            .fetch_one(tx.connection())
            .await?;
    tx.rollback().await?;
    Ok(Registry { models, model_runs })
}
