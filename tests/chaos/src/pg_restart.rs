//! PostgreSQL restarted (fast shutdown: open connections cut, as in a crash or failover) while several
//! laptops push, round after round, on a cluster of the scenario's own (restarting the shared one would
//! break every other test). The server runs in-process; its pools must reconnect by themselves.

use std::sync::Arc;
use std::time::Instant;

use e2e_harness::Backend;
use sync_server::state::ServerSettings;

use crate::Scale;
use crate::fleet::{Fleet, Recovery, now_ms, secs, summarise};
use crate::report::Finding;

pub const FAULT: &str = "PostgreSQL restarted (`pg_ctl restart -m fast`) under load";
pub const CHECKED: &str = "each restart lands mid-push; afterwards every touch on the server exactly once (rows, feed rows, metered events), every laptop holds the server's touches, outboxes empty; time until pushes are applied again";

pub async fn run(scale: Scale) -> Vec<Finding> {
    let cluster = tokio::task::spawn_blocking(test_postgres::DedicatedCluster::start)
        .await
        .expect("cluster start task")
        .expect("a dedicated PostgreSQL cluster");
    let cluster = Arc::new(cluster);
    let db = cluster.fresh_database().await.expect("database");
    let backend = Backend::on(&db.server_url, &db.name, &db.role_prefix, &db.superuser_url).await;
    let server = backend.serve(ServerSettings::default()).await;
    let dir = tempdir();
    let mut fleet = Fleet::sign_in(
        &backend,
        server.addr,
        "Pg Restart",
        scale.laptops,
        dir.path(),
    )
    .await;
    fleet.start_agents();
    let mut recoveries: Vec<Recovery> = Vec::new();
    let mut outages = Vec::new();
    for round in 0..scale.rounds {
        let before = fleet.applied(&backend).await;
        let total = fleet
            .write_wave(scale.backlog, &format!("pg round {round}"))
            .await;
        fleet.progress_beyond(&backend, before).await;
        let fault = Instant::now();
        let restart = Arc::clone(&cluster);
        tokio::task::spawn_blocking(move || restart.restart())
            .await
            .expect("restart task")
            .expect("pg_ctl restart");
        outages.push(fault.elapsed());
        let (ended, ended_ms) = (Instant::now(), now_ms());
        let at_end = fleet.applied(&backend).await;
        assert!(
            (at_end as usize) < total,
            "round {round}: the restart landed mid-push ({at_end} of {total} applied)"
        );
        recoveries.push(fleet.recovery(&backend, ended, ended_ms, at_end).await);
    }
    fleet.drained().await;
    let verified = fleet.verify(&backend).await;
    server.stop().await;
    let mut outages_sorted = outages.clone();
    outages_sorted.sort();
    vec![Finding::passed(
        FAULT,
        CHECKED,
        format!(
            "{} restarts, {} laptops, {} touches per laptop per round; each restart took up to {}; {verified}",
            scale.rounds,
            scale.laptops,
            scale.backlog,
            outages_sorted.last().map(|d| secs(*d)).unwrap_or_default()
        ),
        summarise(&recoveries),
    )]
}

/// A temporary directory for the laptops' files (removed when dropped).
pub(crate) fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}
