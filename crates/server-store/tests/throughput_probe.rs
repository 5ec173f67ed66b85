//! A manual probe (ignored by default; no timed assertion): push throughput of 1,000-touch batches
//! against the raw COPY ceiling, in one run. `cargo test -p server-store --release --test
//! throughput_probe -- --ignored --nocapture`. The real benchmark lives in crates/benchmarks.

mod common;

use std::time::Instant;

use common::*;
use domain::*;
use server_store::bench_raw_copy_insert;

#[tokio::test]
#[ignore = "prints throughput; run by hand"]
async fn push_versus_raw_copy() {
    let h = setup().await;
    let t = provision(&h, "acme", 100).await;
    let rounds = 20;
    let mut push_secs = 0.0;
    let mut raw_secs = 0.0;
    for round in 0..rounds {
        let batch: Vec<_> = (0..1_000)
            .map(|i| t.touch_change(&t.touch(i % 100, "notes about the roof")))
            .collect();
        let rows: Vec<JourneyTouch> = (0..1_000)
            .map(|i| t.touch(i % 100, "notes about the roof"))
            .collect();
        // Alternate the order so neither side always runs on a warmer cache.
        for first in [round % 2 == 0, round % 2 == 1] {
            let started = Instant::now();
            if first {
                push(&h, &t, Role::FieldUser, &batch).await;
                push_secs += started.elapsed().as_secs_f64();
            } else {
                let mut tx = h.app.begin_tenant(t.id).await.unwrap();
                bench_raw_copy_insert(&mut tx, &rows).await.unwrap();
                tx.commit().await.unwrap();
                raw_secs += started.elapsed().as_secs_f64();
            }
        }
    }
    let n = f64::from(rounds) * 1_000.0;
    println!(
        "push: {:.0} changes/s, raw COPY ceiling: {:.0} rows/s, ratio {:.2}",
        n / push_secs,
        n / raw_secs,
        raw_secs / push_secs
    );
    h.teardown().await;
}
