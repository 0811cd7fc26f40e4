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
        .limits(|limits| {
            limits.rate_limit_per_minute = 1_000_000;
            limits.max_connections_per_address = 0;
            limits.auth_failures_per_minute = 0;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_contract_mismatch() {
    let schemathesis = contract_tool("schemathesis");
    let app = fuzzable_app().await;
    let tenant = app.tenant("Fuzzed").await;
    app.agent(&tenant, "support").await;
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

[generation]
max-examples = 40

[phases.stateful]
max-steps = 12
"#,
    )
    .unwrap();
    let run = tokio::process::Command::new(&schemathesis)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", app.base))
        .args(["--checks", "all", "--seed", "20261207", "--workers", "2"])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .arg("--report-json-path")
        .arg(&report)
        .args(["--report", "json", "--no-color"])
        .env("FD_SECRET_KEY", &tenant.key)
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
    let stdout = String::from_utf8_lossy(&output.stdout);
    let verdict = read_report(&report);
    let generated = verdict["test_cases"]["generated"].as_u64().unwrap();
    eprintln!(
        "schemathesis: {generated} cases, operations {}, phases {}, valid rates {}",
        verdict["operations"], verdict["phases"], verdict["valid_rates"]
    );
    assert!(
        output.status.success()
            && verdict["exit_code"] == 0
            && verdict["failures"].as_array().unwrap().is_empty()
            && verdict["errors"].as_array().unwrap().is_empty()
            && verdict["test_cases"]["with_failures"] == 0,
        "schemathesis found problems: failures {:#}, errors {:#}\n{stdout}",
        verdict["failures"],
        verdict["errors"]
    );
    assert!(
        generated >= 2000,
        "schemathesis generated only {generated} cases:\n{stdout}"
    );
    assert_eq!(
        verdict["phases"]["stateful"]["status"], "success",
        "the stateful phase did not run through: {}",
        verdict["phases"]
    );
    assert_eq!(
        verdict["operations"]["tested"], verdict["operations"]["selected"],
        "operations left untested: {}",
        verdict["operations"]
    );
}
