//! Writes for bulk imports (the legacy SQLite import): journey history that arrives without a device push,
//! and the "which of these ids exist already" question that makes a re-run of an import change nothing.

use std::collections::HashSet;

use domain::{JourneyTouch, Timestamp, Validate};
use uuid::Uuid;

use crate::error::StoreError;
use crate::sync::changelog::change_log_tail;
use crate::tx::TenantTx;

/// The tables an import may ask about, with the column that identifies a record.
const ID_COLUMNS: [(&str, &str); 5] = [
    ("storms", "id"),
    ("properties", "id"),
    ("experiments", "id"),
    ("journey_touches", "id"),
    ("uplift_scores", "property_id"),
];

impl TenantTx {
    /// Which of `ids` this tenant already has in `table` (one of storms, properties, experiments,
    /// journey_touches, uplift_scores).
    pub async fn existing_ids(
        &mut self,
        table: &str,
        ids: &[Uuid],
    ) -> Result<HashSet<Uuid>, StoreError> {
        let Some((table, column)) = ID_COLUMNS.iter().find(|(t, _)| *t == table) else {
            return Err(StoreError::InvalidInput(format!(
                "existing_ids does not know table '{table}'"
            )));
        };
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let found: Vec<Uuid> = sqlx::query_scalar(&format!(
            "SELECT {column} FROM {table} WHERE tenant_id = $1 AND {column} = ANY($2)"
        ))
        .bind(self.tenant_id.0)
        .bind(ids)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(found.into_iter().collect())
    }

    /// Appends imported journey touches (append-only: an id already stored is skipped) and feeds them to
    /// the tenant's laptops. Returns the touches written.
    pub async fn insert_journey_touches(
        &mut self,
        touches: &[JourneyTouch],
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        if touches.is_empty() {
            return Ok(0);
        }
        for t in touches {
            t.validate(now)?;
        }
        let tail = change_log_tail(
            "journey_touch",
            "w.id",
            "to_jsonb(w) - 'tenant_id'",
            "NULL::jsonb",
            "NULL::uuid",
            "NULL::uuid",
        );
        let mut rows = Vec::with_capacity(touches.len());
        for t in touches {
            let mut value = serde_json::to_value(t)
                .map_err(|e| StoreError::InvalidInput(format!("journey touch: {e}")))?;
            if let Some(map) = value.as_object_mut() {
                map.insert(
                    "tenant_id".into(),
                    serde_json::Value::String(self.tenant_id.0.to_string()),
                );
            }
            rows.push(value);
        }
        let sql = format!(
            "WITH w AS (
                INSERT INTO journey_touches SELECT * FROM jsonb_populate_recordset(NULL::journey_touches, $1)
                ON CONFLICT (tenant_id, id) DO NOTHING RETURNING *)
             {tail}"
        );
        let done = sqlx::query(&sql)
            .bind(serde_json::Value::Array(rows))
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected())
    }
}
