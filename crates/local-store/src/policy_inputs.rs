//! What the offline policy reads from the tenant file: the storm's policy mode as last synced, its last
//! synced scores joined to their experiment arms, and the storm's decisions and outcomes for the
//! realised lift.

use domain::*;
use rusqlite::OptionalExtension;

use crate::error::StoreResult;
use crate::rows;
use crate::store::TenantStore;

impl TenantStore {
    /// The storm's policy mode as the office set it, from the last sync (`None`: never set, or not
    /// synced yet).
    pub fn storm_policy(&self, storm: StormId) -> StoreResult<Option<StormPolicy>> {
        let policy = self
            .conn
            .prepare_cached(
                "SELECT storm_id, mode, updated_at, updated_by FROM storm_policies WHERE storm_id = ?1",
            )?
            .query_row([storm.to_string()], |r| {
                Ok(StormPolicy {
                    storm_id: rows::parsed(r, 0)?,
                    mode: rows::parsed(r, 1)?,
                    updated_at: Timestamp::from_millis(r.get(2)?),
                    updated_by: rows::parsed_opt(r, 3)?,
                })
            })
            .optional()?;
        Ok(policy)
    }

    /// The storm's synced scores of properties that have an experiment arm, by property id.
    pub fn scored_arms(&self, storm: StormId) -> StoreResult<Vec<(UpliftScore, Arm)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.property_id, s.storm_id, s.uplift, s.p_treat, s.p_hold, s.model_version, s.trained_at, s.data_watermark, a.arm
               FROM uplift_scores s
               JOIN experiments e ON e.storm_id = s.storm_id
               JOIN arm_assignments a ON a.experiment_id = e.id AND a.property_id = s.property_id
              WHERE s.storm_id = ?1
              ORDER BY s.property_id",
        )?;
        let rows = stmt
            .query_map([storm.to_string()], |r| {
                Ok((rows::score_from_row(r)?, rows::parsed::<Arm>(r, 8)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Every policy decision of the storm in the file (synced or still pending).
    pub fn storm_decisions(&self, storm: StormId) -> StoreResult<Vec<PolicyDecision>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, property_id, storm_id, decision, mode, uplift_score, model_version, reason, is_override, decided_by, decided_at
               FROM policy_decisions WHERE storm_id = ?1 ORDER BY decided_at, id",
        )?;
        let rows = stmt
            .query_map([storm.to_string()], rows::decision_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Every outcome of the storm in the file.
    pub fn storm_outcomes(&self, storm: StormId) -> StoreResult<Vec<Outcome>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, property_id, storm_id, converted, contract_value_cents, occurred_at
               FROM outcomes WHERE storm_id = ?1 ORDER BY occurred_at, id",
        )?;
        let rows = stmt
            .query_map([storm.to_string()], rows::outcome_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}
