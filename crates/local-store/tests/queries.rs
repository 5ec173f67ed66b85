//! The field app's reads: the ranked, filtered property list; a property's timeline; a crew's day;
//! pending counts.

mod support;

use domain::*;
use local_store::{PropertyQuery, PropertyUpdate, TimelineEntry};
use support::*;
use sync_protocol::Entity;

struct Storm2 {
    f: Fixture,
    storm: Storm,
    props: Vec<Property>,
    territory: TerritoryId,
}

/// Six properties in one storm (four scored), one in another storm, one territory, two decisions.
fn ranked_fixture() -> Storm2 {
    let mut f = tenant();
    let s = storm();
    let other = Storm {
        id: StormId::generate(),
        ..storm()
    };
    f.store.add_storm(&s).expect("storm");
    f.store.add_storm(&other).expect("storm");
    let addresses = [
        "12 Elm Street",
        "14 ELM  street",
        "3 Oak Ave",
        "9 Pine Rd",
        "77 Élan Court",
        "5 Birch Ln",
    ];
    let props: Vec<Property> = addresses
        .iter()
        .enumerate()
        .map(|(i, a)| property(s.id, i, a))
        .collect();
    f.store.import_properties(&props).expect("import");
    f.store
        .add_property(&property(other.id, 1, "12 Elm Street"))
        .expect("other storm");
    let territory = TerritoryId::generate();
    let mut page = Vec::new();
    for (i, uplift) in [(0, 0.05), (1, 0.30), (2, -0.02), (3, 0.12)] {
        page.push(pulled(
            Entity::UpliftScore,
            props[i].id.0,
            &score(&props[i], uplift),
        ));
    }
    for i in [0, 1, 4] {
        let a = Assignment {
            id: AssignmentId::generate(),
            storm_id: s.id,
            property_id: props[i].id,
            territory_id: Some(territory),
            crew_id: None,
            user_id: None,
        };
        page.push(pulled(Entity::Assignment, a.id.0, &a));
    }
    f.store.apply_pulled_page(&page, "c", 1).expect("pull");
    let user = UserId::generate();
    f.store
        .add_decision(&decision(
            &props[1],
            Decision::Hold,
            user,
            NOW.plus_millis(-1_000),
        ))
        .expect("older");
    f.store
        .add_decision(&decision(&props[1], Decision::Treat, user, NOW))
        .expect("latest");
    f.store
        .add_decision(&decision(&props[3], Decision::Hold, user, NOW))
        .expect("hold");
    f.store
        .update_property(
            props[3].id,
            &PropertyUpdate {
                status: Some(PropertyStatus::Inspected),
                ..Default::default()
            },
        )
        .expect("status");
    Storm2 {
        f,
        storm: s,
        props,
        territory,
    }
}

fn ids(rows: &[local_store::RankedProperty]) -> Vec<String> {
    rows.iter()
        .map(|r| r.property.external_id.clone())
        .collect()
}

#[test]
fn properties_rank_by_uplift_with_unscored_last_and_filters_apply() {
    let Storm2 {
        f,
        storm,
        props,
        territory,
    } = ranked_fixture();
    let q = |query: PropertyQuery| {
        ids(&f
            .store
            .ranked_properties(&PropertyQuery {
                storm_id: Some(storm.id),
                ..query
            })
            .expect("query"))
    };
    let all = q(PropertyQuery::default());
    assert_eq!(&all[..4], ["P-1", "P-3", "P-0", "P-2"], "uplift descending");
    let mut unscored = all[4..].to_vec();
    unscored.sort();
    assert_eq!(unscored, ["P-4", "P-5"], "unscored last");

    assert_eq!(
        q(PropertyQuery {
            territory_id: Some(territory),
            ..Default::default()
        }),
        ["P-1", "P-0", "P-4"]
    );
    assert_eq!(
        q(PropertyQuery {
            status: Some(PropertyStatus::Inspected),
            ..Default::default()
        }),
        ["P-3"]
    );
    assert_eq!(
        q(PropertyQuery {
            decision: Some(Decision::Treat),
            ..Default::default()
        }),
        ["P-1"],
        "the latest decision counts"
    );
    assert_eq!(
        q(PropertyQuery {
            decision: Some(Decision::Hold),
            ..Default::default()
        }),
        ["P-3"]
    );
    assert_eq!(
        q(PropertyQuery {
            search: Some("elm   STREET".into()),
            ..Default::default()
        }),
        ["P-1", "P-0"],
        "case and spacing ignored"
    );
    assert_eq!(
        q(PropertyQuery {
            search: Some("élan".into()),
            ..Default::default()
        }),
        ["P-4"],
        "non-ASCII lowercase"
    );
    assert_eq!(
        q(PropertyQuery {
            search: Some("elm".into()),
            territory_id: Some(territory),
            decision: Some(Decision::Treat),
            ..Default::default()
        }),
        ["P-1"]
    );
    assert!(
        q(PropertyQuery {
            search: Some("nowhere".into()),
            ..Default::default()
        })
        .is_empty()
    );
    assert_eq!(
        q(PropertyQuery {
            limit: 2,
            offset: 1,
            ..Default::default()
        }),
        ["P-3", "P-0"]
    );

    let top = &f
        .store
        .ranked_properties(&PropertyQuery {
            storm_id: Some(storm.id),
            limit: 1,
            ..Default::default()
        })
        .expect("query")[0];
    assert_eq!(top.uplift, Some(0.30));
    assert_eq!(top.model_version.as_deref(), Some("m-1"));
    assert_eq!(top.latest_decision, Some(Decision::Treat));
    assert_eq!(top.property.id, props[1].id);
    let everywhere = f
        .store
        .ranked_properties(&PropertyQuery {
            search: Some("12 elm".into()),
            ..Default::default()
        })
        .expect("query");
    assert_eq!(
        everywhere.len(),
        2,
        "without a storm, every storm's properties"
    );
}

#[test]
fn a_property_arriving_after_its_score_picks_it_up() {
    let mut f = tenant();
    let s = storm();
    f.store.add_storm(&s).expect("storm");
    let p = property(s.id, 1, "1 Late St");
    f.store
        .apply_pulled_page(
            &[pulled(Entity::UpliftScore, p.id.0, &score(&p, 0.2))],
            "c",
            1,
        )
        .expect("score first");
    f.store
        .apply_pulled_page(&[pulled(Entity::Property, p.id.0, &p)], "c2", 2)
        .expect("then property");
    let rows = f
        .store
        .ranked_properties(&PropertyQuery::default())
        .expect("query");
    assert_eq!(rows[0].uplift, Some(0.2));
    assert_eq!(
        f.store.record_counts().expect("counts").scored_properties,
        1
    );
}

#[test]
fn the_timeline_merges_touches_outcomes_and_decisions_by_time() {
    let mut f = tenant();
    let s = storm();
    f.store.add_storm(&s).expect("storm");
    let p = property(s.id, 1, "1 Main St");
    f.store.add_property(&p).expect("property");
    let user = UserId::generate();
    let mut first = touch(&p, user, f.store.device_id(), "knock");
    first.occurred_at = NOW.plus_millis(-3_000);
    let mut won = outcome(&p, true, 900_000);
    won.occurred_at = NOW.plus_millis(-1_000);
    let d = decision(&p, Decision::Treat, user, NOW.plus_millis(-5_000));
    let mut last = touch(&p, user, f.store.device_id(), "signed");
    last.occurred_at = NOW;
    f.store.add_touch(&last).expect("touch");
    f.store.add_outcome(&won).expect("outcome");
    f.store.add_touch(&first).expect("touch");
    f.store.add_decision(&d).expect("decision");
    let timeline = f.store.timeline(p.id).expect("timeline");
    let kinds: Vec<&str> = timeline
        .iter()
        .map(|e| match e {
            TimelineEntry::Touch(_) => "touch",
            TimelineEntry::Outcome(_) => "outcome",
            TimelineEntry::Decision(_) => "decision",
        })
        .collect();
    assert_eq!(kinds, ["decision", "touch", "outcome", "touch"]);
    assert!(timeline.windows(2).all(|w| w[0].at() <= w[1].at()));
}

#[test]
fn the_timeline_finds_a_propertys_touches_on_every_day_and_no_one_elses() {
    // Touches are indexed by (UTC hour, property) (migration 0011): the timeline walks every hour.
    let mut f = tenant();
    let s = storm();
    f.store.add_storm(&s).expect("storm");
    let p = property(s.id, 1, "1 Main St");
    let other = property(s.id, 2, "2 Main St");
    f.store.add_property(&p).expect("property");
    f.store.add_property(&other).expect("property");
    let user = UserId::generate();
    const DAY: i64 = 86_400_000;
    let mut touches = Vec::new();
    for day in 0..40 {
        for (property, n) in [(&p, day % 3), (&other, 2)] {
            for k in 0..n {
                let mut t = touch(
                    property,
                    user,
                    f.store.device_id(),
                    &format!("day {day} #{k}"),
                );
                // Across midnight too: the last minute of a day and the first of the next.
                t.occurred_at = NOW.plus_millis(-day * DAY - k * (DAY / 2) - 60_000);
                touches.push(t);
            }
        }
    }
    f.store.add_touches(&touches).expect("touches");
    let mut expected: Vec<TouchId> = touches
        .iter()
        .filter(|t| t.property_id == p.id)
        .map(|t| t.id)
        .collect();
    let mut found: Vec<TouchId> = f
        .store
        .timeline(p.id)
        .expect("timeline")
        .iter()
        .filter_map(|e| match e {
            TimelineEntry::Touch(t) => Some(t.id),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 39, "40 days of 0, 1 or 2 touches");
    expected.sort();
    found.sort();
    assert_eq!(found, expected);
    assert!(
        f.store
            .timeline(property(s.id, 3, "nowhere").id)
            .expect("timeline")
            .is_empty()
    );
}

#[test]
fn a_crews_day_counts_touches_by_channel_and_result_per_user() {
    let mut f = tenant();
    let s = storm();
    f.store.add_storm(&s).expect("storm");
    let p1 = property(s.id, 1, "1 Main St");
    let p2 = property(s.id, 2, "2 Main St");
    f.store
        .import_properties(&[p1.clone(), p2.clone()])
        .expect("import");
    let crew = Crew {
        id: CrewId::generate(),
        name: "Crew A".into(),
        chief_id: None,
    };
    let kim = User {
        id: UserId::generate(),
        email: "kim@acme.example".into(),
        name: "Kim".into(),
        role: Role::FieldUser,
        crew_id: Some(crew.id),
    };
    let outsider = UserId::generate();
    f.store
        .apply_pulled_page(
            &[
                pulled(Entity::Crew, crew.id.0, &crew),
                pulled(Entity::User, kim.id.0, &kim),
            ],
            "c",
            1,
        )
        .expect("crew and user");
    let device = f.store.device_id();
    let mut signed = touch(&p2, kim.id, device, "");
    signed.channel = Channel::ContractSigned;
    signed.result = TouchResult::Signed;
    let mut yesterday = touch(&p1, kim.id, device, "");
    yesterday.occurred_at = NOW.plus_millis(-86_400_000);
    f.store
        .add_touches(&[
            touch(&p1, kim.id, device, ""),
            touch(&p2, kim.id, device, ""),
            signed,
            yesterday,
            touch(&p1, outsider, device, ""),
        ])
        .expect("touches");
    f.store
        .add_outcome(&outcome(&p2, true, 1_500_000))
        .expect("outcome");
    let day = local_store::utc_day_range("2026-09-21").expect("date");
    assert!(
        day.0 <= NOW.millis() && NOW.millis() < day.1,
        "NOW is on 2026-09-21 UTC"
    );

    let summary = f
        .store
        .crew_day(Some(crew.id), "2026-09-21")
        .expect("summary");
    assert_eq!(summary.touches, 3);
    assert_eq!(summary.users.len(), 1);
    let k = &summary.users[0];
    assert_eq!(k.user_name.as_deref(), Some("Kim"));
    assert_eq!((k.touches, k.properties, k.signed), (3, 2, 1));
    assert_eq!(k.by_channel.get("door_knock"), Some(&2));
    assert_eq!(k.by_result.get("signed"), Some(&1));
    assert_eq!(
        (summary.conversions, summary.contract_value),
        (1, Cents(1_500_000))
    );
    let everyone = f.store.crew_day(None, "2026-09-21").expect("summary");
    assert_eq!((everyone.touches, everyone.users.len()), (4, 2));
    assert_eq!(
        f.store
            .crew_day(None, "2026-02-30")
            .expect_err("bad date")
            .code(),
        "store.invalid_input"
    );
}

#[test]
fn pending_counts_report_the_oldest_pending_age() {
    let mut f = tenant();
    assert_eq!(
        f.store
            .pending_counts()
            .expect("counts")
            .oldest_pending_age_ms,
        None
    );
    f.store.add_storm(&storm()).expect("storm");
    f.clock.advance(90_000);
    f.store.add_storm(&storm()).expect("storm");
    let counts = f.store.pending_counts().expect("counts");
    assert_eq!((counts.pending, counts.refused), (2, 0));
    assert_eq!(counts.oldest_pending_at, Some(NOW));
    assert_eq!(counts.oldest_pending_age_ms, Some(90_000));
}
