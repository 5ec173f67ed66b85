//! Recovery from a wall clock that ran ahead: the changes this laptop stamped while its clock was
//! beyond the server's skew bound are refused (`clock_skew`) and would stay refused until real time
//! caught up with them — hours. Once the clock is correct again, the sync engine re-stamps them here:
//! in ONE transaction, every own outbox change from the first one stamped beyond the bound onwards gets
//! a fresh reading, in `seq` order and strictly increasing, each following everything this laptop has
//! seen from the server; the field clocks those changes wrote into their records, and the clocks that
//! later changes' `before` images copied from them, follow; and the file's clock is reset. A crash
//! before the commit leaves every old stamp in place.

use std::collections::{BTreeSet, HashMap};

use domain::Hlc;
use domain::clock::{HlcClock, HlcError};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use sync_protocol::{ChangeOp, Entity};
use uuid::Uuid;

use crate::error::{StoreError, StoreResult};
use crate::outbox_columns::{self, HLC_LEN};
use crate::rows;
use crate::store::TenantStore;
use crate::writes::persist_clock;

/// An own outbox change to re-stamp: seq, stored reading, entity code, record id, op code, `before`.
type QueuedChange = (i64, Vec<u8>, i64, Uuid, i64, Option<String>);

/// What a re-stamp did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Restamped {
    /// Outbox changes (pending or waiting in the inbox) given a new reading.
    pub changes: usize,
    /// Records whose field clocks were moved to the new readings.
    pub records: usize,
    /// The latest reading within the bound this laptop had seen or issued: the new readings follow it.
    pub floor: Option<Hlc>,
    /// The first and last new readings.
    pub first: Option<Hlc>,
    pub last: Option<Hlc>,
    /// Whether the file's clock was beyond the bound and has been reset.
    pub clock_reset: bool,
}

/// The largest HLC text whose wall time is at most `wall_ms`: HLC text sorts like the clock, so
/// `c <= bound_text(w)` in SQL selects the text readings (records' field clocks, `before` images) at or
/// before `w` milliseconds. The outbox's own readings are bytes: see [`bound_bytes`].
fn bound_text(wall_ms: u64) -> String {
    Hlc::new(wall_ms, u32::MAX, u64::MAX).to_string()
}

/// The same bound as the outbox stores readings (migration 0012): its bytes sort like the clock too.
fn bound_bytes(wall_ms: u64) -> [u8; HLC_LEN] {
    outbox_columns::hlc_bytes(Hlc::new(wall_ms, u32::MAX, u64::MAX))
}

/// A stored outbox reading, read back.
fn stored_reading(bytes: &[u8]) -> StoreResult<Hlc> {
    outbox_columns::hlc_from_bytes(bytes)
        .ok_or_else(|| StoreError::Decode(format!("outbox reading of {} bytes", bytes.len())))
}

/// The table of a mutable record (the records that carry field clocks).
fn clocked_table(entity: Entity) -> Option<&'static str> {
    match entity {
        Entity::Storm => Some("storms"),
        Entity::Property => Some("properties"),
        Entity::Territory => Some("territories"),
        Entity::User => Some("users"),
        Entity::Crew => Some("crews"),
        _ => None,
    }
}

const CLOCKED_TABLES: [&str; 5] = ["storms", "properties", "territories", "users", "crews"];

fn parse_max(text: Option<String>) -> StoreResult<Option<Hlc>> {
    text.map(|t| Hlc::parse(&t).map_err(|e| StoreError::Decode(format!("clock reading: {e}"))))
        .transpose()
}

/// The latest reading at or before `bound` that this file holds apart from its outbox's own stamps
/// beyond it: the records' field clocks (pulled from the server or written here and acknowledged), the
/// clocks that pending updates overwrote (kept in their `before` image: a value pulled and then edited
/// here is seen, though its clock is no longer in the record), the outbox's stamps within the bound,
/// and the file's clock if it is within the bound. The server refuses every reading beyond its clock
/// and the bound, so nothing it sent is excluded; only this laptop's own too-early-stamped writes are.
fn seen_floor(
    conn: &Connection,
    bound: &str,
    file_clock: Hlc,
    bound_ms: u64,
) -> StoreResult<Option<Hlc>> {
    let mut floor = (file_clock.wall_ms <= bound_ms).then_some(file_clock);
    for table in CLOCKED_TABLES {
        // Field clocks are stored grouped by clock (`{"<hlc>":["field",…]}`, migration 0004) or per
        // field (`{"field":"<hlc>"}`, older rows): the reading is the key of an array, else the value.
        let newest: Option<String> = conn.query_row(
            &format!(
                "SELECT max(c) FROM (SELECT CASE WHEN j.type = 'array' THEN j.key ELSE j.value END AS c
                 FROM {table} AS r, json_each(r.field_clocks) AS j) WHERE c <= ?1"
            ),
            [bound],
            |r| r.get(0),
        )?;
        floor = floor.max(parse_max(newest)?);
    }
    let overwritten: Option<String> = conn.query_row(
        "SELECT max(j.value) FROM outbox AS o, json_each(o.before, '$.clocks') AS j
         WHERE o.before IS NOT NULL AND j.value <= ?1",
        [bound],
        |r| r.get(0),
    )?;
    floor = floor.max(parse_max(overwritten)?);
    let kept: Option<Vec<u8>> = conn.query_row(
        "SELECT max(hlc) FROM outbox WHERE hlc <= ?1",
        [&bound_bytes(bound_ms)[..]],
        |r| r.get(0),
    )?;
    Ok(floor.max(kept.as_deref().map(stored_reading).transpose()?))
}

/// The next reading at `now_ms`; when more changes than the counter holds fall in one millisecond,
/// the following milliseconds are used (a hundred thousand changes per millisecond of advance).
fn next_reading(clock: &mut HlcClock, now_ms: u64) -> StoreResult<Hlc> {
    match clock.tick(now_ms) {
        Err(HlcError::CounterOverflow) => Ok(clock.tick(clock.last().wall_ms + 1)?),
        other => Ok(other?),
    }
}

/// Moves the clocks in a `before` image that name re-stamped readings to their new readings.
fn restamp_before(before: &str, moved: &HashMap<Hlc, Hlc>) -> StoreResult<Option<String>> {
    let mut image: Value =
        serde_json::from_str(before).map_err(|e| StoreError::Decode(e.to_string()))?;
    let mut changed = false;
    if let Some(Value::Object(clocks)) = image.get_mut("clocks") {
        for value in clocks.values_mut() {
            if let Some(new) = value
                .as_str()
                .and_then(|t| Hlc::parse(t).ok())
                .and_then(|old| moved.get(&old))
            {
                *value = Value::String(new.to_string());
                changed = true;
            }
        }
    }
    if !changed {
        return Ok(None);
    }
    serde_json::to_string(&image)
        .map(Some)
        .map_err(|e| StoreError::Decode(e.to_string()))
}

/// Moves a record's field clocks that name re-stamped readings; returns whether any moved.
fn restamp_record(
    conn: &Connection,
    table: &str,
    id: &Uuid,
    moved: &HashMap<Hlc, Hlc>,
) -> StoreResult<bool> {
    let text: Option<String> = conn
        .prepare_cached(&format!("SELECT field_clocks FROM {table} WHERE id = ?1"))?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?;
    let Some(text) = text else {
        return Ok(false);
    };
    let mut clocks = rows::clocks_from_text(&text)?;
    let mut changed = false;
    for hlc in clocks.values_mut() {
        if let Some(new) = moved.get(hlc) {
            *hlc = *new;
            changed = true;
        }
    }
    if changed {
        conn.prepare_cached(&format!(
            "UPDATE {table} SET field_clocks = ?2 WHERE id = ?1"
        ))?
        .execute(params![id.to_string(), rows::clocks_to_text(&clocks)?])?;
    }
    Ok(changed)
}

impl TenantStore {
    /// Re-stamps this laptop's outbox after its wall clock ran ahead and was corrected. `bound_ms` is
    /// the latest wall time the server accepts now (its clock plus the allowed skew, as learnt from the
    /// server): every own change from the first one stamped beyond it onwards — pending or in the
    /// inbox — gets a fresh reading from this file's wall clock, in `seq` order, strictly increasing,
    /// and after every reading within the bound this file has seen (so an edit made after pulling
    /// another still wins over it). Changes stamped within the bound keep their readings: the server
    /// may already hold them (a receipt lost on the way), and it accepts them as they are. The records'
    /// field clocks and later `before` images follow the new readings, and the file's clock restarts
    /// from the last of them (or from what it has seen, if it was beyond the bound with nothing to
    /// re-stamp). One transaction: all of it, or none.
    ///
    /// `acknowledged` is the latest reading the server acknowledged to this laptop that the file may
    /// not hold yet (a push's `server_hlc` whose records have not come back in a pull): the new
    /// readings follow it too, or a re-stamped update could fall behind this laptop's own earlier
    /// insert of the same record. The caller pulls first, so that everything the server holds has
    /// been seen, and checks that this wall clock is itself within the bound: a reading is only as
    /// good as the clock it comes from.
    pub fn restamp_outbox(
        &mut self,
        bound_ms: u64,
        acknowledged: Option<Hlc>,
    ) -> StoreResult<Restamped> {
        let now_ms = self.wall.now().millis().max(0) as u64;
        let bound = bound_text(bound_ms);
        let node = Hlc::node_of(self.device_id);
        let tx = self.conn.transaction()?;
        let first_seq: Option<i64> = tx.query_row(
            "SELECT min(seq) FROM outbox WHERE device_id IS NULL AND hlc > ?1",
            [&bound_bytes(bound_ms)[..]],
            |r| r.get(0),
        )?;
        let clock_ahead = self.clock.last().wall_ms > bound_ms;
        if first_seq.is_none() && !clock_ahead {
            return Ok(Restamped::default());
        }
        let floor = seen_floor(&tx, &bound, self.clock.last(), bound_ms)?
            .max(acknowledged.filter(|a| a.wall_ms <= bound_ms));
        let start = floor.map_or(Hlc::new(0, 0, node), |f| {
            Hlc::new(f.wall_ms, f.counter, node)
        });
        let mut clock = HlcClock::resume(start, sync_protocol::MAX_CLOCK_SKEW_MS);
        let mut report = Restamped {
            floor,
            clock_reset: clock_ahead,
            ..Restamped::default()
        };
        if let Some(first_seq) = first_seq {
            // Own changes from the first one beyond the bound, in the order they were written.
            let queued: Vec<QueuedChange> = tx
                .prepare(
                    "SELECT seq, hlc, entity, entity_id, op, before FROM outbox
                     WHERE device_id IS NULL AND seq >= ?1 ORDER BY seq",
                )?
                .query_map([first_seq], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        rows::uuid_blob(r, 3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })?
                .collect::<Result<_, _>>()?;
            // Old reading -> new, for updates: only they put readings into records' field clocks.
            let mut moved: HashMap<Hlc, Hlc> = HashMap::new();
            let mut records: BTreeSet<(&'static str, Uuid)> = BTreeSet::new();
            {
                let mut set_hlc = tx.prepare_cached("UPDATE outbox SET hlc = ?2 WHERE seq = ?1")?;
                let mut set_before =
                    tx.prepare_cached("UPDATE outbox SET before = ?2 WHERE seq = ?1")?;
                for (seq, old, entity, entity_id, op, before) in &queued {
                    let new = next_reading(&mut clock, now_ms)?;
                    set_hlc.execute(params![seq, &outbox_columns::hlc_bytes(new)[..]])?;
                    report.first.get_or_insert(new);
                    report.last = Some(new);
                    report.changes += 1;
                    // A `before` image copies the clocks its write overwrote, which may be an earlier
                    // re-stamped write's: a discard must restore the reading the record now holds.
                    if let Some(before) = before
                        && let Some(text) = restamp_before(before, &moved)?
                    {
                        set_before.execute(params![seq, text])?;
                    }
                    if *op == outbox_columns::op_code(ChangeOp::Update) {
                        moved.insert(stored_reading(old)?, new);
                        if let Some(table) =
                            outbox_columns::entity_from_code(*entity).and_then(clocked_table)
                        {
                            records.insert((table, *entity_id));
                        }
                    }
                }
            }
            for (table, id) in &records {
                if restamp_record(&tx, table, id, &moved)? {
                    report.records += 1;
                }
            }
        }
        persist_clock(&tx, clock.last())?;
        tx.commit()?;
        self.clock = clock;
        Ok(report)
    }
}
