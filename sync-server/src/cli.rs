//! The operator's command line: `db init`, `serve`, `tenant create|list`, `user add`, `device revoke`.
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
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create (idempotently) the database, the owner, application and control-plane roles and the schema;
    /// print the application and control-plane connection URLs.
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
}

/// Where operator commands connect: the control-plane role.
#[derive(Debug, Args, Clone)]
pub struct ControlArgs {
    #[arg(long, env = "STORMOPS_CONTROL_DATABASE_URL", hide_env_values = true)]
    pub control_database_url: String,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
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

fn parse_plan(text: &str) -> Result<PlanTier, String> {
    text.parse()
        .map_err(|e: domain::enums::UnknownVariant| e.to_string())
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
        .map_err(|e: domain::enums::UnknownVariant| e.to_string())
}
