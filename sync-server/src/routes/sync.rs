//! Sync: push a batch of outbox changes (one transaction, all or nothing, idempotent per change id)
//! and pull pages of changes after a commit-ordered cursor. Structural mistakes answer 4xx before any
//! database work; a refused change rolls the whole batch back and answers 422 with the refused receipts.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use domain::{Hlc, PropertyId, Role, Timestamp};
use server_store::{PullPageWire, PullScope, PushContext, PushOutcome};
use sync_protocol::{
    Entity, ErrorCode, MAX_PULL_LIMIT, MAX_PUSH_CHANGES, PullRequest, PushRequest, PushResponse,
    ReceiptStatus, RefusedBatch,
};

use crate::app::ClientProtocol;
use crate::auth::identity::Identity;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::routes::auth::audit;
use crate::state::{AppState, now_ms};

/// Roles that may push field data.
const WRITERS: &[Role] = &[Role::Admin, Role::CrewChief, Role::FieldUser];

/// Checks what needs no database: batch size, origin device, clock skew.
fn check_batch(
    identity: &Identity,
    request: &PushRequest,
    now: i64,
    max_skew_ms: u64,
) -> Result<(), ApiError> {
    if request.changes.len() > MAX_PUSH_CHANGES {
        return Err(ApiError::new(
            ErrorCode::BatchTooLarge,
            format!(
                "a push holds at most {MAX_PUSH_CHANGES} changes; this one has {}",
                request.changes.len()
            ),
        )
        .with_details(serde_json::json!({ "max_changes": MAX_PUSH_CHANGES })));
    }
    let limit = u64::try_from(now).unwrap_or(0).saturating_add(max_skew_ms);
    for change in &request.changes {
        if change.device_id != identity.0.device_id {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "change {} names device {}, but this session is device {}",
                    change.id, change.device_id, identity.0.device_id
                ),
            ));
        }
        if change.hlc.wall_ms > limit {
            return Err(ApiError::new(
                ErrorCode::ClockSkew,
                format!(
                    "change {} is stamped {} ms ahead of the server's clock (at most {max_skew_ms} ms allowed): check this laptop's date and time",
                    change.id,
                    change.hlc.wall_ms - u64::try_from(now).unwrap_or(0)
                ),
            ));
        }
    }
    Ok(())
}

/// The server's clock reading after a batch: after every change in it, so the laptop's clock follows.
fn server_clock(request: &PushRequest, now: i64) -> Hlc {
    let latest = request
        .changes
        .iter()
        .map(|c| c.hlc)
        .max()
        .unwrap_or_default();
    let now = u64::try_from(now).unwrap_or(0);
    if latest.wall_ms >= now {
        Hlc::new(latest.wall_ms, latest.counter.saturating_add(1), 0)
    } else {
        Hlc::new(now, 0, 0)
    }
}

/// `POST /v1/sync/push`.
///
/// The batch is applied in a task of its own, which the handler awaits: a laptop that goes away
/// mid-request (its connection cut, so the server drops this handler's future) must not stop the work
/// between the transaction's commit and the counters that report it. The batch is applied or not either
/// way — a replay is acknowledged as a duplicate — but a push committed and never counted made the
/// `changes_accepted` metric under-report exactly when networks were worst. A laptop that re-sends the
/// batch while this task still runs is answered `conflict` and sends it again after a pause (the engine's
/// push loop), by when this task has committed and the resend is acknowledged as duplicates.
pub async fn push(
    State(state): State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    ApiJson(request): ApiJson<PushRequest>,
) -> Result<Response, ApiError> {
    tokio::spawn(apply_push_batch(state, identity, headers, request))
        .await
        .map_err(|e| ApiError::internal("applying a pushed batch", &e))?
}

async fn apply_push_batch(
    state: AppState,
    identity: Identity,
    headers: HeaderMap,
    request: PushRequest,
) -> Result<Response, ApiError> {
    identity.require_role(WRITERS, "push changes")?;
    let now = now_ms();
    check_batch(&identity, &request, now, state.settings.max_clock_skew_ms)?;
    let (mut tx, plan) = identity.begin_with_plan(&state).await?;
    // Storage at its hard limit refuses the batch before any work; over the soft limit it is a warning.
    let storage_warning = tx.check_storage().await?;
    let ctx = PushContext {
        user_id: identity.0.user_id,
        device_id: identity.0.device_id,
        role: identity.0.role,
        crew_id: identity.0.crew_id,
        now_ms: now,
    };
    match tx.apply_push(&ctx, &request.changes).await? {
        PushOutcome::Applied(receipts) => {
            let properties: Vec<PropertyId> = request
                .changes
                .iter()
                .filter(|c| c.entity == Entity::Property)
                .map(|c| PropertyId::from_uuid(c.entity_id))
                .collect();
            crate::arms::assign_written_properties(&mut tx, &properties, Timestamp(now)).await?;
            let accepted = receipts
                .iter()
                .filter(|r| r.status == ReceiptStatus::Accepted)
                .count();
            let duplicates = receipts.len() - accepted;
            audit(
                &mut tx,
                Some(identity.0.user_id),
                Some(identity.0.device_id),
                "sync.push",
                format!("changes:{accepted}+{duplicates}dup"),
                &headers,
            )
            .await?;
            tx.note_device_push(identity.0.device_id, receipts.len(), Timestamp(now))
                .await?;
            // Metered last: the month's counter row stays locked only until the commit just below. A
            // replayed batch has no accepted change and meters nothing.
            let first_accepted = receipts
                .iter()
                .find(|r| r.status == ReceiptStatus::Accepted)
                .map(|r| r.change_id.0);
            let meter = match first_accepted {
                Some(id) => Some(
                    tx.meter_synced_events(id, accepted as i64, Timestamp(now))
                        .await?,
                ),
                None => None,
            };
            tx.commit().await?;
            state.metrics.changes_accepted.add(plan, accepted as u64);
            state.metrics.changes_duplicate.add(plan, duplicates as u64);
            let warnings: Vec<_> = storage_warning
                .into_iter()
                .chain(meter.and_then(|m| m.warning))
                .collect();
            let body = Json(PushResponse {
                receipts,
                server_hlc: server_clock(&request, now),
            });
            Ok((crate::limits::warning_headers(&warnings), body).into_response())
        }
        PushOutcome::Refused(refused) => {
            tx.rollback().await?;
            state
                .metrics
                .changes_refused
                .add(plan, refused.len() as u64);
            // The batch left nothing; its refusal is the laptop's sync health (`GET /v1/admin/devices`),
            // noted in a transaction of its own. Failing to note it must not hide the refusal itself.
            if let Err(err) = note_refused(&state, &identity, refused.len(), now).await {
                tracing::warn!(code = %err.code, "could not note a refused batch on its device");
            }
            let message = format!(
                "{} of {} changes were refused, so nothing of this batch was applied; the refused ones are listed — send the others again",
                refused.len(),
                request.changes.len()
            );
            let details = serde_json::to_value(RefusedBatch { refused }).unwrap_or_default();
            Err(ApiError::new(ErrorCode::BatchRefused, message).with_details(details))
        }
    }
}

/// Records a refused batch on the pushing device's row.
async fn note_refused(
    state: &AppState,
    identity: &Identity,
    refused: usize,
    now: i64,
) -> Result<(), ApiError> {
    let mut tx = identity.begin(state).await?;
    tx.note_device_refused(identity.0.device_id, refused, Timestamp(now))
        .await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /v1/sync/pull`.
pub async fn pull(
    State(state): State<AppState>,
    identity: Identity,
    Extension(protocol): Extension<ClientProtocol>,
    ApiJson(request): ApiJson<PullRequest>,
) -> Result<Json<PullPageWire>, ApiError> {
    let limit = request
        .limit
        .unwrap_or(MAX_PULL_LIMIT)
        .clamp(1, MAX_PULL_LIMIT);
    let (mut tx, plan) = identity.begin_with_plan(&state).await?;
    let scope = PullScope {
        role: identity.0.role,
        user_id: identity.0.user_id,
        crew_id: identity.0.crew_id,
        protocol: protocol.0,
    };
    let page = tx
        .pull_wire(&scope, request.cursor.as_deref(), limit)
        .await?;
    tx.note_device_pull(identity.0.device_id, Timestamp(now_ms()))
        .await?;
    tx.commit().await?;
    state
        .metrics
        .rows_pulled
        .add(plan, page.changes.len() as u64);
    Ok(Json(page))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{ChangeId, DeviceId, TenantId, UserId};
    use sync_protocol::{Change, ChangeOp};

    fn identity(device: DeviceId) -> Identity {
        Identity(crate::auth::token::Claims {
            tenant_id: TenantId::generate(),
            user_id: UserId::generate(),
            device_id: device,
            role: Role::FieldUser,
            crew_id: None,
            issued_at_ms: 0,
            expires_at_ms: i64::MAX,
        })
    }

    fn change(device: DeviceId, wall_ms: u64) -> Change {
        Change {
            id: ChangeId::generate(),
            hlc: Hlc::new(wall_ms, 0, 1),
            device_id: device,
            entity: Entity::JourneyTouch,
            entity_id: uuid::Uuid::now_v7(),
            op: ChangeOp::Insert,
            payload: serde_json::json!({}),
        }
    }

    #[test]
    fn batches_are_checked_before_the_database() {
        let device = DeviceId::generate();
        let id = identity(device);
        let now = 1_800_000_000_000;
        let ok = PushRequest {
            changes: vec![change(device, now as u64)],
        };
        assert!(check_batch(&id, &ok, now, 60_000).is_ok());
        let ahead = PushRequest {
            changes: vec![change(device, now as u64 + 120_000)],
        };
        assert_eq!(
            check_batch(&id, &ahead, now, 60_000).unwrap_err().code,
            ErrorCode::ClockSkew
        );
        let foreign = PushRequest {
            changes: vec![change(DeviceId::generate(), now as u64)],
        };
        assert_eq!(
            check_batch(&id, &foreign, now, 60_000).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        let big = PushRequest {
            changes: (0..=MAX_PUSH_CHANGES)
                .map(|_| change(device, now as u64))
                .collect(),
        };
        assert_eq!(
            check_batch(&id, &big, now, 60_000).unwrap_err().code,
            ErrorCode::BatchTooLarge
        );
    }

    #[test]
    fn the_server_clock_follows_the_batch() {
        let device = DeviceId::generate();
        let request = PushRequest {
            changes: vec![change(device, 5_000)],
        };
        assert_eq!(server_clock(&request, 1_000), Hlc::new(5_000, 1, 0));
        assert_eq!(server_clock(&request, 9_000), Hlc::new(9_000, 0, 0));
    }
}
