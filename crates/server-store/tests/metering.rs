//! Metering, plans and quotas against real PostgreSQL as the application role (and the control role for
//! plan changes): idempotent usage events, idempotent hourly rollups, storage samples once per hour,
//! invoices priced from the stored plan, hard user and device limits naming the plan that lifts them,
//! the month's synced-event counter (soft warning, hard refusal), the shared rate window, and tenant
//! isolation of all of it.

mod common;

use common::{NOW, provision};
use domain::{DeviceId, PlanTier, Role, Timestamp, UserId};
use server_store::metering::{HOUR_MS, Invoice, Month, UsageEvent, UsageKind};
use server_store::plans::PlanField;
use server_store::quotas::Limit;
use server_store::{NewUser, StoreError};
use uuid::Uuid;

fn event(kind: UsageKind, units: i64, at: Timestamp) -> UsageEvent {
    UsageEvent {
        id: Uuid::now_v7(),
        kind,
        units,
        occurred_at: at,
    }
}

#[tokio::test]
async fn usage_events_are_idempotent_and_rollups_rerun_to_the_same_rows() {
    let h = common::setup().await;
    let a = provision(&h, "meter-a", 3).await;
    let b = provision(&h, "meter-b", 3).await;
    let hour = NOW.0.div_euclid(HOUR_MS) * HOUR_MS;
    let events = vec![
        event(UsageKind::SyncedEvents, 40, Timestamp(hour + 10)),
        event(UsageKind::SyncedEvents, 2, Timestamp(hour + HOUR_MS + 5)),
        event(UsageKind::ModelRuns, 1, Timestamp(hour + 20)),
        event(UsageKind::Requests, 300, Timestamp(hour + 30)),
        event(UsageKind::StorageBytes, 5_000, Timestamp(hour + 40)),
        event(
            UsageKind::StorageBytes,
            7_000,
            Timestamp(hour + HOUR_MS + 40),
        ),
    ];
    let mut tx = h.app.begin_tenant(a.id).await.unwrap();
    assert_eq!(tx.record_usage(&events).await.unwrap(), 6);
    // The same ids again (a retried flush or push): nothing new.
    assert_eq!(tx.record_usage(&events).await.unwrap(), 0);
    let negative = event(UsageKind::Requests, -1, NOW);
    assert!(matches!(
        tx.record_usage(&[negative]).await,
        Err(StoreError::InvalidInput(_))
    ));
    tx.commit().await.unwrap();

    let range = (Timestamp(hour), Timestamp(hour + 2 * HOUR_MS));
    let rollup = |tenant| {
        let app = h.app.clone();
        async move {
            let mut tx = app.begin_tenant(tenant).await.unwrap();
            tx.rollup_usage(range.0, range.1).await.unwrap();
            let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(
                "SELECT hour_start, kind, units, events FROM usage_hourly ORDER BY 1, 2",
            )
            .fetch_all(tx.connection())
            .await
            .unwrap();
            let totals = tx.usage_totals(range.0, range.1).await.unwrap();
            tx.commit().await.unwrap();
            (rows, totals)
        }
    };
    let (first, totals) = rollup(a.id).await;
    let (second, again) = rollup(a.id).await;
    assert_eq!(first, second, "a re-run of the rollup writes the same rows");
    assert_eq!(totals, again);
    assert_eq!(first.len(), 6, "{first:?}");
    assert_eq!(
        (
            totals.synced_events,
            totals.model_runs,
            totals.requests,
            totals.storage_peak_bytes,
            totals.storage_latest_bytes
        ),
        (42, 1, 300, 7_000, 7_000)
    );
    // Tenant B sees none of A's usage.
    let (rows_b, totals_b) = rollup(b.id).await;
    assert!(rows_b.is_empty());
    assert_eq!(totals_b.synced_events, 0);
    h.teardown().await;
}

#[tokio::test]
async fn storage_is_sampled_once_per_hour_and_counts_only_the_tenants_rows() {
    let h = common::setup().await;
    let small = provision(&h, "store-small", 1).await;
    let large = provision(&h, "store-large", 200).await;
    let mut sizes = Vec::new();
    for t in [&small, &large] {
        let mut tx = h.app.begin_tenant(t.id).await.unwrap();
        let first = tx.sample_storage(NOW).await.unwrap();
        let again = tx.sample_storage(Timestamp(NOW.0 + 1_000)).await.unwrap();
        assert!(first.is_some_and(|b| b > 0), "{first:?}");
        assert_eq!(again, None, "one sample per hour");
        tx.commit().await.unwrap();
        sizes.push(first.unwrap_or(0));
    }
    assert!(sizes[1] > sizes[0], "more rows, more bytes: {sizes:?}");
    h.teardown().await;
}

#[tokio::test]
async fn invoices_are_priced_from_the_stored_plan_which_the_operator_changes() {
    let h = common::setup().await;
    let a = provision(&h, "invoice-a", 1).await;
    let month = Month::of(NOW);
    let mut tx = h.app.begin_tenant(a.id).await.unwrap();
    tx.record_usage(&[event(
        UsageKind::SyncedEvents,
        1_001_500,
        Timestamp(month.start().0 + 1),
    )])
    .await
    .unwrap();
    let plan = tx.tenant_plan().await.unwrap();
    let usage = tx.usage_between(month.start(), month.end()).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(plan.name, PlanTier::Standard);
    let invoice = Invoice::new(&a.slug, month, &plan, usage.clone());
    // $499 base + 2 started thousands over 1,000,000 at 50 ¢.
    assert_eq!(invoice.total_cents, 49_900 + 100);

    let mut ctl = h.control.begin().await.unwrap();
    let updated = ctl
        .update_plan(
            PlanTier::Standard,
            &[(PlanField::EventOverageCentsPer1000, 80)],
            NOW,
        )
        .await
        .unwrap();
    ctl.commit().await.unwrap();
    assert_eq!(updated.event_overage_cents_per_1000, 80);
    let mut tx = h.app.begin_tenant(a.id).await.unwrap();
    let plan = tx.tenant_plan().await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        Invoice::new(&a.slug, month, &plan, usage).total_cents,
        49_900 + 160
    );

    // An inconsistent change (hard below soft) is refused and changes nothing.
    let mut ctl = h.control.begin().await.unwrap();
    let refused = ctl
        .update_plan(PlanTier::Trial, &[(PlanField::MonthlyEventsHard, 10)], NOW)
        .await;
    assert!(
        matches!(refused, Err(StoreError::InvalidInput(_))),
        "{refused:?}"
    );
    ctl.rollback().await.unwrap();
    let mut ctl = h.control.begin().await.unwrap();
    let trial = ctl
        .list_plans()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.name == PlanTier::Trial)
        .unwrap();
    assert_eq!(trial.monthly_events_hard, 50_000);
    // Moving a tenant; an unknown slug is not found.
    let moved = ctl.set_tenant_plan(&a.slug, PlanTier::Trial).await.unwrap();
    assert_eq!(moved.plan, PlanTier::Trial);
    assert!(matches!(
        ctl.set_tenant_plan("nobody", PlanTier::Trial).await,
        Err(StoreError::NotFound(_))
    ));
    ctl.commit().await.unwrap();
    // The application role may read plans but never change them.
    let mut tx = h.app.begin_tenant(a.id).await.unwrap();
    let denied = sqlx::query("UPDATE plans SET base_fee_cents = 0")
        .execute(tx.connection())
        .await;
    assert!(denied.is_err(), "the app role must not change plans");
    tx.rollback().await.unwrap();
    h.teardown().await;
}

#[tokio::test]
async fn hard_user_and_device_limits_refuse_and_name_the_plan_that_lifts_them() {
    let h = common::setup().await;
    let a = provision(&h, "seats-a", 1).await;
    // The fixture has 4 users and 1 device on the standard plan; shrink the plan to exactly that.
    let mut ctl = h.control.begin().await.unwrap();
    ctl.update_plan(
        PlanTier::Standard,
        &[(PlanField::MaxUsers, 4), (PlanField::MaxDevices, 2)],
        NOW,
    )
    .await
    .unwrap();
    ctl.commit().await.unwrap();

    let mut tx = h.app.begin_tenant(a.id).await.unwrap();
    let user = NewUser {
        id: UserId::generate(),
        email: "fifth@seats-a.example".into(),
        name: "Fifth".into(),
        role: Role::FieldUser,
        crew_id: None,
        password_hash: "hash".into(),
    };
    match tx.add_user(&user, NOW).await {
        Err(StoreError::QuotaExceeded(r)) => {
            assert_eq!((r.limit, r.used, r.allowed), (Limit::Users, 4, 4));
            assert_eq!(r.plan, PlanTier::Standard);
            assert_eq!(r.lifted_by, Some(PlanTier::Enterprise));
            let text = r.to_string();
            assert!(
                text.contains("4 users") && text.contains("enterprise plan lifts it"),
                "{text}"
            );
        }
        other => panic!("expected quota_exceeded, got {other:?}"),
    }
    tx.rollback().await.unwrap();

    let mut tx = h.app.begin_tenant(a.id).await.unwrap();
    tx.register_or_get_device(DeviceId::generate(), a.field, "Truck 2", NOW)
        .await
        .expect("the second device fits");
    let third = tx
        .register_or_get_device(DeviceId::generate(), a.field, "Truck 3", NOW)
        .await;
    assert!(
        matches!(&third, Err(StoreError::QuotaExceeded(r)) if r.limit == Limit::Devices),
        "{third:?}"
    );
    // A known device still signs in.
    tx.register_or_get_device(a.device, a.field, "Truck 1", NOW)
        .await
        .expect("a registered device is not a new seat");
    tx.commit().await.unwrap();
    // Revoking one frees its seat.
    let mut tx = h.app.begin_tenant(a.id).await.unwrap();
    tx.revoke_device(a.device, NOW).await.unwrap();
    tx.register_or_get_device(DeviceId::generate(), a.field, "Truck 3", NOW)
        .await
        .expect("a revoked device's seat is free again");
    tx.commit().await.unwrap();
    h.teardown().await;
}

#[tokio::test]
async fn the_months_event_counter_warns_over_soft_and_refuses_at_hard() {
    let h = common::setup().await;
    let a = provision(&h, "events-a", 1).await;
    let b = provision(&h, "events-b", 1).await;
    let mut ctl = h.control.begin().await.unwrap();
    ctl.update_plan(
        PlanTier::Standard,
        &[
            (PlanField::MonthlyEvents, 10),
            (PlanField::MonthlyEventsHard, 20),
        ],
        NOW,
    )
    .await
    .unwrap();
    ctl.commit().await.unwrap();
    let meter = |tenant, n: i64| {
        let app = h.app.clone();
        async move {
            let mut tx = app.begin_tenant(tenant).await.unwrap();
            let result = tx.meter_synced_events(Uuid::now_v7(), n, NOW).await;
            if result.is_ok() {
                tx.commit().await.unwrap();
            } else {
                tx.rollback().await.unwrap();
            }
            result
        }
    };
    let first = meter(a.id, 8).await.unwrap();
    assert_eq!((first.used, first.warning.is_none()), (8, true));
    let second = meter(a.id, 7).await.unwrap();
    let warning = second.warning.expect("over the soft limit");
    assert_eq!((warning.used, warning.soft, warning.hard), (15, 10, 20));
    assert_eq!(warning.lifted_by, Some(PlanTier::Enterprise));
    // Starts below the hard limit: accepted, even though it ends above it.
    assert_eq!(meter(a.id, 6).await.unwrap().used, 21);
    // Starts at or above it: refused, and the rollback keeps the counter.
    let refused = meter(a.id, 1).await;
    assert!(
        matches!(&refused, Err(StoreError::QuotaExceeded(r)) if r.limit == Limit::SyncedEventsPerMonth && r.used == 21),
        "{refused:?}"
    );
    // Tenant B has its own counter.
    assert_eq!(meter(b.id, 1).await.unwrap().used, 1);
    let mut tx = h.app.begin_tenant(a.id).await.unwrap();
    let recorded: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(units), 0)::bigint FROM usage_events WHERE kind = 'synced_events'",
    )
    .fetch_one(tx.connection())
    .await
    .unwrap();
    assert_eq!(recorded, 21, "the refused batch left no usage event");
    let report = tx.usage_report(&a.slug, NOW).await.unwrap();
    tx.commit().await.unwrap();
    let events = report
        .limits
        .iter()
        .find(|l| l.limit == Limit::SyncedEventsPerMonth)
        .unwrap();
    assert_eq!((events.used, events.status), (21, "at_hard"));
    let recommendation = report.recommendation.expect("a pressed limit recommends");
    assert_eq!(recommendation.plan, PlanTier::Enterprise);
    h.teardown().await;
}

#[tokio::test]
async fn the_shared_rate_window_never_grants_more_than_the_plan() {
    let h = common::setup().await;
    let a = provision(&h, "rate-a", 1).await;
    let b = provision(&h, "rate-b", 1).await;
    let mut ctl = h.control.begin().await.unwrap();
    ctl.update_plan(
        PlanTier::Standard,
        &[(PlanField::RequestsPerMinute, 10)],
        NOW,
    )
    .await
    .unwrap();
    ctl.commit().await.unwrap();
    // Two pools stand for two server instances.
    let other = server_store::AppPool::connect(&h.init.app_url, &Default::default())
        .await
        .unwrap();
    let at = Timestamp(NOW.0.div_euclid(60_000) * 60_000 + 1_000);
    let mut granted = 0;
    for i in 0..8 {
        let pool = if i % 2 == 0 { &h.app } else { &other };
        let r = pool.reserve_requests(a.id, at, 3).await.unwrap().unwrap();
        assert_eq!((r.per_minute, r.plan), (10, PlanTier::Standard));
        granted += r.granted;
        assert!(r.window_total <= 10, "{r:?}");
    }
    assert_eq!(granted, 10, "every request of the minute, and no more");
    // Tenant B's window is its own.
    let rb = other.reserve_requests(b.id, at, 3).await.unwrap().unwrap();
    assert_eq!(rb.granted, 3);
    // Next minute, the previous one weighs in: 30 s in, half of its 10 still counts.
    let later = Timestamp(at.0 - 1_000 + 60_000 + 30_000);
    let mut next = 0;
    for _ in 0..5 {
        next += h
            .app
            .reserve_requests(a.id, later, 3)
            .await
            .unwrap()
            .unwrap()
            .granted;
    }
    assert_eq!(
        next, 5,
        "10 per minute minus half of the previous minute's 10"
    );
    other.close().await;
    h.teardown().await;
}
