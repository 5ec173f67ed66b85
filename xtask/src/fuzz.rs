//! `cargo xtask fuzz [--seconds N] [TARGET…]`: runs each cargo-fuzz target of `fuzz/` under libFuzzer for a
//! bounded time, seeded from the corpus kept in the repository (`fuzz/corpus/<target>/`, never written:
//! new inputs go to `fuzz/target/corpus-work/<target>/`). cargo-fuzz needs nightly compiler flags; the
//! pinned stable toolchain accepts them with `RUSTC_BOOTSTRAP=1`, which is set for these builds only.
//!
//! Inside `cargo xtask test` with `STORMOPS_FUZZ=1` the same checks run as a bounded deterministic test
//! over the corpus and seeded random inputs (`fuzz/tests/corpus.rs`), then each target runs under
//! libFuzzer briefly. Found crashes also get a plain regression test in the crate they hit.

use std::process::Command;

use anyhow::{Context, bail};

use crate::{cargo_program, run, workspace_root};

/// The fuzz targets (`fuzz/fuzz_targets/<name>.rs`).
pub const TARGETS: &[&str] = &["push_request", "merge", "csv_import", "legacy_import"];

/// Seconds per target for `cargo xtask fuzz` without `--seconds`.
const DEFAULT_SECONDS: u64 = 60;
/// Seconds per target inside `cargo xtask test`.
pub const TEST_SECONDS: u64 = 20;

fn parse_args(args: &[String]) -> anyhow::Result<(u64, Vec<String>)> {
    let mut seconds = DEFAULT_SECONDS;
    let mut targets = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--seconds" {
            let value = rest.next().context("--seconds needs a number")?;
            seconds = value
                .parse()
                .with_context(|| format!("--seconds {value}: not a whole number of seconds"))?;
        } else if TARGETS.contains(&arg.as_str()) {
            targets.push(arg.clone());
        } else {
            bail!(
                "unknown fuzz argument '{arg}' (targets: {})",
                TARGETS.join(", ")
            );
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    Ok((seconds, targets))
}

fn cargo_fuzz_installed() -> bool {
    Command::new(cargo_program())
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs cargo-fuzz from crates.io when it is missing.
fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    if cargo_fuzz_installed() {
        return Ok(());
    }
    run(Command::new(cargo_program()).args(["install", "cargo-fuzz", "--locked"]))
        .context("installing cargo-fuzz")
}

/// One target under libFuzzer for `seconds`.
fn run_target(target: &str, seconds: u64) -> anyhow::Result<()> {
    let root = workspace_root();
    let work = root.join("fuzz/target/corpus-work").join(target);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    run(Command::new(cargo_program())
        .current_dir(root.join("fuzz"))
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "run", target])
        .arg(&work)
        .arg(root.join("fuzz/corpus").join(target))
        .arg("--")
        .arg(format!("-max_total_time={seconds}")))
    .with_context(|| format!("fuzz target {target}: see fuzz/artifacts/{target}/ for the input"))
}

/// `cargo xtask fuzz`.
pub fn run_fuzz(args: &[String]) -> anyhow::Result<()> {
    let (seconds, targets) = parse_args(args)?;
    ensure_cargo_fuzz()?;
    for target in &targets {
        run_target(target, seconds)?;
    }
    eprintln!(
        "xtask fuzz: {} target(s), {seconds} s each, no failure",
        targets.len()
    );
    Ok(())
}

/// The fuzz part of `cargo xtask test`: the deterministic corpus test, then each target under libFuzzer.
pub fn in_test(tally: &mut crate::TestTally) -> anyhow::Result<()> {
    let root = workspace_root();
    let mut test = Command::new(cargo_program());
    test.current_dir(root.join("fuzz")).args([
        "test",
        "--manifest-path",
        &root.join("fuzz/Cargo.toml").to_string_lossy(),
    ]);
    crate::run_counting(&mut test, tally)?;
    run_fuzz(&["--seconds".to_owned(), TEST_SECONDS.to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_pick_seconds_and_targets() {
        let (s, t) = parse_args(&[]).unwrap_or_default();
        assert_eq!(s, DEFAULT_SECONDS);
        assert_eq!(t.len(), TARGETS.len());
        let args: Vec<String> = ["--seconds", "5", "merge"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(parse_args(&args).ok(), Some((5, vec!["merge".to_owned()])));
        assert!(parse_args(&["nope".to_owned()]).is_err());
        assert!(parse_args(&["--seconds".to_owned(), "x".to_owned()]).is_err());
    }

    #[test]
    fn every_target_has_a_source_file_and_a_corpus() {
        let root = workspace_root();
        for target in TARGETS {
            assert!(
                root.join(format!("fuzz/fuzz_targets/{target}.rs"))
                    .is_file(),
                "{target}"
            );
            let seeds = std::fs::read_dir(root.join(format!("fuzz/corpus/{target}")))
                .map(|d| d.count())
                .unwrap_or(0);
            assert!(seeds > 0, "fuzz/corpus/{target} is empty");
        }
    }
}
