//! Benchmark support: the raw PostgreSQL ceiling for ingesting journey touches as the application
//! role — `COPY` into a TEMP staging table, then one `INSERT … SELECT` into the RLS-protected table
//! (COPY straight into a table under RLS is refused). The push path is measured against it in one run.

use domain::JourneyTouch;
use sqlx::Executor;

use crate::error::StoreError;
use crate::tx::TenantTx;

/// Escapes one value for COPY's text format (backslash, tab, newline, carriage return).
fn push_copy_text(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
}

fn copy_rows(rows: &[JourneyTouch]) -> String {
    let mut out = String::with_capacity(rows.len() * 200);
    for r in rows {
        for id in [
            r.id.0,
            r.property_id.0,
            r.storm_id.0,
            r.user_id.0,
            r.device_id.0,
        ] {
            out.push_str(&id.to_string());
            out.push('\t');
        }
        out.push_str(r.channel.as_str());
        out.push('\t');
        out.push_str(r.result.as_str());
        out.push('\t');
        push_copy_text(&mut out, &r.notes);
        out.push('\t');
        out.push_str(&r.occurred_at.0.to_string());
        out.push('\n');
    }
    out
}

/// FOR THE BENCHMARK ONLY: ingests `rows` the fastest way PostgreSQL allows as the application role
/// (COPY into a TEMP table dropped at commit, then INSERT … SELECT … ON CONFLICT DO NOTHING into
/// `journey_touches`). No validation, no idempotency ledger, no pull feed: it is the ceiling the real
/// push is compared with. Returns the rows inserted.
pub async fn bench_raw_copy_insert(
    tx: &mut TenantTx,
    rows: &[JourneyTouch],
) -> Result<u64, StoreError> {
    let tenant = tx.tenant_id();
    let conn = tx.connection();
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS bench_touch_staging (
            id uuid, property_id uuid, storm_id uuid, user_id uuid, device_id uuid,
            channel text, result text, notes text, occurred_at bigint
         ) ON COMMIT DELETE ROWS",
    )
    .await?;
    let mut copy = conn
        .copy_in_raw("COPY bench_touch_staging FROM STDIN")
        .await?;
    copy.send(copy_rows(rows).into_bytes()).await?;
    copy.finish().await?;
    let inserted = sqlx::query(
        "INSERT INTO journey_touches (tenant_id, id, property_id, storm_id, user_id, device_id, channel, result, notes, occurred_at)
         SELECT $1, s.* FROM bench_touch_staging s
         ON CONFLICT (tenant_id, id) DO NOTHING",
    )
    .bind(tenant.0)
    .execute(&mut *conn)
    .await?;
    conn.execute("TRUNCATE bench_touch_staging").await?;
    Ok(inserted.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_control_characters() {
        let mut out = String::new();
        push_copy_text(&mut out, "a\tb\nc\\d\re");
        assert_eq!(out, "a\\tb\\nc\\\\d\\re");
    }
}
