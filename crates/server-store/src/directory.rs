//! The office's directory on [`TenantTx`]: list users and crews, change a user's role or crew, disable a
//! user (it can no longer sign in; its devices and tokens are revoked), and the audit-log query with
//! filters and keyset paging, and each laptop's sync health (what the server saw of its pushes and pulls,
//! recorded by the sync handlers). Role rules are the HTTP layer's; the one rule kept here is that a
//! tenant never loses its last enabled admin.

use domain::{
    AuditEntry, AuditId, Crew, CrewId, DeviceId, DeviceStatus, Role, Timestamp, User, UserId,
};
use uuid::Uuid;

use crate::error::StoreError;
use crate::rows::parse_text;
use crate::tx::TenantTx;

/// A user as the office sees it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DirectoryUser {
    #[serde(flatten)]
    pub user: User,
    pub created_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
}

/// A change to a user: each `Some` field is set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserChange {
    pub role: Option<Role>,
    /// `Some(None)` takes the user out of any crew.
    pub crew_id: Option<Option<CrewId>>,
    /// `Some(true)` disables the user.
    pub disable: Option<bool>,
}

/// Filters and page of an audit query, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Entries at or after this time.
    pub since: Option<Timestamp>,
    /// Entries before this time.
    pub until: Option<Timestamp>,
    pub action: Option<String>,
    pub actor: Option<UserId>,
    /// Resume after this entry (the last of the previous page).
    pub after: Option<(Timestamp, AuditId)>,
    pub limit: u32,
}

pub use sync_protocol::DeviceSyncHealth;

/// Whose laptops a sync-health query lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceScope {
    /// Every device of the tenant (admins).
    All,
    /// The devices of the crews this user leads, and of its own crew (crew chiefs).
    CrewsOf {
        chief: UserId,
        own_crew: Option<CrewId>,
    },
}

/// A pull records its time at most this often per device, so most pulls write nothing.
const PULL_NOTE_EVERY_MS: i64 = 60_000;

type DeviceHealthRow = (
    Uuid,
    String,
    Uuid,
    String,
    String,
    Option<Uuid>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i32>,
    Option<i64>,
    Option<i64>,
    Option<i32>,
    i64,
);

fn device_health_from_row(
    (
        device_id,
        device_name,
        user_id,
        user_name,
        user_email,
        crew_id,
        status,
        registered_at,
        revoked_at,
        last_push_at,
        last_push_changes,
        last_pull_at,
        last_refused_at,
        last_refused_changes,
        refused_changes_total,
    ): DeviceHealthRow,
) -> Result<DeviceSyncHealth, StoreError> {
    Ok(DeviceSyncHealth {
        device_id: DeviceId(device_id),
        device_name,
        user_id: UserId(user_id),
        user_name,
        user_email,
        crew_id: crew_id.map(CrewId),
        status: parse_text::<DeviceStatus>(&status, "devices.status")?,
        registered_at: Timestamp(registered_at),
        revoked_at: revoked_at.map(Timestamp),
        last_push_at: last_push_at.map(Timestamp),
        last_push_changes,
        last_pull_at: last_pull_at.map(Timestamp),
        last_refused_at: last_refused_at.map(Timestamp),
        last_refused_changes,
        refused_changes_total,
    })
}

type DirectoryRow = (Uuid, String, String, String, Option<Uuid>, i64, Option<i64>);

fn user_from_row(
    (id, email, name, role, crew_id, created_at, disabled_at): DirectoryRow,
) -> Result<DirectoryUser, StoreError> {
    Ok(DirectoryUser {
        user: User {
            id: UserId(id),
            email,
            name,
            role: parse_text::<Role>(&role, "users.role")?,
            crew_id: crew_id.map(CrewId),
        },
        created_at: Timestamp(created_at),
        disabled_at: disabled_at.map(Timestamp),
    })
}

const DIRECTORY_COLUMNS: &str = "id, email, name, role, crew_id, created_at, disabled_at";

type AuditRow = (
    Uuid,
    Option<Uuid>,
    String,
    String,
    Option<Uuid>,
    Option<String>,
    i64,
);

impl TenantTx {
    /// Every user of the tenant, by email.
    pub async fn list_directory_users(&mut self) -> Result<Vec<DirectoryUser>, StoreError> {
        let rows: Vec<DirectoryRow> = sqlx::query_as(&format!(
            "SELECT {DIRECTORY_COLUMNS} FROM users WHERE tenant_id = $1 ORDER BY lower(email)"
        ))
        .bind(self.tenant_id.0)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.into_iter().map(user_from_row).collect()
    }

    pub async fn directory_user(
        &mut self,
        id: UserId,
    ) -> Result<Option<DirectoryUser>, StoreError> {
        let row: Option<DirectoryRow> = sqlx::query_as(&format!(
            "SELECT {DIRECTORY_COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
        ))
        .bind(self.tenant_id.0)
        .bind(id.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(user_from_row).transpose()
    }

    /// Every crew of the tenant, by name.
    pub async fn list_crews(&mut self) -> Result<Vec<Crew>, StoreError> {
        let rows: Vec<(Uuid, String, Option<Uuid>)> = sqlx::query_as(
            "SELECT id, name, chief_id FROM crews WHERE tenant_id = $1 ORDER BY name, id",
        )
        .bind(self.tenant_id.0)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, chief_id)| Crew {
                id: CrewId(id),
                name,
                chief_id: chief_id.map(UserId),
            })
            .collect())
    }

    /// Applies `change` to a user and returns it as it is now. Unknown user: [`StoreError::NotFound`];
    /// unknown crew: [`StoreError::ForeignReference`]; demoting or disabling the last enabled admin:
    /// [`StoreError::Conflict`]. Disabling revokes the user's devices and their refresh tokens.
    pub async fn change_user(
        &mut self,
        id: UserId,
        change: &UserChange,
        now: Timestamp,
    ) -> Result<DirectoryUser, StoreError> {
        let current = self
            .directory_user(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {id}")))?;
        let loses_admin = current.user.role == Role::Admin
            && current.disabled_at.is_none()
            && (change.role.is_some_and(|r| r != Role::Admin) || change.disable == Some(true));
        if loses_admin {
            // Lock the tenant's admins so two concurrent demotions cannot both pass the count.
            let admins: Vec<Uuid> = sqlx::query_scalar(
                "SELECT id FROM users WHERE tenant_id = $1 AND role = 'admin' AND disabled_at IS NULL FOR UPDATE",
            )
            .bind(self.tenant_id.0)
            .fetch_all(&mut *self.tx)
            .await?;
            if admins.len() <= 1 {
                return Err(StoreError::Conflict(
                    "this is the account's last admin: make another user admin first".into(),
                ));
            }
        }
        if let Some(role) = change.role {
            sqlx::query("UPDATE users SET role = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant_id.0)
                .bind(id.0)
                .bind(role.as_str())
                .execute(&mut *self.tx)
                .await?;
        }
        if let Some(crew) = change.crew_id {
            sqlx::query("UPDATE users SET crew_id = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant_id.0)
                .bind(id.0)
                .bind(crew.map(|c| c.0))
                .execute(&mut *self.tx)
                .await?;
        }
        match change.disable {
            Some(true) if current.disabled_at.is_none() => {
                sqlx::query("UPDATE users SET disabled_at = $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(self.tenant_id.0)
                    .bind(id.0)
                    .bind(now.0)
                    .execute(&mut *self.tx)
                    .await?;
                let devices: Vec<Uuid> = sqlx::query_scalar(
                    "SELECT id FROM devices WHERE tenant_id = $1 AND user_id = $2 AND status = 'active'",
                )
                .bind(self.tenant_id.0)
                .bind(id.0)
                .fetch_all(&mut *self.tx)
                .await?;
                for device in devices {
                    self.revoke_device(DeviceId(device), now).await?;
                }
            }
            Some(false) => {
                sqlx::query("UPDATE users SET disabled_at = NULL WHERE tenant_id = $1 AND id = $2")
                    .bind(self.tenant_id.0)
                    .bind(id.0)
                    .execute(&mut *self.tx)
                    .await?;
            }
            _ => {}
        }
        self.directory_user(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {id}")))
    }

    /// The audit log, newest first, filtered and paged by `query` (at most 1,000 entries a page).
    pub async fn query_audit(&mut self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, actor, action, target, device_id, request_id, at FROM audit_log
              WHERE tenant_id = $1
                AND ($2::bigint IS NULL OR at >= $2)
                AND ($3::bigint IS NULL OR at < $3)
                AND ($4::text IS NULL OR action = $4)
                AND ($5::uuid IS NULL OR actor = $5)
                AND ($6::bigint IS NULL OR (at, id) < ($6, $7::uuid))
              ORDER BY at DESC, id DESC LIMIT $8",
        )
        .bind(self.tenant_id.0)
        .bind(query.since.map(|t| t.0))
        .bind(query.until.map(|t| t.0))
        .bind(query.action.as_deref())
        .bind(query.actor.map(|a| a.0))
        .bind(query.after.map(|(at, _)| at.0))
        .bind(query.after.map(|(_, id)| id.0))
        .bind(i64::from(query.limit.clamp(1, 1_000)))
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, actor, action, target, device_id, request_id, at)| AuditEntry {
                    id: AuditId(id),
                    actor: actor.map(UserId),
                    action,
                    target,
                    device_id: device_id.map(DeviceId),
                    request_id,
                    at: Timestamp(at),
                },
            )
            .collect())
    }

    /// The sync health of the devices in `scope`, most recently heard from first (a device never heard
    /// from last), read under the tenant's row-level security like every tenant query.
    pub async fn device_sync_health(
        &mut self,
        scope: DeviceScope,
    ) -> Result<Vec<DeviceSyncHealth>, StoreError> {
        let (all, chief, own_crew) = match scope {
            DeviceScope::All => (true, None, None),
            DeviceScope::CrewsOf { chief, own_crew } => {
                (false, Some(chief.0), own_crew.map(|c| c.0))
            }
        };
        let rows: Vec<DeviceHealthRow> = sqlx::query_as(
            "SELECT d.id, d.name, u.id, u.name, u.email, u.crew_id, d.status, d.registered_at, d.revoked_at,
                    d.last_push_at, d.last_push_changes, d.last_pull_at, d.last_refused_at,
                    d.last_refused_changes, d.refused_changes_total
               FROM devices d
               JOIN users u ON u.tenant_id = d.tenant_id AND u.id = d.user_id
              WHERE d.tenant_id = $1
                AND ($2 OR u.crew_id = $4 OR u.crew_id IN
                     (SELECT c.id FROM crews c WHERE c.tenant_id = $1 AND c.chief_id = $3))
              ORDER BY greatest(d.last_push_at, d.last_pull_at, d.last_refused_at) DESC NULLS LAST,
                       lower(u.email), d.id",
        )
        .bind(self.tenant_id.0)
        .bind(all)
        .bind(chief)
        .bind(own_crew)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.into_iter().map(device_health_from_row).collect()
    }

    /// Records an accepted push batch of `changes` changes (duplicates included) from `device`, in the
    /// push's own transaction.
    pub async fn note_device_push(
        &mut self,
        device: DeviceId,
        changes: usize,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE devices SET last_push_at = $3, last_push_changes = $4 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(self.tenant_id.0)
        .bind(device.0)
        .bind(now.0)
        .bind(i32::try_from(changes).unwrap_or(i32::MAX))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records a refused batch from `device` with `refused` refused changes (the batch itself was rolled
    /// back, so this runs in a transaction of its own).
    pub async fn note_device_refused(
        &mut self,
        device: DeviceId,
        refused: usize,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let refused = i32::try_from(refused).unwrap_or(i32::MAX);
        sqlx::query(
            "UPDATE devices SET last_refused_at = $3, last_refused_changes = $4,
                    refused_changes_total = refused_changes_total + $4
              WHERE tenant_id = $1 AND id = $2",
        )
        .bind(self.tenant_id.0)
        .bind(device.0)
        .bind(now.0)
        .bind(refused)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records a pull by `device` when its last recorded pull is a minute old or more; otherwise the
    /// statement matches no row and the pull's transaction stays read-only.
    pub async fn note_device_pull(
        &mut self,
        device: DeviceId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE devices SET last_pull_at = $3
              WHERE tenant_id = $1 AND id = $2 AND (last_pull_at IS NULL OR last_pull_at <= $3 - $4)",
        )
        .bind(self.tenant_id.0)
        .bind(device.0)
        .bind(now.0)
        .bind(PULL_NOTE_EVERY_MS)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The first enabled admin (by creation), to whom imported history is attributed.
    pub async fn first_admin(&mut self) -> Result<Option<UserId>, StoreError> {
        let id: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM users WHERE tenant_id = $1 AND role = 'admin' AND disabled_at IS NULL
              ORDER BY created_at, id LIMIT 1",
        )
        .bind(self.tenant_id.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(id.map(UserId))
    }
}
