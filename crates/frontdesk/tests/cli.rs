//! The binary end to end: zero-config `serve` (first and second start), operator commands
//! writing what the server then serves, `config show`, and graceful shutdown on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failure should fail loudly.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

fn frontdesk(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
    command.current_dir(dir);
    // The test's environment must not leak into the binary's configuration.
    for (name, _) in std::env::vars() {
        if name.starts_with("FRONTDESK_") || name == "DATABASE_URL" {
            command.env_remove(name);
        }
    }
    command
}

fn run_json(dir: &Path, args: &[&str]) -> Value {
    let output = frontdesk(dir).args(args).arg("--json").output().unwrap();
    assert!(
        output.status.success(),
        "frontdesk {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A running `frontdesk serve` and the lines it printed up to its banner.
struct Server {
    child: Child,
    lines: Vec<String>,
    base: String,
}

fn serve(dir: &Path) -> Server {
    serve_with(frontdesk(dir))
}

fn serve_with(mut command: Command) -> Server {
    let mut child = command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let mut base = String::new();
    // The banner ends with the API docs line, then (first start) the secrets or the reminder.
    while let Ok(line) = lines_rx.recv_timeout(Duration::from_secs(60)) {
        if let Some(rest) = line
            .strip_prefix("frontdesk ")
            .and_then(|l| l.split("listening on ").nth(1))
        {
            base = rest.split_whitespace().next().unwrap().to_owned();
        }
        let done = line.contains("Publishable:") || line.contains("Keys were printed");
        lines.push(line);
        if done {
            break;
        }
    }
    assert!(!base.is_empty(), "no banner: {lines:?}");
    std::thread::spawn(move || while lines_rx.recv().is_ok() {});
    Server { child, lines, base }
}

impl Server {
    fn line(&self, label: &str) -> String {
        let line = self
            .lines
            .iter()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no `{label}` in {:?}", self.lines));
        line.split_once(':')
            .unwrap()
            .1
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    }

    /// Sends SIGTERM and waits for a clean exit.
    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "frontdesk did not shut down cleanly: {status}"
        );
    }
}

fn get(url: &str, key: &str) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .get(url)
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}

#[test]
fn zero_config_serve_bootstraps_once_and_cli_data_is_served() {
    let dir = tempfile::tempdir().unwrap();

    let first = serve(dir.path());
    assert!(dir.path().join("data/frontdesk.db").exists());
    // SQLite runs in WAL mode: the log sits beside the database while it is open.
    assert!(dir.path().join("data/frontdesk.db-wal").exists());
    let secret = first.line("Secret key");
    let publishable = first.line("Publishable");
    let login = first.line("Login");
    assert!(
        secret.starts_with("fd_sk_") && publishable.starts_with("fd_pk_"),
        "{:?}",
        first.lines
    );
    assert_eq!(login, "owner@demo.frontdesk.dev");
    let (status, agents) = get(&format!("{}/api/v1/agents", first.base), &secret);
    assert_eq!(status, 200);
    assert_eq!(agents["data"][0]["slug"], "support");
    first.terminate();

    // Operator commands beside the data: a tenant, an agent, keys, a user.
    let tenant = run_json(
        dir.path(),
        &[
            "tenant",
            "create",
            "--name",
            "Initech",
            "--owner-email",
            "peter@initech.example",
        ],
    );
    let tenant_id = tenant["tenant"]["id"].as_str().unwrap().to_owned();
    let tenant_key = tenant["secret_key"]["key"].as_str().unwrap().to_owned();
    assert_eq!(tenant["owner"]["password"].as_str().unwrap().len(), 20);
    let agent = run_json(
        dir.path(),
        &[
            "agent",
            "create",
            "--tenant",
            &tenant_id,
            "--slug",
            "tps",
            "--instructions",
            "File TPS reports.",
            "--model",
            "openai/gpt-4.1-mini",
        ],
    );
    assert_eq!(agent["model"], "openai/gpt-4.1-mini");
    let key = run_json(
        dir.path(),
        &[
            "key",
            "create",
            "--tenant",
            &tenant_id,
            "--kind",
            "publishable",
            "--origin",
            "https://initech.example",
            "--agent",
            "tps",
        ],
    );
    assert!(key["key"].as_str().unwrap().starts_with("fd_pk_"));
    let user = run_json(
        dir.path(),
        &[
            "user",
            "add",
            "--tenant",
            &tenant_id,
            "--email",
            "milton@initech.example",
            "--role",
            "editor",
        ],
    );
    assert_eq!(user["role"], "editor");
    // The operator's password reset: a one-time link for the user's email.
    let reset = run_json(
        dir.path(),
        &["user", "reset-link", "--email", "Milton@initech.example"],
    );
    let link = reset["link"].as_str().unwrap();
    assert!(
        link.contains("/reset/") && link.len() > "/reset/".len() + 40,
        "{reset}"
    );
    let unknown = frontdesk(dir.path())
        .args(["user", "reset-link", "--email", "nobody@initech.example"])
        .output()
        .unwrap();
    assert!(!unknown.status.success(), "an unknown email is an error");
    // Bad input is a clear error and a failing exit code.
    let bad = frontdesk(dir.path())
        .args([
            "agent", "create", "--tenant", &tenant_id, "--slug", "Bad Slug",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("slug"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // The second start reuses the demo and prints no secrets; it serves what the CLI wrote.
    let second = serve(dir.path());
    let banner = second.lines.join("\n");
    assert!(
        !banner.contains("fd_sk_") && !banner.contains("fd_pk_") && !banner.contains(" / "),
        "{banner}"
    );
    let (status, agents) = get(&format!("{}/api/v1/agents", second.base), &tenant_key);
    assert_eq!(status, 200);
    assert_eq!(agents["data"][0]["slug"], "tps");
    let (status, _) = get(&format!("{}/api/v1/agents", second.base), &secret);
    assert_eq!(status, 200, "the demo key from the first start still works");
    // Commands work beside the running server, and it serves what they write at once.
    run_json(
        dir.path(),
        &[
            "agent", "create", "--tenant", &tenant_id, "--slug", "beside",
        ],
    );
    let (status, agent) = get(
        &format!("{}/api/v1/agents/beside", second.base),
        &tenant_key,
    );
    assert_eq!(status, 200);
    assert_eq!(agent["name"], "beside");
    second.terminate();
}

#[test]
fn config_show_prints_the_effective_config_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("frontdesk.toml"),
        "bind = \"127.0.0.1:9999\"\n[limits]\nmax_page_size = 50\n",
    )
    .unwrap();
    let output = frontdesk(dir.path())
        .args(["config", "show"])
        .env("FRONTDESK_ADMIN_TOKEN", "super-secret-operator-token")
        .env(
            "DATABASE_URL",
            "postgres://app:hunter2@db.internal:5432/frontdesk",
        )
        .env("FRONTDESK_BIND", "127.0.0.1:7777")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        shown.contains("bind = \"127.0.0.1:7777\""),
        "env wins over the file: {shown}"
    );
    assert!(shown.contains("max_page_size = 50"), "{shown}");
    assert!(
        shown.contains("postgres://app:[redacted]@db.internal:5432/frontdesk"),
        "{shown}"
    );
    assert!(
        !shown.contains("hunter2") && !shown.contains("super-secret"),
        "{shown}"
    );

    let output = frontdesk(dir.path())
        .args(["config", "show"])
        .env("FRONTDESK_BIDN", "x")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("FRONTDESK_BIDN"));
}

#[test]
fn the_demo_agent_answers_on_the_local_model_out_of_the_box() {
    let models = std::env::var_os("FRONTDESK_MODELS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"));
    assert!(
        models.join("smollm2-135m/model.gguf").is_file(),
        "the local model is not in {}: run `make test` (or `frontdesk models fetch`)",
        models.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut command = frontdesk(dir.path());
    command.env("FRONTDESK_MODELS_DIR", &models);
    let server = serve_with(command);
    assert!(
        server
            .lines
            .iter()
            .any(|l| l.contains("Local model: local/smollm2-135m")),
        "{:?}",
        server.lines
    );
    let secret = server.line("Secret key");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answer: Value = runtime.block_on(async {
        let client = reqwest::Client::new();
        // The demo's knowledge base (the shop's page) is ingested in the background.
        let mut ready = false;
        for _ in 0..300 {
            let listed: Value = client
                .get(format!(
                    "{}/api/v1/knowledge-bases/Demo%20shop/documents",
                    server.base
                ))
                .bearer_auth(&secret)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if listed["data"][0]["status"] == "ready" {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "the demo page was not ingested");
        let conversation: Value = client
            .post(format!("{}/api/v1/conversations", server.base))
            .bearer_auth(&secret)
            .json(&serde_json::json!({"agent": "support"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = conversation["id"].as_str().unwrap();
        let response = client
            .post(format!(
                "{}/api/v1/conversations/{id}/messages",
                server.base
            ))
            .bearer_auth(&secret)
            .json(&serde_json::json!({"content": "How do I return a jacket?"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    });
    let message = &answer["message"];
    assert_eq!(message["model"], "local/smollm2-135m");
    let parts = message["content"].as_array().unwrap();
    let text = parts.iter().find(|p| p["type"] == "text").unwrap();
    assert!(!text["text"].as_str().unwrap().trim().is_empty());
    // The answer cites the shop's page at its Returns section.
    assert!(
        parts.iter().any(|p| p["type"] == "citation"
            && p["url"].as_str().unwrap().ends_with("/demo")
            && p["section"]
                .as_str()
                .unwrap_or_default()
                .contains("Returns")),
        "{message}"
    );
    assert!(message["usage"]["completion_tokens"].as_i64().unwrap() > 0);
    server.terminate();
}

#[test]
fn models_list_tells_what_is_there_and_fetch_refuses_unknown_names() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = frontdesk(dir.path());
    command.env("FRONTDESK_MODELS_DIR", dir.path().join("models"));
    let output = command.args(["models", "list", "--json"]).output().unwrap();
    assert!(output.status.success());
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<&str> = listed["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["smollm2-135m", "all-minilm-l6-v2"]);
    assert!(listed["models"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["present"] == false));
    let output = frontdesk(dir.path())
        .args(["models", "fetch", "gpt-5"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no model `gpt-5` is known"));
}

#[test]
fn ingest_reads_files_into_a_knowledge_base_with_the_local_embedder() {
    let models = std::env::var_os("FRONTDESK_MODELS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"));
    assert!(
        models.join("all-minilm-l6-v2/model.safetensors").is_file(),
        "the local embedder is not in {}: run `make test` (or `frontdesk models fetch`)",
        models.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(docs.join("more")).unwrap();
    std::fs::write(
        docs.join("returns.md"),
        "# Returns\n\nJackets can be returned within 30 days, free of charge.\n",
    )
    .unwrap();
    std::fs::write(
        docs.join("more/prices.csv"),
        "product,price\ntent,249\nboots,179\npack,89\n",
    )
    .unwrap();
    std::fs::write(docs.join("more/care.html"), "<html><head><title>Care</title></head><body><main><p>Wax boots every season.</p></main></body></html>").unwrap();
    std::fs::write(docs.join(".hidden"), "left out").unwrap();
    let with_models = |args: &[&str]| {
        let mut command = frontdesk(dir.path());
        command.env("FRONTDESK_MODELS_DIR", &models).args(args);
        command
    };
    let tenant = run_json(dir.path(), &["tenant", "create", "--name", "Acme"]);
    let tenant = tenant["tenant"]["id"].as_str().unwrap().to_owned();
    let output = with_models(&[
        "ingest", "docs", "--kb", "Handbook", "--tenant", &tenant, "--json",
    ])
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let documents = report["documents"].as_array().unwrap();
    assert_eq!(documents.len(), 3, "{report}");
    assert!(
        documents.iter().all(|d| d["document"]["status"] == "ready"),
        "{report}"
    );
    assert!(documents
        .iter()
        .all(|d| d["document"]["embedding_model"] == "all-minilm-l6-v2"));
    // Again: nothing new, each found as it was.
    let again = with_models(&[
        "ingest",
        "docs/returns.md",
        "--kb",
        "Handbook",
        "--tenant",
        &tenant,
        "--json",
    ])
    .output()
    .unwrap();
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["documents"][0]["existing"], true, "{again}");
    // A broken file fails with its reason, and the command says so in its exit status.
    std::fs::write(dir.path().join("broken.pdf"), "%PDF-1.7 not really").unwrap();
    let broken = with_models(&[
        "ingest",
        "broken.pdf",
        "--kb",
        "Handbook",
        "--tenant",
        &tenant,
    ])
    .output()
    .unwrap();
    assert!(!broken.status.success());
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(
        stderr.contains("broken.pdf") && stderr.contains("not a readable PDF"),
        "{stderr}"
    );
    let listed = run_json(dir.path(), &["kb", "list", "--tenant", &tenant]);
    assert_eq!(listed["data"][0]["name"], "Handbook", "{listed}");
    assert_eq!(listed["data"][0]["ready"], 3, "{listed}");
    assert_eq!(listed["data"][0]["failed"], 1, "{listed}");
}
