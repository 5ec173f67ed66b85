//! The crew chief's "each laptop's sync health" through the whole chain: the real server in-process over
//! real PostgreSQL, laptops signed in through `App::sign_in` with real SQLCipher files, and the App's
//! `crew_sync_health` command: the chief sees its crew's laptops as the server saw them with its own row
//! merged in, a viewer is refused, and with the server gone the chief still sees its own laptop and is
//! told why the others are missing.

use std::time::Duration;

use desktop_core::EngineConfig;
use desktop_core::app::App;
use domain::*;
use local_store::DataDir;
use server_store::{NewUser, init_database};
use sync_server::serve::{RunningServer, ServerConfig, start};
use sync_server::state::ServerSettings;

const PASSWORD: &str = "sync-health-test-password";
const PASSPHRASE: &str = "laptop passphrase 123";

async fn server() -> (RunningServer, String, test_postgres::TestDatabase) {
    let db = test_postgres::fresh_database().await.expect("database");
    let init = init_database(&db.server_url, &db.name, &db.role_prefix)
        .await
        .expect("init");
    let config = ServerConfig {
        database_url: init.app_url,
        control_database_url: init.control_url,
        pool_size: 4,
        settings: ServerSettings::default(),
    };
    let server = start(&config, "127.0.0.1:0").await.expect("server");
    let hash = sync_server::auth::password::hash_password(PASSWORD).expect("hash");
    let created = sync_server::provisioning::provision_tenant(
        &server.state.control,
        "Summit Roofing",
        Some("summit"),
        PlanTier::Standard,
        "admin@summit.example",
        "Ada Admin",
        hash.clone(),
    )
    .await
    .expect("provision");
    let mut tx = server
        .state
        .control
        .begin_tenant(created.tenant_id)
        .await
        .expect("tenant tx");
    for (email, role, crew) in [
        (
            "chief@summit.example",
            Role::CrewChief,
            Some(created.crew_id),
        ),
        (
            "field@summit.example",
            Role::FieldUser,
            Some(created.crew_id),
        ),
        ("viewer@summit.example", Role::Viewer, None),
    ] {
        let user = NewUser {
            id: UserId::generate(),
            email: email.to_owned(),
            name: email.split('@').next().unwrap_or(email).to_owned(),
            role,
            crew_id: crew,
            password_hash: hash.clone(),
        };
        tx.add_user(&user, Timestamp::now())
            .await
            .expect("add user");
    }
    tx.commit().await.expect("commit");
    let url = format!("http://{}", server.addr);
    (server, url, db)
}

/// A laptop: a fresh data directory, a local file, unlocked, then signed in to the server.
async fn laptop(dir: &tempfile::TempDir, name: &str, url: &str, email: &str) -> App {
    let data_dir = DataDir::new(dir.path().join(name)).expect("data dir");
    let app = App::new(data_dir, EngineConfig::default(), name);
    let created = app
        .create_tenant("Summit".into(), "crew".into(), PASSPHRASE.into())
        .await
        .expect("local file");
    app.unlock(created.tenant.tenant_id, "crew".into(), PASSPHRASE.into())
        .await
        .expect("unlock");
    app.sign_in(url.into(), "summit".into(), email.into(), PASSWORD.into())
        .await
        .expect("sign in");
    app
}

/// Waits until the laptop's first sync after sign-in has finished.
async fn synced(app: &App) {
    for _ in 0..200 {
        if app
            .sync_status()
            .await
            .expect("status")
            .last_success_at_ms
            .is_some()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the laptop never finished a sync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chief_sees_its_crews_laptops_as_the_server_saw_them() {
    let (server, url, _db) = server().await;
    let dirs = tempfile::tempdir().expect("temp dir");
    let field = laptop(&dirs, "field laptop", &url, "field@summit.example").await;
    synced(&field).await;
    let chief = laptop(&dirs, "chief laptop", &url, "chief@summit.example").await;
    synced(&chief).await;

    let health = chief.crew_sync_health().await.expect("sync health");
    assert!(health.from_server, "{health:?}");
    assert!(health.server_error.is_none());
    let mine: Vec<_> = health.devices.iter().filter(|d| d.this_laptop).collect();
    assert_eq!(mine.len(), 1, "exactly one row is this laptop: {health:?}");
    assert_eq!(mine[0].device_name, "chief laptop");
    assert_eq!(
        mine[0].pending,
        Some(chief.sync_status().await.expect("status").pending)
    );
    let theirs = health
        .devices
        .iter()
        .find(|d| d.device_name == "field laptop")
        .unwrap_or_else(|| panic!("the field laptop is listed: {health:?}"));
    assert!(!theirs.this_laptop);
    assert_eq!(theirs.pending, None, "the server cannot know what it holds");
    assert!(
        theirs.last_pull_at_ms.is_some(),
        "its first sync pulled: {theirs:?}"
    );
    assert_eq!(
        theirs.last_sync_at_ms,
        theirs.last_pull_at_ms.max(theirs.last_push_at_ms)
    );
    assert_eq!(theirs.refused_total, Some(0));
    assert_eq!(theirs.status, DeviceStatus::Active);

    // A viewer's laptop is refused before anything is asked.
    let viewer = laptop(&dirs, "viewer laptop", &url, "viewer@summit.example").await;
    let refused = viewer.crew_sync_health().await.expect_err("refused");
    assert_eq!(refused.code, "session.forbidden");

    // The server goes away: this laptop alone, and the reason in a stable code.
    server.stop().await;
    let health = chief.crew_sync_health().await.expect("sync health offline");
    assert!(!health.from_server);
    assert_eq!(health.devices.len(), 1);
    assert!(health.devices[0].this_laptop);
    let why = health.server_error.expect("a reason");
    assert!(why.code.starts_with("sync."), "{why:?}");
}
