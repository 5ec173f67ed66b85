//! Every role against every route, and every way an access or refresh token can be wrong: missing,
//! malformed, tampered, signed by another key, expired, of a revoked device, of a signed-out or reused
//! refresh family. Real HTTP on loopback, real PostgreSQL as the application role.

mod harness;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use domain::{DeviceId, Role, Timestamp};
use harness::*;
use serde_json::json;
use sync_protocol::ErrorCode;
use sync_server::auth::token::{Claims, TokenKey};
use sync_server::openapi::ROUTES;
use sync_server::state::ServerSettings;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_gets_exactly_its_rights_on_every_route() {
    let h = Harness::start().await;
    let a = &h.a;
    for (method, path) in ROUTES {
        match *path {
            "/healthz" | "/readyz" | "/metrics" | "/openapi.json" => {
                for role in ROLES {
                    let got = h
                        .http
                        .get(h.url(path))
                        .bearer_auth(a.session(role).access())
                        .send()
                        .await
                        .expect("answer");
                    assert_eq!(got.status(), 200, "{role} {method} {path}");
                }
            }
            "/v1/hello" => {
                let got = h
                    .post(
                        path,
                        Some(a.session(Role::Viewer).access()),
                        &json!({ "protocol_version": 1, "client_version": "t" }),
                    )
                    .await;
                assert_ok(path, &got);
            }
            "/v1/auth/login" => {
                // The harness signed every role in; the pairs name the right role.
                for role in ROLES {
                    assert_eq!(a.session(role).tokens.role, role);
                }
            }
            "/v1/auth/refresh" | "/v1/auth/logout" => {} // per role below, with fresh sessions
            "/v1/me" => {
                for role in ROLES {
                    let got = h.get(path, Some(a.session(role).access())).await;
                    assert_ok(&format!("{role} me"), &got);
                    assert_eq!(got.1["role"], json!(role));
                    assert_eq!(got.1["user"]["id"], json!(a.session(role).user));
                    assert_eq!(got.1["device_id"], json!(a.session(role).device));
                }
            }
            "/v1/devices/{device_id}/revoke" => {
                // Non-admins are refused before anything is looked up, even for a real device.
                let victim = a.session(Role::Viewer);
                for role in [Role::CrewChief, Role::FieldUser, Role::Viewer] {
                    let got = h
                        .post(
                            &format!("/v1/devices/{}/revoke", victim.device.0),
                            Some(a.session(role).access()),
                            &json!({}),
                        )
                        .await;
                    assert_error(
                        &format!("{role} revokes a device"),
                        &got,
                        403,
                        ErrorCode::Forbidden,
                    );
                }
                assert_ok(
                    "the victim still works",
                    &h.get("/v1/me", Some(victim.access())).await,
                );
                // An admin: an unknown device is 404, a bad id 400, a real one is revoked.
                let admin = a.session(Role::Admin);
                assert_error(
                    "admin revokes an unknown device",
                    &h.post(
                        &format!("/v1/devices/{}/revoke", DeviceId::generate().0),
                        Some(admin.access()),
                        &json!({}),
                    )
                    .await,
                    404,
                    ErrorCode::NotFound,
                );
                assert_error(
                    "admin revokes a non-UUID",
                    &h.post(
                        "/v1/devices/not-a-uuid/revoke",
                        Some(admin.access()),
                        &json!({}),
                    )
                    .await,
                    400,
                    ErrorCode::InvalidUuid,
                );
                let target = h.login(a, Role::FieldUser).await;
                let got = h
                    .post(
                        &format!("/v1/devices/{}/revoke", target.device.0),
                        Some(admin.access()),
                        &json!({}),
                    )
                    .await;
                assert_ok("admin revokes a device", &got);
                assert_error(
                    "the revoked device",
                    &h.get("/v1/me", Some(target.access())).await,
                    403,
                    ErrorCode::DeviceRevoked,
                );
            }
            "/v1/sync/push" => {
                for role in ROLES {
                    let s = a.session(role);
                    let got = h.push(s, &[touch_change(s, a, 0, "role matrix")]).await;
                    if role == Role::Viewer {
                        assert_error("viewer pushes", &got, 403, ErrorCode::Forbidden);
                    } else {
                        assert_eq!(
                            receipt_statuses(&format!("{role} pushes a touch"), &got),
                            vec!["accepted"]
                        );
                    }
                    // A policy override needs a crew chief or an admin.
                    let over = decision_change(s, a.properties[1], a.storm, true);
                    let got = h.push(s, &[over]).await;
                    match role {
                        Role::Viewer => {
                            assert_error("viewer overrides", &got, 403, ErrorCode::Forbidden)
                        }
                        Role::FieldUser => assert_eq!(
                            refused_codes("field user overrides", &got),
                            vec!["forbidden"]
                        ),
                        _ => assert_eq!(
                            receipt_statuses(&format!("{role} overrides"), &got),
                            vec!["accepted"]
                        ),
                    }
                    // Only admins create office records; field roles may change a property's status.
                    let status =
                        status_change(s, a.properties[2], domain::PropertyStatus::Inspected);
                    let got = h.push(s, &[status]).await;
                    if role == Role::Viewer {
                        assert_error("viewer updates", &got, 403, ErrorCode::Forbidden);
                    } else {
                        assert_ok(&format!("{role} updates a status"), &got);
                    }
                    let mut storm = storm(domain::StormId::generate(), Timestamp::now());
                    storm.name = format!("created by {role}");
                    let create = change(
                        s,
                        sync_protocol::Entity::Storm,
                        storm.id.0,
                        sync_protocol::ChangeOp::Insert,
                        &storm,
                    );
                    let got = h.push(s, &[create]).await;
                    match role {
                        Role::Admin => assert_ok("admin creates a storm", &got),
                        Role::Viewer => {
                            assert_error("viewer creates", &got, 403, ErrorCode::Forbidden)
                        }
                        _ => assert_eq!(
                            refused_codes(&format!("{role} creates a storm"), &got),
                            vec!["server_owned_field"]
                        ),
                    }
                }
                let decisions = h.count(a.id, "policy_decisions").await;
                assert_eq!(decisions, 2, "the chief's and the admin's overrides only");
            }
            "/v1/sync/pull" => {
                for role in ROLES {
                    let got = h
                        .post(path, Some(a.session(role).access()), &json!({}))
                        .await;
                    assert_ok(&format!("{role} pulls"), &got);
                    assert!(got.1["next_cursor"].is_string());
                }
            }
            admin if admin.starts_with("/v1/admin/") => {
                // Office routes: admins may write; admins, crew chiefs and viewers may read — except
                // the audit log, which only admins read, and the laptops' sync health, which viewers
                // do not see; field users get nothing. Allowed calls may still refuse the data (404,
                // 409, 422), never 403.
                let concrete = admin
                    .replace("{storm_id}", &a.storm.to_string())
                    .replace("{user_id}", &a.session(Role::Viewer).user.to_string());
                let writes = *method != "get";
                let admin_only = admin.starts_with("/v1/admin/audit");
                for role in ROLES {
                    let body = if admin.ends_with("/experiment") {
                        json!({ "treatment_share": 0.5 })
                    } else {
                        json!({})
                    };
                    let got = h
                        .send(method, &concrete, Some(a.session(role).access()), &body)
                        .await;
                    let allowed = match role {
                        Role::Admin => true,
                        Role::CrewChief => !writes && !admin_only,
                        Role::Viewer => !writes && !admin_only && admin != "/v1/admin/devices",
                        Role::FieldUser => false,
                    };
                    if allowed {
                        assert!(
                            got.0.as_u16() != 403 && got.0.as_u16() < 500,
                            "{role} {method} {admin}: {got:?}"
                        );
                    } else {
                        assert_error(
                            &format!("{role} {method} {admin}"),
                            &got,
                            403,
                            ErrorCode::Forbidden,
                        );
                    }
                }
            }
            other => panic!("route {other} has no role case: add one"),
        }
    }
    // Refresh and logout for every role, on fresh sessions.
    for role in ROLES {
        let s = h.login(a, role).await;
        let pair = h
            .client
            .refresh(&s.tokens.refresh_token)
            .await
            .unwrap_or_else(|e| panic!("{role} refreshes: {e}"));
        assert_eq!((pair.role, pair.device_id), (role, s.device));
        h.client
            .logout(&pair.refresh_token)
            .await
            .unwrap_or_else(|e| panic!("{role} signs out: {e}"));
    }
    h.stop().await;
}

fn forge(key: &TokenKey, base: &Session, expires_at_ms: i64, role: Role) -> String {
    key.issue(&Claims {
        tenant_id: base.tenant,
        user_id: base.user,
        device_id: base.device,
        role,
        crew_id: None,
        issued_at_ms: Timestamp::now().millis() - 10_000,
        expires_at_ms,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_expired_forged_and_revoked_tokens_are_refused() {
    let h = Harness::start().await;
    let a = &h.a;
    let viewer = a.session(Role::Viewer);
    let authed: [(&str, bool); 4] = [
        ("/v1/me", false),
        ("/v1/sync/push", true),
        ("/v1/sync/pull", true),
        (
            "/v1/devices/00000000-0000-0000-0000-000000000000/revoke",
            true,
        ),
    ];
    let call = |path: &'static str, post: bool, header: Option<String>| {
        let h = &h;
        async move {
            let mut r = if post {
                h.http.post(h.url(path)).json(&json!({}))
            } else {
                h.http.get(h.url(path))
            };
            r = r.header(sync_protocol::PROTOCOL_HEADER, "1");
            if let Some(v) = header {
                r = r.header("authorization", v);
            }
            read(r.send().await.expect("answer")).await
        }
    };

    // Tampered payload: the viewer's token claiming admin, with the original signature.
    let token = viewer.access().to_owned();
    let (signed, signature) = token.rsplit_once('.').expect("signature");
    let payload = signed.strip_prefix("v1.").expect("prefix");
    let mut claims: serde_json::Value =
        serde_json::from_slice(&B64.decode(payload).expect("b64")).expect("claims");
    claims["role"] = json!("admin");
    let elevated = format!(
        "v1.{}.{signature}",
        B64.encode(serde_json::to_vec(&claims).expect("json"))
    );
    // Tampered signature: one character changed.
    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("utf8");
    // Signed by another key, with claims that are otherwise perfect.
    let other = TokenKey::from_bytes(&[42u8; 32]);
    let foreign = forge(
        &other,
        viewer,
        Timestamp::now().millis() + 600_000,
        Role::Admin,
    );
    // Signed by the server's own key but expired.
    let expired = forge(
        &h.server.state.tokens,
        viewer,
        Timestamp::now().millis() - 1,
        Role::Viewer,
    );

    for (path, post) in authed {
        let cases: Vec<(&str, Option<String>, u16, ErrorCode)> = vec![
            ("no header", None, 401, ErrorCode::Unauthenticated),
            (
                "basic auth",
                Some("Basic dXNlcjpwYXNz".into()),
                401,
                ErrorCode::TokenInvalid,
            ),
            (
                "empty bearer",
                Some("Bearer ".into()),
                401,
                ErrorCode::TokenInvalid,
            ),
            (
                "junk bearer",
                Some("Bearer v1.@@@.###".into()),
                401,
                ErrorCode::TokenInvalid,
            ),
            (
                "refresh token as access token",
                Some(format!("Bearer {}", viewer.tokens.refresh_token)),
                401,
                ErrorCode::TokenInvalid,
            ),
            (
                "elevated role, original signature",
                Some(format!("Bearer {elevated}")),
                401,
                ErrorCode::TokenInvalid,
            ),
            (
                "flipped signature",
                Some(format!("Bearer {flipped}")),
                401,
                ErrorCode::TokenInvalid,
            ),
            (
                "signed by another key",
                Some(format!("Bearer {foreign}")),
                401,
                ErrorCode::TokenInvalid,
            ),
            (
                "expired",
                Some(format!("Bearer {expired}")),
                401,
                ErrorCode::TokenExpired,
            ),
        ];
        for (case, header, status, code) in cases {
            let got = call(path, post, header).await;
            assert_error(&format!("{path}: {case}"), &got, status, code);
        }
    }

    // A second instance on the same database with tiny lifetimes: its tokens expire at once, and its
    // (different) key is not this instance's.
    let short = h
        .start_another(ServerSettings {
            access_ttl_ms: 1,
            refresh_ttl_ms: 1,
            ..ServerSettings::default()
        })
        .await;
    let short_client = sync_client::SyncClient::new(&format!("http://{}", short.addr)).expect("c");
    let pair = short_client
        .login(&sync_protocol::LoginRequest {
            tenant_slug: a.slug.clone(),
            email: a.email(Role::FieldUser).to_owned(),
            password: PASSWORD.to_owned(),
            device_id: DeviceId::generate(),
            device_name: "short-lived".into(),
        })
        .await
        .expect("login on the short-lived instance");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let got = read(
        h.http
            .get(format!("http://{}/v1/me", short.addr))
            .bearer_auth(&pair.access_token)
            .send()
            .await
            .expect("answer"),
    )
    .await;
    assert_error("expired access token", &got, 401, ErrorCode::TokenExpired);
    let got = read(
        h.http
            .post(format!("http://{}/v1/auth/refresh", short.addr))
            .json(&json!({ "refresh_token": pair.refresh_token }))
            .send()
            .await
            .expect("answer"),
    )
    .await;
    assert_error("expired refresh token", &got, 401, ErrorCode::TokenExpired);
    assert_error(
        "another instance's key",
        &h.get("/v1/me", Some(&pair.access_token)).await,
        401,
        ErrorCode::TokenInvalid,
    );
    short.stop().await;

    // Revoked device: its access token, its refresh token and its next sign-in are refused.
    let doomed = h.login(a, Role::FieldUser).await;
    assert_ok(
        "revoke",
        &h.post(
            &format!("/v1/devices/{}/revoke", doomed.device.0),
            Some(a.session(Role::Admin).access()),
            &json!({}),
        )
        .await,
    );
    for (path, post) in [("/v1/me", false), ("/v1/sync/pull", true)] {
        assert_error(
            &format!("{path} of a revoked device"),
            &call(path, post, Some(format!("Bearer {}", doomed.access()))).await,
            403,
            ErrorCode::DeviceRevoked,
        );
    }
    assert_error(
        "push of a revoked device",
        &h.push(&doomed, &[touch_change(&doomed, a, 0, "after revoke")])
            .await,
        403,
        ErrorCode::DeviceRevoked,
    );
    let got = h
        .post(
            "/v1/auth/refresh",
            None,
            &json!({ "refresh_token": doomed.tokens.refresh_token }),
        )
        .await;
    assert!(
        matches!(
            (got.0.as_u16(), got.1["code"].as_str()),
            (401, Some("token_invalid")) | (403, Some("device_revoked"))
        ),
        "refresh of a revoked device: {} {}",
        got.0,
        got.1
    );
    let relogin = json!({ "tenant_slug": a.slug, "email": a.email(Role::FieldUser), "password": PASSWORD,
                          "device_id": doomed.device, "device_name": "again" });
    assert_error(
        "sign-in on a revoked device",
        &h.post("/v1/auth/login", None, &relogin).await,
        403,
        ErrorCode::DeviceRevoked,
    );

    // Logout ends the refresh family.
    let s = h.login(a, Role::CrewChief).await;
    h.client
        .logout(&s.tokens.refresh_token)
        .await
        .expect("logout");
    assert_error(
        "refresh after logout",
        &h.post(
            "/v1/auth/refresh",
            None,
            &json!({ "refresh_token": s.tokens.refresh_token }),
        )
        .await,
        401,
        ErrorCode::TokenInvalid,
    );

    // Reuse of a rotated refresh token revokes the whole family, the newest token included.
    let s = h.login(a, Role::Admin).await;
    let first = h
        .client
        .refresh(&s.tokens.refresh_token)
        .await
        .expect("first rotation");
    let second = h
        .client
        .refresh(&first.refresh_token)
        .await
        .expect("second rotation");
    assert_error(
        "reuse of a rotated token",
        &h.post(
            "/v1/auth/refresh",
            None,
            &json!({ "refresh_token": first.refresh_token }),
        )
        .await,
        401,
        ErrorCode::TokenInvalid,
    );
    assert_error(
        "the newest token after reuse",
        &h.post(
            "/v1/auth/refresh",
            None,
            &json!({ "refresh_token": second.refresh_token }),
        )
        .await,
        401,
        ErrorCode::TokenInvalid,
    );
    // Wrong password and unknown account look the same.
    for (slug, email, password) in [
        (a.slug.as_str(), a.email(Role::Viewer), "wrong password!"),
        (a.slug.as_str(), "nobody@tenant-a.example", PASSWORD),
        ("no-such-tenant", a.email(Role::Viewer), PASSWORD),
    ] {
        let got = h
            .post(
                "/v1/auth/login",
                None,
                &json!({ "tenant_slug": slug, "email": email, "password": password,
                         "device_id": DeviceId::generate(), "device_name": "x" }),
            )
            .await;
        assert_error(
            &format!("login {slug}/{email}"),
            &got,
            401,
            ErrorCode::InvalidCredentials,
        );
    }
    h.stop().await;
}
