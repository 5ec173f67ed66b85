//! The house rules as checks: every Rust file opens with a `//!` line, no stubs, no vague module names,
//! IO-free crates stay IO-free, every crate is in ARCHITECTURE.md, and migrations are append-only
//! (their checksums are recorded in `migrations/applied.txt`; an edit or removal fails the check).

use anyhow::{Context, bail};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// Directories holding our Rust code.
const CODE_DIRS: &[&str] = &[
    "crates",
    "xtask",
    "sync-server",
    "src-tauri/src",
    "tests",
    "fuzz/fuzz_targets",
];
/// Crates that must do no IO: no IO libraries among their dependencies, no filesystem or network use.
const IO_FREE_CRATES: &[&str] = &[
    "crates/domain",
    "crates/sync-protocol",
    "crates/uplift",
    "crates/property-csv",
];
const IO_LIBRARIES: &[&str] = &[
    "rusqlite", "sqlx", "reqwest", "tokio", "axum", "hyper", "tauri", "csv", "flate2",
];
/// An IO library an IO-free crate may still depend on for its in-memory part: `property-csv` runs the
/// `csv` tokenizer over bytes its callers read; the library's own file IO (`from_path`) is refused by
/// `IO_MODULES`.
const IO_LIBRARY_EXCEPTIONS: &[(&str, &str)] = &[("crates/property-csv", "csv")];
const IO_MODULES: &[&str] = &[
    "std::fs",
    "std::net",
    "std::process",
    "std::env::var",
    "File::open",
    "from_path",
];
const VAGUE_NAMES: &[&str] = &["utils", "util", "common", "manager", "helpers", "misc"];

fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack: Vec<PathBuf> = CODE_DIRS
        .iter()
        .map(|d| root.join(d))
        .filter(|p| p.exists())
        .collect();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !matches!(
                    name.as_str(),
                    "target" | "node_modules" | "gen" | "corpus" | "artifacts"
                ) {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// FNV-1a: enough to notice an edited migration (this is change detection, not security).
fn fingerprint(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn migration_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for side in ["local", "server"] {
        if let Ok(entries) = fs::read_dir(root.join("migrations").join(side)) {
            files.extend(
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "sql")),
            );
        }
    }
    files.sort();
    files
}

/// Every problem found, one line each.
pub fn problems(root: &Path, bless: bool) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    for file in rust_files(root) {
        let rel = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        let text = fs::read_to_string(&file).with_context(|| format!("reading {rel}"))?;
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        if !first.starts_with("//!") {
            found.push(format!(
                "{rel}: the first line must be a `//!` line saying what the module is for"
            ));
        }
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            // The needles are assembled so this file does not match itself.
            if [concat!("todo", "!("), concat!("unimplemented", "!(")]
                .iter()
                .any(|stub| code.contains(stub))
            {
                found.push(format!(
                    "{rel}:{}: a stub (todo!/unimplemented!) is not a feature",
                    n + 1
                ));
            }
        }
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if VAGUE_NAMES.contains(&stem.as_str()) {
            found.push(format!(
                "{rel}: '{stem}' says nothing; name the module after what it does"
            ));
        }
        for krate in IO_FREE_CRATES {
            if rel.starts_with(&format!("{krate}/src")) {
                for module in IO_MODULES {
                    if text
                        .lines()
                        .any(|l| !l.trim_start().starts_with("//") && l.contains(module))
                    {
                        found.push(format!(
                            "{rel}: {krate} does no IO, but this file uses {module}"
                        ));
                    }
                }
            }
        }
    }
    for krate in IO_FREE_CRATES {
        let manifest = root.join(krate).join("Cargo.toml");
        let Ok(text) = fs::read_to_string(&manifest) else {
            continue;
        };
        let deps = text
            .split("[dependencies]")
            .nth(1)
            .map(|s| s.split("\n[").next().unwrap_or(""))
            .unwrap_or("");
        for lib in IO_LIBRARIES {
            if IO_LIBRARY_EXCEPTIONS.contains(&(*krate, *lib)) {
                continue;
            }
            if deps.lines().any(|l| {
                l.trim_start().starts_with(&format!("{lib} "))
                    || l.trim_start().starts_with(&format!("{lib}."))
            }) {
                found.push(format!(
                    "{krate}/Cargo.toml: {krate} does no IO, but depends on {lib}"
                ));
            }
        }
    }
    let architecture = fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap_or_default();
    for manifest in ["crates", "."]
        .iter()
        .flat_map(|d| fs::read_dir(root.join(d)).into_iter().flatten().flatten())
    {
        let dir = manifest.path();
        if dir.join("Cargo.toml").exists() && dir != root {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !architecture.contains(&format!("### `crates/{name}`"))
                && !architecture.contains(&format!("### `{name}`"))
            {
                found.push(format!(
                    "ARCHITECTURE.md: the code map does not mention `{name}`"
                ));
            }
        }
    }
    found.extend(check_migrations(root, bless)?);
    Ok(found)
}

fn check_migrations(root: &Path, bless: bool) -> anyhow::Result<Vec<String>> {
    let ledger_path = root.join("migrations/applied.txt");
    let ledger = fs::read_to_string(&ledger_path).unwrap_or_default();
    let recorded: Vec<(String, String)> = ledger
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(h, p)| (p.trim().to_owned(), h.to_owned()))
        })
        .collect();
    let mut found = Vec::new();
    let mut current = Vec::new();
    for file in migration_files(root) {
        let rel = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        current.push((rel.clone(), fingerprint(&fs::read(&file)?)));
    }
    for (path, hash) in &recorded {
        match current.iter().find(|(p, _)| p == path) {
            None => found.push(format!("{path}: a recorded migration was removed; migrations are append-only")),
            Some((_, now)) if now != hash => {
                found.push(format!("{path}: a recorded migration was edited; migrations are append-only — add a new one"))
            }
            Some(_) => {}
        }
    }
    let new: Vec<&(String, String)> = current
        .iter()
        .filter(|(p, _)| !recorded.iter().any(|(r, _)| r == p))
        .collect();
    if bless && !new.is_empty() {
        let mut text = if ledger.is_empty() {
            "# Checksums of migrations as committed. Migrations are append-only: never edit or remove a line.\n# New migrations are recorded with `cargo xtask tidy --bless`.\n".to_owned()
        } else {
            ledger.clone()
        };
        for (path, hash) in &new {
            let _ = writeln!(text, "{hash} {path}");
        }
        fs::write(&ledger_path, text)?;
    } else {
        for (path, _) in new {
            found.push(format!(
                "{path}: a new migration is not recorded; run `cargo xtask tidy --bless` and commit"
            ));
        }
    }
    Ok(found)
}

/// `cargo xtask tidy`: prints the problems and fails when there are any.
pub fn run(root: &Path, bless: bool) -> anyhow::Result<()> {
    let found = problems(root, bless)?;
    if found.is_empty() {
        eprintln!("tidy: ok");
        return Ok(());
    }
    for problem in &found {
        eprintln!("tidy: {problem}");
    }
    bail!("tidy found {} problem(s)", found.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_notices_an_edit() {
        assert_ne!(
            fingerprint(b"create table a (x int);"),
            fingerprint(b"create table a (x bigint);")
        );
        assert_eq!(fingerprint(b""), "cbf29ce484222325");
    }

    #[test]
    fn an_edited_or_unrecorded_migration_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::create_dir_all(root.join("migrations/local")).expect("mkdir");
        fs::write(
            root.join("migrations/local/0001_a.sql"),
            "create table a (x int);",
        )
        .expect("write");
        let unrecorded = check_migrations(root, false).expect("check");
        assert!(unrecorded[0].contains("not recorded"), "{unrecorded:?}");
        assert!(check_migrations(root, true).expect("bless").is_empty());
        assert!(check_migrations(root, false).expect("check").is_empty());
        fs::write(
            root.join("migrations/local/0001_a.sql"),
            "create table a (x bigint);",
        )
        .expect("write");
        let edited = check_migrations(root, false).expect("check");
        assert!(edited[0].contains("was edited"), "{edited:?}");
        fs::remove_file(root.join("migrations/local/0001_a.sql")).expect("rm");
        let removed = check_migrations(root, false).expect("check");
        assert!(removed[0].contains("was removed"), "{removed:?}");
    }
}
