//! `docs/load.md`: one table of figures per scenario side by side, then what each statelessness check
//! found, with the load average at the end of each run (other work on the machine makes figures noisy).

use std::fmt::Write as _;
use std::time::Duration;

use crate::config::LoadConfig;
use crate::scenario::ScenarioResult;

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "**holds**" } else { "**FAILS**" }
}

fn errors(result: &ScenarioResult) -> String {
    if result.errors.is_empty() {
        return "0".to_owned();
    }
    result
        .errors
        .iter()
        .map(|(code, n)| format!("{n} `{code}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The whole page.
pub fn render(
    config: &LoadConfig,
    results: &[ScenarioResult],
    command: &str,
) -> anyhow::Result<String> {
    let mut out = String::new();
    writeln!(out, "# Load: one server instance, then two behind nginx\n")?;
    writeln!(
        out,
        "Written by `{command}` (`crates/load-gen`, binary `stormops-load`). Each scenario runs on a fresh \
         database of a private PostgreSQL cluster with the release `stormops-server` binary; the generator \
         shares the machine's two cores with the servers, nginx and PostgreSQL, so the figures are what \
         one small machine does with everything on it, not the server alone.\n"
    )?;
    writeln!(
        out,
        "**The load.** {} regular tenants (enterprise plan) × {} laptops in {} crews, plus a trial tenant \
         with {} laptops, a training tenant with {} laptops and a standard tenant with {} laptops (its rate \
         burst only): {} laptops in the timed load. Each laptop loops like the sync engine at its fastest \
         cadence: push {} touches (the training tenant's laptops also {} outcomes), pull its crew's new \
         rows to the end of the feed, pause {:.1} s (the engine's debounce). Each tenant's office asks for \
         its usage screen and who-am-I every {:.0} s. A push is retried with the same change ids until it \
         holds receipts, as the engine does. The timed load lasts {:.0} s. Changes per second is the rate \
         the laptops offer at this cadence, sustained when it matches that rate; it is not a saturation \
         figure (`cargo xtask bench server` has the closed loop).\n",
        config.tenants,
        config.laptops_per_tenant,
        config.crews_per_tenant,
        config.quota.laptops,
        config.training.laptops,
        config.rate.laptops,
        config.load_laptops(),
        config.batch,
        config.training.outcomes_per_sync,
        config.think.as_secs_f64(),
        config.office_every.as_secs_f64(),
        config.duration.as_secs_f64()
    )?;
    write!(out, "| | ")?;
    writeln!(
        out,
        "{} |",
        results
            .iter()
            .map(|r| r.name)
            .collect::<Vec<_>>()
            .join(" | ")
    )?;
    writeln!(out, "|---|{}", "---|".repeat(results.len()))?;
    let row = |out: &mut String, label: &str, f: &dyn Fn(&ScenarioResult) -> String| {
        let cells: Vec<String> = results.iter().map(f).collect();
        let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
    };
    row(&mut out, "server instances", &|r| r.instances.to_string());
    row(&mut out, "tenants", &|r| r.tenants.to_string());
    row(&mut out, "laptops in the timed load", &|r| {
        r.laptops.to_string()
    });
    row(&mut out, "load phase", &|r| format!("{:.1} s", r.load_secs));
    row(&mut out, "changes accepted / s", &|r| {
        format!("**{:.0}** ({} changes)", r.changes_per_sec(), r.accepted)
    });
    row(&mut out, "requests / s", &|r| {
        format!(
            "{:.0} ({} requests)",
            r.requests as f64 / r.load_secs.max(1e-9),
            r.requests
        )
    });
    row(&mut out, "all requests p50 / p95 / p99", &|r| {
        format!(
            "**{} / {} / {}**",
            ms(r.all.p50),
            ms(r.all.p95),
            ms(r.all.p99)
        )
    });
    row(&mut out, "push p50 / p95 / p99", &|r| {
        format!(
            "{} / {} / {}",
            ms(r.push.p50),
            ms(r.push.p95),
            ms(r.push.p99)
        )
    });
    row(&mut out, "pull page p50 / p95 / p99", &|r| {
        format!(
            "{} / {} / {}",
            ms(r.pull.p50),
            ms(r.pull.p95),
            ms(r.pull.p99)
        )
    });
    row(&mut out, "office request p50 / p95 / p99", &|r| {
        format!(
            "{} / {} / {}",
            ms(r.office.p50),
            ms(r.office.p95),
            ms(r.office.p99)
        )
    });
    row(
        &mut out,
        "errors by code (every attempt, retried ones included)",
        &errors,
    );
    row(&mut out, "exactly once (PostgreSQL vs receipts)", &|r| {
        format!(
            "{}: {}",
            verdict(r.exactly_once.holds()),
            r.exactly_once.summary()
        )
    });
    row(&mut out, "kill mid-load: recovery", &|r| match &r.kill {
        None => "—".to_owned(),
        Some(k) => format!(
            "instance 2 killed (SIGKILL) at {:.1} s; {} failed request(s) after it ({}), last failure {} after the kill; every laptop synced again within {}; nothing lost (exactly once above)",
            k.at_secs,
            k.failed.values().sum::<u64>(),
            if k.failed.is_empty() {
                "none".to_owned()
            } else {
                k.failed
                    .iter()
                    .map(|(c, n)| format!("{n} `{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            ms(k.recovery),
            ms(k.all_back)
        ),
    });
    row(&mut out, "monthly quota (trial tenant)", &|r| {
        let q = &r.quota;
        format!(
            "{}: limit {}, batches of {}, set-up used {}; counter stopped at {} (expected {}), {} changes receipted, {} pushes refused `quota_exceeded`",
            verdict(q.holds()),
            q.limit,
            q.batch,
            q.setup_events,
            q.counter,
            q.expected,
            q.receipted,
            q.refusals
        )
    });
    row(&mut out, "requests per minute (standard tenant)", &|r| {
        let q = &r.rate;
        format!(
            "{}: plan {} / min; PostgreSQL granted {} in {} window(s) to the {} instance(s) together; {} requests answered, {} refused `rate_limited`, {} other errors (a chunk is {})",
            verdict(q.holds()),
            q.per_minute,
            q.windows.iter().map(|w| w.1).sum::<i64>(),
            q.windows.len(),
            q.instances,
            q.allowed,
            q.refused,
            q.other_errors,
            q.chunk
        )
    });
    row(&mut out, "training once (training tenant)", &|r| {
        let t = &r.training;
        format!(
            "{}: race of {} concurrent trainings → {} trained, {} locked out (409), {} found the model current{}; {} new model; after the load {} models, {} repeated watermarks, {} retrained without new data, {} model runs metered",
            verdict(t.holds()),
            t.race_requests,
            t.race_trained,
            t.race_locked,
            t.race_current,
            if t.race_other.is_empty() {
                String::new()
            } else {
                format!(", other: {:?}", t.race_other)
            },
            t.race_new_models,
            t.registry.models.len(),
            t.registry.repeated_watermarks(),
            t.registry.retrained_without_new_data(),
            t.registry.model_runs
        )
    });
    row(&mut out, "load average at the end (1, 5, 15 min)", &|r| {
        r.load_average.clone()
    });
    writeln!(out)?;
    writeln!(
        out,
        "**How each check is made.** *Exactly once*: for every tenant, the ids of the changes holding a \
         receipt are looked up in PostgreSQL as the application role under the tenant's row-level \
         security — each stored, nothing stored without a receipt, nothing of a refused batch stored, one \
         feed row per touch and outcome, and the month's synced-events counter equal to the receipted \
         changes (a retried push whose first answer was lost is acknowledged as a duplicate and counted \
         once). *Monthly quota*: the push that crosses the limit is accepted and every later one refused, \
         so the counter must stop at exactly set-up + ⌈(limit − set-up) / batch⌉ × batch, on one instance \
         or two. *Requests per minute*: in one fresh minute the standard tenant's laptops pull until every \
         instance refuses; `rate_windows` must show one window granted exactly the plan's minute to all \
         instances together, and the answered requests may fall short of it by at most a chunk per \
         instance (an instance refused by the shared window while a concurrent request of its own had \
         just reserved a chunk answers 429 until `Retry-After` and loses the rest of that chunk, as \
         `docs/plans-and-limits.md` allows). *Training once*: two on-demand trainings per instance are fired at once at \
         the instances themselves; then both instances' background trainers race during the load; every \
         registered model must have its own watermark and more training rows than the one before (each \
         outcome lands on a property without one), and each is one metered model run. *Kill mid-load*: \
         the second instance gets SIGKILL halfway; nginx stops sending it requests and the laptops retry \
         what failed; the exactly-once check then covers every push made around the kill.\n"
    )?;
    writeln!(
        out,
        "`cargo xtask test` runs the same scenario B at a few seconds and small counts as \
         `crates/load-gen/tests/two_instances.rs`, asserting these properties (never timings)."
    )?;
    Ok(out)
}
