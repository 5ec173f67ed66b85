//! The key lifecycle against real SQLCipher files: typed unlock errors, damaged files, the process lock,
//! passphrase change, more users, rekey, recovery, and what an attacker with the file can read.

mod support;

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::process::Command;

use domain::*;
use local_store::{DataDir, Passphrase, PropertyQuery, RecoveryKey, StoreError, TenantStore};
use support::*;

fn open(f: &Fixture, user: Option<&str>, passphrase: &str) -> Result<TenantStore, StoreError> {
    f.data_dir
        .open(f.tenant_id, user, &Passphrase::new(passphrase))
}

fn property_count(store: &TenantStore) -> i64 {
    store.record_counts().expect("counts").properties
}

/// A tenant with one storm and one property, closed again.
fn tenant_with_data() -> (Fixture, Property) {
    let mut f = tenant();
    let s = storm();
    f.store.add_storm(&s).expect("storm");
    let p = property(s.id, 1, "4242 Zebrawood Lane");
    f.store.add_property(&p).expect("property");
    (f, p)
}

fn close(f: &mut Fixture) {
    // Replace the open store with nothing by reopening it through the recovery key later; dropping the
    // connection checkpoints the WAL into the main file.
    let placeholder = TenantStore::open_plain_for_benchmark(&f.dir.path().join("placeholder.db"))
        .expect("placeholder");
    drop(std::mem::replace(&mut f.store, placeholder));
}

#[test]
fn wrong_passphrase_is_typed_and_right_one_opens() {
    let (mut f, _) = tenant_with_data();
    close(&mut f);
    let err = open(&f, Some(USER), "not the passphrase").expect_err("wrong passphrase");
    assert!(matches!(err, StoreError::WrongPassphrase { .. }), "{err:?}");
    assert_eq!(err.code(), "store.wrong_passphrase");
    assert!(
        err.to_string().contains(&f.tenant_id.to_string()),
        "names the file: {err}"
    );
    let err = open(&f, Some("nobody"), PASSPHRASE).expect_err("unknown user");
    assert_eq!(err.code(), "store.unknown_user");
    let store = open(&f, None, PASSPHRASE).expect("right passphrase, any slot");
    assert_eq!(store.unlocked_user(), Some(USER));
    assert_eq!(property_count(&store), 1);
}

#[test]
fn wrong_and_malformed_recovery_keys_are_typed() {
    let (mut f, _) = tenant_with_data();
    close(&mut f);
    let wrong = RecoveryKey::parse(&"7".repeat(64)).expect("well formed");
    let err = f
        .data_dir
        .open_with_recovery_key(f.tenant_id, &wrong)
        .expect_err("wrong key");
    assert!(
        matches!(err, StoreError::WrongRecoveryKey { .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), "store.wrong_recovery_key");
    assert_eq!(
        RecoveryKey::parse("abc").expect_err("malformed").code(),
        "store.malformed_recovery_key"
    );
    let right = RecoveryKey::parse(&f.recovery_key).expect("parses");
    let store = f
        .data_dir
        .open_with_recovery_key(f.tenant_id, &right)
        .expect("recovery key opens");
    assert_eq!(store.unlocked_user(), None);
    assert_eq!(property_count(&store), 1);
}

#[test]
fn a_missing_key_file_still_opens_with_the_recovery_key() {
    let (mut f, _) = tenant_with_data();
    close(&mut f);
    fs::remove_file(f.data_dir.key_file_path(f.tenant_id)).expect("remove key file");
    let err = open(&f, Some(USER), PASSPHRASE).expect_err("no key file");
    assert_eq!(err.code(), "store.key_file_damaged");
    let wrong = RecoveryKey::parse(&"7".repeat(64)).expect("well formed");
    let err = f
        .data_dir
        .open_with_recovery_key(f.tenant_id, &wrong)
        .expect_err("wrong key");
    assert_eq!(err.code(), "store.wrong_recovery_key");
    let right = RecoveryKey::parse(&f.recovery_key).expect("parses");
    let store = f
        .data_dir
        .recover(
            f.tenant_id,
            &right,
            USER,
            &Passphrase::new("a new passphrase"),
        )
        .expect("recover");
    assert_eq!(property_count(&store), 1);
    assert_eq!(store.users().expect("users"), vec![USER.to_owned()]);
}

#[test]
fn key_slots_below_the_iteration_floor_are_refused() {
    let (mut f, _) = tenant_with_data();
    close(&mut f);
    let path = f.data_dir.key_file_path(f.tenant_id);
    let text = fs::read_to_string(&path).expect("key file");
    fs::write(
        &path,
        text.replace("\"iterations\": 600000", "\"iterations\": 1000"),
    )
    .expect("weaken");
    let err = open(&f, Some(USER), PASSPHRASE).expect_err("weakened slot");
    assert_eq!(err.code(), "store.key_file_damaged");
    assert!(err.to_string().contains("iterations"), "{err}");
}

#[test]
fn a_corrupt_file_is_reported_as_corrupt_naming_the_file() {
    let (mut f, _) = tenant_with_data();
    close(&mut f);
    let path = f.data_dir.database_path(f.tenant_id);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open raw");
    file.seek(SeekFrom::Start(1_000)).expect("seek");
    file.write_all(&[0x5a; 200]).expect("scribble");
    drop(file);
    let right = RecoveryKey::parse(&f.recovery_key).expect("parses");
    let err = f
        .data_dir
        .open_with_recovery_key(f.tenant_id, &right)
        .expect_err("corrupt");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(err.code(), "store.corrupt");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "names the file: {err}"
    );
    let err = open(&f, Some(USER), PASSPHRASE).expect_err("corrupt, right passphrase");
    assert_eq!(err.code(), "store.corrupt", "not a wrong passphrase: {err}");
}

#[test]
fn truncated_files_are_reported_as_corrupt_naming_the_file() {
    let (mut f, _) = tenant_with_data();
    close(&mut f);
    let path = f.data_dir.database_path(f.tenant_id);
    let right = RecoveryKey::parse(&f.recovery_key).expect("parses");
    let original = fs::read(&path).expect("read");
    assert!(original.len() > 3 * 4096, "the schema spans several pages");
    for len in [4096 * 2 + 100, 4096, 0] {
        fs::write(&path, &original[..len]).expect("truncate");
        let err = f
            .data_dir
            .open_with_recovery_key(f.tenant_id, &right)
            .expect_err("truncated");
        assert_eq!(err.code(), "store.corrupt", "length {len}: {err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "names the file: {err}"
        );
    }
}

#[test]
fn passphrase_change_more_users_and_rekey_keep_all_data() {
    let (mut f, p) = tenant_with_data();
    f.store
        .change_passphrase(&Passphrase::new("second passphrase"))
        .expect("change");
    f.store
        .add_user("sam", &Passphrase::new("sams passphrase"))
        .expect("add user");
    assert_eq!(
        f.store
            .add_user("sam", &Passphrase::new("another one"))
            .expect_err("twice")
            .code(),
        "store.user_exists"
    );
    assert_eq!(
        f.store
            .add_user("kim", &Passphrase::new("short"))
            .expect_err("weak")
            .code(),
        "store.weak_passphrase"
    );
    close(&mut f);
    assert_eq!(
        open(&f, Some(USER), PASSPHRASE)
            .expect_err("old passphrase")
            .code(),
        "store.wrong_passphrase"
    );
    let mut store = open(&f, Some(USER), "second passphrase").expect("new passphrase");
    assert_eq!(property_count(&store), 1);
    drop(store);
    store = open(&f, Some("sam"), "sams passphrase").expect("second user");
    assert!(store.local_user_id("sam").expect("lookup").is_some());

    let outcome = store
        .rekey("sam", &Passphrase::new("sams rotated passphrase"))
        .expect("rekey");
    assert_eq!(
        outcome.removed_users,
        vec![USER.to_owned()],
        "rotation changes the locks: pat must be re-enrolled"
    );
    assert_ne!(outcome.recovery_key.reveal(), f.recovery_key);
    let new_recovery = outcome.recovery_key.reveal().to_owned();
    assert_eq!(
        store
            .ranked_properties(&PropertyQuery::default())
            .expect("query")[0]
            .property,
        p
    );
    drop(store);

    assert_eq!(
        open(&f, Some(USER), "second passphrase")
            .expect_err("slot removed")
            .code(),
        "store.unknown_user"
    );
    let old = RecoveryKey::parse(&f.recovery_key).expect("parses");
    assert_eq!(
        f.data_dir
            .open_with_recovery_key(f.tenant_id, &old)
            .expect_err("old key")
            .code(),
        "store.wrong_recovery_key"
    );
    let store = f
        .data_dir
        .open_with_recovery_key(
            f.tenant_id,
            &RecoveryKey::parse(&new_recovery).expect("parses"),
        )
        .expect("new key");
    assert_eq!(property_count(&store), 1);
    drop(store);
    let store = open(&f, Some("sam"), "sams rotated passphrase").expect("rotated passphrase");
    assert_eq!(store.property(p.id).expect("read"), Some(p));
}

/// Stores use the keyed page crypto (`sqlcipher-provider`), also after the last open store closed (SQLCipher
/// would otherwise go back to its stock provider) and across a rekey; both write the same file format,
/// which `a_stock_sqlcipher_opens_the_file_with_the_recovery_key` checks against an independent SQLCipher.
#[test]
fn stores_use_the_keyed_page_crypto_after_reopening_and_rekey() {
    let keyed = Some(sqlcipher_provider::PROVIDER_NAME.to_owned());
    let (mut f, _) = tenant_with_data();
    assert_eq!(f.store.cipher_provider().expect("provider"), keyed);
    close(&mut f);
    assert_eq!(f.store.cipher_provider().expect("plain"), None);
    let mut store = open(&f, Some(USER), PASSPHRASE).expect("reopen");
    assert_eq!(store.cipher_provider().expect("provider"), keyed);
    store
        .rekey(USER, &Passphrase::new(PASSPHRASE))
        .expect("rekey");
    drop(store);
    let store = open(&f, Some(USER), PASSPHRASE).expect("reopen after rekey");
    assert_eq!(store.cipher_provider().expect("provider"), keyed);
    assert_eq!(
        property_count(&store),
        1,
        "rekeyed with the keyed provider, data kept"
    );
}

#[test]
fn recovery_sets_a_new_passphrase_and_keeps_other_users() {
    let (mut f, _) = tenant_with_data();
    f.store
        .add_user("sam", &Passphrase::new("sams passphrase"))
        .expect("add user");
    close(&mut f);
    let key = RecoveryKey::parse(&f.recovery_key.to_uppercase()).expect("parses");
    let store = f
        .data_dir
        .recover(f.tenant_id, &key, USER, &Passphrase::new("after recovery"))
        .expect("recover");
    assert_eq!(store.unlocked_user(), Some(USER));
    assert_eq!(property_count(&store), 1);
    let mut users = store.users().expect("users");
    users.sort();
    assert_eq!(users, vec![USER.to_owned(), "sam".to_owned()]);
    drop(store);
    let store = open(&f, Some(USER), "after recovery").expect("new passphrase opens");
    assert_eq!(property_count(&store), 1);
}

#[test]
fn the_file_holds_no_readable_text_and_is_not_plain_sqlite() {
    let (mut f, p) = tenant_with_data();
    let t = touch(
        &p,
        UserId::generate(),
        f.store.device_id(),
        "owner mentioned a ladder in the garage",
    );
    f.store.add_touch(&t).expect("touch");
    f.store
        .set_refresh_token(Some("refresh-token-quokka"))
        .expect("token");
    close(&mut f);
    let path = f.data_dir.database_path(f.tenant_id);
    let mut bytes = fs::read(&path).expect("read");
    for suffix in ["-wal", "-journal"] {
        let mut side = path.clone().into_os_string();
        side.push(suffix);
        if let Ok(more) = fs::read(side) {
            bytes.extend(more);
        }
    }
    assert_ne!(&bytes[..16], b"SQLite format 3\0");
    for secret in [
        "Zebrawood",
        "zebrawood",
        "ladder in the garage",
        "Pat Owner",
        "quokka",
        "April hail",
    ] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} is readable in the file"
        );
    }
    let key_file = fs::read_to_string(f.data_dir.key_file_path(f.tenant_id)).expect("key file");
    assert!(
        !key_file.contains(&f.recovery_key),
        "the key file holds the key in clear"
    );
    assert!(!key_file.contains(PASSPHRASE));
    let index = fs::read_to_string(f.dir.path().join("tenants.json")).expect("index");
    assert!(!index.contains(&f.recovery_key));
    // Without the key, plain SQLite cannot read it.
    let conn = rusqlite::Connection::open(&path).expect("open raw");
    assert!(
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r
            .get::<_, i64>(0))
            .is_err()
    );
}

#[test]
fn debug_output_and_errors_never_show_keys() {
    let f = tenant();
    let shown = format!("{:?}", f.store);
    assert!(!shown.contains(&f.recovery_key), "{shown}");
    assert!(shown.contains("<redacted>"));
    let key = RecoveryKey::parse(&f.recovery_key).expect("parses");
    assert!(!format!("{key:?}").contains(&f.recovery_key));
    let err = f
        .data_dir
        .open_with_recovery_key(f.tenant_id, &key)
        .expect_err("already open here");
    assert!(!format!("{err:?} {err}").contains(&f.recovery_key));
}

#[test]
fn tenant_files_are_listed_in_an_index_without_secrets() {
    let f = tenant();
    let tenants = f.data_dir.list_tenants().expect("list");
    assert_eq!(tenants.len(), 1);
    assert_eq!(tenants[0].tenant_id, f.tenant_id);
    assert_eq!(tenants[0].slug, "acme-roofing");
    let again = f.data_dir.create_tenant(
        local_store::NewTenant {
            tenant_id: Some(f.tenant_id),
            name: "Acme",
            user: USER,
            passphrase: &Passphrase::new(PASSPHRASE),
        },
        NOW,
    );
    assert_eq!(again.expect_err("exists").code(), "store.tenant_exists");
    let bad = f.data_dir.create_tenant(
        local_store::NewTenant {
            tenant_id: None,
            name: "  ",
            user: USER,
            passphrase: &Passphrase::new(PASSPHRASE),
        },
        NOW,
    );
    assert_eq!(bad.expect_err("no name").code(), "validation.required");
    let missing = DataDir::new(f.dir.path()).expect("dir").open(
        TenantId::generate(),
        None,
        &Passphrase::new(PASSPHRASE),
    );
    assert_eq!(
        missing.expect_err("missing").code(),
        "store.tenant_not_found"
    );
}

/// The child half of `a_second_process_gets_in_use`: runs only when the parent re-executes this binary.
#[test]
fn child_process_opens_tenant() {
    let (Ok(dir), Ok(tenant)) = (
        std::env::var("STORMOPS_TEST_CHILD_DIR"),
        std::env::var("STORMOPS_TEST_CHILD_TENANT"),
    ) else {
        return;
    };
    let data_dir = DataDir::new(dir).expect("dir");
    let tenant: TenantId = tenant.parse().expect("tenant id");
    match data_dir.open(tenant, Some(USER), &Passphrase::new(PASSPHRASE)) {
        Ok(_) => println!("CHILD-RESULT opened"),
        Err(err) => println!("CHILD-RESULT {} {}", err.code(), err),
    }
}

#[test]
fn a_second_process_gets_in_use() {
    let f = tenant();
    let output = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "child_process_opens_tenant",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("STORMOPS_TEST_CHILD_DIR", f.dir.path())
        .env("STORMOPS_TEST_CHILD_TENANT", f.tenant_id.to_string())
        .output()
        .expect("spawn child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("CHILD-RESULT store.in_use"),
        "child said: {stdout}"
    );
    assert!(stdout.contains("in use by another process"), "{stdout}");
    drop(f.store);
}

/// The python with the independent SQLCipher 4 (`sqlcipher3-binary`) that `cargo xtask test` prepares;
/// None (the check is skipped, with a note) outside CI when it is not set.
fn stock_sqlcipher_python() -> Option<String> {
    let python = std::env::var("STORMOPS_SQLCIPHER_PYTHON").ok();
    if python.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "STORMOPS_SQLCIPHER_PYTHON must point at a python with sqlcipher3-binary under CI"
        );
        eprintln!("note: STORMOPS_SQLCIPHER_PYTHON is not set; skipping a stock SQLCipher check");
    }
    python
}

/// Proves recovery does not depend on this program: a stock SQLCipher 4 (Python `sqlcipher3-binary`)
/// opens the file with only `PRAGMA key = "x'<recovery key>'"`.
#[test]
fn a_stock_sqlcipher_opens_the_file_with_the_recovery_key() {
    let Some(python) = stock_sqlcipher_python() else {
        return;
    };
    let (mut f, p) = tenant_with_data();
    close(&mut f);
    let path = f.data_dir.database_path(f.tenant_id);
    let script = r#"
import sys, sqlcipher3
conn = sqlcipher3.connect(sys.argv[1])
conn.execute("PRAGMA key = \"x'" + sys.argv[2] + "'\"")
row = conn.execute("SELECT address FROM properties WHERE id = ?", (sys.argv[3],)).fetchone()
print(conn.execute("PRAGMA cipher_version").fetchone()[0])
print(row[0])
# Rewrite every page with the stock SQLCipher, for this program to read back below.
conn.execute("VACUUM")
conn.close()
"#;
    let output = Command::new(python)
        .args([
            "-c",
            script,
            &path.display().to_string(),
            &f.recovery_key,
            &p.id.to_string(),
        ])
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.starts_with('4'), "SQLCipher 4 expected: {stdout}");
    assert!(stdout.contains("4242 Zebrawood Lane"), "{stdout}");
    // And the other way: this program (with its keyed page crypto) reads pages the stock one wrote.
    let store = open(&f, Some(USER), PASSPHRASE).expect("opens after the stock rewrite");
    assert_eq!(
        store.cipher_provider().expect("provider").as_deref(),
        Some(sqlcipher_provider::PROVIDER_NAME)
    );
    let found = store
        .ranked_properties(&PropertyQuery {
            search: Some("Zebrawood".into()),
            ..PropertyQuery::default()
        })
        .expect("query");
    assert_eq!(found.len(), 1, "the property the stock SQLCipher rewrote");
    assert_eq!(found[0].property.id, p.id);
}

/// The tenant file and its write-ahead log as an open store leaves them between commits (nothing
/// checkpointed; the log's frames written through `sqlcipher-provider`'s held-WAL layer, their pages
/// signed after SQLCipher handed them on and their checksums carried from SQLite's): an independent
/// SQLCipher 4 recovers the log from a copy, checking every frame's checksum and page's signature, and
/// reads every committed property.
#[test]
fn a_stock_sqlcipher_recovers_the_log_of_an_open_store() {
    let Some(python) = stock_sqlcipher_python() else {
        return;
    };
    let (mut f, p) = tenant_with_data();
    let before = sqlcipher_provider::pages_signed_after_handing_on();
    for n in 0..60 {
        f.store
            .add_property(&property(
                p.storm_id,
                n + 2,
                &format!("{n} Hailstone Court"),
            ))
            .expect("property");
    }
    assert!(
        sqlcipher_provider::pages_signed_after_handing_on() > before,
        "the commits' log pages were signed after SQLCipher handed them on"
    );
    let path = f.data_dir.database_path(f.tenant_id);
    let log = |p: &std::path::Path| std::path::PathBuf::from(format!("{}-wal", p.display()));
    let copies = tempfile::tempdir().expect("dir");
    let copy = copies.path().join("copy.db");
    fs::copy(&path, &copy).expect("copy the file");
    let log_len = fs::copy(log(&path), log(&copy)).expect("copy the log");
    assert!(
        log_len > 4096 * 60,
        "the commits are in the log: {log_len} bytes"
    );
    let script = r#"
import sys, sqlcipher3
conn = sqlcipher3.connect(sys.argv[1])
conn.execute("PRAGMA key = \"x'" + sys.argv[2] + "'\"")
print(conn.execute("SELECT count(*) FROM properties").fetchone()[0])
print(conn.execute("SELECT count(*) FROM properties WHERE address LIKE '% Hailstone Court'").fetchone()[0])
print(conn.execute("PRAGMA integrity_check").fetchone()[0])
"#;
    let output = Command::new(python)
        .args(["-c", script, &copy.display().to_string(), &f.recovery_key])
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, ["61", "60", "ok"], "{stdout}");
    drop(f.store);
}
