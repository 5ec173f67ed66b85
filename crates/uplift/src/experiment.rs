//! Experiments: deterministic arm assignment (a stable hash of the experiment seed and the property id),
//! an `ArmBook` that fixes each property's arm once, and the lift between arms with a 95% confidence
//! interval (Newcombe's hybrid score interval) and a two-proportion z-test.

use std::collections::HashMap;

use domain::{Arm, ArmAssignment, Experiment, ExperimentId, PropertyId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::{Result, UpliftError};
use crate::stable_hash::splitmix64;

/// The 97.5% quantile of the standard normal: two-sided 95% intervals.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// A property's position in [0, 1) for an experiment seed: uniform, reproducible on every machine, and
/// independent of every other property (so adding properties never moves an existing one).
pub fn assignment_draw(seed: u64, property: PropertyId) -> f64 {
    let bytes = property.as_uuid().as_bytes();
    let mut high = [0u8; 8];
    let mut low = [0u8; 8];
    high.copy_from_slice(&bytes[..8]);
    low.copy_from_slice(&bytes[8..]);
    let h = splitmix64(seed ^ 0x5354_4f52_4d4f_5053); // "STORMOPS": separates this use of the seed.
    let h = splitmix64(h ^ u64::from_be_bytes(high));
    let h = splitmix64(h ^ u64::from_be_bytes(low));
    // The top 53 bits make an exactly representable f64 in [0, 1).
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn check_share(treatment_share: f64) -> Result<()> {
    if treatment_share > 0.0 && treatment_share < 1.0 {
        Ok(())
    } else {
        Err(UpliftError::InvalidParameter {
            name: "treatment_share",
            reason: format!(
                "must be strictly between 0 and 1 so both arms exist, got {treatment_share}"
            ),
        })
    }
}

/// The arm of `property` under `seed` with the given treatment share.
pub fn arm_for(seed: u64, property: PropertyId, treatment_share: f64) -> Result<Arm> {
    check_share(treatment_share)?;
    Ok(if assignment_draw(seed, property) < treatment_share {
        Arm::Treatment
    } else {
        Arm::Control
    })
}

/// Every recorded arm of one experiment; refuses a second assignment of a property.
#[derive(Debug, Clone)]
pub struct ArmBook {
    experiment_id: ExperimentId,
    seed: u64,
    treatment_share: f64,
    arms: HashMap<PropertyId, Arm>,
}

impl ArmBook {
    /// An empty book for `experiment`.
    pub fn new(experiment: &Experiment) -> Result<Self> {
        check_share(experiment.treatment_share)?;
        Ok(Self {
            experiment_id: experiment.id,
            seed: experiment.seed,
            treatment_share: experiment.treatment_share,
            arms: HashMap::new(),
        })
    }

    /// Assigns `property` by the experiment's hash and records it.
    pub fn assign(&mut self, property: PropertyId, at: Timestamp) -> Result<ArmAssignment> {
        let arm = arm_for(self.seed, property, self.treatment_share)?;
        self.insert(property, arm)?;
        Ok(ArmAssignment {
            experiment_id: self.experiment_id,
            property_id: property,
            arm,
            assigned_at: at,
        })
    }

    /// Records an assignment made elsewhere (e.g. loaded from the store).
    pub fn record(&mut self, assignment: &ArmAssignment) -> Result<()> {
        if assignment.experiment_id != self.experiment_id {
            return Err(UpliftError::InvalidParameter {
                name: "experiment_id",
                reason: format!(
                    "assignment belongs to experiment {}, not {}",
                    assignment.experiment_id, self.experiment_id
                ),
            });
        }
        self.insert(assignment.property_id, assignment.arm)
    }

    fn insert(&mut self, property: PropertyId, arm: Arm) -> Result<()> {
        match self.arms.get(&property) {
            Some(&existing) if existing == arm => {
                Err(UpliftError::AlreadyAssigned { property, arm })
            }
            Some(&existing) => Err(UpliftError::ArmChangeRefused {
                property,
                existing,
                requested: arm,
            }),
            None => {
                self.arms.insert(property, arm);
                Ok(())
            }
        }
    }

    pub fn arm_of(&self, property: PropertyId) -> Option<Arm> {
        self.arms.get(&property).copied()
    }

    pub fn len(&self) -> usize {
        self.arms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.arms.is_empty()
    }
}

/// Rows and conversions of one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GroupOutcomes {
    pub rows: u64,
    pub conversions: u64,
}

impl GroupOutcomes {
    pub fn add(&mut self, converted: bool) {
        self.rows += 1;
        self.conversions += u64::from(converted);
    }

    pub fn rate(&self) -> f64 {
        self.conversions as f64 / self.rows as f64
    }
}

/// Treated conversion minus control conversion, with its 95% interval and test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LiftEstimate {
    pub treated_rate: f64,
    pub control_rate: f64,
    pub lift: f64,
    /// Newcombe's hybrid score interval (method 10): sound near 0 and 1 and with small groups.
    pub ci_low: f64,
    pub ci_high: f64,
    /// Pooled two-proportion z statistic; 0 when every row converted or none did.
    pub z: f64,
    /// Two-sided p-value of the z-test.
    pub p_value: f64,
}

fn wilson_interval(group: GroupOutcomes) -> (f64, f64) {
    let n = group.rows as f64;
    let p = group.rate();
    let z2 = Z_95 * Z_95;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z_95 / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    (centre - half, centre + half)
}

/// Lift between `treated` and `control` groups; each needs at least one row.
pub fn conversion_lift(treated: GroupOutcomes, control: GroupOutcomes) -> Result<LiftEstimate> {
    for group in [treated, control] {
        if group.rows == 0 {
            return Err(UpliftError::NotEnoughData { need: 1, have: 0 });
        }
        if group.conversions > group.rows {
            return Err(UpliftError::InvalidParameter {
                name: "conversions",
                reason: format!(
                    "{} conversions out of {} rows",
                    group.conversions, group.rows
                ),
            });
        }
    }
    let (p1, p2) = (treated.rate(), control.rate());
    let lift = p1 - p2;
    let (l1, u1) = wilson_interval(treated);
    let (l2, u2) = wilson_interval(control);
    let ci_low = lift - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt();
    let ci_high = lift + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt();
    let (n1, n2) = (treated.rows as f64, control.rows as f64);
    let pooled = (treated.conversions + control.conversions) as f64 / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    // With no variation at all there is no evidence of a difference: z = 0, p = 1.
    let z = if se > 0.0 { lift / se } else { 0.0 };
    let p_value = erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0);
    Ok(LiftEstimate {
        treated_rate: p1,
        control_rate: p2,
        lift,
        ci_low,
        ci_high,
        z,
        p_value,
    })
}

/// The error function (absolute error below 1e-13: Taylor series below 3, continued fraction above).
pub fn erf(x: f64) -> f64 {
    if x.abs() < 3.0 {
        erf_series(x)
    } else {
        x.signum() * (1.0 - erfc_continued_fraction(x.abs()))
    }
}

/// The complementary error function, accurate in relative terms in the far tail.
pub fn erfc(x: f64) -> f64 {
    if x >= 3.0 {
        erfc_continued_fraction(x)
    } else if x <= -3.0 {
        2.0 - erfc_continued_fraction(-x)
    } else {
        1.0 - erf_series(x)
    }
}

/// The standard normal cumulative distribution function.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

fn erf_series(x: f64) -> f64 {
    // erf(x) = 2/√π Σ (−1)ⁿ x^(2n+1) / (n!(2n+1)); below |x| = 3 the largest term is ~3e3, so
    // cancellation costs under four of sixteen digits.
    let x2 = x * x;
    let mut power = x;
    let mut sum = x;
    for n in 1..200 {
        power *= -x2 / f64::from(n);
        let term = power / f64::from(2 * n + 1);
        sum += term;
        if term.abs() < 1e-17 * sum.abs().max(1e-300) {
            break;
        }
    }
    sum * std::f64::consts::FRAC_2_SQRT_PI
}

fn erfc_continued_fraction(x: f64) -> f64 {
    // erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated from the tail; for
    // x ≥ 3 sixty levels are far beyond convergence.
    let mut tail = x;
    for k in (1..=60).rev() {
        tail = x + f64::from(k) / 2.0 / tail;
    }
    (-x * x).exp() / std::f64::consts::PI.sqrt() / tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn property(n: u128) -> PropertyId {
        PropertyId::from_uuid(Uuid::from_u128(
            0x0190_0000_0000_7000_8000_0000_0000_0000 + n * 7_919,
        ))
    }

    fn experiment(share: f64) -> Experiment {
        Experiment {
            id: ExperimentId::from_uuid(Uuid::from_u128(42)),
            storm_id: domain::StormId::nil(),
            treatment_share: share,
            seed: 20_260_412,
            started_at: Timestamp(1_780_000_000_000),
        }
    }

    #[test]
    fn assignment_is_a_fixed_function_of_seed_and_property() {
        // Pinned values: a change to the hash would silently move every property between arms.
        let p = PropertyId::from_uuid(Uuid::from_u128(0x0190_1234_5678_7abc_8def_0123_4567_89ab));
        let draw = assignment_draw(7, p);
        assert_eq!(draw, assignment_draw(7, p));
        assert_ne!(draw, assignment_draw(8, p));
        assert_eq!(format!("{draw:.12}"), PINNED_DRAW);
    }

    // Reproduced independently with a Python SplitMix64 over the same seed and UUID bytes.
    const PINNED_DRAW: &str = "0.197330321054";

    #[test]
    fn treatment_share_is_respected_and_adding_properties_moves_no_one() {
        let ids: Vec<PropertyId> = (0..20_000).map(property).collect();
        let seed = experiment(0.8).seed;
        let arms: Vec<Arm> = ids
            .iter()
            .map(|&p| arm_for(seed, p, 0.8).expect("arm"))
            .collect();
        let treated =
            arms.iter().filter(|&&a| a == Arm::Treatment).count() as f64 / ids.len() as f64;
        // 20,000 draws: the share's standard error is 0.003.
        assert!((treated - 0.8).abs() < 0.015, "{treated}");
        let mut book = ArmBook::new(&experiment(0.8)).expect("book");
        for &p in ids.iter().take(100) {
            book.assign(p, Timestamp(1)).expect("assign");
        }
        for (i, &p) in ids.iter().enumerate().take(100) {
            assert_eq!(book.arm_of(p), Some(arms[i]));
        }
    }

    #[test]
    fn a_property_cannot_be_assigned_twice_or_change_arms() {
        let mut book = ArmBook::new(&experiment(0.5)).expect("book");
        let p = property(1);
        let first = book.assign(p, Timestamp(1)).expect("assign");
        let again = book.assign(p, Timestamp(2)).expect_err("twice");
        assert_eq!(
            again,
            UpliftError::AlreadyAssigned {
                property: p,
                arm: first.arm
            }
        );
        assert_eq!(again.code(), "already_assigned");
        let other = if first.arm == Arm::Treatment {
            Arm::Control
        } else {
            Arm::Treatment
        };
        let moved = ArmAssignment {
            arm: other,
            ..first.clone()
        };
        assert_eq!(
            book.record(&moved).expect_err("change"),
            UpliftError::ArmChangeRefused {
                property: p,
                existing: first.arm,
                requested: other
            }
        );
        assert_eq!(book.len(), 1);
        let foreign = ArmAssignment {
            experiment_id: ExperimentId::nil(),
            property_id: property(2),
            ..first
        };
        assert_eq!(
            book.record(&foreign).expect_err("foreign").code(),
            "invalid_parameter"
        );
        assert_eq!(
            ArmBook::new(&experiment(1.0)).expect_err("share").code(),
            "invalid_parameter"
        );
    }

    #[test]
    fn erf_and_normal_cdf_match_reference_values() {
        let cases = [
            (erf(0.5), 0.520_499_877_813_046_5),
            (erf(1.0), 0.842_700_792_949_714_9),
            (erf(-2.0), -0.995_322_265_018_952_7),
            (erf(3.5), 0.999_999_256_901_627_7),
            (erfc(3.0), 2.209_049_699_858_544e-5),
            (normal_cdf(1.959_963_984_540_054), 0.975),
            (normal_cdf(-1.0), 0.158_655_253_931_457_05),
            (normal_cdf(0.0), 0.5),
        ];
        for (got, want) in cases {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        // The far tail keeps relative accuracy: erfc(5) = 1.5374597944280349e-12.
        assert!((erfc(5.0) / 1.537_459_794_428_035e-12 - 1.0).abs() < 1e-10);
        // Both sides of the switch between the two methods (scipy.special.erfc values).
        assert!((erfc(2.99) - 2.352_560_308_064_020_5e-5).abs() < 1e-13);
        assert!((erfc(3.01) - 2.073_896_363_713_264_5e-5).abs() < 1e-13);
    }

    #[test]
    fn lift_interval_and_test_match_statsmodels() {
        let est = conversion_lift(
            GroupOutcomes {
                rows: 70,
                conversions: 56,
            },
            GroupOutcomes {
                rows: 80,
                conversions: 48,
            },
        )
        .expect("lift");
        assert!((est.lift - 0.2).abs() < 1e-12);
        assert_close(est.ci_low, NEWCOMBE_LOW);
        assert_close(est.ci_high, NEWCOMBE_HIGH);
        assert_close(est.z, Z_STAT);
        assert_close(est.p_value, P_VALUE);
    }

    // statsmodels 0.14: confint_proportions_2indep(56, 70, 48, 80, method="newcomb") and proportions_ztest.
    const NEWCOMBE_LOW: f64 = 0.052_431_472_402_364_98;
    const NEWCOMBE_HIGH: f64 = 0.333_872_654_036_906_14;
    const Z_STAT: f64 = 2.650_171_951_258_533_6;
    const P_VALUE: f64 = 0.008_045_081_368_196_56;

    fn assert_close(got: f64, want: f64) {
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    }

    #[test]
    fn lift_needs_rows_in_both_groups_and_handles_no_variation() {
        let empty = GroupOutcomes::default();
        let some = GroupOutcomes {
            rows: 10,
            conversions: 3,
        };
        assert_eq!(
            conversion_lift(some, empty).expect_err("empty").code(),
            "not_enough_data"
        );
        let none = GroupOutcomes {
            rows: 10,
            conversions: 0,
        };
        let est = conversion_lift(none, none).expect("lift");
        assert_eq!((est.z, est.p_value), (0.0, 1.0));
        assert!(est.ci_low < 0.0 && est.ci_high > 0.0);
    }
}
