//! Reads and validates the legacy tables. Values are read untyped (SQLite lets any column hold any type)
//! and converted column by column, so a wrong type is a rejected row with a reason, never a failed read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use domain::{
    Cents, Channel, Experiment, ExperimentId, JourneyTouch, Property, PropertyId, PropertyStatus,
    RoofMaterial, Storm, StormId, StormStatus, Timestamp, TouchId, TouchResult, UpliftScore,
    Validate,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};

use crate::schema::{REQUIRED_COLUMNS, REQUIRED_TABLES};
use crate::{ImportIdentity, LegacyData, LegacyError, RejectedRow, legacy_uuid};

/// Reads the legacy database at `path` for `identity`'s tenant. Missing tables or columns are typed
/// errors; bad rows are in [`LegacyData::rejected`]. `now` bounds timestamps as validation does.
pub fn read_legacy(
    path: &Path,
    identity: &ImportIdentity,
    now: Timestamp,
) -> Result<LegacyData, LegacyError> {
    let unreadable = |reason: String| LegacyError::Unreadable {
        path: path.display().to_string(),
        reason,
    };
    if !path.is_file() {
        return Err(unreadable("no such file".into()));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| unreadable(e.to_string()))?;
    check_schema(&conn).map_err(|e| match e {
        SchemaProblem::Sqlite(reason) => unreadable(reason),
        SchemaProblem::Legacy(e) => e,
    })?;
    let mut reader = Reader {
        identity: *identity,
        now,
        data: LegacyData::default(),
        storms: BTreeMap::new(),
        properties: BTreeMap::new(),
        storms_with_experiment: BTreeSet::new(),
    };
    reader
        .read_all(&conn)
        .map_err(|e| unreadable(e.to_string()))?;
    Ok(reader.data)
}

enum SchemaProblem {
    Sqlite(String),
    Legacy(LegacyError),
}

fn check_schema(conn: &Connection) -> Result<(), SchemaProblem> {
    let sqlite = |e: rusqlite::Error| SchemaProblem::Sqlite(e.to_string());
    let mut statement = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .map_err(sqlite)?;
    let present: BTreeSet<String> = statement
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(sqlite)?
        .collect::<Result<_, _>>()
        .map_err(sqlite)?;
    let missing: Vec<String> = REQUIRED_TABLES
        .iter()
        .filter(|t| !present.contains(**t))
        .map(|t| (*t).to_owned())
        .collect();
    if !missing.is_empty() {
        return Err(SchemaProblem::Legacy(LegacyError::MissingTables(missing)));
    }
    for (table, columns) in REQUIRED_COLUMNS {
        let mut statement = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .map_err(sqlite)?;
        let have: BTreeSet<String> = statement
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(sqlite)?
            .collect::<Result<_, _>>()
            .map_err(sqlite)?;
        let missing: Vec<String> = columns
            .iter()
            .filter(|c| !have.contains(**c))
            .map(|c| (*c).to_owned())
            .collect();
        if !missing.is_empty() {
            return Err(SchemaProblem::Legacy(LegacyError::MissingColumns {
                table: table.to_owned(),
                columns: missing,
            }));
        }
    }
    Ok(())
}

/// One legacy row: its values by column name.
struct Row<'a> {
    columns: &'a [&'a str],
    values: Vec<Value>,
}

impl Row<'_> {
    fn value(&self, column: &str) -> &Value {
        self.columns
            .iter()
            .position(|c| *c == column)
            .and_then(|i| self.values.get(i))
            .unwrap_or(&Value::Null)
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>, String> {
        match self.value(column) {
            Value::Null => Ok(None),
            Value::Integer(i) => Ok(Some(*i)),
            other => Err(format!(
                "{column} must be an integer, found {}",
                kind(other)
            )),
        }
    }

    fn int(&self, column: &str) -> Result<i64, String> {
        self.opt_int(column)?
            .ok_or_else(|| format!("{column} is missing"))
    }

    fn opt_real(&self, column: &str) -> Result<Option<f64>, String> {
        match self.value(column) {
            Value::Null => Ok(None),
            Value::Integer(i) => Ok(Some(*i as f64)),
            Value::Real(r) => Ok(Some(*r)),
            other => Err(format!("{column} must be a number, found {}", kind(other))),
        }
    }

    fn real(&self, column: &str) -> Result<f64, String> {
        self.opt_real(column)?
            .ok_or_else(|| format!("{column} is missing"))
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>, String> {
        match self.value(column) {
            Value::Null => Ok(None),
            Value::Text(t) => Ok(Some(t.clone())),
            other => Err(format!("{column} must be text, found {}", kind(other))),
        }
    }

    fn text(&self, column: &str) -> Result<String, String> {
        self.opt_text(column)?
            .ok_or_else(|| format!("{column} is missing"))
    }

    fn parsed<T: std::str::FromStr>(&self, column: &str) -> Result<T, String> {
        let text = self.text(column)?;
        text.parse::<T>()
            .map_err(|_| format!("{column} '{}' is not a known value", shorten(&text)))
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Integer(_) => "an integer",
        Value::Real(_) => "a real",
        Value::Text(_) => "text",
        Value::Blob(_) => "a blob",
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(40).collect()
}

struct Reader {
    identity: ImportIdentity,
    now: Timestamp,
    data: LegacyData,
    /// Accepted storms by old id.
    storms: BTreeMap<i64, StormId>,
    /// Accepted properties by old id, with their storm.
    properties: BTreeMap<i64, (PropertyId, StormId)>,
    storms_with_experiment: BTreeSet<StormId>,
}

fn for_each_row(
    conn: &Connection,
    table: &str,
    mut f: impl FnMut(&Row<'_>),
) -> Result<(), rusqlite::Error> {
    let columns = REQUIRED_COLUMNS
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, c)| *c)
        .unwrap_or(&[]);
    let sql = format!("SELECT {} FROM {table} ORDER BY 1", columns.join(", "));
    let mut statement = conn.prepare(&sql)?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            values.push(owned_value(row.get_ref(i)?));
        }
        f(&Row { columns, values });
    }
    Ok(())
}

/// An owned copy of a column value. Text that is not valid UTF-8 (a damaged legacy file) is kept as a
/// blob, so the column's converter rejects that row with a reason instead of the import panicking
/// (rusqlite's own `Value` conversion panics on it; found by the `legacy_import` fuzz target).
fn owned_value(value: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => Value::Text(text.to_owned()),
            Err(_) => Value::Blob(bytes.to_vec()),
        },
        ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
    }
}

/// The old id of a row, for the report (a row whose id is not an integer reports -1).
fn old_id(row: &Row<'_>, column: &str) -> i64 {
    row.int(column).unwrap_or(-1)
}

impl Reader {
    fn reject(&mut self, table: &str, old_id: i64, reason: String) {
        self.data.rejected.push(RejectedRow {
            table: table.to_owned(),
            old_id,
            reason,
        });
    }

    fn uuid(&self, table: &str, old_id: i64) -> uuid::Uuid {
        legacy_uuid(self.identity.tenant, table, old_id)
    }

    fn read_all(&mut self, conn: &Connection) -> Result<(), rusqlite::Error> {
        for_each_row(conn, "storms", |row| {
            let id = old_id(row, "id");
            match self.storm(row).and_then(|s| {
                s.validate(self.now).map_err(|e| e.to_string())?;
                Ok(s)
            }) {
                Ok(s) => {
                    self.storms.insert(id, s.id);
                    self.data.storms.push(s);
                }
                Err(reason) => self.reject("storms", id, reason),
            }
        })?;
        for_each_row(conn, "properties", |row| {
            let id = old_id(row, "id");
            match self.property(row).and_then(|p| {
                p.validate(self.now).map_err(|e| e.to_string())?;
                Ok(p)
            }) {
                Ok(p) => {
                    self.properties.insert(id, (p.id, p.storm_id));
                    self.data.properties.push(p);
                }
                Err(reason) => self.reject("properties", id, reason),
            }
        })?;
        for_each_row(conn, "experiments", |row| {
            let id = old_id(row, "id");
            match self.experiment(row).and_then(|x| {
                x.validate(self.now).map_err(|e| e.to_string())?;
                Ok(x)
            }) {
                Ok(x) => {
                    self.storms_with_experiment.insert(x.storm_id);
                    self.data.experiments.push(x);
                }
                Err(reason) => self.reject("experiments", id, reason),
            }
        })?;
        for_each_row(conn, "journeys", |row| {
            let id = old_id(row, "id");
            match self.touch(row).and_then(|t| {
                t.validate(self.now).map_err(|e| e.to_string())?;
                Ok(t)
            }) {
                Ok(t) => self.data.touches.push(t),
                Err(reason) => self.reject("journeys", id, reason),
            }
        })?;
        for_each_row(conn, "uplift_scores", |row| {
            let id = old_id(row, "property_id");
            match self.score(row).and_then(|s| {
                s.validate(self.now).map_err(|e| e.to_string())?;
                Ok(s)
            }) {
                Ok(s) => self.data.scores.push(s),
                Err(reason) => self.reject("uplift_scores", id, reason),
            }
        })?;
        Ok(())
    }

    fn storm_ref(&self, row: &Row<'_>) -> Result<StormId, String> {
        let old = row.int("storm_id")?;
        self.storms
            .get(&old)
            .copied()
            .ok_or_else(|| format!("storm {old} is missing or was rejected"))
    }

    fn property_ref(&self, row: &Row<'_>) -> Result<(PropertyId, StormId), String> {
        let old = row.int("property_id")?;
        self.properties
            .get(&old)
            .copied()
            .ok_or_else(|| format!("property {old} is missing or was rejected"))
    }

    fn storm(&self, row: &Row<'_>) -> Result<Storm, String> {
        Ok(Storm {
            id: StormId(self.uuid("storms", row.int("id")?)),
            event_id: row.text("event_id")?,
            name: row.text("name")?,
            started_at: Timestamp(row.int("started_at")?),
            ended_at: row.opt_int("ended_at")?.map(Timestamp),
            hail_size_in: row.real("hail_size_in")?,
            wind_mph: row.real("wind_mph")?,
            affected_area: row.text("affected_area")?,
            status: row.parsed::<StormStatus>("status")?,
        })
    }

    fn property(&self, row: &Row<'_>) -> Result<Property, String> {
        let prior_claims = row.opt_int("prior_claims")?.unwrap_or(0);
        Ok(Property {
            id: PropertyId(self.uuid("properties", row.int("id")?)),
            storm_id: self.storm_ref(row)?,
            external_id: row.text("external_id")?,
            address: row.text("address")?,
            latitude: row.real("latitude")?,
            longitude: row.real("longitude")?,
            roof_age_years: row.opt_real("roof_age_years")?,
            roof_material: match row.opt_text("roof_material")? {
                None => None,
                Some(_) => Some(row.parsed::<RoofMaterial>("roof_material")?),
            },
            square_feet: row.opt_real("square_feet")?,
            home_value: row.opt_int("home_value_cents")?.map(Cents),
            hail_size_in: row.opt_real("hail_size_in")?,
            distance_to_core_km: row.opt_real("distance_to_core_km")?,
            prior_claims: u32::try_from(prior_claims)
                .map_err(|_| format!("prior_claims {prior_claims} is out of range"))?,
            owner_name: row.opt_text("owner_name")?,
            owner_phone: row.opt_text("owner_phone")?,
            owner_email: row.opt_text("owner_email")?,
            status: row.parsed::<PropertyStatus>("status")?,
        })
    }

    fn experiment(&self, row: &Row<'_>) -> Result<Experiment, String> {
        let storm_id = self.storm_ref(row)?;
        if self.storms_with_experiment.contains(&storm_id) {
            return Err(format!(
                "storm {} already has an experiment (one per storm)",
                row.int("storm_id")?
            ));
        }
        let seed = row.int("seed")?;
        Ok(Experiment {
            id: ExperimentId(self.uuid("experiments", row.int("id")?)),
            storm_id,
            treatment_share: row.real("treatment_share")?,
            seed: u64::try_from(seed).map_err(|_| format!("seed {seed} is negative"))?,
            started_at: Timestamp(row.int("started_at")?),
        })
    }

    fn touch(&self, row: &Row<'_>) -> Result<JourneyTouch, String> {
        let (property_id, storm_id) = self.property_ref(row)?;
        Ok(JourneyTouch {
            id: TouchId(self.uuid("journeys", row.int("id")?)),
            property_id,
            storm_id,
            user_id: self.identity.user,
            device_id: self.identity.device,
            channel: row.parsed::<Channel>("channel")?,
            result: row.parsed::<TouchResult>("result")?,
            notes: row.opt_text("notes")?.unwrap_or_default(),
            occurred_at: Timestamp(row.int("occurred_at")?),
        })
    }

    fn score(&self, row: &Row<'_>) -> Result<UpliftScore, String> {
        let (property_id, storm_id) = self.property_ref(row)?;
        Ok(UpliftScore {
            property_id,
            storm_id,
            uplift: row.real("uplift")?,
            p_treat: row.real("p_treat")?,
            p_hold: row.real("p_hold")?,
            model_version: row.text("model_version")?,
            trained_at: Timestamp(row.int("scored_at")?),
            data_watermark: 0,
        })
    }
}
