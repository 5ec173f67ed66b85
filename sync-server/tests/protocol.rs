//! The protocol surface over HTTP: the version gate (426 `upgrade_required` for clients without the
//! header or with an older protocol, on sync routes and on /v1/hello), the handshake, liveness,
//! readiness (200 when migrated, 503 when the schema does not match the build), Prometheus metrics with
//! the request counters (labelled by plan, never by tenant), the OpenAPI document listing every route,
//! request ids, and JSON 404s.

mod harness;

use domain::Role;
use harness::*;
use serde_json::json;
use sqlx::Connection as _;
use sync_client::SyncClient;
use sync_protocol::{
    ErrorCode, MAX_PUSH_CHANGES, MIN_PROTOCOL_VERSION, PROTOCOL_HEADER, PROTOCOL_VERSION,
};
use sync_server::openapi::ROUTES;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_protocol_surface_answers_as_documented() {
    let h = Harness::start().await;
    let s = h.a.session(Role::FieldUser);

    // The version gate on sync routes, with and without a token.
    for path in ["/v1/sync/push", "/v1/sync/pull"] {
        for token in [Some(s.access()), None] {
            for header in [None, Some("0"), Some("abc"), Some("")] {
                let mut r = h.http.post(h.url(path)).json(&json!({ "changes": [] }));
                if let Some(t) = token {
                    r = r.bearer_auth(t);
                }
                if let Some(v) = header {
                    r = r.header(PROTOCOL_HEADER, v);
                }
                let got = read(r.send().await.expect("answer")).await;
                let case = format!("{path} header {header:?} token {}", token.is_some());
                assert_error(&case, &got, 426, ErrorCode::UpgradeRequired);
                assert_eq!(
                    got.1["details"]["min_protocol"],
                    json!(MIN_PROTOCOL_VERSION)
                );
                assert!(
                    got.1["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("nothing recorded offline is lost")),
                    "{case}: {}",
                    got.1
                );
            }
            // A newer protocol than the server's is a client bug, not an upgrade.
            let mut r = h
                .http
                .post(h.url(path))
                .header(PROTOCOL_HEADER, (PROTOCOL_VERSION + 1).to_string())
                .json(&json!({ "changes": [] }));
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let got = read(r.send().await.expect("answer")).await;
            assert_error(
                &format!("{path} newer protocol"),
                &got,
                400,
                ErrorCode::InvalidRequest,
            );
        }
    }
    // The typed client of an old protocol gets the same on hello and on sync.
    let old = SyncClient::with_protocol(&h.base, 0).expect("client");
    let err = old.hello("0.0.1").await.expect_err("old hello");
    assert_eq!(err.code(), Some(ErrorCode::UpgradeRequired), "{err}");
    let err = old
        .pull(s.access(), None, None)
        .await
        .expect_err("old pull");
    assert_eq!(err.code(), Some(ErrorCode::UpgradeRequired), "{err}");
    let err = old.push(s.access(), &[]).await.expect_err("old push");
    assert_eq!(err.code(), Some(ErrorCode::UpgradeRequired), "{err}");
    let got = h
        .post(
            "/v1/hello",
            None,
            &json!({ "protocol_version": 0, "client_version": "0.0.1" }),
        )
        .await;
    assert_error("hello protocol 0", &got, 426, ErrorCode::UpgradeRequired);

    // The handshake of a current client.
    let hello = h.client.hello("test").await.expect("hello");
    assert_eq!(hello.protocol_version, PROTOCOL_VERSION);
    assert_eq!(hello.min_protocol_version, MIN_PROTOCOL_VERSION);
    assert_eq!(hello.max_push_changes, MAX_PUSH_CHANGES);
    assert!(hello.capabilities.iter().any(|c| c == "gzip"));
    assert!(hello.capabilities.iter().any(|c| c == "zstd"));
    assert!((hello.server_time_ms - domain::Timestamp::now().millis()).abs() < 3_600_000);
    let got = h
        .post(
            "/v1/hello",
            None,
            &json!({ "protocol_version": 1, "client_version": "t", "extra": 1 }),
        )
        .await;
    assert_error(
        "hello with an unknown field",
        &got,
        400,
        ErrorCode::UnknownField,
    );

    // A current client syncs.
    assert_ok(
        "push with the header",
        &h.push(s, &[touch_change(s, &h.a, 0, "ok")]).await,
    );

    // Liveness and readiness.
    assert_eq!(
        h.get("/healthz", None).await,
        (reqwest::StatusCode::OK, json!({ "status": "ok" }))
    );
    assert_eq!(
        h.get("/readyz", None).await,
        (reqwest::StatusCode::OK, json!({ "status": "ready" }))
    );
    // A schema ahead of this build (a migration this binary does not know): not ready, 503.
    let mut su = sqlx::PgConnection::connect(&h.db.superuser_url)
        .await
        .expect("superuser");
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99990101000000, 'from the future', true, '\\x00'::bytea, 0)",
    )
    .execute(&mut su)
    .await
    .expect("fake migration");
    let got = h.get("/readyz", None).await;
    assert_eq!(
        (got.0.as_u16(), got.1["code"].as_str()),
        (503, Some("unavailable")),
        "readyz with a foreign migration: {}",
        got.1
    );
    assert!(
        got.1["details"]["applied"]
            .as_array()
            .is_some_and(|a| a.contains(&json!(99990101000000_i64))),
        "{}",
        got.1
    );
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 99990101000000")
        .execute(&mut su)
        .await
        .expect("remove the fake");
    su.close().await.expect("close");
    assert_eq!(h.get("/readyz", None).await.0, reqwest::StatusCode::OK);

    // Metrics: the Prometheus text format with the request counters of what happened above.
    let response = h.http.get(h.url("/metrics")).send().await.expect("metrics");
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain")),
        "metrics content type"
    );
    let text = response.text().await.expect("text");
    for needle in [
        "# TYPE stormops_http_requests_total counter",
        "stormops_http_requests_total{route=\"/v1/sync/push\",method=\"POST\",status=\"4xx\",plan=\"",
        "stormops_http_requests_total{route=\"/v1/sync/push\",method=\"POST\",status=\"2xx\",plan=\"standard\"} 1",
        "stormops_http_requests_total{route=\"/v1/hello\",method=\"POST\",status=\"2xx\",plan=\"none\"}",
        "stormops_http_requests_total{route=\"/readyz\",method=\"GET\",status=\"5xx\",plan=\"none\"} 1",
        "stormops_http_requests_total{route=\"/v1/auth/login\",method=\"POST\",status=\"2xx\",plan=\"none\"} 8",
        "# TYPE stormops_http_request_duration_seconds histogram",
        "stormops_http_request_duration_seconds_count{route=\"/v1/sync/push\",plan=\"standard\"}",
        "stormops_sync_changes_total{status=\"accepted\",plan=\"standard\"} 1",
    ] {
        assert!(text.contains(needle), "metrics lack `{needle}`:\n{text}");
    }
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let value = line.rsplit(' ').next().unwrap_or("");
        assert!(
            value.parse::<f64>().is_ok(),
            "not a Prometheus sample: {line}"
        );
    }

    // The OpenAPI document lists every route, and the router serves every route it lists.
    let (status, doc) = h.get("/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], json!("3.1.0"));
    // Every documented operation is a route (a path may carry several methods).
    let operations: usize = doc["paths"]
        .as_object()
        .map(|p| {
            p.values()
                .filter_map(|v| v.as_object())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(operations, ROUTES.len());
    let any_device = uuid::Uuid::now_v7().to_string();
    for (method, path) in ROUTES {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from /openapi.json"
        );
        let concrete = path.replace("{device_id}", &any_device);
        let request = match *method {
            "get" => h.http.get(h.url(&concrete)),
            _ => h.http.post(h.url(&concrete)).json(&json!({})),
        };
        let got = read(
            request
                .header(PROTOCOL_HEADER, "1")
                .send()
                .await
                .expect("answer"),
        )
        .await;
        assert!(
            got.0.as_u16() < 500 && got.1["message"] != json!("no such route; see /openapi.json"),
            "{method} {path} is not served: {} {}",
            got.0,
            got.1
        );
    }

    // Unknown routes and methods: JSON errors, never 5xx; every answer carries a request id.
    let response = h
        .http
        .get(h.url("/v1/nothing-here"))
        .send()
        .await
        .expect("answer");
    assert!(
        response.headers().contains_key("x-request-id"),
        "request id"
    );
    let got = read(response).await;
    assert_error("unknown route", &got, 404, ErrorCode::NotFound);
    let got = read(
        h.http
            .get(h.url("/v1/sync/push"))
            .header(PROTOCOL_HEADER, "1")
            .send()
            .await
            .expect("answer"),
    )
    .await;
    assert!(
        got.0.is_client_error(),
        "GET on a POST route: {} {}",
        got.0,
        got.1
    );
    h.stop().await;
}

/// The hot-path metrics carry the caller's plan (a closed set) and never a tenant: after requests of a
/// standard and an enterprise tenant, one scrape shows both plans' series and neither tenant's id or slug.
/// A plan change shows from the tenant's next request on (the plan rides on the status check's row).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_path_metrics_are_labelled_by_plan_never_by_tenant() {
    let h = Harness::start().await;
    let (ok, answer) = h.operator_cli(&["tenant", "set-plan", &h.b.slug, "enterprise"]);
    assert!(ok, "set-plan: {answer}");
    let a = h.a.session(Role::FieldUser);
    let b = h.b.session(Role::FieldUser);
    assert_ok(
        "push of A",
        &h.push(a, &[touch_change(a, &h.a, 0, "a")]).await,
    );
    for n in 0..2 {
        assert_ok(
            "push of B",
            &h.push(b, &[touch_change(b, &h.b, n, "b")]).await,
        );
    }
    h.pull_until(a, |rows| !rows.is_empty()).await;
    h.pull_until(b, |rows| !rows.is_empty()).await;
    // A refused batch (a touch of a property B cannot see) counts as refused under B's plan.
    let foreign = touch(b, h.a.properties[0], h.a.storm, "not mine");
    let got = h
        .push(
            b,
            &[change(
                b,
                sync_protocol::Entity::JourneyTouch,
                foreign.id.0,
                sync_protocol::ChangeOp::Insert,
                &foreign,
            )],
        )
        .await;
    assert_eq!(got.0, 422, "{}", got.1);

    let text = h
        .http
        .get(h.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for needle in [
        "stormops_http_requests_total{route=\"/v1/sync/push\",method=\"POST\",status=\"2xx\",plan=\"standard\"} 1",
        "stormops_http_requests_total{route=\"/v1/sync/push\",method=\"POST\",status=\"2xx\",plan=\"enterprise\"} 2",
        "stormops_http_requests_total{route=\"/v1/sync/push\",method=\"POST\",status=\"4xx\",plan=\"enterprise\"} 1",
        "stormops_http_request_duration_seconds_count{route=\"/v1/sync/push\",plan=\"enterprise\"} 3",
        "stormops_http_request_duration_seconds_count{route=\"/v1/sync/pull\",plan=\"standard\"}",
        "stormops_sync_changes_total{status=\"accepted\",plan=\"standard\"} 1",
        "stormops_sync_changes_total{status=\"accepted\",plan=\"enterprise\"} 2",
        "stormops_sync_changes_total{status=\"refused\",plan=\"enterprise\"} 1",
        "stormops_sync_changes_total{status=\"accepted\",plan=\"trial\"} 0",
        "stormops_http_requests_total{route=\"/v1/auth/login\",method=\"POST\",status=\"2xx\",plan=\"none\"}",
    ] {
        assert!(text.contains(needle), "metrics lack `{needle}`:\n{text}");
    }
    for plan in ["standard", "enterprise"] {
        let pulled = text
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "stormops_sync_rows_pulled_total{{plan=\"{plan}\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok());
        assert!(pulled.is_some_and(|n| n > 0), "{plan} pulled rows: {text}");
    }
    // Every plan label is one of the four known values; no tenant id or slug anywhere.
    for value in text.split("plan=\"").skip(1) {
        let value = value.split('"').next().unwrap_or("");
        assert!(
            ["none", "trial", "standard", "enterprise"].contains(&value),
            "unexpected plan label {value:?}"
        );
    }
    for t in [&h.a, &h.b] {
        assert!(
            !text.contains(&t.id.to_string()) && !text.contains(&t.slug),
            "metrics name tenant {}",
            t.slug
        );
    }
    h.stop().await;
}
