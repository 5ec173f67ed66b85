//! Key material: the per-tenant data key, users' passphrases and the recovery key, and the
//! cryptography that wraps the data key under a passphrase (PBKDF2-HMAC-SHA256 → AES-256-GCM).
//! Every secret is zeroized on drop and prints as `<redacted>`.

use std::fmt;
use std::num::NonZeroU32;

use ring::rand::{SecureRandom, SystemRandom};
use ring::{aead, hmac, pbkdf2};
use zeroize::Zeroizing;

use crate::error::{StoreError, StoreResult};

/// The PBKDF2 iteration floor (OWASP 2023 for PBKDF2-HMAC-SHA256). Key files asking for fewer are
/// refused, so nobody can weaken a slot by editing the file; there is deliberately no lower setting.
pub const MIN_PBKDF2_ITERATIONS: u32 = 600_000;
/// The shortest passphrase accepted.
pub const MIN_PASSPHRASE_CHARS: usize = 8;
/// Salt length per key slot.
pub const SALT_LEN: usize = 16;
const KEY_CHECK_MESSAGE: &[u8] = b"stormops-field key check v1";

/// A user's passphrase.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase without checking its strength (for unlocking an existing slot).
    pub fn new(text: impl Into<String>) -> Self {
        Self(Zeroizing::new(text.into()))
    }

    /// Wraps a passphrase that will protect a new slot: refuses ones that are too short.
    pub fn new_checked(text: impl Into<String>) -> StoreResult<Self> {
        let passphrase = Self::new(text);
        if passphrase.0.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(StoreError::WeakPassphrase {
                min: MIN_PASSPHRASE_CHARS,
            });
        }
        Ok(passphrase)
    }

    pub(crate) fn check_strength(&self) -> StoreResult<()> {
        if self.0.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(StoreError::WeakPassphrase {
                min: MIN_PASSPHRASE_CHARS,
            });
        }
        Ok(())
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// The 256-bit key SQLCipher encrypts one tenant file with.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// A fresh random key from the operating system's generator.
    pub(crate) fn generate(rng: &SystemRandom) -> StoreResult<Self> {
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill(key.as_mut())
            .map_err(|_| StoreError::Crypto("the system random generator failed"))?;
        Ok(Self(key))
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let mut key = Zeroizing::new([0u8; 32]);
        if bytes.len() != 32 {
            return None;
        }
        key.copy_from_slice(bytes);
        Some(Self(key))
    }

    /// The raw-key form SQLCipher takes: `"x'<64 hex>'"` inside `PRAGMA key`/`PRAGMA rekey`.
    pub(crate) fn pragma_value(&self) -> Zeroizing<String> {
        let hex = Zeroizing::new(hex::encode(self.0.as_ref()));
        Zeroizing::new(format!("\"x'{}'\"", hex.as_str()))
    }

    /// The recovery key a person writes down: the data key itself, as hex.
    pub(crate) fn recovery_key(&self) -> RecoveryKey {
        RecoveryKey(Zeroizing::new(hex::encode(self.0.as_ref())))
    }

    /// HMAC-SHA256 of a constant under this key: tells a wrong recovery key from a damaged file.
    pub(crate) fn key_check(&self) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.0.as_ref());
        hex::encode(hmac::sign(&key, KEY_CHECK_MESSAGE).as_ref())
    }

    /// Whether `check_hex` is this key's check value (constant-time comparison).
    pub(crate) fn matches_check(&self, check_hex: &str) -> bool {
        let Ok(tag) = hex::decode(check_hex) else {
            return false;
        };
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.0.as_ref());
        hmac::verify(&key, KEY_CHECK_MESSAGE, &tag).is_ok()
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_ref()
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// The recovery key: the raw data key as 64 hex characters. Shown once; opens the file in any
/// SQLCipher 4 shell with `PRAGMA key = "x'<recovery key>'";`.
pub struct RecoveryKey(Zeroizing<String>);

impl RecoveryKey {
    /// Parses a recovery key typed by a person: hex digits, spaces and dashes ignored, any case.
    pub fn parse(text: &str) -> StoreResult<Self> {
        let cleaned: Zeroizing<String> = Zeroizing::new(
            text.chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .flat_map(char::to_lowercase)
                .collect(),
        );
        if cleaned.len() != 64 || !cleaned.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::MalformedRecoveryKey);
        }
        Ok(Self(cleaned))
    }

    /// The 64 hex characters, for showing to the person once.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    pub(crate) fn data_key(&self) -> StoreResult<DataKey> {
        let bytes = Zeroizing::new(
            hex::decode(self.0.as_str()).map_err(|_| StoreError::MalformedRecoveryKey)?,
        );
        DataKey::from_bytes(&bytes).ok_or(StoreError::MalformedRecoveryKey)
    }
}

impl fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryKey(<redacted>)")
    }
}

/// A data key sealed under a key derived from a passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WrappedKey {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub nonce: [u8; 12],
    /// Ciphertext and tag.
    pub sealed: Vec<u8>,
}

fn derive_wrapping_key(
    passphrase: &Passphrase,
    salt: &[u8],
    iterations: u32,
) -> StoreResult<aead::LessSafeKey> {
    let iterations = NonZeroU32::new(iterations)
        .filter(|n| n.get() >= MIN_PBKDF2_ITERATIONS)
        .ok_or(StoreError::Crypto(
            "key slot asks for fewer PBKDF2 iterations than the floor",
        ))?;
    let mut derived = Zeroizing::new([0u8; 32]);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        passphrase.as_bytes(),
        derived.as_mut(),
    );
    let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, derived.as_ref())
        .map_err(|_| StoreError::Crypto("AES key setup failed"))?;
    Ok(aead::LessSafeKey::new(unbound))
}

/// Seals `key` under `passphrase` with a fresh salt and nonce; `context` is bound as associated data so
/// a slot cannot be moved to another tenant or user.
pub(crate) fn wrap(
    rng: &SystemRandom,
    key: &DataKey,
    passphrase: &Passphrase,
    context: &str,
) -> StoreResult<WrappedKey> {
    let mut salt = vec![0u8; SALT_LEN];
    rng.fill(&mut salt)
        .map_err(|_| StoreError::Crypto("the system random generator failed"))?;
    let mut nonce = [0u8; 12];
    rng.fill(&mut nonce)
        .map_err(|_| StoreError::Crypto("the system random generator failed"))?;
    let sealing = derive_wrapping_key(passphrase, &salt, MIN_PBKDF2_ITERATIONS)?;
    let mut in_out = key.bytes().to_vec();
    sealing
        .seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(context.as_bytes()),
            &mut in_out,
        )
        .map_err(|_| StoreError::Crypto("sealing the data key failed"))?;
    Ok(WrappedKey {
        iterations: MIN_PBKDF2_ITERATIONS,
        salt,
        nonce,
        sealed: in_out,
    })
}

/// Opens a sealed key; `None` when the passphrase (or the context) is wrong.
pub(crate) fn unwrap(
    wrapped: &WrappedKey,
    passphrase: &Passphrase,
    context: &str,
) -> StoreResult<Option<DataKey>> {
    let opening = derive_wrapping_key(passphrase, &wrapped.salt, wrapped.iterations)?;
    let mut in_out = Zeroizing::new(wrapped.sealed.clone());
    match opening.open_in_place(
        aead::Nonce::assume_unique_for_key(wrapped.nonce),
        aead::Aad::from(context.as_bytes()),
        in_out.as_mut(),
    ) {
        Ok(plain) => Ok(DataKey::from_bytes(plain)),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let rng = SystemRandom::new();
        let key = DataKey::generate(&rng).expect("key");
        let recovery = key.recovery_key();
        let shown = format!(
            "{:?} {:?} {:?}",
            key,
            recovery,
            Passphrase::new("hunter2hunter2")
        );
        assert!(!shown.contains(recovery.reveal()));
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn recovery_keys_are_parsed_leniently_but_strictly_sized() {
        let hex = "ab".repeat(32);
        assert!(RecoveryKey::parse(&hex.to_uppercase()).is_ok());
        assert!(RecoveryKey::parse(&format!("{}-{}", &hex[..32], &hex[32..])).is_ok());
        assert!(matches!(
            RecoveryKey::parse(&hex[..62]),
            Err(StoreError::MalformedRecoveryKey)
        ));
        assert!(matches!(
            RecoveryKey::parse(&"zz".repeat(32)),
            Err(StoreError::MalformedRecoveryKey)
        ));
    }

    #[test]
    fn wrap_round_trips_and_refuses_the_wrong_passphrase_or_context() {
        let rng = SystemRandom::new();
        let key = DataKey::generate(&rng).expect("key");
        let wrapped = wrap(&rng, &key, &Passphrase::new("correct horse"), "t/u").expect("wrap");
        assert_eq!(wrapped.iterations, MIN_PBKDF2_ITERATIONS);
        let opened = unwrap(&wrapped, &Passphrase::new("correct horse"), "t/u")
            .expect("unwrap")
            .expect("right passphrase");
        assert_eq!(opened.key_check(), key.key_check());
        assert!(
            unwrap(&wrapped, &Passphrase::new("wrong horse"), "t/u")
                .expect("unwrap")
                .is_none()
        );
        assert!(
            unwrap(&wrapped, &Passphrase::new("correct horse"), "t/other")
                .expect("unwrap")
                .is_none()
        );
        assert!(key.matches_check(&key.key_check()));
        assert!(
            !DataKey::generate(&rng)
                .expect("key")
                .matches_check(&key.key_check())
        );
    }

    #[test]
    fn slots_below_the_iteration_floor_are_refused() {
        let rng = SystemRandom::new();
        let key = DataKey::generate(&rng).expect("key");
        let mut wrapped = wrap(&rng, &key, &Passphrase::new("correct horse"), "c").expect("wrap");
        wrapped.iterations = 1_000;
        assert!(matches!(
            unwrap(&wrapped, &Passphrase::new("correct horse"), "c"),
            Err(StoreError::Crypto(_))
        ));
    }
}
