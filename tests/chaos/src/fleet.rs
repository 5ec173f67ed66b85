//! A tenant's fleet of field laptops under load: each a real SQLCipher file signed in through its own
//! fault proxy and driven by the real background agent. The fleet writes waves of touches, measures how
//! long service takes to come back after a fault, and checks the end state: every written touch on the
//! server exactly once (rows, pull-feed rows and metered events all equal the written count), every
//! laptop holding exactly the server's touches, every outbox empty.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use desktop_core::{Connectivity, EngineConfig};
use domain::{Role, Timestamp};
use e2e_harness::{Backend, Laptop, Tenant, laptop, local_state, pending, touches, write_touches};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// How long any one wait may take before the scenario fails (generous: other builds share the cores).
pub const BOUND: Duration = Duration::from_secs(300);

/// Engine settings for load: batches small enough that a fault lands between and inside them.
pub fn agent_config() -> EngineConfig {
    EngineConfig {
        push_batch: 250,
        ..e2e_harness::test_config()
    }
}

/// One tenant's laptops and what they wrote.
#[derive(Debug)]
pub struct Fleet {
    pub tenant: Tenant,
    pub laptops: Vec<Laptop>,
    /// Every touch id any laptop wrote.
    pub created: BTreeSet<Uuid>,
    stop: Option<watch::Sender<bool>>,
    agents: Vec<JoinHandle<()>>,
}

impl Fleet {
    /// Provisions a tenant with `size` field users in one crew and signs a laptop in for each under
    /// `dir`, each through its own proxy in front of `server`, then syncs each once (storm and properties
    /// come down).
    pub async fn sign_in(
        backend: &Backend,
        server: SocketAddr,
        name: &str,
        size: usize,
        dir: &Path,
    ) -> Fleet {
        let slug = name.to_lowercase().replace(' ', "-");
        let emails: Vec<String> = (0..size)
            .map(|i| format!("crew{i}@{slug}.example"))
            .collect();
        let users: Vec<(&str, Role)> = emails
            .iter()
            .map(|e| (e.as_str(), Role::FieldUser))
            .collect();
        let tenant = backend.tenant(name, &users, 20, "Chaos").await;
        let mut laptops = Vec::with_capacity(size);
        for (i, email) in emails.iter().enumerate() {
            let l = laptop(
                server,
                &tenant.slug,
                email,
                &dir.join(format!("laptop-{i}")),
                agent_config(),
            )
            .await;
            l.engine.sync_once().await.expect("first sync");
            laptops.push(l);
        }
        Fleet {
            tenant,
            laptops,
            created: BTreeSet::new(),
            stop: None,
            agents: Vec::new(),
        }
    }

    /// Each laptop writes `per_laptop` touches offline-first (into its outbox) and wakes its agent.
    /// Returns the fleet's total written so far.
    pub async fn write_wave(&mut self, per_laptop: usize, label: &str) -> usize {
        for l in &self.laptops {
            let batch = touches(
                l,
                self.tenant.storm,
                &self.tenant.properties,
                per_laptop,
                label,
            );
            self.created.extend(batch.iter().map(|t| t.id.0));
            write_touches(l, batch).await;
            l.engine.notify_local_write();
        }
        self.created.len()
    }

    /// Starts every laptop's background agent.
    pub fn start_agents(&mut self) {
        let (stop, stopped) = watch::channel(false);
        for l in &self.laptops {
            self.agents
                .push(tokio::spawn(Arc::clone(&l.engine).run(stopped.clone())));
        }
        self.stop = Some(stop);
    }

    /// Stops the agents and waits for them to return.
    pub async fn stop_agents(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        for agent in self.agents.drain(..) {
            agent.await.expect("agent task");
        }
    }

    /// Touches of this tenant on the server now.
    pub async fn applied(&self, backend: &Backend) -> i64 {
        backend.count(self.tenant.id, "journey_touches").await
    }

    /// Waits until the server holds more than `than` of this tenant's touches.
    pub async fn progress_beyond(&self, backend: &Backend, than: i64) {
        let started = Instant::now();
        while self.applied(backend).await <= than {
            assert!(
                started.elapsed() < BOUND,
                "no push was applied within {BOUND:?} (server held {than})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Measures service coming back after a fault ended at `ended` (wall time `ended_ms`): when the
    /// load was still running, the time until the server applies the next push; in any case, the time
    /// until every laptop has finished a successful sync after the fault.
    pub async fn recovery(
        &self,
        backend: &Backend,
        ended: Instant,
        ended_ms: i64,
        applied_at_end: i64,
    ) -> Recovery {
        let mut first_push = None;
        let load_left = (applied_at_end as usize) < self.created.len();
        loop {
            if first_push.is_none() && load_left && self.applied(backend).await > applied_at_end {
                first_push = Some(ended.elapsed());
            }
            let all_synced = self.laptops.iter().all(|l| {
                l.engine
                    .status()
                    .last_success_at_ms
                    .is_some_and(|at| at >= ended_ms)
            });
            if all_synced && (first_push.is_some() || !load_left) {
                return Recovery {
                    first_push,
                    every_laptop: ended.elapsed(),
                };
            }
            assert!(
                ended.elapsed() < BOUND,
                "service did not come back within {BOUND:?} of the fault's end"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every laptop's outbox is empty (read from its file: the status view's count is only
    /// refreshed by a sync) and its last sync succeeded; returns the time taken.
    pub async fn drained(&self) -> Duration {
        let started = Instant::now();
        loop {
            let mut done = true;
            for l in &self.laptops {
                done = done
                    && l.engine.status().connectivity == Connectivity::Online
                    && pending(l).await == 0;
            }
            if done {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < BOUND,
                "the fleet's outboxes did not drain within {BOUND:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the agents, lets every laptop sync until it holds what the server holds, then checks
    /// nothing lost and nothing doubled. Panics with the broken property; returns what was verified.
    pub async fn verify(&mut self, backend: &Backend) -> String {
        self.stop_agents().await;
        converge(backend, &self.tenant, &self.laptops).await;
        verify_exactly_once(backend, &self.tenant, &self.laptops, &self.created).await
    }
}

/// One sync, retried while it fails retryably (offline, overloaded, rate-limited), as the agent would.
pub async fn sync_until_done(l: &Laptop) {
    let started = Instant::now();
    loop {
        match l.engine.sync_once().await {
            Ok(_) => return,
            Err(e) if e.is_retryable() && started.elapsed() < BOUND => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("a sync: {e}"),
        }
    }
}

/// Syncs every laptop, round after round, until each holds exactly the server's touches (bounded).
/// A pull returns only rows below the oldest transaction still running anywhere on the PostgreSQL
/// cluster (the pull cursor follows commit order), so a row committed a moment ago can take another
/// round to arrive while other work runs on a shared cluster: that is a delay, not a loss. After the
/// bound the caller's checks report what is missing.
pub async fn converge(backend: &Backend, tenant: &Tenant, laptops: &[Laptop]) {
    let started = Instant::now();
    loop {
        for l in laptops {
            sync_until_done(l).await;
        }
        let on_server = backend.ids(tenant.id, "journey_touches").await;
        let mut all = true;
        for l in laptops {
            all = all && local_state(l, &tenant.properties).await.touches == on_server;
        }
        if all || started.elapsed() > BOUND {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The end-state checks shared by every scenario (see the module doc). Panics with the broken property.
pub async fn verify_exactly_once(
    backend: &Backend,
    tenant: &Tenant,
    laptops: &[Laptop],
    created: &BTreeSet<Uuid>,
) -> String {
    let on_server = backend.ids(tenant.id, "journey_touches").await;
    let lost = created.difference(&on_server).count();
    let unknown = on_server.difference(created).count();
    assert_eq!(lost, 0, "{lost} written touches are missing on the server");
    assert_eq!(unknown, 0, "{unknown} touches on the server nobody wrote");
    let rows = backend.count(tenant.id, "journey_touches").await;
    assert_eq!(rows as usize, created.len(), "touch rows on the server");
    let feed = backend.feed_rows_of(tenant.id, "journey_touches").await;
    assert_eq!(
        feed as usize,
        created.len(),
        "pull-feed rows of touches (one each, none twice)"
    );
    let metered = backend.synced_events(tenant.id).await;
    assert_eq!(
        metered as usize,
        created.len(),
        "metered synced events (each accepted change counted once)"
    );
    for (i, l) in laptops.iter().enumerate() {
        assert_eq!(pending(l).await, 0, "laptop {i}: outbox empty");
        let local = local_state(l, &tenant.properties).await;
        if local.touches != on_server {
            let missing: Vec<Uuid> = on_server.difference(&local.touches).copied().collect();
            let positions = backend.feed_positions(tenant.id, &missing).await;
            let cursor = l
                .engine
                .with_store(|s| s.sync_state())
                .await
                .map(|s| s.cursor);
            eprintln!(
                "laptop {i}: cursor {cursor:?}; missing {} rows, first {:?} last {:?}; distinct txid/scopes of missing: {:?}",
                missing.len(),
                positions.first(),
                positions.last(),
                positions.iter().map(|(t, _)| t).collect::<BTreeSet<_>>(),
            );
        }
        assert!(
            local.touches == on_server,
            "laptop {i} holds {} touches, the server {}: they differ",
            local.touches.len(),
            on_server.len()
        );
    }
    format!(
        "{} touches written by {} laptops: all on the server once (rows = feed rows = metered events = {}); every laptop holds the same {}; outboxes empty",
        created.len(),
        laptops.len(),
        created.len(),
        on_server.len()
    )
}

/// How quickly service came back after one fault.
#[derive(Debug, Clone, Copy)]
pub struct Recovery {
    /// Until the server applied the next push (None when no load was left at the fault's end).
    pub first_push: Option<Duration>,
    /// Until every laptop had finished a successful sync.
    pub every_laptop: Duration,
}

/// Wall time now in Unix milliseconds (the engine's `last_success_at_ms` is on the same clock).
pub fn now_ms() -> i64 {
    Timestamp::now().millis()
}

/// Seconds with one decimal, for the report.
pub fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Summarises several recoveries as "worst (median)" for the report.
pub fn summarise(recoveries: &[Recovery]) -> String {
    let worst = |f: &dyn Fn(&Recovery) -> Option<Duration>| -> Option<(Duration, Duration)> {
        let mut v: Vec<Duration> = recoveries.iter().filter_map(f).collect();
        v.sort();
        Some((*v.last()?, v[v.len() / 2]))
    };
    let mut parts = Vec::new();
    if let Some((max, median)) = worst(&|r| r.first_push) {
        parts.push(format!(
            "first push applied after {} (median {})",
            secs(max),
            secs(median)
        ));
    }
    if let Some((max, median)) = worst(&|r| Some(r.every_laptop)) {
        parts.push(format!(
            "every laptop finished a successful sync (its backlog pushed, the others' work pulled) after {} (median {})",
            secs(max),
            secs(median)
        ));
    }
    format!("worst of {}: {}", recoveries.len(), parts.join("; "))
}
