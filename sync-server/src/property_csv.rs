//! The office's property import file, read on the server (`POST /v1/admin/storms/{id}/properties/import`).
//! The same columns as the desktop app's import (`desktop-core::csv_import`): required `external_id`,
//! `address`, `latitude`, `longitude`; optional `roof_age_years`, `roof_material`, `square_feet`,
//! `home_value_cents`, `hail_size_in`, `distance_to_core_km`, `prior_claims`, `owner_name`,
//! `owner_phone`, `owner_email`, `status`. Every row is parsed and validated before anything is written;
//! any problem refuses the whole file with every bad row listed.

use std::collections::HashSet;

use domain::{
    Cents, Property, PropertyId, PropertyStatus, StormId, Timestamp, UnknownVariant, Validate,
};
use serde::Serialize;

pub const REQUIRED_COLUMNS: &[&str] = &["external_id", "address", "latitude", "longitude"];
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

/// The largest import accepted in one request.
pub const MAX_ROWS: usize = 200_000;

/// One refused row: its line (the header is line 1), the field, a stable code and plain words.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RowError {
    pub line: u64,
    pub field: String,
    pub code: String,
    pub message: String,
}

/// Why nothing was imported.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CsvError {
    Unreadable {
        message: String,
    },
    WrongColumns {
        missing: Vec<String>,
        unknown: Vec<String>,
        repeated: Vec<String>,
    },
    InvalidRows {
        rows: Vec<RowError>,
    },
    TooManyRows {
        max: usize,
    },
}

impl CsvError {
    pub fn message(&self) -> String {
        match self {
            CsvError::Unreadable { message } => format!("the file is not readable CSV: {message}"),
            CsvError::WrongColumns {
                missing,
                unknown,
                repeated,
            } => {
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
                format!("nothing was imported: {}", parts.join("; "))
            }
            CsvError::InvalidRows { rows } => format!(
                "nothing was imported: {} row(s) are invalid (listed in details)",
                rows.len()
            ),
            CsvError::TooManyRows { max } => {
                format!("nothing was imported: a file holds at most {max} properties")
            }
        }
    }
}

/// Parses and validates every row of `input` into properties of `storm` (fresh ids; the caller keeps
/// the ids of properties the storm already has).
pub fn parse(input: &[u8], storm: StormId, now: Timestamp) -> Result<Vec<Property>, CsvError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| CsvError::Unreadable {
            message: format!("cannot read the header: {e}"),
        })?
        .iter()
        .map(str::to_owned)
        .collect();
    let known = |c: &str| REQUIRED_COLUMNS.contains(&c) || OPTIONAL_COLUMNS.contains(&c);
    let unknown: Vec<String> = header.iter().filter(|c| !known(c)).cloned().collect();
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
        return Err(CsvError::WrongColumns {
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
        if properties.len() + errors.len() >= MAX_ROWS {
            return Err(CsvError::TooManyRows { max: MAX_ROWS });
        }
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                errors.push(RowError {
                    line: e.position().map_or(0, |p| p.line()),
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
        return Err(CsvError::InvalidRows { rows: errors });
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
                    .ok()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| bad(field, format!("{field}: '{v}' is not a number")))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn storm() -> StormId {
        StormId::generate()
    }

    #[test]
    fn good_files_parse_every_row() {
        let csv = "external_id,address,latitude,longitude,roof_material,home_value_cents\n\
                   A-1,1 Elm St,35.2,-97.4,metal,25000000\n\
                   A-2,2 Elm St,35.3,-97.5,,\n";
        let rows = parse(csv.as_bytes(), storm(), Timestamp::now()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].home_value, Some(Cents(25_000_000)));
        assert_eq!(rows[1].roof_material, None);
    }

    #[test]
    fn wrong_columns_are_listed() {
        let csv = "external_id,adress,latitude,latitude,colour\nA,x,1,1,red\n";
        match parse(csv.as_bytes(), storm(), Timestamp::now()) {
            Err(CsvError::WrongColumns {
                missing,
                unknown,
                repeated,
            }) => {
                assert_eq!(missing, vec!["address", "longitude"]);
                assert_eq!(unknown, vec!["adress", "colour"]);
                assert_eq!(repeated, vec!["latitude"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let csv = "external_id,address,latitude,longitude,status\n\
                   A-1,1 Elm St,35.2,-97.4,new\n\
                   A-2,2 Elm St,north,-97.5,new\n\
                   A-1,3 Elm St,35.2,-97.4,new\n\
                   A-4,4 Elm St,35.2,-97.4,sold\n";
        match parse(csv.as_bytes(), storm(), Timestamp::now()) {
            Err(CsvError::InvalidRows { rows }) => {
                let lines: Vec<(u64, &str)> =
                    rows.iter().map(|r| (r.line, r.field.as_str())).collect();
                assert_eq!(
                    lines,
                    vec![(3, "latitude"), (4, "external_id"), (5, "status")]
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
