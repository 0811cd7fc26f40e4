//! The AI SDK UI message stream, read by the `ai` npm package's own transport and reader
//! (in .node-test, set up by `make test`): tool parts with outputs, text, guardrail data
//! parts, errors, a chat continuing one of our conversations, and cited sources.

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{expect, TestApp};
use crate::scripted::{call, text, Scripted};

fn node_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.node-test");
    assert!(
        dir.join("node_modules/ai").exists(),
        "{} is missing the `ai` package: run `make test` (or ./scripts/ensure-test-node.sh)",
        dir.display()
    );
    dir
}

/// Runs a fixture script (`tests/fixtures/<script>`) with node in .node-test; answers the
/// JSON it prints.
async fn node_client(script: &str, args: &[&str]) -> Value {
    let dir = node_dir();
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(script);
    let staged = dir.join(script);
    std::fs::copy(&source, &staged).unwrap();
    let output = tokio::process::Command::new("node")
        .arg(&staged)
        .args(args)
        .current_dir(&dir)
        .kill_on_drop(true)
        .output();
    let output = crate::common::within(output).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn cited_sources_reach_the_ai_sdk_as_source_parts() {
    let stop = tokio_util::sync::CancellationToken::new();
    let mcp = crate::mcp::serve_calculator(&stop).await;
    let scripted = Scripted::start(vec![
        call("h1", "help_pages", json!({})),
        text("Parcels arrive in two days."),
    ])
    .await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .allow_private_urls()
        .spawn()
        .await;
    let t = app.tenant("Acme").await;
    let agent = json!({"slug": "support", "name": "Support", "model": "scripted/m",
        "mcp_servers": [{"name": "help", "url": mcp}]});
    expect(
        app.post("/api/v1/agents", &t.key, &agent)
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let message = node_client(
        "ai_sdk_once.mjs",
        &[
            &format!("{}/api/v1/ai-sdk/chat/support", app.base),
            &t.key,
            "chat-sources-1",
            "How long does shipping take?",
        ],
    )
    .await;
    let sources: Vec<&Value> = message["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "source-url")
        .collect();
    assert_eq!(sources.len(), 1, "{message}");
    assert_eq!(sources[0]["url"], "https://help.example.com/shipping");
    assert_eq!(sources[0]["title"], "Shipping times");
    assert!(sources[0]["sourceId"].is_string());
    stop.cancel();
    app.stop().await;
}

#[tokio::test]
async fn the_ai_sdk_reads_our_ui_message_stream() {
    let scripted = Scripted::start(vec![
        call("c1", "current_time", json!({"timezone": "Europe/Paris"})),
        text("It is noon in Paris."),
        text("You're welcome."),
        text("Continuing here."),
    ])
    .await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .spawn()
        .await;
    let t = app.tenant("Acme").await;
    let agent = json!({"slug": "support", "name": "Support", "model": "scripted/gpt-test",
        "tools": [{"type": "builtin", "name": "current_time"}],
        "guardrails": {"input": {"blocked_patterns": ["blocked words"]}, "safe_reply": "Let's talk about something else."}});
    expect(
        app.post("/api/v1/agents", &t.key, &agent)
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let out = node_client(
        "ai_sdk_client.mjs",
        &[
            &format!("{}/api/v1/ai-sdk/chat/support", app.base),
            &t.key,
            "chat-local-1",
        ],
    )
    .await;
    let parts = out["first"]["parts"].as_array().unwrap();
    let tool = parts
        .iter()
        .find(|p| p["type"] == "tool-current_time")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(tool["state"], "output-available");
    assert_eq!(tool["input"], json!({"timezone": "Europe/Paris"}));
    assert_eq!(tool["output"]["timezone"], "Europe/Paris");
    let texts: Vec<&str> = parts
        .iter()
        .filter(|p| p["type"] == "text")
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["It is noon in Paris."]);
    assert_eq!(out["first"]["role"], "assistant");
    let second: Vec<&str> = out["second"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "text")
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert_eq!(second, ["You're welcome."]);
    // The replayed history carried our tool call and its result back to the model.
    let requests = scripted.requests();
    let replay = requests[2]["messages"].as_array().unwrap();
    assert!(
        replay
            .iter()
            .any(|m| m["role"] == "tool" && m["tool_call_id"] == "c1"),
        "{replay:?}"
    );
    let tripped = out["tripped"]["parts"].as_array().unwrap();
    assert!(
        tripped.iter().any(|p| p["type"] == "data-guardrail"),
        "{tripped:?}"
    );
    assert!(tripped
        .iter()
        .any(|p| p["type"] == "text" && p["text"] == "Let's talk about something else."));
    assert!(
        out["failed"].as_str().unwrap().contains("messages"),
        "{out}"
    );
    // A chat whose id is one of our conversations goes on in it.
    let conversation = app
        .conversation(&t, "support", &["Hello", "Hi! How can I help?"])
        .await;
    let id = conversation["id"].as_str().unwrap();
    let body = json!({"id": id, "trigger": "submit-message", "messages": [
        {"id": "x1", "role": "user", "parts": [{"type": "text", "text": "ignored history"}]},
        {"id": "x2", "role": "user", "parts": [{"type": "text", "text": "Another question"}]}]});
    let response = app
        .post("/api/v1/ai-sdk/chat/support", &t.key, &body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-vercel-ai-ui-message-stream"], "v1");
    let body = response.text().await.unwrap();
    assert!(
        body.contains(r#""finishReason":"stop""#) && body.ends_with("data: [DONE]\n\n"),
        "{body}"
    );
    let sent = scripted.requests().pop().unwrap();
    let texts: Vec<&str> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(texts, ["Hello", "Hi! How can I help?", "Another question"]);
    let got = expect(
        app.get(&format!("/api/v1/conversations/{id}"), &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(got["message_count"], 4);
    // Another tenant cannot use that conversation or the agent.
    let other = app.tenant("Other").await;
    let response = app
        .post(
            "/api/v1/ai-sdk/chat/support",
            &other.key,
            &json!({"id": id, "messages": []}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}
