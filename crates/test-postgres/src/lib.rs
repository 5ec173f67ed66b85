//! Test support: a PostgreSQL to test against, the running one or a private cluster started on demand.
//!
//! [`fresh_database`] gives every test its own database (random name) and its own role-name prefix, so
//! tests run in parallel without seeing each other. The server is, in order:
//! 1. `TEST_POSTGRES_URL` when set (a superuser URL);
//! 2. `postgres://postgres@127.0.0.1:5432/postgres` when it answers (trust auth), unless
//!    `TEST_POSTGRES_PRIVATE=1`;
//! 3. a private cluster started once per process from `/usr/lib/postgresql/*/bin` (initdb into a temp
//!    directory owned by `postgres`, a free port, its socket in the temp directory). A watchdog shell
//!    stops it and removes the directory when the test process exits.
//!
//! Without PostgreSQL binaries it fails with the install command.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use rand::Rng;
use sqlx::{Connection, Executor, PgConnection};

/// The command that installs PostgreSQL on the Debian images this project builds on.
pub const INSTALL_COMMAND: &str = "apt-get install -y postgresql";

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Why no test database could be made.
#[derive(Debug, thiserror::Error)]
pub enum TestPgError {
    #[error(
        "no PostgreSQL answers on 127.0.0.1:5432 and no server binaries were found under /usr/lib/postgresql/*/bin; install them with: {INSTALL_COMMAND}"
    )]
    NotInstalled,
    #[error("starting a private PostgreSQL cluster failed: {0}")]
    ClusterStart(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("bad URL: {0}")]
    Url(#[from] url::ParseError),
}

/// One test's database, with a role prefix unique to it.
#[derive(Debug)]
pub struct TestDatabase {
    /// Superuser URL of the server's maintenance database (`postgres`).
    pub server_url: String,
    /// Superuser URL of this test's database.
    pub superuser_url: String,
    /// This test's database name.
    pub name: String,
    /// A role-name prefix no other test uses (roles are cluster-wide).
    pub role_prefix: String,
}

impl TestDatabase {
    /// Drops the database and every role with this test's prefix. Best effort; tests may skip it.
    pub async fn drop_database(&self) -> Result<(), TestPgError> {
        let mut conn = PgConnection::connect(&self.server_url).await?;
        conn.execute(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name).as_str())
            .await?;
        let roles: Vec<String> =
            sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE starts_with(rolname, $1)")
                .bind(format!("{}_", self.role_prefix))
                .fetch_all(&mut conn)
                .await?;
        for role in roles {
            // Names come from pg_roles and were made by us from [a-z0-9_]; quote them anyway.
            conn.execute(format!("DROP ROLE IF EXISTS \"{}\"", role.replace('"', "")).as_str())
                .await?;
        }
        conn.close().await?;
        Ok(())
    }
}

fn random_suffix() -> String {
    let n: u64 = rand::thread_rng().r#gen();
    format!("{n:016x}")
}

/// The superuser URL of the server tests use (see the module doc for the order of choice).
pub async fn server_url() -> Result<String, TestPgError> {
    if let Ok(url) = std::env::var("TEST_POSTGRES_URL") {
        return Ok(url);
    }
    let private_only = std::env::var("TEST_POSTGRES_PRIVATE").is_ok_and(|v| v == "1");
    if !private_only && PgConnection::connect(DEFAULT_URL).await.is_ok() {
        return Ok(DEFAULT_URL.to_owned());
    }
    // Starting the cluster blocks (initdb takes seconds): keep it off the async executor's threads.
    let cluster = tokio::task::spawn_blocking(private_cluster)
        .await
        .map_err(|e| TestPgError::ClusterStart(e.to_string()))?;
    cluster
        .as_ref()
        .map(|c| c.url.clone())
        .map_err(|e| TestPgError::ClusterStart(e.clone()))
}

/// A fresh database with a random name, created by the superuser, and a fresh role prefix.
pub async fn fresh_database() -> Result<TestDatabase, TestPgError> {
    fresh_database_on(server_url().await?).await
}

async fn fresh_database_on(server_url: String) -> Result<TestDatabase, TestPgError> {
    let suffix = random_suffix();
    let name = format!("test_{suffix}");
    let role_prefix = format!("t{}", &suffix[..12]);
    let mut conn = PgConnection::connect(&server_url).await?;
    conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await?;
    conn.close().await?;
    let mut url = url::Url::parse(&server_url)?;
    url.set_path(&format!("/{name}"));
    Ok(TestDatabase {
        server_url,
        superuser_url: url.to_string(),
        name,
        role_prefix,
    })
}

#[derive(Debug)]
struct PrivateCluster {
    url: String,
    bin: PathBuf,
    data: String,
    options: String,
    log: String,
    as_postgres: bool,
}

/// A private cluster of one test's own, for tests that restart PostgreSQL (the shared server must keep
/// running for every other test). Stopped and removed when the test process exits.
#[derive(Debug)]
pub struct DedicatedCluster(PrivateCluster);

impl DedicatedCluster {
    /// Starts a new cluster (blocking: initdb takes seconds; call it from a blocking thread).
    pub fn start() -> Result<Self, TestPgError> {
        start_private_cluster()
            .map(Self)
            .map_err(TestPgError::ClusterStart)
    }

    /// The superuser URL of its `postgres` database.
    pub fn url(&self) -> &str {
        &self.0.url
    }

    /// A fresh database on this cluster.
    pub async fn fresh_database(&self) -> Result<TestDatabase, TestPgError> {
        fresh_database_on(self.0.url.clone()).await
    }

    /// Restarts the server with a fast shutdown (open connections are cut, as in a crash or failover)
    /// and waits until it accepts connections again. Blocking.
    pub fn restart(&self) -> Result<(), TestPgError> {
        let c = &self.0;
        let args = [
            "-D", &c.data, "-o", &c.options, "-l", &c.log, "-m", "fast", "-w", "restart",
        ];
        run_pg(&c.bin.join("pg_ctl"), &args, c.as_postgres).map_err(TestPgError::ClusterStart)
    }
}

static CLUSTER: OnceLock<Result<PrivateCluster, String>> = OnceLock::new();

fn private_cluster() -> &'static Result<PrivateCluster, String> {
    CLUSTER.get_or_init(start_private_cluster)
}

fn find_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    // The newest major version sorts last.
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a PostgreSQL binary, as the `postgres` user when we are root (the server refuses to run as root).
fn run_pg(bin: &Path, args: &[&str], as_postgres: bool) -> Result<(), String> {
    let output = if as_postgres {
        Command::new("runuser")
            .arg("-u")
            .arg("postgres")
            .arg("--")
            .arg(bin)
            .args(args)
            .output()
    } else {
        Command::new(bin).args(args).output()
    }
    .map_err(|e| format!("{}: {e}", bin.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed: {}",
            bin.display(),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn start_private_cluster() -> Result<PrivateCluster, String> {
    let bin = find_bin_dir().ok_or_else(|| TestPgError::NotInstalled.to_string())?;
    let as_postgres = is_root();
    let dir = std::env::temp_dir().join(format!(
        "test-postgres-{}-{}",
        std::process::id(),
        random_suffix()
    ));
    let data = dir.join("data");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if as_postgres {
        let status = Command::new("chown")
            .arg("postgres:postgres")
            .arg(&dir)
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("chown postgres {} failed", dir.display()));
        }
    }
    let data_text = data.to_string_lossy().into_owned();
    let dir_text = dir.to_string_lossy().into_owned();
    run_pg(
        &bin.join("initdb"),
        &[
            "-D",
            &data_text,
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        as_postgres,
    )?;
    let port = free_port()?;
    let options = format!(
        "-p {port} -k {dir_text} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    );
    let log = dir.join("server.log").to_string_lossy().into_owned();
    run_pg(
        &bin.join("pg_ctl"),
        &["-D", &data_text, "-o", &options, "-l", &log, "-w", "start"],
        as_postgres,
    )?;
    spawn_watchdog(&bin, &dir_text, &data_text, as_postgres);
    Ok(PrivateCluster {
        url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        bin,
        data: data_text,
        options,
        log,
        as_postgres,
    })
}

/// A shell that waits for this process to exit, then stops the cluster and removes its directory
/// (Rust runs no destructors for statics at exit, so the cluster needs an outside caretaker).
fn spawn_watchdog(bin: &Path, dir: &str, data: &str, as_postgres: bool) {
    let pg_ctl = bin.join("pg_ctl").to_string_lossy().into_owned();
    let stop = if as_postgres {
        format!("runuser -u postgres -- '{pg_ctl}' -D '{data}' -m immediate stop")
    } else {
        format!("'{pg_ctl}' -D '{data}' -m immediate stop")
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id()
    );
    // If the watchdog cannot start, the cluster outlives the tests in /tmp: harmless, so ignore it.
    let _ = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::null())
        .spawn();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fresh_databases_are_distinct_and_usable() {
        let a = fresh_database().await.expect("a database");
        let b = fresh_database().await.expect("another database");
        assert_ne!(a.name, b.name);
        assert_ne!(a.role_prefix, b.role_prefix);
        let mut conn = PgConnection::connect(&a.superuser_url)
            .await
            .expect("connects");
        let db: String = sqlx::query_scalar("SELECT current_database()::text")
            .fetch_one(&mut conn)
            .await
            .expect("query");
        assert_eq!(db, a.name);
        conn.close().await.expect("close");
        a.drop_database().await.expect("drop a");
        b.drop_database().await.expect("drop b");
    }
}
