//! Request limits: the largest body the server reads, and the error that names it.

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
