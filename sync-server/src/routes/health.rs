//! Liveness, readiness, metrics, the OpenAPI document and the version handshake.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use sync_protocol::{
    ErrorCode, HelloRequest, HelloResponse, MAX_PULL_LIMIT, MAX_PUSH_CHANGES, MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
};

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::{AppState, now_ms};

/// Capabilities this server offers; clients adapt to the list.
pub const CAPABILITIES: &[&str] = &[
    "push.batch_all_or_nothing",
    "pull.commit_order_cursor",
    "gzip",
    "zstd",
    "scores.provenance",
];

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the database answers and its migrations match this build.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state
        .app
        .ping()
        .await
        .map_err(|e| ApiError::unavailable("readiness: database", &e))?;
    let status = server_store::migrations_current(&state.app)
        .await
        .map_err(|e| ApiError::unavailable("readiness: migrations", &e))?;
    if !status.is_current() {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "the database schema does not match this server build; run `stormops-server db init`",
        )
        .with_details(json!({ "applied": status.applied, "embedded": status.embedded })));
    }
    Ok(Json(json!({ "status": "ready" })))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let stats = state.app.stats();
    // A database that cannot answer leaves the lag out; the scrape itself still succeeds.
    let lag = state.app.pull_horizon_lag_secs().await.ok();
    let body = state.metrics.render_with(&crate::metrics::ScrapeGauges {
        pool: Some(crate::metrics::PoolGauge {
            open: stats.open,
            idle: stats.idle,
            max: stats.max,
        }),
        pull_horizon_lag_seconds: lag,
    });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

pub async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}

pub async fn hello(ApiJson(hello): ApiJson<HelloRequest>) -> Result<Json<HelloResponse>, ApiError> {
    if hello.protocol_version < MIN_PROTOCOL_VERSION {
        return Err(ApiError::new(
            ErrorCode::UpgradeRequired,
            format!(
                "StormOps Field {} speaks sync protocol {}, but this server needs {MIN_PROTOCOL_VERSION} or later: update the app (offline work is kept and syncs after the update)",
                hello.client_version.chars().take(32).collect::<String>(),
                hello.protocol_version
            ),
        ));
    }
    Ok(Json(HelloResponse {
        server_version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol_version: PROTOCOL_VERSION,
        min_protocol_version: MIN_PROTOCOL_VERSION,
        capabilities: CAPABILITIES.iter().map(|c| (*c).to_owned()).collect(),
        max_push_changes: MAX_PUSH_CHANGES,
        max_pull_limit: MAX_PULL_LIMIT,
        max_clock_skew_ms: sync_protocol::MAX_CLOCK_SKEW_MS,
        server_time_ms: now_ms(),
    }))
}
