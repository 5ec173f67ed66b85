//! Lints `deploy/` against the server it deploys, so the files cannot drift from the code: the Dockerfile
//! builds and copies the real binary, every environment variable a manifest sets is one the command reads
//! (and every one it needs is set), the Kubernetes objects refer to each other correctly, the probe paths
//! answer 200 on a real server over real PostgreSQL, nginx forwards to the compose services, and every
//! Prometheus alert uses metrics the server exports and names a runbook section that exists.
// A failing assertion here is the lint's finding.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Every YAML document of a file, with `<<` merge keys applied (compose uses them).
fn yaml_docs(relative: &str) -> Vec<Value> {
    let text = read(relative);
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let mut value =
                Value::deserialize(doc).unwrap_or_else(|e| panic!("{relative}: bad YAML: {e}"));
            // A merged mapping may itself hold `<<` (compose's anchors build on each other): repeat
            // until nothing is left to merge.
            for _ in 0..8 {
                let before = value.clone();
                value
                    .apply_merge()
                    .unwrap_or_else(|e| panic!("{relative}: {e}"));
                if value == before {
                    break;
                }
            }
            value
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn get<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    let mut v = value;
    for key in path {
        v = v
            .get(*key)
            .unwrap_or_else(|| panic!("missing `{}` in {value:?}", path.join(".")));
    }
    v
}

fn text<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    get(value, path)
        .as_str()
        .unwrap_or_else(|| panic!("`{}` is not a string", path.join(".")))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

/// The server binary's name, from sync-server's `[[bin]]` table.
fn binary_name() -> String {
    let manifest = read("sync-server/Cargo.toml");
    let bin = manifest
        .split("[[bin]]")
        .nth(1)
        .expect("sync-server has a [[bin]]");
    let line = bin
        .lines()
        .find(|l| l.trim_start().starts_with("name"))
        .expect("[[bin]] name");
    line.split('"').nth(1).expect("quoted name").to_owned()
}

fn port_of(bind: &str) -> u16 {
    bind.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {bind:?}"))
}

/// The Kubernetes objects of deploy/k8s, by kind (several Secrets share a kind).
fn k8s_objects() -> BTreeMap<String, Vec<Value>> {
    let kustomization = yaml_docs("deploy/k8s/kustomization.yaml").remove(0);
    let listed: BTreeSet<String> = strings(get(&kustomization, &["resources"]))
        .into_iter()
        .collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(root().join("deploy/k8s"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    assert_eq!(
        listed, on_disk,
        "kustomization.yaml must list exactly the manifests in deploy/k8s"
    );
    let mut objects: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for file in &listed {
        for doc in yaml_docs(&format!("deploy/k8s/{file}")) {
            objects
                .entry(text(&doc, &["kind"]).to_owned())
                .or_default()
                .push(doc);
        }
    }
    objects
}

fn one<'a>(objects: &'a BTreeMap<String, Vec<Value>>, kind: &str) -> &'a Value {
    let found = objects
        .get(kind)
        .unwrap_or_else(|| panic!("deploy/k8s has no {kind}"));
    assert_eq!(found.len(), 1, "one {kind} expected");
    &found[0]
}

/// The environment a container receives: its `env` names plus every key of the ConfigMaps and Secrets
/// it pulls in with `envFrom`.
fn container_env(
    container: &Value,
    objects: &BTreeMap<String, Vec<Value>>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if let Some(list) = container.get("env").and_then(Value::as_sequence) {
        for item in list {
            let value = item
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            env.insert(text(item, &["name"]).to_owned(), value);
        }
    }
    if let Some(list) = container.get("envFrom").and_then(Value::as_sequence) {
        for source in list {
            let (kind, reference, data_key) = if let Some(r) = source.get("configMapRef") {
                ("ConfigMap", r, "data")
            } else if let Some(r) = source.get("secretRef") {
                ("Secret", r, "stringData")
            } else {
                panic!("unknown envFrom source {source:?}")
            };
            let name = text(reference, &["name"]);
            let object = objects
                .get(kind)
                .into_iter()
                .flatten()
                .find(|o| text(o, &["metadata", "name"]) == name)
                .unwrap_or_else(|| panic!("envFrom names {kind} {name}, which deploy/k8s lacks"));
            for (key, value) in get(object, &[data_key]).as_mapping().expect("a mapping") {
                env.insert(
                    key.as_str().expect("string key").to_owned(),
                    value.as_str().unwrap_or("").to_owned(),
                );
            }
        }
    }
    env
}

/// Every variable set must be one the command reads; every variable it cannot run without must be set.
/// `extra` are variables the command reads outside its flags (the token key, log filter, passwords).
fn check_env(
    what: &str,
    command: &[&str],
    extra_read: &[&str],
    extra_needed: &[&str],
    env: &BTreeSet<String>,
) {
    let shape = sync_server::cli::command_shape(command)
        .unwrap_or_else(|| panic!("{what}: `{}` is not a subcommand", command.join(" ")));
    let mut read: BTreeSet<String> = shape.env.iter().map(|(n, _)| n.clone()).collect();
    read.extend(extra_read.iter().map(|s| (*s).to_owned()));
    let unknown: Vec<&String> = env.iter().filter(|n| !read.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "{what}: sets {unknown:?}, which `stormops-server {}` never reads (it reads {read:?})",
        command.join(" ")
    );
    let needed = shape
        .env
        .iter()
        .filter(|(_, needed)| *needed)
        .map(|(n, _)| n.as_str())
        .chain(extra_needed.iter().copied());
    for name in needed {
        assert!(env.contains(name), "{what}: does not set {name}");
    }
}

/// The command (subcommand words, then flags) must parse: the words name a subcommand and every flag is
/// one of its flags.
fn check_args(what: &str, args: &[String]) -> Vec<&'static str> {
    let words: Vec<&str> = args
        .iter()
        .take_while(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    let shape = sync_server::cli::command_shape(&words)
        .unwrap_or_else(|| panic!("{what}: `{}` is not a subcommand", words.join(" ")));
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        assert!(
            shape.long_flags.contains(flag),
            "{what}: `{flag}` is not a flag of `{}` ({:?})",
            words.join(" "),
            shape.long_flags
        );
    }
    match words.as_slice() {
        ["serve"] => vec!["serve"],
        ["db", "init"] => vec!["db", "init"],
        other => panic!("{what}: runs `{other:?}`, expected `serve` or `db init`"),
    }
}

const LOG_FILTER_ENV: &str = "STORMOPS_LOG";
const SERVE_EXTRA: &[&str] = &[sync_server::serve::TOKEN_KEY_ENV, LOG_FILTER_ENV];
const INIT_EXTRA: &[&str] = &[
    sync_server::cli::OWNER_PASSWORD_ENV,
    sync_server::cli::APP_PASSWORD_ENV,
    sync_server::cli::CONTROL_PASSWORD_ENV,
    LOG_FILTER_ENV,
];

#[test]
fn extra_environment_names_are_read_by_the_server_source() {
    // The names the lint accepts outside clap must really be read somewhere in the server.
    let mut source = String::new();
    for file in std::fs::read_dir(root().join("sync-server/src"))
        .unwrap()
        .flatten()
    {
        if file.path().extension().is_some_and(|e| e == "rs") {
            source.push_str(&std::fs::read_to_string(file.path()).unwrap());
        }
    }
    for name in SERVE_EXTRA.iter().chain(INIT_EXTRA) {
        assert!(
            source.contains(&format!("\"{name}\"")),
            "{name} is not read by sync-server"
        );
    }
}

/// Dockerfile instructions with continuation lines joined and comments dropped.
fn dockerfile_instructions() -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in read("deploy/Dockerfile").lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            // One space between words, however the continuation lines were indented.
            let joined = std::mem::take(&mut current);
            out.push(joined.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    out
}

#[test]
fn dockerfile_builds_and_runs_the_release_server_binary() {
    let bin = binary_name();
    let instructions = dockerfile_instructions();
    // Stages: name → its instructions.
    let mut stages: Vec<(String, Vec<String>)> = Vec::new();
    for instruction in &instructions {
        if let Some(from) = instruction.strip_prefix("FROM ") {
            let name = from
                .split(" AS ")
                .nth(1)
                .unwrap_or_else(|| panic!("unnamed stage: {instruction}"))
                .trim()
                .to_owned();
            stages.push((name, Vec::new()));
        } else if let Some((_, body)) = stages.last_mut() {
            body.push(instruction.clone());
        }
    }
    let stage = |name: &str| -> &Vec<String> {
        &stages
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no `{name}` stage"))
            .1
    };
    assert_eq!(
        stages.last().map(|(n, _)| n.as_str()),
        Some("runtime"),
        "the default (last) stage is the runtime"
    );
    let build_command = format!(
        "cargo build --release --locked -p sync-server --bin {bin} && cp target/release/{bin} /{bin}"
    );
    assert!(
        stage("build")
            .iter()
            .any(|i| i.starts_with("RUN ") && i.contains(&build_command)),
        "the build stage must run `{build_command}`"
    );
    let installed = format!("/usr/local/bin/{bin}");
    assert!(
        stage("runtime")
            .iter()
            .any(|i| i.starts_with("COPY --from=build")
                && i.ends_with(&format!("/{bin} {installed}"))),
        "the runtime stage copies the build stage's binary to {installed}"
    );
    assert!(
        stage("runtime-prebuilt")
            .iter()
            .any(|i| i.starts_with("COPY ")
                && i.ends_with(&format!("target/release/{bin} {installed}"))),
        "the prebuilt stage copies target/release/{bin}"
    );
    let ignore = read("deploy/Dockerfile.dockerignore");
    assert!(
        ignore
            .lines()
            .any(|l| l.trim() == format!("!target/release/{bin}")),
        "Dockerfile.dockerignore must let target/release/{bin} through"
    );
    let base = stage("base");
    let entrypoint = base
        .iter()
        .find(|i| i.starts_with("ENTRYPOINT "))
        .expect("ENTRYPOINT");
    assert!(
        entrypoint.contains(&format!("\"{installed}\"")),
        "{entrypoint}"
    );
    assert!(base.iter().any(|i| i == "CMD [\"serve\"]"));
    let user = base
        .iter()
        .find_map(|i| i.strip_prefix("USER "))
        .expect("USER");
    assert!(
        user.split(':')
            .all(|p| p.parse::<u32>().is_ok_and(|n| n > 0)),
        "the image runs as a numeric non-root user, got {user}"
    );
    // The port: the image's default bind, EXPOSE, the ConfigMap, the container port and compose agree.
    let env_line = base.iter().find(|i| i.starts_with("ENV ")).expect("ENV");
    let bind = env_line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("STORMOPS_BIND="))
        .expect("ENV STORMOPS_BIND");
    let exposed: u16 = base
        .iter()
        .find_map(|i| i.strip_prefix("EXPOSE "))
        .and_then(|p| p.trim().parse().ok())
        .expect("EXPOSE <port>");
    assert_eq!(port_of(bind), exposed);
    let objects = k8s_objects();
    let config = one(&objects, "ConfigMap");
    assert_eq!(port_of(text(config, &["data", "STORMOPS_BIND"])), exposed);
    let deployment = one(&objects, "Deployment");
    let container = &get(deployment, &["spec", "template", "spec", "containers"])[0];
    assert_eq!(
        get(&container["ports"][0], &["containerPort"]).as_u64(),
        Some(u64::from(exposed))
    );
    let run_as = get(
        deployment,
        &["spec", "template", "spec", "securityContext", "runAsUser"],
    )
    .as_u64()
    .expect("runAsUser");
    assert_eq!(user.split(':').next(), Some(run_as.to_string().as_str()));
}

#[test]
fn kubernetes_objects_refer_to_each_other_and_to_the_real_commands() {
    let objects = k8s_objects();
    for kind in [
        "Deployment",
        "Job",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Secret",
        "ConfigMap",
    ] {
        assert!(objects.contains_key(kind), "deploy/k8s lacks a {kind}");
    }
    let bin = binary_name();
    let version = env!("CARGO_PKG_VERSION");
    let deployment = one(&objects, "Deployment");
    let job = one(&objects, "Job");
    let deployment_name = text(deployment, &["metadata", "name"]);
    let pod_labels = get(deployment, &["spec", "template", "metadata", "labels"]);
    assert_eq!(
        get(deployment, &["spec", "selector", "matchLabels"]),
        pod_labels,
        "the Deployment selects its own pods"
    );
    let service = one(&objects, "Service");
    assert_eq!(get(service, &["spec", "selector"]), pod_labels);
    let pdb = one(&objects, "PodDisruptionBudget");
    assert_eq!(get(pdb, &["spec", "selector", "matchLabels"]), pod_labels);
    let hpa = one(&objects, "HorizontalPodAutoscaler");
    assert_eq!(text(hpa, &["spec", "scaleTargetRef", "kind"]), "Deployment");
    assert_eq!(
        text(hpa, &["spec", "scaleTargetRef", "name"]),
        deployment_name
    );
    let min = get(hpa, &["spec", "minReplicas"]).as_u64().unwrap();
    let min_available = get(pdb, &["spec", "minAvailable"]).as_u64().unwrap();
    assert!(
        min > min_available,
        "with minReplicas {min} and minAvailable {min_available} no node could ever be drained"
    );

    let container = &get(deployment, &["spec", "template", "spec", "containers"])[0];
    let port_name = text(&container["ports"][0], &["name"]);
    assert_eq!(
        get(&get(service, &["spec", "ports"])[0], &["targetPort"]).as_str(),
        Some(port_name)
    );
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        assert_eq!(
            text(container, &[probe, "httpGet", "port"]),
            port_name,
            "{probe} targets the named port"
        );
    }
    assert_eq!(
        text(container, &["livenessProbe", "httpGet", "path"]),
        "/healthz"
    );
    assert_eq!(
        text(container, &["readinessProbe", "httpGet", "path"]),
        "/readyz"
    );

    // Same image, named after the binary and tagged with this build's version.
    let job_container = &get(job, &["spec", "template", "spec", "containers"])[0];
    let image = text(container, &["image"]);
    assert_eq!(text(job_container, &["image"]), image);
    assert!(
        image.ends_with(&format!("/{bin}:{version}")),
        "image {image} must be …/{bin}:{version}"
    );

    // The commands and their environment.
    let serve = check_args("Deployment", &strings(get(container, &["args"])));
    assert_eq!(serve, vec!["serve"]);
    let env: BTreeSet<String> = container_env(container, &objects).into_keys().collect();
    check_env(
        "Deployment",
        &serve,
        SERVE_EXTRA,
        &[sync_server::serve::TOKEN_KEY_ENV],
        &env,
    );
    let init = check_args("migrations Job", &strings(get(job_container, &["args"])));
    assert_eq!(init, vec!["db", "init"]);
    let job_env = container_env(job_container, &objects);
    check_env(
        "migrations Job",
        &init,
        INIT_EXTRA,
        &INIT_EXTRA[..3],
        &job_env.keys().cloned().collect(),
    );
    assert!(
        !env.iter()
            .any(|n| n.contains("SUPERUSER") || n.contains("OWNER")),
        "serving pods must not hold the superuser or owner credentials"
    );
    assert_eq!(
        text(job, &["spec", "template", "spec", "restartPolicy"]),
        "Never"
    );
    // The serving URLs carry the passwords the Job sets (placeholders included).
    let server_env = container_env(container, &objects);
    for (url, password) in [
        ("STORMOPS_DATABASE_URL", sync_server::cli::APP_PASSWORD_ENV),
        (
            "STORMOPS_CONTROL_DATABASE_URL",
            sync_server::cli::CONTROL_PASSWORD_ENV,
        ),
    ] {
        let url = &server_env[url];
        let password = &job_env[password];
        let (prefix, database) = (
            "stormops",
            strings(get(job_container, &["args"]))
                .windows(2)
                .find(|w| w[0] == "--database")
                .map(|w| w[1].clone())
                .expect("--database"),
        );
        assert!(
            url.contains(&format!(":{password}@")) && url.ends_with(&format!("/{database}")),
            "{url} does not match the Job's password and database"
        );
        assert!(url.starts_with(&format!("postgres://{prefix}_")));
    }
}

#[test]
fn compose_stack_runs_migrations_then_two_servers_behind_nginx() {
    let compose = yaml_docs("deploy/compose.yaml").remove(0);
    let services = get(&compose, &["services"]).as_mapping().unwrap();
    let service = |name: &str| -> &Value {
        services
            .get(name)
            .unwrap_or_else(|| panic!("compose lacks service {name}"))
    };
    let env_of = |s: &Value| -> BTreeMap<String, String> {
        get(s, &["environment"])
            .as_mapping()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().unwrap().to_owned(),
                    v.as_str().map(str::to_owned).unwrap_or_default(),
                )
            })
            .collect()
    };
    let bin = binary_name();
    let migrate = service("migrate");
    let init = check_args("compose migrate", &strings(get(migrate, &["command"])));
    let migrate_env = env_of(migrate);
    check_env(
        "compose migrate",
        &init,
        INIT_EXTRA,
        &INIT_EXTRA[..3],
        &migrate_env.keys().cloned().collect(),
    );
    assert_eq!(
        text(migrate, &["depends_on", "postgres", "condition"]),
        "service_healthy"
    );
    assert!(get(service("postgres"), &["healthcheck"]).is_mapping());

    let servers: Vec<&str> = services
        .iter()
        .filter(|(_, s)| {
            s.get("command")
                .is_some_and(|c| strings(c) == vec!["serve".to_owned()])
        })
        .map(|(name, _)| name.as_str().unwrap())
        .collect();
    assert!(servers.len() >= 2, "two server instances, got {servers:?}");
    let mut ports = BTreeSet::new();
    for name in &servers {
        let s = service(name);
        assert_eq!(
            text(s, &["depends_on", "migrate", "condition"]),
            "service_completed_successfully",
            "{name} starts after the migrations"
        );
        assert_eq!(text(s, &["build", "dockerfile"]), "deploy/Dockerfile");
        assert_eq!(text(s, &["image"]), text(migrate, &["image"]));
        assert!(text(s, &["image"]).starts_with(&format!("{bin}:")));
        let env = env_of(s);
        check_env(
            &format!("compose {name}"),
            &["serve"],
            SERVE_EXTRA,
            &[sync_server::serve::TOKEN_KEY_ENV],
            &env.keys().cloned().collect(),
        );
        // The server's URLs carry the very password variables the migrate job sets on the roles.
        assert!(env["STORMOPS_DATABASE_URL"].contains("${STORMOPS_APP_PASSWORD"));
        assert!(env["STORMOPS_CONTROL_DATABASE_URL"].contains("${STORMOPS_CONTROL_PASSWORD"));
        assert!(
            migrate_env[sync_server::cli::APP_PASSWORD_ENV].contains("${STORMOPS_APP_PASSWORD")
        );
        assert!(
            migrate_env[sync_server::cli::CONTROL_PASSWORD_ENV]
                .contains("${STORMOPS_CONTROL_PASSWORD")
        );
        ports.insert(port_of(&env["STORMOPS_BIND"]));
    }
    assert_eq!(ports.len(), 1, "every instance binds the same port");
    let port = ports.into_iter().next().unwrap();

    // nginx forwards to exactly these instances on that port, and its limits sit above the server's.
    let nginx = read("deploy/nginx/nginx.conf");
    let upstream_block = nginx
        .split("upstream stormops {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("nginx.conf has an `upstream stormops` block");
    let upstreams: BTreeSet<String> = upstream_block
        .lines()
        .filter_map(|l| l.trim().strip_prefix("server "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(|s| s.trim_end_matches(';').to_owned())
        .collect();
    let expected: BTreeSet<String> = servers.iter().map(|s| format!("{s}:{port}")).collect();
    assert_eq!(upstreams, expected);
    let directive = |name: &str| -> u64 {
        nginx
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name} ")))
            .map(|v| v.trim_end_matches(';').trim())
            .and_then(|v| {
                let (digits, unit) = v.split_at(v.len() - 1);
                let n: u64 = digits.parse().ok()?;
                match unit {
                    "m" => Some(n * 1024 * 1024),
                    "s" => Some(n),
                    _ => None,
                }
            })
            .unwrap_or_else(|| panic!("nginx.conf lacks {name}"))
    };
    assert!(directive("client_max_body_size") >= sync_server::limits::MAX_BODY_BYTES as u64);
    assert!(directive("proxy_read_timeout") > sync_server::limits::REQUEST_TIMEOUT_SECS);
    let nginx_service = service("nginx");
    assert!(
        strings(get(nginx_service, &["volumes"]))
            .iter()
            .any(|v| v.starts_with("./nginx/nginx.conf:/etc/nginx/nginx.conf"))
    );
}

/// Every metric an alert reads, and the alert's runbook section.
#[derive(Debug)]
struct Alert {
    name: String,
    expr: String,
    metrics: BTreeSet<String>,
    runbook: String,
}

fn alerts() -> Vec<Alert> {
    let rules = yaml_docs("deploy/prometheus/alerts.yaml").remove(0);
    let mut out = Vec::new();
    for group in get(&rules, &["groups"]).as_sequence().unwrap() {
        for rule in get(group, &["rules"]).as_sequence().unwrap() {
            let expr = text(rule, &["expr"]);
            let metrics = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("stormops_"))
                .map(str::to_owned)
                .collect();
            out.push(Alert {
                name: text(rule, &["alert"]).to_owned(),
                expr: expr.to_owned(),
                metrics,
                runbook: text(rule, &["annotations", "runbook_url"]).to_owned(),
            });
        }
    }
    out
}

/// GitHub's anchor for a Markdown heading: lowercase, spaces to dashes, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_alert_names_a_runbook_section_that_exists() {
    let alerts = alerts();
    assert!(alerts.len() >= 5, "{alerts:?}");
    for alert in &alerts {
        let (file, section) = alert
            .runbook
            .split_once('#')
            .unwrap_or_else(|| panic!("{}: runbook_url needs a #section", alert.name));
        assert!(file.starts_with("docs/runbooks/"), "{}: {file}", alert.name);
        let doc = read(file);
        let anchors: Vec<String> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("## ").or_else(|| l.strip_prefix("### ")))
            .map(anchor)
            .collect();
        assert!(
            anchors.iter().any(|a| a == section),
            "{}: {file} has no section #{section} (sections: {anchors:?})",
            alert.name
        );
        assert_eq!(
            section,
            anchor(&alert.name),
            "{}: the runbook section is named after the alert",
            alert.name
        );
    }
}

/// Starts the real server over a fresh database and returns (base URL, server, database).
async fn real_server() -> (
    String,
    sync_server::serve::RunningServer,
    test_postgres::TestDatabase,
) {
    let db = test_postgres::fresh_database()
        .await
        .expect("test database");
    let init = server_store::init_database(&db.server_url, &db.name, &db.role_prefix)
        .await
        .expect("init");
    let config = sync_server::serve::ServerConfig {
        database_url: init.app_url.clone(),
        control_database_url: init.control_url.clone(),
        pool_size: 4,
        settings: sync_server::state::ServerSettings {
            train_interval_secs: 0,
            ..Default::default()
        },
    };
    let server = sync_server::serve::start(&config, "127.0.0.1:0")
        .await
        .expect("server starts");
    (format!("http://{}", server.addr), server, db)
}

#[tokio::test]
async fn probe_paths_answer_and_alerts_read_exported_metrics() {
    let objects = k8s_objects();
    let container = &get(
        one(&objects, "Deployment"),
        &["spec", "template", "spec", "containers"],
    )[0];
    let (base, server, db) = real_server().await;
    let client = reqwest::Client::new();
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let path = text(container, &[probe, "httpGet", "path"]);
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{probe} {path}");
    }
    let annotations = get(
        one(&objects, "Deployment"),
        &["spec", "template", "metadata", "annotations"],
    );
    let metrics_path = text(annotations, &["prometheus.io/path"]);
    let exposition = client
        .get(format!("{base}{metrics_path}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Metric names from the exposition's TYPE lines; histograms also export _bucket, _sum and _count.
    let mut exported = BTreeSet::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                continue;
            };
            exported.insert(name.to_owned());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    exported.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    for alert in alerts() {
        // Only the scrape's own `up` may stand alone; every other alert reads the server's metrics.
        assert!(
            !alert.metrics.is_empty() || alert.expr.starts_with("up{"),
            "{}: reads no stormops metric",
            alert.name
        );
        for metric in &alert.metrics {
            assert!(
                exported.contains(metric),
                "{}: {metric} is not exported by the server ({exported:?})",
                alert.name
            );
        }
    }
    server.stop().await;
    let _ = db.drop_database().await;
}
