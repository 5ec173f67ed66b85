//! Metering: idempotent usage events (unique per tenant and event id), hourly rollups recomputed from the
//! events (so a re-run writes the same rows), storage samples, usage totals over a period, and invoice
//! lines priced from the tenant's plan.
//!
//! Kinds and their units: `synced_events` (changes accepted by a push, metered in the push transaction),
//! `model_runs` (one per trained model), `requests` (API requests, flushed by each server instance in
//! batches) and `storage_bytes` (a sample of the tenant's bytes in PostgreSQL, at most one per hour).

use domain::{PlanTier, Timestamp};
use serde::Serialize;
use uuid::Uuid;

use crate::error::StoreError;
use crate::plans::Plan;
use crate::tx::TenantTx;

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;
/// Storage is priced per decimal gigabyte.
pub const GB: i64 = 1_000_000_000;

/// What a usage event counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageKind {
    SyncedEvents,
    ModelRuns,
    Requests,
    StorageBytes,
}

impl UsageKind {
    pub const ALL: [UsageKind; 4] = [
        UsageKind::SyncedEvents,
        UsageKind::ModelRuns,
        UsageKind::Requests,
        UsageKind::StorageBytes,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            UsageKind::SyncedEvents => "synced_events",
            UsageKind::ModelRuns => "model_runs",
            UsageKind::Requests => "requests",
            UsageKind::StorageBytes => "storage_bytes",
        }
    }
}

/// One metered fact. The id makes it idempotent: recording the same id twice counts once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageEvent {
    pub id: Uuid,
    pub kind: UsageKind,
    pub units: i64,
    pub occurred_at: Timestamp,
}

/// A calendar month in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian; H. Hinnant's algorithm).
fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Month {
    /// The month that holds `at`.
    pub fn of(at: Timestamp) -> Month {
        let days = at.0.div_euclid(DAY_MS);
        // Inverse of days_from_civil.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Month {
            year: i32::try_from(year).unwrap_or(i32::MAX),
            month: u32::try_from(month).unwrap_or(1),
        }
    }

    /// Parses `YYYY-MM`.
    pub fn parse(text: &str) -> Result<Month, StoreError> {
        let bad = || StoreError::InvalidInput(format!("'{text}' is not a month (YYYY-MM)"));
        let (y, m) = text.trim().split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u32 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Month { year, month })
    }

    pub fn start(self) -> Timestamp {
        Timestamp(days_from_civil(self.year, self.month, 1) * DAY_MS)
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The first instant after the month.
    pub fn end(self) -> Timestamp {
        self.next().start()
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Usage of one tenant over a period, from the hourly rollup.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UsageTotals {
    pub from: i64,
    pub to: i64,
    pub synced_events: i64,
    pub model_runs: i64,
    pub requests: i64,
    /// The largest storage sample of the period.
    pub storage_peak_bytes: i64,
    /// The newest storage sample of the period.
    pub storage_latest_bytes: i64,
}

/// One line of an invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvoiceLine {
    pub code: &'static str,
    pub description: String,
    pub quantity: i64,
    pub unit: &'static str,
    pub unit_price_cents: i64,
    pub amount_cents: i64,
}

/// A month's invoice of one tenant, priced from its plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Invoice {
    pub tenant_slug: String,
    pub month: String,
    pub plan: PlanTier,
    pub currency: &'static str,
    pub usage: UsageTotals,
    pub lines: Vec<InvoiceLine>,
    pub total_cents: i64,
}

fn ceil_div(n: i64, d: i64) -> i64 {
    if n <= 0 || d <= 0 { 0 } else { (n + d - 1) / d }
}

/// Invoice lines for `usage` on `plan`: the base fee; synced events over the soft limit, per started
/// 1,000; peak storage over the soft limit, per started GB; model runs at the plan's price (zero:
/// included); requests as an informational line (included). Amounts in integer cents.
pub fn invoice_lines(plan: &Plan, usage: &UsageTotals) -> Vec<InvoiceLine> {
    let event_over = (usage.synced_events - plan.monthly_events).max(0);
    let event_units = ceil_div(event_over, 1_000);
    let storage_over = (usage.storage_peak_bytes - plan.storage_bytes).max(0);
    let storage_units = ceil_div(storage_over, GB);
    vec![
        InvoiceLine {
            code: "base_fee",
            description: format!("{} plan, monthly fee", plan.name),
            quantity: 1,
            unit: "month",
            unit_price_cents: plan.base_fee_cents,
            amount_cents: plan.base_fee_cents,
        },
        InvoiceLine {
            code: "synced_events_overage",
            description: format!(
                "synced events over the {} included ({} synced)",
                plan.monthly_events, usage.synced_events
            ),
            quantity: event_units,
            unit: "1000_events",
            unit_price_cents: plan.event_overage_cents_per_1000,
            amount_cents: event_units * plan.event_overage_cents_per_1000,
        },
        InvoiceLine {
            code: "storage_overage",
            description: format!(
                "storage over the {} bytes included (peak {} bytes)",
                plan.storage_bytes, usage.storage_peak_bytes
            ),
            quantity: storage_units,
            unit: "gb",
            unit_price_cents: plan.storage_overage_cents_per_gb,
            amount_cents: storage_units * plan.storage_overage_cents_per_gb,
        },
        InvoiceLine {
            code: "model_runs",
            description: "uplift model trainings".to_owned(),
            quantity: usage.model_runs,
            unit: "run",
            unit_price_cents: plan.model_run_cents,
            amount_cents: usage.model_runs * plan.model_run_cents,
        },
        InvoiceLine {
            code: "api_requests",
            description: "API requests (included)".to_owned(),
            quantity: usage.requests,
            unit: "request",
            unit_price_cents: 0,
            amount_cents: 0,
        },
    ]
}

impl Invoice {
    pub fn new(tenant_slug: &str, month: Month, plan: &Plan, usage: UsageTotals) -> Invoice {
        let lines = invoice_lines(plan, &usage);
        let total_cents = lines.iter().map(|l| l.amount_cents).sum();
        Invoice {
            tenant_slug: tenant_slug.to_owned(),
            month: month.to_string(),
            plan: plan.name,
            currency: "USD",
            usage,
            lines,
            total_cents,
        }
    }

    /// The invoice as CSV: a header, one row per line, and a total row. Descriptions are quoted.
    pub fn to_csv(&self) -> String {
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let mut out = String::from(
            "tenant,month,plan,code,description,quantity,unit,unit_price_cents,amount_cents\n",
        );
        for l in &self.lines {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{}\n",
                quote(&self.tenant_slug),
                self.month,
                self.plan,
                l.code,
                quote(&l.description),
                l.quantity,
                l.unit,
                l.unit_price_cents,
                l.amount_cents
            ));
        }
        out.push_str(&format!(
            "{},{},{},total,\"total\",,,,{}\n",
            quote(&self.tenant_slug),
            self.month,
            self.plan,
            self.total_cents
        ));
        out
    }
}

/// The id of the storage sample of the hour holding `at`: one per tenant per hour (the key is
/// (tenant, id)), so every instance sampling in the same hour records one event.
pub fn storage_sample_id(at: Timestamp) -> Uuid {
    const TAG: u64 = 0x5354_4f52_4147_4500; // "STORAGE\0"
    Uuid::from_u64_pair(TAG, u64::try_from(at.0.div_euclid(HOUR_MS)).unwrap_or(0))
}

impl TenantTx {
    /// Records usage events; an id already recorded is skipped. Returns how many were new.
    pub async fn record_usage(&mut self, events: &[UsageEvent]) -> Result<u64, StoreError> {
        let mut inserted = 0;
        for e in events {
            if e.units < 0 {
                return Err(StoreError::InvalidInput(format!(
                    "usage units cannot be negative ({} {})",
                    e.units,
                    e.kind.as_str()
                )));
            }
            inserted += sqlx::query(
                "INSERT INTO usage_events (tenant_id, id, kind, units, occurred_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id, id) DO NOTHING",
            )
            .bind(self.tenant_id.0)
            .bind(e.id)
            .bind(e.kind.as_str())
            .bind(e.units)
            .bind(e.occurred_at.0)
            .execute(&mut *self.tx)
            .await?
            .rows_affected();
        }
        Ok(inserted)
    }

    /// Recomputes the hourly rollup of every hour overlapping `[from, to)` from the usage events. Running
    /// it again writes the same rows. Returns the rollup rows written.
    pub async fn rollup_usage(
        &mut self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<u64, StoreError> {
        let from = from.0.div_euclid(HOUR_MS) * HOUR_MS;
        let to = (to.0.div_euclid(HOUR_MS) + 1) * HOUR_MS;
        let written = sqlx::query(
            "INSERT INTO usage_hourly (tenant_id, hour_start, kind, units, events)
             SELECT tenant_id, (occurred_at / 3600000) * 3600000, kind,
                    CASE WHEN kind = 'storage_bytes' THEN max(units) ELSE sum(units) END, count(*)
               FROM usage_events WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3
              GROUP BY 1, 2, 3
             ON CONFLICT (tenant_id, hour_start, kind)
                DO UPDATE SET units = EXCLUDED.units, events = EXCLUDED.events",
        )
        .bind(self.tenant_id.0)
        .bind(from)
        .bind(to)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        Ok(written)
    }

    /// Totals over `[from, to)` read from the hourly rollup (run [`TenantTx::rollup_usage`] first for
    /// hours that may have new events).
    pub async fn usage_totals(
        &mut self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<UsageTotals, StoreError> {
        let row: (i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT coalesce(sum(units) FILTER (WHERE kind = 'synced_events'), 0)::bigint,
                    coalesce(sum(units) FILTER (WHERE kind = 'model_runs'), 0)::bigint,
                    coalesce(sum(units) FILTER (WHERE kind = 'requests'), 0)::bigint,
                    coalesce(max(units) FILTER (WHERE kind = 'storage_bytes'), 0)::bigint,
                    coalesce((SELECT units FROM usage_hourly WHERE tenant_id = $1 AND kind = 'storage_bytes'
                                 AND hour_start >= $2 AND hour_start < $3 ORDER BY hour_start DESC LIMIT 1), 0)::bigint
               FROM usage_hourly WHERE tenant_id = $1 AND hour_start >= $2 AND hour_start < $3",
        )
        .bind(self.tenant_id.0)
        .bind(from.0)
        .bind(to.0)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(UsageTotals {
            from: from.0,
            to: to.0,
            synced_events: row.0,
            model_runs: row.1,
            requests: row.2,
            storage_peak_bytes: row.3,
            storage_latest_bytes: row.4,
        })
    }

    /// Rolls up and totals `[from, to)` in one go.
    pub async fn usage_between(
        &mut self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<UsageTotals, StoreError> {
        self.rollup_usage(from, to).await?;
        self.usage_totals(from, to).await
    }

    /// The tenant's bytes in PostgreSQL: the stored size of each of its rows in every tenant table (read
    /// under its own row-level security, so only its rows count).
    pub async fn measure_storage(&mut self) -> Result<i64, StoreError> {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_class c
              WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
                AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
              ORDER BY 1",
        )
        .fetch_all(&mut *self.tx)
        .await?;
        let plain = |t: &String| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        let parts: Vec<String> = tables
            .iter()
            .filter(|t| plain(t))
            .map(|t| {
                format!("SELECT coalesce(sum(pg_column_size(x.*)), 0)::bigint AS n FROM {t} x")
            })
            .collect();
        if parts.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "SELECT coalesce(sum(n), 0)::bigint FROM ({}) s",
            parts.join(" UNION ALL ")
        );
        Ok(sqlx::query_scalar(&sql).fetch_one(&mut *self.tx).await?)
    }

    /// Takes this hour's storage sample unless one exists: measures, records the event (one per hour)
    /// and stores it as the live storage counter the quota check reads. Returns the bytes when sampled.
    pub async fn sample_storage(&mut self, now: Timestamp) -> Result<Option<i64>, StoreError> {
        let id = storage_sample_id(now);
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM usage_events WHERE tenant_id = $1 AND id = $2)",
        )
        .bind(self.tenant_id.0)
        .bind(id)
        .fetch_one(&mut *self.tx)
        .await?;
        if exists {
            return Ok(None);
        }
        let bytes = self.measure_storage().await?;
        self.record_usage(&[UsageEvent {
            id,
            kind: UsageKind::StorageBytes,
            units: bytes,
            occurred_at: now,
        }])
        .await?;
        self.set_storage_counter(bytes, now).await?;
        Ok(Some(bytes))
    }

    /// Deletes rate-limit windows older than `before_window` (minute numbers).
    pub async fn prune_rate_windows(&mut self, before_window: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM rate_windows WHERE tenant_id = $1 AND window_start < $2")
                .bind(self.tenant_id.0)
                .bind(before_window)
                .execute(&mut *self.tx)
                .await?
                .rows_affected(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_round_trip_through_their_bounds() {
        let m = Month::parse("2026-11").unwrap();
        assert_eq!(m.to_string(), "2026-11");
        // 2026-11-01T00:00:00Z
        assert_eq!(m.start(), Timestamp(1_793_491_200_000));
        assert_eq!(m.end(), Month::parse("2026-12").unwrap().start());
        assert_eq!(Month::of(Timestamp(m.start().0)), m);
        assert_eq!(Month::of(Timestamp(m.end().0 - 1)), m);
        assert_eq!(
            Month::parse("2026-12").unwrap().next().to_string(),
            "2027-01"
        );
        assert_eq!(Month::of(Timestamp(0)).to_string(), "1970-01");
        assert_eq!(Month::of(Timestamp(951_782_400_000)).to_string(), "2000-02"); // 2000-02-29
        for bad in ["2026-13", "2026-1", "26-11", "x", "2026-00", ""] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
    }

    fn plan() -> Plan {
        Plan {
            name: PlanTier::Standard,
            max_users: 25,
            max_devices: 50,
            monthly_events: 1_000_000,
            monthly_events_hard: 2_000_000,
            storage_bytes: 10 * GB,
            storage_bytes_hard: 20 * GB,
            requests_per_minute: 1_200,
            base_fee_cents: 49_900,
            event_overage_cents_per_1000: 50,
            storage_overage_cents_per_gb: 25,
            model_run_cents: 0,
            updated_at: Timestamp(0),
        }
    }

    #[test]
    fn invoices_bill_the_base_fee_and_started_units_over_the_soft_limits() {
        let usage = UsageTotals {
            synced_events: 1_002_001,
            storage_peak_bytes: 11 * GB + 1,
            model_runs: 3,
            requests: 10,
            ..UsageTotals::default()
        };
        let invoice = Invoice::new("acme", Month::parse("2026-11").unwrap(), &plan(), usage);
        let amounts: Vec<(&str, i64, i64)> = invoice
            .lines
            .iter()
            .map(|l| (l.code, l.quantity, l.amount_cents))
            .collect();
        assert_eq!(
            amounts,
            vec![
                ("base_fee", 1, 49_900),
                ("synced_events_overage", 3, 150),
                ("storage_overage", 2, 50),
                ("model_runs", 3, 0),
                ("api_requests", 10, 0),
            ]
        );
        assert_eq!(invoice.total_cents, 50_100);
        let csv = invoice.to_csv();
        assert!(csv.starts_with("tenant,month,plan,code,"));
        assert!(csv.ends_with("\"acme\",2026-11,standard,total,\"total\",,,,50100\n"));
        let under = Invoice::new(
            "acme",
            Month::parse("2026-11").unwrap(),
            &plan(),
            UsageTotals::default(),
        );
        assert_eq!(under.total_cents, 49_900);
    }
}
