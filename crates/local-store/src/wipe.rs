//! Remote wipe: when the server revokes this laptop, its tenant files are removed. The key file goes
//! first — without its wrapped keys the encrypted database cannot be opened by passphrase, even if the
//! disk keeps the deleted blocks — then the database, its journal files, its lock and its index entry.

use std::fs;

use domain::TenantId;

use crate::connection::{ProcessLock, sidecar};
use crate::data_dir::{DataDir, TenantIndex};
use crate::error::{StoreError, StoreResult};
use crate::key_file::write_atomically;

impl DataDir {
    /// Deletes one tenant's files. Fails with `InUse` while a store of it is open in another process.
    pub fn wipe_tenant(&self, tenant: TenantId) -> StoreResult<()> {
        let database = self.database_path(tenant);
        let lock = ProcessLock::acquire(&database)?;
        let remove = |path: std::path::PathBuf| match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(path, e)),
        };
        remove(self.key_file_path(tenant))?;
        remove(database.clone())?;
        // SQLite names its journal files `<database>-wal` and `<database>-shm`.
        remove(database.with_file_name(format!("{}-wal", file_name(&database))))?;
        remove(database.with_file_name(format!("{}-shm", file_name(&database))))?;
        let mut index = TenantIndex {
            tenants: self.list_tenants()?,
        };
        index.tenants.retain(|t| t.tenant_id != tenant);
        let text =
            serde_json::to_string_pretty(&index).map_err(|e| StoreError::Decode(e.to_string()))?;
        write_atomically(&self.index_path(), text.as_bytes())?;
        drop(lock);
        remove(sidecar(&database, "lock"))
    }
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
