//! Profiling aid for a new laptop's first sync end to end (the server in-process over a fresh
//! PostgreSQL database, the real engine, a new SQLCipher file): `cargo xtask bench sync`'s part (b)
//! alone. It prints `ready` and waits `pause_ms` before each sync, so a system-wide profile can be
//! started around the sync only:
//! `cargo run --release -p benchmarks --example first_sync_profile -- [properties] [runs] [pause_ms] [stock]`
//! (`stock`: the laptop's file with SQLCipher's stock page crypto instead of the keyed provider).

use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut next = |default: u64| -> anyhow::Result<u64> {
        Ok(match args.next() {
            Some(a) => a.parse()?,
            None => default,
        })
    };
    let properties = next(200_000)? as usize;
    let runs = next(3)? as usize;
    let pause = Duration::from_millis(next(0)?);
    let stock = std::env::args().nth(4).as_deref() == Some("stock");
    local_store::use_stock_page_crypto(stock)?;
    benchmarks::sync::first_sync_profile(properties, runs, pause)
}
