//! The property import file (CSV) of a storm, read the same way on a laptop (`stormops-field property
//! import`, the desktop app) and on the sync server (the office's `POST …/properties/import`): its
//! columns and header spellings (`columns`), each row's cells (`row`), and the whole file's rules here.
//! No IO: callers hand over the bytes they read.
//!
//! A file imports whole or not at all. The header must name known columns, each once, including the
//! required ones; then every row is read and validated, and every problem of every bad row is reported
//! with its line (the header is line 1), its column, a stable code and plain words. Rows whose cells
//! are all empty are skipped, as are columns with a blank header whose cells are all empty (both are
//! what spreadsheets leave behind); Excel's UTF-8 byte-order mark is ignored, and a file whose lines end
//! in a bare CR (old Mac exports) is read as if they ended in LF.

mod columns;
mod row;

use std::collections::HashSet;
use std::fmt;

use domain::{Property, StormId, Timestamp, Validate};
use serde::Serialize;

pub use columns::{OPTIONAL_COLUMNS, REQUIRED_COLUMNS, canonical_column};

/// The most data rows one file may hold: the server parses a request's whole body in memory before
/// one transaction, and a laptop's import is held to the same size so a file one side takes the other
/// takes too.
pub const MAX_ROWS: usize = 200_000;

/// One problem with one row: its 1-based line (where the row starts; the header is line 1), the column
/// (empty when the problem is the row's shape), a stable code and plain words.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RowError {
    pub line: u64,
    pub field: String,
    pub code: String,
    pub message: String,
}

/// Why nothing was imported. Serialized with a `kind` tag: the server sends it as the error's details.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PropertyCsvError {
    /// No header could be read (an empty file, a header that is not UTF-8 text).
    Unreadable { message: String },
    /// The header does not name the expected columns.
    WrongColumns {
        missing: Vec<String>,
        unknown: Vec<String>,
        repeated: Vec<String>,
    },
    /// Some rows are invalid: every problem of every one of them.
    InvalidRows { rows: Vec<RowError> },
    /// More than [`MAX_ROWS`] data rows.
    TooManyRows { max: usize },
}

impl PropertyCsvError {
    /// The stable code of the whole refusal, e.g. `import.invalid_rows`.
    pub fn code(&self) -> &'static str {
        match self {
            PropertyCsvError::Unreadable { .. } => "import.unreadable",
            PropertyCsvError::WrongColumns { .. } => "import.wrong_columns",
            PropertyCsvError::InvalidRows { .. } => "import.invalid_rows",
            PropertyCsvError::TooManyRows { .. } => "import.too_many_rows",
        }
    }
}

impl fmt::Display for PropertyCsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropertyCsvError::Unreadable { message } => f.write_str(message),
            PropertyCsvError::WrongColumns {
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
                f.write_str(&parts.join("; "))
            }
            PropertyCsvError::InvalidRows { rows } => {
                let lines = rows.iter().map(|r| r.line).collect::<HashSet<_>>().len();
                if lines == rows.len() {
                    write!(f, "{lines} invalid row(s)")
                } else {
                    write!(f, "{lines} invalid row(s), {} problems", rows.len())
                }
            }
            PropertyCsvError::TooManyRows { max } => {
                write!(f, "a file holds at most {max} properties; split it")
            }
        }
    }
}

impl std::error::Error for PropertyCsvError {}

/// A property read from the file, with the line its row starts on.
#[derive(Clone, Debug, PartialEq)]
pub struct PropertyRow {
    pub line: u64,
    pub property: Property,
}

/// Reads and validates every row of `input` into properties of `storm` (each with a fresh id: the
/// caller keeps the ids of properties it already has); all of them, or why none.
pub fn parse(
    input: &[u8],
    storm: StormId,
    now: Timestamp,
) -> Result<Vec<Property>, PropertyCsvError> {
    parse_rows(input, storm, now).map(|rows| rows.into_iter().map(|r| r.property).collect())
}

/// [`parse`], keeping each property's line (for problems found later, such as an `external_id` the
/// storm already holds).
pub fn parse_rows(
    input: &[u8],
    storm: StormId,
    now: Timestamp,
) -> Result<Vec<PropertyRow>, PropertyCsvError> {
    parse_at_most(input, storm, now, MAX_ROWS)
}

fn parse_at_most(
    input: &[u8],
    storm: StormId,
    now: Timestamp,
    max_rows: usize,
) -> Result<Vec<PropertyRow>, PropertyCsvError> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    // The tokenizer ends records at a bare CR (old Mac exports) but counts lines by LF only: such a
    // file is read with LFs so its problems get their real line numbers.
    let lf_endings: Vec<u8>;
    let input = if !input.contains(&b'\n') && input.contains(&b'\r') {
        lf_endings = input
            .iter()
            .map(|&b| if b == b'\r' { b'\n' } else { b })
            .collect();
        &lf_endings[..]
    } else {
        input
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input);
    let mut record = csv::ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => {}
        Ok(false) => {
            return Err(PropertyCsvError::Unreadable {
                message: "the file is empty: its first line must name the columns".into(),
            });
        }
        Err(e) => {
            return Err(PropertyCsvError::Unreadable {
                message: format!("cannot read the header: {e}"),
            });
        }
    }
    let header: Vec<&str> = record
        .iter()
        .map(std::str::from_utf8)
        .collect::<Result<_, _>>()
        .map_err(|_| PropertyCsvError::Unreadable {
            message: "the header line is not UTF-8 text: save the file as CSV UTF-8".into(),
        })?;
    let columns = columns::read_header(&header)?;

    let mut lines = LineCounter {
        input,
        offset: 0,
        line: 1,
    };
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut external_ids = HashSet::new();
    let mut data_rows = 0_usize;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // Over bytes in memory only a broken reader errs; the rest cannot be trusted.
                errors.push(RowError {
                    line: e.position().map_or(0, |p| lines.line_at(p.byte())),
                    field: String::new(),
                    code: "import.malformed_row".into(),
                    message: e.to_string(),
                });
                break;
            }
        }
        let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
        let mut problems = Vec::new();
        let cells: Vec<&str> = record
            .iter()
            .enumerate()
            .map(|(at, bytes)| match std::str::from_utf8(bytes) {
                Ok(text) => text.trim(),
                Err(_) => {
                    let field = columns.name_at(at);
                    problems.push(RowError {
                        line,
                        message: format!(
                            "{field}: the text is not UTF-8; save the file as CSV UTF-8"
                        ),
                        field,
                        code: "import.not_utf8".into(),
                    });
                    ""
                }
            })
            .collect();
        if problems.is_empty() && cells.iter().all(|c| c.is_empty()) {
            continue;
        }
        data_rows += 1;
        if data_rows > max_rows {
            return Err(PropertyCsvError::TooManyRows { max: max_rows });
        }
        if cells.len() != columns.width {
            // Cells out of place would only be misread: the row's shape is its one problem.
            errors.push(RowError {
                line,
                field: String::new(),
                code: "import.malformed_row".into(),
                message: format!(
                    "the row has {} cells but the header names {} columns",
                    cells.len(),
                    columns.width
                ),
            });
            continue;
        }
        for &at in &columns.unnamed {
            if !cells[at].is_empty() {
                problems.push(RowError {
                    line,
                    field: columns.name_at(at),
                    code: "import.unnamed_column".into(),
                    message: format!(
                        "column {} has no header but this row has a value in it: name the column or empty it",
                        at + 1
                    ),
                });
            }
        }
        let cell = |name: &str| {
            columns
                .position(name)
                .map(|at| cells[at])
                .filter(|v| !v.is_empty())
        };
        match row::property_from_cells(cell, line, storm) {
            Ok(property) if problems.is_empty() => {
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
                    rows.push(PropertyRow { line, property });
                }
            }
            Ok(_) => errors.append(&mut problems),
            Err(cell_problems) => {
                // A cell that is not text is already named; do not also call it missing.
                for p in cell_problems {
                    if !problems.iter().any(|q| q.field == p.field) {
                        problems.push(p);
                    }
                }
                errors.append(&mut problems);
            }
        }
    }
    if !errors.is_empty() {
        return Err(PropertyCsvError::InvalidRows { rows: errors });
    }
    Ok(rows)
}

/// Line numbers of record starts. The tokenizer's own count is one short per CRLF before a record (it
/// places the record's start before the LF of the CRLF that ended the previous one), so Windows files
/// would get wrong lines: lines are counted here, from the record's byte offset.
struct LineCounter<'i> {
    input: &'i [u8],
    offset: usize,
    line: u64,
}

impl LineCounter<'_> {
    /// The line of the record starting at `byte` (offsets only grow from one call to the next).
    fn line_at(&mut self, byte: u64) -> u64 {
        let start = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.input.len());
        if start > self.offset {
            self.line += self.input[self.offset..start]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
            self.offset = start;
        }
        // Line ends still before the record's first cell belong to the previous line.
        while let Some(&b) = self.input.get(self.offset) {
            match b {
                b'\n' => self.line += 1,
                b'\r' => {}
                _ => break,
            }
            self.offset += 1;
        }
        self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{Cents, PropertyStatus};

    fn storm() -> StormId {
        StormId::generate()
    }

    fn problems(csv: &str) -> Vec<(u64, String, String)> {
        match parse(csv.as_bytes(), storm(), Timestamp::now()) {
            Err(PropertyCsvError::InvalidRows { rows }) => rows
                .into_iter()
                .map(|r| (r.line, r.field, r.code))
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    fn found(line: u64, field: &str, code: &str) -> (u64, String, String) {
        (line, field.to_owned(), code.to_owned())
    }

    #[test]
    fn good_files_parse_every_row() {
        let csv = "external_id,address,latitude,longitude,roof_material,home_value_cents\n\
                   A-1,1 Elm St,35.2,-97.4,metal,25000000\n\
                   A-2,2 Elm St,35.3,-97.5,,\n";
        let storm = storm();
        let rows = parse(csv.as_bytes(), storm, Timestamp::now()).expect("valid");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].home_value, Some(Cents(25_000_000)));
        assert_eq!(rows[1].roof_material, None);
        assert!(rows.iter().all(|p| p.storm_id == storm));
        assert_ne!(rows[0].id, rows[1].id);
    }

    #[test]
    fn wrong_columns_are_listed() {
        let csv = "external_id,adress,latitude,latitude,colour\nA,x,1,1,red\n";
        let err = parse(csv.as_bytes(), storm(), Timestamp::now()).expect_err("wrong columns");
        assert_eq!(err.code(), "import.wrong_columns");
        assert_eq!(
            err.to_string(),
            "missing required columns: address, longitude; unknown columns: adress, colour; \
             repeated columns: latitude"
        );
        match err {
            PropertyCsvError::WrongColumns {
                missing,
                unknown,
                repeated,
            } => {
                assert_eq!(missing, ["address", "longitude"]);
                assert_eq!(unknown, ["adress", "colour"]);
                assert_eq!(repeated, ["latitude"]);
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
                   A-4,4 Elm St,35.2,-97.4,sold\n\
                   A-5,,95,-97.4,new\n";
        assert_eq!(
            problems(csv),
            [
                found(3, "latitude", "import.invalid_value"),
                found(4, "external_id", "import.duplicate_external_id"),
                found(5, "status", "import.invalid_value"),
                found(6, "address", "validation.required"),
            ]
        );
    }

    #[test]
    fn an_office_spreadsheet_export_reads_as_written() {
        // Excel's "CSV UTF-8": byte-order mark, headings in title case, CRLF, a vocabulary value as a
        // heading, a quoted address over two lines, rows and a trailing column left blank.
        let csv = "\u{feff}External ID,Address,Latitude,Longitude,Status,\r\n\
                   A-1,\"1 Elm St\r\nUnit 2\",35.2,-97.4,In Progress,\r\n\
                   ,,,,,\r\n\
                   \r\n\
                   A-2, 2 Elm St ,35.3,-97.5,,\r\n";
        let rows = parse_rows(csv.as_bytes(), storm(), Timestamp::now()).expect("valid");
        let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 6]);
        assert_eq!(rows[0].property.address, "1 Elm St\r\nUnit 2");
        assert_eq!(rows[0].property.status, PropertyStatus::InProgress);
        assert_eq!(rows[1].property.address, "2 Elm St");
    }

    #[test]
    fn windows_line_ends_keep_every_line_number() {
        let csv = "external_id,address,latitude,longitude\r\n\
                   A-1,1 Elm St,x,-97.4\r\n\
                   \r\n\
                   A-2,2 Elm St,35.2,y\r\n";
        assert_eq!(
            problems(csv),
            [
                found(2, "latitude", "import.invalid_value"),
                found(4, "longitude", "import.invalid_value"),
            ]
        );
    }

    #[test]
    fn a_file_with_carriage_returns_only_counts_its_lines() {
        let csv = "external_id,address,latitude,longitude\rA-1,1 Elm St,35.2,-97.4\rA-2,2 Elm St,x,-97.4\r";
        assert_eq!(
            problems(csv),
            [found(3, "latitude", "import.invalid_value")]
        );
    }

    #[test]
    fn a_value_under_a_blank_header_is_refused_not_dropped() {
        let csv = "external_id,address,latitude,longitude,\nA-1,1 Elm St,35.2,-97.4,555-0100\n";
        assert_eq!(
            problems(csv),
            [found(2, "column 5", "import.unnamed_column")]
        );
    }

    #[test]
    fn a_row_of_the_wrong_width_is_one_problem() {
        let csv = "external_id,address,latitude,longitude\nA-1,1 Elm St,35.2\nA-2,2 Elm St,35.2,-97.4,x\n";
        assert_eq!(
            problems(csv),
            [
                found(2, "", "import.malformed_row"),
                found(3, "", "import.malformed_row"),
            ]
        );
    }

    #[test]
    fn text_that_is_not_utf8_is_named_by_column() {
        let mut csv = b"external_id,address,latitude,longitude,owner_name\n".to_vec();
        csv.extend_from_slice(b"A-1,1 Elm St,35.2,-97.4,Ren\xe9e\n");
        csv.extend_from_slice(b"A-2,2 Elm St,\xff,-97.4,\n");
        match parse(&csv, storm(), Timestamp::now()) {
            Err(PropertyCsvError::InvalidRows { rows }) => {
                let got: Vec<(u64, &str, &str)> = rows
                    .iter()
                    .map(|r| (r.line, r.field.as_str(), r.code.as_str()))
                    .collect();
                assert_eq!(
                    got,
                    [
                        (2, "owner_name", "import.not_utf8"),
                        (3, "latitude", "import.not_utf8"),
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
        let header = b"external_id,addr\xe9ss\n";
        assert_eq!(
            parse(header, storm(), Timestamp::now()).map_err(|e| e.code()),
            Err("import.unreadable")
        );
    }

    #[test]
    fn an_empty_file_is_unreadable_and_a_header_alone_imports_nothing() {
        for empty in ["", "\u{feff}", "\n\n"] {
            let err = parse(empty.as_bytes(), storm(), Timestamp::now()).expect_err("empty");
            assert_eq!(err.code(), "import.unreadable", "{empty:?}");
        }
        let rows = parse(
            b"external_id,address,latitude,longitude\n",
            storm(),
            Timestamp::now(),
        );
        assert_eq!(rows, Ok(Vec::new()));
    }

    #[test]
    fn more_rows_than_allowed_are_refused_whole() {
        let mut csv = String::from("external_id,address,latitude,longitude\n");
        for i in 0..4 {
            csv.push_str(&format!("A-{i},{i} Elm St,35.2,-97.4\n,,,\n"));
        }
        let parsed = |max| parse_at_most(csv.as_bytes(), storm(), Timestamp::now(), max);
        assert_eq!(parsed(4).map(|r| r.len()), Ok(4), "blank rows do not count");
        assert_eq!(parsed(3), Err(PropertyCsvError::TooManyRows { max: 3 }));
    }

    #[test]
    fn refusals_serialize_with_their_kind() {
        let err = PropertyCsvError::InvalidRows {
            rows: vec![RowError {
                line: 3,
                field: "latitude".into(),
                code: "import.invalid_value".into(),
                message: "latitude: 'x' is not a number".into(),
            }],
        };
        assert_eq!(err.to_string(), "1 invalid row(s)");
        let json = serde_json::to_value(&err).expect("json");
        assert_eq!(json["kind"], "invalid_rows");
        assert_eq!(json["rows"][0]["line"], 3);
        assert_eq!(json["rows"][0]["code"], "import.invalid_value");
        let too_many =
            serde_json::to_value(PropertyCsvError::TooManyRows { max: 5 }).expect("json");
        assert_eq!(
            too_many,
            serde_json::json!({ "kind": "too_many_rows", "max": 5 })
        );
    }
}
