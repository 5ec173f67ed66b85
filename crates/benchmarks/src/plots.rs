//! Charts of the benchmark figures, written as SVG files beside `docs/benchmarks.md`: each measured
//! figure drawn beside its reference from the same run (plain SQLite, raw PostgreSQL, RLS bypassed,
//! limits off) or its target, with a tick at the previous run's value. The charts are declared here
//! against the suites' table labels ([`specs`]); a chart whose figures a suite no longer reports is
//! not drawn and the report says so, rather than the run failing over a renamed row.

use std::fmt::Write as _;

use crate::figures::{Figure, Run};

/// What a bar stands for; references and targets are drawn so they cannot be mistaken for figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// A figure of the system under test.
    Measured,
    /// The same work done by a reference in the same run (plain SQLite, raw COPY, RLS bypassed…).
    Reference,
    /// The target the figure is held to (outlined, not filled).
    Target,
}

/// One series of a chart: a name for the legend and what its bars are.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub kind: Kind,
}

/// One bar: its value in the chart's unit and, when the previous run had it, the previous value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bar {
    pub value: f64,
    pub previous: Option<f64>,
}

/// A group of bars (one per series; `None` where a series has no bar in this group).
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub label: String,
    pub bars: Vec<Option<Bar>>,
    /// Draw this group's bars as references whatever their series (e.g. uplift's random scores).
    pub reference: bool,
}

/// A horizontal grouped bar chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// File name under `docs/benchmarks/`, e.g. `store-inserts.svg`.
    pub file: String,
    pub title: String,
    /// The unit of every bar (`ms`, `rows/s`, or empty for a plain number).
    pub unit: String,
    /// "lower is better" / "higher is better".
    pub better: String,
    pub series: Vec<Series>,
    pub groups: Vec<Group>,
}

/// How to find one figure among a section's: substrings (case-insensitive) of its table heading, row
/// and column, and which number of the cell.
#[derive(Clone, Copy, Debug)]
pub enum Pick {
    Cell {
        table: &'static str,
        row: &'static str,
        column: &'static str,
        which: Which,
    },
    /// No bar in this group for this series.
    None,
}

/// Which number of a cell: the first, the first with a unit, or a later one by qualifier (`p99`,
/// `max`) or position (`#2`).
#[derive(Clone, Copy, Debug)]
pub enum Which {
    First,
    Unit(&'static str),
    Part(&'static str),
}

/// The groups of a chart spec.
#[derive(Clone, Copy, Debug)]
pub enum Groups {
    /// Named groups, one pick per series each.
    Fixed(&'static [(&'static str, &'static [Pick])]),
    /// One group per row of a table (in the suite's order), one column per series; rows whose label
    /// contains "reference" are drawn as references.
    EachRow {
        table: &'static str,
        columns: &'static [(&'static str, Which)],
    },
}

/// A chart declared against a suite's tables.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub suite: &'static str,
    pub file: &'static str,
    pub title: &'static str,
    pub unit: &'static str,
    pub better: &'static str,
    pub series: &'static [(&'static str, Kind)],
    pub groups: Groups,
}

const fn cell(table: &'static str, row: &'static str, column: &'static str, which: Which) -> Pick {
    Pick::Cell {
        table,
        row,
        column,
        which,
    }
}

use Kind::{Measured, Reference, Target};
use Which::{First, Part, Unit};

/// Every chart of the report.
pub const SPECS: &[Spec] = &[
    Spec {
        suite: "store",
        file: "store-inserts.svg",
        title: "Inserts with their outbox rows: SQLCipher vs plain SQLite",
        unit: "rows/s",
        better: "higher is better",
        series: &[
            ("plain SQLite (reference)", Reference),
            ("SQLCipher", Measured),
        ],
        groups: Groups::EachRow {
            table: "Inserts",
            columns: &[
                ("plain SQLite", Unit("rows/s")),
                ("SQLCipher", Unit("rows/s")),
            ],
        },
    },
    Spec {
        suite: "store",
        file: "store-query.svg",
        title: "Ranked property queries: SQLCipher vs plain SQLite (p50 and p95)",
        unit: "ms",
        better: "lower is better",
        series: &[
            ("plain SQLite p50 (reference)", Reference),
            ("SQLCipher p50", Measured),
            ("plain SQLite p95 (reference)", Reference),
            ("SQLCipher p95", Measured),
        ],
        groups: Groups::EachRow {
            table: "Ranked",
            columns: &[
                ("plain p50", First),
                ("SQLCipher p50", First),
                ("plain p95", First),
                ("SQLCipher p95", First),
            ],
        },
    },
    Spec {
        suite: "store",
        file: "store-unlock.svg",
        title: "Opening a tenant file: SQLCipher unlock vs plain SQLite open",
        unit: "ms",
        better: "lower is better (the KDF is slow on purpose)",
        series: &[
            ("plain SQLite open (reference)", Reference),
            ("SQLCipher unlock", Measured),
        ],
        groups: Groups::Fixed(&[(
            "open the 50,000-property file",
            &[
                cell("unlock", "plain SQLite open", "time", First),
                cell("unlock", "unlock (", "time", First),
            ],
        )]),
    },
    Spec {
        suite: "server",
        file: "server-push.svg",
        title: "Push: HTTP sync API vs raw PostgreSQL COPY ceiling",
        unit: "changes/s",
        better: "higher is better",
        series: &[
            ("raw COPY ceiling (reference)", Reference),
            ("HTTP push", Measured),
        ],
        groups: Groups::Fixed(&[(
            "batches of 1,000 touches",
            &[
                cell(
                    "Push throughput",
                    "raw PostgreSQL ceiling",
                    "changes/s",
                    First,
                ),
                cell("Push throughput", "HTTP push (", "changes/s", First),
            ],
        )]),
    },
    Spec {
        suite: "server",
        file: "server-rls.svg",
        title: "Pull statement: row-level security on vs bypassed",
        unit: "ms",
        better: "lower is better",
        series: &[
            ("RLS bypassed, superuser (reference)", Reference),
            ("RLS on, app role", Measured),
        ],
        groups: Groups::Fixed(&[(
            "all pages of the pull",
            &[
                cell("Pull", "as a superuser", "value", First),
                cell("Pull", "as the app role under RLS", "value", First),
            ],
        )]),
    },
    Spec {
        suite: "server",
        file: "server-latency.svg",
        title: "Server request latency percentiles",
        unit: "ms",
        better: "lower is better",
        series: &[("p50", Measured), ("p99", Measured)],
        groups: Groups::Fixed(&[
            (
                "empty pull round trip",
                &[
                    cell("Pull", "empty pull round trip", "value", First),
                    cell("Pull", "empty pull round trip", "value", Part("p99")),
                ],
            ),
            (
                "200 devices, engine cadence",
                &[
                    cell(
                        "200 concurrent",
                        "fastest cadence): all requests",
                        "value",
                        First,
                    ),
                    cell(
                        "200 concurrent",
                        "fastest cadence): all requests",
                        "value",
                        Part("p99"),
                    ),
                ],
            ),
            (
                "200 devices, closed loop",
                &[
                    cell(
                        "200 concurrent",
                        "saturating): all requests",
                        "value",
                        First,
                    ),
                    cell(
                        "200 concurrent",
                        "saturating): all requests",
                        "value",
                        Part("p99"),
                    ),
                ],
            ),
        ]),
    },
    Spec {
        suite: "sync",
        file: "sync-drain.svg",
        title: "Draining a week offline: sync engine vs raw PostgreSQL ceiling",
        unit: "touches/s",
        better: "higher is better",
        series: &[
            ("raw COPY ceiling (reference)", Reference),
            ("engine push phase", Measured),
        ],
        groups: Groups::Fixed(&[(
            "100,000 touches",
            &[
                cell("drain", "raw PostgreSQL ceiling", "touches/s", First),
                cell("drain", "push phase", "touches/s", First),
            ],
        )]),
    },
    Spec {
        suite: "sync",
        file: "sync-first.svg",
        title: "First sync of a new laptop (200,000 properties) and its parts timed alone",
        unit: "s",
        better: "lower is better",
        series: &[("measured", Measured)],
        groups: Groups::Fixed(&[
            (
                "whole first sync",
                &[cell("First sync", "sync_once (", "value", First)],
            ),
            (
                "pull over HTTP alone",
                &[cell("First sync", "pull over HTTP alone", "value", First)],
            ),
            (
                "local apply alone",
                &[cell("First sync", "local apply alone", "value", First)],
            ),
        ]),
    },
    Spec {
        suite: "sync",
        file: "sync-empty.svg",
        title: "Empty steady-state sync latency",
        unit: "ms",
        better: "lower is better",
        series: &[("p50", Measured), ("p99", Measured)],
        groups: Groups::Fixed(&[(
            "sync_once with nothing to do",
            &[
                cell("Empty steady-state", "", "p50", First),
                cell("Empty steady-state", "", "p99", First),
            ],
        )]),
    },
    Spec {
        suite: "tenant",
        file: "tenant-targets.svg",
        title: "Tenant operations against their targets",
        unit: "ms",
        better: "lower is better",
        series: &[("measured", Measured), ("target", Target)],
        groups: Groups::Fixed(&[
            (
                "provision a tenant (p50)",
                &[
                    cell("", "provision a tenant", "figure", First),
                    cell("", "provision a tenant", "target", First),
                ],
            ),
            (
                "export a tenant",
                &[
                    cell("", "export a tenant", "figure", First),
                    cell("", "export a tenant", "target", First),
                ],
            ),
            (
                "legacy import",
                &[
                    cell("", "legacy import of", "figure", First),
                    cell("", "legacy import of", "target", First),
                ],
            ),
        ]),
    },
    Spec {
        suite: "limits",
        file: "limits-rate.svg",
        title: "Empty pull with rate limiting on vs off",
        unit: "ms",
        better: "lower is better",
        series: &[
            ("limits off (reference)", Reference),
            ("limits on", Measured),
        ],
        groups: Groups::Fixed(&[
            (
                "p50",
                &[
                    cell("rate limiting", "limits off", "p50", First),
                    cell("rate limiting", "limits on", "p50", First),
                ],
            ),
            (
                "p99",
                &[
                    cell("rate limiting", "limits off", "p99", First),
                    cell("rate limiting", "limits on", "p99", First),
                ],
            ),
        ]),
    },
    Spec {
        suite: "limits",
        file: "limits-quota.svg",
        title: "A push's tenant transaction with and without the quota checks",
        unit: "ms",
        better: "lower is better",
        series: &[
            ("without quota statements (reference)", Reference),
            ("with quota checks", Measured),
        ],
        groups: Groups::Fixed(&[
            (
                "p50",
                &[
                    cell("Quota checks", "without quota", "p50", First),
                    cell("Quota checks", "with storage check", "p50", First),
                ],
            ),
            (
                "p99",
                &[
                    cell("Quota checks", "without quota", "p99", First),
                    cell("Quota checks", "with storage check", "p99", First),
                ],
            ),
        ]),
    },
    Spec {
        suite: "uplift",
        file: "uplift-qini.svg",
        title: "Qini on Hillstrom by learner (random scores and the S-learner are references)",
        unit: "",
        better: "higher is better",
        series: &[("Qini", Measured)],
        groups: Groups::EachRow {
            table: "Quality",
            columns: &[("Qini", First)],
        },
    },
    Spec {
        suite: "ui",
        file: "ui-latency.svg",
        title: "UI latency at 50,000 properties (Chromium): p50 and p95 against the target",
        unit: "ms",
        better: "lower is better",
        series: &[
            ("p50", Measured),
            ("p95", Measured),
            ("target (p95)", Target),
        ],
        groups: Groups::Fixed(&[
            (
                "filter change to new count painted",
                &[
                    cell("", "filter change", "figure", First),
                    cell("", "filter change", "figure", Part("#2")),
                    cell("", "filter change", "target", First),
                ],
            ),
            (
                "search, without the typing debounce",
                &[
                    cell("", "without the debounce", "figure", First),
                    cell("", "without the debounce", "figure", Part("#2")),
                    cell("", "without the debounce", "target", First),
                ],
            ),
        ]),
    },
    Spec {
        suite: "ui",
        file: "ui-cold-start.svg",
        title: "Cold start to an interactive property list",
        unit: "ms",
        better: "lower is better",
        series: &[("measured", Measured), ("target", Target)],
        groups: Groups::Fixed(&[
            (
                "UI in Chromium (mocked bridge)",
                &[
                    cell(
                        "",
                        "interactive property list (sum of the two",
                        "figure",
                        First,
                    ),
                    cell(
                        "",
                        "interactive property list (sum of the two",
                        "target",
                        First,
                    ),
                ],
            ),
            (
                "real app (WebKitGTK under Xvfb)",
                &[
                    cell(
                        "",
                        "interactive property list (sum, typing",
                        "figure",
                        First,
                    ),
                    cell(
                        "",
                        "interactive property list (sum, typing",
                        "target",
                        First,
                    ),
                ],
            ),
        ]),
    },
];

fn contains(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

fn which_matches(f: &Figure, which: Which) -> bool {
    match which {
        Which::First => f.part.is_empty(),
        Which::Unit(unit) => f.unit == unit,
        Which::Part(part) => f.part == part,
    }
}

fn find(run: &Run, pick: Pick) -> Option<&Figure> {
    let Pick::Cell {
        table,
        row,
        column,
        which,
    } = pick
    else {
        return None;
    };
    run.figures.iter().find(|f| {
        contains(&f.table, table)
            && contains(&f.row, row)
            && contains(&f.column, column)
            && which_matches(f, which)
    })
}

/// `value` in `from` converted to `to` when both are time units (a target in seconds on a chart in
/// milliseconds); `None` when the units cannot be compared.
fn convert(value: f64, from: &str, to: &str) -> Option<f64> {
    let scale = |unit: &str| match unit {
        "s" => Some(1_000.0),
        "ms" => Some(1.0),
        "µs" | "us" => Some(0.001),
        _ => None,
    };
    if from == to {
        return Some(value);
    }
    Some(value * scale(from)? / scale(to)?)
}

/// One bar from a figure of this run, with the same key's value in the previous run.
fn bar(figure: &Figure, unit: &str, previous: Option<&Run>) -> Option<Bar> {
    let value = convert(figure.value, &figure.unit, unit)?;
    let previous = previous
        .and_then(|p| p.get(&figure.key))
        .and_then(|p| convert(p.value, &p.unit, unit));
    Some(Bar { value, previous })
}

/// The charts of `suite` from this run's figures (and the previous run's, for the ticks), and the
/// titles of charts that could not be drawn with the figures they were missing.
pub fn charts(suite: &str, now: &Run, previous: Option<&Run>) -> (Vec<Chart>, Vec<String>) {
    let mut drawn = Vec::new();
    let mut missing = Vec::new();
    for spec in SPECS.iter().filter(|s| s.suite == suite) {
        match chart(spec, now, previous) {
            Ok(chart) => drawn.push(chart),
            Err(what) => missing.push(format!("{} ({what})", spec.title)),
        }
    }
    (drawn, missing)
}

fn chart(spec: &Spec, now: &Run, previous: Option<&Run>) -> Result<Chart, String> {
    let mut groups = Vec::new();
    match spec.groups {
        Groups::Fixed(fixed) => {
            for (label, picks) in fixed {
                let mut bars = Vec::new();
                for pick in *picks {
                    if matches!(pick, Pick::None) {
                        bars.push(None);
                        continue;
                    }
                    let figure =
                        find(now, *pick).ok_or_else(|| format!("no figure for {pick:?}"))?;
                    let bar = bar(figure, spec.unit, previous).ok_or_else(|| {
                        format!("{} is in {}, not {}", figure.key, figure.unit, spec.unit)
                    })?;
                    bars.push(Some(bar));
                }
                groups.push(Group {
                    label: (*label).to_owned(),
                    bars,
                    reference: false,
                });
            }
        }
        Groups::EachRow { table, columns } => {
            let mut rows: Vec<&str> = Vec::new();
            for f in now.figures.iter().filter(|f| contains(&f.table, table)) {
                if !f.row.is_empty() && !rows.contains(&f.row.as_str()) {
                    rows.push(&f.row);
                }
            }
            for row in rows {
                let bars: Vec<Option<Bar>> = columns
                    .iter()
                    .map(|(column, which)| {
                        now.figures
                            .iter()
                            .find(|f| {
                                contains(&f.table, table)
                                    && f.row == row
                                    && contains(&f.column, column)
                                    && which_matches(f, *which)
                            })
                            .and_then(|f| bar(f, spec.unit, previous))
                    })
                    .collect();
                if bars.iter().any(Option::is_some) {
                    groups.push(Group {
                        label: row.to_owned(),
                        bars,
                        reference: contains(row, "reference"),
                    });
                }
            }
        }
    }
    if groups.is_empty() {
        return Err(format!(
            "no rows in a table headed \"{}\"",
            match spec.groups {
                Groups::EachRow { table, .. } => table,
                Groups::Fixed(_) => "",
            }
        ));
    }
    Ok(Chart {
        file: spec.file.to_owned(),
        title: spec.title.to_owned(),
        unit: spec.unit.to_owned(),
        better: spec.better.to_owned(),
        series: spec
            .series
            .iter()
            .map(|(name, kind)| Series {
                name: (*name).to_owned(),
                kind: *kind,
            })
            .collect(),
        groups,
    })
}

/// A number as the report prints it: a few significant digits, thousands separated.
pub fn number(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1_000.0 {
        let whole = value.round() as i64;
        let digits = whole.unsigned_abs().to_string();
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        format!("{}{grouped}", if whole < 0 { "-" } else { "" })
    } else if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// An axis tick: the number without trailing zeros (`0.1`, `10`, `1,000`).
fn tick_text(value: f64) -> String {
    let text = number(value);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// `(now − previous) / |previous|` as a signed percentage, or `None` when the previous was zero.
pub fn change_percent(previous: f64, now: f64) -> Option<f64> {
    (previous != 0.0).then(|| (now - previous) / previous.abs() * 100.0)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A label cut to fit the label column (the full text stays in the bar's tooltip).
fn short(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        label.to_owned()
    } else {
        let cut: String = label.chars().take(max - 1).collect();
        format!("{}…", cut.trim_end())
    }
}

const MEASURED_COLOURS: &[&str] = &["#2b6cb0", "#dd6b20", "#2f855a", "#6b46c1"];
const REFERENCE_COLOURS: &[&str] = &["#a0aec0", "#718096", "#cbd5e0"];

fn colour(chart: &Chart, series: usize, reference_group: bool) -> &'static str {
    let kind = chart.series[series].kind;
    let nth_of_kind = chart.series[..series]
        .iter()
        .filter(|s| s.kind == kind)
        .count();
    match kind {
        Kind::Reference => REFERENCE_COLOURS[nth_of_kind % REFERENCE_COLOURS.len()],
        Kind::Target => "none",
        Kind::Measured if reference_group => REFERENCE_COLOURS[0],
        Kind::Measured => MEASURED_COLOURS[nth_of_kind % MEASURED_COLOURS.len()],
    }
}

/// The value axis: linear from zero (or the smallest negative value), or logarithmic when the bars
/// span more than two orders of magnitude (a 0.1 ms query beside a 100 ms one).
struct Axis {
    log: bool,
    low: f64,
    high: f64,
    /// Distance between linear ticks.
    step: f64,
}

impl Axis {
    fn new(values: &[f64]) -> Axis {
        let max = values.iter().copied().fold(f64::MIN, f64::max);
        let min = values.iter().copied().fold(f64::MAX, f64::min);
        if min > 0.0 && max / min > 100.0 {
            Axis {
                log: true,
                low: 10f64.powf(min.log10().floor()),
                high: 10f64.powf(max.log10().ceil()),
                step: 10.0,
            }
        } else {
            // Round steps (1, 2, 2.5, 5 × 10ⁿ), about five of them, ending on the first step past
            // the largest bar (and the smallest, when a bar is negative).
            let (top, bottom) = (max.max(0.0), min.min(0.0));
            let span = if top > bottom { top - bottom } else { 1.0 };
            let step = nice_ceiling(span / 5.0);
            Axis {
                log: false,
                low: (bottom / step).floor() * step,
                high: ((top / step).ceil() * step).max(step),
                step,
            }
        }
    }

    /// Position in 0..=1 along the axis.
    fn at(&self, value: f64) -> f64 {
        let t = if self.log {
            (value.max(self.low).log10() - self.low.log10())
                / (self.high.log10() - self.low.log10())
        } else {
            (value - self.low) / (self.high - self.low)
        };
        t.clamp(0.0, 1.0)
    }

    fn ticks(&self) -> Vec<f64> {
        if self.log {
            let (a, b) = (
                self.low.log10().round() as i32,
                self.high.log10().round() as i32,
            );
            (a..=b).map(|e| 10f64.powi(e)).collect()
        } else {
            // Multiples of the step, so zero is always a tick.
            let first = (self.low / self.step).round() as i64;
            let last = (self.high / self.step).round() as i64;
            (first..=last).map(|k| k as f64 * self.step).collect()
        }
    }
}

/// The smallest of 1, 2, 2.5, 5 × 10ⁿ at or above `value`.
fn nice_ceiling(value: f64) -> f64 {
    let base = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * base)
        .find(|v| *v >= value)
        .unwrap_or(10.0 * base)
}

const WIDTH: f64 = 900.0;
const LABEL_WIDTH: f64 = 250.0;
const PLOT_LEFT: f64 = 260.0;
const PLOT_RIGHT: f64 = 660.0;
const BAR_HEIGHT: f64 = 14.0;
const BAR_GAP: f64 = 3.0;
const GROUP_GAP: f64 = 14.0;

/// The chart as an SVG document. `stamp` says which run it shows.
pub fn svg(chart: &Chart, stamp: &str) -> String {
    let values: Vec<f64> = chart
        .groups
        .iter()
        .flat_map(|g| g.bars.iter().flatten())
        .flat_map(|b| std::iter::once(b.value).chain(b.previous))
        .collect();
    let axis = Axis::new(&values);
    let x = |v: f64| PLOT_LEFT + axis.at(v) * (PLOT_RIGHT - PLOT_LEFT);
    let legend_y = 62.0;
    let top = legend_y + 22.0;
    let group_height = |g: &Group| {
        let n = g.bars.iter().filter(|b| b.is_some()).count() as f64;
        n * BAR_HEIGHT + (n - 1.0).max(0.0) * BAR_GAP
    };
    let plot_height: f64 = chart
        .groups
        .iter()
        .map(|g| group_height(g) + GROUP_GAP)
        .sum();
    let height = top + plot_height + 34.0;
    let unit = if chart.unit.is_empty() {
        String::new()
    } else {
        format!(" {}", chart.unit)
    };

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, "<title>{}</title>", escape(&chart.title));
    let _ = writeln!(
        out,
        r##"<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="10" y="22" font-size="15" font-weight="bold">{}</text>"#,
        escape(&chart.title)
    );
    let scale_note = if axis.log { ", logarithmic scale" } else { "" };
    let _ = writeln!(
        out,
        r##"<text x="10" y="40" fill="#4a5568">{}; {}{scale_note}. {}</text>"##,
        if chart.unit.is_empty() {
            "value"
        } else {
            &chart.unit
        },
        escape(&chart.better),
        escape(stamp)
    );

    // Legend: one swatch per series, then the previous-run tick.
    let mut lx = 10.0;
    for (i, series) in chart.series.iter().enumerate() {
        let fill = colour(chart, i, false);
        let stroke = if series.kind == Kind::Target {
            r##" stroke="#c53030" stroke-dasharray="3 2""##
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r#"<rect x="{lx}" y="{}" width="14" height="12" fill="{fill}"{stroke}/>"#,
            legend_y - 10.0
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{legend_y}">{}</text>"#,
            lx + 18.0,
            escape(&series.name)
        );
        lx += 30.0 + 6.5 * series.name.chars().count() as f64;
    }
    let _ = writeln!(
        out,
        r##"<line x1="{lx}" y1="{}" x2="{lx}" y2="{}" stroke="#000000" stroke-width="2"/><text x="{}" y="{legend_y}">previous run</text>"##,
        legend_y - 12.0,
        legend_y + 2.0,
        lx + 6.0
    );

    // Grid and axis labels.
    for tick in axis.ticks() {
        let tx = x(tick);
        let _ = writeln!(
            out,
            r##"<line x1="{tx:.1}" y1="{top}" x2="{tx:.1}" y2="{:.1}" stroke="#e2e8f0"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#4a5568">{}</text>"##,
            top + plot_height,
            top + plot_height + 14.0,
            tick_text(tick)
        );
    }
    if axis.low < 0.0 {
        let zx = x(0.0);
        let _ = writeln!(
            out,
            r##"<line x1="{zx:.1}" y1="{top}" x2="{zx:.1}" y2="{:.1}" stroke="#2d3748"/>"##,
            top + plot_height
        );
    }

    // Bars.
    let base = x(if axis.log {
        axis.low
    } else {
        0f64.max(axis.low)
    });
    let mut y = top + GROUP_GAP / 2.0;
    for group in &chart.groups {
        let gh = group_height(group);
        let max_chars = (LABEL_WIDTH / 6.6) as usize;
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{:.1}" text-anchor="end"><title>{}</title>{}</text>"#,
            LABEL_WIDTH,
            y + gh / 2.0 + 4.0,
            escape(&group.label),
            escape(&short(&group.label, max_chars))
        );
        for (i, bar) in group.bars.iter().enumerate() {
            let Some(bar) = bar else { continue };
            let series = &chart.series[i];
            let (x0, x1) = {
                let end = x(bar.value);
                if end < base { (end, base) } else { (base, end) }
            };
            let fill = colour(chart, i, group.reference);
            let stroke = if series.kind == Kind::Target {
                r##" stroke="#c53030" stroke-dasharray="3 2""##
            } else {
                ""
            };
            let mut text = format!("{}{unit}", number(bar.value));
            if let Some(previous) = bar.previous {
                let change = change_percent(previous, bar.value)
                    .map(|c| format!(", {c:+.1} %"))
                    .unwrap_or_default();
                text.push_str(&format!(" (previous {}{change})", number(previous)));
            }
            let _ = writeln!(
                out,
                r#"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{BAR_HEIGHT}" fill="{fill}"{stroke}><title>{}: {}</title></rect>"#,
                (x1 - x0).max(1.0),
                escape(&series.name),
                escape(&text)
            );
            if let Some(previous) = bar.previous {
                let px = x(previous);
                let _ = writeln!(
                    out,
                    r##"<line x1="{px:.1}" y1="{:.1}" x2="{px:.1}" y2="{:.1}" stroke="#000000" stroke-width="2"/>"##,
                    y - 2.0,
                    y + BAR_HEIGHT + 2.0
                );
            }
            let label_x = x1.max(bar.previous.map(&x).unwrap_or(0.0)) + 6.0;
            let _ = writeln!(
                out,
                r##"<text x="{label_x:.1}" y="{:.1}" fill="#1a202c">{}</text>"##,
                y + BAR_HEIGHT - 3.0,
                escape(&text)
            );
            y += BAR_HEIGHT + BAR_GAP;
        }
        y += GROUP_GAP - BAR_GAP;
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::parse_section;

    const LIMITS: &str = "## limits\n\n_2 cores; measured 2026-11-29 19:35 UTC_\n\n\
### Empty pull with rate limiting on vs off (same run)\n\n| | p50 | p99 |\n|---|---|---|\n\
| limits off | 0.803 ms | 12.703 ms |\n| limits on | 0.905 ms | 14.794 ms |\n\
| **added by the limiter** | **+0.102 ms** (target < 1 ms) | +2.090 ms |\n\n\
### Quota checks of a push\n\n| | p50 | p99 |\n|---|---|---|\n\
| transaction without quota statements | 0.276 ms | 9.924 ms |\n\
| with storage check + month's event counter | 0.820 ms | 26.021 ms |\n";

    #[test]
    fn charts_pair_each_figure_with_its_reference_and_previous_value() {
        let now = parse_section(LIMITS);
        let mut previous = parse_section(&LIMITS.replace("0.905 ms", "1.810 ms"));
        previous.stamp = "older".to_owned();
        let (charts, missing) = charts("limits", &now, Some(&previous));
        assert!(missing.is_empty(), "{missing:?}");
        let rate = charts
            .iter()
            .find(|c| c.file == "limits-rate.svg")
            .expect("the rate chart");
        assert_eq!(rate.groups[0].label, "p50");
        let [reference, measured] = rate.groups[0].bars[..] else {
            panic!("two bars: {:?}", rate.groups[0].bars)
        };
        assert_eq!(
            reference,
            Some(Bar {
                value: 0.803,
                previous: Some(0.803)
            })
        );
        assert_eq!(
            measured,
            Some(Bar {
                value: 0.905,
                previous: Some(1.810)
            })
        );
        assert_eq!(change_percent(1.810, 0.905), Some(-50.0));

        let svg = svg(rate, &now.stamp);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // Both series in the legend, both groups labelled, each bar with its value and the change.
        for text in [
            "limits off (reference)",
            "limits on",
            ">p50<",
            ">p99<",
            "0.905 ms (previous 1.81, -50.0 %)",
            "previous run",
        ] {
            assert!(svg.contains(text), "{text} missing from\n{svg}");
        }
        // Four bars (two groups × two series) plus the legend's two swatches.
        assert_eq!(svg.matches("<rect ").count(), 1 + 2 + 4);
    }

    #[test]
    fn a_chart_whose_figures_are_gone_is_reported_not_drawn() {
        let now = parse_section(
            "## limits\n\n_x_\n\n### Something else\n\n| a | b |\n|---|---|\n| c | 1 ms |\n",
        );
        let (charts, missing) = charts("limits", &now, None);
        assert!(charts.is_empty());
        assert_eq!(missing.len(), 2);
    }

    #[test]
    fn wide_ranges_get_a_log_axis_and_negatives_a_zero_line() {
        let log = Axis::new(&[0.09, 114.0]);
        assert!(log.log && log.low == 0.01 && log.high == 1_000.0);
        assert!((log.at(1.0) - 0.4).abs() < 1e-9);
        let signed = Axis::new(&[-0.017, 0.063]);
        assert!(!signed.log && signed.low < 0.0 && signed.high >= 0.063);
        assert!(signed.at(0.0) > 0.0);
        assert!(signed.ticks().contains(&0.0), "{:?}", signed.ticks());
        let plain = Axis::new(&[29.6, 58.9, 50.0]);
        assert_eq!((plain.low, plain.high), (0.0, 60.0));
        assert_eq!(plain.ticks(), vec![0.0, 20.0, 40.0, 60.0]);
        assert_eq!(number(44086.4), "44,086");
        assert_eq!(number(0.8034), "0.803");
        assert_eq!(tick_text(10.0), "10");
        assert_eq!(tick_text(0.1), "0.1");
        assert_eq!(tick_text(1_000.0), "1,000");
        assert_eq!(convert(2.0, "s", "ms"), Some(2_000.0));
        assert_eq!(convert(2.0, "rows/s", "ms"), None);
    }
}
