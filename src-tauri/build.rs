//! Build script: tauri-build reads tauri.conf.json and the capabilities and generates the context. The
//! app manifest declares one permission per command (names read from src/command_names.rs), so a
//! command missing from the capability file is refused at runtime instead of allowed by default.

/// The page shown when the UI was never built. tauri's context needs `frontendDist` to exist at compile
/// time, and `cargo test --workspace` / clippy run before any npm step on a fresh checkout; the real
/// bundle (`cargo tauri build`) runs the UI build first and replaces this.
const PLACEHOLDER: &str = "<!doctype html><meta charset=utf-8><title>StormOps Field</title>\n<p>The UI is not built: run <code>npm run build</code> in <code>ui/</code>.</p>\n";

fn ensure_frontend_dist() {
    let dist = std::path::Path::new("../ui/dist");
    if dist.join("index.html").exists() {
        return;
    }
    if let Err(err) = std::fs::create_dir_all(dist)
        .and_then(|()| std::fs::write(dist.join("index.html"), PLACEHOLDER))
    {
        eprintln!("cannot write a placeholder {}: {err}", dist.display());
        std::process::exit(1);
    }
}

fn main() {
    println!("cargo:rerun-if-changed=src/command_names.rs");
    // `generate_context!` embeds ui/dist when the crate compiles; a new UI build must recompile it.
    println!("cargo:rerun-if-changed=../ui/dist");
    ensure_frontend_dist();
    let names = match std::fs::read_to_string("src/command_names.rs") {
        Ok(text) => text,
        Err(err) => {
            eprintln!("cannot read src/command_names.rs: {err}");
            std::process::exit(1);
        }
    };
    // One quoted name per line inside the COMMAND_NAMES array.
    let commands: Vec<&'static str> = names
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('"'))
        .map(|l| &*l.trim_end_matches(',').trim_matches('"').to_owned().leak())
        .collect();
    // tauri-build wants a 'static list; the build script ends right after.
    let commands: &'static [&'static str] = Box::leak(commands.into_boxed_slice());
    let manifest = tauri_build::AppManifest::new().commands(commands);
    if let Err(err) = tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest))
    {
        // The message names the broken file (config, capability or icon); fail the build with it.
        eprintln!("tauri-build failed: {err:#}");
        std::process::exit(1);
    }
}
