//! CSV import of properties from a file. The parsing and validation live in desktop-core (the desktop
//! app imports the same way); this maps its errors to the CLI's codes and details.

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
(new, in_progress, inspected, contracted, not_interested, do_not_contact; default new). Unknown or \
missing columns, or any invalid row, import nothing; every row error is reported with its line number.";

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
    csv_import::parse_properties(file, storm, now).map_err(|err| match err {
        CsvImportError::Unreadable(detail) => {
            CliError::new("import.unreadable", format!("{}: {detail}", path.display()))
        }
        CsvImportError::WrongColumns {
            missing,
            unknown,
            repeated,
        } => CliError::new(
            "import.wrong_columns",
            format!(
                "{}: {}; nothing imported",
                path.display(),
                CsvImportError::describe_columns(&missing, &unknown, &repeated)
            ),
        )
        .with_details(json!({ "missing": missing, "unknown": unknown, "repeated": repeated, "expected_required": REQUIRED_COLUMNS, "expected_optional": OPTIONAL_COLUMNS })),
        CsvImportError::InvalidRows(errors) => {
            let rows: Vec<_> = errors.iter().map(|e| json!({ "line": e.line, "field": e.field, "code": e.code, "message": e.message })).collect();
            CliError::new(
                "import.invalid_rows",
                format!(
                    "{}: {} invalid row(s); nothing imported",
                    path.display(),
                    errors.len()
                ),
            )
            .with_details(json!({ "rows": rows }))
        }
    })
}
