//! The server's metering task: flushes this instance's request counts as `requests` usage events,
//! takes each active tenant's hourly storage sample, rolls the last two hours of usage up, and prunes old
//! rate-limit windows. Every step is idempotent, so several instances may run it side by side.

use std::time::Duration;

use domain::{TenantStatus, Timestamp};
use server_store::StoreError;
use server_store::metering::{HOUR_MS, UsageEvent, UsageKind};
use server_store::quotas::WINDOW_MS;
use uuid::Uuid;

use crate::state::{AppState, now_ms};

/// Seconds between rounds unless configured.
pub const DEFAULT_USAGE_INTERVAL_SECS: u64 = 300;

/// What one round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageRound {
    pub requests_flushed: u64,
    pub storage_samples: u64,
    pub tenants: u64,
}

/// Flushes the request counts of this instance (a fresh event id per flush; on failure the counts are
/// kept for the next round).
pub async fn flush_requests(state: &AppState) -> Result<u64, StoreError> {
    let counts = state.limiter.take_request_counts();
    let now = Timestamp(now_ms());
    let mut flushed = 0;
    for (i, (tenant, n)) in counts.iter().enumerate() {
        let event = UsageEvent {
            id: Uuid::now_v7(),
            kind: UsageKind::Requests,
            units: i64::try_from(*n).unwrap_or(i64::MAX),
            occurred_at: now,
        };
        let result = async {
            let mut tx = state.app.begin_tenant(*tenant).await?;
            tx.record_usage(&[event]).await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = result {
            state.limiter.restore_request_counts(&counts[i..]);
            return Err(e);
        }
        flushed += n;
    }
    Ok(flushed)
}

/// One round over every active tenant.
pub async fn usage_round(state: &AppState) -> Result<UsageRound, StoreError> {
    let mut round = UsageRound {
        requests_flushed: flush_requests(state).await?,
        ..UsageRound::default()
    };
    let mut control = state.control.begin().await?;
    let tenants = control.list_tenants().await?;
    control.commit().await?;
    let now = Timestamp(now_ms());
    for tenant in tenants.iter().filter(|t| t.status == TenantStatus::Active) {
        let mut tx = state.app.begin_tenant(tenant.id).await?;
        if tx.sample_storage(now).await?.is_some() {
            round.storage_samples += 1;
        }
        tx.rollup_usage(Timestamp(now.0 - 2 * HOUR_MS), now).await?;
        tx.prune_rate_windows(now.0.div_euclid(WINDOW_MS) - 2)
            .await?;
        tx.commit().await?;
        round.tenants += 1;
    }
    Ok(round)
}

/// Runs [`usage_round`] every `interval` until `stop` turns true, then flushes the request counts once
/// more.
pub async fn run_usage_task(
    state: AppState,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        if let Err(e) = usage_round(&state).await {
            tracing::warn!(error = %e, "usage round failed; retrying next round");
        }
    }
    if let Err(e) = flush_requests(&state).await {
        tracing::warn!(error = %e, "final request-count flush failed");
    }
}
