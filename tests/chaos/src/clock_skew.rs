//! Laptops whose wall clocks are off: one minutes ahead (inside the protocol's bound), one hours
//! behind, one hours ahead (beyond the bound). The hybrid logical clock must keep causality (a write
//! made after seeing another write wins over it, whatever the writer's wall clock says), concurrent
//! edits must converge to one value on the server and every laptop, and readings too far in the future
//! must be refused with the protocol's typed error (`clock_skew`) without writing anything — and once
//! that laptop's clock is corrected it must re-stamp its outbox and sync by itself.

use std::time::Instant;

use desktop_core::SyncError;
use domain::{Hlc, PropertyId, PropertyStatus, Role};
use e2e_harness::{
    Backend, Laptop, Tenant, laptop, pending, touches, use_offset_clock, write_touches,
};
use local_store::PropertyUpdate;
use sync_protocol::MAX_CLOCK_SKEW_MS;
use sync_server::state::ServerSettings;

use crate::Scale;
use crate::fleet::{agent_config, secs};
use crate::pg_restart::tempdir;
use crate::report::Finding;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

/// Writes `status` to `property` on `l`; returns the write's clock reading.
async fn write_status(l: &Laptop, property: PropertyId, status: PropertyStatus) -> Hlc {
    l.engine
        .with_store(move |s| {
            s.update_property(
                property,
                &PropertyUpdate {
                    status: Some(status),
                    ..Default::default()
                },
            )?;
            Ok(s.last_hlc())
        })
        .await
        .expect("status write")
}

async fn local_status(l: &Laptop, property: PropertyId) -> String {
    l.engine
        .with_store(move |s| Ok(s.property(property)?.map(|p| p.status.as_str().to_owned())))
        .await
        .expect("local property")
        .unwrap_or_default()
}

async fn server_status(backend: &Backend, tenant: &Tenant, property: PropertyId) -> String {
    backend
        .statuses(tenant.id)
        .await
        .get(&property.0)
        .cloned()
        .unwrap_or_default()
}

/// One sync, retried while it fails retryably.
async fn sync(l: &Laptop) {
    crate::fleet::sync_until_done(l).await;
}

/// Syncs `l` until it holds `status` for `property`: a pull returns only rows below the oldest
/// transaction still running on the cluster, so a write committed a moment ago may take another round.
async fn sync_until_seen(l: &Laptop, who: &str, property: PropertyId, status: &str) {
    let started = Instant::now();
    loop {
        sync(l).await;
        if local_status(l, property).await == status {
            return;
        }
        assert!(
            started.elapsed() < crate::fleet::BOUND,
            "{who} never pulled the write ({status})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The value of `property` on the server and on each laptop, checked to be one value (each laptop
/// syncs until it holds the server's value, bounded); returns it.
async fn agreed(
    backend: &Backend,
    tenant: &Tenant,
    laptops: &[&Laptop],
    property: PropertyId,
) -> String {
    let on_server = server_status(backend, tenant, property).await;
    for (i, l) in laptops.iter().enumerate() {
        let started = Instant::now();
        loop {
            let local = local_status(l, property).await;
            if local == on_server {
                break;
            }
            assert!(
                started.elapsed() < crate::fleet::BOUND,
                "laptop {i} holds {local}, the server {on_server}, for the same property"
            );
            sync(l).await;
        }
    }
    on_server
}

pub async fn run(scale: Scale) -> Vec<Finding> {
    let backend = Backend::fresh().await;
    let server = backend.serve(ServerSettings::default()).await;
    let emails = [
        "ahead@skew.example",
        "behind@skew.example",
        "far@skew.example",
        "late@skew.example",
    ];
    let users: Vec<(&str, Role)> = emails.iter().map(|e| (*e, Role::FieldUser)).collect();
    let tenant = backend.tenant("Clock Skew", &users, 20, "Skew").await;
    let dir = tempdir();
    let mut laptops = Vec::new();
    for (i, email) in emails.iter().enumerate() {
        let l = laptop(
            server.addr,
            &tenant.slug,
            email,
            &dir.path().join(format!("laptop-{i}")),
            agent_config(),
        )
        .await;
        l.engine.sync_once().await.expect("first sync");
        laptops.push(l);
    }
    let [ahead, behind, far, late] = &laptops[..] else {
        unreachable!("four laptops were signed in")
    };
    // Within the bound: 4 minutes ahead. Hours off: 3 h behind, 2 h ahead (beyond the 10 min bound),
    // and 5 minutes behind (within the bound, for causality across a small skew).
    use_offset_clock(ahead).await.set(4 * MINUTE);
    use_offset_clock(behind).await.set(-3 * HOUR);
    let far_clock = use_offset_clock(far).await;
    far_clock.set(2 * HOUR);
    use_offset_clock(late).await.set(-5 * MINUTE);
    let p = &tenant.properties;
    let mut findings = Vec::new();
    let rounds = scale.rounds.max(1);

    // 1. Causality: a write made after pulling another write wins over it.
    let mut causal = Vec::new();
    for round in 0..rounds {
        for (who, reader) in [("5 min behind", late), ("3 h behind", behind)] {
            let property = p[(round * 2 + usize::from(who == "3 h behind")) % p.len()];
            let first = write_status(ahead, property, PropertyStatus::Inspected).await;
            sync(ahead).await;
            sync_until_seen(reader, who, property, "inspected").await;
            let second = write_status(reader, property, PropertyStatus::Contracted).await;
            sync(reader).await;
            sync(ahead).await;
            let value = agreed(&backend, &tenant, &[ahead, reader], property).await;
            causal.push((who, first, second, value));
        }
    }
    let mut violated = Vec::new();
    for (who, first, second, value) in &causal {
        if second <= first || value != "contracted" {
            violated.push(format!(
                "{who}: later write {second} vs earlier {first}, kept {value}"
            ));
        }
    }
    let small: Vec<_> = causal.iter().filter(|c| c.0 == "5 min behind").collect();
    assert!(
        small
            .iter()
            .all(|(_, first, second, value)| second > first && value == "contracted"),
        "causality within the skew bound: {causal:?}"
    );
    let fault = "Clock skew: a laptop 5 min / 3 h behind edits a property after pulling an edit from a laptop 4 min ahead";
    let checked =
        "the later (causal) write gets the greater HLC and wins on the server and both laptops";
    findings.push(if violated.is_empty() {
        Finding::passed(
            fault,
            checked,
            format!(
                "{} causal pairs: every later write ordered after the earlier one and kept everywhere",
                causal.len()
            ),
            "—".into(),
        )
    } else {
        Finding::defect(
            fault,
            checked,
            format!(
                "5 min behind (within the bound): all {} later writes ordered after what they saw and kept everywhere; 3 h behind: {} of {} later writes LOST (e.g. {}): the laptop does not adopt a pulled reading more than {} min ahead of its own wall clock, so its next write is stamped before what it has already seen",
                small.len(),
                violated.len(),
                causal.len() - small.len(),
                violated.iter().take(2).cloned().collect::<Vec<_>>().join("; "),
                MAX_CLOCK_SKEW_MS / 60_000
            ),
            "—".into(),
        )
    });

    // 2. Concurrent edits: both laptops edit the same property offline, then sync in both orders.
    let mut converged = Vec::new();
    for round in 0..rounds {
        let property = p[(p.len() - 1 - round) % p.len()];
        let a = write_status(ahead, property, PropertyStatus::NotInterested).await;
        let b = write_status(behind, property, PropertyStatus::InProgress).await;
        let (first, second) = if round % 2 == 0 {
            (ahead, behind)
        } else {
            (behind, ahead)
        };
        sync(first).await;
        sync(second).await;
        sync(first).await;
        let value = agreed(&backend, &tenant, &[ahead, behind], property).await;
        let winner = if a > b {
            "not_interested"
        } else {
            "in_progress"
        };
        assert_eq!(
            value, winner,
            "the write with the greater HLC wins everywhere"
        );
        converged.push(value);
    }
    findings.push(Finding::passed(
        "Clock skew: concurrent offline edits of one property by a laptop 4 min ahead and one 3 h behind, synced in both orders",
        "server and both laptops hold one value, the write with the greater HLC",
        format!("{} properties: every one converged to the greater-HLC write on the server and both laptops ({})", converged.len(), converged.join(", ")),
        "—".into(),
    ));

    // 3. Beyond the bound: a laptop 2 h ahead is refused (the server answers `clock_skew`; the laptop
    // reports how far ahead it is), nothing written; once its clock is corrected it re-stamps its
    // outbox and syncs by itself.
    let work = touches(far, tenant.storm, p, 50, "from a clock 2 h ahead");
    let ids: Vec<uuid::Uuid> = work.iter().map(|t| t.id.0).collect();
    write_touches(far, work).await;
    let property = p[p.len() / 2];
    let status_before = server_status(&backend, &tenant, property).await;
    write_status(far, property, PropertyStatus::DoNotContact).await;
    let pending_before = pending(far).await;
    let err = far
        .engine
        .sync_once()
        .await
        .expect_err("a push 2 h ahead is refused");
    let SyncError::ClockAhead { ahead_ms, .. } = &err else {
        panic!("refused with clock_ahead (the server's clock_skew), not {err:?}");
    };
    let ahead_ms = *ahead_ms;
    let on_server = backend.ids(tenant.id, "journey_touches").await;
    assert!(
        ids.iter().all(|id| !on_server.contains(id)),
        "none of its touches on the server"
    );
    assert_eq!(
        server_status(&backend, &tenant, property).await,
        status_before,
        "its edit not applied"
    );
    assert_eq!(
        pending(far).await,
        pending_before,
        "its outbox kept every change"
    );
    // The clock is corrected: does the laptop get back in sync by itself?
    far_clock.set(0);
    let corrected = Instant::now();
    let after_fix = far.engine.sync_once().await;
    let recovered_in = corrected.elapsed();
    let fault = "Clock skew: a laptop 2 h ahead (bound 10 min) pushes touches and an edit, then its clock is corrected";
    let checked = "while ahead the push is refused (server: `clock_skew`; laptop: `sync.clock_ahead` naming the minutes), nothing of it reaches the server and the outbox keeps every change; after the clock is corrected the next sync re-stamps the outbox and pushes every change exactly once";
    let refused = format!(
        "refused with `{}` (\"{} minutes ahead\"): 0 of 50 touches and not the edit on the server; {pending_before} changes kept in its outbox",
        err.code(),
        (ahead_ms + 59_999) / 60_000
    );
    let on_server = backend.ids(tenant.id, "journey_touches").await;
    let all_there = ids.iter().all(|id| on_server.contains(id));
    let edit = server_status(&backend, &tenant, property).await;
    findings.push(match &after_fix {
        Ok(report)
            if report.pushed == pending_before as u64
                && report.duplicates == 0
                && all_there
                && edit == "do_not_contact"
                && pending(far).await == 0 =>
        {
            Finding::passed(
                fault,
                checked,
                format!(
                    "{refused}; after the correction the first sync re-stamped and pushed all {} changes once (0 duplicates): 50 of 50 touches and the edit on the server, outbox empty",
                    report.pushed
                ),
                format!("synced {} after the clock was corrected", secs(recovered_in)),
            )
        }
        Ok(report) => Finding::defect(
            fault,
            checked,
            format!(
                "{refused}; after the correction the sync succeeded but pushed {} (duplicates {}), touches on the server: {}, edit: {edit}",
                report.pushed,
                report.duplicates,
                if all_there { "all 50" } else { "NOT all" }
            ),
            format!("synced {} after the clock was corrected", secs(recovered_in)),
        ),
        Err(e) => Finding::defect(
            fault,
            checked,
            format!(
                "{refused}; after the clock was corrected the next sync still fails with `{}`",
                e.code()
            ),
            "not recovered".into(),
        ),
    });
    server.stop().await;
    findings
}
