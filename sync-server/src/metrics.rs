//! Prometheus metrics, kept small and bounded: labels are route templates, status classes and entity
//! kinds — never tenant ids (per-tenant figures go through the API). Rendered in the text format at `/metrics`.
//! Gauges read at scrape time (the pool, the pull horizon's lag) are passed in as [`ScrapeGauges`].
//! Every alert in `deploy/prometheus/alerts.yaml` reads only names rendered here (`tests/deploy-lint`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// The server's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (route, method, status class) → requests.
    requests: Mutex<BTreeMap<(String, String, &'static str), u64>>,
    /// route → duration histogram.
    durations: Mutex<BTreeMap<String, Histogram>>,
    /// route → requests refused with 429 by the per-tenant rate limiter (or any other 429).
    rate_limited: Mutex<BTreeMap<String, u64>>,
    pub changes_accepted: AtomicU64,
    pub changes_duplicate: AtomicU64,
    pub changes_refused: AtomicU64,
    pub rows_pulled: AtomicU64,
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
    /// Records one finished request. `route` is the matched route template (bounded), or "unmatched".
    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        if status == 429
            && let Ok(mut limited) = self.rate_limited.lock()
        {
            *limited.entry(route.to_owned()).or_default() += 1;
        }
        if let Ok(mut requests) = self.requests.lock() {
            *requests
                .entry((route.to_owned(), method.to_owned(), status_class(status)))
                .or_default() += 1;
        }
        if let Ok(mut durations) = self.durations.lock() {
            let h = durations
                .entry(route.to_owned())
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
        out.push_str("# HELP stormops_http_requests_total HTTP requests by route template, method and status class.\n");
        out.push_str("# TYPE stormops_http_requests_total counter\n");
        if let Ok(requests) = self.requests.lock() {
            for ((route, method, class), n) in requests.iter() {
                let _ = writeln!(
                    out,
                    "stormops_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{class}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP stormops_http_request_duration_seconds HTTP request duration by route template.\n");
        out.push_str("# TYPE stormops_http_request_duration_seconds histogram\n");
        if let Ok(durations) = self.durations.lock() {
            for (route, h) in durations.iter() {
                for (i, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "stormops_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "stormops_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "stormops_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "stormops_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count
                );
            }
        }
        out.push_str("# HELP stormops_sync_changes_total Pushed changes by receipt status.\n# TYPE stormops_sync_changes_total counter\n");
        for (status, counter) in [
            ("accepted", &self.changes_accepted),
            ("duplicate", &self.changes_duplicate),
            ("refused", &self.changes_refused),
        ] {
            let _ = writeln!(
                out,
                "stormops_sync_changes_total{{status=\"{status}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP stormops_sync_rows_pulled_total Rows sent in pull pages.\n# TYPE stormops_sync_rows_pulled_total counter\nstormops_sync_rows_pulled_total {}",
            self.rows_pulled.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP stormops_auth_login_failures_total Failed logins.\n# TYPE stormops_auth_login_failures_total counter\nstormops_auth_login_failures_total {}",
            self.logins_failed.load(Ordering::Relaxed)
        );
        out.push_str("# HELP stormops_rate_limited_total Requests refused with 429 (rate limit), by route template.\n# TYPE stormops_rate_limited_total counter\n");
        if let Ok(limited) = self.rate_limited.lock() {
            for (route, n) in limited.iter() {
                let _ = writeln!(out, "stormops_rate_limited_total{{route=\"{route}\"}} {n}");
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

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe_request("/v1/sync/push", "POST", 200, 0.003);
        m.observe_request("/v1/sync/push", "POST", 422, 0.2);
        Metrics::add(&m.changes_accepted, 5);
        let text = m.render(Some((4, 2)));
        assert!(text.contains(
            "stormops_http_requests_total{route=\"/v1/sync/push\",method=\"POST\",status=\"2xx\"} 1"
        ));
        assert!(text.contains(
            "stormops_http_requests_total{route=\"/v1/sync/push\",method=\"POST\",status=\"4xx\"} 1"
        ));
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("le=\"0.25\"} 2"));
        assert!(text.contains("stormops_sync_changes_total{status=\"accepted\"} 5"));
        assert!(text.contains("stormops_db_pool_connections{state=\"idle\"} 2"));
    }

    #[test]
    fn counts_429s_by_route_and_renders_scrape_gauges() {
        let m = Metrics::default();
        m.observe_request("/v1/sync/push", "POST", 429, 0.001);
        m.observe_request("/v1/sync/push", "POST", 429, 0.001);
        m.observe_request("/v1/sync/pull", "POST", 200, 0.001);
        let text = m.render_with(&ScrapeGauges {
            pool: Some(PoolGauge {
                open: 16,
                idle: 0,
                max: 16,
            }),
            pull_horizon_lag_seconds: Some(1.5),
        });
        assert!(text.contains("stormops_rate_limited_total{route=\"/v1/sync/push\"} 2"));
        assert!(!text.contains("stormops_rate_limited_total{route=\"/v1/sync/pull\"}"));
        assert!(text.contains("stormops_db_pool_connections{state=\"max\"} 16"));
        assert!(text.contains("stormops_sync_pull_horizon_lag_seconds 1.5"));
        // Left out, not zero, when the database could not be asked.
        let text = m.render_with(&ScrapeGauges::default());
        assert!(!text.contains("stormops_sync_pull_horizon_lag_seconds "));
        // No label carries anything but route templates, methods, statuses and states.
        assert!(!text.contains("tenant"));
    }
}
