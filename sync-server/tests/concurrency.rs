//! Concurrent pushes from several devices of one tenant (with replays, and one batch raced against
//! itself) while two pullers page through the feed: each puller receives exactly the pushed set — no row
//! skipped, none twice — and its cursor never moves backwards.

mod harness;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use domain::Role;
use harness::*;
use server_store::Cursor;
use sync_client::{PushOutcome, SyncClient};
use sync_protocol::{Change, Entity, ErrorCode, ReceiptStatus};
use uuid::Uuid;

const BATCHES: usize = 8;
const PER_BATCH: usize = 40;

async fn push_ok(client: &SyncClient, s: &Session, changes: &[Change]) -> Vec<ReceiptStatus> {
    match client.push(s.access(), changes).await.expect("push").0 {
        PushOutcome::Applied(r) => r.receipts.iter().map(|r| r.status).collect(),
        PushOutcome::Refused(r) => panic!("refused: {r:?}"),
    }
}

/// Pulls until `stop` is set and the page is the last one; returns every touch id in arrival order.
async fn puller(
    client: SyncClient,
    session: Session,
    stop: Arc<AtomicBool>,
    expected: usize,
) -> Vec<Uuid> {
    let mut cursor: Option<String> = None;
    let mut last_key = Cursor::START;
    let mut ids = Vec::new();
    for _ in 0..50_000 {
        let (page, _) = client
            .pull(session.access(), cursor.as_deref(), Some(97))
            .await
            .expect("pull");
        let key = Cursor::decode(&page.next_cursor).expect("a cursor this server issued");
        assert!(
            key >= last_key,
            "the cursor moved backwards: {last_key:?} -> {key:?}"
        );
        last_key = key;
        ids.extend(
            page.changes
                .iter()
                .filter(|c| c.entity == Entity::JourneyTouch)
                .map(|c| c.entity_id),
        );
        cursor = Some(page.next_cursor);
        if !page.has_more {
            if stop.load(Ordering::SeqCst) && ids.len() >= expected {
                return ids;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
    panic!("the puller never caught up: {} of {expected}", ids.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushes_and_pulls_deliver_every_row_exactly_once() {
    let h = Harness::start().await;
    let a = &h.a;
    let mut devices = vec![
        a.session(Role::FieldUser).clone(),
        a.session(Role::CrewChief).clone(),
        a.session(Role::Admin).clone(),
    ];
    for _ in 0..2 {
        devices.push(h.login(a, Role::FieldUser).await);
    }
    // Every batch, made up front so the expected set is known.
    let batches: Vec<Vec<Vec<Change>>> = devices
        .iter()
        .map(|s| {
            (0..BATCHES)
                .map(|b| {
                    (0..PER_BATCH)
                        .map(|i| touch_change(s, a, (b + i) % PROPERTIES, "concurrent"))
                        .collect()
                })
                .collect()
        })
        .collect();
    let expected: HashSet<Uuid> = batches
        .iter()
        .flatten()
        .flatten()
        .map(|c| c.entity_id)
        .collect();
    assert_eq!(expected.len(), devices.len() * BATCHES * PER_BATCH);
    // One more batch will be raced against itself from one device.
    let racer = devices[0].clone();
    let race: Vec<Change> = (0..PER_BATCH)
        .map(|i| touch_change(&racer, a, i % PROPERTIES, "raced"))
        .collect();
    let mut expected = expected;
    expected.extend(race.iter().map(|c| c.entity_id));

    let stop = Arc::new(AtomicBool::new(false));
    let pullers: Vec<_> = [Role::Viewer, Role::FieldUser]
        .into_iter()
        .map(|role| {
            tokio::spawn(puller(
                h.client.clone(),
                a.session(role).clone(),
                stop.clone(),
                expected.len(),
            ))
        })
        .collect();

    let mut pushers = Vec::new();
    for (s, device_batches) in devices.iter().cloned().zip(batches.clone()) {
        let client = h.client.clone();
        pushers.push(tokio::spawn(async move {
            for (n, batch) in device_batches.iter().enumerate() {
                assert_eq!(
                    push_ok(&client, &s, batch).await,
                    vec![ReceiptStatus::Accepted; batch.len()],
                    "first push of batch {n}"
                );
                if n % 3 == 0 {
                    // A replay, as after a lost response.
                    assert_eq!(
                        push_ok(&client, &s, batch).await,
                        vec![ReceiptStatus::Duplicate; batch.len()],
                        "replay of batch {n}"
                    );
                }
            }
        }));
    }
    // The raced batch: one push applies it; the other sees duplicates or a conflict to retry, never a
    // second copy or a 5xx.
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let (client, s, batch) = (h.client.clone(), racer.clone(), race.clone());
            tokio::spawn(async move { client.push(s.access(), &batch).await })
        })
        .collect();
    for p in pushers {
        p.await.expect("pusher");
    }
    let mut accepted_by = 0;
    for r in racers {
        match r.await.expect("racer") {
            Ok((PushOutcome::Applied(resp), _)) => {
                let statuses: HashSet<_> = resp.receipts.iter().map(|r| r.status).collect();
                assert!(
                    statuses.len() == 1,
                    "a raced batch applied partly: {statuses:?}"
                );
                if statuses.contains(&ReceiptStatus::Accepted) {
                    accepted_by += 1;
                }
            }
            Ok((PushOutcome::Refused(r), _)) => panic!("raced batch refused: {r:?}"),
            Err(e) => assert_eq!(e.code(), Some(ErrorCode::Conflict), "raced push: {e}"),
        }
    }
    assert!(accepted_by <= 1, "both racers applied the batch");
    // Whatever the race did, a replay now settles it.
    let settled = push_ok(&h.client, &racer, &race).await;
    assert!(
        settled.iter().all(|s| *s == settled[0]),
        "the settled batch is all-or-nothing: {settled:?}"
    );
    if accepted_by == 1 {
        assert_eq!(settled[0], ReceiptStatus::Duplicate);
    }
    stop.store(true, Ordering::SeqCst);

    for (role, p) in ["viewer", "field user"].into_iter().zip(pullers) {
        let ids = p.await.expect("puller");
        let mut seen: HashMap<Uuid, usize> = HashMap::new();
        for id in &ids {
            *seen.entry(*id).or_default() += 1;
        }
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "{role}: rows delivered twice: {twice:?}");
        let got: HashSet<Uuid> = ids.into_iter().collect();
        let missing = expected.difference(&got).count();
        let extra = got.difference(&expected).count();
        assert_eq!(
            (missing, extra),
            (0, 0),
            "{role}: the pulled set differs from the pushed set"
        );
    }
    assert_eq!(
        h.count(a.id, "journey_touches").await as usize,
        expected.len(),
        "stored rows"
    );
    h.stop().await;
}
