//! Profiling aid for the laptop's pull apply: a first sync of 200,000 properties with their uplift
//! scores, as `cargo xtask bench sync` pulls them — pages of 10,000 records in the server's feed order
//! (each server transaction of 10,000 properties and their 10,000 scores in record order: a property and
//! its score, which shares its id, side by side in random order, as their change ids fall), each record
//! the JSON text PostgreSQL's `jsonb` prints — applied with `apply_pulled_text` into a fresh SQLCipher
//! file in the long-pull mode, printing wall time and the CPU time of all the process's
//! threads (the page signing helper's share counts). No server or network, so it runs under
//! `perf record`:
//! `cargo run --release -p benchmarks --example pull_apply_profile -- [properties] [runs] [order]`, where
//! `order` is `record` (the default, as above), `change` (each transaction's rows in random order: the
//! feed of a server before server migration 20261202000000) or `sorted` (each block's properties, then
//! their scores as a later transaction, as a retraining sends them).

use std::time::{Duration, Instant};

use domain::*;
use local_store::PulledText;
use sync_protocol::{ChangeOp, Entity};
use uuid::Uuid;

fn cpu() -> Duration {
    benchmarks::store::process_cpu_time().unwrap_or_default()
}

/// `serde_json` text in the shape `jsonb::text` prints: a space after every `:` and `,`.
fn jsonb_text(value: &serde_json::Value) -> String {
    let compact = serde_json::to_string(value).expect("json");
    let mut out = String::with_capacity(compact.len() + compact.len() / 8);
    let mut in_string = false;
    let mut escaped = false;
    for c in compact.chars() {
        out.push(c);
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if c == ':' || c == ',' {
            out.push(' ');
        }
    }
    out
}

struct Row {
    entity: Entity,
    entity_id: Uuid,
    record: String,
    clocks: Option<String>,
}

/// How a server transaction's rows are ordered in the feed.
#[derive(Clone, Copy)]
enum Order {
    Record,
    Change,
    Sorted,
}

fn feed(n: usize, order: Order) -> Vec<Row> {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let now = Timestamp::now();
    let hlc = Hlc::new(now.millis() as u64 - 60_000, 0, 0);
    let storm = benchmarks::sync::storm(now);
    let clocks_of = |record: &serde_json::Value| -> String {
        let map: serde_json::Map<String, serde_json::Value> = record
            .as_object()
            .expect("object")
            .keys()
            .filter(|k| *k != "id")
            .map(|k| (k.clone(), serde_json::Value::String(hlc.to_string())))
            .collect();
        jsonb_text(&serde_json::Value::Object(map))
    };
    let mut rows = Vec::with_capacity(2 * n + 1);
    let record = serde_json::to_value(&storm).expect("json");
    rows.push(Row {
        entity: Entity::Storm,
        entity_id: storm.id.0,
        clocks: Some(clocks_of(&record)),
        record: jsonb_text(&record),
    });
    for start in (0..n).step_by(10_000) {
        let chunk: Vec<Property> = (start..(start + 10_000).min(n))
            .map(|i| benchmarks::sync::property(storm.id, i))
            .collect();
        for p in &chunk {
            let record = serde_json::to_value(p).expect("json");
            rows.push(Row {
                entity: Entity::Property,
                entity_id: p.id.0,
                clocks: Some(clocks_of(&record)),
                record: jsonb_text(&record),
            });
        }
        let txn_start = rows.len();
        for (i, p) in chunk.iter().enumerate() {
            let score = benchmarks::sync::score(p, start + i, now);
            rows.push(Row {
                entity: Entity::UpliftScore,
                entity_id: p.id.0,
                record: jsonb_text(&serde_json::to_value(&score).expect("json")),
                clocks: None,
            });
        }
        let txn = &mut rows[txn_start - chunk.len()..];
        match order {
            Order::Change => shuffle(txn, &mut seed),
            // Stable: a property and its score keep the random order the shuffle gave them.
            Order::Record => {
                shuffle(txn, &mut seed);
                txn.sort_by_key(|r| r.entity_id);
            }
            Order::Sorted => {}
        }
    }
    rows
}

/// Fisher-Yates with xorshift64: the feed orders one transaction's rows by their random change ids.
fn shuffle(rows: &mut [Row], seed: &mut u64) {
    for i in (1..rows.len()).rev() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        rows.swap(i, (*seed % (i as u64 + 1)) as usize);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let repeats: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1);
    let order = match args.get(3).map(String::as_str) {
        None | Some("record") => Order::Record,
        Some("change") => Order::Change,
        Some("sorted") => Order::Sorted,
        Some(other) => panic!("order: record, change or sorted, not {other}"),
    };
    let rows = feed(n, order);
    let bytes: usize = rows
        .iter()
        .map(|r| r.record.len() + r.clocks.as_ref().map_or(0, String::len))
        .sum();
    for _ in 0..repeats {
        let dir = tempfile::tempdir().expect("dir");
        let mut store = benchmarks::store::open_fresh(benchmarks::store::Kind::Cipher, dir.path())
            .expect("tenant");
        let (mut property_pages, mut score_pages) = (Duration::ZERO, Duration::ZERO);
        let (c0, t0) = (cpu(), Instant::now());
        store.set_long_pull(true).expect("long pull");
        for (page, chunk) in rows.chunks(10_000).enumerate() {
            let texts: Vec<PulledText<'_>> = chunk
                .iter()
                .map(|r| PulledText {
                    entity: r.entity,
                    entity_id: r.entity_id,
                    op: ChangeOp::Insert,
                    record: &r.record,
                    field_clocks: r.clocks.as_deref(),
                })
                .collect();
            let page_started = Instant::now();
            let report = store
                .apply_pulled_text(&texts, &format!("cursor-{page}"), page as i64)
                .expect("apply");
            assert!(report.skipped.is_empty(), "{:?}", report.skipped.first());
            let scores = chunk
                .iter()
                .filter(|r| r.entity == Entity::UpliftScore)
                .count();
            if scores * 2 > chunk.len() {
                score_pages += page_started.elapsed();
            } else {
                property_pages += page_started.elapsed();
            }
        }
        let applied = (t0.elapsed(), cpu() - c0);
        let log =
            std::fs::metadata(format!("{}-wal", store.path().display())).map_or(0, |m| m.len());
        store.set_long_pull(false).expect("long pull off");
        let (wall, c) = (t0.elapsed(), cpu() - c0);
        let counts = store.record_counts().expect("counts");
        assert_eq!(counts.scored_properties, n as i64);
        let db = std::fs::metadata(store.path()).map_or(0, |m| m.len());
        println!(
            "{} rows ({:.1} MB of record text): apply wall {:.0} ms, cpu {:.0} ms; with checkpoint wall {:.0} ms, cpu {:.0} ms; {:.0} rows/s; db {:.1} MiB",
            rows.len(),
            bytes as f64 / 1e6,
            applied.0.as_secs_f64() * 1e3,
            applied.1.as_secs_f64() * 1e3,
            wall.as_secs_f64() * 1e3,
            c.as_secs_f64() * 1e3,
            rows.len() as f64 / wall.as_secs_f64(),
            db as f64 / 1048576.0
        );
        println!(
            "  pages mostly properties {:.0} ms, mostly scores {:.0} ms; log written before the closing checkpoint {:.1} MiB",
            property_pages.as_secs_f64() * 1e3,
            score_pages.as_secs_f64() * 1e3,
            log as f64 / 1048576.0
        );
    }
}
