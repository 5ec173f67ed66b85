//! Local writes of syncable records. Each write validates the record, writes it, and appends its change
//! to the outbox in the SAME transaction, with a fresh HLC reading persisted in meta: either all of it
//! is stored or none of it.

use domain::*;
use ring::rand::{SecureRandom, SystemRandom};
use rusqlite::{Connection, params};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sync_protocol::{Change, ChangeOp, Entity, EntityKind, merge_fields};
use uuid::Uuid;

use crate::error::{StoreError, StoreResult};
use crate::multi_row;
use crate::outbox_columns;
use crate::rows::{self, MutableRecord};
use crate::store::TenantStore;

/// The fields a field laptop may change on a property (see `Entity::client_writable_fields`).
/// `Some(None)` clears an optional field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PropertyUpdate {
    pub status: Option<PropertyStatus>,
    pub owner_name: Option<Option<String>>,
    pub owner_phone: Option<Option<String>>,
    pub owner_email: Option<Option<String>>,
}

impl PropertyUpdate {
    fn fields(&self) -> Map<String, Value> {
        let mut fields = Map::new();
        if let Some(status) = self.status {
            fields.insert("status".into(), json!(status.as_str()));
        }
        for (name, value) in [
            ("owner_name", &self.owner_name),
            ("owner_phone", &self.owner_phone),
            ("owner_email", &self.owner_email),
        ] {
            if let Some(value) = value {
                fields.insert(name.into(), json!(value));
            }
        }
        fields
    }
}

pub(crate) fn to_json<T: Serialize>(record: &T) -> StoreResult<Value> {
    serde_json::to_value(record).map_err(|e| StoreError::Decode(e.to_string()))
}

pub(crate) fn to_map<T: Serialize>(record: &T) -> StoreResult<Map<String, Value>> {
    match to_json(record)? {
        Value::Object(map) => Ok(map),
        _ => Err(StoreError::Decode(
            "a record did not serialise to an object".into(),
        )),
    }
}

const INSERT_OUTBOX: &str = "INSERT INTO outbox (change_id, hlc, device_id, entity, entity_id, op, payload, before, state, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9)";

/// The outbox's `device_id` column: NULL for this file's own device, whose changes are all of them
/// (migration 0006), so the row does not repeat its 36 characters.
pub(crate) fn stored_device(device: DeviceId, own: DeviceId) -> Option<String> {
    (device != own).then(|| device.to_string())
}

/// Appends one change to the outbox (ids as their 16 bytes, migration 0006).
pub(crate) fn append_change(
    conn: &Connection,
    change: &Change,
    before: Option<&Value>,
    now: Timestamp,
    own_device: DeviceId,
) -> StoreResult<()> {
    let payload =
        serde_json::to_string(&change.payload).map_err(|e| StoreError::Decode(e.to_string()))?;
    let before = before
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Decode(e.to_string()))?;
    conn.prepare_cached(INSERT_OUTBOX)?.execute(params![
        &change.id.0.as_bytes()[..],
        &outbox_columns::hlc_bytes(change.hlc)[..],
        stored_device(change.device_id, own_device),
        outbox_columns::entity_code(change.entity),
        &change.entity_id.as_bytes()[..],
        outbox_columns::op_code(change.op),
        payload,
        before,
        now.millis()
    ])?;
    Ok(())
}

/// Persists the clock's last reading so a restart never issues an older one.
pub(crate) fn persist_clock(conn: &Connection, last: Hlc) -> StoreResult<()> {
    conn.prepare_cached("UPDATE meta SET last_hlc = ?1 WHERE singleton = 1")?
        .execute([last.to_string()])?;
    Ok(())
}

/// Fresh change ids for one batch of writes, all from ONE read of the system's random source: each is a
/// UUIDv7 of the batch's millisecond with its own 74 random bits, as `ChangeId::generate` makes them, but
/// without a `getrandom` call (and a lock) per id — a few per cent of a 100,000-touch insert. Uniqueness is
/// the random bits' (and the outbox's UNIQUE `change_id` refuses the write should two ever meet).
fn change_ids(rng: &SystemRandom, now: Timestamp, count: usize) -> StoreResult<Vec<ChangeId>> {
    const RANDOM_BYTES: usize = 10;
    let mut random = vec![0u8; count * RANDOM_BYTES];
    rng.fill(&mut random)
        .map_err(|_| StoreError::Crypto("the system random source failed"))?;
    let millis = u64::try_from(now.millis()).unwrap_or(0);
    let mut ids: Vec<ChangeId> = random
        .chunks_exact(RANDOM_BYTES)
        .map(|chunk| {
            let mut bytes = [0u8; RANDOM_BYTES];
            bytes.copy_from_slice(chunk);
            ChangeId(uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid())
        })
        .collect();
    // In ascending order, as UUIDv7's monotonic form allows within one millisecond: the outbox rows are
    // appended in this order, so each id lands at the end of the `change_id` index instead of at a random
    // place among the batch's others (a third of a 100,000-touch batch's outbox insert was that index).
    ids.sort_unstable();
    Ok(ids)
}

/// Turns a uniqueness violation into a typed "already exists".
fn already_exists(err: StoreError, entity: Entity, id: &Uuid) -> StoreError {
    match err {
        StoreError::Database(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::AlreadyExists {
                entity: entity.as_str(),
                id: id.to_string(),
            }
        }
        other => other,
    }
}

/// Writes a whole batch of records with multi-row statements, ignoring records already stored; returns
/// the rows written.
type WriteBatch<R> = fn(&Connection, &[R]) -> StoreResult<usize>;

/// How a kind of record is written by [`TenantStore::insert_records`].
struct RecordWriter<R> {
    /// Writes one record; returns the rows written (0: a record with its id is already stored).
    one: fn(&Connection, &R) -> StoreResult<usize>,
    /// `None`: the kind is written one record at a time.
    batch: Option<WriteBatch<R>>,
}

/// The outbox columns of an insert change, and one row of them: the device is this file's own (stored
/// as NULL, migration 0006), nothing to restore on discard, an insert (0), pending (0). The entity's code
/// is spelled into the statement (`{entity}`, migration 0012).
const OUTBOX_INSERT_HEAD: &str = "INSERT INTO outbox (change_id, hlc, device_id, entity, entity_id, op, payload, before, state, created_at) VALUES";
const OUTBOX_INSERT_ROW: &str = "(?, ?, NULL, {entity}, ?, 0, ?, NULL, 0, ?)";

/// One insert change's outbox row, before it is written.
struct InsertChange<'a, R> {
    change_id: &'a ChangeId,
    hlc: [u8; outbox_columns::HLC_LEN],
    entity_id: Uuid,
    /// The record, for a payload (`None`: an append-only record, whose row is referred to instead).
    record: Option<&'a R>,
}

impl TenantStore {
    /// Writes `records` and their insert changes in one transaction. Every record is validated first,
    /// so a bad one stores nothing.
    fn insert_records<R: Serialize + Validate>(
        &mut self,
        entity: Entity,
        records: &[R],
        id_of: impl Fn(&R) -> Uuid,
        writer: RecordWriter<R>,
    ) -> StoreResult<Vec<ChangeId>> {
        let now = self.wall.now();
        for record in records {
            record.validate(now)?;
        }
        let mut clock = self.clock.clone();
        // An append-only record never changes after its insert, so its outbox row refers to the stored
        // record instead of copying it (migration 0005): about half the bytes a touch writes. A mutable
        // record's insert payload is the record itself, serialised once, straight to its text.
        let by_reference = entity.kind() == EntityKind::AppendOnly;
        // That insert is the record's only change (an edit of it, if refused, is a new change with a
        // fresh id), so it takes the record's own id — a UUIDv7 like every change id — and is found by
        // it through the `change_id` index, which saves each such row an entry in `outbox_by_record`
        // (migration 0011; `outbox::OF_RECORD`).
        let ids = if by_reference {
            records.iter().map(|r| ChangeId(id_of(r))).collect()
        } else {
            change_ids(&self.rng, now, records.len())?
        };
        let mut changes = Vec::with_capacity(records.len());
        for (record, change_id) in records.iter().zip(&ids) {
            changes.push(InsertChange {
                change_id,
                hlc: outbox_columns::hlc_bytes(clock.tick(now.millis().max(0) as u64)?),
                entity_id: id_of(record),
                record: (!by_reference).then_some(record),
            });
        }
        let write_each = |tx: &Connection| -> StoreResult<()> {
            for (record, change) in records.iter().zip(&changes) {
                let written = (writer.one)(tx, record)
                    .map_err(|e| already_exists(e, entity, &change.entity_id))?;
                if written == 0 {
                    return Err(StoreError::AlreadyExists {
                        entity: entity.as_str(),
                        id: change.entity_id.to_string(),
                    });
                }
            }
            Ok(())
        };
        let mut tx = self.conn.transaction()?;
        match writer.batch {
            Some(batch) if records.len() > 1 => {
                if batch(&tx, records)? != records.len() {
                    // A record was already stored (or came twice): start over one record at a time, which
                    // names the first such record in its error. Only this refusal pays for the second pass.
                    drop(tx);
                    tx = self.conn.transaction()?;
                    write_each(&tx)?;
                }
            }
            _ => write_each(&tx)?,
        }
        let row =
            OUTBOX_INSERT_ROW.replace("{entity}", &outbox_columns::entity_code(entity).to_string());
        let shape = multi_row::MultiRow {
            head: OUTBOX_INSERT_HEAD,
            row: &row,
            tail: "",
        };
        multi_row::execute_rows(&tx, shape, &changes, |stmt, i, change| {
            stmt.raw_bind_parameter(i, &change.change_id.0.as_bytes()[..])?;
            stmt.raw_bind_parameter(i + 1, &change.hlc[..])?;
            stmt.raw_bind_parameter(i + 2, &change.entity_id.as_bytes()[..])?;
            // Serialised as its row is bound, so a 200,000-property import never holds every payload.
            let payload = change
                .record
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            stmt.raw_bind_parameter(i + 3, payload)?;
            stmt.raw_bind_parameter(i + 4, now.millis())?;
            Ok(i + 5)
        })?;
        persist_clock(&tx, clock.last())?;
        tx.commit()?;
        self.clock = clock;
        Ok(ids)
    }

    fn insert_mutable<R: MutableRecord>(&mut self, records: &[R]) -> StoreResult<Vec<ChangeId>> {
        self.insert_records(
            R::ENTITY,
            records,
            R::record_id,
            RecordWriter {
                one: |conn, record| {
                    if R::load(conn, &record.record_id())?.is_some() {
                        return Ok(0);
                    }
                    record.upsert(conn, &Default::default())?;
                    Ok(1)
                },
                batch: None,
            },
        )
    }

    /// Adds a storm.
    pub fn add_storm(&mut self, storm: &Storm) -> StoreResult<ChangeId> {
        first(self.insert_mutable(std::slice::from_ref(storm))?)
    }

    /// Adds a property.
    pub fn add_property(&mut self, property: &Property) -> StoreResult<ChangeId> {
        first(self.insert_mutable(std::slice::from_ref(property))?)
    }

    /// Adds many properties in one transaction: all or none.
    pub fn import_properties(&mut self, properties: &[Property]) -> StoreResult<Vec<ChangeId>> {
        self.insert_mutable(properties)
    }

    /// Adds a territory.
    pub fn add_territory(&mut self, territory: &Territory) -> StoreResult<ChangeId> {
        first(self.insert_mutable(std::slice::from_ref(territory))?)
    }

    /// Logs a journey touch.
    pub fn add_touch(&mut self, touch: &JourneyTouch) -> StoreResult<ChangeId> {
        first(self.add_touches(std::slice::from_ref(touch))?)
    }

    /// Logs many journey touches in one transaction: all or none.
    pub fn add_touches(&mut self, touches: &[JourneyTouch]) -> StoreResult<Vec<ChangeId>> {
        self.insert_records(
            Entity::JourneyTouch,
            touches,
            |t| t.id.0,
            RecordWriter {
                one: rows::insert_touch,
                batch: Some(rows::insert_touches),
            },
        )
    }

    /// Records an outcome.
    pub fn add_outcome(&mut self, outcome: &Outcome) -> StoreResult<ChangeId> {
        first(self.insert_records(
            Entity::Outcome,
            std::slice::from_ref(outcome),
            |o| o.id.0,
            RecordWriter {
                one: rows::insert_outcome,
                batch: None,
            },
        )?)
    }

    /// Records a treat/hold decision (an override must carry a reason: validation refuses it otherwise).
    pub fn add_decision(&mut self, decision: &PolicyDecision) -> StoreResult<ChangeId> {
        first(self.insert_records(
            Entity::PolicyDecision,
            std::slice::from_ref(decision),
            |d| d.id.0,
            RecordWriter {
                one: rows::insert_decision,
                batch: None,
            },
        )?)
    }

    /// Changes a property's field-writable fields; the change carries only those fields, and each
    /// field's clock becomes this write's HLC reading.
    pub fn update_property(
        &mut self,
        id: PropertyId,
        update: &PropertyUpdate,
    ) -> StoreResult<ChangeId> {
        let fields = update.fields();
        if fields.is_empty() {
            return Err(StoreError::InvalidInput {
                what: "property update",
                detail: "no field to change".into(),
            });
        }
        let now = self.wall.now();
        let mut clock = self.clock.clone();
        let device_id = self.device_id;
        let tx = self.conn.transaction()?;
        let (current, clocks) =
            Property::load(&tx, &id.0)?.ok_or_else(|| StoreError::NotFound {
                entity: "property",
                id: id.to_string(),
            })?;
        let current_map = to_map(&current)?;
        let hlc = clock.tick(now.millis().max(0) as u64)?;
        let merged = merge_fields(&current_map, &clocks, &fields, hlc);
        let updated: Property =
            serde_json::from_value(Value::Object(merged.record)).map_err(|e| {
                StoreError::InvalidInput {
                    what: "property update",
                    detail: e.to_string(),
                }
            })?;
        updated.validate(now)?;
        updated.upsert(&tx, &merged.clocks)?;
        let before = before_values(&current_map, &clocks, &fields);
        let change = Change {
            id: ChangeId::generate(),
            hlc,
            device_id,
            entity: Entity::Property,
            entity_id: id.0,
            op: ChangeOp::Update,
            payload: Value::Object(fields),
        };
        append_change(&tx, &change, Some(&before), now, device_id)?;
        persist_clock(&tx, clock.last())?;
        tx.commit()?;
        self.clock = clock;
        Ok(change.id)
    }
}

/// The values and clocks an update overwrites, kept so discarding the update can restore them.
pub(crate) fn before_values(
    current: &Map<String, Value>,
    clocks: &sync_protocol::FieldClocks,
    fields: &Map<String, Value>,
) -> Value {
    let values: Map<String, Value> = fields
        .keys()
        .map(|k| (k.clone(), current.get(k).cloned().unwrap_or(Value::Null)))
        .collect();
    let old_clocks: Map<String, Value> = fields
        .keys()
        .filter_map(|k| clocks.get(k).map(|c| (k.clone(), json!(c.to_string()))))
        .collect();
    json!({ "values": values, "clocks": old_clocks })
}

fn first(ids: Vec<ChangeId>) -> StoreResult<ChangeId> {
    ids.into_iter()
        .next()
        .ok_or_else(|| StoreError::Decode("no change was written".into()))
}
