//! Reads and settings of the office's admin API: storms, a storm's territories, existing properties of a
//! storm by external id (so a re-import updates instead of duplicating), and the storm's policy mode.
//! Writes of storms, territories and properties go through the sync writers (`sync::writers`), so laptops
//! receive them in their pulls; the policy mode is written here with its own pull-feed row.

use std::collections::HashMap;

use domain::{PolicyMode, PropertyId, Storm, StormId, Territory, Timestamp, UserId};
use serde::de::DeserializeOwned;
use serde_json::Value;

use sync_protocol::Entity;

use crate::error::StoreError;
use crate::rows::parse_text;
use crate::sync::changelog::tenant_wide_change_log_tail;
use crate::tx::TenantTx;

fn records<T: DeserializeOwned>(rows: Vec<Value>, what: &str) -> Result<Vec<T>, StoreError> {
    rows.into_iter()
        .map(|v| serde_json::from_value(v).map_err(|e| StoreError::Corrupt(format!("{what}: {e}"))))
        .collect()
}

/// A storm's policy mode as set by the office.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StormPolicy {
    pub storm_id: StormId,
    pub mode: PolicyMode,
    /// `None` when never set (the mode is then the default, moderate).
    pub updated_at: Option<Timestamp>,
    pub updated_by: Option<UserId>,
}

impl TenantTx {
    /// Every storm of the tenant, newest first.
    pub async fn list_storms(&mut self) -> Result<Vec<Storm>, StoreError> {
        let rows: Vec<Value> = sqlx::query_scalar(
            "SELECT to_jsonb(s) - 'tenant_id' - 'field_clocks' FROM storms s
              WHERE tenant_id = $1 ORDER BY started_at DESC, id",
        )
        .bind(self.tenant_id.0)
        .fetch_all(&mut *self.tx)
        .await?;
        records(rows, "storms")
    }

    pub async fn storm(&mut self, id: StormId) -> Result<Option<Storm>, StoreError> {
        let row: Option<Value> = sqlx::query_scalar(
            "SELECT to_jsonb(s) - 'tenant_id' - 'field_clocks' FROM storms s WHERE tenant_id = $1 AND id = $2",
        )
        .bind(self.tenant_id.0)
        .bind(id.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(records(row.into_iter().collect(), "storms")?.pop())
    }

    /// A storm's territories, by name.
    pub async fn list_territories(&mut self, storm: StormId) -> Result<Vec<Territory>, StoreError> {
        let rows: Vec<Value> = sqlx::query_scalar(
            "SELECT to_jsonb(t) - 'tenant_id' - 'field_clocks' FROM territories t
              WHERE tenant_id = $1 AND storm_id = $2 ORDER BY name, id",
        )
        .bind(self.tenant_id.0)
        .bind(storm.0)
        .fetch_all(&mut *self.tx)
        .await?;
        records(rows, "territories")
    }

    /// The ids of the storm's properties with these external ids.
    pub async fn property_ids_by_external_id(
        &mut self,
        storm: StormId,
        external_ids: &[String],
    ) -> Result<HashMap<String, PropertyId>, StoreError> {
        let rows: Vec<(String, uuid::Uuid)> = sqlx::query_as(
            "SELECT external_id, id FROM properties
              WHERE tenant_id = $1 AND storm_id = $2 AND external_id = ANY($3)",
        )
        .bind(self.tenant_id.0)
        .bind(storm.0)
        .bind(external_ids)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(e, id)| (e, PropertyId::from_uuid(id)))
            .collect())
    }

    /// The storm's policy mode (moderate when the office never set one).
    pub async fn storm_policy(&mut self, storm: StormId) -> Result<StormPolicy, StoreError> {
        let row: Option<(String, i64, Option<uuid::Uuid>)> = sqlx::query_as(
            "SELECT mode, updated_at, updated_by FROM storm_policies WHERE tenant_id = $1 AND storm_id = $2",
        )
        .bind(self.tenant_id.0)
        .bind(storm.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(match row {
            Some((mode, at, by)) => StormPolicy {
                storm_id: storm,
                mode: parse_text::<PolicyMode>(&mode, "storm_policies.mode")?,
                updated_at: Some(Timestamp(at)),
                updated_by: by.map(UserId),
            },
            None => StormPolicy {
                storm_id: storm,
                mode: PolicyMode::Moderate,
                updated_at: None,
                updated_by: None,
            },
        })
    }

    /// Sets the storm's policy mode. An unknown storm is [`StoreError::ForeignReference`].
    ///
    /// The row and its pull-feed entry are one statement (a data-modifying CTE feeding `change_log`), so
    /// every laptop of the tenant receives the mode in its next pull: the policy is tenant-wide reference
    /// data like the storm itself (no crew or user scope). Setting the same mode again writes a new feed
    /// row too (with the new time and author), which laptops apply as a replacement.
    pub async fn set_storm_policy(
        &mut self,
        storm: StormId,
        mode: PolicyMode,
        by: UserId,
        now: Timestamp,
    ) -> Result<StormPolicy, StoreError> {
        let tail = tenant_wide_change_log_tail(Entity::StormPolicy.as_str(), "w.storm_id");
        let sql = format!(
            "WITH w AS (
                INSERT INTO storm_policies (tenant_id, storm_id, mode, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (tenant_id, storm_id) DO UPDATE
                   SET mode = EXCLUDED.mode, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by
                RETURNING *)
             {tail}"
        );
        sqlx::query(&sql)
            .bind(self.tenant_id.0)
            .bind(storm.0)
            .bind(mode.as_str())
            .bind(now.0)
            .bind(by.0)
            .execute(&mut *self.tx)
            .await?;
        Ok(StormPolicy {
            storm_id: storm,
            mode,
            updated_at: Some(now),
            updated_by: Some(by),
        })
    }
}
