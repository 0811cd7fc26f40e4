//! Agents over HTTP: create, get by id and slug, merge-patch with versions, delete.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{expect, expect_error, TestApp};

#[tokio::test]
async fn agent_lifecycle() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let body = json!({
        "slug": "support", "name": "Support", "instructions": "Help customers.",
        "model": "openai/gpt-4.1-mini", "temperature": 0.2,
        "tools": [{"type": "webhook", "name": "order_status", "url": "https://shop.example.com/hooks/order",
                   "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}}],
        "widget": {"accent_color": "#4f46e5", "starter_prompts": ["Track my order"]}
    });
    let created = expect(
        app.post("/api/v1/agents", &t.key, &body)
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("agt_"));
    assert_eq!(created["version"], 1);
    assert_eq!(created["kind"], "chat");
    assert_eq!(created["tools"][0]["method"], "POST");
    assert_eq!(created["tools"][0]["timeout_ms"], 10000);

    let by_slug = expect(
        app.get("/api/v1/agents/support", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let by_id = expect(
        app.get(&format!("/api/v1/agents/{id}"), &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(by_slug, created);
    assert_eq!(by_id, created);

    // A taken slug is a 409.
    expect_error(
        app.post(
            "/api/v1/agents",
            &t.key,
            &json!({"slug": "support", "name": "X"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CONFLICT,
        "slug_taken",
    )
    .await;

    // Partial update: only the named fields change; null resets; a version is kept.
    let patched = expect(
        app.patch(
            "/api/v1/agents/support",
            &t.key,
            &json!({"instructions": "Help customers kindly.", "temperature": null}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(patched["version"], 2);
    assert_eq!(patched["instructions"], "Help customers kindly.");
    assert_eq!(patched["temperature"], serde_json::Value::Null);
    assert_eq!(patched["model"], "openai/gpt-4.1-mini");
    let versions = expect(
        app.get("/api/v1/agents/support/versions", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let numbers: Vec<i64> = versions["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![2, 1]);
    assert_eq!(versions["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        versions["data"][1]["spec"]["instructions"],
        "Help customers."
    );

    // Nested objects merge: patching the greeting keeps the widget's colour and prompts.
    let greeted = expect(
        app.patch(
            "/api/v1/agents/support",
            &t.key,
            &json!({"widget": {"greeting": "Hello!"}}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(greeted["widget"]["greeting"], "Hello!");
    assert_eq!(greeted["widget"]["accent_color"], "#4f46e5");
    assert_eq!(
        greeted["widget"]["starter_prompts"],
        json!(["Track my order"])
    );

    // Renaming the slug works, and the old slug is gone.
    expect(
        app.patch(
            "/api/v1/agents/support",
            &t.key,
            &json!({"slug": "helpdesk"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    expect_error(
        app.get("/api/v1/agents/support", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let list = expect(
        app.get("/api/v1/agents", &t.key).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    expect(
        app.delete("/api/v1/agents/helpdesk", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::NO_CONTENT,
    )
    .await;
    expect_error(
        app.get(&format!("/api/v1/agents/{id}"), &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        app.delete("/api/v1/agents/helpdesk", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn invalid_agents_name_the_field_and_write_nothing() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let cases = [
        (json!({"slug": "Bad Slug", "name": "x"}), "slug"),
        (
            json!({"slug": "ok", "name": "x", "temperature": 9}),
            "temperature",
        ),
        (
            json!({"slug": "ok", "name": "x", "temperature": "warm"}),
            "temperature",
        ),
        (
            json!({"slug": "ok", "name": "x", "model": "gpt-4o"}),
            "model",
        ),
        (
            json!({"slug": "ok", "name": "x", "instructions": "a".repeat(100_001)}),
            "instructions",
        ),
        (
            json!({"slug": "ok", "name": "x", "tools": [{"type": "webhook", "name": "t", "url": "ftp://x"}]}),
            "tools[0].url",
        ),
        (
            json!({"slug": "ok", "name": "x", "handoffs": ["nobody"]}),
            "handoffs[0]",
        ),
        (
            json!({"slug": "ok", "name": "x", "nickname": "y"}),
            "nickname",
        ),
        (json!({"name": "x"}), "slug"),
    ];
    for (body, field) in cases {
        let error = expect_error(
            app.post("/api/v1/agents", &t.key, &body)
                .send()
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
        assert_eq!(error["field"], field, "{error}");
        assert!(
            error["message"].as_str().unwrap().contains(field),
            "{error}"
        );
    }
    let list = expect(
        app.get("/api/v1/agents", &t.key).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(list["data"], json!([]));
    app.stop().await;
}
