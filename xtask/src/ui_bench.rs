//! `cargo xtask bench ui`: the UI's speed targets measured in Debian's Chromium against the built UI with
//! the bridge mocked at 50,000 properties (`ui/bench/ui-bench.mjs` prints one JSON line), written to the
//! `ui` section of docs/benchmarks.md between its markers.

use std::path::Path;
use std::process::Command;

use anyhow::Context;
use serde_json::Value;

use crate::{system, workspace_root};

const START: &str = "<!-- bench:ui:start -->";
const END: &str = "<!-- bench:ui:end -->";

pub fn run() -> anyhow::Result<()> {
    system::ensure_ui_packages()?;
    crate::desktop::build_ui()?;
    let root = workspace_root();
    eprintln!("$ node ui/bench/ui-bench.mjs");
    let output = Command::new("node")
        .arg("ui/bench/ui-bench.mjs")
        .current_dir(&root)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("could not run node")?;
    anyhow::ensure!(
        output.status.success(),
        "the UI benchmark failed with {}",
        output.status
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("the UI benchmark printed no JSON")?;
    let figures: Value = serde_json::from_str(line).context("reading the UI benchmark's JSON")?;
    let bin = crate::desktop::build_test_binaries()?;
    let cold = real_app_cold_start(&bin.join("stormops-desktop"))?;
    let mut body = section(&figures, &machine_line());
    body.push_str(&cold_start_rows(&cold, "debug build, like the tests'"));
    // Users run release builds; building one takes minutes and gigabytes, so it is asked for explicitly.
    if std::env::var_os("UI_BENCH_RELEASE_APP").is_some() {
        crate::run(Command::new(crate::cargo_program()).args([
            "build",
            "--release",
            "-p",
            "stormops-desktop",
        ]))?;
        let release = real_app_cold_start(&root.join("target/release/stormops-desktop"))?;
        body.push_str(&cold_start_rows(&release, "release build, as users run it"));
    } else {
        body.push_str(
            "\nThe release build is measured with `UI_BENCH_RELEASE_APP=1 cargo xtask bench ui` (it builds it first).\n",
        );
    }
    println!("{body}");
    write_section(&root.join("docs/benchmarks.md"), &body)
}

/// The cold start of the app binary `app` under Xvfb (`desktop-cold-start`, built with the tests), as
/// JSON.
fn real_app_cold_start(app: &Path) -> anyhow::Result<Value> {
    let driver = system::ensure_desktop_packages()?;
    let bin = workspace_root().join("target/debug");
    eprintln!(
        "$ xvfb-run target/debug/desktop-cold-start ({})",
        app.display()
    );
    let output = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1440x900x24"])
        .arg(bin.join("desktop-cold-start"))
        .env("TAURI_DRIVER", driver)
        .env("STORMOPS_DESKTOP_BIN", app)
        .current_dir(workspace_root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("could not run xvfb-run")?;
    anyhow::ensure!(
        output.status.success(),
        "the desktop cold-start benchmark failed with {}",
        output.status
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("the desktop cold-start benchmark printed no JSON")?;
    serde_json::from_str(line).context("reading the cold-start JSON")
}

/// Table rows for the real app's cold start (`build` names the build measured).
fn cold_start_rows(c: &Value, build: &str) -> String {
    format!(
        "\nThe real app (`stormops-desktop`, {build}; WebKitGTK under Xvfb, through tauri-driver and WebKitWebDriver) on a tenant \
         file of {properties} properties, signed in as a field user to a server that is down; WebDriver polls the DOM every 10 ms, so these are upper bounds:\n\n\
         | measurement | figure | target |\n|---|---|---|\n\
         | launch (session request) to the company-file chooser in the DOM, p50 of {runs} | {chooser} | |\n\
         | unlock click to the first ranked rows in the DOM, p50 of {runs} | {rows} | |\n\
         | cold start to an interactive property list (sum, typing excluded) | {cold} | < 1,500 ms: {ok} |\n",
        properties = c["properties"],
        runs = c["runs"],
        chooser = ms(&c["launch_to_chooser_ms_p50"]),
        rows = ms(&c["unlock_to_rows_ms_p50"]),
        cold = ms(&c["cold_start_ms_p50"]),
        ok = verdict(&c["cold_start_ms_p50"], 1_500.0),
    )
}

fn ms(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "—".to_owned(), |x| format!("{x:.1} ms"))
}

fn verdict(v: &Value, target_ms: f64) -> &'static str {
    match v.as_f64() {
        Some(x) if x < target_ms => "met",
        Some(_) => "missed",
        None => "—",
    }
}

/// The markdown section for the figures.
fn section(f: &Value, machine: &str) -> String {
    let debounce = f["search_debounce_ms"].as_f64().unwrap_or(0.0);
    let without_debounce = |v: &Value| Value::from(v.as_f64().map(|x| x - debounce));
    format!(
        "## ui\n\n_{machine}; Chromium {chromium}_\n\n\
         The built UI (`ui/dist`) in headless Chromium through playwright-core, the bridge mocked at {properties} (`?mock=big`). \
         The mock filters in JavaScript on the page's thread; in the app the same queries run in SQLite on a blocking thread \
         (desktop-core's `StoreHandle::run`), so these figures are the UI's own cost. Sync in the app runs in the Rust process \
         and reaches the page only as `sync-status` events, applied at most once per frame. A filter change paints the count and the \
         visible rows first; the map's top 1,000 rows are asked for after that paint, so they are not in the filter figures (the map \
         redraws a frame or more later).\n\n\
         | measurement | figure | target |\n|---|---|---|\n\
         | cold start: page load to the company-file chooser painted (p50 of {cold_runs}) | {chooser} | |\n\
         | unlock (submit) to the first ranked rows painted (p50 / max of {cold_runs}) | {unlock} / {unlock_max} | |\n\
         | cold start to an interactive property list (sum of the two p50s, typing excluded) | {cold} | < 1,500 ms: {cold_ok} |\n\
         | filter change (status or decision) to the new count painted, p50 / p95 / max of {filter_runs} | {f50} / {f95} / {fmax} | p95 < 50 ms: {filter_ok} |\n\
         | search to the new count painted, p50 / p95 of {search_runs} (includes the {debounce:.0} ms typing debounce) | {s50} / {s95} | |\n\
         | the same without the debounce, p50 / p95 | {s50n} / {s95n} | < 50 ms: {search_ok} |\n\
         | filter changes that did not change the count (not timed) | {missed} | |\n\
         | simulated background sync ({sync_window}) while filtering and scrolling: long tasks > 50 ms / longest | {long} / {long_max} | 0: {long_ok} |\n\
         | filter p50 during that sync | {sync_f50} | |\n",
        chromium = f["chromium"].as_str().unwrap_or("unknown"),
        properties = f["properties"]
            .as_str()
            .and_then(|s| s.split(" properties").next())
            .map_or_else(|| "50,000".to_owned(), |n| format!("{n} properties")),
        cold_runs = f["cold_runs"],
        chooser = ms(&f["chooser_ms_p50"]),
        unlock = ms(&f["unlock_to_rows_ms_p50"]),
        unlock_max = ms(&f["unlock_to_rows_ms_max"]),
        cold = ms(&f["cold_start_ms_p50"]),
        cold_ok = verdict(&f["cold_start_ms_p50"], 1_500.0),
        filter_runs = f["filter_runs"],
        f50 = ms(&f["filter_ms_p50"]),
        f95 = ms(&f["filter_ms_p95"]),
        fmax = ms(&f["filter_ms_max"]),
        filter_ok = verdict(&f["filter_ms_p95"], 50.0),
        search_runs = f["search_runs"],
        s50 = ms(&f["search_ms_p50"]),
        s95 = ms(&f["search_ms_p95"]),
        s50n = ms(&without_debounce(&f["search_ms_p50"])),
        s95n = ms(&without_debounce(&f["search_ms_p95"])),
        search_ok = verdict(&without_debounce(&f["search_ms_p95"]), 50.0),
        missed = f["missed_updates"],
        sync_window = ms(&f["sync_window_ms"]),
        long = f["sync_long_tasks"],
        long_max = ms(&f["sync_long_task_max_ms"]),
        long_ok = if f["sync_long_tasks"].as_u64() == Some(0) {
            "met"
        } else {
            "missed"
        },
        sync_f50 = ms(&f["sync_filter_ms_p50"]),
    )
}

/// Cores, CPU model, UTC time and load average, like the other suites' headings.
fn machine_line() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let when = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    // Other builds on the machine move these figures: say how busy it was.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned());
    format!("{cores} cores, {cpu}; measured {when}, load average {load}")
}

/// Replaces the `ui` section between its markers (appends it when missing), keeping every other suite.
fn write_section(path: &Path, body: &str) -> anyhow::Result<()> {
    let existing = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    let section = format!("{START}\n{}\n{END}", body.trim_end());
    let updated = match (existing.find(START), existing.find(END)) {
        (Some(s), Some(e)) if e > s => {
            format!("{}{section}{}", &existing[..s], &existing[e + END.len()..])
        }
        _ => format!("{}\n{section}\n", existing.trim_end()),
    };
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_reports_figures_against_the_targets() {
        let figures = serde_json::json!({
            "chromium": "156", "properties": "50,000 properties · ranked", "cold_runs": 5,
            "chooser_ms_p50": 700.0, "unlock_to_rows_ms_p50": 160.0, "unlock_to_rows_ms_max": 200.0,
            "cold_start_ms_p50": 860.0, "filter_runs": 60, "filter_ms_p50": 20.0, "filter_ms_p95": 61.8,
            "filter_ms_max": 70.0, "search_runs": 20, "search_ms_p50": 160.0, "search_ms_p95": 170.0,
            "search_debounce_ms": 140, "missed_updates": 0, "sync_window_ms": 1400.0,
            "sync_filter_ms_p50": 30.0, "sync_long_tasks": 0, "sync_long_task_max_ms": 0,
        });
        let text = section(&figures, "2 cores");
        assert!(text.contains("| 860.0 ms | < 1,500 ms: met |"), "{text}");
        assert!(text.contains("p95 < 50 ms: missed"), "{text}");
        assert!(
            text.contains("20.0 ms / 30.0 ms"),
            "search without debounce: {text}"
        );
        assert!(text.contains("mocked at 50,000 properties"), "{text}");
    }

    #[test]
    fn the_section_replaces_its_own_markers_only() {
        let dir = std::env::temp_dir().join(format!("xtask-ui-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("benchmarks.md");
        std::fs::write(
            &path,
            "# B\n<!-- bench:sync:start -->\nS\n<!-- bench:sync:end -->\n",
        )
        .expect("write");
        write_section(&path, "one").expect("first");
        write_section(&path, "two").expect("second");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("S\n<!-- bench:sync:end -->"));
        assert!(text.contains(&format!("{START}\ntwo\n{END}")));
        assert!(!text.contains("one"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
