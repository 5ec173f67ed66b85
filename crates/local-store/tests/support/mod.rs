//! Fixtures shared by the store's integration tests: a real SQLCipher tenant in a temp dir, and records.
#![allow(dead_code)]

use domain::*;
use local_store::{CreatedTenant, DataDir, ManualClock, NewTenant, Passphrase, TenantStore};
use tempfile::TempDir;

/// 2026-09-21T…Z: a fixed "now" so validation and clocks are deterministic.
pub const NOW: Timestamp = Timestamp(1_790_000_000_000);
pub const PASSPHRASE: &str = "correct horse battery";
pub const USER: &str = "pat";

pub struct Fixture {
    pub dir: TempDir,
    pub data_dir: DataDir,
    pub tenant_id: TenantId,
    pub store: TenantStore,
    pub recovery_key: String,
    pub clock: ManualClock,
}

/// Creates a tenant file (one key derivation) and returns it open, on a pinned clock.
pub fn tenant() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = DataDir::new(dir.path()).expect("data dir");
    let passphrase = Passphrase::new(PASSPHRASE);
    let CreatedTenant {
        mut store,
        entry,
        recovery_key,
    } = data_dir
        .create_tenant(
            NewTenant {
                tenant_id: None,
                name: "Acme Roofing",
                user: USER,
                passphrase: &passphrase,
            },
            NOW,
        )
        .expect("create tenant");
    let clock = ManualClock::new(NOW);
    store.set_wall_clock(Box::new(clock.clone()));
    Fixture {
        dir,
        data_dir,
        tenant_id: entry.tenant_id,
        store,
        recovery_key: recovery_key.reveal().to_owned(),
        clock,
    }
}

pub fn storm() -> Storm {
    Storm {
        id: StormId::generate(),
        event_id: "NWS-2026-0412".into(),
        name: "April hail".into(),
        started_at: NOW.plus_millis(-5 * 86_400_000),
        ended_at: Some(NOW.plus_millis(-4 * 86_400_000)),
        hail_size_in: 1.75,
        wind_mph: 60.0,
        affected_area: "Hailville county".into(),
        status: StormStatus::Active,
    }
}

pub fn property(storm: StormId, n: usize, address: &str) -> Property {
    Property {
        id: PropertyId::generate(),
        storm_id: storm,
        external_id: format!("P-{n}"),
        address: address.into(),
        latitude: 35.2,
        longitude: -97.4,
        roof_age_years: Some(14.0),
        roof_material: Some(RoofMaterial::AsphaltShingle),
        square_feet: Some(2_100.0),
        home_value: Some(Cents(32_500_000)),
        hail_size_in: Some(1.75),
        distance_to_core_km: Some(2.5),
        prior_claims: 0,
        owner_name: Some("Pat Owner".into()),
        owner_phone: None,
        owner_email: None,
        status: PropertyStatus::New,
    }
}

pub fn touch(property: &Property, user: UserId, device: DeviceId, notes: &str) -> JourneyTouch {
    JourneyTouch {
        id: TouchId::generate(),
        property_id: property.id,
        storm_id: property.storm_id,
        user_id: user,
        device_id: device,
        channel: Channel::DoorKnock,
        result: TouchResult::Talked,
        notes: notes.into(),
        occurred_at: NOW,
    }
}

pub fn outcome(property: &Property, converted: bool, cents: i64) -> Outcome {
    Outcome {
        id: OutcomeId::generate(),
        property_id: property.id,
        storm_id: property.storm_id,
        converted,
        contract_value: Cents(cents),
        occurred_at: NOW,
    }
}

pub fn decision(
    property: &Property,
    decision: Decision,
    by: UserId,
    at: Timestamp,
) -> PolicyDecision {
    PolicyDecision {
        id: DecisionId::generate(),
        property_id: property.id,
        storm_id: property.storm_id,
        decision,
        mode: PolicyMode::Moderate,
        uplift_score: Some(0.2),
        model_version: Some("m-1".into()),
        reason: None,
        is_override: false,
        decided_by: by,
        decided_at: at,
    }
}

pub fn score(property: &Property, uplift: f64) -> UpliftScore {
    UpliftScore {
        property_id: property.id,
        storm_id: property.storm_id,
        uplift,
        p_treat: 0.5,
        p_hold: (0.5 - uplift).clamp(0.0, 1.0),
        model_version: "m-1".into(),
        trained_at: NOW,
        data_watermark: 10,
    }
}

/// A pulled server-owned record.
pub fn pulled<T: serde::Serialize>(
    entity: sync_protocol::Entity,
    id: uuid::Uuid,
    record: &T,
) -> sync_protocol::PulledChange {
    sync_protocol::PulledChange {
        entity,
        entity_id: id,
        op: sync_protocol::ChangeOp::Insert,
        record: serde_json::to_value(record).expect("serialises"),
        field_clocks: None,
    }
}
