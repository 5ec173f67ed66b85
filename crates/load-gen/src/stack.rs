//! The processes under load: `stormops-server serve` instances (the real binary, as operators run it)
//! sharing one token key and one database, and nginx in front of them with the configuration shape of
//! `deploy/nginx/nginx.conf` — that very file, with its upstream servers, listen address and pid/temp
//! paths pointed at this run.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The nginx binary of Debian's `nginx` package.
pub const NGINX: &str = "/usr/sbin/nginx";
/// How to install it.
pub const NGINX_INSTALL: &str = "apt-get install -y nginx";

/// The `stormops-server` binary: `STORMOPS_SERVER_BIN`, else next to this executable (a test's
/// `target/<profile>/deps/…` or the binary's `target/<profile>/`).
pub fn server_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("STORMOPS_SERVER_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("locating this executable")?;
    let mut dir = exe.parent();
    while let Some(d) = dir {
        let candidate = d.join("stormops-server");
        if candidate.is_file() {
            return Ok(candidate);
        }
        if d.file_name().is_some_and(|n| n == "target") {
            break;
        }
        dir = d.parent();
    }
    bail!(
        "stormops-server is missing next to {}: build it first (`cargo build -p sync-server`, or run the tests with `cargo test --workspace`)",
        exe.display()
    )
}

/// A random token signing key every instance shares (64 hex characters).
pub fn shared_token_key() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What every instance is started with.
#[derive(Clone)]
pub struct ServerEnv {
    pub binary: PathBuf,
    pub app_url: String,
    pub control_url: String,
    pub token_key: String,
    pub train_interval_secs: u64,
    pub train_min_new_outcomes: u64,
    /// Where each instance's stderr goes.
    pub log_dir: PathBuf,
}

impl std::fmt::Debug for ServerEnv {
    // URLs carry passwords and the key signs tokens: neither is printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerEnv")
            .field("binary", &self.binary)
            .field("log_dir", &self.log_dir)
            .finish_non_exhaustive()
    }
}

/// One `stormops-server serve` child process; killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    pub url: String,
    killed: bool,
}

impl ServerProcess {
    /// Starts an instance on a free loopback port and waits until `/readyz` answers 200.
    pub async fn start(env: &ServerEnv, name: &str) -> anyhow::Result<Self> {
        let log = std::fs::File::create(env.log_dir.join(format!("{name}.log")))
            .context("creating the server log")?;
        let mut child = Command::new(&env.binary)
            .arg("serve")
            .env("STORMOPS_DATABASE_URL", &env.app_url)
            .env("STORMOPS_CONTROL_DATABASE_URL", &env.control_url)
            .env("STORMOPS_BIND", "127.0.0.1:0")
            .env("STORMOPS_TOKEN_KEY", &env.token_key)
            .env(
                "STORMOPS_TRAIN_INTERVAL_SECS",
                env.train_interval_secs.to_string(),
            )
            .env(
                "STORMOPS_TRAIN_MIN_NEW_OUTCOMES",
                env.train_min_new_outcomes.to_string(),
            )
            .env("STORMOPS_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", env.binary.display()))?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        // The first line names the address; the rest is drained so the server never writes to a
        // closed pipe.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok).unwrap_or_default();
            let _ = tx.send(first);
            for _ in lines {}
        });
        let line = match tokio::time::timeout(Duration::from_secs(60), rx).await {
            Ok(Ok(line)) => line,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{name} did not print its address within 60 s")
            }
        };
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            // The log directory goes with the run: say why here.
            let log = std::fs::read_to_string(env.log_dir.join(format!("{name}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            bail!(
                "{name} did not start ({line:?}): {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            )
        };
        let url = url.to_owned();
        let addr: SocketAddr = url
            .trim_start_matches("http://")
            .parse()
            .with_context(|| format!("the server's address {url}"))?;
        let server = Self {
            child,
            addr,
            url,
            killed: false,
        };
        wait_ready(addr, Duration::from_secs(30)).await?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no graceful shutdown, in-flight requests are cut.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().context("killing the server")?;
        self.child.wait().context("reaping the server")?;
        self.killed = true;
        Ok(())
    }

    pub fn is_killed(&self) -> bool {
        self.killed
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if !self.killed {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `GET /readyz` over a plain TCP connection until it answers 200.
pub async fn wait_ready(addr: SocketAddr, within: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if readyz(addr).await.unwrap_or(false) {
            return Ok(());
        }
        if started.elapsed() > within {
            bail!("{addr} did not answer /readyz with 200 within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn readyz(addr: SocketAddr) -> std::io::Result<bool> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .map_err(|_| std::io::Error::other("timeout"))??;
    Ok(answer.starts_with(b"HTTP/1.1 200"))
}

/// nginx in front of the instances; stopped when dropped.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    pub addr: SocketAddr,
    pub url: String,
    _dir: tempfile::TempDir,
}

/// Rewrites `deploy/nginx/nginx.conf` for this run: the `upstream stormops` servers become `upstreams`
/// (keeping the deployed `max_fails`/`fail_timeout`), `listen 80` becomes `listen`, and pid and temp
/// files go to `dir`. Everything else — keepalive, timeouts, body size, which failures are retried — is
/// the deployed file's.
pub fn nginx_config(
    deployed: &str,
    upstreams: &[SocketAddr],
    listen: SocketAddr,
    dir: &Path,
) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut in_upstream = false;
    let mut upstream_written = false;
    let mut listen_written = false;
    for line in deployed.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("upstream stormops") {
            in_upstream = true;
        } else if in_upstream && trimmed.starts_with("server ") {
            if !upstream_written {
                // The deployed parameters after the address, e.g. `max_fails=3 fail_timeout=5s;`.
                let params: Vec<&str> = trimmed
                    .trim_end_matches(';')
                    .split_whitespace()
                    .skip(2)
                    .collect();
                for addr in upstreams {
                    out.push_str(&format!("        server {addr} {};\n", params.join(" ")));
                }
                upstream_written = true;
            }
            continue;
        } else if in_upstream && trimmed == "}" {
            in_upstream = false;
        } else if trimmed.starts_with("listen ") {
            out.push_str(&format!("        listen {listen};\n"));
            listen_written = true;
            continue;
        } else if trimmed.starts_with("http {") {
            out.push_str(line);
            out.push('\n');
            for (directive, sub) in [
                ("client_body_temp_path", "body"),
                ("proxy_temp_path", "proxy"),
                ("fastcgi_temp_path", "fastcgi"),
                ("uwsgi_temp_path", "uwsgi"),
                ("scgi_temp_path", "scgi"),
            ] {
                out.push_str(&format!("    {directive} {};\n", dir.join(sub).display()));
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    anyhow::ensure!(
        upstream_written && listen_written,
        "deploy/nginx/nginx.conf no longer has an `upstream stormops` block with servers and a `listen` line"
    );
    Ok(out)
}

/// The deployed nginx configuration (`deploy/nginx/nginx.conf` of this checkout).
pub fn deployed_nginx_config() -> anyhow::Result<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nginx/nginx.conf");
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

impl Nginx {
    /// Starts nginx in the foreground on a free loopback port, proxying to `upstreams`.
    pub async fn start(upstreams: &[SocketAddr]) -> anyhow::Result<Self> {
        anyhow::ensure!(
            Path::new(NGINX).is_file(),
            "{NGINX} is missing: install it with `{NGINX_INSTALL}` (cargo xtask test and cargo xtask load do)"
        );
        let dir = tempfile::Builder::new()
            .prefix("stormops-nginx-")
            .tempdir()
            .context("nginx's directory")?;
        // Workers run as an unprivileged user when nginx starts as root: they must reach the temp dirs.
        set_mode(dir.path(), 0o777)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let listen: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let config = nginx_config(&deployed_nginx_config()?, upstreams, listen, dir.path())?;
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config).context("writing nginx.conf")?;
        let log = std::fs::File::create(dir.path().join("nginx.log"))?;
        let pid_directive = format!(
            "daemon off; pid {};",
            dir.path().join("nginx.pid").display()
        );
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-g")
            .arg(&pid_directive)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting nginx")?;
        let nginx = Self {
            child,
            addr: listen,
            url: format!("http://{listen}"),
            _dir: dir,
        };
        wait_ready(listen, Duration::from_secs(20))
            .await
            .context("nginx did not come up")?;
        Ok(nginx)
    }
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deployed_config_is_pointed_at_this_run() {
        let deployed = deployed_nginx_config().expect("deploy/nginx/nginx.conf");
        let ups: Vec<SocketAddr> = vec![
            "127.0.0.1:4001".parse().expect("addr"),
            "127.0.0.1:4002".parse().expect("addr"),
        ];
        let listen: SocketAddr = "127.0.0.1:4000".parse().expect("addr");
        let conf = nginx_config(&deployed, &ups, listen, Path::new("/tmp/x")).expect("config");
        assert!(
            conf.contains("server 127.0.0.1:4001 max_fails=3 fail_timeout=5s;"),
            "{conf}"
        );
        assert!(
            conf.contains("server 127.0.0.1:4002 max_fails=3 fail_timeout=5s;"),
            "{conf}"
        );
        assert!(!conf.contains("server-1:8080"), "{conf}");
        assert!(conf.contains("listen 127.0.0.1:4000;"), "{conf}");
        assert!(!conf.contains("listen 80;"), "{conf}");
        assert!(conf.contains("proxy_temp_path /tmp/x/proxy;"), "{conf}");
        // The deployed behaviour is kept.
        assert!(conf.contains("proxy_next_upstream error timeout http_502 http_503;"));
        assert!(conf.contains("keepalive 32;"));
    }
}
