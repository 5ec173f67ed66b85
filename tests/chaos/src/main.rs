//! `stormops-chaos` (run by `cargo xtask chaos`): every chaos scenario at full scale, one after another
//! (so each fault's recovery is measured without the others' load), then `docs/chaos.md` (or the path
//! after `--out`) rewritten with one table: fault, what was checked, outcome, recovery time. A scenario
//! that panics is recorded as failed and the run goes on; the exit status is then non-zero.

use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use anyhow::Context as _;
use chaos::report::{Finding, Outcome, table};
use chaos::{Scale, clock_skew, disk_full, network, pg_restart, server_kill};

type Scenario = fn(Scale) -> Pin<Box<dyn Future<Output = Vec<Finding>> + Send>>;

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() -> anyhow::Result<()> {
    let mut out = PathBuf::from("docs/chaos.md");
    let mut only: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--out" {
            out = args.next().context("--out needs a path")?.into();
        } else {
            only.push(arg);
        }
    }
    let scenarios: [(&str, &str, Scenario); 5] = [
        ("pg_restart", pg_restart::FAULT, |s| {
            Box::pin(pg_restart::run(s))
        }),
        ("server_kill", server_kill::FAULT, |s| {
            Box::pin(server_kill::run(s))
        }),
        ("network", "Network faults", |s| Box::pin(network::run(s))),
        ("disk_full", disk_full::FAULT, |s| {
            Box::pin(disk_full::run(s))
        }),
        ("clock_skew", "Clock skew", |s| Box::pin(clock_skew::run(s))),
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("the async runtime")?;
    let scale = Scale::full();
    let load_before = load_average();
    let started = std::time::Instant::now();
    let mut findings = Vec::new();
    for (name, fault, scenario) in scenarios {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        eprintln!("chaos: {name} (load average {})", load_average());
        // Each scenario in its own task: a broken property panics there and is recorded, not fatal.
        match runtime.block_on(runtime.spawn(scenario(scale))) {
            Ok(found) => findings.extend(found),
            Err(e) => {
                let why = e
                    .try_into_panic()
                    .ok()
                    .and_then(|p| {
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    })
                    .unwrap_or_else(|| "the scenario was cancelled".into());
                findings.push(Finding {
                    fault: fault.to_owned(),
                    checked: "see the scenario".into(),
                    result: String::new(),
                    recovery: "—".into(),
                    outcome: Outcome::Failed(why),
                });
            }
        }
    }
    let mut doc = String::from(
        "# Chaos suite\n\nWritten by `cargo xtask chaos` (the `stormops-chaos` binary of `tests/chaos`); the quick \
         version of every scenario runs in `cargo xtask test` as `cargo test -p chaos`, asserting the same \
         properties at a smaller scale (never timings). Every scenario runs against a real PostgreSQL, the \
         real server (in-process, or the `stormops-server` process for kill -9) and laptops that are the real \
         sync engine over real SQLCipher files, each behind its own fault proxy.\n\n",
    );
    let _ = writeln!(
        doc,
        "Last run: {} laptops per fleet, {} touches per laptop per wave, {} fault rounds, network faults held {:.0} s; \
         {:.0} s in all; load average {load_before} at the start and {} at the end (2 cores shared with other \
         builds: recovery times are noisy).\n",
        scale.laptops,
        scale.backlog,
        scale.rounds,
        scale.hold.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        load_average()
    );
    doc.push_str(&table(&findings));
    std::fs::write(&out, doc).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("chaos: wrote {}", out.display());
    let failed = findings
        .iter()
        .filter(|f| matches!(f.outcome, Outcome::Failed(_)))
        .count();
    if failed > 0 {
        anyhow::bail!("{failed} chaos scenario(s) failed: see {}", out.display());
    }
    Ok(())
}
