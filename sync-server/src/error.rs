//! The one error type of the HTTP API: a stable code, a plain message, optional details. Client mistakes
//! answer 4xx; internal failures answer 500 with no internals (they are logged once, with the request id).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sync_protocol::{ErrorBody, ErrorCode};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<serde_json::Value>,
    /// Seconds after which a retry may succeed (sent as `Retry-After`).
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
            retry_after_secs: None,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// An internal failure: logged here, answered without internals.
    pub fn internal(context: &str, err: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{context}");
        Self::new(
            ErrorCode::Internal,
            "something went wrong on the server; the request can be retried",
        )
    }

    pub fn unavailable(context: &str, err: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %err, "{context}");
        let mut e = Self::new(
            ErrorCode::Unavailable,
            "the server cannot reach its database right now; retry shortly",
        );
        e.retry_after_secs = Some(2);
        e
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            code: self.code,
            message: self.message,
            request_id: None,
            details: self.details,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response.extensions_mut().insert(ErrorMarker(self.code));
        response
    }
}

/// Marks a response as an error answer of ours, so the request-id layer can stamp the body.
#[derive(Debug, Clone, Copy)]
pub struct ErrorMarker(pub ErrorCode);

impl From<server_store::StoreError> for ApiError {
    fn from(err: server_store::StoreError) -> Self {
        if let server_store::StoreError::QuotaExceeded(refusal) = &err {
            return crate::limits::quota_refused(refusal);
        }
        let code = err.error_code();
        match code {
            ErrorCode::Internal => Self::internal("store failure", &err),
            ErrorCode::Unavailable => Self::unavailable("database unavailable", &err),
            _ => Self::new(code, err.to_string()),
        }
    }
}
