//! `cargo xtask demo`: builds the server and the demo, then runs `stormops-demo` — a private
//! PostgreSQL, the sync server started by its operator CLI, a demo tenant, an office desktop and
//! headless field laptops that work offline, reconnect, drain and converge.

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
    run(&mut demo).context("the demo failed")
}
