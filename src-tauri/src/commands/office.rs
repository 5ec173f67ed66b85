//! Crew chief and office screens: crew day, sync health, users and crews, storms and imports, and the
//! server-computed views (experiment, uplift health, usage), which desktop-core fetches from the server.

use desktop_core::app::{AppResult, CrewSyncHealth, ImportReport, NewStorm};
use desktop_core::domain::{Crew, CrewId, Storm, StormId, User};
use desktop_core::local_store::CrewDaySummary;

use super::AppState;

#[tauri::command(rename_all = "snake_case")]
pub async fn crew_day(
    app: AppState<'_>,
    crew_id: Option<CrewId>,
    day: String,
) -> AppResult<CrewDaySummary> {
    app.crew_day(crew_id, day).await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn crew_sync_health(app: AppState<'_>) -> AppResult<CrewSyncHealth> {
    app.crew_sync_health().await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn users(app: AppState<'_>) -> AppResult<Vec<User>> {
    app.users().await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn crews(app: AppState<'_>) -> AppResult<Vec<Crew>> {
    app.crews().await
}

#[tauri::command(rename_all = "snake_case")]
#[allow(clippy::too_many_arguments)] // One parameter per bridge argument.
pub async fn storm_create(
    app: AppState<'_>,
    event_id: String,
    name: String,
    started_at: i64,
    ended_at: Option<i64>,
    hail_size_in: f64,
    wind_mph: f64,
    affected_area: String,
) -> AppResult<Storm> {
    app.storm_create(NewStorm {
        event_id,
        name,
        started_at,
        ended_at,
        hail_size_in,
        wind_mph,
        affected_area,
    })
    .await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn property_import_csv(
    app: AppState<'_>,
    storm_id: StormId,
    csv_text: String,
) -> AppResult<ImportReport> {
    app.property_import_csv(storm_id, csv_text).await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn experiment_summary(
    app: AppState<'_>,
    storm_id: StormId,
) -> AppResult<serde_json::Value> {
    app.experiment_summary(storm_id).await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn experiment_create(
    app: AppState<'_>,
    storm_id: StormId,
    treatment_share: f64,
) -> AppResult<serde_json::Value> {
    app.experiment_create(storm_id, treatment_share).await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn uplift_distribution(
    app: AppState<'_>,
    storm_id: StormId,
) -> AppResult<serde_json::Value> {
    app.uplift_distribution(storm_id).await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn usage(app: AppState<'_>) -> AppResult<serde_json::Value> {
    app.usage().await
}
