//! Request limits: the largest body the server reads, and the error that names it; the answers for plan
//! quotas (a refused hard limit, and the warning header of a passed soft limit).

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use server_store::quotas::{QuotaRefusal, QuotaWarning};
use sync_protocol::ErrorCode;

use crate::error::ApiError;

/// The largest request body, after decompression.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// How long one request may take before the server gives up on it.
pub const REQUEST_TIMEOUT_SECS: u64 = 30;

/// The 413 answer naming the limit.
pub fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "the request body is larger than the {} MiB limit; send smaller batches",
            MAX_BODY_BYTES / (1024 * 1024)
        ),
    )
    .with_details(serde_json::json!({ "limit_bytes": MAX_BODY_BYTES }))
}

/// The response header that carries each passed soft limit (one value per limit).
pub const QUOTA_WARNING_HEADER: HeaderName = HeaderName::from_static("stormops-quota-warning");

/// Headers for passed soft limits: `stormops-quota-warning: <limit> <used> of <soft> included …`.
pub fn warning_headers(warnings: &[QuotaWarning]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for w in warnings {
        if let Ok(value) = HeaderValue::from_str(&w.message()) {
            headers.append(QUOTA_WARNING_HEADER, value);
        }
    }
    headers
}

/// The 429 `quota_exceeded` answer: the message and details name the limit, the plan, and the plan that
/// lifts it. Not retryable: waiting does not help (a new month, fewer devices or a larger plan does).
pub fn quota_refused(refusal: &QuotaRefusal) -> ApiError {
    ApiError::new(ErrorCode::QuotaExceeded, refusal.to_string())
        .with_details(serde_json::to_value(refusal).unwrap_or_default())
}
