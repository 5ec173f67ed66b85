//! The sync log: one row per sync attempt (outcome code, counts, bytes, time), kept to the last
//! `SYNC_LOG_KEEP` rows. It feeds the status screen, crew sync health and the diagnostics bundle, and
//! holds no record content, token or key.

use domain::Timestamp;
use rusqlite::params;
use serde::Serialize;

use crate::error::StoreResult;
use crate::store::TenantStore;

/// How many attempts are kept.
pub const SYNC_LOG_KEEP: i64 = 200;

/// One sync attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncLogEntry {
    pub started_at: Timestamp,
    pub elapsed_ms: i64,
    /// `ok` or `error`.
    pub outcome: String,
    /// The stable error code when it failed.
    pub error_code: Option<String>,
    pub pushed: i64,
    pub duplicates: i64,
    pub refused: i64,
    pub pulled: i64,
    pub bytes_sent: i64,
    pub bytes_received: i64,
}

impl TenantStore {
    /// Appends an attempt and trims the log to the newest `SYNC_LOG_KEEP` rows, in one transaction.
    pub fn record_sync(&mut self, entry: &SyncLogEntry) -> StoreResult<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO sync_log (started_at, elapsed_ms, outcome, error_code, pushed, duplicates, refused, pulled, bytes_sent, bytes_received)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                entry.started_at.millis(),
                entry.elapsed_ms,
                entry.outcome,
                entry.error_code,
                entry.pushed,
                entry.duplicates,
                entry.refused,
                entry.pulled,
                entry.bytes_sent,
                entry.bytes_received
            ],
        )?;
        tx.execute(
            "DELETE FROM sync_log WHERE seq <= (SELECT max(seq) FROM sync_log) - ?1",
            [SYNC_LOG_KEEP],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The newest attempts first.
    pub fn recent_syncs(&self, limit: u32) -> StoreResult<Vec<SyncLogEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT started_at, elapsed_ms, outcome, error_code, pushed, duplicates, refused, pulled, bytes_sent, bytes_received
             FROM sync_log ORDER BY seq DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok(SyncLogEntry {
                started_at: Timestamp::from_millis(r.get(0)?),
                elapsed_ms: r.get(1)?,
                outcome: r.get(2)?,
                error_code: r.get(3)?,
                pushed: r.get(4)?,
                duplicates: r.get(5)?,
                refused: r.get(6)?,
                pulled: r.get(7)?,
                bytes_sent: r.get(8)?,
                bytes_received: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
