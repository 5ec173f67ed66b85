//! Tenant-scoped account operations on [`TenantTx`]: users (with the password hash the caller computed),
//! crews, devices, refresh tokens (stored hashed, rotated within a family, reuse revokes the family) and
//! the append-only audit log. No cryptography happens here: hashes are opaque bytes or text.

use domain::{
    AuditEntry, AuditId, Crew, CrewId, Device, DeviceId, DeviceStatus, Role, Tenant, TenantId,
    Timestamp, User, UserId, Validate,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::control::{TENANT_COLUMNS, TenantRow, tenant_from_row};
use crate::error::StoreError;
use crate::rows::parse_text;
use crate::tx::TenantTx;

/// A user to add, with the password hash computed by the caller (PBKDF2 in the server).
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub crew_id: Option<CrewId>,
    pub password_hash: String,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("crew_id", &self.crew_id)
            .finish_non_exhaustive()
    }
}

impl NewUser {
    pub(crate) fn validate(&self, now: Timestamp) -> Result<(), StoreError> {
        self.as_user().validate(now)?;
        Ok(())
    }

    fn as_user(&self) -> User {
        User {
            id: self.id,
            email: self.email.clone(),
            name: self.name.clone(),
            role: self.role,
            crew_id: self.crew_id,
        }
    }
}

/// A user found for login: the record and its stored password hash.
#[derive(Clone, PartialEq)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: String,
}

impl std::fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCredentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A refresh token to store: only its hash is kept.
#[derive(Clone, PartialEq, Eq)]
pub struct NewRefreshToken {
    pub id: Uuid,
    /// One login's chain of rotations; reuse of a rotated token revokes the family.
    pub family_id: Uuid,
    pub token_hash: Vec<u8>,
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for NewRefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRefreshToken")
            .field("id", &self.id)
            .field("family_id", &self.family_id)
            .field("user_id", &self.user_id)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// A stored refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub id: Uuid,
    pub family_id: Uuid,
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// Set when it was rotated (exchanged for a new one).
    pub used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl RefreshTokenRecord {
    /// Usable now: not rotated, not revoked, not expired.
    pub fn is_usable(&self, now: Timestamp) -> bool {
        self.used_at.is_none() && self.revoked_at.is_none() && now < self.expires_at
    }
}

/// What became of a rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The old token is marked used and the new one stored in the same family.
    Rotated,
    /// The old token was already used or revoked: a stolen token is being replayed. The whole family
    /// is now revoked and no new token was stored; commit so the revocation sticks, and refuse the request.
    ReuseDetected,
}

pub(crate) async fn insert_crew(
    conn: &mut PgConnection,
    tenant: TenantId,
    crew: &Crew,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO crews (tenant_id, id, name, chief_id) VALUES ($1, $2, $3, $4)")
        .bind(tenant.0)
        .bind(crew.id.0)
        .bind(&crew.name)
        .bind(crew.chief_id.map(|c| c.0))
        .execute(conn)
        .await?;
    Ok(())
}

pub(crate) async fn insert_user(
    conn: &mut PgConnection,
    tenant: TenantId,
    user: &NewUser,
    now: Timestamp,
) -> Result<(), StoreError> {
    let result = sqlx::query(
        "INSERT INTO users (tenant_id, id, email, name, role, crew_id, password_hash, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant.0)
    .bind(user.id.0)
    .bind(&user.email)
    .bind(&user.name)
    .bind(user.role.as_str())
    .bind(user.crew_id.map(|c| c.0))
    .bind(&user.password_hash)
    .bind(now.0)
    .execute(conn)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) => match StoreError::from(e) {
            StoreError::Conflict(_) => Err(StoreError::Conflict(format!(
                "a user with email '{}' or id {} exists",
                user.email, user.id
            ))),
            other => Err(other),
        },
    }
}

pub(crate) async fn insert_audit_entry(
    conn: &mut PgConnection,
    tenant: TenantId,
    entry: &AuditEntry,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, id, actor, action, target, device_id, request_id, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant.0)
    .bind(entry.id.0)
    .bind(entry.actor.map(|a| a.0))
    .bind(&entry.action)
    .bind(&entry.target)
    .bind(entry.device_id.map(|d| d.0))
    .bind(&entry.request_id)
    .bind(entry.at.0)
    .execute(conn)
    .await?;
    Ok(())
}

type UserRow = (Uuid, String, String, String, Option<Uuid>, String);
const USER_COLUMNS: &str = "id, email, name, role, crew_id, password_hash";

fn credentials_from_row(
    (id, email, name, role, crew_id, password_hash): UserRow,
) -> Result<UserCredentials, StoreError> {
    Ok(UserCredentials {
        user: User {
            id: UserId(id),
            email,
            name,
            role: parse_text::<Role>(&role, "users.role")?,
            crew_id: crew_id.map(CrewId),
        },
        password_hash,
    })
}

type DeviceRow = (Uuid, Uuid, String, String, i64, Option<i64>);
const DEVICE_COLUMNS: &str = "id, user_id, name, status, registered_at, revoked_at";

fn device_from_row(
    (id, user_id, name, status, registered_at, revoked_at): DeviceRow,
) -> Result<Device, StoreError> {
    Ok(Device {
        id: DeviceId(id),
        user_id: UserId(user_id),
        name,
        status: parse_text::<DeviceStatus>(&status, "devices.status")?,
        registered_at: Timestamp(registered_at),
        revoked_at: revoked_at.map(Timestamp),
    })
}

type TokenRow = (Uuid, Uuid, Uuid, Uuid, i64, i64, Option<i64>, Option<i64>);
const TOKEN_COLUMNS: &str =
    "id, family_id, user_id, device_id, issued_at, expires_at, used_at, revoked_at";

fn token_from_row(
    (id, family_id, user_id, device_id, issued_at, expires_at, used_at, revoked_at): TokenRow,
) -> RefreshTokenRecord {
    RefreshTokenRecord {
        id,
        family_id,
        user_id: UserId(user_id),
        device_id: DeviceId(device_id),
        issued_at: Timestamp(issued_at),
        expires_at: Timestamp(expires_at),
        used_at: used_at.map(Timestamp),
        revoked_at: revoked_at.map(Timestamp),
    }
}

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
    /// This tenant's own row (the application role sees no other).
    pub async fn tenant(&mut self) -> Result<Option<Tenant>, StoreError> {
        let row: Option<TenantRow> = sqlx::query_as(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1"
        ))
        .bind(self.tenant_id.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(tenant_from_row).transpose()
    }

    /// Adds a crew.
    pub async fn add_crew(&mut self, crew: &Crew, now: Timestamp) -> Result<(), StoreError> {
        crew.validate(now)?;
        insert_crew(&mut self.tx, self.tenant_id, crew).await
    }

    /// Adds a user. A taken email (case-insensitive) or id is [`StoreError::Conflict`]; an unknown crew
    /// is [`StoreError::ForeignReference`]; a user beyond the plan's limit is [`StoreError::QuotaExceeded`].
    pub async fn add_user(&mut self, user: &NewUser, now: Timestamp) -> Result<(), StoreError> {
        user.validate(now)?;
        // The plan's user limit is hard: the last seat cannot be taken twice (see `quotas`).
        self.check_new_user().await?;
        insert_user(&mut self.tx, self.tenant_id, user, now).await
    }

    /// The login's second step: the user with this email (case-insensitive) and its password hash. A
    /// disabled user is not found, so it cannot sign in.
    pub async fn find_user_by_email(
        &mut self,
        email: &str,
    ) -> Result<Option<UserCredentials>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND lower(email) = lower($2) AND disabled_at IS NULL"
        ))
        .bind(self.tenant_id.0)
        .bind(email)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(credentials_from_row).transpose()
    }

    pub async fn find_user(&mut self, id: UserId) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(self.tenant_id.0)
        .bind(id.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.map(credentials_from_row).transpose()?.map(|c| c.user))
    }

    /// Registers a device on its first login, or returns the stored one. The caller checks that the
    /// returned device belongs to the user signing in and is not revoked. A new device beyond the plan's
    /// device limit is [`StoreError::QuotaExceeded`].
    pub async fn register_or_get_device(
        &mut self,
        id: DeviceId,
        user_id: UserId,
        name: &str,
        now: Timestamp,
    ) -> Result<Device, StoreError> {
        let candidate = Device {
            id,
            user_id,
            name: name.to_owned(),
            status: DeviceStatus::Active,
            registered_at: now,
            revoked_at: None,
        };
        candidate.validate(now)?;
        // A new device takes a seat of the plan's device limit (hard); a known one signs in as before.
        if self.device(id).await?.is_none() {
            self.check_new_device().await?;
        }
        sqlx::query(
            "INSERT INTO devices (tenant_id, id, user_id, name, status, registered_at) VALUES ($1, $2, $3, $4, 'active', $5)
             ON CONFLICT (tenant_id, id) DO NOTHING",
        )
        .bind(self.tenant_id.0)
        .bind(id.0)
        .bind(user_id.0)
        .bind(name)
        .bind(now.0)
        .execute(&mut *self.tx)
        .await?;
        self.device(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("device {id}")))
    }

    pub async fn device(&mut self, id: DeviceId) -> Result<Option<Device>, StoreError> {
        let row: Option<DeviceRow> = sqlx::query_as(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(self.tenant_id.0)
        .bind(id.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(device_from_row).transpose()
    }

    /// A device's status, or `None` when this tenant has no such device.
    pub async fn device_status(
        &mut self,
        id: DeviceId,
    ) -> Result<Option<DeviceStatus>, StoreError> {
        Ok(self.device(id).await?.map(|d| d.status))
    }

    /// Revokes a device and every refresh token it holds. Returns false when the device is unknown;
    /// revoking twice keeps the first revocation time.
    pub async fn revoke_device(
        &mut self,
        id: DeviceId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let found = sqlx::query(
            "UPDATE devices SET status = 'revoked', revoked_at = coalesce(revoked_at, $3) WHERE tenant_id = $1 AND id = $2",
        )
        .bind(self.tenant_id.0)
        .bind(id.0)
        .bind(now.0)
        .execute(&mut *self.tx)
        .await?
        .rows_affected()
            > 0;
        if found {
            self.revoke_device_tokens(id, now).await?;
        }
        Ok(found)
    }

    pub async fn insert_refresh_token(
        &mut self,
        token: &NewRefreshToken,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (tenant_id, id, family_id, token_hash, user_id, device_id, issued_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(self.tenant_id.0)
        .bind(token.id)
        .bind(token.family_id)
        .bind(&token.token_hash)
        .bind(token.user_id.0)
        .bind(token.device_id.0)
        .bind(token.issued_at.0)
        .bind(token.expires_at.0)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Finds a token by its hash and locks its row until the transaction ends, so two concurrent
    /// refreshes with the same token are serialised (the second sees it used and detects reuse).
    pub async fn find_refresh_token(
        &mut self,
        token_hash: &[u8],
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        let row: Option<TokenRow> =
            sqlx::query_as(&format!("SELECT {TOKEN_COLUMNS} FROM refresh_tokens WHERE tenant_id = $1 AND token_hash = $2 FOR UPDATE"))
                .bind(self.tenant_id.0)
                .bind(token_hash)
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(row.map(token_from_row))
    }

    /// Rotates `old_id`: marks it used and stores `new` in the same family. If `old_id` was already used
    /// or revoked, revokes the whole family instead ([`RotateOutcome::ReuseDetected`]).
    pub async fn rotate_refresh_token(
        &mut self,
        old_id: Uuid,
        new: &NewRefreshToken,
        now: Timestamp,
    ) -> Result<RotateOutcome, StoreError> {
        let family: Option<Uuid> = sqlx::query_scalar(
            "UPDATE refresh_tokens SET used_at = $3
              WHERE tenant_id = $1 AND id = $2 AND used_at IS NULL AND revoked_at IS NULL
              RETURNING family_id",
        )
        .bind(self.tenant_id.0)
        .bind(old_id)
        .bind(now.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        match family {
            Some(family_id) => {
                let new = NewRefreshToken {
                    family_id,
                    ..new.clone()
                };
                self.insert_refresh_token(&new).await?;
                Ok(RotateOutcome::Rotated)
            }
            None => {
                let family_id: Option<Uuid> = sqlx::query_scalar(
                    "SELECT family_id FROM refresh_tokens WHERE tenant_id = $1 AND id = $2",
                )
                .bind(self.tenant_id.0)
                .bind(old_id)
                .fetch_optional(&mut *self.tx)
                .await?;
                let family_id = family_id
                    .ok_or_else(|| StoreError::NotFound(format!("refresh token {old_id}")))?;
                self.revoke_token_family(family_id, now).await?;
                Ok(RotateOutcome::ReuseDetected)
            }
        }
    }

    /// Revokes every token of a family (logout, or detected reuse). Returns how many were revoked now.
    pub async fn revoke_token_family(
        &mut self,
        family_id: Uuid,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query("UPDATE refresh_tokens SET revoked_at = $3 WHERE tenant_id = $1 AND family_id = $2 AND revoked_at IS NULL")
            .bind(self.tenant_id.0)
            .bind(family_id)
            .bind(now.0)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected())
    }

    /// Revokes every token of a device (device revoked or wiped).
    pub async fn revoke_device_tokens(
        &mut self,
        device_id: DeviceId,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query("UPDATE refresh_tokens SET revoked_at = $3 WHERE tenant_id = $1 AND device_id = $2 AND revoked_at IS NULL")
            .bind(self.tenant_id.0)
            .bind(device_id.0)
            .bind(now.0)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected())
    }

    /// Appends an audit entry (the application role cannot change or delete one).
    pub async fn insert_audit(
        &mut self,
        entry: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        entry.validate(now)?;
        insert_audit_entry(&mut self.tx, self.tenant_id, entry).await
    }

    /// The latest audit entries, newest first.
    pub async fn list_audit(&mut self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, actor, action, target, device_id, request_id, at FROM audit_log
              WHERE tenant_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(self.tenant_id.0)
        .bind(i64::from(limit.min(10_000)))
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
}
