//! The sync engine: joins the tenant store to the sync client. One `sync_once` pushes the outbox in
//! batches (receipts settle each batch in one local transaction), then pulls pages (each page and its
//! cursor in one local transaction), so a crash at any point resumes where it stopped: nothing is
//! lost (the outbox row goes only when the server's receipt is stored) and nothing is doubled (the
//! server acknowledges a replayed change id as a duplicate). `run` is the background agent: it syncs
//! on "sync now", after local writes (debounced), on a timer, and when the server becomes reachable
//! again, backing off with jitter while it is not.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::{ChangeId, Hlc, TenantId, Timestamp};
use local_store::{DataDir, PulledText, TenantStore};
use sync_client::{ClientError, PushOutcome, RawPullPage, SyncClient, Transfer};
use sync_protocol::{Change, EntityKind, ErrorCode};
use tokio::sync::{Notify, watch};
use zeroize::Zeroizing;

use crate::backoff::{Backoff, unit_random};
use crate::status::{Connectivity, Phase, StatusError, SyncStatus};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub push_batch: usize,
    pub pull_limit: u32,
    pub backoff: Backoff,
    /// How often the agent syncs when nothing else triggers it.
    pub interval: Duration,
    /// How long the agent waits after a local write before syncing (writes come in bursts).
    pub debounce: Duration,
    pub client_version: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            // The protocol's largest: fewer round trips and transactions per change on both ends (a
            // week offline or a first sync is hundreds of thousands of rows).
            push_batch: sync_protocol::MAX_PUSH_CHANGES,
            pull_limit: sync_protocol::MAX_PULL_LIMIT,
            backoff: Backoff::default(),
            interval: Duration::from_secs(60),
            debounce: Duration::from_secs(2),
            client_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// Why a sync stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The server cannot be reached or is overloaded: retry later, nothing is lost.
    #[error("offline: {0}")]
    Offline(String),
    /// The sign-in has lapsed (refresh token expired or revoked); offline work is kept and pushed after
    /// the user signs in again.
    #[error("sign in again to sync: {0}")]
    NeedsSignIn(String),
    /// The server revoked this device; the tenant file has been wiped.
    #[error(
        "this laptop was revoked by an administrator; its tenant data has been removed from it"
    )]
    DeviceRevoked,
    /// The tenant is suspended: sync refused, data kept on both sides.
    #[error("the account is suspended: {0}")]
    TenantSuspended(String),
    /// The server needs a newer app.
    #[error("{0}")]
    UpgradeRequired(String),
    /// Any other refusal by the server.
    #[error("the server refused: {message} ({code})")]
    Server { code: ErrorCode, message: String },
    #[error("local store: {0}")]
    Store(#[from] local_store::StoreError),
    /// The tenant file is closed (after a wipe).
    #[error("the tenant file is closed")]
    Closed,
    /// This laptop's wall clock runs further ahead of the server's than the protocol allows, so the
    /// server refuses what it writes. Nothing is lost: the outbox keeps every change, and the first sync
    /// after the clock is corrected re-stamps and pushes them.
    #[error(
        "this laptop's clock is {} minutes ahead of the server (at most {} allowed); correct the clock (date, time and time zone) and sync again — nothing is lost",
        minutes(*ahead_ms),
        minutes(*max_skew_ms as i64)
    )]
    ClockAhead { ahead_ms: i64, max_skew_ms: u64 },
}

/// Milliseconds as whole minutes, rounded up: "1 minute ahead" for 30 s over the bound.
fn minutes(ms: i64) -> i64 {
    (ms.max(0) + 59_999) / 60_000
}

impl SyncError {
    /// A stable code for the status view.
    pub fn code(&self) -> String {
        match self {
            SyncError::Offline(_) => "sync.offline".into(),
            SyncError::NeedsSignIn(_) => "sync.needs_sign_in".into(),
            SyncError::DeviceRevoked => "sync.device_revoked".into(),
            SyncError::TenantSuspended(_) => "sync.tenant_suspended".into(),
            SyncError::UpgradeRequired(_) => "sync.upgrade_required".into(),
            SyncError::Server { code, .. } => format!("server.{code}"),
            SyncError::Store(e) => e.code(),
            SyncError::Closed => "sync.closed".into(),
            SyncError::ClockAhead { .. } => "sync.clock_ahead".into(),
        }
    }

    /// Whether waiting and trying again may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SyncError::Offline(_))
    }
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    pub pushed: u64,
    pub duplicates: u64,
    pub refused: u64,
    pub pulled: u64,
    pub push_batches: u64,
    pub pull_pages: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub elapsed_ms: u64,
}

/// A pushed batch's answer, waiting to be stored in the tenant file.
enum Settle {
    /// Receipts of an applied batch, and the server's clock after it.
    Applied(Vec<sync_protocol::Receipt>, domain::Hlc),
    /// The refused changes of a rolled-back batch (they move to the inbox).
    Refused(Vec<sync_protocol::Receipt>),
}

impl Settle {
    fn store(self, store: &mut TenantStore) -> Result<(), local_store::StoreError> {
        match self {
            Settle::Applied(receipts, hlc) => {
                store.apply_receipts(&receipts, Some(hlc)).map(|_| ())
            }
            Settle::Refused(refused) => store.apply_receipts(&refused, None).map(|_| ()),
        }
    }
}

/// How many push batches may be on their way at once (see `sync_inner`).
const PUSHES_IN_FLIGHT: usize = 2;

/// How many times one batch is sent again after a `conflict` answer before the sync stops with it, and
/// the pause before the first resend (doubled each time: 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s at most).
const PUSH_CONFLICT_RESENDS: u32 = 5;
const PUSH_CONFLICT_PAUSE: Duration = Duration::from_millis(100);

type PushResult = Result<(PushOutcome, Transfer), ClientError>;

/// A spawned push that is cancelled when dropped (a sync that stops on an error leaves no push
/// running behind it; the server applies such a batch whole or not at all, and a re-sent change is a
/// duplicate).
struct PushTask(tokio::task::JoinHandle<PushResult>);

impl PushTask {
    async fn join(mut self) -> PushResult {
        match (&mut self.0).await {
            Ok(result) => result,
            Err(e) => Err(ClientError::Network(format!("the push task stopped: {e}"))),
        }
    }
}

impl Drop for PushTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A pushed batch on its way.
struct InFlight {
    changes: Arc<Vec<Change>>,
    /// Nothing but append-only records: later batches may travel with it.
    append_only: bool,
    /// The access token it was sent with.
    token: Zeroizing<String>,
    /// How many times the server has answered this batch with `conflict` so far.
    conflicts: u32,
    task: PushTask,
}

impl InFlight {
    fn launch(
        client: &SyncClient,
        changes: impl Into<Arc<Vec<Change>>>,
        token: &Zeroizing<String>,
    ) -> Self {
        let changes: Arc<Vec<Change>> = changes.into();
        let append_only = changes
            .iter()
            .all(|c| c.entity.kind() == EntityKind::AppendOnly);
        let (client, batch, sent_with) = (client.clone(), Arc::clone(&changes), token.clone());
        let task = PushTask(tokio::spawn(async move {
            client.push(&sent_with, &batch).await
        }));
        Self {
            changes,
            append_only,
            token: token.clone(),
            conflicts: 0,
            task,
        }
    }
}

struct AccessToken {
    token: Zeroizing<String>,
    expires_at_ms: i64,
}

/// The engine of one open tenant file.
pub struct SyncEngine {
    store: Arc<Mutex<Option<TenantStore>>>,
    data_dir: DataDir,
    tenant_id: TenantId,
    client: SyncClient,
    config: EngineConfig,
    access: tokio::sync::Mutex<Option<AccessToken>>,
    status: watch::Sender<SyncStatus>,
    sync_now: Notify,
    local_write: Notify,
}

impl std::fmt::Debug for SyncEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncEngine")
            .field("tenant_id", &self.tenant_id)
            .field("server", &self.client.base_url())
            .finish_non_exhaustive()
    }
}

fn classify(err: ClientError) -> SyncError {
    match err.code() {
        Some(ErrorCode::DeviceRevoked) => SyncError::DeviceRevoked,
        Some(ErrorCode::TenantSuspended) => SyncError::TenantSuspended(err.to_string()),
        Some(ErrorCode::UpgradeRequired) => SyncError::UpgradeRequired(err.to_string()),
        Some(
            ErrorCode::TokenExpired
            | ErrorCode::TokenInvalid
            | ErrorCode::Unauthenticated
            | ErrorCode::InvalidCredentials,
        ) => SyncError::NeedsSignIn(err.to_string()),
        _ if err.is_retryable() => SyncError::Offline(err.to_string()),
        Some(code) => SyncError::Server {
            code,
            message: err.to_string(),
        },
        None => SyncError::Offline(err.to_string()),
    }
}

/// Whether the server refused the access token itself (not the refresh token, nor the device).
fn access_token_rejected(err: &ClientError) -> bool {
    matches!(
        err.code(),
        Some(ErrorCode::TokenExpired | ErrorCode::TokenInvalid)
    )
}

impl SyncEngine {
    /// An engine for an open tenant store talking to `client`'s server.
    pub fn new(
        store: TenantStore,
        data_dir: DataDir,
        client: SyncClient,
        config: EngineConfig,
    ) -> Arc<Self> {
        let tenant_id = store.tenant_id();
        let (status, _) = watch::channel(SyncStatus::default());
        let engine = Arc::new(Self {
            store: Arc::new(Mutex::new(Some(store))),
            data_dir,
            tenant_id,
            client,
            config,
            access: tokio::sync::Mutex::new(None),
            status,
            sync_now: Notify::new(),
            local_write: Notify::new(),
        });
        engine.refresh_counts_blocking();
        engine
    }

    /// Runs `f` on the store on a blocking thread (SQLite calls must not stall the async runtime).
    pub async fn with_store<T, F>(&self, f: F) -> Result<T, SyncError>
    where
        T: Send + 'static,
        F: FnOnce(&mut TenantStore) -> Result<T, local_store::StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || {
            let mut guard = store.lock().map_err(|_| SyncError::Closed)?;
            let store = guard.as_mut().ok_or(SyncError::Closed)?;
            f(store).map_err(SyncError::from)
        })
        .await
        .map_err(|_| SyncError::Closed)?
    }

    /// Closes the tenant file now (releasing its lock); later store calls fail with `Closed`. The
    /// shell calls it on lock, so the file can be reopened while the agent winds down.
    pub async fn close(&self) {
        let store = Arc::clone(&self.store);
        let _ = tokio::task::spawn_blocking(move || {
            if let Ok(mut guard) = store.lock() {
                guard.take();
            }
        })
        .await;
    }

    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }

    /// The current status.
    pub fn status(&self) -> SyncStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn subscribe(&self) -> watch::Receiver<SyncStatus> {
        self.status.subscribe()
    }

    /// Asks the agent to sync now.
    pub fn sync_now(&self) {
        self.sync_now.notify_one();
    }

    /// Tells the agent a local write happened (it syncs after the debounce).
    pub fn notify_local_write(&self) {
        self.local_write.notify_one();
    }

    fn update(&self, f: impl FnOnce(&mut SyncStatus)) {
        self.status.send_modify(f);
    }

    fn refresh_counts_blocking(&self) {
        let counts = self
            .store
            .lock()
            .ok()
            .and_then(|g| g.as_ref().and_then(|s| s.pending_counts().ok()));
        if let Some(c) = counts {
            self.update(|s| {
                s.pending = c.pending;
                s.refused = c.refused;
                s.oldest_pending_age_ms = c.oldest_pending_age_ms;
            });
        }
    }

    async fn refresh_counts(&self) {
        if let Ok(c) = self.with_store(|s| s.pending_counts()).await {
            self.update(|s| {
                s.pending = c.pending;
                s.refused = c.refused;
                s.oldest_pending_age_ms = c.oldest_pending_age_ms;
            });
        }
    }

    /// Stores a fresh token pair after sign-in (the refresh token goes into the encrypted file).
    pub async fn accept_tokens(&self, pair: &sync_protocol::TokenPair) -> Result<(), SyncError> {
        let refresh = Zeroizing::new(pair.refresh_token.clone());
        self.with_store(move |s| s.set_refresh_token(Some(refresh.as_str())))
            .await?;
        *self.access.lock().await = Some(AccessToken {
            token: Zeroizing::new(pair.access_token.clone()),
            expires_at_ms: pair.access_expires_at_ms,
        });
        self.update(|s| {
            if s.connectivity == Connectivity::NeedsSignIn {
                s.connectivity = Connectivity::Online;
            }
        });
        Ok(())
    }

    /// A valid access token: the cached one, or a new one from the stored refresh token.
    async fn access_token(&self, force_refresh: bool) -> Result<Zeroizing<String>, SyncError> {
        let mut access = self.access.lock().await;
        let now = Timestamp::now().millis();
        if !force_refresh
            && let Some(a) = access.as_ref()
            && a.expires_at_ms > now + 30_000
        {
            return Ok(a.token.clone());
        }
        let refresh = self
            .with_store(|s| s.refresh_token())
            .await?
            .ok_or_else(|| {
                SyncError::NeedsSignIn("this laptop has not signed in to the server yet".into())
            })?;
        let pair = self.client.refresh(&refresh).await.map_err(classify)?;
        let new_refresh = Zeroizing::new(pair.refresh_token.clone());
        // The rotated refresh token is stored before it is used: a crash here keeps a working token.
        self.with_store(move |s| s.set_refresh_token(Some(new_refresh.as_str())))
            .await?;
        let token = Zeroizing::new(pair.access_token.clone());
        *access = Some(AccessToken {
            token: token.clone(),
            expires_at_ms: pair.access_expires_at_ms,
        });
        Ok(token)
    }

    /// Runs one authorised call outside sync (the office's server-computed views) with this laptop's
    /// access token, and once more with a fresh token when the server rejects the cached one. Errors
    /// are classified as sync errors (offline, needs sign-in, `server.<code>`).
    pub async fn authorized<T, F, Fut>(&self, call: F) -> Result<T, SyncError>
    where
        F: Fn(SyncClient, Zeroizing<String>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let token = self.access_token(false).await?;
        match call(self.client.clone(), token).await {
            Err(e) if access_token_rejected(&e) => {
                let token = self.access_token(true).await?;
                call(self.client.clone(), token).await.map_err(classify)
            }
            other => other.map_err(classify),
        }
    }

    /// Closes the store and deletes this tenant's files from the laptop.
    async fn wipe(&self) {
        let store = Arc::clone(&self.store);
        let data_dir = self.data_dir.clone();
        let tenant = self.tenant_id;
        let _ = tokio::task::spawn_blocking(move || {
            if let Ok(mut guard) = store.lock() {
                // Dropping the store closes its connection and releases the file lock before deletion.
                guard.take();
            }
            data_dir.wipe_tenant(tenant)
        })
        .await;
        *self.access.lock().await = None;
    }

    /// One full sync: push everything pending, then pull everything new.
    pub async fn sync_once(&self) -> Result<SyncReport, SyncError> {
        let started = Instant::now();
        self.update(|s| {
            s.connectivity = Connectivity::Syncing;
            s.phase = Phase::Authenticating;
            s.push = Default::default();
            s.pull = Default::default();
            s.eta_ms = None;
        });
        let started_at = Timestamp::now();
        let mut report = SyncReport::default();
        let result = self
            .sync_inner(started, &mut report)
            .await
            .map(|()| report.clone());
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        let now = Timestamp::now().millis();
        match &result {
            Ok(_) => self.update(|s| {
                s.connectivity = Connectivity::Online;
                s.phase = Phase::Idle;
                s.eta_ms = None;
                s.last_success_at_ms = Some(now);
                s.last_error = None;
                s.consecutive_failures = 0;
            }),
            Err(err) => {
                if matches!(err, SyncError::DeviceRevoked) {
                    self.wipe().await;
                }
                let connectivity = match err {
                    SyncError::Offline(_) => Connectivity::Offline,
                    SyncError::NeedsSignIn(_) => Connectivity::NeedsSignIn,
                    SyncError::DeviceRevoked => Connectivity::Revoked,
                    _ => Connectivity::Error,
                };
                let error = StatusError {
                    code: err.code(),
                    message: err.to_string(),
                    at_ms: now,
                };
                self.update(|s| {
                    s.connectivity = connectivity;
                    s.phase = Phase::Idle;
                    s.eta_ms = None;
                    s.last_error = Some(error);
                    s.consecutive_failures = s.consecutive_failures.saturating_add(1);
                });
            }
        }
        let entry = local_store::SyncLogEntry {
            started_at,
            elapsed_ms: report.elapsed_ms as i64,
            outcome: if result.is_ok() {
                "ok".into()
            } else {
                "error".into()
            },
            error_code: result.as_ref().err().map(SyncError::code),
            pushed: report.pushed as i64,
            duplicates: report.duplicates as i64,
            refused: report.refused as i64,
            pulled: report.pulled as i64,
            bytes_sent: report.bytes_sent as i64,
            bytes_received: report.bytes_received as i64,
        };
        // After a remote wipe there is no file to log into; the status carries the outcome.
        let _ = self.with_store(move |s| s.record_sync(&entry)).await;
        self.refresh_counts().await;
        result
    }

    async fn sync_inner(&self, started: Instant, report: &mut SyncReport) -> Result<(), SyncError> {
        let mut token = self.access_token(false).await?;
        let mut refreshed = false;
        // The latest reading the server acknowledged in this sync (a floor for a re-stamp).
        let mut acknowledged: Option<Hlc> = None;
        // Changes stamped while this laptop's clock ran ahead are refused (`clock_skew`). The pull
        // below runs either way (it needs no clock). While the clock is still wrong the sync then stops
        // with a typed error that says by how much (the agent waits for a person rather than
        // retrying). Once it is right again, the outbox is re-stamped after everything the pull brought
        // and pushed again (see `clock_skew_bound` and `TenantStore::restamp_outbox`).
        let skewed = match self
            .push_outbox(
                started,
                report,
                &mut token,
                &mut refreshed,
                &mut acknowledged,
            )
            .await
        {
            Err(SyncError::Server {
                code: ErrorCode::ClockSkew,
                ..
            }) => Some(self.clock_skew_bound().await),
            other => other.map(|()| None)?,
        };
        self.update(|s| s.phase = Phase::Pulling);
        let cursor = self.with_store(|s| s.sync_state()).await?.cursor;
        let first = self
            .pull_page(&mut token, &mut refreshed, cursor.as_deref())
            .await?;
        // More than one page to come (a first sync, a long time offline): let the log grow until the
        // pull ends (see `TenantStore::set_long_pull`), and put the file back whatever the outcome.
        let long = first.0.has_more;
        if long {
            self.with_store(|s| s.set_long_pull(true)).await?;
        }
        let pulled = self
            .pull_pages(first, &mut token, &mut refreshed, report)
            .await;
        if long {
            let restored = self.with_store(|s| s.set_long_pull(false)).await;
            pulled?;
            restored?;
        } else {
            pulled?;
        }
        if let Some(bound) = skewed {
            let bound_ms = bound?;
            let restamped = self
                .with_store(move |s| s.restamp_outbox(bound_ms, acknowledged))
                .await?;
            tracing::info!(
                changes = restamped.changes,
                records = restamped.records,
                clock_reset = restamped.clock_reset,
                "re-stamped the outbox after this laptop's clock was corrected"
            );
            // A second refusal now is the server's clock moving back, not ours: it stops this sync.
            self.push_outbox(
                started,
                report,
                &mut token,
                &mut refreshed,
                &mut acknowledged,
            )
            .await?;
        }
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(())
    }

    /// Pushes the whole outbox in batches, storing each batch's receipts.
    async fn push_outbox(
        &self,
        started: Instant,
        report: &mut SyncReport,
        token: &mut Zeroizing<String>,
        refreshed: &mut bool,
        acknowledged: &mut Option<Hlc>,
    ) -> Result<(), SyncError> {
        let total = self
            .with_store(|s| s.pending_counts())
            .await?
            .pending
            .max(0) as u64;
        self.update(|s| {
            s.phase = Phase::Pushing;
            s.push.total = Some(total);
        });
        let batch = self.config.push_batch;
        // Up to two batches are in flight, so the server works on one while the other travels or
        // waits for its commit, and the laptop stores answers and reads the next batch meanwhile. A
        // batch only joins batches in flight that hold nothing but append-only records (touches,
        // outcomes, decisions): such a batch creates nothing a later batch could refer to and writes no
        // mutable record the other could be merging at the same time, so the two may commit in either
        // order. A batch that creates or edits a mutable record travels alone.
        let mut queue: VecDeque<InFlight> = VecDeque::new();
        let mut settle: Option<Settle> = None;
        let mut exhausted = false;
        loop {
            while !exhausted
                && queue.len() < PUSHES_IN_FLIGHT
                && queue.iter().all(|f| f.append_only)
            {
                let in_flight: HashSet<ChangeId> = queue
                    .iter()
                    .flat_map(|f| f.changes.iter().map(|c| c.id))
                    .collect();
                let previous = settle.take();
                let changes = self
                    .with_store(move |s| {
                        if let Some(previous) = previous {
                            previous.store(s)?;
                        }
                        // The batches in flight are still pending: read past them.
                        let rows = s.pending_changes(batch + in_flight.len())?;
                        Ok(rows
                            .into_iter()
                            .filter(|c| !in_flight.contains(&c.id))
                            .take(batch)
                            .collect::<Vec<_>>())
                    })
                    .await?;
                if changes.is_empty() {
                    exhausted = true;
                } else {
                    queue.push_back(InFlight::launch(&self.client, changes, token));
                }
            }
            let Some(oldest) = queue.pop_front() else {
                break;
            };
            let (outcome, transfer) = match oldest.task.join().await {
                Ok(ok) => ok,
                // An access token the server no longer accepts — expired, or signed with the key of a
                // server process that has since restarted without a shared key — is replaced from the
                // refresh token once; only a failed refresh means the user must sign in again. A batch
                // sent with a token already replaced is simply sent again with the new one.
                Err(e) if access_token_rejected(&e) && *oldest.token != **token => {
                    queue.push_front(InFlight::launch(&self.client, oldest.changes, token));
                    continue;
                }
                Err(e) if !*refreshed && access_token_rejected(&e) => {
                    *refreshed = true;
                    *token = self.access_token(true).await?;
                    queue.push_front(InFlight::launch(&self.client, oldest.changes, token));
                    continue;
                }
                // `conflict`: another push of some of these changes committed while this one ran —
                // usually this very batch, sent before a connection was cut and still being applied by
                // the server (which finishes a push whatever its client does) when the laptop sent it
                // again. Once that one has committed, the batch's changes it applied come back as
                // duplicates and the rest are applied, so the batch is sent again after a pause; only a
                // conflict that outlasts the resends stops the sync (the next sync starts over).
                Err(e)
                    if e.code() == Some(ErrorCode::Conflict)
                        && oldest.conflicts < PUSH_CONFLICT_RESENDS =>
                {
                    let pause = PUSH_CONFLICT_PAUSE * 2u32.pow(oldest.conflicts);
                    tracing::info!(
                        changes = oldest.changes.len(),
                        pause_ms = pause.as_millis() as u64,
                        "the server answered a push batch with conflict; sending it again"
                    );
                    tokio::time::sleep(pause).await;
                    let mut again = InFlight::launch(&self.client, oldest.changes, token);
                    again.conflicts = oldest.conflicts + 1;
                    queue.push_front(again);
                    continue;
                }
                Err(e) => {
                    let err = classify(e);
                    if matches!(
                        &err,
                        SyncError::Server {
                            code: ErrorCode::ClockSkew,
                            ..
                        }
                    ) {
                        // The outbox is about to be re-stamped: first store what the server did apply
                        // (the answer waiting here, and the batches still on their way), or those
                        // changes would be sent again under new readings, acknowledged as duplicates,
                        // and the records here would carry readings the server never saw.
                        let mut answers: Vec<Settle> = settle.take().into_iter().collect();
                        for later in queue.drain(..) {
                            if let Ok((outcome, _)) = later.task.join().await {
                                answers.push(match outcome {
                                    PushOutcome::Applied(r) => {
                                        report.pushed += r.receipts.len() as u64;
                                        *acknowledged = (*acknowledged).max(Some(r.server_hlc));
                                        Settle::Applied(r.receipts, r.server_hlc)
                                    }
                                    PushOutcome::Refused(r) => Settle::Refused(r.refused),
                                });
                            }
                        }
                        self.with_store(move |s| {
                            answers.into_iter().try_for_each(|answer| answer.store(s))
                        })
                        .await?;
                    }
                    return Err(err);
                }
            };
            report.push_batches += 1;
            report.bytes_sent += transfer.sent_bytes;
            report.bytes_received += transfer.received_bytes;
            let previous = settle.replace(match outcome {
                PushOutcome::Applied(response) => {
                    for r in &response.receipts {
                        match r.status {
                            sync_protocol::ReceiptStatus::Accepted => report.pushed += 1,
                            sync_protocol::ReceiptStatus::Duplicate => report.duplicates += 1,
                            sync_protocol::ReceiptStatus::Refused => report.refused += 1,
                        }
                    }
                    *acknowledged = (*acknowledged).max(Some(response.server_hlc));
                    Settle::Applied(response.receipts, response.server_hlc)
                }
                PushOutcome::Refused(refused) => {
                    // The batch was rolled back: the refused changes go to the inbox, the rest stay
                    // pending and are read again once this settles.
                    report.refused += refused.refused.len() as u64;
                    exhausted = false;
                    Settle::Refused(refused.refused)
                }
            });
            if let Some(previous) = previous {
                // Two answers arrived before the next read: store the older one now.
                self.with_store(move |s| previous.store(s)).await?;
            }
            let done = report.pushed + report.duplicates + report.refused;
            let elapsed = started.elapsed().as_millis() as u64;
            self.update(|s| {
                s.push.done = done;
                s.push.bytes = report.bytes_sent;
                s.eta_ms = SyncStatus::estimate_eta(done, total.max(done), elapsed);
            });
        }
        if let Some(last) = settle.take() {
            self.with_store(move |s| last.store(s)).await?;
        }
        Ok(())
    }

    /// After a `clock_skew` refusal: asks the server for its time (the handshake carries it) and
    /// returns the latest wall time it accepts now, its clock plus the allowed skew — if this laptop's
    /// wall clock is within that bound again, so that fresh readings from it will be accepted. If the
    /// clock is still too far ahead, re-stamping would only repeat the problem: the sync stops with
    /// [`SyncError::ClockAhead`], naming by how much.
    async fn clock_skew_bound(&self) -> Result<u64, SyncError> {
        let asked = self.with_store(|s| Ok(s.now())).await?;
        let hello = self
            .client
            .hello(&self.config.client_version)
            .await
            .map_err(classify)?;
        let answered = self.with_store(|s| Ok(s.now())).await?;
        // The server read its clock between our two readings: our clock is at most `answered - server`
        // ahead of it (the decision uses that bound) and about the midpoint's difference (the figure
        // shown).
        let at_most_ahead = answered.millis() - hello.server_time_ms;
        let midpoint = asked.millis() + (answered.millis() - asked.millis()) / 2;
        let max_skew_ms = hello.max_clock_skew_ms;
        if at_most_ahead > i64::try_from(max_skew_ms).unwrap_or(i64::MAX) {
            return Err(SyncError::ClockAhead {
                ahead_ms: midpoint - hello.server_time_ms,
                max_skew_ms,
            });
        }
        // Readings at or before this are accepted from now on (the server's clock only moves on).
        Ok(u64::try_from(hello.server_time_ms)
            .unwrap_or(0)
            .saturating_add(max_skew_ms))
    }

    /// Applies `first` and every page after it, in order, each in one local transaction with its cursor.
    async fn pull_pages(
        &self,
        first: (RawPullPage, Transfer),
        token: &mut Zeroizing<String>,
        refreshed: &mut bool,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let mut fetched = first;
        loop {
            let (page, transfer) = fetched;
            report.pull_pages += 1;
            report.pulled += page.changes.len() as u64;
            report.bytes_received += transfer.received_bytes;
            let has_more = page.has_more;
            let next = page.next_cursor.clone();
            // Each page is applied in one local transaction with its cursor, in order. The next page is
            // downloaded while this one is applied (its cursor comes with this page, not from the
            // store), so a long pull costs about the slower of download and apply rather than their
            // sum. A failure of either stops the sync; every page applied before it stays applied.
            let apply = self.with_store(move |s| {
                let texts: Vec<PulledText<'_>> = page
                    .changes
                    .iter()
                    .map(|c| PulledText {
                        entity: c.entity,
                        entity_id: c.entity_id,
                        op: c.op,
                        record: c.record.get(),
                        field_clocks: c.field_clocks.as_deref().map(|v| v.get()),
                    })
                    .collect();
                s.apply_pulled_text(&texts, &page.next_cursor, page.watermark)
                    .map(drop)
            });
            let following = if has_more {
                let (applied, following) =
                    tokio::join!(apply, self.pull_page(token, refreshed, Some(&next)));
                applied?;
                Some(following?)
            } else {
                apply.await?;
                None
            };
            let pulled = report.pulled;
            let bytes = report.bytes_received;
            self.update(|s| {
                s.pull.done = pulled;
                s.pull.bytes = bytes;
            });
            match following {
                Some(page) => fetched = page,
                None => return Ok(()),
            }
        }
    }

    /// Pulls one page after `cursor`, replacing a rejected access token from the refresh token once
    /// per sync (as the push does).
    async fn pull_page(
        &self,
        token: &mut Zeroizing<String>,
        refreshed: &mut bool,
        cursor: Option<&str>,
    ) -> Result<(RawPullPage, sync_client::Transfer), SyncError> {
        loop {
            match self
                .client
                .pull_raw(token, cursor, Some(self.config.pull_limit))
                .await
            {
                Ok(ok) => return Ok(ok),
                Err(e) if !*refreshed && access_token_rejected(&e) => {
                    *refreshed = true;
                    *token = self.access_token(true).await?;
                }
                Err(e) => return Err(classify(e)),
            }
        }
    }

    /// Whether the server answers (the reachability probe).
    pub async fn probe(&self) -> bool {
        self.client.hello(&self.config.client_version).await.is_ok()
    }

    /// The background agent: syncs on triggers until `shutdown` fires. Returns when the device is
    /// revoked (there is nothing left to sync) or on shutdown.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut failures: u32 = 0;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let result = self.sync_once().await;
            let wait = match &result {
                Ok(_) => {
                    failures = 0;
                    self.config.interval
                }
                Err(SyncError::DeviceRevoked) => return,
                Err(e) if e.is_retryable() => {
                    failures = failures.saturating_add(1);
                    self.config.backoff.delay(failures, unit_random())
                }
                // Needs sign-in, suspended, upgrade, a clock still ahead: nothing changes until a person
                // acts; check rarely (and at once on "sync now" or a local write).
                Err(_) => self.config.interval,
            };
            tokio::select! {
                _ = shutdown.changed() => return,
                () = self.sync_now.notified() => {},
                () = async {
                    self.local_write.notified().await;
                    tokio::time::sleep(self.config.debounce).await;
                } => {},
                () = tokio::time::sleep(wait) => {},
                () = self.wait_until_reachable(failures) => {},
            }
        }
    }

    /// While offline, probes the server every few seconds and returns as soon as it answers, so the
    /// sync starts when the connection returns rather than at the end of a long backoff.
    async fn wait_until_reachable(&self, failures: u32) {
        if failures == 0 {
            return std::future::pending().await;
        }
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if self.probe().await {
                return;
            }
        }
    }
}
