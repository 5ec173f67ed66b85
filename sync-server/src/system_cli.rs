//! `stormops-server system health`: the operator's view across tenants — tenants by status, each
//! tenant's rows and estimated share of the database (`server_store::system_health`), when it last
//! pushed, the database's size, and how far pulls lag behind the oldest writing transaction. An operator
//! command rather than an HTTP route: it reads every tenant, and the API has no operator identity (its
//! tokens are always one tenant's); per-tenant figures for a tenant's own admin go through the API.

use clap::Subcommand;
use serde_json::json;
use server_store::{AppPool, ControlPool, PoolSettings};

use crate::cli::ControlArgs;
use crate::operator::CommandError;

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Tenants by status, rows and estimated bytes per tenant, last push, database size, pull lag.
    Health {
        /// The application role's connection URL (tenant figures are read in each tenant's context).
        #[arg(long, env = "STORMOPS_DATABASE_URL", hide_env_values = true)]
        database_url: String,
        #[command(flatten)]
        control: ControlArgs,
    },
}

fn unavailable(what: &str, err: server_store::StoreError) -> CommandError {
    CommandError {
        code: err.code(),
        message: format!("{what}: {err}"),
    }
}

/// Runs a `system` command; the JSON form is the report itself, the text form a table.
pub async fn run(command: SystemCommand) -> Result<Option<serde_json::Value>, CommandError> {
    let SystemCommand::Health {
        database_url,
        control,
    } = command;
    let settings = PoolSettings {
        max_connections: 2,
        ..PoolSettings::default()
    };
    let app = AppPool::connect(&database_url, &settings)
        .await
        .map_err(|e| unavailable("connecting the application pool", e))?;
    let control = ControlPool::connect(&control.control_database_url, &settings)
        .await
        .map_err(|e| unavailable("connecting the control-plane pool", e))?;
    let health = server_store::system_health(&app, &control)
        .await
        .map_err(|e| unavailable("reading system health", e))?;
    app.close().await;
    control.close().await;
    let mut text = format!(
        "database {} bytes; pull horizon lag {:.1} s; tenants {}\n{:<24} {:<12} {:<10} {:>10} {:>14} last push (ms)",
        health.database_bytes,
        health.pull_horizon_lag_secs,
        health
            .tenants_by_status
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        "slug",
        "plan",
        "status",
        "rows",
        "est. bytes"
    );
    for t in &health.tenants {
        text.push_str(&format!(
            "\n{:<24} {:<12} {:<10} {:>10} {:>14} {}",
            t.slug,
            t.plan,
            t.status,
            t.rows,
            t.estimated_bytes,
            t.last_push_at
                .map_or_else(|| "never".to_owned(), |ms| ms.to_string())
        ));
    }
    let mut value = serde_json::to_value(&health).map_err(|e| CommandError {
        code: "internal",
        message: format!("encoding the report: {e}"),
    })?;
    if let Some(map) = value.as_object_mut() {
        map.insert("text".to_owned(), json!(text));
    }
    Ok(Some(value))
}
