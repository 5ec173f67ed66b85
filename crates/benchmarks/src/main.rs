//! `stormops-bench SUITE…`: runs benchmark suites and writes their sections of docs/benchmarks.md.

use anyhow::{Context, bail};
use std::path::PathBuf;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn main() -> anyhow::Result<()> {
    let root = workspace_root();
    let report = root.join("docs/benchmarks.md");
    let shared_data = std::env::var_os("STORMOPS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/data"));
    let mut suites: Vec<String> = std::env::args().skip(1).collect();
    if suites.is_empty() || suites.iter().any(|s| s == "all") {
        suites = benchmarks::SUITES.iter().map(|s| (*s).to_owned()).collect();
    }
    for suite in &suites {
        eprintln!("== bench {suite}");
        let body = benchmarks::run_suite(suite, &shared_data)
            .with_context(|| format!("benchmark suite {suite}"))?;
        let Some(body) = body else {
            bail!(
                "unknown suite '{suite}'; known: {}",
                benchmarks::SUITES.join(", ")
            );
        };
        let section = format!(
            "## {suite}\n\n_{}_\n\n{}",
            benchmarks::report::machine_line(),
            body.trim()
        );
        benchmarks::report::write_section(&report, suite, &section)?;
        println!("{section}\n");
    }
    eprintln!("figures written to {}", report.display());
    Ok(())
}
