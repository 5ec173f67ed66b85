//! Command implementations. `run` resolves the data directory and tenant, then hands over to the module
//! of the command: `keys` (unlock, passphrases, users, rekey, recovery), `records` (writes), `import`
//! (CSV), `views` (lists, timeline, status, inbox).

pub mod import;
mod keys;
mod records;
mod sync;
mod views;

use std::path::PathBuf;
use std::str::FromStr;

use domain::TenantId;
use local_store::{DataDir, TenantStore};

use crate::cli::{Cli, Command, GlobalArgs};
use crate::error::CliError;
use crate::input;
use crate::output::Report;

/// The label of the first user when none is named.
pub const DEFAULT_USER: &str = "owner";

pub fn run(cli: Cli) -> Result<Report, CliError> {
    let context = Context::new(cli.global)?;
    match cli.command {
        Command::Tenant(command) => keys::tenant(&context, command),
        Command::Unlock => keys::unlock(&context),
        Command::Passphrase(_) => keys::change_passphrase(&context),
        Command::Rekey => keys::rekey(&context),
        Command::User(command) => keys::user(&context, command),
        Command::Recover { recovery_key } => {
            keys::recover(&context, &zeroize::Zeroizing::new(recovery_key))
        }
        Command::Storm(command) => records::storm(&context, command),
        Command::Property(command) => records::property(&context, command),
        Command::Journey(command) => records::journey(&context, command),
        Command::Outcome(command) => records::outcome(&context, command),
        Command::Decision(command) => records::decision(&context, command),
        Command::Properties(args) => views::properties(&context, args),
        Command::Timeline { property } => views::timeline(&context, &property),
        Command::Day { date, crew } => views::day(&context, &date, crew.as_deref()),
        Command::Status => views::status(&context),
        Command::Inbox(command) => views::inbox(&context, command),
        Command::Login {
            server,
            slug,
            email,
            device_name,
        } => sync::login(&context, &server, &slug, &email, device_name.as_deref()),
        Command::Sync { watch, interval } => sync::sync(&context, watch, interval),
        Command::Diagnostics { out } => sync::diagnostics(&context, out.as_deref()),
    }
}

/// The resolved global options.
pub struct Context {
    pub data_dir: DataDir,
    pub tenant: Option<String>,
    pub user: Option<String>,
}

fn default_data_dir() -> Result<PathBuf, CliError> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("stormops-field"));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(home).join(".local/share/stormops-field"));
    }
    Err(CliError::new(
        "cli.no_data_dir",
        "no data directory: pass --data-dir or set STORMOPS_DATA_DIR",
    ))
}

impl Context {
    fn new(global: GlobalArgs) -> Result<Self, CliError> {
        let root = match global.data_dir {
            Some(dir) => dir,
            None => default_data_dir()?,
        };
        Ok(Self {
            data_dir: DataDir::new(root)?,
            tenant: global.tenant,
            user: global.user,
        })
    }

    /// The tenant named by --tenant, or the only one in the data directory.
    pub fn tenant_id(&self) -> Result<TenantId, CliError> {
        if let Some(text) = &self.tenant {
            return parse_id("tenant", text);
        }
        let tenants = self.data_dir.list_tenants()?;
        match tenants.as_slice() {
            [only] => Ok(only.tenant_id),
            [] => Err(CliError::new(
                "cli.no_tenant",
                "no tenant file in the data directory; run `tenant create` first",
            )),
            _ => Err(CliError::new(
                "cli.tenant_required",
                "several tenant files are here; choose one with --tenant ID",
            )),
        }
    }

    /// Unlocks the tenant file with the passphrase (STORMOPS_PASSPHRASE or a prompt).
    pub fn open(&self) -> Result<TenantStore, CliError> {
        let tenant = self.tenant_id()?;
        let passphrase = input::passphrase(&format!("Passphrase for tenant {tenant}: "))?;
        Ok(self
            .data_dir
            .open(tenant, self.user.as_deref(), &passphrase)?)
    }

    /// The label for a user being created or recovered.
    pub fn user_or_default(&self) -> &str {
        self.user.as_deref().unwrap_or(DEFAULT_USER)
    }
}

/// Parses an id argument.
pub fn parse_id<T: FromStr>(name: &str, text: &str) -> Result<T, CliError> {
    text.trim()
        .parse()
        .map_err(|_| CliError::invalid_argument(name, format!("'{text}' is not a UUID")))
}

/// Parses a vocabulary argument (status, channel, …), naming the choices on error.
pub fn parse_word<T: FromStr>(name: &str, text: &str) -> Result<T, CliError>
where
    T::Err: std::fmt::Display,
{
    text.trim()
        .parse()
        .map_err(|e| CliError::invalid_argument(name, e))
}
