//! The office's admin API for storms, territories, property imports (CSV) and the storm's policy mode.
//!
//! Roles (PRODUCT.md): office admins write; admins, crew chiefs and viewers read storms, territories and
//! policy modes; field users are refused (403) everywhere here. Every write goes through the server-store
//! writers in the request's one tenant transaction, so laptops receive it in their next pull.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use domain::{
    CrewId, Hlc, PolicyMode, Role, Storm, StormId, StormStatus, Territory, TerritoryId, Timestamp,
    Validate,
};
use serde::Deserialize;
use serde_json::{Value, json};
use sync_protocol::ErrorCode;

use crate::auth::identity::Identity;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::property_csv;
use crate::routes::auth::audit;
use crate::state::{AppState, now_ms};

const READERS: [Role; 3] = [Role::Admin, Role::CrewChief, Role::Viewer];
const WRITERS: [Role; 1] = [Role::Admin];

use crate::routes::admin::{no_storm, storm_id};

fn invalid(e: domain::ValidationError) -> ApiError {
    ApiError::new(ErrorCode::ValidationFailed, e.to_string())
        .with_details(json!({ "field": e.field, "code": e.stable_code() }))
}

/// Reads a JSON body after the role check (so a refused role is 403 whatever it sent); shape mistakes
/// are 400 `unknown_field` / `invalid_request` naming the problem.
pub(crate) fn body<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| {
        let text = e.to_string();
        let code = if text.contains("unknown field") {
            ErrorCode::UnknownField
        } else {
            ErrorCode::InvalidRequest
        };
        ApiError::new(code, format!("the body does not fit: {text}"))
    })
}

/// The server's clock reading for office writes (node 0 is the server).
fn server_hlc(now: i64) -> Hlc {
    Hlc::new(u64::try_from(now).unwrap_or(0), 0, 0)
}

/// `GET /v1/admin/storms`.
pub async fn list_storms(
    State(state): State<AppState>,
    identity: Identity,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&READERS, "read storms")?;
    let mut tx = identity.begin(&state).await?;
    let storms = tx.list_storms().await?;
    tx.commit().await?;
    Ok(Json(json!({ "storms": storms })))
}

/// `GET /v1/admin/storms/{id}`.
pub async fn get_storm(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&READERS, "read storms")?;
    let id = storm_id(&id)?;
    let mut tx = identity.begin(&state).await?;
    let storm = tx.storm(id).await?.ok_or_else(no_storm)?;
    tx.commit().await?;
    Ok(Json(json!({ "storm": storm })))
}

/// `POST /v1/admin/storms` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewStorm {
    pub event_id: String,
    pub name: String,
    pub started_at: Timestamp,
    #[serde(default)]
    pub ended_at: Option<Timestamp>,
    pub hail_size_in: f64,
    pub wind_mph: f64,
    pub affected_area: String,
    #[serde(default)]
    pub status: Option<StormStatus>,
}

/// Creates a storm (status `active` unless given).
pub async fn create_storm(
    State(state): State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    ApiJson(raw): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&WRITERS, "create storms")?;
    let body: NewStorm = body(raw)?;
    let now = now_ms();
    let storm = Storm {
        id: StormId::generate(),
        event_id: body.event_id.trim().to_owned(),
        name: body.name.trim().to_owned(),
        started_at: body.started_at,
        ended_at: body.ended_at,
        hail_size_in: body.hail_size_in,
        wind_mph: body.wind_mph,
        affected_area: body.affected_area,
        status: body.status.unwrap_or(StormStatus::Active),
    };
    storm.validate(Timestamp(now)).map_err(invalid)?;
    let mut tx = identity.begin(&state).await?;
    tx.upsert_storms(
        std::slice::from_ref(&storm),
        server_hlc(now),
        Timestamp(now),
    )
    .await?;
    audit(
        &mut tx,
        Some(identity.0.user_id),
        Some(identity.0.device_id),
        "storm.create",
        format!("storm:{}", storm.id),
        &headers,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({ "storm": storm })))
}

/// `PATCH /v1/admin/storms/{id}` body: only the fields to change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StormChanges {
    pub event_id: Option<String>,
    pub name: Option<String>,
    pub started_at: Option<Timestamp>,
    /// `null` clears the end time; absent keeps it.
    #[serde(default, deserialize_with = "some_or_null")]
    pub ended_at: Option<Option<Timestamp>>,
    pub hail_size_in: Option<f64>,
    pub wind_mph: Option<f64>,
    pub affected_area: Option<String>,
    pub status: Option<StormStatus>,
}

fn some_or_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Timestamp>>, D::Error> {
    Option::<Timestamp>::deserialize(d).map(Some)
}

/// Updates a storm's fields (merged with laptops' writes by the per-field rule).
pub async fn update_storm(
    State(state): State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(raw): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&WRITERS, "change storms")?;
    let changes: StormChanges = body(raw)?;
    let id = storm_id(&id)?;
    let now = now_ms();
    let mut tx = identity.begin(&state).await?;
    let mut storm = tx.storm(id).await?.ok_or_else(no_storm)?;
    if let Some(v) = changes.event_id {
        storm.event_id = v.trim().to_owned();
    }
    if let Some(v) = changes.name {
        storm.name = v.trim().to_owned();
    }
    if let Some(v) = changes.started_at {
        storm.started_at = v;
    }
    if let Some(v) = changes.ended_at {
        storm.ended_at = v;
    }
    if let Some(v) = changes.hail_size_in {
        storm.hail_size_in = v;
    }
    if let Some(v) = changes.wind_mph {
        storm.wind_mph = v;
    }
    if let Some(v) = changes.affected_area {
        storm.affected_area = v;
    }
    if let Some(v) = changes.status {
        storm.status = v;
    }
    storm.validate(Timestamp(now)).map_err(invalid)?;
    tx.upsert_storms(
        std::slice::from_ref(&storm),
        server_hlc(now),
        Timestamp(now),
    )
    .await?;
    audit(
        &mut tx,
        Some(identity.0.user_id),
        Some(identity.0.device_id),
        "storm.update",
        format!("storm:{id}"),
        &headers,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({ "storm": storm })))
}

/// `GET /v1/admin/storms/{id}/territories`.
pub async fn list_territories(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&READERS, "read territories")?;
    let id = storm_id(&id)?;
    let mut tx = identity.begin(&state).await?;
    if !tx.storm_exists(id).await? {
        return Err(no_storm());
    }
    let territories = tx.list_territories(id).await?;
    tx.commit().await?;
    Ok(Json(json!({ "territories": territories })))
}

/// `POST /v1/admin/storms/{id}/territories` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTerritory {
    pub name: String,
    #[serde(default)]
    pub crew_id: Option<CrewId>,
}

/// Creates a territory of the storm, optionally for a crew (an unknown crew is 422 foreign_reference).
pub async fn create_territory(
    State(state): State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(raw): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&WRITERS, "create territories")?;
    let body: NewTerritory = body(raw)?;
    let storm = storm_id(&id)?;
    let now = now_ms();
    let territory = Territory {
        id: TerritoryId::generate(),
        storm_id: storm,
        name: body.name.trim().to_owned(),
        crew_id: body.crew_id,
    };
    territory.validate(Timestamp(now)).map_err(invalid)?;
    let mut tx = identity.begin(&state).await?;
    if !tx.storm_exists(storm).await? {
        return Err(no_storm());
    }
    tx.upsert_territories(
        std::slice::from_ref(&territory),
        server_hlc(now),
        Timestamp(now),
    )
    .await?;
    audit(
        &mut tx,
        Some(identity.0.user_id),
        Some(identity.0.device_id),
        "territory.create",
        format!("territory:{}", territory.id),
        &headers,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({ "territory": territory })))
}

/// `POST /v1/admin/storms/{id}/properties/import` with a `text/csv` body: every row is checked first; any
/// problem answers 422 listing the problems and imports nothing. A row whose `external_id` the storm
/// already has updates that property (a re-import never duplicates). Properties of a storm with an
/// experiment get their arms in the same transaction.
pub async fn import_properties(
    State(state): State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&WRITERS, "import properties")?;
    let storm = storm_id(&id)?;
    let now = now_ms();
    let mut properties = property_csv::read_upload(&headers, &body, storm, Timestamp(now))?;
    let mut tx = identity.begin(&state).await?;
    if !tx.storm_exists(storm).await? {
        return Err(no_storm());
    }
    let external: Vec<String> = properties.iter().map(|p| p.external_id.clone()).collect();
    let existing = tx.property_ids_by_external_id(storm, &external).await?;
    for p in &mut properties {
        if let Some(id) = existing.get(&p.external_id) {
            p.id = *id;
        }
    }
    for chunk in properties.chunks(5_000) {
        tx.upsert_properties(chunk, server_hlc(now), Timestamp(now))
            .await?;
    }
    let ids: Vec<_> = properties.iter().map(|p| p.id).collect();
    let arms = crate::arms::assign_written_properties(&mut tx, &ids, Timestamp(now)).await?;
    audit(
        &mut tx,
        Some(identity.0.user_id),
        Some(identity.0.device_id),
        "storm.properties.import",
        format!("storm:{storm} rows:{}", properties.len()),
        &headers,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({
        "storm_id": storm,
        "imported": properties.len(),
        "created": properties.len() - existing.len(),
        "updated": existing.len(),
        "arms_assigned": arms,
    })))
}

/// `GET /v1/admin/storms/{id}/policy`: the storm's policy mode (moderate until the office sets one).
pub async fn get_policy(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&READERS, "read policy modes")?;
    let storm = storm_id(&id)?;
    let mut tx = identity.begin(&state).await?;
    if !tx.storm_exists(storm).await? {
        return Err(no_storm());
    }
    let policy = tx.storm_policy(storm).await?;
    tx.commit().await?;
    Ok(Json(json!(policy)))
}

/// `PUT /v1/admin/storms/{id}/policy` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPolicy {
    pub mode: PolicyMode,
}

/// Sets the storm's policy mode (conservative, moderate, aggressive).
pub async fn set_policy(
    State(state): State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(raw): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&WRITERS, "set policy modes")?;
    let body: SetPolicy = body(raw)?;
    let storm = storm_id(&id)?;
    let mut tx = identity.begin(&state).await?;
    if !tx.storm_exists(storm).await? {
        return Err(no_storm());
    }
    let policy = tx
        .set_storm_policy(storm, body.mode, identity.0.user_id, Timestamp(now_ms()))
        .await?;
    audit(
        &mut tx,
        Some(identity.0.user_id),
        Some(identity.0.device_id),
        "storm.policy.set",
        format!("storm:{storm} mode:{}", body.mode),
        &headers,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!(policy)))
}

/// The OpenAPI paths of these routes (merged into `crate::openapi::document`).
pub fn openapi_paths() -> Value {
    let errors = |codes: &[(u16, &str)]| {
        let mut map = serde_json::Map::new();
        for (code, what) in codes {
            map.insert(code.to_string(), json!({ "description": what }));
        }
        Value::Object(map)
    };
    let ok = |what: &str, extra: Value| {
        let mut responses = json!({ "200": { "description": what, "content": { "application/json": { "schema": { "type": "object" } } } } });
        if let (Some(r), Value::Object(more)) = (responses.as_object_mut(), extra) {
            r.extend(more);
        }
        responses
    };
    let read_errors = errors(&[
        (400, "invalid_uuid"),
        (401, "no or bad token"),
        (403, "forbidden (field users) or tenant_suspended"),
        (404, "not_found: no such storm in this account"),
    ]);
    let write_errors = errors(&[
        (400, "invalid_uuid or a malformed body"),
        (401, "no or bad token"),
        (403, "forbidden (not an admin) or tenant_suspended"),
        (404, "not_found: no such storm in this account"),
        (422, "validation_failed or foreign_reference"),
    ]);
    let json_body = |props: Value| json!({ "required": true, "content": { "application/json": { "schema": { "type": "object", "properties": props } } } });
    let storm_props = json!({
        "event_id": { "type": "string" }, "name": { "type": "string" }, "started_at": { "type": "integer" },
        "ended_at": { "type": ["integer", "null"] }, "hail_size_in": { "type": "number" }, "wind_mph": { "type": "number" },
        "affected_area": { "type": "string" }, "status": { "type": "string", "enum": ["planned", "active", "closed"] }
    });
    json!({
        "/v1/admin/storms": {
            "get": { "summary": "The account's storms, newest first (admin, crew chief, viewer).", "security": [{ "bearer": [] }], "responses": ok("storms", read_errors.clone()) },
            "post": { "summary": "Create a storm (admins); laptops receive it in their next pull.", "security": [{ "bearer": [] }], "requestBody": json_body(storm_props.clone()), "responses": ok("the storm", write_errors.clone()) }
        },
        "/v1/admin/storms/{storm_id}": {
            "get": { "summary": "One storm (admin, crew chief, viewer).", "security": [{ "bearer": [] }], "responses": ok("the storm", read_errors.clone()) },
            "patch": { "summary": "Change a storm's fields (admins); absent fields keep their value.", "security": [{ "bearer": [] }], "requestBody": json_body(storm_props), "responses": ok("the storm", write_errors.clone()) }
        },
        "/v1/admin/storms/{storm_id}/territories": {
            "get": { "summary": "The storm's territories (admin, crew chief, viewer).", "security": [{ "bearer": [] }], "responses": ok("territories", read_errors.clone()) },
            "post": { "summary": "Create a territory of the storm, optionally for a crew (admins).", "security": [{ "bearer": [] }], "requestBody": json_body(json!({ "name": { "type": "string" }, "crew_id": { "type": ["string", "null"], "format": "uuid" } })), "responses": ok("the territory", write_errors.clone()) }
        },
        "/v1/admin/storms/{storm_id}/properties/import": {
            "post": {
                "summary": "Import the storm's properties from CSV (admins): all rows or none; wrong columns and every bad row are listed in the 422's details; a known external_id updates its property; arms are assigned when the storm has an experiment.",
                "security": [{ "bearer": [] }],
                "requestBody": { "required": true, "content": { "text/csv": { "schema": { "type": "string", "description": "columns: external_id, address, latitude, longitude (required); roof_age_years, roof_material, square_feet, home_value_cents, hail_size_in, distance_to_core_km, prior_claims, owner_name, owner_phone, owner_email, status" } } } },
                "responses": ok("imported, created, updated, arms_assigned", errors(&[
                    (401, "no or bad token"), (403, "forbidden (not an admin)"), (404, "not_found"),
                    (415, "unsupported_media_type: not text/csv"), (422, "validation_failed: wrong columns or bad rows, nothing imported")
                ]))
            }
        },
        "/v1/admin/storms/{storm_id}/policy": {
            "get": { "summary": "The storm's policy mode (moderate until set; admin, crew chief, viewer).", "security": [{ "bearer": [] }], "responses": ok("mode, updated_at, updated_by", read_errors) },
            "put": { "summary": "Set the storm's policy mode: conservative, moderate or aggressive (admins).", "security": [{ "bearer": [] }], "requestBody": json_body(json!({ "mode": { "type": "string", "enum": ["conservative", "moderate", "aggressive"] } })), "responses": ok("the policy", write_errors) }
        }
    })
}
