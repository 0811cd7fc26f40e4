//! The dashboard in headless Chromium: sign in with the login `serve` prints, create and edit
//! an agent, approve a waiting tool call, create a key and copy its snippet, try the widget
//! on the embed page, find a conversation by a word in it, sign out; a viewer sees no edit
//! control. Every page is saved as a screenshot in `target/test-artifacts/dashboard-*.png`,
//! at 1280 px and at 390 px.

use std::time::Duration;

use fantoccini::{Client, Locator};
use frontdesk_core::agent::{AgentRef, ToolEntry};
use frontdesk_core::service::{Demo, NewUser};
use frontdesk_core::tenant::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::browser::Driver;
use crate::common::{expect, TestApp};
use crate::dashboard::PASSWORD;
use crate::scripted::{call, text, Receiver, Scripted};

/// Saves a screenshot of the page and checks it with axe-core.
async fn screenshot(browser: &Client, name: &str) {
    crate::browser::screenshot(browser, name).await;
    crate::page_checks::axe(browser, name).await;
}

/// Asks Chromium (through ChromeDriver's CDP endpoint) to emulate `prefers-color-scheme`.
#[derive(Debug)]
struct ColorScheme(&'static str);

impl fantoccini::wd::WebDriverCompatibleCommand for ColorScheme {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({"cmd": "Emulation.setEmulatedMedia",
            "params": {"features": [{"name": "prefers-color-scheme", "value": self.0}]}});
        (http::Method::POST, Some(body.to_string()))
    }
}

/// Waits until `script` (run in the page) returns something truthy, and returns it.
async fn until(browser: &Client, script: &str, what: &str) -> serde_json::Value {
    for _ in 0..150 {
        let value = browser.execute(script, Vec::new()).await.unwrap();
        if !value.is_null() && value != json!(false) {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shown = browser
        .execute("return document.body.innerText;", Vec::new())
        .await
        .unwrap();
    panic!("timed out waiting for {what}; the page shows: {shown}");
}

async fn heading(browser: &Client) -> String {
    browser
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn fill(browser: &Client, css: &str, value: &str) {
    let field = browser.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

pub(crate) async fn sign_in(browser: &Client, base: &str, email: &str, password: &str) {
    browser.goto(&format!("{base}/")).await.unwrap();
    assert!(browser
        .current_url()
        .await
        .unwrap()
        .path()
        .starts_with("/login"));
    fill(browser, "#email", email).await;
    fill(browser, "#password", password).await;
    browser
        .find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        browser,
        "return document.querySelector('h1') && document.querySelector('h1').textContent === 'Overview';",
        "the overview",
    )
    .await;
}

#[tokio::test]
async fn a_business_runs_its_assistants_from_the_dashboard() {
    let receiver = Receiver::start(200, r#"{"refunded": true}"#, 0).await;
    let scripted = Scripted::start(vec![
        call("c1", "refund", json!({"amount": 20})),
        text("Your refund is on its way."),
        text("Hello from the preview."),
        text("Hello from the playground."),
        text("Hello from the comparison."),
    ])
    .await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .allow_private_urls()
        .price("scripted/m", 1.0, 2.0)
        .spawn()
        .await;
    // What `frontdesk serve` prints at first start.
    let Demo::Created(demo) = app
        .service
        .bootstrap_demo(std::slice::from_ref(&app.base))
        .await
        .unwrap()
    else {
        panic!("the demo was not created");
    };
    let secret = demo.secret_key.expose().to_owned();
    let refunds = json!({"slug": "refunds", "name": "Refunds", "model": "scripted/m",
        "approvals": {"approver": "staff"},
        "tools": [{"type": "webhook", "name": "refund", "url": receiver.url, "requires_approval": true,
                   "parameters": {"type": "object", "properties": {"amount": {"type": "number"}}}}]});
    expect(
        app.post("/api/v1/agents", &secret, &refunds)
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let conversation = expect(
        app.post(
            "/api/v1/conversations",
            &secret,
            &json!({"agent": "refunds"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let conversation = conversation["id"].as_str().unwrap().to_owned();
    let paused = expect(
        app.post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            &secret,
            &json!({"content": "Please refund my broken kettle"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(paused["status"], "awaiting_approval", "{paused}");

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser.set_window_size(1280, 900).await.unwrap();
    sign_in(&browser, &app.base, &demo.owner_email, &demo.owner_password).await;
    screenshot(&browser, "dashboard-overview").await;

    // Create an agent from a template and edit its instructions.
    browser
        .goto(&format!("{}/agents/new", app.base))
        .await
        .unwrap();
    screenshot(&browser, "dashboard-agent-new").await;
    fill(&browser, "#name", "Concierge").await;
    browser
        .find(Locator::Css("input[value=support]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .find(Locator::Css("form[action='/agents'] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &browser,
        "return document.querySelector('h1').textContent === 'Concierge';",
        "the editor",
    )
    .await;
    fill(
        &browser,
        "#instructions",
        "Greet guests by name and keep answers short.",
    )
    .await;
    fill(&browser, "#model", "scripted/m").await;
    browser
        .find(Locator::Css(".page-head button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(&browser, "return document.querySelector('.flash.ok') && document.querySelector('.flash.ok').textContent.includes('version 2');", "the saved notice").await;
    screenshot(&browser, "dashboard-agent-editor").await;
    let agents = app.service.list_agents(&demo.tenant.id).await.unwrap();
    let concierge = agents.iter().find(|a| a.spec.slug == "concierge").unwrap();
    assert_eq!(
        concierge.spec.instructions,
        "Greet guests by name and keep answers short."
    );
    assert_eq!(concierge.spec.model, "scripted/m");

    // A webhook tool made with the form, tried with "Send test request", then saved; the
    // widget's settings previewed as they are typed.
    let hook = Receiver::start(200, r#"{"room": "ready"}"#, 0).await;
    browser
        .execute(
            "for (const d of document.querySelectorAll('#agent-form details')) d.open = true; return true;",
            Vec::new(),
        )
        .await
        .unwrap();
    let add = browser
        .find(Locator::XPath("//button[text()='Add webhook']"))
        .await
        .unwrap();
    // Out from under the sticky save bar, as a person would scroll it.
    browser
        .execute(
            "arguments[0].scrollIntoView({block: 'center'}); return true;",
            vec![serde_json::to_value(&add).unwrap()],
        )
        .await
        .unwrap();
    add.click().await.unwrap();
    fill(&browser, "#tool-0-name", "room_status").await;
    fill(&browser, "#tool-0-url", &format!("{}/rooms", hook.url)).await;
    browser
        .execute(
            "const d = document.querySelector('.trial'); d.open = true; d.querySelector('button').click(); return true;",
            Vec::new(),
        )
        .await
        .unwrap();
    until(
        &browser,
        "const out = document.querySelector('.trial-out'); return out && out.textContent.includes('Response 200') && out.textContent.includes('x-frontdesk-signature') && out.textContent.includes('ready');",
        "the test request's response",
    )
    .await;
    assert_eq!(hook.received().len(), 1);
    browser
        .execute(
            "document.querySelector('.trial-out').scrollIntoView({block: 'center'}); return true;",
            Vec::new(),
        )
        .await
        .unwrap();
    screenshot(&browser, "dashboard-agent-tool-test").await;
    browser
        .execute(
            "const w = document.getElementById('widget'); w.value = JSON.stringify({title: 'Front desk', greeting: 'Welcome to the hotel!'}); w.dispatchEvent(new Event('input', {bubbles: true})); return true;",
            Vec::new(),
        )
        .await
        .unwrap();
    until(
        &browser,
        "const r = document.querySelector('frontdesk-chat[preview]').shadowRoot; return r.querySelector('h2').textContent === 'Front desk' && r.textContent.includes('Welcome to the hotel!');",
        "the widget preview",
    )
    .await;
    browser
        .execute(
            "document.querySelector('frontdesk-chat[preview]').scrollIntoView({block: 'center'}); return true;",
            Vec::new(),
        )
        .await
        .unwrap();
    screenshot(&browser, "dashboard-agent-widget-preview").await;
    browser
        .find(Locator::Css(".page-head button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(&browser, "return document.querySelector('.flash.ok') && document.querySelector('.flash.ok').textContent.includes('version 3');", "the tool saved").await;
    let concierge = app
        .service
        .get_agent(&demo.tenant.id, &AgentRef::Id(concierge.id.clone()))
        .await
        .unwrap();
    assert!(
        matches!(&concierge.spec.tools[..], [ToolEntry::Webhook { name, .. }] if name == "room_status"),
        "{:?}",
        concierge.spec.tools
    );
    assert_eq!(concierge.spec.widget.title.as_deref(), Some("Front desk"));
    browser
        .goto(&format!(
            "{}/agents/{}/versions?a=1&b=2",
            app.base,
            concierge.id.as_str()
        ))
        .await
        .unwrap();
    until(
        &browser,
        "return document.querySelector('.d-added') !== null;",
        "the diff",
    )
    .await;
    screenshot(&browser, "dashboard-agent-versions").await;
    browser.goto(&format!("{}/agents", app.base)).await.unwrap();
    screenshot(&browser, "dashboard-agents").await;

    // Approve the waiting refund: the run goes on and the webhook is called.
    browser
        .goto(&format!("{}/approvals", app.base))
        .await
        .unwrap();
    let shown = browser
        .find(Locator::Css(".approval pre"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(shown.contains("\"amount\": 20"), "{shown}");
    screenshot(&browser, "dashboard-approvals").await;
    browser
        .find(Locator::Css("button[value=approve]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &browser,
        "return document.body.innerText.includes('Nothing is waiting');",
        "the emptied approvals",
    )
    .await;
    for _ in 0..100 {
        if !receiver.received().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(receiver.received().len(), 1, "the approved call ran");

    // Find the conversation by a word it contains; its transcript shows the answer.
    browser
        .goto(&format!("{}/conversations", app.base))
        .await
        .unwrap();
    fill(&browser, "#q", "kettle").await;
    browser
        .find(Locator::Css("form.filters button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(&browser, "return location.search.includes('q=kettle') && document.querySelectorAll('tbody tr').length === 1;", "one result").await;
    screenshot(&browser, "dashboard-conversations").await;
    browser
        .find(Locator::Css("tbody tr a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for _ in 0..50 {
        let html = browser.source().await.unwrap();
        if html.contains("Your refund is on its way.") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        browser.refresh().await.unwrap();
    }
    assert!(browser
        .source()
        .await
        .unwrap()
        .contains("Your refund is on its way."));
    screenshot(&browser, "dashboard-conversation").await;
    browser
        .find(Locator::Css(".runs a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &browser,
        "return document.querySelectorAll('.waterfall .step').length >= 2;",
        "the run's steps",
    )
    .await;
    let steps = browser.source().await.unwrap();
    assert!(
        steps.contains("step step-model")
            && steps.contains("step step-tool")
            && steps.contains("model call"),
        "the trace shows the model calls and the tool"
    );
    screenshot(&browser, "dashboard-run").await;

    // A new conversation appears in the list without reloading.
    browser
        .goto(&format!("{}/conversations", app.base))
        .await
        .unwrap();
    until(
        &browser,
        "return document.querySelector('[data-live-status]').textContent === 'Live';",
        "the live list",
    )
    .await;
    let fresh = expect(
        app.post(
            "/api/v1/conversations",
            &secret,
            &json!({"agent": "refunds", "title": "A brand new question"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    assert!(fresh["id"].is_string());
    until(
        &browser,
        "return document.querySelector('tbody').textContent.includes('A brand new question');",
        "the new conversation, live",
    )
    .await;

    // Create a publishable key for this origin; it is shown once, with a snippet to copy.
    browser.goto(&format!("{}/keys", app.base)).await.unwrap();
    fill(&browser, "#key-name", "Dashboard preview").await;
    fill(&browser, "#origins", &app.base).await;
    browser
        .find(Locator::Css("form[action='/keys'] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let key = until(
        &browser,
        "const k = document.querySelector('#new-key'); return k && k.textContent;",
        "the new key",
    )
    .await;
    let key = key.as_str().unwrap().to_owned();
    assert!(key.starts_with("fd_pk_"), "{key}");
    let snippet = browser
        .find(Locator::Css("#new-snippet"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        snippet.contains(&key) && snippet.contains("/widget.js"),
        "{snippet}"
    );
    browser
        .find(Locator::Css("button[data-copy='#new-snippet']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &browser,
        "return document.querySelector(\"button[data-copy='#new-snippet']\").textContent === 'Copied' || window.getSelection().toString().includes('widget.js');",
        "the copied snippet",
    )
    .await;
    screenshot(&browser, "dashboard-keys").await;

    // The embed page's preview is the widget itself, answering.
    browser
        .goto(&format!("{}/embed?agent=concierge&key={key}", app.base))
        .await
        .unwrap();
    let answer = "const host = document.querySelector('#embed-preview frontdesk-chat'); const root = host && host.shadowRoot;";
    until(
        &browser,
        &format!("{answer} return root && root.querySelector('textarea') !== null;"),
        "the preview widget",
    )
    .await;
    browser
        .execute(&format!("{answer} root.querySelector('textarea').value = 'Hello?'; root.querySelector('form').requestSubmit(); return true;"), Vec::new())
        .await
        .unwrap();
    until(
        &browser,
        &format!("{answer} const all = [...root.querySelectorAll('.msg.assistant')]; return all.length > 0 && all[all.length - 1].textContent.includes('Hello from the preview.');"),
        "the preview's answer",
    )
    .await;
    screenshot(&browser, "dashboard-embed").await;

    // The playground: the answer streams in, and the run's trace shows its model call.
    browser
        .goto(&format!("{}/playground?agent=concierge", app.base))
        .await
        .unwrap();
    fill(&browser, "#pg-input", "Hi there").await;
    browser
        .find(Locator::Css("#pg-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &browser,
        "return [...document.querySelectorAll('.pg-msg.assistant')].some(m => m.textContent.includes('Hello from the playground.'));",
        "the playground's answer",
    )
    .await;
    until(
        &browser,
        "return document.querySelector('.pg-substep.pg-model') !== null;",
        "the model call in the trace",
    )
    .await;
    // The same message answered again by version 1 on another model, side by side.
    browser
        .execute(
            "document.getElementById('pg-version').value = '1'; document.getElementById('pg-model').value = 'scripted/m'; return true;",
            Vec::new(),
        )
        .await
        .unwrap();
    browser
        .find(Locator::Css("#pg-compare button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &browser,
        "const rows = document.querySelectorAll('.pg-answers'); const boxes = rows[rows.length - 1].querySelectorAll('.pg-answer'); return boxes.length === 2 && boxes[1].textContent.includes('Hello from the comparison.') && boxes[1].textContent.includes('v1 · scripted/m') && boxes[0].textContent.includes('Hello from the playground.');",
        "the two answers side by side",
    )
    .await;
    let asked = scripted.requests();
    assert_eq!(asked.last().unwrap()["model"], "m");
    screenshot(&browser, "dashboard-playground").await;
    // Its transcript shows the two answers as branches; an owner may switch.
    let played = app
        .service
        .list_conversations(
            &demo.tenant.id,
            frontdesk_core::service::ListConversations {
                q: Some("Hi there".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items
        .remove(0);
    browser
        .goto(&format!(
            "{}/conversations/{}",
            app.base,
            played.id.as_str()
        ))
        .await
        .unwrap();
    until(
        &browser,
        "return document.body.textContent.includes('Branch 2 of 2') && document.body.textContent.includes('Hello from the comparison.') && document.querySelector('.branch-nav button') !== null;",
        "the transcript's branches",
    )
    .await;
    screenshot(&browser, "dashboard-conversation-branches").await;

    for (path, name) in [
        ("/usage", "usage"),
        ("/members", "members"),
        ("/settings", "settings"),
    ] {
        browser.goto(&format!("{}{path}", app.base)).await.unwrap();
        assert!(!heading(&browser).await.is_empty());
        screenshot(&browser, &format!("dashboard-{name}")).await;
    }

    // At 390 px the navigation folds into a menu and nothing scrolls sideways.
    browser.set_window_size(390, 844).await.unwrap();
    for (path, name) in [
        ("/", "overview"),
        ("/conversations", "conversations"),
        (
            &format!("/agents/{}", concierge.id.as_str()) as &str,
            "agent-editor",
        ),
    ] {
        browser.goto(&format!("{}{path}", app.base)).await.unwrap();
        let fits = browser
            .execute("return document.documentElement.scrollWidth <= window.innerWidth + 1 && getComputedStyle(document.querySelector('.sidenav')).display === 'none';", Vec::new())
            .await
            .unwrap();
        assert_eq!(fits, json!(true), "{path} at 390 px");
        screenshot(&browser, &format!("dashboard-{name}-390")).await;
    }
    browser.set_window_size(1280, 900).await.unwrap();

    // Dark: the same tokens, and axe checks their contrast too.
    browser.issue_cmd(ColorScheme("dark")).await.unwrap();
    for (path, name) in [
        ("/".to_owned(), "overview"),
        (format!("/agents/{}", concierge.id.as_str()), "agent-editor"),
        ("/conversations".to_owned(), "conversations"),
        ("/playground".to_owned(), "playground"),
    ] {
        browser.goto(&format!("{}{path}", app.base)).await.unwrap();
        let dark = browser
            .execute("return matchMedia('(prefers-color-scheme: dark)').matches && getComputedStyle(document.body).backgroundColor;", Vec::new())
            .await
            .unwrap();
        assert_eq!(dark, json!("rgb(17, 17, 20)"), "{path} in dark");
        screenshot(&browser, &format!("dashboard-{name}-dark")).await;
    }
    browser.issue_cmd(ColorScheme("light")).await.unwrap();

    // Sign out ends the session.
    browser.goto(&format!("{}/", app.base)).await.unwrap();
    browser
        .find(Locator::Css("form[action='/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &browser,
        "return location.pathname === '/login';",
        "the sign-in page",
    )
    .await;
    screenshot(&browser, "dashboard-login").await;
    browser.goto(&format!("{}/agents", app.base)).await.unwrap();
    assert_eq!(browser.current_url().await.unwrap().path(), "/login");

    // A viewer sees the editor without a control to change anything.
    app.service
        .add_user(
            &demo.tenant.id,
            NewUser {
                email: "vera@demo.test".into(),
                name: Some("Vera".into()),
                role: Role::Viewer,
                password: Some(PASSWORD.into()),
            },
        )
        .await
        .unwrap();
    sign_in(&browser, &app.base, "vera@demo.test", PASSWORD).await;
    browser
        .goto(&format!("{}/agents/{}", app.base, concierge.id.as_str()))
        .await
        .unwrap();
    let controls = browser
        .execute("return [...document.querySelectorAll('button[type=submit]')].filter(b => b.offsetParent !== null && !b.closest('form[action=\"/logout\"]') && !b.closest('.switcher')).length;", Vec::new())
        .await
        .unwrap();
    assert_eq!(controls, json!(0), "a viewer has nothing to submit");
    let disabled = browser
        .execute(
            "return document.querySelector('#instructions').matches(':disabled');",
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(disabled, json!(true));
    screenshot(&browser, "dashboard-agent-viewer").await;
    browser.close().await.unwrap();
    app.stop().await;
}
