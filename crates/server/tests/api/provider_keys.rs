//! Provider keys tenants bring: stored sealed, listed by hint only, used for that tenant's
//! turns and nobody else's, never in a response, and refused without a master key.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{expect, expect_error, RecordingModel, TestApp};

const SECRET: &str = "sk-tenant-a-0123456789abcdef";

#[tokio::test]
async fn a_tenant_key_is_sealed_and_used_only_for_that_tenant() {
    let model = RecordingModel::new("hi", None);
    let app = TestApp::builder()
        .provider("openai", model.clone())
        .spawn()
        .await;
    let (a, conv_a) = app.chat("openai/gpt-4.1-mini").await;
    let (b, conv_b) = app.chat("openai/gpt-4.1-mini").await;

    let stored = expect(
        app.request(reqwest::Method::PUT, "/api/v1/provider-keys/openai", &a.key)
            .json(&json!({"api_key": SECRET}))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(stored["provider"], "openai");
    assert_eq!(stored["hint"], "sk-…cdef");
    let listed = expect(
        app.get("/api/v1/provider-keys", &a.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains("0123456789"));
    // Sealed at rest: the database holds no trace of the key.
    let sealed = app.store_sealed(&a.id).await;
    assert_eq!(sealed.len(), 1);
    assert!(sealed[0].1.starts_with("v1:") && !sealed[0].1.contains("0123456789"));

    // Tenant A's turns carry its key; tenant B's use the operator's (none here).
    for (tenant, conv) in [(&a, &conv_a), (&b, &conv_b)] {
        expect(
            app.post(
                &format!("/api/v1/conversations/{conv}/messages"),
                &tenant.key,
                &json!({"content": "Hi"}),
            )
            .send()
            .await
            .unwrap(),
            StatusCode::OK,
        )
        .await;
    }
    let requests = model.requests();
    assert_eq!(
        requests[0].api_key.as_ref().map(|k| k.expose().to_owned()),
        Some(SECRET.to_owned())
    );
    assert!(requests[1].api_key.is_none());
    assert!(
        !format!("{:?}", requests[0]).contains("0123456789"),
        "Debug never prints the key"
    );

    // B sees none of A's keys and cannot delete them.
    let listed_b = expect(
        app.get("/api/v1/provider-keys", &b.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed_b["data"], json!([]));
    expect_error(
        app.delete("/api/v1/provider-keys/openai", &b.key)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Bad input: unknown provider, empty or spaced key, unknown fields.
    for (path, body, status) in [
        (
            "/api/v1/provider-keys/nope",
            json!({"api_key": SECRET}),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/provider-keys/openai",
            json!({"api_key": "  "}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/provider-keys/openai",
            json!({"api_key": "sk abc def"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/provider-keys/openai",
            json!({"api_key": "x".repeat(600)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/provider-keys/openai",
            json!({"key": SECRET}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let response = app
            .request(reqwest::Method::PUT, path, &a.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{path} {body}");
        let text = response.text().await.unwrap();
        assert!(!text.contains("0123456789"), "{text}");
    }

    // Deleting it sends A's turns back to the operator's key.
    expect(
        app.delete("/api/v1/provider-keys/openai", &a.key)
            .send()
            .await
            .unwrap(),
        StatusCode::NO_CONTENT,
    )
    .await;
    expect(
        app.post(
            &format!("/api/v1/conversations/{conv_a}/messages"),
            &a.key,
            &json!({"content": "Again"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(model.requests()[2].api_key.is_none());
    app.stop().await;
}

#[tokio::test]
async fn without_a_master_key_provider_keys_are_refused() {
    let app = TestApp::builder()
        .provider("openai", RecordingModel::new("hi", None))
        .no_master_key()
        .spawn()
        .await;
    let t = app.tenant("Acme").await;
    expect_error(
        app.request(reqwest::Method::PUT, "/api/v1/provider-keys/openai", &t.key)
            .json(&json!({"api_key": SECRET}))
            .send()
            .await
            .unwrap(),
        StatusCode::CONFLICT,
        "master_key_required",
    )
    .await;
    app.stop().await;
}
