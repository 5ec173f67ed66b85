//! The laptop's side of the property CSV import (the CLI's `property import FILE.csv` and the desktop
//! app): reads the file's bytes and hands them to `property-csv`, which owns the columns, the header
//! spellings and every row rule, exactly as the server applies them to the office's upload.

use std::io::Read;

use domain::{StormId, Timestamp};
pub use property_csv::{
    MAX_ROWS, OPTIONAL_COLUMNS, PropertyCsvError as CsvImportError, PropertyRow, REQUIRED_COLUMNS,
    RowError,
};

/// Reads `input` to its end, then parses and validates every row; the properties (with their lines)
/// only when all rows are valid. A read failure is `Unreadable`.
pub fn parse_properties<R: Read>(
    mut input: R,
    storm: StormId,
    now: Timestamp,
) -> Result<Vec<PropertyRow>, CsvImportError> {
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .map_err(|e| CsvImportError::Unreadable {
            message: format!("cannot read the file: {e}"),
        })?;
    property_csv::parse_rows(&bytes, storm, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that fails, as a file on a vanished USB stick does.
    struct Failing;

    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("device gone"))
        }
    }

    #[test]
    fn a_file_is_read_whole_then_parsed_with_lines() {
        let text = "external_id,address,latitude,longitude\n\nA-1,1 Elm St,35.2,-97.4\n";
        let rows = parse_properties(text.as_bytes(), StormId::generate(), Timestamp::now())
            .expect("valid");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].line, 3);
    }

    #[test]
    fn a_read_failure_is_unreadable() {
        match parse_properties(Failing, StormId::generate(), Timestamp::now()) {
            Err(CsvImportError::Unreadable { message }) => {
                assert!(message.contains("device gone"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
