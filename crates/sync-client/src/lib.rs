//! Typed HTTP client for the StormOps sync server: handshake, login, refresh, push and pull. It knows
//! the protocol and nothing of storage; the sync engine joins it to the tenant store.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use sync_protocol::{
    Change, ChangeOp, Entity, ErrorBody, ErrorCode, HelloRequest, HelloResponse, LoginRequest,
    PROTOCOL_HEADER, PROTOCOL_VERSION, PullPage, PullRequest, PushResponse, RefreshRequest,
    RefusedBatch, TokenPair,
};
use uuid::Uuid;

mod devices;
pub use devices::{DeviceHealthReport, DeviceSyncHealth};

/// Bodies larger than this are sent zstd-compressed.
const COMPRESS_OVER_BYTES: usize = 8 * 1024;

/// zstd's fastest standard level: a week offline pushes tens of MB of JSON on a two-core laptop that is
/// also applying receipts, and gzip's fastest level took about four times the CPU for it.
pub const PUSH_ZSTD_LEVEL: i32 = 1;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached, or the connection broke: retry later.
    #[error("cannot reach the sync server: {0}")]
    Network(String),
    /// The server answered with an error body.
    #[error("the server refused: {} ({})", .body.message, .body.code)]
    Server { status: u16, body: ErrorBody },
    /// The server answered something that is not the protocol (a proxy page, a truncated body).
    #[error("the server's answer could not be read: {0}")]
    Decode(String),
    #[error("invalid server address: {0}")]
    InvalidUrl(String),
}

impl ClientError {
    /// The server's stable error code, when it gave one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Server { body, .. } => Some(body.code),
            _ => None,
        }
    }

    /// Whether the same call may succeed later without any change (network trouble, overload).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Network(_) | ClientError::Decode(_) => true,
            ClientError::Server { body, status } => body.code.is_retryable() || *status >= 500,
            ClientError::InvalidUrl(_) => false,
        }
    }

    /// The `Retry-After` hint is folded into `details.retry_after_secs` when the server sent one.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ClientError::Server { body, .. } => {
                body.details.as_ref()?.get("retry_after_secs")?.as_u64()
            }
            _ => None,
        }
    }
}

/// What became of a pushed batch.
#[derive(Debug, Clone, PartialEq)]
pub enum PushOutcome {
    /// Applied: a receipt (accepted or duplicate) per change.
    Applied(PushResponse),
    /// Rolled back because these changes were refused; push the others again.
    Refused(RefusedBatch),
}

/// The signed-in identity as the server describes it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Me {
    pub tenant: Option<MeTenant>,
    pub user: Option<domain::User>,
    pub device_id: domain::DeviceId,
    pub role: domain::Role,
}

/// The tenant part of [`Me`].
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct MeTenant {
    pub id: domain::TenantId,
    pub name: String,
    pub slug: String,
    pub plan: domain::PlanTier,
}

/// A pull page whose records and field clocks are kept as the JSON text the server sent: the same wire
/// form as [`PullPage`], read without building a JSON tree per record. A first sync's pages hold hundreds
/// of thousands of records; the store decodes each one straight into its typed record instead.
#[derive(Debug, serde::Deserialize)]
pub struct RawPullPage {
    pub changes: Vec<RawPulledChange>,
    pub next_cursor: String,
    pub has_more: bool,
    pub watermark: i64,
}

/// One row of a [`RawPullPage`].
#[derive(Debug, serde::Deserialize)]
pub struct RawPulledChange {
    pub entity: Entity,
    pub entity_id: Uuid,
    pub op: ChangeOp,
    pub record: Box<RawValue>,
    #[serde(default)]
    pub field_clocks: Option<Box<RawValue>>,
}

/// Bytes sent and received by the last call, for progress and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transfer {
    pub sent_bytes: u64,
    pub received_bytes: u64,
}

/// A client for one server.
#[derive(Debug, Clone)]
pub struct SyncClient {
    http: reqwest::Client,
    base: String,
    protocol_version: u32,
}

impl SyncClient {
    /// A client for `base_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        Self::with_protocol(base_url, PROTOCOL_VERSION)
    }

    /// A client that announces another protocol version (tests of old clients).
    pub fn with_protocol(base_url: &str, protocol_version: u32) -> Result<Self, ClientError> {
        let base = base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::InvalidUrl(format!(
                "'{base}' must start with http:// or https://"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ClientError::Network(e.to_string()))?;
        Ok(Self {
            http,
            base,
            protocol_version,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
        body: &B,
    ) -> Result<(R, Transfer), ClientError> {
        let json = serde_json::to_vec(body).map_err(|e| ClientError::Decode(e.to_string()))?;
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(PROTOCOL_HEADER, self.protocol_version.to_string())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            // zstd first: the server prefers it when offered; a first sync's pages are hundreds of MB
            // of JSON, which zstd compresses at a fraction of gzip's CPU and decodes several times faster.
            .header(reqwest::header::ACCEPT_ENCODING, "zstd, gzip");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        // Every server version decodes zstd and gzip request bodies (its decompression layer takes both).
        let payload = if json.len() > COMPRESS_OVER_BYTES {
            let compressed = zstd::bulk::compress(&json, PUSH_ZSTD_LEVEL)
                .map_err(|e| ClientError::Decode(e.to_string()))?;
            request = request.header(reqwest::header::CONTENT_ENCODING, "zstd");
            compressed
        } else {
            json
        };
        let sent_bytes = payload.len() as u64;
        let response = request.body(payload).send().await.map_err(network)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let bytes = response.bytes().await.map_err(network)?;
        let transfer = Transfer {
            sent_bytes,
            received_bytes: bytes.len() as u64,
        };
        if status.is_success() {
            let value =
                serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))?;
            return Ok((value, transfer));
        }
        Err(server_error(status, &bytes, retry_after))
    }

    /// The version and capability handshake.
    pub async fn hello(&self, client_version: &str) -> Result<HelloResponse, ClientError> {
        let request = HelloRequest {
            protocol_version: self.protocol_version,
            client_version: client_version.to_owned(),
            capabilities: vec![],
        };
        Ok(self.post("/v1/hello", None, &request).await?.0)
    }

    /// Signs in; registers the device on first login.
    pub async fn login(&self, request: &LoginRequest) -> Result<TokenPair, ClientError> {
        Ok(self.post("/v1/auth/login", None, request).await?.0)
    }

    /// Rotates a refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, ClientError> {
        let request = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        Ok(self.post("/v1/auth/refresh", None, &request).await?.0)
    }

    /// Revokes a refresh token's family.
    pub async fn logout(&self, refresh_token: &str) -> Result<(), ClientError> {
        let request = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        let _: serde_json::Value = self.post("/v1/auth/logout", None, &request).await?.0;
        Ok(())
    }

    /// Who the access token speaks for, with the tenant's name and slug (`GET /v1/me`).
    pub async fn me(&self, access_token: &str) -> Result<Me, ClientError> {
        let response = self
            .http
            .get(format!("{}/v1/me", self.base))
            .header(PROTOCOL_HEADER, self.protocol_version.to_string())
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(network)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(network)?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()));
        }
        Err(server_error(status, &bytes, None))
    }

    /// GETs a JSON answer with a bearer token.
    async fn get_json(&self, path: &str, token: &str) -> Result<serde_json::Value, ClientError> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header(PROTOCOL_HEADER, self.protocol_version.to_string())
            .bearer_auth(token)
            .send()
            .await
            .map_err(network)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(network)?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()));
        }
        Err(server_error(status, &bytes, None))
    }

    /// Creates a storm's experiment (admin): `POST /v1/admin/storms/{storm}/experiment`.
    pub async fn admin_create_experiment(
        &self,
        access_token: &str,
        storm: domain::StormId,
        treatment_share: f64,
    ) -> Result<serde_json::Value, ClientError> {
        let body = serde_json::json!({ "treatment_share": treatment_share });
        let path = format!("/v1/admin/storms/{storm}/experiment");
        Ok(self.post(&path, Some(access_token), &body).await?.0)
    }

    /// Trains a storm's uplift model now (admin): `POST /v1/admin/storms/{storm}/train`.
    pub async fn admin_train(
        &self,
        access_token: &str,
        storm: domain::StormId,
    ) -> Result<serde_json::Value, ClientError> {
        let path = format!("/v1/admin/storms/{storm}/train");
        Ok(self
            .post(&path, Some(access_token), &serde_json::json!({}))
            .await?
            .0)
    }

    /// A storm's experiment summary: `GET /v1/admin/storms/{storm}/experiment`.
    pub async fn admin_experiment_summary(
        &self,
        access_token: &str,
        storm: domain::StormId,
    ) -> Result<serde_json::Value, ClientError> {
        self.get_json(
            &format!("/v1/admin/storms/{storm}/experiment"),
            access_token,
        )
        .await
    }

    /// Runs a storm's data-health checks and returns the readings with their runbooks (reader roles):
    /// `GET /v1/admin/storms/{storm}/health`.
    pub async fn admin_storm_health(
        &self,
        access_token: &str,
        storm: domain::StormId,
    ) -> Result<serde_json::Value, ClientError> {
        self.get_json(&format!("/v1/admin/storms/{storm}/health"), access_token)
            .await
    }

    /// The tenant's metered usage this period against its plan: `GET /v1/admin/usage`.
    pub async fn admin_usage(&self, access_token: &str) -> Result<serde_json::Value, ClientError> {
        self.get_json("/v1/admin/usage", access_token).await
    }

    /// Pushes one batch. A refused batch is an outcome, not an error: the caller moves the refused
    /// changes to the inbox and pushes the rest again.
    pub async fn push(
        &self,
        access_token: &str,
        changes: &[Change],
    ) -> Result<(PushOutcome, Transfer), ClientError> {
        // Serialises exactly as a `PushRequest`, without copying the batch into one first.
        #[derive(Serialize)]
        struct PushBody<'a> {
            changes: &'a [Change],
        }
        match self
            .post::<_, PushResponse>("/v1/sync/push", Some(access_token), &PushBody { changes })
            .await
        {
            Ok((response, transfer)) => Ok((PushOutcome::Applied(response), transfer)),
            Err(ClientError::Server { body, status }) if body.code == ErrorCode::BatchRefused => {
                match body
                    .details
                    .clone()
                    .and_then(|d| serde_json::from_value::<RefusedBatch>(d).ok())
                {
                    Some(refused) => Ok((PushOutcome::Refused(refused), Transfer::default())),
                    None => Err(ClientError::Server { status, body }),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Pulls one page after `cursor`.
    pub async fn pull(
        &self,
        access_token: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<(PullPage, Transfer), ClientError> {
        let request = PullRequest {
            cursor: cursor.map(str::to_owned),
            limit,
        };
        self.post("/v1/sync/pull", Some(access_token), &request)
            .await
    }

    /// [`SyncClient::pull`] with each record left as its JSON text (see [`RawPullPage`]).
    pub async fn pull_raw(
        &self,
        access_token: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<(RawPullPage, Transfer), ClientError> {
        let request = PullRequest {
            cursor: cursor.map(str::to_owned),
            limit,
        };
        self.post("/v1/sync/pull", Some(access_token), &request)
            .await
    }
}

fn network(err: reqwest::Error) -> ClientError {
    // Never echo the URL's query or credentials: reqwest's message names only host and cause.
    ClientError::Network(err.without_url().to_string())
}

fn server_error(status: StatusCode, bytes: &[u8], retry_after: Option<u64>) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(mut body) => {
            if let Some(secs) = retry_after {
                let details = body.details.get_or_insert_with(|| serde_json::json!({}));
                if let Some(map) = details.as_object_mut() {
                    map.insert("retry_after_secs".into(), secs.into());
                }
            }
            ClientError::Server {
                status: status.as_u16(),
                body,
            }
        }
        Err(_) => {
            // Not our error body (a proxy, a timeout page): classify by status.
            let code = match status.as_u16() {
                413 => ErrorCode::PayloadTooLarge,
                429 => ErrorCode::RateLimited,
                502..=504 => ErrorCode::Unavailable,
                401 => ErrorCode::Unauthenticated,
                _ if status.is_server_error() => ErrorCode::Internal,
                _ => ErrorCode::InvalidRequest,
            };
            let text: String = String::from_utf8_lossy(bytes).chars().take(200).collect();
            ClientError::Server {
                status: status.as_u16(),
                body: ErrorBody::new(code, format!("HTTP {status}: {text}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_are_accepted() {
        assert!(SyncClient::new("ftp://x").is_err());
        assert_eq!(
            SyncClient::new("http://127.0.0.1:8080/")
                .unwrap()
                .base_url(),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn foreign_error_pages_are_classified_by_status() {
        let err = server_error(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>", None);
        assert_eq!(err.code(), Some(ErrorCode::Unavailable));
        assert!(err.is_retryable());
        let err = server_error(
            StatusCode::FORBIDDEN,
            br#"{"code":"device_revoked","message":"revoked"}"#,
            None,
        );
        assert_eq!(err.code(), Some(ErrorCode::DeviceRevoked));
        assert!(!err.is_retryable());
        let err = server_error(
            StatusCode::TOO_MANY_REQUESTS,
            br#"{"code":"rate_limited","message":"slow down"}"#,
            Some(7),
        );
        assert_eq!(err.retry_after_secs(), Some(7));
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_retryable_network_error() {
        // Port 9 (discard) on loopback is closed here: the connection is refused at once.
        let client = SyncClient::new("http://127.0.0.1:9").unwrap();
        let err = client.hello("test").await.expect_err("nothing listens");
        assert!(matches!(err, ClientError::Network(_)), "{err:?}");
        assert!(err.is_retryable());
    }
}
