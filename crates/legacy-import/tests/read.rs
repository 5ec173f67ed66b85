//! The reader against real generated SQLite files: every broken row is reported with its table and old
//! id and nothing else is, ids are deterministic, and missing tables or a non-database file are typed
//! errors naming what is wrong.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use domain::{TenantId, Timestamp, UserId};
use legacy_import::generate::{GenerateOptions, generate};
use legacy_import::{ImportIdentity, LegacyError, read_legacy};
use uuid::Uuid;

const NOW: Timestamp = Timestamp(1_790_000_000_000);

fn identity(tenant: u128) -> ImportIdentity {
    ImportIdentity::for_user(
        TenantId(Uuid::from_u128(tenant)),
        UserId(Uuid::from_u128(99)),
    )
}

#[test]
fn every_broken_row_is_reported_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("legacy.db");
    let generated = generate(
        &path,
        &GenerateOptions {
            properties: 300,
            storms: 3,
            broken_rows: 12,
            ..GenerateOptions::default()
        },
    )
    .unwrap();
    let data = read_legacy(&path, &identity(1), NOW).unwrap();
    let reported: BTreeSet<(String, i64)> = data
        .rejected
        .iter()
        .map(|r| (r.table.clone(), r.old_id))
        .collect();
    let expected: BTreeSet<(String, i64)> = generated.broken.iter().cloned().collect();
    assert_eq!(reported, expected);
    assert_eq!(data.rejected.len(), 12);
    for r in &data.rejected {
        assert!(!r.reason.is_empty());
    }
    let reasons: Vec<&str> = data.rejected.iter().map(|r| r.reason.as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("latitude")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("roof_material 'thatch'")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("channel 'pigeon'")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("p_treat")), "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("storm 9999")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("name")), "{reasons:?}");
    assert_eq!(data.storms.len(), generated.storms);
    assert_eq!(data.properties.len(), generated.properties);
    assert_eq!(data.touches.len(), generated.journeys);
    assert_eq!(data.scores.len(), generated.scores);
    assert_eq!(data.experiments.len(), generated.experiments);
}

#[test]
fn ids_are_deterministic_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("legacy.db");
    generate(&path, &GenerateOptions::default()).unwrap();
    let first = read_legacy(&path, &identity(1), NOW).unwrap();
    let again = read_legacy(&path, &identity(1), NOW).unwrap();
    assert_eq!(first, again);
    let other = read_legacy(&path, &identity(2), NOW).unwrap();
    assert_ne!(first.properties[0].id, other.properties[0].id);
    assert_eq!(first.properties[0].id.0.get_version_num(), 8);
    // Touches and scores point at the properties' new ids.
    let ids: BTreeSet<Uuid> = first.properties.iter().map(|p| p.id.0).collect();
    assert!(first.touches.iter().all(|t| ids.contains(&t.property_id.0)));
    assert!(first.scores.iter().all(|s| ids.contains(&s.property_id.0)));
}

#[test]
fn missing_tables_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("legacy.db");
    generate(
        &path,
        &GenerateOptions {
            drop_tables: vec!["journeys".into(), "experiments".into()],
            ..GenerateOptions::default()
        },
    )
    .unwrap();
    let err = read_legacy(&path, &identity(1), NOW).unwrap_err();
    assert_eq!(err.code(), "legacy_missing_tables");
    match err {
        LegacyError::MissingTables(tables) => assert_eq!(tables, ["journeys", "experiments"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_file_that_is_not_a_database_is_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    std::fs::write(
        &path,
        b"this is not SQLite at all, just some text that is long enough",
    )
    .unwrap();
    let err = read_legacy(&path, &identity(1), NOW).unwrap_err();
    assert_eq!(err.code(), "legacy_unreadable");
    let err = read_legacy(&dir.path().join("absent.db"), &identity(1), NOW).unwrap_err();
    assert_eq!(err.code(), "legacy_unreadable");
}

#[test]
fn text_that_is_not_utf8_is_a_rejected_row_not_a_panic() {
    // Regression of the `legacy_import` fuzz target's crash (fuzz/corpus/legacy_import/
    // regression_invalid_utf8_text.bin): rusqlite's own Value conversion panics on such text.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("legacy.db");
    generate(&path, &GenerateOptions::default()).unwrap();
    let damaged: i64 = {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let id: i64 = conn
            .query_row("SELECT min(id) FROM properties", [], |r| r.get(0))
            .unwrap();
        conn.execute(
            "UPDATE properties SET address = CAST(x'fffe41' AS TEXT) WHERE id = ?1",
            [id],
        )
        .unwrap();
        id
    };
    let data = read_legacy(&path, &identity(1), NOW).unwrap();
    let rejected: Vec<_> = data
        .rejected
        .iter()
        .filter(|r| r.table == "properties" && r.old_id == damaged)
        .collect();
    assert_eq!(rejected.len(), 1, "{:?}", data.rejected);
    assert!(
        rejected[0].reason.contains("address"),
        "{}",
        rejected[0].reason
    );
}
