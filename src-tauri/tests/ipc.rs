//! Command wiring through Tauri's IPC on the mock runtime: each call goes in as the webview would send
//! it (one args object, snake_case keys) and comes back as JSON or as a `{code, message}` rejection.
//! Also checks the registered command list, the capability file and the UI's contract agree.

use desktop_core::EngineConfig;
use desktop_core::app::App;
use desktop_core::local_store::DataDir;
use serde_json::{Value, json};
use stormops_desktop::command_names::COMMAND_NAMES;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};
use tauri::webview::InvokeRequest;
use tauri::{Manager, WebviewWindow, WebviewWindowBuilder};

struct Shell {
    _dir: tempfile::TempDir,
    _app: tauri::App<MockRuntime>,
    webview: WebviewWindow<MockRuntime>,
}

fn shell() -> Shell {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = DataDir::new(dir.path()).expect("data dir");
    let app = stormops_desktop::with_commands(mock_builder())
        .manage(App::new(data_dir, EngineConfig::default(), "ipc test"))
        // The real context: tauri.conf.json and the capability file, so the ACL is the shipped one.
        .build(tauri::generate_context!())
        .expect("build the mock app");
    let webview = match app.get_webview_window("main") {
        Some(window) => window,
        None => WebviewWindowBuilder::new(&app, "main", Default::default())
            .build()
            .expect("mock webview"),
    };
    Shell {
        _dir: dir,
        _app: app,
        webview,
    }
}

/// Invokes `cmd` with `args`; Ok(JSON result) or Err(JSON rejection).
fn invoke(shell: &Shell, cmd: &str, args: Value) -> Result<Value, Value> {
    get_ipc_response(
        &shell.webview,
        InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            // The app's own origin, as the bundled UI calls from it.
            url: if cfg!(windows) {
                "http://tauri.localhost"
            } else {
                "tauri://localhost"
            }
            .parse()
            .expect("url"),
            body: InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|body| body.deserialize::<Value>().expect("a JSON result"))
}

#[test]
fn a_tenant_is_created_unlocked_and_read_through_the_ipc() {
    let shell = shell();
    assert_eq!(invoke(&shell, "list_tenants", json!({})), Ok(json!([])));
    let created = invoke(
        &shell,
        "create_tenant",
        json!({ "name": "Summit Roofing", "user": "sam", "passphrase": "storm-season-2026" }),
    )
    .expect("create_tenant");
    let tenant_id = created["tenant"]["tenant_id"].clone();
    assert_eq!(created["recovery_key"].as_str().map(str::len), Some(64));

    let session = invoke(
        &shell,
        "unlock",
        json!({ "tenant_id": tenant_id, "user": "sam", "passphrase": "storm-season-2026" }),
    )
    .expect("unlock");
    assert_eq!(session["tenant_name"], "Summit Roofing");
    assert_eq!(session["role"], Value::Null);
    assert_eq!(session["signed_in"], false);
    assert_eq!(invoke(&shell, "current_session", json!({})), Ok(session));
    assert_eq!(invoke(&shell, "storms", json!({})), Ok(json!([])));
    assert_eq!(
        invoke(
            &shell,
            "ranked_properties",
            json!({ "query": { "limit": 10, "offset": 0 } })
        ),
        Ok(json!([]))
    );
    assert_eq!(
        invoke(
            &shell,
            "property_count",
            json!({ "query": { "search": "elm", "limit": 0, "offset": 0 } })
        ),
        Ok(json!(0))
    );
    let status = invoke(&shell, "sync_status", json!({})).expect("sync_status");
    assert_eq!(status["connectivity"], "needs_sign_in");
    assert_eq!(invoke(&shell, "lock", json!({})), Ok(Value::Null));
    assert_eq!(
        invoke(&shell, "current_session", json!({})),
        Ok(Value::Null)
    );
}

#[test]
fn failures_reject_with_a_stable_code_and_a_message() {
    let shell = shell();
    let locked = invoke(&shell, "storms", json!({})).expect_err("locked");
    assert_eq!(locked["code"], "session.locked");
    assert!(locked["message"].as_str().is_some_and(|m| !m.is_empty()));

    let weak = invoke(
        &shell,
        "create_tenant",
        json!({ "name": "X", "user": "sam", "passphrase": "short" }),
    )
    .expect_err("weak passphrase");
    assert_eq!(weak["code"], "store.weak_passphrase");

    let created = invoke(
        &shell,
        "create_tenant",
        json!({ "name": "Summit", "user": "sam", "passphrase": "storm-season-2026" }),
    )
    .expect("create");
    let wrong = invoke(
        &shell,
        "unlock",
        json!({ "tenant_id": created["tenant"]["tenant_id"], "user": "sam", "passphrase": "nope nope nope" }),
    )
    .expect_err("wrong passphrase");
    assert_eq!(wrong["code"], "store.wrong_passphrase");

    invoke(
        &shell,
        "unlock",
        json!({ "tenant_id": created["tenant"]["tenant_id"], "user": "sam", "passphrase": "storm-season-2026" }),
    )
    .expect("unlock");
    // Not signed in: no role, so no writes and no office views.
    let storm = invoke(
        &shell,
        "storm_create",
        json!({ "event_id": "E1", "name": "Hail", "started_at": 1_700_000_000_000_i64, "ended_at": null,
                "hail_size_in": 1.5, "wind_mph": 50.0, "affected_area": "north" }),
    )
    .expect_err("forbidden");
    assert_eq!(storm["code"], "session.forbidden");
    let sync = invoke(&shell, "sync_now", json!({})).expect_err("needs sign-in");
    assert_eq!(sync["code"], "sync.needs_sign_in");
}

#[test]
fn every_contract_command_is_registered_and_allowed() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let contract = std::fs::read_to_string(root.join("../ui/src/lib/backend/commands.ts"))
        .expect("read commands.ts");
    let start = contract
        .find("COMMAND_NAMES = [")
        .expect("COMMAND_NAMES in commands.ts");
    let end = start + contract[start..].find(']').expect("end of COMMAND_NAMES");
    let ui: Vec<&str> = contract[start..end]
        .lines()
        .filter_map(|l| l.trim().strip_prefix('\'')?.split('\'').next())
        .collect();
    assert_eq!(
        ui, COMMAND_NAMES,
        "src/command_names.rs must list commands.ts's COMMAND_NAMES"
    );

    let capability: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("capabilities/default.json")).expect("capability"),
    )
    .expect("capability JSON");
    let allowed: Vec<String> = capability["permissions"]
        .as_array()
        .expect("permissions")
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|p| p.strip_prefix("allow-"))
        .map(|p| p.replace('-', "_"))
        .collect();
    assert_eq!(
        allowed, COMMAND_NAMES,
        "the capability allows exactly the bridge's commands"
    );

    // An unknown command is refused by the shell; every registered name reaches a handler (with no
    // session open each answers with a code or a missing-argument error, never "not found").
    let shell = shell();
    let unknown = invoke(&shell, "drop_all_tables", json!({})).expect_err("unknown command");
    assert!(unknown.to_string().contains("not found"), "{unknown}");
    for name in COMMAND_NAMES {
        if let Err(err) = invoke(&shell, name, json!({})) {
            assert!(!err.to_string().contains("not found"), "{name}: {err}");
        }
    }
}
