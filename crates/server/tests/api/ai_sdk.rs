//! The AI SDK UI message stream, read by the `ai` npm package's own transport and reader
//! (in .node-test, set up by `make test`): tool parts with outputs, text, guardrail data
//! parts, errors, and a chat continuing one of our conversations.

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
    let dir = node_dir();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ai_sdk_client.mjs");
    let staged = dir.join("ai_sdk_client.mjs");
    std::fs::copy(&script, &staged).unwrap();
    let output = tokio::process::Command::new("node")
        .arg(&staged)
        .arg(format!("{}/api/v1/ai-sdk/chat/support", app.base))
        .arg(&t.key)
        .arg("chat-local-1")
        .current_dir(&dir)
        .kill_on_drop(true)
        .output();
    let output = crate::common::within(output).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
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
