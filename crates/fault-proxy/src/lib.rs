//! A TCP proxy on loopback that injects network faults between a client and a server, for tests that
//! prove exactly-once effect over an unreliable network: drop the connection after N bytes of the
//! request (mid-request) or of the response (mid-response), delay, reset, or refuse everything (an
//! outage). The fault can change while the proxy runs; one-shot faults hit the next connection only.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the proxy does to connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward faithfully.
    Pass,
    /// Close both sides after forwarding this many request bytes upstream.
    DropRequestAfter(usize),
    /// Close both sides after forwarding this many response bytes back.
    DropResponseAfter(usize),
    /// Wait this long before forwarding each chunk.
    Delay(Duration),
    /// Accept, then close at once (the client sees a reset or an empty reply).
    Reset,
    /// The network is down: connections are closed before anything is read.
    Outage,
}

#[derive(Debug)]
struct Shared {
    fault: Mutex<(Fault, bool)>,
    connections: AtomicU64,
    faults_injected: AtomicU64,
    /// Bumped by an outage: every live connection closes, as when a truck loses signal mid-transfer
    /// (kept-alive client connections must not outlive the network).
    cut: tokio::sync::watch::Sender<u64>,
}

/// A running proxy.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 (any free port) in front of `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            fault: Mutex::new((Fault::Pass, false)),
            connections: AtomicU64::new(0),
            faults_injected: AtomicU64::new(0),
            cut: tokio::sync::watch::channel(0).0,
        });
        let accept_shared = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let fault = accept_shared.take_fault();
                accept_shared.connections.fetch_add(1, Ordering::Relaxed);
                let shared = Arc::clone(&accept_shared);
                tokio::spawn(async move {
                    let _ = handle(client, upstream, fault, &shared).await;
                });
            }
        });
        Ok(Self { addr, shared, task })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Applies `fault` to every connection from now on. Live connections are closed, so a client's
    /// kept-alive connection cannot slip past the new fault.
    pub fn set(&self, fault: Fault) {
        if let Ok(mut f) = self.shared.fault.lock() {
            *f = (fault, false);
        }
        self.cut_live_connections();
    }

    /// Applies `fault` to the next connection only, then passes again. Live connections are closed so
    /// that the next request opens that connection.
    pub fn once(&self, fault: Fault) {
        if let Ok(mut f) = self.shared.fault.lock() {
            *f = (fault, true);
        }
        self.cut_live_connections();
    }

    fn cut_live_connections(&self) {
        self.shared.cut.send_modify(|generation| *generation += 1);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Connections a fault was applied to.
    pub fn faults_injected(&self) -> u64 {
        self.shared.faults_injected.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Shared {
    fn take_fault(&self) -> Fault {
        let Ok(mut f) = self.fault.lock() else {
            return Fault::Pass;
        };
        let (fault, one_shot) = *f;
        if one_shot {
            *f = (Fault::Pass, false);
        }
        if fault != Fault::Pass {
            self.faults_injected.fetch_add(1, Ordering::Relaxed);
        }
        fault
    }
}

async fn handle(
    mut client: TcpStream,
    upstream: SocketAddr,
    fault: Fault,
    shared: &Shared,
) -> std::io::Result<()> {
    let mut cut = shared.cut.subscribe();
    match fault {
        Fault::Outage => return Ok(()),
        Fault::Reset => {
            // Closing both directions before reading anything: the client's request meets a dead socket.
            let _ = client.into_std()?.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
        _ => {}
    }
    let mut server = TcpStream::connect(upstream).await?;
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let (request_limit, response_limit, delay) = match fault {
        Fault::DropRequestAfter(n) => (Some(n), None, None),
        Fault::DropResponseAfter(n) => (None, Some(n), None),
        Fault::Delay(d) => (None, None, Some(d)),
        _ => (None, None, None),
    };
    let upstream_leg = copy_limited(&mut client_read, &mut server_write, request_limit, delay);
    let downstream_leg = copy_limited(&mut server_read, &mut client_write, response_limit, delay);
    tokio::pin!(downstream_leg);
    // A fault's limit on either leg closes both sockets at once. The client finishing its request
    // (end of stream) only half-closes: the response still flows back until the server ends it.
    let legs = async {
        tokio::select! {
            sent = upstream_leg => {
                if matches!(sent, Ok(Leg::Ended)) {
                    let _ = downstream_leg.await;
                }
            },
            _ = &mut downstream_leg => {},
        }
    };
    tokio::select! {
        () = legs => {},
        _ = cut.changed() => {},
    }
    Ok(())
}

/// How a forwarding leg stopped.
enum Leg {
    /// The sender ended its stream.
    Ended,
    /// The fault's byte limit was reached.
    Cut,
}

async fn copy_limited<R, W>(
    reader: &mut R,
    writer: &mut W,
    limit: Option<usize>,
    delay: Option<Duration>,
) -> std::io::Result<Leg>
where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    let mut forwarded: usize = 0;
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            let _ = writer.shutdown().await;
            return Ok(Leg::Ended);
        }
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        let allowed = match limit {
            Some(max) => n.min(max.saturating_sub(forwarded)),
            None => n,
        };
        writer.write_all(&buf[..allowed]).await?;
        forwarded += allowed;
        if limit.is_some_and(|max| forwarded >= max) {
            return Ok(Leg::Cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(proxy: &FaultProxy, message: &[u8]) -> Vec<u8> {
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        let _ = s.write_all(message).await;
        let _ = s.shutdown().await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        out
    }

    #[tokio::test]
    async fn passes_drops_and_recovers() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        assert_eq!(round_trip(&proxy, b"hello").await, b"hello");
        proxy.once(Fault::DropResponseAfter(2));
        assert_eq!(round_trip(&proxy, b"hello").await, b"he");
        assert_eq!(
            round_trip(&proxy, b"again").await,
            b"again",
            "a one-shot fault hits one connection"
        );
        // A live connection is cut by an outage.
        let mut live = TcpStream::connect(proxy.addr()).await.unwrap();
        live.write_all(b"ping").await.unwrap();
        let mut echo = [0u8; 4];
        live.read_exact(&mut echo).await.unwrap();
        proxy.set(Fault::Outage);
        let mut rest = Vec::new();
        let _ = live.write_all(b"more").await;
        let read = tokio::time::timeout(Duration::from_secs(5), live.read_to_end(&mut rest)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "the live connection closes: {read:?} {rest:?}"
        );
        assert_eq!(round_trip(&proxy, b"hello").await, b"");
        proxy.set(Fault::DropRequestAfter(3));
        // Only the first three request bytes reach the server, and the connection is cut: no full echo.
        assert_ne!(round_trip(&proxy, b"hello").await, b"hello");
        proxy.set(Fault::Pass);
        assert_eq!(round_trip(&proxy, b"back").await, b"back");
        assert_eq!(proxy.faults_injected(), 3);
    }
}
