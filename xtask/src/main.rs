//! `cargo xtask`: the project's automation. `test` runs every check CI runs, `demo` runs the main job
//! end to end, `bench` measures and writes docs/benchmarks.md, `tidy` checks the house rules. Each
//! command installs the system packages it needs (apt on Debian as root; otherwise it prints the command).

mod demo;
mod system;
mod tidy;

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = args
        .split_first()
        .map(|(c, r)| (c.as_str(), r))
        .unwrap_or(("help", &[]));
    match command {
        "test" => test(rest),
        "demo" => demo::run_demo(rest),
        "bench" => bench(rest),
        "tidy" => tidy::run(&workspace_root(), rest.iter().any(|a| a == "--bless")),
        "help" | "--help" | "-h" => {
            print_help();
            Ok(())
        }
        other => {
            print_help();
            bail!("unknown xtask command '{other}'")
        }
    }
}

fn print_help() {
    println!(
        "cargo xtask <command>\n\n  test           format, lint and run every test (installs what it needs)\n  demo           run the main job end to end\n  bench [SUITE]  run benchmarks (all, or the named suites) and write docs/benchmarks.md\n  tidy [--bless] check the house rules (--bless records new migrations as applied)"
    );
}

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Runs a command in the workspace root, failing with the command line when it fails.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let line = format!("{cmd:?}");
    eprintln!("$ {line}");
    let status = cmd
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("could not start {line}"))?;
    if !status.success() {
        bail!("{line} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

fn test(args: &[String]) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    system::ensure_test_packages()?;
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    run(cargo().args(["fmt", "--all", "--", "--check"]))
        .context("formatting differs: run `cargo fmt --all`")?;
    tidy::run(&workspace_root(), false)?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    let mut test = cargo();
    test.args(["test", "--workspace"]);
    if ci {
        test.arg("--locked");
    }
    test.args(args);
    for (key, value) in system::test_environment()? {
        test.env(key, value);
    }
    run(&mut test)?;
    ui_tests()?;
    eprintln!("xtask test: all checks passed in {:.0?}", started.elapsed());
    Ok(())
}

/// The web UI: install from the lockfile, type-check, unit tests, then browser tests on the built UI.
fn ui_tests() -> anyhow::Result<()> {
    system::ensure_ui_packages()?;
    let ui = workspace_root().join("ui");
    let npm = |args: &[&str]| -> anyhow::Result<()> {
        let mut cmd = Command::new("npm");
        cmd.args(args).current_dir(&ui);
        let line = format!("npm {} (in ui/)", args.join(" "));
        eprintln!("$ {line}");
        let status = cmd
            .status()
            .with_context(|| format!("could not start {line}"))?;
        anyhow::ensure!(status.success(), "{line} failed with {status}");
        Ok(())
    };
    npm(&["ci", "--no-audit", "--no-fund", "--loglevel=error"])?;
    npm(&["run", "typecheck"])?;
    npm(&["test"])?;
    npm(&["run", "test:e2e"])
}

fn bench(args: &[String]) -> anyhow::Result<()> {
    system::ensure_test_packages()?;
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "--locked",
        "-p",
        "benchmarks",
        "--bin",
        "stormops-bench",
        "--",
    ])
    .args(args);
    for (key, value) in system::test_environment()? {
        cmd.env(key, value);
    }
    run(&mut cmd)
}
