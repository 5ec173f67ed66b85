//! Rebuilds this crate when a server migration is added or changed: `sqlx::migrate!` embeds
//! `migrations/server` at compile time, and on stable Rust cargo cannot see that the macro read it.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations/server");
}
