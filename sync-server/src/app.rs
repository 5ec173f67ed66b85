//! The router and its layers: request ids, tracing, metrics, body limit, decompression and compression,
//! timeout, the protocol-version gate on sync routes, and JSON 404s. Built by a function so tests drive
//! it in-process exactly as `serve` does.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, patch, post};
use sync_protocol::{ErrorCode, MIN_PROTOCOL_VERSION, PROTOCOL_HEADER, PROTOCOL_VERSION};
use tower::ServiceBuilder;
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::limits::{MAX_BODY_BYTES, REQUEST_TIMEOUT_SECS};
use crate::routes;
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    let sync = Router::new()
        .route("/v1/sync/push", post(routes::sync::push))
        .route("/v1/sync/pull", post(routes::sync::pull))
        .route_layer(middleware::from_fn(protocol_gate));
    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::health::metrics))
        .route("/openapi.json", get(routes::health::openapi))
        .route("/v1/hello", post(routes::health::hello))
        .route("/v1/auth/login", post(routes::auth::login))
        .route("/v1/auth/refresh", post(routes::auth::refresh))
        .route("/v1/auth/logout", post(routes::auth::logout))
        .route("/v1/me", get(routes::auth::me))
        .route(
            "/v1/devices/{device_id}/revoke",
            post(routes::auth::revoke_device),
        )
        .route(
            "/v1/admin/storms/{storm_id}/experiment",
            post(routes::admin::create_experiment).get(routes::admin::experiment_summary),
        )
        .route(
            "/v1/admin/storms/{storm_id}/train",
            post(routes::admin::train),
        )
        .route(
            "/v1/admin/storms/{storm_id}/health",
            get(routes::admin::health),
        )
        .route("/v1/admin/models", get(routes::admin::models))
        .route(
            "/v1/admin/health/thresholds",
            get(routes::admin::health_thresholds).put(routes::admin::set_health_thresholds),
        )
        .route("/v1/admin/usage", get(routes::usage::usage))
        .route(
            "/v1/admin/storms",
            get(routes::office::list_storms).post(routes::office::create_storm),
        )
        .route(
            "/v1/admin/storms/{storm_id}",
            get(routes::office::get_storm).patch(routes::office::update_storm),
        )
        .route(
            "/v1/admin/storms/{storm_id}/territories",
            get(routes::office::list_territories).post(routes::office::create_territory),
        )
        .route(
            "/v1/admin/storms/{storm_id}/properties/import",
            post(routes::office::import_properties),
        )
        .route(
            "/v1/admin/storms/{storm_id}/policy",
            get(routes::office::get_policy).put(routes::office::set_policy),
        )
        .route("/v1/admin/audit", get(routes::audit::query))
        .route("/v1/admin/audit/export", get(routes::audit::export))
        .route(
            "/v1/admin/users",
            get(routes::directory::list_users).post(routes::directory::create_user),
        )
        .route(
            "/v1/admin/users/{user_id}",
            patch(routes::directory::change_user),
        )
        .route("/v1/admin/devices", get(routes::directory::list_devices))
        .route(
            "/v1/admin/crews",
            get(routes::directory::list_crews).post(routes::directory::create_crew),
        )
        .merge(sync)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::rate_limit::enforce,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(TraceLayer::new_for_http())
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::GATEWAY_TIMEOUT,
                    Duration::from_secs(REQUEST_TIMEOUT_SECS),
                ))
                // The fastest level: JSON still shrinks several times over, at a fraction of the CPU of
                // the default level, which on two cores was the largest single cost of busy pulls.
                .layer(CompressionLayer::new().quality(CompressionLevel::Fastest))
                .layer(RequestDecompressionLayer::new()),
        )
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route; see /openapi.json")
}

/// The sync protocol version the client spoke (checked by the gate), for handlers whose answer depends
/// on it: a pull leaves out entities the client's version does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientProtocol(pub u32);

/// Refuses sync requests from clients whose protocol is older than the oldest this server speaks.
async fn protocol_gate(mut request: Request, next: Next) -> Result<Response, ApiError> {
    let version = request
        .headers()
        .get(PROTOCOL_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(0);
    if version < MIN_PROTOCOL_VERSION {
        return Err(ApiError::new(
            ErrorCode::UpgradeRequired,
            format!(
                "this version of StormOps Field is too old for the server (protocol {version}, the server needs {MIN_PROTOCOL_VERSION} or later): update the app, then sync again — nothing recorded offline is lost"
            ),
        )
        .with_details(serde_json::json!({ "client_protocol": version, "min_protocol": MIN_PROTOCOL_VERSION, "server_protocol": PROTOCOL_VERSION })));
    }
    if version > PROTOCOL_VERSION {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "the server speaks protocol {PROTOCOL_VERSION}; this client sent {version} (call /v1/hello and speak the server's version)"
            ),
        ));
    }
    request.extensions_mut().insert(ClientProtocol(version));
    Ok(next.run(request).await)
}

/// Counts requests and their durations by route template and plan (bounded labels).
async fn record_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    // The rate-limit layer inside this one labels the response with the caller's plan.
    let plan = response
        .extensions()
        .get::<crate::metrics::PlanLabel>()
        .copied()
        .unwrap_or_default();
    state.metrics.observe_request(
        &route,
        &method,
        response.status().as_u16(),
        plan,
        started.elapsed().as_secs_f64(),
    );
    response
}
