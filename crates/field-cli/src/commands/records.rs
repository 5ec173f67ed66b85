//! Writes: storms, properties (one, a CSV import, an update), journey touches, outcomes and decisions.
//! Each goes through the store, which validates it and queues its change in the same transaction.

use desktop_core::policy::{ModeSource, StormMode, decide_offline, storm_mode};
use domain::*;
use local_store::{PropertyUpdate, TenantStore};
use serde_json::json;

use super::{Context, import, parse_id, parse_word};
use crate::cli::{
    DecisionCommand, JourneyCommand, OutcomeCommand, PropertyArgs, PropertyCommand, StormCommand,
};
use crate::error::CliError;
use crate::input;
use crate::output::Report;

fn written(kind: &str, id: impl std::fmt::Display, change: ChangeId) -> Report {
    Report::new(json!({ "id": id.to_string(), "change_id": change }))
        .line(format!("{kind} {id} saved (change {change} pending)"))
}

fn time_or_now(store: &TenantStore, name: &str, text: Option<&str>) -> Result<Timestamp, CliError> {
    text.map_or_else(|| Ok(store.now()), |t| input::timestamp(name, t))
}

fn existing_property(store: &TenantStore, text: &str) -> Result<Property, CliError> {
    let id: PropertyId = parse_id("property", text)?;
    store
        .property(id)?
        .ok_or_else(|| CliError::new("store.not_found", format!("property {id} not found")))
}

/// The user id the unlocking local user acts as.
fn acting_user(store: &TenantStore) -> Result<UserId, CliError> {
    let label = store
        .unlocked_user()
        .ok_or_else(|| CliError::new("cli.no_user", "no local user is unlocked"))?;
    store
        .local_user_id(label)?
        .ok_or_else(|| CliError::new("cli.no_user", format!("local user {label} has no user id")))
}

pub fn storm(context: &Context, command: StormCommand) -> Result<Report, CliError> {
    let mut store = context.open()?;
    match command {
        StormCommand::Add(args) => {
            let storm = Storm {
                id: StormId::generate(),
                event_id: args.event_id,
                name: args.name,
                started_at: time_or_now(&store, "started-at", args.started_at.as_deref())?,
                ended_at: args
                    .ended_at
                    .as_deref()
                    .map(|t| input::timestamp("ended-at", t))
                    .transpose()?,
                hail_size_in: args.hail_in,
                wind_mph: args.wind_mph,
                affected_area: args.area,
                status: parse_word("status", &args.status)?,
            };
            let change = store.add_storm(&storm)?;
            Ok(written("storm", storm.id, change))
        }
        StormCommand::List => {
            let storms = store.storms()?;
            let lines = storms
                .iter()
                .map(|s| format!("{}  {}  {}  {}", s.id, s.event_id, s.status, s.name))
                .collect::<Vec<_>>();
            Ok(Report::new(json!({ "storms": storms })).lines(lines))
        }
    }
}

fn property_from_args(args: PropertyArgs) -> Result<Property, CliError> {
    Ok(Property {
        id: PropertyId::generate(),
        storm_id: parse_id("storm", &args.storm)?,
        external_id: args.external_id,
        address: args.address,
        latitude: args.latitude,
        longitude: args.longitude,
        roof_age_years: args.roof_age_years,
        roof_material: args
            .roof_material
            .as_deref()
            .map(|m| parse_word("roof-material", m))
            .transpose()?,
        square_feet: args.square_feet,
        home_value: args.home_value_cents.map(Cents),
        hail_size_in: args.hail_size_in,
        distance_to_core_km: args.distance_to_core_km,
        prior_claims: args.prior_claims,
        owner_name: args.owner_name,
        owner_phone: args.owner_phone,
        owner_email: args.owner_email,
        status: parse_word("status", &args.status)?,
    })
}

pub fn property(context: &Context, command: PropertyCommand) -> Result<Report, CliError> {
    match command {
        PropertyCommand::Add(args) => {
            let property = property_from_args(args)?;
            let mut store = context.open()?;
            ensure_storm(&store, property.storm_id)?;
            let change = store.add_property(&property)?;
            Ok(written("property", property.id, change))
        }
        PropertyCommand::Import { file, storm } => {
            let storm_id: StormId = parse_id("storm", &storm)?;
            // Read and check the whole file before unlocking: a bad file costs no key derivation.
            let properties = import::read_properties(&file, storm_id, Timestamp::now())?;
            let mut store = context.open()?;
            ensure_storm(&store, storm_id)?;
            let changes = store.import_properties(&properties)?;
            Ok(
                Report::new(json!({ "imported": changes.len(), "storm_id": storm_id })).line(
                    format!(
                        "imported {} properties into storm {storm_id}",
                        changes.len()
                    ),
                ),
            )
        }
        PropertyCommand::Update {
            property,
            status,
            owner_name,
            owner_phone,
            owner_email,
        } => {
            let id: PropertyId = parse_id("property", &property)?;
            let update = PropertyUpdate {
                status: status
                    .as_deref()
                    .map(|s| parse_word("status", s))
                    .transpose()?,
                // An empty value clears the field.
                owner_name: owner_name.map(|v| Some(v).filter(|v| !v.is_empty())),
                owner_phone: owner_phone.map(|v| Some(v).filter(|v| !v.is_empty())),
                owner_email: owner_email.map(|v| Some(v).filter(|v| !v.is_empty())),
            };
            let mut store = context.open()?;
            let change = store.update_property(id, &update)?;
            Ok(written("property", id, change))
        }
    }
}

fn ensure_storm(store: &TenantStore, storm: StormId) -> Result<(), CliError> {
    if store.storms()?.iter().any(|s| s.id == storm) {
        Ok(())
    } else {
        Err(CliError::new(
            "store.not_found",
            format!("storm {storm} not found; add it with `storm add`"),
        ))
    }
}

pub fn journey(context: &Context, command: JourneyCommand) -> Result<Report, CliError> {
    let JourneyCommand::Add {
        property,
        channel,
        result,
        notes,
        at,
    } = command;
    let channel: Channel = parse_word("channel", &channel)?;
    let result: TouchResult = parse_word("result", &result)?;
    let mut store = context.open()?;
    let property = existing_property(&store, &property)?;
    let touch = JourneyTouch {
        id: TouchId::generate(),
        property_id: property.id,
        storm_id: property.storm_id,
        user_id: acting_user(&store)?,
        device_id: store.device_id(),
        channel,
        result,
        notes,
        occurred_at: time_or_now(&store, "at", at.as_deref())?,
    };
    let change = store.add_touch(&touch)?;
    Ok(written("touch", touch.id, change))
}

pub fn outcome(context: &Context, command: OutcomeCommand) -> Result<Report, CliError> {
    let OutcomeCommand::Add {
        property,
        converted,
        value_cents,
        at,
    } = command;
    let mut store = context.open()?;
    let property = existing_property(&store, &property)?;
    let outcome = Outcome {
        id: OutcomeId::generate(),
        property_id: property.id,
        storm_id: property.storm_id,
        converted,
        contract_value: Cents(value_cents),
        occurred_at: time_or_now(&store, "at", at.as_deref())?,
    };
    let change = store.add_outcome(&outcome)?;
    Ok(written("outcome", outcome.id, change))
}

/// The mode's line for people: which mode, and where it came from.
fn mode_line(chosen: &StormMode) -> String {
    let from = match (chosen.source, chosen.office_mode) {
        (ModeSource::Caller, Some(office)) => {
            format!("from --mode (the office's synced mode is {office})")
        }
        (ModeSource::Caller, None) => "from --mode".to_owned(),
        (ModeSource::Office, _) => "set by the office for this storm, as last synced".to_owned(),
        (ModeSource::Default, _) => {
            "the default: the office has set none for this storm (or it is not synced yet)"
                .to_owned()
        }
    };
    format!("policy mode {} ({from})", chosen.mode)
}

fn mode_json(chosen: &StormMode) -> serde_json::Value {
    json!({
        "mode": chosen.mode,
        "source": chosen.source.as_str(),
        "office_mode": chosen.office_mode,
        "office_set_at": chosen.office_set_at,
    })
}

fn mode_flag(mode: Option<String>) -> Result<Option<PolicyMode>, CliError> {
    mode.map(|m| parse_word::<PolicyMode>("mode", &m))
        .transpose()
}

pub fn decision(context: &Context, command: DecisionCommand) -> Result<Report, CliError> {
    match command {
        DecisionCommand::Add {
            property,
            decision,
            mode,
            is_override,
            reason,
        } => add_decision(context, property, decision, mode, is_override, reason),
        DecisionCommand::Plan {
            storm,
            mode,
            capacity,
        } => plan_decisions(context, storm, mode, capacity),
    }
}

fn add_decision(
    context: &Context,
    property: String,
    decision: String,
    mode: Option<String>,
    is_override: bool,
    reason: Option<String>,
) -> Result<Report, CliError> {
    let decision: Decision = parse_word("decision", &decision)?;
    let explicit = mode_flag(mode)?;
    let mut store = context.open()?;
    let property = existing_property(&store, &property)?;
    let chosen = storm_mode(&store, property.storm_id, explicit)?;
    // The decision records the score and model it was based on, when the property is scored.
    let score = store.score(property.id)?;
    let record = PolicyDecision {
        id: DecisionId::generate(),
        property_id: property.id,
        storm_id: property.storm_id,
        decision,
        mode: chosen.mode,
        uplift_score: score.as_ref().map(|s| s.uplift),
        model_version: score.map(|s| s.model_version),
        reason,
        is_override,
        decided_by: acting_user(&store)?,
        decided_at: store.now(),
    };
    let change = store.add_decision(&record)?;
    let mut report = written("decision", record.id, change).line(mode_line(&chosen));
    report.json["policy"] = mode_json(&chosen);
    Ok(report)
}

fn plan_decisions(
    context: &Context,
    storm: String,
    mode: Option<String>,
    capacity: Option<usize>,
) -> Result<Report, CliError> {
    let storm: StormId = parse_id("storm", &storm)?;
    let explicit = mode_flag(mode)?;
    let mut store = context.open()?;
    let user = acting_user(&store)?;
    let run = decide_offline(&mut store, storm, explicit, capacity, user)
        .map_err(|e| CliError::new(&format!("policy.{}", e.code()), e.to_string()))?;
    let treat = run
        .decisions
        .iter()
        .filter(|d| d.decision == Decision::Treat)
        .count();
    let hold = run.decisions.len() - treat;
    let model = run.decisions.first().and_then(|d| d.model_version.clone());
    Ok(Report::new(json!({
        "storm_id": storm,
        "policy": mode_json(&run.mode),
        "decisions": run.decisions.len(),
        "treat": treat,
        "hold": hold,
        "model_version": model,
    }))
    .line(mode_line(&run.mode))
    .line(format!(
        "{} decisions for storm {storm}: {treat} treat, {hold} hold (model {}); pending until the next sync",
        run.decisions.len(),
        model.as_deref().unwrap_or("none")
    )))
}
