//! Server-side learning: train a storm's uplift model from its experiment's outcomes, measure it on a
//! stratified holdout, refit on everything, rescore every property of the storm and register the model —
//! all in one tenant transaction under the tenant's training lock, so with several server instances a
//! tenant's training runs once, and a refusal (`not_enough_data`, `single_outcome_class`,
//! `no_experiment`) leaves the previous model and scores in service.
//!
//! [`run_trainer`] is the background loop `serve::start` spawns: every interval it trains, for each
//! active tenant, the storms with enough outcomes newer than their latest model's watermark.

use std::time::Duration;

use domain::{
    Arm, Experiment, Model, ModelId, Property, StormId, TenantId, TenantStatus, Timestamp,
    UpliftScore,
};
use serde::Serialize;
use server_store::{StoreError, TrainingRow, storm_model_prefix};
use sync_protocol::ErrorCode;
use uplift::UpliftError;
use uplift::experiment::assignment_draw;
use uplift::features::{FittedPipeline, property_feature_spec, property_table};
use uplift::learners::{BoostedTLearner, TLearner, UpliftLearner, UpliftModel};
use uplift::metrics::{TopKStrategy, qini_auc_score, uplift_at_k, uplift_auc_score};

use crate::error::ApiError;
use crate::state::AppState;

/// Fewest outcome rows per arm before the server trains: the 70 % training split then keeps at least
/// the learner's own minimum (50) per arm, and the holdout about 30.
pub const MIN_ROWS_PER_ARM: usize = 100;
/// Share of each (arm, outcome) stratum used for fitting; the rest measures the model.
pub const TRAIN_SHARE: f64 = 0.7;
/// Default seconds between background training rounds (`STORMOPS_TRAIN_INTERVAL_SECS`; 0 disables).
pub const DEFAULT_TRAIN_INTERVAL_SECS: u64 = 300;
/// Default new outcomes a storm needs before the background loop retrains it.
pub const DEFAULT_TRAIN_MIN_NEW_OUTCOMES: u64 = 200;

/// Why training did not produce a model. `code()` is stable.
#[derive(Debug, thiserror::Error)]
pub enum LearningError {
    #[error("storm {0} does not exist")]
    StormNotFound(StormId),
    #[error(
        "storm {0} has no experiment: create one first (POST /v1/admin/storms/{{storm_id}}/experiment)"
    )]
    NoExperiment(StormId),
    #[error("not enough data: need {need} per arm, have {have}")]
    NotEnoughData { need: usize, have: usize },
    #[error("{0}")]
    SingleOutcomeClass(String),
    #[error("another training of this tenant is running; try again when it has finished")]
    TrainingInProgress,
    #[error("the uplift computation failed: {0}")]
    Uplift(UpliftError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the training task stopped: {0}")]
    Task(String),
}

impl LearningError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::StormNotFound(_) => "not_found",
            Self::NoExperiment(_) => "no_experiment",
            Self::NotEnoughData { .. } => "not_enough_data",
            Self::SingleOutcomeClass(_) => "single_outcome_class",
            Self::TrainingInProgress => "training_in_progress",
            Self::Uplift(e) => e.code(),
            Self::Store(_) => "store",
            Self::Task(_) => "task",
        }
    }
}

impl From<UpliftError> for LearningError {
    fn from(e: UpliftError) -> Self {
        match e {
            UpliftError::NotEnoughData { need, have } => Self::NotEnoughData { need, have },
            UpliftError::SingleOutcomeClass { .. } => Self::SingleOutcomeClass(e.to_string()),
            other => Self::Uplift(other),
        }
    }
}

impl From<LearningError> for ApiError {
    fn from(e: LearningError) -> Self {
        let message = e.to_string();
        match e {
            LearningError::StormNotFound(_) => ApiError::new(ErrorCode::NotFound, message),
            LearningError::NoExperiment(_) => ApiError::new(ErrorCode::NoExperiment, message),
            LearningError::NotEnoughData { need, have } => {
                ApiError::new(ErrorCode::NotEnoughData, message)
                    .with_details(serde_json::json!({ "need_per_arm": need, "have": have }))
            }
            LearningError::SingleOutcomeClass(_) => {
                ApiError::new(ErrorCode::SingleOutcomeClass, message)
            }
            LearningError::TrainingInProgress => ApiError::new(ErrorCode::Conflict, message)
                .with_details(serde_json::json!({ "reason": "training_in_progress" })),
            LearningError::Store(e) => e.into(),
            LearningError::Uplift(e) => ApiError::internal("uplift training", &e),
            LearningError::Task(e) => ApiError::internal("training task", &e),
        }
    }
}

/// What a training run produced (or, with `retrained` false, the model already in service because no
/// outcome arrived since it was trained).
#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    pub storm_id: StormId,
    pub retrained: bool,
    pub model: Model,
    /// Rows the holdout metrics were measured on.
    pub holdout_rows: usize,
    /// Properties scored.
    pub scored: usize,
}

/// The CPU part's result.
struct Fitted {
    model: Model,
    scores: Vec<UpliftScore>,
    holdout_rows: usize,
}

/// Trains the storm's model now (see the module docs).
pub async fn train_tenant_storm(
    state: &AppState,
    tenant: TenantId,
    storm: StormId,
) -> Result<ModelSummary, LearningError> {
    let mut tx = state.app.begin_tenant(tenant).await?;
    if !tx.try_training_lock().await? {
        return Err(LearningError::TrainingInProgress);
    }
    if !tx.storm_exists(storm).await? {
        return Err(LearningError::StormNotFound(storm));
    }
    let experiment = tx
        .storm_experiment(storm)
        .await?
        .ok_or(LearningError::NoExperiment(storm))?;
    // The model in service already saw every outcome: nothing to learn (also what a second, concurrent
    // request finds once the first has committed).
    if let Some(model) = tx.latest_storm_model(storm).await?
        && tx.outcomes_new_to_model(storm, &model).await? == 0
    {
        let scored = tx.storm_scores(storm).await?.len();
        tx.rollback().await?;
        return Ok(ModelSummary {
            storm_id: storm,
            retrained: false,
            model,
            holdout_rows: 0,
            scored,
        });
    }
    let watermark = tx.current_watermark().await?;
    let snapshot = tx.current_snapshot().await?;
    let rows = tx.training_rows(storm, &experiment).await?;
    let properties = tx.storm_properties(storm).await?;
    let now = Timestamp::now();
    let fitted = tokio::task::spawn_blocking(move || {
        fit_and_score(&experiment, storm, &rows, &properties, watermark, now)
    })
    .await
    .map_err(|e| LearningError::Task(e.to_string()))??;
    tx.upsert_uplift_scores(&fitted.scores, now).await?;
    tx.register_model(&fitted.model, now).await?;
    tx.record_training_snapshot(fitted.model.id, storm, &snapshot)
        .await?;
    // Metered under the model's id, so a model run counts once.
    tx.record_usage(&[server_store::metering::UsageEvent {
        id: fitted.model.id.0,
        kind: server_store::metering::UsageKind::ModelRuns,
        units: 1,
        occurred_at: now,
    }])
    .await?;
    tx.commit().await?;
    Ok(ModelSummary {
        storm_id: storm,
        retrained: true,
        model: fitted.model,
        holdout_rows: fitted.holdout_rows,
        scored: fitted.scores.len(),
    })
}

/// Stratified split by (arm, converted): each stratum ordered by a seeded hash of the property id (the
/// same on every run), its first [`TRAIN_SHARE`] trains. Returns (train, holdout) row indices.
fn stratified_split(rows: &[TrainingRow], seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut strata: [Vec<usize>; 4] = Default::default();
    for (i, r) in rows.iter().enumerate() {
        let s = usize::from(r.arm == Arm::Treatment) * 2 + usize::from(r.converted);
        strata[s].push(i);
    }
    let (mut train, mut holdout) = (Vec::new(), Vec::new());
    for mut stratum in strata {
        stratum.sort_by(|&a, &b| {
            assignment_draw(seed, rows[a].property.id)
                .total_cmp(&assignment_draw(seed, rows[b].property.id))
                .then(rows[a].property.id.cmp(&rows[b].property.id))
        });
        let cut = (stratum.len() as f64 * TRAIN_SHARE).round() as usize;
        train.extend_from_slice(&stratum[..cut]);
        holdout.extend_from_slice(&stratum[cut..]);
    }
    train.sort_unstable();
    holdout.sort_unstable();
    (train, holdout)
}

/// Fits the pipeline and the boosted T-learner (the logistic T-learner when boosting fails for a reason
/// other than the data), on `rows`.
fn fit_model(rows: &[&TrainingRow]) -> Result<(FittedPipeline, UpliftModel), UpliftError> {
    let properties: Vec<Property> = rows.iter().map(|r| r.property.clone()).collect();
    let table = property_table(&properties)?;
    let pipeline = FittedPipeline::fit(&property_feature_spec(), &table)?;
    let x = pipeline.transform(&table)?;
    let treated: Vec<bool> = rows.iter().map(|r| r.arm == Arm::Treatment).collect();
    let converted: Vec<bool> = rows.iter().map(|r| r.converted).collect();
    let model = match BoostedTLearner::default().fit(&x, &treated, &converted) {
        Ok(m) => m,
        Err(e @ (UpliftError::NotEnoughData { .. } | UpliftError::SingleOutcomeClass { .. })) => {
            return Err(e);
        }
        Err(e) => {
            tracing::warn!(error = %e, "boosted T-learner failed; falling back to the logistic T-learner");
            TLearner::default().fit(&x, &treated, &converted)?
        }
    };
    Ok((pipeline, model))
}

fn finite_or_zero(metric: &str, value: Result<f64, UpliftError>) -> f64 {
    match value {
        Ok(v) if v.is_finite() => v,
        Ok(_) => 0.0,
        Err(e) => {
            tracing::warn!(error = %e, "holdout {metric} is undefined; recorded as 0");
            0.0
        }
    }
}

fn fit_and_score(
    experiment: &Experiment,
    storm: StormId,
    rows: &[TrainingRow],
    properties: &[Property],
    watermark: i64,
    now: Timestamp,
) -> Result<Fitted, LearningError> {
    let treated_rows = rows.iter().filter(|r| r.arm == Arm::Treatment).count();
    let have = treated_rows.min(rows.len() - treated_rows);
    if have < MIN_ROWS_PER_ARM {
        return Err(LearningError::NotEnoughData {
            need: MIN_ROWS_PER_ARM,
            have,
        });
    }
    for arm in [Arm::Treatment, Arm::Control] {
        let arm_rows: Vec<&TrainingRow> = rows.iter().filter(|r| r.arm == arm).collect();
        let positives = arm_rows.iter().filter(|r| r.converted).count();
        if positives == 0 || positives == arm_rows.len() {
            return Err(UpliftError::SingleOutcomeClass {
                arm,
                converted: positives > 0,
            }
            .into());
        }
    }
    // Holdout metrics from a model fitted on the training split only.
    let (train, holdout) = stratified_split(rows, experiment.seed ^ 0x0068_6f6c_646f_7574);
    let train_rows: Vec<&TrainingRow> = train.iter().map(|&i| &rows[i]).collect();
    let (pipeline, model) = fit_model(&train_rows)?;
    let held: Vec<Property> = holdout.iter().map(|&i| rows[i].property.clone()).collect();
    let x_hold = pipeline.transform(&property_table(&held)?)?;
    let scores = model.predict_uplift(&x_hold)?;
    let converted: Vec<bool> = holdout.iter().map(|&i| rows[i].converted).collect();
    let treated: Vec<bool> = holdout
        .iter()
        .map(|&i| rows[i].arm == Arm::Treatment)
        .collect();
    let qini = finite_or_zero("qini", qini_auc_score(&converted, &scores, &treated, true));
    let auuc = finite_or_zero("auuc", uplift_auc_score(&converted, &scores, &treated));
    let at_30 = finite_or_zero(
        "uplift@30%",
        uplift_at_k(&converted, &scores, &treated, 0.3, TopKStrategy::Overall),
    );

    // The model in service: refit on every row, score every property of the storm.
    let all: Vec<&TrainingRow> = rows.iter().collect();
    let (pipeline, model) = fit_model(&all)?;
    // Storm, fitted parameters and data point: a retrain on identical data is still a new version.
    let version = format!(
        "{}-{}-w{watermark:x}",
        storm_model_prefix(storm),
        model.version()
    );
    let model = model.with_version(version.clone());
    let x_all = pipeline.transform(&property_table(properties)?)?;
    let predictions = model.predict(&x_all)?;
    let scores = properties
        .iter()
        .zip(predictions)
        .map(|(p, pred)| model.score_record(pred, p.id, storm, now, watermark))
        .collect();
    Ok(Fitted {
        model: Model {
            id: ModelId::generate(),
            version,
            learner: model.learner().to_owned(),
            trained_at: now,
            training_rows: rows.len() as u64,
            data_watermark: watermark,
            qini,
            auuc,
            uplift_at_30: at_30,
        },
        scores,
        holdout_rows: holdout.len(),
    })
}

/// One background round: every active tenant, every storm with an experiment and at least
/// `min_new_outcomes` outcomes newer than its latest model's watermark. Returns the models trained.
pub async fn training_round(state: &AppState, min_new_outcomes: u64) -> Result<usize, StoreError> {
    let mut control = state.control.begin().await?;
    let tenants = control.list_tenants().await?;
    control.commit().await?;
    let mut trained = 0;
    for tenant in tenants
        .into_iter()
        .filter(|t| t.status == TenantStatus::Active)
    {
        let mut tx = state.app.begin_tenant(tenant.id).await?;
        let mut due = Vec::new();
        for storm in tx.storms_with_experiments().await? {
            let new = match tx.latest_storm_model(storm).await? {
                Some(m) => tx.outcomes_new_to_model(storm, &m).await?,
                None => tx.outcomes_since_watermark(storm, 0).await?,
            };
            if new >= min_new_outcomes {
                due.push(storm);
            }
        }
        tx.rollback().await?;
        for storm in due {
            match train_tenant_storm(state, tenant.id, storm).await {
                Ok(summary) => {
                    if summary.retrained {
                        trained += 1;
                        tracing::info!(tenant = %tenant.id, storm = %storm, version = %summary.model.version, qini = summary.model.qini, "trained");
                    }
                }
                Err(e) => {
                    tracing::info!(tenant = %tenant.id, storm = %storm, code = e.code(), error = %e, "training skipped");
                }
            }
        }
    }
    Ok(trained)
}

/// The background trainer: waits one interval, runs a round, repeats until `shutdown` fires.
pub async fn run_trainer(
    state: AppState,
    interval: Duration,
    min_new_outcomes: u64,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        if let Err(e) = training_round(&state, min_new_outcomes).await {
            tracing::warn!(error = %e, "background training round failed; retrying next interval");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uplift::synthetic::{SyntheticStorm, SyntheticStormConfig};

    fn rows(n: usize) -> (SyntheticStorm, Vec<TrainingRow>) {
        let storm = SyntheticStorm::generate(&SyntheticStormConfig {
            properties: n,
            seed: 5,
            ..SyntheticStormConfig::default()
        })
        .expect("storm");
        let rows = storm
            .properties
            .iter()
            .zip(&storm.arms)
            .zip(&storm.converted)
            .map(|((p, a), c)| TrainingRow {
                property: p.clone(),
                arm: *a,
                converted: *c,
            })
            .collect();
        (storm, rows)
    }

    #[test]
    fn the_split_is_stratified_deterministic_and_disjoint() {
        let (_, rows) = rows(1_000);
        let (train, holdout) = stratified_split(&rows, 3);
        assert_eq!(train.len() + holdout.len(), rows.len());
        assert!(train.iter().all(|i| !holdout.contains(i)));
        assert_eq!(stratified_split(&rows, 3), (train.clone(), holdout.clone()));
        let share = |idx: &[usize]| {
            idx.iter().filter(|&&i| rows[i].converted).count() as f64 / idx.len() as f64
        };
        assert!((share(&train) - share(&holdout)).abs() < 0.02);
    }

    #[test]
    fn training_scores_every_property_with_provenance() {
        let (storm, rows) = rows(2_000);
        let fitted = fit_and_score(
            &storm.experiment,
            storm.storm_id,
            &rows,
            &storm.properties,
            42,
            Timestamp(1_800_000_000_000),
        )
        .expect("fit");
        assert_eq!(fitted.scores.len(), storm.properties.len());
        assert!(
            fitted
                .scores
                .iter()
                .all(|s| s.data_watermark == 42 && s.model_version == fitted.model.version)
        );
        assert!(
            fitted
                .model
                .version
                .starts_with(&storm_model_prefix(storm.storm_id))
        );
        assert!(fitted.model.qini > 0.0, "qini {}", fitted.model.qini);
    }

    #[test]
    fn too_few_rows_is_not_enough_data() {
        let (storm, rows) = rows(150);
        let err = fit_and_score(
            &storm.experiment,
            storm.storm_id,
            &rows,
            &storm.properties,
            1,
            Timestamp(1_800_000_000_000),
        )
        .err()
        .expect("refused");
        assert_eq!(err.code(), "not_enough_data");
        assert!(
            err.to_string()
                .starts_with("not enough data: need 100 per arm")
        );
    }
}
