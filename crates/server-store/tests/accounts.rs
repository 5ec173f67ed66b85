//! Control plane and accounts against real PostgreSQL: provisioning in one transaction, the login's
//! lookups, devices, refresh-token rotation and reuse detection, the audit log, models.

mod common;

use common::*;
use domain::*;
use server_store::{NewRefreshToken, NewTenant, NewUser, RotateOutcome, StoreError};

fn token(user: UserId, device: DeviceId, family: uuid::Uuid, hash: &[u8]) -> NewRefreshToken {
    NewRefreshToken {
        id: uuid::Uuid::now_v7(),
        family_id: family,
        token_hash: hash.to_vec(),
        user_id: user,
        device_id: device,
        issued_at: NOW,
        expires_at: NOW.plus_millis(3_600_000),
    }
}

#[tokio::test]
async fn login_lookup_sequence() {
    let h = setup().await;
    let t = provision(&h, "acme", 0).await;
    // 1. Control plane: slug -> tenant.
    let mut ctl = h.control.begin().await.unwrap();
    let tenant = ctl
        .find_tenant_by_slug("acme")
        .await
        .unwrap()
        .expect("tenant");
    assert!(ctl.find_tenant_by_slug("nope").await.unwrap().is_none());
    ctl.commit().await.unwrap();
    assert_eq!(tenant.id, t.id);
    assert_eq!(tenant.status, TenantStatus::Active);
    // 2. Tenant transaction: email -> credentials (case-insensitive), device registered on first login.
    let mut tx = h.app.begin_tenant(tenant.id).await.unwrap();
    let creds = tx
        .find_user_by_email("FIELD@acme.example")
        .await
        .unwrap()
        .expect("user");
    assert_eq!(creds.user.id, t.field);
    assert_eq!(creds.user.role, Role::FieldUser);
    assert_eq!(creds.user.crew_id, Some(t.crew));
    assert_eq!(creds.password_hash, "hash");
    assert!(
        !format!("{creds:?}").contains("hash\""),
        "the hash stays out of Debug"
    );
    let device_id = DeviceId::generate();
    let device = tx
        .register_or_get_device(device_id, t.field, "Laptop", NOW)
        .await
        .unwrap();
    assert_eq!(device.status, DeviceStatus::Active);
    let again = tx
        .register_or_get_device(device_id, t.chief, "Other name", NOW.plus_millis(5))
        .await
        .unwrap();
    assert_eq!(
        again, device,
        "a second login returns the stored device unchanged"
    );
    tx.insert_refresh_token(&token(t.field, device_id, uuid::Uuid::now_v7(), b"h1"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Another tenant cannot find this user by email.
    let other = provision(&h, "other", 0).await;
    let mut tx = h.app.begin_tenant(other.id).await.unwrap();
    assert!(
        tx.find_user_by_email("field@acme.example")
            .await
            .unwrap()
            .is_none()
    );
    drop(tx);
    h.teardown().await;
}

#[tokio::test]
async fn provisioning_is_one_transaction_and_slugs_and_emails_are_unique() {
    let h = setup().await;
    provision(&h, "acme", 0).await;
    let clash = NewTenant {
        id: TenantId::generate(),
        name: "Acme again".into(),
        slug: "acme".into(),
        plan: PlanTier::Trial,
        created_at: NOW,
        default_crew: Crew {
            id: CrewId::generate(),
            name: "Crew".into(),
            chief_id: None,
        },
        admin: NewUser {
            id: UserId::generate(),
            email: "a@b.example".into(),
            name: "A".into(),
            role: Role::Viewer,
            crew_id: None,
            password_hash: "x".into(),
        },
    };
    let mut ctl = h.control.begin().await.unwrap();
    let err = ctl.create_tenant(&clash).await.expect_err("slug taken");
    assert!(matches!(err, StoreError::Conflict(_)));
    drop(ctl);
    // An invalid admin email rolls the whole provisioning back: no tenant row remains.
    let mut bad = clash.clone();
    bad.slug = "fresh".into();
    bad.admin.email = "not-an-email".into();
    let mut ctl = h.control.begin().await.unwrap();
    assert!(matches!(
        ctl.create_tenant(&bad).await,
        Err(StoreError::Validation(_))
    ));
    drop(ctl);
    let mut ctl = h.control.begin().await.unwrap();
    assert!(ctl.find_tenant_by_slug("fresh").await.unwrap().is_none());
    // Status changes are audited in the tenant.
    let acme = ctl.find_tenant_by_slug("acme").await.unwrap().unwrap();
    ctl.set_tenant_status(acme.id, TenantStatus::Suspended, NOW)
        .await
        .unwrap();
    assert!(matches!(
        ctl.set_tenant_status(TenantId::generate(), TenantStatus::Active, NOW)
            .await,
        Err(StoreError::NotFound(_))
    ));
    ctl.commit().await.unwrap();
    let mut tx = h.app.begin_tenant(acme.id).await.unwrap();
    assert_eq!(
        tx.tenant().await.unwrap().unwrap().status,
        TenantStatus::Suspended
    );
    let actions: Vec<String> = tx
        .list_audit(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(
        actions.contains(&"tenant.status.suspended".to_owned()),
        "{actions:?}"
    );
    // Emails are unique per tenant, case-insensitively.
    let dup = NewUser {
        id: UserId::generate(),
        email: "ADMIN@acme.example".into(),
        name: "Dup".into(),
        role: Role::Viewer,
        crew_id: None,
        password_hash: "x".into(),
    };
    assert!(matches!(
        tx.add_user(&dup, NOW).await,
        Err(StoreError::Conflict(_))
    ));
    drop(tx);
    h.teardown().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_in_a_family_and_reuse_revokes_the_family() {
    let h = setup().await;
    let t = provision(&h, "acme", 0).await;
    let family = uuid::Uuid::now_v7();
    let first = token(t.field, t.device, family, b"first");
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    tx.insert_refresh_token(&first).await.unwrap();
    let found = tx.find_refresh_token(b"first").await.unwrap().unwrap();
    assert!(found.is_usable(NOW));
    assert!(!found.is_usable(NOW.plus_millis(3_600_001)));
    let second = token(t.field, t.device, uuid::Uuid::nil(), b"second");
    assert_eq!(
        tx.rotate_refresh_token(found.id, &second, NOW)
            .await
            .unwrap(),
        RotateOutcome::Rotated
    );
    let second_stored = tx.find_refresh_token(b"second").await.unwrap().unwrap();
    assert_eq!(
        second_stored.family_id, family,
        "the new token joins the old one's family"
    );
    assert!(
        !tx.find_refresh_token(b"first")
            .await
            .unwrap()
            .unwrap()
            .is_usable(NOW)
    );
    // Replaying the rotated token: reuse, the family is revoked, nothing new stored.
    let third = token(t.field, t.device, family, b"third");
    assert_eq!(
        tx.rotate_refresh_token(found.id, &third, NOW)
            .await
            .unwrap(),
        RotateOutcome::ReuseDetected
    );
    assert!(tx.find_refresh_token(b"third").await.unwrap().is_none());
    assert!(
        tx.find_refresh_token(b"second")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    tx.commit().await.unwrap();

    // Revoking a device revokes its tokens and keeps the first revocation time.
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    tx.insert_refresh_token(&token(t.field, t.device, uuid::Uuid::now_v7(), b"fourth"))
        .await
        .unwrap();
    assert!(tx.revoke_device(t.device, NOW).await.unwrap());
    assert!(
        tx.revoke_device(t.device, NOW.plus_millis(10))
            .await
            .unwrap()
    );
    let device = tx.device(t.device).await.unwrap().unwrap();
    assert_eq!(
        (device.status, device.revoked_at),
        (DeviceStatus::Revoked, Some(NOW))
    );
    assert_eq!(
        tx.device_status(t.device).await.unwrap(),
        Some(DeviceStatus::Revoked)
    );
    assert!(
        tx.find_refresh_token(b"fourth")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(!tx.revoke_device(DeviceId::generate(), NOW).await.unwrap());
    assert_eq!(
        tx.revoke_token_family(family, NOW).await.unwrap(),
        0,
        "already revoked"
    );
    tx.commit().await.unwrap();
    h.teardown().await;
}

#[tokio::test]
async fn audit_is_append_only_for_the_app_role_and_models_register_once() {
    let h = setup().await;
    let t = provision(&h, "acme", 0).await;
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    let entry = AuditEntry {
        id: AuditId::generate(),
        actor: Some(t.admin),
        action: "device.revoke".into(),
        target: "device:x".into(),
        device_id: Some(t.device),
        request_id: Some("req-1".into()),
        at: NOW.plus_millis(1),
    };
    tx.insert_audit(&entry, NOW).await.unwrap();
    assert_eq!(tx.list_audit(1).await.unwrap(), vec![entry]);
    tx.commit().await.unwrap();
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    let err = sqlx::query("UPDATE audit_log SET action = 'forged'")
        .execute(tx.connection())
        .await
        .expect_err("no UPDATE grant");
    assert!(matches!(StoreError::from(err), StoreError::Forbidden(_)));
    drop(tx);
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    let err = sqlx::query("DELETE FROM audit_log")
        .execute(tx.connection())
        .await
        .expect_err("no DELETE grant");
    assert!(matches!(StoreError::from(err), StoreError::Forbidden(_)));
    drop(tx);

    let model = Model {
        id: ModelId::generate(),
        version: "m-1".into(),
        learner: "t_learner".into(),
        trained_at: NOW,
        training_rows: u64::MAX,
        data_watermark: 7,
        qini: 0.1,
        auuc: 0.2,
        uplift_at_30: 0.05,
    };
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    tx.register_model(&model, NOW).await.unwrap();
    assert!(matches!(
        tx.register_model(
            &Model {
                id: ModelId::generate(),
                ..model.clone()
            },
            NOW
        )
        .await,
        Err(StoreError::Conflict(_))
    ));
    drop(tx);
    let mut tx = h.app.begin_tenant(t.id).await.unwrap();
    tx.register_model(&model, NOW).await.unwrap();
    assert_eq!(tx.list_models().await.unwrap(), vec![model]);
    tx.commit().await.unwrap();
    h.teardown().await;
}
