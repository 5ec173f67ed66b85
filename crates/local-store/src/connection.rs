//! Opening one tenant file: the process lock, `PRAGMA key`, the readability check that tells a damaged
//! file from a wrong key, the tuning pragmas, and the migrations — in that order.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use rusqlite::{Connection, OpenFlags};

use crate::error::{StoreError, StoreResult};
use crate::schema;
use crate::secrets::DataKey;

/// SQLCipher 4's default page size. Changing it would stop a stock SQLCipher shell from opening the
/// file with only the recovery key, so it is fixed.
pub const PAGE_SIZE: u64 = 4096;
/// Page cache per connection (negative = KiB): 64 MiB keeps a 50,000-property storm's pages decrypted
/// in memory, so repeated ranked queries do not decrypt the same pages again.
pub const CACHE_SIZE_KIB: i64 = 65_536;

/// The pragmas applied to every connection, encrypted or plain (the benchmark compares like with like).
/// WAL + synchronous=NORMAL: one fsync per checkpoint instead of per commit, still durable across an
/// application crash (a power loss may lose the last commits, never corrupt the file).
const SHARED_PRAGMAS: &str = "PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA temp_store = MEMORY;
PRAGMA foreign_keys = OFF;";

/// Pragmas only an encrypted connection takes. Memory security wipes every freed buffer, costing about
/// a fifth of insert throughput; the keys it would protect are already zeroized by this crate.
const CIPHER_PRAGMAS: &str = "PRAGMA cipher_memory_security = OFF;";

/// An exclusive lock on `<file>.lock`, held for as long as a store has the file open.
#[derive(Debug)]
pub(crate) struct ProcessLock {
    _file: File,
}

impl ProcessLock {
    /// Takes the lock or fails at once with `InUse` when another process holds it.
    pub fn acquire(database: &Path) -> StoreResult<Self> {
        let lock_path = sidecar(database, "lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::io(&lock_path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(StoreError::InUse {
                path: database.to_owned(),
            }),
            Err(TryLockError::Error(e)) => Err(StoreError::io(lock_path, e)),
        }
    }
}

/// `<file>.<suffix>` next to the database.
pub(crate) fn sidecar(database: &Path, suffix: &str) -> PathBuf {
    let mut name = database
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".");
    name.push(suffix);
    database.with_file_name(name)
}

/// A damaged-file check that needs no key: SQLCipher files are whole pages long.
pub(crate) fn check_file_shape(path: &Path) -> StoreResult<()> {
    let len = fs::metadata(path)
        .map_err(|e| StoreError::io(path, e))?
        .len();
    let wal_exists = path.with_file_name(wal_name(path)).exists();
    if len == 0 && !wal_exists {
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            detail: "the file is empty".into(),
        });
    }
    if len % PAGE_SIZE != 0 {
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            detail: format!("{len} bytes is not a whole number of pages"),
        });
    }
    Ok(())
}

fn wal_name(path: &Path) -> std::ffi::OsString {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push("-wal");
    name
}

fn open_flags(create: bool) -> OpenFlags {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    flags
}

/// Opens an encrypted file through the keyed page crypto's file layer (`sqlcipher-provider`'s held WAL:
/// a commit's log frames are held and written together, so their pages' signatures can be made on the
/// second core after SQLCipher hands the pages on); through SQLite's default file layer if that one
/// could not be registered (the bytes written are the same).
fn open_connection(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    match sqlcipher_provider::register_vfs() {
        Ok(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs),
        Err(_) => Connection::open_with_flags(path, flags),
    }
}

fn corrupt(path: &Path, err: &rusqlite::Error) -> StoreError {
    StoreError::Corrupt {
        path: path.to_owned(),
        detail: err.to_string(),
    }
}

/// Opens an encrypted file whose key has already been verified against the key file, so a failure to
/// read it means the file itself is damaged.
pub(crate) fn open_encrypted(path: &Path, key: &DataKey, create: bool) -> StoreResult<Connection> {
    if !create {
        check_file_shape(path)?;
    }
    let mut conn = open_connection(path, open_flags(create)).map_err(|e| corrupt(path, &e))?;
    unlock(&conn, key, path)?;
    finish_open(&mut conn, path, create)?;
    Ok(conn)
}

/// An encrypted in-memory connection kept open for the life of the process, once the keyed page crypto
/// (`sqlcipher-provider`) is registered: SQLCipher puts its stock provider back whenever its last keyed
/// connection closes, so without it a laptop that closes its only tenant and opens it again would lose
/// the faster provider. `None` if registering failed; every connection then uses the stock provider,
/// which reads and writes the same file format.
static KEYED_PAGE_CRYPTO: OnceLock<Option<Mutex<Connection>>> = OnceLock::new();

/// Makes connections keyed from now on use the keyed page crypto; see `KEYED_PAGE_CRYPTO`.
fn use_keyed_page_crypto() {
    KEYED_PAGE_CRYPTO.get_or_init(|| {
        let anchor = Connection::open_in_memory().ok()?;
        // Any key: the anchor holds no data; keying it is what makes SQLCipher register a provider.
        anchor
            .execute_batch("PRAGMA key = 'keeps the keyed page crypto registered';")
            .ok()?;
        sqlcipher_provider::register().ok()?;
        Some(Mutex::new(anchor))
    });
}

/// Which page crypto connections keyed from now on use: this crate's keyed provider (the default) or
/// SQLCipher's stock one. Both write the same SQLCipher 4 files; the store benchmark measures each.
pub fn use_stock_page_crypto(stock: bool) -> StoreResult<()> {
    use_keyed_page_crypto();
    let changed = if stock {
        sqlcipher_provider::unregister()
    } else {
        sqlcipher_provider::register()
    };
    changed.map_err(|_| StoreError::Crypto("SQLCipher's page crypto provider could not be changed"))
}

/// Whether the keyed page crypto hashes a written page's signature on a second core while the page is
/// encrypted (`sqlcipher-provider`'s `sign_alongside`; on by default on machines with two cores or more).
/// The bytes written are the same either way; the store benchmark measures both.
pub fn sign_pages_alongside(enabled: bool) {
    sqlcipher_provider::sign_alongside(enabled);
}

/// How many pages this process has written with their signature hashed on the second core.
pub fn pages_signed_alongside() -> u64 {
    sqlcipher_provider::pages_signed_alongside()
}

/// How many pages this process has written with their signature made on the second core after SQLCipher
/// handed them on (their log frames held until then).
pub fn pages_signed_behind() -> u64 {
    sqlcipher_provider::pages_signed_behind()
}

/// How many pages this process handed to the second core and then signed on the writing thread, because
/// the second core's thread was not running (a busy machine) or the encryption failed.
pub fn pages_given_up_alongside() -> u64 {
    sqlcipher_provider::pages_given_up()
}

/// Keys a fresh connection and checks it reads the file, then applies the encryption pragmas.
fn unlock(conn: &Connection, key: &DataKey, path: &Path) -> StoreResult<()> {
    use_keyed_page_crypto();
    // PRAGMA key must come first; errors here never include the statement text (it holds the key).
    let statement =
        zeroize::Zeroizing::new(format!("PRAGMA key = {};", key.pragma_value().as_str()));
    conn.execute_batch(&statement)
        .map_err(|_| StoreError::Crypto("SQLCipher refused the key"))?;
    drop(statement);
    // SQLCipher logs "hmac check failed" to stderr for damaged pages unless told not to.
    conn.execute_batch("PRAGMA cipher_log_level = NONE;")
        .map_err(|e| corrupt(path, &e))?;
    verify_readable(conn, path)?;
    conn.execute_batch(CIPHER_PRAGMAS)
        .map_err(|e| corrupt(path, &e))
}

/// Opens (creating if asked) an unencrypted file: only for the benchmark's reference run.
pub(crate) fn open_plain(path: &Path, create: bool) -> StoreResult<Connection> {
    // SQLite's own file layer: the reference is plain SQLite as it comes (the held-WAL layer of
    // `open_connection` only pays off where pages are signed).
    let mut conn =
        Connection::open_with_flags(path, open_flags(create)).map_err(|e| corrupt(path, &e))?;
    verify_readable(&conn, path)?;
    finish_open(&mut conn, path, create)?;
    Ok(conn)
}

/// A second connection to a file this process already has open (and has migrated), for copying the
/// write-ahead log into the database while the first connection goes on writing: the key and the
/// encryption pragmas, nothing else.
pub(crate) fn open_checkpointer(path: &Path, key: Option<&DataKey>) -> StoreResult<Connection> {
    let flags = open_flags(false);
    let conn = match key {
        Some(_) => open_connection(path, flags),
        None => Connection::open_with_flags(path, flags),
    }
    .map_err(|e| corrupt(path, &e))?;
    match key {
        Some(key) => unlock(&conn, key, path)?,
        None => verify_readable(&conn, path)?,
    }
    Ok(conn)
}

/// Reads sqlite_master: with a verified key, failure here means a damaged file.
fn verify_readable(conn: &Connection, path: &Path) -> StoreResult<()> {
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| {
        row.get::<_, i64>(0)
    })
    .map_err(|e| corrupt(path, &e))?;
    Ok(())
}

fn finish_open(conn: &mut Connection, path: &Path, create: bool) -> StoreResult<()> {
    conn.execute_batch(SHARED_PRAGMAS)
        .map_err(|e| corrupt(path, &e))?;
    conn.execute_batch(&format!("PRAGMA cache_size = -{CACHE_SIZE_KIB};"))
        .map_err(|e| corrupt(path, &e))?;
    conn.set_prepared_statement_cache_capacity(64);
    if !create
        && schema::version(conn).map_err(|e| match e {
            StoreError::Database(e) => corrupt(path, &e),
            other => other,
        })? == 0
    {
        // An existing tenant file always has a schema; an empty one was truncated or replaced.
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            detail: "the file has no schema".into(),
        });
    }
    schema::migrate(conn, path).map_err(|e| match e {
        StoreError::Database(e) => corrupt(path, &e),
        other => other,
    })
}
