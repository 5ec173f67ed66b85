//! `TenantStore`: exactly one connection to exactly one tenant file, its clock, and the key lifecycle
//! (passphrase change, more users, rekey, recovery). A store never serves a second tenant.

use std::fmt;
use std::path::{Path, PathBuf};

use domain::clock::HlcClock;
use domain::{DeviceId, Hlc, TenantId, Timestamp, UserId};
use ring::rand::SystemRandom;
use rusqlite::{Connection, OptionalExtension, params};

use crate::connection::{self, ProcessLock};
use crate::error::{StoreError, StoreResult};
use crate::key_file::{KeyFile, KeySlot};
use crate::secrets::{self, DataKey, Passphrase, RecoveryKey};
use crate::wall_clock::{SystemClock, WallClock};

/// What a rekey did. Rotating the data key changes the locks: only the user performing it gets a new
/// slot (other users' passphrases are unknown to us), so every other slot is removed on purpose and those
/// users must be enrolled again with `add_user`. The old recovery key stops working; keep the new one.
#[derive(Debug)]
pub struct RekeyOutcome {
    pub recovery_key: RecoveryKey,
    pub removed_users: Vec<String>,
}

/// The identity of the file's tenant and device.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantInfo {
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub device_id: DeviceId,
    pub created_at: Timestamp,
    pub database: PathBuf,
}

/// One open tenant file.
pub struct TenantStore {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
    key_path: Option<PathBuf>,
    pub(crate) tenant_id: TenantId,
    tenant_name: String,
    pub(crate) device_id: DeviceId,
    created_at: Timestamp,
    pub(crate) clock: HlcClock,
    pub(crate) wall: Box<dyn WallClock>,
    data_key: Option<DataKey>,
    unlocked_user: Option<String>,
    pub(crate) rng: SystemRandom,
    _lock: Option<ProcessLock>,
}

impl fmt::Debug for TenantStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantStore")
            .field("path", &self.path)
            .field("tenant_id", &self.tenant_id)
            .field("device_id", &self.device_id)
            .field("encrypted", &self.data_key.is_some())
            .field("data_key", &"<redacted>")
            .field("unlocked_user", &self.unlocked_user)
            .finish()
    }
}

/// Checks a local user name (the label of a key slot).
pub(crate) fn check_user_label(user: &str) -> StoreResult<()> {
    let len = user.chars().count();
    if len == 0 || len > 64 || user.chars().any(char::is_control) || user.trim() != user {
        return Err(StoreError::InvalidUserName);
    }
    Ok(())
}

/// The associated data binding a key slot to its tenant and user.
pub(crate) fn slot_context(tenant: &str, user: &str) -> String {
    format!("stormops-field/key-slot/v1/{tenant}/{user}")
}

pub(crate) struct NewFile<'a> {
    pub path: &'a Path,
    pub key_path: Option<&'a Path>,
    pub tenant_id: TenantId,
    pub tenant_name: &'a str,
    /// The device id to record; a fresh one when `None`.
    pub device_id: Option<DeviceId>,
    pub now: Timestamp,
}

impl TenantStore {
    /// Creates a fresh tenant file (encrypted when `key` is given) with its meta row.
    pub(crate) fn create_file(
        file: NewFile<'_>,
        key: Option<DataKey>,
        lock: Option<ProcessLock>,
    ) -> StoreResult<Self> {
        let conn = match &key {
            Some(key) => connection::open_encrypted(file.path, key, true)?,
            None => connection::open_plain(file.path, true)?,
        };
        let device_id = file.device_id.unwrap_or_else(DeviceId::generate);
        let clock = HlcClock::new(Hlc::node_of(device_id), sync_protocol::MAX_CLOCK_SKEW_MS);
        conn.execute(
            "INSERT INTO meta (singleton, tenant_id, tenant_name, device_id, last_hlc, created_at) VALUES (1, ?1, ?2, ?3, ?4, ?5)",
            params![file.tenant_id.to_string(), file.tenant_name, device_id.to_string(), clock.last().to_string(), file.now.millis()],
        )?;
        Ok(Self {
            conn,
            path: file.path.to_owned(),
            key_path: file.key_path.map(Path::to_owned),
            tenant_id: file.tenant_id,
            tenant_name: file.tenant_name.to_owned(),
            device_id,
            created_at: file.now,
            clock,
            wall: Box::new(SystemClock),
            data_key: key,
            unlocked_user: None,
            rng: SystemRandom::new(),
            _lock: lock,
        })
    }

    /// Wraps an opened connection: reads the meta row and checks the file belongs to `expected` tenant.
    pub(crate) fn from_open_file(
        conn: Connection,
        path: &Path,
        key_path: Option<&Path>,
        expected: Option<TenantId>,
        key: Option<DataKey>,
        lock: Option<ProcessLock>,
    ) -> StoreResult<Self> {
        let corrupt = |detail: String| StoreError::Corrupt {
            path: path.to_owned(),
            detail,
        };
        let meta: Option<(String, String, String, String, i64)> = conn
            .query_row("SELECT tenant_id, tenant_name, device_id, last_hlc, created_at FROM meta WHERE singleton = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?;
        let (tenant, tenant_name, device, last_hlc, created_at) =
            meta.ok_or_else(|| corrupt("the meta row is missing".into()))?;
        let tenant_id: TenantId = tenant
            .parse()
            .map_err(|_| corrupt("the meta row has a bad tenant id".into()))?;
        if expected.is_some_and(|e| e != tenant_id) {
            return Err(corrupt(format!("the file belongs to tenant {tenant_id}")));
        }
        let device_id: DeviceId = device
            .parse()
            .map_err(|_| corrupt("the meta row has a bad device id".into()))?;
        let last = Hlc::parse(&last_hlc).map_err(|e| corrupt(e.to_string()))?;
        Ok(Self {
            conn,
            path: path.to_owned(),
            key_path: key_path.map(Path::to_owned),
            tenant_id,
            tenant_name,
            device_id,
            created_at: Timestamp::from_millis(created_at),
            clock: HlcClock::resume(last, sync_protocol::MAX_CLOCK_SKEW_MS),
            wall: Box::new(SystemClock),
            data_key: key,
            unlocked_user: None,
            rng: SystemRandom::new(),
            _lock: lock,
        })
    }

    /// An UNENCRYPTED store, for the benchmark's reference run only: the same schema, pragmas (minus the
    /// cipher ones) and code path as a tenant file, so the difference measured is the encryption.
    /// Creates the file when it does not exist. Never use it for tenant data.
    pub fn open_plain_for_benchmark(path: &Path) -> StoreResult<Self> {
        let lock = ProcessLock::acquire(path)?;
        if path.exists() {
            let conn = connection::open_plain(path, false)?;
            Self::from_open_file(conn, path, None, None, None, Some(lock))
        } else {
            let file = NewFile {
                path,
                key_path: None,
                tenant_id: TenantId::generate(),
                tenant_name: "benchmark",
                device_id: None,
                now: Timestamp::now(),
            };
            Self::create_file(file, None, Some(lock))
        }
    }

    pub(crate) fn set_unlocked_user(&mut self, user: Option<String>) {
        self.unlocked_user = user;
    }

    /// Replaces the wall clock (tests pin time with a `ManualClock`).
    pub fn set_wall_clock(&mut self, clock: Box<dyn WallClock>) {
        self.wall = clock;
    }

    pub fn now(&self) -> Timestamp {
        self.wall.now()
    }

    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }

    pub fn device_id(&self) -> DeviceId {
        self.device_id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_encrypted(&self) -> bool {
        self.data_key.is_some()
    }

    /// The local user whose passphrase unlocked the file (`None` after a recovery-key open).
    pub fn unlocked_user(&self) -> Option<&str> {
        self.unlocked_user.as_deref()
    }

    pub fn info(&self) -> TenantInfo {
        TenantInfo {
            tenant_id: self.tenant_id,
            tenant_name: self.tenant_name.clone(),
            device_id: self.device_id,
            created_at: self.created_at,
            database: self.path.clone(),
        }
    }

    /// The SQLCipher page crypto this file's connection uses (`PRAGMA cipher_provider`):
    /// `sqlcipher_provider::PROVIDER_NAME` normally, `openssl` with SQLCipher's stock provider, `None` for
    /// the benchmark's plain file.
    pub fn cipher_provider(&self) -> StoreResult<Option<String>> {
        if !self.is_encrypted() {
            return Ok(None);
        }
        Ok(Some(self.conn.query_row(
            "PRAGMA cipher_provider",
            [],
            |row| row.get(0),
        )?))
    }

    /// The schema as sorted SQL (for the snapshot test and diagnostics).
    pub fn schema_sql(&self) -> StoreResult<String> {
        crate::schema::dump(&self.conn)
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> StoreResult<i64> {
        crate::schema::version(&self.conn)
    }

    /// The last HLC reading this device issued (persisted in meta with every write).
    pub fn last_hlc(&self) -> Hlc {
        self.clock.last()
    }

    /// The user id a local user acts as (journey touches and decisions carry it).
    pub fn local_user_id(&self, user: &str) -> StoreResult<Option<UserId>> {
        let id: Option<String> = self
            .conn
            .query_row(
                "SELECT user_id FROM local_users WHERE label = ?1",
                [user],
                |r| r.get(0),
            )
            .optional()?;
        id.map(|id| {
            id.parse()
                .map_err(|_| StoreError::Decode(format!("bad user id for local user {user}")))
        })
        .transpose()
    }

    /// Records which user id a local user acts as (set when the user is enrolled; later by login).
    pub fn set_local_user_id(&mut self, user: &str, user_id: UserId) -> StoreResult<()> {
        check_user_label(user)?;
        self.conn.execute(
            "INSERT INTO local_users (label, user_id, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (label) DO UPDATE SET user_id = excluded.user_id",
            params![user, user_id.to_string(), self.now().millis()],
        )?;
        Ok(())
    }

    /// A second connection to this file with its key, for a checkpoint that runs beside this one's
    /// writes (`set_long_pull`).
    pub(crate) fn open_checkpointer(&self) -> StoreResult<rusqlite::Connection> {
        crate::connection::open_checkpointer(&self.path, self.data_key.as_ref())
    }

    fn key_parts(&self) -> StoreResult<(&DataKey, &Path)> {
        match (&self.data_key, &self.key_path) {
            (Some(key), Some(path)) => Ok((key, path.as_path())),
            _ => Err(StoreError::InvalidInput {
                what: "store",
                detail: "this store is not encrypted".into(),
            }),
        }
    }

    fn read_key_file(&self) -> StoreResult<KeyFile> {
        let (key, key_path) = self.key_parts()?;
        match KeyFile::read(key_path) {
            Ok(file) => Ok(file),
            // After a recovery with the key file lost, start a new one.
            Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(KeyFile::new(&self.tenant_id.to_string(), key.key_check()))
            }
            Err(other) => Err(other),
        }
    }

    /// The local users who can unlock this file (labels only: nothing secret).
    pub fn users(&self) -> StoreResult<Vec<String>> {
        Ok(self
            .read_key_file()?
            .slots
            .into_iter()
            .map(|s| s.user)
            .collect())
    }

    /// Sets (or replaces) `user`'s passphrase by wrapping the data key again: no re-encryption.
    pub fn set_passphrase(&mut self, user: &str, passphrase: &Passphrase) -> StoreResult<()> {
        check_user_label(user)?;
        passphrase.check_strength()?;
        let mut file = self.read_key_file()?;
        let (key, key_path) = self.key_parts()?;
        let wrapped = secrets::wrap(
            &self.rng,
            key,
            passphrase,
            &slot_context(&file.tenant_id, user),
        )?;
        file.key_check = key.key_check();
        file.put_slot(KeySlot::new(user, &wrapped, self.wall.now().millis()));
        file.write(key_path)?;
        if self.local_user_id(user)?.is_none() {
            self.set_local_user_id(user, UserId::generate())?;
        }
        Ok(())
    }

    /// Changes the passphrase of the user who unlocked the file.
    pub fn change_passphrase(&mut self, new_passphrase: &Passphrase) -> StoreResult<()> {
        let user = self.unlocked_user.clone().ok_or(StoreError::InvalidInput {
            what: "user",
            detail: "the file was opened with the recovery key; name the user".into(),
        })?;
        self.set_passphrase(&user, new_passphrase)
    }

    /// Enrolls another local user on this laptop with their own passphrase.
    pub fn add_user(&mut self, user: &str, passphrase: &Passphrase) -> StoreResult<()> {
        check_user_label(user)?;
        if self.read_key_file()?.slot(user).is_some() {
            return Err(StoreError::UserExists {
                user: user.to_owned(),
                path: self.path.clone(),
            });
        }
        self.set_passphrase(user, passphrase)
    }

    /// Rotates the data key (SQLCipher `PRAGMA rekey`) and returns the new recovery key. Only `user` keeps
    /// a slot, under `passphrase`; see [`RekeyOutcome`] for why the other slots go.
    pub fn rekey(&mut self, user: &str, passphrase: &Passphrase) -> StoreResult<RekeyOutcome> {
        check_user_label(user)?;
        passphrase.check_strength()?;
        let old_file = self.read_key_file()?;
        let (_, key_path) = self.key_parts()?;
        let key_path = key_path.to_owned();
        let new_key = DataKey::generate(&self.rng)?;
        let mut new_file = KeyFile::new(&old_file.tenant_id, new_key.key_check());
        let wrapped = secrets::wrap(
            &self.rng,
            &new_key,
            passphrase,
            &slot_context(&old_file.tenant_id, user),
        )?;
        new_file.put_slot(KeySlot::new(user, &wrapped, self.wall.now().millis()));

        // Crash safety: the next key file is written before the database is re-encrypted; opening
        // falls back to it when the current one no longer fits the file.
        let next_path = next_key_file_path(&key_path);
        new_file.write(&next_path)?;
        // Rekey rewrites every page in one transaction; a rollback journal makes that single step atomic.
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")?;
        let statement = zeroize::Zeroizing::new(format!(
            "PRAGMA rekey = {};",
            new_key.pragma_value().as_str()
        ));
        let rekeyed = self
            .conn
            .execute_batch(&statement)
            .map_err(|_| StoreError::Crypto("SQLCipher could not rekey the file"));
        drop(statement);
        self.conn.execute_batch("PRAGMA journal_mode = WAL;")?;
        if let Err(err) = rekeyed {
            let _ = std::fs::remove_file(&next_path);
            return Err(err);
        }
        std::fs::rename(&next_path, &key_path).map_err(|e| StoreError::io(&key_path, e))?;
        let removed_users = old_file
            .slots
            .iter()
            .map(|s| s.user.clone())
            .filter(|u| u != user)
            .collect();
        let recovery_key = new_key.recovery_key();
        self.data_key = Some(new_key);
        self.unlocked_user = Some(user.to_owned());
        if self.local_user_id(user)?.is_none() {
            self.set_local_user_id(user, UserId::generate())?;
        }
        Ok(RekeyOutcome {
            recovery_key,
            removed_users,
        })
    }
}

/// Where a rekey stages the next key file.
pub(crate) fn next_key_file_path(key_path: &Path) -> PathBuf {
    connection::sidecar(key_path, "next")
}
