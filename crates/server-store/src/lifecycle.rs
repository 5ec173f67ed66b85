//! The tenant lifecycle on the control plane: provision, suspend, reactivate, delete (after an export or
//! with force, into a grace period) and purge (every row of the tenant removed, then the catalog checked
//! for leftovers). Each step is one control transaction that records itself in the operator's
//! `tenant_lifecycle_log` and — while the tenant still has data — in the tenant's own audit log.
//! Export and import of archives live in [`crate::export`].

use domain::{AuditEntry, AuditId, PlanTier, Tenant, TenantId, TenantStatus, Timestamp, Validate};
use uuid::Uuid;

use crate::accounts::insert_audit_entry;
use crate::control::{NewTenant, tenant_from_row};
use crate::error::StoreError;
use crate::pool::ControlPool;
use crate::tenant_tables::tenant_tables;
use crate::tx::ControlTx;

/// The default grace period between `tenant delete` and the purge: seven days.
pub const DEFAULT_GRACE_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// Why a lifecycle step was refused. Nothing was written when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("unknown plan '{plan}': choose trial, standard or enterprise")]
    UnknownPlan { plan: String },
    #[error("the slug '{slug}' is taken by another tenant")]
    SlugTaken { slug: String },
    #[error("no tenant '{tenant}'")]
    TenantNotFound { tenant: String },
    #[error("tenant '{slug}' is deleted (purge after {purge_after}); it cannot be {action}")]
    TenantDeleted {
        slug: String,
        action: &'static str,
        purge_after: i64,
    },
    #[error(
        "tenant '{slug}' is being deleted (purge after {purge_after}): an export now could miss data; reactivate it first"
    )]
    TenantDeleting { slug: String, purge_after: i64 },
    #[error(
        "tenant '{slug}' has never been exported: export it first (`tenant export`) or pass --force to delete without an export"
    )]
    ExportRequired { slug: String },
    #[error("tenant '{slug}' is not being deleted: run `tenant delete` first")]
    NotDeleting { slug: String },
    #[error(
        "tenant '{slug}' is in its grace period until {purge_after} (now {now}); purge after that time"
    )]
    GracePeriod {
        slug: String,
        purge_after: i64,
        now: i64,
    },
    #[error("the purge left rows of the tenant behind: {tables:?}; nothing was removed")]
    PurgeIncomplete { tables: Vec<(String, i64)> },
    #[error("invalid archive: {0}")]
    InvalidArchive(String),
    #[error("file error: {0}")]
    Io(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LifecycleError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            LifecycleError::UnknownPlan { .. } => "unknown_plan",
            LifecycleError::SlugTaken { .. } => "slug_taken",
            LifecycleError::TenantNotFound { .. } => "tenant_not_found",
            LifecycleError::TenantDeleted { .. } => "tenant_deleted",
            LifecycleError::TenantDeleting { .. } => "tenant_deleting",
            LifecycleError::ExportRequired { .. } => "export_required",
            LifecycleError::NotDeleting { .. } => "not_deleting",
            LifecycleError::GracePeriod { .. } => "grace_period",
            LifecycleError::PurgeIncomplete { .. } => "purge_incomplete",
            LifecycleError::InvalidArchive(_) => "invalid_archive",
            LifecycleError::Io(_) => "io",
            LifecycleError::Store(e) => e.code(),
        }
    }
}

/// Parses a plan name; an unknown one is [`LifecycleError::UnknownPlan`].
pub fn parse_plan(text: &str) -> Result<PlanTier, LifecycleError> {
    text.trim()
        .parse::<PlanTier>()
        .map_err(|_| LifecycleError::UnknownPlan {
            plan: text.chars().take(64).collect(),
        })
}

/// A tenant with its lifecycle bookkeeping.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TenantLifecycle {
    pub tenant: Tenant,
    pub last_export_at: Option<Timestamp>,
    pub deletion_requested_at: Option<Timestamp>,
    /// Set while the tenant is being deleted: the purge may run from this time.
    pub purge_after: Option<Timestamp>,
}

impl TenantLifecycle {
    /// `active`, `suspended` or `deleting` (deleted, rows kept until the purge).
    pub fn state(&self) -> &'static str {
        match self.tenant.status {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
            TenantStatus::Deleted => "deleting",
        }
    }
}

/// One entry of the operator's lifecycle log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LifecycleLogEntry {
    pub subject_tenant: Uuid,
    pub slug: String,
    pub action: String,
    pub detail: String,
    pub at: Timestamp,
}

type LifecycleRow = (
    Uuid,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

const LIFECYCLE_COLUMNS: &str =
    "id, name, slug, plan, status, created_at, last_export_at, deletion_requested_at, purge_after";

fn lifecycle_from_row(row: LifecycleRow) -> Result<TenantLifecycle, StoreError> {
    let (id, name, slug, plan, status, created_at, exported, requested, purge_after) = row;
    Ok(TenantLifecycle {
        tenant: tenant_from_row((id, name, slug, plan, status, created_at))?,
        last_export_at: exported.map(Timestamp),
        deletion_requested_at: requested.map(Timestamp),
        purge_after: purge_after.map(Timestamp),
    })
}

impl ControlTx {
    /// The tenant with this slug (or id, given as a UUID), locked for this transaction so two lifecycle
    /// steps on one tenant run one after the other.
    pub async fn tenant_lifecycle(
        &mut self,
        tenant: &str,
    ) -> Result<TenantLifecycle, LifecycleError> {
        let id = Uuid::parse_str(tenant.trim()).ok();
        let row: Option<LifecycleRow> = sqlx::query_as(&format!(
            "SELECT {LIFECYCLE_COLUMNS} FROM tenants WHERE slug = $1 OR id = $2 FOR UPDATE"
        ))
        .bind(tenant.trim())
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(StoreError::from)?;
        match row {
            Some(row) => Ok(lifecycle_from_row(row)?),
            None => Err(LifecycleError::TenantNotFound {
                tenant: tenant.chars().take(64).collect(),
            }),
        }
    }

    /// Appends to the operator's lifecycle log (kept after the tenant's purge).
    pub async fn log_lifecycle(
        &mut self,
        tenant: &Tenant,
        action: &str,
        detail: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tenant_lifecycle_log (id, subject_tenant, slug, action, detail, at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::now_v7())
        .bind(tenant.id.0)
        .bind(&tenant.slug)
        .bind(action)
        .bind(detail)
        .bind(now.0)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The operator's lifecycle log of one tenant (by id), oldest first.
    pub async fn lifecycle_log(
        &mut self,
        tenant: TenantId,
    ) -> Result<Vec<LifecycleLogEntry>, StoreError> {
        let rows: Vec<(Uuid, String, String, String, i64)> = sqlx::query_as(
            "SELECT subject_tenant, slug, action, detail, at FROM tenant_lifecycle_log
              WHERE subject_tenant = $1 ORDER BY at, id",
        )
        .bind(tenant.0)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(subject_tenant, slug, action, detail, at)| LifecycleLogEntry {
                    subject_tenant,
                    slug,
                    action,
                    detail,
                    at: Timestamp(at),
                },
            )
            .collect())
    }

    /// Records a lifecycle step in the tenant's own audit log (under its context) and in the operator's log.
    pub(crate) async fn audit_lifecycle(
        &mut self,
        tenant: &Tenant,
        action: &str,
        detail: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let entry = AuditEntry {
            id: AuditId::generate(),
            actor: None,
            action: action.to_owned(),
            target: format!("tenant:{}", tenant.id),
            device_id: None,
            request_id: Some("operator".to_owned()),
            at: now,
        };
        entry.validate(now)?;
        self.enter_tenant(tenant.id).await?;
        insert_audit_entry(&mut self.tx, tenant.id, &entry).await?;
        self.leave_tenant().await?;
        self.log_lifecycle(tenant, action, detail, now).await
    }

    /// Provisions a tenant: the tenant row with its plan, the default crew and the first admin, and the
    /// audit entries, in this one transaction. A taken slug is [`LifecycleError::SlugTaken`].
    pub async fn provision(&mut self, new: &NewTenant) -> Result<Tenant, LifecycleError> {
        let tenant = match self.create_tenant(new).await {
            Ok(t) => t,
            Err(StoreError::Conflict(_)) => {
                return Err(LifecycleError::SlugTaken {
                    slug: new.slug.clone(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let detail = format!("plan {}", tenant.plan.as_str());
        self.log_lifecycle(&tenant, "tenant.provision", &detail, new.created_at)
            .await?;
        Ok(tenant)
    }

    async fn set_status(
        &mut self,
        id: TenantId,
        status: TenantStatus,
        purge_after: Option<Timestamp>,
        requested: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tenants SET status = $2, purge_after = $3, deletion_requested_at = $4 WHERE id = $1",
        )
        .bind(id.0)
        .bind(status.as_str())
        .bind(purge_after.map(|t| t.0))
        .bind(requested.map(|t| t.0))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Suspends a tenant: sync and the API answer `tenant_suspended`, its data is kept. Suspending a
    /// suspended tenant changes nothing; a deleted one is [`LifecycleError::TenantDeleted`].
    pub async fn suspend(
        &mut self,
        tenant: &str,
        now: Timestamp,
    ) -> Result<TenantLifecycle, LifecycleError> {
        let mut current = self.tenant_lifecycle(tenant).await?;
        match current.tenant.status {
            TenantStatus::Deleted => {
                return Err(LifecycleError::TenantDeleted {
                    slug: current.tenant.slug,
                    action: "suspended",
                    purge_after: current.purge_after.map_or(0, |t| t.0),
                });
            }
            TenantStatus::Suspended => return Ok(current),
            TenantStatus::Active => {}
        }
        self.set_status(current.tenant.id, TenantStatus::Suspended, None, None)
            .await?;
        current.tenant.status = TenantStatus::Suspended;
        self.audit_lifecycle(&current.tenant, "tenant.suspend", "", now)
            .await?;
        Ok(current)
    }

    /// Reactivates a suspended tenant, or cancels the deletion of a tenant still in its grace period.
    pub async fn reactivate(
        &mut self,
        tenant: &str,
        now: Timestamp,
    ) -> Result<TenantLifecycle, LifecycleError> {
        let mut current = self.tenant_lifecycle(tenant).await?;
        let detail = match current.tenant.status {
            TenantStatus::Active => return Ok(current),
            TenantStatus::Suspended => "",
            TenantStatus::Deleted => "deletion cancelled in the grace period",
        };
        self.set_status(current.tenant.id, TenantStatus::Active, None, None)
            .await?;
        current.tenant.status = TenantStatus::Active;
        current.purge_after = None;
        current.deletion_requested_at = None;
        self.audit_lifecycle(&current.tenant, "tenant.reactivate", detail, now)
            .await?;
        Ok(current)
    }

    /// Marks a tenant deleted with a grace period: refused by the API at once, rows kept until
    /// [`ControlTx::purge`] runs after `purge_after`. Needs an earlier export unless `force`.
    pub async fn request_deletion(
        &mut self,
        tenant: &str,
        force: bool,
        grace_ms: i64,
        now: Timestamp,
    ) -> Result<TenantLifecycle, LifecycleError> {
        let mut current = self.tenant_lifecycle(tenant).await?;
        if current.tenant.status == TenantStatus::Deleted {
            return Err(LifecycleError::TenantDeleted {
                slug: current.tenant.slug,
                action: "deleted again",
                purge_after: current.purge_after.map_or(0, |t| t.0),
            });
        }
        if current.last_export_at.is_none() && !force {
            return Err(LifecycleError::ExportRequired {
                slug: current.tenant.slug,
            });
        }
        let purge_after = Timestamp(now.0.saturating_add(grace_ms.max(0)));
        self.set_status(
            current.tenant.id,
            TenantStatus::Deleted,
            Some(purge_after),
            Some(now),
        )
        .await?;
        current.tenant.status = TenantStatus::Deleted;
        current.purge_after = Some(purge_after);
        current.deletion_requested_at = Some(now);
        let detail = format!(
            "purge after {}{}",
            purge_after.0,
            if force { "; forced without export" } else { "" }
        );
        self.audit_lifecycle(&current.tenant, "tenant.delete", &detail, now)
            .await?;
        Ok(current)
    }

    /// Removes every row of a tenant whose grace period is over, checks through the catalog that no
    /// table with a `tenant_id` column holds a row of it any more, then removes the tenant itself. The
    /// operator's lifecycle log keeps the record. Returns the rows removed per table.
    pub async fn purge(
        &mut self,
        tenant: &str,
        now: Timestamp,
    ) -> Result<Vec<(String, u64)>, LifecycleError> {
        let current = self.tenant_lifecycle(tenant).await?;
        let Some(purge_after) = current
            .purge_after
            .filter(|_| current.tenant.status == TenantStatus::Deleted)
        else {
            return Err(LifecycleError::NotDeleting {
                slug: current.tenant.slug,
            });
        };
        if now < purge_after {
            return Err(LifecycleError::GracePeriod {
                slug: current.tenant.slug,
                purge_after: purge_after.0,
                now: now.0,
            });
        }
        let id = current.tenant.id;
        self.enter_tenant(id).await?;
        let tables = tenant_tables(&mut self.tx).await?;
        // Cycles first: the deferred references are cleared so the reverse insert order deletes cleanly.
        for table in &tables {
            if table.deferred.is_empty() {
                continue;
            }
            let sets: Vec<String> = table
                .deferred
                .iter()
                .map(|c| format!("{c} = NULL"))
                .collect();
            sqlx::query(&format!(
                "UPDATE {} SET {} WHERE tenant_id = $1",
                table.name,
                sets.join(", ")
            ))
            .bind(id.0)
            .execute(&mut *self.tx)
            .await
            .map_err(StoreError::from)?;
        }
        let mut removed = Vec::with_capacity(tables.len());
        for table in tables.iter().rev() {
            let done = sqlx::query(&format!("DELETE FROM {} WHERE tenant_id = $1", table.name))
                .bind(id.0)
                .execute(&mut *self.tx)
                .await
                .map_err(StoreError::from)?;
            removed.push((table.name.clone(), done.rows_affected()));
        }
        let left = rows_left(self, id).await?;
        if !left.is_empty() {
            return Err(LifecycleError::PurgeIncomplete { tables: left });
        }
        self.leave_tenant().await?;
        sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(id.0)
            .execute(&mut *self.tx)
            .await
            .map_err(StoreError::from)?;
        let total: u64 = removed.iter().map(|(_, n)| n).sum();
        self.log_lifecycle(
            &current.tenant,
            "tenant.purge",
            &format!("{total} rows removed; no row left in any tenant table"),
            now,
        )
        .await?;
        Ok(removed)
    }

    /// Every table with a `tenant_id` column (read from the catalog now, not from a list) that still holds
    /// rows of `tenant`, with its count. Runs under the tenant's context, so it counts exactly its rows.
    pub async fn tenant_rows_left(
        &mut self,
        tenant: TenantId,
    ) -> Result<Vec<(String, i64)>, LifecycleError> {
        self.enter_tenant(tenant).await?;
        let left = rows_left(self, tenant).await;
        self.leave_tenant().await?;
        left
    }
}

async fn rows_left(
    tx: &mut ControlTx,
    tenant: TenantId,
) -> Result<Vec<(String, i64)>, LifecycleError> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
            AND a.attname = 'tenant_id' AND NOT a.attisdropped
          ORDER BY 1",
    )
    .fetch_all(&mut *tx.tx)
    .await
    .map_err(StoreError::from)?;
    let mut left = Vec::new();
    for name in names {
        let name = crate::tenant_tables::check_identifier(&name)?.to_owned();
        let count: i64 =
            sqlx::query_scalar(&format!("SELECT count(*) FROM {name} WHERE tenant_id = $1"))
                .bind(tenant.0)
                .fetch_one(&mut *tx.tx)
                .await
                .map_err(StoreError::from)?;
        if count > 0 {
            left.push((name, count));
        }
    }
    Ok(left)
}

/// Provisions a tenant in one control transaction (see [`ControlTx::provision`]).
pub async fn provision_tenant(
    pool: &ControlPool,
    new: &NewTenant,
) -> Result<Tenant, LifecycleError> {
    let mut tx = pool.begin().await?;
    let tenant = tx.provision(new).await?;
    tx.commit().await?;
    Ok(tenant)
}
