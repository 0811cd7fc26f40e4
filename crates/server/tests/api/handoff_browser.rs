//! Human handoff in two Chromium windows: a visitor in the widget on a shop's page, a staff
//! member in the dashboard's inbox. The agent hands off; the conversation waits in the
//! inbox; staff take it and reply, and the visitor sees the reply live with the staff
//! member's name; the visitor's next message reaches staff and starts no run; staff hand
//! back and the agent's next answer reads the staff reply. Screenshots of the inbox and of
//! the widget during the takeover go to `target/test-artifacts/handoff-*.png`.

use std::time::Duration;

use fantoccini::{Client, Locator};
use frontdesk_core::tenant::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::browser::{in_widget, page_origin, publishable_key, serve_html, wait_until, Driver};
use crate::common::{expect, TestApp};
use crate::dashboard::{member, PASSWORD};
use crate::scripted::{call, text, Scripted};

/// Waits until `script` (run in the page) returns something truthy.
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

async fn say(browser: &Client, text: &str) {
    let script = format!(
        "const input = root.querySelector('textarea'); input.value = {}; root.querySelector('form').requestSubmit(); return true;",
        json!(text)
    );
    in_widget(browser, &script).await;
}

fn widget_shows(text: &str) -> String {
    format!(
        "return root && root.querySelector('.log').textContent.includes({});",
        json!(text)
    )
}

fn page_shows(text: &str) -> String {
    format!("return document.body.innerText.includes({});", json!(text))
}

async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_visitor_and_a_staff_member_talk_through_a_takeover() {
    let scripted = Scripted::start(vec![
        call("c1", "transfer_to_human", json!({"reason": "parcel lost"})),
        text("Thanks for waiting! As Sam said, your parcel ships on Monday."),
    ])
    .await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .spawn()
        .await;
    let tenant = app.tenant("Shop").await;
    let agent = json!({
        "slug": "support", "name": "Support", "model": "scripted/m",
        "tools": [{"type": "builtin", "name": "transfer_to_human"}],
        "human": {"waiting_message": "A person will join shortly."},
        "widget": {"human_button": true},
    });
    expect(
        app.post("/api/v1/agents", &tenant.key, &agent)
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    member(&app, &tenant, "sam@shop.example", Role::Editor).await;
    let user = app
        .service
        .store()
        .find_user_by_email("sam@shop.example")
        .await
        .unwrap()
        .unwrap();
    app.service
        .set_profile(&user.id, "Sam Rivera", None)
        .await
        .unwrap();
    let (listener, origin) = page_origin().await;
    let key = publishable_key(&app, &tenant.key, &origin).await;
    serve_html(
        listener,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Shop</title></head>\
             <body><h1>Shop</h1><script src=\"{}/widget.js\" data-key=\"{key}\" data-agent=\"support\" async></script></body></html>",
            app.base
        ),
    );

    let driver = Driver::start().await;
    let visitor = driver.browser().await;
    let staff = driver.browser().await;

    // The visitor asks; the agent hands off.
    visitor.goto(&origin).await.unwrap();
    wait_until(
        &visitor,
        "return root && root.querySelector('.launcher') !== null;",
        "the launcher",
    )
    .await;
    in_widget(
        &visitor,
        "root.querySelector('.launcher').click(); return true;",
    )
    .await;
    say(&visitor, "My parcel is lost, I want a person").await;
    wait_until(
        &visitor,
        &widget_shows("A person will join shortly."),
        "the waiting message",
    )
    .await;

    // Staff see it waiting in the inbox.
    staff.goto(&format!("{}/login", app.base)).await.unwrap();
    staff
        .find(Locator::Css("#email"))
        .await
        .unwrap()
        .send_keys("sam@shop.example")
        .await
        .unwrap();
    staff
        .find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    click(&staff, "form button[type=submit]").await;
    until(&staff, "return document.querySelector('h1') && document.querySelector('h1').textContent === 'Overview';", "the overview").await;
    staff.goto(&format!("{}/inbox", app.base)).await.unwrap();
    until(
        &staff,
        "return document.querySelector('.inbox-row.waiting a') !== null;",
        "a waiting conversation",
    )
    .await;
    crate::browser::screenshot(&staff, "handoff-inbox").await;
    crate::page_checks::axe(&staff, "handoff-inbox").await;
    click(&staff, ".inbox-row.waiting a").await;
    until(
        &staff,
        &page_shows("waiting for a person"),
        "the conversation",
    )
    .await;
    until(
        &staff,
        &page_shows("The agent asked for a person: parcel lost"),
        "the handoff in the timeline",
    )
    .await;

    // Staff take it and reply; the visitor sees both live, the reply with Sam's name.
    click(&staff, "form[action$='/take'] button").await;
    until(&staff, &page_shows("Sam Rivera handles it"), "the takeover").await;
    wait_until(
        &visitor,
        &widget_shows("Sam Rivera joined the conversation"),
        "the person joining",
    )
    .await;
    let reply = "Hi, I'm Sam. I found your parcel: it ships on Monday.";
    let field = staff.find(Locator::Css("#reply-content")).await.unwrap();
    field.send_keys(reply).await.unwrap();
    click(&staff, "form[data-reply] button[type=submit]").await;
    until(&staff, &page_shows(reply), "the reply in the inbox").await;
    wait_until(&visitor, &widget_shows(reply), "the staff reply").await;
    let author = in_widget(
        &visitor,
        "const m = root.querySelector('.msg.staff .by'); return m && m.textContent;",
    )
    .await;
    assert_eq!(author, json!("SRSam Rivera"), "initials and name");
    assert_eq!(
        in_widget(&visitor, "return root.querySelector('.human').hidden;").await,
        json!(true),
        "no button to ask for a person while one answers"
    );
    crate::browser::screenshot(&visitor, "handoff-widget-takeover").await;

    // The visitor answers: staff see it live, and no run starts.
    say(&visitor, "Great, thank you Sam!").await;
    until(
        &staff,
        &page_shows("Great, thank you Sam!"),
        "the visitor's message in the inbox",
    )
    .await;
    assert_eq!(
        scripted.requests().len(),
        1,
        "no run while a person handles it"
    );
    crate::browser::screenshot(&staff, "handoff-inbox-conversation").await;
    crate::page_checks::axe(&staff, "handoff-inbox-conversation").await;

    // Staff hand back; the agent answers the next message with Sam's reply in its history.
    click(&staff, "form[action$='/handback'] button").await;
    wait_until(
        &visitor,
        &widget_shows("The assistant is back"),
        "the assistant coming back",
    )
    .await;
    wait_until(
        &visitor,
        "return root.querySelector('.human').hidden === false;",
        "the button back",
    )
    .await;
    say(&visitor, "When exactly?").await;
    wait_until(
        &visitor,
        &widget_shows("your parcel ships on Monday."),
        "the agent's answer",
    )
    .await;
    let request = scripted.requests().pop().unwrap().to_string();
    assert!(
        request.contains("[Sam Rivera from the team wrote:] Hi, I'm Sam."),
        "{request}"
    );
    until(
        &staff,
        &page_shows("As Sam said"),
        "the agent's answer in the inbox",
    )
    .await;

    // The visitor's own button hands the conversation to people again, with no run.
    in_widget(
        &visitor,
        "root.querySelector('.human').click(); return true;",
    )
    .await;
    wait_until(
        &visitor,
        "const all = [...root.querySelectorAll('.msg.assistant')]; return all.length > 0 && all[all.length - 1].textContent === 'A person will join shortly.';",
        "the waiting message after the button",
    )
    .await;
    assert_eq!(scripted.requests().len(), 2, "the button starts no run");
    until(
        &staff,
        &page_shows("The visitor asked for a person"),
        "the request in the inbox",
    )
    .await;
    visitor.close().await.unwrap();
    staff.close().await.unwrap();
}
