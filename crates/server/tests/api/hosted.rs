//! An agent's hosted chat page (`/c/{tenant}/{agent}`, `/c/{tenant}?agent=`): shown only when
//! the agent opts in, opens widget sessions without a key from this server's own origin and
//! for that agent only; per-address limits on widget requests; the widget's language texts.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{expect, expect_error, TestApp};
use crate::scripted::{text, Scripted};
use crate::turns::parse_sse;

async fn agent(app: &TestApp, key: &str, slug: &str, widget: Value) {
    let body = json!({"slug": slug, "name": slug, "model": "scripted/m", "widget": widget});
    expect(
        app.post("/api/v1/agents", key, &body).send().await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
}

fn session(app: &TestApp, origin: Option<&str>, body: Value) -> reqwest::RequestBuilder {
    let request = app
        .client
        .post(format!("{}/widget/v1/session", app.base))
        .json(&body);
    match origin {
        Some(origin) => request.header("origin", origin),
        None => request,
    }
}

async fn page(app: &TestApp, path: &str) -> (StatusCode, String, Option<String>) {
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    let csp = response
        .headers()
        .get("content-security-policy")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status(), response.text().await.unwrap(), csp)
}

#[tokio::test]
async fn a_public_hosted_page_chats_without_a_key_and_only_with_its_agent() {
    let scripted = Scripted::start(vec![text("Hello from the page.")]).await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .spawn()
        .await;
    let t = app.tenant("Shop").await;
    let other = app.tenant("Other").await;
    agent(
        &app,
        &t.key,
        "support",
        json!({"public_page": true, "title": "<Acme> & \"co\""}),
    )
    .await;
    agent(&app, &t.key, "internal", json!({})).await;
    agent(&app, &t.key, "faq", json!({"public_page": true})).await;
    agent(&app, &other.key, "support", json!({"public_page": true})).await;
    let tenant = t.id.as_str().to_owned();

    // The page: by path and by ?agent=, with a strict CSP and the title escaped.
    for path in [
        format!("/c/{tenant}/support"),
        format!("/c/{tenant}?agent=support"),
    ] {
        let (status, html, csp) = page(&app, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(html.contains(&format!(
            r#"<frontdesk-chat inline tenant="{tenant}" agent="support">"#
        )));
        assert!(html.contains("<title>&lt;Acme&gt; &amp; &quot;co&quot;</title>"));
        assert!(!html.contains("<script>"), "no inline script");
        let csp = csp.unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"));
        // No other site may frame it (it would act as this server's own origin).
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    }
    // Not public, unknown, malformed, or without an agent: the same 404 page.
    for path in [
        format!("/c/{tenant}/internal"),
        format!("/c/{tenant}/nope"),
        format!("/c/{tenant}"),
        "/c/ten_nothing/support".to_owned(),
        "/c/not-an-id/support".to_owned(),
    ] {
        let (status, html, _) = page(&app, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(html.contains("This chat is not available."), "{path}");
        assert!(!html.contains("<frontdesk-chat"), "{path}");
    }

    // Sessions without a key: only from this server's own origin, only for a public agent.
    let own = app.base.as_str();
    let opened = expect(
        session(
            &app,
            Some(own),
            json!({"tenant": tenant, "agent": "support"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    let token = opened["token"].as_str().unwrap().to_owned();
    assert_eq!(opened["agent"]["widget"]["public_page"], true);
    for (origin, status, code) in [
        (
            Some("https://evil.example"),
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
        ),
        (None, StatusCode::FORBIDDEN, "origin_not_allowed"),
    ] {
        expect_error(
            session(&app, origin, json!({"tenant": tenant, "agent": "support"}))
                .send()
                .await
                .unwrap(),
            status,
            code,
        )
        .await;
    }
    expect_error(
        session(
            &app,
            Some(own),
            json!({"tenant": tenant, "agent": "internal"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        session(&app, Some(own), json!({"agent": "support"}))
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "missing_api_key",
    )
    .await;

    // The hosted visitor talks to its page's agent only, from its page only.
    let widget = |method: Method, path: &str, origin: &str| {
        app.client
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(&token)
            .header("origin", origin)
    };
    expect_error(
        widget(Method::POST, "/widget/v1/conversations", own)
            .json(&json!({"agent": "internal"}))
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        widget(
            Method::GET,
            "/widget/v1/conversations",
            "https://evil.example",
        )
        .send()
        .await
        .unwrap(),
        StatusCode::FORBIDDEN,
        "origin_not_allowed",
    )
    .await;
    // Browsers send no Origin on same-origin reads: those count as the page's own.
    expect(
        app.client
            .get(format!("{}/widget/v1/conversations", app.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let conv = expect(
        widget(Method::POST, "/widget/v1/conversations", own)
            .json(&json!({"agent": "support"}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let conv = conv["id"].as_str().unwrap().to_owned();
    let response = widget(
        Method::POST,
        &format!("/widget/v1/conversations/{conv}/messages"),
        own,
    )
    .header("accept", "text/event-stream")
    .json(&json!({"content": "Hi"}))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let events = parse_sse(&response.text().await.unwrap());
    let answer: String = events
        .iter()
        .filter(|e| e.1 == "message.delta")
        .map(|e| e.2["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(answer, "Hello from the page.");
    // The tenant sees it like any widget conversation.
    let listed = expect(
        app.get("/api/v1/conversations", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["data"][0]["id"], conv.as_str());
    assert!(listed["data"][0]["end_user_id"]
        .as_str()
        .unwrap()
        .starts_with("visitor:vis_"));

    // The same visitor on another agent's page: that token reaches only that agent's
    // conversations, even though the visitor (and so the end user) is the same.
    let faq = expect(
        session(
            &app,
            Some(own),
            json!({"tenant": tenant, "agent": "faq", "visitor_token": token}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(faq["visitor_id"], opened["visitor_id"]);
    let faq_token = faq["token"].as_str().unwrap();
    let as_faq = |path: &str| {
        app.client
            .get(format!("{}{path}", app.base))
            .bearer_auth(faq_token)
            .header("origin", own)
            .send()
    };
    expect_error(
        as_faq(&format!("/widget/v1/conversations/{conv}"))
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let faq_list = expect(
        as_faq("/widget/v1/conversations").await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(faq_list["data"], json!([]));

    // Turning the page off closes it: the page, new sessions, and what its visitors held.
    expect(
        app.patch(
            "/api/v1/agents/support",
            &t.key,
            &json!({"widget": {"public_page": false}}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        page(&app, &format!("/c/{tenant}/support")).await.0,
        StatusCode::NOT_FOUND
    );
    expect_error(
        session(
            &app,
            Some(own),
            json!({"tenant": tenant, "agent": "support"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        widget(Method::POST, "/widget/v1/conversations", own)
            .json(&json!({"agent": "support"}))
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid_visitor_token",
    )
    .await;
    expect_error(
        widget(
            Method::GET,
            &format!("/widget/v1/conversations/{conv}"),
            own,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid_visitor_token",
    )
    .await;
}

#[tokio::test]
async fn widget_requests_are_limited_per_client_address() {
    let app = TestApp::builder().widget_per_address(4, true).spawn().await;
    let t = app.tenant("Shop").await;
    agent(&app, &t.key, "support", json!({"public_page": true})).await;
    let body = json!({"tenant": t.id.as_str(), "agent": "support"});
    let open = |address: &str| {
        session(&app, Some(app.base.as_str()), body.clone())
            .header("x-forwarded-for", format!("203.0.113.9, {address}"))
            .send()
    };
    // New sessions are new visitors, but one address shares one budget.
    for _ in 0..4 {
        assert_eq!(open("198.51.100.1").await.unwrap().status(), StatusCode::OK);
    }
    let limited = open("198.51.100.1").await.unwrap();
    assert!(limited.headers().contains_key("retry-after"));
    expect_error(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Another address (the proxy's last entry) has its own.
    assert_eq!(open("198.51.100.2").await.unwrap().status(), StatusCode::OK);
    // Preflights are not counted.
    let preflight = app
        .client
        .request(Method::OPTIONS, format!("{}/widget/v1/session", app.base))
        .header("origin", app.base.as_str())
        .header("x-forwarded-for", "198.51.100.1")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    // IPv6 clients share a budget per /64 (one host commonly holds all of one).
    for host in ["1", "2", "3", "4"] {
        let address = format!("2001:db8:1:2::{host}");
        assert_eq!(open(&address).await.unwrap().status(), StatusCode::OK);
    }
    expect_error(
        open("2001:db8:1:2:ffff::9").await.unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    assert_eq!(
        open("2001:db8:1:3::1").await.unwrap().status(),
        StatusCode::OK
    );
    // ChatKit calls with a visitor token count against the address too; with a secret key
    // (a server calling) they do not.
    let opened = expect(open("198.51.100.3").await.unwrap(), StatusCode::OK).await;
    let chatkit = |bearer: &str| {
        app.client
            .post(format!("{}/chatkit", app.base))
            .bearer_auth(bearer)
            .header("origin", app.base.as_str())
            .header("x-forwarded-for", "198.51.100.3")
            .json(&json!({"type": "threads.list", "params": {}}))
            .send()
    };
    let visitor_token = opened["token"].as_str().unwrap();
    for _ in 0..3 {
        assert_eq!(
            chatkit(visitor_token).await.unwrap().status(),
            StatusCode::OK
        );
    }
    expect_error(
        chatkit(visitor_token).await.unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    assert_eq!(chatkit(&t.key).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn widget_texts_for_other_languages_are_validated_and_served() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Shop").await;
    let texts = json!({"de": {"greeting": "Hallo!", "starter_prompts": ["Wo ist meine Bestellung?"], "labels": {"send": "Senden"}}});
    agent(
        &app,
        &t.key,
        "support",
        json!({"public_page": true, "texts": texts}),
    )
    .await;
    let opened = expect(
        session(
            &app,
            Some(app.base.as_str()),
            json!({"tenant": t.id.as_str(), "agent": "support"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(opened["agent"]["widget"]["texts"], texts);
    for (texts, field) in [
        (
            json!({"de": {"labels": {"sned": "x"}}}),
            "widget.texts.de.labels.sned",
        ),
        (json!({"not a tag": {}}), "widget.texts"),
        (
            json!({"de": {"greeting": "x".repeat(2001)}}),
            "widget.texts.de.greeting",
        ),
    ] {
        let body = json!({"slug": "other", "name": "Other", "widget": {"texts": texts}});
        let error = expect_error(
            app.post("/api/v1/agents", &t.key, &body)
                .send()
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
        assert_eq!(error["field"], field, "{texts}");
    }
}
