//! `cargo xtask chaos [SCENARIO…]`: the full chaos suite (`tests/chaos`, binary `stormops-chaos`) —
//! PostgreSQL restarts, server kill -9, network faults, a full laptop disk and clock skew at full scale —
//! which rewrites `docs/chaos.md`. Scenarios: pg_restart, server_kill, network, disk_full, clock_skew
//! (all when none is named). It runs the debug build the tests use, so it shares their compiled
//! dependencies instead of adding a release build; the quick version of every scenario runs in
//! `cargo xtask test`.

use std::process::Command;

use crate::{cargo_program, run, system};

/// The scenario names `stormops-chaos` accepts.
pub const SCENARIOS: &[&str] = &[
    "pg_restart",
    "server_kill",
    "network",
    "disk_full",
    "clock_skew",
];

pub fn run_chaos(args: &[String]) -> anyhow::Result<()> {
    if let Some(unknown) = args.iter().find(|a| !SCENARIOS.contains(&a.as_str())) {
        anyhow::bail!(
            "unknown chaos scenario '{unknown}' (scenarios: {})",
            SCENARIOS.join(", ")
        );
    }
    system::ensure_test_packages()?;
    // One build of both binaries (the kill -9 scenario starts the real `stormops-server` found next to
    // `stormops-chaos`): built together, they share one feature set, so nothing compiles twice.
    run(Command::new(cargo_program()).args([
        "build",
        "-p",
        "chaos",
        "-p",
        "sync-server",
        "--bin",
        "stormops-chaos",
        "--bin",
        "stormops-server",
    ]))?;
    let mut cmd = Command::new(crate::workspace_root().join("target/debug/stormops-chaos"));
    cmd.args(["--out", "docs/chaos.md"]).args(args);
    for (key, value) in system::test_environment()? {
        cmd.env(key, value);
    }
    run(&mut cmd)
}
