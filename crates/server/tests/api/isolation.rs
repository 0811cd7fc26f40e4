//! Tenant isolation: with tenant B's key, every route that takes an id of tenant A's objects
//! answers 404, lists never show A's objects, and A's objects are unchanged afterwards.
//! New routes that take ids join the table in `routes_with_ids`.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{expect, expect_error, ScriptedModel, TestApp, TestAppBuilder};

/// Every route that names one of A's objects, with a body where it needs one.
fn routes_with_ids(
    agent_id: &str,
    key_id: &str,
    conversation_id: &str,
    run_id: &str,
    message_id: &str,
) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, format!("/api/v1/agents/{agent_id}"), None),
        (Method::GET, "/api/v1/agents/support".to_owned(), None),
        (
            Method::PATCH,
            format!("/api/v1/agents/{agent_id}"),
            Some(json!({"name": "Hijacked"})),
        ),
        (Method::DELETE, format!("/api/v1/agents/{agent_id}"), None),
        (
            Method::GET,
            format!("/api/v1/agents/{agent_id}/versions"),
            None,
        ),
        (Method::DELETE, format!("/api/v1/api-keys/{key_id}"), None),
        (
            Method::GET,
            format!("/api/v1/conversations/{conversation_id}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/conversations/{conversation_id}/messages"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/conversations/{conversation_id}"),
            Some(json!({"title": "Hijacked"})),
        ),
        (
            Method::GET,
            format!("/api/v1/conversations/{conversation_id}/export"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/conversations/{conversation_id}/export?format=markdown"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/conversations/{conversation_id}"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/conversations/{conversation_id}?purge=true"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{conversation_id}/messages"),
            Some(json!({"content": "hi"})),
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{conversation_id}/messages/{message_id}/regenerate"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{conversation_id}/messages/{message_id}/edit"),
            Some(json!({"content": "hi"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/conversations/{conversation_id}"),
            Some(json!({"active_message_id": message_id})),
        ),
        (Method::GET, format!("/api/v1/runs/{run_id}/events"), None),
        (Method::POST, format!("/api/v1/runs/{run_id}/cancel"), None),
        (Method::GET, format!("/api/v1/runs/{run_id}"), None),
        (
            Method::POST,
            format!("/api/v1/runs/{run_id}/approvals/call_1"),
            Some(json!({"decision": "approve"})),
        ),
    ]
}

async fn another_tenant_sees_nothing(builder: TestAppBuilder) {
    let app = builder.spawn().await;
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let agent = app.agent(&a, "support").await;
    let conversation = app
        .conversation(&a, "support", &["my secret order 4711", "noted"])
        .await;
    let key = expect(
        app.post(
            "/api/v1/api-keys",
            &a.key,
            &json!({"kind": "secret", "name": "A's"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let result = expect(
        app.post(
            &format!(
                "/api/v1/conversations/{}/messages",
                conversation["id"].as_str().unwrap()
            ),
            &a.key,
            &json!({"content": "where is order 4711?"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    let run_id = result["run_id"].as_str().unwrap().to_owned();
    let message_id = result["message"]["parent_id"].as_str().unwrap().to_owned();
    let (agent_id, key_id, conversation_id) = (
        agent["id"].as_str().unwrap(),
        key["id"].as_str().unwrap(),
        conversation["id"].as_str().unwrap(),
    );

    for (method, path, body) in
        routes_with_ids(agent_id, key_id, conversation_id, &run_id, &message_id)
    {
        let mut request = app.request(method.clone(), &path, &b.key);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let text = format!("{method} {path}");
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{text} answered {status}: {body}"
        );
        assert!(
            !body.contains("4711") && !body.contains(agent_id) && !body.contains(conversation_id),
            "{text} leaked: {body}"
        );
    }

    // Lists and search show none of A's objects.
    for path in [
        "/api/v1/agents",
        "/api/v1/api-keys",
        "/api/v1/conversations?archived=all",
        "/api/v1/conversations?q=4711",
        "/api/v1/conversations?agent=support",
    ] {
        let body = app
            .get(path, &b.key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !body.contains(agent_id) && !body.contains(conversation_id) && !body.contains(key_id),
            "{path} leaked: {body}"
        );
    }
    // B creating a conversation with A's agent id fails as an unknown agent.
    let error = expect_error(
        app.post("/api/v1/conversations", &b.key, &json!({"agent": agent_id}))
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_eq!(error["field"], "agent");

    // A's objects are untouched.
    let agent_after = expect(
        app.get(&format!("/api/v1/agents/{agent_id}"), &a.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(agent_after, agent);
    let conversation_after = expect(
        app.get(&format!("/api/v1/conversations/{conversation_id}"), &a.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(conversation_after["title"], "my secret order 4711");
    assert_eq!(
        conversation_after["message_count"], 4,
        "two seeded messages and A's own turn"
    );
    expect(
        app.get("/api/v1/agents", key["key"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn isolation_on_sqlite() {
    another_tenant_sees_nothing(
        TestApp::builder().provider("local", ScriptedModel::saying(&["noted"])),
    )
    .await;
}

#[tokio::test]
async fn isolation_on_postgres() {
    another_tenant_sees_nothing(
        TestApp::builder()
            .postgres()
            .provider("local", ScriptedModel::saying(&["noted"])),
    )
    .await;
}
