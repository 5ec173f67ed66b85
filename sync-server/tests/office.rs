//! The office admin API over real HTTP and PostgreSQL: storms (list, create, update), territories (list,
//! create), the property import from CSV (typed errors listing wrong columns or every bad row with
//! nothing imported; imported properties reach laptops' pulls; a re-import updates instead of
//! duplicating; a storm with an experiment gives imported properties their arms), and the storm's policy
//! mode — each with the product's role rules (admins write; chiefs and viewers read; field users 403).

mod harness;

use domain::Role;
use harness::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sync_protocol::{Entity, ErrorCode, PROTOCOL_HEADER, PROTOCOL_VERSION};

async fn send(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = h
        .http
        .request(method, h.url(path))
        .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string())
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    read(request.send().await.expect("the server answers")).await
}

async fn import(
    h: &Harness,
    storm: &str,
    token: &str,
    content_type: &str,
    csv: &str,
) -> (StatusCode, Value) {
    let response = h
        .http
        .post(h.url(&format!("/v1/admin/storms/{storm}/properties/import")))
        .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string())
        .header("content-type", content_type)
        .bearer_auth(token)
        .body(csv.to_owned())
        .send()
        .await
        .expect("the server answers");
    read(response).await
}

fn new_storm() -> Value {
    json!({
        "event_id": "NWS-2026-0412",
        "name": "Moore hail",
        "started_at": domain::Timestamp::now().0 - 3_600_000,
        "hail_size_in": 1.75,
        "wind_mph": 55.0,
        "affected_area": "Moore, OK"
    })
}

#[tokio::test]
async fn storms_and_territories_follow_the_role_rules() {
    let h = Harness::start().await;
    let a = &h.a;
    let admin = a.session(Role::Admin).access().to_owned();
    let created = send(
        &h,
        reqwest::Method::POST,
        "/v1/admin/storms",
        &admin,
        Some(&new_storm()),
    )
    .await;
    assert_ok("create storm", &created);
    let storm = created.1["storm"]["id"].as_str().expect("id").to_owned();
    assert_eq!(created.1["storm"]["status"], "active");
    // Admins, chiefs and viewers read; field users are refused.
    for role in [Role::Admin, Role::CrewChief, Role::Viewer] {
        let got = h
            .get("/v1/admin/storms", Some(a.session(role).access()))
            .await;
        assert_ok("list storms", &got);
        let ids: Vec<&str> = got.1["storms"]
            .as_array()
            .map(|s| s.iter().filter_map(|s| s["id"].as_str()).collect())
            .unwrap_or_default();
        assert!(ids.contains(&storm.as_str()), "{role}: {ids:?}");
        assert_eq!(ids.len(), 2, "the fixture's storm and the new one");
    }
    let field = a.session(Role::FieldUser).access().to_owned();
    let got = h.get("/v1/admin/storms", Some(&field)).await;
    assert_error("field user lists storms", &got, 403, ErrorCode::Forbidden);
    for role in [Role::CrewChief, Role::Viewer, Role::FieldUser] {
        let got = send(
            &h,
            reqwest::Method::POST,
            "/v1/admin/storms",
            a.session(role).access(),
            Some(&new_storm()),
        )
        .await;
        assert_error("non-admin creates a storm", &got, 403, ErrorCode::Forbidden);
    }
    // Tenant B sees none of A's storms and cannot touch them.
    let b_admin = h.b.session(Role::Admin).access().to_owned();
    let got = h.get("/v1/admin/storms", Some(&b_admin)).await;
    assert_eq!(got.1["storms"].as_array().map(Vec::len), Some(1));
    let patch = json!({ "status": "closed" });
    let got = send(
        &h,
        reqwest::Method::PATCH,
        &format!("/v1/admin/storms/{storm}"),
        &b_admin,
        Some(&patch),
    )
    .await;
    assert_error("B patches A's storm", &got, 404, ErrorCode::NotFound);

    // Update: only the named fields change; bad values are typed errors and change nothing.
    let got = send(
        &h,
        reqwest::Method::PATCH,
        &format!("/v1/admin/storms/{storm}"),
        &admin,
        Some(&patch),
    )
    .await;
    assert_ok("close storm", &got);
    assert_eq!(
        (
            got.1["storm"]["status"].as_str(),
            got.1["storm"]["name"].as_str()
        ),
        (Some("closed"), Some("Moore hail"))
    );
    let bad = json!({ "name": "" });
    let got = send(
        &h,
        reqwest::Method::PATCH,
        &format!("/v1/admin/storms/{storm}"),
        &admin,
        Some(&bad),
    )
    .await;
    assert_error("empty name", &got, 422, ErrorCode::ValidationFailed);
    let unknown = json!({ "colour": "red" });
    let got = send(
        &h,
        reqwest::Method::PATCH,
        &format!("/v1/admin/storms/{storm}"),
        &admin,
        Some(&unknown),
    )
    .await;
    assert!(got.0.is_client_error(), "{got:?}");
    let got = send(
        &h,
        reqwest::Method::PATCH,
        "/v1/admin/storms/not-a-uuid",
        &admin,
        Some(&patch),
    )
    .await;
    assert_error("bad id", &got, 400, ErrorCode::InvalidUuid);

    // Territories: admins create (for a crew), chiefs read, field users are refused.
    let body = json!({ "name": "North grid", "crew_id": a.crew });
    let path = format!("/v1/admin/storms/{storm}/territories");
    let got = send(&h, reqwest::Method::POST, &path, &admin, Some(&body)).await;
    assert_ok("create territory", &got);
    let got = h
        .get(&path, Some(a.session(Role::CrewChief).access()))
        .await;
    assert_ok("chief lists territories", &got);
    assert_eq!(got.1["territories"][0]["name"], "North grid");
    let got = h.get(&path, Some(&field)).await;
    assert_error("field lists territories", &got, 403, ErrorCode::Forbidden);
    let foreign = json!({ "name": "South", "crew_id": h.b.crew });
    let got = send(&h, reqwest::Method::POST, &path, &admin, Some(&foreign)).await;
    assert!(got.0.is_client_error(), "another tenant's crew: {got:?}");
    let got = send(
        &h,
        reqwest::Method::POST,
        &path,
        a.session(Role::CrewChief).access(),
        Some(&body),
    )
    .await;
    assert_error("chief creates territory", &got, 403, ErrorCode::Forbidden);
    // The new storm and territory reach the chief's laptop.
    let chief = a.session(Role::CrewChief).clone();
    let rows = h
        .pull_until(&chief, |rows| !ids_of(rows, Entity::Territory).is_empty())
        .await;
    assert!(
        ids_of(&rows, Entity::Storm)
            .iter()
            .any(|id| id.to_string() == storm)
    );
    h.stop().await;
}

#[tokio::test]
async fn property_imports_are_all_or_nothing_reach_the_laptops_and_get_their_arms() {
    let h = Harness::start().await;
    let a = &h.a;
    let admin = a.session(Role::Admin).access().to_owned();
    let storm = a.storm.to_string();
    let before = h.count(a.id, "properties").await;

    // Wrong columns: every problem listed, nothing imported.
    let got = import(
        &h,
        &storm,
        &admin,
        "text/csv",
        "external_id,adress,latitude\nX,1 Elm,35\n",
    )
    .await;
    assert_error("wrong columns", &got, 422, ErrorCode::ValidationFailed);
    assert_eq!(got.1["details"]["kind"], "wrong_columns");
    assert_eq!(got.1["details"]["missing"], json!(["address", "longitude"]));
    assert_eq!(got.1["details"]["unknown"], json!(["adress"]));
    // Bad rows: each listed with its line, nothing imported (not even the good rows).
    let csv = "external_id,address,latitude,longitude,roof_material\n\
               N-1,1 Oak St,35.3,-97.5,metal\n\
               N-2,2 Oak St,not-a-number,-97.5,metal\n\
               N-3,3 Oak St,35.3,-97.5,straw\n";
    let got = import(&h, &storm, &admin, "text/csv", csv).await;
    assert_error("bad rows", &got, 422, ErrorCode::ValidationFailed);
    let lines: Vec<i64> = got.1["details"]["rows"]
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["line"].as_i64()).collect())
        .unwrap_or_default();
    assert_eq!(lines, vec![3, 4], "{}", got.1);
    let got = import(&h, &storm, &admin, "application/json", "{}").await;
    assert_error("not CSV", &got, 415, ErrorCode::UnsupportedMediaType);
    assert_eq!(
        h.count(a.id, "properties").await,
        before,
        "nothing imported"
    );

    // Role rules and tenancy.
    let good = "external_id,address,latitude,longitude,home_value_cents,status\n\
                N-1,1 Oak St,35.3,-97.5,31000000,new\n\
                N-2,2 Oak St,35.4,-97.6,,new\n\
                N-3,3 Oak St,35.5,-97.7,28000000,\n";
    for role in [Role::CrewChief, Role::Viewer, Role::FieldUser] {
        let got = import(&h, &storm, a.session(role).access(), "text/csv", good).await;
        assert_error("non-admin import", &got, 403, ErrorCode::Forbidden);
    }
    let got = import(
        &h,
        &storm,
        h.b.session(Role::Admin).access(),
        "text/csv",
        good,
    )
    .await;
    assert_error("B imports into A's storm", &got, 404, ErrorCode::NotFound);

    // An experiment first: imported properties must get their arm in the import's transaction.
    let got = h
        .post(
            &format!("/v1/admin/storms/{storm}/experiment"),
            Some(&admin),
            &json!({ "treatment_share": 0.5 }),
        )
        .await;
    assert_ok("experiment", &got);
    let arms_before = h.count(a.id, "arm_assignments").await;
    let got = import(&h, &storm, &admin, "text/csv; charset=utf-8", good).await;
    assert_ok("import", &got);
    assert_eq!(
        (
            got.1["imported"].as_i64(),
            got.1["created"].as_i64(),
            got.1["arms_assigned"].as_i64()
        ),
        (Some(3), Some(3), Some(3))
    );
    assert_eq!(h.count(a.id, "properties").await, before + 3);
    assert_eq!(h.count(a.id, "arm_assignments").await, arms_before + 3);
    assert_eq!(
        h.count(h.b.id, "properties").await,
        PROPERTIES as i64,
        "B untouched"
    );

    // A re-import updates the same properties (matched by external id) instead of duplicating them.
    let changed = good.replace("1 Oak St", "1 Oak Street");
    let got = import(&h, &storm, &admin, "text/csv", &changed).await;
    assert_ok("re-import", &got);
    assert_eq!(
        (
            got.1["created"].as_i64(),
            got.1["updated"].as_i64(),
            got.1["arms_assigned"].as_i64()
        ),
        (Some(0), Some(3), Some(0))
    );
    assert_eq!(h.count(a.id, "properties").await, before + 3);

    // The field user's laptop pulls the imported properties (with the updated address).
    let field = a.session(Role::FieldUser).clone();
    let rows = h
        .pull_until(&field, |rows| {
            rows.iter()
                .any(|r| r.entity == Entity::Property && r.record["address"] == "1 Oak Street")
        })
        .await;
    let externals: std::collections::HashSet<String> = rows
        .iter()
        .filter(|r| r.entity == Entity::Property)
        .filter_map(|r| r.record["external_id"].as_str().map(str::to_owned))
        .collect();
    for e in ["N-1", "N-2", "N-3"] {
        assert!(externals.contains(e), "{e} not pulled: {externals:?}");
    }
    h.stop().await;
}

#[tokio::test]
async fn the_policy_mode_is_set_by_admins_and_read_by_chiefs_and_viewers() {
    let h = Harness::start().await;
    let a = &h.a;
    let path = format!("/v1/admin/storms/{}/policy", a.storm);
    let admin = a.session(Role::Admin).access().to_owned();
    let got = h.get(&path, Some(&admin)).await;
    assert_ok("default mode", &got);
    assert_eq!(got.1["mode"], "moderate");
    assert_eq!(got.1["updated_at"], Value::Null);
    let got = send(
        &h,
        reqwest::Method::PUT,
        &path,
        &admin,
        Some(&json!({ "mode": "aggressive" })),
    )
    .await;
    assert_ok("set mode", &got);
    for role in [Role::CrewChief, Role::Viewer] {
        let got = h.get(&path, Some(a.session(role).access())).await;
        assert_ok("read mode", &got);
        assert_eq!(got.1["mode"], "aggressive");
        let got = send(
            &h,
            reqwest::Method::PUT,
            &path,
            a.session(role).access(),
            Some(&json!({ "mode": "conservative" })),
        )
        .await;
        assert_error("non-admin sets mode", &got, 403, ErrorCode::Forbidden);
    }
    let got = h
        .get(&path, Some(a.session(Role::FieldUser).access()))
        .await;
    assert_error("field reads mode", &got, 403, ErrorCode::Forbidden);
    let got = send(
        &h,
        reqwest::Method::PUT,
        &path,
        &admin,
        Some(&json!({ "mode": "reckless" })),
    )
    .await;
    assert!(
        got.0.is_client_error() && got.0 != StatusCode::NOT_FOUND,
        "{got:?}"
    );
    let got = h.get(&path, Some(&admin)).await;
    assert_eq!(
        got.1["mode"], "aggressive",
        "a refused change changes nothing"
    );
    // Tenant B cannot read or set A's storm's mode.
    let got = h.get(&path, Some(h.b.session(Role::Admin).access())).await;
    assert_error("B reads A's mode", &got, 404, ErrorCode::NotFound);
    h.stop().await;
}

/// The storm's mode reaches every laptop of the tenant through the pull feed (the offline policy decides
/// in it), whichever role the laptop's user has — the admin API's read is for the office's screens; the
/// mode itself is on every decision laptops pull anyway. Another tenant's laptops never see it, and a
/// laptop of protocol 1 (which cannot decode the record) is not sent it.
#[tokio::test]
async fn a_set_policy_mode_reaches_every_laptop_of_the_tenant_through_the_pull() {
    let h = Harness::start().await;
    let a = &h.a;
    let path = format!("/v1/admin/storms/{}/policy", a.storm);
    let admin = a.session(Role::Admin).access().to_owned();
    let got = send(
        &h,
        reqwest::Method::PUT,
        &path,
        &admin,
        Some(&json!({ "mode": "aggressive" })),
    )
    .await;
    assert_ok("set mode", &got);
    let policy_rows = |rows: &[sync_protocol::PulledChange]| -> Vec<Value> {
        rows.iter()
            .filter(|r| r.entity == Entity::StormPolicy)
            .map(|r| r.record.clone())
            .collect()
    };
    for role in [Role::Admin, Role::CrewChief, Role::FieldUser, Role::Viewer] {
        let rows = h
            .pull_until(a.session(role), |rows| !policy_rows(rows).is_empty())
            .await;
        let got = policy_rows(&rows);
        assert_eq!(got.len(), 1, "{role}");
        assert_eq!(got[0]["storm_id"], a.storm.to_string(), "{role}");
        assert_eq!(got[0]["mode"], "aggressive", "{role}");
        let record: domain::StormPolicy =
            serde_json::from_value(got[0].clone()).expect("the domain record");
        assert_eq!(
            Some(record.updated_by.expect("author")),
            a.users.iter().find(|u| u.0 == Role::Admin).map(|u| u.1)
        );
    }
    // Tenant B's laptops: a drained feed without it.
    let rows = h.pull_until(h.b.session(Role::Admin), |_| true).await;
    assert!(policy_rows(&rows).is_empty());

    // A protocol-1 laptop's pull leaves the row out (the rest of its feed is unchanged).
    let old = sync_client::SyncClient::with_protocol(&h.url(""), 1).expect("client");
    let field = a.session(Role::FieldUser);
    let mut cursor: Option<String> = None;
    let mut rows = Vec::new();
    loop {
        let (page, _) = old
            .pull(field.access(), cursor.as_deref(), Some(1_000))
            .await
            .expect("a protocol 1 pull is served");
        rows.extend(page.changes);
        cursor = Some(page.next_cursor);
        if !page.has_more {
            break;
        }
    }
    assert!(policy_rows(&rows).is_empty(), "{rows:?}");
    assert!(rows.iter().any(|r| r.entity == Entity::Storm));
    h.stop().await;
}
