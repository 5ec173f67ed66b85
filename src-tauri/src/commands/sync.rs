//! Sync status, "sync now", and the inbox of refused changes.

use desktop_core::SyncStatus;
use desktop_core::app::AppResult;
use desktop_core::domain::ChangeId;
use desktop_core::local_store::InboxItem;

use super::AppState;

#[tauri::command(rename_all = "snake_case")]
pub async fn sync_status(app: AppState<'_>) -> AppResult<SyncStatus> {
    app.sync_status().await
}

/// Starts a sync and returns at once; progress arrives as `sync-status` events.
#[tauri::command(rename_all = "snake_case")]
pub async fn sync_now(app: AppState<'_>) -> AppResult<()> {
    app.sync_now().await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn inbox(app: AppState<'_>) -> AppResult<Vec<InboxItem>> {
    app.inbox().await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn inbox_retry(app: AppState<'_>, change_id: ChangeId) -> AppResult<()> {
    app.inbox_retry(change_id).await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn inbox_discard(app: AppState<'_>, change_id: ChangeId) -> AppResult<()> {
    app.inbox_discard(change_id).await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn inbox_edit(
    app: AppState<'_>,
    change_id: ChangeId,
    payload: serde_json::Value,
) -> AppResult<()> {
    app.inbox_edit(change_id, payload).await
}
