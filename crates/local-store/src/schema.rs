//! Client schema migrations: the SQL files under `migrations/local/` (append-only), applied in order,
//! each in its own transaction, with the schema version kept in SQLite's `user_version`.

use std::path::Path;

use rusqlite::Connection;

use crate::error::{StoreError, StoreResult};

/// The migrations in order; the version after applying `MIGRATIONS[i]` is `i + 1`.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_initial",
        include_str!("../../../migrations/local/0001_initial.sql"),
    ),
    (
        "0002_server_account",
        include_str!("../../../migrations/local/0002_server_account.sql"),
    ),
    (
        "0003_sync_log",
        include_str!("../../../migrations/local/0003_sync_log.sql"),
    ),
    (
        "0004_lighter_pulled_writes",
        include_str!("../../../migrations/local/0004_lighter_pulled_writes.sql"),
    ),
];

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The file's current schema version.
pub(crate) fn version(conn: &Connection) -> StoreResult<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}

/// Brings the schema up to [`SCHEMA_VERSION`]; refuses files written by a newer program.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> StoreResult<()> {
    let current = version(conn)?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_owned(),
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, (_name, sql)) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        // user_version cannot be bound as a parameter; the value is our own integer.
        tx.execute_batch(&format!("PRAGMA user_version = {}", index + 1))?;
        tx.commit()?;
    }
    Ok(())
}

/// The schema as sorted `CREATE` statements: what the snapshot test compares.
pub fn dump(conn: &Connection) -> StoreResult<String> {
    let mut stmt =
        conn.prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name")?;
    let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
    let mut out = String::new();
    for sql in rows {
        out.push_str(&sql?);
        out.push_str(";\n\n");
    }
    Ok(out)
}
