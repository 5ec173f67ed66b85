//! Writes benchmark sections into `docs/benchmarks.md`: each suite owns one section between markers,
//! so running one suite refreshes its figures and keeps every other suite's last figures.

use std::fs;
use std::path::Path;

const HEADER: &str = "# Benchmarks\n\nEvery figure here is written by `cargo xtask bench` (or `cargo xtask bench SUITE`) on the machine that ran it; each section says when and on what. References (plain SQLite, raw PostgreSQL, the previous figure) are measured in the same run.\n";

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
