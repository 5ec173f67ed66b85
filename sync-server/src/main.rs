//! `stormops-server`: parses the command line and hands it to the library. Nothing else lives here.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = sync_server::cli::Cli::parse();
    sync_server::operator::run(cli)
}
