//! Plans: the limits and prices of each plan tier (the `plans` table, seeded with PRODUCT.md's defaults
//! and changed by the operator), a tenant's plan change, and the plan a tenant is on.
//!
//! Which limits are hard and which soft is fixed here and documented in `docs/plans-and-limits.md`:
//! users, devices and requests per minute are hard (refused at the limit); synced events per month and
//! storage have a soft limit (warned, overage billed) and a hard limit (refused) at or above it.

use domain::{PlanTier, Tenant, TenantId, Timestamp};
use serde::Serialize;

use crate::control::{TENANT_COLUMNS, TenantRow, tenant_from_row};
use crate::error::StoreError;
use crate::rows::parse_text;
use crate::tx::{ControlTx, TenantTx};

/// One plan's limits and prices (prices in integer cents).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub name: PlanTier,
    pub max_users: i64,
    pub max_devices: i64,
    pub monthly_events: i64,
    pub monthly_events_hard: i64,
    pub storage_bytes: i64,
    pub storage_bytes_hard: i64,
    pub requests_per_minute: i64,
    pub base_fee_cents: i64,
    pub event_overage_cents_per_1000: i64,
    pub storage_overage_cents_per_gb: i64,
    pub model_run_cents: i64,
    pub updated_at: Timestamp,
}

/// A settable column of a plan. The CLI flag is the column name with dashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlanField {
    MaxUsers,
    MaxDevices,
    MonthlyEvents,
    MonthlyEventsHard,
    StorageBytes,
    StorageBytesHard,
    RequestsPerMinute,
    BaseFeeCents,
    EventOverageCentsPer1000,
    StorageOverageCentsPerGb,
    ModelRunCents,
}

impl PlanField {
    pub const ALL: [PlanField; 11] = [
        PlanField::MaxUsers,
        PlanField::MaxDevices,
        PlanField::MonthlyEvents,
        PlanField::MonthlyEventsHard,
        PlanField::StorageBytes,
        PlanField::StorageBytesHard,
        PlanField::RequestsPerMinute,
        PlanField::BaseFeeCents,
        PlanField::EventOverageCentsPer1000,
        PlanField::StorageOverageCentsPerGb,
        PlanField::ModelRunCents,
    ];

    /// The column name (a fixed identifier, safe to splice).
    pub const fn column(self) -> &'static str {
        match self {
            PlanField::MaxUsers => "max_users",
            PlanField::MaxDevices => "max_devices",
            PlanField::MonthlyEvents => "monthly_events",
            PlanField::MonthlyEventsHard => "monthly_events_hard",
            PlanField::StorageBytes => "storage_bytes",
            PlanField::StorageBytesHard => "storage_bytes_hard",
            PlanField::RequestsPerMinute => "requests_per_minute",
            PlanField::BaseFeeCents => "base_fee_cents",
            PlanField::EventOverageCentsPer1000 => "event_overage_cents_per_1000",
            PlanField::StorageOverageCentsPerGb => "storage_overage_cents_per_gb",
            PlanField::ModelRunCents => "model_run_cents",
        }
    }
}

impl Plan {
    fn set(&mut self, field: PlanField, value: i64) {
        let slot = match field {
            PlanField::MaxUsers => &mut self.max_users,
            PlanField::MaxDevices => &mut self.max_devices,
            PlanField::MonthlyEvents => &mut self.monthly_events,
            PlanField::MonthlyEventsHard => &mut self.monthly_events_hard,
            PlanField::StorageBytes => &mut self.storage_bytes,
            PlanField::StorageBytesHard => &mut self.storage_bytes_hard,
            PlanField::RequestsPerMinute => &mut self.requests_per_minute,
            PlanField::BaseFeeCents => &mut self.base_fee_cents,
            PlanField::EventOverageCentsPer1000 => &mut self.event_overage_cents_per_1000,
            PlanField::StorageOverageCentsPerGb => &mut self.storage_overage_cents_per_gb,
            PlanField::ModelRunCents => &mut self.model_run_cents,
        };
        *slot = value;
    }

    /// The plan's own consistency: no negative value, at least one request a minute, hard ≥ soft.
    pub fn check(&self) -> Result<(), StoreError> {
        let values = [
            self.max_users,
            self.max_devices,
            self.monthly_events,
            self.monthly_events_hard,
            self.storage_bytes,
            self.storage_bytes_hard,
            self.requests_per_minute,
            self.base_fee_cents,
            self.event_overage_cents_per_1000,
            self.storage_overage_cents_per_gb,
            self.model_run_cents,
        ];
        if values.iter().any(|v| *v < 0) {
            return Err(StoreError::InvalidInput(
                "plan limits and prices cannot be negative".into(),
            ));
        }
        if self.requests_per_minute < 1 {
            return Err(StoreError::InvalidInput(
                "requests_per_minute must be at least 1".into(),
            ));
        }
        if self.monthly_events_hard < self.monthly_events {
            return Err(StoreError::InvalidInput(format!(
                "monthly_events_hard ({}) must be at least monthly_events ({})",
                self.monthly_events_hard, self.monthly_events
            )));
        }
        if self.storage_bytes_hard < self.storage_bytes {
            return Err(StoreError::InvalidInput(format!(
                "storage_bytes_hard ({}) must be at least storage_bytes ({})",
                self.storage_bytes_hard, self.storage_bytes
            )));
        }
        Ok(())
    }
}

pub(crate) const PLAN_COLUMNS: &str = "name, max_users, max_devices, monthly_events, monthly_events_hard, storage_bytes, \
     storage_bytes_hard, requests_per_minute, base_fee_cents, event_overage_cents_per_1000, \
     storage_overage_cents_per_gb, model_run_cents, updated_at";

pub(crate) type PlanRow = (
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
);

pub(crate) fn plan_from_row(row: PlanRow) -> Result<Plan, StoreError> {
    let (
        name,
        users,
        devices,
        events,
        events_hard,
        storage,
        storage_hard,
        rpm,
        base,
        ev,
        st,
        mr,
        at,
    ) = row;
    Ok(Plan {
        name: parse_text::<PlanTier>(&name, "plans.name")?,
        max_users: users,
        max_devices: devices,
        monthly_events: events,
        monthly_events_hard: events_hard,
        storage_bytes: storage,
        storage_bytes_hard: storage_hard,
        requests_per_minute: rpm,
        base_fee_cents: base,
        event_overage_cents_per_1000: ev,
        storage_overage_cents_per_gb: st,
        model_run_cents: mr,
        updated_at: Timestamp(at),
    })
}

async fn fetch_plans(conn: &mut sqlx::PgConnection) -> Result<Vec<Plan>, StoreError> {
    let rows: Vec<PlanRow> = sqlx::query_as(&format!("SELECT {PLAN_COLUMNS} FROM plans"))
        .fetch_all(conn)
        .await?;
    let mut plans = rows
        .into_iter()
        .map(plan_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    plans.sort_by_key(|p| p.name);
    Ok(plans)
}

impl ControlTx {
    /// Every plan, trial first.
    pub async fn list_plans(&mut self) -> Result<Vec<Plan>, StoreError> {
        fetch_plans(&mut self.tx).await
    }

    /// Changes some of a plan's limits or prices at once; the result must stay consistent (hard ≥ soft),
    /// else nothing changes. Returns the plan as stored.
    pub async fn update_plan(
        &mut self,
        tier: PlanTier,
        changes: &[(PlanField, i64)],
        now: Timestamp,
    ) -> Result<Plan, StoreError> {
        let row: Option<PlanRow> = sqlx::query_as(&format!(
            "SELECT {PLAN_COLUMNS} FROM plans WHERE name = $1 FOR UPDATE"
        ))
        .bind(tier.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        let mut plan = row
            .map(plan_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("plan {tier}")))?;
        for (field, value) in changes {
            plan.set(*field, *value);
        }
        plan.check()?;
        plan.updated_at = now;
        let mut sets: Vec<String> = PlanField::ALL
            .iter()
            .enumerate()
            .map(|(i, f)| format!("{} = ${}", f.column(), i + 2))
            .collect();
        sets.push(format!("updated_at = ${}", PlanField::ALL.len() + 2));
        let sql = format!("UPDATE plans SET {} WHERE name = $1", sets.join(", "));
        let mut query = sqlx::query(&sql).bind(tier.as_str());
        for value in [
            plan.max_users,
            plan.max_devices,
            plan.monthly_events,
            plan.monthly_events_hard,
            plan.storage_bytes,
            plan.storage_bytes_hard,
            plan.requests_per_minute,
            plan.base_fee_cents,
            plan.event_overage_cents_per_1000,
            plan.storage_overage_cents_per_gb,
            plan.model_run_cents,
            now.0,
        ] {
            query = query.bind(value);
        }
        query.execute(&mut *self.tx).await?;
        Ok(plan)
    }

    /// Moves a tenant (by slug) to another plan. Unknown slug: [`StoreError::NotFound`].
    pub async fn set_tenant_plan(
        &mut self,
        slug: &str,
        tier: PlanTier,
    ) -> Result<Tenant, StoreError> {
        let row: Option<TenantRow> = sqlx::query_as(&format!(
            "UPDATE tenants SET plan = $2 WHERE slug = $1 RETURNING {TENANT_COLUMNS}"
        ))
        .bind(slug)
        .bind(tier.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(tenant_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("tenant '{slug}'")))
    }
}

impl TenantTx {
    /// Every plan, trial first (for upgrade recommendations).
    pub async fn list_plans(&mut self) -> Result<Vec<Plan>, StoreError> {
        fetch_plans(&mut self.tx).await
    }

    /// This tenant's plan.
    pub async fn tenant_plan(&mut self) -> Result<Plan, StoreError> {
        tenant_plan(&mut self.tx, self.tenant_id).await
    }
}

pub(crate) async fn tenant_plan(
    conn: &mut sqlx::PgConnection,
    tenant: TenantId,
) -> Result<Plan, StoreError> {
    let columns = PLAN_COLUMNS
        .split(", ")
        .map(|c| format!("p.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let row: Option<PlanRow> = sqlx::query_as(&format!(
        "SELECT {columns} FROM tenants t JOIN plans p ON p.name = t.plan WHERE t.id = $1"
    ))
    .bind(tenant.0)
    .fetch_optional(conn)
    .await?;
    row.map(plan_from_row)
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("the plan of tenant {tenant}")))
}
