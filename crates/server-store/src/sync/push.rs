//! Applying one pushed batch, all or nothing, exactly once.
//!
//! Round trips per batch, whatever its size: one lookup of already-applied change ids, one lookup of the
//! referenced properties and storms, one load per mutable table touched, then one idempotency insert for
//! the whole batch, one insert per append-only entity (`INSERT … SELECT FROM UNNEST(arrays)`, which also
//! appends to the pull feed in the same statement) and one insert/update per mutable table. Every check
//! runs before the first write, so a refused batch leaves the transaction untouched.

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

use super::changelog::change_log_tail;
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

#[derive(Default)]
struct Plan {
    touches: Vec<JourneyTouch>,
    outcomes: Vec<Outcome>,
    decisions: Vec<PolicyDecision>,
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
                    plan.touches.push(t);
                }
                AppendRecord::Outcome(o) => {
                    plan.property_refs
                        .push((index, o.property_id.0, Some(o.storm_id.0)));
                    plan.storm_refs.push((index, o.storm_id.0));
                    plan.outcomes.push(o);
                }
                AppendRecord::Decision(d) => {
                    plan.property_refs
                        .push((index, d.property_id.0, Some(d.storm_id.0)));
                    plan.storm_refs.push((index, d.storm_id.0));
                    plan.decisions.push(d);
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
        let ids: Vec<Uuid> = changes.iter().map(|c| c.id.0).collect();
        let seen: Vec<Uuid> = sqlx::query_scalar(
            "SELECT change_id FROM applied_changes WHERE tenant_id = $1 AND change_id = ANY($2)",
        )
        .bind(tenant.0)
        .bind(&ids)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut seen: HashSet<Uuid> = seen.into_iter().collect();

        // Which changes are new; a change id repeated inside the batch counts once.
        let mut fresh = vec![false; changes.len()];
        for (i, change) in changes.iter().enumerate() {
            fresh[i] = seen.insert(change.id.0);
        }

        let mut plan = Plan::default();
        let mut refused: Vec<(usize, Receipt)> = Vec::new();
        for (i, change) in changes.iter().enumerate().filter(|(i, _)| fresh[*i]) {
            if let Err(receipt) = check_change(change, i, ctx, &mut plan) {
                refused.push((i, receipt));
            }
        }

        self.check_references(changes, &plan, &mut refused).await?;

        let mut mutable_plans: Vec<MutablePlan> = Vec::new();
        // Storms before properties before territories: a batch may create a storm and its properties.
        for entity in [Entity::Storm, Entity::Property, Entity::Territory] {
            let Some(writes) = plan.mutable.get(&entity) else {
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

        self.record_applied(changes, &fresh, now).await?;
        for mplan in mutable_plans.into_iter().filter(|p| !p.is_empty()) {
            execute_plan(&mut self.tx, mplan).await?;
        }
        self.insert_touches(&plan.touches, ctx).await?;
        self.insert_outcomes(&plan.outcomes, ctx).await?;
        self.insert_decisions(&plan.decisions, ctx).await?;

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

    /// One query for every property and storm the batch references. Records created by this batch
    /// count as present. A missing one is refused without saying whether it exists in another tenant.
    async fn check_references(
        &mut self,
        changes: &[Change],
        plan: &Plan,
        refused: &mut Vec<(usize, Receipt)>,
    ) -> Result<(), StoreError> {
        if plan.property_refs.is_empty() && plan.storm_refs.is_empty() {
            return Ok(());
        }
        let property_ids: Vec<Uuid> = plan.property_refs.iter().map(|(_, p, _)| *p).collect();
        let storm_ids: Vec<Uuid> = plan.storm_refs.iter().map(|(_, s)| *s).collect();
        let rows: Vec<(String, Uuid, Option<Uuid>)> = sqlx::query_as(
            "SELECT 'property', id, storm_id FROM properties WHERE tenant_id = $1 AND id = ANY($2)
             UNION ALL
             SELECT 'storm', id, NULL FROM storms WHERE tenant_id = $1 AND id = ANY($3)",
        )
        .bind(self.tenant_id.0)
        .bind(&property_ids)
        .bind(&storm_ids)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut properties: HashMap<Uuid, Option<Uuid>> = HashMap::new();
        let mut storms: HashSet<Uuid> = HashSet::new();
        for (kind, id, storm) in rows {
            if kind == "property" {
                properties.insert(id, storm);
            } else {
                storms.insert(id);
            }
        }
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
        Ok(())
    }

    /// The idempotency ledger: one insert for the whole batch. If a concurrent push of the same change
    /// ids won the race, this transaction must not apply them again: it fails with a retryable conflict.
    async fn record_applied(
        &mut self,
        changes: &[Change],
        fresh: &[bool],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let new: Vec<&Change> = changes
            .iter()
            .zip(fresh)
            .filter(|(_, f)| **f)
            .map(|(c, _)| c)
            .collect();
        if new.is_empty() {
            return Ok(());
        }
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
            return Err(StoreError::Conflict(
                "a concurrent push applied some of these changes first; push the batch again"
                    .into(),
            ));
        }
        Ok(())
    }

    async fn insert_touches(
        &mut self,
        rows: &[JourneyTouch],
        ctx: &PushContext,
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "WITH w AS (
                INSERT INTO journey_touches (tenant_id, id, property_id, storm_id, user_id, device_id, channel, result, notes, occurred_at)
                SELECT $1, * FROM UNNEST($2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::uuid[], $7::text[], $8::text[], $9::text[], $10::int8[])
                ON CONFLICT (tenant_id, id) DO NOTHING
                RETURNING *)
             {}",
            change_log_tail("journey_touch", "w.id", "to_jsonb(w) - 'tenant_id'", "NULL::jsonb", "$11::uuid", "$12::uuid")
        );
        sqlx::query(&sql)
            .bind(self.tenant_id.0)
            .bind(rows.iter().map(|r| r.id.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.property_id.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.storm_id.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.user_id.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.device_id.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.channel.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.result.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.notes.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.occurred_at.0).collect::<Vec<_>>())
            .bind(ctx.crew_id.map(|c| c.0))
            .bind(ctx.user_id.0)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn insert_outcomes(
        &mut self,
        rows: &[Outcome],
        ctx: &PushContext,
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "WITH w AS (
                INSERT INTO outcomes (tenant_id, id, property_id, storm_id, converted, contract_value, occurred_at)
                SELECT $1, * FROM UNNEST($2::uuid[], $3::uuid[], $4::uuid[], $5::bool[], $6::int8[], $7::int8[])
                ON CONFLICT (tenant_id, id) DO NOTHING
                RETURNING *)
             {}",
            change_log_tail("outcome", "w.id", "to_jsonb(w) - 'tenant_id'", "NULL::jsonb", "$8::uuid", "$9::uuid")
        );
        sqlx::query(&sql)
            .bind(self.tenant_id.0)
            .bind(rows.iter().map(|r| r.id.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.property_id.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.storm_id.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.converted).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.contract_value.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.occurred_at.0).collect::<Vec<_>>())
            .bind(ctx.crew_id.map(|c| c.0))
            .bind(ctx.user_id.0)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn insert_decisions(
        &mut self,
        rows: &[PolicyDecision],
        ctx: &PushContext,
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "WITH w AS (
                INSERT INTO policy_decisions (tenant_id, id, property_id, storm_id, decision, mode, uplift_score, model_version,
                                              reason, is_override, decided_by, decided_at)
                SELECT $1, * FROM UNNEST($2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::float8[], $8::text[],
                                         $9::text[], $10::bool[], $11::uuid[], $12::int8[])
                ON CONFLICT (tenant_id, id) DO NOTHING
                RETURNING *)
             {}",
            change_log_tail("policy_decision", "w.id", "to_jsonb(w) - 'tenant_id'", "NULL::jsonb", "$13::uuid", "$14::uuid")
        );
        sqlx::query(&sql)
            .bind(self.tenant_id.0)
            .bind(rows.iter().map(|r| r.id.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.property_id.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.storm_id.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.decision.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.mode.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.uplift_score).collect::<Vec<_>>())
            .bind(
                rows.iter()
                    .map(|r| r.model_version.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(rows.iter().map(|r| r.reason.clone()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.is_override).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.decided_by.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.decided_at.0).collect::<Vec<_>>())
            .bind(ctx.crew_id.map(|c| c.0))
            .bind(ctx.user_id.0)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}
