//! The key file next to each tenant database (`<tenant-id>.keys.json`): one wrapped copy of the data
//! key per local user, plus the key-check value. It holds no secret in clear, and is replaced
//! atomically (write a temporary file, sync, rename) so a crash leaves the old or the new file, never half.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{StoreError, StoreResult};
use crate::secrets::{MIN_PBKDF2_ITERATIONS, WrappedKey};

const FORMAT: u32 = 1;
const KDF: &str = "pbkdf2-hmac-sha256";
const WRAP: &str = "aes-256-gcm";

/// One user's wrapped copy of the data key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeySlot {
    pub user: String,
    pub kdf: String,
    pub iterations: u32,
    pub salt: String,
    pub wrap: String,
    pub nonce: String,
    pub wrapped_key: String,
    pub created_at: i64,
}

impl KeySlot {
    pub fn new(user: &str, wrapped: &WrappedKey, created_at: i64) -> Self {
        Self {
            user: user.to_owned(),
            kdf: KDF.to_owned(),
            iterations: wrapped.iterations,
            salt: hex::encode(&wrapped.salt),
            wrap: WRAP.to_owned(),
            nonce: hex::encode(wrapped.nonce),
            wrapped_key: hex::encode(&wrapped.sealed),
            created_at,
        }
    }

    pub fn wrapped(&self, path: &Path) -> StoreResult<WrappedKey> {
        let damaged = |detail: &str| StoreError::KeyFileDamaged {
            path: path.to_owned(),
            detail: format!("slot '{}': {detail}", self.user),
        };
        if self.kdf != KDF || self.wrap != WRAP {
            return Err(damaged("unknown key derivation or wrapping algorithm"));
        }
        if self.iterations < MIN_PBKDF2_ITERATIONS {
            // Somebody lowered the work factor in the file: refuse rather than derive a weak key.
            return Err(damaged("fewer PBKDF2 iterations than the floor"));
        }
        let salt = hex::decode(&self.salt).map_err(|_| damaged("salt is not hex"))?;
        let nonce: [u8; 12] = hex::decode(&self.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| damaged("nonce is not 12 hex bytes"))?;
        let sealed =
            hex::decode(&self.wrapped_key).map_err(|_| damaged("wrapped key is not hex"))?;
        Ok(WrappedKey {
            iterations: self.iterations,
            salt,
            nonce,
            sealed,
        })
    }
}

/// The whole key file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyFile {
    pub format: u32,
    pub tenant_id: String,
    /// HMAC-SHA256 of a constant under the data key (hex).
    pub key_check: String,
    pub slots: Vec<KeySlot>,
}

impl KeyFile {
    pub fn new(tenant_id: &str, key_check: String) -> Self {
        Self {
            format: FORMAT,
            tenant_id: tenant_id.to_owned(),
            key_check,
            slots: Vec::new(),
        }
    }

    pub fn slot(&self, user: &str) -> Option<&KeySlot> {
        self.slots.iter().find(|s| s.user == user)
    }

    /// Adds or replaces the slot of `slot.user`.
    pub fn put_slot(&mut self, slot: KeySlot) {
        self.slots.retain(|s| s.user != slot.user);
        self.slots.push(slot);
    }

    pub fn read(path: &Path) -> StoreResult<Self> {
        let text = fs::read_to_string(path).map_err(|e| StoreError::io(path, e))?;
        let file: KeyFile =
            serde_json::from_str(&text).map_err(|e| StoreError::KeyFileDamaged {
                path: path.to_owned(),
                detail: format!("not a key file: {e}"),
            })?;
        if file.format != FORMAT {
            return Err(StoreError::KeyFileDamaged {
                path: path.to_owned(),
                detail: format!("unknown format {}", file.format),
            });
        }
        Ok(file)
    }

    /// Replaces the file atomically.
    pub fn write(&self, path: &Path) -> StoreResult<()> {
        let text =
            serde_json::to_string_pretty(self).map_err(|e| StoreError::Decode(e.to_string()))?;
        write_atomically(path, text.as_bytes())
    }
}

/// Writes `bytes` to `path` through a synced temporary file and a rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> StoreResult<()> {
    let temporary: PathBuf = {
        let mut name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".tmp");
        path.with_file_name(name)
    };
    let mut file = fs::File::create(&temporary).map_err(|e| StoreError::io(&temporary, e))?;
    file.write_all(bytes)
        .map_err(|e| StoreError::io(&temporary, e))?;
    file.sync_all().map_err(|e| StoreError::io(&temporary, e))?;
    drop(file);
    fs::rename(&temporary, path).map_err(|e| StoreError::io(path, e))?;
    if let Some(dir) = path.parent() {
        // Syncing the directory makes the rename itself durable; not every platform allows opening a directory.
        if let Ok(dir) = fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}
