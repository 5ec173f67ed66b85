//! `cargo xtask demo`: builds the server and the demo, then runs `stormops-demo` — a private
//! PostgreSQL, the sync server started by its operator CLI, a demo tenant, an office desktop and
//! headless field laptops that work offline, reconnect, drain and converge. On a machine with a display
//! it then opens the desktop app on a field laptop's copy of the demo tenant.

use std::process::Command;

use anyhow::Context;

use crate::{run, system, workspace_root};

pub fn run_demo(args: &[String]) -> anyhow::Result<()> {
    system::ensure_test_packages()?;
    let cargo = crate::cargo_program();
    run(Command::new(&cargo).args([
        "build",
        "--release",
        "-p",
        "sync-server",
        "-p",
        "field-demo",
    ]))?;
    let root = workspace_root();
    let demo_dir = root.join("target/demo");
    let mut demo = Command::new(root.join("target/release/stormops-demo"));
    demo.args(args)
        // The demo runs its own PostgreSQL cluster, never a shared one.
        .env("TEST_POSTGRES_PRIVATE", "1")
        .env("STORMOPS_DEMO_DIR", &demo_dir);
    run(&mut demo).context("the demo failed")?;
    if has_display() {
        open_app(&demo_dir.join(DEMO_APP_LAPTOP))?;
    } else {
        eprintln!(
            "no display (DISPLAY / WAYLAND_DISPLAY unset): the demo stays headless; run it on a desktop to open the app"
        );
    }
    Ok(())
}

/// The data directory of the field laptop the app opens on (a field user's, from stormops-demo), with
/// the local user and passphrase stormops-demo gave its files (crates/field-demo/src/laptop.rs).
const DEMO_APP_LAPTOP: &str = "laptop-1";
const DEMO_LOCAL_USER: &str = "crew";
const DEMO_PASSPHRASE: &str = "demo passphrase for the truck";

fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// Builds the UI and the desktop app, and starts the app on `data_dir` (it keeps running after xtask
/// ends: closing its window hides it to the tray, Quit in the tray ends it).
fn open_app(data_dir: &std::path::Path) -> anyhow::Result<()> {
    crate::desktop::build_ui()?;
    let app = crate::desktop::build_app()?;
    let child = Command::new(&app)
        .env("STORMOPS_DATA_DIR", data_dir)
        .spawn()
        .with_context(|| format!("starting {}", app.display()))?;
    println!(
        "\nThe desktop app is open on the demo tenant (pid {}). Unlock \"Hailstone Roofing\" as user \"{DEMO_LOCAL_USER}\" with the passphrase \"{DEMO_PASSPHRASE}\".\nThe demo's server has stopped, so the app shows the laptop offline with its synced data and scores; quit it from its tray icon.",
        child.id()
    );
    Ok(())
}
