//! The Tauri commands, one module per area of `ui/src/lib/backend/commands.ts`. Each command is a
//! one-line delegation to `desktop_core::app::App`; errors serialise as `{code, message}`.

pub mod field;
pub mod office;
pub mod session;
pub mod sync;

use desktop_core::app::App;

/// The app facade as Tauri managed state.
pub type AppState<'a> = tauri::State<'a, App>;
