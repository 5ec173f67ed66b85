//! Shared test setup: a fresh database initialised with this crate's roles and migrations, and pools
//! for the application and control roles.
#![allow(dead_code)]

use server_store::{AppPool, ControlPool, InitOutput, PoolSettings, init_database};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use test_postgres::TestDatabase;

#[derive(Debug)]
pub struct Harness {
    pub db: TestDatabase,
    pub init: InitOutput,
    pub app: AppPool,
    pub control: ControlPool,
}

pub async fn setup() -> Harness {
    setup_with(PoolSettings {
        max_connections: 8,
        ..PoolSettings::default()
    })
    .await
}

pub async fn setup_with(settings: PoolSettings) -> Harness {
    let db = test_postgres::fresh_database()
        .await
        .expect("test database");
    let init = init_database(&db.server_url, &db.name, &db.role_prefix)
        .await
        .expect("init_database");
    let app = AppPool::connect(&init.app_url, &settings)
        .await
        .expect("app pool");
    let control = ControlPool::connect(&init.control_url, &settings)
        .await
        .expect("control pool");
    Harness {
        db,
        init,
        app,
        control,
    }
}

impl Harness {
    /// A raw pool as the application role, for attacks that bypass TenantTx on purpose.
    pub async fn raw_app_pool(&self, max: u32) -> PgPool {
        PgPoolOptions::new()
            .max_connections(max)
            .connect(&self.init.app_url)
            .await
            .expect("raw app pool")
    }

    /// A raw superuser pool on the test database (catalog inspection only).
    pub async fn superuser_pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(2)
            .connect(&self.db.superuser_url)
            .await
            .expect("superuser pool")
    }

    pub async fn teardown(self) {
        self.app.close().await;
        self.control.close().await;
        // Best effort: a failure to drop leaves a database behind, not a wrong result.
        let _ = self.db.drop_database().await;
    }
}
