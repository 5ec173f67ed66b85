//! What a scenario found, and the `docs/chaos.md` table made from the findings.

use std::fmt::Write as _;

/// Whether a fault's checks ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every check held (a broken one panics, so a finding is never "failed" here).
    Passed,
    /// The checks ran and a property the product should have does not hold: a known defect, shown in
    /// the report (the suite's hard properties still panic; this is for what is measured and open).
    Defect,
    /// The fault could not be set up here; the reason says why.
    Skipped(String),
    /// The scenario panicked (recorded by the suite runner, which keeps going).
    Failed(String),
}

/// One row of the report: the fault, what was checked, the measured result, the recovery time.
#[derive(Debug, Clone)]
pub struct Finding {
    pub fault: String,
    pub checked: String,
    pub result: String,
    pub recovery: String,
    pub outcome: Outcome,
}

impl Finding {
    pub fn passed(fault: &str, checked: &str, result: String, recovery: String) -> Self {
        Self {
            fault: fault.to_owned(),
            checked: checked.to_owned(),
            result,
            recovery,
            outcome: Outcome::Passed,
        }
    }

    pub fn defect(fault: &str, checked: &str, result: String, recovery: String) -> Self {
        Self {
            outcome: Outcome::Defect,
            ..Self::passed(fault, checked, result, recovery)
        }
    }

    pub fn skipped(fault: &str, checked: &str, reason: String) -> Self {
        Self {
            fault: fault.to_owned(),
            checked: checked.to_owned(),
            result: String::new(),
            recovery: "—".to_owned(),
            outcome: Outcome::Skipped(reason),
        }
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The markdown table of `findings`.
pub fn table(findings: &[Finding]) -> String {
    let mut out = String::from(
        "| Fault | What was checked | Outcome (measured) | Recovery time |\n|---|---|---|---|\n",
    );
    for f in findings {
        let outcome = match &f.outcome {
            Outcome::Passed => format!("**passed** — {}", f.result),
            Outcome::Defect => format!("**DEFECT** — {}", f.result),
            Outcome::Skipped(reason) => format!("**skipped** — {reason}"),
            Outcome::Failed(why) => format!("**FAILED** — {why}"),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            cell(&f.fault),
            cell(&f.checked),
            cell(&outcome),
            cell(&f.recovery)
        );
    }
    out
}
