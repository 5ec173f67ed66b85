//! The laptop's disk fills up: its tenant file lives on a small tmpfs that a filler file then fills to
//! the last byte. A write must fail with a typed error and leave nothing half-written; a sync on the
//! full disk must not lose or double anything (the server may apply a batch whose receipts the laptop
//! cannot store, so the re-send must be a duplicate); when space returns, the same write succeeds and
//! the laptop syncs without anyone repairing anything. Mounting needs root (CI runs as root); otherwise
//! the scenario is reported as skipped with the reason.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use domain::{Hlc, Role};
use e2e_harness::{Backend, Laptop, PASSPHRASE, laptop, touches, write_touches};
use local_store::{DataDir, Passphrase};
use sync_server::state::ServerSettings;

use crate::Scale;
use crate::fleet::{agent_config, converge, secs, verify_exactly_once};
use crate::pg_restart::tempdir;
use crate::report::Finding;

pub const FAULT: &str = "Laptop disk full (tenant file on a 16 MiB tmpfs filled to the last byte)";
pub const CHECKED: &str = "a write on the full disk fails with a typed error and changes nothing; a sync on the full disk loses and doubles nothing; when space returns the same write succeeds and the laptop syncs by itself; then every touch on the server exactly once, both laptops hold the server's touches, and the file reopens with every touch";

/// Size of the laptop's filesystem.
const DISK: &str = "16m";

/// A tmpfs mounted for the scenario; unmounted (lazily, even if a file is still open) when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(at).map_err(|e| format!("creating {}: {e}", at.display()))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={DISK}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if out.status.success() {
            Ok(Self(at.to_owned()))
        } else {
            Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn uid() -> Option<String> {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

/// Writes `path` until the filesystem refuses another byte; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).expect("the filler file");
    let mut written = 0u64;
    for chunk in [1 << 20, 4_096, 1] {
        let block = vec![0x5a_u8; chunk];
        while file.write_all(&block).is_ok() {
            written += chunk as u64;
        }
    }
    let _ = file.sync_all();
    written
}

/// What a refused write must leave alone: touches, outbox, the clock.
async fn counts(l: &Laptop) -> (i64, i64, Hlc) {
    l.engine
        .with_store(|s| {
            Ok((
                s.record_counts()?.touches,
                s.pending_counts()?.pending,
                s.last_hlc(),
            ))
        })
        .await
        .expect("counts on a full disk (reads need no space)")
}

pub async fn run(scale: Scale) -> Vec<Finding> {
    match uid() {
        Some(uid) if uid == "0" => {}
        other => {
            return vec![Finding::skipped(
                FAULT,
                CHECKED,
                format!(
                    "needs root to mount a tmpfs (running as uid {})",
                    other.unwrap_or_else(|| "unknown".into())
                ),
            )];
        }
    }
    let dir = tempdir();
    let mount = match Mount::tmpfs(&dir.path().join("disk")) {
        Ok(m) => m,
        Err(reason) => return vec![Finding::skipped(FAULT, CHECKED, reason)],
    };
    let backend = Backend::fresh().await;
    let server = backend.serve(ServerSettings::default()).await;
    let (truck_email, buddy_email) = ("truck@disk.example", "buddy@disk.example");
    let tenant = backend
        .tenant(
            "Disk Full",
            &[
                (truck_email, Role::FieldUser),
                (buddy_email, Role::FieldUser),
            ],
            20,
            "Disk",
        )
        .await;
    let truck_dir = mount.0.join("truck");
    let truck = laptop(
        server.addr,
        &tenant.slug,
        truck_email,
        &truck_dir,
        agent_config(),
    )
    .await;
    let buddy = laptop(
        server.addr,
        &tenant.slug,
        buddy_email,
        &dir.path().join("buddy"),
        agent_config(),
    )
    .await;
    truck.engine.sync_once().await.expect("truck's first sync");
    buddy.engine.sync_once().await.expect("buddy's first sync");

    // Work done while there was space: pending in the outbox when the disk fills.
    let before_full = touches(
        &truck,
        tenant.storm,
        &tenant.properties,
        scale.backlog / 3,
        "before the disk filled",
    );
    let mut created: std::collections::BTreeSet<uuid::Uuid> =
        before_full.iter().map(|t| t.id.0).collect();
    write_touches(&truck, before_full).await;
    let filler = mount.0.join("filler");
    let filled = tokio::task::spawn_blocking({
        let filler = filler.clone();
        move || fill(&filler)
    })
    .await
    .expect("fill task");
    // The buddy's work, which the truck must pull onto its full disk.
    let buddy_work = touches(
        &buddy,
        tenant.storm,
        &tenant.properties,
        scale.backlog / 2,
        "from the buddy",
    );
    created.extend(buddy_work.iter().map(|t| t.id.0));
    write_touches(&buddy, buddy_work).await;
    buddy.engine.sync_once().await.expect("buddy pushes");

    // A write on the full disk: refused with a typed error, nothing of it stored.
    let before_write = counts(&truck).await;
    let on_full_disk = touches(
        &truck,
        tenant.storm,
        &tenant.properties,
        scale.backlog.max(3_000),
        "written when space returned",
    );
    let attempt = on_full_disk.clone();
    let refused = truck
        .engine
        .with_store(move |s| s.add_touches(&attempt).map(|_| ()))
        .await
        .expect_err("a write of thousands of touches on a full disk fails");
    let write_code = refused.code();
    assert_eq!(write_code, "store.disk_full", "the write's typed error");
    let after_write = counts(&truck).await;
    assert_eq!(
        after_write, before_write,
        "the refused write changed nothing (touches, outbox, clock)"
    );

    // A sync on the full disk: whatever it manages, nothing is lost or doubled (checked at the end).
    let sync_on_full = match truck.engine.sync_once().await {
        Ok(report) => format!(
            "a sync on the full disk succeeded (pushed {}, pulled {})",
            report.pushed, report.pulled
        ),
        Err(e) => {
            assert_eq!(
                e.code(),
                "store.disk_full",
                "a sync on a full disk fails with the typed error"
            );
            format!("a sync on the full disk failed with `{}`", e.code())
        }
    };
    let applied_on_full = backend.count(tenant.id, "journey_touches").await;

    // Space returns: the same write succeeds and the laptop syncs by itself.
    std::fs::remove_file(&filler).expect("remove the filler");
    let freed = Instant::now();
    created.extend(on_full_disk.iter().map(|t| t.id.0));
    write_touches(&truck, on_full_disk).await;
    truck
        .engine
        .sync_once()
        .await
        .expect("the truck syncs once space returns");
    let recovered = freed.elapsed();
    buddy.engine.sync_once().await.expect("buddy pulls");
    let laptops = [truck, buddy];
    converge(&backend, &tenant, &laptops).await;
    let verified = verify_exactly_once(&backend, &tenant, &laptops, &created).await;

    // The file itself: closed and reopened from the (once full) disk, it holds every touch.
    let [truck, _buddy] = laptops;
    let tenant_id = truck.tenant;
    truck.engine.close().await;
    let expected = created.len() as i64;
    let reopened = tokio::task::spawn_blocking(move || {
        DataDir::new(&truck_dir)?
            .open(tenant_id, None, &Passphrase::new(PASSPHRASE))?
            .record_counts()
    })
    .await
    .expect("reopen task")
    .expect("the truck's file reopens");
    assert_eq!(reopened.touches, expected, "touches in the reopened file");
    server.stop().await;
    drop(mount);
    vec![Finding::passed(
        FAULT,
        CHECKED,
        format!(
            "filler took the last {:.1} MiB; a write of {} touches failed with `{write_code}` and changed nothing; {sync_on_full} (server then held {applied_on_full} touches); {verified}; the reopened file holds all {expected}",
            filled as f64 / (1 << 20) as f64,
            scale.backlog.max(3_000)
        ),
        format!(
            "{} from freeing space to the write stored and a successful sync",
            secs(recovered)
        ),
    )]
}
