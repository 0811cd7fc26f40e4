//! The OpenAPI document is the contract people generate clients from. schemathesis (a
//! property-based fuzzer, in .venv-contract) runs every one of its checks against a live
//! server, stateful sequences included, and a client generated from the document by
//! openapi-python-client creates an agent, starts a conversation and reads it back.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{ScriptedModel, TestApp};

const ADMIN: &str = "contract-admin-token";

/// A tool of the contract venv; missing is a loud failure naming the fix.
fn contract_tool(name: &str) -> PathBuf {
    let venv = std::env::var("FRONTDESK_CONTRACT_VENV").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-contract"),
        PathBuf::from,
    );
    let path = venv.join("bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `make test` (or ./scripts/ensure-contract-python.sh)",
        path.display()
    );
    path
}

/// A server whose agents answer with the scripted model, the operator route open to
/// `ADMIN`, and no per-address limits (the fuzzer is one address sending thousands of
/// requests, some with wrong credentials on purpose).
async fn fuzzable_app() -> TestApp {
    TestApp::builder()
        .admin_token(ADMIN)
        .provider("scripted", ScriptedModel::saying(&["Hello", " there."]))
        .embedder(crate::words::Words::new())
        .limits(|limits| {
            limits.rate_limit_per_minute = 1_000_000;
            limits.widget_per_ip_per_minute = 1_000_000;
            limits.max_connections_per_address = 0;
            limits.auth_failures_per_minute = u32::MAX;
        })
        .spawn()
        .await
}

/// schemathesis's verdict (its JSON run report), read strictly: a field it stops writing is
/// a loud failure, not a pass.
fn read_report(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Runs schemathesis on the document at `path` of `app` with `checks` and `args` (and more
/// configuration in `extra`, TOML), and returns its verdict (the JSON run report) and its
/// output. One worker: hypothesis' caches are not safe across threads (two workers once
/// failed a run with an internal error).
async fn schemathesis(
    app: &TestApp,
    key: &str,
    path: &str,
    checks: &str,
    args: &[&str],
    extra: &str,
) -> (Value, String) {
    let schemathesis = contract_tool("schemathesis");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("schemathesis.toml");
    let report = dir.path().join("report.json");
    std::fs::write(
        &config,
        r#"
[auth.openapi.secret_key]
bearer = "${FD_SECRET_KEY}"

[auth.openapi.admin_token]
bearer = "${FD_ADMIN_TOKEN}"
"#
        .to_owned()
            + extra,
    )
    .unwrap();
    let run = tokio::process::Command::new(&schemathesis)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}{path}", app.base))
        .args(["--checks", checks, "--seed", "20261207", "--workers", "1"])
        .args(args)
        .arg("--report-json-path")
        .arg(&report)
        .args(["--report", "json", "--no-color"])
        .env("FD_SECRET_KEY", key)
        .env("FD_ADMIN_TOKEN", ADMIN)
        .env("SCHEMATHESIS_HOOKS", "contract_hooks")
        .env(
            "PYTHONPATH",
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
        )
        .current_dir(dir.path())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(900), run)
        .await
        .expect("schemathesis ran for over 15 minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        report.exists(),
        "schemathesis wrote no report: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (read_report(&report), stdout)
}

/// Fails on anything schemathesis found: a failed check, an error, a test case with failures.
fn assert_clean(verdict: &Value, stdout: &str) {
    assert!(
        verdict["exit_code"] == 0
            && verdict["failures"].as_array().is_some_and(Vec::is_empty)
            && verdict["errors"].as_array().is_some_and(Vec::is_empty)
            && verdict["test_cases"]["with_failures"] == 0,
        "schemathesis found problems: failures {:#}, errors {:#}\n{stdout}",
        verdict["failures"],
        verdict["errors"]
    );
    assert_eq!(
        verdict["operations"]["tested"], verdict["operations"]["selected"],
        "operations left untested: {}",
        verdict["operations"]
    );
}

/// The protocol endpoints' document describes other people's protocols by their outline (a
/// ChatKit request is a `type` and its `params`), so a request that fits the outline may
/// still be refused: it is held to the checks of what the server answers — no server error,
/// every status documented, every body the documented type and schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_protocol_endpoints_answer_as_their_document_says() {
    const SHOP: &str = "https://shop.example.com";
    let app = fuzzable_app().await;
    let tenant = app.tenant("Fuzzed").await;
    app.agent(&tenant, "support").await;
    // The widget's routes take a publishable key (a session) or a visitor token, from a page
    // on the key's origin.
    let publishable = crate::common::expect(
        app.post(
            "/api/v1/api-keys",
            &tenant.key,
            &serde_json::json!({"kind": "publishable", "name": "site", "allowed_origins": [SHOP]}),
        )
        .send()
        .await
        .unwrap(),
        reqwest::StatusCode::CREATED,
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = crate::common::expect(
        app.client
            .post(format!("{}/widget/v1/session", app.base))
            .header("x-frontdesk-key", &publishable)
            .header("origin", SHOP)
            .json(&serde_json::json!({"agent": "support"}))
            .send()
            .await
            .unwrap(),
        reqwest::StatusCode::OK,
    )
    .await;
    let visitor = session["token"].as_str().unwrap();
    let extra = format!(
        "\n[auth.openapi.visitor_token]\nbearer = \"{visitor}\"\n\n\
         [auth.openapi.publishable_key]\napi_key = \"{publishable}\"\n\n\
         [headers]\nOrigin = \"{SHOP}\"\n"
    );
    let (verdict, stdout) = schemathesis(
        &app,
        &tenant.key,
        "/api/v1/openapi/protocols.json",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
        &["--max-examples", "30"],
        &extra,
    )
    .await;
    eprintln!(
        "schemathesis (protocols): {} cases",
        verdict["test_cases"]["generated"]
    );
    assert_clean(&verdict, &stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_contract_mismatch() {
    let app = fuzzable_app().await;
    let tenant = app.tenant("Fuzzed").await;
    app.agent(&tenant, "support").await;
    let (verdict, stdout) = schemathesis(
        &app,
        &tenant.key,
        "/api/v1/openapi.json",
        "all",
        &[
            "--max-examples",
            "40",
            "--phases",
            "examples,coverage,fuzzing,stateful",
        ],
        "",
    )
    .await;
    let generated = verdict["test_cases"]["generated"].as_u64().unwrap();
    eprintln!(
        "schemathesis: {generated} cases, operations {}, phases {}",
        verdict["operations"], verdict["phases"]
    );
    assert_clean(&verdict, &stdout);
    assert!(
        generated >= 2000,
        "schemathesis generated only {generated} cases:\n{stdout}"
    );
    assert_eq!(
        verdict["phases"]["stateful"]["status"], "success",
        "the stateful phase did not run through: {}",
        verdict["phases"]
    );
}
/// A client generated from the document (openapi-python-client) works against the server: it
/// creates an agent, starts a conversation, and reads it back, every answer parsed into the
/// document's models.
#[tokio::test]
async fn a_client_generated_from_the_document_creates_an_agent_and_a_conversation() {
    let generator = contract_tool("openapi-python-client");
    let app = TestApp::builder()
        .provider("scripted", ScriptedModel::saying(&["Hello", " there."]))
        .spawn()
        .await;
    let tenant = app.tenant("Generated").await;
    let dir = tempfile::tempdir().unwrap();
    let document = dir.path().join("openapi.json");
    let text = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::fs::write(&document, text).unwrap();
    let package = dir.path().join("frontdesk_client");
    let generated = tokio::process::Command::new(&generator)
        .arg("generate")
        .arg("--path")
        .arg(&document)
        .arg("--output-path")
        .arg(&package)
        .args(["--meta", "none"])
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let log = String::from_utf8_lossy(&generated.stdout);
    assert!(generated.status.success(), "{log}");
    // Its only warnings are that it found no formatter to run on the code.
    assert!(
        !log.contains("WARNING") && !log.contains("Unable to"),
        "the generator dropped parts of the document:\n{log}"
    );
    let python = contract_tool("python");
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/generated_client.py");
    let run = tokio::process::Command::new(python)
        .arg(script)
        .arg(dir.path())
        .arg(&app.base)
        .arg(&tenant.key)
        .kill_on_drop(true)
        .output();
    let output = crate::common::within(run).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["agent"]["slug"], "support");
    assert_eq!(seen["agent"]["version"], 1);
    assert_eq!(seen["turn"]["status"], "completed");
    assert_eq!(seen["turn"]["answer"], "Hello there.");
    assert_eq!(seen["conversation"]["agent_id"], seen["agent"]["id"]);
    assert_eq!(
        seen["messages"],
        serde_json::json!([["user", "Hello?"], ["assistant", "Hello there."]])
    );
    assert_eq!(seen["agents"], serde_json::json!(["support"]));
}
