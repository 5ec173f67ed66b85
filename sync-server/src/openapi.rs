//! The OpenAPI 3.1 description served at `/openapi.json`. Written out here (not derived) so the wire
//! crates stay free of documentation libraries; a test checks that every route the router serves is listed.

use serde_json::{Value, json};

/// Every route the server serves, as (method, path) — the router and the document are checked against it.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("post", "/v1/hello"),
    ("post", "/v1/auth/login"),
    ("post", "/v1/auth/refresh"),
    ("post", "/v1/auth/logout"),
    ("get", "/v1/me"),
    ("post", "/v1/devices/{device_id}/revoke"),
    ("post", "/v1/sync/push"),
    ("post", "/v1/sync/pull"),
    ("get", "/v1/admin/audit"),
    ("get", "/v1/admin/audit/export"),
    ("get", "/v1/admin/users"),
    ("post", "/v1/admin/users"),
    ("patch", "/v1/admin/users/{user_id}"),
    ("get", "/v1/admin/crews"),
    ("post", "/v1/admin/crews"),
    ("get", "/v1/admin/devices"),
    ("post", "/v1/admin/storms/{storm_id}/experiment"),
    ("get", "/v1/admin/storms/{storm_id}/experiment"),
    ("post", "/v1/admin/storms/{storm_id}/train"),
    ("get", "/v1/admin/storms/{storm_id}/health"),
    ("get", "/v1/admin/models"),
    ("get", "/v1/admin/health/thresholds"),
    ("put", "/v1/admin/health/thresholds"),
    ("get", "/v1/admin/usage"),
    ("get", "/v1/admin/storms"),
    ("post", "/v1/admin/storms"),
    ("get", "/v1/admin/storms/{storm_id}"),
    ("patch", "/v1/admin/storms/{storm_id}"),
    ("get", "/v1/admin/storms/{storm_id}/territories"),
    ("post", "/v1/admin/storms/{storm_id}/territories"),
    ("post", "/v1/admin/storms/{storm_id}/properties/import"),
    ("get", "/v1/admin/storms/{storm_id}/policy"),
    ("put", "/v1/admin/storms/{storm_id}/policy"),
];

fn error_responses(codes: &[u16]) -> Value {
    let mut map = serde_json::Map::new();
    for code in codes {
        map.insert(
            code.to_string(),
            json!({ "description": "an error with a stable code", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } } }),
        );
    }
    Value::Object(map)
}

fn operation(
    summary: &str,
    request: Option<&str>,
    response: &str,
    errors: &[u16],
    secured: bool,
) -> Value {
    let mut op = json!({
        "summary": summary,
        "responses": { "200": { "description": "success", "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{response}") } } } } }
    });
    if let Some(req) = request {
        op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{req}") } } } });
    }
    if let (Some(responses), Value::Object(errs)) =
        (op["responses"].as_object_mut(), error_responses(errors))
    {
        responses.extend(errs);
    }
    if secured {
        op["security"] = json!([{ "bearer": [] }]);
    }
    op
}

/// Adds the `storm_id` path parameter to an operation.
fn with_storm(mut op: Value) -> Value {
    op["parameters"] = json!([{ "name": "storm_id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } }]);
    op
}

/// The document.
pub fn document() -> Value {
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "StormOps sync server",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Sync, auth and operations API of StormOps Field. Every error is an ErrorBody with a stable `code`. Sync routes require the `x-stormops-protocol` header; a client older than the server's minimum protocol gets 426 `upgrade_required`."
        },
        "paths": {
            "/healthz": { "get": operation("Liveness: the process answers.", None, "Status", &[], false) },
            "/readyz": { "get": operation("Readiness: the database answers and migrations are current.", None, "Status", &[503], false) },
            "/metrics": { "get": { "summary": "Prometheus metrics (text format).", "responses": { "200": { "description": "metrics", "content": { "text/plain": {} } } } } },
            "/openapi.json": { "get": { "summary": "This document.", "responses": { "200": { "description": "OpenAPI document" } } } },
            "/v1/hello": { "post": operation("Version and capability handshake.", Some("HelloRequest"), "HelloResponse", &[400, 426], false) },
            "/v1/auth/login": { "post": operation("Sign in with tenant slug, email and password; registers the device on first login.", Some("LoginRequest"), "TokenPair", &[400, 401, 403, 429], false) },
            "/v1/auth/refresh": { "post": operation("Rotate a refresh token for a new token pair.", Some("RefreshRequest"), "TokenPair", &[400, 401, 403], false) },
            "/v1/auth/logout": { "post": operation("Revoke a refresh token's family.", Some("RefreshRequest"), "Status", &[400, 401], false) },
            "/v1/me": { "get": operation("Who the access token speaks for.", None, "Me", &[401, 403], true) },
            "/v1/devices/{device_id}/revoke": { "post": {
                "summary": "Revoke a device (admin): its tokens stop working and it wipes its tenant file at next contact.",
                "parameters": [{ "name": "device_id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } }],
                "security": [{ "bearer": [] }],
                "responses": error_responses(&[401, 403, 404]).as_object().cloned().map(|mut m| { m.insert("200".into(), json!({ "description": "revoked" })); Value::Object(m) }).unwrap_or_default()
            } },
            "/v1/sync/push": { "post": operation("Push a batch of outbox changes; all or nothing, idempotent per change id.", Some("PushRequest"), "PushResponse", &[400, 401, 403, 413, 415, 422, 426, 429], true) },
            "/v1/sync/pull": { "post": operation("Pull changes after a cursor, in commit order, scoped by tenant and role.", Some("PullRequest"), "PullPage", &[400, 401, 403, 426], true) },
            "/v1/admin/storms/{storm_id}/experiment": {
                "post": with_storm(operation("Create the storm's experiment (admin): a random seed, every current property assigned to an arm; a second experiment is 409.", Some("CreateExperiment"), "ExperimentCreated", &[400, 401, 403, 404, 409, 422], true)),
                "get": with_storm(operation("The storm's experiment (admin, crew chief, viewer): arm sizes, conversions, lift with 95% CI and p-value, the latest model.", None, "ExperimentSummary", &[401, 403, 404, 422], true))
            },
            "/v1/admin/storms/{storm_id}/train": { "post": with_storm(operation("Train the storm's uplift model now (admin); 422 not_enough_data / single_outcome_class / no_experiment keep the model in service, 409 while another training of the tenant runs.", None, "ModelSummary", &[401, 403, 404, 409, 422], true)) },
            "/v1/admin/storms/{storm_id}/health": { "get": with_storm(operation("Run and store the storm's data-health checks with runbooks (admin, crew chief, viewer); thresholds from the tenant's settings or the defaults.", None, "HealthReport", &[401, 403, 404], true)) },
            "/v1/admin/models": { "get": operation("The model registry, newest first (admin, crew chief, viewer).", None, "Models", &[401, 403], true) },
            "/v1/admin/health/thresholds": {
                "get": operation("The tenant's data-health thresholds: effective values, overrides and defaults (admin, crew chief, viewer).", None, "HealthThresholds", &[401, 403], true),
                "put": operation("Replace the tenant's data-health threshold overrides (admin); unknown names, non-numbers, shares above 1 and crossed bounds are 422 validation_failed.", Some("HealthThresholdOverrides"), "HealthThresholds", &[400, 401, 403, 422], true)
            }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "ErrorBody": { "type": "object", "required": ["code", "message"], "properties": {
                    "code": { "type": "string", "description": "stable error code, e.g. malformed_json, token_expired, tenant_suspended, batch_refused" },
                    "message": { "type": "string" }, "request_id": { "type": "string" }, "details": {} } },
                "Status": { "type": "object", "properties": { "status": { "type": "string" } } },
                "HelloRequest": { "type": "object", "required": ["protocol_version", "client_version"], "properties": {
                    "protocol_version": { "type": "integer" }, "client_version": { "type": "string" }, "capabilities": { "type": "array", "items": { "type": "string" } } } },
                "HelloResponse": { "type": "object" },
                "LoginRequest": { "type": "object", "required": ["tenant_slug", "email", "password", "device_id", "device_name"], "properties": {
                    "tenant_slug": { "type": "string" }, "email": { "type": "string" }, "password": { "type": "string", "format": "password" },
                    "device_id": { "type": "string", "format": "uuid" }, "device_name": { "type": "string" } } },
                "RefreshRequest": { "type": "object", "required": ["refresh_token"], "properties": { "refresh_token": { "type": "string" } } },
                "TokenPair": { "type": "object", "properties": {
                    "access_token": { "type": "string" }, "access_expires_at_ms": { "type": "integer" }, "refresh_token": { "type": "string" },
                    "tenant_id": { "type": "string", "format": "uuid" }, "user_id": { "type": "string", "format": "uuid" },
                    "device_id": { "type": "string", "format": "uuid" }, "role": { "type": "string", "enum": ["admin", "crew_chief", "field_user", "viewer"] } } },
                "Me": { "type": "object" },
                "Change": { "type": "object", "required": ["id", "hlc", "device_id", "entity", "entity_id", "op", "payload"], "properties": {
                    "id": { "type": "string", "format": "uuid" }, "hlc": { "type": "string", "pattern": "^[0-9]{13}-[0-9]{5}-[0-9a-f]{16}$" },
                    "device_id": { "type": "string", "format": "uuid" }, "entity": { "type": "string" }, "entity_id": { "type": "string", "format": "uuid" },
                    "op": { "type": "string", "enum": ["insert", "update", "delete"] }, "payload": {} } },
                "PushRequest": { "type": "object", "required": ["changes"], "properties": { "changes": { "type": "array", "items": { "$ref": "#/components/schemas/Change" } } } },
                "PushResponse": { "type": "object", "properties": { "receipts": { "type": "array", "items": { "type": "object" } }, "server_hlc": { "type": "string" } } },
                "PullRequest": { "type": "object", "properties": { "cursor": { "type": ["string", "null"] }, "limit": { "type": ["integer", "null"] } } },
                "CreateExperiment": { "type": "object", "required": ["treatment_share"], "properties": { "treatment_share": { "type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1 } } },
                "ExperimentCreated": { "type": "object", "properties": { "experiment": { "type": "object" }, "assigned": { "type": "integer" }, "treatment": { "type": "integer" }, "control": { "type": "integer" } } },
                "ExperimentSummary": { "type": "object", "properties": { "experiment": { "type": "object" }, "treatment": { "type": "object" }, "control": { "type": "object" }, "lift": { "type": ["object", "null"] }, "model": { "type": ["object", "null"] } } },
                "ModelSummary": { "type": "object", "properties": { "storm_id": { "type": "string", "format": "uuid" }, "retrained": { "type": "boolean" }, "model": { "type": "object" }, "holdout_rows": { "type": "integer" }, "scored": { "type": "integer" } } },
                "HealthThresholdOverrides": { "type": "object", "additionalProperties": { "type": "number" } },
                "HealthThresholds": { "type": "object", "properties": { "thresholds": { "type": "object" }, "overrides": { "type": "object" }, "defaults": { "type": "object" } } },
                "HealthReport": { "type": "object", "properties": { "storm_id": { "type": "string" }, "measured_at": { "type": "integer" }, "thresholds": { "type": "object" }, "alerts": { "type": "integer" }, "readings": { "type": "array", "items": { "type": "object" } } } },
                "Models": { "type": "object", "properties": { "models": { "type": "array", "items": { "type": "object" } } } },
                "PullPage": { "type": "object", "properties": { "changes": { "type": "array", "items": { "type": "object" } }, "next_cursor": { "type": "string" }, "has_more": { "type": "boolean" }, "watermark": { "type": "integer" } } }
            }
        }
    });
    // The tenant platform's routes document themselves next to their handlers.
    for extra in [
        crate::routes::audit::openapi_paths(),
        crate::routes::directory::openapi_paths(),
        crate::routes::office::openapi_paths(),
        crate::routes::usage::openapi_paths(),
    ] {
        if let (Some(paths), Value::Object(more)) = (doc["paths"].as_object_mut(), extra) {
            paths.extend(more);
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented() {
        let doc = document();
        for (method, path) in ROUTES {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} is not in the OpenAPI document"
            );
        }
        // Every documented operation is a route (a path may carry several methods).
        let operations: usize = doc["paths"]
            .as_object()
            .map(|p| {
                p.values()
                    .filter_map(|v| v.as_object())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        assert_eq!(operations, ROUTES.len());
    }
}
