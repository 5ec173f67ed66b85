//! Writes benchmark sections into `docs/benchmarks.md`: each suite owns one section between markers,
//! so running one suite refreshes its figures and keeps every other suite's last figures. Below the
//! suite's own text the report adds what it derives from the figures: charts (`plots`) and the
//! comparison with the previous run (`figures`).

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use crate::figures::Run;
use crate::plots::{self, Chart};

const HEADER: &str = "# Benchmarks

Every figure here is written by `cargo xtask bench` (all suites: uplift, store, server, sync, tenant, limits and the `ui` in Chromium) or `cargo xtask bench SUITE…` on the machine that ran it; each section says when and on what. Each figure stands beside its reference measured in the same run (plain SQLite, raw PostgreSQL, RLS bypassed, limits off) and beside the previous run's figure.

Sections: [uplift](#uplift) · [store](#store) · [server](#server) · [sync](#sync) · [tenant](#tenant) · [limits](#limits) · [ui](#ui)

How to read a section: the suite's tables first; then its charts (`docs/benchmarks/*.svg`, drawn by the suite from the same figures: grey bars are references from the same run, dashed red outlines are targets, a black tick is the previous run's value); then every figure of the section against the previous run (kept in `docs/benchmarks/figures.json`). Figures measured while other work ran on the machine are noisy: each suite notes its load average.
";

/// Where the suite's own text ends and the derived part (charts, comparison) begins.
pub const DERIVED_MARKER: &str = "<!-- bench:derived -->";

/// The suite's own text of a section, without what the report derived from it last time.
pub fn strip_derived(section: &str) -> &str {
    section
        .find(DERIVED_MARKER)
        .map_or(section, |at| &section[..at])
        .trim()
}

/// Rewrites the report's header (everything before the first section) to the current one.
pub fn write_header(path: &Path) -> std::io::Result<()> {
    let existing = fs::read_to_string(path).unwrap_or_default();
    let sections = existing
        .find("<!-- bench:")
        .map_or("", |at| &existing[at..]);
    fs::write(path, format!("{HEADER}{sections}"))
}

/// Text safe inside a Markdown table cell.
fn cell_text(text: &str) -> String {
    text.replace('|', "\\|")
}

/// A relative change worth pointing out in the summary line.
const NOTABLE_CHANGE_PERCENT: f64 = 10.0;

/// What the report adds below a suite's text: links to its charts, the charts it could not draw, and
/// every figure against the previous run's.
pub fn derived(charts: &[Chart], missing: &[String], now: &Run, previous: Option<&Run>) -> String {
    let mut out = format!("{DERIVED_MARKER}\n");
    if !charts.is_empty() || !missing.is_empty() {
        out.push_str("\n### Charts\n\n");
        for chart in charts {
            let _ = writeln!(
                out,
                "![{}](benchmarks/{})\n",
                chart.title.replace(['[', ']'], ""),
                chart.file
            );
        }
        for title in missing {
            let _ = writeln!(out, "_Chart not drawn: {title}._\n");
        }
    }
    out.push_str("### Previous run → this run\n\n");
    let Some(previous) = previous else {
        out.push_str("No previous figures for this suite: this is its first run with the report's figure history.\n");
        return out;
    };
    let mut rows = Vec::new();
    let mut compared = 0;
    let mut notable = 0;
    let mut table = None;
    for figure in &now.figures {
        let Some(before) = previous.get(&figure.key) else {
            continue;
        };
        if before.unit != figure.unit {
            continue;
        }
        // A share is compared in percentage points; anything else relative to its previous value.
        let (change, shown) = if figure.unit == "%" {
            let points = figure.value - before.value;
            (Some(points), format!("{points:+.1} points"))
        } else {
            let change = plots::change_percent(before.value, figure.value);
            (
                change,
                change.map_or("—".to_owned(), |c| format!("{c:+.1} %")),
            )
        };
        compared += 1;
        if change.is_some_and(|c| c.abs() >= NOTABLE_CHANGE_PERCENT) {
            notable += 1;
        }
        if table != Some(&figure.table) {
            table = Some(&figure.table);
            rows.push(format!("| **{}** | | | |", cell_text(&figure.table)));
        }
        let unit = if figure.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", figure.unit)
        };
        let name = [&figure.row, &figure.column, &figure.part]
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(" › ");
        rows.push(format!(
            "| {} | {}{unit} | {}{unit} | {shown} |",
            cell_text(&name),
            plots::number(before.value),
            plots::number(figure.value),
        ));
    }
    let new = now.figures.len() - compared;
    let _ = writeln!(
        out,
        "Previous run: _{}_. {compared} figures in both runs, {notable} of them changed by {NOTABLE_CHANGE_PERCENT} % (or points) or more; {new} figures new or renamed (no previous value).\n",
        previous.stamp,
    );
    if !rows.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>Every figure: previous → now</summary>\n\n| figure | previous | now | change |\n|---|---|---|---|\n{}\n\n</details>",
            rows.join("\n")
        );
    }
    out
}

fn markers(suite: &str) -> (String, String) {
    (
        format!("<!-- bench:{suite}:start -->"),
        format!("<!-- bench:{suite}:end -->"),
    )
}

/// Replaces (or appends) the section of `suite` in the report at `path`.
pub fn write_section(path: &Path, suite: &str, body: &str) -> std::io::Result<()> {
    let existing = fs::read_to_string(path).unwrap_or_else(|_| HEADER.to_owned());
    let (start, end) = markers(suite);
    let section = format!("{start}\n{}\n{end}", body.trim_end());
    let updated = match (existing.find(&start), existing.find(&end)) {
        (Some(s), Some(e)) if e > s => format!(
            "{}{}{}",
            &existing[..s],
            section,
            &existing[e + end.len()..]
        ),
        _ => format!("{}\n{}\n", existing.trim_end(), section),
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(path, updated)
}

/// The last figures of a suite's section, if any (for "previous figure" comparisons).
pub fn previous_section(path: &Path, suite: &str) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let (start, end) = markers(suite);
    let s = text.find(&start)? + start.len();
    let e = text.find(&end)?;
    (e > s).then(|| text[s..e].to_owned())
}

/// A one-line description of the machine and the time, for each section's heading.
pub fn machine_line() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{cores} cores, {cpu}; measured {}", utc_text(secs))
}

/// `YYYY-MM-DD HH:MM UTC` from Unix seconds (Howard Hinnant's days-to-civil algorithm).
fn utc_text(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (hour, minute) = ((secs % 86_400) / 3_600, (secs % 3_600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_text_formats_known_instants() {
        assert_eq!(utc_text(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_text(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc_text(1_795_464_566), "2026-11-23 20:09 UTC");
    }

    #[test]
    fn the_derived_part_links_the_charts_and_compares_every_figure_with_the_previous_run() {
        let section = |stamp: &str, on: &str| {
            format!(
                "## limits\n\n_{stamp}_\n\n### Empty pull with rate limiting on vs off\n\n\
                 | | p50 | p99 |\n|---|---|---|\n| limits off | 0.800 ms | 12.0 ms |\n\
                 | limits on | {on} | 14.0 ms |\n"
            )
        };
        let previous = crate::figures::parse_section(&section("run 1", "1.000 ms"));
        let now = crate::figures::parse_section(&section("run 2", "0.850 ms"));
        let (charts, missing) = plots::charts("limits", &now, Some(&previous));
        let text = derived(&charts, &missing, &now, Some(&previous));
        assert!(text.starts_with(DERIVED_MARKER));
        assert!(text.contains("(benchmarks/limits-rate.svg)"), "{text}");
        // The quota chart's table is absent: said, not silently dropped.
        assert!(
            text.contains("_Chart not drawn: A push's tenant transaction"),
            "{text}"
        );
        assert!(text.contains("Previous run: _run 1_. 4 figures in both runs, 1 of them changed"));
        assert!(
            text.contains(
                "| **Empty pull with rate limiting on vs off** | | | |\n| limits off › p50 |"
            ),
            "{text}"
        );
        assert!(
            text.contains("| limits on › p50 | 1.00 ms | 0.850 ms | -15.0 % |"),
            "{text}"
        );
        assert!(text.contains("| limits off › p99 | 12.0 ms | 12.0 ms | +0.0 % |"));
        // Re-deriving reads only the suite's own text.
        let full = format!("{}\n\n{text}", section("run 2", "0.850 ms"));
        assert_eq!(strip_derived(&full), section("run 2", "0.850 ms").trim());
        assert!(derived(&charts, &missing, &now, None).contains("No previous figures"));
    }

    #[test]
    fn shares_change_in_points() {
        let run = |stamp: &str, share: &str| {
            crate::figures::parse_section(&format!(
                "## sync\n\n_{stamp}_\n\n| path | touches/s |\n|---|---|\n| push / ceiling | {share} |\n"
            ))
        };
        let text = derived(&[], &[], &run("b", "44 %"), Some(&run("a", "40 %")));
        assert!(
            text.contains("| push / ceiling › touches/s | 40.0 % | 44.0 % | +4.0 points |"),
            "{text}"
        );
    }

    #[test]
    fn the_header_is_rewritten_and_the_sections_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.md");
        fs::write(
            &path,
            "# Old header\n\n<!-- bench:store:start -->\nx\n<!-- bench:store:end -->\n",
        )
        .unwrap();
        write_header(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(HEADER) && !text.contains("Old header"));
        assert!(text.ends_with("<!-- bench:store:start -->\nx\n<!-- bench:store:end -->\n"));
    }

    #[test]
    fn sections_are_replaced_in_place_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.md");
        write_section(&path, "store", "store v1").unwrap();
        write_section(&path, "uplift", "uplift v1").unwrap();
        write_section(&path, "store", "store v2").unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# Benchmarks"));
        assert!(text.contains("store v2") && !text.contains("store v1"));
        assert!(text.contains("uplift v1"));
        assert!(text.find("store v2") < text.find("uplift v1"));
        assert_eq!(
            previous_section(&path, "uplift").unwrap().trim(),
            "uplift v1"
        );
    }
}
