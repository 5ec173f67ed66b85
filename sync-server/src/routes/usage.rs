//! `GET /v1/admin/usage`: the tenant's usage against its plan for the office screen — every limit with
//! its status (ok, near, over_soft, at_hard), this month's usage and estimated invoice, and an upgrade
//! recommendation when a limit is pressed. Like every office read: admins, crew chiefs and viewers
//! (owners) read it; field users are refused.

use axum::Json;
use axum::extract::State;
use domain::{Role, Timestamp};
use serde_json::{Value, json};

use crate::auth::identity::Identity;
use crate::error::ApiError;
use crate::state::{AppState, now_ms};

const READERS: [Role; 3] = [Role::Admin, Role::CrewChief, Role::Viewer];

/// `GET /v1/admin/usage`.
pub async fn usage(
    State(state): State<AppState>,
    identity: Identity,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&READERS, "read the account's usage")?;
    let mut tx = identity.begin(&state).await?;
    let slug = tx.tenant().await?.map(|t| t.slug).unwrap_or_default();
    let report = tx.usage_report(&slug, Timestamp(now_ms())).await?;
    tx.commit().await?;
    let warnings: Vec<Value> = report
        .limits
        .iter()
        .filter(|l| l.status == "over_soft" || l.status == "at_hard" || l.status == "near")
        .map(|l| json!({ "limit": l.limit, "status": l.status, "used": l.used, "soft": l.soft, "hard": l.hard, "lifted_by": l.lifted_by }))
        .collect();
    let mut value =
        serde_json::to_value(&report).map_err(|e| ApiError::internal("usage report", &e))?;
    if let Some(map) = value.as_object_mut() {
        map.insert("warnings".into(), Value::Array(warnings));
    }
    Ok(Json(value))
}

/// The OpenAPI path of this route (merged into `crate::openapi::document`).
pub fn openapi_paths() -> Value {
    json!({
        "/v1/admin/usage": { "get": {
            "summary": "Usage against the plan this month: each limit (users, devices, synced events, storage, requests per minute) with used, soft, hard and status (ok, near, over_soft, at_hard), warnings, the estimated invoice and an upgrade recommendation (admins, crew chiefs, viewers).",
            "security": [{ "bearer": [] }],
            "responses": {
                "200": { "description": "plan, month, limits, usage, estimate, recommendation, warnings", "content": { "application/json": { "schema": { "type": "object" } } } },
                "401": { "description": "no or bad token" },
                "403": { "description": "forbidden (field users) or tenant_suspended" }
            }
        } }
    })
}
