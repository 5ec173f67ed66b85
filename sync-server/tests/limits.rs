//! Plans, rate limits and quotas across TWO server instances sharing one database: the per-tenant rate
//! limit and the quotas hold across both (the counters live in PostgreSQL), refusals carry a stable code,
//! `Retry-After`, the limit and the plan that lifts it; soft limits warn in a response header; a refused
//! batch writes nothing; requests are metered by each instance's usage task; the usage route reports it.

mod harness;

use std::time::Duration;

use domain::{DeviceId, PlanTier, Role};
use harness::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use server_store::plans::PlanField;
use sync_protocol::{ErrorCode, LoginRequest, PROTOCOL_HEADER, PROTOCOL_VERSION};
use sync_server::serve::RunningServer;
use sync_server::state::ServerSettings;

/// An instance with rate limits on and no background metering (rounds are run by the test).
async fn limited_instance(h: &Harness) -> RunningServer {
    h.start_another(ServerSettings {
        rate_limits: true,
        usage_interval_secs: 0,
        train_interval_secs: 0,
        ..ServerSettings::default()
    })
    .await
}

fn base(server: &RunningServer) -> String {
    format!("http://{}", server.addr)
}

/// Signs `role` of `tenant` in on the instance at `base` with a new device (each instance has its own
/// token key, so a session belongs to the instance that issued it).
async fn login_at(base: &str, tenant: &TenantFixture, role: Role) -> Result<Session, (u16, Value)> {
    let client = sync_client::SyncClient::new(base).expect("client");
    let device = DeviceId::generate();
    let user = tenant.users.iter().find(|u| u.0 == role).expect("user").1;
    match client
        .login(&LoginRequest {
            tenant_slug: tenant.slug.clone(),
            email: tenant.email(role).to_owned(),
            password: PASSWORD.to_owned(),
            device_id: device,
            device_name: "limits laptop".into(),
        })
        .await
    {
        Ok(tokens) => Ok(Session {
            tokens,
            role,
            user,
            device,
            tenant: tenant.id,
        }),
        Err(sync_client::ClientError::Server { status, body }) => {
            Err((status, serde_json::to_value(body).unwrap_or_default()))
        }
        Err(e) => panic!("login failed unexpectedly: {e}"),
    }
}

async fn set_plan(h: &Harness, tier: PlanTier, changes: &[(PlanField, i64)]) {
    let mut tx = h.control.begin().await.expect("control tx");
    tx.update_plan(tier, changes, domain::Timestamp::now())
        .await
        .expect("plan update");
    tx.commit().await.expect("commit");
}

async fn get(
    h: &Harness,
    base: &str,
    path: &str,
    token: &str,
) -> (StatusCode, Option<String>, Value) {
    let response = h
        .http
        .get(format!("{base}{path}"))
        .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string())
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers");
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (status, body) = read(response).await;
    (status, retry, body)
}

/// Pushes through the instance at `base`; returns status, the quota-warning headers and the body.
async fn push_at(
    h: &Harness,
    base: &str,
    session: &Session,
    changes: &[sync_protocol::Change],
) -> (StatusCode, Vec<String>, Value) {
    let response = h
        .http
        .post(format!("{base}/v1/sync/push"))
        .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string())
        .bearer_auth(session.access())
        .json(&json!({ "changes": changes }))
        .send()
        .await
        .expect("the server answers");
    let warnings = response
        .headers()
        .get_all("stormops-quota-warning")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let (status, body) = read(response).await;
    (status, warnings, body)
}

/// Waits (if needed) until the current minute has at least 20 s left, so the burst below stays inside
/// one rate window and the expected count is exact.
async fn start_of_a_fresh_window() {
    let in_minute = domain::Timestamp::now().0.rem_euclid(60_000);
    if in_minute > 40_000 {
        tokio::time::sleep(Duration::from_millis((60_000 - in_minute + 200) as u64)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_holds_across_two_instances_and_names_the_plan_that_lifts_it() {
    let h = Harness::start().await;
    set_plan(
        &h,
        PlanTier::Standard,
        &[(PlanField::RequestsPerMinute, 20)],
    )
    .await;
    let one = limited_instance(&h).await;
    let two = limited_instance(&h).await;
    let (base_one, base_two) = (base(&one), base(&two));
    let a_one = login_at(&base_one, &h.a, Role::Admin).await.expect("login");
    let a_two = login_at(&base_two, &h.a, Role::FieldUser)
        .await
        .expect("login");
    let b_two = login_at(&base_two, &h.b, Role::Admin).await.expect("login");

    start_of_a_fresh_window().await;
    let mut ok = [0u32; 2];
    let mut limited = [0u32; 2];
    let mut refusal = None;
    for i in 0..40 {
        let (base, session, n) = if i % 2 == 0 {
            (&base_one, &a_one, 0)
        } else {
            (&base_two, &a_two, 1)
        };
        let (status, retry_after, body) = get(&h, base, "/v1/me", session.access()).await;
        match status {
            StatusCode::OK => ok[n] += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited[n] += 1;
                refusal = Some((retry_after, body));
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(
        ok[0] + ok[1],
        20,
        "exactly the plan's 20 requests of the minute, across both instances: {ok:?} {limited:?}"
    );
    assert!(ok[0] > 0 && ok[1] > 0, "both instances served: {ok:?}");
    assert!(
        limited[0] > 0 && limited[1] > 0,
        "both instances refused: {limited:?}"
    );
    let (retry_after, body) = refusal.expect("a refusal");
    assert_eq!(body["code"], ErrorCode::RateLimited.as_str(), "{body}");
    let retry: u64 = retry_after.expect("Retry-After").parse().expect("seconds");
    assert!((1..=120).contains(&retry), "{retry}");
    assert_eq!(body["details"]["limit"], "requests_per_minute");
    assert_eq!(body["details"]["plan"], "standard");
    assert_eq!(body["details"]["lifted_by"], "enterprise");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("20 API requests per minute")
            && message.contains("enterprise plan lifts it"),
        "{message}"
    );
    // Another tenant on the same instances is not affected.
    let (status, _, body) = get(&h, &base_two, "/v1/me", b_two.access()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Each instance counted its 429s by route and plan (the plan the limiter read), never by tenant.
    for (base, n) in [(&base_one, 0), (&base_two, 1)] {
        let text = h
            .http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        let needle = format!(
            "stormops_rate_limited_total{{route=\"/v1/me\",plan=\"standard\"}} {}",
            limited[n]
        );
        assert!(text.contains(&needle), "lacks `{needle}`:\n{text}");
        assert!(!text.contains(&h.a.id.to_string()) && !text.contains(&h.a.slug));
    }
    // The shared counter: what PostgreSQL granted tenant A this minute is the plan's limit.
    let granted: i64 = {
        let mut tx = h.app.begin_tenant(h.a.id).await.expect("tx");
        let n = sqlx::query_scalar("SELECT coalesce(max(granted), 0)::bigint FROM rate_windows")
            .fetch_one(tx.connection())
            .await
            .expect("granted");
        tx.commit().await.expect("commit");
        n
    };
    assert_eq!(granted, 20);

    // Every authenticated request was counted by the instance that saw it; the usage task flushes the
    // counts as idempotent usage events.
    let flushed_one = sync_server::usage_task::flush_requests(&one.state)
        .await
        .expect("flush");
    let flushed_two = sync_server::usage_task::flush_requests(&two.state)
        .await
        .expect("flush");
    assert_eq!(
        flushed_one + flushed_two,
        41,
        "40 of tenant A and 1 of tenant B"
    );
    let requests: i64 = {
        let mut tx = h.app.begin_tenant(h.a.id).await.expect("tx");
        let n = sqlx::query_scalar(
            "SELECT coalesce(sum(units), 0)::bigint FROM usage_events WHERE kind = 'requests'",
        )
        .fetch_one(tx.connection())
        .await
        .expect("requests");
        tx.commit().await.expect("commit");
        n
    };
    assert_eq!(requests, 40);
    one.stop().await;
    two.stop().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_hold_across_two_instances_soft_limits_warn_and_hard_limits_refuse() {
    let h = Harness::start().await;
    set_plan(
        &h,
        PlanTier::Standard,
        &[
            (PlanField::MonthlyEvents, 3),
            (PlanField::MonthlyEventsHard, 6),
        ],
    )
    .await;
    let one = limited_instance(&h).await;
    let two = limited_instance(&h).await;
    let (base_one, base_two) = (base(&one), base(&two));
    let field_one = login_at(&base_one, &h.a, Role::FieldUser)
        .await
        .expect("login");
    let field_two = login_at(&base_two, &h.a, Role::FieldUser)
        .await
        .expect("login");
    let a = &h.a;

    // 2 of 3 included: no warning.
    let first: Vec<_> = (0..2)
        .map(|i| touch_change(&field_one, a, i, "q1"))
        .collect();
    let (status, warnings, body) = push_at(&h, &base_one, &field_one, &first).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(warnings.is_empty(), "{warnings:?}");
    // 4 of 3 on the other instance: accepted with a warning naming the limit and the plan.
    let second: Vec<_> = (0..2)
        .map(|i| touch_change(&field_two, a, i, "q2"))
        .collect();
    let (status, warnings, body) = push_at(&h, &base_two, &field_two, &second).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("synced_events_per_month 4 of 3 included in the standard plan")
            && warnings[0].contains("enterprise plan lifts it"),
        "{}",
        warnings[0]
    );
    // Starts below the hard limit (4 < 6): accepted, ends at 7.
    let third: Vec<_> = (0..3)
        .map(|i| touch_change(&field_one, a, i, "q3"))
        .collect();
    let (status, warnings, body) = push_at(&h, &base_one, &field_one, &third).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(warnings.len(), 1);
    // Now at or above the hard limit on BOTH instances: refused, nothing written.
    let before = h.counts(a.id).await;
    for (base, session) in [(&base_two, &field_two), (&base_one, &field_one)] {
        let refused = vec![touch_change(session, a, 0, "refused")];
        let (status, _, body) = push_at(&h, base, session, &refused).await;
        assert_error(
            "push over the hard limit",
            &(status, body.clone()),
            429,
            ErrorCode::QuotaExceeded,
        );
        assert_eq!(body["details"]["limit"], "synced_events_per_month");
        assert_eq!(body["details"]["plan"], "standard");
        assert_eq!(body["details"]["lifted_by"], "enterprise");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains("enterprise plan lifts it"), "{message}");
    }
    assert_eq!(
        h.counts(a.id).await,
        before,
        "a refused batch writes nothing"
    );
    // A replay of an accepted batch is not new usage: still acknowledged.
    let (status, _, body) = push_at(&h, &base_one, &field_one, &first).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["receipts"]
            .as_array()
            .is_some_and(|r| r.iter().all(|r| r["status"] == "duplicate")),
        "{body}"
    );
    // Tenant B has its own month.
    let b_field = login_at(&base_two, &h.b, Role::FieldUser)
        .await
        .expect("login");
    let b_change = vec![touch_change(&b_field, &h.b, 0, "b")];
    let (status, _, body) = push_at(&h, &base_two, &b_field, &b_change).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Devices (hard): one more seat, taken on instance one; instance two refuses the next new device.
    let devices = h.count(a.id, "devices").await;
    set_plan(
        &h,
        PlanTier::Standard,
        &[(PlanField::MaxDevices, devices + 1)],
    )
    .await;
    login_at(&base_one, a, Role::Viewer)
        .await
        .expect("the last seat");
    let (status, body) = login_at(&base_two, a, Role::Viewer)
        .await
        .expect_err("no seat left");
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], ErrorCode::QuotaExceeded.as_str());
    assert_eq!(body["details"]["limit"], "devices");
    assert_eq!(h.count(a.id, "devices").await, devices + 1);

    // The office's usage screen: the limits, their status, and the recommendation.
    let admin = login_at(&base_one, a, Role::Admin).await;
    assert!(admin.is_err(), "no device seat left for the admin either");
    let admin = a.session(Role::Admin);
    let (status, body) = h.get("/v1/admin/usage", Some(admin.access())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["plan"]["name"], "standard");
    let events = body["limits"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["limit"] == "synced_events_per_month"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (events["used"].as_i64(), events["status"].as_str()),
        (Some(7), Some("at_hard"))
    );
    assert_eq!(body["recommendation"]["plan"], "enterprise", "{body}");
    assert!(
        body["warnings"].as_array().is_some_and(|w| !w.is_empty()),
        "{body}"
    );
    // Crew chiefs and viewers read it like every office screen; field users do not.
    let got = h
        .get("/v1/admin/usage", Some(a.session(Role::FieldUser).access()))
        .await;
    assert_error("usage for a field user", &got, 403, ErrorCode::Forbidden);
    for role in [Role::CrewChief, Role::Viewer] {
        let got = h
            .get("/v1/admin/usage", Some(a.session(role).access()))
            .await;
        assert_ok("usage for a chief or viewer", &got);
    }
    one.stop().await;
    two.stop().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_cli_changes_plans_and_prints_usage_and_invoices() {
    let h = Harness::start().await;
    let (ok, plans) = h.operator_cli(&["plan", "list"]);
    assert!(ok, "{plans}");
    let names: Vec<&str> = plans["plans"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["trial", "standard", "enterprise"]);
    assert_eq!(plans["plans"][1]["requests_per_minute"], 1_200);
    assert_eq!(plans["plans"][0]["max_users"], 5);

    let (ok, set) = h.operator_cli(&["plan", "set", "standard", "--requests-per-minute", "1500"]);
    assert!(ok, "{set}");
    assert_eq!(set["plan"]["requests_per_minute"], 1_500);
    // Unknown plans and inconsistent values are typed errors that change nothing.
    let (ok, err) = h.operator_cli(&["plan", "set", "platinum", "--users", "3"]);
    assert!(!ok);
    assert_eq!(err["error"]["code"], "unknown_plan", "{err}");
    let (ok, err) = h.operator_cli(&["tenant", "set-plan", "tenant-a", "gold"]);
    assert!(!ok);
    assert_eq!(err["error"]["code"], "unknown_plan", "{err}");
    let (ok, err) = h.operator_cli(&["plan", "set", "trial", "--events-per-month-hard", "10"]);
    assert!(!ok);
    assert_eq!(err["error"]["code"], "invalid_input", "{err}");
    let (ok, err) = h.operator_cli(&["tenant", "set-plan", "nobody", "trial"]);
    assert!(!ok);
    assert_eq!(err["error"]["code"], "not_found", "{err}");
    let (_, plans) = h.operator_cli(&["plan", "list"]);
    assert_eq!(plans["plans"][0]["monthly_events_hard"], 50_000);

    // Three synced events, then the usage over the last 30 days.
    let field = h.a.session(Role::FieldUser);
    let changes: Vec<_> = (0..3)
        .map(|i| touch_change(field, &h.a, i, "cli"))
        .collect();
    let got = h.push(field, &changes).await;
    assert_ok("push", &got);
    let (ok, usage) = h.operator_cli(&["tenant", "usage", "--days", "30", "--tenant", "tenant-a"]);
    assert!(ok, "{usage}");
    let a = &usage["tenants"][0];
    assert_eq!(a["tenant"], "tenant-a");
    assert_eq!(a["usage"]["synced_events"], 3, "{a}");
    assert!(
        a["usage"]["storage_latest_bytes"].as_i64().unwrap_or(0) > 0,
        "storage sampled: {a}"
    );
    assert_eq!(a["this_month"]["plan"]["name"], "standard");
    let (ok, all) = h.operator_cli(&["tenant", "usage", "--days", "30"]);
    assert!(ok);
    assert_eq!(all["tenants"].as_array().map(Vec::len), Some(2));
    let (ok, err) = h.operator_cli(&["tenant", "usage", "--days", "30", "--tenant", "nobody"]);
    assert!(!ok);
    assert_eq!(err["error"]["code"], "not_found");

    // Moved to enterprise, the month's invoice is its base fee (no overage), as JSON and CSV.
    let (ok, moved) = h.operator_cli(&["tenant", "set-plan", "tenant-a", "enterprise"]);
    assert!(ok, "{moved}");
    let month = a["this_month"]["month"].as_str().expect("month").to_owned();
    let (ok, invoice) = h.operator_cli(&[
        "tenant", "invoice", "--tenant", "tenant-a", "--month", &month,
    ]);
    assert!(ok, "{invoice}");
    assert_eq!(invoice["plan"], "enterprise");
    assert_eq!(invoice["lines"][0]["code"], "base_fee");
    assert_eq!(invoice["lines"][0]["amount_cents"], 499_900);
    assert_eq!(invoice["total_cents"], 499_900);
    assert_eq!(invoice["usage"]["synced_events"], 3);
    let (ok, csv) = h.operator_cli(&[
        "tenant", "invoice", "--tenant", "tenant-a", "--month", &month, "--csv",
    ]);
    assert!(ok, "{csv}");
    let csv = csv["csv"].as_str().unwrap_or_default().to_owned();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 7, "header, five lines, total: {csv}");
    assert_eq!(
        lines[0],
        "tenant,month,plan,code,description,quantity,unit,unit_price_cents,amount_cents"
    );
    assert!(
        lines[6].ends_with(",total,\"total\",,,,499900"),
        "{}",
        lines[6]
    );
    let (ok, err) = h.operator_cli(&[
        "tenant", "invoice", "--tenant", "tenant-a", "--month", "2026-13",
    ]);
    assert!(!ok);
    assert_eq!(err["error"]["code"], "invalid_input", "{err}");
    h.stop().await;
}
