//! The ChatKit backend driven through a whole conversation, every request and event checked
//! against the protocol's published types (`openai-chatkit` in .venv-test).

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{expect, TestApp};
use crate::mcp::run_fixture;
use crate::scripted::{text, Scripted};

#[tokio::test]
async fn a_conversation_through_chatkit_matches_the_protocol_types() {
    let scripted = Scripted::start(vec![
        text("Hi! How can I help?"),
        text("Sure, here is more."),
        text("Hello again!"),
    ])
    .await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .spawn()
        .await;
    let t = app.tenant("Acme").await;
    let agent = json!({"slug": "support", "name": "Support", "model": "scripted/gpt-test"});
    expect(
        app.post("/api/v1/agents", &t.key, &agent)
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let out = run_fixture(
        "chatkit_client.py",
        &[&format!("{}/chatkit", app.base), &t.key, "support"],
    )
    .await;
    let create: Vec<&str> = out["create_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(
        create[..5],
        [
            "thread.created",
            "thread.item.done",
            "stream_options",
            "thread.item.added",
            "thread.item.updated"
        ]
    );
    assert_eq!(
        create[create.len() - 2..],
        ["thread.item.done", "thread.updated"]
    );
    assert_eq!(out["first_answer"], "Hi! How can I help?");
    assert_eq!(out["title"], "Hello");
    assert_eq!(out["add_events"][0], "thread.item.done");
    assert_eq!(
        out["items"],
        json!([
            ["user_message", "Hello"],
            ["assistant_message", "Hi! How can I help?"],
            ["user_message", "Tell me more"],
            ["assistant_message", "Sure, here is more."]
        ])
    );
    let pages = &out["pages"];
    assert_eq!(pages[0].as_array().unwrap().len(), 3);
    assert_eq!(pages[1], true);
    assert_eq!(pages[2].as_array().unwrap().len(), 1);
    assert_eq!(pages[3], false);
    assert_eq!(out["renamed"], "Renamed");
    // Retrying after the first message answers it again; the later items leave the thread.
    assert_eq!(
        out["after_retry"],
        json!([
            ["user_message", "Hello"],
            ["assistant_message", "Hello again!"]
        ])
    );
    assert!(out["listed"]
        .as_array()
        .unwrap()
        .contains(&out["thread_id"]));
    assert_eq!(out["feedback_status"], 400);
    assert_eq!(out["deleted"], json!([200, {}]));
    assert_eq!(out["gone_status"], 404);
    // Another tenant cannot see or write to a thread it does not own.
    let other = app.tenant("Other").await;
    let c = app.conversation(&t, "support", &["Private"]).await;
    let body = json!({"type": "threads.get_by_id", "params": {"thread_id": c["id"]}});
    let response = app
        .post("/chatkit", &other.key, &body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = json!({"type": "threads.add_user_message", "params": {"thread_id": c["id"],
        "input": {"content": [{"type": "input_text", "text": "x"}], "attachments": [], "inference_options": {}}}});
    let response = app
        .post("/chatkit", &other.key, &body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // A new thread needs an agent.
    let body = json!({"type": "threads.create", "params": {"input": {"content": [{"type": "input_text", "text": "x"}]}}});
    let response = app.post("/chatkit", &t.key, &body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}
