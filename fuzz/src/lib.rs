//! The checks behind the fuzz targets, in a library so the same code runs under libFuzzer
//! (`fuzz_targets/*.rs`, `cargo xtask fuzz`) and as a bounded test over the kept corpus plus seeded random
//! inputs (`tests/corpus.rs`). Each check panics only when an invariant is broken — a decoder or importer
//! refusing bad input with a typed error is the expected outcome, never a finding.

use domain::{Hlc, StormId, Timestamp};
use serde_json::{Map, Value};
use sync_protocol::merge::{FieldClocks, join_records, merge_fields};
use sync_protocol::{Entity, PushRequest};

/// A push request body: decoding never panics; whatever decodes re-encodes to a body that decodes to
/// the same request (the server and laptops agree on every accepted shape), and every change's entity
/// keeps its stable text.
pub fn push_request(data: &[u8]) {
    let Ok(request) = serde_json::from_slice::<PushRequest>(data) else {
        return;
    };
    let encoded = serde_json::to_vec(&request).expect("a decoded request re-encodes");
    let again: PushRequest =
        serde_json::from_slice(&encoded).expect("a re-encoded request decodes");
    assert_eq!(request.changes, again.changes, "push request round trip");
    for change in &request.changes {
        let text = serde_json::to_value(change.entity).expect("entity encodes");
        let name = text.as_str().expect("entity is text");
        assert_eq!(
            Entity::parse(name),
            Some(change.entity),
            "entity text {name}"
        );
    }
}

/// One field write of the merge target: which field, what value, which clock.
#[derive(Clone, Debug)]
struct Write {
    field: String,
    value: Value,
    hlc: Hlc,
}

/// Decodes bytes into writes, four bytes each: field (4 names), value (small ints and short strings, so
/// equal clocks with different values happen often), and a clock with few distinct readings (so ties and
/// reorderings are common, which is where merge bugs live).
fn writes(data: &[u8]) -> Vec<Write> {
    data.chunks_exact(4)
        .take(64)
        .map(|c| Write {
            field: ["status", "owner_name", "owner_phone", "owner_email"][usize::from(c[0] % 4)]
                .to_owned(),
            value: if c[1] % 2 == 0 {
                Value::from(i64::from(c[1] % 7))
            } else {
                Value::from(format!("v{}", c[1] % 5))
            },
            hlc: Hlc::new(
                u64::from(c[2] % 8),
                u32::from(c[3] % 3),
                u64::from(c[3] / 3 % 3),
            ),
        })
        .collect()
}

fn apply(writes: &[Write]) -> (Map<String, Value>, FieldClocks) {
    let mut record = Map::new();
    let mut clocks = FieldClocks::new();
    for w in writes {
        let mut update = Map::new();
        update.insert(w.field.clone(), w.value.clone());
        let out = merge_fields(&record, &clocks, &update, w.hlc);
        record = out.record;
        clocks = out.clocks;
    }
    (record, clocks)
}

/// The merge rule: applying the same writes in any order gives the same record (so every replica
/// converges); applying a write twice changes nothing the second time (replays are harmless); joining
/// replicas is commutative, idempotent and equals applying all their writes.
pub fn merge(data: &[u8]) {
    let all = writes(data);
    if all.is_empty() {
        return;
    }
    let split = usize::from(data[0]) % (all.len() + 1);
    let forward = apply(&all);
    let mut reversed_writes = all.clone();
    reversed_writes.reverse();
    assert_eq!(apply(&reversed_writes), forward, "order changed the merge");
    let mut rotated = all.clone();
    rotated.rotate_left(split % all.len());
    assert_eq!(apply(&rotated), forward, "rotation changed the merge");

    let mut twice = Vec::with_capacity(all.len() * 2);
    for w in &all {
        twice.push(w.clone());
        twice.push(w.clone());
    }
    assert_eq!(apply(&twice), forward, "a replayed write changed the merge");

    let (left, right) = all.split_at(split);
    let (l, lc) = apply(left);
    let (r, rc) = apply(right);
    let lr = join_records(&l, &lc, &r, &rc);
    let rl = join_records(&r, &rc, &l, &lc);
    assert_eq!(lr, rl, "join is not commutative");
    assert_eq!(
        lr, forward,
        "joining replicas differs from applying every write"
    );
    assert_eq!(
        join_records(&l, &lc, &l, &lc),
        (l.clone(), lc.clone()),
        "join is not idempotent"
    );
}

/// The property CSV importer (`property-csv`, the parser of laptops and the server alike): never panics;
/// it imports only when every row is valid (each imported property passes validation, belongs to the
/// storm, and keeps a line of the file, in file order), and a refusal names at least one problem, each
/// on a line of the file.
pub fn csv_import(data: &[u8]) {
    use property_csv::PropertyCsvError;
    let storm = StormId(uuid::Uuid::from_u128(7));
    let now = Timestamp(1_790_000_000_000);
    // Every record but the last ends in an LF or a CR, so this bounds the rows and their lines.
    let lines = data
        .iter()
        .enumerate()
        .filter(|(i, b)| **b == b'\n' || (**b == b'\r' && data.get(i + 1) != Some(&b'\n')))
        .count() as u64
        + 1;
    match property_csv::parse_rows(data, storm, now) {
        Ok(rows) => {
            assert!(rows.len() as u64 <= lines, "more properties than lines");
            assert!(
                rows.windows(2).all(|w| w[0].line <= w[1].line),
                "rows out of line order"
            );
            for row in &rows {
                assert!((1..=lines).contains(&row.line), "row on line {}", row.line);
                let p = &row.property;
                assert_eq!(p.storm_id, storm);
                assert!(
                    domain::Validate::validate(p, now).is_ok(),
                    "an imported property does not validate: {p:?}"
                );
            }
        }
        Err(PropertyCsvError::InvalidRows { rows }) => {
            assert!(!rows.is_empty());
            for row in &rows {
                assert!(
                    (1..=lines).contains(&row.line),
                    "problem on line {}",
                    row.line
                );
                assert!(!row.code.is_empty() && !row.message.is_empty());
            }
        }
        Err(PropertyCsvError::WrongColumns {
            missing,
            unknown,
            repeated,
        }) => assert!(!(missing.is_empty() && unknown.is_empty() && repeated.is_empty())),
        Err(PropertyCsvError::Unreadable { message }) => assert!(!message.is_empty()),
        Err(PropertyCsvError::TooManyRows { max }) => {
            assert!(lines > max as u64, "{max} rows refused in {lines} lines")
        }
    }
}

/// A small legacy database from the sample generator, made once per process: the base the
/// `legacy_import` target patches.
fn legacy_sample() -> &'static [u8] {
    static SAMPLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    SAMPLE.get_or_init(|| {
        let path = std::env::temp_dir().join(format!(
            "stormops-fuzz-legacy-sample-{}.db",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let options = ::legacy_import::generate::GenerateOptions {
            properties: 12,
            storms: 2,
            journeys_per_property: 2,
            broken_rows: 3,
            drop_tables: Vec::new(),
            seed: 7,
        };
        ::legacy_import::generate::generate(&path, &options).expect("the sample legacy database");
        let bytes = std::fs::read(&path).expect("the sample file");
        let _ = std::fs::remove_file(&path);
        bytes
    })
}

/// The legacy importer: the generated sample database with the input applied as byte patches (four
/// bytes each: a 16-bit position scaled over the file, a byte, and whether to set or flip it), so
/// record values, types and page structure all get damaged. Reading never panics; a damaged file is a
/// typed error or rejected rows, and whatever is read as valid passes validation.
pub fn legacy_import(data: &[u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut file = legacy_sample().to_vec();
    for patch in data.chunks_exact(4).take(32) {
        let at = usize::from(u16::from_le_bytes([patch[0], patch[1]])) * file.len() / 65_536;
        if patch[3] & 1 == 0 {
            file[at] = patch[2];
        } else {
            file[at] ^= patch[2];
        }
    }
    let path = std::env::temp_dir().join(format!(
        "stormops-fuzz-legacy-{}-{}.db",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, &file).expect("a scratch file");
    let identity = ::legacy_import::ImportIdentity::for_user(
        domain::TenantId(uuid::Uuid::from_u128(1)),
        domain::UserId(uuid::Uuid::from_u128(2)),
    );
    let now = Timestamp(1_790_000_000_000);
    let result = ::legacy_import::read_legacy(&path, &identity, now);
    let _ = std::fs::remove_file(&path);
    if let Ok(read) = result {
        for p in &read.properties {
            assert!(
                domain::Validate::validate(p, now).is_ok(),
                "an imported legacy property does not validate: {p:?}"
            );
        }
        for t in &read.touches {
            assert!(
                domain::Validate::validate(t, now).is_ok(),
                "an imported legacy touch does not validate: {t:?}"
            );
        }
    }
}
