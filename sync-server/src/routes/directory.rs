//! The office's users and crews: list (admins, crew chiefs and viewers), create, change role or crew,
//! disable (admins only). Every write is audited with the acting admin, device and request id. A tenant
//! never loses its last enabled admin, and an admin cannot disable itself. Also each laptop's sync
//! health: an admin sees every device, a crew chief its crews' devices; field users and viewers none
//! (it names people's laptops and when they worked, which is a chief's business, not a dashboard's).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use domain::{Crew, CrewId, Role, Timestamp, UserId};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use server_store::directory::DeviceScope;
use server_store::{NewUser, UserChange};
use sync_protocol::{DeviceHealthReport, ErrorCode};
use uuid::Uuid;

use crate::auth::identity::Identity;
use crate::auth::password;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::routes::auth::audit;
use crate::state::{AppState, now_ms};

const READERS: [Role; 3] = [Role::Admin, Role::CrewChief, Role::Viewer];

fn path_uuid(text: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(text).map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidUuid,
            format!("the {what} id in the path is not a UUID"),
        )
    })
}

/// `GET /v1/admin/users`.
pub async fn list_users(
    State(state): State<AppState>,
    identity: Identity,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&READERS, "list users")?;
    let mut tx = identity.begin(&state).await?;
    let users = tx.list_directory_users().await?;
    tx.commit().await?;
    Ok(Json(json!({ "users": users })))
}

/// `POST /v1/admin/users` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub email: String,
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub crew_id: Option<CrewId>,
    pub password: String,
}

impl std::fmt::Debug for CreateUser {
    // The password stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUser")
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Creates a user (admins only). A taken email is 409; an unknown crew is 422 `foreign_reference`.
pub async fn create_user(
    State(state): State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    ApiJson(raw): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&[Role::Admin], "create users")?;
    let body: CreateUser = crate::routes::office::body(raw)?;
    let password_hash = password::hash_password(&body.password)
        .map_err(|e| ApiError::new(ErrorCode::ValidationFailed, e.to_string()))?;
    let user = NewUser {
        id: UserId::generate(),
        email: body.email.trim().to_owned(),
        name: body.name.trim().to_owned(),
        role: body.role,
        crew_id: body.crew_id,
        password_hash,
    };
    let mut tx = identity.begin(&state).await?;
    tx.add_user(&user, Timestamp(now_ms())).await?;
    audit(
        &mut tx,
        Some(identity.0.user_id),
        Some(identity.0.device_id),
        "user.create",
        format!("user:{}", user.id),
        &headers,
    )
    .await?;
    let created = tx.directory_user(user.id).await?;
    tx.commit().await?;
    Ok(Json(json!({ "user": created })))
}

/// Present-but-null and absent differ for `crew_id`: null takes the user out of its crew.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// `PATCH /v1/admin/users/{user_id}` body: each field given is changed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeUser {
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default, deserialize_with = "present")]
    pub crew_id: Option<Option<CrewId>>,
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// Changes a user's role or crew, or disables / re-enables it (admins only).
pub async fn change_user(
    State(state): State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    Path(user): Path<String>,
    ApiJson(raw): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&[Role::Admin], "change users")?;
    let body: ChangeUser = crate::routes::office::body(raw)?;
    let user = UserId(path_uuid(&user, "user")?);
    if body.disabled == Some(true) && user == identity.0.user_id {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "an admin cannot disable itself; ask another admin",
        ));
    }
    let change = UserChange {
        role: body.role,
        crew_id: body.crew_id,
        disable: body.disabled,
    };
    let mut tx = identity.begin(&state).await?;
    let changed = match tx.change_user(user, &change, Timestamp(now_ms())).await {
        Err(server_store::StoreError::NotFound(_)) => {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                "no such user in this account",
            ));
        }
        other => other?,
    };
    let mut actions = Vec::new();
    if change.role.is_some() {
        actions.push("user.role_change");
    }
    if change.crew_id.is_some() {
        actions.push("user.crew_change");
    }
    match change.disable {
        Some(true) => actions.push("user.disable"),
        Some(false) => actions.push("user.enable"),
        None => {}
    }
    for action in actions {
        audit(
            &mut tx,
            Some(identity.0.user_id),
            Some(identity.0.device_id),
            action,
            format!("user:{user}"),
            &headers,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Json(json!({ "user": changed })))
}

/// `GET /v1/admin/crews`.
pub async fn list_crews(
    State(state): State<AppState>,
    identity: Identity,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&READERS, "list crews")?;
    let mut tx = identity.begin(&state).await?;
    let crews = tx.list_crews().await?;
    tx.commit().await?;
    Ok(Json(json!({ "crews": crews })))
}

/// `POST /v1/admin/crews` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCrew {
    pub name: String,
    #[serde(default)]
    pub chief_id: Option<UserId>,
}

/// Creates a crew (admins only); an unknown chief is 422 `foreign_reference`.
pub async fn create_crew(
    State(state): State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    ApiJson(raw): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&[Role::Admin], "create crews")?;
    let body: CreateCrew = crate::routes::office::body(raw)?;
    let crew = Crew {
        id: CrewId::generate(),
        name: body.name.trim().to_owned(),
        chief_id: body.chief_id,
    };
    let mut tx = identity.begin(&state).await?;
    tx.add_crew(&crew, Timestamp(now_ms())).await?;
    audit(
        &mut tx,
        Some(identity.0.user_id),
        Some(identity.0.device_id),
        "crew.create",
        format!("crew:{}", crew.id),
        &headers,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({ "crew": crew })))
}

/// `GET /v1/admin/devices`: each laptop's sync health (admin: every device; crew chief: the devices of
/// the crews it leads and of its own crew; anyone else 403 `forbidden`).
pub async fn list_devices(
    State(state): State<AppState>,
    identity: Identity,
) -> Result<Json<DeviceHealthReport>, ApiError> {
    identity.require_role(
        &[Role::Admin, Role::CrewChief],
        "see the laptops' sync health",
    )?;
    let scope = if identity.0.role == Role::Admin {
        DeviceScope::All
    } else {
        DeviceScope::CrewsOf {
            chief: identity.0.user_id,
            own_crew: identity.0.crew_id,
        }
    };
    let mut tx = identity.begin(&state).await?;
    let devices = tx.device_sync_health(scope).await?;
    tx.commit().await?;
    Ok(Json(DeviceHealthReport {
        devices,
        at: now_ms(),
    }))
}

/// The OpenAPI entries of the users and crews routes (merged into `crate::openapi::document`).
pub fn openapi_paths() -> Value {
    let ok = |what: &str| {
        json!({ "200": { "description": what, "content": { "application/json": { "schema": { "type": "object" } } } },
        "401": { "description": "no or bad token" }, "403": { "description": "forbidden by role, or tenant_suspended" } })
    };
    let body = |properties: Value, required: Value| {
        json!({ "required": true, "content": { "application/json": { "schema": {
        "type": "object", "properties": properties, "required": required } } } })
    };
    json!({
        "/v1/admin/users": {
            "get": { "summary": "The tenant's users with their role, crew and disabled time (admin, crew chief, viewer).",
                "security": [{ "bearer": [] }], "responses": ok("users") },
            "post": { "summary": "Create a user (admin); 409 conflict for a taken email, 422 foreign_reference for an unknown crew, 422 validation_failed for a weak password.",
                "security": [{ "bearer": [] }], "responses": ok("the user"),
                "requestBody": body(json!({ "email": { "type": "string" }, "name": { "type": "string" },
                    "role": { "type": "string", "enum": ["admin", "crew_chief", "field_user", "viewer"] },
                    "crew_id": { "type": ["string", "null"], "format": "uuid" }, "password": { "type": "string", "format": "password" } }),
                    json!(["email", "name", "role", "password"])) }
        },
        "/v1/admin/users/{user_id}": {
            "patch": { "summary": "Change a user's role or crew, or disable / re-enable it (admin); the last admin cannot be demoted or disabled (409), an admin cannot disable itself (403); disabling revokes the user's devices.",
                "security": [{ "bearer": [] }], "responses": ok("the user"),
                "parameters": [{ "name": "user_id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } }],
                "requestBody": body(json!({ "role": { "type": "string" }, "crew_id": { "type": ["string", "null"], "format": "uuid" }, "disabled": { "type": "boolean" } }), json!([])) }
        },
        "/v1/admin/devices": {
            "get": { "summary": "Each laptop's sync health: last accepted push (time, changes), last pull (at most once a minute), refused batches, revoked or not (admin: every device; crew chief: its crews' devices; field user and viewer: 403 forbidden).",
                "security": [{ "bearer": [] }], "responses": ok("devices") }
        },
        "/v1/admin/crews": {
            "get": { "summary": "The tenant's crews (admin, crew chief, viewer).", "security": [{ "bearer": [] }], "responses": ok("crews") },
            "post": { "summary": "Create a crew (admin); 422 foreign_reference for an unknown chief.", "security": [{ "bearer": [] }], "responses": ok("the crew"),
                "requestBody": body(json!({ "name": { "type": "string" }, "chief_id": { "type": ["string", "null"], "format": "uuid" } }), json!(["name"])) }
        }
    })
}
