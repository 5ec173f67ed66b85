//! Database initialisation: the three roles, the database, the migrations and the grants.
//!
//! Roles, for a prefix `p` (default `stormops`):
//! - `p_owner` owns the schema and runs the migrations. Not superuser, no BYPASSRLS: every table has
//!   FORCE ROW LEVEL SECURITY, so even the owner sees nothing without a tenant context.
//! - `p_app` is the service: LOGIN, NOSUPERUSER, NOBYPASSRLS, NOINHERIT, owns nothing, no TRUNCATE or
//!   DDL; SELECT/INSERT/UPDATE/DELETE on tenant tables, only INSERT+SELECT on the audit log and the
//!   sync ledgers, only SELECT on `tenants` (its own row, by policy).
//! - `p_control` is the control plane (provisioning, the login's slug lookup, later export and
//!   delete): its own pool; it reads every row of `tenants` (a policy granted to it alone) and reaches
//!   tenant data only by setting that tenant's context, exactly like the service.
//!
//! [`init_database`] is idempotent. Re-running it **rotates the three passwords** (PostgreSQL cannot
//! return the old ones) and returns URLs carrying the new ones, re-asserts role attributes, applies
//! pending migrations and re-applies the grants (so tables added by later migrations are granted).

use rand::Rng;
use rand::distributions::Alphanumeric;
use sqlx::{Connection, Executor, PgConnection, PgPool, postgres::PgPoolOptions};
use url::Url;

use crate::error::StoreError;

/// The role-name prefix used when none is configured.
pub const DEFAULT_ROLE_PREFIX: &str = "stormops";

/// The server's migrations, embedded at build time. Applied by the owner role only.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/server");

/// The connection URLs `init_database` prints, one per role, each carrying its role and password.
#[derive(Clone, PartialEq, Eq)]
pub struct InitOutput {
    pub owner_url: String,
    pub app_url: String,
    pub control_url: String,
    pub roles: RoleNames,
}

impl std::fmt::Debug for InitOutput {
    // The URLs hold passwords: keep them out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitOutput")
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// The three role names of one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleNames {
    pub owner: String,
    pub app: String,
    pub control: String,
}

impl RoleNames {
    /// The role names for `prefix`; refuses prefixes that are not plain lowercase identifiers, because
    /// role names are spliced into DDL (which takes no bind parameters).
    pub fn for_prefix(prefix: &str) -> Result<Self, StoreError> {
        check_identifier("role prefix", prefix, 40)?;
        Ok(Self {
            owner: format!("{prefix}_owner"),
            app: format!("{prefix}_app"),
            control: format!("{prefix}_control"),
        })
    }
}

fn check_identifier(what: &str, value: &str, max_len: usize) -> Result<(), StoreError> {
    let ok = !value.is_empty()
        && value.len() <= max_len
        && value.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidInput(format!(
            "{what} must be 1 to {max_len} characters of lowercase letters, digits and underscores, starting with a letter"
        )))
    }
}

fn random_password() -> String {
    // thread_rng is a CSPRNG (ChaCha, reseeded from the OS); alphanumeric keeps URLs and DDL quote-free.
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

fn url_for(
    base: &Url,
    user: &str,
    password: Option<&str>,
    database: &str,
) -> Result<String, StoreError> {
    let mut url = base.clone();
    let bad = |_| {
        StoreError::InvalidInput(
            "the superuser URL cannot carry a user name (is it a postgres:// URL?)".into(),
        )
    };
    url.set_username(user).map_err(bad)?;
    url.set_password(password).map_err(bad)?;
    url.set_path(&format!("/{database}"));
    Ok(url.to_string())
}

/// Passwords an operator chose for the three roles (e.g. from a Kubernetes Secret). A deployment's
/// migrations job re-runs init on every release; with fixed passwords the URLs the running servers
/// hold stay valid instead of being rotated under them. A role without one gets a fresh random password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RolePasswords {
    pub owner: Option<String>,
    pub app: Option<String>,
    pub control: Option<String>,
}

impl std::fmt::Debug for RolePasswords {
    // Secrets never reach Debug output: only whether each one was given.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RolePasswords")
            .field("owner", &self.owner.is_some())
            .field("app", &self.app.is_some())
            .field("control", &self.control.is_some())
            .finish()
    }
}

/// Shortest operator-chosen password accepted (the generated ones have 32 characters).
pub const MIN_PASSWORD_LEN: usize = 16;

/// An operator-chosen password, or a fresh random one. Passwords are spliced into `ALTER ROLE …
/// PASSWORD '…'` (DDL takes no bind parameters), so only ASCII letters and digits are accepted; the
/// message names the role, never the value.
fn chosen_or_random(role: &str, chosen: Option<&str>) -> Result<String, StoreError> {
    match chosen {
        None => Ok(random_password()),
        Some(p)
            if p.len() >= MIN_PASSWORD_LEN
                && p.len() <= 128
                && p.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            Ok(p.to_owned())
        }
        Some(_) => Err(StoreError::InvalidInput(format!(
            "the {role} role's password must be {MIN_PASSWORD_LEN} to 128 ASCII letters and digits"
        ))),
    }
}

/// Creates (or updates) the roles and the database, migrates it as the owner, and grants the
/// application and control roles what they need. See the module doc for the roles and re-runs.
pub async fn init_database(
    superuser_url: &str,
    database_name: &str,
    prefix: &str,
) -> Result<InitOutput, StoreError> {
    init_database_with_passwords(
        superuser_url,
        database_name,
        prefix,
        &RolePasswords::default(),
    )
    .await
}

/// [`init_database`] with operator-chosen role passwords (see [`RolePasswords`]).
pub async fn init_database_with_passwords(
    superuser_url: &str,
    database_name: &str,
    prefix: &str,
    passwords: &RolePasswords,
) -> Result<InitOutput, StoreError> {
    check_identifier("database name", database_name, 63)?;
    let roles = RoleNames::for_prefix(prefix)?;
    let base = Url::parse(superuser_url)
        .map_err(|e| StoreError::InvalidInput(format!("superuser URL: {e}")))?;

    let owner_password = chosen_or_random("owner", passwords.owner.as_deref())?;
    let app_password = chosen_or_random("application", passwords.app.as_deref())?;
    let control_password = chosen_or_random("control-plane", passwords.control.as_deref())?;

    let mut admin = PgConnection::connect(superuser_url).await?;
    // The application and control roles are locked down; the owner may own objects but not skip RLS.
    let role_specs = [
        (
            &roles.owner,
            &owner_password,
            "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION INHERIT",
        ),
        (
            &roles.app,
            &app_password,
            "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION NOINHERIT",
        ),
        (
            &roles.control,
            &control_password,
            "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION NOINHERIT",
        ),
    ];
    for (name, password, attributes) in role_specs {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(name.as_str())
                .fetch_one(&mut admin)
                .await?;
        let verb = if exists { "ALTER" } else { "CREATE" };
        // Names and passwords were checked to be [a-z0-9_] / alphanumeric: safe to splice.
        let ddl = format!("{verb} ROLE \"{name}\" {attributes} PASSWORD '{password}'");
        match admin.execute(ddl.as_str()).await {
            Ok(_) => {}
            // Another init racing us created it first: fall back to ALTER.
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42710") => {
                let ddl = format!("ALTER ROLE \"{name}\" {attributes} PASSWORD '{password}'");
                admin.execute(ddl.as_str()).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }

    let db_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database_name)
            .fetch_one(&mut admin)
            .await?;
    if !db_exists {
        let ddl = format!(
            "CREATE DATABASE \"{database_name}\" OWNER \"{}\"",
            roles.owner
        );
        admin.execute(ddl.as_str()).await?;
    } else {
        let ddl = format!(
            "ALTER DATABASE \"{database_name}\" OWNER TO \"{}\"",
            roles.owner
        );
        admin.execute(ddl.as_str()).await?;
    }
    let ddl = format!(
        "REVOKE ALL ON DATABASE \"{db}\" FROM PUBLIC; \
         GRANT CONNECT, TEMPORARY ON DATABASE \"{db}\" TO \"{app}\"; \
         GRANT CONNECT ON DATABASE \"{db}\" TO \"{control}\"",
        db = database_name,
        app = roles.app,
        control = roles.control
    );
    admin.execute(sqlx::raw_sql(&ddl)).await?;
    admin.close().await?;

    // Inside the database, as superuser: the owner owns schema public, nobody else may create in it.
    let superuser_in_db = url_for(&base, base.username(), base.password(), database_name)?;
    let mut admin_in_db = PgConnection::connect(&superuser_in_db).await?;
    let ddl = format!(
        "ALTER SCHEMA public OWNER TO \"{owner}\"; \
         REVOKE ALL ON SCHEMA public FROM PUBLIC; \
         GRANT USAGE ON SCHEMA public TO \"{app}\", \"{control}\"",
        owner = roles.owner,
        app = roles.app,
        control = roles.control
    );
    admin_in_db.execute(sqlx::raw_sql(&ddl)).await?;
    admin_in_db.close().await?;

    let owner_url = url_for(&base, &roles.owner, Some(&owner_password), database_name)?;
    let app_url = url_for(&base, &roles.app, Some(&app_password), database_name)?;
    let control_url = url_for(
        &base,
        &roles.control,
        Some(&control_password),
        database_name,
    )?;

    let owner_pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&owner_url)
        .await?;
    MIGRATOR.run(&owner_pool).await?;
    apply_grants(&owner_pool, &roles).await?;
    owner_pool.close().await;

    Ok(InitOutput {
        owner_url,
        app_url,
        control_url,
        roles,
    })
}

/// Grants, as the owner, after every migration run. Granting on ALL TABLES then revoking the
/// exceptions means a table added by a later migration is usable by the service after the next init,
/// and the exceptions (append-only ledgers, the control-plane table) stay closed.
async fn apply_grants(owner_pool: &PgPool, roles: &RoleNames) -> Result<(), StoreError> {
    let ddl = format!(
        "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM \"{app}\", \"{control}\";
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO \"{app}\", \"{control}\";
         REVOKE INSERT, UPDATE, DELETE ON tenants, _sqlx_migrations FROM \"{app}\";
         REVOKE UPDATE, DELETE ON audit_log, applied_changes, change_log FROM \"{app}\";
         REVOKE INSERT, UPDATE, DELETE ON _sqlx_migrations FROM \"{control}\";
         REVOKE UPDATE ON audit_log FROM \"{control}\";
         REVOKE ALL ON tenant_lifecycle_log FROM \"{app}\";
         REVOKE UPDATE, DELETE ON tenant_lifecycle_log FROM \"{control}\";
         REVOKE INSERT, UPDATE, DELETE ON plans FROM \"{app}\";
         REVOKE INSERT, DELETE ON plans FROM \"{control}\";
         REVOKE UPDATE, DELETE ON usage_events FROM \"{app}\";
         DROP POLICY IF EXISTS control_plane ON tenants;
         CREATE POLICY control_plane ON tenants TO \"{control}\" USING (true) WITH CHECK (true);",
        app = roles.app,
        control = roles.control
    );
    let mut tx = owner_pool.begin().await?;
    tx.execute(sqlx::raw_sql(&ddl)).await?;
    tx.commit().await?;
    Ok(())
}

/// Where the database stands against the migrations embedded in this build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Versions applied successfully.
    pub applied: Vec<i64>,
    /// Versions embedded in this build.
    pub embedded: Vec<i64>,
}

impl MigrationStatus {
    /// Ready: the database holds exactly the migrations this build expects.
    pub fn is_current(&self) -> bool {
        self.applied == self.embedded
    }
}

pub(crate) async fn migration_status(pool: &PgPool) -> Result<MigrationStatus, StoreError> {
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await
            .or_else(|e| match &e {
                // No migration table yet: nothing applied.
                sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => {
                    Ok(Vec::new())
                }
                _ => Err(e),
            })?;
    let mut embedded: Vec<i64> = MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| m.version)
        .collect();
    embedded.sort_unstable();
    Ok(MigrationStatus { applied, embedded })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_plain_identifiers() {
        assert!(RoleNames::for_prefix("stormops").is_ok());
        assert!(RoleNames::for_prefix("t_1a2b").is_ok());
        for bad in [
            "",
            "Stormops",
            "1abc",
            "a-b",
            "a\"b",
            "a;drop role x",
            &"a".repeat(41),
        ] {
            assert!(
                matches!(RoleNames::for_prefix(bad), Err(StoreError::InvalidInput(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn urls_carry_role_password_and_database() {
        let base =
            Url::parse("postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable").unwrap();
        let url = url_for(&base, "p_app", Some("secret"), "field").unwrap();
        assert_eq!(
            url,
            "postgres://p_app:secret@127.0.0.1:5432/field?sslmode=disable"
        );
    }

    #[test]
    fn chosen_passwords_are_checked_before_reaching_ddl() {
        assert_eq!(
            chosen_or_random("app", Some("abcdefghij0123456789"))
                .ok()
                .as_deref(),
            Some("abcdefghij0123456789")
        );
        for bad in [
            "short1",
            "has'quote0123456789",
            "spaces are here 123",
            "ünïcödé0123456789",
        ] {
            let err = chosen_or_random("app", Some(bad));
            assert!(
                matches!(&err, Err(StoreError::InvalidInput(m)) if !m.contains(bad)),
                "{bad:?} -> {err:?}"
            );
        }
        assert_eq!(
            chosen_or_random("app", None).map(|p| p.len()).ok(),
            Some(32)
        );
    }

    #[test]
    fn passwords_are_long_and_alphanumeric() {
        let a = random_password();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, random_password());
    }
}
