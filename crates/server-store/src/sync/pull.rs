//! The pull feed and its cursor, which follows commit order.
//!
//! # Why the cursor never skips a row
//!
//! Every row of `change_log` carries `txid xid8 DEFAULT pg_current_xact_id()`: the id of the transaction
//! that wrote it. Transaction ids are handed out when a transaction first writes, not when it commits, so
//! ordering the feed by txid alone is not safe: transaction 100 may still be running while 101 commits,
//! and a reader that returned 101 and moved its cursor past it would never see 100's rows.
//!
//! The pull therefore reads only rows with `txid < pg_snapshot_xmin(pg_current_snapshot())`. The
//! snapshot's xmin is the oldest transaction still running when the statement started; every transaction
//! below it has finished (committed or aborted), so below xmin the feed is final: no row with a smaller
//! txid can appear later. Rows are returned in `(txid, entity_id, id)` order after the cursor (a position
//! in that order), and the cursor only ever advances to a returned row, or — when the page is the last —
//! to `(xmin − 1, max, max)`, i.e. to the edge of the final region. A row written by a transaction that
//! is still running is therefore held back, however long that transaction stays open, and delivered once
//! it commits; nothing newer overtakes it because the cursor cannot pass xmin.
//!
//! The horizon and the rows are read in one statement, hence from one snapshot (reading the horizon in a
//! second statement could see a commit the row query did not, and skip it).
//!
//! # Why a transaction's rows come in record order
//!
//! Within one transaction rows are ordered by the record's id (`entity_id`), not by the change's own id,
//! which is random. A transaction larger than a page (a data import, a storm's retraining, an office
//! upload) then reaches a laptop as pages of contiguous records — UUIDv7 ids, so in creation order — with
//! each record's changes together (a property and its uplift score share the property's id). The laptop
//! writes each page in one local transaction: in change-id order every page landed all over its B-trees,
//! and a property whose score fell on the next page had its row written (and encrypted) twice. Cursors of
//! the earlier `(txid, id)` order (`c1.`, from a server before this order) still work: one resumes at the
//! start of its transaction, so the rows of that transaction the laptop already holds come again, and a
//! pulled change applied twice leaves a laptop's store as applied once.
//!
//! Consequences: a long-running writing transaction (anywhere in the cluster, since xids are
//! cluster-wide) delays every pull until it ends — it never loses rows. Keep transactions short. Pulls in
//! a transaction that has itself written see their own rows only after commit. Under Citus, each tenant
//! lives on one shard, so its rows' txids come from one worker and compare consistently.
//!
//! The page's `watermark` is a txid such that the puller now holds every change below it: the horizon
//! when the page is the last, or the last row's txid when more pages follow. Scores computed from data up
//! to a watermark record it (`UpliftScore::data_watermark`), so a laptop can tell fresh from stale.
//!
//! # Scopes
//!
//! Admins and viewers pull everything of the tenant. Crew chiefs and field users pull tenant-wide
//! reference data (storms, properties, scores, experiments, arm assignments, territories without a crew)
//! plus rows scoped to their crew (territories and assignments of the crew, touches/outcomes/decisions
//! pushed by crew members) or to themselves (assignments to the user, their own pushes). A row moved
//! away from a crew is not retracted from that crew's laptops (a known simplification).
//!
//! A client of an older sync protocol is not sent entities added after its version
//! (`Entity::since_protocol`; today the storm policy, protocol 2): it could not decode them. Its cursor
//! moves past them like past another scope's rows, so a laptop updated later learns a storm's policy at
//! the office's next change of it (until then it decides in the default mode, moderate).

use domain::{CrewId, Role, UserId};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sync_protocol::{ChangeOp, Entity, FieldClocks, MAX_PULL_LIMIT, PullPage, PulledChange};
use uuid::Uuid;

use crate::error::StoreError;
use crate::tx::TenantTx;

/// Who is pulling, which decides the rows they receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PullScope {
    pub role: Role,
    pub user_id: UserId,
    pub crew_id: Option<CrewId>,
    /// The sync protocol the client speaks: rows of entities newer than it are left out of its pages
    /// (`Entity::since_protocol`), so an older client never meets a record it cannot decode.
    pub protocol: u32,
}

impl PullScope {
    fn sees_everything(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Viewer)
    }

    /// The entities this client's protocol does not know (none for a current client).
    fn unknown_entities(&self) -> Vec<&'static str> {
        Entity::ALL
            .iter()
            .filter(|e| e.since_protocol() > self.protocol)
            .map(|e| e.as_str())
            .collect()
    }
}

/// A position in the feed: after the row `(txid, entity_id, id)`. Its text form is opaque to clients.
/// The field order is the feed's order, so the derived ordering is the feed's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub txid: i64,
    pub entity_id: Uuid,
    pub id: Uuid,
}

const CURSOR_PREFIX: &str = "c2.";
/// Cursors of the `(txid, id)` order a server before the record order issued (see the module doc).
const CHANGE_ORDER_PREFIX: &str = "c1.";

impl Cursor {
    /// Before the first row.
    pub const START: Cursor = Cursor {
        txid: 0,
        entity_id: Uuid::nil(),
        id: Uuid::nil(),
    };

    pub fn encode(&self) -> String {
        format!(
            "{CURSOR_PREFIX}{}.{}.{}",
            self.txid,
            self.entity_id.simple(),
            self.id.simple()
        )
    }

    /// Parses a cursor this server issued; anything else is [`StoreError::InvalidCursor`].
    pub fn decode(text: &str) -> Result<Cursor, StoreError> {
        let invalid = || {
            StoreError::InvalidCursor(
                "not a cursor this server issued; start again without one".into(),
            )
        };
        let txid = |digits: &str| -> Result<i64, StoreError> {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            digits.parse().map_err(|_| invalid())
        };
        let uuid = |hex: &str| -> Result<Uuid, StoreError> {
            if hex.len() != 32 {
                return Err(invalid());
            }
            Uuid::try_parse(hex).map_err(|_| invalid())
        };
        if let Some(rest) = text.strip_prefix(CURSOR_PREFIX) {
            let mut parts = rest.split('.');
            let (Some(t), Some(e), Some(i), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(invalid());
            };
            return Ok(Cursor {
                txid: txid(t)?,
                entity_id: uuid(e)?,
                id: uuid(i)?,
            });
        }
        let rest = text.strip_prefix(CHANGE_ORDER_PREFIX).ok_or_else(invalid)?;
        let (t, i) = rest.split_once('.').ok_or_else(invalid)?;
        let (txid, id) = (txid(t)?, uuid(i)?);
        // At a transaction's end (the edge a last page leaves) nothing of it is sent again; anywhere
        // else the position within it has no meaning in record order, so the transaction is sent whole.
        let within = if id == Uuid::max() {
            Uuid::max()
        } else {
            Uuid::nil()
        };
        Ok(Cursor {
            txid,
            entity_id: within,
            id: within,
        })
    }
}

type FeedRow = (
    i64,
    Option<i64>,
    Option<Uuid>,
    Option<String>,
    Option<Uuid>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// A pull page as the server sends it: the same JSON as [`PullPage`], but each record and its field
/// clocks stay the JSON text PostgreSQL produced, so the server neither parses nor rebuilds them on the
/// way out (for a busy pull that was most of the server's own work).
#[derive(Debug, Serialize)]
pub struct PullPageWire {
    pub changes: Vec<PulledChangeWire>,
    pub next_cursor: String,
    pub has_more: bool,
    pub watermark: i64,
}

/// One row of a [`PullPageWire`]; serialises exactly as [`PulledChange`].
#[derive(Debug, Serialize)]
pub struct PulledChangeWire {
    pub entity: Entity,
    pub entity_id: Uuid,
    pub op: ChangeOp,
    pub record: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field_clocks: Option<Box<RawValue>>,
}

impl PullPageWire {
    /// The typed page (records parsed), as laptops read it.
    pub fn into_page(self) -> Result<PullPage, StoreError> {
        let changes = self
            .changes
            .into_iter()
            .map(|c| {
                let record: Value = serde_json::from_str(c.record.get())
                    .map_err(|e| StoreError::Corrupt(format!("change_log.record: {e}")))?;
                let field_clocks = c
                    .field_clocks
                    .map(|v| serde_json::from_str::<FieldClocks>(v.get()))
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(format!("change_log.field_clocks: {e}")))?;
                Ok(PulledChange {
                    entity: c.entity,
                    entity_id: c.entity_id,
                    op: c.op,
                    record,
                    field_clocks,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(PullPage {
            changes,
            next_cursor: self.next_cursor,
            has_more: self.has_more,
            watermark: self.watermark,
        })
    }
}

/// JSON text from PostgreSQL as a raw value; a database NULL (a tombstone's record) is JSON null.
fn raw_json(text: Option<String>, column: &str) -> Result<Box<RawValue>, StoreError> {
    RawValue::from_string(text.unwrap_or_else(|| "null".to_owned()))
        .map_err(|e| StoreError::Corrupt(format!("change_log.{column}: {e}")))
}

impl TenantTx {
    /// The next page of the feed after `cursor` (None: from the start), at most `limit` rows (clamped to
    /// 1..=MAX_PULL_LIMIT). See the module doc for why the cursor never skips a row.
    pub async fn pull(
        &mut self,
        scope: &PullScope,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<PullPage, StoreError> {
        self.pull_wire(scope, cursor, limit).await?.into_page()
    }

    /// [`TenantTx::pull`] with the records left as the JSON text PostgreSQL produced, for sending on.
    pub async fn pull_wire(
        &mut self,
        scope: &PullScope,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<PullPageWire, StoreError> {
        let after = match cursor {
            None => Cursor::START,
            Some(text) => Cursor::decode(text)?,
        };
        let limit = limit.clamp(1, MAX_PULL_LIMIT);
        // The horizon and the rows come from the same statement, so from the same snapshot.
        let rows: Vec<FeedRow> = sqlx::query_as(
            "WITH horizon AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
             SELECT horizon.xmin::text::int8, c.txid, c.id, c.entity, c.entity_id, c.op, c.record::text, c.field_clocks::text
               FROM horizon LEFT JOIN LATERAL (
                    SELECT l.txid::text::int8 AS txid, l.id, l.entity, l.entity_id, l.op, l.record, l.field_clocks
                      FROM change_log l
                     WHERE l.tenant_id = $1
                       AND (l.txid, l.entity_id, l.id) > ($2::int8::text::xid8, $9::uuid, $3::uuid)
                       AND l.txid < horizon.xmin
                       AND ($4 OR (l.scope_crew IS NULL AND l.scope_user IS NULL) OR l.scope_crew = $5 OR l.scope_user = $6)
                       AND NOT (l.entity = ANY($8))
                     ORDER BY l.txid, l.entity_id, l.id
                     LIMIT $7) c ON true",
        )
        .bind(self.tenant_id.0)
        .bind(after.txid)
        .bind(after.id)
        .bind(scope.sees_everything())
        .bind(scope.crew_id.map(|c| c.0))
        .bind(scope.user_id.0)
        .bind(i64::from(limit) + 1)
        .bind(scope.unknown_entities())
        .bind(after.entity_id)
        .fetch_all(&mut *self.tx)
        .await?;

        let horizon = rows.first().map(|r| r.0).unwrap_or(0);
        let mut changes = Vec::with_capacity(rows.len());
        let mut last: Option<Cursor> = None;
        let mut has_more = false;
        for (_, txid, id, entity, entity_id, op, record, field_clocks) in rows {
            let (Some(txid), Some(id), Some(entity), Some(entity_id), Some(op)) =
                (txid, id, entity, entity_id, op)
            else {
                continue; // the horizon row of an empty page
            };
            if changes.len() == limit as usize {
                has_more = true;
                break;
            }
            let entity = Entity::parse(&entity)
                .ok_or_else(|| StoreError::Corrupt(format!("change_log.entity '{entity}'")))?;
            let op = ChangeOp::parse(&op)
                .ok_or_else(|| StoreError::Corrupt(format!("change_log.op '{op}'")))?;
            let field_clocks = field_clocks
                .filter(|v| v != "null")
                .map(|v| raw_json(Some(v), "field_clocks"))
                .transpose()?;
            changes.push(PulledChangeWire {
                entity,
                entity_id,
                op,
                record: raw_json(record, "record")?,
                field_clocks,
            });
            last = Some(Cursor {
                txid,
                entity_id,
                id,
            });
        }
        let (next, watermark) = match (has_more, last) {
            (true, Some(last)) => (last, last.txid),
            // The last page: everything below the horizon is final and delivered, so the cursor may move
            // to the horizon's edge (skipping rows other scopes hold, so they are not scanned again).
            _ => {
                let edge = Cursor {
                    txid: horizon.saturating_sub(1),
                    entity_id: Uuid::max(),
                    id: Uuid::max(),
                };
                (edge.max(after).max(last.unwrap_or(Cursor::START)), horizon)
            }
        };
        Ok(PullPageWire {
            changes,
            next_cursor: next.encode(),
            has_more,
            watermark,
        })
    }

    /// The tenant's data watermark now: every change with a smaller txid is committed and final.
    /// Training records it as `data_watermark` of the scores it produces.
    pub async fn current_watermark(&mut self) -> Result<i64, StoreError> {
        let horizon: i64 =
            sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8")
                .fetch_one(&mut *self.tx)
                .await?;
        Ok(horizon)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(txid: i64, entity_id: u128, id: u128) -> Cursor {
        Cursor {
            txid,
            entity_id: Uuid::from_u128(entity_id),
            id: Uuid::from_u128(id),
        }
    }

    #[test]
    fn cursors_round_trip_and_order_like_the_feed() {
        let a = at(42, 5, 7);
        assert_eq!(Cursor::decode(&a.encode()).unwrap(), a);
        assert_eq!(
            Cursor::decode(&Cursor::START.encode()).unwrap(),
            Cursor::START
        );
        // txid first, then the record, then the change: a record's changes sit together.
        assert!(at(41, u128::MAX, u128::MAX) < a);
        assert!(a < at(42, 5, 8));
        assert!(at(42, 5, 9) < at(42, 6, 1));
    }

    #[test]
    fn cursors_of_the_change_id_order_resume_at_their_transaction() {
        // Mid-transaction: the whole transaction comes again (its rows are after (txid, nil, nil)).
        let mid = format!("c1.42.{}", Uuid::from_u128(7).simple());
        assert_eq!(
            Cursor::decode(&mid).unwrap(),
            Cursor {
                txid: 42,
                entity_id: Uuid::nil(),
                id: Uuid::nil()
            }
        );
        // At a transaction's edge (a last page's cursor): nothing of it comes again.
        let edge = format!("c1.42.{}", Uuid::max().simple());
        assert_eq!(Cursor::decode(&edge).unwrap(), at(42, u128::MAX, u128::MAX));
    }

    #[test]
    fn foreign_or_altered_cursors_are_refused() {
        let good = at(42, 5, 7).encode();
        let cases = [
            String::new(),
            "42".into(),
            good.replace("c2.", "c3."),
            good.replace("c2.", "c1."),
            good.replace(".42.", ".-42."),
            good.replace(".42.", ".."),
            format!("{good}0"),
            format!("{good}.{}", Uuid::nil().simple()),
            format!("c2.42.{}", Uuid::nil().simple()),
            "c1.99999999999999999999.00000000000000000000000000000007".into(),
            "c1.1.' OR 1=1 --".into(),
            "c2.1.' OR 1=1 --.00000000000000000000000000000007".into(),
        ];
        for bad in cases {
            assert!(
                matches!(Cursor::decode(&bad), Err(StoreError::InvalidCursor(_))),
                "{bad}"
            );
        }
    }
}
