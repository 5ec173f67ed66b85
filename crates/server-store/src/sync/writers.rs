//! The server's own writes that laptops must receive: storm and property imports, territories,
//! assignments (and their tombstones), experiments and arm assignments, uplift scores with provenance,
//! and the model registry. Each bulk write is one statement that also appends to the pull feed.

use domain::{
    ArmAssignment, Assignment, AssignmentId, Experiment, Hlc, Model, Property, Storm, Territory,
    Timestamp, UpliftScore, Validate,
};
use serde::Serialize;
use serde_json::{Map, Value};
use sync_protocol::Entity;
use uuid::Uuid;

use super::changelog::{change_log_tail, tenant_wide_change_log_tail};
use super::mutable::{
    MutableTable, MutableWrite, PROPERTIES, STORMS, TERRITORIES, execute_plan, plan_writes,
};
use crate::error::StoreError;
use crate::tx::TenantTx;

fn fields_of<T: Serialize>(record: &T) -> Result<Map<String, Value>, StoreError> {
    match serde_json::to_value(record) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(StoreError::InvalidInput(
            "record does not serialise to an object".into(),
        )),
    }
}

/// Rows as a jsonb array for `jsonb_populate_recordset`, each stamped with the tenant.
fn rows_json<T: Serialize>(tenant: Uuid, records: &[T]) -> Result<Value, StoreError> {
    let mut rows = Vec::with_capacity(records.len());
    for record in records {
        let mut map = fields_of(record)?;
        map.insert("tenant_id".into(), Value::String(tenant.to_string()));
        rows.push(Value::Object(map));
    }
    Ok(Value::Array(rows))
}

impl TenantTx {
    async fn upsert_mutable<T: Serialize>(
        &mut self,
        table: &'static MutableTable,
        records: &[T],
        id_of: impl Fn(&T) -> Uuid,
        hlc: Hlc,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        if records.is_empty() {
            return Ok(0);
        }
        let mut writes = Vec::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            let mut fields = fields_of(record)?;
            fields.remove("id");
            writes.push(MutableWrite {
                index,
                id: id_of(record),
                fields,
                hlc,
                may_create: true,
            });
        }
        let (plan, refused) =
            plan_writes(&mut self.tx, self.tenant_id, table, &writes, now).await?;
        if let Some((index, error)) = refused.into_iter().next() {
            return Err(error.into_store_error(writes[index].id));
        }
        execute_plan(&mut self.tx, plan).await
    }

    /// Creates or updates storms (office edits, imports). Every field is written with `hlc`, merged with
    /// what laptops wrote by the same per-field rule. Returns the rows written.
    pub async fn upsert_storms(
        &mut self,
        storms: &[Storm],
        hlc: Hlc,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.upsert_mutable(&STORMS, storms, |s| s.id.0, hlc, now)
            .await
    }

    /// Creates or updates properties in bulk (imports). A laptop's later status write still wins its field.
    pub async fn upsert_properties(
        &mut self,
        properties: &[Property],
        hlc: Hlc,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.upsert_mutable(&PROPERTIES, properties, |p| p.id.0, hlc, now)
            .await
    }

    /// Creates or updates territories; pulled by the territory's crew (or everyone when it has none).
    pub async fn upsert_territories(
        &mut self,
        territories: &[Territory],
        hlc: Hlc,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.upsert_mutable(&TERRITORIES, territories, |t| t.id.0, hlc, now)
            .await
    }

    /// Creates or replaces assignments; each is pulled by its crew (the territory's crew when only a
    /// territory is named) and its user.
    pub async fn upsert_assignments(
        &mut self,
        assignments: &[Assignment],
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        if assignments.is_empty() {
            return Ok(0);
        }
        for a in assignments {
            a.validate(now)?;
        }
        let tail = change_log_tail(
            Entity::Assignment.as_str(),
            "w.id",
            "to_jsonb(w) - 'tenant_id'",
            "NULL::jsonb",
            "coalesce(w.crew_id, (SELECT t.crew_id FROM territories t WHERE t.tenant_id = w.tenant_id AND t.id = w.territory_id))",
            "w.user_id",
        );
        let sql = format!(
            "WITH w AS (
                INSERT INTO assignments SELECT * FROM jsonb_populate_recordset(NULL::assignments, $1)
                ON CONFLICT (tenant_id, id) DO UPDATE SET storm_id = excluded.storm_id, property_id = excluded.property_id,
                    territory_id = excluded.territory_id, crew_id = excluded.crew_id, user_id = excluded.user_id
                RETURNING *)
             {tail}"
        );
        let done = sqlx::query(&sql)
            .bind(rows_json(self.tenant_id.0, assignments)?)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected())
    }

    /// Deletes assignments and sends tombstones to the laptops that held them.
    pub async fn delete_assignments(&mut self, ids: &[AssignmentId]) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let ids: Vec<Uuid> = ids.iter().map(|i| i.0).collect();
        let done = sqlx::query(
            "WITH w AS (DELETE FROM assignments WHERE tenant_id = $1 AND id = ANY($2) RETURNING *)
             INSERT INTO change_log (tenant_id, id, entity, entity_id, op, record, field_clocks, scope_crew, scope_user)
             SELECT w.tenant_id, gen_random_uuid(), 'assignment', w.id, 'delete', NULL, NULL,
                    coalesce(w.crew_id, (SELECT t.crew_id FROM territories t WHERE t.tenant_id = w.tenant_id AND t.id = w.territory_id)),
                    w.user_id
               FROM w",
        )
        .bind(self.tenant_id.0)
        .bind(&ids)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected())
    }

    /// Records a storm's experiment (fixed once made: a second insert of the same id changes nothing).
    pub async fn insert_experiment(
        &mut self,
        experiment: &Experiment,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        experiment.validate(now)?;
        let tail = tenant_wide_change_log_tail(Entity::Experiment.as_str(), "w.id");
        let sql = format!(
            "WITH w AS (
                INSERT INTO experiments SELECT * FROM jsonb_populate_recordset(NULL::experiments, $1)
                ON CONFLICT (tenant_id, id) DO NOTHING RETURNING *)
             {tail}"
        );
        let done = sqlx::query(&sql)
            .bind(rows_json(
                self.tenant_id.0,
                std::slice::from_ref(experiment),
            )?)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records arm assignments in bulk. An arm is fixed once made: existing ones are kept as they are.
    /// On the wire an arm assignment's entity id is its property id (one experiment per storm).
    pub async fn insert_arm_assignments(
        &mut self,
        arms: &[ArmAssignment],
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        if arms.is_empty() {
            return Ok(0);
        }
        for a in arms {
            a.validate(now)?;
        }
        let tail = tenant_wide_change_log_tail(Entity::ArmAssignment.as_str(), "w.property_id");
        let sql = format!(
            "WITH w AS (
                INSERT INTO arm_assignments SELECT * FROM jsonb_populate_recordset(NULL::arm_assignments, $1)
                ON CONFLICT (tenant_id, experiment_id, property_id) DO NOTHING RETURNING *)
             {tail}"
        );
        let done = sqlx::query(&sql)
            .bind(rows_json(self.tenant_id.0, arms)?)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected())
    }

    /// Writes the latest score of each property with its provenance (model version, trained at, data
    /// watermark), in one `INSERT … SELECT FROM UNNEST … ON CONFLICT DO UPDATE`. On the wire a score's
    /// entity id is its property id.
    pub async fn upsert_uplift_scores(
        &mut self,
        scores: &[UpliftScore],
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        if scores.is_empty() {
            return Ok(0);
        }
        for s in scores {
            s.validate(now)?;
        }
        let tail = tenant_wide_change_log_tail(Entity::UpliftScore.as_str(), "w.property_id");
        let sql = format!(
            "WITH w AS (
                INSERT INTO uplift_scores (tenant_id, property_id, storm_id, uplift, p_treat, p_hold, model_version, trained_at, data_watermark)
                SELECT $1, * FROM UNNEST($2::uuid[], $3::uuid[], $4::float8[], $5::float8[], $6::float8[], $7::text[], $8::int8[], $9::int8[])
                ON CONFLICT (tenant_id, property_id) DO UPDATE SET storm_id = excluded.storm_id, uplift = excluded.uplift,
                    p_treat = excluded.p_treat, p_hold = excluded.p_hold, model_version = excluded.model_version,
                    trained_at = excluded.trained_at, data_watermark = excluded.data_watermark
                RETURNING *)
             {tail}"
        );
        let done = sqlx::query(&sql)
            .bind(self.tenant_id.0)
            .bind(scores.iter().map(|s| s.property_id.0).collect::<Vec<_>>())
            .bind(scores.iter().map(|s| s.storm_id.0).collect::<Vec<_>>())
            .bind(scores.iter().map(|s| s.uplift).collect::<Vec<_>>())
            .bind(scores.iter().map(|s| s.p_treat).collect::<Vec<_>>())
            .bind(scores.iter().map(|s| s.p_hold).collect::<Vec<_>>())
            .bind(
                scores
                    .iter()
                    .map(|s| s.model_version.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(scores.iter().map(|s| s.trained_at.0).collect::<Vec<_>>())
            .bind(scores.iter().map(|s| s.data_watermark).collect::<Vec<_>>())
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected())
    }

    /// Registers a trained model. A version already registered is [`StoreError::Conflict`]. Models are not
    /// in the pull feed (laptops see the model version on each score).
    pub async fn register_model(
        &mut self,
        model: &Model,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        model.validate(now)?;
        sqlx::query("INSERT INTO models SELECT * FROM jsonb_populate_recordset(NULL::models, $1)")
            .bind(rows_json(self.tenant_id.0, std::slice::from_ref(model))?)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The registered models, newest first.
    pub async fn list_models(&mut self) -> Result<Vec<Model>, StoreError> {
        let rows: Vec<Value> = sqlx::query_scalar("SELECT to_jsonb(m) - 'tenant_id' FROM models m WHERE tenant_id = $1 ORDER BY trained_at DESC, version DESC")
            .bind(self.tenant_id.0)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.into_iter()
            .map(|v| {
                serde_json::from_value(v).map_err(|e| StoreError::Corrupt(format!("models: {e}")))
            })
            .collect()
    }
}
