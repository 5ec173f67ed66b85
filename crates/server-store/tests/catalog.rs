//! Catalog tests (rls-rules.md T1, T6, T7, T9, T12, T14, T2): run after all migrations, against the
//! real catalog, as they would in CI.

mod common;

use server_store::{
    StartupCheckError, StoreError, check_app_role, init_database, migrations_current,
};

/// name, USING, WITH CHECK, permissive, roles
type PolicyRow = (String, Option<String>, Option<String>, String, Vec<String>);

const POLICY_EQUALITY: &str =
    "(tenant_id = (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::uuid)";

#[tokio::test]
async fn every_tenant_table_has_forced_rls_and_a_plain_equality_policy() {
    let h = common::setup().await;
    let su = h.superuser_pool().await;
    let tables: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
            AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
          ORDER BY 1",
    )
    .fetch_all(&su)
    .await
    .unwrap();
    assert!(
        tables.len() >= 20,
        "expected every tenant table, got {tables:?}"
    );
    for (table, enabled, forced) in &tables {
        assert!(enabled, "{table}: row-level security not enabled");
        assert!(forced, "{table}: row-level security not forced");
        let policies: Vec<PolicyRow> = sqlx::query_as(
            "SELECT policyname::text, qual, with_check, permissive, roles::text[] FROM pg_policies
              WHERE schemaname = 'public' AND tablename = $1",
        )
        .bind(table)
        .fetch_all(&su)
        .await
        .unwrap();
        assert!(!policies.is_empty(), "{table}: no policy");
        for (name, using, check, permissive, roles) in policies {
            assert_eq!(
                using.as_deref(),
                Some(POLICY_EQUALITY),
                "{table}.{name}: USING is not the plain equality"
            );
            assert_eq!(
                check.as_deref(),
                Some(POLICY_EQUALITY),
                "{table}.{name}: WITH CHECK is not the plain equality"
            );
            assert_eq!(permissive, "PERMISSIVE");
            assert_eq!(
                roles,
                vec!["public".to_owned()],
                "{table}.{name}: policy for specific roles"
            );
        }
    }
    h.teardown().await;
}

#[tokio::test]
async fn policies_have_no_joins_subqueries_or_other_functions() {
    let h = common::setup().await;
    let su = h.superuser_pool().await;
    let texts: Vec<(String, String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT tablename::text, policyname::text, qual, with_check FROM pg_policies WHERE schemaname = 'public'")
            .fetch_all(&su)
            .await
            .unwrap();
    for (table, name, using, check) in texts {
        for text in [using, check].into_iter().flatten() {
            let lower = text.to_lowercase();
            for banned in [
                "select",
                "join",
                " in (",
                "exists",
                "any (",
                "current_user",
                "pg_has_role",
            ] {
                assert!(
                    !lower.contains(banned),
                    "{table}.{name} policy uses {banned}: {text}"
                );
            }
            let functions = lower.matches('(').count();
            // nullif(current_setting(...)) and the grouping parentheses only.
            assert!(
                functions <= 4,
                "{table}.{name} policy looks complex: {text}"
            );
        }
    }
    h.teardown().await;
}

#[tokio::test]
async fn tenants_table_shows_the_app_only_its_own_row_and_the_control_role_everything() {
    let h = common::setup().await;
    let su = h.superuser_pool().await;
    let policies: Vec<(String, Option<String>, Vec<String>)> =
        sqlx::query_as("SELECT policyname::text, qual, roles::text[] FROM pg_policies WHERE tablename = 'tenants' ORDER BY 1")
            .fetch_all(&su)
            .await
            .unwrap();
    assert_eq!(policies.len(), 2, "{policies:?}");
    let (control_name, control_qual, control_roles) = &policies[0];
    assert_eq!(control_name, "control_plane");
    assert_eq!(control_qual.as_deref(), Some("true"));
    assert_eq!(
        control_roles,
        &vec![h.init.roles.control.clone()],
        "only the control role reads all tenants"
    );
    let (self_name, self_qual, self_roles) = &policies[1];
    assert_eq!(self_name, "tenant_self");
    assert_eq!(
        self_qual.as_deref(),
        Some(POLICY_EQUALITY.replacen("(tenant_id", "(id", 1).as_str())
    );
    assert_eq!(self_roles, &vec!["public".to_owned()]);
    let (enabled, forced): (bool, bool) =
        sqlx::query_as("SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'public.tenants'::regclass")
            .fetch_one(&su)
            .await
            .unwrap();
    assert!(enabled && forced);
    h.teardown().await;
}

#[tokio::test]
async fn keys_lead_with_tenant_id_and_foreign_keys_are_composite() {
    let h = common::setup().await;
    let su = h.superuser_pool().await;
    // Unique indexes (primary keys included) of tables that have a tenant_id column.
    let bad_unique: Vec<(String, String)> = sqlx::query_as(
        "SELECT t.relname::text, i.relname::text FROM pg_index x
           JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
          WHERE t.relnamespace = 'public'::regnamespace AND x.indisunique
            AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attname = 'tenant_id')
            AND (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attnum = x.indkey[0]) IS DISTINCT FROM 'tenant_id'",
    )
    .fetch_all(&su)
    .await
    .unwrap();
    assert!(
        bad_unique.is_empty(),
        "unique indexes not led by tenant_id: {bad_unique:?}"
    );
    // Every index of a tenant table leads with tenant_id (T12): the policy's equality is an index condition.
    let bad_index: Vec<(String, String)> = sqlx::query_as(
        "SELECT t.relname::text, i.relname::text FROM pg_index x
           JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
          WHERE t.relnamespace = 'public'::regnamespace
            AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attname = 'tenant_id')
            AND (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attnum = x.indkey[0]) IS DISTINCT FROM 'tenant_id'",
    )
    .fetch_all(&su)
    .await
    .unwrap();
    assert!(
        bad_index.is_empty(),
        "indexes not led by tenant_id: {bad_index:?}"
    );
    // Foreign keys between tenant tables are composite and start with tenant_id (Citus co-location);
    // the only single-column target allowed is the tenants table (a Citus reference table).
    let fks: Vec<(String, String, String, Vec<String>)> = sqlx::query_as(
        "SELECT c.conname::text, c.conrelid::regclass::text, c.confrelid::regclass::text,
                ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o)
           FROM pg_constraint c WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace",
    )
    .fetch_all(&su)
    .await
    .unwrap();
    assert!(fks.len() > 20);
    for (name, from, to, columns) in fks {
        if to == "tenants" {
            assert_eq!(columns, vec!["tenant_id".to_owned()], "{name}");
        } else {
            assert!(
                columns.len() >= 2 && columns[0] == "tenant_id",
                "{from}.{name} -> {to} is not composite: {columns:?}"
            );
        }
    }
    h.teardown().await;
}

#[tokio::test]
async fn no_views_functions_triggers_or_sequences_escape_the_policies() {
    let h = common::setup().await;
    let su = h.superuser_pool().await;
    // T7: every view must be security_invoker (there are none today; the check holds future ones to it).
    let bad_views: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('v', 'm')
            AND NOT coalesce('security_invoker=on' = ANY (c.reloptions) OR 'security_invoker=true' = ANY (c.reloptions), false)",
    )
    .fetch_all(&su)
    .await
    .unwrap();
    assert!(
        bad_views.is_empty(),
        "views without security_invoker: {bad_views:?}"
    );
    const SECURITY_DEFINER_ALLOW_LIST: &[&str] = &[];
    let definers: Vec<String> = sqlx::query_scalar(
        "SELECT p.proname::text FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef",
    )
    .fetch_all(&su)
    .await
    .unwrap();
    for f in &definers {
        assert!(
            SECURITY_DEFINER_ALLOW_LIST.contains(&f.as_str()),
            "SECURITY DEFINER function {f} not on the allow-list"
        );
    }
    // Citus readiness: no sequences, no user triggers on tenant tables.
    let sequences: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'S'")
        .fetch_one(&su)
        .await
        .unwrap();
    assert_eq!(sequences, 0);
    let triggers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal",
    )
    .fetch_one(&su)
    .await
    .unwrap();
    assert_eq!(triggers, 0);
    h.teardown().await;
}

#[tokio::test]
async fn app_role_owns_nothing_and_has_only_the_privileges_it_needs() {
    let h = common::setup().await;
    let su = h.superuser_pool().await;
    let roles = &h.init.roles;
    let owned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = $1)",
    )
    .bind(&roles.app)
    .fetch_one(&su)
    .await
    .unwrap();
    assert_eq!(owned, 0);
    let attributes: (bool, bool, bool, bool, bool) = sqlx::query_as(
        "SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolinherit FROM pg_roles WHERE rolname = $1",
    )
    .bind(&roles.app)
    .fetch_one(&su)
    .await
    .unwrap();
    assert_eq!(attributes, (false, false, false, false, false));
    let privilege = |table: &'static str, privilege: &'static str, role: String| {
        let su = su.clone();
        async move {
            sqlx::query_scalar::<_, bool>("SELECT has_table_privilege($1, $2, $3)")
                .bind(role)
                .bind(format!("public.{table}"))
                .bind(privilege)
                .fetch_one(&su)
                .await
                .unwrap()
        }
    };
    for table in [
        "journey_touches",
        "properties",
        "audit_log",
        "tenants",
        "change_log",
        "users",
    ] {
        assert!(
            !privilege(table, "TRUNCATE", roles.app.clone()).await,
            "app may truncate {table}"
        );
        assert!(
            !privilege(table, "TRUNCATE", roles.control.clone()).await,
            "control may truncate {table}"
        );
    }
    assert!(privilege("audit_log", "INSERT", roles.app.clone()).await);
    assert!(privilege("audit_log", "SELECT", roles.app.clone()).await);
    assert!(!privilege("audit_log", "UPDATE", roles.app.clone()).await);
    assert!(!privilege("audit_log", "DELETE", roles.app.clone()).await);
    assert!(!privilege("change_log", "UPDATE", roles.app.clone()).await);
    assert!(!privilege("applied_changes", "DELETE", roles.app.clone()).await);
    assert!(!privilege("tenants", "INSERT", roles.app.clone()).await);
    assert!(!privilege("tenants", "UPDATE", roles.app.clone()).await);
    assert!(privilege("tenants", "INSERT", roles.control.clone()).await);
    assert!(privilege("journey_touches", "INSERT", roles.app.clone()).await);
    let can_create: bool =
        sqlx::query_scalar("SELECT has_schema_privilege($1, 'public', 'CREATE')")
            .bind(&roles.app)
            .fetch_one(&su)
            .await
            .unwrap();
    assert!(!can_create);
    // The startup check agrees.
    check_app_role(&h.app)
        .await
        .expect("the app role passes its startup check");
    h.teardown().await;
}

#[tokio::test]
async fn startup_check_refuses_superuser_bypassrls_and_owner_roles() {
    let h = common::setup().await;
    let su = h.superuser_pool().await;
    let settings = server_store::PoolSettings {
        max_connections: 1,
        ..Default::default()
    };
    let app = &h.init.roles.app;

    sqlx::query(&format!("ALTER ROLE \"{app}\" BYPASSRLS"))
        .execute(&su)
        .await
        .unwrap();
    let pool = server_store::AppPool::connect(&h.init.app_url, &settings)
        .await
        .unwrap();
    assert!(matches!(
        check_app_role(&pool).await,
        Err(StoreError::StartupCheck(
            StartupCheckError::BypassRls { .. }
        ))
    ));
    pool.close().await;
    sqlx::query(&format!("ALTER ROLE \"{app}\" NOBYPASSRLS SUPERUSER"))
        .execute(&su)
        .await
        .unwrap();
    let pool = server_store::AppPool::connect(&h.init.app_url, &settings)
        .await
        .unwrap();
    assert!(matches!(
        check_app_role(&pool).await,
        Err(StoreError::StartupCheck(
            StartupCheckError::Superuser { .. }
        ))
    ));
    pool.close().await;
    sqlx::query(&format!("ALTER ROLE \"{app}\" NOSUPERUSER"))
        .execute(&su)
        .await
        .unwrap();

    // Connecting the service with the owner's URL (T1's trap) is refused too.
    let owner_pool = server_store::AppPool::connect(&h.init.owner_url, &settings)
        .await
        .unwrap();
    assert!(matches!(
        check_app_role(&owner_pool).await,
        Err(StoreError::StartupCheck(
            StartupCheckError::OwnsObjects { .. }
        ))
    ));
    owner_pool.close().await;

    // The app role made a member of the owner (inheriting its ownership) is refused.
    sqlx::query(&format!("ALTER ROLE \"{app}\" INHERIT"))
        .execute(&su)
        .await
        .unwrap();
    sqlx::query(&format!("GRANT \"{}\" TO \"{app}\"", h.init.roles.owner))
        .execute(&su)
        .await
        .unwrap();
    let pool = server_store::AppPool::connect(&h.init.app_url, &settings)
        .await
        .unwrap();
    assert!(matches!(
        check_app_role(&pool).await,
        Err(StoreError::StartupCheck(
            StartupCheckError::OwnsObjects { .. }
        ))
    ));
    pool.close().await;
    sqlx::query(&format!("REVOKE \"{}\" FROM \"{app}\"", h.init.roles.owner))
        .execute(&su)
        .await
        .unwrap();

    // A TRUNCATE grant is refused.
    sqlx::query(&format!("GRANT TRUNCATE ON journey_touches TO \"{app}\""))
        .execute(&su)
        .await
        .unwrap();
    let pool = server_store::AppPool::connect(&h.init.app_url, &settings)
        .await
        .unwrap();
    assert!(matches!(
        check_app_role(&pool).await,
        Err(StoreError::StartupCheck(
            StartupCheckError::CanTruncate { .. }
        ))
    ));
    pool.close().await;
    h.teardown().await;
}

#[tokio::test]
async fn init_is_idempotent_and_migrations_are_current() {
    let h = common::setup().await;
    let status = migrations_current(&h.app).await.unwrap();
    assert!(status.is_current(), "{status:?}");
    assert!(!status.embedded.is_empty());
    // Re-running init must not fail; it rotates the passwords and re-applies grants.
    let again = init_database(&h.db.server_url, &h.db.name, &h.db.role_prefix)
        .await
        .expect("second init");
    assert_eq!(again.roles, h.init.roles);
    assert_ne!(again.app_url, h.init.app_url, "passwords rotate on re-run");
    assert!(
        again.app_url.contains(&format!("{}:", h.init.roles.app)),
        "the URL carries the role"
    );
    let pool = server_store::AppPool::connect(&again.app_url, &Default::default())
        .await
        .unwrap();
    check_app_role(&pool).await.unwrap();
    assert!(migrations_current(&pool).await.unwrap().is_current());
    pool.close().await;
    h.teardown().await;
}
