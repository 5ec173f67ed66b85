//! The office's directory on [`TenantTx`]: list users and crews, change a user's role or crew, disable a
//! user (it can no longer sign in; its devices and tokens are revoked), and the audit-log query with
//! filters and keyset paging. Role rules are the HTTP layer's; the one rule kept here is that a tenant
//! never loses its last enabled admin.

use domain::{AuditEntry, AuditId, Crew, CrewId, DeviceId, Role, Timestamp, User, UserId};
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
