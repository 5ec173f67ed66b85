//! Every record of the product brief as a typed struct. Each belongs to one tenant and validates itself.

use serde::{Deserialize, Serialize};

use crate::enums::*;
use crate::ids::*;
use crate::time::{Cents, Timestamp};
use crate::validation::{MAX_LONG_TEXT, MAX_SHORT_TEXT, Validate, ValidationError, check};

/// A contractor on the platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub slug: String,
    pub plan: PlanTier,
    pub status: TenantStatus,
    pub created_at: Timestamp,
}

impl Validate for Tenant {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError> {
        check::required_text("name", &self.name, MAX_SHORT_TEXT)?;
        check::slug("slug", &self.slug)?;
        check::timestamp("created_at", self.created_at, now)
    }
}

/// A person who signs in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub crew_id: Option<CrewId>,
}

impl Validate for User {
    fn validate(&self, _now: Timestamp) -> Result<(), ValidationError> {
        check::email("email", &self.email)?;
        check::required_text("name", &self.name, MAX_SHORT_TEXT)
    }
}

/// A team with a chief.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crew {
    pub id: CrewId,
    pub name: String,
    pub chief_id: Option<UserId>,
}

impl Validate for Crew {
    fn validate(&self, _now: Timestamp) -> Result<(), ValidationError> {
        check::required_text("name", &self.name, MAX_SHORT_TEXT)
    }
}

/// A registered laptop of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    pub id: DeviceId,
    pub user_id: UserId,
    pub name: String,
    pub status: DeviceStatus,
    pub registered_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl Validate for Device {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError> {
        check::required_text("name", &self.name, MAX_SHORT_TEXT)?;
        check::timestamp("registered_at", self.registered_at, now)?;
        match (self.status, self.revoked_at) {
            (DeviceStatus::Revoked, None) => Err(check::inconsistent(
                "revoked_at",
                "a revoked device needs revoked_at",
            )),
            (DeviceStatus::Active, Some(_)) => Err(check::inconsistent(
                "revoked_at",
                "an active device has no revoked_at",
            )),
            (_, Some(at)) => check::timestamp("revoked_at", at, now),
            _ => Ok(()),
        }
    }
}

/// A hail or wind event that crews canvass after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storm {
    pub id: StormId,
    /// The event's external id (e.g. the weather service's event number).
    pub event_id: String,
    pub name: String,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    /// Largest hail diameter, inches.
    pub hail_size_in: f64,
    /// Peak wind speed, mph.
    pub wind_mph: f64,
    /// The affected area: a description or a GeoJSON polygon.
    pub affected_area: String,
    pub status: StormStatus,
}

impl Validate for Storm {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError> {
        check::required_text("event_id", &self.event_id, MAX_SHORT_TEXT)?;
        check::required_text("name", &self.name, MAX_SHORT_TEXT)?;
        check::timestamp("started_at", self.started_at, now)?;
        if let Some(end) = self.ended_at {
            check::timestamp("ended_at", end, now)?;
            if end < self.started_at {
                return Err(check::inconsistent(
                    "ended_at",
                    "a storm cannot end before it starts",
                ));
            }
        }
        check::range("hail_size_in", self.hail_size_in, 0.0, 10.0)?;
        check::range("wind_mph", self.wind_mph, 0.0, 300.0)?;
        check::bounded_text("affected_area", &self.affected_area, 100_000)
    }
}

/// A home in a storm's affected area.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Property {
    pub id: PropertyId,
    pub storm_id: StormId,
    pub external_id: String,
    pub address: String,
    pub latitude: f64,
    pub longitude: f64,
    pub roof_age_years: Option<f64>,
    pub roof_material: Option<RoofMaterial>,
    pub square_feet: Option<f64>,
    pub home_value: Option<Cents>,
    /// Hail diameter at the property, inches.
    pub hail_size_in: Option<f64>,
    /// Distance to the storm core, kilometres.
    pub distance_to_core_km: Option<f64>,
    pub prior_claims: u32,
    pub owner_name: Option<String>,
    pub owner_phone: Option<String>,
    pub owner_email: Option<String>,
    pub status: PropertyStatus,
}

impl Validate for Property {
    fn validate(&self, _now: Timestamp) -> Result<(), ValidationError> {
        check::required_text("external_id", &self.external_id, MAX_SHORT_TEXT)?;
        check::required_text("address", &self.address, MAX_SHORT_TEXT)?;
        check::range("latitude", self.latitude, -90.0, 90.0)?;
        check::range("longitude", self.longitude, -180.0, 180.0)?;
        check::optional_range("roof_age_years", self.roof_age_years, 0.0, 200.0)?;
        check::optional_range("square_feet", self.square_feet, 0.0, 1_000_000.0)?;
        if let Some(v) = self.home_value {
            check::non_negative_money("home_value", v)?;
        }
        check::optional_range("hail_size_in", self.hail_size_in, 0.0, 10.0)?;
        check::optional_range(
            "distance_to_core_km",
            self.distance_to_core_km,
            0.0,
            5_000.0,
        )?;
        if self.prior_claims > 1_000 {
            return Err(ValidationError::new(
                crate::ValidationErrorCode::OutOfRange,
                "prior_claims",
                "prior_claims must be at most 1000",
            ));
        }
        check::optional_text("owner_name", self.owner_name.as_deref(), MAX_SHORT_TEXT)?;
        check::optional_text("owner_phone", self.owner_phone.as_deref(), 64)?;
        if let Some(email) = self.owner_email.as_deref().filter(|e| !e.is_empty()) {
            check::email("owner_email", email)?;
        }
        Ok(())
    }
}

/// A named area of a storm worked by a crew.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Territory {
    pub id: TerritoryId,
    pub storm_id: StormId,
    pub name: String,
    pub crew_id: Option<CrewId>,
}

impl Validate for Territory {
    fn validate(&self, _now: Timestamp) -> Result<(), ValidationError> {
        check::required_text("name", &self.name, MAX_SHORT_TEXT)
    }
}

/// Which crew or user works a property for a storm (server-owned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    pub id: AssignmentId,
    pub storm_id: StormId,
    pub property_id: PropertyId,
    pub territory_id: Option<TerritoryId>,
    pub crew_id: Option<CrewId>,
    pub user_id: Option<UserId>,
}

impl Validate for Assignment {
    fn validate(&self, _now: Timestamp) -> Result<(), ValidationError> {
        if self.territory_id.is_none() && self.crew_id.is_none() && self.user_id.is_none() {
            return Err(check::inconsistent(
                "assignment",
                "an assignment names a territory, a crew or a user",
            ));
        }
        Ok(())
    }
}

/// A storm's randomised experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub id: ExperimentId,
    pub storm_id: StormId,
    /// Share of properties in the treatment arm, 0..1; the rest is the control holdout.
    pub treatment_share: f64,
    /// Seed of the deterministic arm hash.
    pub seed: u64,
    pub started_at: Timestamp,
}

impl Validate for Experiment {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError> {
        // A holdout is always kept, and a treatment arm must exist, so both ends are open.
        if !(self.treatment_share > 0.0 && self.treatment_share < 1.0) {
            return Err(ValidationError::new(
                crate::ValidationErrorCode::OutOfRange,
                "treatment_share",
                "treatment_share must be strictly between 0 and 1 so both arms exist",
            ));
        }
        check::timestamp("started_at", self.started_at, now)
    }
}

/// A property's arm in an experiment (fixed once made).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmAssignment {
    pub experiment_id: ExperimentId,
    pub property_id: PropertyId,
    pub arm: Arm,
    pub assigned_at: Timestamp,
}

impl Validate for ArmAssignment {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError> {
        check::timestamp("assigned_at", self.assigned_at, now)
    }
}

/// One touch of a property (append-only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JourneyTouch {
    pub id: TouchId,
    pub property_id: PropertyId,
    pub storm_id: StormId,
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub channel: Channel,
    pub result: TouchResult,
    pub notes: String,
    pub occurred_at: Timestamp,
}

impl Validate for JourneyTouch {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError> {
        check::bounded_text("notes", &self.notes, MAX_LONG_TEXT)?;
        check::timestamp("occurred_at", self.occurred_at, now)
    }
}

/// Whether a property converted, and for how much.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    pub id: OutcomeId,
    pub property_id: PropertyId,
    pub storm_id: StormId,
    pub converted: bool,
    pub contract_value: Cents,
    pub occurred_at: Timestamp,
}

impl Validate for Outcome {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError> {
        check::non_negative_money("contract_value", self.contract_value)?;
        if !self.converted && self.contract_value.0 != 0 {
            return Err(check::inconsistent(
                "contract_value",
                "an outcome that did not convert has no contract value",
            ));
        }
        check::timestamp("occurred_at", self.occurred_at, now)
    }
}

/// Treat or hold for a property, with what it was based on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDecision {
    pub id: DecisionId,
    pub property_id: PropertyId,
    pub storm_id: StormId,
    pub decision: Decision,
    pub mode: PolicyMode,
    pub uplift_score: Option<f64>,
    pub model_version: Option<String>,
    /// Required when the decision overrides the policy.
    pub reason: Option<String>,
    pub is_override: bool,
    pub decided_by: UserId,
    pub decided_at: Timestamp,
}

impl Validate for PolicyDecision {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError> {
        check::optional_range("uplift_score", self.uplift_score, -1.0, 1.0)?;
        check::optional_text("model_version", self.model_version.as_deref(), 64)?;
        check::optional_text("reason", self.reason.as_deref(), MAX_LONG_TEXT)?;
        if self.is_override && self.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(ValidationError::new(
                crate::ValidationErrorCode::Required,
                "reason",
                "an override needs a reason",
            ));
        }
        check::timestamp("decided_at", self.decided_at, now)
    }
}

/// A storm's policy mode as the office set it (server-owned): how far down the uplift ranking the
/// laptops treat when they decide offline. A storm without one is decided in the product's default mode,
/// moderate. On the wire its entity id is the storm id (one policy per storm).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StormPolicy {
    pub storm_id: StormId,
    pub mode: PolicyMode,
    pub updated_at: Timestamp,
    /// The admin who set it (`None` only if that user's row is gone).
    pub updated_by: Option<UserId>,
}

impl Validate for StormPolicy {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError> {
        check::timestamp("updated_at", self.updated_at, now)
    }
}

/// A property's uplift score with its provenance (server-owned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpliftScore {
    pub property_id: PropertyId,
    pub storm_id: StormId,
    /// P(convert | treat) − P(convert | hold).
    pub uplift: f64,
    pub p_treat: f64,
    pub p_hold: f64,
    pub model_version: String,
    pub trained_at: Timestamp,
    /// The point in the tenant's data the model was trained on (the server's commit-ordered cursor).
    pub data_watermark: i64,
}

impl Validate for UpliftScore {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError> {
        check::range("uplift", self.uplift, -1.0, 1.0)?;
        check::range("p_treat", self.p_treat, 0.0, 1.0)?;
        check::range("p_hold", self.p_hold, 0.0, 1.0)?;
        check::required_text("model_version", &self.model_version, 64)?;
        check::timestamp("trained_at", self.trained_at, now)?;
        if self.data_watermark < 0 {
            return Err(check::inconsistent(
                "data_watermark",
                "data_watermark cannot be negative",
            ));
        }
        Ok(())
    }
}

/// A trained uplift model in the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub id: ModelId,
    pub version: String,
    pub learner: String,
    pub trained_at: Timestamp,
    pub training_rows: u64,
    pub data_watermark: i64,
    pub qini: f64,
    pub auuc: f64,
    pub uplift_at_30: f64,
}

impl Validate for Model {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError> {
        check::required_text("version", &self.version, 64)?;
        check::required_text("learner", &self.learner, 64)?;
        check::timestamp("trained_at", self.trained_at, now)
    }
}

/// Metered units for billing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageEvent {
    pub id: UsageEventId,
    pub kind: UsageKind,
    pub units: i64,
    pub occurred_at: Timestamp,
}

impl Validate for UsageEvent {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError> {
        if self.units < 0 {
            return Err(ValidationError::new(
                crate::ValidationErrorCode::Negative,
                "units",
                "units cannot be negative",
            ));
        }
        check::timestamp("occurred_at", self.occurred_at, now)
    }
}

/// One data-health check's reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataQualityMetric {
    pub id: QualityMetricId,
    pub storm_id: Option<StormId>,
    pub check: String,
    pub value: f64,
    pub expected_low: f64,
    pub expected_high: f64,
    pub status: QualityStatus,
    pub runbook: String,
    pub measured_at: Timestamp,
}

impl Validate for DataQualityMetric {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError> {
        check::required_text("check", &self.check, 64)?;
        if self.expected_low > self.expected_high {
            return Err(check::inconsistent(
                "expected_low",
                "expected_low exceeds expected_high",
            ));
        }
        check::bounded_text("runbook", &self.runbook, MAX_LONG_TEXT)?;
        check::timestamp("measured_at", self.measured_at, now)
    }
}

/// Who did what, when, from which device, in which request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    pub id: AuditId,
    pub actor: Option<UserId>,
    pub action: String,
    pub target: String,
    pub device_id: Option<DeviceId>,
    pub request_id: Option<String>,
    pub at: Timestamp,
}

impl Validate for AuditEntry {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError> {
        check::required_text("action", &self.action, 128)?;
        check::bounded_text("target", &self.target, MAX_SHORT_TEXT)?;
        check::optional_text("request_id", self.request_id.as_deref(), 128)?;
        check::timestamp("at", self.at, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ValidationErrorCode as C;

    const NOW: Timestamp = Timestamp(1_790_000_000_000);

    fn property() -> Property {
        Property {
            id: PropertyId::generate(),
            storm_id: StormId::generate(),
            external_id: "P-1".into(),
            address: "12 Elm St, Hailville".into(),
            latitude: 35.2,
            longitude: -97.4,
            roof_age_years: Some(14.0),
            roof_material: Some(RoofMaterial::AsphaltShingle),
            square_feet: Some(2_100.0),
            home_value: Some(Cents(32_500_000)),
            hail_size_in: Some(1.75),
            distance_to_core_km: Some(2.5),
            prior_claims: 1,
            owner_name: Some("Pat Owner".into()),
            owner_phone: None,
            owner_email: Some("pat@example.com".into()),
            status: PropertyStatus::New,
        }
    }

    fn touch() -> JourneyTouch {
        JourneyTouch {
            id: TouchId::generate(),
            property_id: PropertyId::generate(),
            storm_id: StormId::generate(),
            user_id: UserId::generate(),
            device_id: DeviceId::generate(),
            channel: Channel::DoorKnock,
            result: TouchResult::Talked,
            notes: "Owner home, roof visibly damaged".into(),
            occurred_at: NOW,
        }
    }

    fn code_of<T: Validate>(record: &T) -> (C, String) {
        let err = record.validate(NOW).expect_err("invalid record");
        (err.code, err.field)
    }

    #[test]
    fn valid_records_pass() {
        assert_eq!(property().validate(NOW), Ok(()));
        assert_eq!(touch().validate(NOW), Ok(()));
    }

    #[test]
    fn property_errors_name_field_and_code() {
        type Mutation = Box<dyn Fn(&mut Property)>;
        let cases: Vec<(Mutation, C, &str)> = vec![
            (Box::new(|p| p.latitude = 91.0), C::OutOfRange, "latitude"),
            (
                Box::new(|p| p.longitude = -180.5),
                C::OutOfRange,
                "longitude",
            ),
            (
                Box::new(|p| p.latitude = f64::NAN),
                C::OutOfRange,
                "latitude",
            ),
            (
                Box::new(|p| p.address = "  ".into()),
                C::Required,
                "address",
            ),
            (
                Box::new(|p| p.external_id = String::new()),
                C::Required,
                "external_id",
            ),
            (
                Box::new(|p| p.address = "x".repeat(MAX_SHORT_TEXT + 1)),
                C::TooLong,
                "address",
            ),
            (
                Box::new(|p| p.address = "a\0b".into()),
                C::InvalidFormat,
                "address",
            ),
            (
                Box::new(|p| p.home_value = Some(Cents(-1))),
                C::Negative,
                "home_value",
            ),
            (
                Box::new(|p| p.roof_age_years = Some(-2.0)),
                C::OutOfRange,
                "roof_age_years",
            ),
            (
                Box::new(|p| p.square_feet = Some(f64::INFINITY)),
                C::OutOfRange,
                "square_feet",
            ),
            (
                Box::new(|p| p.hail_size_in = Some(11.0)),
                C::OutOfRange,
                "hail_size_in",
            ),
            (
                Box::new(|p| p.distance_to_core_km = Some(-0.1)),
                C::OutOfRange,
                "distance_to_core_km",
            ),
            (
                Box::new(|p| p.prior_claims = 5_000),
                C::OutOfRange,
                "prior_claims",
            ),
            (
                Box::new(|p| p.owner_email = Some("nope".into())),
                C::InvalidFormat,
                "owner_email",
            ),
            (
                Box::new(|p| p.owner_phone = Some("9".repeat(65))),
                C::TooLong,
                "owner_phone",
            ),
        ];
        for (mutate, code, field) in cases {
            let mut p = property();
            mutate(&mut p);
            assert_eq!(code_of(&p), (code, field.to_owned()));
        }
    }

    #[test]
    fn touch_errors() {
        let mut t = touch();
        t.occurred_at = NOW.plus_millis(2 * 24 * 3600 * 1000);
        assert_eq!(code_of(&t), (C::InFuture, "occurred_at".into()));
        t.occurred_at = Timestamp(0);
        assert_eq!(code_of(&t), (C::TooOld, "occurred_at".into()));
        let mut t = touch();
        t.notes = "n".repeat(MAX_LONG_TEXT + 1);
        assert_eq!(code_of(&t), (C::TooLong, "notes".into()));
        // A laptop clock a few hours ahead is accepted.
        let mut t = touch();
        t.occurred_at = NOW.plus_millis(3 * 3600 * 1000);
        assert_eq!(t.validate(NOW), Ok(()));
    }

    #[test]
    fn outcome_errors() {
        let base = Outcome {
            id: OutcomeId::generate(),
            property_id: PropertyId::generate(),
            storm_id: StormId::generate(),
            converted: true,
            contract_value: Cents(1_450_000),
            occurred_at: NOW,
        };
        assert_eq!(base.validate(NOW), Ok(()));
        let mut o = base.clone();
        o.contract_value = Cents(-5);
        assert_eq!(code_of(&o), (C::Negative, "contract_value".into()));
        let mut o = base;
        o.converted = false;
        assert_eq!(code_of(&o), (C::Inconsistent, "contract_value".into()));
    }

    #[test]
    fn decision_override_needs_a_reason() {
        let mut d = PolicyDecision {
            id: DecisionId::generate(),
            property_id: PropertyId::generate(),
            storm_id: StormId::generate(),
            decision: Decision::Treat,
            mode: PolicyMode::Moderate,
            uplift_score: Some(0.12),
            model_version: Some("m-3".into()),
            reason: None,
            is_override: false,
            decided_by: UserId::generate(),
            decided_at: NOW,
        };
        assert_eq!(d.validate(NOW), Ok(()));
        d.is_override = true;
        assert_eq!(code_of(&d), (C::Required, "reason".into()));
        d.reason = Some("owner asked for an inspection".into());
        assert_eq!(d.validate(NOW), Ok(()));
        d.uplift_score = Some(1.5);
        assert_eq!(code_of(&d), (C::OutOfRange, "uplift_score".into()));
    }

    #[test]
    fn storm_experiment_score_and_device_errors() {
        let storm = Storm {
            id: StormId::generate(),
            event_id: "NWS-2026-0412".into(),
            name: "April hail".into(),
            started_at: NOW,
            ended_at: Some(Timestamp(NOW.0 - 1)),
            hail_size_in: 2.0,
            wind_mph: 70.0,
            affected_area: "Norman, OK".into(),
            status: StormStatus::Active,
        };
        assert_eq!(code_of(&storm), (C::Inconsistent, "ended_at".into()));
        let mut s = storm.clone();
        s.ended_at = None;
        s.wind_mph = -1.0;
        assert_eq!(code_of(&s), (C::OutOfRange, "wind_mph".into()));

        let e = Experiment {
            id: ExperimentId::generate(),
            storm_id: storm.id,
            treatment_share: 1.0,
            seed: 1,
            started_at: NOW,
        };
        assert_eq!(code_of(&e), (C::OutOfRange, "treatment_share".into()));

        let score = UpliftScore {
            property_id: PropertyId::generate(),
            storm_id: storm.id,
            uplift: 0.2,
            p_treat: 1.2,
            p_hold: 0.1,
            model_version: "m-1".into(),
            trained_at: NOW,
            data_watermark: 10,
        };
        assert_eq!(code_of(&score), (C::OutOfRange, "p_treat".into()));

        let device = Device {
            id: DeviceId::generate(),
            user_id: UserId::generate(),
            name: "Truck 4 laptop".into(),
            status: DeviceStatus::Revoked,
            registered_at: NOW,
            revoked_at: None,
        };
        assert_eq!(code_of(&device), (C::Inconsistent, "revoked_at".into()));

        let tenant = Tenant {
            id: TenantId::generate(),
            name: "Acme".into(),
            slug: "Acme!".into(),
            plan: PlanTier::Trial,
            status: TenantStatus::Active,
            created_at: NOW,
        };
        assert_eq!(code_of(&tenant), (C::InvalidFormat, "slug".into()));

        let user = User {
            id: UserId::generate(),
            email: "x".into(),
            name: "X".into(),
            role: Role::Viewer,
            crew_id: None,
        };
        assert_eq!(code_of(&user), (C::InvalidFormat, "email".into()));

        let usage = UsageEvent {
            id: UsageEventId::generate(),
            kind: UsageKind::Requests,
            units: -1,
            occurred_at: NOW,
        };
        assert_eq!(code_of(&usage), (C::Negative, "units".into()));

        let assignment = Assignment {
            id: AssignmentId::generate(),
            storm_id: storm.id,
            property_id: PropertyId::generate(),
            territory_id: None,
            crew_id: None,
            user_id: None,
        };
        assert_eq!(code_of(&assignment), (C::Inconsistent, "assignment".into()));
    }

    #[test]
    fn unknown_fields_are_refused_on_the_wire() {
        let mut json = serde_json::to_value(touch()).expect("serialises");
        json["sneaky"] = serde_json::json!(1);
        assert!(serde_json::from_value::<JourneyTouch>(json).is_err());
    }
}
