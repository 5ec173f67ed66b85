//! The real desktop app end to end. The operator sets up `stormops-server` (db init, tenant, users) on a
//! private database; an office laptop (headless, the same engine) creates a storm and its properties; a
//! field laptop signs in and takes them along; the office runs the experiment and the server trains.
//! Then the server goes down, and the real `stormops-desktop` binary is started on the field laptop's
//! data directory under Xvfb through tauri-driver and WebKitWebDriver. The test unlocks the file in the
//! UI, logs a touch offline and sees it waiting in the sync bar, starts the server again, and watches
//! the pending count drain to zero and the uplift score arrive on the property list; the office then
//! finds the touch on the server.
//!
//! It needs a display, tauri-driver, WebKitWebDriver and a build of the app that embeds the built UI,
//! so it is ignored by plain `cargo test`; `cargo xtask test` installs all of that and runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use desktop_core::{EngineConfig, SignInRequest, SyncEngine, sign_in};
use desktop_e2e::Session;
use domain::*;
use local_store::{DataDir, Passphrase};
use serde_json::Value;
use sync_client::SyncClient;
use zeroize::Zeroizing;

const PASSWORD: &str = "desktop e2e password";
const PASSPHRASE: &str = "truck passphrase 2026";
const LOCAL_USER: &str = "sam";
const FIELD_EMAIL: &str = "sam@summit.example";
const ADMIN_EMAIL: &str = "office@summit.example";
const PROPERTIES: usize = 400;
const NOTE: &str = "Dents on the gutters; inspection Thursday.";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the workspace root")
        .to_path_buf()
}

/// A binary of this workspace in the test's own target profile directory.
fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo xtask test` builds it (cargo build -p sync-server -p stormops-desktop)",
        path.display()
    );
    path
}

/// tauri-driver: `$TAURI_DRIVER`, else `~/.cargo/bin/tauri-driver`, else the one on PATH.
fn tauri_driver() -> PathBuf {
    if let Some(path) = std::env::var_os("TAURI_DRIVER") {
        return PathBuf::from(path);
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    match cargo_home.map(|h| h.join("bin/tauri-driver")) {
        Some(path) if path.exists() => path,
        _ => PathBuf::from("tauri-driver"),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run_json(cmd: &mut Command) -> Value {
    let output = cmd.output().expect("run the operator CLI");
    assert!(
        output.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the operator CLI prints JSON")
}

/// The server as the operator runs it.
struct Server {
    bin: PathBuf,
    app_url: String,
    control_url: String,
    port: u16,
    child: Option<Child>,
}

impl Server {
    fn operator(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env("STORMOPS_CONTROL_DATABASE_URL", &self.control_url)
            .arg("--json");
        cmd
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `stormops-server serve`; returns once it listens.
    fn start(&mut self) {
        let mut child = Command::new(&self.bin)
            .arg("serve")
            .env("STORMOPS_DATABASE_URL", &self.app_url)
            .env("STORMOPS_CONTROL_DATABASE_URL", &self.control_url)
            .env("STORMOPS_BIND", format!("127.0.0.1:{}", self.port))
            .env("STORMOPS_LOG", "error")
            // The test trains on purpose; the background trainer would race it.
            .env("STORMOPS_TRAIN_INTERVAL_SECS", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("stormops-server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("listening on"), "server said {line:?}");
        self.child = Some(child);
    }

    /// Kills the server process (the connection is gone, as when a truck leaves coverage).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A child process killed when the test ends, pass or fail.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A headless laptop: a signed-in tenant file behind the real sync engine.
struct Laptop {
    engine: Arc<SyncEngine>,
    access_token: Zeroizing<String>,
}

async fn laptop(server: &Server, dir: &Path, slug: &str, email: &str, user: &str) -> Laptop {
    let data_dir = DataDir::new(dir).unwrap();
    let passphrase = Passphrase::new_checked(PASSPHRASE).unwrap();
    let signed = sign_in(
        &data_dir,
        SignInRequest {
            server_url: &server.url(),
            tenant_slug: slug,
            email,
            password: Zeroizing::new(PASSWORD.to_owned()),
            local_user: user,
            passphrase: &passphrase,
            device_name: "desktop e2e",
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{email} signs in: {e}"));
    let client = SyncClient::new(&server.url()).unwrap();
    let engine = SyncEngine::new(signed.store, data_dir, client, EngineConfig::default());
    engine.accept_tokens(&signed.tokens).await.unwrap();
    Laptop {
        engine,
        access_token: Zeroizing::new(signed.tokens.access_token.clone()),
    }
}

async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    let started = Instant::now();
    loop {
        let Some(last) = check().await else {
            return;
        };
        assert!(
            started.elapsed() < within,
            "{what}: still not true after {within:?}; last seen: {last}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A string the page's script returned (empty when it returned null).
async fn text(app: &Session, script: &str) -> String {
    match app.script(script).await {
        Ok(Value::String(s)) => s,
        Ok(Value::Null) => String::new(),
        Ok(other) => other.to_string(),
        Err(e) => format!("(script failed: {e})"),
    }
}

/// Finds an element, waiting for it to be rendered.
async fn find(app: &Session, css: &str) -> desktop_e2e::Element {
    let started = Instant::now();
    loop {
        match app.find(css).await {
            Ok(element) => return element,
            Err(e) if started.elapsed() < Duration::from_secs(30) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                let body = text(app, "return document.body.innerText.slice(0, 800);").await;
                panic!("{css} never appeared: {e}; the page shows: {body}");
            }
        }
    }
}

const SYNC_PENDING: &str =
    "return document.querySelector('[data-testid=sync-pending]')?.textContent ?? null;";
const CONNECTIVITY: &str =
    "return document.querySelector('.syncbar')?.dataset.connectivity ?? null;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a display (Xvfb), tauri-driver, WebKitWebDriver and the app built with the UI: run by `cargo xtask test`"]
async fn the_app_logs_a_touch_offline_then_drains_it_and_receives_a_score_when_the_server_returns()
{
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "no DISPLAY: run under xvfb-run (cargo xtask test does)"
    );
    let index = std::fs::read_to_string(workspace_root().join("ui/dist/index.html"))
        .expect("ui/dist is built");
    assert!(
        !index.contains("The UI is not built"),
        "ui/dist holds the placeholder: run `npm run build` in ui/, then rebuild stormops-desktop"
    );
    let app_binary = workspace_binary("stormops-desktop");
    let tmp = tempfile::tempdir().unwrap();

    // 1. The operator: a private database, the server's roles and schema, a tenant and a field user.
    let db = test_postgres::fresh_database()
        .await
        .expect("a test PostgreSQL");
    let bin = workspace_binary("stormops-server");
    let init = run_json(Command::new(&bin).args([
        "--json",
        "db",
        "init",
        "--superuser-url",
        &db.server_url,
        "--database",
        &db.name,
        "--role-prefix",
        &db.role_prefix,
    ]));
    let mut server = Server {
        bin,
        app_url: init["app_url"].as_str().unwrap().to_owned(),
        control_url: init["control_url"].as_str().unwrap().to_owned(),
        port: free_port(),
        child: None,
    };
    let created = run_json(
        server
            .operator()
            .env("STORMOPS_ADMIN_PASSWORD", PASSWORD)
            .args([
                "tenant",
                "create",
                "--name",
                "Summit Roofing",
                "--plan",
                "standard",
                "--admin-email",
                ADMIN_EMAIL,
                "--admin-name",
                "Dana Office",
            ]),
    );
    let slug = created["slug"].as_str().unwrap().to_owned();
    run_json(
        server
            .operator()
            .env("STORMOPS_USER_PASSWORD", PASSWORD)
            .args([
                "user",
                "add",
                "--tenant",
                &slug,
                "--email",
                FIELD_EMAIL,
                "--name",
                "Sam Field",
                "--role",
                "field_user",
                "--default-crew",
            ]),
    );
    server.start();

    // 2. The office creates the storm and its properties.
    let office = laptop(
        &server,
        &tmp.path().join("office"),
        &slug,
        ADMIN_EMAIL,
        "dana",
    )
    .await;
    let synthetic =
        uplift::synthetic::SyntheticStorm::generate(&uplift::synthetic::SyntheticStormConfig {
            properties: PROPERTIES,
            seed: 7,
            ..Default::default()
        })
        .unwrap();
    let storm_id = synthetic.storm_id;
    let storm = Storm {
        id: storm_id,
        event_id: "NWS-E2E-1".into(),
        name: "Norman hail".into(),
        started_at: Timestamp::now().plus_millis(-2 * 86_400_000),
        ended_at: None,
        hail_size_in: 2.0,
        wind_mph: 60.0,
        affected_area: "Norman, OK".into(),
        status: StormStatus::Active,
    };
    let properties = synthetic.properties.clone();
    office
        .engine
        .with_store(move |s| {
            s.add_storm(&storm)?;
            s.import_properties(&properties)
        })
        .await
        .unwrap();
    office.engine.sync_once().await.unwrap();

    // 3. The field laptop signs in and takes the storm along (no scores exist yet).
    let app_dir = tmp.path().join("app-data");
    let field = laptop(&server, &app_dir, &slug, FIELD_EMAIL, LOCAL_USER).await;
    field.engine.sync_once().await.unwrap();
    field.engine.close().await;
    drop(field);
    // The file opens for its local user with its passphrase, as the app will open it.
    let files = DataDir::new(&app_dir).unwrap();
    let entry = files
        .list_tenants()
        .unwrap()
        .pop()
        .expect("the field laptop's file");
    let store = files
        .open(
            entry.tenant_id,
            Some(LOCAL_USER),
            &Passphrase::new(PASSPHRASE),
        )
        .expect("the field file opens");
    let counts = store.record_counts().unwrap();
    assert_eq!(
        (counts.properties, counts.scored_properties),
        (PROPERTIES as i64, 0),
        "the field laptop took the storm along, unscored: {counts:?}"
    );
    drop(store);

    // 4. The office runs the experiment, its outcomes come in, and the server trains: scores exist on
    //    the server that the field laptop has not seen.
    let admin = SyncClient::new(&server.url()).unwrap();
    let experiment = admin
        .admin_create_experiment(&office.access_token, storm_id, 0.5)
        .await
        .unwrap();
    let seed = experiment["experiment"]["seed"].as_u64().unwrap();
    let now = Timestamp::now();
    let outcomes: Vec<Outcome> = synthetic
        .properties
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let arm = uplift::experiment::arm_for(seed, p.id, 0.5).unwrap();
            let chance = synthetic.true_p_hold[i]
                + if arm == Arm::Treatment {
                    synthetic.true_uplift[i]
                } else {
                    0.0
                };
            let converted = uplift::experiment::assignment_draw(11, p.id) < chance;
            Outcome {
                id: OutcomeId::generate(),
                property_id: p.id,
                storm_id,
                converted,
                contract_value: Cents(if converted { 1_200_000 } else { 0 }),
                occurred_at: now,
            }
        })
        .collect();
    office
        .engine
        .with_store(move |s| {
            outcomes
                .iter()
                .try_for_each(|o| s.add_outcome(o).map(|_| ()))
        })
        .await
        .unwrap();
    office.engine.sync_once().await.unwrap();
    let trained = admin
        .admin_train(&office.access_token, storm_id)
        .await
        .expect("the server trains");
    assert!(trained["scored"].as_u64().unwrap_or(0) > 0, "{trained}");

    // 5. The server goes down; the real app starts on the field laptop's data directory.
    server.stop();
    let driver_port = free_port();
    let native_port = free_port();
    let xdg = tmp.path().join("xdg");
    let driver = Reaped(
        Command::new(tauri_driver())
            .args([
                "--port",
                &driver_port.to_string(),
                "--native-port",
                &native_port.to_string(),
            ])
            .env("STORMOPS_DATA_DIR", &app_dir)
            .env("XDG_CONFIG_HOME", xdg.join("config"))
            .env("XDG_DATA_HOME", xdg.join("data"))
            .env("XDG_CACHE_HOME", xdg.join("cache"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("tauri-driver starts (cargo xtask test installs it)"),
    );
    let base = format!("http://127.0.0.1:{driver_port}");
    desktop_e2e::wait_for_driver(&base, Duration::from_secs(30))
        .await
        .expect("tauri-driver listens");
    let app = Session::start(&base, &app_binary)
        .await
        .expect("the app starts under WebKitWebDriver");

    // 6. Unlock the company file in the UI.
    let tenant = find(&app, ".tenant-btn").await;
    app.click(&tenant).await.unwrap();
    let user = find(&app, "input[name=user]").await;
    // The form may suggest the file's last user already.
    let suggested = text(
        &app,
        "return document.querySelector('input[name=user]').value;",
    )
    .await;
    if suggested != LOCAL_USER {
        app.clear(&user).await.unwrap();
        app.type_text(&user, LOCAL_USER).await.unwrap();
    }
    assert_eq!(
        text(
            &app,
            "return document.querySelector('input[name=user]').value;"
        )
        .await,
        LOCAL_USER
    );
    let pass = find(&app, "input[name=passphrase]").await;
    app.type_text(&pass, PASSPHRASE).await.unwrap();
    let unlock = find(&app, "form button[type=submit]").await;
    app.click(&unlock).await.unwrap();
    find(&app, ".syncbar").await;
    let first_row = find(&app, ".prow[data-property-id]").await;
    eventually(
        "the laptop finds the server unreachable",
        Duration::from_secs(60),
        || async {
            let c = text(&app, CONNECTIVITY).await;
            (c != "offline").then_some(c)
        },
    )
    .await;
    assert_eq!(
        text(&app, SYNC_PENDING).await,
        "Nothing waiting to sync",
        "the laptop starts with an empty outbox"
    );
    let property_id = text(
        &app,
        "return document.querySelector('.prow[data-property-id]').dataset.propertyId;",
    )
    .await;
    let unscored = text(
        &app,
        &format!(
            "return document.querySelector('.prow[data-property-id=\"{property_id}\"] .prow-badges').textContent;"
        ),
    )
    .await;
    assert!(unscored.contains("Unscored"), "before the sync: {unscored}");
    let address = text(
        &app,
        &format!(
            "return document.querySelector('.prow[data-property-id=\"{property_id}\"] .prow-address').textContent;"
        ),
    )
    .await;

    // 7. Log a touch offline: it is kept and waits in the sync bar.
    app.click(&first_row).await.unwrap();
    let door = find(&app, "button[data-name=channel][data-value=door_knock]").await;
    app.click(&door).await.unwrap();
    let interested = find(&app, "button[data-name=result][data-value=interested]").await;
    app.click(&interested).await.unwrap();
    let notes = find(&app, "textarea[name=notes]").await;
    app.type_text(&notes, NOTE).await.unwrap();
    let log = find(
        &app,
        "form[aria-labelledby=touch-title] button[type=submit]",
    )
    .await;
    app.click(&log).await.unwrap();
    eventually(
        "the touch shows on the timeline",
        Duration::from_secs(20),
        || async {
            let t = text(
                &app,
                "return document.querySelector('[data-testid=timeline]')?.textContent ?? null;",
            )
            .await;
            (!t.contains(NOTE)).then_some(t)
        },
    )
    .await;
    eventually(
        "the sync bar counts the touch as waiting",
        Duration::from_secs(20),
        || async {
            let p = text(&app, SYNC_PENDING).await;
            (!p.starts_with("1 waiting to sync")).then_some(p)
        },
    )
    .await;
    assert_eq!(text(&app, CONNECTIVITY).await, "offline");
    let shots = workspace_root().join("ui/test-artifacts/screenshots");
    app.screenshot(&shots.join("desktop-offline-pending.png"))
        .await
        .unwrap();

    // 8. The server comes back: the app's agent notices by itself, pushes, and pulls the scores.
    server.start();
    eventually(
        "the pending count drains to zero",
        Duration::from_secs(90),
        || async {
            let p = text(&app, SYNC_PENDING).await;
            let c = text(&app, CONNECTIVITY).await;
            (p != "Nothing waiting to sync" || c != "online").then(|| format!("{c}: {p}"))
        },
    )
    .await;
    let back = find(&app, ".back-link").await;
    app.click(&back).await.unwrap();
    // Scores re-rank the list: search for the property so its row is in view.
    let search = find(&app, "#search").await;
    app.type_text(&search, &address).await.unwrap();
    eventually(
        "the uplift score arrives on the property list",
        Duration::from_secs(60),
        || async {
            let badge = text(
                &app,
                &format!(
                    "return document.querySelector('.prow[data-property-id=\"{property_id}\"] .prow-badges')?.textContent ?? null;"
                ),
            )
            .await;
            (!badge.contains("uplift")).then_some(badge)
        },
    )
    .await;
    // The map follows the filters too (its rows load after the list is painted, also when WebKitGTK runs
    // no animation frames).
    eventually(
        "the map plots the one property the search leaves",
        Duration::from_secs(10),
        || async {
            let label = text(
                &app,
                "return document.querySelector('.map canvas')?.getAttribute('aria-label') ?? null;",
            )
            .await;
            (!label.ends_with(": 1 properties plotted")).then_some(label)
        },
    )
    .await;
    app.screenshot(&shots.join("desktop-synced.png"))
        .await
        .unwrap();
    // The README shows the real app as this test leaves it.
    let docs = workspace_root().join("docs/screenshots");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::copy(
        shots.join("desktop-synced.png"),
        docs.join("desktop-app.png"),
    )
    .unwrap();
    let _ = app.end().await;
    drop(driver);

    // 9. The touch is on the server: the office pulls it.
    office.engine.sync_once().await.unwrap();
    let property = PropertyId(property_id.parse().expect("a property id"));
    let timeline = office
        .engine
        .with_store(move |s| s.timeline(property))
        .await
        .unwrap();
    assert!(
        timeline.iter().any(|e| matches!(
            e,
            local_store::TimelineEntry::Touch(t) if t.notes == NOTE && t.result == TouchResult::Interested
        )),
        "the office sees the touch logged offline: {timeline:?}"
    );
}
