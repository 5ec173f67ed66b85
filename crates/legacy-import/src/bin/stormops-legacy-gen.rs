//! `stormops-legacy-gen`: writes a sample legacy single-tenant StormOps SQLite database, for tests,
//! benchmarks and rehearsing an import (`stormops-legacy-gen --properties 4200 --out x.db`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use legacy_import::generate::{GenerateOptions, generate};

#[derive(Debug, Parser)]
#[command(
    name = "stormops-legacy-gen",
    about = "Write a sample legacy StormOps SQLite database"
)]
struct Args {
    /// Valid properties to write.
    #[arg(long, default_value_t = 4200)]
    properties: usize,
    #[arg(long, default_value_t = 3)]
    storms: usize,
    /// Journeys per property on average.
    #[arg(long, default_value_t = 3)]
    journeys_per_property: usize,
    /// Broken rows to inject (each reported by the import).
    #[arg(long, default_value_t = 0)]
    broken_rows: usize,
    /// A table to drop (repeatable), to rehearse the missing-table error.
    #[arg(long)]
    drop_table: Vec<String>,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// The file to create (must not exist).
    #[arg(long)]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = GenerateOptions {
        properties: args.properties,
        storms: args.storms,
        journeys_per_property: args.journeys_per_property,
        broken_rows: args.broken_rows,
        drop_tables: args.drop_table,
        seed: args.seed,
    };
    match generate(&args.out, &options) {
        Ok(g) => {
            println!(
                "{}: {} storms, {} properties, {} journeys, {} scores, {} experiments, {} broken rows",
                args.out.display(),
                g.storms,
                g.properties,
                g.journeys,
                g.scores,
                g.experiments,
                g.broken.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error [{}]: {e}", e.code());
            ExitCode::FAILURE
        }
    }
}
