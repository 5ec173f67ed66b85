//! The quick chaos suite inside `cargo xtask test`: every scenario at `Scale::quick`. The scenarios
//! assert their properties themselves (nothing lost, nothing doubled, typed errors, convergence) and
//! panic with the broken one; these tests add that each produced its findings. Timings are reported,
//! never asserted. The server-kill scenario needs the `stormops-server` binary built (`cargo test
//! --workspace` builds it).

use chaos::report::{Finding, Outcome};
use chaos::{Scale, clock_skew, disk_full, network, pg_restart, server_kill};

fn show(findings: &[Finding]) {
    for f in findings {
        eprintln!(
            "{}: {:?} — {} — recovery {}",
            f.fault, f.outcome, f.result, f.recovery
        );
    }
}

fn all_passed(findings: &[Finding], expected: usize) {
    show(findings);
    assert_eq!(findings.len(), expected, "one finding per fault");
    assert!(findings.iter().all(|f| f.outcome == Outcome::Passed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarts_under_load_lose_and_double_nothing() {
    all_passed(&pg_restart::run(Scale::quick()).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_batch_repeatedly_loses_and_doubles_nothing() {
    all_passed(&server_kill::run(Scale::quick()).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_faults_at_the_proxies_lose_and_double_nothing() {
    all_passed(&network::run(Scale::quick()).await, network::faults().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_laptop_disk_fails_typed_and_recovers() {
    let findings = disk_full::run(Scale::quick()).await;
    show(&findings);
    assert_eq!(findings.len(), 1);
    // Skipped only with its reason (not root, or no tmpfs mount here); CI runs as root.
    assert!(match &findings[0].outcome {
        Outcome::Passed => true,
        Outcome::Skipped(reason) => !reason.is_empty(),
        Outcome::Failed(_) | Outcome::Defect => false,
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_laptop_clocks_keep_order_converge_and_refuse_the_far_future() {
    let findings = clock_skew::run(Scale::quick()).await;
    show(&findings);
    assert_eq!(findings.len(), 3);
    // Causality (also for a laptop hours behind, which adopts the server's readings), convergence,
    // the typed refusal of a laptop hours ahead and its recovery once its clock is corrected (it
    // re-stamps its outbox and pushes every change once) must all hold.
    assert_eq!(findings[0].outcome, Outcome::Passed, "causality");
    assert_eq!(findings[1].outcome, Outcome::Passed, "convergence");
    assert_eq!(
        findings[2].outcome,
        Outcome::Passed,
        "refused while ahead, recovered after the correction"
    );
}
