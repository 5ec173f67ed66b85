//! Backup and restore, as docs/runbooks/backup-restore.md tells the operator to do it: `pg_dump -Fc` of a
//! database holding two tenants' data, `pg_restore` into a fresh database, then every table compared row
//! for row, the schema found current, and the application role still confined to one tenant by
//! row-level security in the restored copy. And one tenant's export imported into a fresh database (its
//! own roles), compared table by table with the source tenant under each side's RLS context.
// A panic here is a failing test.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use domain::Role;
use server_store::{AppPool, PoolSettings, migrations_current};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// A PostgreSQL client tool: the newest installed version's binary, else the one on PATH. pg_dump must
/// be at least as new as the server it dumps.
fn pg_tool(name: &str) -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|d| {
            let version = d.file_name().to_string_lossy().parse::<u32>().ok()?;
            let tool = d.path().join("bin").join(name);
            tool.exists().then_some((version, tool))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, p)| p)
        .unwrap_or_else(|| PathBuf::from(name))
}

fn run(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every table of schema public with (row count, checksum of the rows in a fixed order), read as the
/// superuser (which row-level security does not filter).
async fn table_digests(pool: &PgPool) -> Vec<(String, i64, String)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = Vec::new();
    for table in tables {
        // Names come from the catalog; quote them anyway.
        let (rows, digest): (i64, String) = sqlx::query_as(&format!(
            "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM \"{}\" t",
            table.replace('"', "\"\"")
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        out.push((table, rows, digest));
    }
    out
}

#[tokio::test]
async fn a_dump_restored_into_a_fresh_database_holds_every_row_and_keeps_tenants_apart() {
    let h = common::setup().await;
    let a = common::provision(&h, "backup-a", 5).await;
    let b = common::provision(&h, "backup-b", 3).await;
    // Some sync traffic so the ledgers and the pull feed hold rows too.
    let touches: Vec<_> = (0..3).map(|i| a.touch(i, "knocked")).collect();
    let changes: Vec<_> = touches.iter().map(|t| a.touch_change(t)).collect();
    common::push(&h, &a, Role::FieldUser, &changes).await;
    let change = b.status_change(0, domain::PropertyStatus::ALL[1], 5);
    common::push(&h, &b, Role::FieldUser, &[change]).await;

    let dir = tempfile_dir();
    let dump = dir.join("stormops.dump");
    // The runbook's backup command.
    run(Command::new(pg_tool("pg_dump"))
        .args(["--format=custom", "--no-password", "--file"])
        .arg(&dump)
        .arg(&h.db.superuser_url));

    let fresh = test_postgres::fresh_database().await.unwrap();
    // The runbook's restore command.
    run(Command::new(pg_tool("pg_restore"))
        .args(["--exit-on-error", "--no-password", "--dbname"])
        .arg(&fresh.superuser_url)
        .arg(&dump));

    let source = h.superuser_pool().await;
    let restored = PgPoolOptions::new()
        .max_connections(2)
        .connect(&fresh.superuser_url)
        .await
        .unwrap();
    let before = table_digests(&source).await;
    let after = table_digests(&restored).await;
    assert!(before.len() >= 20, "every table: {before:?}");
    assert_eq!(before, after, "the restored database differs");
    let tenants: i64 = sqlx::query_scalar("SELECT count(DISTINCT tenant_id) FROM properties")
        .fetch_one(&restored)
        .await
        .unwrap();
    assert_eq!(tenants, 2, "both tenants' properties are in the copy");
    let touches_restored: i64 = sqlx::query_scalar("SELECT count(*) FROM journey_touches")
        .fetch_one(&restored)
        .await
        .unwrap();
    assert_eq!(touches_restored, 3);

    // The copy serves: same roles and grants (roles are cluster-wide), schema current, RLS in force.
    let app_url = {
        let mut url = url_of(&h.init.app_url);
        url.set_path(&format!("/{}", fresh.name));
        url.to_string()
    };
    let app = AppPool::connect(
        &app_url,
        &PoolSettings {
            max_connections: 2,
            ..PoolSettings::default()
        },
    )
    .await
    .unwrap();
    server_store::check_app_role(&app).await.unwrap();
    assert!(migrations_current(&app).await.unwrap().is_current());
    let mut tx = app.begin_tenant(b.id).await.unwrap();
    assert_eq!(common::count(&mut tx, "properties").await, 3);
    assert_eq!(common::count(&mut tx, "journey_touches").await, 0);
    tx.commit().await.unwrap();
    let mut tx = app.begin_tenant(a.id).await.unwrap();
    assert_eq!(common::count(&mut tx, "properties").await, 5);
    assert_eq!(common::count(&mut tx, "journey_touches").await, 3);
    tx.commit().await.unwrap();

    app.close().await;
    restored.close().await;
    // The restored database is owned by this test's roles: drop it before the harness drops them.
    let _ = sqlx::query(&format!(
        "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
        fresh.name
    ))
    .execute(
        &PgPoolOptions::new()
            .max_connections(1)
            .connect(&fresh.server_url)
            .await
            .unwrap(),
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    h.teardown().await;
}

fn url_of(text: &str) -> url::Url {
    url::Url::parse(text).unwrap()
}

/// A private directory for the dump file (removed at the end of the test).
fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "stormops-backup-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Per table: (rows, md5 of the rows without their tenant_id), read by the application role inside the
/// tenant's context, so only that tenant's rows count.
async fn tenant_digests(
    app: &AppPool,
    tenant: domain::TenantId,
    tables: &[String],
) -> Vec<(String, i64, String)> {
    let mut tx = app.begin_tenant(tenant).await.unwrap();
    let mut out = Vec::new();
    for table in tables {
        // The export audits itself after taking its snapshot: that one entry is not in the archive.
        let filter = if table == "audit_log" {
            " WHERE action <> 'tenant.export'"
        } else {
            ""
        };
        let (rows, digest): (i64, String) = sqlx::query_as(&format!(
            "SELECT count(*), md5(coalesce(string_agg((to_jsonb(t) - 'tenant_id')::text, E'\\n' ORDER BY (to_jsonb(t) - 'tenant_id')::text), '')) FROM \"{}\" t{filter}",
            table.replace('"', "\"\"")
        ))
        .fetch_one(tx.connection())
        .await
        .unwrap();
        out.push((table.clone(), rows, digest));
    }
    tx.commit().await.unwrap();
    out
}

#[tokio::test]
async fn a_tenant_export_imported_into_a_fresh_database_matches_the_source() {
    let h = common::setup().await;
    let a = common::provision(&h, "export-a", 4).await;
    let _b = common::provision(&h, "export-b", 2).await;
    let touches: Vec<_> = (0..2).map(|i| a.touch(i, "knocked")).collect();
    let changes: Vec<_> = touches.iter().map(|t| a.touch_change(t)).collect();
    common::push(&h, &a, Role::FieldUser, &changes).await;

    let dir = tempfile_dir();
    let archive = dir.join("archive");
    let manifest = server_store::export_tenant(&h.app, &h.control, &a.slug, &archive, common::NOW)
        .await
        .unwrap();

    // A fresh database with its own roles, as on a new installation.
    let fresh = test_postgres::fresh_database().await.unwrap();
    let init = server_store::init_database(&fresh.server_url, &fresh.name, &fresh.role_prefix)
        .await
        .unwrap();
    let settings = PoolSettings {
        max_connections: 2,
        ..PoolSettings::default()
    };
    let control = server_store::ControlPool::connect(&init.control_url, &settings)
        .await
        .unwrap();
    let app = AppPool::connect(&init.app_url, &settings).await.unwrap();
    let imported =
        server_store::import_archive(&control, &archive, "export-a-restored", None, common::NOW)
            .await
            .unwrap();
    assert_eq!(imported.source_tenant, a.id);
    assert_eq!(imported.rows, manifest.total_rows());

    let tables: Vec<String> = manifest.tables.iter().map(|t| t.name.clone()).collect();
    assert!(tables.len() >= 10, "{tables:?}");
    let source = tenant_digests(&h.app, a.id, &tables).await;
    let copy = tenant_digests(&app, imported.tenant.id, &tables).await;
    for ((table, rows, _), archived) in source.iter().zip(&manifest.tables) {
        assert_eq!(
            *rows as u64, archived.rows,
            "{table}: the manifest's row count"
        );
    }
    assert_eq!(source, copy, "the imported tenant differs from the source");
    let touches_copied = copy
        .iter()
        .find(|(t, _, _)| t == "journey_touches")
        .map(|(_, n, _)| *n);
    assert_eq!(touches_copied, Some(2));

    app.close().await;
    control.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = fresh.drop_database().await;
    h.teardown().await;
}
