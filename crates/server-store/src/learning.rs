//! What the server's learning loop reads and writes, inside one tenant transaction: the training lock,
//! the storm's experiment, training rows (property features, arm, latest outcome), the properties to
//! score, the inputs of the data-health checks, the `data_quality_metrics` rows they produce, the
//! tenant's health thresholds (`tenant_settings`), and how much new outcome data arrived since a model.
//!
//! No learning happens here (this crate knows no uplift maths): callers fit and score, then write scores
//! and the model with the writers in `sync::writers`.

use domain::{
    Arm, DataQualityMetric, Experiment, Model, ModelId, Property, PropertyId, StormId, Timestamp,
    UpliftScore, Validate,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use crate::error::StoreError;
use crate::rows::parse_text;
use crate::tx::TenantTx;

/// Separates the training lock from any other advisory lock (FNV-1a offset basis of "stormops-train").
const TRAINING_LOCK_SALT: u64 = 0x7472_6169_6e69_6e67; // "training"

/// Separates the arm-assignment lock from the training lock.
const ARMS_LOCK_SALT: u64 = 0x6172_6d61_7373_6967; // "armassig"

/// A stable 64-bit key for a tenant's training lock: FNV-1a over the salt and the tenant id's bytes.
/// The same on every instance and every build, so two servers contend for the same lock.
pub fn training_lock_key(tenant: Uuid) -> i64 {
    lock_key(TRAINING_LOCK_SALT, tenant)
}

/// The tenant's arm-assignment lock: experiment creation holds it exclusively, a push that writes
/// properties holds it shared, so a property committed while an experiment is being created is assigned
/// by exactly one of the two transactions (whichever runs second sees the other's commit).
pub fn arms_lock_key(tenant: Uuid) -> i64 {
    lock_key(ARMS_LOCK_SALT, tenant)
}

fn lock_key(salt: u64, tenant: Uuid) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in salt.to_be_bytes().iter().chain(tenant.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// One training row: a property with an arm and at least one outcome (the latest counts).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingRow {
    pub property: Property,
    pub arm: Arm,
    pub converted: bool,
}

/// Rows and conversions of one arm of a storm's experiment (latest outcome per property).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArmCounts {
    pub rows: u64,
    pub conversions: u64,
}

/// Both arms' counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExperimentCounts {
    pub treatment: ArmCounts,
    pub control: ArmCounts,
    /// Properties with an arm (with or without an outcome).
    pub assigned_treatment: u64,
    pub assigned_control: u64,
}

fn from_json<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, StoreError> {
    serde_json::from_value(value).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The model-version prefix that ties a model to its storm (the registry has no storm column).
pub fn storm_model_prefix(storm: StormId) -> String {
    let text = storm.0.simple().to_string();
    format!("s{}", &text[..8])
}

impl TenantTx {
    /// Takes the tenant's training lock for the rest of this transaction, or returns false when another
    /// transaction (on any server instance) holds it. Released at commit or rollback.
    pub async fn try_training_lock(&mut self) -> Result<bool, StoreError> {
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(training_lock_key(self.tenant_id.0))
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(got)
    }

    /// Waits for the tenant's arm-assignment lock, exclusively (experiment creation) or shared (property
    /// writes), until this transaction ends. See [`arms_lock_key`].
    pub async fn lock_arms(&mut self, exclusive: bool) -> Result<(), StoreError> {
        let sql = if exclusive {
            "SELECT pg_advisory_xact_lock($1)"
        } else {
            "SELECT pg_advisory_xact_lock_shared($1)"
        };
        sqlx::query(sql)
            .bind(arms_lock_key(self.tenant_id.0))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Among `properties`, those in a storm with an experiment and no arm in it yet, with that
    /// experiment: what a property write must assign in its own transaction.
    pub async fn unassigned_in_experiments(
        &mut self,
        properties: &[PropertyId],
    ) -> Result<Vec<(Experiment, PropertyId)>, StoreError> {
        if properties.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = properties.iter().map(|p| p.0).collect();
        let rows: Vec<(Value, Uuid)> = sqlx::query_as(
            "SELECT to_jsonb(e) - 'tenant_id', p.id
               FROM properties p
               JOIN experiments e ON e.tenant_id = p.tenant_id AND e.storm_id = p.storm_id
              WHERE p.tenant_id = $1 AND p.id = ANY($2)
                AND NOT EXISTS (SELECT 1 FROM arm_assignments a
                                 WHERE a.tenant_id = p.tenant_id AND a.experiment_id = e.id
                                   AND a.property_id = p.id)
              ORDER BY p.id",
        )
        .bind(self.tenant_id.0)
        .bind(&ids)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.into_iter()
            .map(|(experiment, id)| {
                Ok((
                    from_json(experiment, "experiments")?,
                    PropertyId::from_uuid(id),
                ))
            })
            .collect()
    }

    /// The storm's experiment (one per storm), if any.
    pub async fn storm_experiment(
        &mut self,
        storm: StormId,
    ) -> Result<Option<Experiment>, StoreError> {
        let row: Option<Value> = sqlx::query_scalar(
            "SELECT to_jsonb(e) - 'tenant_id' FROM experiments e
              WHERE tenant_id = $1 AND storm_id = $2 ORDER BY started_at, id LIMIT 1",
        )
        .bind(self.tenant_id.0)
        .bind(storm.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|v| from_json(v, "experiments")).transpose()
    }

    /// Whether the storm exists in this tenant.
    pub async fn storm_exists(&mut self, storm: StormId) -> Result<bool, StoreError> {
        let found: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM storms WHERE tenant_id = $1 AND id = $2)",
        )
        .bind(self.tenant_id.0)
        .bind(storm.0)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(found)
    }

    /// Every property of the storm, ordered by id (the rows to score).
    pub async fn storm_properties(&mut self, storm: StormId) -> Result<Vec<Property>, StoreError> {
        let rows: Vec<Value> = sqlx::query_scalar(
            "SELECT to_jsonb(p) - 'tenant_id' - 'field_clocks' FROM properties p
              WHERE tenant_id = $1 AND storm_id = $2 ORDER BY id",
        )
        .bind(self.tenant_id.0)
        .bind(storm.0)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.into_iter()
            .map(|v| from_json(v, "properties"))
            .collect()
    }

    /// Training rows of a storm's experiment: properties with an arm and an outcome, the latest outcome
    /// (by time, then id) deciding `converted`. Ordered by property id, so extraction is deterministic.
    pub async fn training_rows(
        &mut self,
        storm: StormId,
        experiment: &Experiment,
    ) -> Result<Vec<TrainingRow>, StoreError> {
        let rows: Vec<(Value, String, bool)> = sqlx::query_as(
            "SELECT to_jsonb(p) - 'tenant_id' - 'field_clocks', a.arm, o.converted
               FROM arm_assignments a
               JOIN properties p ON p.tenant_id = a.tenant_id AND p.id = a.property_id
               JOIN LATERAL (
                    SELECT converted FROM outcomes o
                     WHERE o.tenant_id = a.tenant_id AND o.property_id = a.property_id AND o.storm_id = $2
                     ORDER BY o.occurred_at DESC, o.id DESC LIMIT 1) o ON true
              WHERE a.tenant_id = $1 AND a.experiment_id = $3 AND p.storm_id = $2
              ORDER BY p.id",
        )
        .bind(self.tenant_id.0)
        .bind(storm.0)
        .bind(experiment.id.0)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.into_iter()
            .map(|(property, arm, converted)| {
                Ok(TrainingRow {
                    property: from_json(property, "properties")?,
                    arm: parse_text(&arm, "arm_assignments.arm")?,
                    converted,
                })
            })
            .collect()
    }

    /// Properties of the storm that have no arm yet in `experiment` (to assign when it is created).
    pub async fn unassigned_properties(
        &mut self,
        storm: StormId,
        experiment: &Experiment,
    ) -> Result<Vec<PropertyId>, StoreError> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT p.id FROM properties p
              WHERE p.tenant_id = $1 AND p.storm_id = $2
                AND NOT EXISTS (SELECT 1 FROM arm_assignments a
                                 WHERE a.tenant_id = p.tenant_id AND a.experiment_id = $3 AND a.property_id = p.id)
              ORDER BY p.id",
        )
        .bind(self.tenant_id.0)
        .bind(storm.0)
        .bind(experiment.id.0)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(ids.into_iter().map(PropertyId::from_uuid).collect())
    }

    /// Arms' sizes and conversions (latest outcome per property) of the storm's experiment.
    pub async fn experiment_counts(
        &mut self,
        storm: StormId,
        experiment: &Experiment,
    ) -> Result<ExperimentCounts, StoreError> {
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT a.arm, count(*), count(o.converted), count(*) FILTER (WHERE o.converted)
               FROM arm_assignments a
               LEFT JOIN LATERAL (
                    SELECT converted FROM outcomes o
                     WHERE o.tenant_id = a.tenant_id AND o.property_id = a.property_id AND o.storm_id = $2
                     ORDER BY o.occurred_at DESC, o.id DESC LIMIT 1) o ON true
              WHERE a.tenant_id = $1 AND a.experiment_id = $3
              GROUP BY a.arm",
        )
        .bind(self.tenant_id.0)
        .bind(storm.0)
        .bind(experiment.id.0)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut counts = ExperimentCounts::default();
        for (arm, assigned, with_outcome, conversions) in rows {
            let arm_counts = ArmCounts {
                rows: count(with_outcome),
                conversions: count(conversions),
            };
            match parse_text::<Arm>(&arm, "arm_assignments.arm")? {
                Arm::Treatment => {
                    counts.treatment = arm_counts;
                    counts.assigned_treatment = count(assigned);
                }
                Arm::Control => {
                    counts.control = arm_counts;
                    counts.assigned_control = count(assigned);
                }
            }
        }
        Ok(counts)
    }

    /// The current scores of the storm's properties.
    pub async fn storm_scores(&mut self, storm: StormId) -> Result<Vec<UpliftScore>, StoreError> {
        let rows: Vec<Value> = sqlx::query_scalar(
            "SELECT to_jsonb(s) - 'tenant_id' FROM uplift_scores s
              WHERE tenant_id = $1 AND storm_id = $2 ORDER BY property_id",
        )
        .bind(self.tenant_id.0)
        .bind(storm.0)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.into_iter()
            .map(|v| from_json(v, "uplift_scores"))
            .collect()
    }

    /// (outcomes of the storm that occurred at or after `since`, all outcomes of the storm).
    pub async fn outcome_volume(
        &mut self,
        storm: StormId,
        since: Timestamp,
    ) -> Result<(u64, u64), StoreError> {
        let (recent, total): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE occurred_at >= $3), count(*) FROM outcomes
              WHERE tenant_id = $1 AND storm_id = $2",
        )
        .bind(self.tenant_id.0)
        .bind(storm.0)
        .bind(since.0)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok((count(recent), count(total)))
    }

    /// Nulls in the storm's required property fields: blank external id or address, non-finite
    /// coordinates (the same rule as `uplift::health::count_required_nulls`, counted in the database).
    pub async fn required_nulls(&mut self, storm: StormId) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM properties
              WHERE tenant_id = $1 AND storm_id = $2
                AND (btrim(external_id) = '' OR btrim(address) = ''
                     OR latitude IN ('NaN', 'Infinity', '-Infinity')
                     OR longitude IN ('NaN', 'Infinity', '-Infinity'))",
        )
        .bind(self.tenant_id.0)
        .bind(storm.0)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(count(n))
    }

    /// Stores health readings as `data_quality_metrics` rows.
    pub async fn insert_quality_metrics(
        &mut self,
        metrics: &[DataQualityMetric],
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        if metrics.is_empty() {
            return Ok(0);
        }
        for m in metrics {
            m.validate(now)?;
        }
        let done = sqlx::query(
            "INSERT INTO data_quality_metrics (tenant_id, id, storm_id, check_name, value, expected_low, expected_high, status, runbook, measured_at)
             SELECT $1, * FROM UNNEST($2::uuid[], $3::uuid[], $4::text[], $5::float8[], $6::float8[], $7::float8[], $8::text[], $9::text[], $10::int8[])",
        )
        .bind(self.tenant_id.0)
        .bind(metrics.iter().map(|m| m.id.0).collect::<Vec<_>>())
        .bind(metrics.iter().map(|m| m.storm_id.map(|s| s.0)).collect::<Vec<_>>())
        .bind(metrics.iter().map(|m| m.check.as_str()).collect::<Vec<_>>())
        .bind(metrics.iter().map(|m| m.value).collect::<Vec<_>>())
        .bind(metrics.iter().map(|m| m.expected_low).collect::<Vec<_>>())
        .bind(metrics.iter().map(|m| m.expected_high).collect::<Vec<_>>())
        .bind(metrics.iter().map(|m| m.status.as_str()).collect::<Vec<_>>())
        .bind(metrics.iter().map(|m| m.runbook.as_str()).collect::<Vec<_>>())
        .bind(metrics.iter().map(|m| m.measured_at.0).collect::<Vec<_>>())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected())
    }

    /// The tenant's health-threshold overrides (a JSON object; empty when none are set).
    pub async fn health_threshold_overrides(&mut self) -> Result<Value, StoreError> {
        let v: Option<Value> = sqlx::query_scalar(
            "SELECT health_thresholds FROM tenant_settings WHERE tenant_id = $1",
        )
        .bind(self.tenant_id.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(v.unwrap_or_else(|| Value::Object(Default::default())))
    }

    /// Replaces the tenant's health-threshold overrides (must be a JSON object).
    pub async fn set_health_threshold_overrides(
        &mut self,
        overrides: &Value,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if !overrides.is_object() {
            return Err(StoreError::InvalidInput(
                "health thresholds must be a JSON object".into(),
            ));
        }
        sqlx::query(
            "INSERT INTO tenant_settings (tenant_id, health_thresholds, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id) DO UPDATE SET health_thresholds = excluded.health_thresholds, updated_at = excluded.updated_at",
        )
        .bind(self.tenant_id.0)
        .bind(overrides)
        .bind(now.0)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The newest registered model of a storm (its version starts with [`storm_model_prefix`]).
    pub async fn latest_storm_model(
        &mut self,
        storm: StormId,
    ) -> Result<Option<Model>, StoreError> {
        let row: Option<Value> = sqlx::query_scalar(
            "SELECT to_jsonb(m) - 'tenant_id' FROM models m
              WHERE tenant_id = $1 AND starts_with(version, $2)
              ORDER BY trained_at DESC, data_watermark DESC, version DESC LIMIT 1",
        )
        .bind(self.tenant_id.0)
        .bind(format!("{}-", storm_model_prefix(storm)))
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|v| from_json(v, "models")).transpose()
    }

    /// This transaction's snapshot (text form of `pg_current_snapshot()`), to record with a model.
    pub async fn current_snapshot(&mut self) -> Result<String, StoreError> {
        let snapshot: String = sqlx::query_scalar("SELECT pg_current_snapshot()::text")
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(snapshot)
    }

    /// Records what a registered model saw: its storm and its training transaction's snapshot.
    pub async fn record_training_snapshot(
        &mut self,
        model: ModelId,
        storm: StormId,
        snapshot: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO model_training_snapshots (tenant_id, model_id, storm_id, snapshot) VALUES ($1, $2, $3, $4)",
        )
        .bind(self.tenant_id.0)
        .bind(model.0)
        .bind(storm.0)
        .bind(snapshot)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Outcomes of the storm the model did not see: their feed entries are not visible in the model's
    /// training snapshot. A model without a recorded snapshot counts everything at or above its
    /// watermark.
    pub async fn outcomes_new_to_model(
        &mut self,
        storm: StormId,
        model: &Model,
    ) -> Result<u64, StoreError> {
        let snapshot: Option<String> = sqlx::query_scalar(
            "SELECT snapshot FROM model_training_snapshots WHERE tenant_id = $1 AND model_id = $2",
        )
        .bind(self.tenant_id.0)
        .bind(model.id.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(snapshot) = snapshot else {
            return self
                .outcomes_since_watermark(storm, model.data_watermark)
                .await;
        };
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM change_log
              WHERE tenant_id = $1 AND entity = 'outcome' AND record->>'storm_id' = $2::text
                AND txid >= pg_snapshot_xmin($3::pg_snapshot)
                AND NOT pg_visible_in_snapshot(txid, $3::pg_snapshot)",
        )
        .bind(self.tenant_id.0)
        .bind(storm.0)
        .bind(snapshot)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(count(n))
    }

    /// Outcomes of the storm that reached the server in transactions at or after `watermark` (a txid,
    /// as recorded on models and scores).
    pub async fn outcomes_since_watermark(
        &mut self,
        storm: StormId,
        watermark: i64,
    ) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM change_log
              WHERE tenant_id = $1 AND entity = 'outcome' AND txid >= $3::text::xid8
                AND record->>'storm_id' = $2::text",
        )
        .bind(self.tenant_id.0)
        .bind(storm.0)
        .bind(watermark.to_string())
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(count(n))
    }

    /// Storms of the tenant that have an experiment (candidates for training).
    pub async fn storms_with_experiments(&mut self) -> Result<Vec<StormId>, StoreError> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT DISTINCT storm_id FROM experiments WHERE tenant_id = $1 ORDER BY storm_id",
        )
        .bind(self.tenant_id.0)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(ids.into_iter().map(StormId::from_uuid).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_key_is_stable_and_differs_per_tenant() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        assert_eq!(training_lock_key(a), training_lock_key(a));
        assert_ne!(training_lock_key(a), training_lock_key(b));
        // Pinned: a change of the hash would let two builds train the same tenant at once.
        assert_eq!(training_lock_key(Uuid::nil()), -549_908_344_575_806_089);
    }

    #[test]
    fn the_model_prefix_names_the_storm() {
        let storm = StormId::from_uuid(Uuid::from_u128(0xabcdef12_0000_0000_0000_000000000000));
        assert_eq!(storm_model_prefix(storm), "sabcdef12");
    }
}
