//! The operator's command line: `db init`, `serve`, `tenant create|list|provision|suspend|reactivate|
//! export|import|delete|purge|import-legacy`, `user add|list`, `crew add|list`, `device revoke`.
//! Flags fall back to environment variables so containers are configured without a shell.

use clap::{Args, Parser, Subcommand};
use domain::{PlanTier, Role};

#[derive(Debug, Parser)]
#[command(
    name = "stormops-server",
    version,
    about = "StormOps sync server and operator tools"
)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Database setup.
    #[command(subcommand)]
    Db(DbCommand),
    /// Serve the HTTP API.
    Serve(ServeArgs),
    /// Tenants (control plane).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Users of a tenant.
    #[command(subcommand)]
    User(UserCommand),
    /// Devices of a tenant.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Crews of a tenant.
    #[command(subcommand)]
    Crew(CrewCommand),
    /// Operator views across tenants.
    #[command(subcommand)]
    System(crate::system_cli::SystemCommand),
    /// Plans: limits and prices.
    #[command(subcommand)]
    Plan(crate::plan_commands::PlanCommand),
    /// Data health of a tenant's storms and the tenant's thresholds.
    #[command(subcommand)]
    Health(crate::health_cli::HealthCommand),
}

/// `db init` reads the roles' passwords from these variables when set (a deployment's Secret), so
/// re-running it keeps the servers' URLs valid; unset, each run rotates that role's password.
pub const OWNER_PASSWORD_ENV: &str = "STORMOPS_OWNER_PASSWORD";
/// The application role's password for `db init` (see [`OWNER_PASSWORD_ENV`]).
pub const APP_PASSWORD_ENV: &str = "STORMOPS_APP_PASSWORD";
/// The control-plane role's password for `db init` (see [`OWNER_PASSWORD_ENV`]).
pub const CONTROL_PASSWORD_ENV: &str = "STORMOPS_CONTROL_PASSWORD";

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create (idempotently) the database, the owner, application and control-plane roles and the schema;
    /// print the application and control-plane connection URLs. Role passwords come from
    /// STORMOPS_OWNER_PASSWORD, STORMOPS_APP_PASSWORD and STORMOPS_CONTROL_PASSWORD when set (16+ letters
    /// and digits), otherwise each run rotates them.
    Init {
        /// A superuser connection URL (e.g. postgres://postgres@127.0.0.1:5432/postgres).
        #[arg(long, env = "STORMOPS_SUPERUSER_URL")]
        superuser_url: String,
        /// The database to create.
        #[arg(long, default_value = "stormops")]
        database: String,
        /// Prefix of the role names (`<prefix>_owner`, `<prefix>_app`, `<prefix>_control`).
        #[arg(long, default_value = server_store::DEFAULT_ROLE_PREFIX)]
        role_prefix: String,
    },
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// The application role's connection URL.
    #[arg(long, env = "STORMOPS_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// The control-plane role's connection URL.
    #[arg(long, env = "STORMOPS_CONTROL_DATABASE_URL", hide_env_values = true)]
    pub control_database_url: String,
    /// Address to listen on.
    #[arg(long, env = "STORMOPS_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Largest application pool.
    #[arg(long, env = "STORMOPS_DB_POOL", default_value_t = 16)]
    pub pool_size: u32,
    /// Log as JSON lines.
    #[arg(long, env = "STORMOPS_LOG_JSON")]
    pub log_json: bool,
    /// Seconds between background training rounds (0 disables the trainer).
    #[arg(long, env = "STORMOPS_TRAIN_INTERVAL_SECS", default_value_t = crate::learning::DEFAULT_TRAIN_INTERVAL_SECS)]
    pub train_interval_secs: u64,
    /// New outcomes a storm needs before the background trainer retrains it.
    #[arg(long, env = "STORMOPS_TRAIN_MIN_NEW_OUTCOMES", default_value_t = crate::learning::DEFAULT_TRAIN_MIN_NEW_OUTCOMES)]
    pub train_min_new_outcomes: u64,
    /// Enforce per-tenant rate limits by plan (429 with Retry-After): `--rate-limits false` turns them off.
    #[arg(long, env = "STORMOPS_RATE_LIMITS", default_value_t = true, action = clap::ArgAction::Set)]
    pub rate_limits: bool,
    /// Seconds between metering rounds (request counts, storage samples, hourly rollups); 0 disables.
    #[arg(long, env = "STORMOPS_USAGE_INTERVAL_SECS", default_value_t = crate::usage_task::DEFAULT_USAGE_INTERVAL_SECS)]
    pub usage_interval_secs: u64,
}

/// Where operator commands connect: the control-plane role.
#[derive(Debug, Args, Clone)]
pub struct ControlArgs {
    #[arg(long, env = "STORMOPS_CONTROL_DATABASE_URL", hide_env_values = true)]
    pub control_database_url: String,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Move a tenant to another plan: `tenant set-plan <slug> <plan>`.
    SetPlan(crate::plan_commands::SetPlanArgs),
    /// Usage per tenant over the last N days, this month's limits, warnings and invoice estimate.
    Usage(crate::plan_commands::UsageArgs),
    /// A tenant's invoice lines for a month, priced from its plan (text, --json or --csv).
    Invoice(crate::plan_commands::InvoiceArgs),
    /// Provision a tenant with its first admin (password from STORMOPS_ADMIN_PASSWORD, else a prompt).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse_plan)]
        plan: PlanTier,
        #[arg(long)]
        admin_email: String,
        #[arg(long, default_value = "Administrator")]
        admin_name: String,
        /// Defaults to the name made into a slug.
        #[arg(long)]
        slug: Option<String>,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// List tenants.
    List {
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Provision a tenant: the tenant with its plan, the first admin and a default crew, in one
    /// transaction (admin password from STORMOPS_ADMIN_PASSWORD, else a prompt).
    Provision {
        #[arg(long)]
        name: String,
        /// trial, standard or enterprise.
        #[arg(long)]
        plan: String,
        #[arg(long)]
        admin_email: String,
        #[arg(long, default_value = "Administrator")]
        admin_name: String,
        /// Defaults to the name made into a slug.
        #[arg(long)]
        slug: Option<String>,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Suspend a tenant: sync and the API answer `tenant_suspended`; its data is kept.
    Suspend {
        /// The tenant's slug (or id).
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Reactivate a suspended tenant, or cancel a deletion still in its grace period.
    Reactivate {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Export everything a tenant owns into a new directory (one JSON-lines file per table and
    /// manifest.json with row counts and SHA-256), read as the application role under the tenant's context.
    Export {
        #[arg(long)]
        tenant: String,
        /// The archive directory to create.
        #[arg(long)]
        out: std::path::PathBuf,
        /// The application role's connection URL.
        #[arg(long, env = "STORMOPS_DATABASE_URL", hide_env_values = true)]
        database_url: String,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Import an archive (from `tenant export`) into a fresh tenant.
    Import {
        /// The new tenant's slug.
        #[arg(long)]
        slug: String,
        /// The new tenant's name (default: the archived tenant's).
        #[arg(long)]
        name: Option<String>,
        /// The archive directory.
        archive: std::path::PathBuf,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Delete a tenant: refused at once by the API, rows kept for the grace period, then `tenant purge`.
    /// Needs an earlier export unless --force.
    Delete {
        #[arg(long)]
        tenant: String,
        /// Delete without an export.
        #[arg(long)]
        force: bool,
        /// Hours before the purge may run.
        #[arg(long, default_value_t = 168)]
        grace_hours: u32,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Remove every row of a deleted tenant whose grace period is over, and check none is left.
    Purge {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Import a legacy single-tenant StormOps SQLite database (docs/legacy-import.md).
    ImportLegacy {
        #[arg(long)]
        tenant: String,
        /// The legacy .db file.
        file: std::path::PathBuf,
        /// Import the valid rows even when some were rejected (each rejected row is still reported).
        #[arg(long)]
        allow_partial: bool,
        #[command(flatten)]
        control: ControlArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum CrewCommand {
    /// Add a crew to a tenant.
    Add {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// The crew chief's user id.
        #[arg(long)]
        chief: Option<uuid::Uuid>,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// List a tenant's crews.
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        control: ControlArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user to a tenant (password from STORMOPS_USER_PASSWORD, else a prompt).
    Add {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Put the user in the tenant's default crew.
        #[arg(long)]
        default_crew: bool,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// List a tenant's users.
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        control: ControlArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Revoke a device: its tokens stop working and it wipes its tenant file at next contact.
    Revoke {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        device: uuid::Uuid,
        #[command(flatten)]
        control: ControlArgs,
    },
}

/// What one subcommand accepts, read from the parser itself so deployment files can be checked against
/// it (`tests/deploy-lint`): its long flags, and the environment variables behind them with whether the
/// command cannot run without one (required, no default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandShape {
    pub long_flags: Vec<String>,
    pub env: Vec<(String, bool)>,
}

/// The shape of the subcommand at `path` (e.g. `["db", "init"]`), or None when there is no such command.
pub fn command_shape(path: &[&str]) -> Option<CommandShape> {
    use clap::CommandFactory;
    let mut command = Cli::command();
    for name in path {
        command = command.find_subcommand(name)?.clone();
    }
    let args = command.get_arguments().filter(|a| !a.is_global_set());
    let mut shape = CommandShape {
        long_flags: Vec::new(),
        env: Vec::new(),
    };
    for arg in args {
        if let Some(long) = arg.get_long() {
            shape.long_flags.push(format!("--{long}"));
        }
        if let Some(env) = arg.get_env() {
            let needed = arg.is_required_set() && arg.get_default_values().is_empty();
            shape.env.push((env.to_string_lossy().into_owned(), needed));
        }
    }
    Some(shape)
}

fn parse_plan(text: &str) -> Result<PlanTier, String> {
    text.parse()
        .map_err(|e: domain::enums::UnknownVariant| e.to_string())
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
        .map_err(|e: domain::enums::UnknownVariant| e.to_string())
}
