//! Sign-in and tokens: login (registers the device on first login), refresh (rotation with reuse
//! detection), logout, who-am-I, and device revocation. Every step leaves an audit entry.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use domain::{
    AuditEntry, AuditId, DeviceId, DeviceStatus, Role, TenantId, TenantStatus, Timestamp, UserId,
};
use serde_json::{Value, json};
use server_store::{NewRefreshToken, RotateOutcome, TenantTx};
use sync_protocol::{ErrorCode, LoginRequest, RefreshRequest, TokenPair};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::auth::identity::{Identity, check_tenant_and_device};
use crate::auth::password;
use crate::auth::token::{Claims, new_refresh_token, refresh_token_hash, refresh_token_tenant};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::metrics::Metrics;
use crate::state::{AppState, now_ms};

fn invalid_credentials() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidCredentials,
        "the account, email or password is not right",
    )
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(128).collect())
}

/// Appends an audit entry in the request's transaction.
pub async fn audit(
    tx: &mut TenantTx,
    actor: Option<UserId>,
    device: Option<DeviceId>,
    action: &str,
    target: String,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let now = Timestamp(now_ms());
    let entry = AuditEntry {
        id: AuditId::generate(),
        actor,
        action: action.to_owned(),
        target,
        device_id: device,
        request_id: request_id(headers),
        at: now,
    };
    tx.insert_audit(&entry, now).await?;
    Ok(())
}

/// At most one password verification per core at a time, first come first served: a burst of sign-ins
/// is then answered in order, instead of every verification slowing down together until all time out.
fn verification_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    })
}

/// Verifies a password off the async runtime (PBKDF2 takes a few hundred milliseconds of CPU).
async fn verify_password(password: Zeroizing<String>, stored: Option<String>) -> bool {
    // The semaphore is never closed; if it were, verifying without a slot is still correct.
    let _slot = verification_slots().acquire().await;
    tokio::task::spawn_blocking(move || match stored {
        Some(hash) => password::verify_password(&password, &hash),
        None => {
            // Spend the same time on an unknown account as on a wrong password.
            let _ = password::verify_password(&password, password::decoy_hash());
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// Issues an access token and a new refresh token (a new family, or `family` when rotating).
async fn issue_tokens(
    state: &AppState,
    tx: &mut TenantTx,
    claims_base: (TenantId, UserId, DeviceId, Role, Option<domain::CrewId>),
    rotate_from: Option<Uuid>,
    family: Option<Uuid>,
) -> Result<TokenPair, ApiError> {
    let (tenant_id, user_id, device_id, role, crew_id) = claims_base;
    let now = now_ms();
    let claims = Claims {
        tenant_id,
        user_id,
        device_id,
        role,
        crew_id,
        issued_at_ms: now,
        expires_at_ms: now + state.settings.access_ttl_ms,
    };
    let access_token = state.tokens.issue(&claims);
    let (refresh_token, token_hash) =
        new_refresh_token(tenant_id).map_err(|e| ApiError::internal("token randomness", &e))?;
    let record = NewRefreshToken {
        id: Uuid::now_v7(),
        family_id: family.unwrap_or_else(Uuid::now_v7),
        token_hash,
        user_id,
        device_id,
        issued_at: Timestamp(now),
        expires_at: Timestamp(now + state.settings.refresh_ttl_ms),
    };
    match rotate_from {
        Some(old) => {
            if tx
                .rotate_refresh_token(old, &record, Timestamp(now))
                .await?
                == RotateOutcome::ReuseDetected
            {
                tx.revoke_token_family(record.family_id, Timestamp(now))
                    .await?;
                return Err(ApiError::new(
                    ErrorCode::TokenInvalid,
                    "this refresh token was already used; sign in again",
                ));
            }
        }
        None => tx.insert_refresh_token(&record).await?,
    }
    Ok(TokenPair {
        access_token,
        access_expires_at_ms: claims.expires_at_ms,
        refresh_token,
        tenant_id,
        user_id,
        device_id,
        role,
    })
}

fn check_login_shape(req: &LoginRequest) -> Result<(), ApiError> {
    let too_long = |what: &str, max: usize| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("{what} is longer than {max} characters"),
        )
    };
    if req.tenant_slug.len() > 63 {
        return Err(too_long("tenant_slug", 63));
    }
    if req.email.len() > 256 {
        return Err(too_long("email", 256));
    }
    if req.password.len() > 1024 {
        return Err(too_long("password", 1024));
    }
    // PostgreSQL text cannot hold NUL: refuse it here rather than fail in the database with a 500.
    if [
        &req.tenant_slug,
        &req.email,
        &req.password,
        &req.device_name,
    ]
    .iter()
    .any(|v| v.contains('\0'))
    {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "the sign-in fields must not contain NUL characters",
        ));
    }
    if req.device_name.trim().is_empty() || req.device_name.chars().count() > 256 {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "device_name must be 1 to 256 characters",
        ));
    }
    Ok(())
}

/// `POST /v1/auth/login`.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    check_login_shape(&req)?;
    let password = Zeroizing::new(req.password.clone());
    let mut control = state.control.begin().await?;
    let tenant = control.find_tenant_by_slug(req.tenant_slug.trim()).await?;
    control.commit().await?;
    let Some(tenant) = tenant.filter(|t| t.status != TenantStatus::Deleted) else {
        verify_password(password, None).await;
        Metrics::add(&state.metrics.logins_failed, 1);
        return Err(invalid_credentials());
    };
    let mut tx = state.app.begin_tenant(tenant.id).await?;
    let credentials = tx.find_user_by_email(req.email.trim()).await?;
    // No pooled connection is held across PBKDF2 (hundreds of ms of CPU): a burst of sign-ins would
    // otherwise hold every connection and starve sync requests until acquisition timed out (503).
    tx.commit().await?;
    let stored = credentials.as_ref().map(|c| c.password_hash.clone());
    if !verify_password(password, stored).await {
        Metrics::add(&state.metrics.logins_failed, 1);
        if let Some(c) = &credentials {
            let mut tx = state.app.begin_tenant(tenant.id).await?;
            audit(
                &mut tx,
                Some(c.user.id),
                Some(req.device_id),
                "auth.login_failed",
                format!("user:{}", c.user.id),
                &headers,
            )
            .await?;
            tx.commit().await?;
        }
        return Err(invalid_credentials());
    }
    let Some(credentials) = credentials else {
        return Err(invalid_credentials());
    };
    if tenant.status == TenantStatus::Suspended {
        return Err(ApiError::new(
            ErrorCode::TenantSuspended,
            "this account is suspended: sign-in and sync are paused, and its data is kept; contact the operator",
        ));
    }
    let user = credentials.user;
    let mut tx = state.app.begin_tenant(tenant.id).await?;
    // A device's first sign-in registers it: audited on its own, apart from the login.
    let first_sign_in = tx.device(req.device_id).await?.is_none();
    let device = tx
        .register_or_get_device(
            req.device_id,
            user.id,
            req.device_name.trim(),
            Timestamp(now_ms()),
        )
        .await?;
    if device.status == DeviceStatus::Revoked {
        return Err(ApiError::new(
            ErrorCode::DeviceRevoked,
            "this device was revoked by an administrator; it cannot sign in",
        ));
    }
    let pair = issue_tokens(
        &state,
        &mut tx,
        (tenant.id, user.id, device.id, user.role, user.crew_id),
        None,
        None,
    )
    .await?;
    if first_sign_in {
        audit(
            &mut tx,
            Some(user.id),
            Some(device.id),
            "device.register",
            format!("device:{}", device.id),
            &headers,
        )
        .await?;
    }
    audit(
        &mut tx,
        Some(user.id),
        Some(device.id),
        "auth.login",
        format!("device:{}", device.id),
        &headers,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(pair))
}

fn check_refresh_shape(req: &RefreshRequest) -> Result<TenantId, ApiError> {
    refresh_token_tenant(&req.refresh_token).ok_or_else(|| {
        ApiError::new(
            ErrorCode::TokenInvalid,
            "the refresh token is not valid; sign in again",
        )
    })
}

/// `POST /v1/auth/refresh`: rotates the refresh token. Presenting a used one revokes its whole family
/// (a stolen token is useless once either party has used it).
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let tenant_id = check_refresh_shape(&req)?;
    let now = Timestamp(now_ms());
    let mut tx = state.app.begin_tenant(tenant_id).await?;
    let Some(record) = tx
        .find_refresh_token(&refresh_token_hash(&req.refresh_token))
        .await?
    else {
        return Err(ApiError::new(
            ErrorCode::TokenInvalid,
            "the refresh token is not valid; sign in again",
        ));
    };
    // A revoked device or suspended tenant is said first, even though revocation also ended the
    // device's tokens: the laptop must learn it was revoked (and wipe itself), not merely sign in again.
    let device_check = Claims {
        tenant_id,
        user_id: record.user_id,
        device_id: record.device_id,
        role: Role::Viewer,
        crew_id: None,
        issued_at_ms: 0,
        expires_at_ms: 0,
    };
    check_tenant_and_device(&mut tx, &device_check).await?;
    if record.used_at.is_some() {
        tx.revoke_token_family(record.family_id, now).await?;
        audit(
            &mut tx,
            Some(record.user_id),
            Some(record.device_id),
            "auth.refresh_reuse",
            format!("family:{}", record.family_id),
            &headers,
        )
        .await?;
        tx.commit().await?;
        return Err(ApiError::new(
            ErrorCode::TokenInvalid,
            "this refresh token was already used; sign in again",
        ));
    }
    if record.revoked_at.is_some() {
        return Err(ApiError::new(
            ErrorCode::TokenInvalid,
            "this sign-in was ended; sign in again",
        ));
    }
    if now >= record.expires_at {
        return Err(ApiError::new(
            ErrorCode::TokenExpired,
            "the sign-in has expired; sign in again (work done offline is kept)",
        ));
    }
    let user = tx.find_user(record.user_id).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::TokenInvalid,
            "the user of this token no longer exists",
        )
    })?;
    let claims = Claims {
        tenant_id,
        user_id: user.id,
        device_id: record.device_id,
        role: user.role,
        crew_id: user.crew_id,
        issued_at_ms: 0,
        expires_at_ms: 0,
    };
    check_tenant_and_device(&mut tx, &claims).await?;
    let pair = issue_tokens(
        &state,
        &mut tx,
        (
            tenant_id,
            user.id,
            record.device_id,
            user.role,
            user.crew_id,
        ),
        Some(record.id),
        Some(record.family_id),
    )
    .await?;
    audit(
        &mut tx,
        Some(user.id),
        Some(record.device_id),
        "auth.refresh",
        format!("family:{}", record.family_id),
        &headers,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(pair))
}

/// `POST /v1/auth/logout`: ends the sign-in (the token's family). Unknown tokens answer the same, so
/// logout reveals nothing.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = check_refresh_shape(&req)?;
    let mut tx = state.app.begin_tenant(tenant_id).await?;
    if let Some(record) = tx
        .find_refresh_token(&refresh_token_hash(&req.refresh_token))
        .await?
    {
        tx.revoke_token_family(record.family_id, Timestamp(now_ms()))
            .await?;
        audit(
            &mut tx,
            Some(record.user_id),
            Some(record.device_id),
            "auth.logout",
            format!("family:{}", record.family_id),
            &headers,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Json(json!({ "status": "signed_out" })))
}

/// `GET /v1/me`.
pub async fn me(
    State(state): State<AppState>,
    identity: Identity,
) -> Result<Json<Value>, ApiError> {
    let mut tx = identity.begin(&state).await?;
    let tenant = tx.tenant().await?;
    let user = tx.find_user(identity.0.user_id).await?;
    tx.commit().await?;
    Ok(Json(json!({
        "tenant": tenant.map(|t| json!({ "id": t.id, "name": t.name, "slug": t.slug, "plan": t.plan })),
        "user": user,
        "device_id": identity.0.device_id,
        "role": identity.0.role,
        "access_expires_at_ms": identity.0.expires_at_ms,
    })))
}

/// `POST /v1/devices/{device_id}/revoke` (admin): the device's tokens stop working at once, and the
/// laptop wipes its tenant file when it next reaches the server.
pub async fn revoke_device(
    State(state): State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    Path(device_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&[Role::Admin], "revoke devices")?;
    let device_id = Uuid::try_parse(&device_id).map(DeviceId).map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidUuid,
            "the device id in the path is not a UUID",
        )
    })?;
    let mut tx = identity.begin(&state).await?;
    let now = Timestamp(now_ms());
    if tx.device(device_id).await?.is_none() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "no such device in this account",
        ));
    }
    tx.revoke_device(device_id, now).await?;
    tx.revoke_device_tokens(device_id, now).await?;
    audit(
        &mut tx,
        Some(identity.0.user_id),
        Some(identity.0.device_id),
        "device.revoke",
        format!("device:{device_id}"),
        &headers,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({ "status": "revoked", "device_id": device_id })))
}
