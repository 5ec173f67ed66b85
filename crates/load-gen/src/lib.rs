//! The load generator behind `stormops-load` and `cargo xtask load`: many simulated laptops across many
//! tenants talking real HTTP to the sync server — one `stormops-server` process, or two behind nginx
//! sharing one PostgreSQL — followed by checks read from PostgreSQL itself: every change the generator
//! holds a receipt for is stored exactly once, a small plan's quota and rate limit refuse at the same
//! totals whatever the number of instances, a model is trained once per set of data, and killing one
//! instance mid-load loses nothing.
//!
//! `config` sizes a run, `stack` starts the processes (server instances, nginx), `fleet` provisions the
//! tenants through the operator's code path and the office API, `laptop` is one simulated laptop, `log`
//! keeps what each request did and which changes hold receipts, `checks` reads PostgreSQL, `scenario`
//! runs one scenario end to end and `report` renders `docs/load.md`.

pub mod checks;
pub mod config;
pub mod fleet;
pub mod laptop;
pub mod log;
pub mod report;
pub mod scenario;
pub mod stack;
