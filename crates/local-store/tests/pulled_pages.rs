//! Pulled pages that mix records new to this laptop (the direct path: nothing to merge with), records
//! already here (merged per field by clock) and records with pending local writes (those writes win): each
//! kind must end up exactly as the merge rule says, whatever else the page holds.

mod support;

use domain::*;
use local_store::{PropertyQuery, PropertyUpdate, PulledText, TenantStore};
use support::*;
use sync_protocol::{ChangeOp, Entity, FieldClocks, PulledChange, Receipt};

/// A pulled property with every field but the id stamped `hlc` (how the server sends a created record).
fn pulled_property(p: &Property, hlc: Hlc) -> PulledChange {
    let record = serde_json::to_value(p).expect("json");
    let clocks = record
        .as_object()
        .expect("object")
        .keys()
        .filter(|k| *k != "id")
        .map(|k| (k.clone(), hlc))
        .collect();
    PulledChange {
        entity: Entity::Property,
        entity_id: p.id.0,
        op: ChangeOp::Insert,
        record,
        field_clocks: Some(clocks),
    }
}

/// A pulled property whose fields carry the given clocks (others: none).
fn pulled_with(p: &Property, clocks: &[(&str, Hlc)]) -> PulledChange {
    PulledChange {
        entity: Entity::Property,
        entity_id: p.id.0,
        op: ChangeOp::Insert,
        record: serde_json::to_value(p).expect("json"),
        field_clocks: Some(
            clocks
                .iter()
                .map(|(f, h)| ((*f).to_owned(), *h))
                .collect::<FieldClocks>(),
        ),
    }
}

fn server_hlc(offset_ms: i64) -> Hlc {
    Hlc::new((NOW.millis() + offset_ms) as u64, 0, 7)
}

fn accept_all(store: &mut TenantStore) {
    let receipts: Vec<Receipt> = store
        .pending_changes(1_000)
        .expect("pending")
        .iter()
        .map(|c| Receipt::accepted(c.id))
        .collect();
    store.apply_receipts(&receipts, None).expect("receipts");
}

fn get(store: &TenantStore, id: PropertyId) -> Property {
    store.property(id).expect("read").expect("exists")
}

#[test]
fn a_page_of_new_present_and_pending_records_follows_the_merge_rule_for_each() {
    let mut f = tenant();
    let s = storm();
    f.store.add_storm(&s).expect("storm");
    let old = server_hlc(-60_000);

    // Already here and synced, with one field written later on this laptop (acknowledged since).
    let present = property(s.id, 1, "1 Present St");
    // Already here, with a local status write the server has not acknowledged.
    let edited = property(s.id, 2, "2 Edited St");
    f.store
        .apply_pulled_page(
            &[
                pulled_property(&present, old),
                pulled_property(&edited, old),
            ],
            "c1",
            1,
        )
        .expect("first page");
    f.store
        .update_property(
            present.id,
            &PropertyUpdate {
                owner_name: Some(Some("Local Owner".into())),
                ..Default::default()
            },
        )
        .expect("local write");
    accept_all(&mut f.store);
    f.store
        .update_property(
            edited.id,
            &PropertyUpdate {
                status: Some(PropertyStatus::Inspected),
                ..Default::default()
            },
        )
        .expect("pending local write");
    // Created on this laptop and not pushed yet: a pending insert.
    let local_only = property(s.id, 3, "3 Local St");
    f.store.add_property(&local_only).expect("local insert");

    // New to this laptop; its score and its decision come earlier in the same page than the property.
    let fresh = property(s.id, 4, "4 Fresh St");
    let fresh_score = score(&fresh, 0.4);
    let fresh_decision = decision(&fresh, Decision::Treat, UserId::generate(), NOW);

    let newer = server_hlc(60_000);
    let between = server_hlc(-30_000);
    let mut present_server = present.clone();
    present_server.status = PropertyStatus::Contracted;
    present_server.owner_name = Some("Server Owner".into());
    let mut edited_server = edited.clone();
    edited_server.status = PropertyStatus::NotInterested;
    edited_server.owner_name = Some("Server Owner".into());
    let mut local_only_server = local_only.clone();
    local_only_server.address = "3 Server St".into();
    local_only_server.owner_name = Some("Server Owner".into());

    let page = vec![
        pulled(Entity::UpliftScore, fresh.id.0, &fresh_score),
        pulled(Entity::PolicyDecision, fresh_decision.id.0, &fresh_decision),
        // The server's status is newer than anything here; its owner name is older than the local one.
        pulled_with(
            &present_server,
            &[("status", newer), ("owner_name", between)],
        ),
        // Newer than the pending write, yet the pending write keeps its field until acknowledged.
        pulled_with(&edited_server, &[("status", newer), ("owner_name", newer)]),
        pulled_property(&fresh, old),
        pulled_with(&local_only_server, &[("owner_name", newer)]),
    ];
    let report = f.store.apply_pulled_page(&page, "c2", 2).expect("page");
    assert_eq!((report.applied, report.skipped.len()), (6, 0));

    let merged = get(&f.store, present.id);
    assert_eq!(
        merged.status,
        PropertyStatus::Contracted,
        "newer field wins"
    );
    assert_eq!(
        merged.owner_name.as_deref(),
        Some("Local Owner"),
        "an older server field loses to the later local write"
    );

    let merged = get(&f.store, edited.id);
    assert_eq!(
        merged.status,
        PropertyStatus::Inspected,
        "the pending write wins"
    );
    assert_eq!(merged.owner_name.as_deref(), Some("Server Owner"));

    let merged = get(&f.store, local_only.id);
    assert_eq!(
        merged.owner_name.as_deref(),
        Some("Pat Owner"),
        "the pending insert's values win until acknowledged"
    );
    assert_eq!(merged.address, "3 Local St");

    assert_eq!(
        get(&f.store, fresh.id),
        fresh,
        "a new record is stored as sent"
    );
    let ranked = f
        .store
        .ranked_properties(&PropertyQuery {
            decision: Some(Decision::Treat),
            ..Default::default()
        })
        .expect("ranked");
    assert_eq!(ranked.len(), 1);
    assert_eq!(ranked[0].property.id, fresh.id);
    assert_eq!(
        ranked[0].uplift,
        Some(0.4),
        "the new property picked up the score and the decision that came before it"
    );

    // The new record's clocks were stored: an older write of its status loses, a newer one wins.
    let mut stale = fresh.clone();
    stale.status = PropertyStatus::NotInterested;
    f.store
        .apply_pulled_page(
            &[pulled_with(&stale, &[("status", server_hlc(-120_000))])],
            "c3",
            3,
        )
        .expect("stale");
    assert_eq!(get(&f.store, fresh.id).status, PropertyStatus::New);
    f.store
        .apply_pulled_page(
            &[pulled_with(&stale, &[("status", server_hlc(120_000))])],
            "c4",
            4,
        )
        .expect("newer");
    assert_eq!(
        get(&f.store, fresh.id).status,
        PropertyStatus::NotInterested
    );
}

#[test]
fn a_record_twice_in_one_page_is_merged_with_its_first_copy() {
    let mut f = tenant();
    let s = storm();
    f.store.add_storm(&s).expect("storm");
    let p = property(s.id, 1, "1 Twice St");
    let mut later = p.clone();
    later.status = PropertyStatus::Inspected;
    let mut earlier = p.clone();
    earlier.status = PropertyStatus::NotInterested;
    let report = f
        .store
        .apply_pulled_page(
            &[
                pulled_property(&later, server_hlc(10_000)),
                pulled_property(&earlier, server_hlc(-10_000)),
            ],
            "c1",
            1,
        )
        .expect("page");
    assert_eq!(report.applied, 2);
    assert_eq!(
        get(&f.store, p.id).status,
        PropertyStatus::Inspected,
        "the second copy is older and loses"
    );
    assert_eq!(f.store.record_counts().expect("counts").properties, 1);
}

#[test]
fn a_score_rewritten_by_a_later_page_moves_the_rank() {
    let mut f = tenant();
    let s = storm();
    f.store.add_storm(&s).expect("storm");
    let a = property(s.id, 1, "1 A St");
    let b = property(s.id, 2, "2 B St");
    f.store
        .apply_pulled_page(
            &[
                pulled_property(&a, server_hlc(0)),
                pulled_property(&b, server_hlc(0)),
                pulled(Entity::UpliftScore, a.id.0, &score(&a, 0.3)),
                pulled(Entity::UpliftScore, b.id.0, &score(&b, 0.1)),
            ],
            "c1",
            1,
        )
        .expect("page");
    let order = |store: &TenantStore| -> Vec<PropertyId> {
        store
            .ranked_properties(&PropertyQuery::default())
            .expect("ranked")
            .iter()
            .map(|r| r.property.id)
            .collect()
    };
    assert_eq!(order(&f.store), [a.id, b.id]);
    f.store
        .apply_pulled_page(
            &[pulled(Entity::UpliftScore, b.id.0, &score(&b, 0.45))],
            "c2",
            2,
        )
        .expect("rescored");
    assert_eq!(order(&f.store), [b.id, a.id]);
    let tombstone = PulledChange {
        entity: Entity::UpliftScore,
        entity_id: b.id.0,
        op: ChangeOp::Delete,
        record: serde_json::Value::Null,
        field_clocks: None,
    };
    f.store
        .apply_pulled_page(&[tombstone], "c3", 3)
        .expect("unscored");
    assert_eq!(order(&f.store), [a.id, b.id], "unscored last");
    assert_eq!(
        f.store.record_counts().expect("counts").scored_properties,
        1
    );
}

#[test]
fn a_page_of_new_stored_and_repeated_scores_ends_with_each_propertys_last_score() {
    let mut f = tenant();
    let s = storm();
    f.store.add_storm(&s).expect("storm");
    let a = property(s.id, 1, "1 A St");
    let b = property(s.id, 2, "2 B St");
    let c = property(s.id, 3, "3 C St");
    f.store
        .apply_pulled_page(
            &[
                pulled_property(&a, server_hlc(0)),
                pulled_property(&b, server_hlc(0)),
                pulled_property(&c, server_hlc(0)),
                pulled(Entity::UpliftScore, a.id.0, &score(&a, 0.3)),
                pulled(Entity::UpliftScore, b.id.0, &score(&b, 0.1)),
            ],
            "c1",
            1,
        )
        .expect("page");
    // One statement's worth: b's stored score replaced, c scored for the first time and then again.
    f.store
        .apply_pulled_page(
            &[
                pulled(Entity::UpliftScore, b.id.0, &score(&b, 0.45)),
                pulled(Entity::UpliftScore, c.id.0, &score(&c, 0.5)),
                pulled(Entity::UpliftScore, c.id.0, &score(&c, 0.05)),
            ],
            "c2",
            2,
        )
        .expect("rescored");
    let ranked: Vec<(PropertyId, Option<f64>)> = f
        .store
        .ranked_properties(&PropertyQuery::default())
        .expect("ranked")
        .iter()
        .map(|r| (r.property.id, r.uplift))
        .collect();
    assert_eq!(
        ranked,
        [(b.id, Some(0.45)), (a.id, Some(0.3)), (c.id, Some(0.05))]
    );
    assert_eq!(
        f.store.record_counts().expect("counts").scored_properties,
        3
    );
}

/// Applies `page` typed, or — as the sync engine does — as the JSON text the server sent.
fn apply(
    store: &mut TenantStore,
    page: &[PulledChange],
    cursor: &str,
    watermark: i64,
    as_text: bool,
) -> local_store::PullReport {
    if !as_text {
        return store
            .apply_pulled_page(page, cursor, watermark)
            .expect("typed page");
    }
    let texts: Vec<(String, Option<String>)> = page
        .iter()
        .map(|c| {
            (
                c.record.to_string(),
                c.field_clocks
                    .as_ref()
                    .map(|f| serde_json::to_string(f).expect("json")),
            )
        })
        .collect();
    let changes: Vec<PulledText<'_>> = page
        .iter()
        .zip(&texts)
        .map(|(c, (record, clocks))| PulledText {
            entity: c.entity,
            entity_id: c.entity_id,
            op: c.op,
            record,
            field_clocks: clocks.as_deref(),
        })
        .collect();
    store
        .apply_pulled_text(&changes, cursor, watermark)
        .expect("text page")
}

/// The engine applies pages from the server's JSON text; every outcome must be the typed page's: new
/// records, merges, a pending local write that keeps its field, a score before and after its property,
/// a record refused by validation, a tombstone.
#[test]
fn pages_applied_from_json_text_end_as_typed_pages_do() {
    let s = storm();
    let old = server_hlc(-60_000);
    let newer = server_hlc(60_000);
    let present = property(s.id, 1, "1 Present St");
    let edited = property(s.id, 2, "2 Edited St");
    let fresh = property(s.id, 3, "3 Fresh St");
    let gone = property(s.id, 4, "4 Gone St");
    let mut present_server = present.clone();
    present_server.status = PropertyStatus::Contracted;
    let mut edited_server = edited.clone();
    edited_server.status = PropertyStatus::NotInterested;
    edited_server.owner_name = Some("Server Owner".into());
    let mut invalid = property(s.id, 5, "5 Invalid St");
    invalid.latitude = 500.0;
    let first = [
        pulled_property(&present, old),
        pulled_property(&edited, old),
        pulled_property(&gone, old),
        pulled(Entity::UpliftScore, gone.id.0, &score(&gone, 0.2)),
    ];
    let second = [
        pulled(Entity::UpliftScore, fresh.id.0, &score(&fresh, 0.4)),
        pulled_with(&present_server, &[("status", newer)]),
        pulled_with(&edited_server, &[("status", newer), ("owner_name", newer)]),
        pulled_property(&fresh, old),
        pulled(Entity::UpliftScore, present.id.0, &score(&present, 0.1)),
        pulled_property(&invalid, old),
        PulledChange {
            entity: Entity::Property,
            entity_id: gone.id.0,
            op: ChangeOp::Delete,
            record: serde_json::Value::Null,
            field_clocks: None,
        },
    ];
    let run = |as_text: bool| {
        let mut f = tenant();
        f.store.add_storm(&s).expect("storm");
        apply(&mut f.store, &first, "c1", 1, as_text);
        f.store
            .update_property(
                edited.id,
                &PropertyUpdate {
                    status: Some(PropertyStatus::Inspected),
                    ..Default::default()
                },
            )
            .expect("pending local write");
        let report = apply(&mut f.store, &second, "c2", 2, as_text);
        let ranked = f
            .store
            .ranked_properties(&PropertyQuery::default())
            .expect("ranked");
        let state = f.store.sync_state().expect("state");
        (
            report,
            ranked,
            f.store.record_counts().expect("counts"),
            state.cursor,
        )
    };
    let (report, ranked, counts, cursor) = run(true);
    assert_eq!(
        (report.applied, report.deleted, report.skipped.len()),
        (5, 1, 1)
    );
    assert_eq!(report.skipped[0].entity_id, invalid.id.0);
    let ids: Vec<PropertyId> = ranked.iter().map(|r| r.property.id).collect();
    assert_eq!(
        ids,
        [fresh.id, present.id, edited.id],
        "by score, unscored last"
    );
    assert_eq!(ranked[1].property.status, PropertyStatus::Contracted);
    assert_eq!(
        (
            ranked[2].property.status,
            ranked[2].property.owner_name.as_deref()
        ),
        (PropertyStatus::Inspected, Some("Server Owner")),
        "the pending write keeps its field, the server's newer one lands"
    );
    assert_eq!((counts.properties, counts.scored_properties), (3, 2));
    assert_eq!(cursor.as_deref(), Some("c2"));
    assert_eq!(
        (report, ranked, counts, cursor),
        run(false),
        "the typed page ends the same"
    );
}

/// A first sync's pages are large: their properties and scores are decoded on a second thread just
/// ahead of the writer. Such a page — new records and their scores in any order, a record already here
/// with a newer field, one with a pending local write, one refused by validation, a tombstone — must end
/// exactly as the same changes applied in pages too small to be decoded ahead.
#[test]
fn a_large_page_decoded_ahead_ends_as_small_pages_do() {
    let s = storm();
    let old = server_hlc(-60_000);
    let newer = server_hlc(60_000);
    let present = property(s.id, 0, "0 Present St");
    let edited = property(s.id, 1, "1 Edited St");
    let gone = property(s.id, 2, "2 Gone St");
    let mut present_server = present.clone();
    present_server.status = PropertyStatus::Contracted;
    let mut edited_server = edited.clone();
    edited_server.owner_name = Some("Server Owner".into());
    edited_server.status = PropertyStatus::NotInterested;
    let mut invalid = property(s.id, 3, "3 Invalid St");
    invalid.latitude = 500.0;
    let fresh: Vec<Property> = (10..460)
        .map(|n| property(s.id, n, &format!("{n} Fresh St")))
        .collect();
    let first = [
        pulled_property(&present, old),
        pulled_property(&edited, old),
        pulled_property(&gone, old),
    ];
    let mut large: Vec<PulledChange> = Vec::new();
    for (i, p) in fresh.iter().enumerate() {
        let scored = pulled(
            Entity::UpliftScore,
            p.id.0,
            &score(p, (i % 37) as f64 / 100.0),
        );
        // Scores before, after and far from their properties.
        if i % 3 == 0 {
            large.push(scored);
            large.push(pulled_property(p, old));
        } else {
            large.push(pulled_property(p, old));
            large.push(scored);
        }
        match i {
            100 => large.push(pulled_with(&present_server, &[("status", newer)])),
            200 => large.push(pulled_with(
                &edited_server,
                &[("status", newer), ("owner_name", newer)],
            )),
            300 => large.push(pulled_property(&invalid, old)),
            400 => large.push(PulledChange {
                entity: Entity::Property,
                entity_id: gone.id.0,
                op: ChangeOp::Delete,
                record: serde_json::Value::Null,
                field_clocks: None,
            }),
            _ => {}
        }
    }
    assert!(large.len() > 600, "large enough to be decoded ahead");
    let run = |page_size: usize| {
        let mut f = tenant();
        f.store.add_storm(&s).expect("storm");
        apply(&mut f.store, &first, "c1", 1, true);
        f.store
            .update_property(
                edited.id,
                &PropertyUpdate {
                    status: Some(PropertyStatus::Inspected),
                    ..Default::default()
                },
            )
            .expect("pending local write");
        let (mut applied, mut deleted, mut skipped) = (0, 0, Vec::new());
        for page in large.chunks(page_size) {
            let report = apply(&mut f.store, page, "c2", 2, true);
            applied += report.applied;
            deleted += report.deleted;
            skipped.extend(report.skipped.into_iter().map(|s| s.entity_id));
        }
        let ranked = f
            .store
            .ranked_properties(&PropertyQuery {
                limit: 1_000,
                ..Default::default()
            })
            .expect("ranked");
        let scored = f.store.record_counts().expect("counts").scored_properties;
        (applied, deleted, skipped, ranked, scored)
    };
    let (applied, deleted, skipped, ranked, scored) = run(large.len());
    assert_eq!(
        scored,
        fresh.len() as i64,
        "every score reached its property's rank"
    );
    assert_eq!((applied, deleted), (2 * fresh.len() + 2, 1));
    assert_eq!(skipped, [invalid.id.0]);
    assert_eq!(ranked.len(), fresh.len() + 2);
    let find = |id: PropertyId| ranked.iter().find(|r| r.property.id == id).expect("listed");
    assert_eq!(find(present.id).property.status, PropertyStatus::Contracted);
    assert_eq!(
        (
            find(edited.id).property.status,
            find(edited.id).property.owner_name.as_deref()
        ),
        (PropertyStatus::Inspected, Some("Server Owner")),
        "the pending write keeps its field, the server's newer one lands"
    );
    assert!(fresh.iter().all(|p| find(p.id).uplift.is_some()));
    assert_eq!(
        (applied, deleted, skipped, ranked, scored),
        run(50),
        "small pages end the same"
    );
}

/// The property list's external ids, best uplift first.
fn ranked(store: &TenantStore) -> Vec<String> {
    store
        .ranked_properties(&PropertyQuery {
            limit: 500,
            ..PropertyQuery::default()
        })
        .expect("ranked")
        .iter()
        .map(|r| r.property.external_id.clone())
        .collect()
}

fn has_rank_indexes(store: &TenantStore) -> bool {
    let schema = store.schema_sql().expect("schema");
    schema.contains("properties_ranked ON") && schema.contains("properties_ranked_all ON")
}

/// A tenant halfway through its first sync: long-pull mode on, one page of 120 properties and their scores
/// applied (the scores in the opposite order to the properties). Returns it with the schema of a fresh
/// file and the properties' external ids, best uplift first.
fn first_sync_half_done() -> (Fixture, String, Vec<String>) {
    let mut f = tenant();
    let s = storm();
    f.store.add_storm(&s).expect("storm");
    let fresh_schema = f.store.schema_sql().expect("schema");
    let props: Vec<Property> = (0..120)
        .map(|i| property(s.id, i, &format!("{i} Oak Ave")))
        .collect();
    let mut page: Vec<PulledChange> = props
        .iter()
        .map(|p| pulled_property(p, server_hlc(-1_000)))
        .collect();
    // Uplifts that do not follow the insert order: 7 × i mod 120 (all different).
    let uplift_rank = |i: usize| (7 * i) % 120;
    for (i, p) in props.iter().enumerate().rev() {
        page.push(pulled(
            Entity::UpliftScore,
            p.id.0,
            &score(p, uplift_rank(i) as f64 / 1_000.0),
        ));
    }
    let mut best_first: Vec<(usize, String)> = props
        .iter()
        .enumerate()
        .map(|(i, p)| (uplift_rank(i), p.external_id.clone()))
        .collect();
    best_first.sort_by_key(|b| std::cmp::Reverse(b.0));
    f.store.set_long_pull(true).expect("long pull");
    let report = f.store.apply_pulled_page(&page, "c1", 1).expect("apply");
    assert_eq!(report.applied, 240);
    let best_first = best_first.into_iter().map(|(_, id)| id).collect();
    (f, fresh_schema, best_first)
}

#[test]
fn a_first_sync_builds_the_rank_indexes_at_its_end_and_ranks_the_same_meanwhile() {
    let (mut f, fresh_schema, best_first) = first_sync_half_done();
    assert!(
        !has_rank_indexes(&f.store),
        "no property before the pull: built at its end"
    );
    assert_eq!(ranked(&f.store), best_first, "ranked by sorting meanwhile");
    let wal_bytes = |store: &TenantStore| {
        let mut wal = store.path().as_os_str().to_owned();
        wal.push("-wal");
        std::fs::metadata(wal).map_or(0, |m| m.len())
    };
    assert!(wal_bytes(&f.store) > 0, "the pull is in the log");
    f.store.set_long_pull(false).expect("end");
    // Emptied only once every frame is in the database: by the side copy and the closing checkpoint.
    assert_eq!(wal_bytes(&f.store), 0, "the log copied into the database");
    assert!(has_rank_indexes(&f.store));
    assert_eq!(f.store.schema_sql().expect("schema"), fresh_schema);
    assert_eq!(ranked(&f.store), best_first, "ranked through the index");

    // A later long pull (the laptop holds properties) keeps them.
    f.store.set_long_pull(true).expect("long pull");
    assert!(has_rank_indexes(&f.store));
    f.store.set_long_pull(false).expect("end");
}

#[test]
fn a_first_sync_cut_short_gets_its_rank_indexes_back_when_the_file_is_opened() {
    let (f, fresh_schema, best_first) = first_sync_half_done();
    assert!(!has_rank_indexes(&f.store));
    // The app is killed mid-pull: the store closes without leaving the mode.
    drop(f.store);
    let store = f
        .data_dir
        .open(
            f.tenant_id,
            Some(USER),
            &local_store::Passphrase::new(PASSPHRASE),
        )
        .expect("reopen");
    assert!(has_rank_indexes(&store));
    assert_eq!(store.schema_sql().expect("schema"), fresh_schema);
    assert_eq!(ranked(&store), best_first);
}
