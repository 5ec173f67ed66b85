//! The app's use cases as one facade the desktop shell calls: one async method per bridge command
//! (`ui/src/lib/backend/commands.ts`). It owns the data directory and the open session (a tenant
//! store, behind a sync engine once the laptop has signed in), checks roles, and turns every failure
//! into a serialisable `{code, message}` with a stable code. All store work runs on blocking threads,
//! so a caller on an async runtime never waits on SQLite.
//!
//! The DTOs here are the bridge's own shapes; `ts-rs` renders them into
//! `ui/src/lib/backend/generated/` (`cargo xtask codegen`). Domain records inside them keep their
//! hand-written TypeScript mirrors (`types.ts`), referenced by import type.

use std::sync::{Arc, Mutex};

use domain::ChangeId;
use domain::{
    Channel, Crew, Decision, DecisionId, JourneyTouch, Outcome, OutcomeId, PolicyDecision,
    PolicyMode, PropertyId, PropertyStatus, Role, Storm, StormId, StormStatus, Territory,
    TerritoryId, Timestamp, TouchId, TouchResult, User, UserId, Validate,
};
use local_store::{
    DataDir, InboxItem, NewTenant, Passphrase, ServerAccount, StoreError, TenantEntry, TenantStore,
    TimelineEntry,
};
use serde::{Deserialize, Serialize};
use sync_client::SyncClient;
use sync_protocol::{Entity, ErrorCode};
use tokio::sync::watch;
use ts_rs::TS;
use zeroize::Zeroizing;

use crate::csv_import::{self, CsvImportError};
use crate::engine::{EngineConfig, SyncEngine, SyncError};
use crate::signin::{SignInError, SignInRequest};
use crate::status::{Connectivity, SyncStatus};

/// The error every command rejects with: a stable code and plain words for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, thiserror::Error)]
#[error("{message} ({code})")]
pub struct CommandError {
    pub code: String,
    pub message: String,
}

impl CommandError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    fn locked() -> Self {
        Self::new(
            "session.locked",
            "the tenant file is locked; unlock it first",
        )
    }

    fn forbidden(role: Option<Role>, action: &str) -> Self {
        let who = role.map_or("a laptop that has not signed in", Role::as_str);
        Self::new("session.forbidden", format!("{who} cannot {action}"))
    }
}

impl From<StoreError> for CommandError {
    fn from(err: StoreError) -> Self {
        Self {
            code: err.code(),
            message: err.to_string(),
        }
    }
}

impl From<SyncError> for CommandError {
    fn from(err: SyncError) -> Self {
        Self {
            code: err.code(),
            message: err.to_string(),
        }
    }
}

impl From<SignInError> for CommandError {
    fn from(err: SignInError) -> Self {
        Self {
            code: err.code(),
            message: err.to_string(),
        }
    }
}

impl From<domain::ValidationError> for CommandError {
    fn from(err: domain::ValidationError) -> Self {
        StoreError::from(err).into()
    }
}

/// Every command's result.
pub type AppResult<T> = Result<T, CommandError>;

/// The open session as the UI sees it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct Session {
    #[ts(type = "string")]
    pub tenant_id: domain::TenantId,
    pub tenant_name: String,
    /// The local user whose passphrase unlocked the file.
    pub user: String,
    /// Null until signed in to the server once (the role comes from the server).
    #[ts(type = "import('../types').Role | null")]
    pub role: Option<Role>,
    pub signed_in: bool,
    pub server_url: Option<String>,
    #[ts(type = "string | null")]
    pub user_id: Option<UserId>,
    #[ts(type = "string | null")]
    pub crew_id: Option<domain::CrewId>,
}

/// A new tenant file and its recovery key (shown once, never stored).
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct CreatedTenant {
    #[ts(type = "import('../types').TenantEntry")]
    pub tenant: TenantEntry,
    pub recovery_key: String,
}

/// Filters of the ranked list (every filter optional; limit 0 means the default of 50).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct PropertyQuery {
    #[ts(optional, type = "string | null")]
    pub storm_id: Option<StormId>,
    #[ts(optional, type = "string | null")]
    pub territory_id: Option<TerritoryId>,
    #[ts(optional, type = "import('../types').PropertyStatus | null")]
    pub status: Option<PropertyStatus>,
    #[ts(optional, type = "import('../types').Decision | null")]
    pub decision: Option<Decision>,
    /// Case-insensitive substring of the address.
    #[ts(optional = nullable)]
    pub search: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

impl From<PropertyQuery> for local_store::PropertyQuery {
    fn from(q: PropertyQuery) -> Self {
        Self {
            storm_id: q.storm_id,
            territory_id: q.territory_id,
            status: q.status,
            decision: q.decision,
            search: q.search,
            limit: q.limit,
            offset: q.offset,
        }
    }
}

/// One row of the ranked list.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct RankedProperty {
    #[ts(type = "import('../types').Property")]
    pub property: domain::Property,
    pub uplift: Option<f64>,
    pub p_treat: Option<f64>,
    pub p_hold: Option<f64>,
    pub model_version: Option<String>,
    #[ts(type = "import('../types').Decision | null")]
    pub latest_decision: Option<Decision>,
}

impl From<local_store::RankedProperty> for RankedProperty {
    fn from(r: local_store::RankedProperty) -> Self {
        Self {
            property: r.property,
            uplift: r.uplift,
            p_treat: r.p_treat,
            p_hold: r.p_hold,
            model_version: r.model_version,
            latest_decision: r.latest_decision,
        }
    }
}

/// A property page: the record, its score and whether the score has seen this laptop's latest work,
/// its sync state and its timeline.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct PropertyDetail {
    #[ts(type = "import('../types').Property")]
    pub property: domain::Property,
    #[ts(type = "import('../types').UpliftScore | null")]
    pub score: Option<domain::UpliftScore>,
    /// False when this laptop logged work on the property after the score was trained (null: unscored).
    pub score_fresh: Option<bool>,
    #[ts(type = "import('../types').RecordSyncState")]
    pub sync_state: local_store::RecordSyncState,
    #[ts(type = "import('../types').TimelineEntry[]")]
    pub timeline: Vec<TimelineEntry>,
    /// The mode the storm's policy decides in: the office's, as last synced, or the default (moderate).
    pub policy: crate::policy::StormMode,
}

/// The laptops' sync health as the crew chief's screen shows it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct CrewSyncHealth {
    /// True when the list came from the server (every laptop the role may see); false when only this
    /// laptop's own figures could be shown.
    pub from_server: bool,
    /// Why the server's list is missing (offline, not signed in, an older server); null when it came.
    pub server_error: Option<CommandError>,
    /// The server's clock when it answered (this laptop's when it did not).
    #[ts(type = "number")]
    pub as_of_ms: i64,
    pub devices: Vec<DeviceSyncHealth>,
}

/// One laptop's sync health. The server knows what it saw of each laptop (last accepted push and its
/// size, last pull, refused batches); only this laptop knows what it still holds, so `pending` and
/// `refused` (the inbox) are set for this laptop alone.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct DeviceSyncHealth {
    #[ts(type = "string")]
    pub device_id: domain::DeviceId,
    pub device_name: String,
    pub user_name: String,
    pub this_laptop: bool,
    #[ts(type = "import('../types').DeviceStatus")]
    pub status: domain::DeviceStatus,
    /// The latest of the last push and the last pull (this laptop: its last successful sync).
    #[ts(type = "number | null")]
    pub last_sync_at_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub last_push_at_ms: Option<i64>,
    /// Changes in the last accepted batch.
    #[ts(type = "number | null")]
    pub last_push_changes: Option<i64>,
    #[ts(type = "number | null")]
    pub last_pull_at_ms: Option<i64>,
    /// Changes waiting on this laptop (unknown for the others).
    #[ts(type = "number | null")]
    pub pending: Option<i64>,
    /// Changes in this laptop's inbox (unknown for the others).
    #[ts(type = "number | null")]
    pub refused: Option<i64>,
    /// Changes the server refused from this laptop, ever, and when last.
    #[ts(type = "number | null")]
    pub refused_total: Option<i64>,
    #[ts(type = "number | null")]
    pub last_refused_at_ms: Option<i64>,
}

/// What `storm_create` takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct NewStorm {
    pub event_id: String,
    pub name: String,
    #[ts(type = "number")]
    pub started_at: i64,
    #[ts(type = "number | null")]
    pub ended_at: Option<i64>,
    pub hail_size_in: f64,
    pub wind_mph: f64,
    pub affected_area: String,
}

/// One refused CSV row.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct ImportLineError {
    /// 1-based line of the CSV text (the header is line 1).
    #[ts(type = "number")]
    pub line: u64,
    pub field: String,
    pub message: String,
}

/// What a CSV import did: all rows or none.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct ImportReport {
    pub imported: u32,
    pub errors: Vec<ImportLineError>,
}

/// Where the open file's store lives: on its own before the laptop signs in, inside the sync engine
/// after (the engine owns it so sync and commands share one connection).
enum Backing {
    Local(Arc<Mutex<Option<TenantStore>>>),
    Synced {
        engine: Arc<SyncEngine>,
        shutdown: watch::Sender<bool>,
    },
}

struct Open {
    entry: TenantEntry,
    user: String,
    /// Kept while the file is open: signing in closes and reopens the file with it.
    passphrase: Zeroizing<String>,
    account: Option<ServerAccount>,
    device_id: domain::DeviceId,
    backing: Backing,
}

impl Open {
    fn session(&self) -> Session {
        let account = self.account.as_ref();
        Session {
            tenant_id: self.entry.tenant_id,
            tenant_name: self.entry.name.clone(),
            user: self.user.clone(),
            role: account.map(|a| a.role),
            signed_in: account.is_some(),
            server_url: account.map(|a| a.server_url.clone()),
            user_id: account.map(|a| a.user_id),
            crew_id: account.and_then(|a| a.crew_id),
        }
    }

    fn role(&self) -> Option<Role> {
        self.account.as_ref().map(|a| a.role)
    }
}

impl std::fmt::Debug for Open {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Open")
            .field("tenant", &self.entry.tenant_id)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A handle on the open store, cloned out of the session lock so no lock is held across an await.
#[derive(Clone)]
enum StoreHandle {
    Local(Arc<Mutex<Option<TenantStore>>>),
    Engine(Arc<SyncEngine>),
}

impl StoreHandle {
    async fn run<T, F>(&self, f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut TenantStore) -> Result<T, StoreError> + Send + 'static,
    {
        match self {
            StoreHandle::Engine(engine) => Ok(engine.with_store(f).await?),
            StoreHandle::Local(store) => {
                let store = Arc::clone(store);
                tokio::task::spawn_blocking(move || {
                    let mut guard = store.lock().map_err(|_| CommandError::locked())?;
                    let store = guard.as_mut().ok_or_else(CommandError::locked)?;
                    f(store).map_err(CommandError::from)
                })
                .await
                .map_err(|_| CommandError::locked())?
            }
        }
    }

    /// Tells the background agent to push soon (no-op before sign-in).
    fn wrote(&self) {
        if let StoreHandle::Engine(engine) = self {
            engine.notify_local_write();
        }
    }
}

/// What a command needs from the session, read under the lock and released before any await.
struct Ctx {
    store: StoreHandle,
    role: Option<Role>,
    user_id: Option<UserId>,
    device_id: domain::DeviceId,
    user: String,
    email: Option<String>,
}

impl Ctx {
    fn require(&self, allowed: &[Role], action: &str) -> AppResult<()> {
        match self.role {
            Some(role) if allowed.contains(&role) => Ok(()),
            role => Err(CommandError::forbidden(role, action)),
        }
    }

    fn require_writer(&self, action: &str) -> AppResult<()> {
        self.require(&[Role::Admin, Role::CrewChief, Role::FieldUser], action)
    }

    /// The server user id writes are attributed to (writers are signed in, so it is known).
    fn author(&self) -> AppResult<UserId> {
        self.user_id
            .ok_or_else(|| CommandError::forbidden(None, "write records"))
    }
}

const ANY_ROLE: &[Role] = &[Role::Admin, Role::CrewChief, Role::FieldUser, Role::Viewer];
const OFFICE_READERS: &[Role] = &[Role::Admin, Role::CrewChief, Role::Viewer];

/// The app: the data directory and at most one open tenant file.
pub struct App {
    data_dir: DataDir,
    config: EngineConfig,
    device_name: String,
    session: Mutex<Option<Open>>,
    /// The status the UI shows, whatever session is open (the shell forwards it as `sync-status`).
    status: watch::Sender<SyncStatus>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("data_dir", &self.data_dir.root())
            .finish_non_exhaustive()
    }
}

fn store_status_for_local(pending: &local_store::PendingCounts) -> SyncStatus {
    SyncStatus {
        connectivity: Connectivity::NeedsSignIn,
        pending: pending.pending,
        refused: pending.refused,
        oldest_pending_age_ms: pending.oldest_pending_age_ms,
        ..SyncStatus::default()
    }
}

impl App {
    /// An app over `data_dir`; nothing is open until `unlock`.
    pub fn new(data_dir: DataDir, config: EngineConfig, device_name: impl Into<String>) -> Self {
        let (status, _) = watch::channel(SyncStatus::default());
        Self {
            data_dir,
            config,
            device_name: device_name.into(),
            session: Mutex::new(None),
            status,
        }
    }

    /// Every status change of whichever session is open.
    pub fn subscribe_status(&self) -> watch::Receiver<SyncStatus> {
        self.status.subscribe()
    }

    fn lock_session(&self) -> std::sync::MutexGuard<'_, Option<Open>> {
        // A panic while holding the lock leaves plain data behind: keep serving it.
        self.session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn ctx(&self) -> AppResult<Ctx> {
        let guard = self.lock_session();
        let open = guard.as_ref().ok_or_else(CommandError::locked)?;
        Ok(Ctx {
            store: match &open.backing {
                Backing::Local(s) => StoreHandle::Local(Arc::clone(s)),
                Backing::Synced { engine, .. } => StoreHandle::Engine(Arc::clone(engine)),
            },
            role: open.role(),
            user_id: open.account.as_ref().map(|a| a.user_id),
            device_id: open.device_id,
            user: open.user.clone(),
            email: open.account.as_ref().map(|a| a.email.clone()),
        })
    }

    async fn blocking<T, F>(f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce() -> AppResult<T> + Send + 'static,
    {
        tokio::task::spawn_blocking(f).await.map_err(|e| {
            CommandError::new("app.internal", format!("a background task failed: {e}"))
        })?
    }

    // ---- tenant file and session ----

    pub async fn list_tenants(&self) -> AppResult<Vec<TenantEntry>> {
        let dir = self.data_dir.clone();
        Self::blocking(move || Ok(dir.list_tenants()?)).await
    }

    pub async fn create_tenant(
        &self,
        name: String,
        user: String,
        passphrase: String,
    ) -> AppResult<CreatedTenant> {
        let dir = self.data_dir.clone();
        let passphrase = Zeroizing::new(passphrase);
        Self::blocking(move || {
            let passphrase = Passphrase::new_checked(passphrase.as_str())?;
            let created = dir.create_tenant(
                NewTenant {
                    tenant_id: None,
                    name: name.trim(),
                    user: &user,
                    passphrase: &passphrase,
                },
                Timestamp::now(),
            )?;
            // The file is not opened for the user yet: they unlock it next, like any other file.
            drop(created.store);
            Ok(CreatedTenant {
                tenant: created.entry,
                recovery_key: created.recovery_key.reveal().to_owned(),
            })
        })
        .await
    }

    pub async fn unlock(
        &self,
        tenant_id: domain::TenantId,
        user: String,
        passphrase: String,
    ) -> AppResult<Session> {
        // Another file may be open: close it first (its lock and its sync agent).
        self.lock().await?;
        let dir = self.data_dir.clone();
        let passphrase = Zeroizing::new(passphrase);
        let (store, entry, account, pending) = Self::blocking({
            let user = user.clone();
            let passphrase = passphrase.clone();
            move || {
                let entry = dir
                    .list_tenants()?
                    .into_iter()
                    .find(|t| t.tenant_id == tenant_id)
                    .ok_or_else(|| StoreError::TenantNotFound {
                        tenant: tenant_id.to_string(),
                        dir: dir.root().to_path_buf(),
                    })?;
                let store = dir.open(
                    tenant_id,
                    Some(&user),
                    &Passphrase::new(passphrase.as_str()),
                )?;
                let account = store.server_account()?;
                let pending = store.pending_counts()?;
                Ok((store, entry, account, pending))
            }
        })
        .await?;
        let device_id = store.device_id();
        let backing = match &account {
            Some(account) => self.start_engine(store, &account.server_url)?,
            None => {
                self.status.send_replace(store_status_for_local(&pending));
                Backing::Local(Arc::new(Mutex::new(Some(store))))
            }
        };
        let open = Open {
            entry,
            user,
            passphrase,
            account,
            device_id,
            backing,
        };
        let session = open.session();
        *self.lock_session() = Some(open);
        Ok(session)
    }

    /// Wraps a signed-in store in a sync engine, starts its background agent, and forwards its status.
    fn start_engine(&self, store: TenantStore, server_url: &str) -> AppResult<Backing> {
        let client = SyncClient::new(server_url).map_err(|e| {
            CommandError::new(
                "validation.invalid_format",
                format!("the server address {server_url} is not usable: {e}"),
            )
        })?;
        let engine = SyncEngine::new(store, self.data_dir.clone(), client, self.config.clone());
        let (shutdown, shutdown_rx) = watch::channel(false);
        tokio::spawn(Arc::clone(&engine).run(shutdown_rx.clone()));
        let mut source = engine.subscribe();
        let sink = self.status.clone();
        let mut stop = shutdown_rx;
        sink.send_replace(source.borrow().clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = source.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        let status = source.borrow_and_update().clone();
                        sink.send_replace(status);
                    }
                    _ = stop.changed() => return,
                }
            }
        });
        Ok(Backing::Synced { engine, shutdown })
    }

    /// Closes the open file: stops its agent and releases the file. Nothing open is fine.
    pub async fn lock(&self) -> AppResult<()> {
        let open = self.lock_session().take();
        if let Some(open) = open {
            Self::close(open).await;
        }
        self.status.send_replace(SyncStatus::default());
        Ok(())
    }

    async fn close(open: Open) {
        match open.backing {
            Backing::Local(store) => {
                let _ = tokio::task::spawn_blocking(move || {
                    if let Ok(mut guard) = store.lock() {
                        guard.take();
                    }
                })
                .await;
            }
            Backing::Synced { engine, shutdown } => {
                let _ = shutdown.send(true);
                // The agent task holds the engine until it sees the shutdown (it may be mid-sync), so
                // the file is closed through the engine now rather than when the last handle drops.
                engine.close().await;
            }
        }
    }

    pub async fn current_session(&self) -> AppResult<Option<Session>> {
        Ok(self.lock_session().as_ref().map(Open::session))
    }

    /// Signs this laptop in to the tenant's server with the open session's local user; the file is
    /// closed and reopened through the sign-in (which may create the server tenant's own file).
    pub async fn sign_in(
        &self,
        server_url: String,
        tenant_slug: String,
        email: String,
        password: String,
    ) -> AppResult<Session> {
        let open = self
            .lock_session()
            .take()
            .ok_or_else(CommandError::locked)?;
        let user = open.user.clone();
        let previous = open.entry.clone();
        let passphrase_text = open.passphrase.clone();
        Self::close(open).await;
        let dir = self.data_dir.clone();
        let device_name = self.device_name.clone();
        let password = Zeroizing::new(password);
        let result = Self::blocking({
            let user = user.clone();
            let passphrase_text = passphrase_text.clone();
            move || {
                let passphrase = Passphrase::new(passphrase_text.as_str());
                let handle = tokio::runtime::Handle::current();
                handle
                    .block_on(crate::signin::sign_in(
                        &dir,
                        SignInRequest {
                            server_url: &server_url,
                            tenant_slug: &tenant_slug,
                            email: &email,
                            password,
                            local_user: &user,
                            passphrase: &passphrase,
                            device_name: &device_name,
                        },
                    ))
                    .map_err(CommandError::from)
            }
        })
        .await;
        match result {
            Ok(signed) => {
                let tenant_id = signed.store.tenant_id();
                drop(signed);
                // Reopen through the normal path so the session, engine and status are built one way.
                let session = self
                    .unlock(tenant_id, user, passphrase_text.to_string())
                    .await?;
                // The engine refreshes with the refresh token sign-in stored, and syncs at once.
                if let Ok(StoreHandle::Engine(engine)) = self.ctx().map(|c| c.store) {
                    engine.sync_now();
                }
                Ok(session)
            }
            Err(err) => {
                // Put the user back where they were: the file they had open, still unlocked.
                let _ = self
                    .unlock(previous.tenant_id, user, passphrase_text.to_string())
                    .await;
                Err(err)
            }
        }
    }

    // ---- sync ----

    pub async fn sync_status(&self) -> AppResult<SyncStatus> {
        let ctx = self.ctx()?;
        self.refresh_counts(&ctx).await;
        Ok(self.status.borrow().clone())
    }

    /// Puts the outbox counts into the status at once (the engine refreshes them only as it syncs).
    async fn refresh_counts(&self, ctx: &Ctx) {
        if let Ok(counts) = ctx.store.run(|s| s.pending_counts()).await {
            self.status.send_modify(|s| {
                s.pending = counts.pending;
                s.refused = counts.refused;
                s.oldest_pending_age_ms = counts.oldest_pending_age_ms;
            });
        }
    }

    /// Starts a sync in the background and returns at once.
    pub async fn sync_now(&self) -> AppResult<()> {
        match self.ctx()?.store {
            StoreHandle::Engine(engine) => {
                engine.sync_now();
                Ok(())
            }
            StoreHandle::Local(_) => Err(CommandError::new(
                "sync.needs_sign_in",
                "sign in to the server to sync this file",
            )),
        }
    }

    pub async fn inbox(&self) -> AppResult<Vec<InboxItem>> {
        self.ctx()?.store.run(|s| s.inbox()).await
    }

    pub async fn inbox_retry(&self, change_id: ChangeId) -> AppResult<()> {
        let ctx = self.ctx()?;
        ctx.require_writer("retry changes")?;
        ctx.store.run(move |s| s.retry_refused(change_id)).await?;
        self.after_inbox_change(&ctx).await;
        Ok(())
    }

    pub async fn inbox_discard(&self, change_id: ChangeId) -> AppResult<()> {
        let ctx = self.ctx()?;
        ctx.require_writer("discard changes")?;
        ctx.store.run(move |s| s.discard_refused(change_id)).await?;
        self.after_inbox_change(&ctx).await;
        Ok(())
    }

    pub async fn inbox_edit(
        &self,
        change_id: ChangeId,
        payload: serde_json::Value,
    ) -> AppResult<()> {
        let ctx = self.ctx()?;
        ctx.require_writer("edit changes")?;
        ctx.store
            .run(move |s| s.edit_refused(change_id, payload).map(|_| ()))
            .await?;
        self.after_inbox_change(&ctx).await;
        Ok(())
    }

    async fn after_inbox_change(&self, ctx: &Ctx) {
        ctx.store.wrote();
        self.refresh_counts(ctx).await;
    }

    // ---- field ----

    pub async fn storms(&self) -> AppResult<Vec<Storm>> {
        self.ctx()?.store.run(|s| s.storms()).await
    }

    pub async fn territories(&self, storm_id: Option<StormId>) -> AppResult<Vec<Territory>> {
        self.ctx()?
            .store
            .run(move |s| s.territories(storm_id))
            .await
    }

    pub async fn ranked_properties(&self, query: PropertyQuery) -> AppResult<Vec<RankedProperty>> {
        let query = local_store::PropertyQuery::from(query);
        let rows = self
            .ctx()?
            .store
            .run(move |s| s.ranked_properties(&query))
            .await?;
        Ok(rows.into_iter().map(RankedProperty::from).collect())
    }

    pub async fn property_count(&self, query: PropertyQuery) -> AppResult<i64> {
        let query = local_store::PropertyQuery::from(query);
        self.ctx()?
            .store
            .run(move |s| s.property_count(&query))
            .await
    }

    pub async fn property_detail(&self, property_id: PropertyId) -> AppResult<PropertyDetail> {
        self.ctx()?
            .store
            .run(move |s| {
                let property = s
                    .property(property_id)?
                    .ok_or_else(|| StoreError::NotFound {
                        entity: "property",
                        id: property_id.to_string(),
                    })?;
                let score = s.score(property_id)?;
                let timeline = s.timeline(property_id)?;
                let sync_state = s.record_sync_state(Entity::Property, property_id.0)?;
                let policy = crate::policy::storm_mode(s, property.storm_id, None)?;
                // The score's data watermark is a server sequence this laptop cannot compare its
                // pushes against, so freshness is judged by time: work logged here after the model
                // was trained is not in the score yet.
                let score_fresh = score
                    .as_ref()
                    .map(|score| timeline.iter().all(|entry| entry.at() <= score.trained_at));
                Ok(PropertyDetail {
                    property,
                    score,
                    score_fresh,
                    sync_state,
                    timeline,
                    policy,
                })
            })
            .await
    }

    pub async fn log_touch(
        &self,
        property_id: PropertyId,
        storm_id: StormId,
        channel: Channel,
        result: TouchResult,
        notes: String,
    ) -> AppResult<JourneyTouch> {
        let ctx = self.ctx()?;
        ctx.require_writer("log touches")?;
        let touch = JourneyTouch {
            id: TouchId::generate(),
            property_id,
            storm_id,
            user_id: ctx.author()?,
            device_id: ctx.device_id,
            channel,
            result,
            notes,
            occurred_at: Timestamp::now(),
        };
        let stored = touch.clone();
        ctx.store
            .run(move |s| {
                require_property(s, property_id)?;
                s.add_touch(&stored)
            })
            .await?;
        self.after_write(&ctx).await;
        Ok(touch)
    }

    pub async fn log_outcome(
        &self,
        property_id: PropertyId,
        storm_id: StormId,
        converted: bool,
        contract_value_cents: i64,
    ) -> AppResult<Outcome> {
        let ctx = self.ctx()?;
        ctx.require_writer("log outcomes")?;
        let outcome = Outcome {
            id: OutcomeId::generate(),
            property_id,
            storm_id,
            converted,
            contract_value: domain::Cents(contract_value_cents),
            occurred_at: Timestamp::now(),
        };
        let stored = outcome.clone();
        ctx.store
            .run(move |s| {
                require_property(s, property_id)?;
                s.add_outcome(&stored)
            })
            .await?;
        self.after_write(&ctx).await;
        Ok(outcome)
    }

    #[allow(clippy::too_many_arguments)] // One parameter per bridge argument, as the contract names them.
    pub async fn decide(
        &self,
        property_id: PropertyId,
        storm_id: StormId,
        decision: Decision,
        mode: PolicyMode,
        is_override: bool,
        reason: Option<String>,
    ) -> AppResult<PolicyDecision> {
        let ctx = self.ctx()?;
        ctx.require_writer("record decisions")?;
        if is_override {
            ctx.require(
                &[Role::Admin, Role::CrewChief],
                "override the policy (a crew chief or an admin can)",
            )?;
        }
        let author = ctx.author()?;
        let record = ctx
            .store
            .run(move |s| {
                require_property(s, property_id)?;
                let score = s.score(property_id)?;
                let decision = PolicyDecision {
                    id: DecisionId::generate(),
                    property_id,
                    storm_id,
                    decision,
                    mode,
                    uplift_score: score.as_ref().map(|s| s.uplift),
                    model_version: score.map(|s| s.model_version),
                    reason: reason.filter(|r| !r.trim().is_empty()),
                    is_override,
                    decided_by: author,
                    decided_at: Timestamp::now(),
                };
                s.add_decision(&decision)?;
                Ok(decision)
            })
            .await?;
        self.after_write(&ctx).await;
        Ok(record)
    }

    async fn after_write(&self, ctx: &Ctx) {
        self.after_inbox_change(ctx).await;
    }

    // ---- crew chief ----

    pub async fn crew_day(
        &self,
        crew_id: Option<domain::CrewId>,
        day: String,
    ) -> AppResult<local_store::CrewDaySummary> {
        let ctx = self.ctx()?;
        ctx.require(ANY_ROLE, "see the crew day")?;
        ctx.store.run(move |s| s.crew_day(crew_id, &day)).await
    }

    /// The laptops' sync health: from the server (an admin's every device, a chief's crews' devices),
    /// with this laptop's own pending and refused counts merged into its row. When the server cannot be
    /// asked (offline, not signed in), this laptop alone, saying why; the server refusing the role is
    /// an error like any other.
    pub async fn crew_sync_health(&self) -> AppResult<CrewSyncHealth> {
        let ctx = self.ctx()?;
        ctx.require(
            &[Role::Admin, Role::CrewChief],
            "see the laptops' sync health",
        )?;
        let local = self.this_laptop_health(&ctx).await?;
        let answer = Self::on_server(&ctx, |client, token| async move {
            client.admin_devices(&token).await
        })
        .await;
        match answer {
            Ok(report) => Ok(server_views::device_health(report, local)),
            Err(e) if e.code == format!("server.{}", ErrorCode::Forbidden) => Err(e),
            Err(e) => Ok(CrewSyncHealth {
                from_server: false,
                server_error: Some(e),
                as_of_ms: Timestamp::now().millis(),
                devices: vec![local],
            }),
        }
    }

    /// This laptop's own figures: what it still holds, its inbox, its last successful sync.
    async fn this_laptop_health(&self, ctx: &Ctx) -> AppResult<DeviceSyncHealth> {
        let revoked = self.status.borrow().connectivity == Connectivity::Revoked;
        let user_name = ctx.email.clone().unwrap_or_else(|| ctx.user.clone());
        let device_id = ctx.device_id;
        let device_name = self.device_name.clone();
        ctx.store
            .run(move |s| {
                let counts = s.pending_counts()?;
                let last_ok = s
                    .recent_syncs(u32::try_from(local_store::SYNC_LOG_KEEP).unwrap_or(u32::MAX))?
                    .into_iter()
                    .find(|e| e.outcome == "ok")
                    .map(|e| e.started_at.millis() + e.elapsed_ms);
                Ok(DeviceSyncHealth {
                    device_id,
                    device_name,
                    user_name,
                    this_laptop: true,
                    status: if revoked {
                        domain::DeviceStatus::Revoked
                    } else {
                        domain::DeviceStatus::Active
                    },
                    last_sync_at_ms: last_ok,
                    last_push_at_ms: None,
                    last_push_changes: None,
                    last_pull_at_ms: None,
                    pending: Some(counts.pending),
                    refused: Some(counts.refused),
                    refused_total: None,
                    last_refused_at_ms: None,
                })
            })
            .await
    }

    // ---- office ----

    pub async fn users(&self) -> AppResult<Vec<User>> {
        let ctx = self.ctx()?;
        ctx.require(ANY_ROLE, "list users")?;
        ctx.store.run(|s| s.cached_users()).await
    }

    pub async fn crews(&self) -> AppResult<Vec<Crew>> {
        let ctx = self.ctx()?;
        ctx.require(ANY_ROLE, "list crews")?;
        ctx.store.run(|s| s.cached_crews()).await
    }

    pub async fn storm_create(&self, new: NewStorm) -> AppResult<Storm> {
        let ctx = self.ctx()?;
        ctx.require(&[Role::Admin], "create storms")?;
        let storm = Storm {
            id: StormId::generate(),
            event_id: new.event_id.trim().to_owned(),
            name: new.name.trim().to_owned(),
            started_at: Timestamp::from_millis(new.started_at),
            ended_at: new.ended_at.map(Timestamp::from_millis),
            hail_size_in: new.hail_size_in,
            wind_mph: new.wind_mph,
            affected_area: new.affected_area,
            status: StormStatus::Active,
        };
        storm.validate(Timestamp::now())?;
        let stored = storm.clone();
        ctx.store.run(move |s| s.add_storm(&stored)).await?;
        self.after_write(&ctx).await;
        Ok(storm)
    }

    /// Imports properties from CSV text. Any invalid row imports nothing; the rows' errors come back in
    /// the report (a header problem is reported on line 1).
    pub async fn property_import_csv(
        &self,
        storm_id: StormId,
        csv_text: String,
    ) -> AppResult<ImportReport> {
        let ctx = self.ctx()?;
        ctx.require(&[Role::Admin], "import properties")?;
        let report = ctx
            .store
            .run(move |s| {
                if !s.storms()?.iter().any(|storm| storm.id == storm_id) {
                    return Err(StoreError::NotFound {
                        entity: "storm",
                        id: storm_id.to_string(),
                    });
                }
                let parsed = csv_import::parse_properties(csv_text.as_bytes(), storm_id, s.now());
                let rows = match parsed {
                    Ok(rows) => rows,
                    Err(err) => return Ok(import_errors(err)),
                };
                // The store refuses an external id already in the storm; that is a row error too.
                let mut errors = Vec::new();
                for row in &rows {
                    let p = &row.property;
                    if s.property_by_external_id(storm_id, &p.external_id)?
                        .is_some()
                    {
                        errors.push(ImportLineError {
                            line: row.line,
                            field: "external_id".into(),
                            message: format!(
                                "external_id {} is already in this storm",
                                p.external_id
                            ),
                        });
                    }
                }
                if !errors.is_empty() {
                    return Ok(ImportReport {
                        imported: 0,
                        errors,
                    });
                }
                let properties: Vec<_> = rows.into_iter().map(|r| r.property).collect();
                s.import_properties(&properties)?;
                Ok(ImportReport {
                    imported: u32::try_from(properties.len()).unwrap_or(u32::MAX),
                    errors: Vec::new(),
                })
            })
            .await?;
        if report.imported > 0 {
            self.after_write(&ctx).await;
        }
        Ok(report)
    }

    /// Runs an authorised call against the server this file is signed in to (the office's
    /// server-computed views). A file that never signed in has no server to ask.
    async fn on_server<T, F, Fut>(ctx: &Ctx, call: F) -> AppResult<T>
    where
        F: Fn(SyncClient, Zeroizing<String>) -> Fut,
        Fut: std::future::Future<Output = Result<T, sync_client::ClientError>>,
    {
        match &ctx.store {
            StoreHandle::Engine(engine) => Ok(engine.authorized(call).await?),
            StoreHandle::Local(_) => Err(CommandError::new(
                "sync.needs_sign_in",
                "sign in to the server to see this",
            )),
        }
    }

    /// The storm's experiment as the office screen shows it (`GET /v1/admin/storms/{id}/experiment`);
    /// null when the storm has none yet.
    pub async fn experiment_summary(&self, storm_id: StormId) -> AppResult<serde_json::Value> {
        let ctx = self.ctx()?;
        ctx.require(OFFICE_READERS, "see experiments")?;
        let answer = Self::on_server(&ctx, move |client, token| async move {
            client.admin_experiment_summary(&token, storm_id).await
        })
        .await;
        match answer {
            Ok(summary) => Ok(server_views::experiment_summary(&summary)),
            Err(e) if e.code == format!("server.{}", ErrorCode::NoExperiment) => {
                Ok(serde_json::Value::Null)
            }
            Err(e) => Err(e),
        }
    }

    /// Starts the storm's experiment on the server (`POST /v1/admin/storms/{id}/experiment`).
    pub async fn experiment_create(
        &self,
        storm_id: StormId,
        treatment_share: f64,
    ) -> AppResult<serde_json::Value> {
        let ctx = self.ctx()?;
        ctx.require(&[Role::Admin], "set up experiments")?;
        let answer = Self::on_server(&ctx, move |client, token| async move {
            client
                .admin_create_experiment(&token, storm_id, treatment_share)
                .await
        })
        .await;
        match answer {
            Ok(created) => Ok(created["experiment"].clone()),
            // Arms never change once made: say so in the words the office screen knows.
            Err(e) if e.code == format!("server.{}", ErrorCode::Conflict) => Err(
                CommandError::new("experiment.exists", "this storm already has an experiment"),
            ),
            Err(e) => Err(e),
        }
    }

    /// The storm's scores as this laptop has them (synced from the server) and the server's data-health
    /// readings over them (`GET /v1/admin/storms/{id}/health`), with their runbooks.
    pub async fn uplift_distribution(&self, storm_id: StormId) -> AppResult<serde_json::Value> {
        let ctx = self.ctx()?;
        ctx.require(OFFICE_READERS, "see the uplift distribution")?;
        let health = Self::on_server(&ctx, move |client, token| async move {
            client.admin_storm_health(&token, storm_id).await
        })
        .await?;
        let scores = ctx
            .store
            .run(move |s| {
                let query = local_store::PropertyQuery {
                    storm_id: Some(storm_id),
                    limit: u32::MAX,
                    ..local_store::PropertyQuery::default()
                };
                Ok(s.ranked_properties(&query)?
                    .into_iter()
                    .filter_map(|r| r.uplift)
                    .collect::<Vec<f64>>())
            })
            .await?;
        Ok(serde_json::json!({
            "scores": scores,
            "readings": server_views::health_readings(&health),
        }))
    }

    /// Metered usage this period against the plan (`GET /v1/admin/usage`). A server without the
    /// route answers 404, which the office sees as "this server does not report usage".
    pub async fn usage(&self) -> AppResult<serde_json::Value> {
        let ctx = self.ctx()?;
        ctx.require(&[Role::Admin, Role::Viewer], "see usage")?;
        let answer = Self::on_server(&ctx, |client, token| async move {
            client.admin_usage(&token).await
        })
        .await;
        match answer {
            Ok(usage) => server_views::usage_report(&usage).ok_or_else(|| {
                CommandError::new(
                    "app.usage_unreadable",
                    "the server's usage report is not in a shape this app can show",
                )
            }),
            Err(e) if e.code == format!("server.{}", ErrorCode::NotFound) => {
                Err(CommandError::new(
                    "app.usage_unavailable",
                    "this server does not report usage yet",
                ))
            }
            Err(e) => Err(e),
        }
    }
}

/// The server's admin answers reshaped into the bridge's office views (`ui/src/lib/backend/types.ts`:
/// ExperimentSummary, HealthReading, UsageReport). Pure functions over JSON, so they are unit-tested
/// without a server.
mod server_views {
    use serde_json::{Value, json};

    use super::{CrewSyncHealth, DeviceSyncHealth};

    /// The server's device list with this laptop's own row (`local`) merged in: the server's times and
    /// refusals, this laptop's pending and inbox counts and its last successful sync when later. A laptop
    /// the server does not list (another crew's admin laptop, say) still shows its own row first.
    pub fn device_health(
        report: sync_client::DeviceHealthReport,
        local: DeviceSyncHealth,
    ) -> CrewSyncHealth {
        let mut devices: Vec<DeviceSyncHealth> = report
            .devices
            .into_iter()
            .map(|d| {
                let push = d.last_push_at.map(|t| t.millis());
                let pull = d.last_pull_at.map(|t| t.millis());
                DeviceSyncHealth {
                    device_id: d.device_id,
                    device_name: d.device_name,
                    user_name: d.user_name,
                    this_laptop: false,
                    status: d.status,
                    last_sync_at_ms: push.max(pull),
                    last_push_at_ms: push,
                    last_push_changes: d.last_push_changes.map(i64::from),
                    last_pull_at_ms: pull,
                    pending: None,
                    refused: None,
                    refused_total: Some(d.refused_changes_total),
                    last_refused_at_ms: d.last_refused_at.map(|t| t.millis()),
                }
            })
            .collect();
        match devices.iter_mut().find(|d| d.device_id == local.device_id) {
            Some(mine) => {
                mine.this_laptop = true;
                mine.pending = local.pending;
                mine.refused = local.refused;
                mine.last_sync_at_ms = mine.last_sync_at_ms.max(local.last_sync_at_ms);
            }
            None => devices.insert(0, local),
        }
        CrewSyncHealth {
            from_server: true,
            server_error: None,
            as_of_ms: report.at,
            devices,
        }
    }

    /// `{experiment, treatment, control, lift, model}` → `{storm_id, treatment_share, treated, control,
    /// lift, model}`; arms count the rows with an outcome (the lift's denominators).
    pub fn experiment_summary(v: &Value) -> Value {
        let arm = |a: &Value| json!({ "rows": a["with_outcome"], "conversions": a["conversions"] });
        let model = &v["model"];
        json!({
            "storm_id": v["experiment"]["storm_id"],
            "treatment_share": v["experiment"]["treatment_share"],
            "treated": arm(&v["treatment"]),
            "control": arm(&v["control"]),
            "lift": v["lift"],
            "model": if model.is_object() {
                json!({
                    "version": model["version"],
                    "learner": model["learner"],
                    "trained_at": model["trained_at"],
                    "qini": model["qini"],
                    "auuc": model["auuc"],
                    "uplift_at_30": model["uplift_at_30"],
                })
            } else {
                Value::Null
            },
        })
    }

    /// The health route's stored readings as the screen's `HealthReading`s.
    pub fn health_readings(v: &Value) -> Vec<Value> {
        v["readings"]
            .as_array()
            .map(|readings| {
                readings
                    .iter()
                    .map(|r| {
                        json!({
                            "check": r["check"],
                            "value": r["value"],
                            "expected_low": r["expected_low"],
                            "expected_high": r["expected_high"],
                            "status": r["status"],
                            "runbook": r["runbook"],
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The usage route's answer as a `UsageReport`: a plan and its items (kind, used, soft and hard
    /// limits); None when the answer lacks them.
    pub fn usage_report(v: &Value) -> Option<Value> {
        let plan = v["plan"].as_str()?;
        let items = v["items"]
            .as_array()?
            .iter()
            .map(|item| {
                Some(json!({
                    "kind": item["kind"].as_str()?,
                    "used": item["used"].as_f64()?,
                    "soft_limit": item["soft_limit"].as_f64()?,
                    "hard_limit": item["hard_limit"].as_f64()?,
                }))
            })
            .collect::<Option<Vec<Value>>>()?;
        let period_start = v["period_start_ms"]
            .as_i64()
            .or_else(|| v["period_start"].as_i64())?;
        Some(json!({
            "plan": plan,
            "period_start_ms": period_start,
            "items": items,
            "recommendation": v["recommendation"].as_str(),
        }))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_server_experiment_becomes_the_office_summary() {
            let server = json!({
                "experiment": {"id": "e", "storm_id": "s", "treatment_share": 0.8, "seed": 1, "started_at": 5},
                "treatment": {"assigned": 80, "with_outcome": 60, "conversions": 15, "conversion_rate": 0.25},
                "control": {"assigned": 20, "with_outcome": 18, "conversions": 2, "conversion_rate": 0.11},
                "lift": {"treated_rate": 0.25, "control_rate": 0.11, "lift": 0.14, "ci_low": 0.01, "ci_high": 0.3, "z": 2.1, "p_value": 0.03},
                "model": {"id": "m", "version": "v7", "learner": "x_learner_gbt", "trained_at": 9, "training_rows": 70,
                          "data_watermark": 3, "qini": 0.1, "auuc": 0.2, "uplift_at_30": 0.05},
            });
            let view = experiment_summary(&server);
            assert_eq!(view["storm_id"], "s");
            assert_eq!(view["treatment_share"], 0.8);
            assert_eq!(view["treated"], json!({"rows": 60, "conversions": 15}));
            assert_eq!(view["control"], json!({"rows": 18, "conversions": 2}));
            assert_eq!(view["lift"]["ci_low"], 0.01);
            assert_eq!(view["model"]["version"], "v7");
            assert_eq!(view["model"].get("training_rows"), None);
            let no_model =
                experiment_summary(&json!({"experiment": {}, "lift": null, "model": null}));
            assert_eq!(no_model["model"], Value::Null);
            assert_eq!(no_model["lift"], Value::Null);
        }

        #[test]
        fn readings_and_usage_keep_what_the_screens_show() {
            let health = json!({"readings": [{"id": "q", "storm_id": "s", "check": "uplift_mean", "value": 0.2,
                "expected_low": 0.1, "expected_high": 0.3, "status": "ok", "runbook": "retrain", "measured_at": 1}]});
            let readings = health_readings(&health);
            assert_eq!(readings.len(), 1);
            assert_eq!(readings[0]["runbook"], "retrain");
            assert_eq!(readings[0].get("id"), None);
            assert!(health_readings(&json!({})).is_empty());

            let usage = json!({"plan": "standard", "period_start_ms": 100, "recommendation": null,
                "items": [{"kind": "events_synced", "used": 5, "soft_limit": 10, "hard_limit": 12}]});
            let report = usage_report(&usage).expect("a report");
            assert_eq!(report["items"][0]["kind"], "events_synced");
            assert_eq!(report["recommendation"], Value::Null);
            assert_eq!(usage_report(&json!({"plan": "standard"})), None);
            assert_eq!(
                usage_report(
                    &json!({"plan": "x", "period_start_ms": 1, "items": [{"kind": "requests"}]})
                ),
                None
            );
        }
    }
}

fn require_property(s: &TenantStore, id: PropertyId) -> Result<(), StoreError> {
    match s.property(id)? {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound {
            entity: "property",
            id: id.to_string(),
        }),
    }
}

fn import_errors(err: CsvImportError) -> ImportReport {
    let errors = match err {
        CsvImportError::InvalidRows { rows } => rows
            .into_iter()
            .map(|r| ImportLineError {
                line: r.line,
                field: r.field,
                message: r.message,
            })
            .collect(),
        CsvImportError::WrongColumns { .. } => vec![ImportLineError {
            line: 1,
            field: "header".into(),
            message: err.to_string(),
        }],
        CsvImportError::Unreadable { .. } | CsvImportError::TooManyRows { .. } => {
            vec![ImportLineError {
                line: 1,
                field: String::new(),
                message: err.to_string(),
            }]
        }
    };
    ImportReport {
        imported: 0,
        errors,
    }
}

#[cfg(test)]
mod tests {
    //! The facade against real SQLCipher files in temp dirs. Sign-in needs a server and is left to the
    //! end-to-end tests; a signed-in file is simulated by storing a server account directly.

    use super::*;

    const PASS: &str = "storm-season-2026";
    /// Nothing listens here: the engine's agent fails fast (it has no refresh token anyway).
    const NO_SERVER: &str = "http://127.0.0.1:9";

    struct Fixture {
        _dir: tempfile::TempDir,
        app: App,
        tenant: domain::TenantId,
    }

    fn code<T: std::fmt::Debug>(result: AppResult<T>) -> String {
        result.expect_err("the command should fail").code
    }

    /// A tenant file unlocked by `sam`, signed in with `role` (None: never signed in).
    async fn fixture(role: Option<Role>) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = DataDir::new(dir.path()).expect("data dir");
        let app = App::new(data_dir.clone(), EngineConfig::default(), "test laptop");
        let created = app
            .create_tenant("Summit Roofing".into(), "sam".into(), PASS.into())
            .await
            .expect("create tenant");
        assert_eq!(created.recovery_key.len(), 64);
        let tenant = created.tenant.tenant_id;
        if let Some(role) = role {
            let mut store = data_dir
                .open(tenant, Some("sam"), &Passphrase::new(PASS))
                .expect("open");
            store
                .set_server_account(&ServerAccount {
                    server_url: NO_SERVER.into(),
                    tenant_slug: "summit".into(),
                    email: "sam@summit.example".into(),
                    user_id: UserId::generate(),
                    role,
                    crew_id: None,
                    signed_in_at: Timestamp::now(),
                })
                .expect("account");
        }
        let session = app
            .unlock(tenant, "sam".into(), PASS.into())
            .await
            .expect("unlock");
        assert_eq!(session.role, role);
        assert_eq!(session.signed_in, role.is_some());
        Fixture {
            _dir: dir,
            app,
            tenant,
        }
    }

    /// Today's UTC date as YYYY-MM-DD (Howard Hinnant's civil-from-days).
    fn utc_today() -> String {
        let z = Timestamp::now().millis().div_euclid(86_400_000) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        format!("{year:04}-{month:02}-{day:02}")
    }

    fn new_storm() -> NewStorm {
        NewStorm {
            event_id: "NWS-1".into(),
            name: "May hail".into(),
            started_at: Timestamp::now().millis() - 86_400_000,
            ended_at: None,
            hail_size_in: 1.75,
            wind_mph: 60.0,
            affected_area: "north side".into(),
        }
    }

    const CSV: &str = "external_id,address,latitude,longitude,roof_age_years\nP-1,1 Elm St,39.1,-94.5,12\nP-2,2 Oak Ave,39.2,-94.6,\n";

    #[tokio::test(flavor = "multi_thread")]
    async fn tenant_files_lock_and_unlock_with_stable_error_codes() {
        let f = fixture(None).await;
        let tenants = f.app.list_tenants().await.expect("list");
        assert_eq!(tenants.len(), 1);
        assert!(f.app.current_session().await.expect("session").is_some());
        f.app.lock().await.expect("lock");
        assert_eq!(f.app.current_session().await.expect("session"), None);
        assert_eq!(code(f.app.storms().await), "session.locked");
        assert_eq!(
            code(
                f.app
                    .unlock(f.tenant, "sam".into(), "not the passphrase".into())
                    .await
            ),
            "store.wrong_passphrase"
        );
        assert_eq!(
            code(f.app.unlock(f.tenant, "nobody".into(), PASS.into()).await),
            "store.unknown_user"
        );
        assert_eq!(
            code(
                f.app
                    .create_tenant("X".into(), "sam".into(), "short".into())
                    .await
            ),
            "store.weak_passphrase"
        );
        let session = f
            .app
            .unlock(f.tenant, "sam".into(), PASS.into())
            .await
            .expect("unlock again");
        assert_eq!(session.tenant_name, "Summit Roofing");
        let json = serde_json::to_value(&session).expect("json");
        assert_eq!(json["role"], serde_json::Value::Null);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_file_not_signed_in_reads_but_cannot_write_or_sync() {
        let f = fixture(None).await;
        assert!(f.app.storms().await.expect("storms").is_empty());
        assert_eq!(
            f.app.users().await.map(|_| ()).expect_err("no role").code,
            "session.forbidden"
        );
        assert_eq!(
            code(f.app.storm_create(new_storm()).await),
            "session.forbidden"
        );
        assert_eq!(code(f.app.sync_now().await), "sync.needs_sign_in");
        let status = f.app.sync_status().await.expect("status");
        assert_eq!(status.connectivity, Connectivity::NeedsSignIn);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_admin_creates_a_storm_imports_ranks_and_logs_work() {
        let f = fixture(Some(Role::Admin)).await;
        let storm = f.app.storm_create(new_storm()).await.expect("storm");
        assert_eq!(f.app.storms().await.expect("storms"), vec![storm.clone()]);

        let bad = f
            .app
            .property_import_csv(
                storm.id,
                "external_id,address,latitude,longitude\nP-9,9 Ash,not-a-number,1\n".into(),
            )
            .await
            .expect("report");
        assert_eq!(bad.imported, 0);
        assert_eq!(bad.errors.len(), 1);
        assert_eq!(bad.errors[0].line, 2);
        assert_eq!(bad.errors[0].field, "latitude");
        let header = f
            .app
            .property_import_csv(storm.id, "address,colour\n".into())
            .await
            .expect("report");
        assert_eq!(header.errors[0].line, 1);
        let ok = f
            .app
            .property_import_csv(storm.id, CSV.into())
            .await
            .expect("import");
        assert_eq!(
            ok,
            ImportReport {
                imported: 2,
                errors: vec![]
            }
        );
        let again = f
            .app
            .property_import_csv(storm.id, CSV.into())
            .await
            .expect("report");
        assert_eq!(
            again.imported, 0,
            "external ids already present import nothing"
        );

        let query = PropertyQuery {
            storm_id: Some(storm.id),
            search: Some("elm".into()),
            ..PropertyQuery::default()
        };
        assert_eq!(f.app.property_count(query.clone()).await.expect("count"), 1);
        let rows = f.app.ranked_properties(query).await.expect("rows");
        let property = rows[0].property.clone();
        assert_eq!(property.address, "1 Elm St");
        assert_eq!(
            f.app
                .property_count(PropertyQuery::default())
                .await
                .expect("count"),
            2
        );

        let touch = f
            .app
            .log_touch(
                property.id,
                storm.id,
                Channel::DoorKnock,
                TouchResult::Interested,
                "back at 5".into(),
            )
            .await
            .expect("touch");
        f.app
            .log_outcome(property.id, storm.id, true, 1_250_000)
            .await
            .expect("outcome");
        assert_eq!(
            code(f.app.log_outcome(property.id, storm.id, false, 5).await),
            "validation.inconsistent"
        );
        assert_eq!(
            code(
                f.app
                    .decide(
                        property.id,
                        storm.id,
                        Decision::Treat,
                        PolicyMode::Moderate,
                        true,
                        Some("  ".into())
                    )
                    .await
            ),
            "validation.required"
        );
        f.app
            .decide(
                property.id,
                storm.id,
                Decision::Treat,
                PolicyMode::Moderate,
                true,
                Some("owner asked".into()),
            )
            .await
            .expect("override");

        let detail = f.app.property_detail(property.id).await.expect("detail");
        assert_eq!(detail.timeline.len(), 3);
        assert!(matches!(
            &detail.timeline[0],
            TimelineEntry::Decision(_) | TimelineEntry::Touch(_)
        ));
        assert_eq!(detail.score, None);
        assert_eq!(detail.score_fresh, None);
        assert!(
            detail
                .timeline
                .iter()
                .any(|e| matches!(e, TimelineEntry::Touch(t) if t.id == touch.id))
        );
        assert_eq!(
            code(f.app.property_detail(PropertyId::generate()).await),
            "store.not_found"
        );
        assert_eq!(
            code(
                f.app
                    .log_touch(
                        PropertyId::generate(),
                        storm.id,
                        Channel::Call,
                        TouchResult::NoAnswer,
                        String::new()
                    )
                    .await
            ),
            "store.not_found"
        );

        let status = f.app.sync_status().await.expect("status");
        assert!(
            status.pending >= 5,
            "storm, two properties, touch, outcome, decision are pending"
        );
        // No server to ask (this file never signed in): this laptop alone, saying why.
        let health = f.app.crew_sync_health().await.expect("health");
        assert!(!health.from_server);
        assert_eq!(
            health.server_error.as_ref().map(|e| e.code.as_str()),
            Some("sync.needs_sign_in")
        );
        assert_eq!(health.devices.len(), 1);
        assert!(health.devices[0].this_laptop);
        assert_eq!(health.devices[0].pending, Some(status.pending));
        let day = f.app.crew_day(None, utc_today()).await.expect("crew day");
        assert_eq!(day.touches, 1);
        assert!(
            f.app.users().await.expect("users").is_empty(),
            "nothing pulled yet"
        );
        assert!(f.app.inbox().await.expect("inbox").is_empty());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn roles_gate_writes_and_server_views_need_a_working_sign_in() {
        let viewer = fixture(Some(Role::Viewer)).await;
        assert_eq!(
            code(viewer.app.storm_create(new_storm()).await),
            "session.forbidden"
        );
        let any = PropertyId::generate();
        let storm = StormId::generate();
        assert_eq!(
            code(
                viewer
                    .app
                    .log_touch(
                        any,
                        storm,
                        Channel::Call,
                        TouchResult::Talked,
                        String::new()
                    )
                    .await
            ),
            "session.forbidden"
        );
        // The office views ask the server; this file holds no refresh token, so it must sign in again.
        assert_eq!(
            code(viewer.app.experiment_summary(storm).await),
            "sync.needs_sign_in"
        );
        assert_eq!(code(viewer.app.usage().await), "sync.needs_sign_in");
        assert_eq!(
            code(viewer.app.experiment_create(storm, 0.5).await),
            "session.forbidden"
        );
        assert_eq!(
            code(viewer.app.crew_sync_health().await),
            "session.forbidden"
        );

        let field = fixture(Some(Role::FieldUser)).await;
        assert_eq!(
            code(
                field
                    .app
                    .decide(
                        any,
                        storm,
                        Decision::Hold,
                        PolicyMode::Conservative,
                        true,
                        Some("why".into())
                    )
                    .await
            ),
            "session.forbidden"
        );
        assert_eq!(
            code(field.app.crew_sync_health().await),
            "session.forbidden"
        );
        assert_eq!(
            code(field.app.uplift_distribution(storm).await),
            "session.forbidden"
        );
    }
}
