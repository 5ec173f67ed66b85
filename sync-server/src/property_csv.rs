//! The server's side of the office's property import (`POST /v1/admin/storms/{id}/properties/import`):
//! checks the upload is CSV and hands its body to `property-csv`, which owns the columns, the header
//! spellings and every row rule (the same as a laptop's `property import`); its refusal becomes a 422
//! `validation_failed` whose details are the refusal itself (`kind`, and `rows` or the column lists).

use ::property_csv::PropertyCsvError;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use domain::{Property, StormId, Timestamp};
use sync_protocol::ErrorCode;

use crate::error::ApiError;

/// The properties of an upload (fresh ids: the caller keeps the ids of properties the storm already
/// has), or why nothing may be imported: not `text/csv` (415), or every problem the file has (422).
pub fn read_upload(
    headers: &HeaderMap,
    body: &[u8],
    storm: StormId,
    now: Timestamp,
) -> Result<Vec<Property>, ApiError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .trim()
        .to_ascii_lowercase()
        .starts_with("text/csv")
    {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the properties as CSV with `Content-Type: text/csv`",
        ));
    }
    ::property_csv::parse(body, storm, now).map_err(|e| refusal(&e))
}

fn refusal(e: &PropertyCsvError) -> ApiError {
    let listed = match e {
        PropertyCsvError::InvalidRows { .. } => " (listed in details)",
        _ => "",
    };
    ApiError::new(
        ErrorCode::ValidationFailed,
        format!("nothing was imported: {e}{listed}"),
    )
    .with_details(serde_json::to_value(e).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn csv_headers(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn only_csv_uploads_are_read() {
        let body = b"external_id,address,latitude,longitude\nA-1,1 Elm St,35.2,-97.4\n";
        let storm = StormId::generate();
        let read = |headers: &HeaderMap| read_upload(headers, body, storm, Timestamp::now());
        assert_eq!(
            read(&csv_headers("text/csv; charset=utf-8"))
                .map(|p| p.len())
                .ok(),
            Some(1)
        );
        let refused = read(&csv_headers("application/json")).expect_err("not CSV");
        assert_eq!(refused.code, ErrorCode::UnsupportedMediaType);
        let refused = read(&HeaderMap::new()).expect_err("no content type");
        assert_eq!(refused.code, ErrorCode::UnsupportedMediaType);
    }

    #[test]
    fn a_refused_file_says_why_and_lists_its_rows_in_the_details() {
        let body = b"external_id,address,latitude,longitude\nA-1,1 Elm St,north,-97.4\n";
        let refused = read_upload(
            &csv_headers("text/csv"),
            body,
            StormId::generate(),
            Timestamp::now(),
        )
        .expect_err("bad row");
        assert_eq!(refused.code, ErrorCode::ValidationFailed);
        assert_eq!(
            refused.message,
            "nothing was imported: 1 invalid row(s) (listed in details)"
        );
        let details = refused.details.unwrap_or_default();
        assert_eq!(details["kind"], "invalid_rows");
        assert_eq!(details["rows"][0]["line"], 2);
        assert_eq!(details["rows"][0]["field"], "latitude");
    }
}
