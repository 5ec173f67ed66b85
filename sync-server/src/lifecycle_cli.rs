//! Runs the tenant-lifecycle, legacy-import and directory commands of the operator CLI (the rest are in
//! `operator`): each answers a JSON value with a `text` line for humans.

use serde_json::{Value, json};

use crate::cli::{CrewCommand, TenantCommand, UserCommand};
use crate::operator::{CommandError, secret_from_env_or_prompt};
use crate::provisioning;

fn lifecycle_json(l: &server_store::TenantLifecycle, text: String) -> Value {
    json!({
        "tenant_id": l.tenant.id,
        "slug": l.tenant.slug,
        "state": l.state(),
        "purge_after": l.purge_after,
        "last_export_at": l.last_export_at,
        "text": text,
    })
}

/// `tenant provision|suspend|reactivate|export|import|delete|purge|import-legacy`.
pub async fn run_tenant(command: TenantCommand) -> Result<Option<Value>, CommandError> {
    match command {
        TenantCommand::Provision {
            name,
            plan,
            admin_email,
            admin_name,
            slug,
            control,
        } => {
            let password =
                secret_from_env_or_prompt("STORMOPS_ADMIN_PASSWORD", "Admin password: ")?;
            let created = provisioning::provision(
                &control.control_database_url,
                &name,
                slug.as_deref(),
                &plan,
                &admin_email,
                &admin_name,
                &password,
            )
            .await?;
            let text = format!(
                "tenant {name} provisioned: id {}, slug {}, plan {plan}, admin {admin_email}, default crew {}",
                created.tenant_id, created.slug, created.crew_id
            );
            Ok(Some(json!({
                "tenant_id": created.tenant_id, "slug": created.slug, "admin_user_id": created.admin_user_id,
                "crew_id": created.crew_id, "text": text,
            })))
        }
        TenantCommand::Suspend { tenant, control } => {
            let l = provisioning::suspend(&control.control_database_url, &tenant).await?;
            let text = format!("tenant {} suspended (data kept)", l.tenant.slug);
            Ok(Some(lifecycle_json(&l, text)))
        }
        TenantCommand::Reactivate { tenant, control } => {
            let l = provisioning::reactivate(&control.control_database_url, &tenant).await?;
            let text = format!("tenant {} is active", l.tenant.slug);
            Ok(Some(lifecycle_json(&l, text)))
        }
        TenantCommand::Export {
            tenant,
            out,
            database_url,
            control,
        } => {
            let manifest =
                provisioning::export(&database_url, &control.control_database_url, &tenant, &out)
                    .await?;
            let text = format!(
                "tenant {} exported to {}: {} rows in {} tables (manifest.json lists counts and SHA-256)",
                manifest.tenant.slug,
                out.display(),
                manifest.total_rows(),
                manifest.tables.len()
            );
            Ok(Some(json!({ "manifest": manifest, "text": text })))
        }
        TenantCommand::Import {
            slug,
            name,
            archive,
            control,
        } => {
            let imported = provisioning::import(
                &control.control_database_url,
                &archive,
                &slug,
                name.as_deref(),
            )
            .await?;
            let text = format!(
                "archive of tenant {} imported as {} (id {}): {} rows",
                imported.source_tenant, imported.tenant.slug, imported.tenant.id, imported.rows
            );
            Ok(Some(json!({ "imported": imported, "text": text })))
        }
        TenantCommand::Delete {
            tenant,
            force,
            grace_hours,
            control,
        } => {
            let l =
                provisioning::delete(&control.control_database_url, &tenant, force, grace_hours)
                    .await?;
            let text = format!(
                "tenant {} is deleting: refused by the API now, rows kept until the purge (after {} ms since the epoch); `tenant reactivate` cancels",
                l.tenant.slug,
                l.purge_after.map_or(0, |t| t.0)
            );
            Ok(Some(lifecycle_json(&l, text)))
        }
        TenantCommand::Purge { tenant, control } => {
            let removed = provisioning::purge(&control.control_database_url, &tenant).await?;
            let total: u64 = removed.iter().map(|(_, n)| n).sum();
            let text = format!(
                "tenant {tenant} purged: {total} rows removed; no row of it is left in any table"
            );
            let tables: Vec<Value> = removed
                .iter()
                .map(|(t, n)| json!({ "table": t, "rows": n }))
                .collect();
            Ok(Some(json!({ "removed": tables, "text": text })))
        }
        TenantCommand::ImportLegacy {
            tenant,
            file,
            allow_partial,
            control,
        } => {
            let report = provisioning::import_legacy(
                &control.control_database_url,
                &tenant,
                &file,
                allow_partial,
            )
            .await?;
            let mut text = format!(
                "legacy import into {tenant}: read {} valid records, wrote {} new ({} storms, {} properties, {} journeys, {} scores, {} experiments), rejected {}",
                report.read.total(),
                report.written.total(),
                report.written.storms,
                report.written.properties,
                report.written.journeys,
                report.written.uplift_scores,
                report.written.experiments,
                report.rejected.len()
            );
            for r in &report.rejected {
                text.push_str(&format!(
                    "\n  rejected {} {}: {}",
                    r.table, r.old_id, r.reason
                ));
            }
            Ok(Some(json!({ "report": report, "text": text })))
        }
        // Commands the operator module runs itself never reach here.
        // (Not formatted: the command's flags hold the database URL and its password.)
        _ => Err(CommandError {
            code: "internal",
            message: "not a lifecycle command".into(),
        }),
    }
}

/// `user list`.
pub async fn run_user(command: UserCommand) -> Result<Option<Value>, CommandError> {
    match command {
        UserCommand::List { tenant, control } => {
            let users = provisioning::list_users(&control.control_database_url, &tenant).await?;
            let mut text = format!(
                "{:<38} {:<32} {:<11} {:<9} name",
                "id", "email", "role", "state"
            );
            for u in &users {
                text.push_str(&format!(
                    "\n{:<38} {:<32} {:<11} {:<9} {}",
                    u.user.id.to_string(),
                    u.user.email,
                    u.user.role.as_str(),
                    if u.disabled_at.is_some() {
                        "disabled"
                    } else {
                        "enabled"
                    },
                    u.user.name
                ));
            }
            Ok(Some(json!({ "users": users, "text": text })))
        }
        _ => Err(CommandError {
            code: "internal",
            message: "not a directory command".into(),
        }),
    }
}

/// `crew add|list`.
pub async fn run_crew(command: CrewCommand) -> Result<Option<Value>, CommandError> {
    match command {
        CrewCommand::Add {
            tenant,
            name,
            chief,
            control,
        } => {
            let id = provisioning::add_crew(
                &control.control_database_url,
                &tenant,
                &name,
                chief.map(domain::UserId),
            )
            .await?;
            Ok(Some(
                json!({ "crew_id": id, "text": format!("crew {name} added to {tenant}: id {id}") }),
            ))
        }
        CrewCommand::List { tenant, control } => {
            let crews = provisioning::list_crews(&control.control_database_url, &tenant).await?;
            let mut text = format!("{:<38} {:<38} name", "id", "chief");
            for c in &crews {
                text.push_str(&format!(
                    "\n{:<38} {:<38} {}",
                    c.id.to_string(),
                    c.chief_id
                        .map(|u| u.to_string())
                        .unwrap_or_else(|| "-".into()),
                    c.name
                ));
            }
            Ok(Some(json!({ "crews": crews, "text": text })))
        }
    }
}
