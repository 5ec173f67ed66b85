//! The StormOps Field desktop shell: a thin Tauri 2 layer over `desktop_core::app::App`. It registers
//! the bridge's commands (each a one-line delegation), forwards the sync status as the `sync-status`
//! event, keeps syncing in the background with the window hidden (tray: Show / Sync now / Quit; closing
//! the window hides it), tells the user when a sync after a lost connection has finished, allows one
//! instance at a time, and remembers the window's size and place.

pub mod command_names;
pub mod commands;

use desktop_core::app::App;
use desktop_core::local_store::DataDir;
use desktop_core::{Connectivity, EngineConfig, SyncStatus};
use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Emitter, Manager, Runtime, WindowEvent};
use tauri_plugin_notification::NotificationExt;

/// Overrides where tenant files live (default: the OS app-data directory). The end-to-end test and the
/// demo point the app at their own directory with it.
pub const DATA_DIR_ENV: &str = "STORMOPS_DATA_DIR";

/// The event carrying a `SyncStatus` whenever it changes.
pub const SYNC_STATUS_EVENT: &str = "sync-status";
const MAIN_WINDOW: &str = "main";

/// Registers every bridge command on `builder` (the real app and the mock-runtime tests share it).
pub fn with_commands<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    use commands::{field, office, session, sync};
    builder.invoke_handler(tauri::generate_handler![
        session::list_tenants,
        session::create_tenant,
        session::unlock,
        session::lock,
        session::current_session,
        session::sign_in,
        sync::sync_status,
        sync::sync_now,
        sync::inbox,
        sync::inbox_retry,
        sync::inbox_discard,
        sync::inbox_edit,
        field::storms,
        field::territories,
        field::ranked_properties,
        field::property_count,
        field::property_detail,
        field::log_touch,
        field::log_outcome,
        field::decide,
        office::crew_day,
        office::crew_sync_health,
        office::users,
        office::crews,
        office::storm_create,
        office::property_import_csv,
        office::experiment_summary,
        office::experiment_create,
        office::uplift_distribution,
        office::usage,
    ])
}

/// The machine's name, shown to admins in the device list.
fn device_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| "StormOps Field laptop".to_owned())
}

fn show_main<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}

/// Whether the status shows the server could not be reached (a later success is a reconnection).
fn lost_connection(status: &SyncStatus) -> bool {
    status.connectivity == Connectivity::Offline
}

/// Forwards every status change to the webview, and notifies once a sync succeeds after the
/// connection was lost (the window may be hidden: the user learns their work went out).
pub fn forward_status<R: Runtime>(app: &AppHandle<R>) {
    let mut rx = app.state::<App>().subscribe_status();
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let mut was_offline = false;
        let mut last_success = rx.borrow().last_success_at_ms;
        loop {
            let status = rx.borrow_and_update().clone();
            if let Err(err) = app.emit(SYNC_STATUS_EVENT, &status) {
                tracing::warn!(%err, "could not emit the sync status");
            }
            was_offline |= lost_connection(&status);
            if status.last_success_at_ms != last_success {
                last_success = status.last_success_at_ms;
                if was_offline && status.last_success_at_ms.is_some() {
                    was_offline = false;
                    let _ = app
                        .notification()
                        .builder()
                        .title("StormOps Field is back online")
                        .body("Your work has been sent and the latest data received.")
                        .show();
                }
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    });
}

fn build_tray<R: Runtime>(app: &tauri::App<R>) -> tauri::Result<()> {
    let show = MenuItem::with_id(app, "show", "Show", true, None::<&str>)?;
    let sync = MenuItem::with_id(app, "sync", "Sync now", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&show, &sync, &quit])?;
    let mut tray = TrayIconBuilder::with_id("main")
        .tooltip("StormOps Field")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "show" => show_main(app),
            "sync" => {
                let app = app.clone();
                tauri::async_runtime::spawn(async move {
                    // Not signed in or locked: nothing to sync; the window says why when shown.
                    let _ = app.state::<App>().sync_now().await;
                });
            }
            "quit" => {
                let app = app.clone();
                tauri::async_runtime::spawn(async move {
                    // Close the tenant file cleanly before the process ends.
                    let _ = app.state::<App>().lock().await;
                    app.exit(0);
                });
            }
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    Ok(())
}

/// Starts the desktop app.
pub fn run() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    // The single-instance plugin goes first so a second launch exits before doing anything else.
    let builder = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            show_main(app);
        }))
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .setup(|app| {
            let root = match std::env::var_os(DATA_DIR_ENV) {
                Some(dir) if !dir.is_empty() => std::path::PathBuf::from(dir),
                _ => app.path().app_data_dir()?,
            };
            let data_dir = DataDir::new(root).map_err(|e| e.to_string())?;
            app.manage(App::new(data_dir, EngineConfig::default(), device_name()));
            forward_status(app.handle());
            build_tray(app)?;
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing hides the window: sync keeps running in the background until Quit.
            if let WindowEvent::CloseRequested { api, .. } = event
                && window.label() == MAIN_WINDOW
            {
                api.prevent_close();
                let _ = window.hide();
            }
        });
    if let Err(err) = with_commands(builder).run(tauri::generate_context!()) {
        tracing::error!(%err, "the app stopped with an error");
        eprintln!("StormOps Field could not start: {err}");
        std::process::exit(1);
    }
}
