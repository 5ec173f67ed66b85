//! Profiling aid for the laptop write path: 100,000 journey touches with their outbox rows into a fresh
//! SQLCipher or plain store, as `cargo xtask bench store` inserts them, printing wall time, CPU time of all
//! threads (the page crypto's signing helper included) and the WAL and file sizes left. Small enough to
//! run under `perf record` without the rest of the suite:
//! `cargo run --release -p benchmarks --example insert_profile -- cipher|stock|plain [rows per transaction] [runs]`
//! (`cipher`: SQLCipher with this project's keyed page crypto, `SERIAL=1` with its signing helper off;
//! `stock`: with SQLCipher's stock provider). `BATCHES=1` also prints how the time spreads over the
//! transactions.

use std::time::{Duration, Instant};

use benchmarks::store::{Kind, open_fresh};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use domain::*;

fn cpu() -> Duration {
    benchmarks::store::process_cpu_time().unwrap_or_default()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cipher = args.get(1).map(String::as_str) != Some("plain");
    let stock = args.get(1).map(String::as_str) == Some("stock");
    let chunk: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let repeats: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(3);
    // `SERIAL=1`: encrypt and then sign each page on the writing thread (no hashing on a second core).
    let serial = std::env::var_os("SERIAL").is_some();
    for _ in 0..repeats {
        let alongside = local_store::pages_signed_alongside();
        let given_up = local_store::pages_given_up_alongside();
        let behind = local_store::pages_signed_behind();
        let dir = tempfile::tempdir().expect("dir");
        let kind = match (cipher, stock) {
            (false, _) => Kind::Plain,
            (true, false) if serial => Kind::CipherOneThread,
            (true, false) => Kind::Cipher,
            (true, true) => Kind::CipherStock,
        };
        let mut store = open_fresh(kind, dir.path()).expect("store");
        if std::env::var_os("NO_CHECKPOINT").is_some() {
            store.set_long_pull(true).expect("long pull");
        }
        // The benchmark's own touches: 100,000 in time order on 2,000 properties.
        let now = Timestamp::now();
        let mut touches = benchmarks::store::touches(
            StormId::generate(),
            UserId::generate(),
            store.device_id(),
            now,
            &mut ChaCha8Rng::seed_from_u64(7),
        );
        // `SPREAD_MS=N`: one touch every N ms instead of every 6 s (e.g. 315360 spreads the 100,000 over
        // a year, every hour of it holding touches: the most hours a property's timeline steps through).
        if let Some(spread) = std::env::var("SPREAD_MS")
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
        {
            let count = touches.len() as i64;
            for (i, touch) in touches.iter_mut().enumerate() {
                touch.occurred_at = now.plus_millis(-(count - i as i64) * spread);
            }
        }
        let (c0, t0) = (cpu(), Instant::now());
        let mut batch_times = Vec::with_capacity(touches.len().div_ceil(chunk));
        for batch in touches.chunks(chunk) {
            let started = Instant::now();
            store.add_touches(batch).expect("insert");
            batch_times.push(started.elapsed());
        }
        let (wall, c) = (t0.elapsed(), cpu() - c0);
        // `BATCHES=1`: how the wall time spreads over the transactions (a few slow ones, or all).
        if std::env::var_os("BATCHES").is_some() && batch_times.len() > 1 {
            batch_times.sort();
            let at = |q: f64| batch_times[((batch_times.len() - 1) as f64 * q) as usize];
            let slowest: Duration = batch_times.iter().rev().take(10).sum();
            println!(
                "  transactions: {} · median {:.0} µs · p90 {:.0} µs · max {:.0} µs · slowest 10 together {:.1} ms",
                batch_times.len(),
                at(0.5).as_secs_f64() * 1e6,
                at(0.9).as_secs_f64() * 1e6,
                at(1.0).as_secs_f64() * 1e6,
                slowest.as_secs_f64() * 1e3
            );
        }
        let mut wal = store.path().as_os_str().to_owned();
        wal.push("-wal");
        let wal = std::fs::metadata(&wal).map_or(0, |m| m.len());
        let db = std::fs::metadata(store.path()).map_or(0, |m| m.len());
        println!(
            "{} chunk {chunk}: wall {:.0} ms, cpu {:.0} ms, wal {:.1} MiB, db {:.1} MiB ({}, {} pages signed alongside, {} given up, {} signed behind)",
            args.get(1).map_or("cipher", String::as_str),
            wall.as_secs_f64() * 1e3,
            c.as_secs_f64() * 1e3,
            wal as f64 / 1048576.0,
            db as f64 / 1048576.0,
            store
                .cipher_provider()
                .expect("provider")
                .unwrap_or_else(|| "plain".into()),
            local_store::pages_signed_alongside() - alongside,
            local_store::pages_given_up_alongside() - given_up,
            local_store::pages_signed_behind() - behind
        );
        if std::env::var_os("TIMELINE").is_some() {
            // A property's timeline, median of 200 properties' (each holds 50 of the touches).
            let mut seen = std::collections::HashSet::new();
            let properties: Vec<PropertyId> = touches
                .iter()
                .map(|t| t.property_id)
                .filter(|p| seen.insert(*p))
                .take(200)
                .collect();
            let mut times: Vec<Duration> = properties
                .iter()
                .map(|p| {
                    let t0 = Instant::now();
                    let entries = store.timeline(*p).expect("timeline");
                    assert_eq!(entries.len(), 50);
                    t0.elapsed()
                })
                .collect();
            times.sort();
            println!(
                "timeline p50 {:.2} ms, max {:.2} ms",
                times[100].as_secs_f64() * 1e3,
                times[199].as_secs_f64() * 1e3
            );
        }
        if std::env::var_os("KEEP").is_some() {
            // Left for inspection (e.g. `dbstat` on a plain file), with a copy of the write-ahead log as
            // the inserts left it: closing the store checkpoints and removes the log.
            let kept = store.path().with_extension("kept");
            std::fs::copy(store.path(), &kept).expect("copy the file");
            let mut log = store.path().as_os_str().to_owned();
            log.push("-wal");
            let mut kept_log = kept.as_os_str().to_owned();
            kept_log.push("-wal");
            std::fs::copy(&log, &kept_log).expect("copy the log");
            println!("kept: {}", kept.display());
            std::mem::forget(dir);
        }
    }
}
