//! Small helpers that turn stored text back into typed values; a stored value that no longer parses is
//! [`StoreError::Corrupt`], never a panic.

use std::str::FromStr;

use crate::error::StoreError;

pub(crate) fn parse_text<T: FromStr>(text: &str, column: &str) -> Result<T, StoreError> {
    text.parse::<T>().map_err(|_| {
        StoreError::Corrupt(format!(
            "{column} holds '{}'",
            text.chars().take(64).collect::<String>()
        ))
    })
}
