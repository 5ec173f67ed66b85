//! Request and response bodies of the versioned sync API: handshake, auth, push with receipts, pull pages.

use domain::{ChangeId, CrewId, DeviceId, DeviceStatus, Hlc, Role, TenantId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::changes::{Change, ChangeOp, Entity};
use crate::errors::ErrorCode;

/// `POST /v1/hello`: the version and capability handshake.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelloRequest {
    pub protocol_version: u32,
    pub client_version: String,
    #[serde(default)]
    pub capabilities: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HelloResponse {
    pub server_version: String,
    pub protocol_version: u32,
    pub min_protocol_version: u32,
    pub capabilities: Vec<String>,
    pub max_push_changes: usize,
    pub max_pull_limit: u32,
    pub max_clock_skew_ms: u64,
    pub server_time_ms: i64,
}

/// `POST /v1/auth/login`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub tenant_slug: String,
    pub email: String,
    pub password: String,
    /// The laptop's device id; registered on first login.
    pub device_id: DeviceId,
    pub device_name: String,
}

/// Tokens and who they speak for.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenPair {
    pub access_token: String,
    pub access_expires_at_ms: i64,
    pub refresh_token: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub role: Role,
}

impl std::fmt::Debug for TokenPair {
    // Tokens never reach logs or Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"<redacted>")
            .field("access_expires_at_ms", &self.access_expires_at_ms)
            .field("refresh_token", &"<redacted>")
            .field("tenant_id", &self.tenant_id)
            .field("user_id", &self.user_id)
            .field("device_id", &self.device_id)
            .field("role", &self.role)
            .finish()
    }
}

/// `POST /v1/auth/refresh` and `POST /v1/auth/logout`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshRequest { refresh_token: <redacted> }")
    }
}

/// `POST /v1/sync/push`: a batch from the outbox, applied in one transaction, all or nothing.
///
/// On success (200) every change has an `accepted` or `duplicate` receipt. When any change is
/// refused the whole batch is rolled back and the answer is 422 `batch_refused` whose
/// `details` is a [`RefusedBatch`]: the laptop moves those changes to its inbox and pushes the rest again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    pub changes: Vec<Change>,
}

/// What became of one pushed change.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// Applied now.
    Accepted,
    /// Seen before (same change id): acknowledged, not applied again.
    Duplicate,
    /// Not applied; the laptop moves it to the inbox.
    Refused,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub change_id: ChangeId,
    pub status: ReceiptStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Receipt {
    pub fn accepted(change_id: ChangeId) -> Self {
        Self {
            change_id,
            status: ReceiptStatus::Accepted,
            code: None,
            reason: None,
        }
    }
    pub fn duplicate(change_id: ChangeId) -> Self {
        Self {
            change_id,
            status: ReceiptStatus::Duplicate,
            code: None,
            reason: None,
        }
    }
    pub fn refused(change_id: ChangeId, code: ErrorCode, reason: impl Into<String>) -> Self {
        Self {
            change_id,
            status: ReceiptStatus::Refused,
            code: Some(code),
            reason: Some(reason.into()),
        }
    }
}

/// The `details` of a 422 `batch_refused` answer: the changes that were refused, with why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefusedBatch {
    pub refused: Vec<Receipt>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushResponse {
    pub receipts: Vec<Receipt>,
    /// The server's clock after the batch, so the laptop's HLC follows it.
    pub server_hlc: Hlc,
}

/// `POST /v1/sync/pull`: changes after a cursor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    /// Opaque cursor from the previous page; `None` for a first sync.
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// One row of a pull page: the record as it now stands on the server, or a tombstone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PulledChange {
    pub entity: Entity,
    pub entity_id: Uuid,
    /// `Insert` for a record (new or changed: the full current record), `Delete` for a tombstone.
    pub op: ChangeOp,
    pub record: serde_json::Value,
    /// Per-field clocks of mutable records, so the laptop merges with the same rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_clocks: Option<crate::merge::FieldClocks>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PullPage {
    pub changes: Vec<PulledChange>,
    /// Where the next page starts; store it with the page in one local transaction.
    pub next_cursor: String,
    pub has_more: bool,
    /// The tenant's data watermark at this cursor: scores computed at or after it are fresh.
    pub watermark: i64,
}

/// One laptop's sync health as the server saw it (`GET /v1/admin/devices`). The protocol carries no
/// pending count from a laptop, so the last accepted batch (time and size), the last pull and refused
/// batches stand for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceSyncHealth {
    pub device_id: DeviceId,
    pub device_name: String,
    pub user_id: UserId,
    pub user_name: String,
    pub user_email: String,
    pub crew_id: Option<CrewId>,
    pub status: DeviceStatus,
    pub registered_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// The last accepted push batch and its number of changes (duplicates included).
    pub last_push_at: Option<Timestamp>,
    pub last_push_changes: Option<i32>,
    /// The last pull, recorded at most once a minute.
    pub last_pull_at: Option<Timestamp>,
    /// The last refused batch and how many of its changes were refused.
    pub last_refused_at: Option<Timestamp>,
    pub last_refused_changes: Option<i32>,
    pub refused_changes_total: i64,
}

/// The answer of `GET /v1/admin/devices`: the devices and the server's clock (Unix ms) when it
/// answered, to age their times with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceHealthReport {
    pub devices: Vec<DeviceSyncHealth>,
    pub at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A number spelled unlike serde_json's own output (here 1.79e104 written out in full, as a spreadsheet
    /// or another JSON writer may) must decode to the value that re-encodes and decodes to itself: a
    /// change's payload crosses the wire several times (laptop, server, other laptops), and a field that
    /// drifts by one unit in its last place would never converge. Found by the `push_request` fuzz target
    /// (fuzz/corpus/push_request/float_long_spelling.json); the workspace's serde_json parses floats with
    /// correct rounding (`float_roundtrip`).
    #[test]
    fn a_pushed_number_keeps_its_value_whatever_its_spelling() {
        let long = format!("1790{}.00", "0".repeat(101));
        let body = format!(
            r#"{{"changes":[{{"id":"01924c5e-7b1a-7cc0-8a00-000000000001","hlc":"1790000000000-00000-0000000000020001",
               "device_id":"01923c5e-7b1a-7cc0-8a00-0000000000d1","entity":"journey_touch",
               "entity_id":"01923c5e-7b1a-7cc0-8a00-0000000000a1","op":"insert","payload":{{"latitude":{long}}}}}]}}"#
        );
        let request: PushRequest = serde_json::from_str(&body).expect("decodes");
        let again: PushRequest =
            serde_json::from_slice(&serde_json::to_vec(&request).expect("encodes"))
                .expect("decodes");
        assert_eq!(request.changes, again.changes);
        assert_eq!(
            request.changes[0].payload["latitude"].as_f64(),
            Some(1.79e104)
        );
    }
}
