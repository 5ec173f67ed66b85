//! stormops-field: the headless field CLI over local-store. Parsing lives in `cli`, each command in
//! `commands`, output and errors in `output`; this file only wires them and sets the exit code.

mod cli;
mod commands;
mod error;
mod input;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `--json` must shape even a usage error, so look for it before clap parses.
    let wants_json = std::env::args().any(|a| a == "--json");
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return output::usage_error(err, wants_json),
    };
    let json = cli.global.json;
    match commands::run(cli) {
        Ok(report) => output::success(&report, json),
        Err(err) => output::failure(&err, json),
    }
}
