//! Applying one pushed batch, all or nothing, exactly once.
//!
//! Round trips per batch, whatever its size: one lookup that answers both "which change ids were
//! applied before" and "do the referenced properties and storms exist", one load per mutable table
//! touched, one insert per append-only entity (`INSERT … SELECT FROM UNNEST(arrays)`, which also appends
//! to the pull feed in the same statement) and one insert/update per mutable table, plus one ledger
//! insert only when some change left no feed row of its own. Every check runs before the first write, so
//! a refused batch leaves the transaction untouched.
//!
//! # Where a change id is remembered
//!
//! A pushed append-only record (touch, outcome, decision) gets exactly one pull-feed row, and that row's
//! id *is* the change id: the feed's primary key `(tenant_id, id)` is then the idempotency ledger of the
//! bulk of all pushes, at no extra row or index. Changes that leave no feed row of their own — merges of
//! mutable records (several changes may fold into one feed row, or none when they lose the merge) and
//! append-only records that already existed under another change id — are written to `applied_changes`
//! as before. "Seen before" is therefore a lookup in both tables; a change id is never in neither once
//! its batch committed.

use std::collections::{HashMap, HashSet};

use domain::{
    CrewId, DeviceId, JourneyTouch, Outcome, PolicyDecision, Role, Timestamp, UserId, Validate,
    ValidationError,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sync_protocol::{
    Change, ChangeOp, Entity, EntityKind, ErrorCode, MAX_CLOCK_SKEW_MS, MAX_PUSH_CHANGES, Receipt,
};
use uuid::Uuid;

use super::mutable::{
    MutablePlan, MutableTable, MutableWrite, MutableWriteError, execute_plan, mutable_table,
    plan_writes,
};
use crate::error::StoreError;
use crate::tx::TenantTx;

/// Who is pushing: from the verified access token, never from the request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PushContext {
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub role: Role,
    pub crew_id: Option<CrewId>,
    /// The server's clock, Unix milliseconds: validation and clock-skew checks use it.
    pub now_ms: i64,
}

/// The result of a push.
#[derive(Clone, Debug, PartialEq)]
pub enum PushOutcome {
    /// Every change was accepted or was a duplicate: one receipt per change, in order. Commit.
    Applied(Vec<Receipt>),
    /// At least one change was refused: the refused receipts only. Nothing was written by this call;
    /// the caller rolls back (or just drops the transaction) and answers 422 `batch_refused`.
    Refused(Vec<Receipt>),
}

/// An append-only record, decoded and checked, waiting to be inserted.
enum AppendRecord {
    Touch(JourneyTouch),
    Outcome(Outcome),
    Decision(PolicyDecision),
}

/// The decoded, checked writes of a batch. Append-only records carry their change's index, so the feed
/// row can take the change id.
#[derive(Default)]
struct Plan {
    touches: Vec<(usize, JourneyTouch)>,
    outcomes: Vec<(usize, Outcome)>,
    decisions: Vec<(usize, PolicyDecision)>,
    mutable: HashMap<Entity, Vec<MutableWrite>>,
    /// (change index, property id, storm id the record claims, if any)
    property_refs: Vec<(usize, Uuid, Option<Uuid>)>,
    storm_refs: Vec<(usize, Uuid)>,
}

fn refuse(change: &Change, code: ErrorCode, reason: impl Into<String>) -> Receipt {
    Receipt::refused(change.id, code, reason)
}

fn validation_receipt(change: &Change, error: &ValidationError) -> Receipt {
    refuse(
        change,
        ErrorCode::ValidationFailed,
        format!(
            "{}: {} ({})",
            error.field,
            error.message,
            error.stable_code()
        ),
    )
}

/// Decodes a payload as its domain record (unknown fields refused), validates it with the server's now,
/// and checks the record's id is the change's entity id.
fn decode<T: DeserializeOwned + Validate>(
    change: &Change,
    now: Timestamp,
    id_of: impl Fn(&T) -> Uuid,
) -> Result<T, Receipt> {
    let record = T::deserialize(&change.payload).map_err(|e| {
        let message = e.to_string();
        let code = if message.contains("unknown field") {
            ErrorCode::UnknownField
        } else {
            ErrorCode::ValidationFailed
        };
        refuse(change, code, format!("payload: {message}"))
    })?;
    record
        .validate(now)
        .map_err(|e| validation_receipt(change, &e))?;
    if id_of(&record) != change.entity_id {
        return Err(refuse(
            change,
            ErrorCode::ValidationFailed,
            "id: the record's id differs from the change's entity_id",
        ));
    }
    Ok(record)
}

/// The checks that need no database: op and entity kind, role, device, clock, payload shape.
fn check_change(
    change: &Change,
    index: usize,
    ctx: &PushContext,
    plan: &mut Plan,
) -> Result<(), Receipt> {
    let now = Timestamp(ctx.now_ms);
    if !ctx.role.can_write_field_data() {
        return Err(refuse(
            change,
            ErrorCode::Forbidden,
            format!("the {} role cannot push changes", ctx.role),
        ));
    }
    if change.device_id != ctx.device_id {
        return Err(refuse(
            change,
            ErrorCode::Forbidden,
            "the change was made on another device than the one pushing it",
        ));
    }
    if change.hlc.wall_ms > (ctx.now_ms.max(0) as u64).saturating_add(MAX_CLOCK_SKEW_MS) {
        return Err(refuse(
            change,
            ErrorCode::ClockSkew,
            "the change's clock is too far ahead of the server's",
        ));
    }
    match change.entity.kind() {
        EntityKind::ServerOwned => Err(refuse(
            change,
            ErrorCode::ServerOwnedField,
            format!(
                "{} records are written by the server only",
                change.entity.as_str()
            ),
        )),
        EntityKind::AppendOnly => {
            if change.op != ChangeOp::Insert {
                return Err(refuse(
                    change,
                    ErrorCode::AppendOnly,
                    format!("{} records are append-only", change.entity.as_str()),
                ));
            }
            let record = match change.entity {
                Entity::JourneyTouch => {
                    AppendRecord::Touch(decode::<JourneyTouch>(change, now, |r| r.id.0)?)
                }
                Entity::Outcome => {
                    AppendRecord::Outcome(decode::<Outcome>(change, now, |r| r.id.0)?)
                }
                Entity::PolicyDecision => {
                    let decision = decode::<PolicyDecision>(change, now, |r| r.id.0)?;
                    if decision.is_override && !ctx.role.can_override_policy() {
                        return Err(refuse(
                            change,
                            ErrorCode::Forbidden,
                            "overriding the policy needs a crew chief or an admin",
                        ));
                    }
                    AppendRecord::Decision(decision)
                }
                other => {
                    return Err(refuse(
                        change,
                        ErrorCode::InvalidRequest,
                        format!("{} is not append-only", other.as_str()),
                    ));
                }
            };
            match record {
                AppendRecord::Touch(t) => {
                    plan.property_refs
                        .push((index, t.property_id.0, Some(t.storm_id.0)));
                    plan.storm_refs.push((index, t.storm_id.0));
                    plan.touches.push((index, t));
                }
                AppendRecord::Outcome(o) => {
                    plan.property_refs
                        .push((index, o.property_id.0, Some(o.storm_id.0)));
                    plan.storm_refs.push((index, o.storm_id.0));
                    plan.outcomes.push((index, o));
                }
                AppendRecord::Decision(d) => {
                    plan.property_refs
                        .push((index, d.property_id.0, Some(d.storm_id.0)));
                    plan.storm_refs.push((index, d.storm_id.0));
                    plan.decisions.push((index, d));
                }
            }
            Ok(())
        }
        EntityKind::Mutable => {
            let Some(table) = mutable_table(change.entity) else {
                // Crews and users are managed through the office's account endpoints, not sync.
                return Err(refuse(
                    change,
                    ErrorCode::ServerOwnedField,
                    format!(
                        "{} records are managed by the office",
                        change.entity.as_str()
                    ),
                ));
            };
            check_mutable(change, index, ctx, table, plan)
        }
    }
}

fn check_mutable(
    change: &Change,
    index: usize,
    ctx: &PushContext,
    table: &'static MutableTable,
    plan: &mut Plan,
) -> Result<(), Receipt> {
    let admin = ctx.role == Role::Admin;
    let Value::Object(fields) = &change.payload else {
        if change.op == ChangeOp::Delete {
            return Err(refuse(
                change,
                ErrorCode::Forbidden,
                "records are retired by status, not deleted, through sync",
            ));
        }
        return Err(refuse(
            change,
            ErrorCode::ValidationFailed,
            "payload: expected an object of fields",
        ));
    };
    let may_create = match change.op {
        ChangeOp::Delete => {
            return Err(refuse(
                change,
                ErrorCode::Forbidden,
                "records are retired by status, not deleted, through sync",
            ));
        }
        ChangeOp::Insert if !admin => {
            return Err(refuse(
                change,
                ErrorCode::ServerOwnedField,
                format!(
                    "{} records are created by the office",
                    change.entity.as_str()
                ),
            ));
        }
        ChangeOp::Insert => true,
        ChangeOp::Update => false,
    };
    let writable = change.entity.client_writable_fields();
    for field in fields.keys() {
        if !table.columns.contains(&field.as_str()) {
            return Err(refuse(
                change,
                ErrorCode::UnknownField,
                format!("{field}: not a field of {}", change.entity.as_str()),
            ));
        }
        if field == "id" && change.op == ChangeOp::Update {
            return Err(refuse(
                change,
                ErrorCode::ServerOwnedField,
                "id: a record's id never changes",
            ));
        }
        if !admin && !writable.contains(&field.as_str()) {
            return Err(refuse(
                change,
                ErrorCode::ServerOwnedField,
                format!("{field}: only the office may change it"),
            ));
        }
    }
    if change.op == ChangeOp::Insert {
        match fields
            .get("id")
            .and_then(Value::as_str)
            .map(Uuid::parse_str)
        {
            Some(Ok(id)) if id == change.entity_id => {}
            _ => {
                return Err(refuse(
                    change,
                    ErrorCode::ValidationFailed,
                    "id: the record's id differs from the change's entity_id",
                ));
            }
        }
    }
    if let Some(storm) = fields.get("storm_id") {
        match storm.as_str().map(Uuid::parse_str) {
            Some(Ok(storm_id)) => plan.storm_refs.push((index, storm_id)),
            _ => {
                return Err(refuse(
                    change,
                    ErrorCode::ValidationFailed,
                    "storm_id: not a UUID",
                ));
            }
        }
    }
    let mut fields = fields.clone();
    fields.remove("id");
    plan.mutable
        .entry(change.entity)
        .or_default()
        .push(MutableWrite {
            index,
            id: change.entity_id,
            fields,
            hlc: change.hlc,
            may_create,
        });
    Ok(())
}

fn mutable_refusal(change: &Change, error: MutableWriteError) -> Receipt {
    match error {
        MutableWriteError::UnknownRecord => refuse(
            change,
            ErrorCode::UnknownRecord,
            format!(
                "{} {} does not exist",
                change.entity.as_str(),
                change.entity_id
            ),
        ),
        MutableWriteError::Invalid(e) => validation_receipt(change, &e),
        MutableWriteError::Malformed(m) => {
            refuse(change, ErrorCode::ValidationFailed, format!("payload: {m}"))
        }
    }
}

/// What the batch's one lookup found: change ids applied before, and the referenced records that exist.
#[derive(Default)]
struct Known {
    seen: HashSet<Uuid>,
    /// Property id → its storm.
    properties: HashMap<Uuid, Option<Uuid>>,
    storms: HashSet<Uuid>,
}

/// One append-only entity's insert: its table, columns and the UNNEST types of the bound arrays (after
/// the change ids and before the scope parameters).
struct AppendInsert {
    entity: Entity,
    table: &'static str,
    columns: &'static str,
    types: &'static [&'static str],
}

const TOUCH_INSERT: AppendInsert = AppendInsert {
    entity: Entity::JourneyTouch,
    table: "journey_touches",
    columns: "id, property_id, storm_id, user_id, device_id, channel, result, notes, occurred_at",
    types: &[
        "uuid", "uuid", "uuid", "uuid", "uuid", "text", "text", "text", "int8",
    ],
};

const OUTCOME_INSERT: AppendInsert = AppendInsert {
    entity: Entity::Outcome,
    table: "outcomes",
    columns: "id, property_id, storm_id, converted, contract_value, occurred_at",
    types: &["uuid", "uuid", "uuid", "bool", "int8", "int8"],
};

const DECISION_INSERT: AppendInsert = AppendInsert {
    entity: Entity::PolicyDecision,
    table: "policy_decisions",
    columns: "id, property_id, storm_id, decision, mode, uplift_score, model_version, reason, is_override, decided_by, decided_at",
    types: &[
        "uuid", "uuid", "uuid", "text", "text", "float8", "text", "text", "bool", "uuid", "int8",
    ],
};

impl AppendInsert {
    /// `$1` tenant, `$2` change ids, then one array per column, then the scope crew and user. Records
    /// already present are skipped (`ON CONFLICT DO NOTHING`); each inserted record gets one feed row
    /// whose id is its change id, in the same statement. The feed row's record is printed as JSON text
    /// straight from the row's columns (`to_json` over them, the tenant left out): `to_jsonb(w) - 'tenant_id'`
    /// built a binary `jsonb` only for the `json` column to print it again, a third more work per row.
    fn sql(&self) -> String {
        let arrays: Vec<String> = self
            .types
            .iter()
            .enumerate()
            .map(|(n, t)| format!("${}::{t}[]", n + 3))
            .collect();
        let crew = self.types.len() + 3;
        let record_columns: Vec<String> =
            self.columns.split(", ").map(|c| format!("w.{c}")).collect();
        format!(
            "WITH input AS MATERIALIZED (SELECT * FROM UNNEST($2::uuid[], {arrays}) AS u(change_id, {columns})),
                  w AS (INSERT INTO {table} (tenant_id, {columns})
                        SELECT $1, {columns} FROM input
                        ON CONFLICT (tenant_id, id) DO NOTHING
                        RETURNING *)
             INSERT INTO change_log (tenant_id, id, entity, entity_id, op, record, field_clocks, scope_crew, scope_user)
             SELECT w.tenant_id, input.change_id, '{entity}', w.id, 'insert',
                    (SELECT to_json(r) FROM (SELECT {record_columns}) AS r), NULL,
                    ${crew}::uuid, ${user}::uuid
               FROM w JOIN input ON input.id = w.id",
            entity = self.entity.as_str(),
            user = crew + 1,
            arrays = arrays.join(", "),
            record_columns = record_columns.join(", "),
            columns = self.columns,
            table = self.table,
        )
    }
}

/// Keeps the first change of each record id; a later change of the same record in the batch is
/// returned apart (it leaves no feed row, so it goes to the ledger).
fn first_per_record<T>(
    rows: &[(usize, T)],
    id_of: impl Fn(&T) -> Uuid,
) -> (Vec<&(usize, T)>, Vec<usize>) {
    let mut ids = HashSet::with_capacity(rows.len());
    let mut first = Vec::with_capacity(rows.len());
    let mut repeated = Vec::new();
    for row in rows {
        if ids.insert(id_of(&row.1)) {
            first.push(row);
        } else {
            repeated.push(row.0);
        }
    }
    (first, repeated)
}

impl TenantTx {
    /// Applies one pushed batch in this transaction. See [`PushOutcome`] for what the caller does next.
    ///
    /// Rules: a change id seen before is a duplicate and is never applied again; append-only records
    /// (journey touches, outcomes, policy decisions) are inserted if absent; mutable records are merged
    /// per field by HLC (field roles may change only `client_writable_fields`, admins any field, and
    /// only admins create them); server-owned entities, crews and users are refused; every referenced
    /// property and storm must exist in this tenant (another tenant's id reads as nonexistent).
    pub async fn apply_push(
        &mut self,
        ctx: &PushContext,
        changes: &[Change],
    ) -> Result<PushOutcome, StoreError> {
        if changes.len() > MAX_PUSH_CHANGES {
            return Err(StoreError::InvalidInput(format!(
                "a push holds at most {MAX_PUSH_CHANGES} changes, got {}",
                changes.len()
            )));
        }
        let tenant = self.tenant_id;
        let now = Timestamp(ctx.now_ms);

        // Decode and check every change before the lookup, so one round trip answers both questions;
        // what belongs to a duplicate is dropped once the lookup says which changes are new.
        let mut plan = Plan::default();
        let mut checks: Vec<Option<Receipt>> = Vec::with_capacity(changes.len());
        for (i, change) in changes.iter().enumerate() {
            checks.push(check_change(change, i, ctx, &mut plan).err());
        }
        let known = self.lookup(changes, &plan).await?;

        // Which changes are new; a change id repeated inside the batch counts once.
        let mut seen = known.seen.clone();
        let fresh: Vec<bool> = changes.iter().map(|c| seen.insert(c.id.0)).collect();
        plan.touches.retain(|(i, _)| fresh[*i]);
        plan.outcomes.retain(|(i, _)| fresh[*i]);
        plan.decisions.retain(|(i, _)| fresh[*i]);
        plan.property_refs.retain(|(i, _, _)| fresh[*i]);
        plan.storm_refs.retain(|(i, _)| fresh[*i]);
        for writes in plan.mutable.values_mut() {
            writes.retain(|w| fresh[w.index]);
        }
        let mut refused: Vec<(usize, Receipt)> = checks
            .into_iter()
            .enumerate()
            .filter(|(i, _)| fresh[*i])
            .filter_map(|(i, r)| r.map(|r| (i, r)))
            .collect();

        check_references(changes, &plan, known, &mut refused);

        let mut mutable_plans: Vec<MutablePlan> = Vec::new();
        // Storms before properties before territories: a batch may create a storm and its properties.
        for entity in [Entity::Storm, Entity::Property, Entity::Territory] {
            let Some(writes) = plan.mutable.get(&entity).filter(|w| !w.is_empty()) else {
                continue;
            };
            let Some(table) = mutable_table(entity) else {
                continue;
            };
            let (mplan, errors) = plan_writes(&mut self.tx, tenant, table, writes, now).await?;
            for (i, error) in errors {
                refused.push((i, mutable_refusal(&changes[i], error)));
            }
            mutable_plans.push(mplan);
        }

        if !refused.is_empty() {
            refused.sort_by_key(|(i, _)| *i);
            return Ok(PushOutcome::Refused(
                refused.into_iter().map(|(_, r)| r).collect(),
            ));
        }

        // Changes that leave no feed row of their own go to the ledger: every mutable change …
        let mut ledger: Vec<usize> = plan.mutable.values().flatten().map(|w| w.index).collect();
        for mplan in mutable_plans.into_iter().filter(|p| !p.is_empty()) {
            execute_plan(&mut self.tx, mplan).await?;
        }
        // … and every append-only change whose record already existed.
        ledger.extend(self.insert_touches(changes, &plan.touches, ctx).await?);
        ledger.extend(self.insert_outcomes(changes, &plan.outcomes, ctx).await?);
        ledger.extend(self.insert_decisions(changes, &plan.decisions, ctx).await?);
        ledger.sort_unstable();
        self.record_applied(changes, &ledger, now).await?;

        Ok(PushOutcome::Applied(
            changes
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if fresh[i] {
                        Receipt::accepted(c.id)
                    } else {
                        Receipt::duplicate(c.id)
                    }
                })
                .collect(),
        ))
    }

    /// One statement: the batch's change ids already applied (in the feed or the ledger), and the
    /// referenced properties and storms that exist in this tenant.
    async fn lookup(&mut self, changes: &[Change], plan: &Plan) -> Result<Known, StoreError> {
        let ids: Vec<Uuid> = changes.iter().map(|c| c.id.0).collect();
        let mut property_ids: Vec<Uuid> = plan.property_refs.iter().map(|(_, p, _)| *p).collect();
        property_ids.sort_unstable();
        property_ids.dedup();
        let mut storm_ids: Vec<Uuid> = plan.storm_refs.iter().map(|(_, s)| *s).collect();
        storm_ids.sort_unstable();
        storm_ids.dedup();
        let rows: Vec<(i16, Uuid, Option<Uuid>)> = sqlx::query_as(
            "SELECT 0::int2, id, NULL::uuid FROM change_log WHERE tenant_id = $1 AND id = ANY($2)
             UNION ALL
             SELECT 0::int2, change_id, NULL FROM applied_changes WHERE tenant_id = $1 AND change_id = ANY($2)
             UNION ALL
             SELECT 1::int2, id, storm_id FROM properties WHERE tenant_id = $1 AND id = ANY($3)
             UNION ALL
             SELECT 2::int2, id, NULL FROM storms WHERE tenant_id = $1 AND id = ANY($4)",
        )
        .bind(self.tenant_id.0)
        .bind(&ids)
        .bind(&property_ids)
        .bind(&storm_ids)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut known = Known::default();
        for (kind, id, storm) in rows {
            match kind {
                0 => {
                    known.seen.insert(id);
                }
                1 => {
                    known.properties.insert(id, storm);
                }
                _ => {
                    known.storms.insert(id);
                }
            }
        }
        Ok(known)
    }

    /// The ledger for changes that left no feed row of their own. If a concurrent push of the same
    /// change ids won the race, this transaction must not apply them again: it fails with a retryable
    /// conflict.
    async fn record_applied(
        &mut self,
        changes: &[Change],
        indices: &[usize],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if indices.is_empty() {
            return Ok(());
        }
        let new: Vec<&Change> = indices.iter().map(|i| &changes[*i]).collect();
        let ids: Vec<Uuid> = new.iter().map(|c| c.id.0).collect();
        let devices: Vec<Uuid> = new.iter().map(|c| c.device_id.0).collect();
        let hlcs: Vec<String> = new.iter().map(|c| c.hlc.to_string()).collect();
        let entities: Vec<&str> = new.iter().map(|c| c.entity.as_str()).collect();
        let inserted: Vec<Uuid> = sqlx::query_scalar(
            "INSERT INTO applied_changes (tenant_id, change_id, device_id, hlc, entity, received_at)
             SELECT $1, u.* , $6 FROM UNNEST($2::uuid[], $3::uuid[], $4::text[], $5::text[]) AS u
             ON CONFLICT (tenant_id, change_id) DO NOTHING
             RETURNING change_id",
        )
        .bind(self.tenant_id.0)
        .bind(&ids)
        .bind(&devices)
        .bind(&hlcs)
        .bind(&entities)
        .bind(now.0)
        .fetch_all(&mut *self.tx)
        .await?;
        if inserted.len() != ids.len() {
            return Err(concurrent_push());
        }
        Ok(())
    }

    /// Runs one append-only insert of `rows` (the first change of each record) and returns the indices
    /// of the changes that left no feed row: records that existed before (they go to the ledger). A
    /// change whose id reached the feed through a concurrent push meanwhile is a conflict.
    async fn insert_append(
        &mut self,
        changes: &[Change],
        rows: &[usize],
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<Vec<usize>, StoreError> {
        let written = query.execute(&mut *self.tx).await?.rows_affected();
        if written == rows.len() as u64 {
            return Ok(Vec::new());
        }
        // Rare: some records were present already. Which changes got a feed row in this transaction,
        // and which ids another transaction wrote meanwhile?
        let ids: Vec<Uuid> = rows.iter().map(|i| changes[*i].id.0).collect();
        let present: Vec<(Uuid, bool)> = sqlx::query_as(
            "SELECT id, txid = pg_current_xact_id() FROM change_log WHERE tenant_id = $1 AND id = ANY($2)",
        )
        .bind(self.tenant_id.0)
        .bind(&ids)
        .fetch_all(&mut *self.tx)
        .await?;
        if present.iter().any(|(_, mine)| !mine) {
            return Err(concurrent_push());
        }
        let mine: HashSet<Uuid> = present.into_iter().map(|(id, _)| id).collect();
        Ok(rows
            .iter()
            .copied()
            .filter(|i| !mine.contains(&changes[*i].id.0))
            .collect())
    }

    async fn insert_touches(
        &mut self,
        changes: &[Change],
        rows: &[(usize, JourneyTouch)],
        ctx: &PushContext,
    ) -> Result<Vec<usize>, StoreError> {
        let (first, mut repeated) = first_per_record(rows, |r| r.id.0);
        if first.is_empty() {
            return Ok(repeated);
        }
        let sql = TOUCH_INSERT.sql();
        let query = sqlx::query(&sql)
            .bind(self.tenant_id.0)
            .bind(
                first
                    .iter()
                    .map(|(i, _)| changes[*i].id.0)
                    .collect::<Vec<_>>(),
            )
            .bind(first.iter().map(|(_, r)| r.id.0).collect::<Vec<_>>())
            .bind(
                first
                    .iter()
                    .map(|(_, r)| r.property_id.0)
                    .collect::<Vec<_>>(),
            )
            .bind(first.iter().map(|(_, r)| r.storm_id.0).collect::<Vec<_>>())
            .bind(first.iter().map(|(_, r)| r.user_id.0).collect::<Vec<_>>())
            .bind(first.iter().map(|(_, r)| r.device_id.0).collect::<Vec<_>>())
            .bind(
                first
                    .iter()
                    .map(|(_, r)| r.channel.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                first
                    .iter()
                    .map(|(_, r)| r.result.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                first
                    .iter()
                    .map(|(_, r)| r.notes.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                first
                    .iter()
                    .map(|(_, r)| r.occurred_at.0)
                    .collect::<Vec<_>>(),
            )
            .bind(ctx.crew_id.map(|c| c.0))
            .bind(ctx.user_id.0);
        let indices: Vec<usize> = first.iter().map(|(i, _)| *i).collect();
        repeated.extend(self.insert_append(changes, &indices, query).await?);
        Ok(repeated)
    }

    async fn insert_outcomes(
        &mut self,
        changes: &[Change],
        rows: &[(usize, Outcome)],
        ctx: &PushContext,
    ) -> Result<Vec<usize>, StoreError> {
        let (first, mut repeated) = first_per_record(rows, |r| r.id.0);
        if first.is_empty() {
            return Ok(repeated);
        }
        let sql = OUTCOME_INSERT.sql();
        let query = sqlx::query(&sql)
            .bind(self.tenant_id.0)
            .bind(
                first
                    .iter()
                    .map(|(i, _)| changes[*i].id.0)
                    .collect::<Vec<_>>(),
            )
            .bind(first.iter().map(|(_, r)| r.id.0).collect::<Vec<_>>())
            .bind(
                first
                    .iter()
                    .map(|(_, r)| r.property_id.0)
                    .collect::<Vec<_>>(),
            )
            .bind(first.iter().map(|(_, r)| r.storm_id.0).collect::<Vec<_>>())
            .bind(first.iter().map(|(_, r)| r.converted).collect::<Vec<_>>())
            .bind(
                first
                    .iter()
                    .map(|(_, r)| r.contract_value.0)
                    .collect::<Vec<_>>(),
            )
            .bind(
                first
                    .iter()
                    .map(|(_, r)| r.occurred_at.0)
                    .collect::<Vec<_>>(),
            )
            .bind(ctx.crew_id.map(|c| c.0))
            .bind(ctx.user_id.0);
        let indices: Vec<usize> = first.iter().map(|(i, _)| *i).collect();
        repeated.extend(self.insert_append(changes, &indices, query).await?);
        Ok(repeated)
    }

    async fn insert_decisions(
        &mut self,
        changes: &[Change],
        rows: &[(usize, PolicyDecision)],
        ctx: &PushContext,
    ) -> Result<Vec<usize>, StoreError> {
        let (first, mut repeated) = first_per_record(rows, |r| r.id.0);
        if first.is_empty() {
            return Ok(repeated);
        }
        let sql = DECISION_INSERT.sql();
        let query = sqlx::query(&sql)
            .bind(self.tenant_id.0)
            .bind(
                first
                    .iter()
                    .map(|(i, _)| changes[*i].id.0)
                    .collect::<Vec<_>>(),
            )
            .bind(first.iter().map(|(_, r)| r.id.0).collect::<Vec<_>>())
            .bind(
                first
                    .iter()
                    .map(|(_, r)| r.property_id.0)
                    .collect::<Vec<_>>(),
            )
            .bind(first.iter().map(|(_, r)| r.storm_id.0).collect::<Vec<_>>())
            .bind(
                first
                    .iter()
                    .map(|(_, r)| r.decision.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                first
                    .iter()
                    .map(|(_, r)| r.mode.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                first
                    .iter()
                    .map(|(_, r)| r.uplift_score)
                    .collect::<Vec<_>>(),
            )
            .bind(
                first
                    .iter()
                    .map(|(_, r)| r.model_version.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                first
                    .iter()
                    .map(|(_, r)| r.reason.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(first.iter().map(|(_, r)| r.is_override).collect::<Vec<_>>())
            .bind(
                first
                    .iter()
                    .map(|(_, r)| r.decided_by.0)
                    .collect::<Vec<_>>(),
            )
            .bind(
                first
                    .iter()
                    .map(|(_, r)| r.decided_at.0)
                    .collect::<Vec<_>>(),
            )
            .bind(ctx.crew_id.map(|c| c.0))
            .bind(ctx.user_id.0);
        let indices: Vec<usize> = first.iter().map(|(i, _)| *i).collect();
        repeated.extend(self.insert_append(changes, &indices, query).await?);
        Ok(repeated)
    }
}

fn concurrent_push() -> StoreError {
    StoreError::Conflict(
        "a concurrent push applied some of these changes first; push the batch again".into(),
    )
}

/// Checks every property and storm the batch references against what the lookup found. Records created
/// by this batch count as present. A missing one is refused without saying whether it exists in
/// another tenant.
fn check_references(
    changes: &[Change],
    plan: &Plan,
    known: Known,
    refused: &mut Vec<(usize, Receipt)>,
) {
    if plan.property_refs.is_empty() && plan.storm_refs.is_empty() {
        return;
    }
    let Known {
        mut properties,
        mut storms,
        ..
    } = known;
    // Created in this batch (only admins create): the merge path validates their own references.
    for write in plan
        .mutable
        .get(&Entity::Storm)
        .into_iter()
        .flatten()
        .filter(|w| w.may_create)
    {
        storms.insert(write.id);
    }
    for write in plan
        .mutable
        .get(&Entity::Property)
        .into_iter()
        .flatten()
        .filter(|w| w.may_create)
    {
        let storm = write
            .fields
            .get("storm_id")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok());
        properties.entry(write.id).or_insert(storm);
    }
    let already: HashSet<usize> = refused.iter().map(|(i, _)| *i).collect();
    let mut reported: HashSet<usize> = HashSet::new();
    for (i, property, claimed_storm) in &plan.property_refs {
        if already.contains(i) {
            continue;
        }
        match properties.get(property) {
            None => {
                reported.insert(*i);
                refused.push((
                    *i,
                    refuse(
                        &changes[*i],
                        ErrorCode::ForeignReference,
                        format!("property_id: property {property} does not exist"),
                    ),
                ));
            }
            // An unknown storm is reported below as a foreign reference, not as a mismatch.
            Some(actual)
                if claimed_storm.is_some_and(|s| storms.contains(&s))
                    && actual.is_some()
                    && actual != claimed_storm =>
            {
                reported.insert(*i);
                refused.push((
                    *i,
                    refuse(
                        &changes[*i],
                        ErrorCode::ValidationFailed,
                        "storm_id: the property belongs to another storm",
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    for (i, storm) in &plan.storm_refs {
        if already.contains(i) || reported.contains(i) || storms.contains(storm) {
            continue;
        }
        reported.insert(*i);
        refused.push((
            *i,
            refuse(
                &changes[*i],
                ErrorCode::ForeignReference,
                format!("storm_id: storm {storm} does not exist"),
            ),
        ));
    }
}
