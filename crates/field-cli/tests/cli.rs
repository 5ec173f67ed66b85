//! End-to-end runs of the `stormops-field` binary against real encrypted tenant files in temp dirs.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const PASSPHRASE: &str = "correct horse battery";

struct Field {
    dir: tempfile::TempDir,
}

impl Field {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn command(&self, passphrase: &str, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stormops-field"));
        command
            .args(args)
            .env("STORMOPS_DATA_DIR", self.dir.path())
            .env("STORMOPS_PASSPHRASE", passphrase)
            .env_remove("STORMOPS_NEW_PASSPHRASE")
            .env_remove("STORMOPS_TENANT")
            .env_remove("STORMOPS_USER")
            .env_remove("STORMOPS_RECOVERY_KEY");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(PASSPHRASE, args)
            .output()
            .expect("run stormops-field")
    }

    /// Runs with --json and expects success; returns the JSON document.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let output = self.run(&all);
        assert!(
            output.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("JSON on stdout")
    }

    /// Runs with --json and expects failure; returns the error object from stderr.
    fn json_error(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let output = self.run(&all);
        json_failure(&output, args)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write file");
        path.display().to_string()
    }

    /// A tenant with one storm; returns (tenant id, storm id, recovery key).
    fn tenant_with_storm(&self) -> (String, String, String) {
        let created = self.json(&["tenant", "create", "--name", "Acme Roofing"]);
        let storm = self.json(&[
            "storm",
            "add",
            "--name",
            "April hail",
            "--event-id",
            "NWS-1",
            "--hail-in",
            "1.75",
            "--started-at",
            "2026-04-12",
        ]);
        (
            text(&created["tenant_id"]),
            text(&storm["id"]),
            text(&created["recovery_key"]),
        )
    }
}

fn json_failure(output: &Output, args: &[&str]) -> Value {
    assert!(!output.status.success(), "{args:?} should fail");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let body: Value = serde_json::from_str(stderr.trim())
        .unwrap_or_else(|e| panic!("stderr is not one JSON object ({e}): {stderr}"));
    body["error"].clone()
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("not a string: {value}"))
}

const CSV: &str =
    "external_id,address,latitude,longitude,roof_material,home_value_cents,status,owner_name
A-1,12 Elm Street,35.2,-97.4,asphalt_shingle,32500000,new,Pat Owner
A-2,14 Oak Avenue,35.3,-97.5,,,,
A-3,9 Elm Court,35.4,-97.6,metal,,in_progress,
";

#[test]
fn create_import_list_and_status_end_to_end() {
    let field = Field::new();
    let (tenant, storm, recovery_key) = field.tenant_with_storm();
    assert_eq!(recovery_key.len(), 64);
    let tenants = field.json(&["tenant", "list"]);
    assert_eq!(text(&tenants["tenants"][0]["tenant_id"]), tenant);

    let csv = field.write("properties.csv", CSV);
    let imported = field.json(&["property", "import", &csv, "--storm", &storm]);
    assert_eq!(imported["imported"], 3);

    let listed = field.json(&["properties", "--storm", &storm]);
    assert_eq!(listed["properties"].as_array().expect("array").len(), 3);
    let elm = field.json(&["properties", "--search", "ELM", "--limit", "10"]);
    let mut ids: Vec<String> = elm["properties"]
        .as_array()
        .expect("array")
        .iter()
        .map(|r| text(&r["property"]["external_id"]))
        .collect();
    ids.sort();
    assert_eq!(ids, ["A-1", "A-3"]);
    let in_progress = field.json(&["properties", "--status", "in_progress"]);
    assert_eq!(
        text(&in_progress["properties"][0]["property"]["external_id"]),
        "A-3"
    );
    let property = text(&in_progress["properties"][0]["property"]["id"]);

    field.json(&[
        "journey",
        "add",
        "--property",
        &property,
        "--channel",
        "door_knock",
        "--result",
        "interested",
        "--notes",
        "wants an inspection",
    ]);
    let refused = field.json_error(&[
        "decision",
        "add",
        "--property",
        &property,
        "--decision",
        "hold",
        "--override",
    ]);
    assert_eq!(text(&refused["code"]), "validation.required");
    assert_eq!(text(&refused["details"]["field"]), "reason");
    let decided = field.json(&[
        "decision",
        "add",
        "--property",
        &property,
        "--decision",
        "treat",
        "--override",
        "--reason",
        "owner asked for a visit",
    ]);
    // No office mode synced to this file: the product default, and the answer says where it came from.
    assert_eq!(text(&decided["policy"]["mode"]), "moderate");
    assert_eq!(text(&decided["policy"]["source"]), "default");
    // The offline plan needs synced scores: a typed error, nothing written.
    let no_scores = field.json_error(&[
        "decision",
        "plan",
        "--storm",
        &storm,
        "--mode",
        "aggressive",
    ]);
    assert_eq!(text(&no_scores["code"]), "policy.no_scores");
    let bad_mode = field.json_error(&["decision", "plan", "--storm", &storm, "--mode", "reckless"]);
    assert_eq!(text(&bad_mode["code"]), "cli.invalid_argument");
    field.json(&[
        "outcome",
        "add",
        "--property",
        &property,
        "--converted",
        "true",
        "--value-cents",
        "1250000",
    ]);
    let treat = field.json(&["properties", "--decision", "treat"]);
    assert_eq!(treat["properties"].as_array().expect("array").len(), 1);

    let timeline = field.json(&["timeline", &property]);
    let kinds: Vec<String> = timeline["timeline"]
        .as_array()
        .expect("array")
        .iter()
        .map(|e| text(&e["kind"]))
        .collect();
    assert_eq!(kinds.len(), 3);
    assert!(
        kinds.contains(&"touch".to_owned())
            && kinds.contains(&"decision".to_owned())
            && kinds.contains(&"outcome".to_owned())
    );

    let status = field.json(&["status"]);
    assert_eq!(text(&status["tenant_id"]), tenant);
    assert_eq!(status["counts"]["properties"], 3);
    assert_eq!(status["counts"]["touches"], 1);
    // storm + 3 properties + touch + decision + outcome
    assert_eq!(status["outbox"]["pending"], 7);
    assert_eq!(status["outbox"]["refused"], 0);
    assert_eq!(
        field.json(&["inbox", "list"])["inbox"]
            .as_array()
            .expect("array")
            .len(),
        0
    );

    let plain = field.run(&["status"]);
    assert!(plain.status.success());
    assert!(String::from_utf8_lossy(&plain.stdout).contains("3 properties"));
}

#[test]
fn bad_csv_files_import_nothing_and_say_why() {
    let field = Field::new();
    let (_, storm, _) = field.tenant_with_storm();
    let wrong = field.write("wrong.csv", "external_id,addr,lat,longitude\nA-1,x,1,1\n");
    let error = field.json_error(&["property", "import", &wrong, "--storm", &storm]);
    assert_eq!(text(&error["code"]), "import.wrong_columns");
    let message = text(&error["message"]);
    for column in ["address", "latitude", "addr", "lat"] {
        assert!(message.contains(column), "names {column}: {message}");
    }
    assert_eq!(
        error["details"]["unknown"],
        serde_json::json!(["addr", "lat"])
    );

    let rows = field.write("rows.csv", "external_id,address,latitude,longitude,status\nB-1,1 Fine St,35,-97,new\nB-2,2 Bad St,95,-97,new\nB-3,,35,-97,new\nB-4,4 Odd St,abc,-97,new\nB-5,5 Some St,35,-97,sold\nB-1,6 Twin St,35,-97,new\n");
    let error = field.json_error(&["property", "import", &rows, "--storm", &storm]);
    assert_eq!(text(&error["code"]), "import.invalid_rows");
    let found: Vec<(u64, String)> = error["details"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r["line"].as_u64().expect("line"), text(&r["code"])))
        .collect();
    assert_eq!(
        found,
        [
            (3, "validation.out_of_range".to_owned()),
            (4, "validation.required".to_owned()),
            (5, "import.invalid_value".to_owned()),
            (6, "import.invalid_value".to_owned()),
            (7, "import.duplicate_external_id".to_owned()),
        ]
    );
    assert_eq!(
        field.json(&["status"])["counts"]["properties"],
        0,
        "nothing imported"
    );

    let plain = field.run(&["property", "import", &rows, "--storm", &storm]);
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(
        stderr.starts_with("error[import.invalid_rows]:"),
        "{stderr}"
    );
    assert!(stderr.contains("line 3:"), "{stderr}");
}

#[test]
fn unlock_errors_are_typed_and_stderr_stays_clean() {
    let field = Field::new();
    let (tenant, _, _) = field.tenant_with_storm();
    let wrong = field
        .command("not the passphrase", &["unlock"])
        .output()
        .expect("run");
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.starts_with("error[store.wrong_passphrase]:"),
        "{stderr}"
    );
    assert!(!stderr.contains("hmac"), "{stderr}");

    // Damage the first page: the right passphrase now reports a corrupt file naming it, and SQLCipher's
    // own logging stays silent.
    let db = field.dir.path().join(format!("{tenant}.db"));
    let mut bytes = std::fs::read(&db).expect("read");
    bytes[1_000..1_200].fill(0x5a);
    std::fs::write(&db, bytes).expect("write");
    let output = field.run(&["--json", "unlock"]);
    let error = json_failure(&output, &["unlock"]);
    assert_eq!(text(&error["code"]), "store.corrupt");
    assert!(text(&error["message"]).contains(&db.display().to_string()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "only our error: {stderr}");
    assert!(!stderr.contains("hmac check failed"));
}

#[test]
fn a_file_open_in_another_process_is_in_use() {
    let field = Field::new();
    let (tenant, _, _) = field.tenant_with_storm();
    let data_dir = local_store::DataDir::new(field.dir.path()).expect("data dir");
    let tenant_id = tenant.parse().expect("tenant id");
    let held = data_dir
        .open(tenant_id, None, &local_store::Passphrase::new(PASSPHRASE))
        .expect("this process holds it");
    let error = field.json_error(&["status"]);
    assert_eq!(text(&error["code"]), "store.in_use");
    assert!(text(&error["message"]).contains("in use by another process"));
    drop(held);
    field.json(&["status"]);
}

#[test]
fn passphrase_change_users_rekey_and_recovery_from_the_command_line() {
    let field = Field::new();
    let (tenant, _, recovery_key) = field.tenant_with_storm();
    let run_new = |passphrase: &str, new: &str, args: &[&str]| {
        let output = field
            .command(passphrase, args)
            .env("STORMOPS_NEW_PASSPHRASE", new)
            .output()
            .expect("run");
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).expect("json")
    };
    run_new(
        PASSPHRASE,
        "second passphrase",
        &["--json", "passphrase", "change"],
    );
    assert_eq!(
        text(&field.json_error(&["unlock"])["code"]),
        "store.wrong_passphrase"
    );
    run_new(
        "second passphrase",
        "sams passphrase",
        &["--json", "user", "add", "--name", "sam"],
    );
    let sam = field
        .command("sams passphrase", &["--json", "--user", "sam", "unlock"])
        .output()
        .expect("run");
    assert!(
        sam.status.success(),
        "{}",
        String::from_utf8_lossy(&sam.stderr)
    );

    let rekeyed = field
        .command("second passphrase", &["--json", "--user", "owner", "rekey"])
        .output()
        .expect("run");
    assert!(
        rekeyed.status.success(),
        "{}",
        String::from_utf8_lossy(&rekeyed.stderr)
    );
    let rekeyed: Value = serde_json::from_slice(&rekeyed.stdout).expect("json");
    let new_key = text(&rekeyed["recovery_key"]);
    assert_ne!(new_key, recovery_key);
    assert_eq!(rekeyed["removed_users"], serde_json::json!(["sam"]));

    let old = field
        .command(
            "unused",
            &["--json", "recover", "--recovery-key", &recovery_key],
        )
        .env("STORMOPS_NEW_PASSPHRASE", "recovered passphrase")
        .output()
        .expect("run");
    assert_eq!(
        text(&json_failure(&old, &["recover"])["code"]),
        "store.wrong_recovery_key"
    );
    let recovered = run_new(
        "unused",
        "recovered passphrase",
        &[
            "--json",
            "--tenant",
            &tenant,
            "recover",
            "--recovery-key",
            &new_key,
        ],
    );
    assert_eq!(recovered["recovered"], true);
    let status = field
        .command("recovered passphrase", &["--json", "status"])
        .output()
        .expect("run");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(
        status["counts"]["storms"], 1,
        "data survives passphrase change, rekey and recovery"
    );
}

#[test]
fn usage_and_argument_errors_are_reported_not_panicked() {
    let field = Field::new();
    let output = field.run(&["--json", "frobnicate"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&json_failure(&output, &["frobnicate"])["code"]),
        "cli.usage"
    );
    assert_eq!(
        text(&field.json_error(&["status"])["code"]),
        "cli.no_tenant"
    );
    field.tenant_with_storm();
    assert_eq!(
        text(&field.json_error(&["timeline", "not-a-uuid"])["code"]),
        "cli.invalid_argument"
    );
    let error = field.json_error(&["properties", "--status", "sold"]);
    assert_eq!(text(&error["code"]), "cli.invalid_argument");
    assert!(
        text(&error["message"]).contains("in_progress"),
        "names the choices"
    );
    assert_eq!(
        text(&field.json_error(&["inbox", "retry", &uuid::Uuid::now_v7().to_string()])["code"]),
        "store.not_in_inbox"
    );
    let missing = field.json_error(&[
        "property",
        "import",
        "/nonexistent/file.csv",
        "--storm",
        &uuid::Uuid::now_v7().to_string(),
    ]);
    assert_eq!(text(&missing["code"]), "import.unreadable");
    assert!(Path::new(env!("CARGO_BIN_EXE_stormops-field")).exists());
}
