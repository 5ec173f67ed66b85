//! Scenario B at a few seconds and small counts: two real `stormops-server` processes behind nginx (the
//! deployed configuration) sharing one private PostgreSQL, many laptops over real HTTP, one instance
//! killed with SIGKILL halfway. Asserts the statelessness properties, never timings: every receipted
//! change is stored exactly once, the trial plan's monthly quota and the standard plan's request rate
//! refuse at exactly the totals one instance would, and the racing instances train one model per set of
//! data.

use load_gen::config::LoadConfig;
use load_gen::scenario::{self, TWO_INSTANCES};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_behind_nginx_share_limits_train_once_and_lose_nothing_when_one_is_killed() {
    let cluster = tokio::task::spawn_blocking(test_postgres::DedicatedCluster::start)
        .await
        .expect("the cluster task")
        .expect("a private PostgreSQL cluster");
    let config = LoadConfig::quick();
    let r = scenario::run(&cluster, &config, TWO_INSTANCES)
        .await
        .expect("the scenario runs");
    // The report's text, for whoever reads a failure.
    eprintln!(
        "{}",
        load_gen::report::render(&config, std::slice::from_ref(&r), "cargo test -p load-gen")
            .expect("report")
    );

    // Load happened on both sides of the kill.
    let kill = r.kill.as_ref().expect("an instance was killed");
    assert!(r.accepted > 0, "the load pushed nothing");
    assert!(
        kill.all_back > std::time::Duration::ZERO,
        "no laptop synced after the kill: {kill:?}"
    );

    // Nothing lost, nothing doubled, through the kill.
    assert!(r.exactly_once.holds(), "{}", r.exactly_once.summary());
    assert!(r.exactly_once.receipted > r.accepted / 2);

    // The monthly quota stops at the same total as on one instance.
    assert!(
        r.quota.refusals > 0,
        "the trial tenant was never refused: {:?}",
        r.quota
    );
    assert_eq!(r.quota.counter, r.quota.expected, "{:?}", r.quota);
    assert_eq!(r.quota.receipted, r.quota.expected, "{:?}", r.quota);

    // The request rate: one shared window granted exactly the plan's minute across both instances;
    // answered requests never exceed it (an instance may lose at most one reserved chunk).
    let per_minute = config.rate.requests_per_minute;
    assert!(r.rate.allowed <= per_minute as u64, "{:?}", r.rate);
    assert!(
        r.rate.allowed as i64 >= per_minute - 2 * r.rate.chunk,
        "{:?}",
        r.rate
    );
    assert!(r.rate.refused > 0, "{:?}", r.rate);
    assert_eq!(r.rate.other_errors, 0, "{:?}", r.rate);
    assert!(!r.rate.windows.is_empty(), "{:?}", r.rate);
    assert_eq!(
        r.rate.windows,
        vec![(r.rate.windows[0].0, per_minute)],
        "{:?}",
        r.rate
    );

    // Training ran once per set of data.
    let t = &r.training;
    assert_eq!(t.race_trained, 1, "{t:?}");
    assert_eq!(t.race_new_models, 1, "{t:?}");
    assert_eq!(t.race_locked + t.race_current, t.race_requests - 1, "{t:?}");
    assert!(t.race_other.is_empty(), "{t:?}");
    assert_eq!(t.registry.repeated_watermarks(), 0, "{t:?}");
    assert_eq!(t.registry.retrained_without_new_data(), 0, "{t:?}");
    assert_eq!(
        t.registry.model_runs,
        t.registry.models.len() as i64,
        "{t:?}"
    );
    assert!(r.holds());
}
