//! The outbox as the sync engine sees it: the next pending changes in HLC order, receipts that settle
//! them, the inbox of refused changes (retry, edit, discard), and each record's sync state.

use domain::*;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::{Map, Value};
use sync_protocol::{Change, ChangeOp, Entity, FieldClocks, Receipt, ReceiptStatus};
use uuid::Uuid;

use crate::error::{StoreError, StoreResult};
use crate::outbox_columns;
use crate::rows::{self, MutableRecord};
use crate::store::TenantStore;
use crate::writes::{append_change, before_values, persist_clock, to_map};

/// A UUID as the outbox stores it (migration 0006): its 16 bytes.
fn blob(id: &Uuid) -> &[u8] {
    &id.as_bytes()[..]
}

/// A change the server refused, waiting for the user.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboxItem {
    pub change: Change,
    pub code: String,
    pub reason: String,
    pub refused_at: Timestamp,
}

/// Where a record stands with the server.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RecordSyncState {
    /// No change of it is waiting: the server has everything this laptop wrote.
    Synced,
    /// Changes not yet acknowledged.
    Pending { changes: u32 },
    /// The server refused a change; it waits in the inbox.
    Refused { code: String, reason: String },
}

/// What a batch of receipts did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReceiptSummary {
    pub synced: usize,
    pub refused: usize,
    /// Receipts for changes this outbox does not hold (already settled): ignored.
    pub unknown: usize,
}

/// Outbox and inbox counts for the status screen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PendingCounts {
    pub pending: i64,
    pub refused: i64,
    pub oldest_pending_at: Option<Timestamp>,
    pub oldest_pending_age_ms: Option<i64>,
}

/// Read by [`change_from_row`]. In statements, `state = 0` is a pending change and `state = 1` a refused
/// one (migration 0012, `outbox_columns`).
const OUTBOX_COLUMNS: &str = "change_id, hlc, device_id, entity, entity_id, op, payload";

/// The outbox rows of one record (`?1`: its entity's code, `outbox_columns::entity_code`; `?2`: its id's
/// 16 bytes), as a condition SQLite answers from two indexes (migration 0011): an append-only record's
/// insert change has the record's id as its change id and is found through the unique `change_id` index;
/// every other change is in `outbox_by_record`, whose entries are the rows whose change id is not their
/// record's.
pub(crate) const OF_RECORD: &str = "((change_id = ?2 AND entity_id = ?2 AND entity = ?1) OR (entity = ?1 AND entity_id = ?2 AND change_id IS NOT entity_id))";

/// An outbox row as stored: the change, and its payload text — `None` for the insert of an append-only
/// record, whose payload is the record itself (migration 0005; see [`resolve`]).
struct StoredChange {
    change: Change,
    /// `None`: this file's own device (migration 0006), filled in by [`resolve`].
    device: Option<DeviceId>,
    payload: Option<String>,
}

fn change_from_row(row: &Row<'_>) -> rusqlite::Result<StoredChange> {
    let conversion = |index: usize, message: String| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            Box::<dyn std::error::Error + Send + Sync>::from(message),
        )
    };
    let hlc: Vec<u8> = row.get(1)?;
    let entity: i64 = row.get(3)?;
    let op: i64 = row.get(5)?;
    Ok(StoredChange {
        change: Change {
            id: ChangeId(rows::uuid_blob(row, 0)?),
            hlc: outbox_columns::hlc_from_bytes(&hlc)
                .ok_or_else(|| conversion(1, format!("a clock reading of {} bytes", hlc.len())))?,
            device_id: DeviceId::nil(),
            entity: outbox_columns::entity_from_code(entity)
                .ok_or_else(|| conversion(3, format!("unknown entity {entity}")))?,
            entity_id: rows::uuid_blob(row, 4)?,
            op: outbox_columns::op_from_code(op)
                .ok_or_else(|| conversion(5, format!("unknown op {op}")))?,
            payload: Value::Null,
        },
        device: rows::parsed_opt(row, 2)?,
        payload: row.get(6)?,
    })
}

/// The change with its payload: the stored text, or the record it refers to, read back. A reference
/// whose record is gone cannot happen (deleting such a record first copies it into the outbox row,
/// `rows::delete_record`); if a damaged file has one anyway, it is a typed error, not a guess.
fn resolve(conn: &Connection, stored: StoredChange, own_device: DeviceId) -> StoreResult<Change> {
    let StoredChange {
        mut change,
        device,
        payload,
    } = stored;
    change.device_id = device.unwrap_or(own_device);
    change.payload = match payload {
        Some(text) => serde_json::from_str(&text).map_err(|e| StoreError::Decode(e.to_string()))?,
        None => {
            rows::append_only_payload(conn, change.entity, &change.entity_id)?.ok_or_else(|| {
                StoreError::Decode(format!(
                    "outbox change {} refers to {} {}, which is not stored",
                    change.id,
                    change.entity.as_str(),
                    change.entity_id
                ))
            })?
        }
    };
    Ok(change)
}

/// The values and clocks of pending local writes of one record, oldest first: they win over pulled values
/// until the server acknowledges them.
pub(crate) fn pending_field_writes(
    conn: &Connection,
    entity: Entity,
    id: &Uuid,
) -> StoreResult<Vec<Change>> {
    // `seq` order is HLC order: the outbox holds only this device's writes, and its clock never goes back.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE {OF_RECORD} AND state = 0 ORDER BY seq"
    ))?;
    let stored = stmt
        .query_map(
            params![outbox_columns::entity_code(entity), blob(id)],
            change_from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    if stored.is_empty() {
        return Ok(Vec::new());
    }
    let own_device = rows::own_device(conn)?;
    stored
        .into_iter()
        .map(|s| resolve(conn, s, own_device))
        .collect()
}

fn decode<T: serde::de::DeserializeOwned>(payload: &Value) -> StoreResult<T> {
    serde_json::from_value(payload.clone()).map_err(|e| StoreError::InvalidInput {
        what: "payload",
        detail: e.to_string(),
    })
}

/// Writes the record an insert payload describes (replacing a local row of the same id): how an edited
/// insert reaches the record table.
fn rewrite_inserted(
    conn: &Connection,
    entity: Entity,
    id: &Uuid,
    payload: &Value,
    now: Timestamp,
) -> StoreResult<()> {
    fn mutable<R: MutableRecord>(
        conn: &Connection,
        id: &Uuid,
        payload: &Value,
        now: Timestamp,
    ) -> StoreResult<()> {
        let record: R = decode(payload)?;
        if record.record_id() != *id {
            return Err(StoreError::InvalidInput {
                what: "payload",
                detail: "the edited record has a different id".into(),
            });
        }
        record.validate(now)?;
        record.upsert(conn, &FieldClocks::new())
    }
    fn append_only<R: serde::de::DeserializeOwned + Validate>(
        conn: &Connection,
        entity: Entity,
        id: &Uuid,
        payload: &Value,
        now: Timestamp,
        id_of: fn(&R) -> Uuid,
        insert: fn(&Connection, &R) -> StoreResult<usize>,
    ) -> StoreResult<()> {
        let record: R = decode(payload)?;
        if id_of(&record) != *id {
            return Err(StoreError::InvalidInput {
                what: "payload",
                detail: "the edited record has a different id".into(),
            });
        }
        record.validate(now)?;
        rows::delete_record(conn, entity, id)?;
        insert(conn, &record)?;
        Ok(())
    }
    match entity {
        Entity::Storm => mutable::<Storm>(conn, id, payload, now),
        Entity::Property => mutable::<Property>(conn, id, payload, now),
        Entity::Territory => mutable::<Territory>(conn, id, payload, now),
        Entity::User => mutable::<User>(conn, id, payload, now),
        Entity::Crew => mutable::<Crew>(conn, id, payload, now),
        Entity::JourneyTouch => append_only::<JourneyTouch>(
            conn,
            entity,
            id,
            payload,
            now,
            |t| t.id.0,
            rows::insert_touch,
        ),
        Entity::Outcome => append_only::<Outcome>(
            conn,
            entity,
            id,
            payload,
            now,
            |o| o.id.0,
            rows::insert_outcome,
        ),
        Entity::PolicyDecision => append_only::<PolicyDecision>(
            conn,
            entity,
            id,
            payload,
            now,
            |d| d.id.0,
            rows::insert_decision,
        ),
        Entity::Assignment
        | Entity::Experiment
        | Entity::ArmAssignment
        | Entity::UpliftScore
        | Entity::StormPolicy => Err(StoreError::InvalidInput {
            what: "entity",
            detail: format!("{} is written only by the server", entity.as_str()),
        }),
    }
}

impl TenantStore {
    /// The next `limit` pending changes in HLC order, ready to push.
    pub fn pending_changes(&self, limit: usize) -> StoreResult<Vec<Change>> {
        // `seq` order is HLC order (see `pending_field_writes`), so the rowid walk needs no index or sort.
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state = 0 ORDER BY seq LIMIT ?1"
        ))?;
        let stored = stmt
            .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], change_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        stored
            .into_iter()
            .map(|s| resolve(&self.conn, s, self.device_id))
            .collect()
    }

    /// Settles pushed changes in one transaction: accepted and duplicate ones leave the outbox (the record
    /// is synced), refused ones move to the inbox with the server's code and reason. The server's clock
    /// reading, when given, is observed so later local writes order after it.
    pub fn apply_receipts(
        &mut self,
        receipts: &[Receipt],
        server_hlc: Option<Hlc>,
    ) -> StoreResult<ReceiptSummary> {
        let now = self.wall.now();
        let mut clock = self.clock.clone();
        if let Some(remote) = server_hlc {
            // Adopted even when far ahead of our wall clock: the server bounds readings by its own
            // clock, and a laptop running hours behind must still order its next write after it.
            // (Only a counter overflow fails here; the clock then keeps its own reading.)
            let _ = clock.observe_from_server(remote, now.millis().max(0) as u64);
        }
        let tx = self.conn.transaction()?;
        let mut summary = ReceiptSummary::default();
        for receipt in receipts {
            let id = blob(&receipt.change_id.0);
            let changed = match receipt.status {
                ReceiptStatus::Accepted | ReceiptStatus::Duplicate => {
                    let n = tx
                        .prepare_cached("DELETE FROM outbox WHERE change_id = ?1")?
                        .execute([id])?;
                    summary.synced += n;
                    n
                }
                ReceiptStatus::Refused => {
                    let code = receipt
                        .code
                        .map(|c| c.as_str().to_owned())
                        .unwrap_or_else(|| "refused".into());
                    let reason = receipt.reason.clone().unwrap_or_default();
                    let n = tx
                        .prepare_cached(
                            "UPDATE outbox SET state = 1, refused_code = ?2, refused_reason = ?3, refused_at = ?4 WHERE change_id = ?1",
                        )?
                        .execute(params![id, code, reason, now.millis()])?;
                    summary.refused += n;
                    n
                }
            };
            if changed == 0 {
                summary.unknown += 1;
            }
        }
        tx.execute(
            "UPDATE sync_state SET last_push_at = ?1 WHERE singleton = 1",
            [now.millis()],
        )?;
        persist_clock(&tx, clock.last())?;
        tx.commit()?;
        self.clock = clock;
        Ok(summary)
    }

    /// The refused changes, oldest first.
    pub fn inbox(&self) -> StoreResult<Vec<InboxItem>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {OUTBOX_COLUMNS}, refused_code, refused_reason, refused_at FROM outbox WHERE state = 1 ORDER BY refused_at, seq"
        ))?;
        let stored = stmt
            .query_map([], |row| {
                Ok((
                    change_from_row(row)?,
                    row.get::<_, Option<String>>(7)?.unwrap_or_default(),
                    row.get::<_, Option<String>>(8)?.unwrap_or_default(),
                    Timestamp::from_millis(row.get::<_, Option<i64>>(9)?.unwrap_or(0)),
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        stored
            .into_iter()
            .map(|(change, code, reason, refused_at)| {
                Ok(InboxItem {
                    change: resolve(&self.conn, change, self.device_id)?,
                    code,
                    reason,
                    refused_at,
                })
            })
            .collect()
    }

    fn refused_change(
        conn: &Connection,
        id: ChangeId,
        own_device: DeviceId,
    ) -> StoreResult<(Change, Option<Value>)> {
        conn.query_row(
            &format!(
                "SELECT {OUTBOX_COLUMNS}, before FROM outbox WHERE change_id = ?1 AND state = 1"
            ),
            [blob(&id.0)],
            |row| {
                let before: Option<String> = row.get(7)?;
                Ok((change_from_row(row)?, before))
            },
        )
        .optional()?
        .map(|(change, before)| {
            let before = before
                .map(|b| serde_json::from_str(&b))
                .transpose()
                .map_err(|e| StoreError::Decode(e.to_string()))?;
            Ok::<_, StoreError>((resolve(conn, change, own_device)?, before))
        })
        .transpose()?
        .ok_or_else(|| StoreError::NotInInbox {
            change_id: id.to_string(),
        })
    }

    /// Puts a refused change back in the queue unchanged (e.g. after the office fixed what it referred to).
    pub fn retry_refused(&mut self, id: ChangeId) -> StoreResult<()> {
        let n = self.conn.execute(
            "UPDATE outbox SET state = 0, refused_code = NULL, refused_reason = NULL, refused_at = NULL WHERE change_id = ?1 AND state = 1",
            [blob(&id.0)],
        )?;
        if n == 0 {
            return Err(StoreError::NotInInbox {
                change_id: id.to_string(),
            });
        }
        Ok(())
    }

    /// Replaces a refused change's payload: the record is re-validated and rewritten, and a new pending
    /// change (new id, new HLC reading) takes the refused one's place, all in one transaction.
    pub fn edit_refused(&mut self, id: ChangeId, payload: Value) -> StoreResult<ChangeId> {
        let now = self.wall.now();
        let mut clock = self.clock.clone();
        let device_id = self.device_id;
        let tx = self.conn.transaction()?;
        let (old, old_before) = Self::refused_change(&tx, id, device_id)?;
        let hlc = clock.tick(now.millis().max(0) as u64)?;
        let before = match old.op {
            ChangeOp::Insert => {
                rewrite_inserted(&tx, old.entity, &old.entity_id, &payload, now)?;
                None
            }
            ChangeOp::Update => {
                let Value::Object(fields) = &payload else {
                    return Err(StoreError::InvalidInput {
                        what: "payload",
                        detail: "an update payload is an object of fields".into(),
                    });
                };
                let allowed = old.entity.client_writable_fields();
                if let Some(field) = fields.keys().find(|f| !allowed.contains(&f.as_str())) {
                    return Err(StoreError::InvalidInput {
                        what: "payload",
                        detail: format!("field '{field}' cannot be changed from the field"),
                    });
                }
                if old.entity != Entity::Property {
                    return Err(StoreError::InvalidInput {
                        what: "entity",
                        detail: format!("{} cannot be updated here", old.entity.as_str()),
                    });
                }
                let (current, clocks) =
                    Property::load(&tx, &old.entity_id)?.ok_or_else(|| StoreError::NotFound {
                        entity: "property",
                        id: old.entity_id.to_string(),
                    })?;
                let current_map = to_map(&current)?;
                let merged = sync_protocol::merge_fields(&current_map, &clocks, fields, hlc);
                let updated: Property = decode(&Value::Object(merged.record))?;
                updated.validate(now)?;
                updated.upsert(&tx, &merged.clocks)?;
                // Keep what the first, refused write overwrote: that is what a discard must restore.
                old_before.or_else(|| Some(before_values(&current_map, &clocks, fields)))
            }
            ChangeOp::Delete => {
                return Err(StoreError::InvalidInput {
                    what: "change",
                    detail: "a delete has no payload to edit".into(),
                });
            }
        };
        tx.execute("DELETE FROM outbox WHERE change_id = ?1", [blob(&id.0)])?;
        let change = Change {
            id: ChangeId::generate(),
            hlc,
            device_id,
            entity: old.entity,
            entity_id: old.entity_id,
            op: old.op,
            payload,
        };
        append_change(&tx, &change, before.as_ref(), now, device_id)?;
        persist_clock(&tx, clock.last())?;
        tx.commit()?;
        self.clock = clock;
        Ok(change.id)
    }

    /// Drops a refused change and undoes it locally: a refused insert's record is removed, a refused
    /// update's fields get their previous values and clocks back.
    pub fn discard_refused(&mut self, id: ChangeId) -> StoreResult<()> {
        let tx = self.conn.transaction()?;
        let (change, before) = Self::refused_change(&tx, id, self.device_id)?;
        match change.op {
            ChangeOp::Insert => {
                rows::delete_record(&tx, change.entity, &change.entity_id)?;
            }
            ChangeOp::Update if change.entity == Entity::Property => {
                if let (Some(before), Some((current, mut clocks))) =
                    (before, Property::load(&tx, &change.entity_id)?)
                {
                    let mut record = to_map(&current)?;
                    if let Some(Value::Object(values)) = before.get("values") {
                        for (field, value) in values {
                            record.insert(field.clone(), value.clone());
                            clocks.remove(field);
                        }
                    }
                    if let Some(Value::Object(old_clocks)) = before.get("clocks") {
                        for (field, hlc) in old_clocks {
                            if let Some(hlc) = hlc.as_str().and_then(|h| Hlc::parse(h).ok()) {
                                clocks.insert(field.clone(), hlc);
                            }
                        }
                    }
                    let restored: Property = decode(&Value::Object(record))?;
                    restored.upsert(&tx, &clocks)?;
                }
            }
            ChangeOp::Update | ChangeOp::Delete => {}
        }
        tx.execute("DELETE FROM outbox WHERE change_id = ?1", [blob(&id.0)])?;
        tx.commit()?;
        Ok(())
    }

    /// Where one record stands with the server.
    pub fn record_sync_state(&self, entity: Entity, id: Uuid) -> StoreResult<RecordSyncState> {
        let refused: Option<(Option<String>, Option<String>)> = self
            .conn
            .prepare_cached(&format!(
                "SELECT refused_code, refused_reason FROM outbox WHERE {OF_RECORD} AND state = 1 ORDER BY seq LIMIT 1",
            ))?
            .query_row(params![outbox_columns::entity_code(entity), blob(&id)], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((code, reason)) = refused {
            return Ok(RecordSyncState::Refused {
                code: code.unwrap_or_default(),
                reason: reason.unwrap_or_default(),
            });
        }
        let pending: u32 = self
            .conn
            .prepare_cached(&format!(
                "SELECT count(*) FROM outbox WHERE {OF_RECORD} AND state = 0"
            ))?
            .query_row(
                params![outbox_columns::entity_code(entity), blob(&id)],
                |r| r.get(0),
            )?;
        Ok(if pending > 0 {
            RecordSyncState::Pending { changes: pending }
        } else {
            RecordSyncState::Synced
        })
    }

    /// Outbox and inbox counts, and how long the oldest pending change has waited.
    pub fn pending_counts(&self) -> StoreResult<PendingCounts> {
        let now = self.wall.now();
        let (pending, refused, oldest): (i64, i64, Option<i64>) = self.conn.query_row(
            "SELECT coalesce(sum(state = 0), 0), coalesce(sum(state = 1), 0),
                    min(CASE WHEN state = 0 THEN created_at END) FROM outbox",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(PendingCounts {
            pending,
            refused,
            oldest_pending_at: oldest.map(Timestamp::from_millis),
            oldest_pending_age_ms: oldest.map(|at| (now.millis() - at).max(0)),
        })
    }
}

/// Overlays a record's pending local writes on a merged record: values of pending inserts (creation
/// fields, no clock) and values and clocks of pending updates.
pub(crate) fn overlay_pending(
    record: &mut Map<String, Value>,
    clocks: &mut FieldClocks,
    pending: &[Change],
) {
    for change in pending {
        let Value::Object(fields) = &change.payload else {
            continue;
        };
        for (field, value) in fields {
            record.insert(field.clone(), value.clone());
            if change.op == ChangeOp::Update {
                clocks.insert(field.clone(), change.hlc);
            }
        }
    }
}
