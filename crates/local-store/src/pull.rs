//! Applying a pulled page: every record of the page and the new cursor and watermark in ONE local
//! transaction, so a crash leaves either the whole page or none of it. Mutable records are merged per
//! field with the shared rule, and this laptop's pending writes win until the server acknowledges them.

use std::any::Any;
use std::cell::Cell;
use std::collections::BTreeMap;

use domain::*;
use rusqlite::{Connection, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sync_protocol::{ChangeOp, Entity, FieldClocks, PulledChange, join_records};
use uuid::Uuid;

use crate::error::StoreResult;
use crate::multi_row::ROWS_PER_STATEMENT;
use crate::outbox::{overlay_pending, pending_field_writes};
use crate::outbox_columns;
use crate::rows::{self, MutableRecord, clocks_to_text};
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

/// A record's field clocks in their stored text form, with the newest of them.
type ClockText = Result<(String, Option<Hlc>), Skip>;

/// One pulled change, typed (a [`PulledChange`]) or as text (a [`PulledText`]): what the apply needs of it.
trait Pulled {
    fn entity(&self) -> Entity;
    fn entity_id(&self) -> Uuid;
    fn op(&self) -> ChangeOp;
    /// The record decoded as its domain type.
    fn decode<T: DeserializeOwned + 'static>(&self) -> Result<T, Skip>;
    /// The record as a JSON object, for the per-field merge.
    fn fields(&self) -> Result<Map<String, Value>, Skip>;
    /// The record's field clocks (none for records without them).
    fn clocks(&self) -> Result<FieldClocks, Skip>;
    /// The record's field clocks in their stored text form, with the newest of them: what a record new
    /// to this laptop is written with.
    fn stored_clocks(&self) -> ClockText {
        let clocks = self.clocks()?;
        let text = clocks_to_text(&clocks).map_err(|e| Skip::Invalid(e.to_string()))?;
        Ok((text, clocks.values().max().copied()))
    }
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
    fn decode<T: DeserializeOwned + 'static>(&self) -> Result<T, Skip> {
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
    fn decode<T: DeserializeOwned + 'static>(&self) -> Result<T, Skip> {
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
    fn stored_clocks(&self) -> ClockText {
        match self.field_clocks.and_then(grouped_clock_text) {
            Some(grouped) => Ok(grouped),
            None => {
                let clocks = self.clocks()?;
                let text = clocks_to_text(&clocks).map_err(|e| Skip::Invalid(e.to_string()))?;
                Ok((text, clocks.values().max().copied()))
            }
        }
    }
}

/// The stored (grouped) text of field clocks sent per field, `{"field":"<hlc>",…}`, read as borrowed
/// text: a pulled record carries one clock per field, but a record written in one go (every record of a
/// first sync) has the same clock on all of them, so its clock is parsed once instead of once per field,
/// and no map of owned field names is built only to be grouped and printed again. `None` for anything
/// less plain (escaped text, a clock not in its canonical form, not an object): the caller then takes the
/// general path, which gives the same text or the precise error.
fn grouped_clock_text(text: &str) -> Option<(String, Option<Hlc>)> {
    let per_field: BTreeMap<&str, &str> = serde_json::from_str(text).ok()?;
    // Keyed by the clock's text, which sorts like the clock in its canonical form (checked below), so
    // the groups come out in `clocks_to_text`'s order; fields keep the map's sorted order within a group.
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (field, hlc) in &per_field {
        groups.entry(*hlc).or_default().push(*field);
    }
    let mut newest = None;
    for hlc_text in groups.keys() {
        let hlc = Hlc::parse(hlc_text).ok()?;
        if hlc.to_string() != *hlc_text {
            return None;
        }
        newest = newest.max(Some(hlc));
    }
    Some((serde_json::to_string(&groups).ok()?, newest))
}

/// What the decoding thread made of one pulled change ahead of its write (see [`TenantStore::apply_page`]):
/// the record as its domain type (a boxed `Result<T, Skip>`), and a mutable record's clocks in their
/// stored form. Only the kinds a large page is made of are decoded ahead; the others, and anything the
/// write asks for in another form (a record that must be merged), are decoded where they are written.
#[derive(Default)]
struct Decoded {
    record: Option<Box<dyn Any + Send>>,
    clocks: Option<ClockText>,
}

fn decode_ahead(pulled: &impl Pulled) -> Decoded {
    if !matches!(pulled.op(), ChangeOp::Insert | ChangeOp::Update) {
        return Decoded::default();
    }
    match pulled.entity() {
        Entity::Property => Decoded {
            record: Some(Box::new(pulled.decode::<Property>())),
            clocks: Some(pulled.stored_clocks()),
        },
        Entity::UpliftScore => Decoded {
            record: Some(Box::new(pulled.decode::<UpliftScore>())),
            clocks: None,
        },
        _ => Decoded::default(),
    }
}

/// A pulled change with what was decoded of it ahead: each part is used once, by the first call that
/// asks for it in that form; every other call goes to the change itself.
struct Ahead<'p, P> {
    pulled: &'p P,
    record: Cell<Option<Box<dyn Any + Send>>>,
    clocks: Cell<Option<ClockText>>,
}

impl<'p, P: Pulled> Ahead<'p, P> {
    fn new(pulled: &'p P, decoded: Decoded) -> Self {
        Self {
            pulled,
            record: Cell::new(decoded.record),
            clocks: Cell::new(decoded.clocks),
        }
    }
}

impl<P: Pulled> Pulled for Ahead<'_, P> {
    fn entity(&self) -> Entity {
        self.pulled.entity()
    }
    fn entity_id(&self) -> Uuid {
        self.pulled.entity_id()
    }
    fn op(&self) -> ChangeOp {
        self.pulled.op()
    }
    fn decode<T: DeserializeOwned + 'static>(&self) -> Result<T, Skip> {
        if let Some(record) = self.record.take()
            && let Ok(decoded) = record.downcast::<Result<T, Skip>>()
        {
            return *decoded;
        }
        self.pulled.decode()
    }
    fn fields(&self) -> Result<Map<String, Value>, Skip> {
        self.pulled.fields()
    }
    fn clocks(&self) -> Result<FieldClocks, Skip> {
        self.pulled.clocks()
    }
    fn stored_clocks(&self) -> ClockText {
        match self.clocks.take() {
            Some(clocks) => clocks,
            None => self.pulled.stored_clocks(),
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
        self.see_one(clocks.values().max().copied());
    }
    fn see_one(&mut self, newest: Option<Hlc>) {
        self.0 = self.0.max(newest);
    }
}

fn merge_mutable<R: MutableRecord + 'static>(
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
    if local.is_none() && pending_writes.is_empty() {
        // Nothing here to merge with (the first sync, a record new to this laptop): joining the pulled
        // record with nothing and overlaying no pending write yields the pulled record and its clocks
        // unchanged, so they are decoded directly instead of through the generic merge's copies, and
        // the clocks go straight to their stored text.
        let (clocks, newest_clock) = match pulled.stored_clocks() {
            Ok(clocks) => clocks,
            Err(skip) => return Ok(Err(skip)),
        };
        newest.see_one(newest_clock);
        let record = match pulled.decode::<R>().and_then(|r| valid(r, now)) {
            Ok(record) => record,
            Err(skip) => return Ok(Err(skip)),
        };
        if record.record_id() != id {
            return Ok(Err(Skip::Invalid(
                "the record's id differs from the change's entity id".into(),
            )));
        }
        record.upsert_clock_text(conn, &clocks)?;
        return Ok(Ok(()));
    }
    let pulled_clocks = match pulled.clocks() {
        Ok(clocks) => clocks,
        Err(skip) => return Ok(Err(skip)),
    };
    newest.see(&pulled_clocks);
    let (merged, clocks): (R, FieldClocks) = {
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
/// Applying a page writes nothing to the outbox, so the answer holds for the whole page. A mutable
/// record's changes never have its id as their change id, so the question is answered from
/// `outbox_by_record`, whose entries are exactly such changes (migration 0011).
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
                "SELECT EXISTS (SELECT 1 FROM outbox WHERE entity = ?1 AND state = 0 AND change_id IS NOT entity_id)",
            )?
            .query_row([outbox_columns::entity_code(entity)], |r| r.get(0))?;
        self.known.push((entity, any));
        Ok(any)
    }
}

fn store_whole<R: DeserializeOwned + Validate + 'static>(
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
        Entity::StormPolicy => {
            store_whole::<StormPolicy>(conn, pulled, now, rows::upsert_storm_policy)
        }
    }
}

/// Pages shorter than this (every page of a steady-state sync) are decoded where they are written: a
/// thread for a handful of records would cost more than it saves.
const DECODE_AHEAD_FROM: usize = 512;
/// Records decoded ahead per hand-over between the decoding and the writing thread.
const DECODE_BATCH: usize = 256;

/// The order a page is applied in: its uplift scores, then its properties, then everything else;
/// within each group, the records by kind and id, a record's changes in page order (the sort is
/// stable). Only two kinds write into another kind's rows, and both into a property's: a score sets
/// its property's rank column, a policy decision its latest decision (a trigger). So:
/// - scores go before properties: a property written after its score picks the score up as it is
///   inserted, whereas a score written after its property must rewrite the property row and move its
///   two rank-index entries. The server sends a property and its score together (a transaction's rows
///   in record order; a score's entity id is its property's), so within a page none is rewritten;
/// - decisions go after properties, so the trigger finds the property as the page leaves it (a
///   property new to the laptop picks up its decisions as it is inserted, but an update keeps the row's
///   own);
/// - no other records depend on one another's order, and each record's changes keep theirs;
/// - within a kind, id order: in id order the inserts walk the id-keyed B-trees (properties by id,
///   scores by property) in one direction, and ids are UUIDv7, so a page's records mostly extend them
///   at one end. The server's feed is in record order within each transaction already; a page that
///   spans two transactions holds two runs, and a server before that order (server migration
///   20261202000000) sent a transaction's rows in the order of their random change ids, which put
///   every insert at a random place in a 200,000-entry tree.
fn apply_order(keys: impl Iterator<Item = (Entity, Uuid)>) -> Vec<usize> {
    let keys: Vec<(Entity, Uuid)> = keys.collect();
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| {
        let (entity, id) = keys[i];
        let group = match entity {
            Entity::UpliftScore => 0,
            Entity::Property => 1,
            _ => 2,
        };
        (group, entity.as_str(), id)
    });
    order
}

/// Writes a page's records in apply order. Runs of the records a first sync is made of — uplift scores,
/// and properties while no local write of a property is pending — are collected and written with
/// multi-row statements (crate::multi_row) instead of a statement or two per record; anything else is
/// written as it comes, after what was collected. The outcome is the same as writing each record where it
/// stands: a collected property that turns out to be stored already is merged one by one.
struct PageWriter<'c, 'p, P> {
    conn: &'c Connection,
    changes: &'p [P],
    now: Timestamp,
    report: PullReport,
    pending: PendingKinds,
    newest: NewestClock,
    /// Valid scores not written yet, in apply order.
    scores: Vec<UpliftScore>,
    /// Valid properties not written yet, in apply order, with their clocks' stored text…
    new_properties: Vec<(Property, String)>,
    /// …and the index in `changes` of each, to merge it should it be stored already.
    new_property_changes: Vec<usize>,
}

impl<P: Pulled> PageWriter<'_, '_, P> {
    fn skip(&mut self, pulled: &impl Pulled, reason: String) {
        self.report.skipped.push(SkippedRecord {
            entity: pulled.entity(),
            entity_id: pulled.entity_id(),
            reason,
        });
    }

    fn write(&mut self, i: usize, pulled: &Ahead<'_, P>) -> StoreResult<()> {
        let upsert = matches!(pulled.op(), ChangeOp::Insert | ChangeOp::Update);
        if upsert && pulled.entity() == Entity::UpliftScore {
            self.flush_properties()?;
            match pulled
                .decode::<UpliftScore>()
                .and_then(|r| valid(r, self.now))
            {
                Ok(score) => self.scores.push(score),
                Err(Skip::Invalid(reason)) => self.skip(pulled, reason),
            }
            // Written a statement's worth at a time, so writing overlaps the decoding of what follows.
            if self.scores.len() >= ROWS_PER_STATEMENT {
                self.flush_scores()?;
            }
            return Ok(());
        }
        if upsert
            && pulled.entity() == Entity::Property
            && !self.pending.has_pending(self.conn, Entity::Property)?
        {
            self.flush_scores()?;
            // As `merge_mutable` takes a record new to this laptop: the clocks straight to their text.
            let (clocks, newest_clock) = match pulled.stored_clocks() {
                Ok(clocks) => clocks,
                Err(Skip::Invalid(reason)) => {
                    self.skip(pulled, reason);
                    return Ok(());
                }
            };
            self.newest.see_one(newest_clock);
            match pulled.decode::<Property>().and_then(|r| valid(r, self.now)) {
                Ok(record) if record.record_id() != pulled.entity_id() => self.skip(
                    pulled,
                    "the record's id differs from the change's entity id".into(),
                ),
                Ok(record) => {
                    self.new_properties.push((record, clocks));
                    self.new_property_changes.push(i);
                }
                Err(Skip::Invalid(reason)) => self.skip(pulled, reason),
            }
            if self.new_properties.len() >= ROWS_PER_STATEMENT {
                self.flush_properties()?;
            }
            return Ok(());
        }
        self.flush()?;
        match pulled.op() {
            ChangeOp::Delete => {
                self.report.deleted +=
                    rows::delete_record(self.conn, pulled.entity(), &pulled.entity_id())?
            }
            ChangeOp::Insert | ChangeOp::Update => {
                match apply_one(
                    self.conn,
                    pulled,
                    self.now,
                    &mut self.pending,
                    &mut self.newest,
                )? {
                    Ok(()) => self.report.applied += 1,
                    Err(Skip::Invalid(reason)) => self.skip(pulled, reason),
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> StoreResult<()> {
        self.flush_scores()?;
        self.flush_properties()
    }

    fn flush_scores(&mut self) -> StoreResult<()> {
        if !self.scores.is_empty() {
            rows::upsert_scores(self.conn, &self.scores)?;
            self.report.applied += self.scores.len();
            self.scores.clear();
        }
        Ok(())
    }

    fn flush_properties(&mut self) -> StoreResult<()> {
        let properties = std::mem::take(&mut self.new_properties);
        let changes = std::mem::take(&mut self.new_property_changes);
        for (rows, indexes) in properties
            .chunks(ROWS_PER_STATEMENT)
            .zip(changes.chunks(ROWS_PER_STATEMENT))
        {
            if rows::insert_new_properties(self.conn, rows)? == rows.len() {
                self.report.applied += rows.len();
                continue;
            }
            // Some property of this chunk was stored already (or came twice): merge the chunk's records
            // one by one, in order. Those the statement inserted merge with themselves and stay as they are.
            for &i in indexes {
                let pulled = Ahead::new(&self.changes[i], Decoded::default());
                match merge_mutable::<Property>(
                    self.conn,
                    &pulled,
                    self.now,
                    &mut self.pending,
                    &mut self.newest,
                )? {
                    Ok(()) => self.report.applied += 1,
                    Err(Skip::Invalid(reason)) => self.skip(&pulled, reason),
                }
            }
        }
        Ok(())
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

    /// Applies a page in one transaction. A large page is decoded on a second thread while this one
    /// writes: the JSON of a first sync's records (into typed records, their clocks into stored text)
    /// costs about as much as writing them, and the laptop has a core to spare for it — so the write
    /// of record `i` overlaps the decoding of the ones after it, in batches, in the order they are
    /// applied. The writes and their order are the same as decoding each record where it is written.
    fn apply_page<P: Pulled + Sync>(
        &mut self,
        changes: &[P],
        cursor: &str,
        watermark: i64,
    ) -> StoreResult<PullReport> {
        let now = self.wall.now();
        let tx = self.conn.transaction()?;
        let order = apply_order(changes.iter().map(|c| (c.entity(), c.entity_id())));
        let mut writer = PageWriter {
            conn: &tx,
            changes,
            now,
            report: PullReport::default(),
            pending: PendingKinds::default(),
            newest: NewestClock::default(),
            scores: Vec::new(),
            new_properties: Vec::new(),
            new_property_changes: Vec::new(),
        };
        if order.len() < DECODE_AHEAD_FROM {
            for &i in &order {
                writer.write(i, &Ahead::new(&changes[i], Decoded::default()))?;
            }
        } else {
            std::thread::scope(|scope| -> StoreResult<()> {
                let (send, receive) = std::sync::mpsc::sync_channel::<Vec<Decoded>>(4);
                let order = &order;
                scope.spawn(move || {
                    for batch in order.chunks(DECODE_BATCH) {
                        let decoded = batch.iter().map(|&i| decode_ahead(&changes[i])).collect();
                        if send.send(decoded).is_err() {
                            return; // the writer stopped on an error: the page rolls back
                        }
                    }
                });
                for (batch, decoded) in order.chunks(DECODE_BATCH).zip(receive.iter()) {
                    for (&i, decoded) in batch.iter().zip(decoded) {
                        writer.write(i, &Ahead::new(&changes[i], decoded))?;
                    }
                }
                Ok(())
            })?;
        }
        writer.flush()?;
        let PageWriter { report, newest, .. } = writer;
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
    ///
    /// On a laptop that holds no property yet (the first sync), the two rank indexes of `properties` are
    /// dropped for the pull and built once, sorted, when it ends: inserting each pulled property into
    /// them at its place in uplift order rewrote (and encrypted) most of their pages on every page of the
    /// pull — about 40 % of a 200,000-property first sync. While the pull runs, the ranked list sorts
    /// what has arrived instead of walking an index; if the pull never ends (the app killed), opening the
    /// file builds them again (`schema::migrate`).
    pub fn set_long_pull(&mut self, on: bool) -> StoreResult<()> {
        if on {
            self.conn.execute_batch(&format!(
                "PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -{};",
                4 * crate::CACHE_SIZE_KIB
            ))?;
            let first_sync: bool =
                self.conn
                    .query_row("SELECT NOT EXISTS (SELECT 1 FROM properties)", [], |r| {
                        r.get(0)
                    })?;
            if first_sync {
                self.conn.execute_batch(crate::schema::DROP_RANK_INDEXES)?;
            }
        } else {
            // The log the pull wrote (a first sync's: about 200 MB) is copied into the database by a
            // second connection on another thread while this one builds the rank indexes, instead of
            // after them: SQLite lets a checkpoint run beside a writer, copying what was committed before
            // the writer began. What that copy leaves (the index pages, or everything if it could not
            // run) is copied by the checkpoint below, which also empties the log.
            let checkpointer = self.open_checkpointer();
            std::thread::scope(|scope| -> StoreResult<()> {
                let copied = checkpointer.ok().map(|side| {
                    scope.spawn(move || {
                        side.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    })
                });
                let built = self.conn.execute_batch(crate::schema::CREATE_RANK_INDEXES);
                // The side copy's own outcome does not matter: the checkpoint below finishes its work.
                if let Some(copied) = copied {
                    let _ = copied.join();
                }
                Ok(built?)
            })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_applied_scores_first_then_by_kind_and_id_each_record_in_page_order() {
        let (low, high) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let page = [
            (Entity::Property, high),    // 0
            (Entity::UpliftScore, high), // 1
            (Entity::Property, low),     // 2
            (Entity::Storm, high),       // 3
            (Entity::Property, high),    // 4: the same record as 0, changed again
            (Entity::UpliftScore, low),  // 5
            (Entity::Property, low),     // 6: the same record as 2
        ];
        let order = apply_order(page.iter().copied());
        assert_eq!(order, vec![5, 1, 2, 6, 0, 4, 3]);
        // A decision sets its property's latest decision: it goes after the properties, although
        // its kind sorts before theirs.
        let with_decision = [(Entity::PolicyDecision, low), (Entity::Property, high)];
        assert_eq!(apply_order(with_decision.iter().copied()), vec![1, 0]);
        // Every record's own changes keep their page order.
        for (i, key) in page.iter().enumerate() {
            let positions: Vec<usize> = order
                .iter()
                .filter(|&&j| page[j] == *key)
                .copied()
                .collect();
            assert!(
                positions.windows(2).all(|w| w[0] < w[1]),
                "{i}: {positions:?}"
            );
        }
    }

    #[test]
    fn grouped_clock_text_matches_the_general_path() {
        let (a, b) = (Hlc::new(1_000, 0, 1), Hlc::new(2_000, 3, 9));
        let sent = format!(r#"{{"status": "{a}", "owner_name": "{b}", "address": "{a}"}}"#);
        let general: FieldClocks = serde_json::from_str(&sent).expect("clocks");
        let (text, newest) = grouped_clock_text(&sent).expect("plain clocks take the fast path");
        assert_eq!(text, clocks_to_text(&general).expect("text"));
        assert_eq!(newest, Some(b));
        assert_eq!(grouped_clock_text("{}"), Some(("{}".to_owned(), None)));
        // Anything less plain goes the general way (which gives its own answer or error).
        assert_eq!(grouped_clock_text(r#"{"st\u0061tus": "x"}"#), None);
        assert_eq!(grouped_clock_text(r#"{"status": "not a clock"}"#), None);
        let upper = format!(
            r#"{{"status": "{}"}}"#,
            Hlc::new(1, 0, 0xab).to_string().to_uppercase()
        );
        assert_eq!(grouped_clock_text(&upper), None, "not the canonical text");
        assert_eq!(grouped_clock_text("[]"), None);
    }
}
