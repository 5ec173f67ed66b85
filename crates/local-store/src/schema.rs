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
    (
        "0005_outbox_references",
        include_str!("../../../migrations/local/0005_outbox_references.sql"),
    ),
    (
        "0006_compact_outbox_ids",
        include_str!("../../../migrations/local/0006_compact_outbox_ids.sql"),
    ),
    (
        "0007_compact_touch_ids",
        include_str!("../../../migrations/local/0007_compact_touch_ids.sql"),
    ),
    (
        "0008_storm_policies",
        include_str!("../../../migrations/local/0008_storm_policies.sql"),
    ),
    (
        "0009_touches_by_day",
        include_str!("../../../migrations/local/0009_touches_by_day.sql"),
    ),
    (
        "0010_scores_without_rowid",
        include_str!("../../../migrations/local/0010_scores_without_rowid.sql"),
    ),
    (
        "0011_lighter_touch_commits",
        include_str!("../../../migrations/local/0011_lighter_touch_commits.sql"),
    ),
    (
        "0012_compact_outbox_rows",
        include_str!("../../../migrations/local/0012_compact_outbox_rows.sql"),
    ),
    (
        "0013_compact_touch_rows",
        include_str!("../../../migrations/local/0013_compact_touch_rows.sql"),
    ),
];

/// The two rank indexes of `properties` (migration 0001), which a first sync builds once at its end instead
/// of inserting each pulled property into them (`TenantStore::set_long_pull`). Spelled as 0001 creates
/// them: SQLite stores the text without `IF NOT EXISTS`, so the schema reads the same either way.
pub(crate) const CREATE_RANK_INDEXES: &str =
    "CREATE INDEX IF NOT EXISTS properties_ranked ON properties (storm_id, score_uplift DESC, id);
CREATE INDEX IF NOT EXISTS properties_ranked_all ON properties (score_uplift DESC, id);";
pub(crate) const DROP_RANK_INDEXES: &str =
    "DROP INDEX IF EXISTS properties_ranked; DROP INDEX IF EXISTS properties_ranked_all;";

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
    // A first sync that stopped before its end (the laptop shut, the app killed) left the rank indexes
    // dropped; they are built again here, before anything can query the file. A no-op when they exist.
    conn.execute_batch(CREATE_RANK_INDEXES)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::params;

    /// A fresh in-memory database migrated up to just before the migration `name`, and that migration's SQL.
    fn just_before(name: &str) -> (Connection, &'static str) {
        let at = MIGRATIONS
            .iter()
            .position(|(listed, _)| *listed == name)
            .expect("the migration is listed");
        let conn = Connection::open_in_memory().expect("memory");
        for (_, sql) in &MIGRATIONS[..at] {
            conn.execute_batch(sql).expect("earlier migrations");
        }
        (conn, MIGRATIONS[at].1)
    }

    /// Applies `migration` in one transaction, as `migrate` does; `name` says which in a failure.
    fn apply(conn: &mut Connection, migration: &str, name: &str) {
        let tx = conn.transaction().expect("tx");
        tx.execute_batch(migration).expect(name);
        tx.commit().expect("commit");
    }

    /// Every row `sql` selects, as its first four columns.
    fn four_columns<A, B, C, D>(conn: &Connection, sql: &str) -> Vec<(A, B, C, D)>
    where
        A: rusqlite::types::FromSql,
        B: rusqlite::types::FromSql,
        C: rusqlite::types::FromSql,
        D: rusqlite::types::FromSql,
    {
        conn.prepare(sql)
            .expect("select")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("read")
    }

    /// 0005 rebuilds the outbox: rows already queued (pending or refused, with their payloads) survive it,
    /// and only an append-only insert may go without a payload afterwards.
    #[test]
    fn migration_0005_keeps_queued_changes() {
        let (mut conn, migration) = just_before("0005_outbox_references");
        conn.execute_batch(
            "INSERT INTO outbox (change_id, hlc, device_id, entity, entity_id, op, payload, state, refused_code, created_at)
             VALUES ('c1', 'h1', 'd', 'journey_touch', 't1', 'insert', '{\"id\":\"t1\"}', 'pending', NULL, 5),
                    ('c2', 'h2', 'd', 'property', 'p1', 'update', '{\"status\":\"won\"}', 'refused', 'unknown_record', 6);",
        )
        .expect("queued rows");
        apply(&mut conn, migration, "0005");
        let rows: Vec<(i64, String, Option<String>, String)> = four_columns(
            &conn,
            "SELECT seq, change_id, payload, state FROM outbox ORDER BY seq",
        );
        assert_eq!(
            rows,
            [
                (
                    1,
                    "c1".into(),
                    Some("{\"id\":\"t1\"}".into()),
                    "pending".into()
                ),
                (
                    2,
                    "c2".into(),
                    Some("{\"status\":\"won\"}".into()),
                    "refused".into()
                ),
            ]
        );
        let insert = |entity: &str, op: &str| {
            conn.execute(
                "INSERT INTO outbox (change_id, hlc, device_id, entity, entity_id, op, payload, created_at)
                 VALUES (?1, 'h3', 'd', ?2, 'x', ?3, NULL, 7)",
                [format!("{entity}-{op}").as_str(), entity, op],
            )
        };
        insert("outcome", "insert").expect("an append-only insert refers to its record");
        assert!(
            insert("property", "insert").is_err(),
            "a mutable record keeps its payload"
        );
        assert!(
            insert("outcome", "delete").is_err(),
            "only inserts refer to the record"
        );
    }

    /// 0006 stores the outbox's ids as their 16 bytes and this device's id as NULL: queued rows keep
    /// their order, state and payloads, and another device's id (none is written, but a file may hold
    /// one) stays as it was.
    #[test]
    fn migration_0006_compacts_queued_changes() {
        let (mut conn, migration) = just_before("0006_compact_outbox_ids");
        let (change, entity, own, other) = (
            uuid::Uuid::now_v7(),
            uuid::Uuid::now_v7(),
            uuid::Uuid::now_v7(),
            uuid::Uuid::now_v7(),
        );
        crate::rows::fixtures::meta_of_device(&conn, domain::DeviceId(own));
        conn.execute(
            "INSERT INTO outbox (change_id, hlc, device_id, entity, entity_id, op, payload, state, created_at)
             VALUES (?1, 'h1', ?2, 'journey_touch', ?3, 'insert', NULL, 'pending', 5),
                    ('00000000-0000-7000-8000-000000000002', 'h2', ?4, 'property', ?3, 'update', '{}', 'refused', 6)",
            [change.to_string(), own.to_string(), entity.to_string(), other.to_string()],
        )
        .expect("queued rows");
        apply(&mut conn, migration, "0006");
        type Row = (
            i64,
            Vec<u8>,
            Option<String>,
            Vec<u8>,
            Option<String>,
            String,
        );
        let rows: Vec<Row> = conn
            .prepare("SELECT seq, change_id, device_id, entity_id, payload, state FROM outbox ORDER BY seq")
            .expect("select")
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("read");
        let second = uuid::Uuid::parse_str("00000000-0000-7000-8000-000000000002").expect("uuid");
        assert_eq!(
            rows,
            [
                (
                    1,
                    change.as_bytes().to_vec(),
                    None,
                    entity.as_bytes().to_vec(),
                    None,
                    "pending".into()
                ),
                (
                    2,
                    second.as_bytes().to_vec(),
                    Some(other.to_string()),
                    entity.as_bytes().to_vec(),
                    Some("{}".into()),
                    "refused".into()
                ),
            ]
        );
    }
    /// 0007 stores a touch's five ids as their 16 bytes: touches already in the file keep their rowid
    /// and every other column, and a row whose id is not a UUID stops the migration instead of being lost.
    #[test]
    fn migration_0007_converts_stored_touches() {
        let (conn, migration) = just_before("0007_compact_touch_ids");
        let ids: Vec<uuid::Uuid> = (0..5).map(|_| uuid::Uuid::now_v7()).collect();
        conn.execute(
            "INSERT INTO journey_touches (rowid, id, property_id, storm_id, user_id, device_id, channel, result, notes, occurred_at)
             VALUES (42, ?1, ?2, ?3, ?4, ?5, 'door_knock', 'no_answer', 'north slope', 1700000000000)",
            rusqlite::params_from_iter(ids.iter().map(|id| id.to_string())),
        )
        .expect("a touch written before 0007");
        conn.execute_batch(migration).expect("0007");
        type Row = (
            i64,
            Vec<u8>,
            Vec<u8>,
            Vec<u8>,
            Vec<u8>,
            Vec<u8>,
            String,
            String,
            String,
            i64,
        );
        let row: Row = conn
            .query_row(
                "SELECT rowid, id, property_id, storm_id, user_id, device_id, channel, result, notes, occurred_at FROM journey_touches",
                [],
                |r| {
                    Ok((
                        r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?,
                        r.get(7)?, r.get(8)?, r.get(9)?,
                    ))
                },
            )
            .expect("converted touch");
        let bytes = |i: usize| ids[i].as_bytes().to_vec();
        assert_eq!(
            row,
            (
                42,
                bytes(0),
                bytes(1),
                bytes(2),
                bytes(3),
                bytes(4),
                "door_knock".into(),
                "no_answer".into(),
                "north slope".into(),
                1_700_000_000_000
            )
        );

        let (mut damaged, _) = just_before("0007_compact_touch_ids");
        damaged
            .execute(
                "INSERT INTO journey_touches (id, property_id, storm_id, user_id, device_id, channel, result, notes, occurred_at)
                 VALUES ('not-a-uuid', ?1, ?1, ?1, ?1, 'door_knock', 'no_answer', '', 0)",
                [ids[0].to_string()],
            )
            .expect("a damaged touch");
        let tx = damaged.transaction().expect("tx");
        assert!(
            tx.execute_batch(migration).is_err(),
            "an id that is not a UUID stops 0007"
        );
        tx.rollback().expect("rollback");
        let kept: String = damaged
            .query_row("SELECT id FROM journey_touches", [], |r| r.get(0))
            .expect("the row is still there");
        assert_eq!(kept, "not-a-uuid");
    }

    /// 0010 rebuilds `uplift_scores` without rowids: stored scores survive it, the rank trigger on a
    /// score's deletion still clears the property's rank, and the primary key still refuses a second
    /// score for the same property and storm.
    #[test]
    fn migration_0010_keeps_stored_scores() {
        let (mut conn, migration) = just_before("0010_scores_without_rowid");
        conn.execute_batch(
            "INSERT INTO properties (id, storm_id, external_id, address, address_search, latitude, longitude, prior_claims,
                                     status, score_uplift)
             VALUES ('p1', 's', 'x1', '1 A St', '1 a st', 1.0, 2.0, 0, 'new', 0.25),
                    ('p2', 's', 'x2', '2 B St', '2 b st', 1.0, 2.0, 0, 'new', 0.5);
             INSERT INTO uplift_scores (property_id, storm_id, uplift, p_treat, p_hold, model_version, trained_at, data_watermark)
             VALUES ('p1', 's', 0.25, 0.6, 0.35, 'm1', 10, 7), ('p2', 's', 0.5, 0.7, 0.2, 'm1', 10, 7);",
        )
        .expect("stored scores");
        apply(&mut conn, migration, "0010");
        let scores = |conn: &Connection| -> Vec<(String, f64, String, i64)> {
            four_columns(
                conn,
                "SELECT property_id, uplift, model_version, data_watermark FROM uplift_scores ORDER BY property_id",
            )
        };
        assert_eq!(
            scores(&conn),
            [
                ("p1".to_owned(), 0.25, "m1".to_owned(), 7),
                ("p2".to_owned(), 0.5, "m1".to_owned(), 7)
            ]
        );
        let without_rowid: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'uplift_scores'",
                [],
                |r| r.get(0),
            )
            .expect("schema");
        assert!(without_rowid.ends_with("WITHOUT ROWID"), "{without_rowid}");
        assert!(
            conn.execute(
                "INSERT INTO uplift_scores VALUES ('p1', 's', 0.9, 0.9, 0.0, 'm2', 11, 8)",
                []
            )
            .is_err(),
            "one score per property and storm"
        );
        conn.execute("DELETE FROM uplift_scores WHERE property_id = 'p2'", [])
            .expect("delete");
        let rank: Option<f64> = conn
            .query_row(
                "SELECT score_uplift FROM properties WHERE id = 'p2'",
                [],
                |r| r.get(0),
            )
            .expect("rank");
        assert_eq!(rank, None, "the delete trigger was created again");
    }
    /// How SQLite runs `sql`: the details of its `EXPLAIN QUERY PLAN`, one line each.
    fn plan(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> String {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain");
        let lines: Vec<String> = stmt
            .query_map(params, |r| r.get::<_, String>(3))
            .expect("plan")
            .collect::<Result<_, _>>()
            .expect("read");
        lines.join("\n")
    }

    /// 0011 indexes touches by (hour, property) and keeps in `outbox_by_record` only the changes whose id
    /// is not their record's. A change queued before it (an append-only insert with its own random id) is
    /// still found by its record, as is one written after it (the record's id as its change id), and
    /// every per-record question is answered through indexes, never by reading the whole outbox.
    #[test]
    fn migration_0011_finds_changes_queued_before_and_after_it_through_indexes() {
        use crate::outbox::OF_RECORD;
        let (mut conn, migration) = just_before("0011_lighter_touch_commits");
        let (old_touch, old_change) = ([1u8; 16], [2u8; 16]);
        conn.execute(
            "INSERT INTO outbox (change_id, hlc, entity, entity_id, op, payload, created_at)
             VALUES (?1, 'h1', 'journey_touch', ?2, 'insert', NULL, 5)",
            [&old_change[..], &old_touch[..]],
        )
        .expect("a change queued before 0011");
        apply(&mut conn, migration, "0011");
        let new_touch = [3u8; 16];
        conn.execute(
            "INSERT INTO outbox (change_id, hlc, entity, entity_id, op, payload, created_at)
             VALUES (?1, 'h2', 'journey_touch', ?1, 'insert', NULL, 6)",
            [&new_touch[..]],
        )
        .expect("a change written after 0011");
        let indexed: i64 = conn
            .query_row("SELECT count(*) FROM outbox INDEXED BY outbox_by_record WHERE entity = 'journey_touch' AND change_id IS NOT entity_id", [], |r| r.get(0))
            .expect("count");
        assert_eq!(indexed, 1, "only the older change has an entry");
        let of_record = format!("SELECT seq FROM outbox WHERE {OF_RECORD}");
        for (touch, seq) in [(old_touch, 1), (new_touch, 2)] {
            let found: Vec<i64> = conn
                .prepare(&of_record)
                .expect("select")
                .query_map(params!["journey_touch", &touch[..]], |r| r.get(0))
                .expect("rows")
                .collect::<Result<_, _>>()
                .expect("read");
            assert_eq!(found, [seq]);
        }
        let none: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM outbox WHERE {OF_RECORD}"),
                params!["outcome", &new_touch[..]],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(none, 0, "the entity is part of the record's name");
        let by_record = plan(&conn, &of_record, params!["journey_touch", &new_touch[..]]);
        assert!(!by_record.contains("SCAN"), "{by_record}");
        assert!(
            by_record.contains("sqlite_autoindex_outbox_1"),
            "{by_record}"
        );
        assert!(by_record.contains("outbox_by_record"), "{by_record}");
        let pending_kind = plan(
            &conn,
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE entity = ?1 AND state = 'pending' AND change_id IS NOT entity_id)",
            ["property"],
        );
        assert!(pending_kind.contains("outbox_by_record"), "{pending_kind}");
        let timeline = plan(
            &conn,
            crate::queries::TIMELINE_TOUCHES,
            params![&new_touch[..]],
        );
        assert!(
            timeline.contains("SEARCH t USING INDEX journey_touches_by_hour"),
            "{timeline}"
        );
        assert!(!timeline.contains("SCAN t"), "{timeline}");
    }

    /// 0012 stores the outbox's clock reading, entity, operation and state compactly: rows queued before
    /// it keep their order, payloads and refusals, and read back as the same readings, entities and
    /// operations; the readings' blobs sort as their text did.
    #[test]
    fn migration_0012_compacts_queued_changes() {
        use crate::outbox_columns::{entity_from_code, hlc_from_bytes, op_from_code};
        use domain::Hlc;
        let (mut conn, migration) = just_before("0012_compact_outbox_rows");
        let readings = [
            Hlc::new(1_796_116_311_633, 99_999, 0x8612_c359_c7dd_ae00),
            Hlc::new(1_796_116_311_634, 0, 1),
            Hlc::new(1_796_116_311_634, 7, u64::MAX),
        ];
        let rows = [
            ("journey_touch", "insert", None, "pending", None),
            (
                "property",
                "update",
                Some("{\"status\":\"won\"}"),
                "refused",
                Some("stale"),
            ),
            ("storm_policy", "delete", Some("null"), "pending", None),
        ];
        for (i, (hlc, (entity, op, payload, state, code))) in readings.iter().zip(rows).enumerate()
        {
            let id = [i as u8 + 1; 16];
            conn.execute(
                "INSERT INTO outbox (change_id, hlc, entity, entity_id, op, payload, state, refused_code, created_at)
                 VALUES (?1, ?2, ?3, ?1, ?4, ?5, ?6, ?7, 5)",
                params![&id[..], hlc.to_string(), entity, op, payload, state, code],
            )
            .expect("a change queued before 0012");
        }
        apply(&mut conn, migration, "0012");
        type Stored = (i64, Vec<u8>, i64, i64, Option<String>, i64, Option<String>);
        let stored: Vec<Stored> = conn
            .prepare("SELECT seq, hlc, entity, op, payload, state, refused_code FROM outbox ORDER BY hlc")
            .expect("select")
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            })
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("read");
        assert_eq!(stored.len(), 3);
        for (i, (seq, hlc, entity, op, payload, state, code)) in stored.into_iter().enumerate() {
            let (entity_name, op_name, old_payload, old_state, old_code) = rows[i];
            assert_eq!(seq, i as i64 + 1, "the blobs sort as the readings");
            assert_eq!(hlc_from_bytes(&hlc), Some(readings[i]));
            assert_eq!(
                entity_from_code(entity).map(|e| e.as_str()),
                Some(entity_name)
            );
            assert_eq!(op_from_code(op).map(|o| o.as_str()), Some(op_name));
            assert_eq!(payload.as_deref(), old_payload);
            assert_eq!(state, i64::from(old_state == "refused"));
            assert_eq!(code.as_deref(), old_code);
        }
        let refused = plan(
            &conn,
            "SELECT seq FROM outbox WHERE state = 1 ORDER BY refused_at, seq",
            [],
        );
        assert!(refused.contains("outbox_refused"), "{refused}");
        assert!(
            conn.execute(
                "INSERT INTO outbox (change_id, hlc, entity, entity_id, op, payload, created_at)
                 VALUES (?1, ?2, 2, ?1, 0, NULL, 6)",
                params![&[9u8; 16][..], &[0u8; 17][..]],
            )
            .is_err(),
            "only an append-only insert goes without a payload"
        );
    }

    /// 0013 stores a touch's channel and result as numbers and its device as NULL when it is the file's
    /// own: touches logged before it keep their rowids and read back as they were written, through the
    /// statements that read touches; a word without a number stops the migration instead of losing a
    /// touch.
    #[test]
    fn migration_0013_compacts_logged_touches() {
        use domain::*;
        let (mut conn, migration) = just_before("0013_compact_touch_rows");
        let (own, other) = (DeviceId::generate(), DeviceId::generate());
        crate::rows::fixtures::meta_of_device(&conn, own);
        let property = PropertyId::generate();
        let touches: Vec<JourneyTouch> = [
            (own, Channel::DoorKnock, TouchResult::NoAnswer),
            (other, Channel::ContractSigned, TouchResult::Declined),
            (own, Channel::Inspection, TouchResult::Left),
        ]
        .into_iter()
        .zip(0..)
        .map(|((device, channel, result), i)| {
            crate::rows::fixtures::touch(i, property, device, channel, result)
        })
        .collect();
        for (i, t) in touches.iter().enumerate() {
            conn.execute(
                "INSERT INTO journey_touches (rowid, id, property_id, storm_id, user_id, device_id, channel, result, notes, occurred_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    10 + i as i64,
                    &t.id.0.as_bytes()[..],
                    &t.property_id.0.as_bytes()[..],
                    &t.storm_id.0.as_bytes()[..],
                    &t.user_id.0.as_bytes()[..],
                    &t.device_id.0.as_bytes()[..],
                    t.channel.as_str(),
                    t.result.as_str(),
                    t.notes,
                    t.occurred_at.millis()
                ],
            )
            .expect("a touch logged before 0013");
        }
        apply(&mut conn, migration, "0013");
        type Stored = (i64, Option<Vec<u8>>, i64, i64);
        let stored: Vec<Stored> = four_columns(
            &conn,
            "SELECT rowid, device_id, channel, result FROM journey_touches ORDER BY rowid",
        );
        assert_eq!(
            stored,
            vec![
                (10, None, 1, 1),
                (11, Some(other.0.as_bytes().to_vec()), 7, 9),
                (12, None, 5, 2)
            ]
        );
        for t in &touches {
            let read = conn
                .query_row(crate::rows::TOUCH_BY_ID, [&t.id.0.as_bytes()[..]], |r| {
                    crate::rows::touch_from_row(r)
                })
                .expect("read back by id");
            assert_eq!(&read, t);
        }
        let timeline: Vec<JourneyTouch> = conn
            .prepare(crate::queries::TIMELINE_TOUCHES)
            .expect("timeline")
            .query_map([&property.0.as_bytes()[..]], crate::rows::touch_from_row)
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("read");
        assert_eq!(timeline, touches);
        let plan = plan(
            &conn,
            crate::queries::TIMELINE_TOUCHES,
            [&property.0.as_bytes()[..]],
        );
        assert!(
            plan.contains("SEARCH t USING INDEX journey_touches_by_hour"),
            "{plan}"
        );

        // A word 0013 gives no number to.
        let (mut conn, migration) = just_before("0013_compact_touch_rows");
        crate::rows::fixtures::meta_of_device(&conn, own);
        conn.execute(
            "INSERT INTO journey_touches (id, property_id, storm_id, user_id, device_id, channel, result, notes, occurred_at)
             VALUES (?1, ?1, ?1, ?1, ?1, 'carrier_pigeon', 'talked', '', 0)",
            [&[3u8; 16][..]],
        )
        .expect("a touch with an unknown channel");
        let tx = conn.transaction().expect("tx");
        assert!(
            tx.execute_batch(migration).is_err(),
            "the unknown word stops 0013"
        );
        drop(tx);
        let kept: i64 = conn
            .query_row(
                "SELECT count(*) FROM journey_touches WHERE channel = 'carrier_pigeon'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(kept, 1, "the touch is still there as it was");
    }
}
