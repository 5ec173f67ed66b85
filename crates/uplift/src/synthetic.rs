//! A seeded synthetic storm: properties with realistic attributes around a storm centre, a known true
//! baseline probability and treatment effect per property, arms from `experiment`, and outcomes drawn
//! from them. Tests and benchmarks use the truth to check that learners and policies recover it.
//!
//! The true effect is largest for old asphalt (and wood) roofs near the core under big hail; the
//! baseline rises with prior claims, home value and damage. Some attributes are left missing on purpose.

use domain::{
    Arm, Cents, Experiment, ExperimentId, Property, PropertyId, PropertyStatus, RoofMaterial,
    StormId, Timestamp,
};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

use crate::error::{Result, UpliftError};
use crate::experiment::arm_for;
use crate::features::{FittedPipeline, RawTable, property_feature_spec, property_table};
use crate::logistic::sigmoid;
use crate::matrix::Matrix;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticStormConfig {
    pub properties: usize,
    pub seed: u64,
    pub treatment_share: f64,
    pub centre_latitude: f64,
    pub centre_longitude: f64,
    /// Properties lie uniformly in a disc of this radius around the centre.
    pub radius_km: f64,
    /// Hail diameter at the core, inches.
    pub core_hail_in: f64,
    /// Chance that roof age or square feet is missing (hail size: half of it).
    pub missing_rate: f64,
    /// Stamped on the experiment (no clock is read).
    pub started_at: Timestamp,
}

impl Default for SyntheticStormConfig {
    fn default() -> Self {
        Self {
            properties: 10_000,
            seed: 1,
            treatment_share: 0.5,
            centre_latitude: 35.22,
            centre_longitude: -97.44,
            radius_km: 15.0,
            core_hail_in: 2.5,
            missing_rate: 0.03,
            started_at: Timestamp(1_775_000_000_000),
        }
    }
}

/// A generated storm with its ground truth.
#[derive(Debug, Clone)]
pub struct SyntheticStorm {
    pub storm_id: StormId,
    pub experiment: Experiment,
    pub properties: Vec<Property>,
    pub arms: Vec<Arm>,
    /// True P(convert | hold).
    pub true_p_hold: Vec<f64>,
    /// True P(convert | treat) − P(convert | hold).
    pub true_uplift: Vec<f64>,
    /// Observed outcome under the assigned arm.
    pub converted: Vec<bool>,
}

fn random_uuid(rng: &mut ChaCha8Rng) -> Uuid {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// A standard normal draw (Box-Muller), so no extra distribution crate is needed.
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.r#gen::<f64>();
    let u2: f64 = rng.r#gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn material(rng: &mut ChaCha8Rng) -> RoofMaterial {
    let u: f64 = rng.r#gen();
    let table = [
        (0.60, RoofMaterial::AsphaltShingle),
        (0.70, RoofMaterial::Metal),
        (0.78, RoofMaterial::Tile),
        (0.85, RoofMaterial::WoodShake),
        (0.88, RoofMaterial::Slate),
        (0.93, RoofMaterial::Flat),
    ];
    table
        .iter()
        .find(|(cut, _)| u < *cut)
        .map_or(RoofMaterial::Other, |(_, m)| *m)
}

/// How much a roof of this material gains from a visit after hail (asphalt most, metal and slate least).
fn susceptibility(material: RoofMaterial) -> f64 {
    match material {
        RoofMaterial::AsphaltShingle => 1.0,
        RoofMaterial::WoodShake => 0.85,
        RoofMaterial::Other => 0.6,
        RoofMaterial::Flat => 0.5,
        RoofMaterial::Tile => 0.35,
        RoofMaterial::Slate => 0.2,
        RoofMaterial::Metal => 0.15,
    }
}

impl SyntheticStorm {
    /// Generates the storm; the same config always gives the same storm.
    pub fn generate(config: &SyntheticStormConfig) -> Result<Self> {
        if config.properties == 0 {
            return Err(UpliftError::EmptyInput {
                action: "generate a storm with",
            });
        }
        if !(0.0..=1.0).contains(&config.missing_rate) || config.radius_km <= 0.0 {
            return Err(UpliftError::InvalidParameter {
                name: "synthetic storm config",
                reason: "missing_rate must be in [0, 1] and radius_km positive".into(),
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let storm_id = StormId::from_uuid(random_uuid(&mut rng));
        let experiment = Experiment {
            id: ExperimentId::from_uuid(random_uuid(&mut rng)),
            storm_id,
            treatment_share: config.treatment_share,
            seed: rng.next_u64(),
            started_at: config.started_at,
        };
        // Outcomes use their own stream so that changing outcome draws never changes attributes.
        let mut outcome_rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x6f75_7463_6f6d_6573);
        let n = config.properties;
        let mut storm = Self {
            storm_id,
            experiment,
            properties: Vec::with_capacity(n),
            arms: Vec::with_capacity(n),
            true_p_hold: Vec::with_capacity(n),
            true_uplift: Vec::with_capacity(n),
            converted: Vec::with_capacity(n),
        };
        for i in 0..n {
            let id = PropertyId::from_uuid(random_uuid(&mut rng));
            let distance = config.radius_km * rng.r#gen::<f64>().sqrt();
            let angle = std::f64::consts::TAU * rng.r#gen::<f64>();
            let latitude = config.centre_latitude + distance * angle.sin() / 111.0;
            let longitude = config.centre_longitude
                + distance * angle.cos() / (111.0 * config.centre_latitude.to_radians().cos());
            let roof_age =
                40.0 * (rng.r#gen::<f64>() + rng.r#gen::<f64>() + rng.r#gen::<f64>()) / 3.0;
            let roof = material(&mut rng);
            let square_feet = (1_900f64.ln() + 0.3 * normal(&mut rng)).exp();
            let home_value = square_feet * 150.0 * (0.25 * normal(&mut rng)).exp();
            let hail = (config.core_hail_in
                * (-distance / 12.0).exp()
                * (0.85 + 0.3 * rng.r#gen::<f64>()))
            .clamp(0.25, 5.0);
            let claims_draw: f64 = rng.r#gen();
            let prior_claims = match claims_draw {
                u if u < 0.70 => 0,
                u if u < 0.90 => 1,
                u if u < 0.98 => 2,
                _ => 3,
            };

            let damage = (hail / 2.5).min(1.4);
            let age_factor = roof_age.min(30.0) / 30.0;
            let proximity = (-distance / 8.0).exp();
            let value_z = (home_value / 285_000.0).ln() / 0.39;
            let p_hold =
                sigmoid(-2.2 + 0.35 * f64::from(prior_claims) + 0.4 * value_z + 0.5 * damage);
            let effect = 0.02
                + 0.45 * susceptibility(roof) * age_factor * (0.3 + 0.7 * damage)
                + 0.10 * proximity;
            let p_treat = (p_hold + effect).min(0.99);

            let missing = |rng: &mut ChaCha8Rng, rate: f64| rng.r#gen::<f64>() < rate;
            let property = Property {
                id,
                storm_id,
                external_id: format!("SYN-{i:07}"),
                address: format!("{} Hail Storm Rd", 100 + i),
                latitude,
                longitude,
                roof_age_years: (!missing(&mut rng, config.missing_rate))
                    .then_some((roof_age * 10.0).round() / 10.0),
                roof_material: Some(roof),
                square_feet: (!missing(&mut rng, config.missing_rate))
                    .then_some(square_feet.round()),
                home_value: Some(Cents((home_value * 100.0).round() as i64)),
                hail_size_in: (!missing(&mut rng, config.missing_rate / 2.0))
                    .then_some((hail * 100.0).round() / 100.0),
                distance_to_core_km: Some((distance * 1000.0).round() / 1000.0),
                prior_claims,
                owner_name: None,
                owner_phone: None,
                owner_email: None,
                status: PropertyStatus::New,
            };
            let arm = arm_for(storm.experiment.seed, id, config.treatment_share)?;
            let p = if arm == Arm::Treatment {
                p_treat
            } else {
                p_hold
            };
            storm.converted.push(outcome_rng.r#gen::<f64>() < p);
            storm.arms.push(arm);
            storm.true_p_hold.push(p_hold);
            storm.true_uplift.push(p_treat - p_hold);
            storm.properties.push(property);
        }
        Ok(storm)
    }

    /// Treatment flags in property order.
    pub fn treated(&self) -> Vec<bool> {
        self.arms.iter().map(|&a| a == Arm::Treatment).collect()
    }

    /// True P(convert | treat).
    pub fn true_p_treat(&self) -> Vec<f64> {
        self.true_p_hold
            .iter()
            .zip(&self.true_uplift)
            .map(|(h, u)| h + u)
            .collect()
    }

    /// The raw property feature table.
    pub fn raw_table(&self) -> Result<RawTable> {
        property_table(&self.properties)
    }

    /// The property feature matrix, with the pipeline fitted on this storm.
    pub fn feature_matrix(&self) -> Result<(FittedPipeline, Matrix)> {
        let table = self.raw_table()?;
        let pipeline = FittedPipeline::fit(&property_feature_spec(), &table)?;
        let matrix = pipeline.transform(&table)?;
        Ok((pipeline, matrix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::Validate;

    #[test]
    fn generation_is_reproducible_valid_and_realistic() {
        let config = SyntheticStormConfig {
            properties: 5_000,
            seed: 9,
            ..SyntheticStormConfig::default()
        };
        let a = SyntheticStorm::generate(&config).expect("storm");
        let b = SyntheticStorm::generate(&config).expect("storm");
        assert_eq!(a.properties, b.properties);
        assert_eq!(a.converted, b.converted);
        for p in &a.properties {
            p.validate(Timestamp(1_775_000_000_000))
                .expect("valid property");
        }
        let mean = a.true_uplift.iter().sum::<f64>() / 5_000.0;
        let sd = (a
            .true_uplift
            .iter()
            .map(|u| (u - mean).powi(2))
            .sum::<f64>()
            / 5_000.0)
            .sqrt();
        // Shaped like the product's expectation: uplift mean about 0.20, spread about 0.10.
        assert!((0.12..0.28).contains(&mean), "mean {mean}");
        assert!((0.05..0.15).contains(&sd), "sd {sd}");
        assert!(a.properties.iter().any(|p| p.roof_age_years.is_none()));
        let (pipeline, x) = a.feature_matrix().expect("features");
        assert_eq!(x.rows(), 5_000);
        assert_eq!(x.cols(), pipeline.width());
        assert!(x.check_finite().is_ok());
    }

    #[test]
    fn the_truth_favours_old_asphalt_roofs_near_the_core() {
        let storm = SyntheticStorm::generate(&SyntheticStormConfig {
            properties: 5_000,
            ..Default::default()
        })
        .expect("storm");
        let mut favoured = Vec::new();
        let mut other = Vec::new();
        for (p, u) in storm.properties.iter().zip(&storm.true_uplift) {
            let old = p.roof_age_years.is_some_and(|a| a > 25.0);
            let near = p.distance_to_core_km.is_some_and(|d| d < 5.0);
            if old && near && p.roof_material == Some(RoofMaterial::AsphaltShingle) {
                favoured.push(*u);
            } else if p.roof_material == Some(RoofMaterial::Metal) {
                other.push(*u);
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!(
            mean(&favoured) > mean(&other) + 0.2,
            "{} vs {}",
            mean(&favoured),
            mean(&other)
        );
    }

    #[test]
    fn empty_storms_are_refused() {
        let config = SyntheticStormConfig {
            properties: 0,
            ..SyntheticStormConfig::default()
        };
        assert_eq!(
            SyntheticStorm::generate(&config).expect_err("empty").code(),
            "empty_input"
        );
    }
}
