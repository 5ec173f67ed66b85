//! Applying a pulled page: every record of the page and the new cursor and watermark in ONE local
//! transaction, so a crash leaves either the whole page or none of it. Mutable records are merged per
//! field with the shared rule, and this laptop's pending writes win until the server acknowledges them.

use domain::*;
use rusqlite::{Connection, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sync_protocol::{ChangeOp, Entity, FieldClocks, PulledChange, join_records};
use uuid::Uuid;

use crate::error::StoreResult;
use crate::outbox::{overlay_pending, pending_field_writes};
use crate::rows::{self, MutableRecord};
use crate::store::TenantStore;
use crate::writes::{persist_clock, to_map};

/// A pulled record that could not be stored (it stays on the server; the page still applies).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkippedRecord {
    pub entity: Entity,
    pub entity_id: Uuid,
    pub reason: String,
}

/// What a pulled page did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PullReport {
    pub applied: usize,
    pub deleted: usize,
    pub skipped: Vec<SkippedRecord>,
}

/// Where the laptop stands in the server's change stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncState {
    pub cursor: Option<String>,
    pub watermark: Option<i64>,
    pub last_pull_at: Option<Timestamp>,
    pub last_push_at: Option<Timestamp>,
}

/// Why a pulled record was skipped, as plain text.
enum Skip {
    Invalid(String),
}

type Applied = Result<(), Skip>;

/// Decodes a record straight from the pulled JSON (by reference: no copy of the tree).
fn decode<T: DeserializeOwned>(record: &Value) -> Result<T, Skip> {
    T::deserialize(record).map_err(|e| Skip::Invalid(format!("malformed record: {e}")))
}

fn valid<T: Validate>(record: T, now: Timestamp) -> Result<T, Skip> {
    record
        .validate(now)
        .map_err(|e| Skip::Invalid(format!("{}: {e}", e.stable_code())))?;
    Ok(record)
}

fn merge_mutable<R: MutableRecord>(
    conn: &Connection,
    pulled: &PulledChange,
    now: Timestamp,
    pending: &mut PendingKinds,
) -> StoreResult<Applied> {
    let Value::Object(pulled_record) = &pulled.record else {
        return Ok(Err(Skip::Invalid("the record is not an object".into())));
    };
    let local = R::load(conn, &pulled.entity_id)?;
    let pending_writes = if pending.has_pending(conn, R::ENTITY)? {
        pending_field_writes(conn, R::ENTITY, &pulled.entity_id)?
    } else {
        Vec::new()
    };
    let (merged, clocks): (R, FieldClocks) = if local.is_none() && pending_writes.is_empty() {
        // Nothing here to merge with (the first sync, a record new to this laptop): joining the pulled
        // record with nothing and overlaying no pending write yields the pulled record and its clocks
        // unchanged, so they are decoded directly instead of through the generic merge's copies.
        match decode(&pulled.record).and_then(|r| valid(r, now)) {
            Ok(record) => (record, pulled.field_clocks.clone().unwrap_or_default()),
            Err(skip) => return Ok(Err(skip)),
        }
    } else {
        let pulled_clocks = pulled.field_clocks.clone().unwrap_or_default();
        let (mut record, mut clocks) = match local {
            Some((local, local_clocks)) => join_records(
                &to_map(&local)?,
                &local_clocks,
                pulled_record,
                &pulled_clocks,
            ),
            None => (pulled_record.clone(), pulled_clocks),
        };
        overlay_pending(&mut record, &mut clocks, &pending_writes);
        match decode(&Value::Object(record)).and_then(|r| valid(r, now)) {
            Ok(merged) => (merged, clocks),
            Err(skip) => return Ok(Err(skip)),
        }
    };
    if merged.record_id() != pulled.entity_id {
        return Ok(Err(Skip::Invalid(
            "the record's id differs from the change's entity id".into(),
        )));
    }
    merged.upsert(conn, &clocks)?;
    Ok(Ok(()))
}

/// Which kinds of mutable record have pending local writes, asked once per kind and page: when a kind
/// has none (always, on a first sync), no pulled record of it needs the per-record outbox lookup.
/// Applying a page writes nothing to the outbox, so the answer holds for the whole page.
#[derive(Default)]
struct PendingKinds {
    known: Vec<(Entity, bool)>,
}

impl PendingKinds {
    fn has_pending(&mut self, conn: &Connection, entity: Entity) -> StoreResult<bool> {
        if let Some((_, known)) = self.known.iter().find(|(e, _)| *e == entity) {
            return Ok(*known);
        }
        let any: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM outbox WHERE entity = ?1 AND state = 'pending')",
            )?
            .query_row([entity.as_str()], |r| r.get(0))?;
        self.known.push((entity, any));
        Ok(any)
    }
}

fn store_whole<R: DeserializeOwned + Validate>(
    conn: &Connection,
    pulled: &PulledChange,
    now: Timestamp,
    write: impl FnOnce(&Connection, &R) -> StoreResult<()>,
) -> StoreResult<Applied> {
    match decode::<R>(&pulled.record).and_then(|r| valid(r, now)) {
        Ok(record) => {
            write(conn, &record)?;
            Ok(Ok(()))
        }
        Err(skip) => Ok(Err(skip)),
    }
}

fn apply_one(
    conn: &Connection,
    pulled: &PulledChange,
    now: Timestamp,
    pending: &mut PendingKinds,
) -> StoreResult<Applied> {
    match pulled.entity {
        Entity::Storm => merge_mutable::<Storm>(conn, pulled, now, pending),
        Entity::Property => merge_mutable::<Property>(conn, pulled, now, pending),
        Entity::Territory => merge_mutable::<Territory>(conn, pulled, now, pending),
        Entity::User => merge_mutable::<User>(conn, pulled, now, pending),
        Entity::Crew => merge_mutable::<Crew>(conn, pulled, now, pending),
        Entity::JourneyTouch => store_whole::<JourneyTouch>(conn, pulled, now, |c, r| {
            rows::insert_touch(c, r).map(drop)
        }),
        Entity::Outcome => store_whole::<Outcome>(conn, pulled, now, |c, r| {
            rows::insert_outcome(c, r).map(drop)
        }),
        Entity::PolicyDecision => store_whole::<PolicyDecision>(conn, pulled, now, |c, r| {
            rows::insert_decision(c, r).map(drop)
        }),
        Entity::Assignment => store_whole::<Assignment>(conn, pulled, now, rows::upsert_assignment),
        Entity::Experiment => store_whole::<Experiment>(conn, pulled, now, rows::upsert_experiment),
        Entity::ArmAssignment => {
            store_whole::<ArmAssignment>(conn, pulled, now, rows::upsert_arm_assignment)
        }
        Entity::UpliftScore => store_whole::<UpliftScore>(conn, pulled, now, rows::upsert_score),
    }
}

impl TenantStore {
    /// Applies one pulled page and stores `cursor` and `watermark` with it, in one transaction.
    pub fn apply_pulled_page(
        &mut self,
        changes: &[PulledChange],
        cursor: &str,
        watermark: i64,
    ) -> StoreResult<PullReport> {
        let now = self.wall.now();
        let mut clock = self.clock.clone();
        let newest_remote = changes
            .iter()
            .filter_map(|c| c.field_clocks.as_ref())
            .flat_map(FieldClocks::values)
            .max()
            .copied();
        if let Some(remote) = newest_remote {
            // Later local writes must order after what the server has seen; a reading beyond the allowed
            // skew is not adopted (it would drag this clock into the future).
            let _ = clock.observe(remote, now.millis().max(0) as u64);
        }
        let tx = self.conn.transaction()?;
        let mut report = PullReport::default();
        let mut pending = PendingKinds::default();
        for pulled in changes {
            match pulled.op {
                ChangeOp::Delete => {
                    report.deleted += rows::delete_record(&tx, pulled.entity, &pulled.entity_id)?
                }
                ChangeOp::Insert | ChangeOp::Update => {
                    match apply_one(&tx, pulled, now, &mut pending)? {
                        Ok(()) => report.applied += 1,
                        Err(Skip::Invalid(reason)) => report.skipped.push(SkippedRecord {
                            entity: pulled.entity,
                            entity_id: pulled.entity_id,
                            reason,
                        }),
                    }
                }
            }
        }
        tx.execute(
            "UPDATE sync_state SET cursor = ?1, watermark = ?2, last_pull_at = ?3 WHERE singleton = 1",
            params![cursor, watermark, now.millis()],
        )?;
        persist_clock(&tx, clock.last())?;
        tx.commit()?;
        self.clock = clock;
        Ok(report)
    }

    /// The stored cursor, watermark and last sync times.
    pub fn sync_state(&self) -> StoreResult<SyncState> {
        Ok(self.conn.query_row("SELECT cursor, watermark, last_pull_at, last_push_at FROM sync_state WHERE singleton = 1", [], |r| {
            Ok(SyncState {
                cursor: r.get(0)?,
                watermark: r.get(1)?,
                last_pull_at: r.get::<_, Option<i64>>(2)?.map(Timestamp::from_millis),
                last_push_at: r.get::<_, Option<i64>>(3)?.map(Timestamp::from_millis),
            })
        })?)
    }

    /// Stores (or clears) the sync refresh token inside the encrypted file.
    pub fn set_refresh_token(&mut self, token: Option<&str>) -> StoreResult<()> {
        self.conn.execute(
            "UPDATE sync_state SET refresh_token = ?1 WHERE singleton = 1",
            [token],
        )?;
        Ok(())
    }

    /// The stored refresh token, zeroized when dropped.
    pub fn refresh_token(&self) -> StoreResult<Option<zeroize::Zeroizing<String>>> {
        let token: Option<String> = self.conn.query_row(
            "SELECT refresh_token FROM sync_state WHERE singleton = 1",
            [],
            |r| r.get(0),
        )?;
        Ok(token.map(zeroize::Zeroizing::new))
    }
}
