//! End to end through a real provider: the API, the Runner, the OpenAI Chat Completions
//! provider, and a scripted upstream HTTP server speaking its SSE framing.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use frontdesk_models::openai_chat::OpenAiChat;
use frontdesk_models::Timeouts;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{expect, TestApp};

fn chunk(text: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
    )
}

/// An upstream that streams `words` 50 ms apart, then finishes, or breaks the connection.
async fn upstream(words: &'static [&'static str], break_at_end: bool) -> String {
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move |_body: Bytes| async move {
            let mut items: Vec<Option<String>> = words.iter().map(|w| Some(chunk(w))).collect();
            if !break_at_end {
                items.push(Some(format!(
                    "data: {}\n\ndata: [DONE]\n\n",
                    json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})
                )));
            }
            items.push(None);
            let stream = futures_util::StreamExt::then(futures_util::stream::iter(items), move |item| async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                match item {
                    Some(text) => Ok::<_, std::io::Error>(Bytes::from(text)),
                    None if break_at_end => Err(std::io::Error::other("upstream died")),
                    None => Ok(Bytes::new()),
                }
            });
            Response::builder().header("content-type", "text/event-stream").body(Body::from_stream(stream)).unwrap()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

async fn app_on(base: &str) -> (TestApp, crate::common::TestTenant, String) {
    let provider = Arc::new(OpenAiChat::new(base, None, Timeouts::default()).unwrap());
    let app = TestApp::builder()
        .provider("openai", provider)
        .spawn()
        .await;
    let (t, id) = app.chat("openai/gpt-4.1-mini").await;
    (app, t, id)
}

#[tokio::test]
async fn a_client_that_disconnects_still_gets_its_answer_stored() {
    let base = upstream(&["The ", "answer ", "is ", "42."], false).await;
    let (app, t, id) = app_on(&base).await;
    let mut response = app
        .post(
            &format!("/api/v1/conversations/{id}/messages"),
            &t.key,
            &json!({"content": "What is it?"}),
        )
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let first = String::from_utf8_lossy(&response.chunk().await.unwrap().unwrap()).into_owned();
    assert!(first.contains("event: run.started"), "{first}");
    let run_id = first
        .split("\"run_id\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    drop(response);
    // Re-attach from the start and read to the end: the run went on without us.
    let replay = app
        .get(&format!("/api/v1/runs/{run_id}/events"), &t.key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        replay.contains("event: run.completed") && replay.contains("\"status\":\"completed\""),
        "{replay}"
    );
    let conversation = expect(
        app.get(
            &format!("/api/v1/conversations/{id}?order=desc&limit=1"),
            &t.key,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    let answer = &conversation["messages"]["data"][0];
    assert_eq!(answer["content"][0]["text"], "The answer is 42.");
    assert_eq!(answer["model"], "openai/gpt-4.1-mini");
    assert_eq!(answer["usage"]["total_tokens"], 7);
    app.stop().await;
}

#[tokio::test]
async fn an_upstream_that_dies_mid_stream_leaves_the_partial_answer_and_an_error_event() {
    let base = upstream(&["Half ", "an "], true).await;
    let (app, t, id) = app_on(&base).await;
    let body = app
        .post(
            &format!("/api/v1/conversations/{id}/messages"),
            &t.key,
            &json!({"content": "Hi"}),
        )
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(
        body.status(),
        StatusCode::OK,
        "the stream started, so the failure is an event, not a 5xx"
    );
    let text = body.text().await.unwrap();
    assert!(
        text.contains("event: error") && text.contains("model_unreachable"),
        "{text}"
    );
    assert!(text.contains("\"status\":\"failed\""), "{text}");
    let conversation = expect(
        app.get(
            &format!("/api/v1/conversations/{id}?order=desc&limit=1"),
            &t.key,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    let answer = &conversation["messages"]["data"][0];
    assert_eq!(answer["finish_reason"], "error");
    assert!(
        answer["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Half"),
        "{answer}"
    );
    // The run's trace says why, with the same code.
    let run = crate::turns::parse_sse(&text)
        .into_iter()
        .find(|(_, name, _)| name == "run.started")
        .map(|(_, _, data)| data["run_id"].as_str().unwrap().to_owned())
        .unwrap();
    let trace = expect(
        app.get(&format!("/api/v1/runs/{run}"), &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(trace["status"], "failed");
    assert_eq!(trace["error"]["code"], "model_unreachable", "{trace}");
    app.stop().await;
}
