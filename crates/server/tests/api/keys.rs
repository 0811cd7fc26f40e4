//! API keys over HTTP: shown once, listed without secrets, revoked at once, rate limited.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{expect, expect_error, TestApp};

#[tokio::test]
async fn keys_are_shown_once_and_revocation_is_immediate() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    app.agent(&t, "support").await;

    let created = expect(
        app.post(
            "/api/v1/api-keys",
            &t.key,
            &json!({"kind": "secret", "name": "CI"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let secret = created["key"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("fd_sk_"));
    assert!(secret.starts_with(created["prefix"].as_str().unwrap()));
    assert!(created["id"].as_str().unwrap().starts_with("key_"));

    let publishable = expect(
        app.post(
            "/api/v1/api-keys",
            &t.key,
            &json!({"kind": "publishable", "name": "Site", "allowed_origins": ["https://Shop.example.com/"], "allowed_agents": ["support"]}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    assert!(publishable["key"].as_str().unwrap().starts_with("fd_pk_"));
    assert_eq!(
        publishable["allowed_origins"],
        json!(["https://shop.example.com"])
    );

    // Listing never shows a key.
    let list = app
        .get("/api/v1/api-keys", &t.key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !list.contains(&secret)
            && !list.contains(publishable["key"].as_str().unwrap())
            && !list.contains(&t.key)
    );
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 3);
    assert!(list["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k.get("key").is_none()));

    // The new key works; a publishable key is refused on the secret API.
    expect(
        app.get("/api/v1/agents", &secret).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    expect_error(
        app.get("/api/v1/agents", publishable["key"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
        "publishable_key_not_allowed",
    )
    .await;

    // Revoked: 401 at once, and the record says when.
    let id = created["id"].as_str().unwrap();
    let revoked = expect(
        app.delete(&format!("/api/v1/api-keys/{id}"), &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(revoked["revoked_at"].is_string());
    expect_error(
        app.get("/api/v1/agents", &secret).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "revoked_api_key",
    )
    .await;

    // Rules of key creation.
    let cases = [
        (json!({"kind": "publishable"}), "allowed_origins"),
        (
            json!({"kind": "publishable", "allowed_origins": ["shop.example.com"]}),
            "allowed_origins[0]",
        ),
        (
            json!({"kind": "publishable", "allowed_origins": ["https://a.example"], "allowed_agents": ["ghost"]}),
            "allowed_agents[0]",
        ),
        (
            json!({"kind": "secret", "allowed_origins": ["https://a.example"]}),
            "allowed_origins",
        ),
        (json!({"kind": "master"}), "kind"),
    ];
    for (body, field) in cases {
        let error = expect_error(
            app.post("/api/v1/api-keys", &t.key, &body)
                .send()
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
        assert_eq!(error["field"], field, "{body}: {error}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_key_over_its_rate_limit_gets_429_with_retry_after() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let limited = expect(
        app.post(
            "/api/v1/api-keys",
            &t.key,
            &json!({"kind": "secret", "rate_limit_per_minute": 3}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let key = limited["key"].as_str().unwrap();
    for _ in 0..3 {
        expect(
            app.get("/api/v1/agents", key).send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
    }
    let response = app.get("/api/v1/agents", key).send().await.unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    expect_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Other keys of the tenant are not affected.
    expect(
        app.get("/api/v1/agents", &t.key).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    app.stop().await;
}

/// Failed authentications back off per client address: once its budget is spent, requests
/// with credentials from that address answer 429 with `Retry-After` (a right key too, until
/// it refills); requests without credentials are not affected.
#[tokio::test]
async fn failed_authentication_backs_off_per_address() {
    let app = crate::common::TestApp::builder()
        .limits(|limits| limits.auth_failures_per_minute = 5)
        .admin_token("operator-token-123")
        .spawn()
        .await;
    let t = app.tenant("Acme").await;
    // Refused visitor tokens (signed, so never guessed; expired ones are a widget's everyday
    // 401) do not count.
    for _ in 0..10 {
        let response = app
            .client
            .get(format!("{}/widget/v1/conversations", app.base))
            .bearer_auth("fdv1.expired.token")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        app.get("/api/v1/agents", &t.key)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    for n in 0..3 {
        let response = app
            .get("/api/v1/agents", &format!("fd_sk_wrong{n}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "try {n}");
    }
    // A guessed key counts also beside a (made-up) visitor token: what was refused decides.
    for n in 0..2 {
        let response = app
            .client
            .post(format!("{}/widget/v1/session", app.base))
            .bearer_auth("fdv1.x.y")
            .header("x-frontdesk-key", format!("fd_pk_guess{n}"))
            .json(&json!({"agent": "support"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "guess {n}");
    }
    let refused = app
        .get("/api/v1/agents", "fd_sk_wrong_again")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // The operator token is guarded the same way, and so is a right key from there, for now.
    let admin = app
        .client
        .post(format!("{}/api/v1/tenants", app.base))
        .bearer_auth("operator-token-123")
        .json(&json!({"name": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::TOO_MANY_REQUESTS);
    let right = app.get("/api/v1/agents", &t.key).send().await.unwrap();
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
    let open = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), StatusCode::OK);
}
