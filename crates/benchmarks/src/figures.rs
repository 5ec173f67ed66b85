//! The figures of a benchmark section, read back from the Markdown tables the suite wrote. Suites
//! report in prose and tables (their wording is theirs to change); the report layer needs numbers to
//! draw charts and to compare with the previous run, so it parses every table cell into quantities
//! keyed by `table heading › row › column`. A key that changes (a suite renamed a row, or changed its
//! workload size, which is part of the heading) simply has no previous figure: comparing different
//! workloads would be wrong anyway.
//!
//! The last figures of each suite are kept in `docs/benchmarks/figures.json`, which the next run reads
//! as "previous".

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::{Value, json};

/// One number of a section with its unit (`ms`, `s`, `rows/s`, `%`, `MiB`, … or empty for a count).
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// `heading › row › column`, plus ` › qualifier` for the second and later numbers of one cell.
    pub key: String,
    pub value: f64,
    pub unit: String,
    /// Where the figure was read (empty for figures loaded from `figures.json`, which keep only the
    /// key): the heading above its table, its row label, its column, and for the second and later
    /// numbers of a cell the qualifier (`p99`, `max`) or position (`#2`).
    pub table: String,
    pub row: String,
    pub column: String,
    pub part: String,
}

/// The figures of one suite's run, with the stamp (the section's italic machine/time line) that tells
/// runs apart.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Run {
    pub stamp: String,
    pub figures: Vec<Figure>,
}

impl Run {
    /// The figure with exactly this key.
    pub fn get(&self, key: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.key == key)
    }
}

/// What `figures.json` holds per suite: the latest run and the one before it (kept so the report of
/// the latest run can be rebuilt without comparing the run with itself).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SuiteHistory {
    pub latest: Run,
    pub previous: Option<Run>,
}

/// `docs/benchmarks/figures.json`: suite name → history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub suites: BTreeMap<String, SuiteHistory>,
}

impl History {
    /// Reads the file; a missing or unreadable file is an empty history (the first run has no previous
    /// figures, which the report says).
    pub fn load(path: &Path) -> History {
        let Some(doc) = fs::read_to_string(path)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        else {
            return History::default();
        };
        let suites = doc["suites"]
            .as_object()
            .map(|suites| {
                suites
                    .iter()
                    .filter_map(|(name, h)| {
                        Some((
                            name.clone(),
                            SuiteHistory {
                                latest: run_from_json(&h["latest"])?,
                                previous: run_from_json(&h["previous"]),
                            },
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        History { suites }
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        // One figure per line, so a run's diff shows exactly the figures that moved.
        let text = |t: &str| Value::String(t.to_owned()).to_string();
        let run = |run: &Run| {
            let figures: Vec<String> = run
                .figures
                .iter()
                .map(|f| {
                    format!(
                        "        {}",
                        json!({ "key": f.key, "value": f.value, "unit": f.unit })
                    )
                })
                .collect();
            format!(
                "{{\n      \"stamp\": {},\n      \"figures\": [\n{}\n      ]\n    }}",
                text(&run.stamp),
                figures.join(",\n")
            )
        };
        let suites: Vec<String> = self
            .suites
            .iter()
            .map(|(name, h)| {
                format!(
                    "  {}: {{\n    \"latest\": {},\n    \"previous\": {}\n  }}",
                    text(name),
                    run(&h.latest),
                    h.previous.as_ref().map_or("null".to_owned(), run)
                )
            })
            .collect();
        let doc = format!(
            "{{\n\"about\": {},\n\"suites\": {{\n{}\n}}\n}}\n",
            text(
                "the figures of each suite's last two runs, written by cargo xtask bench; the next run compares with `latest`"
            ),
            suites.join(",\n")
        );
        fs::write(path, doc)?;
        Ok(())
    }

    /// Records `now` as the suite's latest run and returns the run to compare it with: the stored
    /// latest when `now` is a new run, or the stored previous when `now` is the same run again (a
    /// report rebuilt from an unchanged section).
    pub fn record(&mut self, suite: &str, now: Run) -> Option<Run> {
        match self.suites.get_mut(suite) {
            Some(history) if history.latest.stamp == now.stamp => {
                history.latest = now;
                history.previous.clone()
            }
            Some(history) => {
                let previous = std::mem::replace(&mut history.latest, now);
                history.previous = Some(previous.clone());
                Some(previous)
            }
            None => {
                self.suites.insert(
                    suite.to_owned(),
                    SuiteHistory {
                        latest: now,
                        previous: None,
                    },
                );
                None
            }
        }
    }
}

fn run_from_json(value: &Value) -> Option<Run> {
    let figures = value["figures"]
        .as_array()?
        .iter()
        .filter_map(|f| {
            Some(Figure {
                key: f["key"].as_str()?.to_owned(),
                value: f["value"].as_f64()?,
                unit: f["unit"].as_str().unwrap_or_default().to_owned(),
                table: String::new(),
                row: String::new(),
                column: String::new(),
                part: String::new(),
            })
        })
        .collect();
    Some(Run {
        stamp: value["stamp"].as_str().unwrap_or_default().to_owned(),
        figures,
    })
}

/// The figures of a section's Markdown: every numeric cell of every table, and the stamp.
pub fn parse_section(markdown: &str) -> Run {
    let mut figures = Vec::new();
    let mut stamp = String::new();
    let mut heading = String::new();
    let mut header: Option<Vec<String>> = None;
    for line in markdown.lines() {
        let line = line.trim();
        if stamp.is_empty() && line.len() > 2 && line.starts_with('_') && line.ends_with('_') {
            stamp = line.trim_matches('_').to_owned();
        }
        if let Some(text) = line
            .strip_prefix("### ")
            .or_else(|| line.strip_prefix("## "))
        {
            heading = plain(text);
            header = None;
            continue;
        }
        if !line.starts_with('|') {
            header = None;
            continue;
        }
        let cells = table_cells(line);
        if cells
            .iter()
            .all(|c| !c.is_empty() && c.chars().all(|ch| "-: ".contains(ch)))
        {
            continue; // the |---|---| separator
        }
        let Some(columns) = &header else {
            header = Some(cells);
            continue;
        };
        let label_first = !cells.first().is_some_and(|c| is_value(c));
        let label = if label_first {
            plain(&cells[0])
        } else {
            String::new()
        };
        let start = usize::from(label_first);
        for (index, cell) in cells.iter().enumerate().skip(start) {
            let column = columns.get(index).map(|c| plain(c)).unwrap_or_default();
            let base = [heading.as_str(), label.as_str(), column.as_str()]
                .iter()
                .filter(|p| !p.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" › ");
            for (n, q) in quantities(cell).into_iter().enumerate() {
                let part = if n == 0 {
                    String::new()
                } else {
                    q.qualifier.unwrap_or_else(|| format!("#{}", n + 1))
                };
                let mut key = if part.is_empty() {
                    base.clone()
                } else {
                    format!("{base} › {part}")
                };
                // The same row label again (two tables under one heading): number the repeats, so
                // each keeps its own previous value.
                let mut repeat = 1;
                while figures.iter().any(|f: &Figure| f.key == key) {
                    repeat += 1;
                    key = format!("{base} ({repeat})");
                    if !part.is_empty() {
                        key.push_str(&format!(" › {part}"));
                    }
                }
                // A bare number under a unit heading (`| changes/s |`) has that unit.
                let unit = if q.unit.is_empty() && UNITS.contains(&column.as_str()) {
                    column.clone()
                } else {
                    q.unit
                };
                figures.push(Figure {
                    key,
                    value: q.value,
                    unit,
                    table: heading.clone(),
                    row: label.clone(),
                    column: column.clone(),
                    part,
                });
            }
        }
    }
    Run { stamp, figures }
}

/// The cells of one table line, without the outer pipes.
fn table_cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_owned()).collect()
}

/// Text without Markdown emphasis or code marks, spaces collapsed.
pub fn plain(text: &str) -> String {
    text.replace("**", "")
        .replace('`', "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Units the parser recognises after a number; anything else makes the number a count.
const UNITS: &[&str] = &[
    "ms",
    "s",
    "µs",
    "us",
    "%",
    "MiB",
    "MB",
    "KiB",
    "kB",
    "GiB",
    "GB",
    "rows/s",
    "changes/s",
    "touches/s",
    "requests/s",
];

#[derive(Debug, PartialEq)]
struct Quantity {
    value: f64,
    unit: String,
    qualifier: Option<String>,
}

/// Removes the parts of a cell that state a target rather than a measurement: `(target …)`.
fn without_targets(cell: &str) -> String {
    let mut out = String::new();
    let mut rest = cell;
    while let Some(at) = rest.find("(target") {
        out.push_str(&rest[..at]);
        match rest[at..].find(')') {
            Some(close) => rest = &rest[at + close + 1..],
            None => rest = "",
        }
    }
    out.push_str(rest);
    out
}

/// Whether a cell is only numbers and units (a value, not a row label).
fn is_value(cell: &str) -> bool {
    let text = plain(&without_targets(cell));
    if quantities(&text).is_empty() {
        return false;
    }
    text.split(|c: char| c.is_whitespace() || "(),;/+−-<≤".contains(c))
        .filter(|w| !w.is_empty())
        .all(|w| {
            w.chars().next().is_some_and(|c| c.is_ascii_digit())
                || UNITS.contains(&w)
                || w == "s"
                || is_qualifier(w)
        })
}

/// Words that name a number that follows them: `p50 0.75 ms`, `max 7.3 ms`.
fn is_qualifier(word: &str) -> bool {
    matches!(word, "max" | "min" | "peak" | "median" | "mean")
        || (word.len() > 1
            && word.starts_with('p')
            && word[1..].chars().all(|c| c.is_ascii_digit()))
}

/// The numbers of a cell in order, each with its unit and the qualifier word before it.
fn quantities(cell: &str) -> Vec<Quantity> {
    let text = plain(&without_targets(cell)).replace(" ± ", " ");
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let word = words[i].trim_matches(|c: char| "(),;*".contains(c));
        let (number, glued_unit) = split_number(word);
        let Some(value) = number else {
            i += 1;
            continue;
        };
        let qualifier = i
            .checked_sub(1)
            .map(|j| words[j].trim_matches(|c: char| "(),;*".contains(c)))
            .filter(|w| is_qualifier(w))
            .map(str::to_owned);
        let unit = if !glued_unit.is_empty() {
            glued_unit.to_owned()
        } else {
            words
                .get(i + 1)
                .map(|w| w.trim_matches(|c: char| "(),;:*".contains(c)))
                .filter(|w| UNITS.contains(w))
                .map(str::to_owned)
                .unwrap_or_default()
        };
        out.push(Quantity {
            value,
            unit,
            qualifier,
        });
        i += 1;
    }
    out
}

/// `"-0.017"` → (-0.017, ""), `"44,086"` → (44086, ""), `"78%"` → (78, "%"), `"x1"` → (None, "").
fn split_number(word: &str) -> (Option<f64>, &str) {
    let word = word.trim_start_matches(['+', '<', '≤', '~']);
    let digits_end = word
        .char_indices()
        .find(|(i, c)| {
            !(c.is_ascii_digit() || *c == '.' || *c == ',' || ((*c == '-' || *c == '−') && *i == 0))
        })
        .map(|(i, _)| i)
        .unwrap_or(word.len());
    let (number, rest) = word.split_at(digits_end);
    let number = number.replace(',', "").replace('−', "-");
    if !number.chars().any(|c| c.is_ascii_digit()) || number.ends_with('.') {
        return (None, "");
    }
    match number.parse::<f64>() {
        Ok(v) if rest.is_empty() || UNITS.contains(&rest) => (Some(v), rest),
        _ => (None, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECTION: &str = "## store\n\n_2 cores, AMD EPYC; measured 2026-11-29 20:07 UTC_\n\n\
### Inserts: 100 touches\n\n\
| transactions | plain SQLite | SQLCipher | ratio |\n|---|---|---|---|\n\
| one transaction | 2268.28 ms (44,086 rows/s) | 2891.95 ms (34579 rows/s) | **78 %** |\n\n\
| path | changes/s |\n|---|---|\n| HTTP push | 23143 |\n\n\
Some prose with 12 ms in it.\n\n\
### Empty sync\n\n| p50 | p99 |\n|---|---|\n| **1.01 ms** (target < 5 ms) | 7.29 ms |\n\n\
| learner | Qini | time |\n|---|---|---|\n| S-learner | -0.0170 | — |\n\
| tenant | 1.3 ms (p95 1.9 ms, max 7.3 ms) | < 50 ms |\n";

    #[test]
    fn tables_become_keyed_figures_with_units() {
        let run = parse_section(SECTION);
        assert_eq!(
            run.stamp,
            "2 cores, AMD EPYC; measured 2026-11-29 20:07 UTC"
        );
        let get = |key: &str| run.get(key).map(|f| (f.value, f.unit.as_str()));
        assert_eq!(
            get("Inserts: 100 touches › one transaction › plain SQLite"),
            Some((2268.28, "ms"))
        );
        assert_eq!(
            get("Inserts: 100 touches › one transaction › plain SQLite › #2"),
            Some((44086.0, "rows/s"))
        );
        assert_eq!(
            get("Inserts: 100 touches › one transaction › ratio"),
            Some((78.0, "%"))
        );
        assert_eq!(
            get("Inserts: 100 touches › HTTP push › changes/s"),
            Some((23143.0, "changes/s"))
        );
        // A row of values only has no label; the target in parentheses is not a figure.
        assert_eq!(get("Empty sync › p50"), Some((1.01, "ms")));
        assert_eq!(get("Empty sync › p99"), Some((7.29, "ms")));
        assert_eq!(get("Empty sync › S-learner › Qini"), Some((-0.017, "")));
        assert!(get("Empty sync › S-learner › time").is_none());
        assert_eq!(get("Empty sync › tenant › Qini › p95"), Some((1.9, "ms")));
        assert_eq!(get("Empty sync › tenant › Qini › max"), Some((7.3, "ms")));
        assert_eq!(get("Empty sync › tenant › time"), Some((50.0, "ms")));
        // A repeated row label under one heading is numbered, not dropped.
        let twice = parse_section(
            "## ui\n\n| m | figure |\n|---|---|\n| cold start | 1 ms |\n\ntext\n\n| m | figure |\n|---|---|\n| cold start | 2 ms |\n",
        );
        assert_eq!(
            twice.get("ui › cold start › figure").map(|f| f.value),
            Some(1.0)
        );
        assert_eq!(
            twice.get("ui › cold start › figure (2)").map(|f| f.value),
            Some(2.0)
        );
        // Prose is not parsed.
        assert!(run.figures.iter().all(|f| f.value != 12.0));
    }

    #[test]
    fn history_compares_with_the_run_before_and_never_with_itself() {
        let run = |stamp: &str, v: f64| Run {
            stamp: stamp.to_owned(),
            figures: vec![Figure {
                key: "k".to_owned(),
                value: v,
                unit: "ms".to_owned(),
                table: String::new(),
                row: String::new(),
                column: String::new(),
                part: String::new(),
            }],
        };
        let mut history = History::default();
        assert_eq!(history.record("store", run("a", 1.0)), None);
        assert_eq!(history.record("store", run("b", 2.0)), Some(run("a", 1.0)));
        // The same run again (a rebuilt report) still compares with "a", not with itself.
        assert_eq!(history.record("store", run("b", 2.0)), Some(run("a", 1.0)));
        assert_eq!(history.record("store", run("c", 3.0)), Some(run("b", 2.0)));

        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("benchmarks/figures.json");
        history.save(&path).expect("save");
        assert_eq!(History::load(&path), history);
        assert_eq!(
            History::load(&dir.path().join("missing.json")),
            History::default()
        );
    }
}
