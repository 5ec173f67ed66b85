//! Operator tasks on the control plane: provision a tenant (tenant, first admin, default crew, in one
//! transaction), list tenants, add a user, revoke a device. Used by the operator CLI.

use domain::{
    AuditEntry, AuditId, Crew, CrewId, DeviceId, PlanTier, Role, Tenant, TenantId, Timestamp,
    UserId, slugify,
};
use server_store::{ControlPool, NewTenant, NewUser, PoolSettings, TenantTx};
use zeroize::Zeroizing;

use crate::auth::password;
use crate::operator::CommandError;
use crate::state::now_ms;

/// A provisioned tenant.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CreatedTenant {
    pub tenant_id: TenantId,
    pub slug: String,
    pub admin_user_id: UserId,
    pub crew_id: CrewId,
}

async fn control(url: &str) -> Result<ControlPool, CommandError> {
    let settings = PoolSettings {
        max_connections: 2,
        ..PoolSettings::default()
    };
    Ok(ControlPool::connect(url, &settings).await?)
}

fn hash(password: &Zeroizing<String>) -> Result<String, CommandError> {
    password::hash_password(password).map_err(|e| CommandError {
        code: "weak_password",
        message: e.to_string(),
    })
}

/// Provisions a tenant, its default crew and its first admin in one transaction.
pub async fn provision_tenant(
    pool: &ControlPool,
    name: &str,
    slug: Option<&str>,
    plan: PlanTier,
    admin_email: &str,
    admin_name: &str,
    password_hash: String,
) -> Result<CreatedTenant, CommandError> {
    let slug = slug.map(str::to_owned).unwrap_or_else(|| slugify(name));
    let crew = Crew {
        id: CrewId::generate(),
        name: "Default crew".to_owned(),
        chief_id: None,
    };
    let admin = NewUser {
        id: UserId::generate(),
        email: admin_email.trim().to_owned(),
        name: admin_name.trim().to_owned(),
        role: Role::Admin,
        crew_id: Some(crew.id),
        password_hash,
    };
    let new = NewTenant {
        id: TenantId::generate(),
        name: name.trim().to_owned(),
        slug: slug.clone(),
        plan,
        created_at: Timestamp(now_ms()),
        default_crew: crew.clone(),
        admin: admin.clone(),
    };
    let mut tx = pool.begin().await?;
    let tenant: Tenant = tx.create_tenant(&new).await?;
    tx.commit().await?;
    Ok(CreatedTenant {
        tenant_id: tenant.id,
        slug: tenant.slug,
        admin_user_id: admin.id,
        crew_id: crew.id,
    })
}

/// `tenant create`.
pub async fn create_tenant(
    url: &str,
    name: &str,
    slug: Option<&str>,
    plan: PlanTier,
    admin_email: &str,
    admin_name: &str,
    password: &Zeroizing<String>,
) -> Result<CreatedTenant, CommandError> {
    let pool = control(url).await?;
    let created = provision_tenant(
        &pool,
        name,
        slug,
        plan,
        admin_email,
        admin_name,
        hash(password)?,
    )
    .await;
    pool.close().await;
    created
}

/// `tenant list`.
pub async fn list_tenants(url: &str) -> Result<Vec<Tenant>, CommandError> {
    let pool = control(url).await?;
    let mut tx = pool.begin().await?;
    let tenants = tx.list_tenants().await?;
    tx.commit().await?;
    pool.close().await;
    Ok(tenants)
}

async fn tenant_tx(pool: &ControlPool, slug: &str) -> Result<TenantTx, CommandError> {
    let mut tx = pool.begin().await?;
    let tenant = tx
        .find_tenant_by_slug(slug)
        .await?
        .ok_or_else(|| CommandError {
            code: "not_found",
            message: format!("no tenant with slug '{slug}'"),
        })?;
    tx.commit().await?;
    Ok(pool.begin_tenant(tenant.id).await?)
}

async fn operator_audit(
    tx: &mut TenantTx,
    action: &str,
    target: String,
) -> Result<(), CommandError> {
    let now = Timestamp(now_ms());
    let entry = AuditEntry {
        id: AuditId::generate(),
        actor: None,
        action: action.to_owned(),
        target,
        device_id: None,
        request_id: Some("operator-cli".to_owned()),
        at: now,
    };
    tx.insert_audit(&entry, now).await?;
    Ok(())
}

/// `user add`.
pub async fn add_user(
    url: &str,
    slug: &str,
    email: &str,
    name: &str,
    role: Role,
    default_crew: bool,
    password: &Zeroizing<String>,
) -> Result<UserId, CommandError> {
    let pool = control(url).await?;
    let mut tx = tenant_tx(&pool, slug).await?;
    let crew_id = if default_crew {
        tx.default_crew_id().await?
    } else {
        None
    };
    let user = NewUser {
        id: UserId::generate(),
        email: email.trim().to_owned(),
        name: name.trim().to_owned(),
        role,
        crew_id,
        password_hash: hash(password)?,
    };
    tx.add_user(&user, Timestamp(now_ms())).await?;
    operator_audit(&mut tx, "user.add", format!("user:{}", user.id)).await?;
    tx.commit().await?;
    pool.close().await;
    Ok(user.id)
}

/// `device revoke`.
pub async fn revoke_device(url: &str, slug: &str, device: DeviceId) -> Result<(), CommandError> {
    let pool = control(url).await?;
    let mut tx = tenant_tx(&pool, slug).await?;
    let now = Timestamp(now_ms());
    if !tx.revoke_device(device, now).await? && tx.device(device).await?.is_none() {
        return Err(CommandError {
            code: "not_found",
            message: format!("no device {device} in tenant '{slug}'"),
        });
    }
    tx.revoke_device_tokens(device, now).await?;
    operator_audit(&mut tx, "device.revoke", format!("device:{device}")).await?;
    tx.commit().await?;
    pool.close().await;
    Ok(())
}
