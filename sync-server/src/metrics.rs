//! Prometheus metrics, kept small and bounded: labels are route templates, status classes, receipt
//! statuses and the caller's plan (`trial`, `standard`, `enterprise`, or `none` for a request without a
//! valid token) — never tenant ids (per-tenant figures go through the API). Rendered in the text format
//! at `/metrics`.
//! Gauges read at scrape time (the pool, the pull horizon's lag) are passed in as [`ScrapeGauges`].
//! Every alert in `deploy/prometheus/alerts.yaml` reads only names rendered here (`tests/deploy-lint`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use domain::PlanTier;

/// Upper bounds (seconds) of the request-duration histogram.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// The `plan` label of a request: the caller's plan, or none (no valid token, or a tenant whose plan this
/// instance has not read yet). A closed set, so the label's cardinality is four whatever the tenants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlanLabel(pub Option<PlanTier>);

impl PlanLabel {
    /// Every value the label can take, in rendering order.
    const ALL: [PlanLabel; 4] = [
        PlanLabel(None),
        PlanLabel(Some(PlanTier::Trial)),
        PlanLabel(Some(PlanTier::Standard)),
        PlanLabel(Some(PlanTier::Enterprise)),
    ];

    pub fn as_str(self) -> &'static str {
        self.0.map_or("none", PlanTier::as_str)
    }

    fn index(self) -> usize {
        match self.0 {
            None => 0,
            Some(PlanTier::Trial) => 1,
            Some(PlanTier::Standard) => 2,
            Some(PlanTier::Enterprise) => 3,
        }
    }
}

/// A counter with one value per plan label: a fixed array of atomics, so the hot path takes no lock.
#[derive(Debug, Default)]
pub struct PlanCounter([AtomicU64; 4]);

impl PlanCounter {
    pub fn add(&self, plan: PlanLabel, n: u64) {
        self.0[plan.index()].fetch_add(n, Ordering::Relaxed);
    }

    /// The count of one plan.
    pub fn get(&self, plan: PlanLabel) -> u64 {
        self.0[plan.index()].load(Ordering::Relaxed)
    }

    /// The total over every plan (shaped like `AtomicU64::load`, for callers that want the sum).
    pub fn load(&self, order: Ordering) -> u64 {
        self.0.iter().map(|c| c.load(order)).sum()
    }
}

/// A request counter's labels: route template, method, status class, plan.
type RequestKey = (String, String, &'static str, PlanLabel);

/// The server's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (route, method, status class, plan) → requests.
    requests: Mutex<BTreeMap<RequestKey, u64>>,
    /// (route, plan) → duration histogram.
    durations: Mutex<BTreeMap<(String, PlanLabel), Histogram>>,
    /// (route, plan) → requests refused with 429 by the per-tenant rate limiter (or any other 429).
    rate_limited: Mutex<BTreeMap<(String, PlanLabel), u64>>,
    pub changes_accepted: PlanCounter,
    pub changes_duplicate: PlanCounter,
    pub changes_refused: PlanCounter,
    pub rows_pulled: PlanCounter,
    pub logins_failed: AtomicU64,
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

impl Metrics {
    /// Records one finished request. `route` is the matched route template (bounded), or "unmatched";
    /// `plan` is the caller's plan label.
    pub fn observe_request(
        &self,
        route: &str,
        method: &str,
        status: u16,
        plan: PlanLabel,
        seconds: f64,
    ) {
        if status == 429
            && let Ok(mut limited) = self.rate_limited.lock()
        {
            *limited.entry((route.to_owned(), plan)).or_default() += 1;
        }
        if let Ok(mut requests) = self.requests.lock() {
            *requests
                .entry((
                    route.to_owned(),
                    method.to_owned(),
                    status_class(status),
                    plan,
                ))
                .or_default() += 1;
        }
        if let Ok(mut durations) = self.durations.lock() {
            let h = durations
                .entry((route.to_owned(), plan))
                .or_insert_with(|| Histogram {
                    counts: vec![0; BUCKETS.len()],
                    ..Default::default()
                });
            for (i, bound) in BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.sum += seconds;
            h.count += 1;
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The Prometheus text exposition with the pool's (open, idle) connections when known.
    pub fn render(&self, pool: Option<(u32, u32)>) -> String {
        self.render_with(&ScrapeGauges {
            pool: pool.map(|(open, idle)| PoolGauge {
                open,
                idle,
                max: open,
            }),
            pull_horizon_lag_seconds: None,
        })
    }

    /// The Prometheus text exposition, with the gauges read at this scrape.
    pub fn render_with(&self, gauges: &ScrapeGauges) -> String {
        let mut out = String::new();
        out.push_str("# HELP stormops_http_requests_total HTTP requests by route template, method, status class and plan.\n");
        out.push_str("# TYPE stormops_http_requests_total counter\n");
        if let Ok(requests) = self.requests.lock() {
            for ((route, method, class, plan), n) in requests.iter() {
                let plan = plan.as_str();
                let _ = writeln!(
                    out,
                    "stormops_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{class}\",plan=\"{plan}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP stormops_http_request_duration_seconds HTTP request duration by route template and plan.\n");
        out.push_str("# TYPE stormops_http_request_duration_seconds histogram\n");
        if let Ok(durations) = self.durations.lock() {
            for ((route, plan), h) in durations.iter() {
                let plan = plan.as_str();
                for (i, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "stormops_http_request_duration_seconds_bucket{{route=\"{route}\",plan=\"{plan}\",le=\"{bound}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "stormops_http_request_duration_seconds_bucket{{route=\"{route}\",plan=\"{plan}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "stormops_http_request_duration_seconds_sum{{route=\"{route}\",plan=\"{plan}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "stormops_http_request_duration_seconds_count{{route=\"{route}\",plan=\"{plan}\"}} {}",
                    h.count
                );
            }
        }
        out.push_str("# HELP stormops_sync_changes_total Pushed changes by receipt status and plan.\n# TYPE stormops_sync_changes_total counter\n");
        for (status, counter) in [
            ("accepted", &self.changes_accepted),
            ("duplicate", &self.changes_duplicate),
            ("refused", &self.changes_refused),
        ] {
            // Every plan's series is rendered (zeros included) so rates start from a known value.
            for plan in PlanLabel::ALL.iter().skip(1) {
                let _ = writeln!(
                    out,
                    "stormops_sync_changes_total{{status=\"{status}\",plan=\"{}\"}} {}",
                    plan.as_str(),
                    counter.get(*plan)
                );
            }
        }
        out.push_str("# HELP stormops_sync_rows_pulled_total Rows sent in pull pages, by plan.\n# TYPE stormops_sync_rows_pulled_total counter\n");
        for plan in PlanLabel::ALL.iter().skip(1) {
            let _ = writeln!(
                out,
                "stormops_sync_rows_pulled_total{{plan=\"{}\"}} {}",
                plan.as_str(),
                self.rows_pulled.get(*plan)
            );
        }
        let _ = writeln!(
            out,
            "# HELP stormops_auth_login_failures_total Failed logins.\n# TYPE stormops_auth_login_failures_total counter\nstormops_auth_login_failures_total {}",
            self.logins_failed.load(Ordering::Relaxed)
        );
        out.push_str("# HELP stormops_rate_limited_total Requests refused with 429 (rate limit or quota), by route template and plan.\n# TYPE stormops_rate_limited_total counter\n");
        if let Ok(limited) = self.rate_limited.lock() {
            for ((route, plan), n) in limited.iter() {
                let plan = plan.as_str();
                let _ = writeln!(
                    out,
                    "stormops_rate_limited_total{{route=\"{route}\",plan=\"{plan}\"}} {n}"
                );
            }
        }
        if let Some(PoolGauge { open, idle, max }) = gauges.pool {
            let _ = writeln!(
                out,
                "# HELP stormops_db_pool_connections Application pool connections.\n# TYPE stormops_db_pool_connections gauge\nstormops_db_pool_connections{{state=\"open\"}} {open}\nstormops_db_pool_connections{{state=\"idle\"}} {idle}\nstormops_db_pool_connections{{state=\"max\"}} {max}"
            );
        }
        if let Some(lag) = gauges.pull_horizon_lag_seconds {
            let _ = writeln!(
                out,
                "# HELP stormops_sync_pull_horizon_lag_seconds Age of the oldest writing transaction: pulls hold back rows newer than it.\n# TYPE stormops_sync_pull_horizon_lag_seconds gauge\nstormops_sync_pull_horizon_lag_seconds {lag}"
            );
        }
        out
    }
}

/// The application pool's connections at a scrape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGauge {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

/// Gauges read when `/metrics` is scraped rather than counted as requests pass.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ScrapeGauges {
    pub pool: Option<PoolGauge>,
    /// None when the database could not be asked (the gauge is then left out, not reported as 0).
    pub pull_horizon_lag_seconds: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const STANDARD: PlanLabel = PlanLabel(Some(PlanTier::Standard));
    const TRIAL: PlanLabel = PlanLabel(Some(PlanTier::Trial));

    #[test]
    fn renders_counters_and_cumulative_buckets_by_plan() {
        let m = Metrics::default();
        m.observe_request("/v1/sync/push", "POST", 200, STANDARD, 0.003);
        m.observe_request("/v1/sync/push", "POST", 422, STANDARD, 0.2);
        m.observe_request("/v1/sync/push", "POST", 200, TRIAL, 0.003);
        m.observe_request("/v1/hello", "POST", 200, PlanLabel(None), 0.001);
        m.changes_accepted.add(STANDARD, 5);
        m.changes_accepted.add(TRIAL, 2);
        assert_eq!(m.changes_accepted.load(Ordering::Relaxed), 7);
        let text = m.render(Some((4, 2)));
        for needle in [
            "stormops_http_requests_total{route=\"/v1/sync/push\",method=\"POST\",status=\"2xx\",plan=\"standard\"} 1",
            "stormops_http_requests_total{route=\"/v1/sync/push\",method=\"POST\",status=\"4xx\",plan=\"standard\"} 1",
            "stormops_http_requests_total{route=\"/v1/sync/push\",method=\"POST\",status=\"2xx\",plan=\"trial\"} 1",
            "stormops_http_requests_total{route=\"/v1/hello\",method=\"POST\",status=\"2xx\",plan=\"none\"} 1",
            "stormops_http_request_duration_seconds_bucket{route=\"/v1/sync/push\",plan=\"standard\",le=\"0.005\"} 1",
            "stormops_http_request_duration_seconds_bucket{route=\"/v1/sync/push\",plan=\"standard\",le=\"0.25\"} 2",
            "stormops_http_request_duration_seconds_count{route=\"/v1/sync/push\",plan=\"trial\"} 1",
            "stormops_sync_changes_total{status=\"accepted\",plan=\"standard\"} 5",
            "stormops_sync_changes_total{status=\"accepted\",plan=\"trial\"} 2",
            "stormops_sync_changes_total{status=\"accepted\",plan=\"enterprise\"} 0",
            "stormops_sync_rows_pulled_total{plan=\"enterprise\"} 0",
            "stormops_db_pool_connections{state=\"idle\"} 2",
        ] {
            assert!(text.contains(needle), "lacks `{needle}`:\n{text}");
        }
    }

    #[test]
    fn counts_429s_by_route_and_plan_and_renders_scrape_gauges() {
        let m = Metrics::default();
        m.observe_request("/v1/sync/push", "POST", 429, TRIAL, 0.001);
        m.observe_request("/v1/sync/push", "POST", 429, TRIAL, 0.001);
        m.observe_request("/v1/sync/pull", "POST", 200, TRIAL, 0.001);
        let text = m.render_with(&ScrapeGauges {
            pool: Some(PoolGauge {
                open: 16,
                idle: 0,
                max: 16,
            }),
            pull_horizon_lag_seconds: Some(1.5),
        });
        assert!(
            text.contains("stormops_rate_limited_total{route=\"/v1/sync/push\",plan=\"trial\"} 2")
        );
        assert!(!text.contains("stormops_rate_limited_total{route=\"/v1/sync/pull\""));
        assert!(text.contains("stormops_db_pool_connections{state=\"max\"} 16"));
        assert!(text.contains("stormops_sync_pull_horizon_lag_seconds 1.5"));
        // Left out, not zero, when the database could not be asked.
        let text = m.render_with(&ScrapeGauges::default());
        assert!(!text.contains("stormops_sync_pull_horizon_lag_seconds "));
        // No label carries anything but route templates, methods, statuses, plans and states.
        assert!(!text.contains("tenant"));
    }

    #[test]
    fn the_plan_label_is_a_closed_set() {
        let labels: Vec<&str> = PlanLabel::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(labels, ["none", "trial", "standard", "enterprise"]);
        for plan in PlanTier::ALL {
            let label = PlanLabel(Some(*plan));
            assert_eq!(PlanLabel::ALL[label.index()], label);
        }
    }
}
