//! The sync engine end to end against the real server (in-process, real HTTP through a fault proxy),
//! real PostgreSQL and real SQLCipher files: convergence under random offline work and sync orders
//! (a property test), exactly-once effect through every kind of network fault, and the sign-in
//! lifecycle (expired access token, expired and revoked refresh tokens, revoked device with remote
//! wipe, an outdated client).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use desktop_core::{Connectivity, SignInRequest, SyncEngine, SyncError, sign_in};
use domain::*;
use fault_proxy::Fault;
use local_store::{Passphrase, PropertyUpdate};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sync_client::SyncClient;
use sync_server::state::ServerSettings;
use uuid::Uuid;
use zeroize::Zeroizing;

// ---------------------------------------------------------------------------------------------------
// 1. Convergence
// ---------------------------------------------------------------------------------------------------

/// Laptops 0..3 belong to tenant A, laptop 3 to tenant B.
const LAPTOPS: usize = 4;
const PROPERTIES: usize = 12;
/// Properties every laptop of a tenant edits the status of, so the merge rule decides.
const CONTESTED: usize = 3;
const STATUSES: [PropertyStatus; 3] = [
    PropertyStatus::InProgress,
    PropertyStatus::Inspected,
    PropertyStatus::NotInterested,
];

#[derive(Debug, Clone)]
enum Op {
    Touches {
        who: usize,
        n: usize,
    },
    Outcome {
        who: usize,
        prop: usize,
        converted: bool,
    },
    Decision {
        who: usize,
        prop: usize,
        treat: bool,
    },
    Status {
        who: usize,
        prop: usize,
        status: usize,
    },
    Offline(usize),
    Online(usize),
    Sync(usize),
    /// The next connection of `who` is cut after this many response bytes (mid-response).
    CutResponse {
        who: usize,
        after: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..LAPTOPS;
    prop_oneof![
        3 => (who.clone(), 1..12usize).prop_map(|(who, n)| Op::Touches { who, n }),
        1 => (who.clone(), 0..PROPERTIES, any::<bool>())
            .prop_map(|(who, prop, converted)| Op::Outcome { who, prop, converted }),
        1 => (who.clone(), 0..PROPERTIES, any::<bool>())
            .prop_map(|(who, prop, treat)| Op::Decision { who, prop, treat }),
        2 => (who.clone(), 0..CONTESTED, 0..STATUSES.len())
            .prop_map(|(who, prop, status)| Op::Status { who, prop, status }),
        1 => who.clone().prop_map(Op::Offline),
        1 => who.clone().prop_map(Op::Online),
        4 => who.clone().prop_map(Op::Sync),
        1 => (who, 40..400usize).prop_map(|(who, after)| Op::CutResponse { who, after }),
    ]
}

/// What the test created, per tenant: the ground truth the server and laptops are checked against.
#[derive(Default)]
struct Created {
    touches: BTreeSet<Uuid>,
    outcomes: BTreeSet<Uuid>,
    decisions: BTreeSet<Uuid>,
    /// property → statuses written to it by any laptop.
    statuses: BTreeMap<Uuid, BTreeSet<String>>,
}

static CASE: AtomicUsize = AtomicUsize::new(0);

async fn convergence_case(backend: &Backend, server: std::net::SocketAddr, ops: Vec<Op>) {
    let case = CASE.fetch_add(1, Ordering::Relaxed);
    let dirs = tempfile::tempdir().expect("tempdir");
    let crew = [
        (format!("chief{case}@a.example"), Role::CrewChief),
        (format!("f1{case}@a.example"), Role::FieldUser),
        (format!("f2{case}@a.example"), Role::FieldUser),
    ];
    let crew_refs: Vec<(&str, Role)> = crew.iter().map(|(e, r)| (e.as_str(), *r)).collect();
    let a = backend
        .tenant(&format!("Alpha {case}"), &crew_refs, PROPERTIES, "Alpha")
        .await;
    let b_email = format!("b{case}@b.example");
    let b = backend
        .tenant(
            &format!("Bravo {case}"),
            &[(b_email.as_str(), Role::FieldUser)],
            PROPERTIES,
            "Bravo",
        )
        .await;
    let mut laptops = Vec::new();
    for (i, (email, _)) in crew.iter().enumerate() {
        let dir = dirs.path().join(format!("a{i}"));
        laptops.push(laptop(server, &a.slug, email, &dir, test_config()).await);
    }
    laptops.push(
        laptop(
            server,
            &b.slug,
            &b_email,
            &dirs.path().join("b"),
            test_config(),
        )
        .await,
    );
    for l in &laptops {
        l.engine.sync_once().await.expect("first sync");
    }
    let tenant_of = |who: usize| if who < 3 { &a } else { &b };
    let mut created = [Created::default(), Created::default()];
    for op in ops {
        match op {
            Op::Touches { who, n } => {
                let t = tenant_of(who);
                let batch = touches(&laptops[who], t.storm, &t.properties, n, "door");
                created[who / 3]
                    .touches
                    .extend(batch.iter().map(|t| t.id.0));
                write_touches(&laptops[who], batch).await;
            }
            Op::Outcome {
                who,
                prop,
                converted,
            } => {
                let t = tenant_of(who);
                let outcome = Outcome {
                    id: OutcomeId::generate(),
                    property_id: t.properties[prop],
                    storm_id: t.storm,
                    converted,
                    contract_value: Cents(if converted { 1_250_000 } else { 0 }),
                    occurred_at: Timestamp::now().plus_millis(-30_000),
                };
                created[who / 3].outcomes.insert(outcome.id.0);
                laptops[who]
                    .engine
                    .with_store(move |s| s.add_outcome(&outcome).map(|_| ()))
                    .await
                    .expect("outcome");
            }
            Op::Decision { who, prop, treat } => {
                let t = tenant_of(who);
                let decision = PolicyDecision {
                    id: DecisionId::generate(),
                    property_id: t.properties[prop],
                    storm_id: t.storm,
                    decision: if treat {
                        Decision::Treat
                    } else {
                        Decision::Hold
                    },
                    mode: PolicyMode::Moderate,
                    uplift_score: None,
                    model_version: None,
                    reason: None,
                    is_override: false,
                    decided_by: laptops[who].user,
                    decided_at: Timestamp::now().plus_millis(-30_000),
                };
                created[who / 3].decisions.insert(decision.id.0);
                laptops[who]
                    .engine
                    .with_store(move |s| s.add_decision(&decision).map(|_| ()))
                    .await
                    .expect("decision");
            }
            Op::Status { who, prop, status } => {
                let property = tenant_of(who).properties[prop];
                let status = STATUSES[status];
                created[who / 3]
                    .statuses
                    .entry(property.0)
                    .or_default()
                    .insert(status.as_str().to_owned());
                laptops[who]
                    .engine
                    .with_store(move |s| {
                        s.update_property(
                            property,
                            &PropertyUpdate {
                                status: Some(status),
                                ..PropertyUpdate::default()
                            },
                        )
                        .map(|_| ())
                    })
                    .await
                    .expect("status edit");
            }
            Op::Offline(who) => laptops[who].proxy.set(Fault::Outage),
            Op::Online(who) => laptops[who].proxy.set(Fault::Pass),
            Op::CutResponse { who, after } => {
                laptops[who].proxy.once(Fault::DropResponseAfter(after))
            }
            Op::Sync(who) => match laptops[who].engine.sync_once().await {
                // Offline (or cut mid-response) syncs lose nothing; the next one resumes.
                Ok(_) | Err(SyncError::Offline(_)) => {}
                Err(e) => panic!("laptop {who}: unexpected sync error {e}"),
            },
        }
    }
    for l in &laptops {
        l.proxy.set(Fault::Pass);
    }
    // Back online, a first request may still meet a kept-alive connection the proxy just cut: that
    // sync fails as offline (retryable) and the next one goes through.
    for _ in 0..2 {
        for (who, l) in laptops.iter().enumerate() {
            sync_until_ok(l, &format!("laptop {who}: final sync")).await;
        }
    }
    // The pull feed holds back rows above the cluster-wide xmin horizon (a transaction still open
    // anywhere in the PostgreSQL cluster, e.g. the background trainer or another test's database), so
    // two rounds may end before the last pushes are final. Pull again, bounded, until each laptop holds
    // what the server holds; the assertions below then say what differs if it never does.
    for (who, l) in laptops.iter().enumerate() {
        let t = tenant_of(who);
        let mut rounds = 0;
        loop {
            let server = LocalState {
                touches: backend.ids(t.id, "journey_touches").await,
                outcomes: backend.ids(t.id, "outcomes").await,
                decisions: backend.ids(t.id, "policy_decisions").await,
                statuses: backend.statuses(t.id).await,
            };
            if local_state(l, &t.properties).await == server || rounds == 300 {
                if rounds > 0 {
                    eprintln!(
                        "laptop {who} needed {rounds} catch-up pulls (pull horizon held back)"
                    );
                }
                break;
            }
            rounds += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
            sync_until_ok(l, &format!("laptop {who}: catch-up sync")).await;
        }
    }

    for (t, c, name) in [(&a, &created[0], "A"), (&b, &created[1], "B")] {
        assert_eq!(
            backend.ids(t.id, "journey_touches").await,
            c.touches,
            "tenant {name}: the server holds every touch exactly once"
        );
        assert_eq!(
            backend.ids(t.id, "outcomes").await,
            c.outcomes,
            "tenant {name}: outcomes on the server"
        );
        assert_eq!(
            backend.ids(t.id, "policy_decisions").await,
            c.decisions,
            "tenant {name}: decisions on the server"
        );
        let server_statuses = backend.statuses(t.id).await;
        for (i, p) in t.properties.iter().enumerate() {
            let got = &server_statuses[&p.0];
            match c.statuses.get(&p.0) {
                Some(written) => assert!(
                    written.contains(got),
                    "tenant {name}: property {i} ended as {got}, which no laptop wrote ({written:?})"
                ),
                None => assert_eq!(got, "new", "tenant {name}: untouched property {i} changed"),
            }
        }
        for (who, l) in laptops
            .iter()
            .enumerate()
            .filter(|(w, _)| tenant_of(*w).id == t.id)
        {
            let local = local_state(l, &t.properties).await;
            assert_eq!(local.touches, c.touches, "laptop {who}: touches differ");
            assert_eq!(local.outcomes, c.outcomes, "laptop {who}: outcomes differ");
            assert_eq!(
                local.decisions, c.decisions,
                "laptop {who}: decisions differ"
            );
            assert_eq!(
                local.statuses, server_statuses,
                "laptop {who}: property statuses differ from the server's merge"
            );
            let counts = l.engine.with_store(|s| s.pending_counts()).await.unwrap();
            assert_eq!(
                (counts.pending, counts.refused),
                (0, 0),
                "laptop {who}: outbox empty, nothing refused"
            );
            let records = l.engine.with_store(|s| s.record_counts()).await.unwrap();
            assert_eq!(
                (records.touches as usize, records.properties as usize),
                (c.touches.len(), PROPERTIES),
                "laptop {who}: holds exactly its tenant's records"
            );
        }
    }
    // Tenants never mix: B's laptop has nothing of A, and the server's rows are disjoint.
    let b_sees_of_a = local_state(&laptops[3], &a.properties).await;
    assert_eq!(
        b_sees_of_a,
        LocalState::default(),
        "B's laptop holds A's data"
    );
    let a_sees_of_b = local_state(&laptops[0], &b.properties).await;
    assert_eq!(
        a_sees_of_b,
        LocalState::default(),
        "A's laptop holds B's data"
    );
    assert!(
        backend
            .ids(b.id, "journey_touches")
            .await
            .is_disjoint(&created[0].touches),
        "A's touches are visible in B"
    );
}

#[test]
fn laptops_converge_under_random_offline_work_and_sync_orders() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (backend, server) = rt.block_on(async {
        let backend = Backend::fresh().await;
        let server = backend.serve(ServerSettings::default()).await;
        (backend, server)
    });
    let mut runner = TestRunner::new(Config {
        cases: 8,
        max_shrink_iters: 16,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(op(), 10..45), |ops| {
        rt.block_on(convergence_case(&backend, server.addr, ops));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    rt.block_on(server.stop());
}

// ---------------------------------------------------------------------------------------------------
// 2. Exactly-once through network faults
// ---------------------------------------------------------------------------------------------------

async fn sync_until_ok(l: &Laptop, what: &str) -> desktop_core::SyncReport {
    for _ in 0..10 {
        match l.engine.sync_once().await {
            Ok(report) => return report,
            Err(SyncError::Offline(_)) => continue,
            Err(e) => panic!("{what}: {e}"),
        }
    }
    panic!("{what}: no sync succeeded in 10 attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_faults_never_lose_or_double_an_event() {
    let backend = Backend::fresh().await;
    let server = backend.serve(ServerSettings::default()).await;
    let dirs = tempfile::tempdir().unwrap();
    let t = backend
        .tenant(
            "Faults",
            &[("crew@f.example", Role::FieldUser)],
            30,
            "Fault",
        )
        .await;
    let config = desktop_core::EngineConfig {
        push_batch: 250,
        ..test_config()
    };
    let crew = laptop(
        server.addr,
        &t.slug,
        "crew@f.example",
        &dirs.path().join("crew"),
        config,
    )
    .await;
    crew.engine.sync_once().await.expect("first sync");
    let mut created = BTreeSet::new();
    let mut write = async |n: usize, round: &str| {
        let batch = touches(&crew, t.storm, &t.properties, n, round);
        created.extend(batch.iter().map(|t| t.id.0));
        write_touches(&crew, batch).await;
    };

    // Each round: write a backlog, inject one fault into the next connection, sync until a sync
    // succeeds, and read the server's own receipt counters. Which attempt meets the fault is not fixed
    // (the first may instead fail on a kept-alive connection the proxy just cut, which sends nothing),
    // but the effect is: every change accepted once, and replays acknowledged as duplicates.
    let metrics = std::sync::Arc::clone(&server.state.metrics);
    let counters = move || {
        (
            metrics.changes_accepted.load(Ordering::Relaxed),
            metrics.changes_duplicate.load(Ordering::Relaxed),
        )
    };
    let rounds = [
        // Mid-response: the server applied the first batch (250) and the laptop never heard back.
        ("mid-response", Fault::DropResponseAfter(60), 600, 250),
        // Mid-request: the server never had a whole batch, so nothing was applied twice.
        ("mid-request", Fault::DropRequestAfter(500), 600, 0),
        ("reset", Fault::Reset, 300, 0),
        (
            "mid-response, late",
            Fault::DropResponseAfter(400),
            700,
            250,
        ),
    ];
    for (name, fault, n, duplicates) in rounds {
        write(n, name).await;
        let (accepted_before, duplicate_before) = counters();
        let stored_before = backend.count(t.id, "journey_touches").await;
        let injected_before = crew.proxy.faults_injected();
        crew.proxy.once(fault);
        let mut failures = 0;
        loop {
            match crew.engine.sync_once().await {
                Ok(_) => break,
                Err(SyncError::Offline(_)) if failures < 10 => failures += 1,
                Err(e) => panic!("{name}: {e}"),
            }
        }
        assert!(failures >= 1, "{name}: the fault made a sync fail");
        assert_eq!(
            crew.proxy.faults_injected(),
            injected_before + 1,
            "{name}: the fault was used"
        );
        // Exactly once is the server's rows: the round's touches, each stored once.
        assert_eq!(
            backend.count(t.id, "journey_touches").await - stored_before,
            n as i64,
            "{name}: each change applied exactly once"
        );
        // The server's counters. Two append-only batches are in flight at once, so a cut can also cost
        // the other batch's answer: replays are whole batches, at least the one the fault hit, never more
        // than were sent. Each change is counted accepted exactly once: the server finishes a push whose
        // client went away, counters included, and a resend that meets it still running is answered
        // `conflict` and sent again by the engine once it has committed.
        let (accepted, duplicate) = counters();
        let (accepted, replayed) = (accepted - accepted_before, duplicate - duplicate_before);
        let tail = n as u64 % 250;
        let whole_batches = replayed.is_multiple_of(250)
            || (tail > 0 && replayed >= tail && (replayed - tail).is_multiple_of(250));
        assert!(
            replayed >= duplicates && whole_batches && replayed <= n as u64,
            "{name}: replays acknowledged as duplicates, whole batches: {replayed} (at least {duplicates})"
        );
        assert_eq!(
            accepted, n as u64,
            "{name}: each change counted accepted exactly once ({replayed} replayed)"
        );
        assert_eq!(pending(&crew).await, 0, "{name}: the outbox drained");
    }

    // A slow network: every chunk is delayed, and the sync still completes.
    write(400, "slow").await;
    crew.proxy.set(Fault::Delay(Duration::from_millis(10)));
    sync_until_ok(&crew, "slow").await;
    crew.proxy.set(Fault::Pass);

    // Repeated cuts at different points of several batches, retried until a sync succeeds.
    write(1_000, "cuts").await;
    for after in [40, 90, 150, 300, 700] {
        crew.proxy.once(Fault::DropResponseAfter(after));
        let _ = crew.engine.sync_once().await;
    }
    sync_until_ok(&crew, "after repeated cuts").await;

    // A reader whose pull answer is cut mid-headers resumes from its stored cursor.
    let reader = laptop(
        server.addr,
        &t.slug,
        &t.admin_email,
        &dirs.path().join("reader"),
        test_config(),
    )
    .await;
    reader.proxy.once(Fault::DropResponseAfter(120));
    let err = reader
        .engine
        .sync_once()
        .await
        .expect_err("the pull is cut");
    assert!(matches!(err, SyncError::Offline(_)), "{err}");
    sync_until_ok(&reader, "reader").await;

    assert_eq!(
        backend.ids(t.id, "journey_touches").await,
        created,
        "every touch exists exactly once on the server"
    );
    assert_eq!(pending(&crew).await, 0, "the outbox is empty");
    assert_eq!(
        local_state(&reader, &t.properties).await.touches,
        created,
        "the reader holds every touch"
    );
    assert!(crew.proxy.faults_injected() >= 9);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------
// 4. Sign-in lifecycle
// ---------------------------------------------------------------------------------------------------

/// Signs the laptop in again as the app does: close the engine's file, `sign_in` (which reopens it and
/// keeps the device id), and run a new engine on the reopened file.
async fn sign_in_again(l: &mut Laptop, slug: &str, email: &str) {
    l.engine.close().await;
    let passphrase = Passphrase::new(PASSPHRASE);
    let signed = sign_in(
        &l.data_dir,
        SignInRequest {
            server_url: &l.proxy.url(),
            tenant_slug: slug,
            email,
            password: Zeroizing::new(PASSWORD.to_owned()),
            local_user: "crew",
            passphrase: &passphrase,
            device_name: "e2e laptop",
        },
    )
    .await
    .expect("signs in again");
    assert!(!signed.created, "the existing file is reused");
    assert_eq!(signed.store.device_id(), l.device, "the device id is kept");
    let client = SyncClient::new(&l.proxy.url()).unwrap();
    l.engine = SyncEngine::new(signed.store, l.data_dir.clone(), client, test_config());
    l.engine.accept_tokens(&signed.tokens).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_lapses_keep_offline_work_and_revocation_wipes_the_laptop() {
    let backend = Backend::fresh().await;
    // Access tokens last two seconds: long enough for sign-in's own `me` call (the server allows no
    // leeway, so a 1 ms lifetime fails every call of any client), short enough to lapse between syncs.
    let server = backend
        .serve(ServerSettings {
            access_ttl_ms: 2_000,
            ..ServerSettings::default()
        })
        .await;
    let dirs = tempfile::tempdir().unwrap();
    let t = backend
        .tenant("Tokens", &[("crew@t.example", Role::FieldUser)], 8, "Token")
        .await;
    let email = "crew@t.example";
    let mut crew = laptop(
        server.addr,
        &t.slug,
        email,
        &dirs.path().join("crew"),
        test_config(),
    )
    .await;
    write_touches(&crew, touches(&crew, t.storm, &t.properties, 30, "a")).await;
    // Let the cached access token lapse: the engine must refresh before it pushes.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    crew.engine
        .sync_once()
        .await
        .expect("an expired access token is refreshed and the work pushed");
    assert_eq!(pending(&crew).await, 0);
    assert_eq!(backend.count(t.id, "journey_touches").await, 30);

    // The refresh token expires (a laptop left in a truck for months): the work stays in the outbox.
    let expired = superuser_exec(
        &backend.superuser_url,
        &format!(
            "UPDATE refresh_tokens SET expires_at = 1 WHERE device_id = '{}'",
            crew.device
        ),
    )
    .await;
    assert!(expired >= 1, "the laptop's refresh token exists");
    write_touches(&crew, touches(&crew, t.storm, &t.properties, 20, "b")).await;
    let err = crew.engine.sync_once().await.expect_err("needs sign-in");
    assert!(matches!(err, SyncError::NeedsSignIn(_)), "{err}");
    assert_eq!(crew.engine.status().connectivity, Connectivity::NeedsSignIn);
    assert_eq!(pending(&crew).await, 20, "offline work is kept");
    assert_eq!(crew.engine.status().pending, 20, "the status shows it");
    sign_in_again(&mut crew, &t.slug, email).await;
    let report = crew.engine.sync_once().await.expect("pushes after sign-in");
    assert_eq!(report.pushed, 20);
    assert_eq!(backend.count(t.id, "journey_touches").await, 50);

    // The sign-in is ended on the server (the refresh token's family revoked by a logout elsewhere).
    let refresh = crew
        .engine
        .with_store(|s| s.refresh_token())
        .await
        .unwrap()
        .expect("a stored refresh token");
    SyncClient::new(&crew.proxy.url())
        .unwrap()
        .logout(&refresh)
        .await
        .expect("logout");
    write_touches(&crew, touches(&crew, t.storm, &t.properties, 15, "c")).await;
    let err = crew.engine.sync_once().await.expect_err("needs sign-in");
    assert!(matches!(err, SyncError::NeedsSignIn(_)), "{err}");
    assert_eq!(pending(&crew).await, 15, "offline work is kept");
    sign_in_again(&mut crew, &t.slug, email).await;
    assert_eq!(crew.engine.sync_once().await.expect("pushes").pushed, 15);
    assert_eq!(backend.count(t.id, "journey_touches").await, 65);

    // An outdated client is told to upgrade and loses nothing.
    let old = laptop_with_protocol(
        server.addr,
        &t.slug,
        &t.admin_email,
        &dirs.path().join("old"),
        test_config(),
        0,
    )
    .await;
    write_touches(&old, touches(&old, t.storm, &t.properties, 7, "old")).await;
    let err = old.engine.sync_once().await.expect_err("too old");
    assert!(matches!(err, SyncError::UpgradeRequired(_)), "{err}");
    assert_eq!(pending(&old).await, 7, "the old client's work is kept");
    assert_eq!(backend.count(t.id, "journey_touches").await, 65);

    // The admin revokes the crew laptop: its next sync wipes the tenant's files from it.
    write_touches(&crew, touches(&crew, t.storm, &t.properties, 5, "d")).await;
    let admin = SyncClient::new(&format!("http://{}", server.addr)).unwrap();
    let pair = admin
        .login(&sync_protocol::LoginRequest {
            tenant_slug: t.slug.clone(),
            email: t.admin_email.clone(),
            password: PASSWORD.into(),
            device_id: DeviceId::generate(),
            device_name: "office".into(),
        })
        .await
        .expect("admin login");
    let revoked = reqwest::Client::new()
        .post(format!(
            "http://{}/v1/devices/{}/revoke",
            server.addr, crew.device
        ))
        .header(
            sync_protocol::PROTOCOL_HEADER,
            sync_protocol::PROTOCOL_VERSION.to_string(),
        )
        .bearer_auth(&pair.access_token)
        .send()
        .await
        .expect("revoke");
    assert!(revoked.status().is_success(), "{}", revoked.status());
    let database = crew.data_dir.database_path(t.id);
    assert!(database.exists());
    let err = crew.engine.sync_once().await.expect_err("revoked");
    assert!(matches!(err, SyncError::DeviceRevoked), "{err}");
    assert_eq!(crew.engine.status().connectivity, Connectivity::Revoked);
    let mut leftovers = vec![
        database.clone(),
        crew.data_dir.key_file_path(t.id),
        database.with_extension("db-wal"),
        database.with_extension("db-shm"),
    ];
    let mut wal = database.clone().into_os_string();
    wal.push("-wal");
    let mut shm = database.clone().into_os_string();
    shm.push("-shm");
    leftovers.push(wal.into());
    leftovers.push(shm.into());
    for path in &leftovers {
        assert!(!path.exists(), "{} survived the wipe", path.display());
    }
    assert!(
        crew.data_dir.list_tenants().unwrap().is_empty(),
        "the index forgets the tenant"
    );
    // Nothing in the data directory still names the tenant.
    let tenant_text = t.id.to_string();
    for entry in walk(&crew.dir) {
        let name = entry.to_string_lossy().into_owned();
        assert!(!name.contains(&tenant_text), "{name} survived the wipe");
        if let Ok(text) = std::fs::read_to_string(&entry) {
            assert!(
                !text.contains(&tenant_text),
                "{name} still names the tenant"
            );
        }
    }
    server.stop().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}
