//! The operator's tenant API.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{expect, expect_error, TestApp};

const ADMIN: &str = "operator-token-0123456789";

#[tokio::test]
async fn the_operator_creates_tenants_that_work_at_once() {
    let app = TestApp::builder().admin_token(ADMIN).spawn().await;
    let body = json!({"name": "Globex", "owner_email": "boss@globex.example"});
    let created = expect(
        app.post("/api/v1/tenants", ADMIN, &body)
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    assert!(created["tenant"]["id"]
        .as_str()
        .unwrap()
        .starts_with("ten_"));
    assert_eq!(created["owner"]["user"]["email"], "boss@globex.example");
    assert_eq!(created["owner"]["role"], "owner");
    assert_eq!(created["owner"]["password"].as_str().unwrap().len(), 20);
    assert!(created["owner"]["user"].get("password_hash").is_none());
    let key = created["secret_key"]["key"].as_str().unwrap();
    expect(
        app.get("/api/v1/agents", key).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;

    expect_error(
        app.post("/api/v1/tenants", "wrong-token-0123456789", &body)
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid_admin_token",
    )
    .await;
    // A tenant's own secret key is not the operator's.
    expect_error(
        app.post("/api/v1/tenants", key, &body)
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid_admin_token",
    )
    .await;
    expect_error(
        app.post("/api/v1/tenants", ADMIN, &json!({"name": ""}))
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn without_an_admin_token_the_operator_api_is_off() {
    let app = TestApp::spawn().await;
    expect_error(
        app.post(
            "/api/v1/tenants",
            "anything-at-all-0123",
            &json!({"name": "X"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::FORBIDDEN,
        "admin_api_disabled",
    )
    .await;
    // Without any credentials it is a 401, as everywhere.
    expect_error(
        app.client
            .post(format!("{}/api/v1/tenants", app.base))
            .json(&json!({"name": "X"}))
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "missing_admin_token",
    )
    .await;
    app.stop().await;
}
