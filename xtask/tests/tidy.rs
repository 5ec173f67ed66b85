//! The house rules run as an ordinary test, so `cargo test` is the gate: see `cargo xtask tidy`. The
//! checks are compiled into the test itself, so it needs no xtask binary on disk.

// `run` (the command's printing wrapper) is not used here; the test asserts on `problems` directly.
#[allow(dead_code)]
#[path = "../src/tidy.rs"]
mod tidy;

#[test]
fn the_tree_keeps_the_house_rules() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let problems = tidy::problems(&root, false).expect("tidy reads the tree");
    assert!(
        problems.is_empty(),
        "the house rules are broken:\n{}",
        problems.join("\n")
    );
}
