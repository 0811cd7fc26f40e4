//! Tenant isolation: with tenant B's key, every route that takes an id of tenant A's objects
//! answers 404, lists never show A's objects, and A's objects are unchanged afterwards.
//! New routes that take ids join the table in `routes_with_ids`.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{expect, expect_error, ScriptedModel, TestApp, TestAppBuilder, TestTenant};

/// Every route that names one of A's objects, with a body where it needs one.
#[allow(clippy::too_many_arguments)]
fn routes_with_ids(
    agent_id: &str,
    key_id: &str,
    conversation_id: &str,
    run_id: &str,
    message_id: &str,
    kb_id: &str,
    doc_id: &str,
    call_id: &str,
) -> Vec<(Method, String, Option<Value>)> {
    let kb_docs = format!("/api/v1/knowledge-bases/{kb_id}/documents");
    vec![
        (Method::GET, format!("/api/v1/calls/{call_id}"), None),
        (
            Method::POST,
            format!("/api/v1/agents/{agent_id}/realtime-client-secrets"),
            None,
        ),
        (Method::GET, kb_docs.clone(), None),
        (
            Method::GET,
            "/api/v1/knowledge-bases/secret-4711/documents".to_owned(),
            None,
        ),
        (Method::POST, kb_docs.clone(), Some(json!({"text": "x"}))),
        (Method::GET, format!("{kb_docs}/{doc_id}"), None),
        (Method::DELETE, format!("{kb_docs}/{doc_id}"), None),
        (Method::POST, format!("{kb_docs}/{doc_id}/retry"), None),
        (
            Method::POST,
            format!("/api/v1/knowledge-bases/{kb_id}/query"),
            Some(json!({"query": "order 4711"})),
        ),
        (
            Method::GET,
            format!("/api/v1/knowledge-bases/{kb_id}"),
            None,
        ),
        (
            Method::GET,
            "/api/v1/knowledge-bases/secret-4711".to_owned(),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/knowledge-bases/{kb_id}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{conversation_id}/takeover"),
            Some(json!({"assignee": {"id": "b-staff", "name": "B"}})),
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{conversation_id}/staff-messages"),
            Some(json!({"content": "from B", "assignee": {"id": "b-staff", "name": "B"}})),
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{conversation_id}/staff-messages"),
            Some(
                json!({"content": "note from B", "internal": true, "assignee": {"id": "b-staff", "name": "B"}}),
            ),
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{conversation_id}/handback"),
            Some(json!({"assignee": {"id": "b-staff", "name": "B"}})),
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{conversation_id}/typing"),
            Some(json!({"assignee": {"id": "b-staff", "name": "B"}})),
        ),
        (
            Method::GET,
            format!("/api/v1/conversations/{conversation_id}/events"),
            None,
        ),
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
        (
            Method::GET,
            format!("/api/v1/agents/{agent_id}/mcp-tools"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/agents/{agent_id}/tools/test"),
            Some(
                json!({"tool": {"type": "webhook", "name": "probe", "url": "https://example.com/hook"}}),
            ),
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
    let app = builder.embedder(crate::words::Words::new()).spawn().await;
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
    let kb = expect(
        app.post(
            "/api/v1/knowledge-bases",
            &a.key,
            &json!({"name": "secret-4711"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let kb_id = kb["id"].as_str().unwrap().to_owned();
    let doc = expect(
        app.post(
            &format!("/api/v1/knowledge-bases/{kb_id}/documents"),
            &a.key,
            &json!({"text": "Order 4711 ships on Monday.", "title": "Orders 4711"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::ACCEPTED,
    )
    .await;
    let doc_id = doc["id"].as_str().unwrap().to_owned();
    let a_agent = app
        .service
        .get_agent(
            &a.id,
            &frontdesk_core::agent::AgentRef::Slug("support".into()),
        )
        .await
        .unwrap();
    let call = app
        .service
        .open_call(
            &a_agent,
            frontdesk_core::service::NewCall {
                channel: frontdesk_core::voice::CallChannel::Phone,
                direction: frontdesk_core::voice::CallDirection::Inbound,
                mode: "realtime",
                from: Some("+15550004711".into()),
                to: None,
                provider_call_id: None,
            },
        )
        .await
        .unwrap();
    let call_id = call.id.to_string();
    let message_id = result["message"]["parent_id"].as_str().unwrap().to_owned();
    let (agent_id, key_id, conversation_id) = (
        agent["id"].as_str().unwrap(),
        key["id"].as_str().unwrap(),
        conversation["id"].as_str().unwrap(),
    );

    for (method, path, body) in routes_with_ids(
        agent_id,
        key_id,
        conversation_id,
        &run_id,
        &message_id,
        &kb_id,
        &doc_id,
        &call_id,
    ) {
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

    // B's attempts to take, reply to or note on A's conversation changed nothing.
    let untouched = expect(
        app.get(&format!("/api/v1/conversations/{conversation_id}"), &a.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(untouched["handler"], "agent");
    assert!(untouched["assignee"].is_null());
    let timeline = expect(
        app.get(
            &format!("/api/v1/conversations/{conversation_id}/events"),
            &a.key,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(timeline, serde_json::json!([]));

    // Lists and search answer (a 4xx would say nothing) and show none of A's objects.
    let end_user_filter = "/api/v1/conversations?end_user_id=user-1".to_owned();
    for path in [
        "/api/v1/calls",
        "/api/v1/calls?q=4711",
        "/api/v1/agents",
        "/api/v1/api-keys",
        "/api/v1/conversations?archived=all",
        "/api/v1/conversations?q=4711",
        "/api/v1/conversations?agent=support",
        "/api/v1/conversations?waiting=true",
        end_user_filter.as_str(),
        "/api/v1/runs",
        "/api/v1/runs?status=completed",
        "/api/v1/secrets",
        "/api/v1/provider-keys",
        "/api/v1/knowledge-bases",
    ] {
        let response = app.get(path, &b.key).send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(
            !body.contains(agent_id)
                && !body.contains(conversation_id)
                && !body.contains(key_id)
                && !body.contains(&kb_id)
                && !body.contains("4711"),
            "{path} leaked: {body}"
        );
    }
    // B creating a conversation with A's agent id fails as an unknown agent.
    expect_error(
        app.post("/api/v1/conversations", &b.key, &json!({"agent": agent_id}))
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

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
    // A's document is still there, whatever B sent.
    expect(
        app.get(
            &format!("/api/v1/knowledge-bases/{kb_id}/documents/{doc_id}"),
            &a.key,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    tenant_scoped_names_stay_apart(&app, &a, &b).await;
    protocol_routes_stay_apart(&app, &b, conversation_id, &run_id).await;
    every_route_with_an_id_is_in_the_table(
        &app,
        &routes_with_ids(
            agent_id,
            key_id,
            conversation_id,
            &run_id,
            &message_id,
            &kb_id,
            &doc_id,
            &call_id,
        ),
        [
            (call_id.as_str(), "{call}"),
            (agent_id, "{agent}"),
            (key_id, "{key}"),
            (conversation_id, "{conversation}"),
            (run_id.as_str(), "{run}"),
            (message_id.as_str(), "{message}"),
            ("call_1", "{call_id}"),
            (kb_id.as_str(), "{kb}"),
            ("secret-4711", "{kb}"),
            (doc_id.as_str(), "{doc}"),
        ],
    )
    .await;
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

/// Routes that name one of the caller's own things by name (a secret, a provider key) or
/// act on the caller's own settings (rotations, the MCP refresh): what B does there leaves
/// A's unchanged.
const ROUTES_BY_NAME: [(&str, &str); 8] = [
    ("PUT", "/api/v1/secrets/{name}"),
    ("DELETE", "/api/v1/secrets/{name}"),
    ("PUT", "/api/v1/provider-keys/{provider}"),
    ("DELETE", "/api/v1/provider-keys/{provider}"),
    ("POST", "/api/v1/webhook-signing-secret/rotate"),
    ("POST", "/api/v1/widget-identity-secret/rotate"),
    ("POST", "/api/v1/mcp/refresh"),
    ("GET", "/api/v1/runs"),
];

async fn tenant_scoped_names_stay_apart(app: &TestApp, a: &TestTenant, b: &TestTenant) {
    let put = |tenant: &TestTenant, path: &str, body: Value| {
        app.request(Method::PUT, path, &tenant.key)
            .json(&body)
            .send()
    };
    expect(
        put(
            a,
            "/api/v1/secrets/api_token",
            json!({"value": "a-secret-1234"}),
        )
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    expect(
        put(
            a,
            "/api/v1/provider-keys/openai",
            json!({"api_key": "sk-a-000000000001"}),
        )
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    let read = |tenant: &TestTenant, path: &'static str| {
        let key = tenant.key.clone();
        async move { expect(app.get(path, &key).send().await.unwrap(), StatusCode::OK).await }
    };
    let before = (
        read(a, "/api/v1/secrets").await,
        read(a, "/api/v1/provider-keys").await,
        read(a, "/api/v1/webhook-signing-secret").await,
        read(a, "/api/v1/widget-identity-secret").await,
    );
    // B writes, deletes and rotates under the same names.
    put(
        b,
        "/api/v1/secrets/api_token",
        json!({"value": "b-secret-9999"}),
    )
    .await
    .unwrap();
    put(
        b,
        "/api/v1/provider-keys/openai",
        json!({"api_key": "sk-b-999999999999"}),
    )
    .await
    .unwrap();
    for path in ["/api/v1/secrets/api_token", "/api/v1/provider-keys/openai"] {
        app.request(Method::DELETE, path, &b.key)
            .send()
            .await
            .unwrap();
    }
    for path in [
        "/api/v1/webhook-signing-secret/rotate",
        "/api/v1/widget-identity-secret/rotate",
        "/api/v1/mcp/refresh",
    ] {
        let status = app
            .post(path, &b.key, &json!({}))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{path}: {status}");
    }
    let after = (
        read(a, "/api/v1/secrets").await,
        read(a, "/api/v1/provider-keys").await,
        read(a, "/api/v1/webhook-signing-secret").await,
        read(a, "/api/v1/widget-identity-secret").await,
    );
    assert_eq!(after, before, "B changed A's secrets");
    // B's list of runs names none of A's.
    let runs = read(b, "/api/v1/runs").await;
    assert_eq!(runs["data"], json!([]), "{runs}");
}

/// The protocol adapters with B's key, naming A's objects (B has an agent of the same slug,
/// so what refuses is isolation, not a missing agent).
async fn protocol_routes_stay_apart(app: &TestApp, b: &TestTenant, conversation: &str, run: &str) {
    app.agent(b, "support").await;
    let response_id = format!("resp_{}", run.trim_start_matches("run_"));
    let cases: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::GET,
            format!("/openai/v1/responses/{response_id}"),
            None,
        ),
        (
            Method::POST,
            "/openai/v1/responses".to_owned(),
            Some(json!({"model": "support", "input": "hi", "previous_response_id": response_id})),
        ),
        (
            Method::POST,
            "/openai/v1/responses".to_owned(),
            Some(json!({"model": "support", "input": "hi", "conversation": conversation})),
        ),
        (
            Method::POST,
            "/api/v1/ai-sdk/chat/support".to_owned(),
            Some(
                json!({"id": conversation, "messages": [{"id": "m", "role": "user", "parts": [{"type": "text", "text": "hi"}]}]}),
            ),
        ),
    ];
    let mut cases = cases;
    for kind in [
        "threads.get_by_id",
        "items.list",
        "threads.update",
        "threads.delete",
        "threads.add_user_message",
        "threads.retry_after_item",
    ] {
        cases.push((
            Method::POST,
            "/chatkit".to_owned(),
            Some(json!({"type": kind, "params": {"thread_id": conversation, "title": "X", "item_id": "msg_01jd5k8p0c2r9c3f4g5h6j7k8m",
                "input": {"content": [{"type": "input_text", "text": "hi"}], "attachments": [], "inference_options": {}}}})),
        ));
    }
    for (method, path, body) in cases {
        let mut request = app.request(method.clone(), &path, &b.key);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{method} {path} {body:?}: {text}"
        );
        assert!(!text.contains("4711"), "{path} leaked: {text}");
    }
}

/// Every route of the OpenAPI document that takes an id or a name is in one of the tables:
/// a new route cannot be left out of the isolation suite.
async fn every_route_with_an_id_is_in_the_table(
    app: &TestApp,
    table: &[(Method, String, Option<Value>)],
    ids: [(&str, &'static str); 10],
) {
    let document = expect(
        app.client
            .get(format!("{}/api/v1/openapi.json", app.base))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let mut covered: Vec<(String, String)> = table
        .iter()
        .map(|(method, path, _)| {
            let mut template = path.split('?').next().unwrap_or_default().to_owned();
            for (id, name) in ids {
                template = template.replace(id, name);
            }
            template = template.replace("/agents/support", "/agents/{agent}");
            (method.as_str().to_owned(), template)
        })
        .collect();
    covered.extend(
        ROUTES_BY_NAME
            .iter()
            .map(|(method, path)| ((*method).to_owned(), (*path).to_owned())),
    );
    let mut missing = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            let takes_a_name = path.contains('{');
            let listed = covered.iter().any(|(m, p)| *m == method && p == path);
            if takes_a_name && !listed {
                missing.push(format!("{method} {path}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not in the isolation tables: {missing:?}"
    );
}

#[tokio::test]
async fn isolation_on_sqlite() {
    another_tenant_sees_nothing(
        TestApp::builder()
            .provider("local", ScriptedModel::saying(&["noted"]))
            .provider("openai", ScriptedModel::saying(&["noted"])),
    )
    .await;
}

#[tokio::test]
async fn isolation_on_postgres() {
    another_tenant_sees_nothing(
        TestApp::builder()
            .postgres()
            .provider("local", ScriptedModel::saying(&["noted"]))
            .provider("openai", ScriptedModel::saying(&["noted"])),
    )
    .await;
}
