//! Network faults at every laptop's proxy while the fleet pushes: connections closed mid-request body,
//! responses truncated mid-body (the server applied the batch, the laptop never heard), resets,
//! latency, and a full outage that also cuts live connections. Each fault is held for a while under
//! load, then lifted; the fleet must drain and agree with the server, exactly once, after each.

use std::time::{Duration, Instant};

use e2e_harness::Backend;
use fault_proxy::Fault;
use sync_server::state::ServerSettings;

use crate::Scale;
use crate::fleet::{Fleet, now_ms, secs};
use crate::pg_restart::tempdir;
use crate::report::Finding;

/// The faults tried, with how the report names them.
pub fn faults() -> Vec<(Fault, &'static str)> {
    vec![
        (
            Fault::DropRequestAfter(4_096),
            "connection closed after 4 KiB of each request (mid-body)",
        ),
        (
            Fault::DropResponseAfter(512),
            "every response truncated after 512 bytes",
        ),
        (Fault::Reset, "every connection reset on accept"),
        (
            Fault::Outage,
            "network down (live kept-alive connections cut too)",
        ),
        (
            Fault::Delay(Duration::from_millis(40)),
            "40 ms latency on every chunk, both ways",
        ),
    ]
}

pub const CHECKED: &str = "fault held under load at every laptop's proxy, then lifted: every touch on the server exactly once (rows, feed rows, metered events), every laptop holds the server's touches, outboxes empty; time from the fault's end until pushes are applied and every laptop synced";

pub async fn run(scale: Scale) -> Vec<Finding> {
    let backend = Backend::fresh().await;
    let server = backend.serve(ServerSettings::default()).await;
    let dir = tempdir();
    let mut fleet = Fleet::sign_in(
        &backend,
        server.addr,
        "Net Faults",
        scale.laptops,
        dir.path(),
    )
    .await;
    let mut findings = Vec::new();
    for (round, (fault, name)) in faults().into_iter().enumerate() {
        eprintln!("chaos network: {name}");
        fleet.start_agents();
        let before = fleet.applied(&backend).await;
        fleet
            .write_wave(scale.backlog, &format!("net round {round}"))
            .await;
        fleet.progress_beyond(&backend, before).await;
        let injected_before: u64 = fleet
            .laptops
            .iter()
            .map(|l| l.proxy.faults_injected())
            .sum();
        let at_fault = fleet.applied(&backend).await;
        for l in &fleet.laptops {
            l.proxy.set(fault);
        }
        tokio::time::sleep(scale.hold).await;
        for l in &fleet.laptops {
            l.proxy.set(Fault::Pass);
        }
        let (ended, ended_ms) = (Instant::now(), now_ms());
        let at_end = fleet.applied(&backend).await;
        let injected: u64 = fleet
            .laptops
            .iter()
            .map(|l| l.proxy.faults_injected())
            .sum::<u64>()
            - injected_before;
        if fault != Fault::Delay(Duration::from_millis(40)) {
            assert!(injected > 0, "{name}: the fault hit no connection");
        }
        let recovery = fleet.recovery(&backend, ended, ended_ms, at_end).await;
        let drain = fleet.drained().await;
        let verified = fleet.verify(&backend).await;
        findings.push(Finding::passed(
            &format!("Network: {name}"),
            CHECKED,
            format!(
                "held {} over {} laptops: {injected} connections hit, {} touches applied meanwhile ({}); {verified}",
                secs(scale.hold),
                scale.laptops,
                at_end - at_fault,
                if matches!(fault, Fault::Delay(_)) {
                    "pushes went on, slower"
                } else {
                    "answers lost on the way were re-sent and acknowledged as duplicates"
                }
            ),
            format!(
                "{}every laptop finished a successful sync after {}; drained {} later",
                recovery
                    .first_push
                    .map(|d| format!("first push applied after {}; ", secs(d)))
                    .unwrap_or_default(),
                secs(recovery.every_laptop),
                secs(drain)
            ),
        ));
    }
    server.stop().await;
    findings
}
