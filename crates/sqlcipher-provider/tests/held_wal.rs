//! The held-WAL file layer writes the files SQLite and SQLCipher write: a copy of a database and its
//! write-ahead log, taken while the writer still has them open and nothing is checkpointed, opens with
//! SQLite's default file layer and SQLCipher's stock provider, which recover the log (checking every
//! frame's chained checksum and every page's signature) and find every committed row and nothing else.
//! One test for the encrypted files, because the registered provider is process-wide.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

const KEY: &str = "x'2b7e151628aed2a6abf7158809cf4f3c2b7e151628aed2a6abf7158809cf4f3c'";

fn open_held(path: &Path, key: Option<&str>) -> Connection {
    let vfs = sqlcipher_provider::register_vfs().expect("register the layer");
    let conn = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), vfs).expect("open");
    if let Some(key) = key {
        conn.execute_batch(&format!(
            "PRAGMA key = \"{key}\"; PRAGMA cipher_log_level = NONE;"
        ))
        .expect("key");
    }
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;",
    )
    .expect("pragmas");
    conn
}

/// Copies the database and its log (not the shared index, so the reader recovers the log from the file).
fn copy_with_log(path: &Path, to: &Path) -> PathBuf {
    let copy = to.join("copy.db");
    std::fs::copy(path, &copy).expect("copy the database");
    let log = |p: &Path| PathBuf::from(format!("{}-wal", p.display()));
    std::fs::copy(log(path), log(&copy)).expect("copy the log");
    copy
}

/// Rows in commits of 150, a transaction whose pages spill from a tiny cache and are written again in
/// place before it commits, and a spilled transaction rolled back; returns what the table must hold.
fn write_through_the_layer(conn: &Connection) -> (i64, i64) {
    conn.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);")
        .expect("schema");
    let insert = |from: i64, to: i64| {
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
             INSERT INTO notes SELECT i, printf('note %d %s', i, hex(randomblob(60))) FROM n",
            (from, to),
        )
        .expect("insert");
    };
    for commit in 0..20 {
        insert(commit * 150, commit * 150 + 149);
    }
    conn.execute_batch("PRAGMA cache_size = 8; BEGIN;")
        .expect("begin");
    insert(3_000, 5_999);
    conn.execute(
        "UPDATE notes SET body = body || ' seen again' WHERE id < 3000",
        [],
    )
    .expect("update spilled pages");
    conn.execute_batch("COMMIT; BEGIN;").expect("commit");
    insert(6_000, 8_999);
    conn.execute_batch("ROLLBACK; PRAGMA cache_size = -8192;")
        .expect("rollback");
    insert(6_000, 6_499);
    (6_500, 3_000)
}

fn check(conn: &Connection, (rows, seen_again): (i64, i64)) {
    let count: i64 = conn
        .query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
        .expect("count");
    assert_eq!(count, rows, "every committed row and no rolled-back one");
    let seen: i64 = conn
        .query_row(
            "SELECT count(*) FROM notes WHERE body LIKE '% seen again'",
            [],
            |r| r.get(0),
        )
        .expect("count updated");
    assert_eq!(seen, seen_again, "the update of spilled pages");
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity");
    assert_eq!(integrity, "ok");
}

#[test]
fn encrypted_log_frames_signed_behind_recover_with_the_stock_provider_and_default_layer() {
    let dir = tempfile::tempdir().expect("dir");
    let anchor = Connection::open_in_memory().expect("anchor");
    anchor.execute_batch("PRAGMA key = 'anchor';").expect("key");
    sqlcipher_provider::register().expect("register the keyed provider");

    let path = dir.path().join("held.db");
    let writer = open_held(&path, Some(KEY));
    let before = sqlcipher_provider::pages_signed_after_handing_on();
    let expected = write_through_the_layer(&writer);
    assert!(
        sqlcipher_provider::pages_signed_after_handing_on() > before + 100,
        "log pages were signed after SQLCipher handed them on"
    );
    check(&writer, expected);
    let copied = tempfile::tempdir().expect("dir");
    let copy = copy_with_log(&path, copied.path());

    sqlcipher_provider::unregister().expect("stock provider");
    let reader = Connection::open(&copy).expect("open the copy");
    reader
        .execute_batch(&format!(
            "PRAGMA key = \"{KEY}\"; PRAGMA cipher_log_level = NONE;"
        ))
        .expect("key");
    let name: String = reader
        .query_row("PRAGMA cipher_provider", [], |r| r.get(0))
        .expect("provider");
    assert_eq!(name, "openssl");
    check(&reader, expected);
    drop(reader);
    sqlcipher_provider::register().expect("register again");

    drop(writer);
    assert_eq!(sqlcipher_provider::signatures_unclaimed(), 0);
    drop(anchor);
}

#[test]
fn plain_log_frames_held_recover_with_the_default_layer() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("plain.db");
    let writer = open_held(&path, None);
    let expected = write_through_the_layer(&writer);
    check(&writer, expected);
    let copied = tempfile::tempdir().expect("dir");
    let reader = Connection::open(copy_with_log(&path, copied.path())).expect("open the copy");
    check(&reader, expected);
}
