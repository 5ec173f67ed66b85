//! `cargo xtask fuzz [--seconds N] [TARGET…]`: runs each cargo-fuzz target of `fuzz/` under libFuzzer for a
//! bounded time, seeded from the corpus kept in the repository (`fuzz/corpus/<target>/`, never written:
//! new inputs go to `fuzz/target/corpus-work/<target>/`; a finding is saved in `fuzz/artifacts/<target>/`
//! and fails the command).
//!
//! The targets are built here with the coverage flags cargo-fuzz passes to rustc, minus the sanitizer:
//! AddressSanitizer needs nightly flags and instruments every dependency (a build of ~20 minutes on 2
//! cores), while the code under test is safe Rust whose bugs are panics libFuzzer catches without it.
//! Without `-Zsanitizer` the flags are stable, so no cargo-fuzz install and no `RUSTC_BOOTSTRAP`. The
//! build uses the fuzz workspace's `fuzz` profile and its own target dir (`fuzz/target`: the flags differ
//! from the main build's, so sharing `target/` would only evict its artifacts), and links the system
//! OpenSSL that `cargo xtask test` already installs instead of compiling the vendored one.
//!
//! `cargo xtask test` runs every target for [`TEST_SECONDS`] by default; `STORMOPS_FUZZ=0` skips it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::{cargo_program, run, workspace_root};

/// The fuzz targets (`fuzz/fuzz_targets/<name>.rs`).
pub const TARGETS: &[&str] = &["push_request", "merge", "csv_import", "legacy_import"];

/// Seconds per target for `cargo xtask fuzz` without `--seconds`.
const DEFAULT_SECONDS: u64 = 60;
/// Seconds per target inside `cargo xtask test`.
pub const TEST_SECONDS: u64 = 20;
/// Cargo profile of the fuzz workspace the targets are built with (`fuzz/Cargo.toml`).
const PROFILE: &str = "fuzz";
/// libFuzzer treats one input running longer than this as a finding (a hang), not 20 minutes' wait.
const INPUT_TIMEOUT_SECONDS: u64 = 25;

/// The rustc flags cargo-fuzz uses for libFuzzer's coverage feedback (its `--sanitizer none` build):
/// 8-bit edge counters with their PC table, comparison tracing (libFuzzer learns the bytes compared
/// against) and stack depth; `--cfg fuzzing` as cargo-fuzz sets it; debug assertions and overflow
/// checks on, so an arithmetic overflow is a finding.
const RUSTFLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "-Cllvm-args=-sanitizer-coverage-stack-depth",
    "-Cllvm-args=-simplifycfg-branch-fold-threshold=0",
    "--cfg",
    "fuzzing",
    "-Cdebug-assertions",
    "-Coverflow-checks",
];

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

/// The host's target triple: the build names it so `RUSTFLAGS` instrument the fuzzed code only, not
/// build scripts and proc macros (which cargo then builds for the host without them).
fn host_triple() -> anyhow::Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .current_dir(workspace_root())
        .output()
        .context("running rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV names no host")
}

fn fuzz_dir() -> PathBuf {
    workspace_root().join("fuzz")
}

/// Builds every target binary; returns the directory that holds them.
fn build_targets(targets: &[String]) -> anyhow::Result<PathBuf> {
    let fuzz = fuzz_dir();
    let triple = host_triple()?;
    let target_dir = fuzz.join("target");
    let mut build = Command::new(cargo_program());
    build
        .current_dir(&fuzz)
        .args(["build", "--manifest-path"])
        .arg(fuzz.join("Cargo.toml"))
        .args(["--profile", PROFILE, "--target", &triple, "--target-dir"])
        .arg(&target_dir);
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        build.arg("--locked");
    }
    for target in targets {
        build.args(["--bin", target]);
    }
    // CARGO_ENCODED_RUSTFLAGS wins over RUSTFLAGS and every config file: exactly these flags, for
    // this build only.
    build
        .env("CARGO_ENCODED_RUSTFLAGS", RUSTFLAGS.join("\u{1f}"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env("OPENSSL_NO_VENDOR", "1");
    run(&mut build).context("building the fuzz targets")?;
    Ok(target_dir.join(triple).join(PROFILE))
}

/// One target under libFuzzer for `seconds`. libFuzzer's progress lines (thousands in a CI log) go to
/// `fuzz/target/logs/<target>.log`; its final statistics are echoed, and on a finding the log's tail.
fn run_target(bins: &Path, target: &str, seconds: u64) -> anyhow::Result<()> {
    let fuzz = fuzz_dir();
    let work = fuzz.join("target/corpus-work").join(target);
    let artifacts = fuzz.join("artifacts").join(target);
    let logs = fuzz.join("target/logs");
    for dir in [&work, &artifacts, &logs] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let log_path = logs.join(format!("{target}.log"));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut command = Command::new(bins.join(target));
    command
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-timeout={INPUT_TIMEOUT_SECONDS}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .arg(&work)
        .arg(fuzz.join("corpus").join(target))
        .stderr(log);
    eprintln!("$ {command:?} 2> {}", log_path.display());
    let status = command
        .status()
        .with_context(|| format!("starting fuzz target {target}"))?;
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    if status.success() {
        for line in lines
            .iter()
            .filter(|l| l.starts_with("Done ") || l.starts_with("stat::"))
        {
            eprintln!("  {target}: {line}");
        }
        return Ok(());
    }
    for line in &lines[lines.len().saturating_sub(60)..] {
        eprintln!("  {target}: {line}");
    }
    bail!(
        "fuzz target {target} failed ({status}): the input that breaks it is in {} (log: {})",
        artifacts.display(),
        log_path.display()
    )
}

/// `cargo xtask fuzz`.
pub fn run_fuzz(args: &[String]) -> anyhow::Result<()> {
    let (seconds, targets) = parse_args(args)?;
    let started = std::time::Instant::now();
    let bins = build_targets(&targets)?;
    let built = started.elapsed();
    for target in &targets {
        run_target(&bins, target, seconds)?;
    }
    eprintln!(
        "xtask fuzz: {} target(s), {seconds} s each, no failure (build {:.0?}, total {:.0?})",
        targets.len(),
        built,
        started.elapsed()
    );
    Ok(())
}

/// Whether `cargo xtask test` fuzzes: yes unless `STORMOPS_FUZZ=0`.
pub fn enabled_in_test(setting: Option<&std::ffi::OsStr>) -> bool {
    setting.is_none_or(|v| v != "0")
}

/// The fuzz part of `cargo xtask test`: each target under libFuzzer for [`TEST_SECONDS`].
pub fn in_test() -> anyhow::Result<()> {
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
    fn fuzzing_is_on_unless_switched_off() {
        assert!(enabled_in_test(None));
        assert!(enabled_in_test(Some("1".as_ref())));
        assert!(!enabled_in_test(Some("0".as_ref())));
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
