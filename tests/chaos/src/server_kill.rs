//! The `stormops-server` process killed with SIGKILL while several laptops push (a batch's transaction
//! is cut wherever it is), then started again on the same port, round after round. No token key is
//! set, so each new process signs its own tokens: the laptops must also get new access tokens by
//! themselves.

use std::process::Child;
use std::time::Instant;

use e2e_harness::{Backend, free_port, spawn_server};

use crate::Scale;
use crate::fleet::{Fleet, Recovery, now_ms, secs, summarise};
use crate::pg_restart::tempdir;
use crate::report::Finding;

pub const FAULT: &str =
    "`stormops-server` killed with SIGKILL mid-batch, restarted on the same port";
pub const CHECKED: &str = "each kill lands mid-push; afterwards every touch on the server exactly once (rows, feed rows, metered events), every laptop holds the server's touches, outboxes empty; time from the restarted process listening until pushes are applied again";

/// The server child process, killed when dropped (so a failed check leaves no process behind).
struct ServerProcess(Child);

impl ServerProcess {
    fn kill(&mut self) {
        // SIGKILL on Unix; an already dead process is fine.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

pub async fn run(scale: Scale) -> Vec<Finding> {
    let backend = Backend::fresh().await;
    let port = free_port();
    let mut server = ServerProcess(spawn_server(&backend, port));
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let dir = tempdir();
    let mut fleet = Fleet::sign_in(&backend, addr, "Server Kill", scale.laptops, dir.path()).await;
    fleet.start_agents();
    let mut recoveries: Vec<Recovery> = Vec::new();
    let mut restarts = Vec::new();
    for round in 0..scale.rounds {
        let before = fleet.applied(&backend).await;
        let total = fleet
            .write_wave(scale.backlog, &format!("kill round {round}"))
            .await;
        fleet.progress_beyond(&backend, before).await;
        server.kill();
        let at_kill = fleet.applied(&backend).await;
        assert!(
            (at_kill as usize) < total,
            "round {round}: the kill landed mid-push ({at_kill} of {total} applied)"
        );
        let killed = Instant::now();
        server = ServerProcess(spawn_server(&backend, port));
        restarts.push(killed.elapsed());
        let (ended, ended_ms) = (Instant::now(), now_ms());
        let at_end = fleet.applied(&backend).await;
        recoveries.push(fleet.recovery(&backend, ended, ended_ms, at_end).await);
    }
    fleet.drained().await;
    let verified = fleet.verify(&backend).await;
    server.kill();
    restarts.sort();
    vec![Finding::passed(
        FAULT,
        CHECKED,
        format!(
            "{} kills, {} laptops, {} touches per laptop per round; a new process listened within {}; {verified}",
            scale.rounds,
            scale.laptops,
            scale.backlog,
            restarts.last().map(|d| secs(*d)).unwrap_or_default()
        ),
        summarise(&recoveries),
    )]
}
