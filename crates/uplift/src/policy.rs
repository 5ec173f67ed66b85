//! The treat/hold policy: a pure function from the last uplift scores to decisions, so the office and
//! an offline laptop compute the same plan. The experiment's control holdout is always held; among the
//! treatment arm the policy treats the top of the uplift ranking (positive uplift only) down to the
//! mode's share, capped by crew capacity. Realised lift joins outcomes to decisions.

use std::collections::{HashMap, HashSet};

use domain::{
    Arm, Decision, DecisionId, Outcome, PolicyDecision, PolicyMode, PropertyId, StormId, Timestamp,
    UpliftScore, UserId,
};
use serde::{Deserialize, Serialize};

use crate::error::{Result, UpliftError};
use crate::experiment::{GroupOutcomes, LiftEstimate, conversion_lift};

/// How far down the ranking each mode treats, as a share of the treatment-arm properties.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PolicyConfig {
    pub conservative_share: f64,
    pub moderate_share: f64,
    pub aggressive_share: f64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            conservative_share: 0.10,
            moderate_share: 0.25,
            aggressive_share: 0.50,
        }
    }
}

impl PolicyConfig {
    pub fn share(&self, mode: PolicyMode) -> f64 {
        match mode {
            PolicyMode::Conservative => self.conservative_share,
            PolicyMode::Moderate => self.moderate_share,
            PolicyMode::Aggressive => self.aggressive_share,
        }
    }

    fn validate(&self) -> Result<()> {
        for (name, share) in [
            ("conservative_share", self.conservative_share),
            ("moderate_share", self.moderate_share),
            ("aggressive_share", self.aggressive_share),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return Err(UpliftError::InvalidParameter {
                    name,
                    reason: format!("must be in [0, 1], got {share}"),
                });
            }
        }
        Ok(())
    }
}

/// One property the policy decides on: its latest uplift and its experiment arm.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PolicyCandidate {
    pub property_id: PropertyId,
    pub uplift: f64,
    pub arm: Arm,
}

impl PolicyCandidate {
    pub fn from_score(score: &UpliftScore, arm: Arm) -> Self {
        Self {
            property_id: score.property_id,
            uplift: score.uplift,
            arm,
        }
    }
}

/// Why the policy decided as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionBasis {
    /// In the experiment's control arm: never treated, so lift stays measurable.
    Holdout,
    /// Within the mode's share of the ranking and the crew's capacity.
    Targeted,
    /// Uplift zero or negative: a visit is not expected to help.
    NonPositiveUplift,
    /// Within the mode's share but beyond the crew's capacity.
    OverCapacity,
    /// Below the mode's share of the ranking.
    BelowCutoff,
}

/// A planned decision, before it becomes a domain record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedDecision {
    pub property_id: PropertyId,
    pub decision: Decision,
    pub mode: PolicyMode,
    pub uplift_score: f64,
    pub model_version: String,
    /// 1-based rank among the treatment-arm properties (None for the holdout).
    pub rank: Option<usize>,
    pub basis: DecisionBasis,
}

impl PlannedDecision {
    /// The domain record; ids and times come from the caller.
    pub fn into_record(
        self,
        id: DecisionId,
        storm_id: StormId,
        decided_by: UserId,
        decided_at: Timestamp,
    ) -> PolicyDecision {
        PolicyDecision {
            id,
            property_id: self.property_id,
            storm_id,
            decision: self.decision,
            mode: self.mode,
            uplift_score: Some(self.uplift_score.clamp(-1.0, 1.0)),
            model_version: Some(self.model_version),
            reason: None,
            is_override: false,
            decided_by,
            decided_at,
        }
    }
}

/// What to plan: mode, crew capacity (visits available; None = unlimited) and the model behind the scores.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRequest<'a> {
    pub mode: PolicyMode,
    pub capacity: Option<usize>,
    pub model_version: &'a str,
    pub config: PolicyConfig,
}

/// Decides treat or hold for every candidate; the result is in input order.
pub fn plan_decisions(
    candidates: &[PolicyCandidate],
    request: &PolicyRequest<'_>,
) -> Result<Vec<PlannedDecision>> {
    request.config.validate()?;
    let mut seen = HashSet::with_capacity(candidates.len());
    for (row, c) in candidates.iter().enumerate() {
        if !c.uplift.is_finite() {
            return Err(UpliftError::NonFiniteScore { row });
        }
        if !seen.insert(c.property_id) {
            return Err(UpliftError::InvalidParameter {
                name: "candidates",
                reason: format!("property {} appears twice", c.property_id),
            });
        }
    }
    let mut ranked: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].arm == Arm::Treatment)
        .collect();
    // Highest uplift first; equal uplift by property id, so every machine ranks identically.
    ranked.sort_by(|&a, &b| {
        candidates[b]
            .uplift
            .total_cmp(&candidates[a].uplift)
            .then(candidates[a].property_id.cmp(&candidates[b].property_id))
    });
    let share_budget = (request.config.share(request.mode) * ranked.len() as f64).ceil() as usize;
    let budget = request
        .capacity
        .map_or(share_budget, |c| c.min(share_budget));
    let mut planned: Vec<Option<PlannedDecision>> = vec![None; candidates.len()];
    let make = |i: usize, decision, rank, basis| PlannedDecision {
        property_id: candidates[i].property_id,
        decision,
        mode: request.mode,
        uplift_score: candidates[i].uplift,
        model_version: request.model_version.to_owned(),
        rank,
        basis,
    };
    for (position, &i) in ranked.iter().enumerate() {
        let (decision, basis) = if candidates[i].uplift <= 0.0 {
            (Decision::Hold, DecisionBasis::NonPositiveUplift)
        } else if position < budget {
            (Decision::Treat, DecisionBasis::Targeted)
        } else if position < share_budget {
            (Decision::Hold, DecisionBasis::OverCapacity)
        } else {
            (Decision::Hold, DecisionBasis::BelowCutoff)
        };
        planned[i] = Some(make(i, decision, Some(position + 1), basis));
    }
    Ok(planned
        .into_iter()
        .enumerate()
        .map(|(i, p)| p.unwrap_or_else(|| make(i, Decision::Hold, None, DecisionBasis::Holdout)))
        .collect())
}

/// Conversion of treated against held properties, after joining outcomes to decisions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RealisedLift {
    pub treated: GroupOutcomes,
    pub held: GroupOutcomes,
    pub estimate: LiftEstimate,
    /// Decided properties with no outcome yet; they count as not converted.
    pub decisions_without_outcome: usize,
}

/// Joins outcomes to decisions by (storm, property). The latest decision of a property counts (ties
/// broken by decision id); a property converted if any of its outcomes converted.
pub fn realised_lift(decisions: &[PolicyDecision], outcomes: &[Outcome]) -> Result<RealisedLift> {
    let mut latest: HashMap<(StormId, PropertyId), &PolicyDecision> = HashMap::new();
    for d in decisions {
        let key = (d.storm_id, d.property_id);
        let newer = latest
            .get(&key)
            .is_none_or(|cur| (d.decided_at, d.id) > (cur.decided_at, cur.id));
        if newer {
            latest.insert(key, d);
        }
    }
    let mut converted: HashMap<(StormId, PropertyId), bool> = HashMap::new();
    for o in outcomes {
        *converted
            .entry((o.storm_id, o.property_id))
            .or_insert(false) |= o.converted;
    }
    let mut treated = GroupOutcomes::default();
    let mut held = GroupOutcomes::default();
    let mut without = 0;
    for (key, d) in &latest {
        let outcome = converted.get(key).copied();
        if outcome.is_none() {
            without += 1;
        }
        let group = if d.decision == Decision::Treat {
            &mut treated
        } else {
            &mut held
        };
        group.add(outcome.unwrap_or(false));
    }
    let estimate = conversion_lift(treated, held)?;
    Ok(RealisedLift {
        treated,
        held,
        estimate,
        decisions_without_outcome: without,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{Cents, OutcomeId};
    use uuid::Uuid;

    fn id(n: u128) -> PropertyId {
        PropertyId::from_uuid(Uuid::from_u128(n))
    }

    fn candidates() -> Vec<PolicyCandidate> {
        // 20 treatment-arm properties with uplift 0.19, 0.18, …, 0.00 and 5 holdout ones with high uplift.
        let mut c: Vec<PolicyCandidate> = (0..20)
            .map(|i| PolicyCandidate {
                property_id: id(i),
                uplift: f64::from(19 - i as u32) / 100.0,
                arm: Arm::Treatment,
            })
            .collect();
        c.extend((20..25).map(|i| PolicyCandidate {
            property_id: id(i),
            uplift: 0.9,
            arm: Arm::Control,
        }));
        c
    }

    fn request(mode: PolicyMode, capacity: Option<usize>) -> PolicyRequest<'static> {
        PolicyRequest {
            mode,
            capacity,
            model_version: "m-3",
            config: PolicyConfig::default(),
        }
    }

    fn treated_ids(plan: &[PlannedDecision]) -> Vec<PropertyId> {
        plan.iter()
            .filter(|d| d.decision == Decision::Treat)
            .map(|d| d.property_id)
            .collect()
    }

    #[test]
    fn modes_treat_the_top_share_and_never_the_holdout() {
        let c = candidates();
        let conservative =
            plan_decisions(&c, &request(PolicyMode::Conservative, None)).expect("plan");
        assert_eq!(treated_ids(&conservative), vec![id(0), id(1)]);
        let moderate = plan_decisions(&c, &request(PolicyMode::Moderate, None)).expect("plan");
        assert_eq!(treated_ids(&moderate).len(), 5);
        let aggressive = plan_decisions(&c, &request(PolicyMode::Aggressive, None)).expect("plan");
        assert_eq!(treated_ids(&aggressive).len(), 10);
        for plan in [&conservative, &moderate, &aggressive] {
            assert!(
                plan[20..]
                    .iter()
                    .all(|d| d.decision == Decision::Hold && d.basis == DecisionBasis::Holdout)
            );
            assert!(plan.iter().all(|d| d.model_version == "m-3"));
        }
        assert_eq!(aggressive[0].rank, Some(1));
        assert_eq!(aggressive[0].uplift_score, 0.19);
    }

    #[test]
    fn capacity_caps_and_non_positive_uplift_is_held() {
        let mut c = candidates();
        let plan = plan_decisions(&c, &request(PolicyMode::Aggressive, Some(3))).expect("plan");
        assert_eq!(treated_ids(&plan), vec![id(0), id(1), id(2)]);
        assert_eq!(plan[3].basis, DecisionBasis::OverCapacity);
        assert_eq!(plan[15].basis, DecisionBasis::BelowCutoff);
        for candidate in c.iter_mut().take(20).skip(1) {
            candidate.uplift = -0.05;
        }
        let plan = plan_decisions(&c, &request(PolicyMode::Aggressive, None)).expect("plan");
        assert_eq!(treated_ids(&plan), vec![id(0)]);
        assert_eq!(plan[1].basis, DecisionBasis::NonPositiveUplift);
    }

    #[test]
    fn planning_is_order_independent_and_refuses_bad_input() {
        let c = candidates();
        let mut reversed = c.clone();
        reversed.reverse();
        let a =
            treated_ids(&plan_decisions(&c, &request(PolicyMode::Moderate, None)).expect("plan"));
        let mut b = treated_ids(
            &plan_decisions(&reversed, &request(PolicyMode::Moderate, None)).expect("plan"),
        );
        b.sort();
        assert_eq!(a, b);
        let mut dup = c.clone();
        dup.push(c[0]);
        assert_eq!(
            plan_decisions(&dup, &request(PolicyMode::Moderate, None))
                .expect_err("dup")
                .code(),
            "invalid_parameter"
        );
        let mut nan = c;
        nan[2].uplift = f64::NAN;
        assert_eq!(
            plan_decisions(&nan, &request(PolicyMode::Moderate, None)).expect_err("nan"),
            UpliftError::NonFiniteScore { row: 2 }
        );
        let bad = PolicyRequest {
            config: PolicyConfig {
                moderate_share: 1.5,
                ..PolicyConfig::default()
            },
            ..request(PolicyMode::Moderate, None)
        };
        assert_eq!(
            plan_decisions(&candidates(), &bad)
                .expect_err("share")
                .code(),
            "invalid_parameter"
        );
    }

    #[test]
    fn realised_lift_joins_outcomes_to_the_latest_decision() {
        let storm = StormId::from_uuid(Uuid::from_u128(7));
        let plan =
            plan_decisions(&candidates(), &request(PolicyMode::Aggressive, None)).expect("plan");
        let mut records: Vec<PolicyDecision> = plan
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                d.into_record(
                    DecisionId::from_uuid(Uuid::from_u128(1000 + i as u128)),
                    storm,
                    UserId::nil(),
                    Timestamp(10),
                )
            })
            .collect();
        // A later override of property 0 to hold must win over its earlier treat.
        let mut later = records[0].clone();
        later.id = DecisionId::from_uuid(Uuid::from_u128(5000));
        later.decision = Decision::Hold;
        later.decided_at = Timestamp(20);
        records.push(later);
        // Properties 1..=9 are treated; 1..=6 convert. Of the 16 held, 20 and 21 convert. 24 has no outcome.
        let outcome = |n: u128, converted: bool| Outcome {
            id: OutcomeId::from_uuid(Uuid::from_u128(9000 + n)),
            property_id: id(n),
            storm_id: storm,
            converted,
            contract_value: Cents(if converted { 100 } else { 0 }),
            occurred_at: Timestamp(30),
        };
        let outcomes: Vec<Outcome> = (0..24)
            .map(|n| outcome(n, (1..=6).contains(&n) || n == 20 || n == 21))
            .collect();
        let lift = realised_lift(&records, &outcomes).expect("lift");
        assert_eq!(
            lift.treated,
            GroupOutcomes {
                rows: 9,
                conversions: 6
            }
        );
        assert_eq!(
            lift.held,
            GroupOutcomes {
                rows: 16,
                conversions: 2
            }
        );
        assert_eq!(lift.decisions_without_outcome, 1);
        assert!((lift.estimate.lift - (6.0 / 9.0 - 2.0 / 16.0)).abs() < 1e-12);
        assert!(lift.estimate.ci_low > 0.0);
    }
}
