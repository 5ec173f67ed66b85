//! Operator tasks on the control plane: provision a tenant (tenant, first admin, default crew, in one
//! transaction), the rest of the tenant lifecycle (suspend, reactivate, export, import, delete, purge),
//! the legacy SQLite import, list tenants, users and crews, add a user or crew, revoke a device. Used by
//! the operator CLI, the demo and the benchmarks.

use domain::{
    AuditEntry, AuditId, Crew, CrewId, DeviceId, PlanTier, Role, Tenant, TenantId, Timestamp,
    UserId, slugify,
};
use server_store::{ControlPool, NewTenant, NewUser, PoolSettings, TenantLifecycle, TenantTx};
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

pub(crate) async fn control(url: &str) -> Result<ControlPool, CommandError> {
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
    // The lifecycle's provisioning step: typed errors (slug taken), audited, one transaction.
    let tenant: Tenant = server_store::provision_tenant(pool, &new).await?;
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

pub(crate) async fn tenant_tx(pool: &ControlPool, slug: &str) -> Result<TenantTx, CommandError> {
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

pub(crate) async fn operator_audit(
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

// ---- The tenant lifecycle (issue 6): provision, suspend, reactivate, export, import, delete, purge,
// legacy import, and the directory commands. Each opens its own pool and closes it.

impl From<server_store::LifecycleError> for CommandError {
    fn from(err: server_store::LifecycleError) -> Self {
        CommandError {
            code: err.code(),
            message: err.to_string(),
        }
    }
}

/// `tenant provision` (and `tenant create`): an unknown plan or a taken slug is a typed error and
/// nothing is written.
pub async fn provision(
    url: &str,
    name: &str,
    slug: Option<&str>,
    plan: &str,
    admin_email: &str,
    admin_name: &str,
    password: &Zeroizing<String>,
) -> Result<CreatedTenant, CommandError> {
    let plan = server_store::parse_plan(plan)?;
    create_tenant(url, name, slug, plan, admin_email, admin_name, password).await
}

/// A lifecycle step on the control plane, in one transaction.
async fn lifecycle_step<T>(
    url: &str,
    step: impl AsyncFnOnce(&mut server_store::ControlTx) -> Result<T, server_store::LifecycleError>,
) -> Result<T, CommandError> {
    let pool = control(url).await?;
    let result = async {
        let mut tx = pool.begin().await?;
        let value = step(&mut tx).await?;
        tx.commit().await?;
        Ok::<T, server_store::LifecycleError>(value)
    }
    .await;
    pool.close().await;
    Ok(result?)
}

/// `tenant suspend`.
pub async fn suspend(url: &str, tenant: &str) -> Result<TenantLifecycle, CommandError> {
    let now = Timestamp(now_ms());
    lifecycle_step(url, async |tx| tx.suspend(tenant, now).await).await
}

/// `tenant reactivate` (also cancels a deletion in its grace period).
pub async fn reactivate(url: &str, tenant: &str) -> Result<TenantLifecycle, CommandError> {
    let now = Timestamp(now_ms());
    lifecycle_step(url, async |tx| tx.reactivate(tenant, now).await).await
}

/// `tenant delete`: needs an earlier export unless `force`; the purge may run after `grace_hours`.
pub async fn delete(
    url: &str,
    tenant: &str,
    force: bool,
    grace_hours: u32,
) -> Result<TenantLifecycle, CommandError> {
    let now = Timestamp(now_ms());
    let grace_ms = i64::from(grace_hours) * 3_600_000;
    lifecycle_step(url, async |tx| {
        tx.request_deletion(tenant, force, grace_ms, now).await
    })
    .await
}

/// `tenant purge`: removes every row of a deleted tenant whose grace period is over.
pub async fn purge(url: &str, tenant: &str) -> Result<Vec<(String, u64)>, CommandError> {
    let now = Timestamp(now_ms());
    lifecycle_step(url, async |tx| tx.purge(tenant, now).await).await
}

/// `tenant export`: reads as the application role under the tenant's context.
pub async fn export(
    app_url: &str,
    control_url: &str,
    tenant: &str,
    out: &std::path::Path,
) -> Result<server_store::ArchiveManifest, CommandError> {
    let settings = PoolSettings {
        max_connections: 2,
        ..PoolSettings::default()
    };
    let app = server_store::AppPool::connect(app_url, &settings).await?;
    let pool = control(control_url).await?;
    let result = server_store::export_tenant(&app, &pool, tenant, out, Timestamp(now_ms())).await;
    app.close().await;
    pool.close().await;
    Ok(result?)
}

/// `tenant import`: an archive into a fresh tenant.
pub async fn import(
    url: &str,
    archive: &std::path::Path,
    slug: &str,
    name: Option<&str>,
) -> Result<server_store::ImportedArchive, CommandError> {
    let pool = control(url).await?;
    let result =
        server_store::import_archive(&pool, archive, slug, name, Timestamp(now_ms())).await;
    pool.close().await;
    Ok(result?)
}

/// What a legacy import read, refused and wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LegacyImportReport {
    pub tenant_id: TenantId,
    pub read: LegacyCounts,
    pub written: LegacyCounts,
    pub rejected: Vec<legacy_import::RejectedRow>,
}

/// Records per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LegacyCounts {
    pub storms: u64,
    pub properties: u64,
    pub journeys: u64,
    pub uplift_scores: u64,
    pub experiments: u64,
}

impl LegacyCounts {
    pub fn total(&self) -> u64 {
        self.storms + self.properties + self.journeys + self.uplift_scores + self.experiments
    }
}

/// `tenant import-legacy` on an open control pool: reads and validates the SQLite file, refuses (writing
/// nothing) when rows were rejected unless `allow_partial`, then writes the records the tenant does not
/// have yet through the server-store writers (properties and journeys through the bulk import writers) in
/// one tenant transaction. Ids are deterministic, so a re-run writes nothing.
pub async fn import_legacy_with(
    pool: &ControlPool,
    tenant: &str,
    file: &std::path::Path,
    allow_partial: bool,
) -> Result<LegacyImportReport, CommandError> {
    let now = Timestamp(now_ms());
    let mut ctl = pool.begin().await?;
    let found = ctl
        .find_tenant_by_slug(tenant)
        .await?
        .ok_or_else(|| CommandError {
            code: "tenant_not_found",
            message: format!("no tenant with slug '{tenant}'"),
        })?;
    ctl.commit().await?;
    if found.status != domain::TenantStatus::Active {
        return Err(CommandError {
            code: "tenant_not_active",
            message: format!(
                "tenant '{tenant}' is {}: reactivate it before importing",
                found.status.as_str()
            ),
        });
    }
    let mut tx = pool.begin_tenant(found.id).await?;
    let admin = tx.first_admin().await?.ok_or_else(|| CommandError {
        code: "no_admin",
        message: format!("tenant '{tenant}' has no enabled admin to attribute the history to"),
    })?;
    let identity = legacy_import::ImportIdentity::for_user(found.id, admin);
    let path = file.to_path_buf();
    let data =
        tokio::task::spawn_blocking(move || legacy_import::read_legacy(&path, &identity, now))
            .await
            .map_err(|e| CommandError {
                code: "legacy_unreadable",
                message: e.to_string(),
            })?
            .map_err(|e| CommandError {
                code: e.code(),
                message: e.to_string(),
            })?;
    let read = LegacyCounts {
        storms: data.storms.len() as u64,
        properties: data.properties.len() as u64,
        journeys: data.touches.len() as u64,
        uplift_scores: data.scores.len() as u64,
        experiments: data.experiments.len() as u64,
    };
    if !data.rejected.is_empty() && !allow_partial {
        let listed: Vec<String> = data
            .rejected
            .iter()
            .take(20)
            .map(|r| format!("{} {}: {}", r.table, r.old_id, r.reason))
            .collect();
        return Err(CommandError {
            code: "legacy_rows_rejected",
            message: format!(
                "{} rows failed validation and nothing was imported (pass --allow-partial to import the other {}):\n{}{}",
                data.rejected.len(),
                read.total(),
                listed.join("\n"),
                if data.rejected.len() > listed.len() {
                    "\n…"
                } else {
                    ""
                }
            ),
        });
    }
    let hlc = domain::Hlc::new(u64::try_from(now.0).unwrap_or(0), 0, 0);
    let mut written = LegacyCounts::default();

    let ids: Vec<uuid::Uuid> = data.storms.iter().map(|s| s.id.0).collect();
    let have = tx.existing_ids("storms", &ids).await?;
    let storms: Vec<_> = data
        .storms
        .iter()
        .filter(|s| !have.contains(&s.id.0))
        .cloned()
        .collect();
    written.storms = tx.upsert_storms(&storms, hlc, now).await?;

    // Properties the tenant already has are skipped (ON CONFLICT DO NOTHING), never updated.
    written.properties = tx.insert_new_properties(&data.properties, hlc, now).await?;

    for experiment in &data.experiments {
        if tx.insert_experiment(experiment, now).await? {
            written.experiments += 1;
        }
    }
    written.journeys = tx.insert_journey_touches(&data.touches, now).await?;

    let ids: Vec<uuid::Uuid> = data.scores.iter().map(|s| s.property_id.0).collect();
    let have = tx.existing_ids("uplift_scores", &ids).await?;
    let scores: Vec<_> = data
        .scores
        .iter()
        .filter(|s| !have.contains(&s.property_id.0))
        .cloned()
        .collect();
    written.uplift_scores = tx.upsert_uplift_scores(&scores, now).await?;

    let file_name = file
        .file_name()
        .map(|n| n.to_string_lossy().chars().take(80).collect::<String>())
        .unwrap_or_default();
    operator_audit(
        &mut tx,
        "tenant.import_legacy",
        format!(
            "legacy:{file_name}; {} written, {} rejected",
            written.total(),
            data.rejected.len()
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(LegacyImportReport {
        tenant_id: found.id,
        read,
        written,
        rejected: data.rejected,
    })
}

/// `tenant import-legacy`.
pub async fn import_legacy(
    url: &str,
    tenant: &str,
    file: &std::path::Path,
    allow_partial: bool,
) -> Result<LegacyImportReport, CommandError> {
    let pool = control(url).await?;
    let result = import_legacy_with(&pool, tenant, file, allow_partial).await;
    pool.close().await;
    result
}

/// `user list`.
pub async fn list_users(
    url: &str,
    slug: &str,
) -> Result<Vec<server_store::DirectoryUser>, CommandError> {
    let pool = control(url).await?;
    let mut tx = tenant_tx(&pool, slug).await?;
    let users = tx.list_directory_users().await?;
    tx.commit().await?;
    pool.close().await;
    Ok(users)
}

/// `crew add`.
pub async fn add_crew(
    url: &str,
    slug: &str,
    name: &str,
    chief: Option<UserId>,
) -> Result<CrewId, CommandError> {
    let pool = control(url).await?;
    let mut tx = tenant_tx(&pool, slug).await?;
    let crew = Crew {
        id: CrewId::generate(),
        name: name.trim().to_owned(),
        chief_id: chief,
    };
    tx.add_crew(&crew, Timestamp(now_ms())).await?;
    operator_audit(&mut tx, "crew.create", format!("crew:{}", crew.id)).await?;
    tx.commit().await?;
    pool.close().await;
    Ok(crew.id)
}

/// `crew list`.
pub async fn list_crews(url: &str, slug: &str) -> Result<Vec<Crew>, CommandError> {
    let pool = control(url).await?;
    let mut tx = tenant_tx(&pool, slug).await?;
    let crews = tx.list_crews().await?;
    tx.commit().await?;
    pool.close().await;
    Ok(crews)
}
