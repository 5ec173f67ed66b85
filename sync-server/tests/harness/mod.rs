//! Shared setup for the sync server's integration tests: a fresh PostgreSQL database initialised with the
//! server's roles and migrations, the server started in-process on a loopback port (port 0) exactly as
//! `stormops-server serve` starts it, two tenants (A and B) each with a user of every role, a storm and
//! properties written by the server-side writers, and one logged-in session per (tenant, role).
//!
//! Requests go over real HTTP (`reqwest`, or the typed `sync-client`); row counts are read as the
//! non-owner application role inside the tenant's context, through the same row-level security.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use domain::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use server_store::{AppPool, ControlPool, InitOutput, NewUser, PoolSettings, init_database};
use sync_client::SyncClient;
use sync_protocol::{
    Change, ChangeOp, Entity, ErrorCode, LoginRequest, PROTOCOL_HEADER, PROTOCOL_VERSION,
    PulledChange, TokenPair,
};
use sync_server::serve::{RunningServer, ServerConfig};
use sync_server::state::ServerSettings;
use test_postgres::TestDatabase;
use uuid::Uuid;

/// Every test user's password (hashed once per harness).
pub const PASSWORD: &str = "correct horse battery staple";
/// Properties written per tenant.
pub const PROPERTIES: usize = 6;

pub const ROLES: [Role; 4] = [Role::Admin, Role::CrewChief, Role::FieldUser, Role::Viewer];

/// One signed-in device of one user.
#[derive(Debug, Clone)]
pub struct Session {
    pub tokens: TokenPair,
    pub role: Role,
    pub user: UserId,
    pub device: DeviceId,
    pub tenant: TenantId,
}

impl Session {
    pub fn access(&self) -> &str {
        &self.tokens.access_token
    }
}

/// One provisioned tenant.
#[derive(Debug, Clone)]
pub struct TenantFixture {
    pub id: TenantId,
    pub slug: String,
    pub crew: CrewId,
    pub storm: StormId,
    pub properties: Vec<PropertyId>,
    /// (role, user id, email), one per role.
    pub users: Vec<(Role, UserId, String)>,
    /// One session per role, in [`ROLES`] order.
    pub sessions: Vec<Session>,
}

impl TenantFixture {
    pub fn session(&self, role: Role) -> &Session {
        self.sessions
            .iter()
            .find(|s| s.role == role)
            .expect("a session per role")
    }

    pub fn email(&self, role: Role) -> &str {
        &self
            .users
            .iter()
            .find(|u| u.0 == role)
            .expect("a user per role")
            .2
    }
}

/// The running test server and its database.
#[derive(Debug)]
pub struct Harness {
    pub db: TestDatabase,
    pub init: InitOutput,
    pub config: ServerConfig,
    pub server: RunningServer,
    pub base: String,
    pub http: reqwest::Client,
    pub client: SyncClient,
    pub app: AppPool,
    pub control: ControlPool,
    pub password_hash: String,
    pub a: TenantFixture,
    pub b: TenantFixture,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A clock reading at the server's wall time now, unique within the process.
pub fn hlc_now() -> Hlc {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) % 90_000;
    Hlc::new(Timestamp::now().millis() as u64, n, 7)
}

pub fn storm(id: StormId, now: Timestamp) -> Storm {
    Storm {
        id,
        event_id: "NWS-TEST".into(),
        name: "April hail".into(),
        started_at: now.plus_millis(-86_400_000),
        ended_at: None,
        hail_size_in: 2.0,
        wind_mph: 60.0,
        affected_area: "Norman, OK".into(),
        status: StormStatus::Active,
    }
}

pub fn property(id: PropertyId, storm: StormId, n: usize) -> Property {
    Property {
        id,
        storm_id: storm,
        external_id: format!("P-{n}"),
        address: format!("{n} Elm St"),
        latitude: 35.2,
        longitude: -97.4,
        roof_age_years: Some(12.0),
        roof_material: Some(RoofMaterial::AsphaltShingle),
        square_feet: Some(2000.0),
        home_value: Some(Cents(30_000_000)),
        hail_size_in: Some(1.5),
        distance_to_core_km: Some(2.0),
        prior_claims: 0,
        owner_name: Some("Pat".into()),
        owner_phone: None,
        owner_email: None,
        status: PropertyStatus::New,
    }
}

impl Harness {
    /// Fresh database, server with default settings, two tenants with every role signed in.
    pub async fn start() -> Harness {
        let db = test_postgres::fresh_database()
            .await
            .expect("a test database (a running PostgreSQL or a private cluster)");
        let init = init_database(&db.server_url, &db.name, &db.role_prefix)
            .await
            .expect("init_database");
        let config = ServerConfig {
            database_url: init.app_url.clone(),
            control_database_url: init.control_url.clone(),
            pool_size: 8,
            settings: ServerSettings::default(),
        };
        let server = sync_server::serve::start(&config, "127.0.0.1:0")
            .await
            .expect("the server starts");
        let base = format!("http://{}", server.addr);
        let pool = PoolSettings {
            max_connections: 4,
            ..PoolSettings::default()
        };
        let app = AppPool::connect(&init.app_url, &pool)
            .await
            .expect("app pool");
        let control = ControlPool::connect(&init.control_url, &pool)
            .await
            .expect("control pool");
        let password_hash = tokio::task::spawn_blocking(|| {
            sync_server::auth::password::hash_password(PASSWORD).expect("hash")
        })
        .await
        .expect("hashing");
        let client = SyncClient::new(&base).expect("client");
        let a = provision(&control, &app, "tenant-a", &password_hash).await;
        let b = provision(&control, &app, "tenant-b", &password_hash).await;
        let mut h = Harness {
            db,
            init,
            config,
            server,
            base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            client,
            app,
            control,
            password_hash,
            a,
            b,
        };
        // Sign every (tenant, role) in, concurrently (each login verifies PBKDF2 on the server).
        let mut tasks = Vec::new();
        for t in [&h.a, &h.b] {
            for role in ROLES {
                let client = h.client.clone();
                let (slug, email, tenant) = (t.slug.clone(), t.email(role).to_owned(), t.id);
                let user = t.users.iter().find(|u| u.0 == role).expect("user").1;
                tasks.push(tokio::spawn(async move {
                    login_with(&client, &slug, &email, tenant, role, user).await
                }));
            }
        }
        let mut sessions = Vec::new();
        for task in tasks {
            sessions.push(task.await.expect("login task"));
        }
        let (sa, sb) = sessions.split_at(ROLES.len());
        h.a.sessions = sa.to_vec();
        h.b.sessions = sb.to_vec();
        h
    }

    /// Another server instance on the same database with other settings (and its own random token key).
    pub async fn start_another(&self, settings: ServerSettings) -> RunningServer {
        let config = ServerConfig {
            settings,
            ..self.config.clone()
        };
        sync_server::serve::start(&config, "127.0.0.1:0")
            .await
            .expect("a second server starts")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A new session (a new device) of `role` in `tenant`.
    pub async fn login(&self, tenant: &TenantFixture, role: Role) -> Session {
        let user = tenant.users.iter().find(|u| u.0 == role).expect("user").1;
        login_with(
            &self.client,
            &tenant.slug,
            tenant.email(role),
            tenant.id,
            role,
            user,
        )
        .await
    }

    /// POST a JSON body with the current protocol header; returns the status and the parsed body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(self.url(path))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string())
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(request.send().await.expect("the server answers")).await
    }

    /// Runs the operator CLI (`stormops-server --json …`) against this harness's database (a first admin's
    /// password from `PASSWORD`); returns
    /// whether it succeeded and its JSON answer (the last line of stdout, or of stderr on failure).
    pub fn operator_cli(&self, args: &[&str]) -> (bool, Value) {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_stormops-server"))
            .arg("--json")
            .args(args)
            .env("STORMOPS_CONTROL_DATABASE_URL", &self.init.control_url)
            .env("STORMOPS_DATABASE_URL", &self.init.app_url)
            .env("STORMOPS_ADMIN_PASSWORD", PASSWORD)
            .output()
            .expect("the binary runs");
        let text = if output.status.success() {
            output.stdout
        } else {
            output.stderr
        };
        let text = String::from_utf8_lossy(&text).into_owned();
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let value = serde_json::from_str(last).unwrap_or_else(|_| json!({ "raw": text }));
        (output.status.success(), value)
    }

    /// Any method (`"get"`, `"post"`, `"put"`, `"patch"`, …) with the current protocol header; a JSON body
    /// is sent for every method but GET. Returns the status and the parsed body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> (StatusCode, Value) {
        let verb =
            reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("an HTTP method");
        let is_get = verb == reqwest::Method::GET;
        let mut request = self
            .http
            .request(verb, self.url(path))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string());
        if !is_get {
            request = request.json(body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(request.send().await.expect("the server answers")).await
    }

    /// PUT a JSON body with the current protocol header; returns the status and the parsed body.
    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut request = self
            .http
            .put(self.url(path))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string())
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(request.send().await.expect("the server answers")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .get(self.url(path))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(request.send().await.expect("the server answers")).await
    }

    pub async fn push(&self, session: &Session, changes: &[Change]) -> (StatusCode, Value) {
        self.post(
            "/v1/sync/push",
            Some(session.access()),
            &json!({ "changes": changes }),
        )
        .await
    }

    /// Rows of `table` in `tenant`, counted as the application role under the tenant's context.
    pub async fn count(&self, tenant: TenantId, table: &str) -> i64 {
        let mut tx = self.app.begin_tenant(tenant).await.expect("tenant tx");
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(tx.connection())
            .await
            .expect("count");
        tx.commit().await.expect("commit");
        n
    }

    /// Counts of every table a push writes to, for "nothing changed" assertions.
    pub async fn counts(&self, tenant: TenantId) -> Vec<(&'static str, i64)> {
        let mut out = Vec::new();
        for table in [
            "journey_touches",
            "outcomes",
            "policy_decisions",
            "applied_changes",
            "change_log",
            "storms",
            "properties",
        ] {
            out.push((table, self.count(tenant, table).await));
        }
        out
    }

    /// A property's record as stored (JSON), read as the application role.
    pub async fn property_json(&self, tenant: TenantId, id: PropertyId) -> Option<Value> {
        let mut tx = self.app.begin_tenant(tenant).await.expect("tenant tx");
        let v: Option<Value> = sqlx::query_scalar(
            "SELECT to_jsonb(p) - 'tenant_id' - 'field_clocks' FROM properties p WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(tx.connection())
        .await
        .expect("property");
        tx.commit().await.expect("commit");
        v
    }

    /// Pulls from the start until the feed is drained and `done` holds for what arrived (bounded; rows of
    /// transactions still open anywhere in the cluster are held back a moment, so a puller pulls again).
    pub async fn pull_until(
        &self,
        session: &Session,
        done: impl Fn(&[PulledChange]) -> bool,
    ) -> Vec<PulledChange> {
        let mut cursor: Option<String> = None;
        let mut all = Vec::new();
        for _ in 0..3_000 {
            let (page, _) = self
                .client
                .pull(session.access(), cursor.as_deref(), Some(1_000))
                .await
                .expect("pull");
            all.extend(page.changes);
            cursor = Some(page.next_cursor);
            if !page.has_more {
                if done(&all) {
                    return all;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        panic!(
            "the feed never delivered what was expected; got {} rows",
            all.len()
        );
    }

    pub async fn stop(self) {
        self.server.stop().await;
        self.app.close().await;
        self.control.close().await;
        // Best effort: a database left behind is not a wrong result.
        let _ = self.db.drop_database().await;
    }
}

/// Reads a response as (status, JSON body or Null).
pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.expect("a body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body)
}

/// Asserts an error answer: its status, its stable code, and that it is never a 5xx.
#[track_caller]
pub fn assert_error(case: &str, got: &(StatusCode, Value), status: u16, code: ErrorCode) {
    assert!(
        got.0.as_u16() < 500,
        "{case}: a client mistake answered {} {}",
        got.0,
        got.1
    );
    assert_eq!(
        (got.0.as_u16(), got.1["code"].as_str()),
        (status, Some(code.as_str())),
        "{case}: expected {status} {code}, got {} {}",
        got.0,
        got.1
    );
}

#[track_caller]
pub fn assert_ok(case: &str, got: &(StatusCode, Value)) {
    assert_eq!(got.0, StatusCode::OK, "{case}: got {} {}", got.0, got.1);
}

/// The codes of the refused receipts of a 422 `batch_refused` answer.
#[track_caller]
pub fn refused_codes(case: &str, got: &(StatusCode, Value)) -> Vec<String> {
    assert_error(case, got, 422, ErrorCode::BatchRefused);
    got.1["details"]["refused"]
        .as_array()
        .unwrap_or_else(|| panic!("{case}: no refused receipts in {}", got.1))
        .iter()
        .map(|r| {
            assert_eq!(r["status"], "refused", "{case}: {r}");
            r["code"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

/// The receipt statuses of a 200 push answer.
#[track_caller]
pub fn receipt_statuses(case: &str, got: &(StatusCode, Value)) -> Vec<String> {
    assert_ok(case, got);
    got.1["receipts"]
        .as_array()
        .unwrap_or_else(|| panic!("{case}: no receipts in {}", got.1))
        .iter()
        .map(|r| r["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn login_with(
    client: &SyncClient,
    slug: &str,
    email: &str,
    tenant: TenantId,
    role: Role,
    user: UserId,
) -> Session {
    let device = DeviceId::generate();
    let tokens = client
        .login(&LoginRequest {
            tenant_slug: slug.to_owned(),
            email: email.to_owned(),
            password: PASSWORD.to_owned(),
            device_id: device,
            device_name: format!("{role} laptop"),
        })
        .await
        .unwrap_or_else(|e| panic!("login of {email}: {e}"));
    assert_eq!(
        (
            tokens.tenant_id,
            tokens.user_id,
            tokens.role,
            tokens.device_id
        ),
        (tenant, user, role, device)
    );
    Session {
        tokens,
        role,
        user,
        device,
        tenant,
    }
}

/// Provisions a tenant (admin and default crew) through the control plane, adds a crew chief, a field
/// user and a viewer, and writes a storm and [`PROPERTIES`] properties with the server-side writers.
async fn provision(
    control: &ControlPool,
    app: &AppPool,
    slug: &str,
    password_hash: &str,
) -> TenantFixture {
    let admin_email = format!("admin@{slug}.example");
    let created = sync_server::provisioning::provision_tenant(
        control,
        &format!("Roofing {slug}"),
        Some(slug),
        PlanTier::Standard,
        &admin_email,
        "Ada Admin",
        password_hash.to_owned(),
    )
    .await
    .expect("provision tenant");
    let now = Timestamp::now();
    let mut users = vec![(Role::Admin, created.admin_user_id, admin_email)];
    let mut tx = control
        .begin_tenant(created.tenant_id)
        .await
        .expect("control tenant tx");
    for (role, name) in [
        (Role::CrewChief, "chief"),
        (Role::FieldUser, "field"),
        (Role::Viewer, "viewer"),
    ] {
        let user = NewUser {
            id: UserId::generate(),
            email: format!("{name}@{slug}.example"),
            name: format!("{name} of {slug}"),
            role,
            crew_id: (role != Role::Viewer).then_some(created.crew_id),
            password_hash: password_hash.to_owned(),
        };
        tx.add_user(&user, now).await.expect("add user");
        users.push((role, user.id, user.email));
    }
    tx.commit().await.expect("commit users");

    let storm_id = StormId::generate();
    let properties: Vec<PropertyId> = (0..PROPERTIES).map(|_| PropertyId::generate()).collect();
    let records: Vec<Property> = properties
        .iter()
        .enumerate()
        .map(|(n, id)| property(*id, storm_id, n))
        .collect();
    let server_hlc = Hlc::new(now.millis() as u64 - 60_000, 0, 0);
    let mut tx = app
        .begin_tenant(created.tenant_id)
        .await
        .expect("app tenant tx");
    tx.upsert_storms(&[storm(storm_id, now)], server_hlc, now)
        .await
        .expect("storm");
    tx.upsert_properties(&records, server_hlc, now)
        .await
        .expect("properties");
    tx.commit().await.expect("commit data");
    TenantFixture {
        id: created.tenant_id,
        slug: slug.to_owned(),
        crew: created.crew_id,
        storm: storm_id,
        properties,
        users,
        sessions: Vec::new(),
    }
}

// ---- change builders ----

pub fn change<T: serde::Serialize>(
    session: &Session,
    entity: Entity,
    entity_id: Uuid,
    op: ChangeOp,
    record: &T,
) -> Change {
    Change {
        id: ChangeId::generate(),
        hlc: hlc_now(),
        device_id: session.device,
        entity,
        entity_id,
        op,
        payload: serde_json::to_value(record).expect("payload"),
    }
}

pub fn touch(session: &Session, property: PropertyId, storm: StormId, notes: &str) -> JourneyTouch {
    JourneyTouch {
        id: TouchId::generate(),
        property_id: property,
        storm_id: storm,
        user_id: session.user,
        device_id: session.device,
        channel: Channel::DoorKnock,
        result: TouchResult::Talked,
        notes: notes.into(),
        occurred_at: Timestamp::now(),
    }
}

pub fn touch_change(session: &Session, t: &TenantFixture, property: usize, notes: &str) -> Change {
    let record = touch(session, t.properties[property], t.storm, notes);
    change(
        session,
        Entity::JourneyTouch,
        record.id.0,
        ChangeOp::Insert,
        &record,
    )
}

pub fn outcome(property: PropertyId, storm: StormId) -> Outcome {
    Outcome {
        id: OutcomeId::generate(),
        property_id: property,
        storm_id: storm,
        converted: true,
        contract_value: Cents(1_200_000),
        occurred_at: Timestamp::now(),
    }
}

pub fn outcome_change(session: &Session, property: PropertyId, storm: StormId) -> Change {
    let record = outcome(property, storm);
    change(
        session,
        Entity::Outcome,
        record.id.0,
        ChangeOp::Insert,
        &record,
    )
}

pub fn decision(
    session: &Session,
    property: PropertyId,
    storm: StormId,
    is_override: bool,
) -> PolicyDecision {
    PolicyDecision {
        id: DecisionId::generate(),
        property_id: property,
        storm_id: storm,
        decision: Decision::Treat,
        mode: PolicyMode::Moderate,
        uplift_score: Some(0.2),
        model_version: Some("m-1".into()),
        reason: is_override.then(|| "owner asked".to_owned()),
        is_override,
        decided_by: session.user,
        decided_at: Timestamp::now(),
    }
}

pub fn decision_change(
    session: &Session,
    property: PropertyId,
    storm: StormId,
    is_override: bool,
) -> Change {
    let record = decision(session, property, storm, is_override);
    change(
        session,
        Entity::PolicyDecision,
        record.id.0,
        ChangeOp::Insert,
        &record,
    )
}

pub fn status_change(session: &Session, property: PropertyId, status: PropertyStatus) -> Change {
    change(
        session,
        Entity::Property,
        property.0,
        ChangeOp::Update,
        &json!({ "status": status }),
    )
}

/// The entity ids of a set of pulled rows.
pub fn ids_of(rows: &[PulledChange], entity: Entity) -> Vec<Uuid> {
    rows.iter()
        .filter(|r| r.entity == entity)
        .map(|r| r.entity_id)
        .collect()
}
