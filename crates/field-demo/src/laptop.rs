//! A headless field laptop: its own data directory and encrypted tenant file, signed in through a
//! fault proxy (so the demo can take it offline), and the same sync engine the desktop app runs.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use desktop_core::{EngineConfig, SignInRequest, SyncEngine, sign_in};
use domain::{Role, UserId};
use fault_proxy::{Fault, FaultProxy};
use local_store::{DataDir, Passphrase};
use sync_client::SyncClient;
use tokio::sync::watch;
use zeroize::Zeroizing;

/// One laptop.
pub struct Laptop {
    pub name: String,
    pub role: Role,
    pub user_id: UserId,
    pub engine: Arc<SyncEngine>,
    /// The access token of the sign-in (the office uses it for admin routes; it outlives the demo).
    access_token: Zeroizing<String>,
    /// The server behind the proxy, for admin calls.
    pub server: std::net::SocketAddr,
    proxy: FaultProxy,
    agent: Option<(watch::Sender<bool>, tokio::task::JoinHandle<()>)>,
}

impl Laptop {
    /// Signs a new laptop in: creates its tenant file, registers its device, keeps its refresh token.
    pub async fn sign_in(
        name: &str,
        dir: &Path,
        server: std::net::SocketAddr,
        slug: &str,
        email: &str,
        password: &str,
    ) -> anyhow::Result<Self> {
        let proxy = FaultProxy::start(server).await?;
        let data_dir = DataDir::new(dir)?;
        let passphrase = Passphrase::new_checked("demo passphrase for the truck")?;
        let request = SignInRequest {
            server_url: &proxy.url(),
            tenant_slug: slug,
            email,
            password: Zeroizing::new(password.to_owned()),
            local_user: "crew",
            passphrase: &passphrase,
            device_name: name,
        };
        let signed = sign_in(&data_dir, request)
            .await
            .with_context(|| format!("{name} signing in"))?;
        let config = EngineConfig {
            interval: Duration::from_secs(5),
            debounce: Duration::from_millis(300),
            ..EngineConfig::default()
        };
        let client = SyncClient::new(&proxy.url())?;
        let engine = SyncEngine::new(signed.store, data_dir, client, config);
        engine.accept_tokens(&signed.tokens).await?;
        Ok(Self {
            name: name.to_owned(),
            role: signed.tokens.role,
            user_id: signed.tokens.user_id,
            engine,
            access_token: Zeroizing::new(signed.tokens.access_token.clone()),
            server,
            proxy,
            agent: None,
        })
    }

    /// The sign-in's access token.
    pub fn access_token(&self) -> &str {
        &self.access_token
    }

    /// Cuts the laptop off the network (the truck drives out of coverage).
    pub fn go_offline(&self) {
        self.proxy.set(Fault::Outage);
    }

    /// Gives the laptop its connection back.
    pub fn go_online(&self) {
        self.proxy.set(Fault::Pass);
    }

    /// Starts the background agent (syncs on writes, on a timer, and when the server is reachable again).
    pub fn start_agent(&mut self) {
        let (tx, rx) = watch::channel(false);
        let engine = Arc::clone(&self.engine);
        let task = tokio::spawn(engine.run(rx));
        self.agent = Some((tx, task));
    }

    /// Stops the agent and waits for it.
    pub async fn stop_agent(&mut self) {
        if let Some((tx, task)) = self.agent.take() {
            let _ = tx.send(true);
            let _ = task.await;
        }
    }
}
