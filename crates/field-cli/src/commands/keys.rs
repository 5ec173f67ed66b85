//! Tenant files and their keys: create, list, unlock, passphrase change, more users, rekey, recovery.

use local_store::{NewTenant, RecoveryKey};
use serde_json::json;

use super::{Context, parse_id};
use crate::cli::{TenantCommand, UserCommand};
use crate::error::CliError;
use crate::input;
use crate::output::Report;

pub fn tenant(context: &Context, command: TenantCommand) -> Result<Report, CliError> {
    match command {
        TenantCommand::Create { name, id } => {
            let tenant_id = id.as_deref().map(|id| parse_id("id", id)).transpose()?;
            let user = context.user_or_default();
            let passphrase = input::creation_passphrase()?;
            let created = context.data_dir.create_tenant(
                NewTenant {
                    tenant_id,
                    name: &name,
                    user,
                    passphrase: &passphrase,
                },
                domain::Timestamp::now(),
            )?;
            let path = created.store.path().display().to_string();
            let key = created.recovery_key.reveal();
            Ok(Report::new(json!({
                "tenant_id": created.entry.tenant_id,
                "name": created.entry.name,
                "slug": created.entry.slug,
                "user": user,
                "database": path,
                "recovery_key": key,
            }))
            .line(format!("tenant id:    {}", created.entry.tenant_id))
            .line(format!("file:         {path}"))
            .line(format!("user:         {user}"))
            .line(format!("recovery key: {key}"))
            .line("Write the recovery key down and keep it safe: it is shown only now, and it opens the file if every passphrase is lost."))
        }
        TenantCommand::List => {
            let tenants = context.data_dir.list_tenants()?;
            let lines = tenants
                .iter()
                .map(|t| format!("{}  {}  ({})", t.tenant_id, t.name, t.database))
                .collect::<Vec<_>>();
            Ok(Report::new(json!({ "tenants": tenants })).lines(lines))
        }
    }
}

pub fn unlock(context: &Context) -> Result<Report, CliError> {
    let store = context.open()?;
    let user = store.unlocked_user().unwrap_or_default().to_owned();
    Ok(
        Report::new(json!({ "tenant_id": store.tenant_id(), "user": user, "unlocked": true }))
            .line(format!("unlocked tenant {} as {user}", store.tenant_id())),
    )
}

pub fn change_passphrase(context: &Context) -> Result<Report, CliError> {
    let mut store = context.open()?;
    let new = input::new_passphrase("New passphrase: ")?;
    store.change_passphrase(&new)?;
    let user = store.unlocked_user().unwrap_or_default().to_owned();
    Ok(Report::new(json!({ "user": user, "changed": true }))
        .line(format!("passphrase changed for {user}")))
}

pub fn rekey(context: &Context) -> Result<Report, CliError> {
    let tenant = context.tenant_id()?;
    let passphrase = input::passphrase(&format!("Passphrase for tenant {tenant}: "))?;
    let mut store = context
        .data_dir
        .open(tenant, context.user.as_deref(), &passphrase)?;
    let user = store
        .unlocked_user()
        .unwrap_or(super::DEFAULT_USER)
        .to_owned();
    // The user keeps their passphrase; only the data key under it changes.
    let outcome = store.rekey(&user, &passphrase)?;
    let mut report = Report::new(json!({
        "user": user,
        "recovery_key": outcome.recovery_key.reveal(),
        "removed_users": outcome.removed_users,
    }))
    .line(format!(
        "new recovery key: {}",
        outcome.recovery_key.reveal()
    ))
    .line("The old recovery key no longer opens the file. Write the new one down.");
    if !outcome.removed_users.is_empty() {
        report = report.line(format!(
            "These users must be enrolled again with `user add` (a new data key changes every lock): {}",
            outcome.removed_users.join(", ")
        ));
    }
    Ok(report)
}

pub fn user(context: &Context, command: UserCommand) -> Result<Report, CliError> {
    let mut store = context.open()?;
    match command {
        UserCommand::Add { name } => {
            let passphrase = input::new_passphrase(&format!("Passphrase for {name}: "))?;
            store.add_user(&name, &passphrase)?;
            Ok(Report::new(json!({ "user": name, "added": true }))
                .line(format!("user {name} enrolled")))
        }
        UserCommand::List => {
            let users = store.users()?;
            Ok(Report::new(json!({ "users": users })).lines(users.clone()))
        }
    }
}

pub fn recover(context: &Context, recovery_key: &str) -> Result<Report, CliError> {
    let tenant = context.tenant_id()?;
    let key = RecoveryKey::parse(recovery_key)?;
    let user = context.user_or_default();
    let passphrase = input::new_passphrase(&format!("New passphrase for {user}: "))?;
    let store = context.data_dir.recover(tenant, &key, user, &passphrase)?;
    Ok(
        Report::new(json!({ "tenant_id": store.tenant_id(), "user": user, "recovered": true }))
            .line(format!(
                "recovered tenant {}: {user} has a new passphrase",
                store.tenant_id()
            )),
    )
}
