//! The page checkers people run on web apps, pointed at the dashboard: axe-core for
//! accessibility (in the test's own Chromium) and Lighthouse (with Debian's Chromium) for
//! accessibility, best practices and performance. Both come from npm into `.node-test`
//! (`make test` installs them); a missing one fails the test and says how to get it.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::Client;
use frontdesk_core::tenant::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::TestApp;
use crate::dashboard::{member, Dash, PASSWORD};

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.node-test/node_modules")
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs axe-core on the page the browser shows and fails on any violation of impact
/// serious or critical (lesser ones are listed in the artifact).
pub(crate) async fn axe(browser: &Client, name: &str) {
    let path = node_dir().join("axe-core/axe.min.js");
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): run `make test` (or ./scripts/ensure-test-node.sh)",
            path.display()
        )
    });
    browser
        .execute(
            &format!("{source}\nwindow.axe = axe; return true;"),
            Vec::new(),
        )
        .await
        .unwrap();
    let violations = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             window.axe.run(document, {resultTypes: ['violations']}).then(
               r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                 nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))),
               e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));",
            Vec::new(),
        )
        .await
        .unwrap();
    std::fs::write(
        artifacts().join(format!("axe-{name}.json")),
        serde_json::to_string_pretty(&violations).unwrap(),
    )
    .unwrap();
    let serious: Vec<&Value> = violations
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .collect();
    assert!(serious.is_empty(), "axe on {name}: {serious:#?}");
}

/// Lighthouse's scores (0–100) for `url`, sent with `cookie`.
async fn lighthouse(url: &str, cookie: &str, name: &str) -> Value {
    let bin = node_dir().join(".bin/lighthouse");
    assert!(
        bin.exists(),
        "{} is missing: run `make test` (or ./scripts/ensure-test-node.sh)",
        bin.display()
    );
    let report = artifacts().join(format!("lighthouse-{name}.json"));
    let output = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new(&bin)
            .arg(url)
            .arg("--quiet")
            .arg("--chrome-flags=--headless --no-sandbox --disable-gpu --disable-background-networking --disable-dev-shm-usage")
            .arg(format!("--extra-headers={}", json!({"Cookie": cookie})))
            .arg("--only-categories=performance,accessibility,best-practices")
            .arg("--output=json")
            .arg(format!("--output-path={}", report.display()))
            .env("CHROME_PATH", "/usr/bin/chromium")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("lighthouse finished within 3 minutes")
    .unwrap();
    assert!(
        output.status.success(),
        "lighthouse on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(
        result["finalDisplayedUrl"].as_str(),
        Some(url),
        "lighthouse was sent elsewhere (signed out?)"
    );
    let score = |category: &str| {
        (result["categories"][category]["score"]
            .as_f64()
            .unwrap_or(0.0)
            * 100.0)
            .round()
    };
    json!({
        "page": name,
        "performance": score("performance"),
        "accessibility": score("accessibility"),
        "best_practices": score("best-practices"),
    })
}

/// Lighthouse on Overview, Agents, an agent's editor, Conversations and the Playground:
/// accessibility and best practices at least 95, performance at least 90.
#[tokio::test]
async fn lighthouse_scores_the_main_pages() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    member(&app, &acme, "ada@acme.test", Role::Owner).await;
    let agent = app.agent(&acme, "support").await;
    for n in 0..30 {
        let text = format!("Question number {n} about my order");
        app.conversation(&acme, "support", &[text.as_str(), "An answer."])
            .await;
    }
    let dash = Dash::sign_in(&app, "ada@acme.test", PASSWORD).await;
    dash.page("/", StatusCode::OK).await;
    let id = agent["id"].as_str().unwrap();
    let mut scores = Vec::new();
    for (path, name) in [
        ("/".to_owned(), "overview"),
        ("/agents".to_owned(), "agents"),
        (format!("/agents/{id}"), "agent-editor"),
        ("/conversations".to_owned(), "conversations"),
        ("/playground".to_owned(), "playground"),
    ] {
        scores.push(lighthouse(&format!("{}{path}", app.base), &dash.cookie, name).await);
    }
    std::fs::write(
        artifacts().join("lighthouse-scores.json"),
        serde_json::to_string_pretty(&scores).unwrap(),
    )
    .unwrap();
    println!("lighthouse: {}", serde_json::to_string(&scores).unwrap());
    for score in &scores {
        assert!(score["accessibility"].as_f64() >= Some(95.0), "{score}");
        assert!(score["best_practices"].as_f64() >= Some(95.0), "{score}");
        assert!(score["performance"].as_f64() >= Some(90.0), "{score}");
    }
    app.stop().await;
}
