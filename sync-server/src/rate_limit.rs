//! Per-tenant rate limiting by plan, shared by every server instance, and request metering.
//!
//! The count lives in PostgreSQL (`rate_windows`, one row per tenant per minute, a sliding-window
//! estimate over the previous minute): each instance reserves a small chunk of the tenant's allowance
//! in one round trip ([`server_store::AppPool::reserve_requests`]) and hands it out from memory, so most
//! requests cost a mutex and a counter, not a database call. Instances together can never be granted
//! more than the plan allows; what one instance reserved and did not use is lost for that minute (at
//! most a chunk per instance, a twentieth of the limit). After a refusal the instance answers 429
//! itself until the `Retry-After` time, so a flood costs the database nothing.
//!
//! Every request with a valid token is also counted per tenant and flushed as a `requests` usage event
//! by the usage task (`crate::usage_task`), and its response is labelled with the tenant's plan for the
//! metrics layer ([`crate::metrics::PlanLabel`]): the plan is remembered per tenant from the tenant row
//! each handler reads for its status check, and from the limiter's own reservations — no query of its own.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::{PlanTier, TenantId, Timestamp};
use server_store::quotas::{Reservation, WINDOW_MS};
use sync_protocol::ErrorCode;

use crate::error::ApiError;
use crate::metrics::PlanLabel;
use crate::state::{AppState, now_ms};

/// Requests reserved from PostgreSQL at once: a twentieth of the plan's minute, at least 1, at most 100.
pub fn chunk_for(per_minute: i64) -> i64 {
    (per_minute / 20).clamp(1, 100)
}

/// When the sliding window next allows one request: the previous minute's weight shrinks as time
/// passes; once the current minute is over, its own count becomes the weighted previous one.
pub fn retry_at_ms(now: i64, r: &Reservation) -> i64 {
    let end = (r.window + 1) * WINDOW_MS;
    let per_minute = r.per_minute;
    let room = per_minute - r.window_total - 1;
    if room >= 0 && r.previous > 0 {
        // previous × (end − t) / 60 s ≤ room  ⇔  t ≥ end − room × 60 s / previous
        let at = end - room.saturating_mul(WINDOW_MS) / r.previous;
        if at <= end {
            return at.max(now + 1);
        }
    }
    if r.window_total <= 0 {
        return end.max(now + 1);
    }
    // In the next window: window_total × (end + 60 s − t) / 60 s ≤ per_minute − 1.
    let next_end = end + WINDOW_MS;
    let at = next_end - (per_minute - 1).max(0).saturating_mul(WINDOW_MS) / r.window_total;
    at.max(end).max(now + 1)
}

/// Whether a request may proceed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    Refused {
        retry_after_secs: u64,
        per_minute: i64,
        plan: PlanTier,
    },
}

#[derive(Debug, Default)]
struct Bucket {
    window: i64,
    tokens: i64,
    refused_until: i64,
    per_minute: i64,
    plan: Option<PlanTier>,
    /// Requests seen and not yet flushed as a usage event.
    unflushed: u64,
}

/// The in-process side of the limiter (one per server instance).
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<TenantId, Bucket>>,
}

impl RateLimiter {
    fn with_bucket<T>(&self, tenant: TenantId, f: impl FnOnce(&mut Bucket) -> T) -> T {
        // A poisoned lock only means another request panicked mid-update of counters: keep going.
        let mut map = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(map.entry(tenant).or_default())
    }

    /// Counts one request of `tenant` for metering.
    pub fn count_request(&self, tenant: TenantId) {
        self.with_bucket(tenant, |b| b.unflushed += 1);
    }

    /// Remembers `tenant`'s plan as just read from its tenant row (a plan change shows from the tenant's
    /// next request on).
    pub fn note_plan(&self, tenant: TenantId, plan: PlanTier) {
        self.with_bucket(tenant, |b| b.plan = Some(plan));
    }

    /// The plan last seen for `tenant`, if this instance has seen one.
    pub fn plan_of(&self, tenant: TenantId) -> Option<PlanTier> {
        self.with_bucket(tenant, |b| b.plan)
    }

    /// Takes the request counts to flush (and forgets them).
    pub fn take_request_counts(&self) -> Vec<(TenantId, u64)> {
        let mut map = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.iter_mut()
            .filter(|(_, b)| b.unflushed > 0)
            .map(|(t, b)| (*t, std::mem::take(&mut b.unflushed)))
            .collect()
    }

    /// Gives counts back after a failed flush, so they are flushed next time.
    pub fn restore_request_counts(&self, counts: &[(TenantId, u64)]) {
        for (tenant, n) in counts {
            self.with_bucket(*tenant, |b| b.unflushed += n);
        }
    }

    /// Admits or refuses one request of `tenant` at `now` (Unix ms).
    pub async fn admit(
        &self,
        pool: &server_store::AppPool,
        tenant: TenantId,
        now: i64,
    ) -> Result<Admission, server_store::StoreError> {
        let window = now.div_euclid(WINDOW_MS);
        let local = self.with_bucket(tenant, |b| {
            if b.window != window {
                b.window = window;
                b.tokens = 0;
            }
            if b.refused_until > now
                && let Some(plan) = b.plan
            {
                return Some(Admission::Refused {
                    retry_after_secs: secs_until(now, b.refused_until),
                    per_minute: b.per_minute,
                    plan,
                });
            }
            if b.tokens > 0 {
                b.tokens -= 1;
                return Some(Admission::Allowed);
            }
            None
        });
        if let Some(answer) = local {
            return Ok(answer);
        }
        let want = self.with_bucket(tenant, |b| chunk_for(b.per_minute));
        let Some(r) = pool.reserve_requests(tenant, Timestamp(now), want).await? else {
            // No tenant row: the handler's own check answers for a deleted tenant.
            return Ok(Admission::Allowed);
        };
        Ok(self.with_bucket(tenant, |b| {
            b.per_minute = r.per_minute;
            b.plan = Some(r.plan);
            if r.granted > 0 {
                if b.window == r.window {
                    b.tokens += r.granted - 1;
                }
                Admission::Allowed
            } else {
                let at = retry_at_ms(now, &r);
                b.refused_until = at;
                Admission::Refused {
                    retry_after_secs: secs_until(now, at),
                    per_minute: r.per_minute,
                    plan: r.plan,
                }
            }
        }))
    }
}

fn secs_until(now: i64, at: i64) -> u64 {
    u64::try_from((at - now + 999) / 1_000).unwrap_or(1).max(1)
}

/// The plan above `plan` (the one that lifts its request rate), if any.
fn next_plan(plan: PlanTier) -> Option<PlanTier> {
    PlanTier::ALL.iter().copied().find(|p| *p > plan)
}

/// The 429 answer: names the limit, the plan, and the plan that lifts it.
pub fn rate_limited(retry_after_secs: u64, per_minute: i64, plan: PlanTier) -> ApiError {
    let lifted_by = next_plan(plan);
    let lift = match lifted_by {
        Some(p) => format!("the {p} plan lifts it"),
        None => "contact the operator to lift it".to_owned(),
    };
    let mut error = ApiError::new(
        ErrorCode::RateLimited,
        format!(
            "this account made more than the {plan} plan's {per_minute} API requests per minute; retry in {retry_after_secs} s ({lift})"
        ),
    )
    .with_details(serde_json::json!({
        "limit": "requests_per_minute",
        "allowed": per_minute,
        "plan": plan,
        "lifted_by": lifted_by,
        "retry_after_secs": retry_after_secs,
    }));
    error.retry_after_secs = Some(retry_after_secs);
    error
}

/// The tenant of a request's bearer token, when it carries a valid one (anything else is left to the
/// handler's own authentication, which answers 401).
fn tenant_of(state: &AppState, request: &Request) -> Option<TenantId> {
    let header = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))?;
    state
        .tokens
        .verify(token.trim(), now_ms())
        .ok()
        .map(|c| c.tenant_id)
}

/// Middleware: counts each authenticated request for metering and, when rate limits are on, admits it
/// against the tenant's plan or answers 429 with `Retry-After`. A database failure of the limiter
/// admits the request (the handler needs the database anyway and reports it). Labels the response with
/// the tenant's plan for the metrics layer.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(tenant) = tenant_of(&state, &request) else {
        return next.run(request).await;
    };
    state.limiter.count_request(tenant);
    if state.settings.rate_limits {
        match state.limiter.admit(&state.app, tenant, now_ms()).await {
            Ok(Admission::Allowed) => {}
            Ok(Admission::Refused {
                retry_after_secs,
                per_minute,
                plan,
            }) => {
                let mut response = rate_limited(retry_after_secs, per_minute, plan).into_response();
                response.extensions_mut().insert(PlanLabel(Some(plan)));
                return response;
            }
            Err(e) => tracing::warn!(error = %e, "rate limiter unavailable; admitting the request"),
        }
    }
    let mut response = next.run(request).await;
    // Read after the handler: its status check has just noted the plan (a tenant's first request too).
    let plan = PlanLabel(state.limiter.plan_of(tenant));
    response.extensions_mut().insert(plan);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reservation(window_total: i64, previous: i64) -> Reservation {
        Reservation {
            granted: 0,
            window: 100,
            window_total,
            previous,
            per_minute: 120,
            plan: PlanTier::Trial,
        }
    }

    #[test]
    fn chunks_are_a_twentieth_of_the_minute_within_bounds() {
        assert_eq!(chunk_for(0), 1);
        assert_eq!(chunk_for(120), 6);
        assert_eq!(chunk_for(12_000), 100);
    }

    #[test]
    fn retry_times_follow_the_sliding_window() {
        let start = 100 * WINDOW_MS;
        let end = start + WINDOW_MS;
        // The current minute alone used everything: the next minute opens gradually.
        let r = reservation(120, 0);
        let at = retry_at_ms(start + 30_000, &r);
        assert!(at > end && at <= end + 1_000, "{at} vs {end}");
        // Half of the allowance is held by the previous minute's weight: it frees up within this minute.
        let r = reservation(59, 120);
        let at = retry_at_ms(start + 10_000, &r);
        assert_eq!(at, end - 60 * WINDOW_MS / 120);
        assert!(at < end);
        // Never in the past.
        assert!(retry_at_ms(end + 5_000, &reservation(0, 0)) > end + 5_000);
    }

    #[test]
    fn refusals_name_the_limit_and_the_plan_that_lifts_it() {
        let e = rate_limited(7, 120, PlanTier::Trial);
        assert_eq!(e.code, ErrorCode::RateLimited);
        assert_eq!(e.retry_after_secs, Some(7));
        assert!(
            e.message
                .contains("trial plan's 120 API requests per minute")
        );
        assert!(e.message.contains("the standard plan lifts it"));
        let e = rate_limited(1, 12_000, PlanTier::Enterprise);
        assert!(e.message.contains("contact the operator"));
    }
}
