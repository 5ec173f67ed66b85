//! Multi-row `INSERT` statements for batches of local writes: one statement execution per chunk of up to
//! [`ROWS_PER_STATEMENT`] rows instead of one per row. Each execution opens a cursor on the table and on
//! each of its indexes, closes them again and goes through a bind/step/reset round; in a 100,000-touch
//! batch (a touch row and an outbox row each) that per-statement work was about a tenth of the insert.

use rusqlite::{Connection, Statement};

use crate::error::StoreResult;

/// Rows per statement: large enough that the per-statement work is spread thin, small enough to stay far
/// below SQLite's limit on bound parameters (32,766) for any of our tables.
pub(crate) const ROWS_PER_STATEMENT: usize = 64;

/// The shape of a multi-row statement: `head` (`INSERT … INTO t (a, b) VALUES`), then `row` (`(?, ?)`,
/// placeholders without numbers) once per row, then `tail` (an `ON CONFLICT …` clause, or nothing).
#[derive(Clone, Copy)]
pub(crate) struct MultiRow<'a> {
    pub head: &'a str,
    pub row: &'a str,
    pub tail: &'a str,
}

/// The text of one statement inserting `rows` rows.
fn statement_text(shape: MultiRow<'_>, rows: usize) -> String {
    let MultiRow { head, row, tail } = shape;
    let mut sql = String::with_capacity(head.len() + rows * (row.len() + 2) + tail.len() + 1);
    sql.push_str(head);
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push(' ');
        sql.push_str(row);
    }
    if !tail.is_empty() {
        sql.push(' ');
        sql.push_str(tail);
    }
    sql
}

/// Runs `shape` over `rows` with as few statement executions as chunks of [`ROWS_PER_STATEMENT`]. `bind`
/// binds one row's values from the given 1-based parameter index and returns the index after them.
/// Returns the rows the statements changed: for an insert, fewer than `rows.len()` when an `OR IGNORE` or
/// `DO NOTHING` skipped some. (A shape may also be an `UPDATE … WHERE id IN (` list `)`.)
pub(crate) fn execute_rows<R>(
    conn: &Connection,
    shape: MultiRow<'_>,
    rows: &[R],
    bind: impl Fn(&mut Statement<'_>, usize, &R) -> rusqlite::Result<usize>,
) -> StoreResult<usize> {
    let full = statement_text(shape, ROWS_PER_STATEMENT);
    let mut inserted = 0;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let run = |stmt: &mut Statement<'_>| -> StoreResult<usize> {
            let mut index = 1;
            for r in chunk {
                index = bind(stmt, index, r)?;
            }
            Ok(stmt.raw_execute()?)
        };
        inserted += match chunk.len() {
            // The full chunk, and a single row (one record written from the app), are the statements
            // every batch reuses; a batch's odd tail is prepared once, without filling the cache.
            ROWS_PER_STATEMENT => run(&mut *conn.prepare_cached(&full)?)?,
            1 => run(&mut *conn.prepare_cached(&statement_text(shape, 1))?)?,
            n => run(&mut conn.prepare(&statement_text(shape, n))?)?,
        };
    }
    Ok(inserted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Connection {
        let conn = Connection::open_in_memory().expect("memory");
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, label TEXT NOT NULL, kind TEXT NOT NULL)",
        )
        .expect("table");
        conn
    }

    fn shape<'a>(head: &'a str, row: &'a str, tail: &'a str) -> MultiRow<'a> {
        MultiRow { head, row, tail }
    }

    fn bind(
        stmt: &mut Statement<'_>,
        index: usize,
        row: &(i64, String),
    ) -> rusqlite::Result<usize> {
        stmt.raw_bind_parameter(index, row.0)?;
        stmt.raw_bind_parameter(index + 1, &row.1)?;
        Ok(index + 2)
    }

    #[test]
    fn every_row_is_inserted_in_order_across_full_chunks_a_tail_and_a_single_row() {
        let conn = table();
        for count in [1, ROWS_PER_STATEMENT, 2 * ROWS_PER_STATEMENT + 5] {
            conn.execute("DELETE FROM t", []).expect("clear");
            let rows: Vec<(i64, String)> =
                (0..count as i64).map(|i| (i, format!("row {i}"))).collect();
            let inserted = execute_rows(
                &conn,
                shape(
                    "INSERT INTO t (id, label, kind) VALUES",
                    "(?, ?, 'fixed')",
                    "",
                ),
                &rows,
                bind,
            )
            .expect("insert");
            assert_eq!(inserted, count);
            let stored: Vec<(i64, String, String)> = conn
                .prepare("SELECT id, label, kind FROM t ORDER BY id")
                .expect("select")
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .expect("rows")
                .collect::<Result<_, _>>()
                .expect("read");
            let expected: Vec<(i64, String, String)> = rows
                .iter()
                .map(|(i, l)| (*i, l.clone(), "fixed".to_owned()))
                .collect();
            assert_eq!(stored, expected);
        }
    }

    #[test]
    fn ignored_rows_are_not_counted() {
        let conn = table();
        conn.execute("INSERT INTO t VALUES (3, 'there before', 'x')", [])
            .expect("seed");
        let rows: Vec<(i64, String)> = (0..10).map(|i| (i, format!("row {i}"))).collect();
        let inserted = execute_rows(
            &conn,
            shape(
                "INSERT INTO t (id, label, kind) VALUES",
                "(?, ?, 'y')",
                "ON CONFLICT (id) DO NOTHING",
            ),
            &rows,
            bind,
        )
        .expect("insert");
        assert_eq!(inserted, 9);
        let kept: String = conn
            .query_row("SELECT label FROM t WHERE id = 3", [], |r| r.get(0))
            .expect("row");
        assert_eq!(kept, "there before");
    }

    #[test]
    fn statement_text_repeats_the_row() {
        assert_eq!(
            statement_text(shape("INSERT INTO t (a) VALUES", "(?)", ""), 3),
            "INSERT INTO t (a) VALUES (?), (?), (?)"
        );
        assert_eq!(
            statement_text(
                shape(
                    "INSERT INTO t (a) VALUES",
                    "(?)",
                    "ON CONFLICT (a) DO NOTHING"
                ),
                2
            ),
            "INSERT INTO t (a) VALUES (?), (?) ON CONFLICT (a) DO NOTHING"
        );
    }
}
