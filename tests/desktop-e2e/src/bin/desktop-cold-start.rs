//! `desktop-cold-start` (run by `cargo xtask bench ui` under Xvfb): cold start of the real
//! `stormops-desktop` binary on a tenant file of 50,000 properties. Each run starts the app through
//! tauri-driver and WebKitWebDriver and times (a) the WebDriver session request to the company-file
//! chooser in the DOM and (b) the unlock click to the first ranked rows in the DOM (typing excluded).
//! Prints one JSON line. Times include WebDriver's polling (every 10 ms), so they are upper bounds.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use desktop_e2e::Session;
use domain::{Role, Storm, StormStatus, Timestamp, UserId};
use local_store::{DataDir, NewTenant, Passphrase, ServerAccount};

const PASSPHRASE: &str = "cold start passphrase";
const USER: &str = "sam";

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Polls until `css` is in the DOM; returns when it is.
async fn wait_for(app: &Session, css: &str, within: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    while app.find(css).await.is_err() {
        if started.elapsed() > within {
            bail!("{css} did not appear within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let app_binary = PathBuf::from(std::env::var("STORMOPS_DESKTOP_BIN").context(
        "set STORMOPS_DESKTOP_BIN to the stormops-desktop binary (cargo xtask bench ui does)",
    )?);
    let driver = std::env::var("TAURI_DRIVER").unwrap_or_else(|_| "tauri-driver".to_owned());
    let properties = env_or("COLD_START_PROPERTIES", 50_000);
    let runs = env_or("COLD_START_RUNS", 3);
    let tmp = tempfile::tempdir()?;
    let data_dir = tmp.path().join("data");

    // A tenant file with one storm of `properties` properties (not signed in: the app opens it locally).
    let dir = DataDir::new(&data_dir)?;
    let passphrase = Passphrase::new_checked(PASSPHRASE)?;
    let created = dir.create_tenant(
        NewTenant {
            tenant_id: None,
            name: "Cold Start Roofing",
            user: USER,
            passphrase: &passphrase,
        },
        Timestamp::now(),
    )?;
    let mut store = created.store;
    let synthetic =
        uplift::synthetic::SyntheticStorm::generate(&uplift::synthetic::SyntheticStormConfig {
            properties,
            seed: 3,
            ..Default::default()
        })?;
    store.add_storm(&Storm {
        id: synthetic.storm_id,
        event_id: "NWS-BENCH-1".into(),
        name: "Bench hail".into(),
        started_at: Timestamp::now().plus_millis(-86_400_000),
        ended_at: None,
        hail_size_in: 2.0,
        wind_mph: 60.0,
        affected_area: "bench".into(),
        status: StormStatus::Active,
    })?;
    store.import_properties(&synthetic.properties)?;
    // Signed in as a field user to a server that is not there: the app opens on the list, and its
    // sync agent keeps failing in the background meanwhile (the UI must not wait on it).
    store.set_server_account(&ServerAccount {
        server_url: "http://127.0.0.1:9".into(),
        tenant_slug: "cold-start".into(),
        email: "sam@cold-start.example".into(),
        user_id: UserId::generate(),
        role: Role::FieldUser,
        crew_id: None,
        signed_in_at: Timestamp::now(),
    })?;
    drop(store);

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let native = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let xdg = tmp.path().join("xdg");
    let _driver = Reaped(
        Command::new(&driver)
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native.to_string(),
            ])
            .env("STORMOPS_DATA_DIR", &data_dir)
            .env("XDG_CONFIG_HOME", xdg.join("config"))
            .env("XDG_DATA_HOME", xdg.join("data"))
            .env("XDG_CACHE_HOME", xdg.join("cache"))
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {driver}"))?,
    );
    let base = format!("http://127.0.0.1:{port}");
    desktop_e2e::wait_for_driver(&base, Duration::from_secs(30)).await?;

    let mut to_chooser = Vec::new();
    let mut to_rows = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let app = Session::start(&base, &app_binary).await?;
        wait_for(&app, ".tenant-btn", Duration::from_secs(60)).await?;
        to_chooser.push(started.elapsed().as_secs_f64() * 1000.0);
        let tenant = app.find(".tenant-btn").await?;
        app.click(&tenant).await?;
        let user = app.find("input[name=user]").await?;
        app.clear(&user).await?;
        app.type_text(&user, USER).await?;
        let pass = app.find("input[name=passphrase]").await?;
        app.type_text(&pass, PASSPHRASE).await?;
        let typed = app
            .script("return document.querySelector('input[name=user]').value")
            .await?;
        let unlock = app.find("form button[type=submit]").await?;
        let clicked = Instant::now();
        app.click(&unlock).await?;
        if let Err(err) = wait_for(&app, ".prow[data-property-id]", Duration::from_secs(60)).await {
            // Say what the window shows instead, so a failed run explains itself.
            let shown = app
                .script("return document.body.innerText")
                .await
                .map(|v| v.to_string())
                .unwrap_or_default();
            bail!(
                "{err}; the user field held {typed} at the unlock click; the window shows: {}",
                shown.chars().take(2_000).collect::<String>()
            );
        }
        to_rows.push(clicked.elapsed().as_secs_f64() * 1000.0);
        app.end().await?;
        // The app process ends with the session; give the file lock a moment to go with it.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let chooser = median(to_chooser.clone());
    let rows = median(to_rows.clone());
    println!(
        "{}",
        serde_json::json!({
            "properties": properties,
            "runs": runs,
            "launch_to_chooser_ms_p50": (chooser * 10.0).round() / 10.0,
            "unlock_to_rows_ms_p50": (rows * 10.0).round() / 10.0,
            "cold_start_ms_p50": ((chooser + rows) * 10.0).round() / 10.0,
            "launch_to_chooser_ms": to_chooser,
            "unlock_to_rows_ms": to_rows,
        })
    );
    Ok(())
}
