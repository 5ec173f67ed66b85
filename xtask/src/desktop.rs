//! The real desktop app in `cargo xtask test` and `cargo xtask demo`: builds the UI into `ui/dist`
//! and the `stormops-desktop` binary that embeds it, and runs the end-to-end test under Xvfb through
//! tauri-driver and WebKitWebDriver (installed by `system`).

use std::path::PathBuf;
use std::process::Command;

use crate::{cargo_program, run, system, workspace_root};

/// Builds the web UI (`npm ci` when node_modules is missing, then `npm run build`).
pub fn build_ui() -> anyhow::Result<()> {
    system::ensure_ui_packages()?;
    let ui = workspace_root().join("ui");
    // `run` works in the workspace root; npm's --prefix points it at ui/.
    if !ui.join("node_modules").is_dir() {
        run(Command::new("npm").args([
            "--prefix",
            "ui",
            "ci",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]))?;
    }
    run(Command::new("npm").args(["--prefix", "ui", "run", "build"]))
}

/// Builds the desktop app alone (the demo's case) after the UI, so the binary embeds it (src-tauri's
/// build script reruns when ui/dist changes).
pub fn build_app() -> anyhow::Result<PathBuf> {
    run(Command::new(cargo_program()).args(["build", "-p", "stormops-desktop"]))?;
    Ok(workspace_root().join("target/debug/stormops-desktop"))
}

/// Builds every test target of the workspace, and with them the binaries the desktop tests run
/// (stormops-desktop, stormops-server, desktop-cold-start: cargo builds a package's binaries for its
/// integration tests). The same package selection and features as `cargo test --workspace`, so
/// nothing is compiled twice: after a UI build only the app is rebuilt.
pub fn build_test_binaries() -> anyhow::Result<PathBuf> {
    run(Command::new(cargo_program()).args(["test", "--workspace", "--no-run"]))?;
    Ok(workspace_root().join("target/debug"))
}

/// Installs Xvfb, WebKitWebDriver and tauri-driver, builds the UI and the app, and returns the
/// command that runs the desktop end-to-end test on a virtual display.
pub fn e2e_command() -> anyhow::Result<Command> {
    let driver = system::ensure_desktop_packages()?;
    build_ui()?;
    build_test_binaries()?;
    let mut cmd = Command::new("xvfb-run");
    cmd.args(["-a", "-s", "-screen 0 1440x900x24", &cargo_program()])
        .args([
            "test",
            "--workspace",
            "--test",
            "desktop_app",
            "--",
            "--ignored",
        ])
        .env("TAURI_DRIVER", driver)
        .current_dir(workspace_root());
    Ok(cmd)
}
