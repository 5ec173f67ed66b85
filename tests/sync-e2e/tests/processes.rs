//! Crashes and restarts of real processes: the `stormops-field` CLI killed with SIGKILL mid-push and
//! run again (then its redacted diagnostics bundle), the `stormops-server` child process killed mid-push
//! and replaced on the same port, and PostgreSQL restarted under a sync. Each time every event ends up
//! on the server exactly once and the laptop's outbox drains, without anyone stepping in.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use desktop_core::{Connectivity, EngineConfig};
use domain::*;
use fault_proxy::Fault;
use local_store::{DataDir, Passphrase};
use sync_server::state::ServerSettings;
use uuid::Uuid;

const NOTE_SECRET: &str = "gate code 4417 behind the blue shed";
const ADDRESS_MARKER: &str = "Secretorchard";

fn field_cli(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(workspace_binary("stormops-field"));
    cmd.arg("--json")
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("STORMOPS_DATA_DIR")
        .env_remove("STORMOPS_TENANT")
        .env_remove("STORMOPS_USER")
        .env("STORMOPS_PASSPHRASE", PASSPHRASE)
        .env("STORMOPS_PASSWORD", PASSWORD)
        .stdin(Stdio::null());
    cmd
}

fn json_of(output: &std::process::Output, what: &str) -> serde_json::Value {
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"))
}

/// Adds `n` touches to the file directly (the CLI's own writes go through the same store), returning
/// their ids. The file is closed again on return so the CLI can take its lock.
fn write_backlog(dir: &std::path::Path, tenant: TenantId, n: usize) -> BTreeSet<Uuid> {
    let data_dir = DataDir::new(dir).unwrap();
    let mut store = data_dir
        .open(tenant, None, &Passphrase::new(PASSPHRASE))
        .expect("the CLI's file opens");
    let user = store.server_account().unwrap().expect("signed in").user_id;
    let device = store.device_id();
    let storm = store.storms().unwrap()[0].id;
    let properties: Vec<PropertyId> = store
        .ranked_properties(&local_store::PropertyQuery {
            storm_id: Some(storm),
            limit: 1_000,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|r| r.property.id)
        .collect();
    let at = Timestamp::now().plus_millis(-60_000);
    let batch: Vec<JourneyTouch> = (0..n)
        .map(|i| JourneyTouch {
            id: TouchId::generate(),
            property_id: properties[i % properties.len()],
            storm_id: storm,
            user_id: user,
            device_id: device,
            channel: Channel::DoorKnock,
            result: TouchResult::Talked,
            notes: format!("{NOTE_SECRET} #{i}"),
            occurred_at: at,
        })
        .collect();
    store.add_touches(&batch).unwrap();
    batch.iter().map(|t| t.id.0).collect()
}

fn pending_in_file(dir: &std::path::Path, tenant: TenantId) -> i64 {
    DataDir::new(dir)
        .unwrap()
        .open(tenant, None, &Passphrase::new(PASSPHRASE))
        .unwrap()
        .pending_counts()
        .unwrap()
        .pending
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_killed_mid_push_resumes_exactly_once_and_its_diagnostics_are_redacted() {
    const BACKLOG: usize = 20_000;
    let backend = Backend::fresh().await;
    let server = backend.serve(ServerSettings::default()).await;
    let email = "crew@cli.example";
    let t = backend
        .tenant("Cli", &[(email, Role::FieldUser)], 25, ADDRESS_MARKER)
        .await;
    let proxy = fault_proxy::FaultProxy::start(server.addr).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("laptop");

    let login = field_cli(&dir)
        .args(["login", "--server", &proxy.url(), "--slug", &t.slug])
        .args(["--email", email, "--device-name", "truck 7"])
        .output()
        .unwrap();
    let login = json_of(&login, "login");
    let tenant: TenantId = login["tenant_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(tenant, t.id);
    let recovery_key = login["recovery_key"]
        .as_str()
        .expect("shown once")
        .to_owned();
    // A first sync brings the storm and its properties down.
    json_of(&field_cli(&dir).arg("sync").output().unwrap(), "first sync");

    let created = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || write_backlog(&dir, tenant, BACKLOG)
    })
    .await
    .unwrap();
    // A slow link, so the kill lands while batches are in flight.
    proxy.set(Fault::Delay(Duration::from_millis(3)));
    let mut child: Child = field_cli(&dir)
        .arg("sync")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually(
        "the first batch reaching the server",
        Duration::from_secs(120),
        || async { backend.count(t.id, "journey_touches").await > 0 },
    )
    .await;
    child.kill().expect("SIGKILL");
    let status = child.wait().unwrap();
    assert!(!status.success(), "the sync was killed, not finished");
    let pending_after_kill = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || pending_in_file(&dir, tenant)
    })
    .await
    .unwrap();
    assert!(
        pending_after_kill > 0,
        "the kill landed mid-push (the outbox still held changes)"
    );

    proxy.set(Fault::Pass);
    let resumed = json_of(
        &field_cli(&dir).arg("sync").output().unwrap(),
        "sync after the kill",
    );
    assert_eq!(
        backend.ids(t.id, "journey_touches").await,
        created,
        "every touch is on the server exactly once"
    );
    let report = &resumed["report"];
    assert_eq!(
        report["pushed"].as_u64().unwrap() + report["duplicates"].as_u64().unwrap(),
        pending_after_kill as u64,
        "the rerun settled exactly what the killed run left pending"
    );
    let refresh_token = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || {
            let store = DataDir::new(&dir)
                .unwrap()
                .open(tenant, None, &Passphrase::new(PASSPHRASE))
                .unwrap();
            assert_eq!(store.pending_counts().unwrap().pending, 0, "outbox empty");
            store.refresh_token().unwrap().expect("kept").to_string()
        }
    })
    .await
    .unwrap();

    // The support bundle: counts, cursors and recent syncs, and nothing personal or secret.
    let out = field_cli(&dir).arg("diagnostics").output().unwrap();
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    let bundle = json_of(&out, "diagnostics");
    assert_eq!(bundle["counts"]["touches"], BACKLOG as u64);
    assert_eq!(bundle["counts"]["properties"], 25);
    assert_eq!(bundle["outbox"]["pending"], 0);
    assert!(bundle["sync_state"]["cursor"].is_string(), "{bundle}");
    let syncs = bundle["recent_syncs"].as_array().expect("recent syncs");
    assert!(
        syncs.iter().filter(|s| s["outcome"] == "ok").count() >= 2,
        "{syncs:?}"
    );
    for (what, secret) in [
        ("the email", email.to_owned()),
        ("an address", ADDRESS_MARKER.to_owned()),
        ("a note", NOTE_SECRET.to_owned()),
        ("the refresh token", refresh_token.clone()),
        ("the passphrase", PASSPHRASE.to_owned()),
        ("the account password", PASSWORD.to_owned()),
        ("the recovery key", recovery_key.clone()),
        ("the recovery key's digits", recovery_key.replace('-', "")),
    ] {
        assert!(!secret.is_empty());
        assert!(!raw.contains(&secret), "the bundle contains {what}");
    }
    server.stop().await;
}

/// Runs the agent until the outbox is empty and the last sync succeeded (bounded generously).
async fn agent_drains(laptop: &Laptop, what: &str) {
    eventually(what, Duration::from_secs(180), || async {
        let s = laptop.engine.status();
        s.pending == 0 && s.connectivity == Connectivity::Online
    })
    .await;
}

fn agent_config() -> EngineConfig {
    EngineConfig {
        push_batch: 500,
        ..test_config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_process_is_replaced_and_the_agent_recovers_by_itself() {
    const BACKLOG: usize = 10_000;
    let backend = Backend::fresh().await;
    let email = "crew@srv.example";
    let t = backend
        .tenant("Server Kill", &[(email, Role::FieldUser)], 20, "Kill")
        .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = spawn_server(&backend, port);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let crew = laptop(
        addr,
        &t.slug,
        email,
        &tmp.path().join("crew"),
        agent_config(),
    )
    .await;
    crew.engine.sync_once().await.expect("first sync");
    let batch = touches(&crew, t.storm, &t.properties, BACKLOG, "backlog");
    let created: BTreeSet<Uuid> = batch.iter().map(|t| t.id.0).collect();
    write_touches(&crew, batch).await;

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let agent = tokio::spawn(Arc::clone(&crew.engine).run(stopped));
    eventually(
        "the first batch reaching the server",
        Duration::from_secs(120),
        || async { backend.count(t.id, "journey_touches").await > 0 },
    )
    .await;
    server.kill().expect("SIGKILL the server");
    server.wait().unwrap();
    let at_kill = backend.count(t.id, "journey_touches").await;
    assert!(
        (at_kill as usize) < BACKLOG,
        "the server died mid-push ({at_kill} of {BACKLOG} applied)"
    );
    let mut replacement = spawn_server(&backend, port);
    agent_drains(
        &crew,
        "the agent draining the outbox after the server restart",
    )
    .await;
    assert_eq!(
        backend.ids(t.id, "journey_touches").await,
        created,
        "every touch exactly once"
    );
    stop.send(true).unwrap();
    agent.await.unwrap();
    replacement.kill().unwrap();
    replacement.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_a_sync_is_survived_exactly_once() {
    const BACKLOG: usize = 10_000;
    // A cluster of this test's own: restarting the shared one would break every other test.
    let cluster = tokio::task::spawn_blocking(test_postgres::DedicatedCluster::start)
        .await
        .unwrap()
        .expect("a dedicated PostgreSQL cluster");
    let cluster = Arc::new(cluster);
    let db = cluster.fresh_database().await.expect("database");
    let backend = Backend::on(&db.server_url, &db.name, &db.role_prefix, &db.superuser_url).await;
    let server = backend.serve(ServerSettings::default()).await;
    let email = "crew@pg.example";
    let t = backend
        .tenant("Pg Restart", &[(email, Role::FieldUser)], 20, "Pg")
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let crew = laptop(
        server.addr,
        &t.slug,
        email,
        &tmp.path().join("crew"),
        agent_config(),
    )
    .await;
    crew.engine.sync_once().await.expect("first sync");
    let batch = touches(&crew, t.storm, &t.properties, BACKLOG, "backlog");
    let created: BTreeSet<Uuid> = batch.iter().map(|t| t.id.0).collect();
    write_touches(&crew, batch).await;

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let agent = tokio::spawn(Arc::clone(&crew.engine).run(stopped));
    eventually(
        "the first batch reaching the server",
        Duration::from_secs(120),
        || async { backend.count(t.id, "journey_touches").await > 0 },
    )
    .await;
    let restart = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || restart.restart())
        .await
        .unwrap()
        .expect("pg_ctl restart");
    let after_restart = backend.count(t.id, "journey_touches").await;
    assert!(
        (after_restart as usize) < BACKLOG,
        "PostgreSQL restarted mid-push ({after_restart} of {BACKLOG} applied)"
    );
    agent_drains(
        &crew,
        "the agent draining the outbox after the PostgreSQL restart",
    )
    .await;
    assert_eq!(
        backend.ids(t.id, "journey_touches").await,
        created,
        "every touch exactly once"
    );
    stop.send(true).unwrap();
    agent.await.unwrap();
    server.stop().await;
}
