//! Who is calling: the bearer token verified into `Identity`, then — inside the request's one tenant
//! transaction — the checks that need the database: the tenant is active and the device not revoked.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use domain::{DeviceStatus, PlanTier, Role, TenantStatus};
use server_store::TenantTx;
use sync_protocol::ErrorCode;

use crate::auth::token::{Claims, TokenError};
use crate::error::ApiError;
use crate::metrics::PlanLabel;
use crate::state::{AppState, now_ms};

/// A verified access token.
#[derive(Debug, Clone)]
pub struct Identity(pub Claims);

impl FromRequestParts<AppState> for Identity {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthenticated,
                "sign in first: this request needs `Authorization: Bearer <access token>`",
            )
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::TokenInvalid,
                    "the Authorization header must be `Bearer <access token>`",
                )
            })?;
        match state.tokens.verify(token.trim(), now_ms()) {
            Ok(claims) => Ok(Identity(claims)),
            Err(TokenError::Expired) => Err(ApiError::new(
                ErrorCode::TokenExpired,
                "the access token has expired; refresh it",
            )),
            Err(_) => Err(ApiError::new(
                ErrorCode::TokenInvalid,
                "the access token is not valid",
            )),
        }
    }
}

impl Identity {
    /// Refuses unless the caller's role is one of `allowed`.
    pub fn require_role(&self, allowed: &[Role], action: &str) -> Result<(), ApiError> {
        if allowed.contains(&self.0.role) {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "a {} cannot {action}",
                self.0.role.as_str().replace('_', " ")
            ),
        ))
    }

    /// Opens the request's tenant transaction and checks the tenant is active and the device is not revoked.
    pub async fn begin(&self, state: &AppState) -> Result<TenantTx, ApiError> {
        Ok(self.begin_with_plan(state).await?.0)
    }

    /// [`Identity::begin`], also giving the tenant's plan as a metrics label. The plan comes with the
    /// tenant row the status check reads anyway, and is remembered for the rate-limit layer, which labels
    /// this tenant's responses with it (no query of its own).
    pub async fn begin_with_plan(
        &self,
        state: &AppState,
    ) -> Result<(TenantTx, PlanLabel), ApiError> {
        let mut tx = state.app.begin_tenant(self.0.tenant_id).await?;
        let plan = check_tenant_and_device(&mut tx, &self.0).await?;
        state.limiter.note_plan(self.0.tenant_id, plan);
        Ok((tx, PlanLabel(Some(plan))))
    }
}

/// The tenant must be active and the device registered and not revoked. Returns the tenant's plan.
pub async fn check_tenant_and_device(
    tx: &mut TenantTx,
    claims: &Claims,
) -> Result<PlanTier, ApiError> {
    let tenant = tx.tenant().await?;
    let plan = tenant.as_ref().map(|t| t.plan);
    match tenant.map(|t| t.status) {
        Some(TenantStatus::Active) => {}
        Some(TenantStatus::Suspended) => {
            return Err(ApiError::new(
                ErrorCode::TenantSuspended,
                "this account is suspended: sync and the API are paused, and its data is kept; contact the operator",
            ));
        }
        Some(TenantStatus::Deleted) | None => {
            return Err(ApiError::new(
                ErrorCode::TokenInvalid,
                "the account of this token no longer exists",
            ));
        }
    }
    match (tx.device_status(claims.device_id).await?, plan) {
        (Some(DeviceStatus::Active), Some(plan)) => Ok(plan),
        (Some(DeviceStatus::Revoked), _) => Err(ApiError::new(
            ErrorCode::DeviceRevoked,
            "this device was revoked by an administrator",
        )),
        (None, _) | (Some(DeviceStatus::Active), None) => Err(ApiError::new(
            ErrorCode::TokenInvalid,
            "the device of this token is not registered",
        )),
    }
}
