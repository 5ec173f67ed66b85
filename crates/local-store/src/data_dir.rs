//! The data directory: one SQLCipher file per tenant (`<tenant-id>.db`), its key file
//! (`<tenant-id>.keys.json`), its lock file, and `tenants.json`, an index of known tenants that holds
//! no secret. Creating, unlocking and recovering a tenant file start here.

use std::fs;
use std::path::{Path, PathBuf};

use domain::{PlanTier, Tenant, TenantId, TenantStatus, Timestamp, Validate, validation::slugify};
use ring::rand::SystemRandom;
use serde::{Deserialize, Serialize};

use crate::connection::{self, ProcessLock};
use crate::error::{StoreError, StoreResult};
use crate::key_file::{KeyFile, KeySlot, write_atomically};
use crate::secrets::{self, DataKey, Passphrase, RecoveryKey};
use crate::store::{NewFile, TenantStore, check_user_label, next_key_file_path, slot_context};

const INDEX_FILE: &str = "tenants.json";

/// One known tenant file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantEntry {
    pub tenant_id: TenantId,
    pub name: String,
    pub slug: String,
    pub created_at: Timestamp,
    pub database: String,
    /// The sync server this file belongs to, once signed in (not a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_url: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct TenantIndex {
    pub(crate) tenants: Vec<TenantEntry>,
}

/// What `create_tenant` needs.
#[derive(Debug)]
pub struct NewTenant<'a> {
    /// The tenant's id when the platform already assigned one; a fresh one otherwise.
    pub tenant_id: Option<TenantId>,
    pub name: &'a str,
    /// The local user who creates the file (the first key slot).
    pub user: &'a str,
    pub passphrase: &'a Passphrase,
}

/// Where a tenant file syncs: the server, the tenant's slug there, and this laptop's device id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLink {
    pub server_url: String,
    pub tenant_slug: String,
    pub device_id: domain::DeviceId,
}

/// A new tenant file, open, with the recovery key to show once.
#[derive(Debug)]
pub struct CreatedTenant {
    pub store: TenantStore,
    pub entry: TenantEntry,
    pub recovery_key: RecoveryKey,
}

/// A directory of tenant files.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Uses (creating if needed) `root` as the data directory.
    pub fn new(root: impl Into<PathBuf>) -> StoreResult<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| StoreError::io(&root, e))?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn database_path(&self, tenant: TenantId) -> PathBuf {
        self.root.join(format!("{tenant}.db"))
    }

    pub fn key_file_path(&self, tenant: TenantId) -> PathBuf {
        self.root.join(format!("{tenant}.keys.json"))
    }

    pub(crate) fn index_path(&self) -> PathBuf {
        self.root.join(INDEX_FILE)
    }

    /// The tenants known in this directory.
    pub fn list_tenants(&self) -> StoreResult<Vec<TenantEntry>> {
        let path = self.index_path();
        match fs::read_to_string(&path) {
            Ok(text) => {
                let index: TenantIndex =
                    serde_json::from_str(&text).map_err(|e| StoreError::InvalidInput {
                        what: "tenant index",
                        detail: format!("{}: {e}", path.display()),
                    })?;
                Ok(index.tenants)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    fn add_to_index(&self, entry: TenantEntry) -> StoreResult<()> {
        // Serialise concurrent creators on a lock file so neither loses the other's entry.
        let lock_path = self.root.join(format!("{INDEX_FILE}.lock"));
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::io(&lock_path, e))?;
        lock.lock().map_err(|e| StoreError::io(&lock_path, e))?;
        let mut index = TenantIndex {
            tenants: self.list_tenants()?,
        };
        index.tenants.retain(|t| t.tenant_id != entry.tenant_id);
        index.tenants.push(entry);
        let text =
            serde_json::to_string_pretty(&index).map_err(|e| StoreError::Decode(e.to_string()))?;
        write_atomically(&self.index_path(), text.as_bytes())
    }

    /// Creates an encrypted tenant file with a random data key wrapped under the creating user's
    /// passphrase. The returned recovery key is the only copy: show it once.
    pub fn create_tenant(&self, new: NewTenant<'_>, now: Timestamp) -> StoreResult<CreatedTenant> {
        self.create_tenant_file(new, None, now)
    }

    /// Creates the file of a tenant that lives on a sync server: the file takes the server's tenant id,
    /// slug and the device id this laptop registered with, and remembers the server's address.
    pub fn create_tenant_for_server(
        &self,
        new: NewTenant<'_>,
        link: &ServerLink,
        now: Timestamp,
    ) -> StoreResult<CreatedTenant> {
        self.create_tenant_file(new, Some(link), now)
    }

    fn create_tenant_file(
        &self,
        new: NewTenant<'_>,
        link: Option<&ServerLink>,
        now: Timestamp,
    ) -> StoreResult<CreatedTenant> {
        let tenant_id = new.tenant_id.unwrap_or_else(TenantId::generate);
        let tenant = Tenant {
            id: tenant_id,
            name: new.name.trim().to_owned(),
            slug: link.map_or_else(|| slugify(new.name), |l| l.tenant_slug.clone()),
            plan: PlanTier::Trial,
            status: TenantStatus::Active,
            created_at: now,
        };
        tenant.validate(now)?;
        check_user_label(new.user)?;
        new.passphrase.check_strength()?;
        let path = self.database_path(tenant_id);
        let key_path = self.key_file_path(tenant_id);
        if path.exists() || key_path.exists() {
            return Err(StoreError::TenantExists {
                tenant: tenant_id.to_string(),
                dir: self.root.clone(),
            });
        }
        let lock = ProcessLock::acquire(&path)?;
        let rng = SystemRandom::new();
        let key = DataKey::generate(&rng)?;
        let mut key_file = KeyFile::new(&tenant_id.to_string(), key.key_check());
        let wrapped = secrets::wrap(
            &rng,
            &key,
            new.passphrase,
            &slot_context(&key_file.tenant_id, new.user),
        )?;
        key_file.put_slot(KeySlot::new(new.user, &wrapped, now.millis()));
        let recovery_key = key.recovery_key();
        let file = NewFile {
            path: &path,
            key_path: Some(&key_path),
            tenant_id,
            tenant_name: &tenant.name,
            device_id: link.map(|l| l.device_id),
            now,
        };
        let mut store = TenantStore::create_file(file, Some(key), Some(lock))?;
        key_file.write(&key_path)?;
        store.set_unlocked_user(Some(new.user.to_owned()));
        store.set_local_user_id(new.user, domain::UserId::generate())?;
        let entry = TenantEntry {
            tenant_id,
            name: tenant.name,
            slug: tenant.slug,
            created_at: now,
            server_url: link.map(|l| l.server_url.clone()),
            database: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        self.add_to_index(entry.clone())?;
        Ok(CreatedTenant {
            store,
            entry,
            recovery_key,
        })
    }

    fn existing_paths(&self, tenant: TenantId) -> StoreResult<(PathBuf, PathBuf)> {
        let path = self.database_path(tenant);
        if !path.exists() {
            return Err(StoreError::TenantNotFound {
                tenant: tenant.to_string(),
                dir: self.root.clone(),
            });
        }
        Ok((path, self.key_file_path(tenant)))
    }

    /// Unlocks a tenant file with a user's passphrase. With `user` = None every slot is tried (each try
    /// costs one key derivation), so naming the user is faster on a shared laptop.
    pub fn open(
        &self,
        tenant: TenantId,
        user: Option<&str>,
        passphrase: &Passphrase,
    ) -> StoreResult<TenantStore> {
        let (path, key_path) = self.existing_paths(tenant)?;
        let lock = ProcessLock::acquire(&path)?;
        let key_file = KeyFile::read(&key_path).map_err(|e| missing_key_file(e, &key_path))?;
        match self.unlock_with(&key_file, &key_path, &path, user, passphrase) {
            Ok((key, user)) => match connection::open_encrypted(&path, &key, false) {
                Ok(conn) => finish(conn, &path, &key_path, tenant, key, Some(user), lock),
                Err(StoreError::Corrupt { .. }) if next_key_file_path(&key_path).exists() => self
                    .open_after_interrupted_rekey(
                        tenant,
                        &path,
                        &key_path,
                        user.as_str(),
                        passphrase,
                        lock,
                    ),
                Err(other) => Err(other),
            },
            Err(err @ StoreError::WrongPassphrase { .. })
                if next_key_file_path(&key_path).exists() =>
            {
                self.open_after_interrupted_rekey(
                    tenant,
                    &path,
                    &key_path,
                    user.unwrap_or_default(),
                    passphrase,
                    lock,
                )
                .map_err(|_| err)
            }
            Err(other) => Err(other),
        }
    }

    /// A rekey re-encrypted the file but stopped before replacing the key file: the staged next key
    /// file fits, so finish the swap.
    fn open_after_interrupted_rekey(
        &self,
        tenant: TenantId,
        path: &Path,
        key_path: &Path,
        user: &str,
        passphrase: &Passphrase,
        lock: ProcessLock,
    ) -> StoreResult<TenantStore> {
        let next_path = next_key_file_path(key_path);
        let next = KeyFile::read(&next_path)?;
        let user = (!user.is_empty()).then_some(user);
        let (key, user) = self.unlock_with(&next, &next_path, path, user, passphrase)?;
        let conn = connection::open_encrypted(path, &key, false)?;
        fs::rename(&next_path, key_path).map_err(|e| StoreError::io(key_path, e))?;
        finish(conn, path, key_path, tenant, key, Some(user), lock)
    }

    fn unlock_with(
        &self,
        key_file: &KeyFile,
        key_path: &Path,
        path: &Path,
        user: Option<&str>,
        passphrase: &Passphrase,
    ) -> StoreResult<(DataKey, String)> {
        let slots: Vec<&KeySlot> = match user {
            Some(user) => vec![key_file.slot(user).ok_or_else(|| StoreError::UnknownUser {
                user: user.to_owned(),
                path: path.to_owned(),
            })?],
            None => key_file.slots.iter().collect(),
        };
        for slot in slots {
            let wrapped = slot.wrapped(key_path)?;
            if let Some(key) = secrets::unwrap(
                &wrapped,
                passphrase,
                &slot_context(&key_file.tenant_id, &slot.user),
            )? {
                if !key.matches_check(&key_file.key_check) {
                    return Err(StoreError::KeyFileDamaged {
                        path: key_path.to_owned(),
                        detail: "the key check does not match the unwrapped key".into(),
                    });
                }
                return Ok((key, slot.user.clone()));
            }
        }
        Err(StoreError::WrongPassphrase {
            path: path.to_owned(),
        })
    }

    /// Opens a tenant file with its recovery key (the raw data key). Works without the key file too:
    /// then a wrong key and a damaged file cannot be told apart, and both report a wrong recovery key.
    pub fn open_with_recovery_key(
        &self,
        tenant: TenantId,
        recovery_key: &RecoveryKey,
    ) -> StoreResult<TenantStore> {
        let (path, key_path) = self.existing_paths(tenant)?;
        let lock = ProcessLock::acquire(&path)?;
        let key = recovery_key.data_key()?;
        match KeyFile::read(&key_path) {
            Ok(file) => {
                if !key.matches_check(&file.key_check) {
                    return Err(StoreError::WrongRecoveryKey { path });
                }
                let conn = connection::open_encrypted(&path, &key, false)?;
                finish(conn, &path, &key_path, tenant, key, None, lock)
            }
            Err(_) => {
                let conn = connection::open_encrypted(&path, &key, false).map_err(|e| match e {
                    StoreError::Corrupt { path, .. } => StoreError::WrongRecoveryKey { path },
                    other => other,
                })?;
                finish(conn, &path, &key_path, tenant, key, None, lock)
            }
        }
    }

    /// The recovery path: opens with the recovery key and sets `user`'s passphrase (enrolling the user if
    /// needed). The other users' slots are kept: the data key did not change.
    pub fn recover(
        &self,
        tenant: TenantId,
        recovery_key: &RecoveryKey,
        user: &str,
        new_passphrase: &Passphrase,
    ) -> StoreResult<TenantStore> {
        check_user_label(user)?;
        new_passphrase.check_strength()?;
        let mut store = self.open_with_recovery_key(tenant, recovery_key)?;
        store.set_passphrase(user, new_passphrase)?;
        store.set_unlocked_user(Some(user.to_owned()));
        Ok(store)
    }
}

fn missing_key_file(err: StoreError, key_path: &Path) -> StoreError {
    match err {
        StoreError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            StoreError::KeyFileDamaged {
                path: key_path.to_owned(),
                detail: "the key file is missing; open with the recovery key".into(),
            }
        }
        other => other,
    }
}

fn finish(
    conn: rusqlite::Connection,
    path: &Path,
    key_path: &Path,
    tenant: TenantId,
    key: DataKey,
    user: Option<String>,
    lock: ProcessLock,
) -> StoreResult<TenantStore> {
    let mut store = TenantStore::from_open_file(
        conn,
        path,
        Some(key_path),
        Some(tenant),
        Some(key),
        Some(lock),
    )?;
    store.set_unlocked_user(user);
    Ok(store)
}
