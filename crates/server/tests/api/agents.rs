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

/// The editor's "send test request": the tool (saved or not) is signed and sent once, and
/// the request as sent comes back with the response; secrets stay hidden in what is shown.
#[tokio::test]
async fn a_webhook_tool_is_tried_from_the_editor() {
    use crate::scripted::Receiver;
    let receiver = Receiver::start(201, r#"{"refunded": true}"#, 0).await;
    let app = TestApp::builder().allow_private_urls().spawn().await;
    let t = app.tenant("Acme").await;
    expect(
        app.request(reqwest::Method::PUT, "/api/v1/secrets/hook_token", &t.key)
            .json(&json!({"value": "hook-secret-42"}))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    app.agent(&t, "refunds").await;
    let tool = json!({"type": "webhook", "name": "refund", "url": format!("{}/hooks/refund", receiver.url),
        "headers": {"Authorization": "Bearer {{secrets.hook_token}}"},
        "parameters": {"type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]}});
    let test = |key: &str, agent: &str, body: serde_json::Value| {
        app.post(&format!("/api/v1/agents/{agent}/tools/test"), key, &body)
            .send()
    };
    let trial = expect(
        test(
            &t.key,
            "refunds",
            json!({"tool": tool, "arguments": {"amount": 20}}),
        )
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(trial["error"], serde_json::Value::Null, "{trial}");
    assert_eq!(trial["request"]["method"], "POST");
    assert_eq!(trial["request"]["body"], r#"{"amount":20}"#);
    let shown = |name: &str| {
        trial["request"]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == name)
            .map(|h| h["value"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        shown("authorization").as_deref(),
        Some("Bearer {{secrets.hook_token}}")
    );
    assert!(!trial.to_string().contains("hook-secret-42"));
    assert_eq!(trial["response"]["status"], 201);
    assert_eq!(trial["response"]["body"], r#"{"refunded": true}"#);
    // What the receiver got: the secret filled in, signed as shown, marked as a test.
    let got = receiver.received().pop().unwrap();
    assert_eq!(got.headers["authorization"], "Bearer hook-secret-42");
    assert_eq!(got.headers["x-frontdesk-test"], "1");
    assert_eq!(
        got.headers["x-frontdesk-signature"].to_str().unwrap(),
        shown("x-frontdesk-signature").unwrap()
    );
    assert_eq!(got.body, br#"{"amount":20}"#);
    // A receiver that echoes the secret back: shown by name, never in the clear.
    let echo = Receiver::start(200, r#"{"seen": "Bearer hook-secret-42"}"#, 0).await;
    let mut echoed = tool.clone();
    echoed["url"] = json!(echo.url);
    let trial = expect(
        test(
            &t.key,
            "refunds",
            json!({"tool": echoed, "arguments": {"amount": 1}}),
        )
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        trial["response"]["body"],
        r#"{"seen": "Bearer {{secrets.hook_token}}"}"#
    );
    assert!(!trial.to_string().contains("hook-secret-42"));

    // Arguments that do not match the tool's parameters, a tool that sends nothing, a bad URL.
    expect_error(
        test(&t.key, "refunds", json!({"tool": tool, "arguments": {}}))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    expect_error(
        test(
            &t.key,
            "refunds",
            json!({"tool": {"type": "builtin", "name": "current_time"}}),
        )
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    let mut bad = tool.clone();
    bad["url"] = json!("ftp://example.com/x");
    expect_error(
        test(
            &t.key,
            "refunds",
            json!({"tool": bad, "arguments": {"amount": 1}}),
        )
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    // Nobody listening: a 200 that says why nothing came back.
    let mut down = tool.clone();
    down["url"] = json!("http://127.0.0.1:9/nowhere");
    let failed = expect(
        test(
            &t.key,
            "refunds",
            json!({"tool": down, "arguments": {"amount": 1}}),
        )
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(failed["error"].is_string(), "{failed}");
    assert_eq!(failed["response"], serde_json::Value::Null);
    // Another tenant's agent is not found.
    let other = app.tenant("Other").await;
    expect_error(
        test(
            &other.key,
            "refunds",
            json!({"tool": tool, "arguments": {"amount": 1}}),
        )
        .await
        .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(receiver.received().len(), 1);
}

/// Without private URLs allowed, the trial is refused the way a run's call would be.
#[tokio::test]
async fn a_webhook_trial_gets_the_outbound_checks() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    app.agent(&t, "a").await;
    let tool = json!({"type": "webhook", "name": "probe", "url": "http://169.254.169.254/latest/meta-data"});
    let trial = expect(
        app.post(
            "/api/v1/agents/a/tools/test",
            &t.key,
            &json!({"tool": tool}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(trial["response"].is_null(), "{trial}");
    assert!(
        trial["error"].as_str().unwrap().contains("not allowed"),
        "{trial}"
    );
}
