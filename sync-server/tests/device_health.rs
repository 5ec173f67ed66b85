//! Each laptop's sync health (`GET /v1/admin/devices`) over real HTTP and real PostgreSQL as the
//! application role: who may see which devices (admin every device of its tenant, a crew chief its
//! crew's, field users and viewers nothing), that another tenant's devices never appear, and that
//! pushes, pulls, refused batches and revocations show up as the server saw them.

mod harness;

use domain::{DeviceId, PropertyId, Role};
use harness::*;
use serde_json::{Value, json};
use sync_protocol::ErrorCode;

fn device_ids(body: &Value) -> Vec<String> {
    body["devices"]
        .as_array()
        .expect("a devices array")
        .iter()
        .map(|d| d["device_id"].as_str().expect("device id").to_owned())
        .collect()
}

fn device(body: &Value, id: DeviceId) -> &Value {
    body["devices"]
        .as_array()
        .expect("a devices array")
        .iter()
        .find(|d| d["device_id"] == json!(id))
        .unwrap_or_else(|| panic!("device {id} listed: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_see_every_device_chiefs_their_crews_and_nobody_another_tenants() {
    let h = Harness::start().await;
    let (a, b) = (&h.a, &h.b);
    let admin = a.session(Role::Admin);

    // Two more crews in A, each with a field user signed in on a laptop of its own: North has no chief,
    // South is led by A's crew chief (who belongs to the default crew).
    let chief = a.session(Role::CrewChief);
    let mut extra = Vec::new();
    for (crew_name, chief_id, email, name) in [
        (
            "North crew",
            Value::Null,
            "north@tenant-a.example",
            "Nora North",
        ),
        (
            "South crew",
            json!(chief.user),
            "south@tenant-a.example",
            "Sol South",
        ),
    ] {
        let (status, crew) = h
            .post(
                "/v1/admin/crews",
                Some(admin.access()),
                &json!({ "name": crew_name, "chief_id": chief_id }),
            )
            .await;
        assert_eq!(status, 200, "{crew}");
        let (status, user) = h
            .post(
                "/v1/admin/users",
                Some(admin.access()),
                &json!({ "email": email, "name": name, "role": "field_user",
                         "crew_id": crew["crew"]["id"], "password": PASSWORD }),
            )
            .await;
        assert_eq!(status, 200, "{user}");
        let device = DeviceId::generate();
        h.client
            .login(&sync_protocol::LoginRequest {
                tenant_slug: a.slug.clone(),
                email: email.into(),
                password: PASSWORD.into(),
                device_id: device,
                device_name: format!("{name}'s laptop"),
            })
            .await
            .expect("the crew's user signs in");
        extra.push((device, crew["crew"]["id"].clone()));
    }
    let (north_device, north_crew) = extra[0].clone();
    let (south_device, _) = extra[1].clone();

    let a_devices: Vec<String> = a
        .sessions
        .iter()
        .map(|s| s.device.to_string())
        .chain([north_device.to_string(), south_device.to_string()])
        .collect();
    let b_devices: Vec<String> = b.sessions.iter().map(|s| s.device.to_string()).collect();

    // The admin: every device of A, none of B.
    let got = h.get("/v1/admin/devices", Some(admin.access())).await;
    assert_ok("admin lists devices", &got);
    let mut listed = device_ids(&got.1);
    listed.sort();
    let mut expected = a_devices.clone();
    expected.sort();
    assert_eq!(listed, expected, "the admin sees exactly A's devices");
    let text = got.1.to_string();
    for id in b_devices.iter().chain([&b.id.to_string(), &b.slug]) {
        assert!(!text.contains(id.as_str()), "A's list names {id} of B");
    }
    let north = device(&got.1, north_device);
    assert_eq!(north["user_name"], json!("Nora North"));
    assert_eq!(north["device_name"], json!("Nora North's laptop"));
    assert_eq!(north["crew_id"], north_crew);
    assert_eq!(north["status"], json!("active"));

    // A's crew chief: the devices of its own crew (chief and field user) and of the crew it leads
    // (South), not North's, not the viewer's (no crew), not B's.
    let got = h.get("/v1/admin/devices", Some(chief.access())).await;
    assert_ok("chief lists devices", &got);
    let listed = device_ids(&got.1);
    for role in [Role::CrewChief, Role::FieldUser] {
        assert!(
            listed.contains(&a.session(role).device.to_string()),
            "the chief sees its crew's {role} laptop: {listed:?}"
        );
    }
    assert!(
        listed.contains(&south_device.to_string()),
        "the chief sees the crew it leads: {listed:?}"
    );
    for hidden in [north_device, a.session(Role::Viewer).device] {
        assert!(
            !listed.contains(&hidden.to_string()),
            "the chief sees {hidden}, which is not its crew's"
        );
    }
    assert!(
        listed.iter().all(|d| a_devices.contains(d)),
        "the chief's list holds a device not of A: {listed:?}"
    );

    // B's admin sees B's devices only.
    let got = h
        .get("/v1/admin/devices", Some(b.session(Role::Admin).access()))
        .await;
    assert_ok("B's admin lists devices", &got);
    let listed = device_ids(&got.1);
    assert!(listed.iter().all(|d| b_devices.contains(d)), "{listed:?}");
    assert!(listed.iter().all(|d| !a_devices.contains(d)), "{listed:?}");

    // Field users and viewers are refused with a stable code, in both tenants.
    for t in [a, b] {
        for role in [Role::FieldUser, Role::Viewer] {
            assert_error(
                &format!("{role} lists devices"),
                &h.get("/v1/admin/devices", Some(t.session(role).access()))
                    .await,
                403,
                ErrorCode::Forbidden,
            );
        }
    }
    assert_error(
        "no token",
        &h.get("/v1/admin/devices", None).await,
        401,
        ErrorCode::Unauthenticated,
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_pulls_refusals_and_revocations_show_as_the_server_saw_them() {
    let h = Harness::start().await;
    let a = &h.a;
    let admin = a.session(Role::Admin);
    let field = a.session(Role::FieldUser);

    let before = h.get("/v1/admin/devices", Some(admin.access())).await;
    assert_ok("before", &before);
    let row = device(&before.1, field.device);
    for key in [
        "last_push_at",
        "last_push_changes",
        "last_pull_at",
        "last_refused_at",
        "last_refused_changes",
    ] {
        assert_eq!(row[key], Value::Null, "{key} before any sync: {row}");
    }
    assert_eq!(row["refused_changes_total"], json!(0));

    // An accepted batch of two changes.
    let batch = vec![
        touch_change(field, a, 0, "first"),
        touch_change(field, a, 1, "second"),
    ];
    assert_ok("push", &h.push(field, &batch).await);
    // A pull.
    assert_ok(
        "pull",
        &h.post("/v1/sync/pull", Some(field.access()), &json!({}))
            .await,
    );
    // A refused batch: one good change and one naming a property the server does not have.
    let mut orphan = touch_change(field, a, 2, "orphan");
    let missing = PropertyId::generate();
    orphan.payload["property_id"] = json!(missing);
    let refused = h
        .push(field, &[touch_change(field, a, 3, "fine"), orphan])
        .await;
    assert_error("refused batch", &refused, 422, ErrorCode::BatchRefused);

    let after = h.get("/v1/admin/devices", Some(admin.access())).await;
    assert_ok("after", &after);
    let row = device(&after.1, field.device);
    let at = after.1["at"].as_i64().expect("server time");
    assert_eq!(row["last_push_changes"], json!(2), "{row}");
    for key in ["last_push_at", "last_pull_at", "last_refused_at"] {
        let t = row[key]
            .as_i64()
            .unwrap_or_else(|| panic!("{key} set: {row}"));
        assert!(t > 0 && t <= at, "{key} = {t} is not a past server time");
    }
    assert_eq!(row["last_refused_changes"], json!(1), "{row}");
    assert_eq!(row["refused_changes_total"], json!(1), "{row}");
    // The most recently heard-from device comes first.
    assert_eq!(after.1["devices"][0]["device_id"], json!(field.device));
    // Other devices did nothing.
    let viewer = device(&after.1, a.session(Role::Viewer).device);
    assert_eq!(viewer["last_push_at"], Value::Null);
    assert_eq!(viewer["refused_changes_total"], json!(0));

    // The refused batch wrote nothing of its own (all or nothing still holds).
    let pushed_again = h.push(field, &[touch_change(field, a, 4, "later")]).await;
    assert_ok("a later batch", &pushed_again);
    let row_later = h.get("/v1/admin/devices", Some(admin.access())).await;
    let row_later = device(&row_later.1, field.device);
    assert_eq!(row_later["last_push_changes"], json!(1));
    assert_eq!(row_later["refused_changes_total"], json!(1));

    // A revoked laptop is listed as revoked with its revocation time.
    assert_ok(
        "revoke",
        &h.post(
            &format!("/v1/devices/{}/revoke", field.device.0),
            Some(admin.access()),
            &json!({}),
        )
        .await,
    );
    let got = h.get("/v1/admin/devices", Some(admin.access())).await;
    let row = device(&got.1, field.device);
    assert_eq!(row["status"], json!("revoked"));
    assert!(row["revoked_at"].as_i64().is_some(), "{row}");
    h.stop().await;
}
