//! `stormops-server health …`: a storm's data-health checks and the tenant's thresholds from the
//! operator's shell — the same report and validation as the office's admin routes
//! (`routes::admin::storm_health_report`, `uplift::health::HealthThresholds::with_overrides`).

use clap::Subcommand;
use domain::{StormId, Timestamp};
use serde_json::{Map, Value, json};
use uplift::health::HealthThresholds;

use crate::cli::ControlArgs;
use crate::error::ApiError;
use crate::operator::CommandError;
use crate::provisioning::{control, operator_audit, tenant_tx};
use crate::state::now_ms;

#[derive(Debug, Subcommand)]
pub enum HealthCommand {
    /// Run a storm's data-health checks (uplift mean and spread, conversion lift, volume, nulls) with
    /// their runbooks, and store the readings.
    Run {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// The storm's id.
        #[arg(long)]
        storm: String,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Show the tenant's thresholds; `--set name=value` (repeatable) changes overrides, `--reset`
    /// restores the defaults.
    Thresholds {
        #[arg(long)]
        tenant: String,
        /// An override, e.g. `--set uplift_mean_high=0.35`.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Drop every override first.
        #[arg(long)]
        reset: bool,
        #[command(flatten)]
        control: ControlArgs,
    },
}

fn api(err: ApiError) -> CommandError {
    CommandError {
        code: err.code.as_str(),
        message: err.message,
    }
}

fn invalid(message: String) -> CommandError {
    CommandError {
        code: "validation_failed",
        message,
    }
}

/// Parses `name=value` pairs into a JSON object of numbers.
fn parse_overrides(pairs: &[String]) -> Result<Map<String, Value>, CommandError> {
    let mut out = Map::new();
    for pair in pairs {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| invalid(format!("`{pair}` is not NAME=VALUE")))?;
        let number: f64 = value
            .trim()
            .parse()
            .map_err(|_| invalid(format!("`{value}` is not a number (in `{pair}`)")))?;
        let value = if number.fract() == 0.0 && (0.0..9.0e15).contains(&number) {
            json!(number as u64)
        } else {
            json!(number)
        };
        out.insert(name.trim().to_owned(), value);
    }
    Ok(out)
}

/// Runs a `health` command; the JSON carries a `text` line for the terminal.
pub async fn run_health(command: HealthCommand) -> Result<Value, CommandError> {
    match command {
        HealthCommand::Run {
            tenant,
            storm,
            control: args,
        } => {
            let storm = uuid::Uuid::try_parse(&storm)
                .map(StormId::from_uuid)
                .map_err(|_| invalid(format!("storm id `{storm}` is not a UUID")))?;
            let pool = control(&args.control_database_url).await?;
            let mut tx = tenant_tx(&pool, &tenant).await?;
            let mut report = crate::routes::admin::storm_health_report(
                &mut tx,
                storm,
                Timestamp(now_ms()),
                true,
            )
            .await
            .map_err(api)?;
            tx.commit().await?;
            pool.close().await;
            let lines: Vec<String> = report["readings"]
                .as_array()
                .map(|readings| {
                    readings
                        .iter()
                        .map(|r| {
                            format!(
                                "{:<16} {:<6} {:>10}  {}",
                                r["check"].as_str().unwrap_or("?"),
                                r["status"].as_str().unwrap_or("?"),
                                r["value"]
                                    .as_f64()
                                    .map_or_else(|| "-".to_owned(), |v| format!("{v:.4}")),
                                r["runbook"].as_str().unwrap_or("")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            report["text"] = json!(format!(
                "{} alert(s) for storm {storm}\n{}",
                report["alerts"],
                lines.join("\n")
            ));
            Ok(report)
        }
        HealthCommand::Thresholds {
            tenant,
            set,
            reset,
            control: args,
        } => {
            let pool = control(&args.control_database_url).await?;
            let mut tx = tenant_tx(&pool, &tenant).await?;
            let mut overrides = if reset {
                Map::new()
            } else {
                tx.health_threshold_overrides()
                    .await?
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
            };
            let changed = reset || !set.is_empty();
            overrides.extend(parse_overrides(&set)?);
            let overrides = Value::Object(overrides);
            let effective =
                HealthThresholds::with_overrides(&overrides).map_err(|e| invalid(e.to_string()))?;
            if changed {
                let now = Timestamp(now_ms());
                tx.set_health_threshold_overrides(&overrides, now).await?;
                operator_audit(&mut tx, "health.thresholds.set", "tenant_settings".into()).await?;
            }
            tx.commit().await?;
            pool.close().await;
            let text = HealthThresholds::FIELDS
                .iter()
                .map(|name| {
                    let value = serde_json::to_value(effective)
                        .ok()
                        .and_then(|v| v.get(*name).cloned())
                        .unwrap_or(Value::Null);
                    let mark = if overrides.get(*name).is_some() {
                        " (tenant)"
                    } else {
                        ""
                    };
                    format!("{name:<24} {value}{mark}")
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(json!({
                "thresholds": effective,
                "overrides": overrides,
                "changed": changed,
                "text": text,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_as_numbers_and_bad_pairs_are_refused() {
        let got = parse_overrides(&[
            "uplift_mean_high=0.35".into(),
            "max_required_nulls=2".into(),
        ])
        .expect("valid pairs");
        assert_eq!(got["uplift_mean_high"], json!(0.35));
        assert_eq!(got["max_required_nulls"], json!(2));
        assert_eq!(
            parse_overrides(&["nope".into()]).map_err(|e| e.code).err(),
            Some("validation_failed")
        );
        assert_eq!(
            parse_overrides(&["uplift_mean_high=high".into()])
                .map_err(|e| e.code)
                .err(),
            Some("validation_failed")
        );
    }
}
