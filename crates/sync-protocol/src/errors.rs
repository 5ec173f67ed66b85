//! Stable error codes and the one JSON error body every endpoint returns. Clients match on the code,
//! never on the message; the message is plain words for a person.

use serde::{Deserialize, Serialize};

/// Every error the server can answer with. The text form is the stable contract.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    MalformedJson,
    InvalidRequest,
    UnknownField,
    InvalidUuid,
    PayloadTooLarge,
    BatchTooLarge,
    UnsupportedMediaType,
    ClockSkew,
    ValidationFailed,
    BatchRefused,
    ForeignReference,
    ServerOwnedField,
    AppendOnly,
    UnknownRecord,
    /// Training refused: an arm has fewer outcome rows than the learner needs.
    NotEnoughData,
    /// Training refused: every outcome in an arm is the same.
    SingleOutcomeClass,
    /// Training or a summary needs the storm's experiment, and there is none.
    NoExperiment,
    Unauthenticated,
    InvalidCredentials,
    TokenExpired,
    TokenInvalid,
    Forbidden,
    TenantSuspended,
    DeviceRevoked,
    NotFound,
    Conflict,
    RateLimited,
    QuotaExceeded,
    UpgradeRequired,
    Timeout,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnknownField => "unknown_field",
            ErrorCode::InvalidUuid => "invalid_uuid",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::BatchTooLarge => "batch_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::ClockSkew => "clock_skew",
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::BatchRefused => "batch_refused",
            ErrorCode::ForeignReference => "foreign_reference",
            ErrorCode::ServerOwnedField => "server_owned_field",
            ErrorCode::AppendOnly => "append_only",
            ErrorCode::UnknownRecord => "unknown_record",
            ErrorCode::NotEnoughData => "not_enough_data",
            ErrorCode::SingleOutcomeClass => "single_outcome_class",
            ErrorCode::NoExperiment => "no_experiment",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::TokenInvalid => "token_invalid",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::TenantSuspended => "tenant_suspended",
            ErrorCode::DeviceRevoked => "device_revoked",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::UpgradeRequired => "upgrade_required",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status that carries this code.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorCode::MalformedJson
            | ErrorCode::InvalidRequest
            | ErrorCode::UnknownField
            | ErrorCode::InvalidUuid
            | ErrorCode::BatchTooLarge
            | ErrorCode::ClockSkew => 400,
            ErrorCode::ValidationFailed
            | ErrorCode::BatchRefused
            | ErrorCode::ForeignReference
            | ErrorCode::ServerOwnedField
            | ErrorCode::AppendOnly
            | ErrorCode::UnknownRecord
            | ErrorCode::NotEnoughData
            | ErrorCode::SingleOutcomeClass
            | ErrorCode::NoExperiment => 422,
            ErrorCode::Unauthenticated
            | ErrorCode::InvalidCredentials
            | ErrorCode::TokenExpired
            | ErrorCode::TokenInvalid => 401,
            ErrorCode::Forbidden | ErrorCode::TenantSuspended | ErrorCode::DeviceRevoked => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::UpgradeRequired => 426,
            ErrorCode::RateLimited | ErrorCode::QuotaExceeded => 429,
            ErrorCode::Timeout => 504,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// Whether retrying the same request later may succeed (the sync engine backs off and retries).
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::RateLimited
                | ErrorCode::Timeout
                | ErrorCode::Unavailable
                | ErrorCode::Internal
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body of every error response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            request_id: None,
            details: None,
        }
    }
}
