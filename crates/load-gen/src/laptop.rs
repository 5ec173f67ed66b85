//! One simulated laptop, at the sync engine's cadence: push a batch of touches (and, on the training
//! tenant, outcomes), pull its crew's new rows page by page, pause, repeat. A push is retried with the
//! same change ids until it holds receipts — through a lost connection, a killed instance, a 502 from
//! nginx, a 429 — exactly as the engine does, so a push whose answer was lost is acknowledged as a
//! duplicate the second time. A refused batch (the monthly quota) is final and filed as such.

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::clock::HlcClock;
use domain::*;
use sync_client::{ClientError, PushOutcome, SyncClient};
use sync_protocol::{Change, ChangeOp, Entity, ErrorCode, LoginRequest, TokenPair};

use crate::fleet::{PASSWORD, TenantSetup};
use crate::log::{Kind, Ledger, Request, code_of};

/// Rows per pull page.
pub const PULL_PAGE: u32 = 1_000;

/// A signed-in device: its client, tokens, clock, and what it has seen.
#[derive(Debug)]
pub struct Session {
    pub client: SyncClient,
    pub tokens: TokenPair,
    clock: HlcClock,
    pub requests: Vec<Request>,
    pub ledger: Ledger,
}

/// How a push ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Receipted,
    /// Refused by the monthly quota: nothing of the batch is stored; the laptop keeps it.
    QuotaExceeded,
    /// Refused for another reason, or no answer before the deadline.
    Failed,
}

impl Session {
    /// Signs in with a new device (a password login: PBKDF2 on the server, by design).
    pub async fn login(
        base_url: &str,
        slug: &str,
        email: &str,
        device_name: &str,
    ) -> anyhow::Result<Self> {
        let client = SyncClient::new(base_url)?;
        let started = Instant::now();
        let device = DeviceId::generate();
        let tokens = client
            .login(&LoginRequest {
                tenant_slug: slug.to_owned(),
                email: email.to_owned(),
                password: PASSWORD.to_owned(),
                device_id: device,
                device_name: device_name.to_owned(),
            })
            .await
            .map_err(|e| anyhow::anyhow!("login of {email} at {slug}: {e}"))?;
        let mut session = Self {
            client,
            clock: HlcClock::new(Hlc::node_of(device), sync_protocol::MAX_CLOCK_SKEW_MS),
            tokens,
            requests: Vec::new(),
            ledger: Ledger::default(),
        };
        session.note(Kind::Login, started, None);
        Ok(session)
    }

    /// The same session against another address (instances share the token key).
    pub fn at(&self, base_url: &str) -> anyhow::Result<SyncClient> {
        Ok(SyncClient::new(base_url)?)
    }

    fn note(&mut self, kind: Kind, started: Instant, error: Option<String>) {
        self.requests.push(Request {
            kind,
            started,
            took: started.elapsed(),
            error,
        });
    }

    /// Notes an office request's result.
    pub fn note_result<T>(
        &mut self,
        kind: Kind,
        started: Instant,
        result: &Result<T, ClientError>,
    ) {
        let error = result.as_ref().err().map(code_of);
        self.note(kind, started, error);
    }

    /// Changes for `records` of one entity, stamped by this device's clock.
    pub fn changes<T: serde::Serialize>(
        &mut self,
        entity: Entity,
        records: &[(uuid::Uuid, T)],
    ) -> anyhow::Result<Vec<Change>> {
        records
            .iter()
            .map(|(id, record)| {
                let now = Timestamp::now().millis() as u64;
                Ok(Change {
                    id: ChangeId::generate(),
                    hlc: self.clock.tick(now).map_err(|e| anyhow::anyhow!("{e}"))?,
                    device_id: self.tokens.device_id,
                    entity,
                    entity_id: *id,
                    op: ChangeOp::Insert,
                    payload: serde_json::to_value(record)?,
                })
            })
            .collect()
    }

    /// Pushes one batch until it holds receipts, is refused, or `deadline` passes. Retries reuse the
    /// change ids, so a batch that committed before its answer was lost comes back as duplicates.
    pub async fn push_settled(&mut self, changes: &[Change], deadline: Instant) -> Settled {
        let mut backoff = Duration::from_millis(50);
        loop {
            let started = Instant::now();
            let result = self.client.push(&self.tokens.access_token, changes).await;
            match result {
                Ok((PushOutcome::Applied(response), _)) => {
                    self.note(Kind::Push, started, None);
                    self.ledger.receipts(changes, &response.receipts);
                    // The engine follows the server's clock the same way; a reading too far ahead
                    // is ignored here as there.
                    let _ = self
                        .clock
                        .observe(response.server_hlc, Timestamp::now().millis() as u64);
                    return Settled::Receipted;
                }
                Ok((PushOutcome::Refused(_), _)) => {
                    self.note(Kind::Push, started, Some("batch_refused".to_owned()));
                    self.ledger.refused_batch(changes);
                    return Settled::Failed;
                }
                Err(e) => {
                    self.note(Kind::Push, started, Some(code_of(&e)));
                    match e.code() {
                        Some(ErrorCode::QuotaExceeded) => {
                            self.ledger.refused_batch(changes);
                            self.ledger.quota_refusals += 1;
                            return Settled::QuotaExceeded;
                        }
                        Some(ErrorCode::TokenExpired) => {
                            if let Ok(tokens) =
                                self.client.refresh(&self.tokens.refresh_token).await
                            {
                                self.tokens = tokens;
                            }
                        }
                        // A conflict is a concurrent push of the same change id (our own earlier
                        // attempt still running on an instance): retry, it will be a duplicate.
                        Some(ErrorCode::Conflict) => {}
                        _ if e.is_retryable() => {}
                        _ => {
                            self.ledger.unsettled += changes.len() as u64;
                            return Settled::Failed;
                        }
                    }
                    if Instant::now() >= deadline {
                        self.ledger.unsettled += changes.len() as u64;
                        return Settled::Failed;
                    }
                    let wait = e
                        .retry_after_secs()
                        .map(Duration::from_secs)
                        .unwrap_or(backoff)
                        .min(Duration::from_secs(2));
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Pulls every page after `cursor`; returns the rows read and the new cursor (unchanged on error).
    pub async fn pull_all(&mut self, cursor: Option<String>) -> (usize, Option<String>) {
        let mut cursor = cursor;
        let mut rows = 0;
        loop {
            let started = Instant::now();
            let result = self
                .client
                .pull(
                    &self.tokens.access_token,
                    cursor.as_deref(),
                    Some(PULL_PAGE),
                )
                .await;
            match result {
                Ok((page, _)) => {
                    self.note(Kind::Pull, started, None);
                    rows += page.changes.len();
                    cursor = Some(page.next_cursor);
                    if !page.has_more {
                        return (rows, cursor);
                    }
                }
                Err(e) => {
                    self.note(Kind::Pull, started, Some(code_of(&e)));
                    if e.code() == Some(ErrorCode::TokenExpired)
                        && let Ok(tokens) = self.client.refresh(&self.tokens.refresh_token).await
                    {
                        self.tokens = tokens;
                    }
                    return (rows, cursor);
                }
            }
        }
    }
}

/// A laptop of the timed load.
#[derive(Debug)]
pub struct Laptop {
    pub session: Session,
    pub tenant: Arc<TenantSetup>,
    pub cursor: Option<String>,
    /// Where in the tenant's property list this laptop's next touches go.
    offset: usize,
    /// Touches per sync.
    batch: usize,
    /// Set once the monthly quota refused a push: the laptop keeps pulling, as the engine does.
    quota_hit: bool,
    pub rows_pulled: usize,
}

impl Laptop {
    pub fn new(session: Session, tenant: Arc<TenantSetup>, index: usize, batch: usize) -> Self {
        Self {
            session,
            offset: index * 7919,
            tenant,
            cursor: None,
            batch,
            quota_hit: false,
            rows_pulled: 0,
        }
    }

    /// The first sync: every row of its crew and tenant so far (not part of the timed load).
    pub async fn first_sync(&mut self) {
        let (rows, cursor) = self.session.pull_all(None).await;
        self.rows_pulled += rows;
        self.cursor = cursor;
    }

    fn touches(&mut self) -> Vec<(uuid::Uuid, JourneyTouch)> {
        let (Some(storm), false) = (self.tenant.storm, self.tenant.properties.is_empty()) else {
            return Vec::new();
        };
        let now = Timestamp::now();
        (0..self.batch)
            .map(|_| {
                self.offset += 1;
                let property = self.tenant.properties[self.offset % self.tenant.properties.len()];
                let touch = JourneyTouch {
                    id: TouchId::generate(),
                    property_id: property,
                    storm_id: storm,
                    user_id: self.session.tokens.user_id,
                    device_id: self.session.tokens.device_id,
                    channel: Channel::DoorKnock,
                    result: TouchResult::Talked,
                    notes: "owner reports granule loss on the north slope, gutters dented".into(),
                    occurred_at: now,
                };
                (touch.id.0, touch)
            })
            .collect()
    }

    /// One sync: push this round's records (until receipted), then pull to the end of the feed.
    pub async fn sync_once(&mut self, settle_by: Instant) -> anyhow::Result<()> {
        if !self.quota_hit {
            let touches = self.touches();
            let mut changes = self.session.changes(Entity::JourneyTouch, &touches)?;
            if let Some(source) = self.tenant.training.clone() {
                let outcomes: Vec<(uuid::Uuid, Outcome)> = source
                    .take(source.per_sync)
                    .into_iter()
                    .map(|o| (o.id.0, o))
                    .collect();
                changes.extend(self.session.changes(Entity::Outcome, &outcomes)?);
            }
            if !changes.is_empty()
                && self.session.push_settled(&changes, settle_by).await == Settled::QuotaExceeded
            {
                self.quota_hit = true;
            }
        }
        let (rows, cursor) = self.session.pull_all(self.cursor.take()).await;
        self.rows_pulled += rows;
        self.cursor = cursor;
        Ok(())
    }

    /// Syncs every `think` until `end` (the first after `start_delay`, spreading the fleet's starts);
    /// a push still unsettled at `end` is retried until `settle_by`.
    pub async fn run(
        mut self,
        start_delay: Duration,
        think: Duration,
        end: Instant,
        settle_by: Instant,
    ) -> anyhow::Result<Self> {
        tokio::time::sleep(start_delay).await;
        while Instant::now() < end {
            self.sync_once(settle_by).await?;
            tokio::time::sleep(think).await;
        }
        Ok(self)
    }
}
