//! One data row's cells into a `Property`: numbers, whole numbers and vocabulary values read and
//! checked cell by cell, so a row with several bad cells names each of them, not only the first.

use std::str::FromStr;

use domain::{Cents, Property, PropertyId, PropertyStatus, StormId, UnknownVariant};

use crate::RowError;
use crate::columns::snake_case;

/// Longest piece of a bad cell quoted back in an error (a whole pasted paragraph helps nobody).
const QUOTED_CHARS: usize = 40;

/// Reads the cells of one row, collecting an error for every cell that cannot be read.
struct RowReader<'c, 'a> {
    cell: &'c dyn Fn(&str) -> Option<&'a str>,
    line: u64,
    errors: Vec<RowError>,
}

impl RowReader<'_, '_> {
    fn refuse(&mut self, field: &str, code: &str, message: String) {
        self.errors.push(RowError {
            line: self.line,
            field: field.to_owned(),
            code: code.to_owned(),
            message,
        });
    }

    fn invalid(&mut self, field: &str, value: &str, what: &str) {
        let quoted: String = value.chars().take(QUOTED_CHARS).collect();
        self.refuse(
            field,
            "import.invalid_value",
            format!("{field}: '{quoted}' is not {what}"),
        );
    }

    /// A decimal number; "NaN" and "inf" are refused here, as no column can hold them.
    fn number(&mut self, field: &str) -> Option<f64> {
        let value = (self.cell)(field)?;
        match value.parse::<f64>() {
            Ok(n) if n.is_finite() => Some(n),
            _ => {
                self.invalid(field, value, "a number");
                None
            }
        }
    }

    /// A number that must be present; `None` (with its error) when it is missing or unreadable.
    fn required_number(&mut self, field: &str) -> Option<f64> {
        if (self.cell)(field).is_none() {
            self.refuse(field, "validation.required", format!("{field} is required"));
            return None;
        }
        self.number(field)
    }

    fn whole_number(&mut self, field: &str) -> Option<i64> {
        let value = (self.cell)(field)?;
        match value.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.invalid(field, value, "a whole number");
                None
            }
        }
    }

    fn text(&self, field: &str) -> Option<String> {
        (self.cell)(field).map(str::to_owned)
    }

    /// A value of a closed vocabulary, in its stable text or written like a heading (`Asphalt
    /// Shingle`, `In-Progress`).
    fn vocabulary<T: FromStr<Err = UnknownVariant>>(&mut self, field: &str) -> Option<T> {
        let value = (self.cell)(field)?;
        match value.parse::<T>() {
            Ok(v) => Some(v),
            Err(unknown) => match snake_case(value).parse::<T>() {
                Ok(v) => Some(v),
                Err(_) => {
                    self.refuse(field, "import.invalid_value", unknown.to_string());
                    None
                }
            },
        }
    }
}

/// The property a row describes (a fresh id, in `storm`), or every cell that could not be read.
/// `cell` gives a column's trimmed, non-empty text. Rules on the whole record (ranges, required text)
/// are `Validate`'s, checked by the caller.
pub(crate) fn property_from_cells<'a>(
    cell: impl Fn(&str) -> Option<&'a str>,
    line: u64,
    storm: StormId,
) -> Result<Property, Vec<RowError>> {
    let mut row = RowReader {
        cell: &cell,
        line,
        errors: Vec::new(),
    };
    let latitude = row.required_number("latitude");
    let longitude = row.required_number("longitude");
    let roof_age_years = row.number("roof_age_years");
    let roof_material = row.vocabulary("roof_material");
    let square_feet = row.number("square_feet");
    let home_value = row.whole_number("home_value_cents").map(Cents);
    let hail_size_in = row.number("hail_size_in");
    let distance_to_core_km = row.number("distance_to_core_km");
    let prior_claims = match row.whole_number("prior_claims").map(u32::try_from) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            let value = row.text("prior_claims").unwrap_or_default();
            row.refuse(
                "prior_claims",
                "import.invalid_value",
                format!("prior_claims: {value} is out of range"),
            );
            0
        }
    };
    let status = row.vocabulary("status").unwrap_or(PropertyStatus::New);
    let (Some(latitude), Some(longitude), true) = (latitude, longitude, row.errors.is_empty())
    else {
        return Err(row.errors);
    };
    Ok(Property {
        id: PropertyId::generate(),
        storm_id: storm,
        external_id: row.text("external_id").unwrap_or_default(),
        address: row.text("address").unwrap_or_default(),
        latitude,
        longitude,
        roof_age_years,
        roof_material,
        square_feet,
        home_value,
        hail_size_in,
        distance_to_core_km,
        prior_claims,
        owner_name: row.text("owner_name"),
        owner_phone: row.text("owner_phone"),
        owner_email: row.text("owner_email"),
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::RoofMaterial;

    fn read<'a>(cells: &[(&str, &'a str)]) -> Result<Property, Vec<RowError>> {
        let cell = |name: &str| -> Option<&'a str> {
            cells
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| *v)
                .filter(|v| !v.is_empty())
        };
        property_from_cells(cell, 9, StormId::generate())
    }

    const PLACE: [(&str, &str); 4] = [
        ("external_id", "A-1"),
        ("address", "1 Elm St"),
        ("latitude", "35.2"),
        ("longitude", "-97.4"),
    ];

    #[test]
    fn optional_cells_default_to_unknown_new_and_no_claims() {
        let p = read(&PLACE).expect("a property");
        assert_eq!((p.latitude, p.longitude), (35.2, -97.4));
        assert_eq!(p.roof_material, None);
        assert_eq!(p.home_value, None);
        assert_eq!(p.prior_claims, 0);
        assert_eq!(p.status, PropertyStatus::New);
        assert_eq!(p.owner_email, None);
    }

    #[test]
    fn vocabulary_values_may_be_written_like_headings() {
        let mut cells = PLACE.to_vec();
        cells.push(("roof_material", "Asphalt Shingle"));
        cells.push(("status", "In-Progress"));
        let p = read(&cells).expect("a property");
        assert_eq!(p.roof_material, Some(RoofMaterial::AsphaltShingle));
        assert_eq!(p.status, PropertyStatus::InProgress);
    }

    #[test]
    fn every_bad_cell_of_a_row_is_named() {
        let cells = [
            ("external_id", "A-1"),
            ("address", "1 Elm St"),
            ("latitude", "NaN"),
            ("longitude", ""),
            ("square_feet", "inf"),
            ("home_value_cents", "250000.50"),
            ("prior_claims", "-1"),
            ("roof_material", "straw"),
            ("status", "sold"),
        ];
        let errors = read(&cells).expect_err("bad cells");
        let found: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("latitude", "import.invalid_value"),
                ("longitude", "validation.required"),
                ("roof_material", "import.invalid_value"),
                ("square_feet", "import.invalid_value"),
                ("home_value_cents", "import.invalid_value"),
                ("prior_claims", "import.invalid_value"),
                ("status", "import.invalid_value"),
            ]
        );
        assert!(errors.iter().all(|e| e.line == 9));
        assert_eq!(errors[0].message, "latitude: 'NaN' is not a number");
        assert!(errors[2].message.contains("straw"), "{}", errors[2].message);
    }

    #[test]
    fn a_long_bad_cell_is_quoted_short() {
        let long = "9".repeat(30) + &"x".repeat(500);
        let mut cells: Vec<(&str, &str)> = PLACE.to_vec();
        cells.push(("hail_size_in", &long));
        let errors = read(&cells).expect_err("bad cell");
        assert!(errors[0].message.len() < 80, "{}", errors[0].message);
    }
}
