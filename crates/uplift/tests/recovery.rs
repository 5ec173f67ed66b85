//! End-to-end checks on a synthetic storm: learners recover the true effect, and the policy built on
//! their scores beats random targeting at the same budget.

use domain::{Arm, Decision, PolicyMode};
use uplift::Matrix;
use uplift::boosting::BoostingParams;
use uplift::learners::{BoostedTLearner, ClassTransformation, TLearner, UpliftLearner};
use uplift::metrics::{qini_auc_score, spearman_correlation};
use uplift::policy::{PolicyCandidate, PolicyConfig, PolicyRequest, plan_decisions};
use uplift::synthetic::{SyntheticStorm, SyntheticStormConfig};

fn storm(properties: usize, seed: u64) -> SyntheticStorm {
    SyntheticStorm::generate(&SyntheticStormConfig {
        properties,
        seed,
        ..SyntheticStormConfig::default()
    })
    .expect("storm")
}

/// Fewer trees than the default keep this test quick in debug builds; the ranking is already good.
fn boosted() -> BoostedTLearner {
    BoostedTLearner {
        params: BoostingParams {
            trees: 60,
            max_depth: 3,
            ..BoostingParams::default()
        },
        ..Default::default()
    }
}

#[test]
fn learners_recover_the_true_effect_on_50000_properties() {
    let train = storm(50_000, 1);
    let (pipeline, x) = train.feature_matrix().expect("features");
    let treated = train.treated();
    // Scored on a fresh storm so the correlation is out of sample.
    let test = storm(20_000, 2);
    let x_test = pipeline
        .transform(&test.raw_table().expect("table"))
        .expect("transform");

    let boosted_model = boosted()
        .fit(&x, &treated, &train.converted)
        .expect("boosted fit");
    let t_model = TLearner::default()
        .fit(&x, &treated, &train.converted)
        .expect("t fit");
    let rho_boosted = spearman_correlation(
        &boosted_model.predict_uplift(&x_test).expect("predict"),
        &test.true_uplift,
    )
    .expect("rho");
    let rho_t = spearman_correlation(
        &t_model.predict_uplift(&x_test).expect("predict"),
        &test.true_uplift,
    )
    .expect("rho");
    let ct_model = ClassTransformation::default()
        .fit(&x, &treated, &train.converted)
        .expect("ct fit");
    let rho_ct = spearman_correlation(
        &ct_model.predict_uplift(&x_test).expect("predict"),
        &test.true_uplift,
    )
    .expect("rho");
    println!(
        "spearman(predicted, true uplift): boosted T-learner {rho_boosted:.3}, logistic T-learner {rho_t:.3}, class transformation {rho_ct:.3}"
    );
    assert!(rho_ct > 0.3, "class transformation spearman {rho_ct}");
    assert!(
        rho_boosted >= 0.7,
        "boosted T-learner spearman {rho_boosted}"
    );
    // The logistic T-learner is reported, and must at least rank in the right direction.
    assert!(rho_t > 0.3, "logistic T-learner spearman {rho_t}");

    let qini = qini_auc_score(
        &test.converted,
        &boosted_model.predict_uplift(&x_test).expect("predict"),
        &test.treated(),
        true,
    )
    .expect("qini");
    println!("boosted T-learner qini on the fresh storm: {qini:.4}");
    assert!(qini > 0.0);
}

/// Expected conversions when `treat[i]` says who is visited, from the true probabilities.
fn expected_conversions(storm: &SyntheticStorm, treat: &[bool]) -> f64 {
    storm
        .true_p_hold
        .iter()
        .zip(&storm.true_uplift)
        .zip(treat)
        .map(|((h, u), &t)| if t { h + u } else { *h })
        .sum()
}

#[test]
fn policy_beats_random_targeting_at_an_equal_budget() {
    let train = storm(20_000, 3);
    let (pipeline, x) = train.feature_matrix().expect("features");
    let model = boosted()
        .fit(&x, &train.treated(), &train.converted)
        .expect("fit");
    let field = storm(10_000, 4);
    let x_field: Matrix = pipeline
        .transform(&field.raw_table().expect("table"))
        .expect("transform");
    let uplift = model.predict_uplift(&x_field).expect("predict");
    let candidates: Vec<PolicyCandidate> = field
        .properties
        .iter()
        .zip(&uplift)
        .zip(&field.arms)
        .map(|((p, &u), &arm)| PolicyCandidate {
            property_id: p.id,
            uplift: u,
            arm,
        })
        .collect();
    let request = PolicyRequest {
        mode: PolicyMode::Moderate,
        capacity: Some(1_000),
        model_version: model.version(),
        config: PolicyConfig::default(),
    };
    let plan = plan_decisions(&candidates, &request).expect("plan");
    let policy_treat: Vec<bool> = plan.iter().map(|d| d.decision == Decision::Treat).collect();
    let budget = policy_treat.iter().filter(|&&t| t).count();
    assert_eq!(budget, 1_000);
    assert!(
        plan.iter()
            .zip(&field.arms)
            .all(|(d, &arm)| arm == Arm::Treatment || d.decision == Decision::Hold)
    );

    // Random targeting: the same number of treatment-arm properties, chosen by a fixed stride.
    let eligible: Vec<usize> = (0..field.arms.len())
        .filter(|&i| field.arms[i] == Arm::Treatment)
        .collect();
    let stride = eligible.len() / budget;
    let mut random_treat = vec![false; field.arms.len()];
    for &i in eligible.iter().step_by(stride).take(budget) {
        random_treat[i] = true;
    }
    let baseline = expected_conversions(&field, &vec![false; field.arms.len()]);
    let gain_policy = expected_conversions(&field, &policy_treat) - baseline;
    let gain_random = expected_conversions(&field, &random_treat) - baseline;
    println!(
        "extra conversions from 1,000 visits: policy {gain_policy:.1}, random {gain_random:.1}"
    );
    assert!(
        gain_policy > 1.3 * gain_random,
        "policy {gain_policy} vs random {gain_random}"
    );
}
