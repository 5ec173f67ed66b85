//! Arm assignment of a storm's experiment: every property of a storm with an experiment has exactly one
//! arm, by `uplift::experiment::arm_for` (deterministic in the experiment's seed and the property id).
//! Properties present when the experiment is created are assigned then; properties written later — an
//! office import after the experiment started — are assigned in the same transaction that writes them.
//! The tenant's arm-assignment lock (exclusive for creation, shared for property writes) closes the race
//! between the two.

use domain::{ArmAssignment, Experiment, PropertyId, Timestamp};
use server_store::TenantTx;
use sync_protocol::ErrorCode;

use crate::error::ApiError;

/// Rows per bulk insert of arm assignments.
const CHUNK: usize = 5_000;

/// Computes and inserts the arms of `pairs` (experiment, property); returns what it inserted.
pub async fn assign(
    tx: &mut TenantTx,
    pairs: &[(Experiment, PropertyId)],
    now: Timestamp,
) -> Result<Vec<ArmAssignment>, ApiError> {
    let mut arms = Vec::with_capacity(pairs.len());
    for (experiment, property) in pairs {
        let arm =
            uplift::experiment::arm_for(experiment.seed, *property, experiment.treatment_share)
                .map_err(|e| ApiError::new(ErrorCode::ValidationFailed, e.to_string()))?;
        arms.push(ArmAssignment {
            experiment_id: experiment.id,
            property_id: *property,
            arm,
            assigned_at: now,
        });
    }
    for chunk in arms.chunks(CHUNK) {
        tx.insert_arm_assignments(chunk, now).await?;
    }
    Ok(arms)
}

/// After a push wrote `properties`, assigns those that landed in a storm with an experiment and have
/// no arm yet. Waits for the shared arm lock first, so an experiment being created either sees these
/// properties committed or is seen by this check.
pub async fn assign_written_properties(
    tx: &mut TenantTx,
    properties: &[PropertyId],
    now: Timestamp,
) -> Result<usize, ApiError> {
    if properties.is_empty() {
        return Ok(0);
    }
    tx.lock_arms(false).await?;
    let pairs = tx.unassigned_in_experiments(properties).await?;
    Ok(assign(tx, &pairs, now).await?.len())
}
