//! The Citus catalog lint (docs/scaling-citus.md): a freshly migrated database is held to the rules that
//! let `migrations/server/20260910000000_citus_distribution.sql` distribute it by `tenant_id` — checked on
//! plain PostgreSQL, where Citus itself is not installed. Each rule names the Citus restriction it keeps.
// A panic here is a failing lint.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use sqlx::PgPool;

/// Column defaults that call a non-immutable function, with why each is safe on Citus. Citus evaluates
/// such a default where the INSERT is planned; anything added here needs the same reasoning.
const VOLATILE_DEFAULTS_ALLOWED: &[(&str, &str, &str)] = &[(
    "change_log",
    "txid",
    "pg_current_xact_id() of the writing transaction: the pull cursor's order; see docs/scaling-citus.md \"The pull feed on Citus\"",
)];

/// name, from table, to table, columns, referenced columns.
type ForeignKeyRow = (String, String, String, Vec<String>, Vec<String>);

/// Tables with a tenant_id column (distributed) and those without (reference), `_sqlx_migrations` aside.
async fn classify(pool: &PgPool) -> (BTreeSet<String>, BTreeSet<String>) {
    let rows: Vec<(String, bool)> = sqlx::query_as(
        "SELECT c.relname::text,
                EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
           FROM pg_class c
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relname NOT LIKE '\\_sqlx%'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut distributed = BTreeSet::new();
    let mut reference = BTreeSet::new();
    for (name, has_tenant) in rows {
        if has_tenant {
            distributed.insert(name);
        } else {
            reference.insert(name);
        }
    }
    (distributed, reference)
}

#[tokio::test]
async fn the_schema_distributes_by_tenant_id_under_citus_rules() {
    let h = common::setup().await;
    let su = h.superuser_pool().await;
    let (distributed, reference) = classify(&su).await;
    assert!(distributed.len() >= 20, "{distributed:?}");
    assert!(
        reference.contains("tenants"),
        "tenants is a reference table"
    );
    let mut problems: Vec<String> = Vec::new();

    // 1. The distribution column: `tenant_id uuid NOT NULL` everywhere (co-location needs one type).
    let columns: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT c.relname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
            AND a.attname = 'tenant_id' AND NOT a.attisdropped",
    )
    .fetch_all(&su)
    .await
    .unwrap();
    for (table, kind, not_null) in &columns {
        if kind != "uuid" || !not_null {
            problems.push(format!(
                "{table}.tenant_id is `{kind}`{}: the distribution column must be uuid NOT NULL",
                if *not_null { "" } else { " (nullable)" }
            ));
        }
    }

    // 2. Primary keys, unique constraints and unique indexes of distributed tables include tenant_id
    //    (Citus enforces uniqueness per shard only). Every distributed table has a primary key.
    let uniques: Vec<(String, String, bool, bool)> = sqlx::query_as(
        "SELECT t.relname::text, i.relname::text, x.indisprimary,
                EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attname = 'tenant_id'
                           AND a.attnum = ANY (x.indkey::int2[]))
           FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
          WHERE t.relnamespace = 'public'::regnamespace AND x.indisunique",
    )
    .fetch_all(&su)
    .await
    .unwrap();
    for table in &distributed {
        if !uniques
            .iter()
            .any(|(t, _, primary, _)| t == table && *primary)
        {
            problems.push(format!("{table}: a distributed table needs a primary key"));
        }
    }
    for (table, index, _, has_tenant) in &uniques {
        if distributed.contains(table) && !has_tenant {
            problems.push(format!(
                "{table}: unique index {index} does not include tenant_id"
            ));
        }
    }
    // Unique or exclusion constraints with expressions only (no tenant_id column) are caught above;
    // exclusion constraints are not supported across shards at all.
    let exclusions: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.conrelid::regclass::text, c.conname::text FROM pg_constraint c
          WHERE c.connamespace = 'public'::regnamespace AND c.contype = 'x'",
    )
    .fetch_all(&su)
    .await
    .unwrap();
    for (table, name) in exclusions {
        problems.push(format!("{table}: exclusion constraint {name}"));
    }

    // 3. Foreign keys: distributed → distributed only through tenant_id on both sides, in the same
    //    position; distributed → reference is fine; reference → distributed is impossible.
    let fks: Vec<ForeignKeyRow> = sqlx::query_as(
        "SELECT c.conname::text, src.relname::text, dst.relname::text,
                ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o),
                ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
                        JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o)
           FROM pg_constraint c JOIN pg_class src ON src.oid = c.conrelid JOIN pg_class dst ON dst.oid = c.confrelid
          WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace",
    )
    .fetch_all(&su)
    .await
    .unwrap();
    assert!(!fks.is_empty());
    for (name, from, to, columns, referenced) in &fks {
        match (distributed.contains(from), distributed.contains(to)) {
            (true, true) => {
                let position = columns.iter().position(|c| c == "tenant_id");
                let referenced_position = referenced.iter().position(|c| c == "tenant_id");
                if position.is_none() || position != referenced_position {
                    problems.push(format!(
                        "{from}.{name} -> {to}: {columns:?} -> {referenced:?} does not pair tenant_id with tenant_id"
                    ));
                }
            }
            (false, true) => problems.push(format!(
                "{from}.{name}: reference table {from} cannot refer to distributed table {to}"
            )),
            (_, false) => {}
        }
    }

    // 4. No sequences, serial or identity columns (ids are client UUIDs), and volatile defaults only
    //    where the allow-list says why.
    let sequences: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'S'",
    )
    .fetch_all(&su)
    .await
    .unwrap();
    for s in sequences {
        problems.push(format!("sequence {s}: use client-generated UUIDs"));
    }
    let identities: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, a.attname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
          WHERE c.relnamespace = 'public'::regnamespace AND a.attidentity <> '' AND NOT a.attisdropped",
    )
    .fetch_all(&su)
    .await
    .unwrap();
    for (table, column) in identities {
        problems.push(format!("{table}.{column}: identity column"));
    }
    // A default is volatile when it calls a function that is not IMMUTABLE. Built-in functions are
    // pinned (pg_depend does not record them), so the calls are read from the expression's text.
    let raw_defaults: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.relname::text, a.attname::text, pg_get_expr(d.adbin, d.adrelid)
           FROM pg_attrdef d JOIN pg_class c ON c.oid = d.adrelid
           JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
          WHERE c.relnamespace = 'public'::regnamespace AND c.relname NOT LIKE '\\_sqlx%'",
    )
    .fetch_all(&su)
    .await
    .unwrap();
    let mut defaults = Vec::new();
    for (table, column, expression) in raw_defaults {
        let called: Vec<String> = expression
            .split('(')
            .filter_map(|before| {
                let name: String = before
                    .chars()
                    .rev()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                (!name.is_empty()).then_some(name)
            })
            .collect();
        let volatile: bool = sqlx::query_scalar(
            "SELECT coalesce(bool_or(provolatile <> 'i'), false) FROM pg_proc WHERE proname = ANY ($1)",
        )
        .bind(&called)
        .fetch_one(&su)
        .await
        .unwrap();
        defaults.push((table, column, expression, volatile));
    }
    let mut volatile_seen = BTreeSet::new();
    for (table, column, expression, volatile) in &defaults {
        if expression.contains("nextval(") {
            problems.push(format!(
                "{table}.{column} defaults to a sequence: {expression}"
            ));
        } else if *volatile {
            volatile_seen.insert((table.clone(), column.clone()));
            if !VOLATILE_DEFAULTS_ALLOWED
                .iter()
                .any(|(t, c, _)| t == table && c == column)
            {
                problems.push(format!(
                    "{table}.{column} defaults to a non-immutable {expression}: Citus evaluates it where the INSERT is planned; allow-list it with the reason or drop it"
                ));
            }
        }
    }
    // The allow-list stays honest: every entry still names a volatile default.
    for (table, column, _) in VOLATILE_DEFAULTS_ALLOWED {
        assert!(
            volatile_seen.contains(&((*table).to_owned(), (*column).to_owned())),
            "stale allow-list entry {table}.{column}"
        );
    }

    // 5. No user triggers (they run per shard on workers and cannot see other shards).
    let triggers: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, t.tgname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal",
    )
    .fetch_all(&su)
    .await
    .unwrap();
    for (table, trigger) in triggers {
        problems.push(format!("{table}: trigger {trigger}"));
    }

    // 6. Row-level security on distributed tables uses the plain tenant equality only (a policy that
    //    joins another table would need that table on the same node; the RLS catalog test checks the
    //    text, here only that each distributed table has a policy on tenant_id).
    let without_policy: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
            AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
            AND NOT EXISTS (SELECT 1 FROM pg_policies p WHERE p.schemaname = 'public' AND p.tablename = c.relname
                              AND p.qual LIKE '(tenant_id = %')",
    )
    .fetch_all(&su)
    .await
    .unwrap();
    for table in without_policy {
        problems.push(format!(
            "{table}: no tenant_id policy (RLS would not hold on its shards)"
        ));
    }

    assert!(
        problems.is_empty(),
        "Citus rules broken:\n  {}",
        problems.join("\n  ")
    );
    h.teardown().await;
}

#[tokio::test]
async fn the_guarded_distribution_migration_is_a_no_op_without_citus() {
    let h = common::setup().await;
    let su = h.superuser_pool().await;
    let citus: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
            .fetch_one(&su)
            .await
            .unwrap();
    assert!(!citus, "this test expects plain PostgreSQL");
    let applied: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM _sqlx_migrations WHERE version = 20260910000000 AND success)",
    )
    .fetch_one(&su)
    .await
    .unwrap();
    assert!(applied, "the Citus migration ran");
    // Every foreign key it would drop and re-create is still there exactly as the schema made it: the
    // composite keys of the initial schema are present (crews <-> users, the cycle the migration breaks).
    let cycle: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace
            AND ((conrelid = 'public.crews'::regclass AND confrelid = 'public.users'::regclass)
              OR (conrelid = 'public.users'::regclass AND confrelid = 'public.crews'::regclass))",
    )
    .fetch_one(&su)
    .await
    .unwrap();
    assert_eq!(cycle, 2);
    // Its statements only ever run behind the guard: the first statement of the block is the check.
    let sql = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../migrations/server/20260910000000_citus_distribution.sql"),
    )
    .unwrap();
    let body = sql.split("BEGIN").nth(1).unwrap();
    let first = body.trim_start().lines().next().unwrap();
    assert_eq!(
        first.trim(),
        "IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN"
    );
    h.teardown().await;
}
