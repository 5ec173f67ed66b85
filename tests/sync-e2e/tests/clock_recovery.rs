//! A laptop whose wall clock ran two hours ahead, against the real server, PostgreSQL and SQLCipher
//! files: while the clock is wrong every sync is refused with a typed error naming how far ahead it is
//! and nothing reaches the server; after the clock is corrected the next sync re-stamps and pushes every
//! change exactly once and in order — an edit made after pulling another laptop's edit still wins over
//! it — and concurrent edits from another laptop are decided by the new readings the same way on the
//! server and every laptop.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use desktop_core::{Connectivity, SyncError};
use domain::*;
use local_store::PropertyUpdate;
use sync_server::state::ServerSettings;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
/// How long a pull may take to see a commit (a pull stops below the oldest open transaction).
const BOUND: Duration = Duration::from_secs(60);

async fn set_status(l: &Laptop, p: PropertyId, status: PropertyStatus) -> Hlc {
    l.engine
        .with_store(move |s| {
            s.update_property(
                p,
                &PropertyUpdate {
                    status: Some(status),
                    ..Default::default()
                },
            )?;
            Ok(s.last_hlc())
        })
        .await
        .unwrap()
}

async fn local_status(l: &Laptop, p: PropertyId) -> String {
    l.engine
        .with_store(move |s| Ok(s.property(p)?.map(|p| p.status.as_str().to_owned())))
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Syncs `l` until it holds `status` for `p` (bounded).
async fn sync_until(l: &Laptop, p: PropertyId, status: &str) {
    let started = Instant::now();
    loop {
        l.engine.sync_once().await.unwrap();
        if local_status(l, p).await == status {
            return;
        }
        assert!(started.elapsed() < BOUND, "never pulled {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Syncs a new laptop until it holds every property (a pull may stop below an open transaction).
async fn first_sync(l: &Laptop, properties: &[PropertyId]) {
    let started = Instant::now();
    loop {
        l.engine.sync_once().await.unwrap();
        let ids = properties.to_vec();
        let held = l
            .engine
            .with_store(move |s| {
                ids.iter()
                    .map(|id| s.property(*id).map(|p| p.is_some()))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .unwrap();
        if held.iter().all(|h| *h) {
            return;
        }
        assert!(
            started.elapsed() < BOUND,
            "the first sync never brought the storm"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The server's status of `p` and the clock of that field.
async fn server_status(backend: &Backend, tenant: TenantId, p: PropertyId) -> (String, Hlc) {
    let mut tx = backend.app.begin_tenant(tenant).await.unwrap();
    let (status, clock): (String, String) =
        sqlx::query_as("SELECT status, field_clocks->>'status' FROM properties WHERE id = $1")
            .bind(p.0)
            .fetch_one(tx.connection())
            .await
            .unwrap();
    tx.commit().await.unwrap();
    (status, Hlc::parse(&clock).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_laptop_whose_clock_ran_ahead_recovers_once_it_is_corrected() {
    let backend = Backend::fresh().await;
    let server = backend.serve(ServerSettings::default()).await;
    let users = [
        ("ahead@clock.example", Role::FieldUser),
        ("peer@clock.example", Role::FieldUser),
        ("early@clock.example", Role::FieldUser),
    ];
    let tenant = backend.tenant("Clock Recovery", &users, 6, "Clock").await;
    let dir = tempfile::tempdir().unwrap();
    let a = laptop(
        server.addr,
        &tenant.slug,
        users[0].0,
        &dir.path().join("a"),
        test_config(),
    )
    .await;
    let b = laptop(
        server.addr,
        &tenant.slug,
        users[1].0,
        &dir.path().join("b"),
        test_config(),
    )
    .await;
    let c = laptop(
        server.addr,
        &tenant.slug,
        users[2].0,
        &dir.path().join("c"),
        test_config(),
    )
    .await;
    let (a_clock, b_clock, c_clock) = (
        use_offset_clock(&a).await,
        use_offset_clock(&b).await,
        use_offset_clock(&c).await,
    );
    let p = &tenant.properties;
    for l in [&a, &b, &c] {
        first_sync(l, p).await;
    }

    // C, eight minutes ahead (inside the 10 minute bound), inspects p0; A pulls it, and only then does
    // its clock jump two hours ahead.
    c_clock.set(8 * MINUTE);
    let seen = set_status(&c, p[0], PropertyStatus::Inspected).await;
    c.engine.sync_once().await.unwrap();
    sync_until(&a, p[0], "inspected").await;
    a_clock.set(2 * HOUR);

    // A works two hours "in the future": 30 touches and three status edits, p0's after seeing B's.
    let work = touches(&a, tenant.storm, p, 30, "from a clock 2 h ahead");
    let ids: Vec<uuid::Uuid> = work.iter().map(|t| t.id.0).collect();
    write_touches(&a, work).await;
    set_status(&a, p[0], PropertyStatus::Contracted).await;
    set_status(&a, p[1], PropertyStatus::NotInterested).await;
    set_status(&a, p[2], PropertyStatus::DoNotContact).await;
    assert_eq!(pending(&a).await, 33);
    let events_before = backend.synced_events(tenant.id).await;
    let statuses_before: Vec<_> = server_statuses(&backend, tenant.id, &p[..3]).await;

    // Refused while the clock is wrong: a typed error with the figure, nothing on the server.
    let err = a
        .engine
        .sync_once()
        .await
        .expect_err("refused while 2 h ahead");
    let SyncError::ClockAhead {
        ahead_ms,
        max_skew_ms,
    } = &err
    else {
        panic!("expected clock_ahead, got {err:?}");
    };
    assert!(
        (2 * HOUR - MINUTE..2 * HOUR + MINUTE).contains(ahead_ms),
        "{ahead_ms} ms ahead"
    );
    assert_eq!(*max_skew_ms, sync_protocol::MAX_CLOCK_SKEW_MS);
    assert_eq!(err.code(), "sync.clock_ahead");
    assert!(!err.is_retryable(), "the agent must not spin on it");
    // The message rounds up to whole minutes, and the measured lead is two hours give or take the
    // handshake's half round trip: 120 or 121, whichever the lead measured gives.
    let message = err.to_string();
    let shown_minutes = (ahead_ms + 59_999) / 60_000;
    assert!((120..=121).contains(&shown_minutes), "{ahead_ms} ms ahead");
    assert!(
        message.contains(&format!("{shown_minutes} minutes ahead")),
        "{message}"
    );
    let status = a.engine.status();
    assert_eq!(status.connectivity, Connectivity::Error);
    let shown = status.last_error.expect("the status names the error");
    assert_eq!(shown.code, "sync.clock_ahead");
    assert_eq!(shown.message, message, "the status shows the sync's error");
    // A second attempt changes nothing either.
    assert!(matches!(
        a.engine.sync_once().await,
        Err(SyncError::ClockAhead { .. })
    ));
    let on_server = backend.ids(tenant.id, "journey_touches").await;
    assert!(
        ids.iter().all(|id| !on_server.contains(id)),
        "no touch pushed"
    );
    assert_eq!(
        server_statuses(&backend, tenant.id, &p[..3]).await,
        statuses_before,
        "no edit applied"
    );
    assert_eq!(backend.synced_events(tenant.id).await, events_before);
    assert_eq!(pending(&a).await, 33, "the outbox kept every change");

    // The clock is corrected. B edits p1 before A's next sync: A's re-stamped edit follows it.
    a_clock.set(0);
    let corrected = Timestamp::now();
    let b_edit = set_status(&b, p[1], PropertyStatus::InProgress).await;
    b.engine.sync_once().await.unwrap();

    let report = a
        .engine
        .sync_once()
        .await
        .expect("recovers after correction");
    assert_eq!(report.pushed, 33, "{report:?}");
    assert_eq!(report.duplicates, 0);
    assert_eq!(report.refused, 0);
    assert_eq!(pending(&a).await, 0);
    assert_eq!(a.engine.status().last_error, None);
    let on_server = backend.ids(tenant.id, "journey_touches").await;
    assert!(
        ids.iter().all(|id| on_server.contains(id)),
        "every touch pushed"
    );
    assert_eq!(
        backend.synced_events(tenant.id).await - events_before,
        34,
        "B's edit and A's 33 changes, each applied once"
    );
    // In order, after what A had seen, with readings from the corrected clock.
    let (s0, c0) = server_status(&backend, tenant.id, p[0]).await;
    let (s1, c1) = server_status(&backend, tenant.id, p[1]).await;
    let (s2, c2) = server_status(&backend, tenant.id, p[2]).await;
    assert_eq!(
        (s0.as_str(), s1.as_str(), s2.as_str()),
        ("contracted", "not_interested", "do_not_contact"),
        "A's re-stamped edits {c0:?} {c1:?} {c2:?}; C's edit {seen:?}; B's edit of p1 {b_edit:?}"
    );
    assert!(
        c0 > seen,
        "the edit made after seeing B's follows it: {c0:?} vs {seen:?}"
    );
    assert!(
        c0 < c1 && c1 < c2,
        "written order kept: {c0:?} {c1:?} {c2:?}"
    );
    let now_ms = Timestamp::now().millis() as u64;
    assert!(
        c2.wall_ms <= now_ms + sync_protocol::MAX_CLOCK_SKEW_MS,
        "{c2:?} is not two hours ahead any more"
    );
    let last = a.engine.with_store(|s| Ok(s.last_hlc())).await.unwrap();
    assert!(
        last.wall_ms <= now_ms + sync_protocol::MAX_CLOCK_SKEW_MS,
        "file clock reset: {last:?}"
    );
    assert!(c1.wall_ms >= corrected.millis() as u64);

    // B edits p2 after A's recovery without having pulled A's edit. A's new readings follow C's
    // edit, made eight minutes ahead, so B's clock runs nine minutes ahead (inside the bound) for this
    // one: its edit is the later reading and wins on the server and both laptops. (Had A kept its
    // readings from two hours ahead, A's edit would win for two hours.)
    b_clock.set(9 * MINUTE);
    let later = set_status(&b, p[2], PropertyStatus::Inspected).await;
    b_clock.set(0);
    assert!(later > c2, "{later:?} vs {c2:?}");
    b.engine.sync_once().await.unwrap();
    a.engine.sync_once().await.unwrap();
    let (s2, _) = server_status(&backend, tenant.id, p[2]).await;
    assert_eq!(s2, "inspected");
    for (who, l) in [("A", &a), ("B", &b)] {
        for (i, expected) in [(0, "contracted"), (1, "not_interested"), (2, "inspected")] {
            let started = Instant::now();
            while local_status(l, p[i]).await != expected {
                assert!(started.elapsed() < BOUND, "{who} never converged on p{i}");
                l.engine.sync_once().await.unwrap();
            }
        }
    }
    server.stop().await;
}

async fn server_statuses(backend: &Backend, tenant: TenantId, ps: &[PropertyId]) -> Vec<String> {
    let all = backend.statuses(tenant).await;
    ps.iter()
        .map(|p| all.get(&p.0).cloned().unwrap_or_default())
        .collect()
}
