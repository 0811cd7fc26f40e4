//! Metrics, in a test process of their own: the Prometheus recorder is process-wide, so the
//! counts read here are exactly what this test did (in the API suite other tests add theirs,
//! and a count there could pass on another test's requests).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failure should fail loudly.

#[allow(dead_code)]
#[path = "api/common.rs"]
mod common;

use common::{ScriptedModel, TestApp};
use reqwest::StatusCode;

/// The value of the sample named exactly `series` (0 when absent).
fn sample(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0, |value| value.trim().parse::<f64>().unwrap() as u64)
}

#[tokio::test]
async fn requests_and_event_waits_are_counted_exactly() {
    let app = TestApp::builder()
        .provider("script", ScriptedModel::saying(&["Hello", " there"]))
        .spawn()
        .await;
    let (t, conversation) = app.chat("script/m").await;
    let scrape = || async {
        app.client
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let ok = "http_requests_total{method=\"GET\",route=\"/api/v1/agents\",status=\"200\"}";
    let refused = "http_requests_total{method=\"GET\",route=\"/api/v1/agents\",status=\"401\"}";
    let waits = "frontdesk_run_event_wait_seconds_count";
    let before = scrape().await;
    assert_eq!(sample(&before, ok), 0, "{before}");
    for _ in 0..3 {
        let response = app.get("/api/v1/agents", &t.key).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = app
        .client
        .get(format!("{}/api/v1/agents", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // One streamed turn: its five events are taken by this client's connection.
    let response = app
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            &t.key,
            &serde_json::json!({"content": "Hi"}),
        )
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let body = response.text().await.unwrap();
    assert_eq!(
        body.matches("\nevent: ").count() + usize::from(body.starts_with("event: ")),
        5,
        "{body}"
    );
    let after = scrape().await;
    assert_eq!(sample(&after, ok), 3, "{after}");
    assert_eq!(sample(&after, refused), 1, "{after}");
    assert_eq!(sample(&after, waits) - sample(&before, waits), 5, "{after}");
    assert!(
        after.contains("http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/agents\",le=\"0.005\"}"),
        "{after}"
    );
    app.stop().await;
}
