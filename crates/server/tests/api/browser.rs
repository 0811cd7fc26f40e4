//! The widget in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by `make test`) driven over WebDriver (fantoccini). A page on
//! a second origin embeds `/widget.js` with a publishable key; the test talks through it.
//! Screenshots go to `target/test-artifacts/`.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{expect, TestApp};
use crate::scripted::{text, Scripted};

/// ChromeDriver on a free port, stopped when dropped.
pub(crate) struct Driver {
    url: String,
    _child: tokio::process::Child,
}

impl Driver {
    pub(crate) async fn start() -> Driver {
        let binary = "/usr/bin/chromedriver";
        assert!(
            std::path::Path::new(binary).exists(),
            "{binary} is missing: run `make test` (or ./scripts/ensure-browser.sh) to install chromium and chromium-driver"
        );
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let child = tokio::process::Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Driver {
                    url: format!("http://127.0.0.1:{port}"),
                    _child: child,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start on port {port}");
    }

    pub(crate) async fn browser(&self) -> Client {
        self.browser_with(&[]).await
    }

    /// A browser with more command-line switches (a fake microphone, say).
    pub(crate) async fn browser_with(&self, extra: &[&str]) -> Client {
        let mut args = vec![
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--window-size=1200,900",
        ];
        args.extend_from_slice(extra);
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": "/usr/bin/chromium", "args": args}),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap()
    }
}

/// A listener for a page on its own origin, and that origin (known before the page is).
pub(crate) async fn page_origin() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    (listener, origin)
}

/// A publishable key of the tenant with `secret` for pages on `origin`.
pub(crate) async fn publishable_key(app: &TestApp, secret: &str, origin: &str) -> String {
    let body = json!({"kind": "publishable", "name": "site", "allowed_origins": [origin]});
    let key = expect(
        app.post("/api/v1/api-keys", secret, &body)
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    key["key"].as_str().unwrap().to_owned()
}

/// Serves a page titled `title` that embeds the widget of `app_base` with `key`.
fn serve_page(listener: tokio::net::TcpListener, app_base: &str, key: &str, title: &str) {
    serve_html(
        listener,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
             <body><h1>{title}</h1>\
             <script src=\"{app_base}/widget.js\" data-key=\"{key}\" data-agent=\"support\" async></script></body></html>"
        ),
    );
}

/// Serves `page` at `/` on `listener`.
pub(crate) fn serve_html(listener: tokio::net::TcpListener, page: String) {
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

/// Runs `script` in the page (inside the widget's shadow root as `root`).
pub(crate) async fn in_widget(browser: &Client, script: &str) -> Value {
    let body = format!(
        "const host = document.querySelector('frontdesk-chat'); const root = host && host.shadowRoot; {script}"
    );
    browser.execute(&body, Vec::new()).await.unwrap()
}

pub(crate) async fn wait_until(browser: &Client, script: &str, what: &str) -> Value {
    for _ in 0..150 {
        let value = in_widget(browser, script).await;
        if !value.is_null() && value != json!(false) {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shown = in_widget(
        browser,
        "return root ? root.textContent : document.body.textContent;",
    )
    .await;
    panic!("timed out waiting for {what}; the widget shows: {shown}");
}

pub(crate) async fn screenshot(browser: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let png = browser.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

#[tokio::test]
async fn the_widget_on_another_origin_streams_a_reply_and_renders_it_inert() {
    let scripted = Scripted::start(vec![
        text("Your order ships today."),
        text("<img src=x onerror=\"window.pwned=1\"> [click](javascript:window.pwned=2)"),
        text("**Bold** and a [link](https://example.com/x)\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |"),
        text("Another take."),
    ])
    .await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .spawn()
        .await;
    let t = app.tenant("Acme").await;
    let agent = json!({"slug": "support", "name": "Support", "model": "scripted/m",
        "instructions": "The visitor is on the {{context.page}} page.",
        "widget": {"title": "Acme help", "greeting": "Hi! How can I help?", "starter_prompts": ["Where is my order?"]}});
    expect(
        app.post("/api/v1/agents", &t.key, &agent)
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    // The page's origin is only known once it listens: make the key for it then.
    let (listener, origin) = page_origin().await;
    let key = json!({"kind": "publishable", "name": "site", "allowed_origins": [origin.clone()], "allowed_agents": ["support"]});
    let key = expect(
        app.post("/api/v1/api-keys", &t.key, &key)
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let key = key["key"].as_str().unwrap().to_owned();
    serve_page(listener, &app.base, &key, "Acme Shop");
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser.goto(&format!("{origin}/")).await.unwrap();
    // The launcher appears; opening shows the greeting and a starter prompt.
    wait_until(
        &browser,
        "return root && root.querySelector('.launcher') !== null;",
        "the launcher",
    )
    .await;
    in_widget(
        &browser,
        "root.querySelector('.launcher').click(); return true;",
    )
    .await;
    wait_until(&browser, "return root.querySelector('.msg.assistant') && root.querySelector('.msg.assistant').textContent;", "the greeting").await;
    let title = in_widget(&browser, "return root.querySelector('h2').textContent;").await;
    assert_eq!(title, "Acme help");
    let chip = in_widget(
        &browser,
        "return root.querySelector('.chips button').textContent;",
    )
    .await;
    assert_eq!(chip, "Where is my order?");
    // The page says where the visitor is: the run's context, read by the instructions.
    in_widget(
        &browser,
        "window.Frontdesk.setContext({page: 'checkout'}); return true;",
    )
    .await;
    // Send by the starter prompt; the streamed reply shows.
    in_widget(
        &browser,
        "root.querySelector('.chips button').click(); return true;",
    )
    .await;
    let reply = wait_until(
        &browser,
        "const all = [...root.querySelectorAll('.msg.assistant')]; const last = all[all.length - 1]; return all.length >= 2 && last.textContent === 'Your order ships today.' && last.textContent;",
        "the reply",
    )
    .await;
    assert_eq!(reply, "Your order ships today.");
    assert_eq!(
        scripted.requests()[0]["messages"][0]["content"],
        "The visitor is on the checkout page."
    );
    screenshot(&browser, "widget-reply").await;
    // A reply with markup is text: no element, no script ran.
    in_widget(&browser, "const input = root.querySelector('textarea'); input.value = 'Show me'; root.querySelector('form').requestSubmit(); return true;").await;
    wait_until(&browser, "const all = [...root.querySelectorAll('.msg.assistant')]; return all[all.length - 1].textContent.includes('onerror');", "the markup reply").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let inert = in_widget(&browser, "return [root.querySelectorAll('img').length, root.querySelectorAll('a').length, window.pwned === undefined];").await;
    assert_eq!(inert, json!([0, 0, true]));
    // Markdown renders as elements, links open safely.
    in_widget(&browser, "const input = root.querySelector('textarea'); input.value = 'Format it'; root.querySelector('form').requestSubmit(); return true;").await;
    wait_until(&browser, "return root.querySelector('.msg.assistant strong') !== null && root.querySelectorAll('.msg.assistant td').length === 2;", "the Markdown reply").await;
    let link = in_widget(&browser, "const a = root.querySelector('.msg.assistant a'); return [a.getAttribute('href'), a.getAttribute('rel'), a.getAttribute('target'), root.querySelectorAll('.msg.assistant li').length];").await;
    assert_eq!(
        link,
        json!(["https://example.com/x", "noopener noreferrer", "_blank", 2])
    );
    // Regenerate asks for another answer to the same message.
    in_widget(
        &browser,
        "root.querySelector('.regenerate').click(); return true;",
    )
    .await;
    wait_until(
        &browser,
        "const all = [...root.querySelectorAll('.msg.assistant')]; return all[all.length - 1].textContent === 'Another take.';",
        "the regenerated answer",
    )
    .await;
    // A reload keeps the conversation.
    browser.refresh().await.unwrap();
    wait_until(
        &browser,
        "return root && root.querySelectorAll('.msg.user').length === 3 && [...root.querySelectorAll('.msg.assistant')].pop().textContent === 'Another take.';",
        "the history after a reload (with the regenerated answer)",
    )
    .await;
    in_widget(
        &browser,
        "root.querySelector('.launcher').click(); return true;",
    )
    .await;
    screenshot(&browser, "widget-after-reload").await;
    // The same key from a page on an origin it does not allow gets no session.
    let (listener, other) = page_origin().await;
    serve_page(listener, &app.base, &key, "Elsewhere");
    browser.goto(&format!("{other}/")).await.unwrap();
    wait_until(&browser, "return root && root.querySelector('.msg.notice') && root.querySelector('.msg.notice').textContent.includes('not available');", "the refusal").await;
    browser.close().await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn the_demo_page_embeds_a_working_widget_that_cites_the_shop_page() {
    let scripted = Scripted::start(vec![text(
        "Returns are free within 30 days, in the original packaging.",
    )])
    .await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .embedder(crate::words::Words::new())
        .spawn()
        .await;
    let demo = app
        .service
        .bootstrap_demo(std::slice::from_ref(&app.base))
        .await
        .unwrap();
    let frontdesk_core::service::Demo::Created(demo) = demo else {
        panic!("the demo was not created")
    };
    // The demo agent runs on the local model by default; here on the scripted one.
    expect(
        app.patch(
            "/api/v1/agents/support",
            demo.secret_key.expose(),
            &json!({"model": "scripted/m"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    // The demo's knowledge base: the shop's own page, which the agent answers from.
    app.demo_knowledge(&demo.tenant.id, "support").await;
    let secret = demo.secret_key.expose();
    for _ in 0..200 {
        let listed = expect(
            app.get("/api/v1/knowledge-bases/Demo%20shop/documents", secret)
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await;
        if listed["data"][0]["status"] == "ready" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser.goto(&format!("{}/demo", app.base)).await.unwrap();
    wait_until(
        &browser,
        "return root && root.querySelector('.launcher') !== null;",
        "the launcher",
    )
    .await;
    in_widget(
        &browser,
        "root.querySelector('.launcher').click(); return true;",
    )
    .await;
    wait_until(
        &browser,
        "return root.querySelector('.chips button') !== null;",
        "the starter prompts",
    )
    .await;
    in_widget(
        &browser,
        "[...root.querySelectorAll('.chips button')].find((b) => b.textContent.includes('return policy')).click(); return true;",
    )
    .await;
    wait_until(
        &browser,
        "return [...root.querySelectorAll('.msg.assistant')].some((m) => m.textContent.startsWith('Returns are free within 30 days'));",
        "the reply on the demo page",
    )
    .await;
    // Under the answer, its source: the shop page, linked, at its Returns section.
    wait_until(
        &browser,
        "return [...root.querySelectorAll('.sources li')].some((li) => li.textContent.includes('Demo Company') && li.textContent.includes('Returns') && li.querySelector('a') && li.querySelector('a').href.endsWith('/demo'));",
        "the cited shop page under the answer",
    )
    .await;
    let system = scripted.requests()[0]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(system.contains("30 days, free of charge"), "{system}");
    screenshot(&browser, "demo-page").await;
    browser.close().await.unwrap();
    app.stop().await;
}

/// Presses keys as a person would (WebDriver key actions on whatever has focus).
async fn press(browser: &Client, keys: &str) {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    let mut actions = KeyActions::new("keyboard".into());
    for key in keys.chars() {
        actions = actions
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
    }
    browser.perform_actions(actions).await.unwrap();
}

const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";
const ESCAPE: &str = "\u{E00C}";

#[tokio::test]
async fn keyboard_only_a_visitor_chats_and_approves_a_call_meant_for_them() {
    let receiver = crate::scripted::Receiver::start(200, r#"{"booked": true}"#, 0).await;
    let scripted = Scripted::start(vec![
        crate::scripted::call("c1", "book_table", json!({"people": 2})),
        text("Booked a table for two."),
    ])
    .await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .allow_private_urls()
        .spawn()
        .await;
    let t = app.tenant("Bistro").await;
    let agent = json!({"slug": "support", "name": "Bistro", "model": "scripted/m", "approvals": {"approver": "end_user"},
        "tools": [{"type": "webhook", "name": "book_table", "url": receiver.url, "requires_approval": true,
                   "parameters": {"type": "object", "properties": {"people": {"type": "integer"}}}}]});
    expect(
        app.post("/api/v1/agents", &t.key, &agent)
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let (listener, origin) = page_origin().await;
    let key = publishable_key(&app, &t.key, &origin).await;
    serve_page(listener, &app.base, &key, "Bistro");
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser.goto(&format!("{origin}/")).await.unwrap();
    wait_until(
        &browser,
        "return root && root.querySelector('.launcher') !== null;",
        "the launcher",
    )
    .await;
    // Tab reaches the launcher, Enter opens the chat with the focus in the message box.
    press(&browser, TAB).await;
    wait_until(
        &browser,
        "return root.activeElement === root.querySelector('.launcher');",
        "focus on the launcher",
    )
    .await;
    press(&browser, ENTER).await;
    wait_until(
        &browser,
        "return root.activeElement === root.querySelector('textarea');",
        "focus in the message box",
    )
    .await;
    press(&browser, "Book a table for two").await;
    press(&browser, ENTER).await;
    // The approval is asked of the visitor; its Approve button takes the focus.
    wait_until(
        &browser,
        "return root.activeElement && root.activeElement.textContent === 'Approve';",
        "the approval prompt",
    )
    .await;
    screenshot(&browser, "widget-approval").await;
    assert!(receiver.received().is_empty());
    press(&browser, ENTER).await;
    wait_until(
        &browser,
        "return [...root.querySelectorAll('.msg.assistant')].some((m) => m.textContent === 'Booked a table for two.');",
        "the answer after the approval",
    )
    .await;
    assert_eq!(receiver.received().len(), 1);
    // Escape closes the chat and gives the focus back to the launcher.
    in_widget(
        &browser,
        "root.querySelector('textarea').focus(); return true;",
    )
    .await;
    press(&browser, ESCAPE).await;
    wait_until(
        &browser,
        "return root.querySelector('.panel').hidden && root.activeElement === root.querySelector('.launcher');",
        "the chat closed with the focus back",
    )
    .await;
    browser.close().await.unwrap();
    app.stop().await;
}
