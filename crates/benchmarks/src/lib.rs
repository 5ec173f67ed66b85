//! The benchmark suite behind `cargo xtask bench`: each module measures one part of the system and
//! returns a Markdown section; `report` writes the sections into `docs/benchmarks.md`, `figures` reads
//! the numbers back from them (and keeps the previous run's), `plots` draws them beside their
//! references as SVG.

pub mod figures;
pub mod limits;
pub mod plots;
pub mod report;
pub mod server;
pub mod store;
pub mod sync;
pub mod tenant;
pub mod uplift;

/// Every suite `cargo xtask bench` runs, in order.
pub const SUITES: &[&str] = &["uplift", "store", "server", "sync", "tenant", "limits"];

/// Runs one suite; `None` when the name is unknown.
pub fn run_suite(name: &str, shared_data: &std::path::Path) -> anyhow::Result<Option<String>> {
    Ok(match name {
        "uplift" => Some(uplift::run(shared_data)?),
        "store" => Some(store::run()?),
        "server" => Some(server::run()?),
        "sync" => Some(sync::run()?),
        "tenant" => Some(tenant::run()?),
        "limits" => Some(limits::run()?),
        _ => None,
    })
}
