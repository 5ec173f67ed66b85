//! A JSON extractor whose rejections are our own error body with a stable code: malformed JSON, wrong
//! types, unknown fields, invalid UUIDs, a missing content type and oversized bodies each get a 4xx
//! that says what was wrong, and nothing runs.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use sync_protocol::ErrorCode;

use crate::error::ApiError;

/// `Json<T>` with our rejections.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(classify(rejection)),
        }
    }
}

fn classify(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with `Content-Type: application/json`",
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::new(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {}", innermost(&e)),
        ),
        JsonRejection::JsonDataError(e) => {
            let detail = innermost(&e);
            let code = if detail.contains("unknown field") {
                ErrorCode::UnknownField
            } else if detail.contains("UUID") || detail.contains("uuid") {
                ErrorCode::InvalidUuid
            } else {
                ErrorCode::InvalidRequest
            };
            ApiError::new(
                code,
                format!("the body does not match the expected shape: {detail}"),
            )
        }
        JsonRejection::BytesRejection(e) => {
            let text = innermost(&e);
            if text.contains("length limit")
                || e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE
            {
                crate::limits::too_large()
            } else {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("could not read the body: {text}"),
                )
            }
        }
        other => ApiError::new(ErrorCode::InvalidRequest, other.body_text()),
    }
}

/// The most specific message in an error chain (serde's own words, with line and column).
fn innermost(err: &dyn std::error::Error) -> String {
    let mut current: &dyn std::error::Error = err;
    while let Some(source) = current.source() {
        current = source;
    }
    let text = current.to_string();
    text.chars().take(300).collect()
}
