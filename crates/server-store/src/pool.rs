//! The two connection pools (application and control plane), the checkout guard that refuses a pooled
//! connection still carrying a tenant context, the startup check of the application role, and readiness.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgConnection, PgPool};

use crate::error::{StartupCheckError, StoreError};
use crate::init::{MigrationStatus, migration_status};

/// Pool sizing and timeouts.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// The application role's pool. The only way to query tenant data through it is
/// [`AppPool::begin_tenant`], which opens a [`crate::TenantTx`].
#[derive(Clone, Debug)]
pub struct AppPool(pub(crate) PgPool);

/// The control-plane role's pool (provisioning, slug lookup, cross-tenant jobs). Opens [`crate::ControlTx`].
#[derive(Clone, Debug)]
pub struct ControlPool(pub(crate) PgPool);

/// Whether a connection carries no tenant context. `current_setting(.., true)` is NULL on a connection
/// that never set it and `''` after a transaction-local setting ended; anything else is a leak (a
/// session-level `SET`), and that connection must never serve another request.
async fn carries_no_tenant_context(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let value: Option<String> = sqlx::query_scalar("SELECT current_setting('app.tenant_id', true)")
        .fetch_one(conn)
        .await?;
    let clean = value.as_deref().is_none_or(str::is_empty);
    if !clean {
        tracing::error!("closing a pooled connection that carried a tenant context at checkout");
    }
    Ok(clean)
}

async fn connect(url: &str, settings: &PoolSettings) -> Result<PgPool, StoreError> {
    let options: PgConnectOptions = url
        .parse()
        .map_err(|e| StoreError::InvalidInput(format!("database URL: {e}")))?;
    let options = options
        .application_name("stormops-server")
        .disable_statement_logging();
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        // Checked at every checkout (rls-rules.md T3): a connection with a leftover context is closed.
        .before_acquire(|conn, _meta| {
            Box::pin(async move { carries_no_tenant_context(conn).await })
        })
        .connect_with(options)
        .await?;
    Ok(pool)
}

impl AppPool {
    /// Connects the application role's pool. Call [`check_app_role`] before serving.
    pub async fn connect(app_url: &str, settings: &PoolSettings) -> Result<Self, StoreError> {
        connect(app_url, settings).await.map(Self)
    }

    pub async fn close(&self) {
        self.0.close().await;
    }

    /// Liveness: one round trip.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.0).await?;
        Ok(())
    }

    /// The pool's connections for the metrics: open, idle, and the configured maximum.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            open: self.0.size(),
            idle: u32::try_from(self.0.num_idle()).unwrap_or(u32::MAX),
            max: self.0.options().get_max_connections(),
        }
    }

    /// Seconds since the oldest transaction that holds a transaction id in this database began: pulls
    /// return only rows below the oldest running writer, so this is how far every pull lags at most.
    /// Reads `pg_stat_activity`, which shows this role its own sessions (all request transactions) in
    /// full; another role's transactions appear without `backend_xid` and are not counted.
    pub async fn pull_horizon_lag_secs(&self) -> Result<f64, StoreError> {
        let secs: f64 = sqlx::query_scalar(
            "SELECT coalesce(extract(epoch FROM now() - min(xact_start)), 0)::float8
               FROM pg_stat_activity
              WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()",
        )
        .fetch_one(&self.0)
        .await?;
        Ok(secs.max(0.0))
    }
}

/// Connections of a pool, as the metrics show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

impl ControlPool {
    /// Connects the control-plane role's pool.
    pub async fn connect(control_url: &str, settings: &PoolSettings) -> Result<Self, StoreError> {
        connect(control_url, settings).await.map(Self)
    }

    pub async fn close(&self) {
        self.0.close().await;
    }
}

/// Startup check (rls-rules.md T2, T15): refuses an application role that is superuser, has BYPASSRLS,
/// owns (directly or through membership) any table, view, sequence or function in schema public, may
/// TRUNCATE or CREATE there, or — with Citus — would not propagate the transaction-local tenant context.
pub async fn check_app_role(pool: &AppPool) -> Result<(), StoreError> {
    let pool = &pool.0;
    let (role, superuser, bypass): (String, bool, bool) = sqlx::query_as(
        "SELECT rolname::text, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(pool)
    .await?;
    if superuser {
        return Err(StartupCheckError::Superuser { role }.into());
    }
    if bypass {
        return Err(StartupCheckError::BypassRls { role }.into());
    }
    let owned: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c
          WHERE c.relnamespace = 'public'::regnamespace AND pg_has_role(current_user, c.relowner, 'USAGE')
         UNION ALL
         SELECT p.proname::text FROM pg_proc p
          WHERE p.pronamespace = 'public'::regnamespace AND pg_has_role(current_user, p.proowner, 'USAGE')
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await?;
    if !owned.is_empty() {
        return Err(StartupCheckError::OwnsObjects {
            role,
            objects: owned,
        }
        .into());
    }
    let truncatable: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
            AND has_table_privilege(current_user, c.oid, 'TRUNCATE')
          ORDER BY 1",
    )
    .fetch_all(pool)
    .await?;
    if !truncatable.is_empty() {
        return Err(StartupCheckError::CanTruncate {
            role,
            tables: truncatable,
        }
        .into());
    }
    let can_create: bool =
        sqlx::query_scalar("SELECT has_schema_privilege(current_user, 'public', 'CREATE')")
            .fetch_one(pool)
            .await?;
    if can_create {
        return Err(StartupCheckError::CanCreate { role }.into());
    }
    let citus: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
            .fetch_one(pool)
            .await?;
    let propagation: Option<String> = if citus {
        sqlx::query_scalar("SELECT current_setting('citus.propagate_set_commands', true)")
            .fetch_one(pool)
            .await?
    } else {
        None
    };
    citus_propagation_check(citus, propagation.as_deref())?;
    Ok(())
}

/// The Citus part of the startup check, decided from what the catalog said (rls-rules.md T15). Without
/// Citus there is nothing to propagate. With it, the transaction-local tenant context must reach the
/// worker nodes that hold the shards, or every policy there reads an empty context and returns no rows
/// (silently: an empty sync, not an error) — so anything but `local` (unset, `none`) refuses to start.
pub fn citus_propagation_check(
    citus_installed: bool,
    propagate_set_commands: Option<&str>,
) -> Result<(), StartupCheckError> {
    if !citus_installed {
        return Ok(());
    }
    match propagate_set_commands.map(str::trim) {
        Some(value) if value.eq_ignore_ascii_case("local") => Ok(()),
        other => Err(StartupCheckError::CitusPropagation {
            value: other.unwrap_or_default().to_owned(),
        }),
    }
}

/// Readiness: the applied migrations against the ones embedded in this build.
pub async fn migrations_current(pool: &AppPool) -> Result<MigrationStatus, StoreError> {
    migration_status(&pool.0).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citus_context_propagation_is_required_only_where_citus_is_installed() {
        // Plain PostgreSQL: the setting does not exist and does not matter.
        assert!(citus_propagation_check(false, None).is_ok());
        assert!(citus_propagation_check(false, Some("none")).is_ok());
        // Citus: only `local` lets `SET LOCAL`-style context reach the workers.
        assert!(citus_propagation_check(true, Some("local")).is_ok());
        assert!(citus_propagation_check(true, Some("LOCAL")).is_ok());
        for refused in [None, Some(""), Some("none"), Some("all")] {
            let err = citus_propagation_check(true, refused);
            assert!(
                matches!(&err, Err(StartupCheckError::CitusPropagation { value }) if value == refused.unwrap_or_default()),
                "{refused:?} -> {err:?}"
            );
        }
    }

    #[test]
    fn the_refusal_tells_the_operator_what_to_set() {
        let err = citus_propagation_check(true, Some("none"))
            .err()
            .map(|e| e.to_string());
        let text = err.unwrap_or_default();
        assert!(text.contains("citus.propagate_set_commands"), "{text}");
        assert!(text.contains("local"), "{text}");
    }
}
