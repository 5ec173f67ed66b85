//! A crew member's day in the field, generated deterministically: touches on their share of the
//! properties (door knocks, calls, inspections…), outcomes where a contract was signed or refused,
//! treat/hold decisions, and a few property status edits — all written offline into the outbox.

use domain::*;
use local_store::{PropertyQuery, PropertyUpdate, TenantStore};
use uplift::stable_hash::splitmix64;

/// What one day produced.
#[derive(Debug, Default, Clone, Copy)]
pub struct DayWork {
    pub touches: usize,
    pub outcomes: usize,
    pub decisions: usize,
    pub status_edits: usize,
}

const CHANNELS: &[Channel] = &[
    Channel::DoorKnock,
    Channel::DoorKnock,
    Channel::Call,
    Channel::Text,
    Channel::Inspection,
    Channel::Estimate,
];
const RESULTS: &[TouchResult] = &[
    TouchResult::NoAnswer,
    TouchResult::Left,
    TouchResult::Talked,
    TouchResult::Interested,
    TouchResult::NotInterested,
    TouchResult::Scheduled,
];

/// Which part of the storm one laptop works, and when.
#[derive(Debug, Clone)]
pub struct DayPlan {
    pub storm: StormId,
    pub user: UserId,
    /// This laptop's index among `slots` laptops sharing the properties.
    pub slot: usize,
    pub slots: usize,
    pub per_laptop: usize,
    /// Unix milliseconds of the first visit.
    pub day_start: i64,
    /// Properties every laptop edits, to show the merge rule converging.
    pub contested: Vec<PropertyId>,
}

/// Works this laptop's share of the storm's properties.
pub fn work_the_day(
    store: &mut TenantStore,
    plan: &DayPlan,
) -> Result<DayWork, local_store::StoreError> {
    let DayPlan {
        storm,
        user,
        slot,
        slots,
        per_laptop,
        day_start,
        ref contested,
    } = *plan;
    let device = store.device_id();
    let all = store.ranked_properties(&PropertyQuery {
        storm_id: Some(storm),
        limit: 100_000,
        ..PropertyQuery::default()
    })?;
    let mine: Vec<&Property> = all
        .iter()
        .map(|r| &r.property)
        .enumerate()
        .filter(|(i, _)| i % slots == slot)
        .map(|(_, p)| p)
        .take(per_laptop)
        .collect();
    let mut work = DayWork::default();
    let mut touches = Vec::new();
    let mut seed = splitmix64(user.0.as_u128() as u64);
    let mut next = || {
        seed = splitmix64(seed);
        seed
    };
    for (n, property) in mine.iter().enumerate() {
        let at = day_start + (n as i64) * 45_000;
        let count = 1 + (next() % 3) as usize;
        for k in 0..count {
            touches.push(JourneyTouch {
                id: TouchId::generate(),
                property_id: property.id,
                storm_id: storm,
                user_id: user,
                device_id: device,
                channel: CHANNELS[(next() % CHANNELS.len() as u64) as usize],
                result: RESULTS[(next() % RESULTS.len() as u64) as usize],
                notes: format!("visit {} to {}", k + 1, property.address),
                occurred_at: Timestamp(at + k as i64 * 5_000),
            });
        }
        let treat = next() % 2 == 0;
        store.add_decision(&PolicyDecision {
            id: DecisionId::generate(),
            property_id: property.id,
            storm_id: storm,
            decision: if treat {
                Decision::Treat
            } else {
                Decision::Hold
            },
            mode: PolicyMode::Moderate,
            uplift_score: None,
            model_version: None,
            reason: None,
            is_override: false,
            decided_by: user,
            decided_at: Timestamp(at),
        })?;
        work.decisions += 1;
        if next() % 5 == 0 {
            let converted = next() % 3 == 0;
            store.add_outcome(&Outcome {
                id: OutcomeId::generate(),
                property_id: property.id,
                storm_id: storm,
                converted,
                contract_value: Cents(if converted {
                    900_000 + (next() % 1_200_000) as i64
                } else {
                    0
                }),
                occurred_at: Timestamp(at + 20_000),
            })?;
            work.outcomes += 1;
        }
    }
    work.touches = touches.len();
    store.add_touches(&touches)?;
    // Several laptops edit the same properties' status offline: the merge rule must make them agree.
    let statuses = [
        PropertyStatus::InProgress,
        PropertyStatus::Inspected,
        PropertyStatus::NotInterested,
    ];
    for (i, property) in contested.iter().enumerate() {
        let status = statuses[(slot + i) % statuses.len()];
        store.update_property(
            *property,
            &PropertyUpdate {
                status: Some(status),
                ..PropertyUpdate::default()
            },
        )?;
        work.status_edits += 1;
    }
    Ok(work)
}
