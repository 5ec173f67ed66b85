//! The sync server as the operator runs it: `stormops-server db init`, `tenant create`, `user add` and
//! `serve` as child processes of the real binary, against the demo's private PostgreSQL.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The server binary and the database URLs `db init` printed.
#[derive(Debug)]
pub struct ServerBinary {
    pub path: PathBuf,
    pub app_url: String,
    pub control_url: String,
}

fn run_json(cmd: &mut Command) -> anyhow::Result<serde_json::Value> {
    let output = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !output.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).with_context(|| format!("reading the JSON of {cmd:?}"))
}

impl ServerBinary {
    /// `stormops-server db init` against the superuser URL.
    pub fn init(path: PathBuf, superuser_url: &str) -> anyhow::Result<Self> {
        let out = run_json(Command::new(&path).args([
            "--json",
            "db",
            "init",
            "--superuser-url",
            superuser_url,
            "--database",
            "stormops_demo",
            "--role-prefix",
            "demo",
        ]))?;
        let field = |name: &str| {
            out[name]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("db init printed no {name}"))
        };
        Ok(Self {
            app_url: field("app_url")?,
            control_url: field("control_url")?,
            path,
        })
    }

    fn operator(&self) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.env("STORMOPS_CONTROL_DATABASE_URL", &self.control_url)
            .arg("--json");
        cmd
    }

    /// `stormops-server tenant provision`: the lifecycle's provisioning step (tenant, plan, first admin
    /// and default crew in one transaction, audited).
    pub fn create_tenant(
        &self,
        name: &str,
        plan: &str,
        admin_email: &str,
        password: &str,
    ) -> anyhow::Result<(String, String)> {
        let out = run_json(
            self.operator()
                .env("STORMOPS_ADMIN_PASSWORD", password)
                .args([
                    "tenant",
                    "provision",
                    "--name",
                    name,
                    "--plan",
                    plan,
                    "--admin-email",
                    admin_email,
                    "--admin-name",
                    "Office Admin",
                ]),
        )?;
        let tenant_id = out["tenant_id"].as_str().context("tenant id")?.to_owned();
        let slug = out["slug"].as_str().context("slug")?.to_owned();
        Ok((tenant_id, slug))
    }

    /// `stormops-server user add`.
    pub fn add_user(
        &self,
        slug: &str,
        email: &str,
        name: &str,
        role: &str,
        password: &str,
    ) -> anyhow::Result<String> {
        let out = run_json(
            self.operator()
                .env("STORMOPS_USER_PASSWORD", password)
                .args([
                    "user",
                    "add",
                    "--tenant",
                    slug,
                    "--email",
                    email,
                    "--name",
                    name,
                    "--role",
                    role,
                    "--default-crew",
                ]),
        )?;
        Ok(out["user_id"].as_str().context("user id")?.to_owned())
    }

    /// `stormops-server tenant usage --days 30 --tenant SLUG`, then `tenant invoice --tenant SLUG --month
    /// M` for the month it reports: the texts the operator reads.
    pub fn usage_and_invoice(&self, slug: &str) -> anyhow::Result<(String, String)> {
        let usage = run_json(
            self.operator()
                .args(["tenant", "usage", "--days", "30", "--tenant", slug]),
        )?;
        let month = usage["tenants"][0]["this_month"]["month"]
            .as_str()
            .context("tenant usage printed no month")?
            .to_owned();
        let invoice = run_json(
            self.operator()
                .args(["tenant", "invoice", "--tenant", slug, "--month", &month]),
        )?;
        let text = |v: &serde_json::Value| v["text"].as_str().unwrap_or_default().to_owned();
        Ok((text(&usage), text(&invoice)))
    }

    /// `stormops-server serve` on a free loopback port; waits until `/readyz` answers.
    pub async fn serve(&self) -> anyhow::Result<RunningServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let bind = format!("127.0.0.1:{port}");
        let child = Command::new(&self.path)
            .arg("serve")
            .env("STORMOPS_DATABASE_URL", &self.app_url)
            .env("STORMOPS_CONTROL_DATABASE_URL", &self.control_url)
            .env("STORMOPS_BIND", &bind)
            .env("STORMOPS_LOG", "warn")
            // Metering rounds every few seconds, so the usage printed at the end includes requests.
            .env("STORMOPS_USAGE_INTERVAL_SECS", "3")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting stormops-server serve")?;
        let server = RunningServer {
            child,
            url: format!("http://{bind}"),
            addr: bind.parse()?,
        };
        let started = Instant::now();
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http.get(format!("{}/readyz", server.url)).send().await
                && r.status().is_success()
            {
                return Ok(server);
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("the server did not become ready within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A running server child process; stopped when dropped.
#[derive(Debug)]
pub struct RunningServer {
    child: Child,
    pub url: String,
    pub addr: std::net::SocketAddr,
}

impl RunningServer {
    /// A Prometheus counter's value from `/metrics`: the sum of every series whose name and labels start
    /// with `name_and_labels`.
    pub async fn metric(&self, name_and_labels: &str) -> anyhow::Result<f64> {
        let text = reqwest::get(format!("{}/metrics", self.url))
            .await?
            .text()
            .await?;
        // Summed over every series the prefix matches (e.g. one receipt status across all plans).
        let values: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with(name_and_labels))
            .map(|l| {
                l.rsplit(' ')
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0)
            })
            .collect();
        anyhow::ensure!(!values.is_empty(), "no metric {name_and_labels}");
        Ok(values.iter().sum())
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
