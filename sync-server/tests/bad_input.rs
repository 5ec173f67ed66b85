//! The bad-input matrix on push, pull and login over real HTTP: malformed JSON, wrong types, unknown
//! fields, invalid UUIDs, a missing content type, oversized and gzip-bomb bodies, oversized batches,
//! clocks too far ahead, invalid records. Every case answers its stable 4xx code (never a 5xx), and
//! nothing of a refused batch is applied. SQL-looking text is stored verbatim; gzip and zstd bodies are accepted.

mod harness;

use std::io::Write as _;

use domain::Role;
use harness::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sync_protocol::{Change, ChangeOp, Entity, ErrorCode, MAX_PUSH_CHANGES, PROTOCOL_HEADER};
use sync_server::limits::MAX_BODY_BYTES;

/// (case, content type, body, expected status, expected code).
type RawCase = (&'static str, Option<&'static str>, Vec<u8>, u16, ErrorCode);

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

/// As the sync client sends a large body.
fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(bytes, 1).expect("zstd")
}

/// A raw POST: any bytes, any headers.
async fn raw(
    h: &Harness,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut r = h
        .http
        .post(h.url(path))
        .header(PROTOCOL_HEADER, "1")
        .body(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    if let Some(e) = encoding {
        r = r.header("content-encoding", e);
    }
    match r.send().await {
        Ok(response) => read(response).await,
        // The server may answer an oversized body before reading all of it and close the connection.
        Err(e) => panic!("{path}: no answer: {e}"),
    }
}

fn change_json(c: &Change) -> Value {
    serde_json::to_value(c).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pushes_answer_4xx_and_apply_nothing() {
    let h = Harness::start().await;
    let a = &h.a;
    let s = a.session(Role::FieldUser);
    let token = Some(s.access());
    let json_ct = Some("application/json");
    let before = h.counts(a.id).await;

    // Every case carries a valid touch next to the mistake, so "nothing applied" means something.
    let valid = || change_json(&touch_change(s, a, 0, "valid rider"));
    let body = |changes: Vec<Value>| serde_json::to_vec(&json!({ "changes": changes })).unwrap();
    let mut with_extra = valid();
    with_extra["priority"] = json!("high");
    let mut bad_id = valid();
    bad_id["id"] = json!("not-a-uuid");
    let mut bad_entity_id = valid();
    bad_entity_id["entity_id"] = json!("0000-1111");
    let mut bad_hlc = valid();
    bad_hlc["hlc"] = json!("yesterday");
    let mut hlc_number = valid();
    hlc_number["hlc"] = json!(12345);
    let mut bad_entity = valid();
    bad_entity["entity"] = json!("bank_account");
    let mut bad_op = valid();
    bad_op["op"] = json!("upsert");
    let mut missing_field = valid();
    missing_field
        .as_object_mut()
        .expect("object")
        .remove("payload");
    let mut future = touch_change(s, a, 1, "from the future");
    future.hlc = domain::Hlc::new(future.hlc.wall_ms + 3_600_000, 0, 7);
    let mut other_device = touch_change(s, a, 1, "another device's change");
    other_device.device_id = domain::DeviceId::generate();

    let structural: Vec<RawCase> = vec![
        (
            "truncated JSON",
            json_ct,
            br#"{"changes": ["#.to_vec(),
            400,
            ErrorCode::MalformedJson,
        ),
        (
            "not JSON at all",
            json_ct,
            b"changes=1".to_vec(),
            400,
            ErrorCode::MalformedJson,
        ),
        (
            "empty body",
            json_ct,
            Vec::new(),
            400,
            ErrorCode::MalformedJson,
        ),
        (
            "trailing garbage",
            json_ct,
            [body(vec![valid()]), b"}}".to_vec()].concat(),
            400,
            ErrorCode::MalformedJson,
        ),
        (
            "changes is a number",
            json_ct,
            br#"{"changes": 5}"#.to_vec(),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            "JSON null",
            json_ct,
            b"null".to_vec(),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            "JSON array",
            json_ct,
            serde_json::to_vec(&json!([valid()])).unwrap(),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            "missing changes",
            json_ct,
            b"{}".to_vec(),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            "hlc is a number",
            json_ct,
            body(vec![valid(), hlc_number]),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            "hlc is not a clock",
            json_ct,
            body(vec![valid(), bad_hlc]),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            "unknown entity",
            json_ct,
            body(vec![valid(), bad_entity]),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            "unknown op",
            json_ct,
            body(vec![valid(), bad_op]),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            "a change without payload",
            json_ct,
            body(vec![valid(), missing_field]),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            "unknown top-level field",
            json_ct,
            serde_json::to_vec(&json!({ "changes": [valid()], "force": true })).unwrap(),
            400,
            ErrorCode::UnknownField,
        ),
        (
            "unknown field in a change",
            json_ct,
            body(vec![valid(), with_extra]),
            400,
            ErrorCode::UnknownField,
        ),
        (
            "change id not a UUID",
            json_ct,
            body(vec![valid(), bad_id]),
            400,
            ErrorCode::InvalidUuid,
        ),
        (
            "entity id not a UUID",
            json_ct,
            body(vec![valid(), bad_entity_id]),
            400,
            ErrorCode::InvalidUuid,
        ),
        (
            "no content type",
            None,
            body(vec![valid()]),
            415,
            ErrorCode::UnsupportedMediaType,
        ),
        (
            "text/plain",
            Some("text/plain"),
            body(vec![valid()]),
            415,
            ErrorCode::UnsupportedMediaType,
        ),
        (
            "clock beyond the allowed skew",
            json_ct,
            body(vec![valid(), change_json(&future)]),
            400,
            ErrorCode::ClockSkew,
        ),
        (
            "another device's change",
            json_ct,
            body(vec![valid(), change_json(&other_device)]),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            "a batch over the limit",
            json_ct,
            body(
                (0..=MAX_PUSH_CHANGES)
                    .map(|i| change_json(&touch_change(s, a, i % PROPERTIES, "bulk")))
                    .collect(),
            ),
            400,
            ErrorCode::BatchTooLarge,
        ),
    ];
    for (case, content_type, bytes, status, code) in structural {
        let got = raw(&h, "/v1/sync/push", token, content_type, None, bytes).await;
        assert_error(case, &got, status, code);
        assert_eq!(
            h.counts(a.id).await,
            before,
            "{case}: something was applied"
        );
    }

    // Bodies over the limit, plain and as a gzip bomb (small on the wire, huge once inflated).
    let mut oversized = body(vec![valid()]);
    oversized.pop(); // the closing brace
    oversized.extend(std::iter::repeat_n(b' ', MAX_BODY_BYTES + 1));
    oversized.push(b'}');
    let bomb = gzip(&oversized);
    let zstd_bomb = zstd(&oversized);
    assert!(bomb.len() < 1024 * 1024, "the bomb is small on the wire");
    assert!(
        zstd_bomb.len() < 1024 * 1024,
        "the zstd bomb is small on the wire"
    );
    for (case, bytes, encoding) in [
        ("a body over 16 MiB", oversized, None),
        ("a gzip bomb over 16 MiB inflated", bomb, Some("gzip")),
        ("a zstd bomb over 16 MiB inflated", zstd_bomb, Some("zstd")),
    ] {
        let got = raw(&h, "/v1/sync/push", token, json_ct, encoding, bytes).await;
        assert_error(case, &got, 413, ErrorCode::PayloadTooLarge);
        assert!(
            got.1["message"]
                .as_str()
                .is_some_and(|m| m.contains("16 MiB")),
            "{case}: the answer names the limit: {}",
            got.1
        );
        assert_eq!(got.1["details"]["limit_bytes"], json!(MAX_BODY_BYTES));
        assert_eq!(
            h.counts(a.id).await,
            before,
            "{case}: something was applied"
        );
    }
    for encoding in ["gzip", "zstd"] {
        let got = raw(
            &h,
            "/v1/sync/push",
            token,
            json_ct,
            Some(encoding),
            format!("this is not {encoding}").into_bytes(),
        )
        .await;
        assert!(
            got.0.is_client_error(),
            "a corrupt {encoding} body: {} {}",
            got.0,
            got.1
        );
        assert_eq!(
            h.counts(a.id).await,
            before,
            "a corrupt {encoding} body: something was applied"
        );
    }

    // Records that parse but are refused: 422 with receipts, the valid rider rolled back.
    let mut long_notes = touch(s, a.properties[0], a.storm, &"n".repeat(4_001));
    long_notes.notes = "n".repeat(4_001);
    let mut nul_notes = touch(s, a.properties[0], a.storm, "");
    nul_notes.notes = "before\0after".into();
    let mut touch_payload = serde_json::to_value(touch(s, a.properties[0], a.storm, "x")).unwrap();
    touch_payload["gps"] = json!([1, 2]);
    let touch_id = touch_payload["id"].clone();
    let mut wrong_kind = serde_json::to_value(touch(s, a.properties[0], a.storm, "x")).unwrap();
    wrong_kind["channel"] = json!("carrier_pigeon");
    let outcome_bad = {
        let mut o = outcome(a.properties[0], a.storm);
        o.converted = false; // not converted but with a contract value
        o
    };
    let mismatched = {
        let t = touch(s, a.properties[0], a.storm, "x");
        change(
            s,
            Entity::JourneyTouch,
            uuid::Uuid::now_v7(),
            ChangeOp::Insert,
            &t,
        )
    };
    let parse_uuid = |v: &Value| uuid::Uuid::parse_str(v.as_str().expect("id")).expect("uuid");
    let refusals: Vec<(&str, Change, &str)> = vec![
        (
            "notes over 4,000 characters",
            change(
                s,
                Entity::JourneyTouch,
                long_notes.id.0,
                ChangeOp::Insert,
                &long_notes,
            ),
            "validation_failed",
        ),
        (
            "notes with a NUL character",
            change(
                s,
                Entity::JourneyTouch,
                nul_notes.id.0,
                ChangeOp::Insert,
                &nul_notes,
            ),
            "validation_failed",
        ),
        (
            "unknown field in a payload",
            change(
                s,
                Entity::JourneyTouch,
                parse_uuid(&touch_id),
                ChangeOp::Insert,
                &touch_payload,
            ),
            "unknown_field",
        ),
        (
            "unknown channel",
            change(
                s,
                Entity::JourneyTouch,
                parse_uuid(&wrong_kind["id"]),
                ChangeOp::Insert,
                &wrong_kind,
            ),
            "validation_failed",
        ),
        (
            "inconsistent outcome",
            change(
                s,
                Entity::Outcome,
                outcome_bad.id.0,
                ChangeOp::Insert,
                &outcome_bad,
            ),
            "validation_failed",
        ),
        (
            "entity id differs from the record's id",
            mismatched,
            "validation_failed",
        ),
        (
            "updating an append-only record",
            {
                let mut c = touch_change(s, a, 0, "x");
                c.op = ChangeOp::Update;
                c
            },
            "append_only",
        ),
        (
            "a server-owned entity",
            change(
                s,
                Entity::UpliftScore,
                a.properties[0].0,
                ChangeOp::Insert,
                &json!({ "uplift": 0.9 }),
            ),
            "server_owned_field",
        ),
        (
            "an office-owned property field",
            change(
                s,
                Entity::Property,
                a.properties[0].0,
                ChangeOp::Update,
                &json!({ "home_value": 1 }),
            ),
            "server_owned_field",
        ),
        (
            "a property status that does not exist",
            change(
                s,
                Entity::Property,
                a.properties[0].0,
                ChangeOp::Update,
                &json!({ "status": "demolished" }),
            ),
            "validation_failed",
        ),
        (
            "a NUL in an owner name",
            change(
                s,
                Entity::Property,
                a.properties[0].0,
                ChangeOp::Update,
                &json!({ "owner_name": "Pat\u{0}" }),
            ),
            "validation_failed",
        ),
        (
            "an unknown property",
            status_change(
                s,
                domain::PropertyId::generate(),
                domain::PropertyStatus::Inspected,
            ),
            "unknown_record",
        ),
        (
            "deleting a property",
            change(
                s,
                Entity::Property,
                a.properties[0].0,
                ChangeOp::Delete,
                &Value::Null,
            ),
            "forbidden",
        ),
    ];
    for (case, bad, code) in refusals {
        let rider = touch_change(s, a, 0, "valid rider");
        let got = h.push(s, &[rider, bad]).await;
        assert_eq!(
            refused_codes(case, &got),
            vec![code.to_owned()],
            "{case}: {}",
            got.1
        );
        assert_eq!(
            h.counts(a.id).await,
            before,
            "{case}: something was applied"
        );
    }
    let property_before = h.property_json(a.id, a.properties[0]).await;

    // Pull mistakes.
    for (case, req, code) in [
        (
            "a cursor this server never issued",
            json!({ "cursor": "c1.1.' OR 1=1 --" }),
            ErrorCode::InvalidRequest,
        ),
        (
            "a negative limit",
            json!({ "limit": -1 }),
            ErrorCode::InvalidRequest,
        ),
        (
            "an unknown pull field",
            json!({ "since": 0 }),
            ErrorCode::UnknownField,
        ),
    ] {
        let got = h.post("/v1/sync/pull", token, &req).await;
        assert!(
            got.0.as_u16() < 500 && got.0.is_client_error(),
            "{case}: {} {}",
            got.0,
            got.1
        );
        assert_eq!(got.1["code"], json!(code.as_str()), "{case}: {}", got.1);
    }

    // SQL-looking and awkward text is stored verbatim and comes back identical; gzip and zstd bodies work.
    let nasty = [
        "'); DROP TABLE journey_touches; --",
        "Robert'); DELETE FROM properties WHERE ('1'='1",
        "\\x00 \\' \" $1 $$ E'\\n' %s {{}} ; COMMIT; --",
        "ünïcödé 屋根 🏠 \t tab \n newline \r\n",
    ];
    let mut pushed = Vec::new();
    for (i, notes) in nasty.iter().enumerate() {
        let c = touch_change(s, a, i % PROPERTIES, notes);
        pushed.push((c.entity_id, (*notes).to_owned()));
        let got = if i % 2 == 0 {
            h.push(s, std::slice::from_ref(&c)).await
        } else {
            let bytes = serde_json::to_vec(&json!({ "changes": [c] })).unwrap();
            let (encoding, body) = if i % 4 == 1 {
                ("gzip", gzip(&bytes))
            } else {
                ("zstd", zstd(&bytes))
            };
            raw(&h, "/v1/sync/push", token, json_ct, Some(encoding), body).await
        };
        assert_eq!(
            receipt_statuses(&format!("nasty notes {i}"), &got),
            vec!["accepted"]
        );
    }
    let owner = "O'Brien\"; DROP TABLE properties; --";
    let got = h
        .push(
            s,
            &[change(
                s,
                Entity::Property,
                a.properties[3].0,
                ChangeOp::Update,
                &json!({ "owner_name": owner }),
            )],
        )
        .await;
    assert_ok("a nasty owner name", &got);
    let rows = h
        .pull_until(a.session(Role::Admin), |rows| {
            // The feed first carries the property as seeded; the update is a later row, which a
            // concurrent transaction elsewhere in the cluster may hold back for a poll or two.
            let property_rows = rows
                .iter()
                .filter(|r| r.entity_id == a.properties[3].0)
                .count();
            property_rows >= 2
                && pushed
                    .iter()
                    .all(|(id, _)| rows.iter().any(|r| r.entity_id == *id))
        })
        .await;
    for (id, notes) in &pushed {
        let row = rows.iter().find(|r| r.entity_id == *id).expect("pulled");
        assert_eq!(
            row.record["notes"],
            json!(notes),
            "notes read back verbatim"
        );
    }
    let property = rows
        .iter()
        .rev()
        .find(|r| r.entity_id == a.properties[3].0)
        .expect("the property");
    assert_eq!(property.record["owner_name"], json!(owner));
    assert_eq!(
        h.count(a.id, "journey_touches").await,
        nasty.len() as i64,
        "the tables are all still there, holding exactly the accepted rows"
    );
    assert_eq!(
        h.property_json(a.id, a.properties[0]).await,
        property_before,
        "refused property changes left the property as it was"
    );
    assert_no_5xx(&h, "/v1/sync/push").await;
    h.stop().await;
}

async fn assert_no_5xx(h: &Harness, route: &str) {
    let text = h
        .http
        .get(h.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains(&format!(
            "stormops_http_requests_total{{route=\"{route}\",method=\"POST\",status=\"4xx\",plan=\""
        )),
        "the refusals were counted: {text}"
    );
    let fives: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("stormops_http_requests_total") && l.contains("5xx"))
        .collect();
    assert!(fives.is_empty(), "server errors were answered: {fives:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_logins_answer_4xx_and_register_nothing() {
    let h = Harness::start().await;
    let a = &h.a;
    let devices = h.count(a.id, "devices").await;
    let good = || {
        json!({ "tenant_slug": a.slug, "email": a.email(Role::FieldUser), "password": PASSWORD,
                "device_id": domain::DeviceId::generate(), "device_name": "laptop" })
    };
    let with = |field: &str, value: Value| {
        let mut v = good();
        v[field] = value;
        serde_json::to_vec(&v).unwrap()
    };
    let json_ct = Some("application/json");
    let mut extra = good();
    extra["role"] = json!("admin");
    let mut missing = good();
    missing.as_object_mut().expect("object").remove("device_id");
    let cases: Vec<RawCase> = vec![
        (
            "truncated JSON",
            json_ct,
            b"{\"tenant_slug\": ".to_vec(),
            400,
            ErrorCode::MalformedJson,
        ),
        (
            "email is a number",
            json_ct,
            with("email", json!(5)),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            "password is null",
            json_ct,
            with("password", Value::Null),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            "missing device id",
            json_ct,
            serde_json::to_vec(&missing).unwrap(),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            "a role smuggled in",
            json_ct,
            serde_json::to_vec(&extra).unwrap(),
            400,
            ErrorCode::UnknownField,
        ),
        (
            "device id not a UUID",
            json_ct,
            with("device_id", json!("laptop-1")),
            400,
            ErrorCode::InvalidUuid,
        ),
        (
            "no content type",
            None,
            serde_json::to_vec(&good()).unwrap(),
            415,
            ErrorCode::UnsupportedMediaType,
        ),
        (
            "a slug over 63 characters",
            json_ct,
            with("tenant_slug", json!("s".repeat(64))),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            "an empty device name",
            json_ct,
            with("device_name", json!("  ")),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            "a password over 1,024 characters",
            json_ct,
            with("password", json!("p".repeat(1_025))),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            "an SQL-looking slug",
            json_ct,
            with("tenant_slug", json!("x' OR '1'='1")),
            401,
            ErrorCode::InvalidCredentials,
        ),
        (
            "an SQL-looking email",
            json_ct,
            with("email", json!("' OR 1=1; --")),
            401,
            ErrorCode::InvalidCredentials,
        ),
        (
            "a NUL in the email",
            json_ct,
            with("email", json!("field@tenant-a.example\u{0}")),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            "a NUL in the slug",
            json_ct,
            with("tenant_slug", json!("tenant-a\u{0}")),
            400,
            ErrorCode::InvalidRequest,
        ),
    ];
    for (case, content_type, bytes, status, code) in cases {
        let got = raw(&h, "/v1/auth/login", None, content_type, None, bytes).await;
        assert_error(case, &got, status, code);
    }
    // The right password with a NUL in the device name: refused before the database.
    let got = raw(
        &h,
        "/v1/auth/login",
        None,
        json_ct,
        None,
        with("device_name", json!("lap\u{0}top")),
    )
    .await;
    assert_error(
        "a NUL in the device name",
        &got,
        400,
        ErrorCode::InvalidRequest,
    );
    assert_eq!(
        h.count(a.id, "devices").await,
        devices,
        "a refused sign-in registered a device"
    );
    // Refresh and logout with junk tokens.
    for path in ["/v1/auth/refresh", "/v1/auth/logout"] {
        for token in [
            json!("rt1.zz.zz"),
            json!(""),
            json!("rt1.00000000000000000000000000000000.\u{0}"),
        ] {
            let got = h.post(path, None, &json!({ "refresh_token": token })).await;
            assert_error(
                &format!("{path} {token}"),
                &got,
                401,
                ErrorCode::TokenInvalid,
            );
        }
        let got = h.post(path, None, &json!({ "refresh_token": 7 })).await;
        assert_error(
            &format!("{path} number"),
            &got,
            400,
            ErrorCode::InvalidRequest,
        );
    }
    assert_no_5xx(&h, "/v1/auth/login").await;
    h.stop().await;
}
