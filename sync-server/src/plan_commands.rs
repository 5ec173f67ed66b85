//! The operator's plan, usage and invoice commands: `plan list|set`, `tenant set-plan`, `tenant usage
//! --days N [--tenant SLUG]` and `tenant invoice --tenant SLUG --month YYYY-MM [--csv]`. Each returns the
//! JSON the operator CLI prints (`--json`) with a `text` rendering for people.

use clap::{Args, Subcommand};
use domain::{PlanTier, Tenant, Timestamp};
use serde_json::{Value, json};
use server_store::metering::{DAY_MS, Invoice, Month};
use server_store::plans::{Plan, PlanField};
use server_store::{ControlPool, PoolSettings};

use crate::cli::ControlArgs;
use crate::operator::CommandError;
use crate::state::now_ms;

/// `stormops-server plan …`.
#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// List the plans with their limits and prices.
    List {
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Change limits or prices of a plan (several at once; hard limits must stay at or above soft ones).
    Set {
        /// trial, standard or enterprise.
        plan: String,
        #[command(flatten)]
        values: PlanValues,
        #[command(flatten)]
        control: ControlArgs,
    },
}

/// The settable values of `plan set`.
#[derive(Debug, Args, Clone, Default)]
pub struct PlanValues {
    /// Users (hard limit).
    #[arg(long)]
    pub users: Option<i64>,
    /// Active devices (hard limit).
    #[arg(long)]
    pub devices: Option<i64>,
    /// Synced events per month included (soft limit: warned, overage billed).
    #[arg(long)]
    pub events_per_month: Option<i64>,
    /// Synced events per month at which pushes are refused (hard limit).
    #[arg(long)]
    pub events_per_month_hard: Option<i64>,
    /// Storage included, bytes (soft limit).
    #[arg(long)]
    pub storage_bytes: Option<i64>,
    /// Storage at which pushes are refused, bytes (hard limit).
    #[arg(long)]
    pub storage_bytes_hard: Option<i64>,
    /// API requests per minute (hard, answered 429).
    #[arg(long)]
    pub requests_per_minute: Option<i64>,
    /// Monthly base fee, cents.
    #[arg(long)]
    pub base_fee_cents: Option<i64>,
    /// Price per started 1,000 synced events over the soft limit, cents.
    #[arg(long)]
    pub event_overage_cents_per_1000: Option<i64>,
    /// Price per started GB of peak storage over the soft limit, cents.
    #[arg(long)]
    pub storage_overage_cents_per_gb: Option<i64>,
    /// Price per model run, cents.
    #[arg(long)]
    pub model_run_cents: Option<i64>,
}

impl PlanValues {
    fn changes(&self) -> Vec<(PlanField, i64)> {
        [
            (PlanField::MaxUsers, self.users),
            (PlanField::MaxDevices, self.devices),
            (PlanField::MonthlyEvents, self.events_per_month),
            (PlanField::MonthlyEventsHard, self.events_per_month_hard),
            (PlanField::StorageBytes, self.storage_bytes),
            (PlanField::StorageBytesHard, self.storage_bytes_hard),
            (PlanField::RequestsPerMinute, self.requests_per_minute),
            (PlanField::BaseFeeCents, self.base_fee_cents),
            (
                PlanField::EventOverageCentsPer1000,
                self.event_overage_cents_per_1000,
            ),
            (
                PlanField::StorageOverageCentsPerGb,
                self.storage_overage_cents_per_gb,
            ),
            (PlanField::ModelRunCents, self.model_run_cents),
        ]
        .into_iter()
        .filter_map(|(f, v)| v.map(|v| (f, v)))
        .collect()
    }
}

/// `tenant set-plan <slug> <plan>`.
#[derive(Debug, Args, Clone)]
pub struct SetPlanArgs {
    pub slug: String,
    pub plan: String,
    #[command(flatten)]
    pub control: ControlArgs,
}

/// `tenant usage --days N [--tenant SLUG]`.
#[derive(Debug, Args, Clone)]
pub struct UsageArgs {
    /// The period: the last N days up to now.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Only this tenant (default: every tenant).
    #[arg(long)]
    pub tenant: Option<String>,
    #[command(flatten)]
    pub control: ControlArgs,
}

/// `tenant invoice --tenant SLUG --month YYYY-MM [--csv]`.
#[derive(Debug, Args, Clone)]
pub struct InvoiceArgs {
    #[arg(long)]
    pub tenant: String,
    /// The calendar month (UTC), e.g. 2026-11.
    #[arg(long)]
    pub month: String,
    /// Print the lines as CSV instead of text.
    #[arg(long)]
    pub csv: bool,
    #[command(flatten)]
    pub control: ControlArgs,
}

/// An unknown plan name: a typed error listing the plans.
pub fn parse_plan(text: &str) -> Result<PlanTier, CommandError> {
    text.trim().parse::<PlanTier>().map_err(|e| CommandError {
        code: "unknown_plan",
        message: e.to_string(),
    })
}

async fn control(url: &str) -> Result<ControlPool, CommandError> {
    let settings = PoolSettings {
        max_connections: 2,
        ..PoolSettings::default()
    };
    Ok(ControlPool::connect(url, &settings).await?)
}

fn plan_text(plans: &[Plan]) -> String {
    let mut text = format!(
        "{:<11} {:>6} {:>7} {:>12} {:>12} {:>14} {:>14} {:>8} {:>9} {:>9} {:>8}",
        "plan",
        "users",
        "devices",
        "events/mo",
        "events hard",
        "storage B",
        "storage hard",
        "req/min",
        "base ¢",
        "¢/1k ev",
        "¢/GB"
    );
    for p in plans {
        text.push_str(&format!(
            "\n{:<11} {:>6} {:>7} {:>12} {:>12} {:>14} {:>14} {:>8} {:>9} {:>9} {:>8}",
            p.name.as_str(),
            p.max_users,
            p.max_devices,
            p.monthly_events,
            p.monthly_events_hard,
            p.storage_bytes,
            p.storage_bytes_hard,
            p.requests_per_minute,
            p.base_fee_cents,
            p.event_overage_cents_per_1000,
            p.storage_overage_cents_per_gb
        ));
    }
    text
}

/// Runs `plan list|set`.
pub async fn run_plan(command: PlanCommand) -> Result<Value, CommandError> {
    match command {
        PlanCommand::List { control: args } => {
            let pool = control(&args.control_database_url).await?;
            let mut tx = pool.begin().await?;
            let plans = tx.list_plans().await?;
            tx.commit().await?;
            pool.close().await;
            Ok(json!({ "plans": plans, "text": plan_text(&plans) }))
        }
        PlanCommand::Set {
            plan,
            values,
            control: args,
        } => {
            let tier = parse_plan(&plan)?;
            let changes = values.changes();
            if changes.is_empty() {
                return Err(CommandError {
                    code: "invalid_input",
                    message: "name at least one value to change, e.g. --requests-per-minute 600"
                        .into(),
                });
            }
            let pool = control(&args.control_database_url).await?;
            let mut tx = pool.begin().await?;
            let updated = tx.update_plan(tier, &changes, Timestamp(now_ms())).await?;
            tx.commit().await?;
            pool.close().await;
            let text = format!(
                "plan {tier} updated\n{}",
                plan_text(std::slice::from_ref(&updated))
            );
            Ok(json!({ "plan": updated, "text": text }))
        }
    }
}

/// Runs `tenant set-plan`.
pub async fn run_set_plan(args: SetPlanArgs) -> Result<Value, CommandError> {
    let tier = parse_plan(&args.plan)?;
    let pool = control(&args.control.control_database_url).await?;
    let mut tx = pool.begin().await?;
    let tenant = tx.set_tenant_plan(args.slug.trim(), tier).await?;
    tx.commit().await?;
    pool.close().await;
    Ok(json!({
        "tenant": tenant.slug,
        "plan": tier,
        "text": format!("tenant {} is now on the {tier} plan", tenant.slug),
    }))
}

async fn tenants(pool: &ControlPool, slug: Option<&str>) -> Result<Vec<Tenant>, CommandError> {
    let mut tx = pool.begin().await?;
    let found = match slug {
        Some(slug) => {
            vec![
                tx.find_tenant_by_slug(slug.trim())
                    .await?
                    .ok_or_else(|| CommandError {
                        code: "not_found",
                        message: format!("no tenant with slug '{slug}'"),
                    })?,
            ]
        }
        None => tx.list_tenants().await?,
    };
    tx.commit().await?;
    Ok(found)
}

/// Runs `tenant usage`.
pub async fn run_usage(args: UsageArgs) -> Result<Value, CommandError> {
    if args.days == 0 || args.days > 3_660 {
        return Err(CommandError {
            code: "invalid_input",
            message: "--days must be 1 to 3660".into(),
        });
    }
    let pool = control(&args.control.control_database_url).await?;
    let now = Timestamp(now_ms());
    let from = Timestamp(now.0 - i64::from(args.days) * DAY_MS);
    let mut rows = Vec::new();
    let mut text = format!(
        "usage over the last {} days\n{:<24} {:<11} {:>12} {:>7} {:>10} {:>14} {:>14}  warnings",
        args.days, "tenant", "plan", "synced", "models", "requests", "storage B", "invoice ¢ mo"
    );
    for tenant in tenants(&pool, args.tenant.as_deref()).await? {
        let mut tx = pool.begin_tenant(tenant.id).await?;
        // This hour's storage sample, unless the server's metering round took it already.
        tx.sample_storage(now).await?;
        let usage = tx.usage_between(from, now).await?;
        let report = tx.usage_report(&tenant.slug, now).await?;
        tx.commit().await?;
        let warnings: Vec<String> = report
            .limits
            .iter()
            .filter(|l| l.status != "ok")
            .map(|l| format!("{} {} ({}/{})", l.limit.as_str(), l.status, l.used, l.soft))
            .collect();
        text.push_str(&format!(
            "\n{:<24} {:<11} {:>12} {:>7} {:>10} {:>14} {:>14}  {}",
            tenant.slug,
            tenant.plan.as_str(),
            usage.synced_events,
            usage.model_runs,
            usage.requests,
            usage.storage_latest_bytes,
            report.estimate.total_cents,
            if warnings.is_empty() {
                "-".to_owned()
            } else {
                warnings.join("; ")
            }
        ));
        if let Some(r) = &report.recommendation {
            text.push_str(&format!(
                "\n{:<24} recommend the {} plan: {}",
                "",
                r.plan,
                r.reasons.join("; ")
            ));
        }
        rows.push(json!({
            "tenant": tenant.slug,
            "tenant_id": tenant.id,
            "plan": tenant.plan,
            "status": tenant.status,
            "usage": usage,
            "this_month": report,
        }));
    }
    pool.close().await;
    Ok(json!({ "days": args.days, "from": from, "to": now, "tenants": rows, "text": text }))
}

/// The invoice of one tenant for one month, priced from its current plan.
pub async fn invoice(
    pool: &ControlPool,
    slug: &str,
    month: Month,
) -> Result<Invoice, CommandError> {
    let tenant = tenants(pool, Some(slug))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| CommandError {
            code: "not_found",
            message: format!("no tenant with slug '{slug}'"),
        })?;
    let mut tx = pool.begin_tenant(tenant.id).await?;
    let now = Timestamp(now_ms());
    if month == Month::of(now) {
        tx.sample_storage(now).await?;
    }
    let plan = tx.tenant_plan().await?;
    let usage = tx.usage_between(month.start(), month.end()).await?;
    tx.commit().await?;
    Ok(Invoice::new(&tenant.slug, month, &plan, usage))
}

/// Runs `tenant invoice`.
pub async fn run_invoice(args: InvoiceArgs) -> Result<Value, CommandError> {
    let month = Month::parse(&args.month)?;
    let pool = control(&args.control.control_database_url).await?;
    let invoice = invoice(&pool, &args.tenant, month).await?;
    pool.close().await;
    let text = if args.csv {
        invoice.to_csv().trim_end().to_owned()
    } else {
        invoice_text(&invoice)
    };
    let mut value = serde_json::to_value(&invoice).map_err(|e| CommandError {
        code: "internal",
        message: e.to_string(),
    })?;
    if let Some(map) = value.as_object_mut() {
        map.insert("text".into(), Value::String(text));
        if args.csv {
            map.insert("csv".into(), Value::String(invoice.to_csv()));
        }
    }
    Ok(value)
}

/// An invoice for people: one line per item and the total, in dollars.
pub fn invoice_text(invoice: &Invoice) -> String {
    let dollars = |cents: i64| format!("${}.{:02}", cents / 100, (cents % 100).abs());
    let mut text = format!(
        "invoice {} {} ({} plan)",
        invoice.tenant_slug, invoice.month, invoice.plan
    );
    for l in &invoice.lines {
        text.push_str(&format!(
            "\n  {:<24} {:>12} {:<12} × {:>9} = {:>11}   {}",
            l.code,
            l.quantity,
            l.unit,
            dollars(l.unit_price_cents),
            dollars(l.amount_cents),
            l.description
        ));
    }
    text.push_str(&format!(
        "\n  {:<24} {:>62}",
        "total",
        dollars(invoice.total_cents)
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_plans_are_a_typed_error_naming_the_plans() {
        let err = parse_plan("platinum").unwrap_err();
        assert_eq!(err.code, "unknown_plan");
        assert!(
            err.message.contains("trial, standard, enterprise"),
            "{}",
            err.message
        );
        assert_eq!(parse_plan(" standard ").ok(), Some(PlanTier::Standard));
    }

    #[test]
    fn plan_values_turn_into_changes() {
        let values = PlanValues {
            users: Some(7),
            requests_per_minute: Some(30),
            ..PlanValues::default()
        };
        assert_eq!(
            values.changes(),
            vec![(PlanField::MaxUsers, 7), (PlanField::RequestsPerMinute, 30)]
        );
    }
}
