//! `cargo xtask`: the project's automation (test, demo, bench, tidy). Filled in as the crates land.

fn main() -> anyhow::Result<()> {
    Ok(())
}
