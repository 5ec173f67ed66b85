//! Reads and the inbox: the ranked property list, a timeline, a crew's day, status, refused changes.

use domain::*;
use local_store::{PropertyQuery, TimelineEntry};
use serde_json::{Value, json};

use super::{Context, parse_id, parse_word};
use crate::cli::{InboxCommand, PropertiesArgs};
use crate::error::CliError;
use crate::output::Report;

pub fn properties(context: &Context, args: PropertiesArgs) -> Result<Report, CliError> {
    let query = PropertyQuery {
        storm_id: args
            .storm
            .as_deref()
            .map(|s| parse_id("storm", s))
            .transpose()?,
        territory_id: args
            .territory
            .as_deref()
            .map(|t| parse_id("territory", t))
            .transpose()?,
        status: args
            .status
            .as_deref()
            .map(|s| parse_word("status", s))
            .transpose()?,
        decision: args
            .decision
            .as_deref()
            .map(|d| parse_word("decision", d))
            .transpose()?,
        search: args.search,
        limit: args.limit,
        offset: args.offset,
    };
    let store = context.open()?;
    let rows = store.ranked_properties(&query)?;
    let lines = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            format!(
                "{:>4}  {:>7}  {:<5}  {:<14}  {:<12}  {}  ({})",
                query.offset as usize + i + 1,
                r.uplift
                    .map_or_else(|| "-".to_owned(), |u| format!("{u:+.3}")),
                r.latest_decision.map_or("-", Decision::as_str),
                r.property.status.as_str(),
                r.property.external_id,
                r.property.address,
                r.property.id
            )
        })
        .collect::<Vec<_>>();
    Ok(Report::new(json!({ "properties": rows })).lines(lines))
}

pub fn timeline(context: &Context, property: &str) -> Result<Report, CliError> {
    let id: PropertyId = parse_id("property", property)?;
    let store = context.open()?;
    if store.property(id)?.is_none() {
        return Err(CliError::new(
            "store.not_found",
            format!("property {id} not found"),
        ));
    }
    let entries = store.timeline(id)?;
    let lines = entries
        .iter()
        .map(|e| match e {
            TimelineEntry::Touch(t) => format!(
                "{}  touch     {} / {}  {}",
                t.occurred_at, t.channel, t.result, t.notes
            ),
            TimelineEntry::Outcome(o) => format!(
                "{}  outcome   converted={} value={}",
                o.occurred_at, o.converted, o.contract_value
            ),
            TimelineEntry::Decision(d) => format!(
                "{}  decision  {} ({}){}",
                d.decided_at,
                d.decision,
                d.mode,
                d.reason
                    .as_deref()
                    .map(|r| format!(" override: {r}"))
                    .unwrap_or_default()
            ),
        })
        .collect::<Vec<_>>();
    Ok(Report::new(json!({ "property_id": id, "timeline": entries })).lines(lines))
}

pub fn day(context: &Context, date: &str, crew: Option<&str>) -> Result<Report, CliError> {
    let crew: Option<CrewId> = crew.map(|c| parse_id("crew", c)).transpose()?;
    let store = context.open()?;
    let summary = store.crew_day(crew, date)?;
    let mut report = Report::new(json!(summary)).line(format!(
        "{}: {} touches, {} conversions worth {}",
        summary.day, summary.touches, summary.conversions, summary.contract_value
    ));
    for user in &summary.users {
        report = report.line(format!(
            "  {}: {} touches on {} properties, {} signed; channels {:?}; results {:?}",
            user.user_name.as_deref().unwrap_or(&user.user_id),
            user.touches,
            user.properties,
            user.signed,
            user.by_channel,
            user.by_result
        ));
    }
    Ok(report)
}

pub fn status(context: &Context) -> Result<Report, CliError> {
    let store = context.open()?;
    let info = store.info();
    let counts = store.record_counts()?;
    let pending = store.pending_counts()?;
    let sync = store.sync_state()?;
    let json = json!({
        "tenant_id": info.tenant_id,
        "tenant_name": info.tenant_name,
        "device_id": info.device_id,
        "database": info.database.display().to_string(),
        "user": store.unlocked_user(),
        "counts": counts,
        "outbox": pending,
        "sync": sync,
    });
    Ok(Report::new(json)
        .line(format!(
            "tenant   {} ({})",
            info.tenant_name, info.tenant_id
        ))
        .line(format!("file     {}", info.database.display()))
        .line(format!(
            "records  {} storms, {} properties ({} scored), {} touches, {} outcomes, {} decisions",
            counts.storms,
            counts.properties,
            counts.scored_properties,
            counts.touches,
            counts.outcomes,
            counts.decisions
        ))
        .line(format!(
            "outbox   {} pending{}, {} refused (see `inbox list`)",
            pending.pending,
            pending
                .oldest_pending_age_ms
                .map(|ms| format!(", oldest {} s old", ms / 1000))
                .unwrap_or_default(),
            pending.refused
        ))
        .line(format!(
            "sync     cursor {}, watermark {}",
            sync.cursor.as_deref().unwrap_or("none"),
            sync.watermark.map_or("none".into(), |w| w.to_string())
        )))
}

pub fn inbox(context: &Context, command: InboxCommand) -> Result<Report, CliError> {
    let mut store = context.open()?;
    match command {
        InboxCommand::List => {
            let items = store.inbox()?;
            let lines = items
                .iter()
                .map(|i| {
                    format!(
                        "{}  {} {} {}  [{}] {}",
                        i.change.id,
                        i.change.op.as_str(),
                        i.change.entity.as_str(),
                        i.change.entity_id,
                        i.code,
                        i.reason
                    )
                })
                .collect::<Vec<_>>();
            Ok(Report::new(json!({ "inbox": items })).lines(lines))
        }
        InboxCommand::Retry { change } => {
            let id: ChangeId = parse_id("change", &change)?;
            store.retry_refused(id)?;
            Ok(Report::new(json!({ "change_id": id, "retried": true }))
                .line(format!("change {id} queued again")))
        }
        InboxCommand::Discard { change } => {
            let id: ChangeId = parse_id("change", &change)?;
            store.discard_refused(id)?;
            Ok(Report::new(json!({ "change_id": id, "discarded": true }))
                .line(format!("change {id} discarded and undone locally")))
        }
        InboxCommand::Edit { change, payload } => {
            let id: ChangeId = parse_id("change", &change)?;
            let payload: Value = serde_json::from_str(&payload)
                .map_err(|e| CliError::invalid_argument("payload", e))?;
            let new_id = store.edit_refused(id, payload)?;
            Ok(
                Report::new(json!({ "change_id": id, "new_change_id": new_id }))
                    .line(format!("change {id} replaced by {new_id}, queued")),
            )
        }
    }
}
