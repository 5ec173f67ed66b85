//! Writes for bulk imports (the legacy SQLite import): properties new to the tenant and journey history
//! that arrive without a device push, and the "which of these ids exist already" question that makes a
//! re-run of an import change nothing.

use std::collections::HashSet;

use domain::{Hlc, JourneyTouch, Property, Timestamp, Validate};
use sync_protocol::{Entity, FieldClocks};
use uuid::Uuid;

use crate::error::StoreError;
use crate::sync::changelog::{change_log_tail, tenant_wide_change_log_tail};
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

    /// Inserts imported properties the tenant does not have yet (an id already stored is skipped, never
    /// updated) and feeds them to the tenant's laptops. Returns the properties written.
    ///
    /// What it writes is exactly what [`TenantTx::upsert_properties`] writes for a record it creates —
    /// every field clocked at `hlc`, the same row and the same feed entry (tested side by side) — without
    /// that path's per-record merge, which has nothing to merge with here, and without a JSON document:
    /// the rows travel as one typed array per column, the field clocks (identical for every new
    /// property) once.
    pub async fn insert_new_properties(
        &mut self,
        properties: &[Property],
        hlc: Hlc,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        if properties.is_empty() {
            return Ok(0);
        }
        for p in properties {
            p.validate(now)?;
        }
        // A created record's clocks: one per field the record serialises, `id` excepted (the key).
        let clocks: FieldClocks = match properties.first().map(serde_json::to_value) {
            Some(Ok(serde_json::Value::Object(fields))) => fields
                .keys()
                .filter(|k| k.as_str() != "id")
                .map(|k| (k.clone(), hlc))
                .collect(),
            _ => {
                return Err(StoreError::InvalidInput(
                    "a property does not serialise to an object".into(),
                ));
            }
        };
        let clocks =
            serde_json::to_value(&clocks).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let tail = change_log_tail(
            Entity::Property.as_str(),
            "w.id",
            "to_jsonb(w) - 'tenant_id' - 'field_clocks'",
            "w.field_clocks",
            "NULL::uuid",
            "NULL::uuid",
        );
        let sql = format!(
            "WITH w AS (
                INSERT INTO properties (tenant_id, id, storm_id, external_id, address, latitude, longitude, roof_age_years,
                    roof_material, square_feet, home_value, hail_size_in, distance_to_core_km, prior_claims, owner_name,
                    owner_phone, owner_email, status, field_clocks)
                SELECT $1, u.*, $18::jsonb FROM UNNEST($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::float8[],
                    $7::float8[], $8::float8[], $9::text[], $10::float8[], $11::int8[], $12::float8[], $13::float8[],
                    $14::int8[], $15::text[], $16::text[], $17::text[], $19::text[]) AS u
                ON CONFLICT (tenant_id, id) DO NOTHING RETURNING *)
             {tail}"
        );
        let column = |f: fn(&Property) -> Option<f64>| properties.iter().map(f).collect::<Vec<_>>();
        let done = sqlx::query(&sql)
            .bind(self.tenant_id.0)
            .bind(properties.iter().map(|p| p.id.0).collect::<Vec<_>>())
            .bind(properties.iter().map(|p| p.storm_id.0).collect::<Vec<_>>())
            .bind(
                properties
                    .iter()
                    .map(|p| p.external_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                properties
                    .iter()
                    .map(|p| p.address.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(properties.iter().map(|p| p.latitude).collect::<Vec<_>>())
            .bind(properties.iter().map(|p| p.longitude).collect::<Vec<_>>())
            .bind(column(|p| p.roof_age_years))
            .bind(
                properties
                    .iter()
                    .map(|p| p.roof_material.map(|m| m.as_str()))
                    .collect::<Vec<_>>(),
            )
            .bind(column(|p| p.square_feet))
            .bind(
                properties
                    .iter()
                    .map(|p| p.home_value.map(|c| c.0))
                    .collect::<Vec<_>>(),
            )
            .bind(column(|p| p.hail_size_in))
            .bind(column(|p| p.distance_to_core_km))
            .bind(
                properties
                    .iter()
                    .map(|p| i64::from(p.prior_claims))
                    .collect::<Vec<_>>(),
            )
            .bind(
                properties
                    .iter()
                    .map(|p| p.owner_name.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(
                properties
                    .iter()
                    .map(|p| p.owner_phone.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(
                properties
                    .iter()
                    .map(|p| p.owner_email.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(clocks)
            .bind(
                properties
                    .iter()
                    .map(|p| p.status.as_str())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected())
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
        let tail = tenant_wide_change_log_tail("journey_touch", "w.id");
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
