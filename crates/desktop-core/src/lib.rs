//! The field app's use cases without a window: the sync engine that joins a tenant store to the sync
//! client, its visible status, sign-in, and backoff. The Tauri shell and the headless CLI both sit on it.

pub mod app;
pub mod backoff;
pub mod bindings;
pub mod csv_import;
pub mod engine;
pub mod policy;
pub mod signin;
pub mod status;

// Re-exported so the shell names the bridge types without depending on these crates itself.
pub use {domain, local_store};

pub use engine::{EngineConfig, SyncEngine, SyncError, SyncReport};
pub use signin::{SignInError, SignInRequest, SignedIn, sign_in};
pub use status::{Connectivity, Phase, Progress, StatusError, SyncStatus};
