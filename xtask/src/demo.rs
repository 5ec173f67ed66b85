//! `cargo xtask demo`: the main job end to end, as far as the product goes today.

pub fn run(_args: &[String]) -> anyhow::Result<()> {
    anyhow::bail!("the demo is being assembled")
}
