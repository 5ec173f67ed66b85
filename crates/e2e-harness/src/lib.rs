//! Test support shared by the end-to-end suites (`tests/sync-e2e`, `tests/chaos`): a fresh PostgreSQL
//! database initialised with the server's roles and migrations, tenants provisioned through the control
//! plane with a storm and properties written by the server-side writers, the server in-process or as the
//! real `stormops-server` binary in a child process, and laptops: a real SQLCipher tenant file in a
//! directory, signed in through a fault proxy, driven by the real `SyncEngine`. Server-side truth is read
//! as the application role inside the tenant's context (row-level security applies), never through the
//! API under test.
// Test support: a setup step that fails should fail the test on the spot, with the step's name.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use desktop_core::{EngineConfig, SignInRequest, SyncEngine, sign_in};
use domain::*;
use fault_proxy::FaultProxy;
use local_store::{DataDir, Passphrase, TimelineEntry, WallClock};
use server_store::{AppPool, ControlPool, InitOutput, NewUser, PoolSettings, init_database};
use sync_client::SyncClient;
use sync_server::serve::{RunningServer, ServerConfig};
use sync_server::state::ServerSettings;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Every account's password.
pub const PASSWORD: &str = "e2e account password";
/// Every laptop file's passphrase.
pub const PASSPHRASE: &str = "truck passphrase 2026";

/// The database side of a test: one fresh database, its pools, and a password hash computed once.
#[derive(Debug)]
pub struct Backend {
    pub superuser_url: String,
    pub init: InitOutput,
    pub app: AppPool,
    pub control: ControlPool,
    pub password_hash: String,
}

/// One provisioned tenant with a storm and properties.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub crew: CrewId,
    pub admin_email: String,
    pub storm: StormId,
    pub properties: Vec<PropertyId>,
}

impl Backend {
    /// A fresh database on the shared test PostgreSQL (`test_postgres`).
    pub async fn fresh() -> Backend {
        let db = test_postgres::fresh_database()
            .await
            .expect("a test PostgreSQL (running, or a private cluster)");
        Self::on(&db.server_url, &db.name, &db.role_prefix, &db.superuser_url).await
    }

    /// Initialises `database` on the server at `server_url` (superuser) and connects the pools.
    pub async fn on(
        server_url: &str,
        database: &str,
        role_prefix: &str,
        superuser_url: &str,
    ) -> Backend {
        let init = init_database(server_url, database, role_prefix)
            .await
            .expect("init_database");
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
        Backend {
            superuser_url: superuser_url.to_owned(),
            init,
            app,
            control,
            password_hash,
        }
    }

    pub fn server_config(&self, settings: ServerSettings) -> ServerConfig {
        ServerConfig {
            database_url: self.init.app_url.clone(),
            control_database_url: self.init.control_url.clone(),
            pool_size: 8,
            settings,
        }
    }

    /// The server in-process on a free loopback port.
    pub async fn serve(&self, settings: ServerSettings) -> RunningServer {
        sync_server::serve::start(&self.server_config(settings), "127.0.0.1:0")
            .await
            .expect("the server starts")
    }

    /// Provisions a tenant (admin and default crew), adds `users` to its crew, and writes a storm with
    /// `properties` properties server-side (addresses and owners carry `marker`, for redaction checks).
    pub async fn tenant(
        &self,
        name: &str,
        users: &[(&str, Role)],
        properties: usize,
        marker: &str,
    ) -> Tenant {
        let admin_email = format!("admin@{}.example", name.to_lowercase().replace(' ', "-"));
        let created = sync_server::provisioning::provision_tenant(
            &self.control,
            name,
            None,
            PlanTier::Standard,
            &admin_email,
            "Office Admin",
            self.password_hash.clone(),
        )
        .await
        .expect("provision tenant");
        let now = Timestamp::now();
        let mut tx = self
            .control
            .begin_tenant(created.tenant_id)
            .await
            .expect("control tx");
        for (email, role) in users {
            let user = NewUser {
                id: UserId::generate(),
                email: (*email).to_owned(),
                name: format!("{role} {email}"),
                role: *role,
                crew_id: Some(created.crew_id),
                password_hash: self.password_hash.clone(),
            };
            tx.add_user(&user, now).await.expect("add user");
        }
        tx.commit().await.expect("commit users");
        let storm = storm(StormId::generate(), now);
        let records: Vec<Property> = (0..properties)
            .map(|n| property(storm.id, n, marker))
            .collect();
        let hlc = Hlc::new(now.millis() as u64 - 60_000, 0, 0);
        let mut tx = self
            .app
            .begin_tenant(created.tenant_id)
            .await
            .expect("app tx");
        tx.upsert_storms(std::slice::from_ref(&storm), hlc, now)
            .await
            .expect("storm");
        tx.upsert_properties(&records, hlc, now)
            .await
            .expect("properties");
        tx.commit().await.expect("commit data");
        Tenant {
            id: created.tenant_id,
            slug: created.slug,
            crew: created.crew_id,
            admin_email,
            storm: storm.id,
            properties: records.iter().map(|p| p.id).collect(),
        }
    }

    /// The ids of every row of `table` the tenant holds on the server.
    pub async fn ids(&self, tenant: TenantId, table: &str) -> BTreeSet<Uuid> {
        let mut tx = self.app.begin_tenant(tenant).await.expect("tenant tx");
        let ids: Vec<Uuid> = sqlx::query_scalar(&format!("SELECT id FROM {table}"))
            .fetch_all(tx.connection())
            .await
            .expect("ids");
        tx.commit().await.expect("commit");
        ids.into_iter().collect()
    }

    /// Rows of `table` in the tenant on the server.
    pub async fn count(&self, tenant: TenantId, table: &str) -> i64 {
        let mut tx = self.app.begin_tenant(tenant).await.expect("tenant tx");
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(tx.connection())
            .await
            .expect("count");
        tx.commit().await.expect("commit");
        n
    }

    /// Every property's status on the server.
    pub async fn statuses(&self, tenant: TenantId) -> BTreeMap<Uuid, String> {
        let mut tx = self.app.begin_tenant(tenant).await.expect("tenant tx");
        let rows: Vec<(Uuid, String)> = sqlx::query_as("SELECT id, status FROM properties")
            .fetch_all(tx.connection())
            .await
            .expect("statuses");
        tx.commit().await.expect("commit");
        rows.into_iter().collect()
    }
}

pub fn storm(id: StormId, now: Timestamp) -> Storm {
    Storm {
        id,
        event_id: "NWS-E2E".into(),
        name: "E2E hail".into(),
        started_at: now.plus_millis(-86_400_000),
        ended_at: None,
        hail_size_in: 2.0,
        wind_mph: 60.0,
        affected_area: "Norman, OK".into(),
        status: StormStatus::Active,
    }
}

pub fn property(storm: StormId, n: usize, marker: &str) -> Property {
    Property {
        id: PropertyId::generate(),
        storm_id: storm,
        external_id: format!("P-{n}"),
        address: format!("{n} {marker} Lane"),
        latitude: 35.2 + n as f64 * 0.0001,
        longitude: -97.4,
        roof_age_years: Some(12.0),
        roof_material: Some(RoofMaterial::AsphaltShingle),
        square_feet: Some(2_000.0),
        home_value: Some(Cents(30_000_000)),
        hail_size_in: Some(1.5),
        distance_to_core_km: Some(2.0),
        prior_claims: 0,
        owner_name: Some(format!("Owner {marker}")),
        owner_phone: None,
        owner_email: None,
        status: PropertyStatus::New,
    }
}

/// The operating system's clock shifted by a settable offset: a laptop whose date is set wrong, then
/// corrected. Installed with [`use_offset_clock`].
#[derive(Debug, Clone, Default)]
pub struct OffsetClock(Arc<AtomicI64>);

impl OffsetClock {
    /// Moves the laptop's clock to the operating system's plus `offset_ms` (negative: behind).
    pub fn set(&self, offset_ms: i64) {
        self.0.store(offset_ms, Ordering::SeqCst);
    }
}

impl WallClock for OffsetClock {
    fn now(&self) -> Timestamp {
        Timestamp::now().plus_millis(self.0.load(Ordering::SeqCst))
    }
}

/// Gives the laptop's tenant file an [`OffsetClock`] (offset 0 until set) and returns it.
pub async fn use_offset_clock(l: &Laptop) -> OffsetClock {
    let clock = OffsetClock::default();
    let installed = clock.clone();
    l.engine
        .with_store(move |s| {
            s.set_wall_clock(Box::new(installed));
            Ok(())
        })
        .await
        .expect("install the laptop's clock");
    clock
}

/// One field laptop: its data directory, its signed-in tenant file, its proxy and its engine.
#[derive(Debug)]
pub struct Laptop {
    pub engine: Arc<SyncEngine>,
    pub proxy: FaultProxy,
    pub user: UserId,
    pub device: DeviceId,
    pub data_dir: DataDir,
    pub dir: PathBuf,
    pub tenant: TenantId,
}

/// Engine settings for tests: small batches so one sync spans many requests (and faults land inside).
pub fn test_config() -> EngineConfig {
    EngineConfig {
        push_batch: 200,
        pull_limit: 300,
        interval: Duration::from_secs(1),
        debounce: Duration::from_millis(50),
        ..EngineConfig::default()
    }
}

/// Signs a new laptop in at `dir` through a fresh proxy in front of `server`.
pub async fn laptop(
    server: std::net::SocketAddr,
    slug: &str,
    email: &str,
    dir: &Path,
    config: EngineConfig,
) -> Laptop {
    laptop_with_protocol(
        server,
        slug,
        email,
        dir,
        config,
        sync_protocol::PROTOCOL_VERSION,
    )
    .await
}

pub async fn laptop_with_protocol(
    server: std::net::SocketAddr,
    slug: &str,
    email: &str,
    dir: &Path,
    config: EngineConfig,
    protocol: u32,
) -> Laptop {
    let proxy = FaultProxy::start(server).await.expect("proxy");
    let data_dir = DataDir::new(dir).expect("data dir");
    let passphrase = Passphrase::new_checked(PASSPHRASE).expect("passphrase");
    let signed = sign_in(
        &data_dir,
        SignInRequest {
            server_url: &proxy.url(),
            tenant_slug: slug,
            email,
            password: Zeroizing::new(PASSWORD.to_owned()),
            local_user: "crew",
            passphrase: &passphrase,
            device_name: "e2e laptop",
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{email} signs in: {e}"));
    let device = signed.store.device_id();
    let tenant = signed.store.tenant_id();
    let client = SyncClient::with_protocol(&proxy.url(), protocol).expect("client");
    let engine = SyncEngine::new(signed.store, data_dir.clone(), client, config);
    engine.accept_tokens(&signed.tokens).await.expect("tokens");
    Laptop {
        engine,
        proxy,
        user: signed.tokens.user_id,
        device,
        data_dir,
        dir: dir.to_owned(),
        tenant,
    }
}

/// `n` touches by `laptop` spread over `properties`, stamped a minute ago.
pub fn touches(
    laptop: &Laptop,
    storm: StormId,
    properties: &[PropertyId],
    n: usize,
    notes: &str,
) -> Vec<JourneyTouch> {
    let at = Timestamp::now().plus_millis(-60_000);
    (0..n)
        .map(|i| JourneyTouch {
            id: TouchId::generate(),
            property_id: properties[i % properties.len()],
            storm_id: storm,
            user_id: laptop.user,
            device_id: laptop.device,
            channel: Channel::DoorKnock,
            result: TouchResult::Talked,
            notes: format!("{notes} {i}"),
            occurred_at: at,
        })
        .collect()
}

pub async fn write_touches(laptop: &Laptop, batch: Vec<JourneyTouch>) {
    laptop
        .engine
        .with_store(move |s| s.add_touches(&batch).map(|_| ()))
        .await
        .expect("write touches");
}

pub async fn pending(laptop: &Laptop) -> i64 {
    laptop
        .engine
        .with_store(|s| s.pending_counts())
        .await
        .expect("pending counts")
        .pending
}

/// What a laptop holds: ids of touches, outcomes and decisions of `properties`, and their statuses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LocalState {
    pub touches: BTreeSet<Uuid>,
    pub outcomes: BTreeSet<Uuid>,
    pub decisions: BTreeSet<Uuid>,
    pub statuses: BTreeMap<Uuid, String>,
}

pub async fn local_state(laptop: &Laptop, properties: &[PropertyId]) -> LocalState {
    let properties = properties.to_vec();
    laptop
        .engine
        .with_store(move |s| {
            let mut state = LocalState::default();
            for id in properties {
                if let Some(p) = s.property(id)? {
                    state.statuses.insert(id.0, p.status.as_str().to_owned());
                }
                for entry in s.timeline(id)? {
                    match entry {
                        TimelineEntry::Touch(t) => state.touches.insert(t.id.0),
                        TimelineEntry::Outcome(o) => state.outcomes.insert(o.id.0),
                        TimelineEntry::Decision(d) => state.decisions.insert(d.id.0),
                    };
                }
            }
            Ok(state)
        })
        .await
        .expect("local state")
}

/// A PostgreSQL superuser connection to the test database (for what no API does: expiring a token).
pub async fn superuser_exec(url: &str, sql: &str) -> u64 {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .expect("superuser connects");
    let done = sqlx::query(sql).execute(&mut conn).await.expect(sql);
    conn.close().await.expect("close");
    done.rows_affected()
}

/// Waits (bounded) until `check` holds, polling; panics with `what` if it never does.
pub async fn eventually<F, Fut>(what: &str, bound: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(
            started.elapsed() < bound,
            "{what} did not happen within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A workspace binary next to the running executable: `target/<profile>/NAME` for a test executable
/// (`target/<profile>/deps/<test>`) or a binary (`target/<profile>/<bin>`). `cargo test --workspace` (and
/// `cargo xtask test`) builds every workspace binary before running tests.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the running executable");
    let mut dir = exe.parent().expect("target/<profile>").to_path_buf();
    if dir.file_name().is_some_and(|d| d == "deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace binaries first (`cargo build --workspace`, or run the tests \
         with `cargo test --workspace`)",
        path.display()
    );
    path
}

/// A free loopback port (bound and released: the caller binds it again soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// `stormops-server serve` on `port`, over the backend's database; returns once it listens.
pub fn spawn_server(backend: &Backend, port: u16) -> std::process::Child {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(workspace_binary("stormops-server"))
        .arg("serve")
        .env("STORMOPS_DATABASE_URL", &backend.init.app_url)
        .env("STORMOPS_CONTROL_DATABASE_URL", &backend.init.control_url)
        .env("STORMOPS_BIND", format!("127.0.0.1:{port}"))
        .env("STORMOPS_LOG", "error")
        // No token key: each process makes its own, so a laptop's access token dies with the process
        // (as for an operator who did not set one) and the engine must get a new one by itself.
        .env_remove("STORMOPS_TOKEN_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("stormops-server starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("the server's first line");
    assert!(line.starts_with("listening on"), "server said {line:?}");
    child
}

impl Backend {
    /// Pull-feed rows (`change_log`) that belong to rows of `table`: one per row when nothing was
    /// applied twice.
    pub async fn feed_rows_of(&self, tenant: TenantId, table: &str) -> i64 {
        let mut tx = self.app.begin_tenant(tenant).await.expect("tenant tx");
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM change_log WHERE entity_id IN (SELECT id FROM {table})"
        ))
        .fetch_one(tx.connection())
        .await
        .expect("feed rows");
        tx.commit().await.expect("commit");
        n
    }

    /// The tenant's metered synced events (all months), read as the superuser: every accepted change
    /// is counted once, so a batch applied twice would show here.
    pub async fn synced_events(&self, tenant: TenantId) -> i64 {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.superuser_url)
            .await
            .expect("superuser connects");
        let n: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(used), 0)::bigint FROM quota_counters \
             WHERE tenant_id = $1 AND kind = 'synced_events'",
        )
        .bind(tenant.0)
        .fetch_one(&mut conn)
        .await
        .expect("synced events");
        conn.close().await.expect("close");
        n
    }
}

impl Backend {
    /// Where records sit in the pull feed, for explaining a missing one: `txid, change id, crew scope,
    /// user scope` of the feed rows of the records `ids`, in feed order.
    pub async fn feed_positions(&self, tenant: TenantId, ids: &[Uuid]) -> Vec<(String, Uuid)> {
        let mut tx = self.app.begin_tenant(tenant).await.expect("tenant tx");
        let rows: Vec<(String, Uuid)> = sqlx::query_as(
            "SELECT concat_ws(' ', txid::text, coalesce(scope_crew::text, '-'), coalesce(scope_user::text, '-')), id \
             FROM change_log WHERE entity_id = ANY($1) ORDER BY txid, entity_id, id",
        )
        .bind(ids)
        .fetch_all(tx.connection())
        .await
        .expect("feed positions");
        tx.commit().await.expect("commit");
        rows
    }
}
