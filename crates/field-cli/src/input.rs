//! Where secrets and times come from: passphrases from the environment or a no-echo prompt, and
//! timestamps typed as `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS]Z` or Unix milliseconds.

use domain::Timestamp;
use local_store::{Passphrase, utc_day_range};
use zeroize::Zeroizing;

use crate::error::CliError;

/// The current passphrase: `STORMOPS_PASSPHRASE`, else a prompt.
pub fn passphrase(prompt: &str) -> Result<Passphrase, CliError> {
    if let Ok(value) = std::env::var("STORMOPS_PASSPHRASE") {
        return Ok(Passphrase::new(value));
    }
    ask(prompt).map(Passphrase::new)
}

/// A new passphrase: `STORMOPS_NEW_PASSPHRASE`, else prompted twice.
pub fn new_passphrase(prompt: &str) -> Result<Passphrase, CliError> {
    if let Ok(value) = std::env::var("STORMOPS_NEW_PASSPHRASE") {
        return Ok(Passphrase::new(value));
    }
    confirmed(prompt)
}

/// The passphrase for a new tenant file: `STORMOPS_PASSPHRASE`, else prompted twice.
pub fn creation_passphrase() -> Result<Passphrase, CliError> {
    if let Ok(value) = std::env::var("STORMOPS_PASSPHRASE") {
        return Ok(Passphrase::new(value));
    }
    confirmed("Passphrase for the new tenant file: ")
}

/// Asks twice; the copies are wiped from memory when dropped.
fn confirmed(prompt: &str) -> Result<Passphrase, CliError> {
    let first = Zeroizing::new(ask(prompt)?);
    let second = Zeroizing::new(ask("Repeat it: ")?);
    if first != second {
        return Err(CliError::new(
            "cli.passphrase_mismatch",
            "the two passphrases differ",
        ));
    }
    Ok(Passphrase::new(first.as_str()))
}

fn ask(prompt: &str) -> Result<String, CliError> {
    rpassword::prompt_password(prompt).map_err(|_| {
        CliError::new("cli.passphrase_required", "no terminal to ask for the passphrase; set STORMOPS_PASSPHRASE (and STORMOPS_NEW_PASSPHRASE)")
    })
}

/// Parses a time typed on the command line (UTC).
pub fn timestamp(name: &str, text: &str) -> Result<Timestamp, CliError> {
    let bad = || {
        CliError::invalid_argument(
            name,
            format!(
                "'{text}' is not a time (YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS]Z or Unix milliseconds)"
            ),
        )
    };
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(Timestamp::from_millis(ms));
    }
    let (date, time) = match text.split_once('T') {
        Some((date, time)) => (date, Some(time.trim_end_matches('Z'))),
        None => (text, None),
    };
    let (start, _) = utc_day_range(date).map_err(|_| bad())?;
    let Some(time) = time else {
        return Ok(Timestamp::from_millis(start));
    };
    let parts: Vec<&str> = time.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2) {
        return Err(bad());
    }
    let number = |p: &str, max: i64| {
        p.parse::<i64>()
            .ok()
            .filter(|n| (0..=max).contains(n))
            .ok_or_else(bad)
    };
    let (h, m) = (number(parts[0], 23)?, number(parts[1], 59)?);
    let s = if parts.len() == 3 {
        number(parts[2], 59)?
    } else {
        0
    };
    Ok(Timestamp::from_millis(
        start + ((h * 60 + m) * 60 + s) * 1000,
    ))
}

/// The server account's password: `STORMOPS_PASSWORD`, else a prompt.
pub fn account_password() -> Result<Zeroizing<String>, CliError> {
    if let Ok(value) = std::env::var("STORMOPS_PASSWORD") {
        return Ok(Zeroizing::new(value));
    }
    rpassword::prompt_password("Account password: ")
        .map(Zeroizing::new)
        .map_err(|_| {
            CliError::new(
                "cli.password_required",
                "no terminal to ask for the account password; set STORMOPS_PASSWORD",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_three_forms() {
        assert_eq!(
            timestamp("at", "1790000000000").expect("ms"),
            Timestamp(1_790_000_000_000)
        );
        assert_eq!(
            timestamp("at", "1970-01-02").expect("date"),
            Timestamp(86_400_000)
        );
        assert_eq!(
            timestamp("at", "1970-01-01T01:00Z").expect("time"),
            Timestamp(3_600_000)
        );
        assert_eq!(
            timestamp("at", "1970-01-01T00:00:05").expect("seconds"),
            Timestamp(5_000)
        );
        for bad in [
            "yesterday",
            "2026-13-01",
            "2026-01-01T25:00Z",
            "2026-01-01T1:00",
        ] {
            assert_eq!(
                timestamp("at", bad).expect_err(bad).code,
                "cli.invalid_argument"
            );
        }
    }
}
