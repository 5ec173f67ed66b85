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
        // Column arrays through UNNEST: no JSON to build here or to parse in PostgreSQL.
        let sql = format!(
            "WITH w AS (
                INSERT INTO journey_touches (tenant_id, id, property_id, storm_id, user_id, device_id, channel, result, notes, occurred_at)
                SELECT $1, * FROM UNNEST($2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::uuid[], $7::text[], $8::text[], $9::text[], $10::int8[])
                ON CONFLICT (tenant_id, id) DO NOTHING RETURNING *)
             {tail}"
        );
        let done = sqlx::query(&sql)
            .bind(self.tenant_id.0)
            .bind(touches.iter().map(|t| t.id.0).collect::<Vec<_>>())
            .bind(touches.iter().map(|t| t.property_id.0).collect::<Vec<_>>())
            .bind(touches.iter().map(|t| t.storm_id.0).collect::<Vec<_>>())
            .bind(touches.iter().map(|t| t.user_id.0).collect::<Vec<_>>())
            .bind(touches.iter().map(|t| t.device_id.0).collect::<Vec<_>>())
            .bind(
                touches
                    .iter()
                    .map(|t| t.channel.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                touches
                    .iter()
                    .map(|t| t.result.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(touches.iter().map(|t| t.notes.as_str()).collect::<Vec<_>>())
            .bind(touches.iter().map(|t| t.occurred_at.0).collect::<Vec<_>>())
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected())
    }
}
