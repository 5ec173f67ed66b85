//! The field screens: storms, territories, the ranked list, a property, and logging work on it.

use desktop_core::app::{AppResult, PropertyDetail, PropertyQuery, RankedProperty};
use desktop_core::domain::{
    Channel, Decision, JourneyTouch, Outcome, PolicyDecision, PolicyMode, PropertyId, Storm,
    StormId, Territory, TouchResult,
};

use super::AppState;

#[tauri::command(rename_all = "snake_case")]
pub async fn storms(app: AppState<'_>) -> AppResult<Vec<Storm>> {
    app.storms().await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn territories(
    app: AppState<'_>,
    storm_id: Option<StormId>,
) -> AppResult<Vec<Territory>> {
    app.territories(storm_id).await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn ranked_properties(
    app: AppState<'_>,
    query: PropertyQuery,
) -> AppResult<Vec<RankedProperty>> {
    app.ranked_properties(query).await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn property_count(app: AppState<'_>, query: PropertyQuery) -> AppResult<i64> {
    app.property_count(query).await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn property_detail(
    app: AppState<'_>,
    property_id: PropertyId,
) -> AppResult<PropertyDetail> {
    app.property_detail(property_id).await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn log_touch(
    app: AppState<'_>,
    property_id: PropertyId,
    storm_id: StormId,
    channel: Channel,
    result: TouchResult,
    notes: String,
) -> AppResult<JourneyTouch> {
    app.log_touch(property_id, storm_id, channel, result, notes)
        .await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn log_outcome(
    app: AppState<'_>,
    property_id: PropertyId,
    storm_id: StormId,
    converted: bool,
    contract_value_cents: i64,
) -> AppResult<Outcome> {
    app.log_outcome(property_id, storm_id, converted, contract_value_cents)
        .await
}

#[tauri::command(rename_all = "snake_case")]
#[allow(clippy::too_many_arguments)] // One parameter per bridge argument.
pub async fn decide(
    app: AppState<'_>,
    property_id: PropertyId,
    storm_id: StormId,
    decision: Decision,
    mode: PolicyMode,
    is_override: bool,
    reason: Option<String>,
) -> AppResult<PolicyDecision> {
    app.decide(property_id, storm_id, decision, mode, is_override, reason)
        .await
}
