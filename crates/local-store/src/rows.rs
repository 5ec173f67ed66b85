//! Mapping between domain records and table rows. Each syncable table has one writer and one reader
//! here, so the record's columns are named in one place.

use std::collections::BTreeMap;
use std::str::FromStr;

use domain::*;
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sync_protocol::{Entity, EntityKind, FieldClocks};
use uuid::Uuid;

use crate::error::{StoreError, StoreResult};
use crate::multi_row::{MultiRow, ROWS_PER_STATEMENT, execute_rows};
use crate::outbox::OF_RECORD;
use crate::outbox_columns;
use crate::touch_columns;

/// Reads a text column into any type with `FromStr` (ids, vocabularies).
pub(crate) fn parsed<T: FromStr>(row: &Row<'_>, index: usize) -> rusqlite::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = row.get(index)?;
    text.parse()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(e)))
}

/// Reads a UUID stored as its 16 bytes (the outbox's ids since migration 0006).
pub(crate) fn uuid_blob(row: &Row<'_>, index: usize) -> rusqlite::Result<Uuid> {
    let bytes = row.get_ref(index)?.as_blob()?;
    Uuid::from_slice(bytes)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, Type::Blob, Box::new(e)))
}

pub(crate) fn parsed_opt<T: FromStr>(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: Option<String> = row.get(index)?;
    text.map(|t| {
        t.parse()
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(e)))
    })
    .transpose()
}

fn ts(row: &Row<'_>, index: usize) -> rusqlite::Result<Timestamp> {
    Ok(Timestamp::from_millis(row.get(index)?))
}

fn ts_opt(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Timestamp>> {
    Ok(row
        .get::<_, Option<i64>>(index)?
        .map(Timestamp::from_millis))
}

/// Field clocks as a file stores them. Since migration 0004 they are grouped by clock,
/// `{"<hlc>":["field",…],…}`: a record written in one go (every pulled record, every import) has one
/// clock for all its fields, so its clock text is stored once instead of once per field (a property's
/// clocks shrink from about 900 to about 250 bytes, which is most of the row). Rows written before
/// hold `{"field":"<hlc>",…}`; both read back to the same clocks.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum StoredClocks {
    PerField(FieldClocks),
    Grouped(BTreeMap<String, Vec<String>>),
}

pub(crate) fn clocks_from_text(text: &str) -> StoreResult<FieldClocks> {
    let bad = |detail: String| StoreError::Decode(format!("field clocks: {detail}"));
    match serde_json::from_str(text).map_err(|e| bad(e.to_string()))? {
        StoredClocks::PerField(clocks) => Ok(clocks),
        StoredClocks::Grouped(groups) => {
            let mut clocks = FieldClocks::new();
            for (hlc, fields) in groups {
                let hlc = Hlc::parse(&hlc).map_err(|e| bad(e.to_string()))?;
                for field in fields {
                    clocks.insert(field, hlc);
                }
            }
            Ok(clocks)
        }
    }
}

pub(crate) fn clocks_to_text(clocks: &FieldClocks) -> StoreResult<String> {
    let mut groups: BTreeMap<Hlc, Vec<&str>> = BTreeMap::new();
    for (field, hlc) in clocks {
        groups.entry(*hlc).or_default().push(field);
    }
    // HLC text sorts like the clocks, so the text is canonical: equal clocks, equal text.
    let groups: BTreeMap<String, Vec<&str>> = groups
        .into_iter()
        .map(|(hlc, fields)| (hlc.to_string(), fields))
        .collect();
    serde_json::to_string(&groups).map_err(|e| StoreError::Decode(e.to_string()))
}

/// Lowercased, whitespace-collapsed text for substring search.
pub fn search_text(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A record merged per field: it knows its table.
pub(crate) trait MutableRecord: Serialize + DeserializeOwned + Validate + Sized {
    const ENTITY: Entity;
    fn record_id(&self) -> Uuid;
    fn load(conn: &Connection, id: &Uuid) -> StoreResult<Option<(Self, FieldClocks)>>;
    /// Inserts or replaces the row with `clocks` already in their stored text form.
    fn upsert_clock_text(&self, conn: &Connection, clocks: &str) -> StoreResult<()>;
    fn upsert(&self, conn: &Connection, clocks: &FieldClocks) -> StoreResult<()> {
        self.upsert_clock_text(conn, &clocks_to_text(clocks)?)
    }
}

fn load_with<T>(
    conn: &Connection,
    sql: &str,
    id: &Uuid,
    read: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    clocks_at: usize,
) -> StoreResult<Option<(T, FieldClocks)>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let found = stmt
        .query_row([id.to_string()], |row| {
            let record = read(row)?;
            let clocks: String = row.get(clocks_at)?;
            Ok((record, clocks))
        })
        .optional()?;
    found
        .map(|(record, clocks)| Ok((record, clocks_from_text(&clocks)?)))
        .transpose()
}

impl MutableRecord for Storm {
    const ENTITY: Entity = Entity::Storm;
    fn record_id(&self) -> Uuid {
        self.id.0
    }
    fn load(conn: &Connection, id: &Uuid) -> StoreResult<Option<(Self, FieldClocks)>> {
        load_with(
            conn,
            "SELECT id, event_id, name, started_at, ended_at, hail_size_in, wind_mph, affected_area, status, field_clocks FROM storms WHERE id = ?1",
            id,
            |r| {
                Ok(Storm {
                    id: parsed(r, 0)?,
                    event_id: r.get(1)?,
                    name: r.get(2)?,
                    started_at: ts(r, 3)?,
                    ended_at: ts_opt(r, 4)?,
                    hail_size_in: r.get(5)?,
                    wind_mph: r.get(6)?,
                    affected_area: r.get(7)?,
                    status: parsed(r, 8)?,
                })
            },
            9,
        )
    }
    fn upsert_clock_text(&self, conn: &Connection, clocks: &str) -> StoreResult<()> {
        conn.prepare_cached(
            "INSERT INTO storms (id, event_id, name, started_at, ended_at, hail_size_in, wind_mph, affected_area, status, field_clocks)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id, name = excluded.name, started_at = excluded.started_at,
               ended_at = excluded.ended_at, hail_size_in = excluded.hail_size_in, wind_mph = excluded.wind_mph,
               affected_area = excluded.affected_area, status = excluded.status, field_clocks = excluded.field_clocks",
        )?
        .execute(params![
            self.id.to_string(),
            self.event_id,
            self.name,
            self.started_at.millis(),
            self.ended_at.map(Timestamp::millis),
            self.hail_size_in,
            self.wind_mph,
            self.affected_area,
            self.status.as_str(),
            clocks
        ])?;
        Ok(())
    }
}

pub(crate) const PROPERTY_COLUMNS: &str = "id, storm_id, external_id, address, latitude, longitude, roof_age_years, roof_material, square_feet, home_value_cents, hail_size_in, distance_to_core_km, prior_claims, owner_name, owner_phone, owner_email, status";

/// Reads a property from a row whose first 17 columns are `PROPERTY_COLUMNS`.
pub(crate) fn property_from_row(r: &Row<'_>) -> rusqlite::Result<Property> {
    Ok(Property {
        id: parsed(r, 0)?,
        storm_id: parsed(r, 1)?,
        external_id: r.get(2)?,
        address: r.get(3)?,
        latitude: r.get(4)?,
        longitude: r.get(5)?,
        roof_age_years: r.get(6)?,
        roof_material: parsed_opt(r, 7)?,
        square_feet: r.get(8)?,
        home_value: r.get::<_, Option<i64>>(9)?.map(Cents),
        hail_size_in: r.get(10)?,
        distance_to_core_km: r.get(11)?,
        prior_claims: r.get(12)?,
        owner_name: r.get(13)?,
        owner_phone: r.get(14)?,
        owner_email: r.get(15)?,
        status: parsed(r, 16)?,
    })
}

impl MutableRecord for Property {
    const ENTITY: Entity = Entity::Property;
    fn record_id(&self) -> Uuid {
        self.id.0
    }
    fn load(conn: &Connection, id: &Uuid) -> StoreResult<Option<(Self, FieldClocks)>> {
        load_with(
            conn,
            &format!("SELECT {PROPERTY_COLUMNS}, field_clocks FROM properties WHERE id = ?1"),
            id,
            property_from_row,
            17,
        )
    }
    fn upsert_clock_text(&self, conn: &Connection, clocks: &str) -> StoreResult<()> {
        conn.prepare_cached(
            // A property that arrives after its score or decisions (pull pages are not ordered by entity)
            // picks them up as it is inserted; an update keeps the row's own (see migration 0004).
            "INSERT INTO properties (id, storm_id, external_id, address, address_search, latitude, longitude, roof_age_years, roof_material,
               square_feet, home_value_cents, hail_size_in, distance_to_core_km, prior_claims, owner_name, owner_phone, owner_email, status, field_clocks,
               score_uplift, latest_decision, latest_decision_at, latest_decision_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
               (SELECT s.uplift FROM uplift_scores s WHERE s.property_id = ?1 AND s.storm_id = ?2),
               (SELECT d.decision FROM policy_decisions d WHERE d.property_id = ?1 AND d.storm_id = ?2 ORDER BY d.decided_at DESC, d.id DESC LIMIT 1),
               (SELECT d.decided_at FROM policy_decisions d WHERE d.property_id = ?1 AND d.storm_id = ?2 ORDER BY d.decided_at DESC, d.id DESC LIMIT 1),
               (SELECT d.id FROM policy_decisions d WHERE d.property_id = ?1 AND d.storm_id = ?2 ORDER BY d.decided_at DESC, d.id DESC LIMIT 1))
             ON CONFLICT (id) DO UPDATE SET storm_id = excluded.storm_id, external_id = excluded.external_id, address = excluded.address,
               address_search = excluded.address_search, latitude = excluded.latitude, longitude = excluded.longitude,
               roof_age_years = excluded.roof_age_years, roof_material = excluded.roof_material, square_feet = excluded.square_feet,
               home_value_cents = excluded.home_value_cents, hail_size_in = excluded.hail_size_in,
               distance_to_core_km = excluded.distance_to_core_km, prior_claims = excluded.prior_claims, owner_name = excluded.owner_name,
               owner_phone = excluded.owner_phone, owner_email = excluded.owner_email, status = excluded.status,
               field_clocks = excluded.field_clocks",
        )?
        .execute(params![
            self.id.to_string(),
            self.storm_id.to_string(),
            self.external_id,
            self.address,
            search_text(&self.address),
            self.latitude,
            self.longitude,
            self.roof_age_years,
            self.roof_material.map(RoofMaterial::as_str),
            self.square_feet,
            self.home_value.map(|c| c.0),
            self.hail_size_in,
            self.distance_to_core_km,
            self.prior_claims,
            self.owner_name,
            self.owner_phone,
            self.owner_email,
            self.status.as_str(),
            clocks
        ])?;
        Ok(())
    }
}

/// Inserts pulled properties new to this laptop, with multi-row statements: each picks up its score and
/// latest decision as [`Property::upsert_clock_text`] does, and a property already stored — or any row a
/// constraint would refuse — is left out (the caller merges those one by one, where the constraint
/// speaks). Returns the properties inserted.
///
/// `OR IGNORE` rather than an upsert clause: a multi-row statement that a constraint could abort
/// half-way makes SQLite copy every existing page it changes into a statement journal first, so the
/// rows before the failing one can be undone (about a tenth of a first sync's writing). No row of this
/// statement can fail half-way, and any other error rolls the whole page back.
pub(crate) fn insert_new_properties(
    conn: &Connection,
    properties: &[(Property, String)],
) -> StoreResult<usize> {
    let shape = MultiRow {
        // The pick-ups are correlated subqueries over the rows' list, so each is compiled once per
        // statement and reuses its cursors row after row (as subqueries inside each row of a VALUES list,
        // every row would open cursors of its own, and opening one walks all the others).
        head: "INSERT OR IGNORE INTO properties (id, storm_id, external_id, address, address_search, latitude, longitude, roof_age_years, roof_material,
               square_feet, home_value_cents, hail_size_in, distance_to_core_km, prior_claims, owner_name, owner_phone, owner_email, status,
               field_clocks, score_uplift, latest_decision, latest_decision_at, latest_decision_id)
             SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9, v.column10,
               v.column11, v.column12, v.column13, v.column14, v.column15, v.column16, v.column17, v.column18, v.column19,
               (SELECT s.uplift FROM uplift_scores s WHERE s.property_id = v.column1 AND s.storm_id = v.column2),
               (SELECT d.decision FROM policy_decisions d WHERE d.property_id = v.column1 AND d.storm_id = v.column2
                 ORDER BY d.decided_at DESC, d.id DESC LIMIT 1),
               (SELECT d.decided_at FROM policy_decisions d WHERE d.property_id = v.column1 AND d.storm_id = v.column2
                 ORDER BY d.decided_at DESC, d.id DESC LIMIT 1),
               (SELECT d.id FROM policy_decisions d WHERE d.property_id = v.column1 AND d.storm_id = v.column2
                 ORDER BY d.decided_at DESC, d.id DESC LIMIT 1)
             FROM (VALUES",
        row: "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        tail: ") AS v",
    };
    execute_rows(conn, shape, properties, |stmt, i, (p, clocks)| {
        stmt.raw_bind_parameter(i, p.id.to_string())?;
        stmt.raw_bind_parameter(i + 1, p.storm_id.to_string())?;
        stmt.raw_bind_parameter(i + 2, &p.external_id)?;
        stmt.raw_bind_parameter(i + 3, &p.address)?;
        stmt.raw_bind_parameter(i + 4, search_text(&p.address))?;
        stmt.raw_bind_parameter(i + 5, p.latitude)?;
        stmt.raw_bind_parameter(i + 6, p.longitude)?;
        stmt.raw_bind_parameter(i + 7, p.roof_age_years)?;
        stmt.raw_bind_parameter(i + 8, p.roof_material.map(RoofMaterial::as_str))?;
        stmt.raw_bind_parameter(i + 9, p.square_feet)?;
        stmt.raw_bind_parameter(i + 10, p.home_value.map(|c| c.0))?;
        stmt.raw_bind_parameter(i + 11, p.hail_size_in)?;
        stmt.raw_bind_parameter(i + 12, p.distance_to_core_km)?;
        stmt.raw_bind_parameter(i + 13, p.prior_claims)?;
        stmt.raw_bind_parameter(i + 14, &p.owner_name)?;
        stmt.raw_bind_parameter(i + 15, &p.owner_phone)?;
        stmt.raw_bind_parameter(i + 16, &p.owner_email)?;
        stmt.raw_bind_parameter(i + 17, p.status.as_str())?;
        stmt.raw_bind_parameter(i + 18, clocks)?;
        Ok(i + 19)
    })
}

impl MutableRecord for Territory {
    const ENTITY: Entity = Entity::Territory;
    fn record_id(&self) -> Uuid {
        self.id.0
    }
    fn load(conn: &Connection, id: &Uuid) -> StoreResult<Option<(Self, FieldClocks)>> {
        load_with(
            conn,
            "SELECT id, storm_id, name, crew_id, field_clocks FROM territories WHERE id = ?1",
            id,
            |r| {
                Ok(Territory {
                    id: parsed(r, 0)?,
                    storm_id: parsed(r, 1)?,
                    name: r.get(2)?,
                    crew_id: parsed_opt(r, 3)?,
                })
            },
            4,
        )
    }
    fn upsert_clock_text(&self, conn: &Connection, clocks: &str) -> StoreResult<()> {
        conn.prepare_cached(
            "INSERT INTO territories (id, storm_id, name, crew_id, field_clocks) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET storm_id = excluded.storm_id, name = excluded.name, crew_id = excluded.crew_id,
               field_clocks = excluded.field_clocks",
        )?
        .execute(params![self.id.to_string(), self.storm_id.to_string(), self.name, self.crew_id.map(|c| c.to_string()), clocks])?;
        Ok(())
    }
}

impl MutableRecord for User {
    const ENTITY: Entity = Entity::User;
    fn record_id(&self) -> Uuid {
        self.id.0
    }
    fn load(conn: &Connection, id: &Uuid) -> StoreResult<Option<(Self, FieldClocks)>> {
        load_with(
            conn,
            "SELECT id, email, name, role, crew_id, field_clocks FROM users WHERE id = ?1",
            id,
            |r| {
                Ok(User {
                    id: parsed(r, 0)?,
                    email: r.get(1)?,
                    name: r.get(2)?,
                    role: parsed(r, 3)?,
                    crew_id: parsed_opt(r, 4)?,
                })
            },
            5,
        )
    }
    fn upsert_clock_text(&self, conn: &Connection, clocks: &str) -> StoreResult<()> {
        conn.prepare_cached(
            "INSERT INTO users (id, email, name, role, crew_id, field_clocks) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET email = excluded.email, name = excluded.name, role = excluded.role,
               crew_id = excluded.crew_id, field_clocks = excluded.field_clocks",
        )?
        .execute(params![self.id.to_string(), self.email, self.name, self.role.as_str(), self.crew_id.map(|c| c.to_string()), clocks])?;
        Ok(())
    }
}

impl MutableRecord for Crew {
    const ENTITY: Entity = Entity::Crew;
    fn record_id(&self) -> Uuid {
        self.id.0
    }
    fn load(conn: &Connection, id: &Uuid) -> StoreResult<Option<(Self, FieldClocks)>> {
        load_with(
            conn,
            "SELECT id, name, chief_id, field_clocks FROM crews WHERE id = ?1",
            id,
            |r| {
                Ok(Crew {
                    id: parsed(r, 0)?,
                    name: r.get(1)?,
                    chief_id: parsed_opt(r, 2)?,
                })
            },
            3,
        )
    }
    fn upsert_clock_text(&self, conn: &Connection, clocks: &str) -> StoreResult<()> {
        conn.prepare_cached(
            "INSERT INTO crews (id, name, chief_id, field_clocks) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, chief_id = excluded.chief_id, field_clocks = excluded.field_clocks",
        )?
        .execute(params![self.id.to_string(), self.name, self.chief_id.map(|c| c.to_string()), clocks])?;
        Ok(())
    }
}

/// A UUID as a BLOB parameter: how `journey_touches` stores its ids (migration 0007).
pub(crate) fn id_bytes(id: &Uuid) -> &[u8] {
    &id.as_bytes()[..]
}

/// This file's own device (`meta.device_id`).
pub(crate) fn own_device(conn: &Connection) -> StoreResult<DeviceId> {
    Ok(conn
        .prepare_cached("SELECT device_id FROM meta WHERE singleton = 1")?
        .query_row([], |r| parsed(r, 0))?)
}

/// The file's own device id as 16 bytes, as an uncorrelated subquery (SQLite runs it once per statement):
/// what a touch's NULL `device_id` stands for (migration 0013). A literal, for `concat!`.
macro_rules! own_device_bytes {
    () => {
        "(SELECT unhex(replace(device_id, '-', '')) FROM meta WHERE singleton = 1)"
    };
}
pub(crate) use own_device_bytes;

/// Append-only inserts: a second insert of the same id is ignored (a replayed pull page). A touch's ids
/// are stored as their 16 bytes (migration 0007), its channel and result as numbers and its device as
/// NULL when it is this file's own (migration 0013).
pub(crate) fn insert_touch(conn: &Connection, t: &JourneyTouch) -> StoreResult<usize> {
    // The statement compares the device with the file's own itself: a pulled page stores its touches one
    // by one, and this saves each a read of `meta` ([`insert_touches`] reads it once per batch).
    Ok(conn
        .prepare_cached(concat!(
            "INSERT OR IGNORE INTO journey_touches (id, property_id, storm_id, user_id, device_id, channel, result, notes, occurred_at)
             VALUES (?1, ?2, ?3, ?4, nullif(?5, ",
            own_device_bytes!(),
            "), ?6, ?7, ?8, ?9)"
        ))?
        .execute(params![
            id_bytes(&t.id.0),
            id_bytes(&t.property_id.0),
            id_bytes(&t.storm_id.0),
            id_bytes(&t.user_id.0),
            id_bytes(&t.device_id.0),
            touch_columns::channel_code(t.channel),
            touch_columns::result_code(t.result),
            t.notes,
            t.occurred_at.millis()
        ])?)
}

/// [`insert_touch`] for a batch, with multi-row statements; returns the touches inserted (a touch whose
/// id is already stored is skipped and not counted).
pub(crate) fn insert_touches(conn: &Connection, touches: &[JourneyTouch]) -> StoreResult<usize> {
    let own = own_device(conn)?;
    let shape = MultiRow {
        head: "INSERT OR IGNORE INTO journey_touches (id, property_id, storm_id, user_id, device_id, channel, result, notes, occurred_at) VALUES",
        row: "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
        tail: "",
    };
    execute_rows(conn, shape, touches, |stmt, i, t| {
        stmt.raw_bind_parameter(i, id_bytes(&t.id.0))?;
        stmt.raw_bind_parameter(i + 1, id_bytes(&t.property_id.0))?;
        stmt.raw_bind_parameter(i + 2, id_bytes(&t.storm_id.0))?;
        stmt.raw_bind_parameter(i + 3, id_bytes(&t.user_id.0))?;
        stmt.raw_bind_parameter(i + 4, touch_columns::device_bytes(&t.device_id, &own))?;
        stmt.raw_bind_parameter(i + 5, touch_columns::channel_code(t.channel))?;
        stmt.raw_bind_parameter(i + 6, touch_columns::result_code(t.result))?;
        stmt.raw_bind_parameter(i + 7, &t.notes)?;
        stmt.raw_bind_parameter(i + 8, t.occurred_at.millis())?;
        Ok(i + 9)
    })
}

/// The columns a touch is read with, in [`touch_from_row`]'s order, from `journey_touches t`, as a
/// literal for `concat!`: a NULL device reads as the file's own.
macro_rules! touch_select_columns {
    () => {
        concat!(
            "t.id, t.property_id, t.storm_id, t.user_id, coalesce(t.device_id, ",
            $crate::rows::own_device_bytes!(),
            "), t.channel, t.result, t.notes, t.occurred_at"
        )
    };
}
pub(crate) use touch_select_columns;

/// A touch read with [`touch_select_columns!`].
pub(crate) fn touch_from_row(r: &Row<'_>) -> rusqlite::Result<JourneyTouch> {
    Ok(JourneyTouch {
        id: TouchId(uuid_blob(r, 0)?),
        property_id: PropertyId(uuid_blob(r, 1)?),
        storm_id: StormId(uuid_blob(r, 2)?),
        user_id: UserId(uuid_blob(r, 3)?),
        device_id: DeviceId(uuid_blob(r, 4)?),
        channel: touch_columns::channel_at(r, 5)?,
        result: touch_columns::result_at(r, 6)?,
        notes: r.get(7)?,
        occurred_at: ts(r, 8)?,
    })
}

pub(crate) fn insert_outcome(conn: &Connection, o: &Outcome) -> StoreResult<usize> {
    Ok(conn
        .prepare_cached(
            "INSERT OR IGNORE INTO outcomes (id, property_id, storm_id, converted, contract_value_cents, occurred_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![o.id.to_string(), o.property_id.to_string(), o.storm_id.to_string(), o.converted, o.contract_value.0, o.occurred_at.millis()])?)
}

pub(crate) fn outcome_from_row(r: &Row<'_>) -> rusqlite::Result<Outcome> {
    Ok(Outcome {
        id: parsed(r, 0)?,
        property_id: parsed(r, 1)?,
        storm_id: parsed(r, 2)?,
        converted: r.get(3)?,
        contract_value: Cents(r.get(4)?),
        occurred_at: ts(r, 5)?,
    })
}

pub(crate) fn insert_decision(conn: &Connection, d: &PolicyDecision) -> StoreResult<usize> {
    Ok(conn
        .prepare_cached(
            "INSERT OR IGNORE INTO policy_decisions (id, property_id, storm_id, decision, mode, uplift_score, model_version, reason, is_override, decided_by, decided_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            d.id.to_string(),
            d.property_id.to_string(),
            d.storm_id.to_string(),
            d.decision.as_str(),
            d.mode.as_str(),
            d.uplift_score,
            d.model_version,
            d.reason,
            d.is_override,
            d.decided_by.to_string(),
            d.decided_at.millis()
        ])?)
}

pub(crate) fn decision_from_row(r: &Row<'_>) -> rusqlite::Result<PolicyDecision> {
    Ok(PolicyDecision {
        id: parsed(r, 0)?,
        property_id: parsed(r, 1)?,
        storm_id: parsed(r, 2)?,
        decision: parsed(r, 3)?,
        mode: parsed(r, 4)?,
        uplift_score: r.get(5)?,
        model_version: r.get(6)?,
        reason: r.get(7)?,
        is_override: r.get(8)?,
        decided_by: parsed(r, 9)?,
        decided_at: ts(r, 10)?,
    })
}

/// Server-owned records: replaced whole by what the server sends.
pub(crate) fn upsert_assignment(conn: &Connection, a: &Assignment) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO assignments (id, storm_id, property_id, territory_id, crew_id, user_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        a.id.to_string(),
        a.storm_id.to_string(),
        a.property_id.to_string(),
        a.territory_id.map(|t| t.to_string()),
        a.crew_id.map(|c| c.to_string()),
        a.user_id.map(|u| u.to_string())
    ])?;
    Ok(())
}

pub(crate) fn upsert_experiment(conn: &Connection, e: &Experiment) -> StoreResult<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO experiments (id, storm_id, treatment_share, seed, started_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![e.id.to_string(), e.storm_id.to_string(), e.treatment_share, e.seed.to_string(), e.started_at.millis()])?;
    Ok(())
}

pub(crate) fn upsert_arm_assignment(conn: &Connection, a: &ArmAssignment) -> StoreResult<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO arm_assignments (experiment_id, property_id, arm, assigned_at) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![a.experiment_id.to_string(), a.property_id.to_string(), a.arm.as_str(), a.assigned_at.millis()])?;
    Ok(())
}

/// Replaces the storm's policy with the pulled one (server-owned; the feed's order is the office's).
pub(crate) fn upsert_storm_policy(conn: &Connection, p: &StormPolicy) -> StoreResult<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO storm_policies (storm_id, mode, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![p.storm_id.to_string(), p.mode.as_str(), p.updated_at.millis(), p.updated_by.map(|u| u.to_string())])?;
    Ok(())
}

pub(crate) fn upsert_score(conn: &Connection, s: &UpliftScore) -> StoreResult<()> {
    let property = s.property_id.to_string();
    let storm = s.storm_id.to_string();
    conn.prepare_cached(
        "INSERT INTO uplift_scores (property_id, storm_id, uplift, p_treat, p_hold, model_version, trained_at, data_watermark)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (property_id, storm_id) DO UPDATE SET uplift = excluded.uplift, p_treat = excluded.p_treat, p_hold = excluded.p_hold,
           model_version = excluded.model_version, trained_at = excluded.trained_at, data_watermark = excluded.data_watermark",
    )?
    .execute(params![
        property,
        storm,
        s.uplift,
        s.p_treat,
        s.p_hold,
        s.model_version,
        s.trained_at.millis(),
        s.data_watermark
    ])?;
    // The rank column on the property row. A plain statement rather than the trigger it replaces
    // (migration 0004): a trigger makes every score write keep a statement journal of each page it
    // touches, which was most of the cost of a first sync's scores.
    conn.prepare_cached("UPDATE properties SET score_uplift = ?3 WHERE id = ?1 AND storm_id = ?2")?
        .execute(params![property, storm, s.uplift])?;
    Ok(())
}

/// [`upsert_score`] for a batch, with multi-row statements: the scores in page order (a later score of the
/// same property and storm replaces an earlier one, as one by one), then the rank column of each stored
/// property they score, read back from the scores as they now stand.
///
/// Chunks are inserted with `OR IGNORE` until one meets a stored score (or holds one twice); that chunk
/// and the rest are written as an upsert. An upsert of many rows can be aborted half-way by its `UPDATE`
/// part, so SQLite keeps a statement journal for it — a copy of every existing page it changes; a first
/// sync's scores are all new and need none.
pub(crate) fn upsert_scores(conn: &Connection, scores: &[UpliftScore]) -> StoreResult<()> {
    let insert = MultiRow {
        head: "INSERT OR IGNORE INTO uplift_scores (property_id, storm_id, uplift, p_treat, p_hold, model_version, trained_at, data_watermark) VALUES",
        row: "(?, ?, ?, ?, ?, ?, ?, ?)",
        tail: "",
    };
    let upsert = MultiRow {
        head: "INSERT INTO uplift_scores (property_id, storm_id, uplift, p_treat, p_hold, model_version, trained_at, data_watermark) VALUES",
        tail: "ON CONFLICT (property_id, storm_id) DO UPDATE SET uplift = excluded.uplift, p_treat = excluded.p_treat,
               p_hold = excluded.p_hold, model_version = excluded.model_version, trained_at = excluded.trained_at,
               data_watermark = excluded.data_watermark",
        ..insert
    };
    fn bind(
        stmt: &mut rusqlite::Statement<'_>,
        i: usize,
        s: &UpliftScore,
    ) -> rusqlite::Result<usize> {
        stmt.raw_bind_parameter(i, s.property_id.to_string())?;
        stmt.raw_bind_parameter(i + 1, s.storm_id.to_string())?;
        stmt.raw_bind_parameter(i + 2, s.uplift)?;
        stmt.raw_bind_parameter(i + 3, s.p_treat)?;
        stmt.raw_bind_parameter(i + 4, s.p_hold)?;
        stmt.raw_bind_parameter(i + 5, &s.model_version)?;
        stmt.raw_bind_parameter(i + 6, s.trained_at.millis())?;
        stmt.raw_bind_parameter(i + 7, s.data_watermark)?;
        Ok(i + 8)
    }
    // A page is a first sync's (every score new) or a retraining's (every score stored): once a chunk
    // meets stored scores, the rest go straight to the upsert instead of trying the insert first.
    let mut all_new = true;
    for chunk in scores.chunks(ROWS_PER_STATEMENT) {
        if all_new {
            let inserted = execute_rows(conn, insert, chunk, bind)?;
            if inserted == chunk.len() {
                continue;
            }
            all_new = false;
        }
        execute_rows(conn, upsert, chunk, bind)?;
    }
    // The rank column, as `upsert_score` sets it: a property's own storm's score (NULL if it has none).
    let shape = MultiRow {
        head: "UPDATE properties SET score_uplift = (SELECT s.uplift FROM uplift_scores s
                 WHERE s.property_id = properties.id AND s.storm_id = properties.storm_id)
               WHERE id IN (",
        row: "?",
        tail: ")",
    };
    execute_rows(conn, shape, scores, |stmt, i, s| {
        stmt.raw_bind_parameter(i, s.property_id.to_string())?;
        Ok(i + 1)
    })?;
    Ok(())
}

pub(crate) fn score_from_row(r: &Row<'_>) -> rusqlite::Result<UpliftScore> {
    Ok(UpliftScore {
        property_id: parsed(r, 0)?,
        storm_id: parsed(r, 1)?,
        uplift: r.get(2)?,
        p_treat: r.get(3)?,
        p_hold: r.get(4)?,
        model_version: r.get(5)?,
        trained_at: ts(r, 6)?,
        data_watermark: r.get(7)?,
    })
}

pub(crate) const TOUCH_BY_ID: &str = concat!(
    "SELECT ",
    touch_select_columns!(),
    " FROM journey_touches t WHERE t.id = ?1"
);
const OUTCOME_BY_ID: &str = "SELECT id, property_id, storm_id, converted, contract_value_cents, occurred_at FROM outcomes WHERE id = ?1";
const DECISION_BY_ID: &str = "SELECT id, property_id, storm_id, decision, mode, uplift_score, model_version, reason, is_override, decided_by, decided_at FROM policy_decisions WHERE id = ?1";

/// A stored append-only record (touch, outcome, decision) as the payload of its insert change, or `None`
/// when it is not stored (or `entity` is not append-only). Since migration 0005 the outbox row of such
/// an insert holds no copy of the record: the record never changes after its insert, so reading it back
/// and serialising it gives the payload that was written (every column round-trips exactly).
pub(crate) fn append_only_payload(
    conn: &Connection,
    entity: Entity,
    id: &Uuid,
) -> StoreResult<Option<Value>> {
    fn one<T: Serialize>(
        conn: &Connection,
        sql: &str,
        id: impl rusqlite::ToSql,
        read: fn(&Row<'_>) -> rusqlite::Result<T>,
    ) -> StoreResult<Option<Value>> {
        conn.prepare_cached(sql)?
            .query_row([id], read)
            .optional()?
            .map(|record| {
                serde_json::to_value(&record).map_err(|e| StoreError::Decode(e.to_string()))
            })
            .transpose()
    }
    match entity {
        Entity::JourneyTouch => one(conn, TOUCH_BY_ID, id_bytes(id), touch_from_row),
        Entity::Outcome => one(conn, OUTCOME_BY_ID, id.to_string(), outcome_from_row),
        Entity::PolicyDecision => one(conn, DECISION_BY_ID, id.to_string(), decision_from_row),
        _ => Ok(None),
    }
}

/// Before an append-only record is deleted, the outbox rows that refer to it for their payload (a pending
/// or refused insert, migration 0005) get a copy of it, so the change stays complete without the record.
fn keep_outbox_payload(conn: &Connection, entity: Entity, id: &Uuid) -> StoreResult<()> {
    let entity_id = &id.as_bytes()[..];
    let referred: bool = conn
        .prepare_cached(&format!(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE {OF_RECORD} AND payload IS NULL)"
        ))?
        .query_row(
            params![outbox_columns::entity_code(entity), entity_id],
            |r| r.get(0),
        )?;
    if !referred {
        return Ok(());
    }
    let Some(payload) = append_only_payload(conn, entity, id)? else {
        return Ok(());
    };
    let payload = serde_json::to_string(&payload).map_err(|e| StoreError::Decode(e.to_string()))?;
    conn.prepare_cached(&format!(
        "UPDATE outbox SET payload = ?3 WHERE {OF_RECORD} AND payload IS NULL"
    ))?
    .execute(params![
        outbox_columns::entity_code(entity),
        entity_id,
        payload
    ])?;
    Ok(())
}

/// Deletes the row(s) a pulled tombstone names.
pub(crate) fn delete_record(conn: &Connection, entity: Entity, id: &Uuid) -> StoreResult<usize> {
    if entity.kind() == EntityKind::AppendOnly {
        keep_outbox_payload(conn, entity, id)?;
    }
    let sql = match entity {
        Entity::Storm => "DELETE FROM storms WHERE id = ?1",
        Entity::Property => "DELETE FROM properties WHERE id = ?1",
        Entity::Territory => "DELETE FROM territories WHERE id = ?1",
        Entity::Assignment => "DELETE FROM assignments WHERE id = ?1",
        Entity::Experiment => "DELETE FROM experiments WHERE id = ?1",
        // Arm assignments and scores have no id of their own: the tombstone names the property.
        Entity::ArmAssignment => "DELETE FROM arm_assignments WHERE property_id = ?1",
        Entity::UpliftScore => "DELETE FROM uplift_scores WHERE property_id = ?1",
        Entity::JourneyTouch => {
            // Stored as its 16 bytes (migration 0007).
            return Ok(conn
                .prepare_cached("DELETE FROM journey_touches WHERE id = ?1")?
                .execute([id_bytes(id)])?);
        }
        Entity::Outcome => "DELETE FROM outcomes WHERE id = ?1",
        Entity::PolicyDecision => "DELETE FROM policy_decisions WHERE id = ?1",
        Entity::Crew => "DELETE FROM crews WHERE id = ?1",
        Entity::User => "DELETE FROM users WHERE id = ?1",
        // A policy's entity id is its storm's id.
        Entity::StormPolicy => "DELETE FROM storm_policies WHERE storm_id = ?1",
    };
    Ok(conn.prepare_cached(sql)?.execute([id.to_string()])?)
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Rows the tests of several modules start from: the `meta` row of a file and journey touches.

    use domain::*;
    use rusqlite::Connection;

    /// Writes the `meta` row of a file whose own device is `device`.
    pub(crate) fn meta_of_device(conn: &Connection, device: DeviceId) {
        conn.execute(
            "INSERT INTO meta (singleton, tenant_id, tenant_name, device_id, last_hlc, created_at)
             VALUES (1, 't', 'n', ?1, 'h', 0)",
            [device.to_string()],
        )
        .expect("meta");
    }

    /// The `i`th touch of `property`, a minute after the one before, with fresh ids of its own.
    pub(crate) fn touch(
        i: i64,
        property: PropertyId,
        device: DeviceId,
        channel: Channel,
        result: TouchResult,
    ) -> JourneyTouch {
        JourneyTouch {
            id: TouchId::generate(),
            property_id: property,
            storm_id: StormId::generate(),
            user_id: UserId::generate(),
            device_id: device,
            channel,
            result,
            notes: format!("touch {i}"),
            occurred_at: Timestamp::from_millis(1_796_116_311_633 + i * 60_000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_clocks_read_back_from_both_stored_forms() {
        let (a, b) = (Hlc::new(1_000, 0, 1), Hlc::new(2_000, 3, 9));
        let clocks: FieldClocks = [("status", a), ("owner_name", b), ("address", a)]
            .into_iter()
            .map(|(f, h)| (f.to_owned(), h))
            .collect();
        let grouped = clocks_to_text(&clocks).expect("text");
        assert_eq!(
            grouped,
            format!(r#"{{"{a}":["address","status"],"{b}":["owner_name"]}}"#),
            "one entry per distinct clock"
        );
        assert_eq!(clocks_from_text(&grouped).expect("grouped"), clocks);
        // The form written before migration 0004.
        let per_field = serde_json::to_string(&clocks).expect("json");
        assert_eq!(clocks_from_text(&per_field).expect("per field"), clocks);
        assert_eq!(clocks_from_text("{}").expect("empty"), FieldClocks::new());
        assert!(clocks_from_text(r#"{"not a clock":["status"]}"#).is_err());
    }

    /// A touch of the file's own device is stored without its device id, another device's with it, both
    /// through the one-touch statement and the batch; every statement that reads touches gives the id
    /// back.
    #[test]
    fn only_another_devices_touches_store_their_device() {
        let mut conn = Connection::open_in_memory().expect("memory");
        crate::schema::migrate(&mut conn, std::path::Path::new("memory")).expect("migrate");
        let (own, other) = (DeviceId::generate(), DeviceId::generate());
        fixtures::meta_of_device(&conn, own);
        let property = PropertyId::generate();
        let touch = |i: i64, device: DeviceId| {
            fixtures::touch(i, property, device, Channel::Call, TouchResult::Scheduled)
        };
        let one = [touch(0, own), touch(1, other)];
        let batch = [touch(2, other), touch(3, own)];
        for t in &one {
            assert_eq!(insert_touch(&conn, t).expect("one touch"), 1);
        }
        assert_eq!(insert_touches(&conn, &batch).expect("batch"), 2);
        let stored: Vec<Option<Vec<u8>>> = conn
            .prepare("SELECT device_id FROM journey_touches ORDER BY occurred_at")
            .expect("select")
            .query_map([], |r| r.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("read");
        let other_bytes = Some(other.0.as_bytes().to_vec());
        assert_eq!(stored, [None, other_bytes.clone(), other_bytes, None]);
        let all: Vec<JourneyTouch> = one.into_iter().chain(batch).collect();
        for t in &all {
            let read = conn
                .query_row(TOUCH_BY_ID, [id_bytes(&t.id.0)], touch_from_row)
                .expect("by id");
            assert_eq!(&read, t);
        }
        let timeline: Vec<JourneyTouch> = conn
            .prepare(crate::queries::TIMELINE_TOUCHES)
            .expect("timeline")
            .query_map([id_bytes(&property.0)], touch_from_row)
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("read");
        assert_eq!(timeline, all);
    }
}
