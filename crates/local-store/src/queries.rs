//! The reads the field app needs: the ranked property list with filters, a property's journey
//! timeline, a crew's day, and record counts. Ranking walks the `properties_ranked` index (uplift
//! descending, unscored last), so a page of 50 stops early instead of sorting the storm.

use std::collections::BTreeMap;

use domain::*;
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, params, params_from_iter};
use serde::Serialize;

use crate::error::{StoreError, StoreResult};
use crate::rows::{self, PROPERTY_COLUMNS, search_text};
use crate::store::TenantStore;
use crate::touch_columns;

/// Filters of the ranked list. Every filter is optional; `limit` 0 means the default of 50.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PropertyQuery {
    pub storm_id: Option<StormId>,
    pub territory_id: Option<TerritoryId>,
    pub status: Option<PropertyStatus>,
    /// Treat or hold, from the property's latest decision.
    pub decision: Option<Decision>,
    /// Case-insensitive substring of the address.
    pub search: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// One row of the ranked list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankedProperty {
    pub property: Property,
    pub uplift: Option<f64>,
    pub p_treat: Option<f64>,
    pub p_hold: Option<f64>,
    pub model_version: Option<String>,
    pub latest_decision: Option<Decision>,
}

/// One event of a property's journey.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimelineEntry {
    Touch(JourneyTouch),
    Outcome(Outcome),
    Decision(PolicyDecision),
}

impl TimelineEntry {
    pub fn at(&self) -> Timestamp {
        match self {
            TimelineEntry::Touch(t) => t.occurred_at,
            TimelineEntry::Outcome(o) => o.occurred_at,
            TimelineEntry::Decision(d) => d.decided_at,
        }
    }
}

/// One user's day.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UserDay {
    pub user_id: String,
    pub user_name: Option<String>,
    pub touches: i64,
    pub properties: i64,
    pub by_channel: BTreeMap<String, i64>,
    pub by_result: BTreeMap<String, i64>,
    /// Touches that signed a contract (result `signed` or channel `contract_signed`).
    pub signed: i64,
}

/// A crew's (or everyone's) day, UTC.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CrewDaySummary {
    pub day: String,
    pub crew_id: Option<CrewId>,
    pub touches: i64,
    pub users: Vec<UserDay>,
    /// Converted outcomes that day (for a crew: on properties its users touched).
    pub conversions: i64,
    pub contract_value: Cents,
}

/// How much the file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecordCounts {
    pub storms: i64,
    pub properties: i64,
    pub scored_properties: i64,
    pub touches: i64,
    pub outcomes: i64,
    pub decisions: i64,
}

/// A property's touches (`?1`: its id's 16 bytes). Touches are indexed by (UTC hour, property) (migration
/// 0011): the query steps through the distinct hours, one index seek each, and seeks the property within
/// each hour. `CROSS JOIN` keeps the hours as the outer loop: left to choose, SQLite's planner (which has
/// no statistics here) reads every touch and looks each one's hour up instead, a scan of the whole table.
pub(crate) const TIMELINE_TOUCHES: &str = concat!(
    "WITH RECURSIVE hour(h) AS (
                 SELECT min(occurred_at / 3600000) FROM journey_touches
                 UNION ALL
                 SELECT (SELECT min(occurred_at / 3600000) FROM journey_touches WHERE occurred_at / 3600000 > hour.h)
                   FROM hour WHERE hour.h IS NOT NULL)
             SELECT ",
    rows::touch_select_columns!(),
    "
               FROM hour CROSS JOIN journey_touches t
              WHERE t.occurred_at / 3600000 = hour.h AND t.property_id = ?1"
);

/// Milliseconds in a UTC day: the unit of `utc_day_range`.
const MILLIS_PER_DAY: i64 = 86_400_000;

/// Milliseconds in an hour: the first column of the touches' (hour, property) index, which the SQL spells
/// as the literal `3600000` (migration 0011).
const MILLIS_PER_HOUR: i64 = 3_600_000;

/// The Unix-millisecond range of a UTC day written `YYYY-MM-DD`.
pub fn utc_day_range(day: &str) -> StoreResult<(i64, i64)> {
    let bad = || StoreError::InvalidInput {
        what: "date",
        detail: format!("'{day}' is not a YYYY-MM-DD date"),
    };
    let mut parts = day.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (y, m, d): (i64, i64, i64) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y_adj = if m <= 2 { y - 1 } else { y };
    let era = y_adj.div_euclid(400);
    let yoe = y_adj - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let start = days * MILLIS_PER_DAY;
    Ok((start, start + MILLIS_PER_DAY))
}

/// Appends the query's active filters to `sql` (the properties table is `p`).
/// Only the active filters become SQL, so each combination gets its own cached plan that can use the index.
fn push_filters(query: &PropertyQuery, sql: &mut String, args: &mut Vec<SqlValue>) {
    if let Some(storm) = query.storm_id {
        args.push(SqlValue::Text(storm.to_string()));
        sql.push_str(&format!(" AND p.storm_id = ?{}", args.len()));
    }
    if let Some(status) = query.status {
        args.push(SqlValue::Text(status.as_str().into()));
        sql.push_str(&format!(" AND p.status = ?{}", args.len()));
    }
    if let Some(decision) = query.decision {
        args.push(SqlValue::Text(decision.as_str().into()));
        sql.push_str(&format!(" AND p.latest_decision = ?{}", args.len()));
    }
    if let Some(search) = query
        .search
        .as_deref()
        .map(search_text)
        .filter(|s| !s.is_empty())
    {
        args.push(SqlValue::Text(search));
        sql.push_str(&format!(
            " AND instr(p.address_search, ?{}) > 0",
            args.len()
        ));
    }
    if let Some(territory) = query.territory_id {
        args.push(SqlValue::Text(territory.to_string()));
        sql.push_str(&format!(" AND EXISTS (SELECT 1 FROM assignments a WHERE a.property_id = p.id AND a.territory_id = ?{})", args.len()));
    }
}

impl TenantStore {
    /// Properties ranked by uplift (highest first, unscored last), filtered, one page.
    pub fn ranked_properties(&self, query: &PropertyQuery) -> StoreResult<Vec<RankedProperty>> {
        let mut sql = format!(
            "SELECT {columns}, s.uplift, s.p_treat, s.p_hold, s.model_version, p.latest_decision
               FROM properties p
               LEFT JOIN uplift_scores s ON s.property_id = p.id AND s.storm_id = p.storm_id
              WHERE 1 = 1",
            columns = PROPERTY_COLUMNS
                .split(", ")
                .map(|c| format!("p.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut args: Vec<SqlValue> = Vec::new();
        push_filters(query, &mut sql, &mut args);
        let limit = if query.limit == 0 { 50 } else { query.limit };
        args.push(SqlValue::Integer(limit.into()));
        args.push(SqlValue::Integer(query.offset.into()));
        // SQLite orders NULL lowest, so DESC puts unscored properties last; id breaks ties stably.
        sql.push_str(&format!(
            " ORDER BY p.score_uplift DESC, p.id LIMIT ?{} OFFSET ?{}",
            args.len() - 1,
            args.len()
        ));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(params_from_iter(args), |r| {
                Ok(RankedProperty {
                    property: rows::property_from_row(r)?,
                    uplift: r.get(17)?,
                    p_treat: r.get(18)?,
                    p_hold: r.get(19)?,
                    model_version: r.get(20)?,
                    latest_decision: rows::parsed_opt(r, 21)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// How many properties the query's filters match (its limit and offset are ignored).
    pub fn property_count(&self, query: &PropertyQuery) -> StoreResult<i64> {
        let mut sql = String::from("SELECT count(*) FROM properties p WHERE 1 = 1");
        let mut args: Vec<SqlValue> = Vec::new();
        push_filters(query, &mut sql, &mut args);
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(params_from_iter(args), |r| r.get(0))?)
    }

    /// A storm's territories (every storm's when `storm` is None), by name.
    pub fn territories(&self, storm: Option<StormId>) -> StoreResult<Vec<Territory>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, storm_id, name, crew_id FROM territories WHERE ?1 IS NULL OR storm_id = ?1 ORDER BY name, id",
        )?;
        let rows = stmt.query_map([storm.map(|s| s.to_string())], |r| {
            Ok(Territory {
                id: rows::parsed(r, 0)?,
                storm_id: rows::parsed(r, 1)?,
                name: r.get(2)?,
                crew_id: rows::parsed_opt(r, 3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The tenant's users as last pulled from the server (empty before the first pull), by name.
    pub fn cached_users(&self) -> StoreResult<Vec<User>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, email, name, role, crew_id FROM users ORDER BY name, id")?;
        let rows = stmt.query_map([], |r| {
            Ok(User {
                id: rows::parsed(r, 0)?,
                email: r.get(1)?,
                name: r.get(2)?,
                role: rows::parsed(r, 3)?,
                crew_id: rows::parsed_opt(r, 4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The tenant's crews as last pulled from the server (empty before the first pull), by name.
    pub fn cached_crews(&self) -> StoreResult<Vec<Crew>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, name, chief_id FROM crews ORDER BY name, id")?;
        let rows = stmt.query_map([], |r| {
            Ok(Crew {
                id: rows::parsed(r, 0)?,
                name: r.get(1)?,
                chief_id: rows::parsed_opt(r, 2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One property with its field clocks' owner fields, if present.
    pub fn property(&self, id: PropertyId) -> StoreResult<Option<Property>> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {PROPERTY_COLUMNS} FROM properties WHERE id = ?1"
            ))?
            .query_row([id.to_string()], rows::property_from_row)
            .optional()?)
    }

    /// Finds a property by its external id within a storm.
    pub fn property_by_external_id(
        &self,
        storm: StormId,
        external_id: &str,
    ) -> StoreResult<Option<Property>> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {PROPERTY_COLUMNS} FROM properties WHERE storm_id = ?1 AND external_id = ?2"
            ))?
            .query_row(
                params![storm.to_string(), external_id],
                rows::property_from_row,
            )
            .optional()?)
    }

    /// The storms in the file, newest first.
    pub fn storms(&self) -> StoreResult<Vec<Storm>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM storms ORDER BY started_at DESC, id")?;
        let ids: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut storms = Vec::with_capacity(ids.len());
        for id in ids {
            let uuid = id
                .parse()
                .map_err(|_| StoreError::Decode(format!("bad storm id {id}")))?;
            if let Some((storm, _)) = <Storm as rows::MutableRecord>::load(&self.conn, &uuid)? {
                storms.push(storm);
            }
        }
        Ok(storms)
    }

    /// A property's uplift score, if scored.
    pub fn score(&self, property: PropertyId) -> StoreResult<Option<UpliftScore>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT property_id, storm_id, uplift, p_treat, p_hold, model_version, trained_at, data_watermark FROM uplift_scores WHERE property_id = ?1",
            )?
            .query_row([property.to_string()], rows::score_from_row)
            .optional()?)
    }

    /// A property's touches, outcomes and decisions merged by time (oldest first).
    pub fn timeline(&self, property: PropertyId) -> StoreResult<Vec<TimelineEntry>> {
        let id = property.to_string();
        let mut entries: Vec<TimelineEntry> = Vec::new();
        // Touches keep their ids as 16 bytes (migration 0007).
        let mut stmt = self.conn.prepare_cached(TIMELINE_TOUCHES)?;
        for touch in stmt.query_map([rows::id_bytes(&property.0)], rows::touch_from_row)? {
            entries.push(TimelineEntry::Touch(touch?));
        }
        let mut stmt =
            self.conn.prepare_cached("SELECT id, property_id, storm_id, converted, contract_value_cents, occurred_at FROM outcomes WHERE property_id = ?1")?;
        for outcome in stmt.query_map([&id], rows::outcome_from_row)? {
            entries.push(TimelineEntry::Outcome(outcome?));
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, property_id, storm_id, decision, mode, uplift_score, model_version, reason, is_override, decided_by, decided_at
               FROM policy_decisions WHERE property_id = ?1",
        )?;
        for decision in stmt.query_map([&id], rows::decision_from_row)? {
            entries.push(TimelineEntry::Decision(decision?));
        }
        // Same instant: the decision came first, then the touch, then its outcome.
        let rank = |e: &TimelineEntry| match e {
            TimelineEntry::Decision(_) => 0,
            TimelineEntry::Touch(_) => 1,
            TimelineEntry::Outcome(_) => 2,
        };
        entries.sort_by_key(|e| (e.at(), rank(e)));
        Ok(entries)
    }

    /// A crew's day (UTC): touches per user by channel and result, signed contracts, conversions.
    /// `crew` = None summarises every user.
    pub fn crew_day(&self, crew: Option<CrewId>, day: &str) -> StoreResult<CrewDaySummary> {
        let (start, end) = utc_day_range(day)?;
        // The (UTC hour, property) index's first column (migration 0011), as SQLite computes it: integer
        // division truncates toward zero, so an hour before 1970 spans two of its values.
        let (first_hour, last_hour) = (start / MILLIS_PER_HOUR, (end - 1) / MILLIS_PER_HOUR);
        let crew_text = crew.map(|c| c.to_string());
        // A touch's ids are 16-byte blobs (migration 0007), the other tables' ids text: `unhex` turns
        // the few crew members' ids into blobs, so the touches' own columns are compared as stored.
        let crew_filter = "(?3 IS NULL OR t.user_id IN (SELECT unhex(replace(id, '-', '')) FROM users WHERE crew_id = ?3))";
        let mut users: BTreeMap<String, UserDay> = BTreeMap::new();
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT t.user_id, t.channel, t.result, count(*) FROM journey_touches t
              WHERE t.occurred_at / 3600000 BETWEEN ?4 AND ?5 AND t.occurred_at >= ?1 AND t.occurred_at < ?2 AND {crew_filter}
              GROUP BY t.user_id, t.channel, t.result"
        ))?;
        let groups =
            stmt.query_map(params![start, end, crew_text, first_hour, last_hour], |r| {
                Ok((
                    rows::uuid_blob(r, 0)?.to_string(),
                    touch_columns::channel_at(r, 1)?,
                    touch_columns::result_at(r, 2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?;
        let mut total = 0;
        for group in groups {
            let (user, channel, result, n) = group?;
            let entry = users.entry(user.clone()).or_insert_with(|| UserDay {
                user_id: user,
                ..UserDay::default()
            });
            entry.touches += n;
            *entry
                .by_channel
                .entry(channel.as_str().to_owned())
                .or_default() += n;
            *entry
                .by_result
                .entry(result.as_str().to_owned())
                .or_default() += n;
            if result == TouchResult::Signed || channel == Channel::ContractSigned {
                entry.signed += n;
            }
            total += n;
        }
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT t.user_id, count(DISTINCT t.property_id), u.name FROM journey_touches t LEFT JOIN users u ON unhex(replace(u.id, '-', '')) = t.user_id
              WHERE t.occurred_at / 3600000 BETWEEN ?4 AND ?5 AND t.occurred_at >= ?1 AND t.occurred_at < ?2 AND {crew_filter} GROUP BY t.user_id"
        ))?;
        for row in stmt.query_map(params![start, end, crew_text, first_hour, last_hour], |r| {
            Ok((
                rows::uuid_blob(r, 0)?.to_string(),
                r.get::<_, i64>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })? {
            let (user, properties, name) = row?;
            if let Some(entry) = users.get_mut(&user) {
                entry.properties = properties;
                entry.user_name = name;
            }
        }
        let (conversions, value): (i64, i64) = self.conn.prepare_cached(&format!(
            "SELECT count(*), coalesce(sum(o.contract_value_cents), 0) FROM outcomes o
              WHERE o.converted = 1 AND o.occurred_at >= ?1 AND o.occurred_at < ?2
                AND (?3 IS NULL OR unhex(replace(o.property_id, '-', '')) IN (SELECT t.property_id FROM journey_touches t WHERE {crew_filter}))"
        ))?
        .query_row(params![start, end, crew_text], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(CrewDaySummary {
            day: day.to_owned(),
            crew_id: crew,
            touches: total,
            users: users.into_values().collect(),
            conversions,
            contract_value: Cents(value),
        })
    }

    /// How many records of each kind the file holds.
    pub fn record_counts(&self) -> StoreResult<RecordCounts> {
        Ok(self.conn.query_row(
            "SELECT (SELECT count(*) FROM storms), (SELECT count(*) FROM properties),
                    (SELECT count(*) FROM properties WHERE score_uplift IS NOT NULL), (SELECT count(*) FROM journey_touches),
                    (SELECT count(*) FROM outcomes), (SELECT count(*) FROM policy_decisions)",
            [],
            |r| Ok(RecordCounts { storms: r.get(0)?, properties: r.get(1)?, scored_properties: r.get(2)?, touches: r.get(3)?, outcomes: r.get(4)?, decisions: r.get(5)? }),
        )?)
    }
}
