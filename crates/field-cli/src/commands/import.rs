//! CSV import of properties from a file. The parsing and validation live in `property-csv` (reached
//! through desktop-core; the desktop app and the server's office import read files the same way); this
//! maps its errors to the CLI's codes and details.

use std::path::Path;

use desktop_core::csv_import::{self, CsvImportError};
pub use desktop_core::csv_import::{OPTIONAL_COLUMNS, REQUIRED_COLUMNS};
use domain::*;
use serde_json::json;

use crate::error::CliError;

pub const CSV_HELP: &str = "Import properties from a CSV file with a header row. Required columns: \
external_id, address, latitude, longitude. Optional columns: roof_age_years, roof_material \
(asphalt_shingle, metal, tile, wood_shake, slate, flat, other), square_feet, home_value_cents, \
hail_size_in, distance_to_core_km, prior_claims, owner_name, owner_phone, owner_email, status \
(new, in_progress, inspected, contracted, not_interested, do_not_contact; default new). Headers and \
values may be written like headings (\"External ID\", \"In Progress\"); empty rows are skipped. Unknown \
or missing columns, any invalid row, or more than 200000 rows import nothing; every problem is reported \
with its line number.";

/// Reads and validates every row of `path`; returns the properties only when all rows are valid.
pub fn read_properties(
    path: &Path,
    storm: StormId,
    now: Timestamp,
) -> Result<Vec<Property>, CliError> {
    let file = std::fs::File::open(path).map_err(|e| {
        CliError::new(
            "import.unreadable",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let rows = csv_import::parse_properties(file, storm, now).map_err(|err| {
        let error = CliError::new(
            err.code(),
            format!("{}: {err}; nothing imported", path.display()),
        );
        match err {
            CsvImportError::Unreadable { .. } => error,
            CsvImportError::WrongColumns {
                missing,
                unknown,
                repeated,
            } => error.with_details(json!({ "missing": missing, "unknown": unknown, "repeated": repeated, "expected_required": REQUIRED_COLUMNS, "expected_optional": OPTIONAL_COLUMNS })),
            CsvImportError::InvalidRows { rows } => {
                let rows: Vec<_> = rows.iter().map(|e| json!({ "line": e.line, "field": e.field, "code": e.code, "message": e.message })).collect();
                error.with_details(json!({ "rows": rows }))
            }
            CsvImportError::TooManyRows { max } => error.with_details(json!({ "max_rows": max })),
        }
    })?;
    Ok(rows.into_iter().map(|r| r.property).collect())
}
