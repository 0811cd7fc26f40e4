//! Chat turns over HTTP: SSE with ids and event names, JSON mode, re-attaching with
//! Last-Event-ID, cancel, and upstream failures as 502.

use std::sync::Arc;

use frontdesk_core::model::ModelError;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{expect, expect_error, ScriptedModel, TestApp};

/// Parses an SSE body into (id, event, data) triples.
pub(crate) fn parse_sse(body: &str) -> Vec<(u64, String, Value)> {
    body.split("\n\n")
        .filter(|block| block.contains("data:"))
        .map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}:")))
                    .map(|v| v.trim().to_owned())
                    .unwrap_or_default()
            };
            (
                field("id").parse().unwrap(),
                field("event"),
                serde_json::from_str(&field("data")).unwrap(),
            )
        })
        .collect()
}

/// A turn over SSE: its events as (event, data).
pub(crate) async fn turn_events(
    app: &TestApp,
    t: &crate::common::TestTenant,
    conv: &str,
    content: &str,
) -> Vec<(String, Value)> {
    let response = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            &t.key,
            &json!({"content": content}),
        )
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    parse_sse(&response.text().await.unwrap())
        .into_iter()
        .map(|(_, event, data)| (event, data))
        .collect()
}

async fn app_with(
    words: Vec<&'static str>,
    pause_ms: u64,
    fail: Option<ModelError>,
) -> (TestApp, crate::common::TestTenant, String) {
    let app = TestApp::builder()
        .provider(
            "script",
            Arc::new(ScriptedModel {
                words,
                pause_ms,
                fail,
            }),
        )
        .spawn()
        .await;
    let (t, id) = app.chat("script/m").await;
    (app, t, id)
}

#[tokio::test]
async fn a_turn_streams_as_sse_and_is_stored() {
    let (app, t, id) = app_with(vec!["Hello", " there"], 0, None).await;
    let response = app
        .post(
            &format!("/api/v1/conversations/{id}/messages"),
            &t.key,
            &json!({"content": "Hi!"}),
        )
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = parse_sse(&response.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(_, name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "run.started",
            "message.delta",
            "message.delta",
            "message.completed",
            "run.completed"
        ]
    );
    assert_eq!(
        events.iter().map(|(seq, _, _)| *seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert!(events[0].2["run_id"].as_str().unwrap().starts_with("run_"));
    assert_eq!(
        events[1].2,
        json!({"type": "message.delta", "text": "Hello"})
    );
    assert_eq!(events[3].2["message"]["finish_reason"], "stop");
    assert_eq!(events[3].2["message"]["usage"]["total_tokens"], 10);
    assert_eq!(events[4].2["status"], "completed");

    // JSON mode: one object at the end; the conversation holds both turns.
    let result = expect(
        app.post(
            &format!("/api/v1/conversations/{id}/messages"),
            &t.key,
            &json!({"content": [{"type": "text", "text": "Again"}]}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(result["status"], "completed");
    assert_eq!(result["message"]["content"][0]["text"], "Hello there");
    let conversation = expect(
        app.get(&format!("/api/v1/conversations/{id}"), &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(conversation["message_count"], 4);
    assert_eq!(conversation["title"], "Hi!");

    // Replay from Last-Event-ID.
    let run_id = events[0].2["run_id"].as_str().unwrap();
    let replay = app
        .get(&format!("/api/v1/runs/{run_id}/events"), &t.key)
        .header("last-event-id", "3")
        .send()
        .await
        .unwrap();
    let replayed = parse_sse(&replay.text().await.unwrap());
    assert_eq!(
        replayed.iter().map(|(seq, _, _)| *seq).collect::<Vec<_>>(),
        vec![4, 5]
    );

    // Bad input writes nothing.
    expect_error(
        app.post(
            &format!("/api/v1/conversations/{id}/messages"),
            &t.key,
            &json!({"content": 5}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    expect_error(
        app.post(
            &format!("/api/v1/conversations/{id}/messages"),
            &t.key,
            &json!({"content": "  "}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    expect_error(
        app.get(&format!("/api/v1/runs/{run_id}/events"), &t.key)
            .header("last-event-id", "x")
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_last_event_id",
    )
    .await;
    let conversation = expect(
        app.get(&format!("/api/v1/conversations/{id}"), &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(conversation["message_count"], 4);
    app.stop().await;
}

#[tokio::test]
async fn cancel_and_failures() {
    let (app, t, id) = app_with(vec!["One", " two", " three", " four"], 300, None).await;
    let response = app
        .post(
            &format!("/api/v1/conversations/{id}/messages"),
            &t.key,
            &json!({"content": "Count"}),
        )
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut body = response;
    // Read until the run id arrives, then cancel it.
    let mut seen = String::new();
    while !seen.contains("message.delta") {
        seen.push_str(&String::from_utf8_lossy(
            &body.chunk().await.unwrap().unwrap(),
        ));
    }
    let run_id = parse_sse(&seen)[0].2["run_id"].as_str().unwrap().to_owned();
    let other = app.tenant("Other").await;
    expect_error(
        app.request(
            reqwest::Method::POST,
            &format!("/api/v1/runs/{run_id}/cancel"),
            &other.key,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        app.get(&format!("/api/v1/runs/{run_id}/events"), &other.key)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect(
        app.request(
            reqwest::Method::POST,
            &format!("/api/v1/runs/{run_id}/cancel"),
            &t.key,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::ACCEPTED,
    )
    .await;
    while let Some(chunk) = body.chunk().await.unwrap() {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let events = parse_sse(&seen);
    let last = events.last().unwrap();
    assert_eq!(
        (last.1.as_str(), last.2["status"].as_str()),
        ("run.completed", Some("cancelled"))
    );
    let completed = events
        .iter()
        .find(|(_, name, _)| name == "message.completed")
        .unwrap();
    assert_eq!(completed.2["message"]["finish_reason"], "cancelled");
    assert!(completed.2["message"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("One"));
    app.stop().await;

    // An upstream failure in JSON mode is a 502 with our error shape.
    let (app, t, id) = app_with(
        vec!["Par"],
        0,
        Some(ModelError::Upstream {
            status: 500,
            message: "boom".into(),
        }),
    )
    .await;
    let error = expect_error(
        app.post(
            &format!("/api/v1/conversations/{id}/messages"),
            &t.key,
            &json!({"content": "Hi"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::BAD_GATEWAY,
        "upstream_error",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("boom"));
    // A model nobody configured is a 409 before anything is stored.
    expect(
        app.patch(
            "/api/v1/agents/support",
            &t.key,
            &json!({"model": "local/smollm2-135m"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    expect_error(
        app.post(
            &format!("/api/v1/conversations/{id}/messages"),
            &t.key,
            &json!({"content": "Hi"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CONFLICT,
        "model_unavailable",
    )
    .await;
    let conversation = expect(
        app.get(&format!("/api/v1/conversations/{id}"), &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        conversation["message_count"], 2,
        "the failed turn's user message and partial answer, nothing from the refused one"
    );
    app.stop().await;
}

/// A model that echoes the last user message back, word by word.
struct Echo;

#[async_trait::async_trait]
impl frontdesk_core::model::ModelProvider for Echo {
    async fn stream(
        &self,
        request: frontdesk_core::model::ModelRequest,
    ) -> Result<frontdesk_core::model::ModelStream, ModelError> {
        use frontdesk_core::model::{ModelEvent, ModelMessage};
        let last = request
            .messages
            .iter()
            .rev()
            .find_map(|m| match m {
                ModelMessage::User { text } => Some(text.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let mut items: Vec<Result<ModelEvent, ModelError>> = last
            .split_inclusive(' ')
            .map(|w| Ok(ModelEvent::TextDelta(w.to_owned())))
            .collect();
        items.push(Ok(ModelEvent::Finish(
            frontdesk_core::run::FinishReason::Stop,
        )));
        Ok(Box::pin(futures_util::StreamExt::then(
            futures_util::stream::iter(items),
            |item| async move {
                tokio::task::yield_now().await;
                item
            },
        )))
    }
}

#[tokio::test]
async fn a_hundred_concurrent_streams_stay_independent() {
    let app = TestApp::builder()
        .provider("echo", Arc::new(Echo))
        .spawn()
        .await;
    let (t, _) = app.chat("echo/m").await;
    let mut tasks = Vec::new();
    for n in 0..100 {
        let conversation = expect(
            app.post(
                "/api/v1/conversations",
                &t.key,
                &json!({"agent": "support"}),
            )
            .send()
            .await
            .unwrap(),
            StatusCode::CREATED,
        )
        .await;
        let id = conversation["id"].as_str().unwrap().to_owned();
        let request = app
            .post(
                &format!("/api/v1/conversations/{id}/messages"),
                &t.key,
                &json!({"content": format!("stream number {n} says hello")}),
            )
            .header("accept", "text/event-stream");
        tasks.push(tokio::spawn(async move {
            (n, request.send().await.unwrap().text().await.unwrap())
        }));
    }
    for task in tasks {
        let (n, body) = task.await.unwrap();
        let events = parse_sse(&body);
        let text: String = events
            .iter()
            .filter(|(_, name, _)| name == "message.delta")
            .map(|(_, _, data)| data["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(text, format!("stream number {n} says hello"));
        let seqs: Vec<u64> = events.iter().map(|(seq, _, _)| *seq).collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "stream {n} is ordered and complete"
        );
        assert_eq!(events.last().unwrap().2["status"], "completed");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_spent_quota_is_a_429_with_retry_after() {
    let app = TestApp::builder()
        .provider("script", ScriptedModel::saying(&["Hi"]))
        .spawn()
        .await;
    let created = app
        .service
        .create_tenant(frontdesk_core::service::NewTenant {
            name: "Small".into(),
            owner_email: None,
            monthly_token_quota: Some(5),
        })
        .await
        .unwrap();
    let key = created.secret.expose().to_owned();
    expect(
        app.post(
            "/api/v1/agents",
            &key,
            &json!({"slug": "support", "name": "S", "model": "script/m"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let conversation = expect(
        app.post("/api/v1/conversations", &key, &json!({"agent": "support"}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let path = format!(
        "/api/v1/conversations/{}/messages",
        conversation["id"].as_str().unwrap()
    );
    expect(
        app.post(&path, &key, &json!({"content": "one"}))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let response = app
        .post(&path, &key, &json!({"content": "two"}))
        .send()
        .await
        .unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 31 * 24 * 3600);
    let error = expect_error(response, StatusCode::TOO_MANY_REQUESTS, "quota_exceeded").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("10 of its 5 tokens"),
        "{error}"
    );
    app.stop().await;
}

#[tokio::test]
async fn usage_reports_group_tokens_and_price_them() {
    let app = TestApp::builder()
        .provider("script", ScriptedModel::saying(&["Hi"]))
        .price("script/m", 1000.0, 2000.0)
        .spawn()
        .await;
    let (t, id) = app.chat("script/m").await;
    for content in ["one", "two"] {
        expect(
            app.post(
                &format!("/api/v1/conversations/{id}/messages"),
                &t.key,
                &json!({"content": content}),
            )
            .send()
            .await
            .unwrap(),
            StatusCode::OK,
        )
        .await;
    }
    let by_model = expect(
        app.get("/api/v1/usage?group_by=model", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(by_model["data"].as_array().unwrap().len(), 1);
    assert_eq!(by_model["data"][0]["key"], "script/m");
    if by_model["data"][0]["total_tokens"] != 20 {
        // Show what was stored, to tell a lost answer from a lost count.
        let messages = app
            .get(&format!("/api/v1/conversations/{id}/messages"), &t.key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        panic!("usage {by_model} does not count both answers; messages: {messages}");
    }
    assert_eq!(by_model["data"][0]["messages"], 2);
    // 14 prompt tokens at $1000/M + 6 completion tokens at $2000/M = $0.026.
    let cost = by_model["total"]["cost_usd"].as_f64().unwrap();
    assert!((cost - 0.026).abs() < 1e-9, "{cost}");
    let by_day = expect(
        app.get("/api/v1/usage", &t.key).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(by_day["group_by"], "day");
    assert_eq!(by_day["data"][0]["key"].as_str().unwrap().len(), 10);
    let by_agent = expect(
        app.get("/api/v1/usage?group_by=agent", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(by_agent["data"][0]["key"]
        .as_str()
        .unwrap()
        .starts_with("agt_"));
    // Another tenant sees none of it; bad input names the field.
    let other = app.tenant("Other").await;
    let theirs = expect(
        app.get("/api/v1/usage", &other.key).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(theirs["data"], json!([]));
    let error = expect_error(
        app.get("/api/v1/usage?group_by=week", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_eq!(error["field"], "group_by");
    let error = expect_error(
        app.get("/api/v1/usage?from=yesterday", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_eq!(error["field"], "from");
    let error = expect_error(
        app.get(
            "/api/v1/usage?from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z",
            &t.key,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_eq!(error["field"], "from");
    app.stop().await;
}
