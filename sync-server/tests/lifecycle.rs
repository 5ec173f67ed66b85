//! The tenant platform over real HTTP and the real binary: suspension refuses sync and the API with
//! `tenant_suspended` and keeps the data; the audit log's admin routes (filters, paging, CSV and JSON-lines
//! export, admins only); the users and crews admin API with the product's role rules; and the operator
//! CLI's lifecycle and legacy-import commands with their typed errors.

mod harness;

use domain::{PropertyStatus, Role};
use harness::{Harness, assert_error, assert_ok, status_change};
use legacy_import::generate::{GenerateOptions, generate};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sync_protocol::ErrorCode;

async fn patch(h: &Harness, path: &str, token: &str, body: &Value) -> (StatusCode, Value) {
    let response = h
        .http
        .patch(h.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("the server answers");
    harness::read(response).await
}

async fn get_text(h: &Harness, path: &str, token: &str) -> (StatusCode, String, String) {
    let response = h
        .http
        .get(h.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, content_type, response.text().await.expect("body"))
}

#[tokio::test]
async fn a_suspended_tenant_is_refused_for_sync_and_api_and_reactivation_restores_it() {
    let h = Harness::start().await;
    let field = h.a.session(Role::FieldUser).clone();
    let admin = h.a.session(Role::Admin).clone();
    let before = h.count(h.a.id, "properties").await;
    sync_server::provisioning::suspend(&h.init.control_url, &h.a.slug)
        .await
        .expect("suspend");

    let change = status_change(&field, h.a.properties[0], PropertyStatus::InProgress);
    let pushed = h.push(&field, std::slice::from_ref(&change)).await;
    assert_error(
        "push while suspended",
        &pushed,
        403,
        ErrorCode::TenantSuspended,
    );
    let listed = h.get("/v1/admin/users", Some(admin.access())).await;
    assert_error(
        "API while suspended",
        &listed,
        403,
        ErrorCode::TenantSuspended,
    );
    let audit = h.get("/v1/admin/audit", Some(admin.access())).await;
    assert_error(
        "audit while suspended",
        &audit,
        403,
        ErrorCode::TenantSuspended,
    );
    // The other tenant is untouched.
    let other = h
        .get("/v1/admin/users", Some(h.b.session(Role::Admin).access()))
        .await;
    assert_ok("other tenant", &other);
    assert_eq!(h.count(h.a.id, "properties").await, before);

    sync_server::provisioning::reactivate(&h.init.control_url, &h.a.slug)
        .await
        .expect("reactivate");
    let pushed = h.push(&field, &[change]).await;
    assert_ok("push after reactivation", &pushed);
    // Both steps are in the tenant's audit log.
    let (status, body) = h
        .get(
            "/v1/admin/audit?action=tenant.suspend",
            Some(admin.access()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["entries"].as_array().map(Vec::len), Some(1));
    h.stop().await;
}

#[tokio::test]
async fn the_audit_log_is_queried_paged_and_exported_by_admins_only() {
    let h = Harness::start().await;
    let admin = h.a.session(Role::Admin).clone();
    let field = h.a.session(Role::FieldUser).clone();
    let change = status_change(&field, h.a.properties[1], PropertyStatus::Inspected);
    assert_ok("push", &h.push(&field, &[change]).await);

    let (status, body) = h.get("/v1/admin/audit", Some(admin.access())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let entries = body["entries"].as_array().expect("entries");
    let actions: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for expected in [
        "auth.login",
        "sync.push",
        "tenant.create",
        "device.register",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    // Newest first; a push names its user, device and request id.
    let push = entries
        .iter()
        .find(|e| e["action"] == "sync.push")
        .expect("push entry");
    assert_eq!(push["actor"], json!(field.user));
    assert_eq!(push["device_id"], json!(field.device));
    assert!(push["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    let ats: Vec<i64> = entries.iter().filter_map(|e| e["at"].as_i64()).collect();
    assert!(ats.windows(2).all(|w| w[0] >= w[1]));

    // Filters: by action and by user.
    let (_, logins) = h
        .get("/v1/admin/audit?action=auth.login", Some(admin.access()))
        .await;
    let logins = logins["entries"].as_array().expect("entries").clone();
    assert_eq!(logins.len(), 4, "one login per role: {logins:?}");
    let (_, mine) = h
        .get(
            &format!("/v1/admin/audit?user={}", field.user),
            Some(admin.access()),
        )
        .await;
    assert!(
        mine["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .all(|e| e["actor"] == json!(field.user))
    );
    let (_, none) = h
        .get("/v1/admin/audit?since=4102444800000", Some(admin.access()))
        .await;
    assert_eq!(none["entries"], json!([]));

    // Paging: pages of 2 cover every entry exactly once.
    let total = entries.len();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/admin/audit?limit=2&cursor={c}"),
            None => "/v1/admin/audit?limit=2".to_owned(),
        };
        let (status, page) = h.get(&path, Some(admin.access())).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for e in page["entries"].as_array().expect("entries") {
            seen.push(e["id"].as_str().expect("id").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let unique: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());
    assert!(seen.len() >= total);

    // Export: CSV with a header and one line per entry; JSON lines parse.
    let (status, content_type, csv) = get_text(&h, "/v1/admin/audit/export", admin.access()).await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    assert!(content_type.starts_with("text/csv"));
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("id,at,actor,action,target,device_id,request_id")
    );
    assert!(lines.clone().count() >= total);
    assert!(lines.any(|l| l.contains(",sync.push,")));
    let (status, _, jsonl) = get_text(
        &h,
        "/v1/admin/audit/export?format=jsonl&action=auth.login",
        admin.access(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let parsed: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(parsed.len(), 4);

    // Only admins; another tenant's admin sees only its own log.
    for role in [Role::CrewChief, Role::FieldUser, Role::Viewer] {
        let got = h
            .get("/v1/admin/audit", Some(h.a.session(role).access()))
            .await;
        assert_error("non-admin audit", &got, 403, ErrorCode::Forbidden);
        let (status, _, _) =
            get_text(&h, "/v1/admin/audit/export", h.a.session(role).access()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (_, theirs) = h
        .get(
            "/v1/admin/audit?limit=1000",
            Some(h.b.session(Role::Admin).access()),
        )
        .await;
    assert!(
        theirs["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .all(|e| e["actor"] != json!(field.user))
    );
    // Bad parameters are 400 with a code, never 500.
    for bad in [
        "/v1/admin/audit?since=yesterday",
        "/v1/admin/audit?user=nobody",
        "/v1/admin/audit?cursor=xyz",
        "/v1/admin/audit?since=5&until=4",
        "/v1/admin/audit?colour=red",
        "/v1/admin/audit/export?format=xml",
    ] {
        let got = h.get(bad, Some(admin.access())).await;
        assert_error(bad, &got, 400, ErrorCode::InvalidRequest);
    }
    h.stop().await;
}

#[tokio::test]
async fn users_and_crews_follow_the_role_rules_and_every_change_is_audited() {
    let h = Harness::start().await;
    let admin = h.a.session(Role::Admin).clone();

    // Readers: admin, crew chief, viewer; field users are refused.
    for role in [Role::Admin, Role::CrewChief, Role::Viewer] {
        let token = h.a.session(role).access().to_owned();
        assert_ok("list users", &h.get("/v1/admin/users", Some(&token)).await);
        assert_ok("list crews", &h.get("/v1/admin/crews", Some(&token)).await);
    }
    let field = h.a.session(Role::FieldUser).access().to_owned();
    assert_error(
        "field lists users",
        &h.get("/v1/admin/users", Some(&field)).await,
        403,
        ErrorCode::Forbidden,
    );

    // Writers: admins only.
    let crew_body = json!({ "name": "North crew" });
    for role in [Role::CrewChief, Role::FieldUser, Role::Viewer] {
        let got = h
            .post(
                "/v1/admin/crews",
                Some(h.a.session(role).access()),
                &crew_body,
            )
            .await;
        assert_error("non-admin creates crew", &got, 403, ErrorCode::Forbidden);
    }
    let (status, crew) = h
        .post("/v1/admin/crews", Some(admin.access()), &crew_body)
        .await;
    assert_eq!(status, StatusCode::OK, "{crew}");
    let crew_id = crew["crew"]["id"].as_str().expect("crew id").to_owned();
    let bad_chief = h
        .post(
            "/v1/admin/crews",
            Some(admin.access()),
            &json!({ "name": "Ghost crew", "chief_id": uuid::Uuid::now_v7() }),
        )
        .await;
    assert_error(
        "unknown chief",
        &bad_chief,
        422,
        ErrorCode::ForeignReference,
    );

    let new_user = json!({
        "email": "new.canvasser@tenant-a.example", "name": "New Canvasser", "role": "field_user",
        "crew_id": crew_id, "password": harness::PASSWORD,
    });
    let (status, created) = h
        .post("/v1/admin/users", Some(admin.access()), &new_user)
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let user_id = created["user"]["id"].as_str().expect("user id").to_owned();
    assert_eq!(created["user"]["crew_id"], json!(crew_id));
    let again = h
        .post("/v1/admin/users", Some(admin.access()), &new_user)
        .await;
    assert_error("duplicate email", &again, 409, ErrorCode::Conflict);
    let weak = h
        .post(
            "/v1/admin/users",
            Some(admin.access()),
            &json!({ "email": "x@tenant-a.example", "name": "X", "role": "viewer", "password": "short" }),
        )
        .await;
    assert_error("weak password", &weak, 422, ErrorCode::ValidationFailed);

    // The new user signs in; promoting, moving and disabling it work and are audited.
    let login = json!({
        "tenant_slug": h.a.slug, "email": "new.canvasser@tenant-a.example", "password": harness::PASSWORD,
        "device_id": uuid::Uuid::now_v7(), "device_name": "new laptop",
    });
    assert_ok(
        "new user signs in",
        &h.post("/v1/auth/login", None, &login).await,
    );
    let path = format!("/v1/admin/users/{user_id}");
    let (status, changed) = patch(
        &h,
        &path,
        admin.access(),
        &json!({ "role": "crew_chief", "crew_id": null }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["user"]["role"], "crew_chief");
    assert_eq!(changed["user"]["crew_id"], Value::Null);
    let viewer_patch = patch(
        &h,
        &path,
        h.a.session(Role::Viewer).access(),
        &json!({ "disabled": true }),
    )
    .await;
    assert_error("viewer disables", &viewer_patch, 403, ErrorCode::Forbidden);
    let (status, disabled) = patch(&h, &path, admin.access(), &json!({ "disabled": true })).await;
    assert_eq!(status, StatusCode::OK, "{disabled}");
    assert!(disabled["user"]["disabled_at"].as_i64().is_some());
    let refused = h.post("/v1/auth/login", None, &login).await;
    assert_error(
        "disabled user signs in",
        &refused,
        401,
        ErrorCode::InvalidCredentials,
    );

    // The last admin cannot be demoted or disable itself; unknown users are 404.
    let me = format!("/v1/admin/users/{}", admin.user);
    let demote = patch(&h, &me, admin.access(), &json!({ "role": "viewer" })).await;
    assert_error("last admin demoted", &demote, 409, ErrorCode::Conflict);
    let selfie = patch(&h, &me, admin.access(), &json!({ "disabled": true })).await;
    assert_error("admin disables itself", &selfie, 403, ErrorCode::Forbidden);
    let unknown = patch(
        &h,
        &format!("/v1/admin/users/{}", uuid::Uuid::now_v7()),
        admin.access(),
        &json!({ "role": "viewer" }),
    )
    .await;
    assert_error("unknown user", &unknown, 404, ErrorCode::NotFound);
    let not_uuid = patch(
        &h,
        "/v1/admin/users/abc",
        admin.access(),
        &json!({ "role": "viewer" }),
    )
    .await;
    assert_error("bad id", &not_uuid, 400, ErrorCode::InvalidUuid);
    // Another tenant's admin cannot reach this user.
    let cross = patch(
        &h,
        &path,
        h.b.session(Role::Admin).access(),
        &json!({ "disabled": false }),
    )
    .await;
    assert_error("cross-tenant", &cross, 404, ErrorCode::NotFound);

    let (_, audit) = h
        .get("/v1/admin/audit?limit=1000", Some(admin.access()))
        .await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for expected in [
        "crew.create",
        "user.create",
        "user.role_change",
        "user.crew_change",
        "user.disable",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    h.stop().await;
}

fn cli(h: &Harness, args: &[&str]) -> (bool, Value) {
    h.operator_cli(args)
}

#[tokio::test]
async fn the_operator_cli_runs_the_lifecycle_and_the_legacy_import_with_typed_errors() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().expect("tempdir");

    let (ok, err) = cli(
        &h,
        &[
            "tenant",
            "provision",
            "--name",
            "Gale Roofing",
            "--plan",
            "platinum",
            "--admin-email",
            "a@gale.example",
        ],
    );
    assert!(!ok);
    assert_eq!(err["error"]["code"], "unknown_plan", "{err}");
    let (ok, made) = cli(
        &h,
        &[
            "tenant",
            "provision",
            "--name",
            "Gale Roofing",
            "--plan",
            "trial",
            "--admin-email",
            "a@gale.example",
        ],
    );
    assert!(ok, "{made}");
    assert_eq!(made["slug"], "gale-roofing");
    let (ok, err) = cli(
        &h,
        &[
            "tenant",
            "create",
            "--name",
            "Gale Roofing",
            "--plan",
            "trial",
            "--admin-email",
            "b@gale.example",
        ],
    );
    assert!(!ok);
    assert_eq!(err["error"]["code"], "slug_taken", "{err}");
    let (ok, users) = cli(&h, &["user", "list", "--tenant", "gale-roofing"]);
    assert!(ok, "{users}");
    assert_eq!(users["users"].as_array().map(Vec::len), Some(1));
    let (ok, crew) = cli(
        &h,
        &[
            "crew",
            "add",
            "--tenant",
            "gale-roofing",
            "--name",
            "Second crew",
        ],
    );
    assert!(ok, "{crew}");
    let (ok, crews) = cli(&h, &["crew", "list", "--tenant", "gale-roofing"]);
    assert!(ok, "{crews}");
    assert_eq!(crews["crews"].as_array().map(Vec::len), Some(2));

    // Legacy import: broken rows refuse the whole import unless --allow-partial; a re-run writes nothing.
    let db = dir.path().join("legacy.db");
    let generated = tokio::task::spawn_blocking({
        let db = db.clone();
        move || {
            generate(
                &db,
                &GenerateOptions {
                    properties: 120,
                    broken_rows: 6,
                    ..GenerateOptions::default()
                },
            )
        }
    })
    .await
    .expect("task")
    .expect("generate");
    let file = db.to_str().expect("utf-8 path");
    let (ok, err) = cli(
        &h,
        &["tenant", "import-legacy", "--tenant", "gale-roofing", file],
    );
    assert!(!ok);
    assert_eq!(err["error"]["code"], "legacy_rows_rejected", "{err}");
    let tenant_id =
        domain::TenantId(serde_json::from_value(made["tenant_id"].clone()).expect("id"));
    assert_eq!(
        h.count(tenant_id, "properties").await,
        0,
        "nothing written without --allow-partial"
    );
    let (ok, report) = cli(
        &h,
        &[
            "tenant",
            "import-legacy",
            "--tenant",
            "gale-roofing",
            file,
            "--allow-partial",
        ],
    );
    assert!(ok, "{report}");
    let report = &report["report"];
    assert_eq!(report["rejected"].as_array().map(Vec::len), Some(6));
    assert_eq!(report["written"]["properties"], json!(generated.properties));
    assert_eq!(report["written"]["journeys"], json!(generated.journeys));
    assert_eq!(
        h.count(tenant_id, "properties").await,
        generated.properties as i64
    );
    assert_eq!(
        h.count(tenant_id, "uplift_scores").await,
        generated.scores as i64
    );
    let feed_before = h.count(tenant_id, "change_log").await;
    let (ok, rerun) = cli(
        &h,
        &[
            "tenant",
            "import-legacy",
            "--tenant",
            "gale-roofing",
            file,
            "--allow-partial",
        ],
    );
    assert!(ok, "{rerun}");
    assert_eq!(rerun["report"]["written"]["properties"], 0);
    assert_eq!(rerun["report"]["written"]["journeys"], 0);
    assert_eq!(
        h.count(tenant_id, "change_log").await,
        feed_before,
        "a re-run changes nothing"
    );
    let missing = dir.path().join("missing.db");
    tokio::task::spawn_blocking({
        let missing = missing.clone();
        move || {
            generate(
                &missing,
                &GenerateOptions {
                    drop_tables: vec!["uplift_scores".into()],
                    ..GenerateOptions::default()
                },
            )
        }
    })
    .await
    .expect("task")
    .expect("generate");
    let (ok, err) = cli(
        &h,
        &[
            "tenant",
            "import-legacy",
            "--tenant",
            "gale-roofing",
            missing.to_str().expect("path"),
        ],
    );
    assert!(!ok);
    assert_eq!(err["error"]["code"], "legacy_missing_tables", "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("uplift_scores"))
    );

    // Offboarding: delete needs an export; export → import elsewhere → delete → purge refuses early.
    let (ok, err) = cli(&h, &["tenant", "delete", "--tenant", "gale-roofing"]);
    assert!(!ok);
    assert_eq!(err["error"]["code"], "export_required");
    let archive = dir.path().join("gale-archive");
    let (ok, exported) = cli(
        &h,
        &[
            "tenant",
            "export",
            "--tenant",
            "gale-roofing",
            "--out",
            archive.to_str().expect("path"),
        ],
    );
    assert!(ok, "{exported}");
    assert!(archive.join("manifest.json").is_file());
    let (ok, imported) = cli(
        &h,
        &[
            "tenant",
            "import",
            "--slug",
            "gale-copy",
            archive.to_str().expect("path"),
        ],
    );
    assert!(ok, "{imported}");
    let (ok, suspended) = cli(&h, &["tenant", "suspend", "--tenant", "gale-roofing"]);
    assert!(ok, "{suspended}");
    assert_eq!(suspended["state"], "suspended");
    let (ok, deleting) = cli(
        &h,
        &[
            "tenant",
            "delete",
            "--tenant",
            "gale-roofing",
            "--grace-hours",
            "0",
        ],
    );
    assert!(ok, "{deleting}");
    assert_eq!(deleting["state"], "deleting");
    let (ok, err) = cli(
        &h,
        &[
            "tenant",
            "export",
            "--tenant",
            "gale-roofing",
            "--out",
            dir.path().join("again").to_str().expect("path"),
        ],
    );
    assert!(!ok);
    assert_eq!(err["error"]["code"], "tenant_deleting");
    let (ok, err) = cli(&h, &["tenant", "suspend", "--tenant", "gale-roofing"]);
    assert!(!ok);
    assert_eq!(err["error"]["code"], "tenant_deleted");
    let (ok, purged) = cli(&h, &["tenant", "purge", "--tenant", "gale-roofing"]);
    assert!(ok, "{purged}");
    assert_eq!(h.count(tenant_id, "properties").await, 0);
    let (ok, list) = cli(&h, &["tenant", "list"]);
    assert!(ok);
    let slugs: Vec<&str> = list["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .filter_map(|t| t["slug"].as_str())
        .collect();
    assert!(
        slugs.contains(&"gale-copy") && !slugs.contains(&"gale-roofing"),
        "{slugs:?}"
    );
    h.stop().await;
}
