//! Starting the server: connect both pools, refuse to start if the application role could bypass
//! row-level security, load the token key, listen, and shut down gracefully on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use server_store::{AppPool, ControlPool, PoolSettings};
use tokio::net::TcpListener;
use zeroize::Zeroizing;

use crate::auth::token::TokenKey;
use crate::metrics::Metrics;
use crate::state::{AppState, ServerSettings};

/// The environment variable holding the token signing key (64 hex characters). Every instance behind
/// one load balancer must share it; without it a random key is made and tokens last one process.
pub const TOKEN_KEY_ENV: &str = "STORMOPS_TOKEN_KEY";

/// Everything needed to build the state.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub database_url: String,
    pub control_database_url: String,
    pub pool_size: u32,
    pub settings: ServerSettings,
}

fn token_key_from_env() -> anyhow::Result<TokenKey> {
    match std::env::var(TOKEN_KEY_ENV) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            let bytes = Zeroizing::new(
                decode_hex(text.trim())
                    .with_context(|| format!("{TOKEN_KEY_ENV} must be 64 hex characters"))?,
            );
            anyhow::ensure!(
                bytes.len() >= 32,
                "{TOKEN_KEY_ENV} must hold at least 32 bytes (64 hex characters)"
            );
            Ok(TokenKey::from_bytes(&bytes))
        }
        Err(_) => {
            tracing::warn!(
                "{TOKEN_KEY_ENV} is not set: using a random token key; access tokens will not survive a restart or work across instances (clients refresh and carry on)"
            );
            let (key, _bytes) = TokenKey::generate().map_err(|e| anyhow::anyhow!(e))?;
            Ok(key)
        }
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Connects, checks the application role and the schema, and builds the shared state.
pub async fn build_state(config: &ServerConfig) -> anyhow::Result<AppState> {
    let settings = PoolSettings {
        max_connections: config.pool_size,
        ..PoolSettings::default()
    };
    let app = AppPool::connect(&config.database_url, &settings)
        .await
        .context("connecting the application pool")?;
    server_store::check_app_role(&app)
        .await
        .context("the application role must not be able to bypass row-level security")?;
    let status = server_store::migrations_current(&app)
        .await
        .context("reading the migration status")?;
    anyhow::ensure!(
        status.is_current(),
        "the database schema does not match this build: run `stormops-server db init`"
    );
    let control_settings = PoolSettings {
        max_connections: 4,
        ..PoolSettings::default()
    };
    let control = ControlPool::connect(&config.control_database_url, &control_settings)
        .await
        .context("connecting the control-plane pool")?;
    Ok(AppState {
        app,
        control,
        tokens: Arc::new(token_key_from_env()?),
        metrics: Arc::new(Metrics::default()),
        settings: Arc::new(config.settings.clone()),
        limiter: Arc::default(),
    })
}

/// A running server (in-process): its address and a handle to stop it.
#[derive(Debug)]
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Stops the background trainer (None when it is disabled).
    trainer: Option<(
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    )>,
    /// Stops the metering task (None when it is disabled).
    usage: Option<(
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    )>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, and waits.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.task.await;
        if let Some((stop, task)) = self.trainer.take() {
            let _ = stop.send(true);
            let _ = task.await;
        }
        if let Some((stop, task)) = self.usage.take() {
            let _ = stop.send(true);
            let _ = task.await;
        }
    }
}

/// Starts the server on `bind` (use port 0 for any free port) inside the current runtime.
pub async fn start(config: &ServerConfig, bind: &str) -> anyhow::Result<RunningServer> {
    let state = build_state(config).await?;
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding {bind}"))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = crate::app::router(state.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    let trainer = (state.settings.train_interval_secs > 0).then(|| {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(crate::learning::run_trainer(
            state.clone(),
            std::time::Duration::from_secs(state.settings.train_interval_secs),
            state.settings.train_min_new_outcomes,
            stopped,
        ));
        (stop, task)
    });
    let usage = (state.settings.usage_interval_secs > 0).then(|| {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(crate::usage_task::run_usage_task(
            state.clone(),
            std::time::Duration::from_secs(state.settings.usage_interval_secs),
            stopped,
        ));
        (stop, task)
    });
    Ok(RunningServer {
        addr,
        state,
        shutdown: Some(tx),
        task,
        trainer,
        usage,
    })
}

/// `stormops-server serve`: runs until SIGTERM or Ctrl-C, then drains in-flight requests.
pub async fn serve_forever(config: &ServerConfig, bind: &str) -> anyhow::Result<()> {
    let server = start(config, bind).await?;
    tracing::info!(addr = %server.addr, "stormops-server listening");
    println!("listening on http://{}", server.addr);
    shutdown_signal().await;
    tracing::info!("shutting down: draining in-flight requests");
    server.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys_decode() {
        assert_eq!(decode_hex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(decode_hex("0"), None);
        assert_eq!(decode_hex("zz"), None);
    }
}
