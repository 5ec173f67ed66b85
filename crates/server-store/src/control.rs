//! Control-plane operations on [`ControlTx`]: provision a tenant with its first admin and default crew in
//! one transaction, look a tenant up by slug (the login's first step), list tenants, change a status.

use domain::{
    AuditEntry, AuditId, Crew, PlanTier, Role, Tenant, TenantId, TenantStatus, Timestamp, Validate,
};

use crate::accounts::{NewUser, insert_audit_entry, insert_crew, insert_user};
use crate::error::StoreError;
use crate::rows::parse_text;
use crate::tx::ControlTx;

pub(crate) type TenantRow = (uuid::Uuid, String, String, String, String, i64);

pub(crate) const TENANT_COLUMNS: &str = "id, name, slug, plan, status, created_at";

pub(crate) fn tenant_from_row(
    (id, name, slug, plan, status, created_at): TenantRow,
) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: TenantId(id),
        name,
        slug,
        plan: parse_text::<PlanTier>(&plan, "tenants.plan")?,
        status: parse_text::<TenantStatus>(&status, "tenants.status")?,
        created_at: Timestamp(created_at),
    })
}

/// What provisioning a tenant needs. The admin's password hash is computed by the caller.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub id: TenantId,
    pub name: String,
    pub slug: String,
    pub plan: PlanTier,
    pub created_at: Timestamp,
    /// The default crew; the admin is put in it.
    pub default_crew: Crew,
    /// The first admin (its role is forced to admin and its crew to the default crew).
    pub admin: NewUser,
}

impl ControlTx {
    /// Creates the tenant (status active), its default crew and its first admin, and an audit entry, in
    /// this one transaction. A taken slug or email is [`StoreError::Conflict`].
    pub async fn create_tenant(&mut self, new: &NewTenant) -> Result<Tenant, StoreError> {
        let tenant = Tenant {
            id: new.id,
            name: new.name.clone(),
            slug: new.slug.clone(),
            plan: new.plan,
            status: TenantStatus::Active,
            created_at: new.created_at,
        };
        tenant.validate(new.created_at)?;
        new.default_crew.validate(new.created_at)?;
        let mut admin = new.admin.clone();
        admin.role = Role::Admin;
        admin.crew_id = Some(new.default_crew.id);
        admin.validate(new.created_at)?;

        let inserted = sqlx::query(
            "INSERT INTO tenants (id, name, slug, plan, status, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (slug) DO NOTHING",
        )
        .bind(tenant.id.0)
        .bind(&tenant.name)
        .bind(&tenant.slug)
        .bind(tenant.plan.as_str())
        .bind(tenant.status.as_str())
        .bind(tenant.created_at.0)
        .execute(&mut *self.tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "tenant slug '{}' is taken",
                tenant.slug
            )));
        }
        // The tenant's own rows are written under its context, through the same policies as the service.
        self.enter_tenant(tenant.id).await?;
        insert_crew(&mut self.tx, tenant.id, &new.default_crew).await?;
        insert_user(&mut self.tx, tenant.id, &admin, new.created_at).await?;
        let audit = AuditEntry {
            id: AuditId::generate(),
            actor: None,
            action: "tenant.create".into(),
            target: format!("tenant:{}", tenant.id),
            device_id: None,
            request_id: None,
            at: new.created_at,
        };
        insert_audit_entry(&mut self.tx, tenant.id, &audit).await?;
        self.leave_tenant().await?;
        Ok(tenant)
    }

    /// The login's first step: which tenant a slug names.
    pub async fn find_tenant_by_slug(&mut self, slug: &str) -> Result<Option<Tenant>, StoreError> {
        let row: Option<TenantRow> = sqlx::query_as(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE slug = $1"
        ))
        .bind(slug)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(tenant_from_row).transpose()
    }

    pub async fn find_tenant(&mut self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        let row: Option<TenantRow> = sqlx::query_as(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(tenant_from_row).transpose()
    }

    /// Every tenant, by slug.
    pub async fn list_tenants(&mut self) -> Result<Vec<Tenant>, StoreError> {
        let rows: Vec<TenantRow> = sqlx::query_as(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants ORDER BY slug"
        ))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.into_iter().map(tenant_from_row).collect()
    }

    /// Sets a tenant's status (suspend, reactivate, mark deleted) and audits it in that tenant.
    /// Unknown tenant: [`StoreError::NotFound`].
    pub async fn set_tenant_status(
        &mut self,
        id: TenantId,
        status: TenantStatus,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let updated = sqlx::query("UPDATE tenants SET status = $2 WHERE id = $1")
            .bind(id.0)
            .bind(status.as_str())
            .execute(&mut *self.tx)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("tenant {id}")));
        }
        self.enter_tenant(id).await?;
        let audit = AuditEntry {
            id: AuditId::generate(),
            actor: None,
            action: format!("tenant.status.{}", status.as_str()),
            target: format!("tenant:{id}"),
            device_id: None,
            request_id: None,
            at: now,
        };
        insert_audit_entry(&mut self.tx, id, &audit).await?;
        self.leave_tenant().await?;
        Ok(())
    }
}
