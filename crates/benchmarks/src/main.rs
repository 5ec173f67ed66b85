//! `stormops-bench SUITE…`: runs benchmark suites and writes their sections of docs/benchmarks.md,
//! each with its charts (`docs/benchmarks/*.svg`) and its figures against the previous run's.
//! `stormops-bench --annotate SUITE…` only redraws the charts and comparison of sections already in
//! the report (the `ui` section, which `cargo xtask bench ui` measures in Chromium and writes itself).

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

use benchmarks::figures::{self, History};
use benchmarks::{plots, report};

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn main() -> anyhow::Result<()> {
    let root = workspace_root();
    let report_path = root.join("docs/benchmarks.md");
    let charts_dir = root.join("docs/benchmarks");
    let history_path = charts_dir.join("figures.json");
    let shared_data = std::env::var_os("STORMOPS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/data"));
    let mut suites: Vec<String> = std::env::args().skip(1).collect();
    let annotate = suites.first().is_some_and(|a| a == "--annotate");
    if annotate {
        suites.remove(0);
    }
    if suites.is_empty() || suites.iter().any(|s| s == "all") {
        suites = benchmarks::SUITES.iter().map(|s| (*s).to_owned()).collect();
        if annotate {
            suites.push("ui".to_owned());
        }
    }
    let mut history = History::load(&history_path);
    for suite in &suites {
        let earlier = report::previous_section(&report_path, suite);
        let section = if annotate {
            let Some(text) = &earlier else {
                eprintln!(
                    "== {suite}: no section in {} to annotate",
                    report_path.display()
                );
                continue;
            };
            report::strip_derived(text).to_owned()
        } else {
            eprintln!("== bench {suite}");
            let body = benchmarks::run_suite(suite, &shared_data)
                .with_context(|| format!("benchmark suite {suite}"))?;
            let Some(body) = body else {
                bail!(
                    "unknown suite '{suite}'; known: {}",
                    benchmarks::SUITES.join(", ")
                );
            };
            format!(
                "## {suite}\n\n_{}_\n\n{}",
                report::machine_line(),
                body.trim()
            )
        };
        let now = figures::parse_section(&section);
        // Before the history knew this suite, its previous figures are the ones the report showed.
        let previous = history.record(suite, now.clone()).or_else(|| {
            earlier
                .as_deref()
                .map(|text| figures::parse_section(report::strip_derived(text)))
                .filter(|run| run.stamp != now.stamp && !run.figures.is_empty())
        });
        let derived = write_charts(&charts_dir, suite, &now, previous.as_ref())?;
        report::write_section(&report_path, suite, &format!("{section}\n\n{derived}"))?;
        report::write_header(&report_path)?;
        history.save(&history_path)?;
        println!("{section}\n");
    }
    eprintln!(
        "figures written to {} (charts in {})",
        report_path.display(),
        charts_dir.display()
    );
    Ok(())
}

/// Draws the suite's charts into `dir` and returns the section's derived Markdown.
fn write_charts(
    dir: &Path,
    suite: &str,
    now: &figures::Run,
    previous: Option<&figures::Run>,
) -> anyhow::Result<String> {
    let (charts, missing) = plots::charts(suite, now, previous);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for chart in &charts {
        let path = dir.join(&chart.file);
        std::fs::write(&path, plots::svg(chart, &now.stamp))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    for title in &missing {
        eprintln!("== {suite}: chart not drawn: {title}");
    }
    Ok(report::derived(&charts, &missing, now, previous))
}
