//! The tenant admin's audit log: `GET /v1/admin/audit` (filters `since`, `until` in Unix ms, `action`,
//! `user`; newest first; `limit` up to 1,000 and a `cursor` for the next page) and
//! `GET /v1/admin/audit/export` (the same filters, every matching entry, `format=csv` or `format=jsonl`).
//! Admins only: the log names every user's sign-ins and devices.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use domain::{AuditEntry, AuditId, Role, Timestamp, UserId};
use serde::Deserialize;
use serde_json::{Value, json};
use server_store::AuditQuery;
use sync_protocol::ErrorCode;
use uuid::Uuid;

use crate::auth::identity::Identity;
use crate::error::ApiError;
use crate::state::AppState;

/// The most entries one export answers (a larger log is exported in time windows).
const EXPORT_MAX: usize = 1_000_000;
const PAGE: u32 = 1_000;

/// Query parameters of both routes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub action: Option<String>,
    pub user: Option<Uuid>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub format: Option<String>,
}

fn bad_query(rejection: QueryRejection) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRequest,
        format!(
            "the query string does not match (since, until: Unix ms; action; user: UUID; limit; cursor; format): {}",
            rejection.body_text()
        ),
    )
}

fn parse_cursor(text: &str) -> Result<(Timestamp, AuditId), ApiError> {
    let bad = || {
        ApiError::new(
            ErrorCode::InvalidRequest,
            "the cursor is not one this server issued",
        )
    };
    let (at, id) = text.split_once('_').ok_or_else(bad)?;
    let at: i64 = at.parse().map_err(|_| bad())?;
    let id = Uuid::try_parse(id).map_err(|_| bad())?;
    Ok((Timestamp(at), AuditId(id)))
}

fn query_of(params: &AuditParams, limit: u32) -> Result<AuditQuery, ApiError> {
    if let (Some(since), Some(until)) = (params.since, params.until)
        && since > until
    {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "since is after until",
        ));
    }
    Ok(AuditQuery {
        since: params.since.map(Timestamp),
        until: params.until.map(Timestamp),
        action: params.action.clone().filter(|a| !a.is_empty()),
        actor: params.user.map(UserId),
        after: params.cursor.as_deref().map(parse_cursor).transpose()?,
        limit,
    })
}

fn cursor_of(entry: &AuditEntry) -> String {
    format!("{}_{}", entry.at.0, entry.id.0)
}

/// `GET /v1/admin/audit`: one page, newest first, with `next_cursor` while more remain.
pub async fn query(
    State(state): State<AppState>,
    identity: Identity,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&[Role::Admin], "read the audit log")?;
    let Query(params) = params.map_err(bad_query)?;
    let limit = params.limit.unwrap_or(100).clamp(1, PAGE);
    let query = query_of(&params, limit)?;
    let mut tx = identity.begin(&state).await?;
    let entries = tx.query_audit(&query).await?;
    tx.commit().await?;
    let next_cursor = (entries.len() == limit as usize)
        .then(|| entries.last().map(cursor_of))
        .flatten();
    Ok(Json(
        json!({ "entries": entries, "next_cursor": next_cursor }),
    ))
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// `GET /v1/admin/audit/export`: every matching entry as CSV (default) or JSON lines.
pub async fn export(
    State(state): State<AppState>,
    identity: Identity,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    identity.require_role(&[Role::Admin], "export the audit log")?;
    let Query(params) = params.map_err(bad_query)?;
    let jsonl = match params.format.as_deref().unwrap_or("csv") {
        "csv" => false,
        "jsonl" => true,
        other => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "format '{}' is not csv or jsonl",
                    other.chars().take(16).collect::<String>()
                ),
            ));
        }
    };
    let mut query = query_of(&params, PAGE)?;
    // One transaction: the export is one consistent view of the log.
    let mut tx = identity.begin(&state).await?;
    let mut body = String::new();
    if !jsonl {
        body.push_str("id,at,actor,action,target,device_id,request_id\n");
    }
    let mut written = 0usize;
    loop {
        let page = tx.query_audit(&query).await?;
        for entry in &page {
            if jsonl {
                let line = serde_json::to_string(entry)
                    .map_err(|e| ApiError::internal("audit export", &e))?;
                body.push_str(&line);
                body.push('\n');
            } else {
                let fields = [
                    entry.id.0.to_string(),
                    entry.at.0.to_string(),
                    entry.actor.map(|a| a.0.to_string()).unwrap_or_default(),
                    csv_field(&entry.action),
                    csv_field(&entry.target),
                    entry.device_id.map(|d| d.0.to_string()).unwrap_or_default(),
                    csv_field(entry.request_id.as_deref().unwrap_or("")),
                ];
                body.push_str(&fields.join(","));
                body.push('\n');
            }
        }
        written += page.len();
        match page.last() {
            Some(last) if page.len() == PAGE as usize && written < EXPORT_MAX => {
                query.after = Some((last.at, last.id));
            }
            _ => break,
        }
    }
    tx.commit().await?;
    let (content_type, file) = if jsonl {
        ("application/x-ndjson", "audit.jsonl")
    } else {
        ("text/csv; charset=utf-8", "audit.csv")
    };
    Ok((
        [
            (CONTENT_TYPE, content_type.to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// The OpenAPI entries of the audit routes (merged into `crate::openapi::document`).
pub fn openapi_paths() -> Value {
    let params = json!([
        { "name": "since", "in": "query", "schema": { "type": "integer" }, "description": "entries at or after this Unix ms" },
        { "name": "until", "in": "query", "schema": { "type": "integer" }, "description": "entries before this Unix ms" },
        { "name": "action", "in": "query", "schema": { "type": "string" } },
        { "name": "user", "in": "query", "schema": { "type": "string", "format": "uuid" } },
        { "name": "limit", "in": "query", "schema": { "type": "integer", "maximum": 1000 } },
        { "name": "cursor", "in": "query", "schema": { "type": "string" } },
        { "name": "format", "in": "query", "schema": { "type": "string", "enum": ["csv", "jsonl"] } }
    ]);
    json!({
        "/v1/admin/audit": { "get": {
            "summary": "The tenant's audit log, newest first, filtered and paged (admins only).",
            "parameters": params,
            "security": [{ "bearer": [] }],
            "responses": { "200": { "description": "entries and next_cursor", "content": { "application/json": { "schema": { "type": "object", "properties": {
                "entries": { "type": "array", "items": { "type": "object" } }, "next_cursor": { "type": ["string", "null"] } } } } } },
                "400": { "description": "invalid_request: a parameter does not parse" },
                "401": { "description": "no or bad token" },
                "403": { "description": "forbidden (not an admin) or tenant_suspended" } }
        } },
        "/v1/admin/audit/export": { "get": {
            "summary": "Every matching audit entry as CSV (default) or JSON lines (admins only).",
            "parameters": params,
            "security": [{ "bearer": [] }],
            "responses": { "200": { "description": "the export", "content": { "text/csv": {}, "application/x-ndjson": {} } },
                "400": { "description": "invalid_request: a parameter does not parse" },
                "401": { "description": "no or bad token" },
                "403": { "description": "forbidden (not an admin) or tenant_suspended" } }
        } }
    })
}
