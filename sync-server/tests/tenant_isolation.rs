//! Tenant isolation over real HTTP and real PostgreSQL: for every route of the API, tenant A's
//! credentials aimed at tenant B's ids, tokens and data; then a suspended tenant (sign-in, push, pull
//! and the rest answer 403 `tenant_suspended`, data is kept, reactivation restores service).

mod harness;

use domain::{PropertyStatus, Role, TenantStatus, Timestamp};
use harness::*;
use serde_json::json;
use sync_protocol::{Entity, ErrorCode};
use sync_server::openapi::ROUTES;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_a_never_reaches_tenant_b_through_any_route() {
    let h = Harness::start().await;
    let (a, b) = (&h.a, &h.b);

    // B has field data of every append-only kind.
    let b_field = b.session(Role::FieldUser);
    let b_chief = b.session(Role::CrewChief);
    let b_batch = vec![
        touch_change(b_field, b, 0, "B's private note"),
        outcome_change(b_field, b.properties[1], b.storm),
        decision_change(b_field, b.properties[2], b.storm, false),
    ];
    let b_ids: Vec<_> = b_batch.iter().map(|c| c.entity_id).collect();
    assert_ok("B seeds its data", &h.push(b_field, &b_batch).await);
    let b_before = h.counts(b.id).await;
    let b_property_before = h.property_json(b.id, b.properties[0]).await;
    assert!(b_property_before.is_some(), "B's property is readable by B");

    let mut covered = Vec::new();
    for (method, path) in ROUTES {
        covered.push(*path);
        match *path {
            "/healthz" | "/readyz" | "/openapi.json" | "/v1/hello" => {
                // Public and tenant-free: they must not echo any tenant's identity.
                let got = if *method == "get" {
                    h.get(path, Some(a.session(Role::Admin).access())).await
                } else {
                    h.post(
                        path,
                        None,
                        &json!({ "protocol_version": 1, "client_version": "test" }),
                    )
                    .await
                };
                assert_ok(path, &got);
                let text = got.1.to_string();
                assert!(
                    !text.contains(&b.id.to_string()) && !text.contains(&b.slug),
                    "{path} names tenant B: {text}"
                );
            }
            "/metrics" => {
                let text = h
                    .http
                    .get(h.url(path))
                    .send()
                    .await
                    .expect("metrics")
                    .text()
                    .await
                    .expect("text");
                for t in [a, b] {
                    assert!(
                        !text.contains(&t.id.to_string()) && !text.contains(&t.slug),
                        "metrics carry a tenant label"
                    );
                }
            }
            "/v1/auth/login" => {
                // B's user and password, A's slug (and the reverse): no such account in that tenant.
                for (slug, email) in [
                    (&a.slug, b.email(Role::Admin)),
                    (&b.slug, a.email(Role::Admin)),
                ] {
                    let got = h
                        .post(
                            path,
                            None,
                            &json!({ "tenant_slug": slug, "email": email, "password": PASSWORD,
                                     "device_id": uuid::Uuid::now_v7(), "device_name": "intruder" }),
                        )
                        .await;
                    assert_error(
                        "login with another tenant's account",
                        &got,
                        401,
                        ErrorCode::InvalidCredentials,
                    );
                }
            }
            "/v1/auth/refresh" | "/v1/auth/logout" => {
                // B's refresh token relabelled with A's tenant id finds nothing in A.
                let fresh = h.login(b, Role::Viewer).await;
                let secret = fresh
                    .tokens
                    .refresh_token
                    .rsplit('.')
                    .next()
                    .expect("secret");
                let relabelled = format!("rt1.{}.{secret}", a.id.0.simple());
                let got = h
                    .post(path, None, &json!({ "refresh_token": relabelled }))
                    .await;
                if *path == "/v1/auth/refresh" {
                    assert_error(
                        "B's refresh token presented as A's",
                        &got,
                        401,
                        ErrorCode::TokenInvalid,
                    );
                } else {
                    assert_ok("logout answers the same for unknown tokens", &got);
                }
                // B's own token still works and speaks only for B.
                let pair = h
                    .client
                    .refresh(&fresh.tokens.refresh_token)
                    .await
                    .unwrap_or_else(|e| panic!("{path}: B's token must still refresh: {e}"));
                assert_eq!(
                    (pair.tenant_id, pair.user_id, pair.device_id),
                    (b.id, fresh.user, fresh.device)
                );
            }
            "/v1/me" => {
                for role in ROLES {
                    let got = h.get(path, Some(a.session(role).access())).await;
                    assert_ok("me", &got);
                    assert_eq!(got.1["tenant"]["id"], json!(a.id), "{role}: {}", got.1);
                    assert_eq!(got.1["role"], json!(role));
                    assert!(!got.1.to_string().contains(&b.id.to_string()));
                }
            }
            "/v1/devices/{device_id}/revoke" => {
                let target = h.login(b, Role::FieldUser).await;
                let got = h
                    .post(
                        &format!("/v1/devices/{}/revoke", target.device.0),
                        Some(a.session(Role::Admin).access()),
                        &json!({}),
                    )
                    .await;
                assert_error(
                    "A's admin revokes B's device",
                    &got,
                    404,
                    ErrorCode::NotFound,
                );
                // Nothing changed for B: the device still pushes and pulls.
                assert_ok(
                    "B's device after A's revoke attempt",
                    &h.post(
                        "/v1/sync/pull",
                        Some(target.access()),
                        &json!({ "limit": 1 }),
                    )
                    .await,
                );
                assert_ok("B's device pushes", &h.push(&target, &[]).await);
            }
            "/v1/sync/push" => {
                let af = a.session(Role::FieldUser);
                let aa = a.session(Role::Admin);
                let a_before = h.counts(a.id).await;
                let foreign = [
                    (
                        "touch on B's property and storm",
                        touch_change(af, b, 0, "x"),
                        ErrorCode::ForeignReference,
                    ),
                    (
                        "touch on A's property with B's storm",
                        {
                            let t = touch(af, a.properties[0], b.storm, "x");
                            change(
                                af,
                                Entity::JourneyTouch,
                                t.id.0,
                                sync_protocol::ChangeOp::Insert,
                                &t,
                            )
                        },
                        ErrorCode::ForeignReference,
                    ),
                    (
                        "touch on B's property with A's storm",
                        {
                            let t = touch(af, b.properties[0], a.storm, "x");
                            change(
                                af,
                                Entity::JourneyTouch,
                                t.id.0,
                                sync_protocol::ChangeOp::Insert,
                                &t,
                            )
                        },
                        ErrorCode::ForeignReference,
                    ),
                    (
                        "outcome on B's property",
                        outcome_change(af, b.properties[1], b.storm),
                        ErrorCode::ForeignReference,
                    ),
                    (
                        "decision on B's property",
                        decision_change(af, b.properties[2], b.storm, false),
                        ErrorCode::ForeignReference,
                    ),
                    (
                        "status update of B's property",
                        status_change(af, b.properties[0], PropertyStatus::Contracted),
                        ErrorCode::UnknownRecord,
                    ),
                ];
                for (case, bad, code) in foreign {
                    // A valid change of A's rides along: the whole batch must be refused.
                    let good = touch_change(af, a, 0, "valid A touch");
                    let got = h.push(af, &[good, bad.clone()]).await;
                    assert_eq!(
                        refused_codes(case, &got),
                        vec![code.as_str().to_owned()],
                        "{case}: {}",
                        got.1
                    );
                    assert_eq!(
                        got.1["details"]["refused"][0]["change_id"],
                        json!(bad.id),
                        "{case}"
                    );
                    assert!(
                        !got.1.to_string().contains(&b.slug),
                        "{case}: the refusal names tenant B"
                    );
                }
                // An admin of A creating a property under B's property id makes A's own row only.
                let mut p = property(b.properties[0], a.storm, 99);
                p.owner_name = Some("Mallory".into());
                let create = change(
                    aa,
                    Entity::Property,
                    p.id.0,
                    sync_protocol::ChangeOp::Insert,
                    &p,
                );
                let got = h.push(aa, &[create]).await;
                assert!(got.0.as_u16() < 500, "admin insert: {} {}", got.0, got.1);
                assert_eq!(
                    h.property_json(b.id, b.properties[0]).await,
                    b_property_before,
                    "B's property changed through A's push"
                );
                assert_eq!(
                    h.counts(b.id).await,
                    b_before,
                    "B's rows changed through A's pushes"
                );
                let mut a_after = h.counts(a.id).await;
                if got.0.is_success() {
                    // Only the admin's own property row (plus its ledger and feed entries) were added.
                    for (table, n) in a_after.iter_mut() {
                        if matches!(*table, "properties" | "applied_changes" | "change_log") {
                            *n -= 1;
                        }
                    }
                }
                assert_eq!(a_after, a_before, "refused batches changed A's rows");
            }
            "/v1/sync/pull" => {
                // B sees its own rows (so they are committed and in the feed)...
                let b_rows = h
                    .pull_until(b.session(Role::Admin), |rows| {
                        b_ids
                            .iter()
                            .all(|id| rows.iter().any(|r| r.entity_id == *id))
                    })
                    .await;
                assert!(b_rows.iter().any(|r| r.entity_id == b.storm.0));
                // ...then A writes after B, and every role of A pulls until it sees A's write: by then
                // B's earlier rows are below the horizon too, and none of them may arrive.
                let marker = touch_change(a.session(Role::FieldUser), a, 1, "A marker");
                assert_ok(
                    "A's marker",
                    &h.push(a.session(Role::FieldUser), std::slice::from_ref(&marker))
                        .await,
                );
                let b_texts = [b.id.to_string(), b.storm.0.to_string(), b.slug.clone()];
                for role in ROLES {
                    let rows = h
                        .pull_until(a.session(role), |rows| {
                            rows.iter().any(|r| r.entity_id == marker.entity_id)
                        })
                        .await;
                    assert!(
                        rows.iter().any(|r| r.entity_id == a.storm.0),
                        "{role} of A sees A's storm"
                    );
                    for row in &rows {
                        let text = serde_json::to_string(row).expect("json");
                        // A's admin made A's own property under B's property id above: that row is
                        // A's (A's storm, A's owner name), never B's record.
                        let collides_with_b = b.properties.iter().any(|p| p.0 == row.entity_id)
                            && row.record["storm_id"] != json!(a.storm);
                        assert!(
                            !b_ids.contains(&row.entity_id)
                                && !collides_with_b
                                && !b_texts.iter().any(|t| text.contains(t.as_str())),
                            "{role} of A pulled a row of B: {text}"
                        );
                    }
                }
                // B's chief does not see A's rows either.
                let rows = h
                    .pull_until(b_chief, |rows| {
                        rows.iter().any(|r| r.entity_id == b.storm.0)
                    })
                    .await;
                assert!(
                    rows.iter()
                        .all(|r| r.entity_id != marker.entity_id && r.entity_id != a.storm.0),
                    "B pulled a row of A"
                );
            }
            admin if admin.starts_with("/v1/admin/") => {
                // A's admin aims the office routes at B's storm or B's user: they do not exist for A,
                // so every call is refused (never a success, never a 5xx) and nothing of B is named.
                // Routes without an id act on A's own tenant and still name nothing of B.
                let a_admin = a.session(Role::Admin);
                let targets_b = admin.contains("{storm_id}") || admin.contains("{user_id}");
                let concrete = admin
                    .replace("{storm_id}", &b.storm.to_string())
                    .replace("{user_id}", &b.session(Role::Viewer).user.to_string());
                let body = if admin.ends_with("/experiment") {
                    json!({ "treatment_share": 0.5 })
                } else if admin.contains("{user_id}") {
                    json!({ "disabled": true })
                } else {
                    json!({})
                };
                let got = h
                    .send(method, &concrete, Some(a_admin.access()), &body)
                    .await;
                if targets_b {
                    assert!(
                        !got.0.is_success() && got.0.as_u16() < 500,
                        "A's admin reached B through {method} {admin}: {got:?}"
                    );
                } else if *method == "get" {
                    assert_ok(&format!("A's admin {method} {admin}"), &got);
                } else {
                    assert!(got.0.as_u16() < 500, "{method} {admin}: {got:?}");
                }
                let text = got.1.to_string();
                assert!(
                    !text.contains(&b.id.to_string())
                        && !b.properties.iter().any(|p| text.contains(&p.to_string())),
                    "{method} {admin} named something of B: {text}"
                );
            }
            other => panic!("route {other} has no cross-tenant case: add one"),
        }
    }
    assert_eq!(covered.len(), ROUTES.len());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_tenant_is_paused_and_keeps_its_data() {
    let h = Harness::start().await;
    let (a, b) = (&h.a, &h.b);
    let bf = b.session(Role::FieldUser);
    assert_ok(
        "B pushes before suspension",
        &h.push(bf, &[touch_change(bf, b, 0, "before")]).await,
    );
    let before = h.counts(b.id).await;

    let mut ctl = h.control.begin().await.expect("control tx");
    ctl.set_tenant_status(b.id, TenantStatus::Suspended, Timestamp::now())
        .await
        .expect("suspend");
    ctl.commit().await.expect("commit");

    let login = json!({ "tenant_slug": b.slug, "email": b.email(Role::Admin), "password": PASSWORD,
                        "device_id": uuid::Uuid::now_v7(), "device_name": "laptop" });
    assert_error(
        "login while suspended",
        &h.post("/v1/auth/login", None, &login).await,
        403,
        ErrorCode::TenantSuspended,
    );
    assert_error(
        "push while suspended",
        &h.push(bf, &[touch_change(bf, b, 0, "during")]).await,
        403,
        ErrorCode::TenantSuspended,
    );
    for role in ROLES {
        let s = b.session(role);
        assert_error(
            &format!("pull as {role} while suspended"),
            &h.post("/v1/sync/pull", Some(s.access()), &json!({})).await,
            403,
            ErrorCode::TenantSuspended,
        );
        assert_error(
            &format!("me as {role} while suspended"),
            &h.get("/v1/me", Some(s.access())).await,
            403,
            ErrorCode::TenantSuspended,
        );
    }
    assert_error(
        "refresh while suspended",
        &h.post(
            "/v1/auth/refresh",
            None,
            &json!({ "refresh_token": b.session(Role::Viewer).tokens.refresh_token }),
        )
        .await,
        403,
        ErrorCode::TenantSuspended,
    );
    assert_error(
        "revoke while suspended",
        &h.post(
            &format!("/v1/devices/{}/revoke", bf.device.0),
            Some(b.session(Role::Admin).access()),
            &json!({}),
        )
        .await,
        403,
        ErrorCode::TenantSuspended,
    );
    // A is not affected; B's data is all still there.
    assert_ok(
        "A pulls while B is suspended",
        &h.post(
            "/v1/sync/pull",
            Some(a.session(Role::Viewer).access()),
            &json!({}),
        )
        .await,
    );
    assert_eq!(h.counts(b.id).await, before, "suspension changed B's data");

    let mut ctl = h.control.begin().await.expect("control tx");
    ctl.set_tenant_status(b.id, TenantStatus::Active, Timestamp::now())
        .await
        .expect("reactivate");
    ctl.commit().await.expect("commit");

    assert_ok(
        "login after reactivation",
        &h.post("/v1/auth/login", None, &login).await,
    );
    let after = touch_change(bf, b, 0, "after");
    assert_eq!(
        receipt_statuses(
            "push after reactivation",
            &h.push(bf, std::slice::from_ref(&after)).await
        ),
        vec!["accepted"]
    );
    let rows = h
        .pull_until(b.session(Role::Viewer), |rows| {
            rows.iter().any(|r| r.entity_id == after.entity_id)
        })
        .await;
    assert_eq!(
        ids_of(&rows, Entity::JourneyTouch).len(),
        2,
        "the touch from before the suspension and the one after"
    );
    h.stop().await;
}
