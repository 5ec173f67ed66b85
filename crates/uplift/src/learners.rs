//! Uplift learners behind one trait: fit on features, treatment flags and outcomes, get a model that
//! predicts P(convert | treat), P(convert | hold) and their difference per row.
//!
//! - `TLearner`: two logistic regressions, one per arm.
//! - `BoostedTLearner`: two histogram gradient-boosted tree ensembles, one per arm (the stronger one).
//! - `ClassTransformation`: one logistic regression on Z = y·t + (1−y)(1−t), arms reweighted to equal
//!   size so that uplift = 2·P(Z = 1) − 1 holds for any treatment share; a pooled outcome model splits
//!   the uplift into the two probabilities.
//! - `SLearner`: one logistic regression with treatment as a plain feature. Kept as the known-weak
//!   reference (a linear model cannot let treatment interact with anything).

use domain::{Arm, PropertyId, StormId, Timestamp, UpliftScore};
use serde::{Deserialize, Serialize};

use crate::boosting::{BinnedMatrix, BoostedTrees, BoostingParams};
use crate::error::{Result, UpliftError, check_len};
use crate::logistic::{LogisticModel, LogisticParams};
use crate::matrix::Matrix;
use crate::stable_hash::Fnv1a;

/// Fewest rows per arm a learner accepts unless configured otherwise.
pub const DEFAULT_MIN_ROWS_PER_ARM: usize = 50;

/// One row's prediction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UpliftPrediction {
    pub p_treat: f64,
    pub p_hold: f64,
    /// p_treat − p_hold.
    pub uplift: f64,
}

impl UpliftPrediction {
    fn from_probabilities(p_treat: f64, p_hold: f64) -> Self {
        Self {
            p_treat,
            p_hold,
            uplift: p_treat - p_hold,
        }
    }
}

/// What a learner fits: implemented by every learner of this module.
pub trait UpliftLearner {
    /// The learner's stable name (stored in the model registry).
    fn name(&self) -> &'static str;
    /// Fits on `features` (finite), `treated` flags and `converted` outcomes, or says why not.
    fn fit(&self, features: &Matrix, treated: &[bool], converted: &[bool]) -> Result<UpliftModel>;
}

/// The fitted estimator inside a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Estimator {
    TwoLogistic {
        treat: LogisticModel,
        hold: LogisticModel,
    },
    TwoBoosted {
        treat: BoostedTrees,
        hold: BoostedTrees,
    },
    ClassTransformation {
        transformed: LogisticModel,
        pooled: LogisticModel,
        treatment_share: f64,
    },
    SingleLogistic {
        model: LogisticModel,
    },
}

/// A trained uplift model: learner name, version, training rows and the estimator. Serialisable so the
/// server can store it and ship it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpliftModel {
    learner: String,
    version: String,
    training_rows: u64,
    feature_count: usize,
    estimator: Estimator,
}

impl UpliftModel {
    fn new(
        learner: &str,
        training_rows: usize,
        feature_count: usize,
        estimator: Estimator,
    ) -> Self {
        // The default version fingerprints the fitted parameters: same data and settings, same version.
        let mut hasher = Fnv1a::default();
        hasher.write(learner.as_bytes());
        let logistic = |m: &LogisticModel, h: &mut Fnv1a| {
            h.write_f64(m.intercept);
            m.weights.iter().for_each(|w| h.write_f64(*w));
        };
        match &estimator {
            Estimator::TwoLogistic { treat, hold } => {
                logistic(treat, &mut hasher);
                logistic(hold, &mut hasher);
            }
            Estimator::TwoBoosted { treat, hold } => {
                treat.fingerprint(&mut hasher);
                hold.fingerprint(&mut hasher);
            }
            Estimator::ClassTransformation {
                transformed,
                pooled,
                treatment_share,
            } => {
                logistic(transformed, &mut hasher);
                logistic(pooled, &mut hasher);
                hasher.write_f64(*treatment_share);
            }
            Estimator::SingleLogistic { model } => logistic(model, &mut hasher),
        }
        let version = format!("{learner}-{:012x}", hasher.finish() >> 16);
        Self {
            learner: learner.to_owned(),
            version,
            training_rows: training_rows as u64,
            feature_count,
            estimator,
        }
    }

    pub fn learner(&self) -> &str {
        &self.learner
    }

    /// `<learner>-<fingerprint>` unless renamed with `with_version`.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub const fn training_rows(&self) -> u64 {
        self.training_rows
    }

    pub const fn feature_count(&self) -> usize {
        self.feature_count
    }

    /// Renames the version (e.g. the registry's `m-7`).
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Predicts one row (width `feature_count`, finite values).
    pub fn predict_row(&self, row: &[f64]) -> Result<UpliftPrediction> {
        check_len("feature columns", self.feature_count, row.len())?;
        if let Some(column) = row.iter().position(|v| !v.is_finite()) {
            return Err(UpliftError::NonFiniteFeature { row: 0, column });
        }
        Ok(self.predict_checked(row))
    }

    fn predict_checked(&self, row: &[f64]) -> UpliftPrediction {
        match &self.estimator {
            Estimator::TwoLogistic { treat, hold } => {
                UpliftPrediction::from_probabilities(treat.probability(row), hold.probability(row))
            }
            Estimator::TwoBoosted { treat, hold } => {
                UpliftPrediction::from_probabilities(treat.probability(row), hold.probability(row))
            }
            Estimator::ClassTransformation {
                transformed,
                pooled,
                treatment_share,
            } => {
                let uplift = 2.0 * transformed.probability(row) - 1.0;
                // Under randomisation P(y | x) = p_hold + share·uplift.
                let p_hold = (pooled.probability(row) - treatment_share * uplift).clamp(0.0, 1.0);
                let p_treat = (p_hold + uplift).clamp(0.0, 1.0);
                UpliftPrediction::from_probabilities(p_treat, p_hold)
            }
            Estimator::SingleLogistic { model } => {
                let mut augmented = Vec::with_capacity(row.len() + 1);
                augmented.extend_from_slice(row);
                augmented.push(1.0);
                let p_treat = model.probability(&augmented);
                augmented[row.len()] = 0.0;
                UpliftPrediction::from_probabilities(p_treat, model.probability(&augmented))
            }
        }
    }

    /// Predicts every row.
    pub fn predict(&self, features: &Matrix) -> Result<Vec<UpliftPrediction>> {
        check_len("feature columns", self.feature_count, features.cols())?;
        features.check_finite()?;
        Ok((0..features.rows())
            .map(|i| self.predict_checked(features.row(i)))
            .collect())
    }

    /// Just the uplift of every row.
    pub fn predict_uplift(&self, features: &Matrix) -> Result<Vec<f64>> {
        Ok(self
            .predict(features)?
            .into_iter()
            .map(|p| p.uplift)
            .collect())
    }

    /// The domain score record of one prediction; `trained_at` and the watermark come from the caller.
    pub fn score_record(
        &self,
        prediction: UpliftPrediction,
        property_id: PropertyId,
        storm_id: StormId,
        trained_at: Timestamp,
        data_watermark: i64,
    ) -> UpliftScore {
        UpliftScore {
            property_id,
            storm_id,
            uplift: prediction.uplift.clamp(-1.0, 1.0),
            p_treat: prediction.p_treat.clamp(0.0, 1.0),
            p_hold: prediction.p_hold.clamp(0.0, 1.0),
            model_version: self.version.clone(),
            trained_at,
            data_watermark,
        }
    }
}

/// The row indices of each arm after every input check the learners share.
struct ArmRows {
    treated: Vec<u32>,
    control: Vec<u32>,
}

fn check_training_input(
    features: &Matrix,
    treated: &[bool],
    converted: &[bool],
    min_rows_per_arm: usize,
) -> Result<ArmRows> {
    check_len("treatment flags", features.rows(), treated.len())?;
    check_len("outcomes", features.rows(), converted.len())?;
    if u32::try_from(features.rows()).is_err() {
        return Err(UpliftError::InvalidParameter {
            name: "rows",
            reason: "more than 4 billion rows".into(),
        });
    }
    features.check_finite()?;
    let mut arms = ArmRows {
        treated: Vec::new(),
        control: Vec::new(),
    };
    for (i, &t) in treated.iter().enumerate() {
        if t {
            arms.treated.push(i as u32)
        } else {
            arms.control.push(i as u32)
        }
    }
    let have = arms.treated.len().min(arms.control.len());
    let need = min_rows_per_arm.max(1);
    if have < need {
        return Err(UpliftError::NotEnoughData { need, have });
    }
    for (arm, rows) in [
        (Arm::Treatment, &arms.treated),
        (Arm::Control, &arms.control),
    ] {
        let positives = rows.iter().filter(|&&r| converted[r as usize]).count();
        if positives == 0 || positives == rows.len() {
            return Err(UpliftError::SingleOutcomeClass {
                arm,
                converted: positives > 0,
            });
        }
    }
    Ok(arms)
}

fn subset_labels(converted: &[bool], rows: &[u32]) -> Vec<bool> {
    rows.iter().map(|&r| converted[r as usize]).collect()
}

fn as_usize(rows: &[u32]) -> Vec<usize> {
    rows.iter().map(|&r| r as usize).collect()
}

/// Two logistic regressions, one per arm.
#[derive(Debug, Clone, Default)]
pub struct TLearner {
    pub params: LogisticParams,
    pub min_rows_per_arm: Option<usize>,
}

impl UpliftLearner for TLearner {
    fn name(&self) -> &'static str {
        "t_learner_logistic"
    }

    fn fit(&self, features: &Matrix, treated: &[bool], converted: &[bool]) -> Result<UpliftModel> {
        let arms = check_training_input(
            features,
            treated,
            converted,
            self.min_rows_per_arm.unwrap_or(DEFAULT_MIN_ROWS_PER_ARM),
        )?;
        let fit_arm = |rows: &[u32]| {
            LogisticModel::fit(
                &features.select_rows(&as_usize(rows)),
                &subset_labels(converted, rows),
                None,
                &self.params,
            )
        };
        let treat = fit_arm(&arms.treated)?;
        let hold = fit_arm(&arms.control)?;
        Ok(UpliftModel::new(
            self.name(),
            features.rows(),
            features.cols(),
            Estimator::TwoLogistic { treat, hold },
        ))
    }
}

/// Two gradient-boosted tree ensembles, one per arm, sharing one binning of the features.
#[derive(Debug, Clone, Default)]
pub struct BoostedTLearner {
    pub params: BoostingParams,
    pub min_rows_per_arm: Option<usize>,
}

impl UpliftLearner for BoostedTLearner {
    fn name(&self) -> &'static str {
        "t_learner_boosted_trees"
    }

    fn fit(&self, features: &Matrix, treated: &[bool], converted: &[bool]) -> Result<UpliftModel> {
        let arms = check_training_input(
            features,
            treated,
            converted,
            self.min_rows_per_arm.unwrap_or(DEFAULT_MIN_ROWS_PER_ARM),
        )?;
        let binned = BinnedMatrix::fit(features, self.params.max_bins)?;
        let treat = BoostedTrees::fit(&binned, &arms.treated, converted, &self.params)?;
        let hold = BoostedTrees::fit(&binned, &arms.control, converted, &self.params)?;
        Ok(UpliftModel::new(
            self.name(),
            features.rows(),
            features.cols(),
            Estimator::TwoBoosted { treat, hold },
        ))
    }
}

/// Class transformation with arm reweighting, plus a pooled outcome model for the two probabilities.
#[derive(Debug, Clone, Default)]
pub struct ClassTransformation {
    pub params: LogisticParams,
    pub min_rows_per_arm: Option<usize>,
}

impl UpliftLearner for ClassTransformation {
    fn name(&self) -> &'static str {
        "class_transformation_logistic"
    }

    fn fit(&self, features: &Matrix, treated: &[bool], converted: &[bool]) -> Result<UpliftModel> {
        let arms = check_training_input(
            features,
            treated,
            converted,
            self.min_rows_per_arm.unwrap_or(DEFAULT_MIN_ROWS_PER_ARM),
        )?;
        let n = features.rows() as f64;
        let share = arms.treated.len() as f64 / n;
        let z: Vec<bool> = treated
            .iter()
            .zip(converted)
            .map(|(&t, &y)| t == y)
            .collect();
        // Each arm weighs half in total (weights average 1), so P(Z = 1 | x) = (1 + uplift)/2.
        let weights: Vec<f64> = treated
            .iter()
            .map(|&t| if t { 0.5 / share } else { 0.5 / (1.0 - share) })
            .collect();
        let transformed = LogisticModel::fit(features, &z, Some(&weights), &self.params)?;
        let pooled = LogisticModel::fit(features, converted, None, &self.params)?;
        Ok(UpliftModel::new(
            self.name(),
            features.rows(),
            features.cols(),
            Estimator::ClassTransformation {
                transformed,
                pooled,
                treatment_share: share,
            },
        ))
    }
}

/// One logistic regression with treatment as an extra feature: the weak reference learner.
#[derive(Debug, Clone, Default)]
pub struct SLearner {
    pub params: LogisticParams,
    pub min_rows_per_arm: Option<usize>,
}

impl UpliftLearner for SLearner {
    fn name(&self) -> &'static str {
        "s_learner_logistic"
    }

    fn fit(&self, features: &Matrix, treated: &[bool], converted: &[bool]) -> Result<UpliftModel> {
        check_training_input(
            features,
            treated,
            converted,
            self.min_rows_per_arm.unwrap_or(DEFAULT_MIN_ROWS_PER_ARM),
        )?;
        let flags: Vec<f64> = treated.iter().map(|&t| if t { 1.0 } else { 0.0 }).collect();
        let model = LogisticModel::fit(
            &features.with_column(&flags)?,
            converted,
            None,
            &self.params,
        )?;
        Ok(UpliftModel::new(
            self.name(),
            features.rows(),
            features.cols(),
            Estimator::SingleLogistic { model },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_data() -> (Matrix, Vec<bool>, Vec<bool>) {
        // 400 rows; treatment raises conversion only where x > 0.
        let rows: Vec<Vec<f64>> = (0..400)
            .map(|i| vec![f64::from(i % 20) / 10.0 - 1.0])
            .collect();
        let treated: Vec<bool> = (0..400).map(|i| (i / 20) % 2 == 0).collect();
        let converted: Vec<bool> = (0..400)
            .map(|i| {
                let x = f64::from(i % 20) / 10.0 - 1.0;
                let t = (i / 20) % 2 == 0;
                let rate = if t && x > 0.0 { 7 } else { 2 };
                (i * 7919) % 10 < rate
            })
            .collect();
        (
            Matrix::from_rows(&rows).expect("matrix"),
            treated,
            converted,
        )
    }

    fn learners() -> Vec<Box<dyn UpliftLearner>> {
        vec![
            Box::new(TLearner::default()),
            Box::new(BoostedTLearner {
                params: BoostingParams {
                    trees: 20,
                    min_rows_per_leaf: 10,
                    ..BoostingParams::default()
                },
                ..Default::default()
            }),
            Box::new(ClassTransformation::default()),
            Box::new(SLearner::default()),
        ]
    }

    #[test]
    fn every_learner_ranks_the_responsive_half_higher_and_labels_its_model() {
        let (x, t, y) = small_data();
        for learner in learners() {
            let model = learner.fit(&x, &t, &y).expect("fit");
            assert_eq!(model.learner(), learner.name());
            assert_eq!(model.training_rows(), 400);
            assert!(model.version().starts_with(learner.name()));
            let high = model.predict_row(&[0.8]).expect("row");
            let low = model.predict_row(&[-0.8]).expect("row");
            assert!((high.uplift - (high.p_treat - high.p_hold)).abs() < 1e-12);
            if learner.name() != "s_learner_logistic" {
                assert!(
                    high.uplift > low.uplift + 0.1,
                    "{}: {high:?} vs {low:?}",
                    learner.name()
                );
            }
            // Refit gives the same model: deterministic.
            assert_eq!(learner.fit(&x, &t, &y).expect("refit"), model);
        }
    }

    #[test]
    fn too_few_rows_per_arm_is_not_enough_data() {
        let (x, t, y) = small_data();
        let few: Vec<usize> = (0..60).collect();
        let small = x.select_rows(&few);
        for learner in learners() {
            let err = learner
                .fit(&small, &t[..60], &y[..60])
                .expect_err("too few");
            assert_eq!(err.code(), "not_enough_data");
            assert_eq!(err.to_string(), "not enough data: need 50 per arm, have 20");
        }
    }

    #[test]
    fn one_outcome_class_nan_features_and_mismatched_lengths_are_refused() {
        let (x, t, y) = small_data();
        for learner in learners() {
            let never: Vec<bool> = y.iter().zip(&t).map(|(&y, &t)| y && !t).collect();
            assert_eq!(
                learner.fit(&x, &t, &never).expect_err("one class"),
                UpliftError::SingleOutcomeClass {
                    arm: Arm::Treatment,
                    converted: false
                }
            );
            let mut data = x.as_slice().to_vec();
            data[17] = f64::NAN;
            let nan = Matrix::new(x.rows(), x.cols(), data).expect("matrix");
            assert_eq!(
                learner.fit(&nan, &t, &y).expect_err("nan"),
                UpliftError::NonFiniteFeature { row: 17, column: 0 }
            );
            assert_eq!(
                learner.fit(&x, &t[1..], &y).expect_err("short").code(),
                "length_mismatch"
            );
            assert_eq!(
                learner.fit(&x, &t, &y[1..]).expect_err("short").code(),
                "length_mismatch"
            );
        }
        let model = TLearner::default().fit(&x, &t, &y).expect("fit");
        assert_eq!(
            model.predict_row(&[0.1, 0.2]).expect_err("width").code(),
            "length_mismatch"
        );
        assert_eq!(
            model.predict_row(&[f64::INFINITY]).expect_err("inf").code(),
            "non_finite_feature"
        );
    }

    #[test]
    fn models_round_trip_through_json_and_keep_their_version() {
        let (x, t, y) = small_data();
        let model = TLearner::default()
            .fit(&x, &t, &y)
            .expect("fit")
            .with_version("m-7");
        let json = serde_json::to_string(&model).expect("json");
        let back: UpliftModel = serde_json::from_str(&json).expect("parse");
        assert_eq!(back.version(), "m-7");
        assert_eq!(back.learner(), model.learner());
        // JSON may round the last bit of a float; predictions must agree far below any business meaning.
        let (a, b) = (
            model.predict_row(&[0.3]).expect("row"),
            back.predict_row(&[0.3]).expect("row"),
        );
        assert!((a.uplift - b.uplift).abs() < 1e-12);
        let score = model.score_record(
            model.predict_row(&[0.5]).expect("row"),
            PropertyId::nil(),
            StormId::nil(),
            Timestamp(1),
            3,
        );
        assert_eq!(score.model_version, "m-7");
    }
}
