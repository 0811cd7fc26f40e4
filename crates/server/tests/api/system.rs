//! Health, readiness, metrics, and the OpenAPI document and docs page.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{expect, TestApp};

#[tokio::test]
async fn health_ready_and_metrics() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let health = expect(
        app.client
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(health["status"], "ok");
    let ready = expect(
        app.client
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(ready["store"], "sqlite");

    expect(
        app.get("/api/v1/agents", &t.key).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let _ = app
        .client
        .get(format!("{}/api/v1/agents", app.base))
        .send()
        .await
        .unwrap();
    let response = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert!(response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_"));
    let metrics = response.text().await.unwrap();
    assert!(
        metrics.contains(
            "http_requests_total{method=\"GET\",route=\"/api/v1/agents\",status=\"200\"}"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("route=\"/api/v1/agents\",status=\"401\""),
        "{metrics}"
    );
    assert!(metrics.contains("http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/agents\",le=\"0.005\"}"), "{metrics}");
    app.stop().await;
}

#[tokio::test]
async fn metrics_can_require_a_token() {
    let app = TestApp::builder()
        .metrics_token("scrape-token-0123456789")
        .spawn()
        .await;
    let url = format!("{}/metrics", app.base);
    let response = app.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = app
        .client
        .get(&url)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = app
        .client
        .get(&url)
        .bearer_auth("scrape-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Odd methods are counted under one label, not one series each.
    let odd = reqwest::Method::from_bytes(b"BREW").unwrap();
    let _ = app
        .client
        .request(odd, format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    let text = app
        .client
        .get(&url)
        .bearer_auth("scrape-token-0123456789")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !text.contains("BREW") && text.contains("method=\"other\""),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn readiness_fails_when_the_store_is_gone() {
    let app = TestApp::spawn().await;
    app.service.store().ping().await.unwrap();
    app.stop_store().await;
    let response = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    app.stop().await;
}

#[tokio::test]
async fn openapi_document_covers_the_api_and_renders_as_docs() {
    let app = TestApp::spawn().await;
    let doc = expect(
        app.client
            .get(format!("{}/api/v1/openapi.json", app.base))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    // Every operation lists the errors it can answer, with the error schema: 401 and 429
    // where it takes credentials, 400/408/413/422 where it takes a body.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = &op["responses"];
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let with_body = op.get("requestBody").is_some();
            let mut expected = Vec::new();
            if secured {
                expected.extend(["401", "429"]);
            }
            if with_body {
                expected.extend(["400", "408", "413", "422"]);
            }
            for status in expected {
                assert!(
                    responses.get(status).is_some(),
                    "{method} {path} does not list {status}"
                );
            }
        }
    }
    assert_eq!(
        doc["components"]["schemas"]["Error"]["required"],
        serde_json::json!(["error"])
    );
    for (path, methods) in [
        ("/api/v1/agents", &["get", "post"][..]),
        ("/api/v1/agents/{agent}", &["get", "patch", "delete"]),
        ("/api/v1/agents/{agent}/versions", &["get"]),
        ("/api/v1/api-keys", &["get", "post"]),
        ("/api/v1/api-keys/{key}", &["delete"]),
        ("/api/v1/conversations", &["get", "post"]),
        (
            "/api/v1/conversations/{conversation}",
            &["get", "patch", "delete"],
        ),
        (
            "/api/v1/conversations/{conversation}/messages",
            &["get", "post"],
        ),
        ("/api/v1/conversations/{conversation}/export", &["get"]),
        ("/api/v1/conversations/{conversation}/takeover", &["post"]),
        (
            "/api/v1/conversations/{conversation}/staff-messages",
            &["post"],
        ),
        ("/api/v1/conversations/{conversation}/handback", &["post"]),
        ("/api/v1/conversations/{conversation}/typing", &["post"]),
        ("/api/v1/conversations/{conversation}/events", &["get"]),
        ("/api/v1/calls", &["get", "post"]),
        ("/api/v1/calls/{call}", &["get"]),
        ("/api/v1/agents/{agent}/realtime-client-secrets", &["post"]),
        ("/api/v1/tenants", &["post"]),
        (
            "/api/v1/conversations/{conversation}/messages/{message}/regenerate",
            &["post"],
        ),
        (
            "/api/v1/conversations/{conversation}/messages/{message}/edit",
            &["post"],
        ),
        ("/api/v1/messages", &["post"]),
        ("/api/v1/provider-keys", &["get"]),
        ("/api/v1/provider-keys/{provider}", &["put", "delete"]),
        ("/api/v1/runs/{run}/events", &["get"]),
        ("/api/v1/runs/{run}/cancel", &["post"]),
        ("/api/v1/runs/{run}", &["get"]),
        ("/api/v1/runs/{run}/approvals/{call_id}", &["post"]),
        ("/api/v1/secrets", &["get"]),
        ("/api/v1/secrets/{name}", &["put", "delete"]),
        ("/api/v1/webhook-signing-secret", &["get"]),
        ("/api/v1/webhook-signing-secret/rotate", &["post"]),
        ("/api/v1/widget-identity-secret", &["get"]),
        ("/api/v1/widget-identity-secret/rotate", &["post"]),
        ("/api/v1/mcp/refresh", &["post"]),
        ("/api/v1/usage", &["get"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
        ("/metrics", &["get"]),
    ] {
        for method in methods {
            assert!(
                paths.get(path).and_then(|p| p.get(*method)).is_some(),
                "{method} {path} missing from the OpenAPI document"
            );
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "Agent",
        "AgentSpec",
        "Conversation",
        "Message",
        "ApiKey",
        "NewKey",
        "ToolEntry",
    ] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
    assert!(doc["components"]["securitySchemes"]["secret_key"].is_object());

    let docs = app
        .client
        .get(format!("{}/api/v1/docs", app.base))
        .send()
        .await
        .unwrap();
    assert!(docs.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = docs.text().await.unwrap();
    assert!(
        html.contains("/api/v1/conversations/{conversation}/export")
            && html.contains("Exports a whole conversation"),
        "{html}"
    );
    // Per operation: its request body's fields, its responses with their schemas, and an
    // example request with the body's required fields.
    let create = &html[html.find("id=\"frontdesk_api-create_agent\"").unwrap()..];
    let create = &create[..create.find("</section>").unwrap()];
    for part in [
        "Request body",
        "<code>slug</code> *",
        "pattern ^[a-z0-9][a-z0-9-]{0,63}$",
        "<td>201</td>",
        "schema-Agent",
        "<td>422</td>",
        "Example request",
        "curl -X POST &quot;$FRONTDESK_URL/api/v1/agents&quot;",
        "Authorization: Bearer $FRONTDESK_KEY",
    ] {
        assert!(create.contains(part), "{part} missing from {create}");
    }
    // The protocol endpoints are there too, with their own document.
    for part in [
        "/openai/v1/chat/completions",
        "/api/v1/ai-sdk/chat/{agent}",
        "/chatkit",
        "/widget/v1/session",
        "/api/v1/openapi/protocols.json",
    ] {
        assert!(html.contains(part), "{part} missing from the docs page");
    }
    let protocols: Value = app
        .client
        .get(format!("{}/api/v1/openapi/protocols.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (path, method) in [
        ("/openai/v1/models", "get"),
        ("/openai/v1/models/{model}", "get"),
        ("/openai/v1/chat/completions", "post"),
        ("/openai/v1/responses", "post"),
        ("/openai/v1/responses/{id}", "get"),
        ("/api/v1/ai-sdk/chat/{agent}", "post"),
        ("/chatkit", "post"),
        ("/widget/v1/session", "post"),
        ("/widget/v1/conversations", "get"),
        ("/widget/v1/conversations", "post"),
        ("/widget/v1/conversations/{conversation}", "get"),
        ("/widget/v1/conversations/{conversation}/messages", "post"),
        ("/widget/v1/conversations/{conversation}/events", "get"),
        ("/widget/v1/conversations/{conversation}/human", "post"),
        (
            "/widget/v1/conversations/{conversation}/messages/{message}/regenerate",
            "post",
        ),
        ("/widget/v1/runs/{run}/events", "get"),
        ("/widget/v1/runs/{run}/cancel", "post"),
        ("/widget/v1/runs/{run}/approvals/{call_id}", "post"),
    ] {
        assert!(
            protocols["paths"][path][method].is_object(),
            "{method} {path} missing from the protocols document"
        );
    }
    for scheme in ["secret_key", "visitor_token", "publishable_key"] {
        assert!(protocols["components"]["securitySchemes"][scheme].is_object());
    }
    app.stop().await;
}

/// Every response says `nosniff` and sends no referrer; every HTML page has a content security
/// policy that forbids framing (the pages without their own get the default one).
#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let responses = [
        app.client
            .get(format!("{}/", app.base))
            .send()
            .await
            .unwrap(),
        app.client
            .get(format!("{}/api/v1/docs", app.base))
            .send()
            .await
            .unwrap(),
        app.client
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .unwrap(),
        app.client
            .get(format!("{}/widget.js", app.base))
            .send()
            .await
            .unwrap(),
        app.client
            .get(format!("{}/api/v1/agents", app.base))
            .send()
            .await
            .unwrap(),
        app.get("/api/v1/agents", &t.key).send().await.unwrap(),
    ];
    for response in responses {
        let url = response.url().to_string();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{url}");
        // The dashboard (where `/` leads) keeps referrers to itself, so its forms carry
        // their origin; everything else sends none.
        let policy = if response.url().path() == "/login" {
            "same-origin"
        } else {
            "no-referrer"
        };
        assert_eq!(headers["referrer-policy"], policy, "{url}");
        let html = headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html");
        if html {
            let csp = headers["content-security-policy"].to_str().unwrap();
            assert!(
                csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
                "{url}: {csp}"
            );
        }
    }
}

/// A `PATCH` may say what it is: a JSON merge patch (RFC 7396).
#[tokio::test]
async fn a_patch_takes_the_merge_patch_media_type() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    expect(
        app.post(
            "/api/v1/agents",
            &t.key,
            &json!({"slug": "support", "name": "Support"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let patched = expect(
        app.request(reqwest::Method::PATCH, "/api/v1/agents/support", &t.key)
            .header("content-type", "application/merge-patch+json")
            .body(json!({"name": "Front desk"}).to_string())
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(patched["name"], "Front desk", "{patched}");
    let refused = app
        .request(reqwest::Method::PATCH, "/api/v1/agents/support", &t.key)
        .header("content-type", "text/plain")
        .body(json!({"name": "X"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
}

/// Responses are compressed when the client takes it (gzip or brotli), event streams never
/// (they would buffer); static assets revalidate by `ETag`.
#[tokio::test]
async fn responses_are_compressed_and_assets_revalidate() {
    let app = TestApp::spawn().await;
    let plain = app
        .client
        .get(format!("{}/widget.js", app.base))
        .send()
        .await
        .unwrap();
    let etag = plain.headers()["etag"].to_str().unwrap().to_owned();
    let size = plain.bytes().await.unwrap().len();
    for encoding in ["gzip", "br"] {
        let packed = app
            .client
            .get(format!("{}/widget.js", app.base))
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(packed.headers()["content-encoding"], encoding);
        let packed_size = packed.bytes().await.unwrap().len();
        assert!(
            packed_size * 2 < size,
            "{encoding}: {packed_size} of {size}"
        );
    }
    let unchanged = app
        .client
        .get(format!("{}/widget.js", app.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
    assert!(unchanged.bytes().await.unwrap().is_empty());
    // A run's event stream is never compressed.
    let app = TestApp::builder()
        .provider(
            "script",
            std::sync::Arc::new(crate::common::ScriptedModel {
                words: vec!["Hello", " there"],
                pause_ms: 0,
                fail: None,
            }),
        )
        .spawn()
        .await;
    let (t, conversation) = app.chat("script/m").await;
    let stream = app
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            &t.key,
            &json!({"content": "Hi"}),
        )
        .header("accept", "text/event-stream")
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert!(stream.headers().get("content-encoding").is_none());
    let body = stream.text().await.unwrap();
    assert!(body.contains("event: run.completed"), "{body}");
}
