//! Tenant archives: export everything a tenant owns, and import an archive into a fresh tenant.
//!
//! An archive is a directory: one `<table>.jsonl` per table with a `tenant_id` column (each line is one
//! row as `row_to_json` of every column but `tenant_id`, rows in primary-key order), and `manifest.json` naming the
//! tenant, the time, and for every table its file, row count and SHA-256. The export reads under the
//! tenant's own context as the application role, in one REPEATABLE READ READ ONLY transaction, so the
//! archive is one consistent snapshot. The archive is written to a sibling temporary directory and renamed
//! into place at the end: a failed export leaves no half archive. Tables come from the catalog
//! ([`crate::tenant_tables`]), so a table added later is archived without a code change.
//! `docs/runbooks/tenant-lifecycle.md` documents the format for the operator.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use domain::{Tenant, TenantId, TenantStatus, Timestamp, Validate};
use ring::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::StoreError;
use crate::lifecycle::LifecycleError;
use crate::pool::{AppPool, ControlPool};
use crate::tenant_tables::{TenantTable, tenant_tables};
use crate::tx::{ControlTx, TenantTx};

/// The archive format's name in the manifest.
pub const ARCHIVE_FORMAT: &str = "stormops-tenant-archive";
/// The archive format's version.
pub const ARCHIVE_VERSION: u32 = 1;
/// Rows fetched per round trip from the export cursor, and rows per insert statement on import.
const BATCH_ROWS: usize = 5_000;

/// The manifest of an archive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveManifest {
    pub format: String,
    pub version: u32,
    pub tenant: Tenant,
    pub exported_at: Timestamp,
    /// In insert order (an import writes them in this order).
    pub tables: Vec<ArchiveTable>,
}

/// One table of an archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveTable {
    pub name: String,
    pub file: String,
    pub rows: u64,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
}

impl ArchiveManifest {
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

fn io_error(what: &str, path: &Path, error: std::io::Error) -> LifecycleError {
    LifecycleError::Io(format!("{what} {}: {error}", path.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Opens the export's snapshot: one repeatable-read, read-only transaction under the tenant's context.
async fn begin_snapshot(app: &AppPool, tenant: TenantId) -> Result<TenantTx, StoreError> {
    let tx = app
        .0
        .begin_with(format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT set_config('app.tenant_id', '{}', true)",
            tenant.0.hyphenated()
        ))
        .await?;
    Ok(TenantTx {
        tx,
        tenant_id: tenant,
    })
}

/// Exports `tenant` (slug or id) into the directory `out`, which must not exist yet. Refused for a tenant
/// being deleted ([`LifecycleError::TenantDeleting`]). Records the export (needed before a delete) and
/// audits it.
pub async fn export_tenant(
    app: &AppPool,
    control: &ControlPool,
    tenant: &str,
    out: &Path,
    now: Timestamp,
) -> Result<ArchiveManifest, LifecycleError> {
    let mut ctl = control.begin().await?;
    let current = ctl.tenant_lifecycle(tenant).await?;
    ctl.commit().await?;
    refuse_deleting(&current.tenant, current.purge_after)?;
    if out.exists() {
        return Err(LifecycleError::Io(format!(
            "{} exists: export into a new directory",
            out.display()
        )));
    }
    let staging = staging_dir(out)?;
    let written = write_archive(app, &current.tenant, &staging, now).await;
    let manifest = match written {
        Ok(m) => m,
        Err(e) => {
            // Best effort: the staging directory is ours and holds only a partial archive.
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if let Err(e) = std::fs::rename(&staging, out) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(io_error("moving the archive to", out, e));
    }

    let mut ctl = control.begin().await?;
    let current = ctl.tenant_lifecycle(tenant).await?;
    refuse_deleting(&current.tenant, current.purge_after)?;
    sqlx::query("UPDATE tenants SET last_export_at = $2 WHERE id = $1")
        .bind(current.tenant.id.0)
        .bind(now.0)
        .execute(&mut *ctl.tx)
        .await
        .map_err(StoreError::from)?;
    let detail = format!(
        "{} rows in {} tables",
        manifest.total_rows(),
        manifest.tables.len()
    );
    ctl.audit_lifecycle(&current.tenant, "tenant.export", &detail, now)
        .await?;
    ctl.commit().await?;
    Ok(manifest)
}

fn refuse_deleting(tenant: &Tenant, purge_after: Option<Timestamp>) -> Result<(), LifecycleError> {
    if tenant.status == TenantStatus::Deleted {
        return Err(LifecycleError::TenantDeleting {
            slug: tenant.slug.clone(),
            purge_after: purge_after.map_or(0, |t| t.0),
        });
    }
    Ok(())
}

fn staging_dir(out: &Path) -> Result<PathBuf, LifecycleError> {
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| LifecycleError::Io(format!("{} names no directory", out.display())))?;
    let staging = out.with_file_name(format!(".{name}.partial-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&staging).map_err(|e| io_error("creating", &staging, e))?;
    Ok(staging)
}

async fn write_archive(
    app: &AppPool,
    tenant: &Tenant,
    dir: &Path,
    now: Timestamp,
) -> Result<ArchiveManifest, LifecycleError> {
    let mut tx = begin_snapshot(app, tenant.id).await?;
    // Re-read under the snapshot: the tenant row the application role sees is the one being archived.
    let seen = tx
        .tenant()
        .await?
        .ok_or_else(|| LifecycleError::TenantNotFound {
            tenant: tenant.slug.clone(),
        })?;
    refuse_deleting(&seen, None)?;
    let tables = tenant_tables(&mut tx.tx).await?;
    let mut entries = Vec::with_capacity(tables.len());
    for table in &tables {
        entries.push(export_table(&mut tx, table, dir).await?);
    }
    tx.commit().await?;
    let manifest = ArchiveManifest {
        format: ARCHIVE_FORMAT.to_owned(),
        version: ARCHIVE_VERSION,
        tenant: seen,
        exported_at: now,
        tables: entries,
    };
    let path = dir.join("manifest.json");
    let text = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| LifecycleError::Io(format!("manifest: {e}")))?;
    std::fs::write(&path, text).map_err(|e| io_error("writing", &path, e))?;
    Ok(manifest)
}

async fn export_table(
    tx: &mut TenantTx,
    table: &TenantTable,
    dir: &Path,
) -> Result<ArchiveTable, LifecycleError> {
    let file = format!("{}.jsonl", table.name);
    let path = dir.join(&file);
    let handle = std::fs::File::create(&path).map_err(|e| io_error("creating", &path, e))?;
    let mut writer = std::io::BufWriter::new(handle);
    let mut digest = Context::new(&SHA256);
    let order = if table.key.is_empty() {
        String::new()
    } else {
        format!("ORDER BY {}", table.key.join(", "))
    };
    // Every column but tenant_id, in table order. row_to_json writes the text directly (to_jsonb would
    // build and re-serialise a binary value per row, about twice the work).
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_attribute a
          WHERE a.attrelid = ('public.' || $1)::regclass AND a.attnum > 0 AND NOT a.attisdropped
            AND a.attname <> 'tenant_id'
          ORDER BY a.attnum",
    )
    .bind(&table.name)
    .fetch_all(&mut *tx.tx)
    .await
    .map_err(StoreError::from)?;
    for column in &columns {
        crate::tenant_tables::check_identifier(column)?;
    }
    // A server-side cursor keeps memory bounded whatever the table's size.
    sqlx::query(&format!(
        "DECLARE tenant_export CURSOR FOR SELECT row_to_json(r)::text FROM (SELECT {columns} FROM {table} t WHERE t.tenant_id = '{tenant}') r {order}",
        columns = columns.join(", "),
        table = table.name,
        tenant = tx.tenant_id.0.hyphenated()
    ))
    .execute(&mut *tx.tx)
    .await
    .map_err(StoreError::from)?;
    let mut rows = 0u64;
    loop {
        let batch: Vec<String> =
            sqlx::query_scalar(&format!("FETCH {BATCH_ROWS} FROM tenant_export"))
                .fetch_all(&mut *tx.tx)
                .await
                .map_err(StoreError::from)?;
        for line in &batch {
            // jsonb text never holds a raw newline, so one row is one line.
            digest.update(line.as_bytes());
            digest.update(b"\n");
            writer
                .write_all(line.as_bytes())
                .and_then(|()| writer.write_all(b"\n"))
                .map_err(|e| io_error("writing", &path, e))?;
        }
        rows += batch.len() as u64;
        if batch.len() < BATCH_ROWS {
            break;
        }
    }
    sqlx::query("CLOSE tenant_export")
        .execute(&mut *tx.tx)
        .await
        .map_err(StoreError::from)?;
    writer.flush().map_err(|e| io_error("writing", &path, e))?;
    Ok(ArchiveTable {
        name: table.name.clone(),
        file,
        rows,
        sha256: hex(digest.finish().as_ref()),
    })
}

/// Reads and checks an archive: the manifest parses, every file is named after its table, and every
/// file's size in rows and SHA-256 match the manifest. Returns the manifest and each table's lines.
pub fn read_archive(
    dir: &Path,
) -> Result<(ArchiveManifest, BTreeMap<String, Vec<String>>), LifecycleError> {
    let path = dir.join("manifest.json");
    let text = std::fs::read(&path).map_err(|e| io_error("reading", &path, e))?;
    let manifest: ArchiveManifest = serde_json::from_slice(&text)
        .map_err(|e| LifecycleError::InvalidArchive(format!("manifest.json: {e}")))?;
    if manifest.format != ARCHIVE_FORMAT || manifest.version != ARCHIVE_VERSION {
        return Err(LifecycleError::InvalidArchive(format!(
            "format {} version {} (this server reads {ARCHIVE_FORMAT} version {ARCHIVE_VERSION})",
            manifest.format, manifest.version
        )));
    }
    let mut tables = BTreeMap::new();
    for entry in &manifest.tables {
        crate::tenant_tables::check_identifier(&entry.name)
            .map_err(|_| LifecycleError::InvalidArchive(format!("table name '{}'", entry.name)))?;
        if entry.file != format!("{}.jsonl", entry.name) {
            return Err(LifecycleError::InvalidArchive(format!(
                "table {} must be in {}.jsonl, not '{}'",
                entry.name, entry.name, entry.file
            )));
        }
        let path = dir.join(&entry.file);
        let bytes = std::fs::read(&path).map_err(|e| io_error("reading", &path, e))?;
        let digest = ring::digest::digest(&SHA256, &bytes);
        if hex(digest.as_ref()) != entry.sha256 {
            return Err(LifecycleError::InvalidArchive(format!(
                "{}: the SHA-256 does not match the manifest",
                entry.file
            )));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| LifecycleError::InvalidArchive(format!("{} is not UTF-8", entry.file)))?;
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() as u64 != entry.rows {
            return Err(LifecycleError::InvalidArchive(format!(
                "{} holds {} rows, the manifest says {}",
                entry.file,
                lines.len(),
                entry.rows
            )));
        }
        if tables.insert(entry.name.clone(), lines).is_some() {
            return Err(LifecycleError::InvalidArchive(format!(
                "table {} is listed twice",
                entry.name
            )));
        }
    }
    Ok((manifest, tables))
}

/// What an import made.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImportedArchive {
    pub tenant: Tenant,
    /// The id of the tenant the archive was exported from.
    pub source_tenant: TenantId,
    pub rows: u64,
}

/// Imports an archive into a fresh tenant named `slug` (and `name`, default: the archived name), in one
/// control transaction: the tenant row, then every table in insert order, row for row as archived (ids
/// kept; only `tenant_id` is the new tenant's). Checks the whole archive before writing anything.
pub async fn import_archive(
    control: &ControlPool,
    dir: &Path,
    slug: &str,
    name: Option<&str>,
    now: Timestamp,
) -> Result<ImportedArchive, LifecycleError> {
    let (manifest, mut lines) = read_archive(dir)?;
    let tenant = Tenant {
        id: TenantId::generate(),
        name: name.map_or_else(|| manifest.tenant.name.clone(), |n| n.trim().to_owned()),
        slug: slug.trim().to_owned(),
        plan: manifest.tenant.plan,
        status: TenantStatus::Active,
        created_at: now,
    };
    tenant.validate(now).map_err(StoreError::from)?;

    let mut ctl = control.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO tenants (id, name, slug, plan, status, created_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (slug) DO NOTHING",
    )
    .bind(tenant.id.0)
    .bind(&tenant.name)
    .bind(&tenant.slug)
    .bind(tenant.plan.as_str())
    .bind(tenant.status.as_str())
    .bind(tenant.created_at.0)
    .execute(&mut *ctl.tx)
    .await
    .map_err(StoreError::from)?;
    if inserted.rows_affected() == 0 {
        return Err(LifecycleError::SlugTaken { slug: tenant.slug });
    }
    ctl.enter_tenant(tenant.id).await?;
    let tables = tenant_tables(&mut ctl.tx).await?;
    let known: BTreeSet<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    if let Some(unknown) = lines.keys().find(|n| !known.contains(n.as_str())) {
        return Err(LifecycleError::InvalidArchive(format!(
            "table {unknown} does not exist in this database"
        )));
    }
    // Rows go to PostgreSQL as the archived text (never re-serialised here: jsonb numbers are exact
    // decimals that a round trip through f64 would change, and a `json` column keeps its text byte for
    // byte), read by `json_populate_recordset`, which takes a `json` column's value as written. The new
    // tenant id is appended to each row as one more member (see `with_members`).
    let stamped = |t: &str| format!("json_populate_recordset(NULL::{t}, $1::text::json)");
    let tenant_text = tenant.id.0.to_string();
    let mut rows = 0u64;
    let mut deferred_updates = Vec::new();
    for table in &tables {
        let Some(table_lines) = lines.remove(&table.name) else {
            continue;
        };
        let columns: BTreeSet<String> = table_columns(&mut ctl, &table.name).await?;
        for (index, line) in table_lines.iter().enumerate() {
            check_row(&table.name, index, line, &columns)?;
        }
        // Deferred references (a cycle) are written as NULL first and set once every table is in.
        let stamp = format!("\"tenant_id\":\"{tenant_text}\"");
        let nulls: String = table
            .deferred
            .iter()
            .map(|c| format!(",\"{c}\":null"))
            .collect();
        let insert = format!(
            "INSERT INTO {t} SELECT * FROM {source}",
            t = table.name,
            source = stamped(&table.name)
        );
        let mut chunks = Vec::new();
        for chunk in table_lines.chunks(BATCH_ROWS) {
            let array = |members: &str| {
                let rows: Vec<String> = chunk.iter().map(|l| with_members(l, members)).collect();
                format!("[{}]", rows.join(","))
            };
            let done = sqlx::query(&insert)
                .bind(array(&format!("{stamp}{nulls}")))
                .execute(&mut *ctl.tx)
                .await
                .map_err(StoreError::from)?;
            rows += done.rows_affected();
            if !table.deferred.is_empty() {
                chunks.push(array(&stamp));
            }
        }
        if !chunks.is_empty() {
            deferred_updates.push((table, chunks));
        }
    }
    for (table, chunks) in deferred_updates {
        let sets: Vec<String> = table
            .deferred
            .iter()
            .map(|c| format!("{c} = x.{c}"))
            .collect();
        let matches: Vec<String> = table.key.iter().map(|k| format!("t.{k} = x.{k}")).collect();
        let update = format!(
            "UPDATE {name} t SET {sets} FROM {source} x WHERE t.tenant_id = x.tenant_id AND {matches}",
            name = table.name,
            sets = sets.join(", "),
            source = stamped(&table.name),
            matches = matches.join(" AND ")
        );
        for array in chunks {
            sqlx::query(&update)
                .bind(&array)
                .execute(&mut *ctl.tx)
                .await
                .map_err(StoreError::from)?;
        }
    }
    ctl.leave_tenant().await?;
    // The imported audit log is the archived one, exactly; the import itself is in the operator's log.
    let detail = format!(
        "{rows} rows from the archive of tenant {} ({}) exported at {}",
        manifest.tenant.id, manifest.tenant.slug, manifest.exported_at.0
    );
    ctl.log_lifecycle(&tenant, "tenant.import", &detail, now)
        .await?;
    ctl.commit().await?;
    Ok(ImportedArchive {
        tenant,
        source_tenant: manifest.tenant.id,
        rows,
    })
}

async fn table_columns(
    ctl: &mut ControlTx,
    table: &str,
) -> Result<BTreeSet<String>, LifecycleError> {
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_attribute a
          WHERE a.attrelid = ('public.' || $1)::regclass AND a.attnum > 0 AND NOT a.attisdropped",
    )
    .bind(table)
    .fetch_all(&mut *ctl.tx)
    .await
    .map_err(StoreError::from)?;
    Ok(columns.into_iter().collect())
}

/// An archived row (a JSON object, checked by [`check_row`]) with `members` (`"key":value,…`) added at
/// its end. PostgreSQL's `json` functions take the last of repeated keys, so these win over the row's
/// own — which never holds `tenant_id` ([`check_row`] refuses it).
fn with_members(line: &str, members: &str) -> String {
    let body = line.trim_end();
    let open = body.strip_suffix('}').unwrap_or(body).trim_end();
    // Only an empty object ends in `{` here: a member's value never does.
    let separator = if open.ends_with('{') { "" } else { "," };
    format!("{open}{separator}{members}}}")
}

/// Checks one archived row: a JSON object of this table's columns. A column the table does not have
/// would be dropped silently by `json_populate_recordset`, so it is refused instead (the round trip
/// must be exact).
fn check_row(
    table: &str,
    index: usize,
    line: &str,
    columns: &BTreeSet<String>,
) -> Result<(), LifecycleError> {
    let row: Map<String, Value> = serde_json::from_str(line).map_err(|e| {
        LifecycleError::InvalidArchive(format!("{table}.jsonl row {}: {e}", index + 1))
    })?;
    if let Some(unknown) = row
        .keys()
        .find(|k| k.as_str() == "tenant_id" || !columns.contains(k.as_str()))
    {
        return Err(LifecycleError::InvalidArchive(format!(
            "{table}.jsonl row {}: unexpected column '{unknown}'",
            index + 1
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_appended_to_any_object_and_win_as_the_last_keys() {
        let m = r#""tenant_id":"t""#;
        assert_eq!(with_members(r#"{"a":1}"#, m), r#"{"a":1,"tenant_id":"t"}"#);
        assert_eq!(
            with_members("{ \"a\": {} }  ", m),
            r#"{ "a": {},"tenant_id":"t"}"#
        );
        assert_eq!(with_members("{}", m), r#"{"tenant_id":"t"}"#);
        assert_eq!(with_members("{ \n }", m), r#"{"tenant_id":"t"}"#);
        for line in [r#"{"a":1}"#, "{ \"a\": {} }  ", "{}", r#"{"s":"}"}"#] {
            let joined: Map<String, Value> =
                serde_json::from_str(&with_members(line, r#""tenant_id":"t","a":null"#))
                    .expect("still one JSON object");
            assert_eq!(joined["tenant_id"], "t");
            assert_eq!(
                joined["a"],
                Value::Null,
                "the appended member is the last one"
            );
        }
    }
}
