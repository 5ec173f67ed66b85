//! `cargo xtask load`: builds the release server and load generator, then runs `stormops-load` at full
//! size — scenario A (one instance) and B (two instances behind nginx sharing one PostgreSQL, one killed
//! mid-load) — on a private PostgreSQL cluster, and writes `docs/load.md`. Extra arguments go to
//! `stormops-load` (e.g. `--size quick`, `--seconds 30`, `--only B`).

use std::process::Command;

use crate::{run, system, workspace_root};

pub fn run_load(args: &[String]) -> anyhow::Result<()> {
    system::ensure_test_packages()?;
    run(Command::new(crate::cargo_program()).args([
        "build",
        "--release",
        "--locked",
        "-p",
        "sync-server",
        "-p",
        "load-gen",
    ]))?;
    let root = workspace_root();
    let mut load = Command::new(root.join("target/release/stormops-load"));
    load.arg("--out").arg(root.join("docs/load.md")).args(args);
    run(&mut load)
}
