//! The keyed provider writes and reads standard SQLCipher 4 files: a file written with SQLCipher's stock
//! OpenSSL provider opens with this one and the other way round, before and after a rekey, and a wrong key
//! or a changed byte is still refused. One test, because the registered provider is process-wide.

use std::path::Path;

use rusqlite::Connection;

const KEY: &str = "x'2b7e151628aed2a6abf7158809cf4f3c2b7e151628aed2a6abf7158809cf4f3c'";
const NEW_KEY: &str = "x'603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4'";
const ROWS: i64 = 3_000;

fn keyed(path: &Path, key: &str) -> Connection {
    let conn = Connection::open(path).expect("open");
    conn.execute_batch(&format!(
        "PRAGMA key = \"{key}\"; PRAGMA cipher_log_level = NONE;"
    ))
    .expect("key");
    conn
}

fn provider(conn: &Connection) -> String {
    conn.query_row("PRAGMA cipher_provider", [], |row| row.get(0))
        .expect("provider")
}

/// Writes enough rows (about 600 KiB of notes) for many pages, and checkpoints them into the file.
fn write_rows(path: &Path, key: &str) -> String {
    let conn = keyed(path, key);
    let name = provider(&conn);
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
         BEGIN;",
    )
    .expect("schema");
    for id in 0..ROWS {
        conn.execute(
            "INSERT INTO notes (id, body) VALUES (?1, ?2)",
            (
                id,
                format!("note {id} {}", "hail damage on the north slope ".repeat(6)),
            ),
        )
        .expect("insert");
    }
    conn.execute_batch("COMMIT; PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("commit");
    name
}

/// Reads every row back and checks each one.
fn read_rows(path: &Path, key: &str) -> (String, Result<(), rusqlite::Error>) {
    let conn = keyed(path, key);
    let name = provider(&conn);
    let checked = (|| {
        let mut statement = conn.prepare("SELECT id, body FROM notes ORDER BY id")?;
        let mut rows = statement.query([])?;
        let mut expected = 0;
        while let Some(row) = rows.next()? {
            let (id, body): (i64, String) = (row.get(0)?, row.get(1)?);
            assert_eq!(id, expected);
            assert!(body.starts_with(&format!("note {id} hail")), "{body}");
            expected += 1;
        }
        assert_eq!(expected, ROWS, "every row read back");
        Ok(())
    })();
    (name, checked)
}

fn rekey(path: &Path, from: &str, to: &str) {
    keyed(path, from)
        .execute_batch(&format!("PRAGMA rekey = \"{to}\";"))
        .expect("rekey");
}

#[test]
fn stock_and_keyed_providers_read_each_others_files_and_refuse_wrong_keys_and_damage() {
    let dir = tempfile::tempdir().expect("dir");
    let by_stock = dir.path().join("by-stock.db");

    // Before registration every connection gets the stock provider. This keyed in-memory connection stays
    // open throughout, so SQLCipher keeps whichever provider is registered.
    let anchor = Connection::open_in_memory().expect("anchor");
    anchor.execute_batch("PRAGMA key = 'anchor';").expect("key");
    assert_eq!(write_rows(&by_stock, KEY), "openssl");
    assert_eq!(
        sqlcipher_provider::unregister(),
        Ok(()),
        "a no-op before registering"
    );

    sqlcipher_provider::register().expect("register");
    sqlcipher_provider::register().expect("registering twice is a no-op");
    // With two cores, pages are signed with their hash computed alongside their encryption, and the
    // stock provider reading this file below checks those signatures. A commit's pages go one step after
    // the other while the helper thread is parked or off its core (a busy machine), so write the file
    // again until some page was signed alongside.
    let two_cores = std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2;
    let started = std::time::Instant::now();
    let mut by_keyed = dir.path().join("by-keyed.db");
    for attempt in 1.. {
        let alongside = sqlcipher_provider::pages_signed_alongside();
        assert_eq!(
            write_rows(&by_keyed, KEY),
            sqlcipher_provider::PROVIDER_NAME
        );
        if !two_cores || sqlcipher_provider::pages_signed_alongside() > alongside {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no page was signed alongside its encryption in {attempt} files"
        );
        by_keyed = dir.path().join(format!("by-keyed-{attempt}.db"));
    }
    let (name, read) = read_rows(&by_stock, KEY);
    assert_eq!(name, sqlcipher_provider::PROVIDER_NAME);
    read.expect("the keyed provider reads the stock provider's file");
    rekey(&by_stock, KEY, NEW_KEY);
    // The keyed provider refuses a wrong key like the stock one: reading fails, nothing is returned.
    assert!(
        read_rows(&by_keyed, NEW_KEY).1.is_err(),
        "wrong key refused"
    );

    sqlcipher_provider::unregister().expect("unregister");
    let (name, read) = read_rows(&by_keyed, KEY);
    assert_eq!(name, "openssl");
    read.expect("the stock provider reads the keyed provider's file");
    read_rows(&by_stock, NEW_KEY)
        .1
        .expect("the stock provider reads the file the keyed provider rekeyed");
    rekey(&by_keyed, KEY, NEW_KEY);

    sqlcipher_provider::register().expect("register again");
    read_rows(&by_keyed, NEW_KEY)
        .1
        .expect("the keyed provider reads the file the stock provider rekeyed");

    // One flipped byte in the middle of a page fails the keyed provider's signature check.
    let mut bytes = std::fs::read(&by_keyed).expect("read file");
    let at = 4096 * 5 + 1000;
    bytes[at] ^= 0x01;
    std::fs::write(&by_keyed, &bytes).expect("write file");
    assert!(
        read_rows(&by_keyed, NEW_KEY).1.is_err(),
        "a damaged page is refused"
    );
    drop(anchor);
}
