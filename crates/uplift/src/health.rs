//! The data-health checks the office expects (PRODUCT.md): uplift mean and spread, conversion lift,
//! recent volume and nulls in required fields, with configurable thresholds and the runbook to follow.

use domain::{DataQualityMetric, Property, QualityMetricId, QualityStatus, StormId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::{Result, UpliftError};

/// The runbook of the uplift checks.
pub const RUNBOOK_UPLIFT: &str = "check storm features, feature pipeline, data quality; retrain";
/// The runbook of the conversion-lift check.
pub const RUNBOOK_LIFT: &str =
    "verify policy compliance, control contamination, assignments; analyse by segment";
/// The runbook of the volume check.
pub const RUNBOOK_VOLUME: &str = "check sync backlog, devices, upstream imports, error logs";
/// The runbook of the nulls check.
pub const RUNBOOK_NULLS: &str = "find the writer, fix validation";

/// Thresholds (defaults from PRODUCT.md; configurable per tenant).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HealthThresholds {
    pub uplift_mean_low: f64,
    pub uplift_mean_high: f64,
    pub uplift_stddev_low: f64,
    pub uplift_stddev_high: f64,
    /// Treated − control conversion, as a fraction (0.05 = 5 points).
    pub min_conversion_lift: f64,
    /// Events of the last 24 h as a share of the storm's total.
    pub min_recent_volume_share: f64,
    pub max_required_nulls: u64,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        Self {
            uplift_mean_low: 0.10,
            uplift_mean_high: 0.30,
            uplift_stddev_low: 0.02,
            uplift_stddev_high: 0.25,
            min_conversion_lift: 0.05,
            min_recent_volume_share: 0.10,
            max_required_nulls: 0,
        }
    }
}

impl HealthThresholds {
    /// The field names a tenant may override, in declaration order.
    pub const FIELDS: [&'static str; 7] = [
        "uplift_mean_low",
        "uplift_mean_high",
        "uplift_stddev_low",
        "uplift_stddev_high",
        "min_conversion_lift",
        "min_recent_volume_share",
        "max_required_nulls",
    ];

    /// The defaults with a tenant's overrides (a JSON object of some of [`Self::FIELDS`]) applied,
    /// refusing unknown names, non-numbers, negatives, values above 1 for shares and means, and a low
    /// bound above its high bound: a typo never silently turns an alert off.
    pub fn with_overrides(overrides: &serde_json::Value) -> Result<Self> {
        let bad = |reason: String| UpliftError::InvalidParameter {
            name: "health thresholds",
            reason,
        };
        let extra = overrides
            .as_object()
            .ok_or_else(|| bad("health thresholds must be a JSON object".into()))?;
        let mut merged = serde_json::to_value(Self::default())
            .map_err(|e| bad(format!("health thresholds: {e}")))?;
        let base = merged
            .as_object_mut()
            .ok_or_else(|| bad("health thresholds: not an object".into()))?;
        for (name, value) in extra {
            if !Self::FIELDS.contains(&name.as_str()) {
                return Err(bad(format!(
                    "unknown health threshold `{name}`; known: {}",
                    Self::FIELDS.join(", ")
                )));
            }
            let number = value
                .as_f64()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| bad(format!("health threshold `{name}` must be a number ≥ 0")))?;
            if name == "max_required_nulls" {
                if value.as_u64().is_none() {
                    return Err(bad(
                        "health threshold `max_required_nulls` must be a whole number".into(),
                    ));
                }
            } else if number > 1.0 {
                return Err(bad(format!(
                    "health threshold `{name}` is a share and must be at most 1"
                )));
            }
            base.insert(name.clone(), value.clone());
        }
        let merged: Self =
            serde_json::from_value(merged).map_err(|e| bad(format!("health thresholds: {e}")))?;
        if merged.uplift_mean_low > merged.uplift_mean_high {
            return Err(bad(
                "uplift_mean_low must not be above uplift_mean_high".into()
            ));
        }
        if merged.uplift_stddev_low > merged.uplift_stddev_high {
            return Err(bad(
                "uplift_stddev_low must not be above uplift_stddev_high".into(),
            ));
        }
        Ok(merged)
    }
}

/// The checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheck {
    UpliftMean,
    UpliftStddev,
    ConversionLift,
    Volume,
    Nulls,
}

impl HealthCheck {
    /// The stable check name stored in `DataQualityMetric.check`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UpliftMean => "uplift_mean",
            Self::UpliftStddev => "uplift_stddev",
            Self::ConversionLift => "conversion_lift",
            Self::Volume => "volume",
            Self::Nulls => "nulls",
        }
    }

    pub const fn runbook(self) -> &'static str {
        match self {
            Self::UpliftMean | Self::UpliftStddev => RUNBOOK_UPLIFT,
            Self::ConversionLift => RUNBOOK_LIFT,
            Self::Volume => RUNBOOK_VOLUME,
            Self::Nulls => RUNBOOK_NULLS,
        }
    }
}

/// What the checks look at; a check whose input is None is not run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HealthInput<'a> {
    /// The current uplift scores of the storm.
    pub uplift_scores: Option<&'a [f64]>,
    /// Treated − control conversion (e.g. `conversion_lift(..).lift`).
    pub conversion_lift: Option<f64>,
    /// (events in the last 24 h, events of the storm in total).
    pub volume: Option<(u64, u64)>,
    /// Nulls found in required fields (see `count_required_nulls`).
    pub required_nulls: Option<u64>,
}

/// One check's reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReading {
    pub check: HealthCheck,
    pub value: f64,
    pub expected_low: f64,
    pub expected_high: f64,
    pub status: QualityStatus,
    pub runbook: String,
}

impl HealthReading {
    fn new(check: HealthCheck, value: f64, expected_low: f64, expected_high: f64) -> Self {
        let inside = value >= expected_low && value <= expected_high;
        Self {
            check,
            value,
            expected_low,
            expected_high,
            status: if inside {
                QualityStatus::Ok
            } else {
                QualityStatus::Alert
            },
            runbook: check.runbook().to_owned(),
        }
    }

    /// The domain record; id and time come from the caller.
    pub fn into_metric(
        self,
        id: QualityMetricId,
        storm_id: Option<StormId>,
        measured_at: Timestamp,
    ) -> DataQualityMetric {
        DataQualityMetric {
            id,
            storm_id,
            check: self.check.as_str().to_owned(),
            value: self.value,
            expected_low: self.expected_low,
            expected_high: self.expected_high,
            status: self.status,
            runbook: self.runbook,
            measured_at,
        }
    }
}

/// Runs every check whose input is present.
pub fn run_health_checks(
    input: &HealthInput<'_>,
    thresholds: &HealthThresholds,
) -> Result<Vec<HealthReading>> {
    let mut readings = Vec::new();
    if let Some(scores) = input.uplift_scores {
        if scores.is_empty() {
            return Err(UpliftError::EmptyInput {
                action: "check uplift health on",
            });
        }
        if let Some(row) = scores.iter().position(|s| !s.is_finite()) {
            return Err(UpliftError::NonFiniteScore { row });
        }
        let n = scores.len() as f64;
        let mean = scores.iter().sum::<f64>() / n;
        let stddev = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n).sqrt();
        readings.push(HealthReading::new(
            HealthCheck::UpliftMean,
            mean,
            thresholds.uplift_mean_low,
            thresholds.uplift_mean_high,
        ));
        readings.push(HealthReading::new(
            HealthCheck::UpliftStddev,
            stddev,
            thresholds.uplift_stddev_low,
            thresholds.uplift_stddev_high,
        ));
    }
    if let Some(lift) = input.conversion_lift {
        if !lift.is_finite() {
            return Err(UpliftError::InvalidParameter {
                name: "conversion_lift",
                reason: "not a finite number".into(),
            });
        }
        readings.push(HealthReading::new(
            HealthCheck::ConversionLift,
            lift,
            thresholds.min_conversion_lift,
            1.0,
        ));
    }
    if let Some((recent, total)) = input.volume {
        // A storm with no events at all is as silent as it gets: share 0, which alerts.
        let share = if total == 0 {
            0.0
        } else {
            recent as f64 / total as f64
        };
        readings.push(HealthReading::new(
            HealthCheck::Volume,
            share,
            thresholds.min_recent_volume_share,
            1.0,
        ));
    }
    if let Some(nulls) = input.required_nulls {
        readings.push(HealthReading::new(
            HealthCheck::Nulls,
            nulls as f64,
            0.0,
            thresholds.max_required_nulls as f64,
        ));
    }
    Ok(readings)
}

/// Nulls in the fields a property must have: blank external id or address, non-finite coordinates.
pub fn count_required_nulls(properties: &[Property]) -> u64 {
    properties
        .iter()
        .map(|p| {
            u64::from(p.external_id.trim().is_empty())
                + u64::from(p.address.trim().is_empty())
                + u64::from(!p.latitude.is_finite())
                + u64::from(!p.longitude.is_finite())
        })
        .sum()
}

#[cfg(test)]
mod tests {

    #[test]
    fn threshold_overrides_apply_and_bad_ones_are_refused() {
        let got = HealthThresholds::with_overrides(&serde_json::json!({
            "uplift_mean_high": 0.5, "max_required_nulls": 3
        }))
        .expect("valid overrides");
        assert_eq!(got.uplift_mean_high, 0.5);
        assert_eq!(got.max_required_nulls, 3);
        assert_eq!(
            got.uplift_mean_low,
            HealthThresholds::default().uplift_mean_low
        );
        for bad in [
            serde_json::json!({ "uplift_mean_hi": 0.5 }),
            serde_json::json!({ "uplift_mean_high": "high" }),
            serde_json::json!({ "min_conversion_lift": -0.1 }),
            serde_json::json!({ "min_recent_volume_share": 2.0 }),
            serde_json::json!({ "max_required_nulls": 1.5 }),
            serde_json::json!({ "uplift_mean_low": 0.4, "uplift_mean_high": 0.3 }),
            serde_json::json!([1, 2]),
        ] {
            assert!(
                HealthThresholds::with_overrides(&bad).is_err(),
                "{bad} must be refused"
            );
        }
    }

    use super::*;

    fn status_of(readings: &[HealthReading], check: HealthCheck) -> QualityStatus {
        readings
            .iter()
            .find(|r| r.check == check)
            .map(|r| r.status)
            .expect("check ran")
    }

    #[test]
    fn healthy_inputs_pass_every_check() {
        let scores: Vec<f64> = (0..100).map(|i| 0.05 + f64::from(i) * 0.003).collect();
        let input = HealthInput {
            uplift_scores: Some(&scores),
            conversion_lift: Some(0.08),
            volume: Some((300, 1_000)),
            required_nulls: Some(0),
        };
        let readings = run_health_checks(&input, &HealthThresholds::default()).expect("checks");
        assert_eq!(readings.len(), 5);
        assert!(
            readings.iter().all(|r| r.status == QualityStatus::Ok),
            "{readings:?}"
        );
    }

    #[test]
    fn each_check_flags_its_own_failure_with_its_runbook() {
        let flat = vec![0.35; 50];
        let input = HealthInput {
            uplift_scores: Some(&flat),
            conversion_lift: Some(0.03),
            volume: Some((50, 1_000)),
            required_nulls: Some(2),
        };
        let readings = run_health_checks(&input, &HealthThresholds::default()).expect("checks");
        for check in [
            HealthCheck::UpliftMean,
            HealthCheck::UpliftStddev,
            HealthCheck::ConversionLift,
            HealthCheck::Volume,
            HealthCheck::Nulls,
        ] {
            assert_eq!(
                status_of(&readings, check),
                QualityStatus::Alert,
                "{check:?}"
            );
        }
        let lift = readings
            .iter()
            .find(|r| r.check == HealthCheck::ConversionLift)
            .expect("lift");
        assert!(lift.runbook.contains("control contamination"));
        let metric =
            lift.clone()
                .into_metric(QualityMetricId::nil(), None, Timestamp(1_780_000_000_000));
        assert_eq!(metric.check, "conversion_lift");
        assert_eq!(metric.expected_low, 0.05);
    }

    #[test]
    fn thresholds_are_configurable_and_bad_input_is_refused() {
        let loose = HealthThresholds {
            min_conversion_lift: 0.01,
            ..HealthThresholds::default()
        };
        let input = HealthInput {
            conversion_lift: Some(0.03),
            ..HealthInput::default()
        };
        let readings = run_health_checks(&input, &loose).expect("checks");
        assert_eq!(readings.len(), 1);
        assert_eq!(readings[0].status, QualityStatus::Ok);
        let empty: [f64; 0] = [];
        let input = HealthInput {
            uplift_scores: Some(&empty),
            ..HealthInput::default()
        };
        assert_eq!(
            run_health_checks(&input, &loose).expect_err("empty").code(),
            "empty_input"
        );
        let input = HealthInput {
            volume: Some((0, 0)),
            ..HealthInput::default()
        };
        assert_eq!(
            run_health_checks(&input, &loose).expect("checks")[0].status,
            QualityStatus::Alert
        );
    }
}
