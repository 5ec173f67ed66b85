//! Applying a pulled page: every record of the page and the new cursor and watermark in ONE local
//! transaction, so a crash leaves either the whole page or none of it. Mutable records are merged per
//! field with the shared rule, and this laptop's pending writes win until the server acknowledges them.

use domain::*;
use rusqlite::{Connection, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
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

/// A pulled change whose record and field clocks are still the JSON text the server sent (the sync
/// engine's form: a first sync's pages hold hundreds of thousands of records, and decoding each straight
/// into its typed record skips building and walking a JSON tree for it).
#[derive(Debug, Clone, Copy)]
pub struct PulledText<'a> {
    pub entity: Entity,
    pub entity_id: Uuid,
    pub op: ChangeOp,
    pub record: &'a str,
    pub field_clocks: Option<&'a str>,
}

/// Why a pulled record was skipped, as plain text.
enum Skip {
    Invalid(String),
}

type Applied = Result<(), Skip>;

/// One pulled change, typed (a [`PulledChange`]) or as text (a [`PulledText`]): what the apply needs of it.
trait Pulled {
    fn entity(&self) -> Entity;
    fn entity_id(&self) -> Uuid;
    fn op(&self) -> ChangeOp;
    /// The record decoded as its domain type.
    fn decode<T: DeserializeOwned>(&self) -> Result<T, Skip>;
    /// The record as a JSON object, for the per-field merge.
    fn fields(&self) -> Result<Map<String, Value>, Skip>;
    /// The record's field clocks (none for records without them).
    fn clocks(&self) -> Result<FieldClocks, Skip>;
}

fn malformed(e: serde_json::Error) -> Skip {
    Skip::Invalid(format!("malformed record: {e}"))
}

impl Pulled for PulledChange {
    fn entity(&self) -> Entity {
        self.entity
    }
    fn entity_id(&self) -> Uuid {
        self.entity_id
    }
    fn op(&self) -> ChangeOp {
        self.op
    }
    fn decode<T: DeserializeOwned>(&self) -> Result<T, Skip> {
        // By reference: no copy of the tree.
        T::deserialize(&self.record).map_err(malformed)
    }
    fn fields(&self) -> Result<Map<String, Value>, Skip> {
        match &self.record {
            Value::Object(map) => Ok(map.clone()),
            _ => Err(Skip::Invalid("the record is not an object".into())),
        }
    }
    fn clocks(&self) -> Result<FieldClocks, Skip> {
        Ok(self.field_clocks.clone().unwrap_or_default())
    }
}

impl Pulled for PulledText<'_> {
    fn entity(&self) -> Entity {
        self.entity
    }
    fn entity_id(&self) -> Uuid {
        self.entity_id
    }
    fn op(&self) -> ChangeOp {
        self.op
    }
    fn decode<T: DeserializeOwned>(&self) -> Result<T, Skip> {
        serde_json::from_str(self.record).map_err(malformed)
    }
    fn fields(&self) -> Result<Map<String, Value>, Skip> {
        match serde_json::from_str::<Value>(self.record).map_err(malformed)? {
            Value::Object(map) => Ok(map),
            _ => Err(Skip::Invalid("the record is not an object".into())),
        }
    }
    fn clocks(&self) -> Result<FieldClocks, Skip> {
        match self.field_clocks {
            None | Some("null") => Ok(FieldClocks::new()),
            Some(text) => serde_json::from_str(text)
                .map_err(|e| Skip::Invalid(format!("malformed field clocks: {e}"))),
        }
    }
}

fn valid<T: Validate>(record: T, now: Timestamp) -> Result<T, Skip> {
    record
        .validate(now)
        .map_err(|e| Skip::Invalid(format!("{}: {e}", e.stable_code())))?;
    Ok(record)
}

/// The page's newest field clock, which later local writes must order after.
#[derive(Default)]
struct NewestClock(Option<Hlc>);

impl NewestClock {
    fn see(&mut self, clocks: &FieldClocks) {
        if let Some(newest) = clocks.values().max().copied() {
            self.0 = self.0.max(Some(newest));
        }
    }
}

fn merge_mutable<R: MutableRecord>(
    conn: &Connection,
    pulled: &impl Pulled,
    now: Timestamp,
    pending: &mut PendingKinds,
    newest: &mut NewestClock,
) -> StoreResult<Applied> {
    let id = pulled.entity_id();
    let local = R::load(conn, &id)?;
    let pending_writes = if pending.has_pending(conn, R::ENTITY)? {
        pending_field_writes(conn, R::ENTITY, &id)?
    } else {
        Vec::new()
    };
    let pulled_clocks = match pulled.clocks() {
        Ok(clocks) => clocks,
        Err(skip) => return Ok(Err(skip)),
    };
    newest.see(&pulled_clocks);
    let (merged, clocks): (R, FieldClocks) = if local.is_none() && pending_writes.is_empty() {
        // Nothing here to merge with (the first sync, a record new to this laptop): joining the pulled
        // record with nothing and overlaying no pending write yields the pulled record and its clocks
        // unchanged, so they are decoded directly instead of through the generic merge's copies.
        match pulled.decode().and_then(|r| valid(r, now)) {
            Ok(record) => (record, pulled_clocks),
            Err(skip) => return Ok(Err(skip)),
        }
    } else {
        let pulled_record = match pulled.fields() {
            Ok(fields) => fields,
            Err(skip) => return Ok(Err(skip)),
        };
        let (mut record, mut clocks) = match local {
            Some((local, local_clocks)) => join_records(
                &to_map(&local)?,
                &local_clocks,
                &pulled_record,
                &pulled_clocks,
            ),
            None => (pulled_record, pulled_clocks),
        };
        overlay_pending(&mut record, &mut clocks, &pending_writes);
        match R::deserialize(&Value::Object(record))
            .map_err(malformed)
            .and_then(|r| valid(r, now))
        {
            Ok(merged) => (merged, clocks),
            Err(skip) => return Ok(Err(skip)),
        }
    };
    if merged.record_id() != id {
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
    pulled: &impl Pulled,
    now: Timestamp,
    write: impl FnOnce(&Connection, &R) -> StoreResult<()>,
) -> StoreResult<Applied> {
    match pulled.decode::<R>().and_then(|r| valid(r, now)) {
        Ok(record) => {
            write(conn, &record)?;
            Ok(Ok(()))
        }
        Err(skip) => Ok(Err(skip)),
    }
}

fn apply_one(
    conn: &Connection,
    pulled: &impl Pulled,
    now: Timestamp,
    pending: &mut PendingKinds,
    newest: &mut NewestClock,
) -> StoreResult<Applied> {
    match pulled.entity() {
        Entity::Storm => merge_mutable::<Storm>(conn, pulled, now, pending, newest),
        Entity::Property => merge_mutable::<Property>(conn, pulled, now, pending, newest),
        Entity::Territory => merge_mutable::<Territory>(conn, pulled, now, pending, newest),
        Entity::User => merge_mutable::<User>(conn, pulled, now, pending, newest),
        Entity::Crew => merge_mutable::<Crew>(conn, pulled, now, pending, newest),
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

/// The order a page is applied in: its uplift scores first, then everything else, each group in page
/// order. Records of different kinds never depend on one another's order (each kind's rows keep
/// theirs), but a property row carries its score as the rank column: a property written after its
/// score picks the score up as it is inserted, whereas a score written after its property must rewrite
/// the property row and move its two rank-index entries. On a first sync, where the feed interleaves
/// properties and their scores, this halves those rewrites.
fn apply_order(entities: impl Iterator<Item = Entity>) -> Vec<usize> {
    let entities: Vec<Entity> = entities.collect();
    let mut order: Vec<usize> = Vec::with_capacity(entities.len());
    order.extend((0..entities.len()).filter(|i| entities[*i] == Entity::UpliftScore));
    order.extend((0..entities.len()).filter(|i| entities[*i] != Entity::UpliftScore));
    order
}

impl TenantStore {
    /// Applies one pulled page and stores `cursor` and `watermark` with it, in one transaction.
    pub fn apply_pulled_page(
        &mut self,
        changes: &[PulledChange],
        cursor: &str,
        watermark: i64,
    ) -> StoreResult<PullReport> {
        self.apply_page(changes, cursor, watermark)
    }

    /// [`TenantStore::apply_pulled_page`] for records still in the JSON text the server sent.
    pub fn apply_pulled_text(
        &mut self,
        changes: &[PulledText<'_>],
        cursor: &str,
        watermark: i64,
    ) -> StoreResult<PullReport> {
        self.apply_page(changes, cursor, watermark)
    }

    fn apply_page(
        &mut self,
        changes: &[impl Pulled],
        cursor: &str,
        watermark: i64,
    ) -> StoreResult<PullReport> {
        let now = self.wall.now();
        let tx = self.conn.transaction()?;
        let mut report = PullReport::default();
        let mut pending = PendingKinds::default();
        let mut newest = NewestClock::default();
        for i in apply_order(changes.iter().map(Pulled::entity)) {
            let pulled = &changes[i];
            match pulled.op() {
                ChangeOp::Delete => {
                    report.deleted +=
                        rows::delete_record(&tx, pulled.entity(), &pulled.entity_id())?
                }
                ChangeOp::Insert | ChangeOp::Update => {
                    match apply_one(&tx, pulled, now, &mut pending, &mut newest)? {
                        Ok(()) => report.applied += 1,
                        Err(Skip::Invalid(reason)) => report.skipped.push(SkippedRecord {
                            entity: pulled.entity(),
                            entity_id: pulled.entity_id(),
                            reason,
                        }),
                    }
                }
            }
        }
        let mut clock = self.clock.clone();
        if let Some(remote) = newest.0 {
            // Later local writes must order after what the server has seen, however far our wall clock
            // lags: the server refused every reading ahead of its own clock when it was pushed, so
            // pulled readings cannot drag this clock past the tenant's time. (Only a counter overflow
            // fails here; the clock then keeps its own reading.)
            let _ = clock.observe_from_server(remote, now.millis().max(0) as u64);
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

    /// Switches the file into (or out of) the mode for a long pull — a first sync of a large storm:
    /// the write-ahead log is not copied into the database every 1,000 pages (about forty times in a
    /// first sync of 200,000 properties, each copy re-writing the same hot index pages and syncing the
    /// file) but once when the pull ends, and the page cache is four times the usual size so the
    /// indexes the pull writes at random stay decrypted in memory. Leaving the mode checkpoints the log
    /// (truncating it) and restores the usual settings. Durability is unchanged: each page is still
    /// committed to the log with its cursor, and a crash in between leaves a log that the next open
    /// replays as usual. The settings belong to this connection only and are not stored in the file.
    pub fn set_long_pull(&mut self, on: bool) -> StoreResult<()> {
        if on {
            self.conn.execute_batch(&format!(
                "PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -{};",
                4 * crate::CACHE_SIZE_KIB
            ))?;
        } else {
            self.conn.execute_batch(&format!(
                "PRAGMA wal_autocheckpoint = 1000; PRAGMA cache_size = -{};",
                crate::CACHE_SIZE_KIB
            ))?;
            // `wal_checkpoint` answers a row (busy, log pages, checkpointed pages).
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(())
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
