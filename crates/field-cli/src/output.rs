//! Printing: a command returns a `Report` (plain text lines and a JSON value); `--json` prints the JSON,
//! otherwise the text. Errors go to stderr as `error[code]: message` or a JSON error object.

use std::process::ExitCode;

use serde_json::{Value, json};

use crate::error::CliError;

/// What a command has to say.
#[derive(Debug, Default)]
pub struct Report {
    pub text: Vec<String>,
    pub json: Value,
}

impl Report {
    pub fn new(json: Value) -> Self {
        Self {
            text: Vec::new(),
            json,
        }
    }

    pub fn line(mut self, line: impl Into<String>) -> Self {
        self.text.push(line.into());
        self
    }

    pub fn lines(mut self, lines: impl IntoIterator<Item = String>) -> Self {
        self.text.extend(lines);
        self
    }
}

pub fn success(report: &Report, json: bool) -> ExitCode {
    if json {
        println!("{}", report.json);
    } else {
        for line in &report.text {
            println!("{line}");
        }
    }
    ExitCode::SUCCESS
}

pub fn failure(err: &CliError, json: bool) -> ExitCode {
    if json {
        let mut body = json!({ "code": err.code, "message": err.message });
        if let Some(details) = &err.details {
            body["details"] = details.clone();
        }
        eprintln!("{}", json!({ "error": body }));
    } else {
        eprintln!("error[{}]: {}", err.code, err.message);
        if let Some(rows) = err
            .details
            .as_ref()
            .and_then(|d| d.get("rows"))
            .and_then(Value::as_array)
        {
            for row in rows {
                eprintln!(
                    "  line {}: {} ({})",
                    row.get("line").unwrap_or(&Value::Null),
                    row.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                    row.get("code").and_then(Value::as_str).unwrap_or_default()
                );
            }
        }
    }
    ExitCode::FAILURE
}

/// Clap's own errors: help and version print normally, everything else is a `cli.usage` error (exit 2).
pub fn usage_error(err: clap::Error, json: bool) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return ExitCode::SUCCESS;
    }
    if json {
        let message = err
            .kind()
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| "invalid command line".into());
        eprintln!(
            "{}",
            json!({ "error": { "code": "cli.usage", "message": message, "details": err.render().to_string() } })
        );
    } else {
        let _ = err.print();
    }
    ExitCode::from(2)
}
