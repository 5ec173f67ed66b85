//! The tenants of a run, set up the way an operator and an office do it: the plans' limits changed with
//! the operator's `plan set` code, each tenant provisioned by the lifecycle's provisioning step
//! (`sync_server::provisioning::provision_tenant`: tenant, plan, first admin and default crew in one
//! transaction), crews and field users added by the control-plane writers `user add` and `crew add` use,
//! then the office signs in over HTTP and pushes its storm and properties through sync; the training
//! tenant's office also creates the experiment and pushes a first set of outcomes.
//!
//! Every account shares one password hashed once: PBKDF2 × 600,000 per user would dominate set-up and is
//! not what the load measures (every laptop's sign-in still verifies it on the server).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use domain::*;
use server_store::{ControlPool, NewUser, PoolSettings};
use sync_protocol::Entity;
use uplift::experiment::{arm_for, assignment_draw};
use uplift::synthetic::{SyntheticStorm, SyntheticStormConfig};

use crate::config::LoadConfig;
use crate::laptop::Session;
use crate::log::{Ledger, Request};

/// Every account's password.
pub const PASSWORD: &str = "load generator password 2026";
/// Treated share of the training tenant's experiment.
const TREATMENT_SHARE: f64 = 0.5;
/// Changes per office push.
const OFFICE_BATCH: usize = 500;

/// What a tenant is for in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TenantKind {
    Regular,
    /// Trial plan: its monthly synced-events limit is reached during the load.
    Quota,
    /// Standard plan: its requests per minute are exhausted in one burst.
    Rate,
    /// Enterprise plan, a storm with an experiment whose model the instances race to train.
    Training,
}

/// One provisioned tenant.
#[derive(Debug)]
pub struct TenantSetup {
    pub kind: TenantKind,
    pub id: TenantId,
    pub slug: String,
    pub admin_email: String,
    /// One field user per laptop.
    pub field_emails: Vec<String>,
    pub storm: Option<StormId>,
    pub properties: Vec<PropertyId>,
    pub training: Option<Arc<OutcomeSource>>,
}

/// Outcomes drawn from a synthetic storm's truth under each property's server-assigned arm, each on a
/// property that has none yet (so every new model sees more training rows than the one before).
#[derive(Debug)]
pub struct OutcomeSource {
    storm: SyntheticStorm,
    seed: u64,
    next: AtomicUsize,
    /// Outcomes a laptop adds per sync.
    pub per_sync: usize,
}

impl OutcomeSource {
    /// The next `n` outcomes (fewer once every property has one).
    pub fn take(&self, n: usize) -> Vec<Outcome> {
        let start = self.next.fetch_add(n, Ordering::Relaxed);
        let end = (start + n).min(self.storm.properties.len());
        (start.min(end)..end)
            .filter_map(|i| {
                let p = &self.storm.properties[i];
                let arm = arm_for(self.seed, p.id, TREATMENT_SHARE).ok()?;
                let chance = self.storm.true_p_hold[i]
                    + if arm == Arm::Treatment {
                        self.storm.true_uplift[i]
                    } else {
                        0.0
                    };
                let converted = assignment_draw(0x0c0f_fee0, p.id) < chance;
                Some(Outcome {
                    id: OutcomeId::generate(),
                    property_id: p.id,
                    storm_id: self.storm.storm_id,
                    converted,
                    contract_value: Cents(if converted { 1_500_000 } else { 0 }),
                    occurred_at: Timestamp::now(),
                })
            })
            .collect()
    }

    pub fn storm_id(&self) -> StormId {
        self.storm.storm_id
    }
}

/// The provisioned tenants, with what their offices pushed during set-up.
#[derive(Debug)]
pub struct Fleet {
    pub tenants: Vec<Arc<TenantSetup>>,
    /// Set-up pushes per tenant (storms, properties, first outcomes): part of the exactly-once check.
    pub ledgers: BTreeMap<TenantId, Ledger>,
    pub setup_requests: Vec<Request>,
    /// The offices' sessions (admins), kept for office requests during the load.
    pub offices: BTreeMap<TenantId, Session>,
}

impl Fleet {
    pub fn of(&self, kind: TenantKind) -> impl Iterator<Item = &Arc<TenantSetup>> {
        self.tenants.iter().filter(move |t| t.kind == kind)
    }

    /// Synced events the quota tenant's set-up used (its storm and properties).
    pub fn setup_events(&self, tenant: TenantId) -> u64 {
        self.ledgers.get(&tenant).map_or(0, |l| l.accepted)
    }
}

/// `stormops-server plan set` for the two small plans of the run: the trial plan's monthly events
/// become the quota tenant's limit (seats raised so its laptops can sign in), the standard plan's
/// requests per minute the rate tenant's.
pub async fn set_plans(control_url: &str, config: &LoadConfig) -> anyhow::Result<()> {
    use sync_server::cli::ControlArgs;
    use sync_server::plan_commands::{PlanCommand, PlanValues, run_plan};
    let events = config.quota.events_per_month;
    let sets = [
        (
            "trial",
            PlanValues {
                users: Some(1_000),
                devices: Some(1_000),
                events_per_month: Some(events),
                events_per_month_hard: Some(events),
                requests_per_minute: Some(1_000_000),
                ..PlanValues::default()
            },
        ),
        (
            "standard",
            PlanValues {
                requests_per_minute: Some(config.rate.requests_per_minute),
                ..PlanValues::default()
            },
        ),
    ];
    for (plan, values) in sets {
        run_plan(PlanCommand::Set {
            plan: plan.to_owned(),
            values,
            control: ControlArgs {
                control_database_url: control_url.to_owned(),
            },
        })
        .await
        .map_err(|e| anyhow::anyhow!("plan set {plan}: {} ({})", e.message, e.code))?;
    }
    Ok(())
}

struct Plan {
    kind: TenantKind,
    slug: String,
    tier: PlanTier,
    laptops: usize,
    crews: usize,
    properties: usize,
}

fn plans(config: &LoadConfig) -> Vec<Plan> {
    let mut out: Vec<Plan> = (0..config.tenants)
        .map(|n| Plan {
            kind: TenantKind::Regular,
            slug: format!("roofing-{n:03}"),
            tier: PlanTier::Enterprise,
            laptops: config.laptops_per_tenant,
            crews: config.crews_per_tenant,
            properties: config.properties_per_tenant,
        })
        .collect();
    out.push(Plan {
        kind: TenantKind::Quota,
        slug: "small-trial".into(),
        tier: PlanTier::Trial,
        laptops: config.quota.laptops,
        crews: 1,
        properties: config.quota.properties,
    });
    out.push(Plan {
        kind: TenantKind::Rate,
        slug: "small-standard".into(),
        tier: PlanTier::Standard,
        laptops: config.rate.laptops,
        crews: 1,
        properties: 0,
    });
    out.push(Plan {
        kind: TenantKind::Training,
        slug: "learning".into(),
        tier: PlanTier::Enterprise,
        laptops: config.training.laptops,
        crews: 1,
        properties: config.training.properties,
    });
    out
}

fn storm_record(id: StormId, name: &str) -> Storm {
    let now = Timestamp::now();
    Storm {
        id,
        event_id: format!("LOAD-{}", &id.0.simple().to_string()[..8]),
        name: name.to_owned(),
        started_at: now.plus_millis(-86_400_000),
        ended_at: None,
        hail_size_in: 2.0,
        wind_mph: 60.0,
        affected_area: "load county".into(),
        status: StormStatus::Active,
    }
}

/// Pushes records from the office in batches, each until receipted.
async fn office_push<T: serde::Serialize>(
    office: &mut Session,
    entity: Entity,
    records: &[(uuid::Uuid, T)],
) -> anyhow::Result<()> {
    for chunk in records.chunks(OFFICE_BATCH) {
        let changes = office.changes(entity, chunk)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let settled = office.push_settled(&changes, deadline).await;
        anyhow::ensure!(
            settled == crate::laptop::Settled::Receipted,
            "the office's {} push was not receipted ({settled:?})",
            entity.as_str()
        );
    }
    Ok(())
}

/// Provisions every tenant of `config` and seeds its data through `base_url`.
pub async fn provision(
    control_url: &str,
    base_url: &str,
    config: &LoadConfig,
) -> anyhow::Result<Fleet> {
    set_plans(control_url, config).await?;
    let hash = tokio::task::spawn_blocking(|| sync_server::auth::password::hash_password(PASSWORD))
        .await?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let control = ControlPool::connect(
        control_url,
        &PoolSettings {
            max_connections: 2,
            ..PoolSettings::default()
        },
    )
    .await?;
    let mut fleet = Fleet {
        tenants: Vec::new(),
        ledgers: BTreeMap::new(),
        setup_requests: Vec::new(),
        offices: BTreeMap::new(),
    };
    for (index, plan) in plans(config).into_iter().enumerate() {
        let admin_email = format!("office@{}.example", plan.slug);
        let created = sync_server::provisioning::provision_tenant(
            &control,
            &format!("Load {}", plan.slug),
            Some(&plan.slug),
            plan.tier,
            &admin_email,
            "Office Admin",
            hash.clone(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("provisioning {}: {} ({})", plan.slug, e.message, e.code))?;
        let now = Timestamp::now();
        let mut tx = control.begin_tenant(created.tenant_id).await?;
        let mut crews = vec![created.crew_id];
        for c in 1..plan.crews {
            let crew = Crew {
                id: CrewId::generate(),
                name: format!("Crew {c}"),
                chief_id: None,
            };
            tx.add_crew(&crew, now).await?;
            crews.push(crew.id);
        }
        let mut field_emails = Vec::new();
        for l in 0..plan.laptops {
            let email = format!("field{l}@{}.example", plan.slug);
            tx.add_user(
                &NewUser {
                    id: UserId::generate(),
                    email: email.clone(),
                    name: format!("Field {l}"),
                    role: Role::FieldUser,
                    crew_id: Some(crews[l % crews.len()]),
                    password_hash: hash.clone(),
                },
                now,
            )
            .await?;
            field_emails.push(email);
        }
        tx.commit().await?;

        let mut office =
            Session::login(base_url, &plan.slug, &admin_email, "office desktop").await?;
        let mut storm = None;
        let mut property_ids = Vec::new();
        let mut training = None;
        if plan.properties > 0 {
            // Every tenant's storm comes from the synthetic storm generator (realistic attributes,
            // one seed per tenant); the training tenant also keeps its ground truth for learning.
            let synthetic = SyntheticStorm::generate(&SyntheticStormConfig {
                properties: plan.properties,
                seed: 2026 + index as u64,
                ..SyntheticStormConfig::default()
            })?;
            let training_tenant = plan.kind == TenantKind::Training;
            let storm_rec = storm_record(
                synthetic.storm_id,
                if training_tenant {
                    "Learning hail"
                } else {
                    "Load hail"
                },
            );
            let properties = synthetic.properties.clone();
            let synthetic = training_tenant.then_some(synthetic);
            office_push(
                &mut office,
                Entity::Storm,
                &[(storm_rec.id.0, storm_rec.clone())],
            )
            .await?;
            let records: Vec<(uuid::Uuid, Property)> =
                properties.iter().map(|p| (p.id.0, p.clone())).collect();
            office_push(&mut office, Entity::Property, &records).await?;
            storm = Some(storm_rec.id);
            property_ids = properties.iter().map(|p| p.id).collect();
            if let Some(synthetic) = synthetic {
                let started = Instant::now();
                let created = office
                    .client
                    .admin_create_experiment(
                        &office.tokens.access_token,
                        storm_rec.id,
                        TREATMENT_SHARE,
                    )
                    .await;
                office.note_result(crate::log::Kind::Office, started, &created);
                let created = created.context("creating the experiment")?;
                let seed = created["experiment"]["seed"]
                    .as_u64()
                    .context("the experiment's seed")?;
                let source = Arc::new(OutcomeSource {
                    storm: synthetic,
                    seed,
                    next: AtomicUsize::new(0),
                    per_sync: config.training.outcomes_per_sync,
                });
                let first: Vec<(uuid::Uuid, Outcome)> = source
                    .take(config.training.initial_outcomes)
                    .into_iter()
                    .map(|o| (o.id.0, o))
                    .collect();
                office_push(&mut office, Entity::Outcome, &first).await?;
                training = Some(source);
            }
        }
        fleet.setup_requests.append(&mut office.requests);
        fleet
            .ledgers
            .insert(created.tenant_id, std::mem::take(&mut office.ledger));
        fleet.offices.insert(created.tenant_id, office);
        fleet.tenants.push(Arc::new(TenantSetup {
            kind: plan.kind,
            id: created.tenant_id,
            slug: plan.slug,
            admin_email,
            field_emails,
            storm,
            properties: property_ids,
            training,
        }));
    }
    control.close().await;
    Ok(fleet)
}
