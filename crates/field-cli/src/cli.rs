//! The command line, declared with clap derive. Secrets never come from flags (they would show in the
//! process list): passphrases come from STORMOPS_PASSPHRASE / STORMOPS_NEW_PASSPHRASE or a prompt.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "stormops-field",
    version,
    about = "StormOps Field: the encrypted, offline-first field store from the command line"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The data directory holding tenant files (default: $XDG_DATA_HOME/stormops-field or ~/.local/share/stormops-field).
    #[arg(long, global = true, env = "STORMOPS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Machine output: one JSON document on stdout; errors as a JSON object on stderr.
    #[arg(long, global = true)]
    pub json: bool,
    /// The tenant file to open (its id; optional when the data directory holds one tenant).
    #[arg(long, global = true, env = "STORMOPS_TENANT")]
    pub tenant: Option<String>,
    /// The local user whose passphrase unlocks the file (default: try every enrolled user).
    #[arg(long, global = true, env = "STORMOPS_USER")]
    pub user: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and list tenant files.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Check the passphrase: unlock the tenant file and close it.
    Unlock,
    /// Change your passphrase (new one from STORMOPS_NEW_PASSPHRASE or a prompt).
    #[command(subcommand)]
    Passphrase(PassphraseCommand),
    /// Rotate the data key; prints the NEW recovery key. Other users must be enrolled again.
    Rekey,
    /// Local users who can unlock the file on this laptop.
    #[command(subcommand)]
    User(UserCommand),
    /// Open with the recovery key and set a new passphrase for --user (default: owner).
    Recover {
        /// The 64-hex-character recovery key (or set STORMOPS_RECOVERY_KEY).
        #[arg(long, env = "STORMOPS_RECOVERY_KEY", hide_env_values = true)]
        recovery_key: String,
    },
    /// Storms.
    #[command(subcommand)]
    Storm(StormCommand),
    /// Properties: add, import, update.
    #[command(subcommand)]
    Property(PropertyCommand),
    /// Journey touches.
    #[command(subcommand)]
    Journey(JourneyCommand),
    /// Outcomes.
    #[command(subcommand)]
    Outcome(OutcomeCommand),
    /// Treat/hold decisions.
    #[command(subcommand)]
    Decision(DecisionCommand),
    /// Properties ranked by uplift (highest first, unscored last), with filters.
    Properties(PropertiesArgs),
    /// A property's journey: touches, outcomes and decisions in time order.
    Timeline {
        /// The property id.
        property: String,
    },
    /// A crew's (or everyone's) day: touches by channel and result per user, conversions.
    Day {
        /// The day, YYYY-MM-DD (UTC).
        #[arg(long)]
        date: String,
        /// Only this crew's users.
        #[arg(long)]
        crew: Option<String>,
    },
    /// Record counts, pending changes, the inbox and sync state.
    Status,
    /// Changes the server refused.
    #[command(subcommand)]
    Inbox(InboxCommand),
    /// Sign this laptop in to a sync server: creates (or opens) the tenant's encrypted file, registers
    /// the device, keeps the refresh token inside the file, and prints the tenant id. The account
    /// password comes from STORMOPS_PASSWORD, the file's passphrase from STORMOPS_PASSPHRASE (else prompts).
    Login {
        /// The server, e.g. https://sync.example.com
        #[arg(long)]
        server: String,
        /// The tenant's slug on the server.
        #[arg(long)]
        slug: String,
        #[arg(long)]
        email: String,
        /// How this laptop is named in the office's device list (default: the host name).
        #[arg(long)]
        device_name: Option<String>,
    },
    /// Sync with the server: push the outbox, pull what is new. With --watch, keep syncing whenever the
    /// server is reachable (the background agent) until stopped with Ctrl-C or SIGTERM.
    Sync {
        #[arg(long)]
        watch: bool,
        /// With --watch: seconds between syncs when nothing else triggers one.
        #[arg(long, default_value_t = 60)]
        interval: u64,
    },
    /// Write a redacted diagnostics bundle for support: versions, counts, cursors, recent sync outcomes and
    /// timings. No personal data, no keys, no tokens.
    Diagnostics {
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create an encrypted tenant file; prints its id, path and the recovery key (shown once).
    Create {
        #[arg(long)]
        name: String,
        /// Use this tenant id (as assigned by the platform) instead of a new one.
        #[arg(long)]
        id: Option<String>,
    },
    /// List the tenant files in the data directory.
    List,
}

#[derive(Debug, Subcommand)]
pub enum PassphraseCommand {
    /// Change the passphrase of the unlocking user.
    Change,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Enrol another local user (their passphrase from STORMOPS_NEW_PASSPHRASE or a prompt); needs an
    /// enrolled user's passphrase.
    Add {
        #[arg(long)]
        name: String,
    },
    /// List the enrolled local users.
    List,
}

#[derive(Debug, Subcommand)]
pub enum StormCommand {
    /// Add a storm.
    Add(StormArgs),
    /// List storms.
    List,
}

#[derive(Debug, Args)]
pub struct StormArgs {
    #[arg(long)]
    pub name: String,
    /// The weather service's event id.
    #[arg(long)]
    pub event_id: String,
    /// Start time (default: now).
    #[arg(long)]
    pub started_at: Option<String>,
    #[arg(long)]
    pub ended_at: Option<String>,
    /// Largest hail diameter, inches.
    #[arg(long, default_value_t = 0.0)]
    pub hail_in: f64,
    /// Peak wind, mph.
    #[arg(long, default_value_t = 0.0)]
    pub wind_mph: f64,
    #[arg(long, default_value = "")]
    pub area: String,
    #[arg(long, default_value = "active")]
    pub status: String,
}

#[derive(Debug, Subcommand)]
pub enum PropertyCommand {
    /// Add one property.
    Add(PropertyArgs),
    /// Import properties from a CSV file (all or nothing). Header: see `property import --help`.
    #[command(long_about = crate::commands::import::CSV_HELP)]
    Import {
        /// The CSV file.
        file: PathBuf,
        /// The storm the properties belong to.
        #[arg(long)]
        storm: String,
    },
    /// Change a property's field-writable fields.
    Update {
        /// The property id.
        property: String,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        owner_name: Option<String>,
        #[arg(long)]
        owner_phone: Option<String>,
        #[arg(long)]
        owner_email: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct PropertyArgs {
    #[arg(long)]
    pub storm: String,
    #[arg(long)]
    pub external_id: String,
    #[arg(long)]
    pub address: String,
    #[arg(long, allow_hyphen_values = true)]
    pub latitude: f64,
    #[arg(long, allow_hyphen_values = true)]
    pub longitude: f64,
    #[arg(long)]
    pub roof_age_years: Option<f64>,
    #[arg(long)]
    pub roof_material: Option<String>,
    #[arg(long)]
    pub square_feet: Option<f64>,
    #[arg(long)]
    pub home_value_cents: Option<i64>,
    #[arg(long)]
    pub hail_size_in: Option<f64>,
    #[arg(long)]
    pub distance_to_core_km: Option<f64>,
    #[arg(long, default_value_t = 0)]
    pub prior_claims: u32,
    #[arg(long)]
    pub owner_name: Option<String>,
    #[arg(long)]
    pub owner_phone: Option<String>,
    #[arg(long)]
    pub owner_email: Option<String>,
    #[arg(long, default_value = "new")]
    pub status: String,
}

#[derive(Debug, Subcommand)]
pub enum JourneyCommand {
    /// Log a touch of a property.
    Add {
        #[arg(long)]
        property: String,
        /// door_knock, call, text, mailer, inspection, estimate, contract_signed.
        #[arg(long)]
        channel: String,
        /// no_answer, left_info, talked, interested, not_interested, scheduled, completed, signed, declined.
        #[arg(long)]
        result: String,
        #[arg(long, default_value = "")]
        notes: String,
        /// When (default: now).
        #[arg(long)]
        at: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutcomeCommand {
    /// Record whether a property converted.
    Add {
        #[arg(long)]
        property: String,
        /// true or false.
        #[arg(long, action = clap::ArgAction::Set)]
        converted: bool,
        /// Contract value in cents (0 when not converted).
        #[arg(long, default_value_t = 0)]
        value_cents: i64,
        #[arg(long)]
        at: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DecisionCommand {
    /// Record treat or hold for a property (an override needs --reason).
    Add {
        #[arg(long)]
        property: String,
        /// treat or hold.
        #[arg(long)]
        decision: String,
        /// conservative, moderate or aggressive; without it, the mode the office set for the storm
        /// (as last synced), else moderate.
        #[arg(long)]
        mode: Option<String>,
        /// This decision overrides the policy: --reason is then required.
        #[arg(long = "override")]
        is_override: bool,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Decide treat or hold offline for every scored property of a storm, from the last synced scores
    /// and arms (control-arm properties are always held), and queue the decisions for the next push.
    Plan {
        #[arg(long)]
        storm: String,
        /// conservative, moderate or aggressive; without it, the mode the office set for the storm
        /// (as last synced), else moderate.
        #[arg(long)]
        mode: Option<String>,
        /// Most properties to treat (the crew's capacity); no limit without it.
        #[arg(long)]
        capacity: Option<usize>,
    },
}

#[derive(Debug, Args)]
pub struct PropertiesArgs {
    #[arg(long)]
    pub storm: Option<String>,
    #[arg(long)]
    pub territory: Option<String>,
    #[arg(long)]
    pub status: Option<String>,
    /// treat or hold (from the latest decision).
    #[arg(long)]
    pub decision: Option<String>,
    /// Case-insensitive text in the address.
    #[arg(long)]
    pub search: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
}

#[derive(Debug, Subcommand)]
pub enum InboxCommand {
    /// List refused changes.
    List,
    /// Queue a refused change again unchanged.
    Retry { change: String },
    /// Drop a refused change and undo it locally.
    Discard { change: String },
    /// Replace a refused change's payload (JSON), re-validated, and queue it again.
    Edit {
        change: String,
        /// The new payload as JSON.
        #[arg(long)]
        payload: String,
    },
}
