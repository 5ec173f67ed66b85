//! Quotas and the shared rate-limit counter, all kept in PostgreSQL so every server instance enforces the
//! same numbers.
//!
//! - Users and devices are hard limits, counted live under a per-tenant advisory lock so two concurrent
//!   additions (on any instances) cannot both take the last seat.
//! - Synced events per month: a counter row per tenant and month, bumped in the push transaction (one
//!   `INSERT … ON CONFLICT DO UPDATE … RETURNING`). Over the soft limit the push is accepted with a
//!   warning and the overage is billed; a push that starts at or above the hard limit is refused.
//! - Storage: the latest hourly sample (see `metering`), compared the same way before a push.
//! - Requests per minute: [`AppPool::reserve_requests`] reserves a chunk of a sliding minute window in
//!   one round trip; the server hands the chunk out from memory (see `sync-server/src/rate_limit.rs`).

use domain::{PlanTier, TenantId, Timestamp};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use crate::error::StoreError;
use crate::metering::{Invoice, Month, UsageTotals};
use crate::plans::{Plan, tenant_plan};
use crate::pool::AppPool;
use crate::rows::parse_text;
use crate::tx::TenantTx;

/// A limit of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    Users,
    Devices,
    SyncedEventsPerMonth,
    StorageBytes,
    RequestsPerMinute,
}

impl Limit {
    pub const ALL: [Limit; 5] = [
        Limit::Users,
        Limit::Devices,
        Limit::SyncedEventsPerMonth,
        Limit::StorageBytes,
        Limit::RequestsPerMinute,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Limit::Users => "users",
            Limit::Devices => "devices",
            Limit::SyncedEventsPerMonth => "synced_events_per_month",
            Limit::StorageBytes => "storage_bytes",
            Limit::RequestsPerMinute => "requests_per_minute",
        }
    }

    /// Where a warning starts (for hard-only limits: the limit itself).
    pub fn soft(self, plan: &Plan) -> i64 {
        match self {
            Limit::Users => plan.max_users,
            Limit::Devices => plan.max_devices,
            Limit::SyncedEventsPerMonth => plan.monthly_events,
            Limit::StorageBytes => plan.storage_bytes,
            Limit::RequestsPerMinute => plan.requests_per_minute,
        }
    }

    /// Where requests are refused.
    pub fn hard(self, plan: &Plan) -> i64 {
        match self {
            Limit::SyncedEventsPerMonth => plan.monthly_events_hard,
            Limit::StorageBytes => plan.storage_bytes_hard,
            other => other.soft(plan),
        }
    }

    /// Whether the limit has a soft band (warn and bill) below its hard one.
    pub const fn has_soft_band(self) -> bool {
        matches!(self, Limit::SyncedEventsPerMonth | Limit::StorageBytes)
    }
}

/// The smallest plan above `current` whose soft limit covers `needed`: the plan that lifts the limit.
pub fn lifting_plan(
    plans: &[Plan],
    current: PlanTier,
    limit: Limit,
    needed: i64,
) -> Option<PlanTier> {
    let mut candidates: Vec<&Plan> = plans.iter().filter(|p| p.name > current).collect();
    candidates.sort_by_key(|p| p.name);
    candidates
        .iter()
        .find(|p| limit.soft(p) >= needed)
        .or_else(|| candidates.iter().find(|p| limit.hard(p) >= needed))
        .map(|p| p.name)
}

fn lift_words(lifted_by: Option<PlanTier>) -> String {
    match lifted_by {
        Some(plan) => format!("the {plan} plan lifts it"),
        None => "no larger plan lifts it; contact the operator".to_owned(),
    }
}

/// A hard limit refused the request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuotaRefusal {
    pub limit: Limit,
    /// What the tenant has (or would have) counted against the limit.
    pub used: i64,
    /// The hard limit of its plan.
    pub allowed: i64,
    pub plan: PlanTier,
    pub lifted_by: Option<PlanTier>,
}

impl std::fmt::Display for QuotaRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the {} plan's hard limit of {} {} is reached ({} used); {}",
            self.plan,
            self.allowed,
            self.limit.as_str().replace('_', " "),
            self.used,
            lift_words(self.lifted_by)
        )
    }
}

/// A soft limit is passed: the request went through, the overage is billed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuotaWarning {
    pub limit: Limit,
    pub used: i64,
    pub soft: i64,
    pub hard: i64,
    pub plan: PlanTier,
    pub lifted_by: Option<PlanTier>,
}

impl QuotaWarning {
    /// One line for a response header or a screen.
    pub fn message(&self) -> String {
        format!(
            "{} {} of {} included in the {} plan (overage is billed; refused at {}); {}",
            self.limit.as_str(),
            self.used,
            self.soft,
            self.plan,
            self.hard,
            lift_words(self.lifted_by)
        )
    }
}

/// Salt of the quota lock (separate from the training and arm locks).
const QUOTA_LOCK_SALT: u64 = 0x7175_6f74_6173_6c6b; // "quotaslk"

/// FNV-1a over the salt, the limit and the tenant id: the same key on every instance.
fn quota_lock_key(tenant: Uuid, limit: Limit) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in QUOTA_LOCK_SALT
        .to_be_bytes()
        .iter()
        .chain(limit.as_str().as_bytes())
        .chain(tenant.as_bytes())
    {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// What a push's synced events did to the month's counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventMeter {
    pub used: i64,
    pub warning: Option<QuotaWarning>,
}

/// One limit against the plan, for the office's usage screen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LimitStatus {
    pub limit: Limit,
    pub used: i64,
    pub soft: i64,
    pub hard: i64,
    /// `ok`, `near` (80 % of the soft limit), `over_soft` (warned, overage billed) or `at_hard` (refused).
    pub status: &'static str,
    pub lifted_by: Option<PlanTier>,
}

/// The plan the usage calls for, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Recommendation {
    pub plan: PlanTier,
    pub reasons: Vec<String>,
    /// This month's bill at the current usage on the current plan and on the recommended one.
    pub current_estimate_cents: i64,
    pub recommended_estimate_cents: i64,
}

/// Usage against the plan: limits, warnings, this month's estimate and a recommendation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UsageReport {
    pub plan: Plan,
    pub month: String,
    pub limits: Vec<LimitStatus>,
    pub usage: UsageTotals,
    pub estimate: Invoice,
    pub recommendation: Option<Recommendation>,
}

fn status_of(limit: Limit, used: i64, plan: &Plan) -> &'static str {
    let (soft, hard) = (limit.soft(plan), limit.hard(plan));
    if used >= hard && (!limit.has_soft_band() || hard > 0) {
        "at_hard"
    } else if limit.has_soft_band() && used > soft {
        "over_soft"
    } else if used.saturating_mul(10) >= soft.saturating_mul(8) {
        "near"
    } else {
        "ok"
    }
}

/// Recommends the smallest plan above the current one on which every limit is below 80 % of its soft
/// limit, when some limit of the current plan is near, over its soft limit or at its hard one.
pub fn recommend(
    plans: &[Plan],
    current: &Plan,
    used: &[(Limit, i64)],
    usage: &UsageTotals,
    slug: &str,
    month: Month,
) -> Option<Recommendation> {
    let pressed: Vec<String> = used
        .iter()
        .filter(|(limit, n)| status_of(*limit, *n, current) != "ok")
        .map(|(limit, n)| {
            format!(
                "{} is at {n} of the {} plan's {}",
                limit.as_str(),
                current.name,
                limit.soft(current)
            )
        })
        .collect();
    if pressed.is_empty() {
        return None;
    }
    let mut larger: Vec<&Plan> = plans.iter().filter(|p| p.name > current.name).collect();
    larger.sort_by_key(|p| p.name);
    let fits = |p: &Plan| {
        used.iter()
            .all(|(limit, n)| n.saturating_mul(10) < limit.soft(p).saturating_mul(8))
    };
    let target = larger.iter().find(|p| fits(p)).or(larger.last()).copied()?;
    let estimate = |p: &Plan| Invoice::new(slug, month, p, usage.clone()).total_cents;
    Some(Recommendation {
        plan: target.name,
        reasons: pressed,
        current_estimate_cents: estimate(current),
        recommended_estimate_cents: estimate(target),
    })
}

impl TenantTx {
    async fn quota_lock(&mut self, limit: Limit) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(quota_lock_key(self.tenant_id.0, limit))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn refusal(
        &mut self,
        plan: &Plan,
        limit: Limit,
        used: i64,
    ) -> Result<StoreError, StoreError> {
        let plans = self.list_plans().await?;
        Ok(StoreError::QuotaExceeded(QuotaRefusal {
            limit,
            used,
            allowed: limit.hard(plan),
            plan: plan.name,
            lifted_by: lifting_plan(&plans, plan.name, limit, used.saturating_add(1)),
        }))
    }

    async fn warning(
        &mut self,
        plan: &Plan,
        limit: Limit,
        used: i64,
    ) -> Result<QuotaWarning, StoreError> {
        let plans = self.list_plans().await?;
        Ok(QuotaWarning {
            limit,
            used,
            soft: limit.soft(plan),
            hard: limit.hard(plan),
            plan: plan.name,
            lifted_by: lifting_plan(&plans, plan.name, limit, used),
        })
    }

    async fn count_rows(&mut self, sql: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(sql)
            .bind(self.tenant_id.0)
            .fetch_one(&mut *self.tx)
            .await?)
    }

    /// Refuses a new user when the plan's user limit is reached. Holds the tenant's user-quota lock
    /// until the transaction ends, so the caller's insert cannot race another instance's.
    pub async fn check_new_user(&mut self) -> Result<(), StoreError> {
        self.quota_lock(Limit::Users).await?;
        let plan = tenant_plan(&mut self.tx, self.tenant_id).await?;
        let users = self
            .count_rows("SELECT count(*) FROM users WHERE tenant_id = $1")
            .await?;
        if users >= plan.max_users {
            return Err(self.refusal(&plan, Limit::Users, users).await?);
        }
        Ok(())
    }

    /// Refuses registering a new device when the plan's device limit (active devices) is reached;
    /// holds the device-quota lock like [`TenantTx::check_new_user`].
    pub async fn check_new_device(&mut self) -> Result<(), StoreError> {
        self.quota_lock(Limit::Devices).await?;
        let plan = tenant_plan(&mut self.tx, self.tenant_id).await?;
        let devices = self
            .count_rows("SELECT count(*) FROM devices WHERE tenant_id = $1 AND status = 'active'")
            .await?;
        if devices >= plan.max_devices {
            return Err(self.refusal(&plan, Limit::Devices, devices).await?);
        }
        Ok(())
    }

    /// Counts `accepted` synced events of a push against this month: records the usage event (id
    /// `event_id`, e.g. the batch's first accepted change id, so it is recorded once) and bumps the
    /// month's counter. A push that starts at or above the hard limit is refused (the caller rolls the
    /// batch back); above the soft limit it is accepted with a warning. Call it last before commit: the
    /// counter row stays locked until then.
    pub async fn meter_synced_events(
        &mut self,
        event_id: Uuid,
        accepted: i64,
        now: Timestamp,
    ) -> Result<EventMeter, StoreError> {
        let plan = tenant_plan(&mut self.tx, self.tenant_id).await?;
        let month = Month::of(now).to_string();
        if accepted <= 0 {
            let used: Option<i64> = sqlx::query_scalar(
                "SELECT used FROM quota_counters WHERE tenant_id = $1 AND kind = 'synced_events' AND period = $2",
            )
            .bind(self.tenant_id.0)
            .bind(&month)
            .fetch_optional(&mut *self.tx)
            .await?;
            return Ok(EventMeter {
                used: used.unwrap_or(0),
                warning: None,
            });
        }
        self.record_usage(&[crate::metering::UsageEvent {
            id: event_id,
            kind: crate::metering::UsageKind::SyncedEvents,
            units: accepted,
            occurred_at: now,
        }])
        .await?;
        let used: i64 = sqlx::query_scalar(
            "INSERT INTO quota_counters AS q (tenant_id, kind, period, used, updated_at)
             VALUES ($1, 'synced_events', $2, $3, $4)
             ON CONFLICT (tenant_id, kind, period) DO UPDATE SET used = q.used + EXCLUDED.used, updated_at = EXCLUDED.updated_at
             RETURNING used",
        )
        .bind(self.tenant_id.0)
        .bind(&month)
        .bind(accepted)
        .bind(now.0)
        .fetch_one(&mut *self.tx)
        .await?;
        let before = used - accepted;
        let limit = Limit::SyncedEventsPerMonth;
        if before >= limit.hard(&plan) {
            return Err(self.refusal(&plan, limit, before).await?);
        }
        let warning = if used > limit.soft(&plan) {
            Some(self.warning(&plan, limit, used).await?)
        } else {
            None
        };
        Ok(EventMeter { used, warning })
    }

    /// The latest storage sample against the plan: refused at the hard limit, warned over the soft one.
    pub async fn check_storage(&mut self) -> Result<Option<QuotaWarning>, StoreError> {
        let plan = tenant_plan(&mut self.tx, self.tenant_id).await?;
        let bytes = self.storage_counter().await?;
        let limit = Limit::StorageBytes;
        if bytes >= limit.hard(&plan) && limit.hard(&plan) > 0 {
            return Err(self.refusal(&plan, limit, bytes).await?);
        }
        if bytes > limit.soft(&plan) {
            return Ok(Some(self.warning(&plan, limit, bytes).await?));
        }
        Ok(None)
    }

    async fn storage_counter(&mut self) -> Result<i64, StoreError> {
        let bytes: Option<i64> = sqlx::query_scalar(
            "SELECT used FROM quota_counters WHERE tenant_id = $1 AND kind = 'storage_bytes' AND period = 'latest'",
        )
        .bind(self.tenant_id.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(bytes.unwrap_or(0))
    }

    /// Stores the latest storage sample where the quota check reads it.
    pub async fn set_storage_counter(
        &mut self,
        bytes: i64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO quota_counters (tenant_id, kind, period, used, updated_at) VALUES ($1, 'storage_bytes', 'latest', $2, $3)
             ON CONFLICT (tenant_id, kind, period) DO UPDATE SET used = EXCLUDED.used, updated_at = EXCLUDED.updated_at",
        )
        .bind(self.tenant_id.0)
        .bind(bytes)
        .bind(now.0)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Usage against the plan this month: every limit with its status, the month's usage and estimated
    /// invoice, and an upgrade recommendation when a limit is pressed.
    pub async fn usage_report(
        &mut self,
        slug: &str,
        now: Timestamp,
    ) -> Result<UsageReport, StoreError> {
        let plan = tenant_plan(&mut self.tx, self.tenant_id).await?;
        let plans = self.list_plans().await?;
        let month = Month::of(now);
        let usage = self.usage_between(month.start(), now).await?;
        let users = self
            .count_rows("SELECT count(*) FROM users WHERE tenant_id = $1")
            .await?;
        let devices = self
            .count_rows("SELECT count(*) FROM devices WHERE tenant_id = $1 AND status = 'active'")
            .await?;
        let events: Option<i64> = sqlx::query_scalar(
            "SELECT used FROM quota_counters WHERE tenant_id = $1 AND kind = 'synced_events' AND period = $2",
        )
        .bind(self.tenant_id.0)
        .bind(month.to_string())
        .fetch_optional(&mut *self.tx)
        .await?;
        let storage = self.storage_counter().await?;
        let peak_rpm: Option<i64> =
            sqlx::query_scalar("SELECT max(granted) FROM rate_windows WHERE tenant_id = $1")
                .bind(self.tenant_id.0)
                .fetch_one(&mut *self.tx)
                .await?;
        let used = [
            (Limit::Users, users),
            (Limit::Devices, devices),
            (
                Limit::SyncedEventsPerMonth,
                events.unwrap_or(usage.synced_events),
            ),
            (Limit::StorageBytes, storage),
            (Limit::RequestsPerMinute, peak_rpm.unwrap_or(0)),
        ];
        let limits = used
            .iter()
            .map(|(limit, n)| LimitStatus {
                limit: *limit,
                used: *n,
                soft: limit.soft(&plan),
                hard: limit.hard(&plan),
                status: status_of(*limit, *n, &plan),
                lifted_by: lifting_plan(&plans, plan.name, *limit, n.saturating_add(1)),
            })
            .collect();
        let recommendation = recommend(&plans, &plan, &used, &usage, slug, month);
        let estimate = Invoice::new(slug, month, &plan, usage.clone());
        Ok(UsageReport {
            plan,
            month: month.to_string(),
            limits,
            usage,
            estimate,
            recommendation,
        })
    }
}

/// One reservation from the tenant's current rate window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// Requests granted now (0: the window is spent).
    pub granted: i64,
    /// The minute window (Unix minutes).
    pub window: i64,
    /// Requests granted in this window so far, across instances.
    pub window_total: i64,
    /// Requests granted in the previous window (weighted into this one's allowance).
    pub previous: i64,
    pub per_minute: i64,
    pub plan: PlanTier,
}

pub const WINDOW_MS: i64 = 60_000;

impl AppPool {
    /// Reserves up to `want` requests for `tenant` from its sliding minute window, in one round trip:
    /// the tenant's context, the plan's limit, the previous window's count and the upsert travel in one
    /// simple-protocol message that PostgreSQL runs as one implicit transaction (so `SET LOCAL` ends with
    /// it). The allowance is the plan's requests per minute minus the previous window's grants weighted
    /// by the part of it still inside the last 60 s. `None` when the tenant has no row (deleted).
    pub async fn reserve_requests(
        &self,
        tenant: TenantId,
        now: Timestamp,
        want: i64,
    ) -> Result<Option<Reservation>, StoreError> {
        let window = now.0.div_euclid(WINDOW_MS);
        let remaining = (window + 1) * WINDOW_MS - now.0;
        let want = want.max(1);
        // Only a hyphenated UUID and integers are spliced (no bind parameters in the simple protocol).
        let t = tenant.0.hyphenated();
        let sql = format!(
            "SET LOCAL app.tenant_id = '{t}';
             WITH lim AS (
                 SELECT p.requests_per_minute AS per_minute, t.plan AS plan
                   FROM tenants t JOIN plans p ON p.name = t.plan WHERE t.id = '{t}'),
             prev AS (
                 SELECT coalesce((SELECT granted FROM rate_windows
                                   WHERE tenant_id = '{t}' AND window_start = {window} - 1), 0) AS granted),
             allowance AS (
                 SELECT greatest(0, lim.per_minute - (prev.granted * {remaining} + {WINDOW_MS} - 1) / {WINDOW_MS})::bigint AS cap,
                        lim.per_minute, lim.plan, prev.granted AS previous
                   FROM lim, prev),
             up AS (
                 INSERT INTO rate_windows AS r (tenant_id, window_start, granted, last_grant)
                 SELECT '{t}', {window}, least({want}, a.cap), least({want}, a.cap) FROM allowance a
                 ON CONFLICT (tenant_id, window_start) DO UPDATE
                    SET granted = r.granted + least({want}, greatest(0, (SELECT cap FROM allowance) - r.granted)),
                        last_grant = least({want}, greatest(0, (SELECT cap FROM allowance) - r.granted))
                 RETURNING r.granted, r.last_grant)
             SELECT up.granted, up.last_grant, a.per_minute, a.plan, a.previous FROM up, allowance a"
        );
        let rows = sqlx::raw_sql(&sql).fetch_all(&self.0).await?;
        let Some(row) = rows.into_iter().last() else {
            return Ok(None);
        };
        let plan: String = row.try_get(3)?;
        Ok(Some(Reservation {
            granted: row.try_get(1)?,
            window,
            window_total: row.try_get(0)?,
            previous: row.try_get(4)?,
            per_minute: row.try_get(2)?,
            plan: parse_text::<PlanTier>(&plan, "tenants.plan")?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(name: PlanTier, users: i64, events: i64) -> Plan {
        Plan {
            name,
            max_users: users,
            max_devices: users * 2,
            monthly_events: events,
            monthly_events_hard: events * 2,
            storage_bytes: 1_000,
            storage_bytes_hard: 2_000,
            requests_per_minute: 100,
            base_fee_cents: users * 100,
            event_overage_cents_per_1000: 10,
            storage_overage_cents_per_gb: 1,
            model_run_cents: 0,
            updated_at: Timestamp(0),
        }
    }

    fn plans() -> Vec<Plan> {
        vec![
            plan(PlanTier::Enterprise, 500, 50_000_000),
            plan(PlanTier::Trial, 5, 50_000),
            plan(PlanTier::Standard, 25, 1_000_000),
        ]
    }

    #[test]
    fn the_lifting_plan_is_the_smallest_larger_one_that_covers_the_need() {
        let p = plans();
        assert_eq!(
            lifting_plan(&p, PlanTier::Trial, Limit::Users, 6),
            Some(PlanTier::Standard)
        );
        assert_eq!(
            lifting_plan(&p, PlanTier::Trial, Limit::Users, 30),
            Some(PlanTier::Enterprise)
        );
        assert_eq!(
            lifting_plan(&p, PlanTier::Enterprise, Limit::Users, 501),
            None
        );
        assert_eq!(
            lifting_plan(
                &p,
                PlanTier::Standard,
                Limit::SyncedEventsPerMonth,
                1_500_000
            ),
            Some(PlanTier::Enterprise)
        );
    }

    #[test]
    fn refusals_name_the_limit_the_plan_and_the_plan_that_lifts_it() {
        let text = QuotaRefusal {
            limit: Limit::Devices,
            used: 5,
            allowed: 5,
            plan: PlanTier::Trial,
            lifted_by: Some(PlanTier::Standard),
        }
        .to_string();
        assert!(
            text.contains("trial plan's hard limit of 5 devices"),
            "{text}"
        );
        assert!(text.contains("the standard plan lifts it"), "{text}");
    }

    #[test]
    fn recommendations_follow_pressed_limits_only() {
        let p = plans();
        let trial = p
            .iter()
            .find(|p| p.name == PlanTier::Trial)
            .unwrap()
            .clone();
        let month = Month::parse("2026-11").unwrap();
        let quiet = [(Limit::Users, 1), (Limit::SyncedEventsPerMonth, 100)];
        assert_eq!(
            recommend(&p, &trial, &quiet, &UsageTotals::default(), "t", month),
            None
        );
        let busy = [(Limit::Users, 5), (Limit::SyncedEventsPerMonth, 100)];
        let r = recommend(&p, &trial, &busy, &UsageTotals::default(), "t", month).unwrap();
        assert_eq!(r.plan, PlanTier::Standard);
        assert_eq!(r.reasons.len(), 1);
        let huge = [(Limit::Users, 24), (Limit::SyncedEventsPerMonth, 900_000)];
        let r = recommend(&p, &trial, &huge, &UsageTotals::default(), "t", month).unwrap();
        assert_eq!(r.plan, PlanTier::Enterprise, "80 % of standard is exceeded");
    }

    #[test]
    fn statuses_distinguish_soft_and_hard() {
        let trial = plan(PlanTier::Standard, 25, 1_000);
        assert_eq!(status_of(Limit::Users, 10, &trial), "ok");
        assert_eq!(status_of(Limit::Users, 20, &trial), "near");
        assert_eq!(status_of(Limit::Users, 25, &trial), "at_hard");
        assert_eq!(
            status_of(Limit::SyncedEventsPerMonth, 1_500, &trial),
            "over_soft"
        );
        assert_eq!(
            status_of(Limit::SyncedEventsPerMonth, 2_000, &trial),
            "at_hard"
        );
    }

    #[test]
    fn lock_keys_differ_per_limit_and_tenant() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        assert_ne!(
            quota_lock_key(a, Limit::Users),
            quota_lock_key(a, Limit::Devices)
        );
        assert_ne!(
            quota_lock_key(a, Limit::Users),
            quota_lock_key(b, Limit::Users)
        );
    }
}
