//! Tenant files and the session: list, create, unlock, lock, current session, sign-in.

use desktop_core::app::{AppResult, CreatedTenant, Session};
use desktop_core::domain::TenantId;
use desktop_core::local_store::TenantEntry;

use super::AppState;

#[tauri::command(rename_all = "snake_case")]
pub async fn list_tenants(app: AppState<'_>) -> AppResult<Vec<TenantEntry>> {
    app.list_tenants().await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn create_tenant(
    app: AppState<'_>,
    name: String,
    user: String,
    passphrase: String,
) -> AppResult<CreatedTenant> {
    app.create_tenant(name, user, passphrase).await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn unlock(
    app: AppState<'_>,
    tenant_id: TenantId,
    user: String,
    passphrase: String,
) -> AppResult<Session> {
    app.unlock(tenant_id, user, passphrase).await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn lock(app: AppState<'_>) -> AppResult<()> {
    app.lock().await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn current_session(app: AppState<'_>) -> AppResult<Option<Session>> {
    app.current_session().await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn sign_in(
    app: AppState<'_>,
    server_url: String,
    tenant_slug: String,
    email: String,
    password: String,
) -> AppResult<Session> {
    app.sign_in(server_url, tenant_slug, email, password).await
}
