//! stormops-field: the headless field CLI.
fn main() {}
