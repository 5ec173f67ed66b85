//! The policy on the laptop, offline: treat or hold every scored property of a storm from the laptop's
//! last synced uplift scores and experiment arms (`uplift::policy::plan_decisions`, the same function the
//! server would run), written through the store so each decision goes out with the next push. Control-arm
//! properties are always held, so lift stays measurable. The mode is the one the office set for the storm
//! and the laptop synced (`storm_policy` pull rows), unless the caller names one (a CLI flag); a storm the
//! office never set is decided in the product's default mode, moderate. Also the realised lift of the
//! storm's decisions from the outcomes in the file.

use domain::{DecisionId, PolicyDecision, PolicyMode, StormId, Timestamp, UserId};
use local_store::{StoreError, TenantStore};
use serde::Serialize;
use ts_rs::TS;
use uplift::UpliftError;
use uplift::policy::{PolicyCandidate, PolicyConfig, PolicyRequest, RealisedLift, plan_decisions};

/// The mode a storm is decided in when the office never set one (PRODUCT.md: moderate).
pub const DEFAULT_MODE: PolicyMode = PolicyMode::Moderate;

/// Where the mode of a decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ModeSource {
    /// Named by the caller (a CLI flag), overriding the office's.
    Caller,
    /// Set by the office for the storm and synced to this laptop.
    Office,
    /// Neither: the product's default mode.
    Default,
}

impl ModeSource {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Caller => "caller",
            Self::Office => "office",
            Self::Default => "default",
        }
    }
}

/// The mode a storm's decisions are made in, and why that one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
pub struct StormMode {
    #[ts(type = "import('../types').PolicyMode")]
    pub mode: PolicyMode,
    pub source: ModeSource,
    /// When the office set the synced mode (null unless one was synced).
    #[ts(type = "number | null")]
    pub office_set_at: Option<Timestamp>,
    /// The office's synced mode, also when the caller overrode it (null unless one was synced).
    #[ts(type = "import('../types').PolicyMode | null")]
    pub office_mode: Option<PolicyMode>,
}

/// The mode for `storm`: `explicit` when given, else the office's synced mode, else [`DEFAULT_MODE`].
pub fn storm_mode(
    store: &TenantStore,
    storm: StormId,
    explicit: Option<PolicyMode>,
) -> Result<StormMode, StoreError> {
    let synced = store.storm_policy(storm)?;
    let office_mode = synced.as_ref().map(|p| p.mode);
    let office_set_at = synced.as_ref().map(|p| p.updated_at);
    let (mode, source) = match (explicit, office_mode) {
        (Some(mode), _) => (mode, ModeSource::Caller),
        (None, Some(mode)) => (mode, ModeSource::Office),
        (None, None) => (DEFAULT_MODE, ModeSource::Default),
    };
    Ok(StormMode {
        mode,
        source,
        office_set_at,
        office_mode,
    })
}

/// What an offline decision run did: the mode it used (and why) and the decisions it wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineDecisions {
    pub mode: StormMode,
    pub decisions: Vec<PolicyDecision>,
}

/// Why the laptop could not decide. `code()` is stable.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Nothing to decide from: the storm has no synced scores with experiment arms (sync first).
    #[error(
        "storm {0} has no synced uplift scores with experiment arms on this laptop; sync first"
    )]
    NoScores(StormId),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Uplift(#[from] UpliftError),
}

impl PolicyError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoScores(_) => "no_scores",
            Self::Store(_) => "store",
            Self::Uplift(e) => e.code(),
        }
    }
}

/// Decides treat or hold for every scored property of `storm` within `capacity` visits (None = no limit),
/// as `user`, in `mode` when given, else in the storm's synced mode ([`storm_mode`]); each decision is
/// written with its outbox entry. The model version on the decisions is that of the newest scores.
pub fn decide_offline(
    store: &mut TenantStore,
    storm: StormId,
    mode: Option<PolicyMode>,
    capacity: Option<usize>,
    user: UserId,
) -> Result<OfflineDecisions, PolicyError> {
    let chosen = storm_mode(store, storm, mode)?;
    let scored = store.scored_arms(storm)?;
    let Some(newest) = scored
        .iter()
        .max_by(|a, b| {
            (a.0.trained_at, &a.0.model_version).cmp(&(b.0.trained_at, &b.0.model_version))
        })
        .map(|(s, _)| s.model_version.clone())
    else {
        return Err(PolicyError::NoScores(storm));
    };
    let candidates: Vec<PolicyCandidate> = scored
        .iter()
        .map(|(score, arm)| PolicyCandidate::from_score(score, *arm))
        .collect();
    let planned = plan_decisions(
        &candidates,
        &PolicyRequest {
            mode: chosen.mode,
            capacity,
            model_version: &newest,
            config: PolicyConfig::default(),
        },
    )?;
    let now = store.now();
    let mut decisions = Vec::with_capacity(planned.len());
    for plan in planned {
        let record = plan.into_record(DecisionId::generate(), storm, user, now);
        store.add_decision(&record)?;
        decisions.push(record);
    }
    Ok(OfflineDecisions {
        mode: chosen,
        decisions,
    })
}

/// Treated against held conversion of the storm's decisions, from the outcomes in the file.
pub fn realised_lift(store: &TenantStore, storm: StormId) -> Result<RealisedLift, PolicyError> {
    let decisions = store.storm_decisions(storm)?;
    let outcomes = store.storm_outcomes(storm)?;
    Ok(uplift::policy::realised_lift(&decisions, &outcomes)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::*;
    use local_store::{DataDir, ManualClock, NewTenant, Passphrase};
    use sync_protocol::{ChangeOp, Entity, PulledChange};
    use uplift::synthetic::{SyntheticStorm, SyntheticStormConfig};

    const NOW: Timestamp = Timestamp(1_790_000_000_000);

    fn pulled<T: serde::Serialize>(entity: Entity, id: uuid::Uuid, record: &T) -> PulledChange {
        PulledChange {
            entity,
            entity_id: id,
            op: ChangeOp::Insert,
            record: serde_json::to_value(record).expect("record"),
            field_clocks: None,
        }
    }

    /// A new tenant file in `dir` whose clock reads [`NOW`].
    fn new_store(dir: &std::path::Path) -> TenantStore {
        let mut store = DataDir::new(dir)
            .expect("data dir")
            .create_tenant(
                NewTenant {
                    tenant_id: None,
                    name: "Acme Roofing",
                    user: "pat",
                    passphrase: &Passphrase::new("correct horse battery"),
                },
                NOW,
            )
            .expect("tenant")
            .store;
        store.set_wall_clock(Box::new(ManualClock::new(NOW)));
        store
    }

    /// What a pull brings for a synthetic storm: its experiment, arms and scores (the true uplift stands
    /// in for a model's).
    fn scored_page(
        synthetic: &SyntheticStorm,
        model_version: &str,
        watermark: i64,
    ) -> Vec<PulledChange> {
        let mut page = vec![pulled(
            Entity::Experiment,
            synthetic.experiment.id.0,
            &synthetic.experiment,
        )];
        for (i, p) in synthetic.properties.iter().enumerate() {
            let arm = ArmAssignment {
                experiment_id: synthetic.experiment.id,
                property_id: p.id,
                arm: synthetic.arms[i],
                assigned_at: NOW.plus_millis(-1_000),
            };
            page.push(pulled(Entity::ArmAssignment, p.id.0, &arm));
            let score = UpliftScore {
                property_id: p.id,
                storm_id: synthetic.storm_id,
                uplift: synthetic.true_uplift[i],
                p_treat: synthetic.true_p_hold[i] + synthetic.true_uplift[i],
                p_hold: synthetic.true_p_hold[i],
                model_version: model_version.into(),
                trained_at: NOW.plus_millis(-1_000),
                data_watermark: watermark,
            };
            page.push(pulled(Entity::UpliftScore, p.id.0, &score));
        }
        page
    }

    #[test]
    fn the_laptop_decides_offline_holds_the_control_arm_and_measures_lift() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = new_store(dir.path());
        let synthetic = SyntheticStorm::generate(&SyntheticStormConfig {
            properties: 300,
            seed: 4,
            started_at: NOW.plus_millis(-86_400_000),
            ..SyntheticStormConfig::default()
        })
        .expect("storm");
        let storm = synthetic.storm_id;
        assert_eq!(
            decide_offline(&mut store, storm, None, None, UserId::generate())
                .err()
                .map(|e| e.code()),
            Some("no_scores")
        );

        let page = scored_page(&synthetic, "s-test-1", 17);
        let report = store.apply_pulled_page(&page, "c1", 17).expect("pull");
        assert_eq!(report.applied, page.len());

        let user = UserId::generate();
        // Nothing synced: the product's default mode.
        assert_eq!(
            storm_mode(&store, storm, None).expect("mode"),
            StormMode {
                mode: PolicyMode::Moderate,
                source: ModeSource::Default,
                office_set_at: None,
                office_mode: None
            }
        );
        let run = decide_offline(&mut store, storm, None, Some(40), user).expect("decide");
        assert_eq!(run.mode.source, ModeSource::Default);
        assert!(run.decisions.iter().all(|d| d.mode == PolicyMode::Moderate));
        let decisions = run.decisions;
        assert_eq!(decisions.len(), synthetic.properties.len());
        let arm_of = |id: PropertyId| {
            synthetic
                .properties
                .iter()
                .position(|p| p.id == id)
                .map(|i| synthetic.arms[i])
        };
        let treated: Vec<_> = decisions
            .iter()
            .filter(|d| d.decision == Decision::Treat)
            .collect();
        assert!(
            !treated.is_empty() && treated.len() <= 40,
            "{}",
            treated.len()
        );
        assert!(
            treated
                .iter()
                .all(|d| arm_of(d.property_id) == Some(Arm::Treatment))
        );
        assert!(
            decisions
                .iter()
                .filter(|d| arm_of(d.property_id) == Some(Arm::Control))
                .all(|d| d.decision == Decision::Hold)
        );
        assert!(
            decisions
                .iter()
                .all(|d| d.model_version.as_deref() == Some("s-test-1") && d.decided_by == user)
        );
        // Every decision is in the file and waits in the outbox.
        assert_eq!(
            store.storm_decisions(storm).expect("decisions").len(),
            decisions.len()
        );
        assert!(store.record_counts().expect("counts").decisions >= decisions.len() as i64);

        // Outcomes: treated properties convert, held ones do not — a lift of exactly 1.
        for d in &decisions {
            let converted = d.decision == Decision::Treat;
            store
                .add_outcome(&Outcome {
                    id: OutcomeId::generate(),
                    property_id: d.property_id,
                    storm_id: storm,
                    converted,
                    contract_value: Cents(if converted { 1_000_000 } else { 0 }),
                    occurred_at: NOW,
                })
                .expect("outcome");
        }
        let lift = realised_lift(&store, storm).expect("lift");
        assert_eq!(lift.treated.rows, treated.len() as u64);
        assert_eq!(lift.decisions_without_outcome, 0);
        assert!((lift.estimate.lift - 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_synced_office_mode_decides_unless_the_caller_names_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = new_store(dir.path());
        let synthetic = SyntheticStorm::generate(&SyntheticStormConfig {
            properties: 400,
            seed: 9,
            started_at: NOW.plus_millis(-86_400_000),
            ..SyntheticStormConfig::default()
        })
        .expect("storm");
        let storm = synthetic.storm_id;
        let mut page = scored_page(&synthetic, "s-test-2", 3);
        let office = UserId::generate();
        let policy = |mode| StormPolicy {
            storm_id: storm,
            mode,
            updated_at: NOW.plus_millis(-500),
            updated_by: Some(office),
        };
        page.push(pulled(
            Entity::StormPolicy,
            storm.0,
            &policy(PolicyMode::Aggressive),
        ));
        store.apply_pulled_page(&page, "c1", 3).expect("pull");
        assert_eq!(
            store.storm_policy(storm).expect("policy"),
            Some(policy(PolicyMode::Aggressive))
        );

        let user = UserId::generate();
        let treated = |run: &OfflineDecisions| {
            run.decisions
                .iter()
                .filter(|d| d.decision == Decision::Treat)
                .count()
        };
        let synced = decide_offline(&mut store, storm, None, None, user).expect("synced");
        assert_eq!(synced.mode.source, ModeSource::Office);
        assert_eq!(synced.mode.mode, PolicyMode::Aggressive);
        assert_eq!(synced.mode.office_set_at, Some(NOW.plus_millis(-500)));
        assert!(
            synced
                .decisions
                .iter()
                .all(|d| d.mode == PolicyMode::Aggressive)
        );
        // A caller's mode overrides the office's, and says so.
        let flagged = decide_offline(&mut store, storm, Some(PolicyMode::Moderate), None, user)
            .expect("flagged");
        assert_eq!(flagged.mode.source, ModeSource::Caller);
        assert_eq!(flagged.mode.office_mode, Some(PolicyMode::Aggressive));
        assert!(
            flagged
                .decisions
                .iter()
                .all(|d| d.mode == PolicyMode::Moderate)
        );
        assert!(
            treated(&synced) > treated(&flagged),
            "aggressive treats further down the ranking: {} vs {}",
            treated(&synced),
            treated(&flagged)
        );

        // The office changes its mind; the next pull replaces the row and the laptop follows.
        store
            .apply_pulled_page(
                &[pulled(
                    Entity::StormPolicy,
                    storm.0,
                    &policy(PolicyMode::Conservative),
                )],
                "c2",
                4,
            )
            .expect("pull");
        let followed = decide_offline(&mut store, storm, None, None, user).expect("followed");
        assert_eq!(followed.mode.mode, PolicyMode::Conservative);
        assert!(treated(&followed) < treated(&flagged));
    }
}
