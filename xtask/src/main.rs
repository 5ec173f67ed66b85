//! `cargo xtask`: the project's automation. `test` runs every check CI runs, `demo` runs the main job
//! end to end, `bench` measures and writes docs/benchmarks.md, `tidy` checks the house rules. Each
//! command installs the system packages it needs (apt on Debian as root; otherwise it prints the command).

mod chaos;
mod demo;
mod desktop;
mod fuzz;
mod load;
mod system;
mod tidy;
mod ui_bench;

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
        "fuzz" => fuzz::run_fuzz(rest),
        "load" => load::run_load(rest),
        "chaos" => chaos::run_chaos(rest),
        "tidy" => tidy::run(&workspace_root(), rest.iter().any(|a| a == "--bless")),
        "codegen" => codegen(),
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
        "cargo xtask <command>\n\n  test           format, lint and run every test (installs what it needs)\n  demo           run the main job end to end\n  bench [SUITE]  run benchmarks (all, or the named suites; `ui` runs in Chromium) and write docs/benchmarks.md\n  tidy [--bless] check the house rules (--bless records new migrations as applied)\n  fuzz [--seconds N] [TARGET...]  run the fuzz targets under libFuzzer (60 s each by default)\n  load [ARGS]    run the load scenarios (one instance; two behind nginx, one killed) and write docs/load.md\n  chaos [SCENARIO...]  run the chaos suite at full scale (PostgreSQL restart, server kill -9, network faults, full disk, clock skew) and write docs/chaos.md\n  codegen        regenerate the UI\'s TypeScript bindings from the Rust bridge types"
    );
}

/// Rewrites `ui/src/lib/backend/generated/` from desktop-core's bridge types: the freshness test
/// writes the files instead of comparing when the variable is set.
fn codegen() -> anyhow::Result<()> {
    run(Command::new("cargo")
        .args([
            "test",
            "-p",
            "desktop-core",
            "--lib",
            "bindings::tests::generated_typescript_is_fresh",
        ])
        .env("STORMOPS_CODEGEN_WRITE", "1"))
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
    without_incremental_on_ci(cmd);
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

/// On CI (a clean clone built once) incremental state only costs disk: several GiB for this
/// workspace's test targets, and a CI run once failed with a full disk.
fn without_incremental_on_ci(cmd: &mut Command) {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        cmd.env("CARGO_INCREMENTAL", "0");
    }
}

/// The cargo that runs xtask, or the `cargo` on PATH (rustup's proxy, which honours
/// rust-toolchain.toml) when that one cannot be found.
pub fn cargo_program() -> String {
    std::env::var("CARGO")
        .ok()
        .filter(|path| Path::new(path).is_file())
        .unwrap_or_else(|| "cargo".to_owned())
}

fn cargo() -> Command {
    Command::new(cargo_program())
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
    let mut tally = TestTally::default();
    run_counting(&mut test, &mut tally)?;
    ui_tests(&mut tally)?;
    // The real desktop app under Xvfb through tauri-driver and WebKitWebDriver (ignored by plain
    // `cargo test`: it needs the display and drivers installed here).
    run_counting(&mut desktop::e2e_command()?, &mut tally)?;
    // Fuzz targets last: each under libFuzzer for a bounded time from the kept corpus; a finding fails
    // the run. On by default (a cold build of ~70 crates without sanitizer, see fuzz.rs);
    // `STORMOPS_FUZZ=0` skips it, `cargo xtask fuzz` runs it longer.
    if fuzz::enabled_in_test(std::env::var_os("STORMOPS_FUZZ").as_deref()) {
        let fuzz_started = std::time::Instant::now();
        fuzz::in_test()?;
        eprintln!("xtask test: fuzzing took {:.0?}", fuzz_started.elapsed());
    } else {
        eprintln!("xtask test: fuzzing skipped (STORMOPS_FUZZ=0)");
    }
    eprintln!("xtask test: all checks passed in {:.0?}", started.elapsed());
    println!("tests: {} passed, {} failed", tally.passed, tally.failed);
    Ok(())
}

/// Tests counted from the runners' own summary lines (cargo's `test result:`, vitest's `Tests`).
#[derive(Debug, Default)]
struct TestTally {
    passed: u64,
    failed: u64,
}

impl TestTally {
    fn read_line(&mut self, line: &str) {
        let number_before = |text: &str, word: &str| -> Option<u64> {
            let head = &text[..text.find(word)?];
            head.split(|c: char| !c.is_ascii_digit())
                .rfind(|t| !t.is_empty())?
                .parse()
                .ok()
        };
        let plain = line.trim();
        let rest = plain
            .strip_prefix("test result:")
            .or_else(|| plain.strip_prefix("Tests "));
        if let Some(rest) = rest {
            // cargo: "ok. 21 passed; 0 failed; …"; vitest: "12 passed (12)" or "1 failed | 11 passed (12)".
            self.passed += number_before(rest, " passed").unwrap_or(0);
            self.failed += number_before(rest, " failed").unwrap_or(0);
        }
    }
}

/// Runs a command, echoing its output and counting the tests its runner reports.
fn run_counting(cmd: &mut Command, tally: &mut TestTally) -> anyhow::Result<()> {
    use std::io::{BufRead, BufReader};
    without_incremental_on_ci(cmd);
    let line = format!("{cmd:?}");
    eprintln!("$ {line}");
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start {line}"))?;
    if let Some(stdout) = child.stdout.take() {
        for text in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("{text}");
            // Colour codes would hide the words the tally looks for.
            tally.read_line(&strip_ansi(&text));
        }
    }
    let status = child.wait()?;
    anyhow::ensure!(status.success(), "{line} failed with {status}");
    Ok(())
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The web UI: install from the lockfile, type-check, unit tests, then browser tests on the built UI.
fn ui_tests(tally: &mut TestTally) -> anyhow::Result<()> {
    system::ensure_ui_packages()?;
    let ui = workspace_root().join("ui");
    let npm = |args: &[&str]| {
        let mut cmd = Command::new("npm");
        cmd.args(args).current_dir(&ui);
        cmd
    };
    run_counting(
        &mut npm(&["ci", "--no-audit", "--no-fund", "--loglevel=error"]),
        tally,
    )?;
    run_counting(&mut npm(&["run", "typecheck"]), tally)?;
    run_counting(&mut npm(&["test"]), tally)?;
    run_counting(&mut npm(&["run", "test:e2e"]), tally)
}

fn bench(args: &[String]) -> anyhow::Result<()> {
    // `ui` runs in Chromium (ui_bench.rs); every other suite is stormops-bench's. No suite means all.
    let all = args.is_empty() || args.iter().any(|a| a == "all");
    let with_ui = all || args.iter().any(|a| a == "ui");
    let args: Vec<String> = args.iter().filter(|a| *a != "ui").cloned().collect();
    if with_ui && !all && args.is_empty() {
        return ui_bench();
    }
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
    run(&mut cmd)?;
    if with_ui {
        ui_bench()?;
    }
    Ok(())
}

/// The `ui` suite (Chromium, written by ui_bench.rs), then its charts and comparison with the
/// previous run, drawn by stormops-bench from the section it wrote.
fn ui_bench() -> anyhow::Result<()> {
    ui_bench::run()?;
    run(cargo().args([
        "run",
        "--release",
        "--locked",
        "-p",
        "benchmarks",
        "--bin",
        "stormops-bench",
        "--",
        "--annotate",
        "ui",
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tally_reads_cargo_and_vitest_summaries() {
        let mut tally = TestTally::default();
        tally.read_line("test result: ok. 21 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.04s");
        tally.read_line("test result: FAILED. 3 passed; 2 failed; 0 ignored");
        tally.read_line("      Tests  12 passed (12)");
        tally.read_line("      Tests  1 failed | 11 passed (12)");
        tally.read_line("running 3 tests");
        assert_eq!((tally.passed, tally.failed), (47, 3));
        assert_eq!(
            strip_ansi("\u{1b}[32mTests\u{1b}[0m  5 passed"),
            "Tests  5 passed"
        );
    }
}
