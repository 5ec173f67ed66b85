//! The tenant's tables as the catalog describes them: every table with a `tenant_id` column, its primary
//! key, and an order in which rows can be inserted without breaking a foreign key (the reverse order
//! deletes them). Export, import and purge read this instead of a hard-coded list, so a table added by a
//! later migration is exported, imported and purged without anyone remembering to list it.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgConnection;

use crate::error::StoreError;

/// One tenant table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantTable {
    pub name: String,
    /// Primary-key columns without `tenant_id`, in key order: the export's row order.
    pub key: Vec<String>,
    /// Nullable foreign-key columns that point at a table placed later in the order (a cycle, e.g.
    /// `crews.chief_id` → `users` while `users.crew_id` → `crews`): written as NULL first, set afterwards.
    pub deferred: Vec<String>,
}

/// Table and column names are spliced into SQL (identifiers take no bind parameters); the catalog only
/// holds plain lowercase names here, and anything else is refused rather than quoted.
pub(crate) fn check_identifier(name: &str) -> Result<&str, StoreError> {
    let plain = !name.is_empty()
        && name.len() <= 63
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if plain {
        Ok(name)
    } else {
        Err(StoreError::Corrupt(format!(
            "catalog name '{name}' is not a plain identifier"
        )))
    }
}

type ForeignKeyRow = (String, String, Vec<String>, Vec<bool>);

/// Every tenant table in insert order (see the module doc).
pub async fn tenant_tables(conn: &mut PgConnection) -> Result<Vec<TenantTable>, StoreError> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
            AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
          ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    let keys: Vec<(String, Vec<String>)> = sqlx::query_as(
        "SELECT t.relname::text,
                ARRAY(SELECT a.attname::text FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(n, o)
                        JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n ORDER BY k.o)
           FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid
          WHERE t.relnamespace = 'public'::regnamespace AND x.indisprimary",
    )
    .fetch_all(&mut *conn)
    .await?;
    let foreign_keys: Vec<ForeignKeyRow> = sqlx::query_as(
        "SELECT f.relname::text, r.relname::text,
                ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o),
                ARRAY(SELECT NOT a.attnotnull FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o)
           FROM pg_constraint c JOIN pg_class f ON f.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid
          WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
          ORDER BY 1, 2",
    )
    .fetch_all(&mut *conn)
    .await?;
    let keys: BTreeMap<String, Vec<String>> = keys.into_iter().collect();
    let tables: BTreeSet<String> = names.into_iter().collect();
    for name in &tables {
        check_identifier(name)?;
    }

    // Edges between tenant tables (references to `tenants` and to itself need no ordering).
    struct Edge {
        to: String,
        columns: Vec<String>,
        nullable: bool,
    }
    let mut edges: BTreeMap<String, Vec<Edge>> = BTreeMap::new();
    for (from, to, columns, nullable) in foreign_keys {
        if from == to || !tables.contains(&from) || !tables.contains(&to) {
            continue;
        }
        // tenant_id is part of every composite key; the other columns decide whether NULL is possible.
        let nullable = columns
            .iter()
            .zip(&nullable)
            .filter(|(c, _)| c.as_str() != "tenant_id")
            .all(|(_, n)| *n);
        let columns = columns.into_iter().filter(|c| c != "tenant_id").collect();
        edges.entry(from).or_default().push(Edge {
            to,
            columns,
            nullable,
        });
    }

    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut remaining = tables.clone();
    let mut order = Vec::with_capacity(tables.len());
    while !remaining.is_empty() {
        let ready = remaining.iter().find(|t| {
            edges
                .get(*t)
                .is_none_or(|es| es.iter().all(|e| placed.contains(&e.to)))
        });
        let (table, deferred) = match ready {
            Some(t) => (t.clone(), Vec::new()),
            None => {
                // A cycle: place the table whose unplaced references are all nullable and fewest,
                // deferring them (ties: by name, so the order is stable).
                let breakable = remaining
                    .iter()
                    .filter_map(|t| {
                        let unplaced: Vec<&Edge> = edges
                            .get(t)?
                            .iter()
                            .filter(|e| !placed.contains(&e.to))
                            .collect();
                        unplaced
                            .iter()
                            .all(|e| e.nullable)
                            .then_some((unplaced.len(), t))
                    })
                    .min()
                    .map(|(_, t)| t);
                let Some(t) = breakable else {
                    return Err(StoreError::Corrupt(format!(
                        "foreign keys among {remaining:?} form a cycle of NOT NULL columns"
                    )));
                };
                let deferred = edges
                    .get(t)
                    .map(|es| {
                        es.iter()
                            .filter(|e| !placed.contains(&e.to))
                            .flat_map(|e| e.columns.iter().cloned())
                            .collect()
                    })
                    .unwrap_or_default();
                (t.clone(), deferred)
            }
        };
        remaining.remove(&table);
        placed.insert(table.clone());
        let key: Vec<String> = keys
            .get(&table)
            .map(|k| k.iter().filter(|c| *c != "tenant_id").cloned().collect())
            .unwrap_or_default();
        for column in key.iter().chain(&deferred) {
            check_identifier(column)?;
        }
        order.push(TenantTable {
            name: table,
            key,
            deferred,
        });
    }
    Ok(order)
}
