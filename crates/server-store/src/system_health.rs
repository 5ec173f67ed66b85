//! The operator's system health: tenants by status, each tenant's estimated database footprint and sync
//! recency, the whole database's size, and how far pulls lag behind the oldest writing transaction.
//!
//! Cross-tenant by nature, yet no role here bypasses row-level security: the tenant list is read as the
//! control-plane role (its policy on `tenants`), and each tenant's row counts inside that tenant's own
//! context, one statement per tenant. Sizes are estimates: a table's total size (`pg_total_relation_size`,
//! indexes and TOAST included) is shared among tenants in proportion to their rows in it — exact in
//! proportion, approximate in bytes (rows differ in width). The figure per tenant feeds the operator's
//! view; billing uses the metered `storage_bytes` samples instead.

use std::collections::BTreeMap;

use domain::TenantId;
use serde::Serialize;

use crate::error::StoreError;
use crate::pool::{AppPool, ControlPool};

/// One tenant's line of the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TenantHealth {
    pub tenant_id: TenantId,
    pub slug: String,
    pub plan: String,
    pub status: String,
    /// Rows of this tenant over every tenant table.
    pub rows: i64,
    /// Its share of the tenant tables' bytes (see the module doc).
    pub estimated_bytes: i64,
    /// When the tenant's laptops last pushed a batch (Unix ms; the audit log's `sync.push` entries), if ever.
    pub last_push_at: Option<i64>,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SystemHealth {
    /// Tenants per status (`active`, `suspended`, `deleted`, …).
    pub tenants_by_status: BTreeMap<String, i64>,
    pub tenants: Vec<TenantHealth>,
    /// `pg_database_size` of the current database.
    pub database_bytes: i64,
    /// Age of the oldest writing transaction: pulls hold back rows newer than it (see `AppPool`).
    pub pull_horizon_lag_secs: f64,
}

/// Tables with a `tenant_id` column and their total size in bytes, from the catalog.
async fn tenant_tables(app: &AppPool) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT c.relname::text, pg_total_relation_size(c.oid)
           FROM pg_class c
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
            AND EXISTS (SELECT 1 FROM pg_attribute a
                         WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
          ORDER BY 1",
    )
    .fetch_all(&app.0)
    .await?)
}

/// Reads the report. Costs one statement per tenant (its row counts in every tenant table).
pub async fn system_health(
    app: &AppPool,
    control: &ControlPool,
) -> Result<SystemHealth, StoreError> {
    let tenants: Vec<(uuid::Uuid, String, String, String)> =
        sqlx::query_as("SELECT id, slug, plan, status FROM tenants ORDER BY slug")
            .fetch_all(&control.0)
            .await?;
    let tables = tenant_tables(app).await?;
    // One statement per tenant for its rows in every table, one for its last push. Table names
    // come from the catalog; they are quoted anyway.
    let counts_sql = tables
        .iter()
        .map(|(name, _)| {
            format!(
                "SELECT {literal}::text, count(*) FROM \"{ident}\"",
                literal = format_args!("'{}'", name.replace('\'', "''")),
                ident = name.replace('"', "\"\"")
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let mut per_tenant: Vec<(TenantHealth, BTreeMap<String, i64>)> = Vec::new();
    let mut table_rows: BTreeMap<String, i64> = BTreeMap::new();
    for (id, slug, plan, status) in tenants {
        let mut tx = app.begin_tenant(TenantId(id)).await?;
        let counts: Vec<(String, i64)> = if counts_sql.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as(&counts_sql)
                .fetch_all(tx.connection())
                .await?
        };
        // Every push batch is audited (`sync.push`); most pushed changes leave no `applied_changes` row.
        let last: Option<i64> =
            sqlx::query_scalar("SELECT max(at) FROM audit_log WHERE action = 'sync.push'")
                .fetch_one(tx.connection())
                .await?;
        tx.commit().await?;
        let counts: BTreeMap<String, i64> = counts.into_iter().collect();
        for (table, n) in &counts {
            *table_rows.entry(table.clone()).or_default() += n;
        }
        per_tenant.push((
            TenantHealth {
                tenant_id: TenantId(id),
                slug,
                plan,
                status,
                rows: counts.values().sum(),
                estimated_bytes: 0,
                last_push_at: last,
            },
            counts,
        ));
    }
    let sizes: BTreeMap<String, i64> = tables.into_iter().collect();
    let mut tenants_by_status: BTreeMap<String, i64> = BTreeMap::new();
    let tenants = per_tenant
        .into_iter()
        .map(|(mut health, counts)| {
            health.estimated_bytes = estimated_bytes(&counts, &table_rows, &sizes);
            *tenants_by_status.entry(health.status.clone()).or_default() += 1;
            health
        })
        .collect();
    let database_bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&app.0)
        .await?;
    Ok(SystemHealth {
        tenants_by_status,
        tenants,
        database_bytes,
        pull_horizon_lag_secs: app.pull_horizon_lag_secs().await?,
    })
}

/// A tenant's share of each table's bytes, in proportion to its rows there.
fn estimated_bytes(
    tenant_rows: &BTreeMap<String, i64>,
    all_rows: &BTreeMap<String, i64>,
    table_bytes: &BTreeMap<String, i64>,
) -> i64 {
    tenant_rows
        .iter()
        .map(|(table, &rows)| {
            let total = all_rows.get(table).copied().unwrap_or(0);
            let bytes = table_bytes.get(table).copied().unwrap_or(0);
            if total <= 0 {
                0
            } else {
                // i128: bytes × rows could exceed i64 for very large tables.
                i64::try_from(i128::from(bytes) * i128::from(rows) / i128::from(total))
                    .unwrap_or(i64::MAX)
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_shared_in_proportion_to_rows() {
        let map = |pairs: &[(&str, i64)]| -> BTreeMap<String, i64> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
        };
        let sizes = map(&[("properties", 1_000_000), ("crews", 8_192)]);
        let all = map(&[("properties", 400), ("crews", 0)]);
        assert_eq!(
            estimated_bytes(&map(&[("properties", 100), ("crews", 0)]), &all, &sizes),
            250_000
        );
        // An empty table costs its (fixed) pages to nobody; no division by zero.
        assert_eq!(estimated_bytes(&map(&[("crews", 0)]), &all, &sizes), 0);
        // Huge tables do not overflow.
        let sizes = map(&[("t", i64::MAX)]);
        assert_eq!(
            estimated_bytes(&map(&[("t", 3)]), &map(&[("t", 3)]), &sizes),
            i64::MAX
        );
    }
}
