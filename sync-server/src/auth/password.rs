//! Password hashes: PBKDF2-HMAC-SHA256 (ring) with a per-user random salt, stored as
//! `pbkdf2-sha256$ITERATIONS$SALT$HASH` (base64) so the iteration count can rise without a migration.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, pbkdf2};
use std::num::NonZeroU32;
use zeroize::Zeroizing;

/// OWASP's figure for PBKDF2-HMAC-SHA256.
pub const ITERATIONS: u32 = 600_000;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = digest::SHA256_OUTPUT_LEN;
const SCHEME: &str = "pbkdf2-sha256";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password must be at least 8 characters")]
    TooShort,
    #[error("the password must be at most 1024 characters")]
    TooLong,
    #[error("the system random source failed")]
    Random,
}

/// Checks a new password's length.
pub fn check_new_password(password: &str) -> Result<(), PasswordError> {
    let len = password.chars().count();
    if len < 8 {
        return Err(PasswordError::TooShort);
    }
    if len > 1024 {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

/// Hashes a password for storage.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    check_new_password(password)?;
    let mut salt = [0u8; SALT_LEN];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| PasswordError::Random)?;
    Ok(hash_with(password, &salt, ITERATIONS))
}

fn hash_with(password: &str, salt: &[u8], iterations: u32) -> String {
    let mut out = Zeroizing::new([0u8; HASH_LEN]);
    let iterations = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        password.as_bytes(),
        out.as_mut(),
    );
    format!(
        "{SCHEME}${}${}${}",
        iterations,
        B64.encode(salt),
        B64.encode(out.as_ref())
    )
}

/// Verifies a password against a stored hash in constant time. A malformed stored hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(SCHEME), Some(iterations), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Ok(iterations), Ok(salt), Ok(hash)) = (
        iterations.parse::<u32>(),
        B64.decode(salt),
        B64.decode(hash),
    ) else {
        return false;
    };
    let Some(iterations) = NonZeroU32::new(iterations) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

/// A hash that matches no password, verified when the user does not exist so that a login for an
/// unknown email costs the same time as one with a wrong password (no user enumeration by timing).
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        hash_with(
            "decoy password that matches nothing",
            b"stormops-decoy!!",
            ITERATIONS,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let stored = hash_with("correct horse", b"0123456789abcdef", 1_000);
        assert!(stored.starts_with("pbkdf2-sha256$1000$"));
        assert!(verify_password("correct horse", &stored));
        assert!(!verify_password("correct horsf", &stored));
        assert!(!verify_password("correct horse", "pbkdf2-sha256$1000$bad"));
        assert!(!verify_password("correct horse", ""));
    }

    #[test]
    fn new_hashes_use_fresh_salts_and_the_full_iteration_count() {
        let a = hash_password("a long enough password").unwrap();
        let b = hash_password("a long enough password").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("pbkdf2-sha256${ITERATIONS}$")));
        assert_eq!(hash_password("short"), Err(PasswordError::TooShort));
    }
}
