//! Sync commands: `login` (sign this laptop in), `sync` (once, or `--watch` as the background agent)
//! and `diagnostics` (a redacted support bundle). They drive desktop-core's sign-in and sync engine,
//! the same code the desktop app runs.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use desktop_core::{EngineConfig, SignInRequest, SyncEngine, SyncError, SyncStatus, sign_in};
use local_store::TenantStore;
use serde_json::json;
use sync_client::SyncClient;

use crate::commands::Context;
use crate::error::CliError;
use crate::input;
use crate::output::Report;

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::new(
                "cli.runtime",
                format!("could not start the async runtime: {e}"),
            )
        })
}

fn sync_error(err: &SyncError) -> CliError {
    CliError::new(&err.code(), err.to_string())
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "field laptop".to_owned())
}

/// `login --server URL --slug SLUG --email EMAIL`.
pub fn login(
    context: &Context,
    server: &str,
    slug: &str,
    email: &str,
    device_name: Option<&str>,
) -> Result<Report, CliError> {
    let known = context
        .data_dir
        .list_tenants()?
        .into_iter()
        .any(|t| t.slug == slug && t.server_url.is_some());
    let passphrase = if known {
        input::passphrase(&format!("Passphrase for {slug}: "))?
    } else {
        input::creation_passphrase()?
    };
    let password = input::account_password()?;
    let device_name = device_name.map_or_else(host_name, str::to_owned);
    let request = SignInRequest {
        server_url: server,
        tenant_slug: slug,
        email,
        password,
        local_user: context.user_or_default(),
        passphrase: &passphrase,
        device_name: &device_name,
    };
    let signed = runtime()?
        .block_on(sign_in(&context.data_dir, request))
        .map_err(|e| CliError::new(&e.code(), e.to_string()))?;
    let info = signed.store.info();
    let mut report = Report::new(json!({
        "tenant_id": info.tenant_id,
        "device_id": info.device_id,
        "role": signed.tokens.role,
        "created": signed.created,
        "database": info.database.display().to_string(),
        "recovery_key": signed.recovery_key.as_ref().map(|k| k.reveal().to_owned()),
    }))
    .line(format!(
        "signed in to {slug} as {email} ({})",
        signed.tokens.role
    ))
    .line(format!("tenant   {}", info.tenant_id))
    .line(format!("device   {}", info.device_id));
    if let Some(key) = &signed.recovery_key {
        report = report
            .line(format!("created  {}", info.database.display()))
            .line(format!(
                "RECOVERY KEY (shown once; store it offline): {}",
                key.reveal()
            ));
    }
    Ok(report)
}

fn engine_for(
    context: &Context,
    store: TenantStore,
    interval: u64,
) -> Result<Arc<SyncEngine>, CliError> {
    let account = store.server_account()?.ok_or_else(|| {
        CliError::new(
            "sync.not_signed_in",
            "this tenant file has not signed in to a server; run `stormops-field login` first",
        )
    })?;
    let client = SyncClient::new(&account.server_url)
        .map_err(|e| CliError::new("sync.invalid_server", e.to_string()))?;
    let config = EngineConfig {
        interval: Duration::from_secs(interval.max(1)),
        ..EngineConfig::default()
    };
    Ok(SyncEngine::new(
        store,
        context.data_dir.clone(),
        client,
        config,
    ))
}

fn status_line(s: &SyncStatus) -> String {
    format!(
        "{:?} {:?}: pushed {}/{} pulled {} pending {} refused {}{}",
        s.connectivity,
        s.phase,
        s.push.done,
        s.push.total.unwrap_or(0),
        s.pull.done,
        s.pending,
        s.refused,
        s.last_error
            .as_ref()
            .map(|e| format!(" (last error {})", e.code))
            .unwrap_or_default()
    )
}

/// `sync` and `sync --watch`.
pub fn sync(context: &Context, watch: bool, interval: u64) -> Result<Report, CliError> {
    let store = context.open()?;
    let rt = runtime()?;
    let engine = engine_for(context, store, interval)?;
    if !watch {
        return match rt.block_on(engine.sync_once()) {
            Ok(report) => {
                let status = engine.status();
                Ok(Report::new(json!({ "report": report, "status": status }))
                    .line(format!(
                        "synced: pushed {} ({} duplicates, {} refused) in {} batches, pulled {} in {} pages, {} ms",
                        report.pushed, report.duplicates, report.refused, report.push_batches, report.pulled, report.pull_pages, report.elapsed_ms
                    ))
                    .line(format!("pending {}, refused {}", status.pending, status.refused)))
            }
            Err(err) => Err(sync_error(&err)),
        };
    }
    rt.block_on(watch_until_stopped(engine))
}

async fn watch_until_stopped(engine: Arc<SyncEngine>) -> Result<Report, CliError> {
    let json_lines = std::env::args().any(|a| a == "--json");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let agent = tokio::spawn(Arc::clone(&engine).run(stop_rx));
    let mut statuses = engine.subscribe();
    let mut last = String::new();
    let stop = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = ctrl_c => {},
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            changed = statuses.changed() => {
                if changed.is_err() {
                    break;
                }
                let status = statuses.borrow_and_update().clone();
                let line = if json_lines { serde_json::to_string(&status).unwrap_or_default() } else { status_line(&status) };
                if line != last {
                    println!("{line}");
                    last = line;
                }
                if status.connectivity == desktop_core::Connectivity::Revoked {
                    let _ = stop_tx.send(true);
                    let _ = agent.await;
                    return Err(CliError::new("sync.device_revoked", "this laptop was revoked by an administrator; its tenant data has been removed from it"));
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    let _ = agent.await;
    let status = engine.status();
    Ok(Report::new(json!({ "stopped": true, "status": status }))
        .line(format!("stopped: {}", status_line(&status))))
}

/// `diagnostics`: what support needs, and nothing personal or secret.
pub fn diagnostics(context: &Context, out: Option<&Path>) -> Result<Report, CliError> {
    let store = context.open()?;
    let info = store.info();
    let account = store.server_account()?;
    let server = account.as_ref().map(|a| {
        a.server_url
            .split('@')
            .next_back()
            .unwrap_or_default()
            .to_owned()
    });
    let inbox: Vec<_> = store
        .inbox()?
        .into_iter()
        .map(|item| json!({ "entity": item.change.entity, "op": item.change.op, "code": item.code, "refused_at": item.refused_at }))
        .collect();
    let file_bytes = std::fs::metadata(&info.database)
        .map(|m| m.len())
        .unwrap_or(0);
    let bundle = json!({
        "generated_at_ms": domain::Timestamp::now(),
        "app_version": env!("CARGO_PKG_VERSION"),
        "protocol_version": sync_protocol::PROTOCOL_VERSION,
        "schema_version": local_store::schema::SCHEMA_VERSION,
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "tenant_id": info.tenant_id,
        "device_id": info.device_id,
        "server": server,
        "role": account.as_ref().map(|a| a.role),
        "signed_in_at_ms": account.as_ref().map(|a| a.signed_in_at),
        "file_bytes": file_bytes,
        "encrypted": store.is_encrypted(),
        "counts": store.record_counts()?,
        "outbox": store.pending_counts()?,
        "sync_state": store.sync_state()?,
        "recent_syncs": store.recent_syncs(50)?,
        "inbox": inbox,
    });
    let text = serde_json::to_string_pretty(&bundle)
        .map_err(|e| CliError::new("cli.encode", e.to_string()))?;
    match out {
        Some(path) => {
            std::fs::write(path, &text)
                .map_err(|e| CliError::new("cli.write", format!("{}: {e}", path.display())))?;
            Ok(
                Report::new(json!({ "written": path.display().to_string() })).line(format!(
                    "diagnostics written to {} (no personal data, keys or tokens)",
                    path.display()
                )),
            )
        }
        None => Ok(Report::new(bundle).line(text)),
    }
}
