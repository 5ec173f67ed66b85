//! System packages the commands need. On Debian as root they are installed with apt; elsewhere the
//! exact command is printed and the task stops, so no step is hidden in prose.

use anyhow::{Context, bail};
use std::path::Path;
use std::process::Command;

/// A system package and how to tell it is already there.
struct Requirement {
    /// Debian package name.
    package: &'static str,
    /// A file that exists once the package is installed (a glob-free path or a directory prefix check).
    present: fn() -> bool,
}

fn any_postgres_bin(name: &str) -> bool {
    std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| {
            dirs.flatten()
                .any(|d| d.path().join("bin").join(name).exists())
        })
        .unwrap_or(false)
}

fn has_command(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(name).is_file()))
}

const TEST_REQUIREMENTS: &[Requirement] = &[
    // A private PostgreSQL cluster for tests when none runs (initdb, pg_ctl).
    Requirement {
        package: "postgresql",
        present: || any_postgres_bin("initdb") && any_postgres_bin("pg_ctl"),
    },
    // Building SQLCipher with its vendored OpenSSL.
    Requirement {
        package: "build-essential",
        present: || has_command("cc") && has_command("make"),
    },
    Requirement {
        package: "perl",
        present: || has_command("perl"),
    },
    Requirement {
        package: "pkg-config",
        present: || has_command("pkg-config"),
    },
    // The Tauri desktop shell (src-tauri) builds against WebKitGTK and its tray and image libraries.
    Requirement {
        package: "libwebkit2gtk-4.1-dev",
        present: || pkg_config_has("webkit2gtk-4.1"),
    },
    Requirement {
        package: "libssl-dev",
        present: || pkg_config_has("openssl"),
    },
    Requirement {
        package: "libayatana-appindicator3-dev",
        present: || pkg_config_has("ayatana-appindicator3-0.1"),
    },
    Requirement {
        package: "librsvg2-dev",
        present: || pkg_config_has("librsvg-2.0"),
    },
    Requirement {
        package: "libxdo-dev",
        present: || Path::new("/usr/include/xdo.h").exists(),
    },
    // nginx in front of two server instances: the load generator's test and `cargo xtask load`.
    Requirement {
        package: "nginx",
        present: || Path::new("/usr/sbin/nginx").exists(),
    },
    // A Python venv for the independent SQLCipher reader used by the recovery-key test.
    Requirement {
        package: "python3-venv",
        present: || python_venv_works(),
    },
];

fn pkg_config_has(library: &str) -> bool {
    Command::new("pkg-config")
        .args(["--exists", library])
        .status()
        .is_ok_and(|s| s.success())
}

fn python_venv_works() -> bool {
    Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .output()
        .is_ok_and(|o| o.status.success())
}

const UI_REQUIREMENTS: &[Requirement] = &[
    // The web UI's build and tests.
    Requirement {
        package: "nodejs",
        present: || has_command("node"),
    },
    Requirement {
        package: "npm",
        present: || has_command("npm"),
    },
    // Browser tests drive Debian's Chromium through playwright-core (never a downloaded browser).
    Requirement {
        package: "chromium",
        present: || std::path::Path::new("/usr/bin/chromium").exists(),
    },
];

const DESKTOP_REQUIREMENTS: &[Requirement] = &[
    // The real desktop app runs on a virtual display in tests (xvfb-run needs xauth).
    Requirement {
        package: "xvfb",
        present: || has_command("xvfb-run") && has_command("Xvfb"),
    },
    Requirement {
        package: "xauth",
        present: || has_command("xauth"),
    },
    // tauri-driver hands WebDriver sessions to WebKitGTK's own driver.
    Requirement {
        package: "webkit2gtk-driver",
        present: || has_command("WebKitWebDriver"),
    },
];

/// Installs what the desktop app's end-to-end test needs: Xvfb, xauth, WebKitWebDriver (apt) and
/// tauri-driver (`cargo install`, once: it stays in ~/.cargo/bin). Returns tauri-driver's path.
pub fn ensure_desktop_packages() -> anyhow::Result<std::path::PathBuf> {
    ensure(DESKTOP_REQUIREMENTS)?;
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    let driver = cargo_home.join("bin/tauri-driver");
    if driver.is_file() {
        return Ok(driver);
    }
    crate::run(Command::new(crate::cargo_program()).args([
        "install",
        "tauri-driver",
        "--version",
        "^2",
        "--locked",
    ]))
    .context("installing tauri-driver")?;
    anyhow::ensure!(
        driver.is_file(),
        "cargo install tauri-driver finished but {} is missing",
        driver.display()
    );
    Ok(driver)
}

/// Installs what `cargo xtask test` needs.
pub fn ensure_test_packages() -> anyhow::Result<()> {
    ensure(TEST_REQUIREMENTS)
}

/// Installs what the web UI's tests need.
pub fn ensure_ui_packages() -> anyhow::Result<()> {
    ensure(UI_REQUIREMENTS)
}

fn ensure(requirements: &[Requirement]) -> anyhow::Result<()> {
    let missing: Vec<&str> = requirements
        .iter()
        .filter(|r| !(r.present)())
        .map(|r| r.package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(&missing)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn is_debian() -> bool {
    Path::new("/etc/debian_version").exists() && has_command("apt-get")
}

/// Installs Debian packages, retrying once after `apt-get -f install` when an archive was missing.
pub fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    let command = format!(
        "apt-get update && apt-get install -y {}",
        packages.join(" ")
    );
    if !is_debian() || !is_root() {
        bail!(
            "missing system packages: {}. Install them with:\n  sudo sh -c '{command}'",
            packages.join(", ")
        );
    }
    eprintln!("installing system packages: {}", packages.join(" "));
    let apt = |args: &[&str]| -> anyhow::Result<bool> {
        // Another apt (a parallel xtask, unattended upgrades) may hold the lock: wait for it rather
        // than fail.
        let status = Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=900"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .with_context(|| format!("could not run apt-get {}", args.join(" ")))?;
        Ok(status.success())
    };
    // A failed update (one mirror down) does not stop the install: the lists may already be current.
    let _ = apt(&["update", "-q"])?;
    let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
    install.extend_from_slice(packages);
    if apt(&install)? {
        return Ok(());
    }
    let _ = apt(&["-f", "install", "-y"])?;
    if apt(&install)? {
        return Ok(());
    }
    bail!("could not install {}; try: {command}", packages.join(" "))
}

/// Environment for test runs: where the independent SQLCipher reader lives, once prepared.
pub fn test_environment() -> anyhow::Result<Vec<(String, String)>> {
    let mut env = Vec::new();
    if let Some(python) = crate::system::sqlcipher_python()? {
        env.push(("STORMOPS_SQLCIPHER_PYTHON".to_owned(), python));
    }
    Ok(env)
}

/// A Python with the `sqlcipher3` module (a SQLCipher 4 build from PyPI) in a venv under target/,
/// used to prove a tenant file opens with nothing but its recovery key.
pub fn sqlcipher_python() -> anyhow::Result<Option<String>> {
    let venv = crate::workspace_root().join("target/sqlcipher-venv");
    let python = venv.join("bin/python");
    let works = |p: &Path| {
        Command::new(p)
            .args(["-c", "import sqlcipher3"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if python.exists() && works(&python) {
        return Ok(Some(python.display().to_string()));
    }
    let created = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success());
    if !created {
        eprintln!("note: could not create a Python venv at {}", venv.display());
        return Ok(None);
    }
    let installed = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "-q",
            "--disable-pip-version-check",
            "sqlcipher3-binary",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if installed && works(&python) {
        Ok(Some(python.display().to_string()))
    } else {
        eprintln!("note: could not install sqlcipher3-binary from PyPI");
        Ok(None)
    }
}
