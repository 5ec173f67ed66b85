//! What the generator saw: one record per HTTP request (kind, start, duration, error code) and, per
//! tenant, the ledger of changes — those holding a receipt (accepted now or acknowledged as a duplicate),
//! those refused as a whole (never written), and those left without an answer. The checks compare the
//! ledger with PostgreSQL; the report derives latencies, throughput and errors from the records.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sync_client::ClientError;
use sync_protocol::{Change, Entity, Receipt, ReceiptStatus};
use uuid::Uuid;

/// What a request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Push,
    Pull,
    Office,
    Login,
    Train,
}

/// One HTTP request.
#[derive(Debug, Clone)]
pub struct Request {
    pub kind: Kind,
    pub started: Instant,
    pub took: Duration,
    /// The stable error code (`network`, `decode` when the answer was not the protocol), or none.
    pub error: Option<String>,
}

impl Request {
    pub fn ended(&self) -> Instant {
        self.started + self.took
    }
}

/// The stable code of a failed call.
pub fn code_of(error: &ClientError) -> String {
    match error {
        ClientError::Server { body, .. } => body.code.as_str().to_owned(),
        ClientError::Network(_) => "network".to_owned(),
        ClientError::Decode(_) => "decode".to_owned(),
        ClientError::InvalidUrl(_) => "invalid_url".to_owned(),
    }
}

/// A change that holds a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipted {
    pub change_id: Uuid,
    pub entity: Entity,
    pub entity_id: Uuid,
}

/// One tenant's changes, as far as the generator knows.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub receipted: Vec<Receipted>,
    /// Receipts that said `accepted` (the rest said `duplicate`: a retry of a push that had committed).
    pub accepted: u64,
    pub duplicates: u64,
    /// Entity ids of changes refused with their whole batch (nothing of it may be stored).
    pub refused: Vec<(Entity, Uuid)>,
    /// Batches refused by the monthly quota.
    pub quota_refusals: u64,
    /// Changes given up on without an answer (the deadline passed): none is expected.
    pub unsettled: u64,
}

impl Ledger {
    /// Files a pushed batch's receipts.
    pub fn receipts(&mut self, changes: &[Change], receipts: &[Receipt]) {
        let by_id: BTreeMap<Uuid, &Change> = changes.iter().map(|c| (c.id.0, c)).collect();
        for r in receipts {
            let Some(change) = by_id.get(&r.change_id.0) else {
                continue;
            };
            match r.status {
                ReceiptStatus::Accepted | ReceiptStatus::Duplicate => {
                    if r.status == ReceiptStatus::Accepted {
                        self.accepted += 1;
                    } else {
                        self.duplicates += 1;
                    }
                    self.receipted.push(Receipted {
                        change_id: change.id.0,
                        entity: change.entity,
                        entity_id: change.entity_id,
                    });
                }
                ReceiptStatus::Refused => self.refused.push((change.entity, change.entity_id)),
            }
        }
    }

    /// Files a batch refused as a whole.
    pub fn refused_batch(&mut self, changes: &[Change]) {
        self.refused
            .extend(changes.iter().map(|c| (c.entity, c.entity_id)));
    }

    pub fn merge(&mut self, other: Ledger) {
        self.receipted.extend(other.receipted);
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.refused.extend(other.refused);
        self.quota_refusals += other.quota_refusals;
        self.unsettled += other.unsettled;
    }
}

/// The `p`-th percentile (nearest rank) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * p / 100.0).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Errors by code over some requests.
pub fn errors_by_code<'a>(requests: impl Iterator<Item = &'a Request>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for r in requests {
        if let Some(code) = &r.error {
            *out.entry(code.clone()).or_insert(0) += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&v, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&v, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }
}
