//! Property test: random operations across two tenants through the application role. Reads of one
//! tenant never show the other's rows, and counts match a model of what each tenant wrote.

mod common;

use std::collections::{HashMap, HashSet};

use common::*;
use domain::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use server_store::PushOutcome;

#[derive(Clone, Debug)]
enum Op {
    Touch {
        tenant: usize,
        property: usize,
    },
    Status {
        tenant: usize,
        property: usize,
        status: usize,
    },
    AddProperty {
        tenant: usize,
    },
    Replay {
        tenant: usize,
    },
    Read {
        tenant: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize, 0..8usize).prop_map(|(tenant, property)| Op::Touch { tenant, property }),
        2 => (0..2usize, 0..8usize, 0..PropertyStatus::ALL.len()).prop_map(|(tenant, property, status)| Op::Status { tenant, property, status }),
        1 => (0..2usize).prop_map(|tenant| Op::AddProperty { tenant }),
        1 => (0..2usize).prop_map(|tenant| Op::Replay { tenant }),
        2 => (0..2usize).prop_map(|tenant| Op::Read { tenant }),
    ]
}

#[derive(Default)]
struct Model {
    touches: HashSet<uuid::Uuid>,
    properties: Vec<PropertyId>,
    status: HashMap<PropertyId, &'static str>,
    last_batch: Vec<sync_protocol::Change>,
}

#[test]
fn random_operations_never_cross_tenants() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let h = rt.block_on(setup());
    let mut runner = TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::sync::atomic::AtomicUsize::new(0);
    let result = runner.run(&proptest::collection::vec(op(), 1..25), |ops| {
        let case = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        rt.block_on(async {
            let tenants = [
                provision(&h, &format!("a{case}"), 2).await,
                provision(&h, &format!("b{case}"), 2).await,
            ];
            let mut models: [Model; 2] = Default::default();
            for (i, t) in tenants.iter().enumerate() {
                models[i].properties = t.properties.clone();
                for p in &t.properties {
                    models[i].status.insert(*p, "new");
                }
            }
            let mut clock = 10u64;
            for op in ops {
                clock += 1;
                match op {
                    Op::Touch { tenant, property } => {
                        let t = &tenants[tenant];
                        let m = &mut models[tenant];
                        let mut touch = t.touch(0, "p");
                        touch.property_id = m.properties[property % m.properties.len()];
                        let change = t.touch_change(&touch);
                        let out = push(&h, t, Role::FieldUser, std::slice::from_ref(&change)).await;
                        prop_assert!(matches!(out, PushOutcome::Applied(_)), "{out:?}");
                        m.touches.insert(touch.id.0);
                        m.last_batch = vec![change];
                    }
                    Op::Status {
                        tenant,
                        property,
                        status,
                    } => {
                        let t = &tenants[tenant];
                        let m = &mut models[tenant];
                        let target = m.properties[property % m.properties.len()];
                        let status = PropertyStatus::ALL[status];
                        let change = t.change(
                            sync_protocol::Entity::Property,
                            target.0,
                            sync_protocol::ChangeOp::Update,
                            &serde_json::json!({ "status": status }),
                            clock,
                        );
                        let out = push(&h, t, Role::FieldUser, std::slice::from_ref(&change)).await;
                        prop_assert!(matches!(out, PushOutcome::Applied(_)), "{out:?}");
                        m.status.insert(target, status.as_str());
                        m.last_batch = vec![change];
                    }
                    Op::AddProperty { tenant } => {
                        let t = &tenants[tenant];
                        let id = PropertyId::generate();
                        let mut tx = h.app.begin_tenant(t.id).await.unwrap();
                        tx.upsert_properties(&[property(id, t.storm, 99)], hlc(clock), NOW)
                            .await
                            .unwrap();
                        tx.commit().await.unwrap();
                        models[tenant].properties.push(id);
                        models[tenant].status.insert(id, "new");
                    }
                    Op::Replay { tenant } => {
                        let t = &tenants[tenant];
                        let batch = models[tenant].last_batch.clone();
                        if !batch.is_empty() {
                            let out = push(&h, t, Role::FieldUser, &batch).await;
                            prop_assert_eq!(
                                statuses(&out),
                                vec![sync_protocol::ReceiptStatus::Duplicate; batch.len()]
                            );
                        }
                    }
                    Op::Read { tenant } => {
                        let t = &tenants[tenant];
                        let m = &models[tenant];
                        let mut tx = h.app.begin_tenant(t.id).await.unwrap();
                        let touches: Vec<uuid::Uuid> =
                            sqlx::query_scalar("SELECT id FROM journey_touches")
                                .fetch_all(tx.connection())
                                .await
                                .unwrap();
                        let touches: HashSet<_> = touches.into_iter().collect();
                        prop_assert_eq!(&touches, &m.touches);
                        let rows: Vec<(uuid::Uuid, String)> =
                            sqlx::query_as("SELECT id, status FROM properties")
                                .fetch_all(tx.connection())
                                .await
                                .unwrap();
                        prop_assert_eq!(rows.len(), m.properties.len());
                        for (id, status) in rows {
                            prop_assert_eq!(
                                Some(&status.as_str()),
                                m.status.get(&PropertyId(id)),
                                "property {} is not this tenant's or has the wrong status",
                                id
                            );
                        }
                        let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
                            .fetch_one(tx.connection())
                            .await
                            .unwrap();
                        prop_assert_eq!(users, 4);
                        let tenant_rows: Vec<uuid::Uuid> =
                            sqlx::query_scalar("SELECT DISTINCT tenant_id FROM change_log")
                                .fetch_all(tx.connection())
                                .await
                                .unwrap();
                        prop_assert_eq!(tenant_rows, vec![t.id.0]);
                    }
                }
            }
            Ok::<(), TestCaseError>(())
        })
    });
    rt.block_on(h.teardown());
    if let Err(e) = result {
        panic!("{e}");
    }
}
