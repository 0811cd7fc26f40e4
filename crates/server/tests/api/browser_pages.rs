//! More of the widget in Chromium: an agent's hosted page (strict CSP, no key), the visitor's
//! conversation list, Retry after a failed answer, cited sources, readable colours on a light accent, the
//! visitor's language, suggestion chips from structured output, the small-screen layout, a
//! visitor that cannot read another visitor's conversation from the page, and a stream that
//! drops mid-answer (the widget re-attaches with `Last-Event-ID`).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::browser::{
    in_widget, page_origin, publishable_key, screenshot, serve_html, wait_until, Driver,
};
use crate::common::{expect, TestApp};
use crate::scripted::{call, text, Reply, Scripted};

async fn create_agent(app: &TestApp, key: &str, agent: Value) {
    expect(
        app.post("/api/v1/agents", key, &agent)
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
}

/// Types `text` into the widget and sends it.
async fn say(browser: &fantoccini::Client, text: &str) {
    let script = format!(
        "const input = root.querySelector('textarea'); input.value = {}; root.querySelector('form').requestSubmit(); return true;",
        json!(text)
    );
    in_widget(browser, &script).await;
}

const LAST_ANSWER: &str =
    "const all = [...root.querySelectorAll('.msg.assistant')]; return all.length ? all[all.length - 1].textContent : null;";

async fn wait_for_answer(browser: &fantoccini::Client, answer: &str) {
    let script = format!(
        "const all = [...root.querySelectorAll('.msg.assistant')]; return all.length > 0 && all[all.length - 1].textContent === {};",
        json!(answer)
    );
    wait_until(browser, &script, answer).await;
}

#[tokio::test]
async fn the_hosted_page_lists_conversations_and_retries_a_failed_answer() {
    let scripted = Scripted::start(vec![
        text("First answer."),
        Reply::Fail(400),
        text("Recovered answer."),
        call("h1", "help_pages", json!({})),
        text("Parcels arrive in two days."),
    ])
    .await;
    let stop = tokio_util::sync::CancellationToken::new();
    let mcp = crate::mcp::serve_calculator(&stop).await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .allow_private_urls()
        .spawn()
        .await;
    let t = app.tenant("Acme").await;
    // A light accent: the widget must put dark text on it.
    create_agent(
        &app,
        &t.key,
        json!({"slug": "support", "name": "Support", "model": "scripted/m",
            "mcp_servers": [{"name": "help", "url": mcp}],
            "widget": {"public_page": true, "title": "Acme help", "accent_color": "#fde047",
                       "greeting": "Hi! Ask away."}}),
    )
    .await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser
        .goto(&format!("{}/c/{}/support", app.base, t.id.as_str()))
        .await
        .unwrap();
    wait_until(
        &browser,
        "return root && root.querySelector('h2') && root.querySelector('h2').textContent === 'Acme help' && root.querySelector('.msg.assistant') !== null;",
        "the hosted chat",
    )
    .await;
    // Inline: no launcher, the panel fills the page; the styles applied under the page's CSP.
    let layout = in_widget(
        &browser,
        "const p = root.querySelector('.panel'); return [root.querySelector('.launcher').hidden, p.hidden, getComputedStyle(root.querySelector('header')).backgroundColor];",
    )
    .await;
    assert_eq!(layout, json!([true, false, "rgb(253, 224, 71)"]));
    // WCAG contrast of the header's text on the accent and of notices on the panel.
    let contrast = in_widget(
        &browser,
        "const rgb = (c) => c.match(/\\d+/g).slice(0, 3).map(Number); \
         const lum = (c) => { const [r, g, b] = rgb(c).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; }; \
         const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); }; \
         const h = getComputedStyle(root.querySelector('header')); const send = getComputedStyle(root.querySelector('form button')); \
         return [ratio(h.color, h.backgroundColor), ratio(send.color, send.backgroundColor)];",
    )
    .await;
    for ratio in contrast.as_array().unwrap() {
        assert!(ratio.as_f64().unwrap() >= 4.5, "contrast {contrast}");
    }

    say(&browser, "Hello").await;
    wait_for_answer(&browser, "First answer.").await;
    // A new conversation whose answer fails: an error and a Retry button, which recovers.
    in_widget(
        &browser,
        "root.querySelector('header button:nth-of-type(2)').click(); return true;",
    )
    .await;
    say(&browser, "Second question").await;
    wait_until(
        &browser,
        "return root.querySelector('.retry') !== null;",
        "the Retry button",
    )
    .await;
    screenshot(&browser, "hosted-failed-answer").await;
    in_widget(
        &browser,
        "root.querySelector('.retry').click(); return true;",
    )
    .await;
    wait_for_answer(&browser, "Recovered answer.").await;
    assert_eq!(
        in_widget(&browser, "return root.querySelectorAll('.retry').length;").await,
        json!(0)
    );
    screenshot(&browser, "hosted-page").await;
    // The conversation list: both conversations, newest first; the older one opens.
    in_widget(
        &browser,
        "root.querySelector('header button').click(); return true;",
    )
    .await;
    let titles = wait_until(
        &browser,
        "const items = [...root.querySelectorAll('.history li button strong')].map((s) => s.textContent); return items.length === 2 && items;",
        "the conversation list",
    )
    .await;
    assert_eq!(titles, json!(["Second question", "Hello"]));
    screenshot(&browser, "hosted-history").await;
    in_widget(
        &browser,
        "root.querySelectorAll('.history li button')[1].click(); return true;",
    )
    .await;
    wait_for_answer(&browser, "First answer.").await;
    let shown = in_widget(
        &browser,
        "return [root.querySelector('.history').hidden, [...root.querySelectorAll('.msg.user')].map((m) => m.textContent)];",
    )
    .await;
    assert_eq!(shown, json!([true, ["Hello"]]));
    // An answer drawn from a tool's resource link cites it, as a safe link.
    say(&browser, "How long does shipping take?").await;
    let source = wait_until(
        &browser,
        "const a = root.querySelector('.sources a'); return a && [a.textContent, a.getAttribute('href'), a.getAttribute('rel')];",
        "the cited source",
    )
    .await;
    assert_eq!(
        source,
        json!([
            "Shipping times",
            "https://help.example.com/shipping",
            "noopener noreferrer"
        ])
    );
    wait_until(
        &browser,
        "return root.querySelector('.sources').parentElement.textContent.startsWith('Parcels arrive in two days.');",
        "the answer with its source",
    )
    .await;
    screenshot(&browser, "hosted-sources").await;
    // After a reload the source is still shown.
    browser.refresh().await.unwrap();
    wait_until(
        &browser,
        "return root && root.querySelector('.sources a') !== null;",
        "the source after a reload",
    )
    .await;
    browser.close().await.unwrap();
    stop.cancel();
    app.stop().await;
}

#[tokio::test]
async fn the_widget_speaks_the_visitors_language_offers_suggestions_and_fits_a_phone() {
    let scripted = Scripted::start(vec![
        text(r#"{"response": "Gern geschehen!", "suggestions": ["Versand", "Rückgabe"]}"#),
        text(r#"{"response": "Versand dauert zwei Tage.", "suggestions": []}"#),
    ])
    .await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .spawn()
        .await;
    let t = app.tenant("Acme").await;
    let schema = json!({"type": "object", "additionalProperties": false, "required": ["response", "suggestions"],
        "properties": {"response": {"type": "string"}, "suggestions": {"type": "array", "items": {"type": "string"}}}});
    create_agent(
        &app,
        &t.key,
        json!({"slug": "support", "name": "Support", "model": "scripted/m", "output_schema": schema,
            "widget": {"title": "Help", "greeting": "Hi!", "starter_prompts": ["Where is my order?"],
                "texts": {"de": {"title": "Hilfe", "greeting": "Hallo! Wie können wir helfen?",
                    "starter_prompts": ["Wo ist meine Bestellung?"],
                    "labels": {"open": "Chat öffnen", "send": "Senden", "new_chat": "Neu"}}}}}),
    )
    .await;
    let (listener, origin) = page_origin().await;
    let key = publishable_key(&app, &t.key, &origin).await;
    serve_html(
        listener,
        format!(
            "<!doctype html><html lang=\"de\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Laden</title></head>\
             <body><h1>Laden</h1><script src=\"{}/widget.js\" data-key=\"{key}\" data-agent=\"support\" data-lang=\"de-AT\" async></script></body></html>",
            app.base
        ),
    );
    // Another visitor's conversation, made through the API from the same page origin.
    let other = expect(
        app.client
            .post(format!("{}/widget/v1/session", app.base))
            .header("x-frontdesk-key", &key)
            .header("origin", &origin)
            .json(&json!({"agent": "support"}))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let other_conversation = expect(
        app.client
            .post(format!("{}/widget/v1/conversations", app.base))
            .bearer_auth(other["token"].as_str().unwrap())
            .header("origin", &origin)
            .json(&json!({"agent": "support"}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser.set_window_size(390, 844).await.unwrap();
    browser.goto(&format!("{origin}/")).await.unwrap();
    wait_until(
        &browser,
        "return root && root.querySelector('h2').textContent === 'Hilfe';",
        "the German texts",
    )
    .await;
    let texts = in_widget(
        &browser,
        "root.querySelector('.launcher').click(); return [root.querySelector('.launcher').getAttribute('aria-label'), root.querySelector('.msg.assistant').textContent, root.querySelector('.chips button').textContent, root.querySelector('form button').textContent];",
    )
    .await;
    assert_eq!(
        texts,
        json!([
            "Chat öffnen",
            "Hallo! Wie können wir helfen?",
            "Wo ist meine Bestellung?",
            "Senden"
        ])
    );
    // On a phone the open panel takes the whole screen.
    let fits = in_widget(
        &browser,
        "const r = root.querySelector('.panel').getBoundingClientRect(); return [Math.round(r.left), Math.round(r.top), Math.round(r.width) === innerWidth, Math.round(r.height) === innerHeight];",
    )
    .await;
    assert_eq!(fits, json!([0, 0, true, true]));
    // Suggestions from the structured answer become chips; one sends.
    in_widget(
        &browser,
        "root.querySelector('.chips button').click(); return true;",
    )
    .await;
    wait_for_answer(&browser, "Gern geschehen!").await;
    let chips = wait_until(
        &browser,
        "const c = [...root.querySelectorAll('.chips button')].map((b) => b.textContent); return c.length === 2 && c;",
        "the suggestion chips",
    )
    .await;
    assert_eq!(chips, json!(["Versand", "Rückgabe"]));
    screenshot(&browser, "widget-phone-german").await;
    in_widget(
        &browser,
        "root.querySelector('.chips button').click(); return true;",
    )
    .await;
    wait_for_answer(&browser, "Versand dauert zwei Tage.").await;
    let users = in_widget(
        &browser,
        "return [...root.querySelectorAll('.msg.user')].map((m) => m.textContent);",
    )
    .await;
    assert_eq!(users, json!(["Wo ist meine Bestellung?", "Versand"]));
    assert_eq!(
        in_widget(&browser, LAST_ANSWER).await,
        "Versand dauert zwei Tage."
    );
    // From the page, this visitor's token does not open the other visitor's conversation.
    let script = format!(
        "const saved = JSON.parse(localStorage.getItem(Object.keys(localStorage).find((k) => k.startsWith('frontdesk:')))); \
         const mine = await fetch({base:?} + '/widget/v1/conversations/' + saved.conversation, {{headers: {{authorization: 'Bearer ' + saved.token}}}}); \
         const theirs = await fetch({base:?} + '/widget/v1/conversations/' + {id}, {{headers: {{authorization: 'Bearer ' + saved.token}}}}); \
         return [mine.status, theirs.status];",
        base = app.base,
        id = json!(other_conversation["id"]),
    );
    let statuses = browser
        .execute(
            &format!("return (async () => {{ {script} }})();"),
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(statuses, json!([200, 404]));
    browser.close().await.unwrap();
    app.stop().await;
}

/// A page with `network` (a script that wraps `fetch`) embedding the open widget of an agent
/// whose model says "One two three four five." slowly.
async fn slow_widget_on(
    network: &str,
) -> (
    TestApp,
    crate::common::TestTenant,
    Driver,
    fantoccini::Client,
) {
    let slow = std::sync::Arc::new(crate::common::ScriptedModel {
        words: vec!["One ", "two ", "three ", "four ", "five."],
        pause_ms: 150,
        fail: None,
    });
    let app = TestApp::builder().provider("slow", slow).spawn().await;
    let t = app.tenant("Acme").await;
    create_agent(
        &app,
        &t.key,
        json!({"slug": "support", "name": "Support", "model": "slow/m"}),
    )
    .await;
    let (listener, origin) = page_origin().await;
    let key = publishable_key(&app, &t.key, &origin).await;
    serve_html(
        listener,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Widget</title></head><body>{network}\
             <script src=\"{}/widget.js\" data-key=\"{}\" data-agent=\"support\" async></script></body></html>",
            app.base,
            key
        ),
    );
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser.goto(&format!("{origin}/")).await.unwrap();
    wait_until(
        &browser,
        "return root && root.querySelector('.launcher') !== null && root.querySelector('textarea') !== null;",
        "the widget",
    )
    .await;
    in_widget(
        &browser,
        "root.querySelector('.launcher').click(); return true;",
    )
    .await;
    (app, t, driver, browser)
}

/// Cuts the body of the first message POST after two reads, as a dropped network would, and
/// counts the re-attaching requests (`/events`).
const FLAKY_NETWORK: &str = r#"<script>
const realFetch = window.fetch.bind(window);
window.cuts = 0;
window.reattached = 0;
window.fetch = async (input, init) => {
  const url = String(input);
  if (url.includes('/events')) window.reattached += 1;
  const response = await realFetch(input, init);
  if (window.cuts > 0 || !url.endsWith('/messages') || !init || init.method !== 'POST') return response;
  window.cuts += 1;
  const reader = response.body.getReader();
  let reads = 0;
  const body = new ReadableStream({
    async pull(controller) {
      if (reads >= 2) { reader.cancel(); controller.error(new TypeError('network error')); return; }
      reads += 1;
      const { value, done } = await reader.read();
      if (done) controller.close(); else controller.enqueue(value);
    },
  });
  return new Response(body, { status: response.status, headers: response.headers });
};
</script>"#;

#[tokio::test]
async fn the_widget_reattaches_when_the_stream_drops_and_loses_nothing() {
    let (app, t, _driver, browser) = slow_widget_on(FLAKY_NETWORK).await;
    say(&browser, "Count to five").await;
    wait_for_answer(&browser, "One two three four five.").await;
    // The run completed (stored, then `message.completed` offers Regenerate).
    wait_until(
        &browser,
        "return root.querySelector('.regenerate') !== null;",
        "the completed answer",
    )
    .await;
    let network = browser
        .execute("return [window.cuts, window.reattached];", Vec::new())
        .await
        .unwrap();
    assert_eq!(network[0], 1, "the stream was cut once");
    assert!(network[1].as_u64().unwrap() >= 1, "{network}");
    // Nothing was doubled or lost, no error is shown, and the answer is stored once.
    let shown = in_widget(
        &browser,
        "return [root.querySelectorAll('.msg.assistant').length, root.querySelectorAll('.msg.notice').length, root.querySelectorAll('.retry').length];",
    )
    .await;
    assert_eq!(shown, json!([1, 0, 0]));
    let listed = expect(
        app.get("/api/v1/conversations", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["data"][0]["message_count"], 2);
    browser.close().await.unwrap();
    app.stop().await;
}

/// A network that can go offline for `/events` (after cutting the next message POST after two
/// reads), or lose the next message POST's answer after the server took it.
const OFFLINE_NETWORK: &str = r#"<script>
const realFetch = window.fetch.bind(window);
window.offline = false;
window.cutNext = false;
window.loseNext = false;
window.fetch = async (input, init) => {
  const url = String(input);
  const post = init && init.method === 'POST' && url.endsWith('/messages');
  if (window.offline && url.includes('/events')) throw new TypeError('offline');
  const response = await realFetch(input, init);
  if (post && window.loseNext) {
    window.loseNext = false;
    await response.body.cancel();
    throw new TypeError('network error');
  }
  if (!post || !window.cutNext) return response;
  window.cutNext = false;
  const reader = response.body.getReader();
  let reads = 0;
  const body = new ReadableStream({
    async pull(controller) {
      if (reads >= 2) { window.offline = true; reader.cancel(); controller.error(new TypeError('network error')); return; }
      reads += 1;
      const { value, done } = await reader.read();
      if (done) controller.close(); else controller.enqueue(value);
    },
  });
  return new Response(body, { status: response.status, headers: response.headers });
};
</script>"#;

/// The message count of the tenant's newest conversation.
async fn stored_messages(app: &TestApp, key: &str) -> i64 {
    let listed = expect(
        app.get("/api/v1/conversations", key).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    listed["data"][0]["message_count"].as_i64().unwrap_or(0)
}

#[tokio::test]
async fn retry_after_a_lost_connection_follows_the_run_and_never_sends_twice() {
    let (app, t, _driver, browser) = slow_widget_on(OFFLINE_NETWORK).await;

    // The stream drops and re-attaching fails until the widget gives up and offers Retry.
    browser
        .execute("window.cutNext = true; return true;", Vec::new())
        .await
        .unwrap();
    say(&browser, "Count to five").await;
    wait_until(
        &browser,
        "return root.querySelector('.retry') !== null;",
        "Retry after the lost connection",
    )
    .await;
    // Back online, Retry follows the same run from where the widget was: one answer, whole.
    browser
        .execute("window.offline = false; return true;", Vec::new())
        .await
        .unwrap();
    in_widget(
        &browser,
        "root.querySelector('.retry').click(); return true;",
    )
    .await;
    wait_for_answer(&browser, "One two three four five.").await;
    let shown = in_widget(
        &browser,
        "return [root.querySelectorAll('.msg.assistant').length, root.querySelectorAll('.msg.user').length, root.querySelectorAll('.retry').length];",
    )
    .await;
    assert_eq!(shown, json!([1, 1, 0]));
    assert_eq!(stored_messages(&app, &t.key).await, 2);

    // The next message reaches the server but its answer is lost on the way back: Retry
    // shows the stored answer instead of sending the message again.
    browser
        .execute("window.loseNext = true; return true;", Vec::new())
        .await
        .unwrap();
    say(&browser, "Count again").await;
    wait_until(
        &browser,
        "return root.querySelector('.retry') !== null;",
        "Retry after the lost answer",
    )
    .await;
    for _ in 0..100 {
        if stored_messages(&app, &t.key).await == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(stored_messages(&app, &t.key).await, 4);
    in_widget(
        &browser,
        "root.querySelector('.retry').click(); return true;",
    )
    .await;
    wait_until(
        &browser,
        "return root.querySelectorAll('.msg.assistant').length === 2 && root.querySelectorAll('.msg.user').length === 2;",
        "the stored answer shown",
    )
    .await;
    screenshot(&browser, "widget-retry-after-lost-answer").await;
    assert_eq!(stored_messages(&app, &t.key).await, 4, "sent once");
    browser.close().await.unwrap();
    app.stop().await;
}
