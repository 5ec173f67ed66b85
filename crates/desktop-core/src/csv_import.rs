//! CSV import of properties, shared by the CLI and the desktop app. The header must name known columns
//! and include the required ones; every row is parsed and validated before anything is written, and
//! all row errors are reported with their line numbers. Any error imports nothing.

use std::collections::HashSet;
use std::io::Read;

use domain::*;

/// Columns that must be present.
pub const REQUIRED_COLUMNS: &[&str] = &["external_id", "address", "latitude", "longitude"];
/// Columns that may be present (empty cells mean "unknown").
pub const OPTIONAL_COLUMNS: &[&str] = &[
    "roof_age_years",
    "roof_material",
    "square_feet",
    "home_value_cents",
    "hail_size_in",
    "distance_to_core_km",
    "prior_claims",
    "owner_name",
    "owner_phone",
    "owner_email",
    "status",
];

/// One refused row: its 1-based line (the header is line 1), the field, a stable code and plain words.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub line: u64,
    pub field: String,
    pub code: String,
    pub message: String,
}

/// Why nothing was imported.
#[derive(Debug, Clone, PartialEq)]
pub enum CsvImportError {
    /// The text is not readable CSV at all (no header).
    Unreadable(String),
    /// The header does not name the expected columns.
    WrongColumns {
        missing: Vec<String>,
        unknown: Vec<String>,
        repeated: Vec<String>,
    },
    /// Some rows are invalid.
    InvalidRows(Vec<RowError>),
}

impl CsvImportError {
    /// A plain description of a header problem (the CLI and the app both show it).
    pub fn describe_columns(missing: &[String], unknown: &[String], repeated: &[String]) -> String {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing required columns: {}", missing.join(", ")));
        }
        if !unknown.is_empty() {
            parts.push(format!("unknown columns: {}", unknown.join(", ")));
        }
        if !repeated.is_empty() {
            parts.push(format!("repeated columns: {}", repeated.join(", ")));
        }
        parts.join("; ")
    }
}

/// Reads and validates every row; returns the properties only when all rows are valid.
pub fn parse_properties<R: Read>(
    input: R,
    storm: StormId,
    now: Timestamp,
) -> Result<Vec<Property>, CsvImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| CsvImportError::Unreadable(format!("cannot read the header: {e}")))?
        .iter()
        .map(str::to_owned)
        .collect();
    let unknown: Vec<String> = header
        .iter()
        .filter(|c| {
            !REQUIRED_COLUMNS.contains(&c.as_str()) && !OPTIONAL_COLUMNS.contains(&c.as_str())
        })
        .cloned()
        .collect();
    let missing: Vec<String> = REQUIRED_COLUMNS
        .iter()
        .filter(|c| !header.iter().any(|h| h == *c))
        .map(|c| (*c).to_owned())
        .collect();
    let mut seen = HashSet::new();
    let repeated: Vec<String> = header
        .iter()
        .filter(|c| !seen.insert(c.as_str()))
        .cloned()
        .collect();
    if !unknown.is_empty() || !missing.is_empty() || !repeated.is_empty() {
        return Err(CsvImportError::WrongColumns {
            missing,
            unknown,
            repeated,
        });
    }
    let column = |name: &str| header.iter().position(|h| h == name);
    let mut properties = Vec::new();
    let mut errors = Vec::new();
    let mut external_ids = HashSet::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(RowError {
                    line,
                    field: String::new(),
                    code: "import.malformed_row".into(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let cell = |name: &str| {
            column(name)
                .and_then(|i| record.get(i))
                .filter(|v| !v.is_empty())
        };
        match parse_row(&cell, storm) {
            Ok(property) => {
                if let Err(v) = property.validate(now) {
                    errors.push(RowError {
                        line,
                        field: v.field.clone(),
                        code: v.stable_code(),
                        message: v.message.clone(),
                    });
                } else if !external_ids.insert(property.external_id.clone()) {
                    errors.push(RowError {
                        line,
                        field: "external_id".into(),
                        code: "import.duplicate_external_id".into(),
                        message: format!(
                            "external_id {} appears earlier in the file",
                            property.external_id
                        ),
                    });
                } else {
                    properties.push(property);
                }
            }
            Err(e) => errors.push(RowError { line, ..e }),
        }
    }
    if !errors.is_empty() {
        return Err(CsvImportError::InvalidRows(errors));
    }
    Ok(properties)
}

fn parse_row<'a>(
    cell: &dyn Fn(&str) -> Option<&'a str>,
    storm: StormId,
) -> Result<Property, RowError> {
    let bad = |field: &str, message: String| RowError {
        line: 0,
        field: field.into(),
        code: "import.invalid_value".into(),
        message,
    };
    let number = |field: &str| -> Result<Option<f64>, RowError> {
        cell(field)
            .map(|v| {
                v.parse::<f64>()
                    .map_err(|_| bad(field, format!("{field}: '{v}' is not a number")))
            })
            .transpose()
    };
    let required_number = |field: &str| -> Result<f64, RowError> {
        number(field)?.ok_or_else(|| RowError {
            line: 0,
            field: field.into(),
            code: "validation.required".into(),
            message: format!("{field} is required"),
        })
    };
    let integer = |field: &str| -> Result<Option<i64>, RowError> {
        cell(field)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| bad(field, format!("{field}: '{v}' is not a whole number")))
            })
            .transpose()
    };
    let text = |field: &str| cell(field).map(str::to_owned);
    let prior_claims = integer("prior_claims")?.unwrap_or(0);
    Ok(Property {
        id: PropertyId::generate(),
        storm_id: storm,
        external_id: text("external_id").unwrap_or_default(),
        address: text("address").unwrap_or_default(),
        latitude: required_number("latitude")?,
        longitude: required_number("longitude")?,
        roof_age_years: number("roof_age_years")?,
        roof_material: cell("roof_material")
            .map(|v| {
                v.parse()
                    .map_err(|e: UnknownVariant| bad("roof_material", e.to_string()))
            })
            .transpose()?,
        square_feet: number("square_feet")?,
        home_value: integer("home_value_cents")?.map(Cents),
        hail_size_in: number("hail_size_in")?,
        distance_to_core_km: number("distance_to_core_km")?,
        prior_claims: u32::try_from(prior_claims).map_err(|_| {
            bad(
                "prior_claims",
                format!("prior_claims: {prior_claims} is out of range"),
            )
        })?,
        owner_name: text("owner_name"),
        owner_phone: text("owner_phone"),
        owner_email: text("owner_email"),
        status: cell("status")
            .map(|v| {
                v.parse()
                    .map_err(|e: UnknownVariant| bad("status", e.to_string()))
            })
            .transpose()?
            .unwrap_or(PropertyStatus::New),
    })
}
