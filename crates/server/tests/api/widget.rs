//! The widget's API: sessions from a publishable key and an allowed origin, a visitor's own
//! conversations and runs (another visitor's are 404), identified users, end-user approvals,
//! CORS, and ChatKit with a visitor token.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{expect, expect_error, TestApp, TestTenant};
use crate::scripted::{call, text, Receiver, Scripted};
use crate::turns::parse_sse;

const SHOP: &str = "https://shop.example.com";

struct Widget {
    app: TestApp,
    tenant: TestTenant,
    key: String,
    scripted: Scripted,
}

async fn widget(replies: Vec<crate::scripted::Reply>) -> Widget {
    let scripted = Scripted::start(replies).await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .allow_private_urls()
        .spawn()
        .await;
    let t = app.tenant("Shop").await;
    for slug in ["support", "internal"] {
        let agent = json!({"slug": slug, "name": slug, "model": "scripted/m", "widget": {"title": "Ask us", "accent_color": "#4f46e5"}});
        expect(
            app.post("/api/v1/agents", &t.key, &agent)
                .send()
                .await
                .unwrap(),
            StatusCode::CREATED,
        )
        .await;
    }
    let key = expect(
        app.post("/api/v1/api-keys", &t.key, &json!({"kind": "publishable", "name": "site", "allowed_origins": [SHOP], "allowed_agents": ["support"]}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    Widget {
        app,
        tenant: t,
        key: key["key"].as_str().unwrap().to_owned(),
        scripted,
    }
}

impl Widget {
    fn request(
        &self,
        method: Method,
        path: &str,
        token: &str,
        origin: &str,
    ) -> reqwest::RequestBuilder {
        self.app
            .client
            .request(method, format!("{}{path}", self.app.base))
            .bearer_auth(token)
            .header("origin", origin)
    }

    /// Changes the `support` agent with a JSON merge patch.
    async fn patch_agent(&self, patch: Value) {
        expect(
            self.app
                .patch("/api/v1/agents/support", &self.tenant.key, &patch)
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await;
    }

    /// A new visitor's token and a conversation of theirs with `support`.
    async fn visitor_conversation(&self) -> (String, String) {
        let session = self.session(json!({"agent": "support"})).await;
        let token = session["token"].as_str().unwrap().to_owned();
        let conv = expect(
            self.request(Method::POST, "/widget/v1/conversations", &token, SHOP)
                .json(&json!({"agent": "support"}))
                .send()
                .await
                .unwrap(),
            StatusCode::CREATED,
        )
        .await;
        (token, conv["id"].as_str().unwrap().to_owned())
    }

    async fn session(&self, body: Value) -> Value {
        expect(
            self.app
                .client
                .post(format!("{}/widget/v1/session", self.app.base))
                .header("x-frontdesk-key", &self.key)
                .header("origin", SHOP)
                .json(&body)
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await
    }
}

#[tokio::test]
async fn a_visitor_chats_through_the_widget_api_and_sees_only_its_own() {
    let w = widget(vec![text("Hello! How can I help?"), text("Second answer.")]).await;
    let app = &w.app;
    // Sessions: key + allowed origin + allowed agent.
    let session = w.session(json!({"agent": "support"})).await;
    let token = session["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("fdv1."));
    assert!(session["end_user_id"]
        .as_str()
        .unwrap()
        .starts_with("visitor:vis_"));
    assert_eq!(session["agent"]["widget"]["title"], "Ask us");
    let post_session = |origin: &'static str, key: String, agent: &'static str| {
        app.client
            .post(format!("{}/widget/v1/session", app.base))
            .header("x-frontdesk-key", key)
            .header("origin", origin)
            .json(&json!({"agent": agent}))
            .send()
    };
    expect_error(
        post_session("https://evil.example", w.key.clone(), "support")
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
        "origin_not_allowed",
    )
    .await;
    expect_error(
        post_session(SHOP, w.tenant.key.clone(), "support")
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
        "publishable_key_required",
    )
    .await;
    expect_error(
        post_session(SHOP, w.key.clone(), "internal").await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let no_origin = app
        .client
        .post(format!("{}/widget/v1/session", app.base))
        .header("x-frontdesk-key", &w.key)
        .json(&json!({"agent": "support"}))
        .send()
        .await
        .unwrap();
    expect_error(no_origin, StatusCode::FORBIDDEN, "origin_not_allowed").await;
    // A conversation, a streamed turn, reading it back.
    let conv = expect(
        w.request(Method::POST, "/widget/v1/conversations", &token, SHOP)
            .json(&json!({"agent": "support"}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let conv = conv["id"].as_str().unwrap().to_owned();
    expect_error(
        w.request(Method::POST, "/widget/v1/conversations", &token, SHOP)
            .json(&json!({"agent": "internal"}))
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let response = w
        .request(
            Method::POST,
            &format!("/widget/v1/conversations/{conv}/messages"),
            &token,
            SHOP,
        )
        .header("accept", "text/event-stream")
        .json(&json!({"content": "Hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["access-control-allow-origin"], SHOP);
    let events = parse_sse(&response.text().await.unwrap());
    let run = events[0].2["run_id"].as_str().unwrap().to_owned();
    assert_eq!(events.last().unwrap().1, "run.completed");
    let read = expect(
        w.request(
            Method::GET,
            &format!("/widget/v1/conversations/{conv}"),
            &token,
            SHOP,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(read["messages"].as_array().unwrap().len(), 2);
    assert_eq!(
        read["messages"][1]["content"][0]["text"],
        "Hello! How can I help?"
    );
    let replay = w
        .request(
            Method::GET,
            &format!("/widget/v1/runs/{run}/events"),
            &token,
            SHOP,
        )
        .header("last-event-id", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::OK);
    let listed = expect(
        w.request(Method::GET, "/widget/v1/conversations", &token, SHOP)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    // The same token from another origin is refused.
    let response = w
        .request(
            Method::GET,
            "/widget/v1/conversations",
            &token,
            "https://evil.example",
        )
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::FORBIDDEN, "origin_not_allowed").await;
    // Another visitor sees none of it.
    let other = w.session(json!({"agent": "support"})).await;
    let other = other["token"].as_str().unwrap();
    for path in [
        format!("/widget/v1/conversations/{conv}"),
        format!("/widget/v1/runs/{run}/events"),
    ] {
        let response = w
            .request(Method::GET, &path, other, SHOP)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let response = w
        .request(
            Method::POST,
            &format!("/widget/v1/conversations/{conv}/messages"),
            other,
            SHOP,
        )
        .json(&json!({"content": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let listed = expect(
        w.request(Method::GET, "/widget/v1/conversations", other, SHOP)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["data"], json!([]));
    // The same browser keeps its visitor with its previous token.
    let again = w
        .session(json!({"agent": "support", "visitor_token": token}))
        .await;
    assert_eq!(again["visitor_id"], session["visitor_id"]);
    let listed = expect(
        w.request(
            Method::GET,
            "/widget/v1/conversations",
            again["token"].as_str().unwrap(),
            SHOP,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    // Preflights are answered for the page.
    let preflight = app
        .client
        .request(
            Method::OPTIONS,
            format!("{}/widget/v1/conversations", app.base),
        )
        .header("origin", SHOP)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert!(preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("authorization"));
    // A forged or missing token is 401; a revoked key ends its sessions.
    let response = w
        .request(
            Method::GET,
            "/widget/v1/conversations",
            "fdv1.e30.AAAA",
            SHOP,
        )
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::UNAUTHORIZED, "invalid_visitor_token").await;
    let keys = expect(
        app.get("/api/v1/api-keys", &w.tenant.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let key_id = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "publishable")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    expect(
        app.delete(&format!("/api/v1/api-keys/{key_id}"), &w.tenant.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let response = w
        .request(Method::GET, "/widget/v1/conversations", &token, SHOP)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    w.app.stop().await;
}

#[tokio::test]
async fn identified_users_keep_their_conversations_across_browsers() {
    let w = widget(vec![text("Hi Ada.")]).await;
    let app = &w.app;
    let secret = expect(
        app.get("/api/v1/widget-identity-secret", &w.tenant.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let secret = secret["secret"].as_str().unwrap();
    let exp = frontdesk_core::time::Timestamp::now().as_millis() / 1000 + 600;
    let user_token = frontdesk_core::visitor::sign_user_token(secret, "user-42", exp);
    let first = w
        .session(json!({"agent": "support", "user_token": user_token}))
        .await;
    assert_eq!(first["end_user_id"], "user:user-42");
    let token = first["token"].as_str().unwrap();
    let conv = expect(
        w.request(Method::POST, "/widget/v1/conversations", token, SHOP)
            .json(&json!({"agent": "support"}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    // Another browser, the same user: the same conversations.
    let second = w
        .session(json!({"agent": "support", "user_token": user_token}))
        .await;
    assert_ne!(second["visitor_id"], first["visitor_id"]);
    let listed = expect(
        w.request(
            Method::GET,
            "/widget/v1/conversations",
            second["token"].as_str().unwrap(),
            SHOP,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["data"][0]["id"], conv["id"]);
    // The same user through a key for another agent only: that key's conversations only.
    let other_key = expect(
        app.post("/api/v1/api-keys", &w.tenant.key, &json!({"kind": "publishable", "name": "help", "allowed_origins": [SHOP], "allowed_agents": ["internal"]}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let other = expect(
        app.client
            .post(format!("{}/widget/v1/session", app.base))
            .header("x-frontdesk-key", other_key["key"].as_str().unwrap())
            .header("origin", SHOP)
            .json(&json!({"agent": "internal", "user_token": user_token}))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(other["end_user_id"], "user:user-42");
    let other_token = other["token"].as_str().unwrap();
    let listed = expect(
        w.request(Method::GET, "/widget/v1/conversations", other_token, SHOP)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["data"], json!([]));
    expect_error(
        w.request(
            Method::GET,
            &format!("/widget/v1/conversations/{}", conv["id"].as_str().unwrap()),
            other_token,
            SHOP,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // A token signed with anything else is refused.
    let forged = frontdesk_core::visitor::sign_user_token("not-the-secret", "user-42", exp);
    let response = app
        .client
        .post(format!("{}/widget/v1/session", app.base))
        .header("x-frontdesk-key", &w.key)
        .header("origin", SHOP)
        .json(&json!({"agent": "support", "user_token": forged}))
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    w.app.stop().await;
}

#[tokio::test]
async fn the_end_user_approves_a_call_meant_for_them_and_chatkit_takes_visitor_tokens() {
    let receiver = Receiver::start(200, r#"{"booked": true}"#, 0).await;
    let w = widget(vec![
        call("c1", "book", json!({"day": "monday"})),
        text("Booked for Monday."),
        text("Hi from ChatKit."),
    ])
    .await;
    let patch = json!({"approvals": {"approver": "end_user"}, "tools": [{"type": "webhook", "name": "book", "url": receiver.url, "requires_approval": true,
        "parameters": {"type": "object", "properties": {"day": {"type": "string"}}}}]});
    w.patch_agent(patch).await;
    let (token, conv) = w.visitor_conversation().await;
    let (token, conv) = (token.as_str(), conv.as_str());
    let paused = expect(
        w.request(
            Method::POST,
            &format!("/widget/v1/conversations/{conv}/messages"),
            token,
            SHOP,
        )
        .json(&json!({"content": "Book Monday"}))
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(paused["status"], "awaiting_approval");
    let run = paused["run_id"].as_str().unwrap();
    // Another visitor cannot decide it.
    let other = w.session(json!({"agent": "support"})).await;
    let response = w
        .request(
            Method::POST,
            &format!("/widget/v1/runs/{run}/approvals/c1"),
            other["token"].as_str().unwrap(),
            SHOP,
        )
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let done = expect(
        w.request(
            Method::POST,
            &format!("/widget/v1/runs/{run}/approvals/c1"),
            token,
            SHOP,
        )
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(done["status"], "completed");
    assert_eq!(receiver.received().len(), 1);
    // ChatKit with the visitor token: its threads are the visitor's.
    let body = json!({"type": "threads.create", "metadata": {"agent": "support"},
        "params": {"input": {"content": [{"type": "input_text", "text": "Hello"}], "attachments": [], "inference_options": {}}}});
    let response = w
        .request(Method::POST, "/chatkit", token, SHOP)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap();
    let listed = expect(
        w.request(Method::POST, "/chatkit", token, SHOP)
            .json(&json!({"type": "threads.list", "params": {}}))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2, "{listed}");
    let theirs = expect(
        w.request(
            Method::POST,
            "/chatkit",
            other["token"].as_str().unwrap(),
            SHOP,
        )
        .json(&json!({"type": "threads.list", "params": {}}))
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(theirs["data"], json!([]));
    let response = w
        .request(
            Method::POST,
            "/chatkit",
            other["token"].as_str().unwrap(),
            SHOP,
        )
        .json(&json!({"type": "threads.get_by_id", "params": {"thread_id": conv}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let _ = &w.scripted;
    w.app.stop().await;
}

/// Every ChatKit operation on a thread, with a visitor token, reaches only the visitor's own
/// threads: another visitor's thread and a back-office conversation are 404 for each of them,
/// and stay as they were (a delete that skipped the check once removed them).
#[tokio::test]
async fn chatkit_thread_operations_with_a_visitor_token_reach_only_the_visitors_threads() {
    let w = widget(Vec::new()).await;
    let app = &w.app;
    let owner = w.session(json!({"agent": "support"})).await;
    let owner = owner["token"].as_str().unwrap().to_owned();
    let stranger = w.session(json!({"agent": "support"})).await;
    let stranger = stranger["token"].as_str().unwrap().to_owned();
    let visitors = expect(
        w.request(Method::POST, "/widget/v1/conversations", &owner, SHOP)
            .json(&json!({"agent": "support"}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let back_office = expect(
        app.post(
            "/api/v1/conversations",
            &w.tenant.key,
            &json!({"agent": "support"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let operations = |thread: &str| {
        [
            json!({"type": "threads.get_by_id", "params": {"thread_id": thread}}),
            json!({"type": "items.list", "params": {"thread_id": thread}}),
            json!({"type": "threads.update", "params": {"thread_id": thread, "title": "Hijacked"}}),
            json!({"type": "threads.add_user_message", "params": {"thread_id": thread,
                "input": {"content": [{"type": "input_text", "text": "Hi"}], "attachments": [], "inference_options": {}}}}),
            json!({"type": "threads.retry_after_item", "params": {"thread_id": thread, "item_id": "msg_01jd5k8p0c2r9c3f4g5h6j7k8m"}}),
            json!({"type": "threads.delete", "params": {"thread_id": thread}}),
        ]
    };
    for thread in [&visitors, &back_office] {
        let id = thread["id"].as_str().unwrap();
        for body in operations(id) {
            let response = w
                .request(Method::POST, "/chatkit", &stranger, SHOP)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{body}");
        }
    }
    // Both are still there, untouched.
    let mine = expect(
        w.request(Method::POST, "/chatkit", &owner, SHOP)
            .json(&json!({"type": "threads.get_by_id", "params": {"thread_id": visitors["id"]}}))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_ne!(mine["title"], "Hijacked", "{mine}");
    let kept = expect(
        app.get(
            &format!(
                "/api/v1/conversations/{}",
                back_office["id"].as_str().unwrap()
            ),
            &w.tenant.key,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(kept["message_count"], 0, "{kept}");
    w.app.stop().await;
}

/// End users see that a tool ran, by name, never its arguments or results, nor an error's
/// details or a guardrail's reason; staff see everything.
#[tokio::test]
async fn end_users_see_that_a_tool_ran_but_not_what_went_in_or_came_out() {
    let receiver = Receiver::start(200, r#"{"internal_row": "row-4242"}"#, 0).await;
    let w = widget(vec![
        call("c1", "lookup", json!({"order": "A-1"})),
        text("Your order has shipped."),
        crate::scripted::Reply::Fail(400),
    ])
    .await;
    let app = &w.app;
    let patch = json!({"tools": [{"type": "webhook", "name": "lookup", "url": receiver.url,
        "parameters": {"type": "object", "properties": {"order": {"type": "string"}}}}]});
    w.patch_agent(patch).await;
    let (token, id) = w.visitor_conversation().await;
    let (token, id) = (token.as_str(), id.as_str());
    let response = w
        .request(
            Method::POST,
            &format!("/widget/v1/conversations/{id}/messages"),
            token,
            SHOP,
        )
        .header("accept", "text/event-stream")
        .json(&json!({"content": "Where is order A-1?"}))
        .send()
        .await
        .unwrap();
    let body = response.text().await.unwrap();
    assert!(
        !body.contains("row-4242") && !body.contains("\"order\""),
        "{body}"
    );
    let events = parse_sse(&body);
    let started = events.iter().find(|(_, n, _)| n == "tool.started").unwrap();
    assert_eq!(started.2["name"], "lookup");
    assert_eq!(started.2["arguments"], json!({}));
    let completed = events
        .iter()
        .find(|(_, n, _)| n == "tool.completed")
        .unwrap();
    assert_eq!(completed.2["result"], "");
    assert_eq!(completed.2["is_error"], false);
    let answer = events
        .iter()
        .find(|(_, n, _)| n == "message.completed")
        .unwrap();
    assert_eq!(
        answer.2["message"]["content"],
        json!([{"type": "text", "text": "Your order has shipped."}])
    );
    // The tenant's notes on the thread are the run's context, not the visitor's to read.
    expect(
        app.patch(
            &format!("/api/v1/conversations/{id}"),
            &w.tenant.key,
            &json!({"metadata": {"crm_note": "vip-discount-40"}}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    let listed = expect(
        w.request(Method::GET, "/widget/v1/conversations", token, SHOP)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(!listed.to_string().contains("vip-discount-40"), "{listed}");
    // The stored conversation as the visitor reads it, and as staff do.
    let read = expect(
        w.request(
            Method::GET,
            &format!("/widget/v1/conversations/{id}"),
            token,
            SHOP,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(!read.to_string().contains("row-4242"), "{read}");
    assert!(!read.to_string().contains("vip-discount-40"), "{read}");
    let staff = expect(
        app.get(
            &format!("/api/v1/conversations/{id}/messages"),
            &w.tenant.key,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(staff.to_string().contains("row-4242"), "{staff}");
    // The model provider fails: the visitor gets a generic message and the request id, not
    // the provider's words; staff read them in the run's trace.
    let failed = expect(
        w.request(
            Method::POST,
            &format!("/widget/v1/conversations/{id}/messages"),
            token,
            SHOP,
        )
        .json(&json!({"content": "And order B-2?"}))
        .send()
        .await
        .unwrap(),
        StatusCode::BAD_GATEWAY,
    )
    .await;
    assert_eq!(failed["error"]["code"], "upstream_error");
    assert_eq!(
        failed["error"]["message"],
        frontdesk_core::end_user::GENERIC_ERROR
    );
    assert!(failed["error"]["request_id"].is_string(), "{failed}");
    assert!(!failed.to_string().contains("scripted failure"), "{failed}");
    w.app.stop().await;
}

/// A visitor token issued through a key revoked since does not carry its visitor over into a
/// new session (one through a key that still works does).
#[tokio::test]
async fn a_token_from_a_revoked_key_is_not_renewed() {
    let w = widget(Vec::new()).await;
    let app = &w.app;
    let old = expect(
        app.post(
            "/api/v1/api-keys",
            &w.tenant.key,
            &json!({"kind": "publishable", "name": "old site", "allowed_origins": [SHOP]}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let open = |key: String, previous: Option<String>| {
        let app = &w.app;
        async move {
            expect(
                app.client
                    .post(format!("{}/widget/v1/session", app.base))
                    .header("x-frontdesk-key", key)
                    .header("origin", SHOP)
                    .json(&json!({"agent": "support", "visitor_token": previous}))
                    .send()
                    .await
                    .unwrap(),
                StatusCode::OK,
            )
            .await
        }
    };
    let first = open(old["key"].as_str().unwrap().to_owned(), None).await;
    let token = first["token"].as_str().unwrap().to_owned();
    // Renewed through a working key, the visitor stays the same.
    let kept = open(w.key.clone(), Some(token.clone())).await;
    assert_eq!(kept["visitor_id"], first["visitor_id"]);
    expect(
        app.delete(
            &format!("/api/v1/api-keys/{}", old["id"].as_str().unwrap()),
            &w.tenant.key,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    let fresh = open(w.key.clone(), Some(token)).await;
    assert_ne!(fresh["visitor_id"], first["visitor_id"], "{fresh}");
    w.app.stop().await;
}

/// A user token signed with the identity secret a rotation replaced still counts while the
/// overlap lasts, and not after a rotation without one.
#[tokio::test]
async fn user_tokens_outlive_an_identity_rotation_for_its_overlap() {
    let w = widget(Vec::new()).await;
    let app = &w.app;
    let secret = |body: Value| body["secret"].as_str().unwrap().to_owned();
    let first = secret(
        expect(
            app.get("/api/v1/widget-identity-secret", &w.tenant.key)
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await,
    );
    let exp = frontdesk_core::time::Timestamp::now().as_millis() / 1000 + 600;
    let old_token = frontdesk_core::visitor::sign_user_token(&first, "user-9", exp);
    let rotate = |query: &'static str| {
        let key = w.tenant.key.clone();
        async move {
            expect(
                app.post(
                    &format!("/api/v1/widget-identity-secret/rotate{query}"),
                    &key,
                    &json!({}),
                )
                .send()
                .await
                .unwrap(),
                StatusCode::OK,
            )
            .await
        }
    };
    let second = secret(rotate("").await);
    assert_ne!(first, second);
    let session = w
        .session(json!({"agent": "support", "user_token": old_token}))
        .await;
    assert_eq!(session["end_user_id"], "user:user-9");
    rotate("?overlap_seconds=0").await;
    let refused = app
        .client
        .post(format!("{}/widget/v1/session", app.base))
        .header("x-frontdesk-key", &w.key)
        .header("origin", SHOP)
        .json(&json!({"agent": "support", "user_token": old_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    w.app.stop().await;
}

/// A visitor whose conversation waits for staff to approve a call learns that it waits, not
/// what the call would do: neither in the stream nor in the 409 of its next message.
#[tokio::test]
async fn a_call_waiting_for_staff_keeps_its_arguments_from_the_visitor() {
    let receiver = Receiver::start(200, r#"{"refunded": true}"#, 0).await;
    let w = widget(vec![call(
        "c1",
        "refund",
        json!({"iban": "DE89370400440532013000"}),
    )])
    .await;
    let app = &w.app;
    let patch = json!({"approvals": {"approver": "staff"}, "tools": [{"type": "webhook", "name": "refund",
        "url": receiver.url, "requires_approval": true,
        "parameters": {"type": "object", "properties": {"iban": {"type": "string"}}}}]});
    w.patch_agent(patch).await;
    let (token, conv) = w.visitor_conversation().await;
    let token = token.as_str();
    let path = format!("/widget/v1/conversations/{conv}/messages");
    let streamed = w
        .request(Method::POST, &path, token, SHOP)
        .header("accept", "text/event-stream")
        .json(&json!({"content": "Refund me"}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(streamed.contains("approval.required"), "{streamed}");
    assert!(!streamed.contains("DE89"), "{streamed}");
    let waiting = expect_error(
        w.request(Method::POST, &path, token, SHOP)
            .json(&json!({"content": "Hello?"}))
            .send()
            .await
            .unwrap(),
        StatusCode::CONFLICT,
        "approval_pending",
    )
    .await;
    assert_eq!(waiting["pending"][0]["tool"], "refund", "{waiting}");
    assert_eq!(waiting["pending"][0]["arguments"], json!({}), "{waiting}");
    assert!(!waiting.to_string().contains("DE89"), "{waiting}");
    // The visitor cancels it: the trace says who rejected the call.
    let run = waiting["run_id"].as_str().unwrap().to_owned();
    expect(
        w.request(
            Method::POST,
            &format!("/widget/v1/runs/{run}/cancel"),
            token,
            SHOP,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::ACCEPTED,
    )
    .await;
    // It ends the way a rejection makes it end: follow it to its end.
    let ended = w
        .request(
            Method::GET,
            &format!("/widget/v1/runs/{run}/events"),
            token,
            SHOP,
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(ended.contains("run.completed"), "{ended}");
    let trace = expect(
        app.get(&format!("/api/v1/runs/{run}"), &w.tenant.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let approval = trace["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["kind"] == "approval")
        .unwrap_or_else(|| panic!("{trace}"));
    assert_eq!(approval["output"]["by"], "end_user", "{trace}");
    assert_eq!(approval["output"]["approved"], false);
    w.app.stop().await;
}
