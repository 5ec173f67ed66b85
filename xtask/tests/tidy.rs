//! The house rules run as an ordinary test, so `cargo test` is the gate: see `cargo xtask tidy`.

use std::process::Command;

#[test]
fn the_tree_keeps_the_house_rules() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("tidy")
        .current_dir(&root)
        .output()
        .expect("run xtask tidy");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
