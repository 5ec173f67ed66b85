//! `db init` with operator-chosen role passwords (a deployment's Secret): re-running it — as the
//! migrations Job does on every release — keeps the URLs running servers hold valid, while a run without
//! them rotates every password. Bad passwords are refused before any DDL. (The test server trusts
//! loopback connections, so a wrong password would still connect here: the checks read the URLs and the
//! stored password verifiers in `pg_authid` instead.)
// A panic here is a failing test.
#![allow(clippy::unwrap_used)]

use server_store::{
    AppPool, PoolSettings, RolePasswords, StoreError, init_database_with_passwords,
};

async fn connects(url: &str) -> bool {
    let settings = PoolSettings {
        max_connections: 1,
        ..PoolSettings::default()
    };
    match AppPool::connect(url, &settings).await {
        Ok(pool) => {
            let ok = pool.ping().await.is_ok();
            pool.close().await;
            ok
        }
        Err(_) => false,
    }
}

#[tokio::test]
async fn fixed_passwords_survive_a_rerun_and_no_passwords_rotate() {
    let db = test_postgres::fresh_database().await.unwrap();
    let chosen = RolePasswords {
        owner: Some("Owner0123456789abcdef".into()),
        app: Some("App0123456789abcdefgh".into()),
        control: Some("Control0123456789abcd".into()),
    };
    let first = init_database_with_passwords(&db.server_url, &db.name, &db.role_prefix, &chosen)
        .await
        .unwrap();
    assert!(first.app_url.contains(":App0123456789abcdefgh@"));
    let second = init_database_with_passwords(&db.server_url, &db.name, &db.role_prefix, &chosen)
        .await
        .unwrap();
    assert_eq!(
        first, second,
        "a re-run with the same passwords gives the same URLs"
    );
    assert!(connects(&first.app_url).await, "the first URL still works");
    assert!(connects(&first.control_url).await);

    // No passwords: every run rotates them (new URLs).
    let rotated = init_database_with_passwords(
        &db.server_url,
        &db.name,
        &db.role_prefix,
        &RolePasswords::default(),
    )
    .await
    .unwrap();
    assert_ne!(rotated.app_url, first.app_url);
    assert!(connects(&rotated.app_url).await);
    let verifier = || async {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.server_url)
            .await
            .unwrap();
        let v: Option<String> =
            sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
                .bind(&rotated.roles.app)
                .fetch_one(&mut conn)
                .await
                .unwrap();
        v
    };
    let before_bad = verifier().await;
    assert!(before_bad.is_some());

    // A password that could break out of the DDL is refused, naming the role but not the value, and
    // nothing changes: the rotated URL keeps working.
    let bad = RolePasswords {
        app: Some("x'; DROP ROLE postgres; --0123".into()),
        ..RolePasswords::default()
    };
    let err = init_database_with_passwords(&db.server_url, &db.name, &db.role_prefix, &bad)
        .await
        .unwrap_err();
    match err {
        StoreError::InvalidInput(message) => {
            assert!(message.contains("application role"), "{message}");
            assert!(!message.contains("DROP"), "{message}");
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    assert_eq!(
        verifier().await,
        before_bad,
        "a refused run changed the role"
    );
    let _ = db.drop_database().await;
}
