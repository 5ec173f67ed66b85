//! The import file's columns: which exist, which are required, and which header spellings name them.
//! Case, surrounding spaces, and spaces or hyphens between words do not matter (`External ID` is
//! `external_id`), and Excel's UTF-8 byte-order mark is not part of the first name. Abbreviations
//! (`lat`, `addr`) are deliberately not guessed: a refused header costs the office one rename, while a
//! wrongly guessed column would put a storm's properties in the wrong place without anyone noticing.

use std::collections::HashSet;

use crate::PropertyCsvError;

/// Columns that must be present.
pub const REQUIRED_COLUMNS: &[&str] = &["external_id", "address", "latitude", "longitude"];
/// Columns that may be present (an empty cell means "unknown").
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

/// The snake_case form of a header cell or a vocabulary value: trimmed, lower case, each run of spaces,
/// hyphens or underscores one `_`.
pub(crate) fn snake_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut separator = false;
    for c in text.trim().trim_start_matches('\u{feff}').trim().chars() {
        if c.is_whitespace() || c == '-' || c == '_' {
            separator = true;
        } else {
            if separator && !out.is_empty() {
                out.push('_');
            }
            separator = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The column a header cell names, or `None` when it names none.
pub fn canonical_column(header_cell: &str) -> Option<&'static str> {
    let name = snake_case(header_cell);
    REQUIRED_COLUMNS
        .iter()
        .chain(OPTIONAL_COLUMNS)
        .find(|c| **c == name)
        .copied()
}

/// Where each column of a valid header sits in a row.
#[derive(Debug)]
pub(crate) struct ColumnMap {
    positions: Vec<(&'static str, usize)>,
    /// Columns whose header cell is blank (spreadsheets often leave a few at the end): allowed while
    /// their cells are empty too.
    pub(crate) unnamed: Vec<usize>,
    /// How many cells each row must have.
    pub(crate) width: usize,
}

impl ColumnMap {
    /// The position of `column` in a row, when the file has it.
    pub(crate) fn position(&self, column: &str) -> Option<usize> {
        self.positions
            .iter()
            .find(|(name, _)| *name == column)
            .map(|(_, at)| *at)
    }

    /// The column at a position, for naming a cell in an error.
    pub(crate) fn name_at(&self, at: usize) -> String {
        self.positions.iter().find(|(_, p)| *p == at).map_or_else(
            || format!("column {}", at + 1),
            |(name, _)| (*name).to_owned(),
        )
    }
}

/// Checks a header row: every cell names a known column (or is blank), no column twice, every
/// required column present. Every problem is listed at once.
pub(crate) fn read_header(cells: &[&str]) -> Result<ColumnMap, PropertyCsvError> {
    let mut positions = Vec::new();
    let mut unnamed = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let mut repeated: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for (at, cell) in cells.iter().enumerate() {
        if snake_case(cell).is_empty() {
            unnamed.push(at);
            continue;
        }
        match canonical_column(cell) {
            Some(column) => {
                if seen.insert(column) {
                    positions.push((column, at));
                } else if !repeated.iter().any(|r| r == column) {
                    repeated.push(column.to_owned());
                }
            }
            None => {
                let written = cell.trim().trim_start_matches('\u{feff}').to_owned();
                if !unknown.contains(&written) {
                    unknown.push(written);
                }
            }
        }
    }
    let missing: Vec<String> = REQUIRED_COLUMNS
        .iter()
        .filter(|c| !seen.contains(*c))
        .map(|c| (*c).to_owned())
        .collect();
    if !missing.is_empty() || !unknown.is_empty() || !repeated.is_empty() {
        return Err(PropertyCsvError::WrongColumns {
            missing,
            unknown,
            repeated,
        });
    }
    Ok(ColumnMap {
        positions,
        unnamed,
        width: cells.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_a_column_name_it() {
        for cell in [
            "external_id",
            "External ID",
            " EXTERNAL-ID ",
            "external__id",
            "\u{feff}external_id",
        ] {
            assert_eq!(canonical_column(cell), Some("external_id"), "{cell:?}");
        }
        assert_eq!(
            canonical_column("Home Value Cents"),
            Some("home_value_cents")
        );
    }

    #[test]
    fn abbreviations_and_other_words_name_no_column() {
        for cell in ["lat", "addr", "lng", "externalid", "colour", ""] {
            assert_eq!(canonical_column(cell), None, "{cell:?}");
        }
    }

    #[test]
    fn a_header_with_every_kind_of_problem_lists_each_once() {
        let cells = [
            "external_id",
            "adress",
            "Latitude",
            "latitude",
            "LATITUDE",
            "colour",
            "colour",
        ];
        match read_header(&cells) {
            Err(PropertyCsvError::WrongColumns {
                missing,
                unknown,
                repeated,
            }) => {
                assert_eq!(missing, ["address", "longitude"]);
                assert_eq!(unknown, ["adress", "colour"]);
                assert_eq!(repeated, ["latitude"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn blank_header_cells_are_unnamed_columns_not_errors() {
        let map = read_header(&["external_id", "address", "latitude", "longitude", "", " "])
            .expect("a valid header");
        assert_eq!(map.unnamed, [4, 5]);
        assert_eq!(map.width, 6);
        assert_eq!(map.position("latitude"), Some(2));
        assert_eq!(map.position("status"), None);
        assert_eq!(map.name_at(3), "longitude");
        assert_eq!(map.name_at(5), "column 6");
    }
}
