//! The client schema must only change through a new migration file: the sorted `CREATE` statements of a
//! fresh tenant file are compared to the committed snapshot. Regenerate with `UPDATE_SNAPSHOTS=1`.

mod support;

use std::path::Path;

#[test]
fn schema_matches_the_committed_snapshot() {
    let f = support::tenant();
    assert_eq!(
        f.store.schema_version().expect("version"),
        local_store::schema::SCHEMA_VERSION
    );
    let actual = f.store.schema_sql().expect("dump");
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/schema.sql");
    if std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::write(&snapshot, &actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&snapshot)
        .expect("snapshot exists (run with UPDATE_SNAPSHOTS=1 to create it)");
    assert!(
        actual == expected,
        "the schema differs from tests/snapshots/schema.sql; add a migration and rerun with UPDATE_SNAPSHOTS=1\n--- actual ---\n{actual}"
    );
}
