//! The office's learning routes: create a storm's experiment (assigning every current property to an
//! arm), train now, the experiment summary (arms, lift with its 95 % CI and p-value, the latest model),
//! the storm's data-health checks (run and stored, with runbooks) and the model registry.
//!
//! Writes need an admin; admins, crew chiefs and viewers may read; field users get 403 everywhere here.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use domain::{
    Experiment, ExperimentId, QualityMetricId, QualityStatus, Role, StormId, Timestamp, Validate,
};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;
use serde_json::{Value, json};
use server_store::TenantTx;
use sync_protocol::ErrorCode;
use uplift::experiment::{GroupOutcomes, conversion_lift};
use uplift::health::{HealthInput, HealthThresholds, run_health_checks};
use uuid::Uuid;

use crate::auth::identity::Identity;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::learning::train_tenant_storm;
use crate::routes::auth::audit;
use crate::state::{AppState, now_ms};

const READERS: [Role; 3] = [Role::Admin, Role::CrewChief, Role::Viewer];

/// The `{storm_id}` path segment of the office routes, or 400 `invalid_uuid`.
pub(crate) fn storm_id(text: &str) -> Result<StormId, ApiError> {
    Uuid::try_parse(text).map(StormId::from_uuid).map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidUuid,
            "the storm id in the path is not a UUID",
        )
    })
}

/// A storm this tenant does not have (another tenant's storm is just as absent).
pub(crate) fn no_storm() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such storm in this account")
}

/// `POST /v1/admin/storms/{storm_id}/experiment` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateExperiment {
    /// Share of properties in the treatment arm, strictly between 0 and 1.
    pub treatment_share: f64,
}

/// Creates the storm's experiment with a random seed and assigns every current property to an arm by
/// `uplift::experiment::arm_for` (deterministic in seed and property); properties written later are
/// assigned by their push (`crate::arms`). A second experiment is 409.
pub async fn create_experiment(
    State(state): State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    Path(storm): Path<String>,
    ApiJson(body): ApiJson<CreateExperiment>,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&[Role::Admin], "create experiments")?;
    let storm = storm_id(&storm)?;
    let mut seed_bytes = [0u8; 8];
    SystemRandom::new()
        .fill(&mut seed_bytes)
        .map_err(|_| ApiError::internal("experiment seed", &"the system random source failed"))?;
    let now = Timestamp(now_ms());
    let experiment = Experiment {
        id: ExperimentId::generate(),
        storm_id: storm,
        treatment_share: body.treatment_share,
        seed: u64::from_le_bytes(seed_bytes),
        started_at: now,
    };
    experiment
        .validate(now)
        .map_err(|e| ApiError::new(ErrorCode::ValidationFailed, e.to_string()))?;
    let mut tx = identity.begin(&state).await?;
    // One experiment per storm even with concurrent requests: creations queue on the tenant's
    // arm-assignment lock, which pushes of properties also take (shared), so none is left without an arm.
    tx.lock_arms(true).await?;
    if !tx.storm_exists(storm).await? {
        return Err(no_storm());
    }
    if let Some(existing) = tx.storm_experiment(storm).await? {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "this storm already has an experiment; arms never change once made",
        )
        .with_details(json!({ "experiment_id": existing.id })));
    }
    tx.insert_experiment(&experiment, now).await?;
    let pairs: Vec<_> = tx
        .unassigned_properties(storm, &experiment)
        .await?
        .into_iter()
        .map(|p| (experiment.clone(), p))
        .collect();
    let arms = crate::arms::assign(&mut tx, &pairs, now).await?;
    audit(
        &mut tx,
        Some(identity.0.user_id),
        Some(identity.0.device_id),
        "experiment.create",
        format!("storm:{storm}"),
        &headers,
    )
    .await?;
    tx.commit().await?;
    let treatment = arms
        .iter()
        .filter(|a| a.arm == domain::Arm::Treatment)
        .count();
    Ok(Json(json!({
        "experiment": experiment,
        "assigned": arms.len(),
        "treatment": treatment,
        "control": arms.len() - treatment,
    })))
}

/// Trains the storm's model now; a refusal is a typed 422 and the model in service stays.
pub async fn train(
    State(state): State<AppState>,
    identity: Identity,
    Path(storm): Path<String>,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&[Role::Admin], "train models")?;
    let storm = storm_id(&storm)?;
    // Tenant active and device not revoked, checked as for every request.
    identity.begin(&state).await?.rollback().await?;
    let summary = train_tenant_storm(&state, identity.0.tenant_id, storm).await?;
    Ok(Json(json!(summary)))
}

fn group(rows: u64, conversions: u64) -> GroupOutcomes {
    GroupOutcomes { rows, conversions }
}

/// The storm's experiment: arm sizes, conversions, lift with 95 % CI and p-value, the latest model.
pub async fn experiment_summary(
    State(state): State<AppState>,
    identity: Identity,
    Path(storm): Path<String>,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&READERS, "read experiments")?;
    let storm = storm_id(&storm)?;
    let mut tx = identity.begin(&state).await?;
    if !tx.storm_exists(storm).await? {
        return Err(no_storm());
    }
    let experiment = tx.storm_experiment(storm).await?.ok_or_else(|| {
        ApiError::new(ErrorCode::NoExperiment, "this storm has no experiment yet")
    })?;
    let counts = tx.experiment_counts(storm, &experiment).await?;
    let model = tx.latest_storm_model(storm).await?;
    tx.commit().await?;
    let lift = conversion_lift(
        group(counts.treatment.rows, counts.treatment.conversions),
        group(counts.control.rows, counts.control.conversions),
    )
    .ok();
    let arm = |assigned: u64, c: server_store::ArmCounts| {
        json!({
            "assigned": assigned,
            "with_outcome": c.rows,
            "conversions": c.conversions,
            "conversion_rate": if c.rows == 0 { None } else { Some(c.conversions as f64 / c.rows as f64) },
        })
    };
    Ok(Json(json!({
        "experiment": experiment,
        "treatment": arm(counts.assigned_treatment, counts.treatment),
        "control": arm(counts.assigned_control, counts.control),
        "lift": lift,
        "model": model,
    })))
}

/// The tenant's thresholds: `tenant_settings` overrides over the PRODUCT.md defaults. Stored overrides
/// were validated when set, so a failure here is the server's fault.
fn thresholds(overrides: &Value) -> Result<HealthThresholds, ApiError> {
    HealthThresholds::with_overrides(overrides)
        .map_err(|e| ApiError::internal("stored health thresholds", &e))
}

/// `GET /v1/admin/health/thresholds`: the tenant's effective thresholds, its overrides and the defaults.
pub async fn health_thresholds(
    State(state): State<AppState>,
    identity: Identity,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&READERS, "read data-health thresholds")?;
    let mut tx = identity.begin(&state).await?;
    let overrides = tx.health_threshold_overrides().await?;
    tx.commit().await?;
    Ok(Json(json!({
        "thresholds": thresholds(&overrides)?,
        "overrides": overrides,
        "defaults": HealthThresholds::default(),
    })))
}

/// `PUT /v1/admin/health/thresholds` (admin): replaces the tenant's overrides with the body (a JSON
/// object of some threshold names; `{}` restores the defaults). Unknown names, non-numbers, shares above
/// 1 and crossed bounds are a 422 `validation_failed` and change nothing.
pub async fn set_health_thresholds(
    State(state): State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    ApiJson(overrides): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&[Role::Admin], "change data-health thresholds")?;
    let effective = HealthThresholds::with_overrides(&overrides)
        .map_err(|e| ApiError::new(ErrorCode::ValidationFailed, e.to_string()))?;
    let now = Timestamp(now_ms());
    let mut tx = identity.begin(&state).await?;
    tx.set_health_threshold_overrides(&overrides, now).await?;
    audit(
        &mut tx,
        Some(identity.0.user_id),
        Some(identity.0.device_id),
        "health.thresholds.set",
        "tenant_settings".to_owned(),
        &headers,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({
        "thresholds": effective,
        "overrides": overrides,
        "defaults": HealthThresholds::default(),
    })))
}

/// Runs the storm's data-health checks and answers them with their runbooks; for admins and crew
/// chiefs each reading is also stored in `data_quality_metrics` (a viewer's read writes nothing).
pub async fn health(
    State(state): State<AppState>,
    identity: Identity,
    Path(storm): Path<String>,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&READERS, "read data health")?;
    let storm = storm_id(&storm)?;
    let mut tx = identity.begin(&state).await?;
    let report = storm_health_report(
        &mut tx,
        storm,
        Timestamp(now_ms()),
        identity.0.role != Role::Viewer,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(report))
}

/// The storm's data-health report under the tenant's thresholds (the route's and the operator CLI's):
/// the readings with their runbooks, stored in `data_quality_metrics` when `store`. The caller commits.
pub async fn storm_health_report(
    tx: &mut TenantTx,
    storm: StormId,
    now: Timestamp,
    store: bool,
) -> Result<Value, ApiError> {
    if !tx.storm_exists(storm).await? {
        return Err(no_storm());
    }
    let thresholds = thresholds(&tx.health_threshold_overrides().await?)?;
    let scores: Vec<f64> = tx
        .storm_scores(storm)
        .await?
        .iter()
        .map(|s| s.uplift)
        .collect();
    let lift = match tx.storm_experiment(storm).await? {
        Some(experiment) => {
            let c = tx.experiment_counts(storm, &experiment).await?;
            conversion_lift(
                group(c.treatment.rows, c.treatment.conversions),
                group(c.control.rows, c.control.conversions),
            )
            .ok()
            .map(|l| l.lift)
        }
        None => None,
    };
    let volume = tx
        .outcome_volume(storm, now.plus_millis(-86_400_000))
        .await?;
    let nulls = tx.required_nulls(storm).await?;
    let input = HealthInput {
        uplift_scores: (!scores.is_empty()).then_some(scores.as_slice()),
        conversion_lift: lift,
        volume: (volume.1 > 0).then_some(volume),
        required_nulls: Some(nulls),
    };
    let readings = run_health_checks(&input, &thresholds)
        .map_err(|e| ApiError::new(ErrorCode::ValidationFailed, e.to_string()))?;
    let metrics: Vec<_> = readings
        .iter()
        .cloned()
        .map(|r| r.into_metric(QualityMetricId::generate(), Some(storm), now))
        .collect();
    if store {
        tx.insert_quality_metrics(&metrics, now).await?;
    }
    let alerts = metrics
        .iter()
        .filter(|m| m.status != QualityStatus::Ok)
        .count();
    Ok(json!({
        "storm_id": storm,
        "measured_at": now,
        "thresholds": thresholds,
        "alerts": alerts,
        "readings": metrics,
    }))
}

/// The model registry, newest first.
pub async fn models(
    State(state): State<AppState>,
    identity: Identity,
) -> Result<Json<Value>, ApiError> {
    identity.require_role(&READERS, "read models")?;
    let mut tx = identity.begin(&state).await?;
    let models = tx.list_models().await?;
    tx.commit().await?;
    Ok(Json(json!({ "models": models })))
}
