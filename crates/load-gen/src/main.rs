//! `stormops-load`: runs the load scenarios (one server instance; two behind nginx with one killed
//! mid-load) on a private PostgreSQL cluster and writes `docs/load.md`. `cargo xtask load` builds the
//! release binaries and runs it at full size.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use load_gen::config::LoadConfig;
use load_gen::scenario::{self, ONE_INSTANCE, TWO_INSTANCES};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Size {
    /// 20 tenants × 10 laptops for 60 s per scenario (docs/load.md).
    Full,
    /// A few seconds with small counts.
    Quick,
}

#[derive(Debug, Parser)]
#[command(
    name = "stormops-load",
    about = "Load generator: many laptops across many tenants against the sync server"
)]
struct Args {
    /// How big a run.
    #[arg(long, value_enum, default_value = "full")]
    size: Size,
    /// Override the timed load's length, seconds.
    #[arg(long)]
    seconds: Option<u64>,
    /// Write the Markdown report here (e.g. docs/load.md); otherwise print it.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only scenario A (one instance) or B (two behind nginx).
    #[arg(long)]
    only: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("stormops-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("stormops-load: a correctness check failed (see the report)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("stormops-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let mut config = match args.size {
        Size::Full => LoadConfig::full(),
        Size::Quick => LoadConfig::quick(),
    };
    if let Some(s) = args.seconds {
        config.duration = std::time::Duration::from_secs(s);
    }
    let cluster = tokio::task::spawn_blocking(test_postgres::DedicatedCluster::start).await??;
    let mut results = Vec::new();
    for s in [ONE_INSTANCE, TWO_INSTANCES] {
        if args
            .only
            .as_deref()
            .is_some_and(|o| !s.name.starts_with(&o.to_uppercase()))
        {
            continue;
        }
        eprintln!("stormops-load: scenario {} …", s.name);
        let result = scenario::run(&cluster, &config, s).await?;
        eprintln!(
            "stormops-load: {}: {:.0} changes/s, p99 {:.1} ms, checks {}",
            s.name,
            result.changes_per_sec(),
            result.all.p99.as_secs_f64() * 1000.0,
            if result.holds() { "hold" } else { "FAIL" }
        );
        results.push(result);
    }
    let size = match args.size {
        Size::Full => "full",
        Size::Quick => "quick",
    };
    let command = if matches!(args.size, Size::Full) && args.seconds.is_none() {
        "cargo xtask load".to_owned()
    } else {
        format!("stormops-load --size {size}")
    };
    let page = load_gen::report::render(&config, &results, &command)?;
    match args.out {
        Some(path) => std::fs::write(&path, page)?,
        None => println!("{page}"),
    }
    Ok(results.iter().all(|r| r.holds()))
}
