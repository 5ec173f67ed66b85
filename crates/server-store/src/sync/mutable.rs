//! The one write path of mutable records (storms, properties, territories), shared by pushes and the
//! server's own writers: load the stored rows of a batch in one query, merge every write per field with
//! `sync_protocol::merge_fields` and the stored field clocks (deterministic whatever the arrival order),
//! re-validate the merged record as its domain type, then write new and changed rows with one statement
//! each, appending to the pull feed in the same statement.

use std::collections::BTreeMap;

use domain::{Hlc, Property, Storm, TenantId, Territory, Timestamp, Validate, ValidationError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sqlx::PgConnection;
use sync_protocol::{Entity, FieldClocks, merge_fields};
use uuid::Uuid;

use super::changelog::change_log_tail;
use crate::error::StoreError;

type Canonicalize =
    fn(&Map<String, Value>, Timestamp) -> Result<Map<String, Value>, MutableWriteError>;

/// A mutable table: its entity, its record columns (without tenant_id and field_clocks), who pulls it.
#[derive(Debug)]
pub(crate) struct MutableTable {
    pub entity: Entity,
    pub table: &'static str,
    pub columns: &'static [&'static str],
    /// SQL over the written row `w`: the crew a row is scoped to (NULL: the whole tenant).
    scope_crew: &'static str,
    canonicalize: Canonicalize,
}

pub(crate) const STORMS: MutableTable = MutableTable {
    entity: Entity::Storm,
    table: "storms",
    columns: &[
        "id",
        "event_id",
        "name",
        "started_at",
        "ended_at",
        "hail_size_in",
        "wind_mph",
        "affected_area",
        "status",
    ],
    scope_crew: "NULL::uuid",
    canonicalize: canonical::<Storm>,
};

pub(crate) const PROPERTIES: MutableTable = MutableTable {
    entity: Entity::Property,
    table: "properties",
    columns: &[
        "id",
        "storm_id",
        "external_id",
        "address",
        "latitude",
        "longitude",
        "roof_age_years",
        "roof_material",
        "square_feet",
        "home_value",
        "hail_size_in",
        "distance_to_core_km",
        "prior_claims",
        "owner_name",
        "owner_phone",
        "owner_email",
        "status",
    ],
    scope_crew: "NULL::uuid",
    canonicalize: canonical::<Property>,
};

pub(crate) const TERRITORIES: MutableTable = MutableTable {
    entity: Entity::Territory,
    table: "territories",
    columns: &["id", "storm_id", "name", "crew_id"],
    scope_crew: "w.crew_id",
    canonicalize: canonical::<Territory>,
};

/// The table of a mutable entity this store writes through the merge path.
pub(crate) fn mutable_table(entity: Entity) -> Option<&'static MutableTable> {
    match entity {
        Entity::Storm => Some(&STORMS),
        Entity::Property => Some(&PROPERTIES),
        Entity::Territory => Some(&TERRITORIES),
        _ => None,
    }
}

/// One write to a mutable record: some or all of its fields, stamped with a clock.
#[derive(Debug, Clone)]
pub(crate) struct MutableWrite {
    /// The caller's index of this write (a change's position in its batch).
    pub index: usize,
    pub id: Uuid,
    pub fields: Map<String, Value>,
    pub hlc: Hlc,
    /// Whether the write may create the record (an insert) or needs it to exist (an update).
    pub may_create: bool,
}

/// Why one write could not be applied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MutableWriteError {
    UnknownRecord,
    Invalid(ValidationError),
    Malformed(String),
}

impl MutableWriteError {
    pub(crate) fn into_store_error(self, id: Uuid) -> StoreError {
        match self {
            MutableWriteError::UnknownRecord => StoreError::NotFound(format!("record {id}")),
            MutableWriteError::Invalid(e) => StoreError::Validation(e),
            MutableWriteError::Malformed(m) => StoreError::InvalidInput(m),
        }
    }
}

/// Deserialises a merged record as its domain type (unknown fields refused), validates it, and returns
/// its canonical JSON, which is what is stored and pulled.
fn canonical<T: DeserializeOwned + Serialize + Validate>(
    record: &Map<String, Value>,
    now: Timestamp,
) -> Result<Map<String, Value>, MutableWriteError> {
    let typed: T = serde_json::from_value(Value::Object(record.clone()))
        .map_err(|e| MutableWriteError::Malformed(e.to_string()))?;
    typed.validate(now).map_err(MutableWriteError::Invalid)?;
    match serde_json::to_value(&typed) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) | Err(_) => Err(MutableWriteError::Malformed(
            "record does not serialise to an object".into(),
        )),
    }
}

#[derive(Debug)]
struct Slot {
    record: Map<String, Value>,
    clocks: FieldClocks,
    existed: bool,
    dirty: bool,
}

/// The rows a batch of writes will insert and update, computed before anything is written.
#[derive(Debug)]
pub(crate) struct MutablePlan {
    table: &'static MutableTable,
    inserts: Vec<Value>,
    updates: Vec<Value>,
}

impl MutablePlan {
    pub(crate) fn is_empty(&self) -> bool {
        self.inserts.is_empty() && self.updates.is_empty()
    }
}

/// Loads the stored rows the writes touch (one query), merges the writes in order and validates each
/// step. A refused write leaves the record as it was and is reported with its index.
pub(crate) async fn plan_writes(
    conn: &mut PgConnection,
    tenant: TenantId,
    table: &'static MutableTable,
    writes: &[MutableWrite],
    now: Timestamp,
) -> Result<(MutablePlan, Vec<(usize, MutableWriteError)>), StoreError> {
    let ids: Vec<Uuid> = writes.iter().map(|w| w.id).collect();
    let rows: Vec<(Uuid, Value, Value)> = sqlx::query_as(&format!(
        "SELECT id, to_jsonb(t) - 'tenant_id' - 'field_clocks', field_clocks FROM {} t WHERE tenant_id = $1 AND id = ANY($2)",
        table.table
    ))
    .bind(tenant.0)
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut slots: BTreeMap<Uuid, Slot> = BTreeMap::new();
    for (id, record, clocks) in rows {
        let Value::Object(record) = record else {
            return Err(StoreError::Corrupt(format!(
                "{} {id} is not an object",
                table.table
            )));
        };
        let clocks: FieldClocks = serde_json::from_value(clocks).map_err(|e| {
            StoreError::Corrupt(format!("{}.field_clocks of {id}: {e}", table.table))
        })?;
        slots.insert(
            id,
            Slot {
                record,
                clocks,
                existed: true,
                dirty: false,
            },
        );
    }
    let mut refused = Vec::new();
    for write in writes {
        let slot = match slots.get_mut(&write.id) {
            Some(slot) => slot,
            None if write.may_create => {
                // A new record starts with its id only: the id is the key, never a merged field.
                let mut record = Map::new();
                record.insert("id".into(), Value::String(write.id.to_string()));
                slots.entry(write.id).or_insert(Slot {
                    record,
                    clocks: FieldClocks::new(),
                    existed: false,
                    dirty: false,
                })
            }
            None => {
                refused.push((write.index, MutableWriteError::UnknownRecord));
                continue;
            }
        };
        let merged = merge_fields(&slot.record, &slot.clocks, &write.fields, write.hlc);
        if merged.record == slot.record && merged.clocks == slot.clocks {
            continue;
        }
        match (table.canonicalize)(&merged.record, now) {
            Ok(record) => {
                slot.record = record;
                slot.clocks = merged.clocks;
                slot.dirty = true;
            }
            Err(e) => refused.push((write.index, e)),
        }
    }
    let mut inserts = Vec::new();
    let mut updates = Vec::new();
    for (id, slot) in slots {
        if !slot.dirty {
            continue;
        }
        let mut row = slot.record;
        row.insert("id".into(), Value::String(id.to_string()));
        row.insert("tenant_id".into(), Value::String(tenant.0.to_string()));
        let clocks =
            serde_json::to_value(&slot.clocks).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        row.insert("field_clocks".into(), clocks);
        if slot.existed {
            updates.push(Value::Object(row))
        } else {
            inserts.push(Value::Object(row))
        }
    }
    Ok((
        MutablePlan {
            table,
            inserts,
            updates,
        },
        refused,
    ))
}

/// Writes a plan: one INSERT and one UPDATE statement at most, each appending its rows to the feed.
pub(crate) async fn execute_plan(
    conn: &mut PgConnection,
    plan: MutablePlan,
) -> Result<u64, StoreError> {
    let table = plan.table;
    let tail = change_log_tail(
        table.entity.as_str(),
        "w.id",
        "to_jsonb(w) - 'tenant_id' - 'field_clocks'",
        "w.field_clocks",
        table.scope_crew,
        "NULL::uuid",
    );
    let mut written = 0;
    if !plan.inserts.is_empty() {
        let sql = format!(
            "WITH w AS (INSERT INTO {t} SELECT * FROM jsonb_populate_recordset(NULL::{t}, $1) RETURNING *) {tail}",
            t = table.table
        );
        written += sqlx::query(&sql)
            .bind(Value::Array(plan.inserts))
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    if !plan.updates.is_empty() {
        let columns: Vec<&str> = table
            .columns
            .iter()
            .copied()
            .filter(|c| *c != "id")
            .chain(["field_clocks"])
            .collect();
        let targets = columns.join(", ");
        let sources = columns
            .iter()
            .map(|c| format!("r.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "WITH r AS (SELECT * FROM jsonb_populate_recordset(NULL::{t}, $1)),
                  w AS (UPDATE {t} AS u SET ({targets}) = ({sources}) FROM r
                         WHERE u.tenant_id = r.tenant_id AND u.id = r.id RETURNING u.*)
             {tail}",
            t = table.table
        );
        written += sqlx::query(&sql)
            .bind(Value::Array(plan.updates))
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    Ok(written)
}
