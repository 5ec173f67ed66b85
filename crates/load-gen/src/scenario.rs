//! One scenario end to end: a fresh database on a private PostgreSQL cluster, `instances` server
//! processes (behind nginx when more than one), the fleet provisioned, then in order
//! 1. the rate burst: the small standard-plan tenant's laptops pull as fast as they can inside one
//!    fresh minute until every instance refuses; PostgreSQL must have granted exactly the plan's minute
//!    to all instances together, and the requests answered must be within a chunk per instance of it;
//! 2. the training race: two on-demand trainings per instance fired at once, straight at the instances
//!    (not through nginx), on the training tenant's first outcomes; exactly one may train;
//! 3. the timed load: every laptop syncs at its cadence, each office makes requests, the instances'
//!    background trainers race on the outcomes arriving, the trial tenant runs into its monthly quota,
//!    and with `kill_mid_load` the second instance is killed with SIGKILL halfway through;
//! 4. the checks against PostgreSQL (`checks`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use domain::{TenantId, Timestamp};
use server_store::{AppPool, PoolSettings};
use sync_protocol::ErrorCode;

use crate::checks::{self, ExactlyOnce, Registry};
use crate::config::LoadConfig;
use crate::fleet::{self, Fleet, TenantKind, TenantSetup};
use crate::laptop::{Laptop, Session};
use crate::log::{Kind, Ledger, Request, code_of, errors_by_code, percentile};
use crate::stack::{Nginx, ServerEnv, ServerProcess, server_binary, shared_token_key};

/// Sign-ins at once (each is a PBKDF2 verification on the server).
const LOGIN_CONCURRENCY: usize = 8;
/// How long after the load's end a push still unanswered is retried.
const SETTLE: Duration = Duration::from_secs(30);
/// Consecutive refusals after which the rate burst's probe stops (both instances refused many times).
const PROBE_REFUSALS: usize = 12;

/// Which scenario.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    pub instances: usize,
    pub kill_mid_load: bool,
}

/// Scenario A: one instance, the generator talks to it directly.
pub const ONE_INSTANCE: Scenario = Scenario {
    name: "A: one instance",
    instances: 1,
    kill_mid_load: false,
};

/// Scenario B: two instances behind nginx, one killed with SIGKILL halfway through the load.
pub const TWO_INSTANCES: Scenario = Scenario {
    name: "B: two instances behind nginx, one killed mid-load",
    instances: 2,
    kill_mid_load: true,
};

/// Latency percentiles.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub count: usize,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
}

impl Percentiles {
    fn of<'a>(requests: impl Iterator<Item = &'a Request>) -> Self {
        let mut d: Vec<Duration> = requests.map(|r| r.took).collect();
        d.sort();
        Self {
            count: d.len(),
            p50: percentile(&d, 50.0),
            p95: percentile(&d, 95.0),
            p99: percentile(&d, 99.0),
        }
    }
}

/// The monthly quota across instances.
#[derive(Debug, Clone, Default)]
pub struct QuotaResult {
    pub limit: i64,
    pub batch: usize,
    /// Events the tenant's set-up used (its storm and properties).
    pub setup_events: i64,
    /// Where the counter must stop: the first push that starts at or over the limit is refused, the one
    /// that crosses it is accepted, so set-up + ⌈(limit − set-up) / batch⌉ × batch.
    pub expected: i64,
    /// The month's counter in PostgreSQL.
    pub counter: i64,
    /// Changes of the tenant holding a receipt.
    pub receipted: i64,
    /// Pushes refused with `quota_exceeded`.
    pub refusals: u64,
}

impl QuotaResult {
    pub fn holds(&self) -> bool {
        self.counter == self.expected && self.receipted == self.expected && self.refusals > 0
    }
}

/// The request rate across instances.
#[derive(Debug, Clone, Default)]
pub struct RateResult {
    pub per_minute: i64,
    /// Requests answered by a handler (not 429) in the burst.
    pub allowed: u64,
    /// 429 `rate_limited` answers.
    pub refused: u64,
    /// Other failures (none expected).
    pub other_errors: u64,
    /// (window start, granted) from `rate_windows`.
    pub windows: Vec<(i64, i64)>,
    pub instances: usize,
    /// What an instance reserves at once (`sync_server::rate_limit::chunk_for`).
    pub chunk: i64,
}

impl RateResult {
    /// The shared window granted exactly the plan's minute, never more, to all instances together; the
    /// requests answered are at most that, and at most a chunk per instance fewer (a reservation an
    /// instance could not hand out before it was refused is lost for the minute, by design).
    pub fn holds(&self) -> bool {
        let allowed = i64::try_from(self.allowed).unwrap_or(i64::MAX);
        self.refused > 0
            && self.other_errors == 0
            && self.windows.len() == 1
            && self.windows.first().map(|w| w.1) == Some(self.per_minute)
            && allowed <= self.per_minute
            && allowed >= self.per_minute - self.instances as i64 * self.chunk
    }
}

/// Training raced across instances.
#[derive(Debug, Clone, Default)]
pub struct TrainingResult {
    /// Concurrent on-demand trainings fired in the race.
    pub race_requests: usize,
    /// Answers: trained a new model / found the model current / refused by the lock (409) / other.
    pub race_trained: usize,
    pub race_current: usize,
    pub race_locked: usize,
    pub race_other: Vec<String>,
    /// Models the race registered.
    pub race_new_models: usize,
    /// The storm's registry after the load.
    pub registry: Registry,
}

impl TrainingResult {
    pub fn holds(&self) -> bool {
        self.race_trained == 1
            && self.race_new_models == 1
            && self.race_other.is_empty()
            && self.registry.holds()
    }
}

/// One instance killed mid-load.
#[derive(Debug, Clone, Default)]
pub struct KillResult {
    /// Seconds into the load.
    pub at_secs: f64,
    /// Requests that failed after the kill (all retried by the laptops), by code.
    pub failed: BTreeMap<String, u64>,
    /// From the kill to the end of the last failed request (zero when none failed).
    pub recovery: Duration,
    /// From the kill until every laptop had completed a request started after it.
    pub all_back: Duration,
}

/// Everything a scenario measured and checked.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub name: &'static str,
    pub instances: usize,
    pub tenants: usize,
    pub laptops: usize,
    pub load_secs: f64,
    pub accepted: u64,
    pub requests: usize,
    pub all: Percentiles,
    pub push: Percentiles,
    pub pull: Percentiles,
    pub office: Percentiles,
    pub errors: BTreeMap<String, u64>,
    pub exactly_once: ExactlyOnce,
    pub quota: QuotaResult,
    pub rate: RateResult,
    pub training: TrainingResult,
    pub kill: Option<KillResult>,
    pub load_average: String,
}

impl ScenarioResult {
    pub fn changes_per_sec(&self) -> f64 {
        self.accepted as f64 / self.load_secs.max(1e-9)
    }

    /// Every correctness property of the scenario.
    pub fn holds(&self) -> bool {
        self.exactly_once.holds()
            && self.quota.holds()
            && self.rate.holds()
            && self.training.holds()
    }
}

/// The machine's load average now (1, 5, 15 minutes).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `scenario` on a fresh database of `cluster`.
pub async fn run(
    cluster: &test_postgres::DedicatedCluster,
    config: &LoadConfig,
    scenario: Scenario,
) -> anyhow::Result<ScenarioResult> {
    let db = cluster.fresh_database().await?;
    let result = run_on(&db, config, scenario).await;
    let _ = db.drop_database().await;
    result
}

async fn run_on(
    db: &test_postgres::TestDatabase,
    config: &LoadConfig,
    scenario: Scenario,
) -> anyhow::Result<ScenarioResult> {
    let init = server_store::init_database(&db.server_url, &db.name, &db.role_prefix).await?;
    let logs = tempfile::Builder::new()
        .prefix("stormops-load-")
        .tempdir()?;
    let env = ServerEnv {
        binary: server_binary()?,
        app_url: init.app_url.clone(),
        control_url: init.control_url.clone(),
        token_key: shared_token_key(),
        train_interval_secs: config.training.train_interval_secs,
        train_min_new_outcomes: config.training.min_new_outcomes,
        log_dir: logs.path().to_owned(),
    };
    let mut servers = Vec::new();
    for i in 0..scenario.instances {
        servers.push(ServerProcess::start(&env, &format!("server-{}", i + 1)).await?);
    }
    let nginx = if scenario.instances > 1 {
        Some(Nginx::start(&servers.iter().map(|s| s.addr).collect::<Vec<_>>()).await?)
    } else {
        None
    };
    let target = nginx
        .as_ref()
        .map_or_else(|| servers[0].url.clone(), |n| n.url.clone());
    let app = AppPool::connect(
        &init.app_url,
        &PoolSettings {
            max_connections: 2,
            ..PoolSettings::default()
        },
    )
    .await?;

    let mut fleet = fleet::provision(&init.control_url, &target, config)
        .await
        .context("provisioning the fleet")?;
    let rate = rate_burst(&fleet, &target, config, &app, scenario.instances)
        .await
        .context("the rate burst")?;
    let instance_urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let mut training = training_race(&fleet, &instance_urls, &app)
        .await
        .context("the training race")?;

    // Every laptop of the load signs in and takes its first sync (not timed).
    let load_tenants: Vec<Arc<TenantSetup>> = fleet
        .tenants
        .iter()
        .filter(|t| t.kind != TenantKind::Rate)
        .cloned()
        .collect();
    let mut specs = Vec::new();
    for tenant in &load_tenants {
        let batch = if tenant.kind == TenantKind::Quota {
            config.quota.batch
        } else {
            config.batch
        };
        for (i, email) in tenant.field_emails.iter().enumerate() {
            specs.push((tenant.clone(), email.clone(), i, batch));
        }
    }
    let gate = Arc::new(tokio::sync::Semaphore::new(LOGIN_CONCURRENCY));
    let mut signing_in = Vec::new();
    for (n, (tenant, email, i, batch)) in specs.into_iter().enumerate() {
        let (gate, target) = (gate.clone(), target.clone());
        signing_in.push(tokio::spawn(async move {
            let _permit = gate.acquire().await;
            let session =
                Session::login(&target, &tenant.slug, &email, &format!("laptop {n}")).await?;
            let mut laptop = Laptop::new(session, tenant, i, batch);
            laptop.first_sync().await;
            Ok::<Laptop, anyhow::Error>(laptop)
        }));
    }
    let mut laptops = Vec::new();
    for s in signing_in {
        laptops.push(s.await??);
    }

    // The timed load.
    let count = laptops.len();
    let start = Instant::now();
    let end = start + config.duration;
    let settle_by = end + SETTLE;
    let mut running = Vec::new();
    for (i, laptop) in laptops.into_iter().enumerate() {
        let delay = config.think.mul_f64(i as f64 / count.max(1) as f64);
        running.push(tokio::spawn(laptop.run(
            delay,
            config.think,
            end,
            settle_by,
        )));
    }
    let mut offices = Vec::new();
    for tenant in &load_tenants {
        if let Some(session) = fleet.offices.remove(&tenant.id) {
            offices.push(tokio::spawn(office_loop(
                session,
                tenant.clone(),
                config.office_every,
                end,
            )));
        }
    }
    let mut kill_at = None;
    if scenario.kill_mid_load
        && let Some(victim) = servers.get_mut(1)
    {
        tokio::time::sleep_until((start + config.duration / 2).into()).await;
        // The kill's instant is taken first: requests it cuts may fail before `kill` has reaped it.
        kill_at = Some(Instant::now());
        victim.kill()?;
    }
    let mut finished = Vec::new();
    for r in running {
        finished.push(r.await??);
    }
    let mut office_sessions = Vec::new();
    for o in offices {
        office_sessions.push(o.await?);
    }
    let load_secs = start.elapsed().as_secs_f64();

    // What the load did.
    let quota_tenant = fleet
        .of(TenantKind::Quota)
        .next()
        .context("no quota tenant")?
        .clone();
    let setup_events = i64::try_from(fleet.setup_events(quota_tenant.id))?;
    let mut ledgers: BTreeMap<TenantId, Ledger> = std::mem::take(&mut fleet.ledgers);
    let mut load_requests: Vec<Request> = Vec::new();
    let mut accepted = 0;
    let mut kill = kill_at.map(|at| KillResult {
        at_secs: (at - start).as_secs_f64(),
        ..KillResult::default()
    });
    for laptop in &mut finished {
        let requests: Vec<Request> = laptop
            .session
            .requests
            .iter()
            .filter(|r| r.started >= start)
            .cloned()
            .collect();
        accepted += laptop.session.ledger.accepted;
        if let (Some(at), Some(k)) = (kill_at, kill.as_mut()) {
            for r in requests.iter().filter(|r| r.ended() >= at) {
                match &r.error {
                    Some(code) if code.as_str() != ErrorCode::QuotaExceeded.as_str() => {
                        *k.failed.entry(code.clone()).or_insert(0) += 1;
                        k.recovery = k.recovery.max(r.ended() - at);
                    }
                    _ => {}
                }
            }
            if let Some(first_ok) = requests
                .iter()
                .filter(|r| r.started >= at && r.error.is_none())
                .map(|r| r.ended())
                .min()
            {
                k.all_back = k.all_back.max(first_ok - at);
            }
        }
        load_requests.extend(requests);
        ledgers
            .entry(laptop.tenant.id)
            .or_default()
            .merge(std::mem::take(&mut laptop.session.ledger));
    }
    for session in &mut office_sessions {
        load_requests.append(&mut session.requests);
    }
    for t in fleet.of(TenantKind::Rate) {
        ledgers.entry(t.id).or_default();
    }

    // The checks.
    let exactly_once = checks::exactly_once(&app, &ledgers).await?;
    let limit = config.quota.events_per_month;
    let batch = i64::try_from(config.quota.batch)?;
    let quota_ledger = ledgers.get(&quota_tenant.id).cloned().unwrap_or_default();
    let quota = QuotaResult {
        limit,
        batch: config.quota.batch,
        setup_events,
        expected: setup_events + ((limit - setup_events).max(0) + batch - 1) / batch * batch,
        counter: checks::synced_events(&app, quota_tenant.id).await?,
        receipted: i64::try_from(
            quota_ledger
                .receipted
                .iter()
                .map(|r| r.change_id)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
        )?,
        refusals: quota_ledger.quota_refusals,
    };
    let trainee = fleet
        .of(TenantKind::Training)
        .next()
        .context("no training tenant")?;
    let storm = trainee.storm.context("the training tenant has no storm")?;
    training.registry = checks::registry(&app, trainee.id, storm).await?;

    let timed = |k: Kind| Percentiles::of(load_requests.iter().filter(move |r| r.kind == k));
    let result = ScenarioResult {
        name: scenario.name,
        instances: scenario.instances,
        tenants: config.all_tenants(),
        laptops: config.load_laptops(),
        load_secs,
        accepted,
        requests: load_requests.len(),
        all: Percentiles::of(load_requests.iter()),
        push: timed(Kind::Push),
        pull: timed(Kind::Pull),
        office: timed(Kind::Office),
        errors: errors_by_code(load_requests.iter()),
        exactly_once,
        quota,
        rate,
        training,
        kill,
        load_average: load_average(),
    };
    app.close().await;
    drop(nginx);
    drop(servers);
    Ok(result)
}

/// A tenant's office during the load: every `every`, its usage screen and who-am-I, and on the training
/// tenant the experiment's summary.
async fn office_loop(
    mut office: Session,
    tenant: Arc<TenantSetup>,
    every: Duration,
    end: Instant,
) -> Session {
    office.requests.clear();
    while Instant::now() < end {
        tokio::time::sleep(every).await;
        let started = Instant::now();
        let result = office.client.admin_usage(&office.tokens.access_token).await;
        office.note_result(Kind::Office, started, &result);
        let started = Instant::now();
        let result = office.client.me(&office.tokens.access_token).await;
        office.note_result(Kind::Office, started, &result);
        if let (TenantKind::Training, Some(storm)) = (tenant.kind, tenant.storm) {
            let started = Instant::now();
            let result = office
                .client
                .admin_experiment_summary(&office.tokens.access_token, storm)
                .await;
            office.note_result(Kind::Office, started, &result);
        }
    }
    office
}

/// The rate tenant's burst inside one fresh minute window (see the module docs).
async fn rate_burst(
    fleet: &Fleet,
    target: &str,
    config: &LoadConfig,
    app: &AppPool,
    instances: usize,
) -> anyhow::Result<RateResult> {
    let tenant = fleet
        .of(TenantKind::Rate)
        .next()
        .context("no rate tenant")?
        .clone();
    let mut sessions = Vec::new();
    for (i, email) in tenant.field_emails.iter().enumerate() {
        sessions
            .push(Session::login(target, &tenant.slug, email, &format!("rate laptop {i}")).await?);
    }
    // The whole burst must sit in one minute window: start with at least 25 s of it left.
    let in_minute = Timestamp::now().0.rem_euclid(60_000);
    if in_minute > 35_000 {
        tokio::time::sleep(Duration::from_millis((60_000 - in_minute + 200) as u64)).await;
    }
    let mut bursts = Vec::new();
    for mut session in sessions {
        bursts.push(tokio::spawn(async move {
            let (mut allowed, mut refused, mut other, mut in_a_row) = (0u64, 0u64, 0u64, 0usize);
            let until = Instant::now() + Duration::from_secs(15);
            while in_a_row < 3 && Instant::now() < until {
                let started = Instant::now();
                let result = session
                    .client
                    .pull(&session.tokens.access_token, None, Some(10))
                    .await;
                match &result {
                    Ok(_) => {
                        allowed += 1;
                        in_a_row = 0;
                    }
                    Err(e) if e.code() == Some(ErrorCode::RateLimited) => {
                        refused += 1;
                        in_a_row += 1;
                    }
                    Err(sync_client::ClientError::Server { .. }) => {
                        // A handler's answer: the request was admitted and counted.
                        allowed += 1;
                        other += 1;
                    }
                    Err(_) => other += 1,
                }
                session.note_result(Kind::Pull, started, &result);
            }
            (allowed, refused, other, session)
        }));
    }
    let mut result = RateResult {
        per_minute: config.rate.requests_per_minute,
        instances,
        chunk: sync_server::rate_limit::chunk_for(config.rate.requests_per_minute),
        ..RateResult::default()
    };
    let mut probe = None;
    for b in bursts {
        let (a, r, o, session) = b.await?;
        result.allowed += a;
        result.refused += r;
        result.other_errors += o;
        probe.get_or_insert(session);
    }
    // The probe: sequential requests through the same address until many in a row are refused, so
    // every instance has handed out what it had reserved.
    if let Some(session) = probe {
        let mut in_a_row = 0;
        for _ in 0..500 {
            if in_a_row >= PROBE_REFUSALS {
                break;
            }
            let answer = session
                .client
                .pull(&session.tokens.access_token, None, Some(10))
                .await;
            match &answer {
                Ok(_) => {
                    result.allowed += 1;
                    in_a_row = 0;
                }
                Err(e) if e.code() == Some(ErrorCode::RateLimited) => {
                    result.refused += 1;
                    in_a_row += 1;
                }
                Err(_) => result.other_errors += 1,
            }
        }
    }
    result.windows = checks::rate_windows(app, tenant.id).await?;
    Ok(result)
}

/// Two on-demand trainings per instance at once, straight at the instances.
async fn training_race(
    fleet: &Fleet,
    instance_urls: &[String],
    app: &AppPool,
) -> anyhow::Result<TrainingResult> {
    let tenant = fleet
        .of(TenantKind::Training)
        .next()
        .context("no training tenant")?;
    let storm = tenant.storm.context("the training tenant has no storm")?;
    let office = fleet
        .offices
        .get(&tenant.id)
        .context("the training tenant's office")?;
    let before = checks::registry(app, tenant.id, storm).await?.models.len();
    let gate = Arc::new(tokio::sync::Barrier::new(instance_urls.len() * 2));
    let mut racers = Vec::new();
    for url in instance_urls.iter().chain(instance_urls) {
        let client = sync_client::SyncClient::new(url)?;
        let (token, gate) = (office.tokens.access_token.clone(), gate.clone());
        racers.push(tokio::spawn(async move {
            gate.wait().await;
            client.admin_train(&token, storm).await
        }));
    }
    let mut out = TrainingResult {
        race_requests: racers.len(),
        ..TrainingResult::default()
    };
    for r in racers {
        match r.await? {
            Ok(v) if v["retrained"] == serde_json::Value::Bool(true) => out.race_trained += 1,
            Ok(v) if v["retrained"] == serde_json::Value::Bool(false) => out.race_current += 1,
            Ok(v) => out.race_other.push(format!("unexpected answer {v}")),
            Err(e) if e.code() == Some(ErrorCode::Conflict) => out.race_locked += 1,
            Err(e) => out.race_other.push(code_of(&e)),
        }
    }
    out.race_new_models = checks::registry(app, tenant.id, storm).await?.models.len() - before;
    Ok(out)
}
