//! Bad input gets a precise 4xx and writes nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{expect, expect_error, TestApp};

#[tokio::test]
async fn malformed_requests_get_precise_errors() {
    let app = TestApp::builder().max_body_bytes(64 * 1024).spawn().await;
    let t = app.tenant("Acme").await;
    app.agent(&t, "support").await;

    // Malformed JSON.
    let response = app
        .request(Method::POST, "/api/v1/agents", &t.key)
        .header("content-type", "application/json")
        .body("{\"slug\": ")
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::BAD_REQUEST, "invalid_json").await;
    // Not JSON at all.
    let response = app
        .request(Method::POST, "/api/v1/agents", &t.key)
        .body("slug=x")
        .send()
        .await
        .unwrap();
    expect_error(
        response,
        StatusCode::BAD_REQUEST,
        "unsupported_content_type",
    )
    .await;
    // A JSON array where an object is expected.
    let error = expect_error(
        app.post("/api/v1/conversations", &t.key, &json!([1, 2]))
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_eq!(error["field"], "body");
    // Wrong types and unknown fields name the field.
    let error = expect_error(
        app.post("/api/v1/conversations", &t.key, &json!({"agent": 7}))
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_eq!(error["field"], "agent");
    let error = expect_error(
        app.post(
            "/api/v1/conversations",
            &t.key,
            &json!({"agent": "support", "colour": "red"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_eq!(error["field"], "colour");
    let error = expect_error(
        app.post(
            "/api/v1/conversations",
            &t.key,
            &json!({"agent": "support", "title": "x".repeat(201)}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_eq!(error["field"], "title");
    let metadata: serde_json::Map<String, serde_json::Value> =
        (0..100).map(|n| (format!("k{n}"), json!(n))).collect();
    let error = expect_error(
        app.post(
            "/api/v1/conversations",
            &t.key,
            &json!({"agent": "support", "metadata": metadata}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_eq!(error["field"], "metadata");
    // Oversized body.
    let big = json!({"slug": "big", "name": "Big", "instructions": "x".repeat(70 * 1024)});
    expect_error(
        app.post("/api/v1/agents", &t.key, &big)
            .send()
            .await
            .unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;

    // Query strings.
    expect_error(
        app.get("/api/v1/conversations?cursor=garbage!", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
    )
    .await;
    expect_error(
        app.get("/api/v1/conversations?cursor=MTIz", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
    )
    .await;
    let error = expect_error(
        app.get("/api/v1/conversations?limit=0", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_eq!(error["field"], "limit");
    expect_error(
        app.get("/api/v1/conversations?limit=100000", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    expect_error(
        app.get("/api/v1/conversations?limit=ten", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    expect_error(
        app.get("/api/v1/conversations?archived=maybe", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    expect_error(
        app.get("/api/v1/conversations?sort=asc", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    expect_error(
        app.get(
            &format!("/api/v1/conversations?q={}", "a".repeat(201)),
            &t.key,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;

    // Malformed ids cannot exist: 404.
    expect_error(
        app.get("/api/v1/conversations/conv_nope", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        app.get("/api/v1/agents/NOT%20A%20SLUG", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        app.delete("/api/v1/api-keys/key_123", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // Unknown routes and methods.
    expect_error(
        app.get("/api/v1/nothing-here", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        app.request(Method::PUT, "/api/v1/agents", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;

    // Nothing was written by any of it.
    let agents = expect(
        app.get("/api/v1/agents", &t.key).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(agents["data"].as_array().unwrap().len(), 1);
    let conversations = expect(
        app.get("/api/v1/conversations?archived=all", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(conversations["data"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn bad_credentials_are_401() {
    let app = TestApp::spawn().await;
    let client = &app.client;
    let url = format!("{}/api/v1/agents", app.base);
    expect_error(
        client.get(&url).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "missing_api_key",
    )
    .await;
    expect_error(
        client
            .get(&url)
            .header("authorization", "Basic Zm9vOmJhcg==")
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid_authorization",
    )
    .await;
    expect_error(
        client
            .get(&url)
            .bearer_auth("sk-not-ours")
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    )
    .await;
    expect_error(
        client
            .get(&url)
            .bearer_auth("fd_sk_00000000000000000000000000000000")
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    )
    .await;
    app.stop().await;
}

/// A body that trickles in (a byte every second against a declared kilobyte) is cut off with
/// 408 once its time is up, also on a route that needs no credentials; the connection does
/// not stay held.
#[tokio::test]
async fn a_body_that_trickles_in_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    socket
        .write_all(
            format!(
                "POST /widget/v1/session HTTP/1.1\r\nHost: {address}\r\nOrigin: {}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{",
                app.base
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let trickle = async {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            if socket.write_all(b" ").await.is_err() {
                break;
            }
            let mut peek = [0u8; 1];
            if let Ok(Ok(n)) =
                tokio::time::timeout(std::time::Duration::from_millis(10), socket.peek(&mut peek))
                    .await
            {
                if n > 0 {
                    break;
                }
            }
        }
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            socket.read_to_end(&mut answer),
        )
        .await;
        answer
    };
    let answer = tokio::time::timeout(std::time::Duration::from_secs(40), trickle)
        .await
        .expect("the server answered a trickled body in time");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"), "{text}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(9));
}

/// A request whose credentials are wrong is answered from its headers: the server does not
/// wait for a body it would refuse anyway (ChatKit, a widget session with a key, a hosted
/// page's session from a page elsewhere).
#[tokio::test]
async fn wrong_credentials_are_refused_before_the_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let address = app.base.trim_start_matches("http://").to_owned();
    for (path, credentials, status) in [
        ("/chatkit", "Authorization: Bearer fd_sk_not_a_key", "401"),
        ("/chatkit", "Authorization: Bearer fdv1.forged.token", "401"),
        (
            "/widget/v1/session",
            "X-Frontdesk-Key: fd_pk_not_a_key",
            "401",
        ),
        (
            "/widget/v1/session",
            "Origin: https://elsewhere.example",
            "403",
        ),
        ("/widget/v1/session", "X-No-Origin: 1", "403"),
    ] {
        let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
        socket
            .write_all(
                format!(
                    "POST {path} HTTP/1.1\r\nHost: {address}\r\n{credentials}\r\n\
                     Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let mut head = [0u8; 12];
        // The body never comes: an answer within a few seconds can only be from the headers.
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            socket.read_exact(&mut head),
        )
        .await
        .unwrap_or_else(|_| panic!("{path} waited for the body"))
        .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&head),
            format!("HTTP/1.1 {status}"),
            "{path} {credentials}"
        );
    }
}
