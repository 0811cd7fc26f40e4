//! Human handoff over HTTP: the agent's `transfer_to_human`, the waiting list, staff racing
//! to take a conversation, replies the visitor's widget hears live, internal notes nobody
//! else sees, messages that start no run while people handle it, handing back (the agent
//! reads the staff reply), the signed `conversation.waiting` webhook, the wait that runs out,
//! the team away, and the visitor's own button.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{expect, expect_error, TestApp, TestTenant};
use crate::scripted::{call, text, Receiver, Scripted};

const SHOP: &str = "https://shop.example.com";

pub(crate) struct Desk {
    pub app: TestApp,
    pub tenant: TestTenant,
    pub scripted: Scripted,
    key: String,
}

/// A tenant whose `support` agent may hand conversations to people, and its widget key.
pub(crate) async fn desk(app: TestApp, scripted: Scripted, human: Value) -> Desk {
    let tenant = app.tenant("Shop").await;
    let agent = json!({
        "slug": "support", "name": "Support", "model": "scripted/m",
        "tools": [{"type": "builtin", "name": "transfer_to_human"}],
        "human": human,
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
    let key = expect(
        app.post(
            "/api/v1/api-keys",
            &tenant.key,
            &json!({"kind": "publishable", "name": "site", "allowed_origins": [SHOP]}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    Desk {
        app,
        tenant,
        scripted,
        key: key["key"].as_str().unwrap().to_owned(),
    }
}

impl Desk {
    pub(crate) fn widget(
        &self,
        method: Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.app
            .client
            .request(method, format!("{}{path}", self.app.base))
            .bearer_auth(token)
            .header("origin", SHOP)
    }

    /// A new visitor's token and conversation.
    pub(crate) async fn visitor(&self) -> (String, String) {
        let session = expect(
            self.app
                .client
                .post(format!("{}/widget/v1/session", self.app.base))
                .header("x-frontdesk-key", &self.key)
                .header("origin", SHOP)
                .json(&json!({"agent": "support"}))
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await;
        let token = session["token"].as_str().unwrap().to_owned();
        let conversation = expect(
            self.widget(Method::POST, "/widget/v1/conversations", &token)
                .json(&json!({"agent": "support"}))
                .send()
                .await
                .unwrap(),
            StatusCode::CREATED,
        )
        .await;
        (token, conversation["id"].as_str().unwrap().to_owned())
    }

    /// The visitor says `text`; the response as it came.
    pub(crate) async fn say(
        &self,
        token: &str,
        conversation: &str,
        text: &str,
    ) -> reqwest::Response {
        self.widget(
            Method::POST,
            &format!("/widget/v1/conversations/{conversation}/messages"),
            token,
        )
        .json(&json!({"content": text}))
        .send()
        .await
        .unwrap()
    }

    /// The visitor's stream of their conversation's events after `last`.
    pub(crate) async fn follow(&self, token: &str, id: &str, last: &str) -> reqwest::Response {
        let response = self
            .widget(
                Method::GET,
                &format!("/widget/v1/conversations/{id}/events"),
                token,
            )
            .header("accept", "text/event-stream")
            .header("last-event-id", last)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response
    }

    pub(crate) async fn conversation(&self, id: &str) -> Value {
        expect(
            self.app
                .get(&format!("/api/v1/conversations/{id}"), &self.tenant.key)
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await
    }

    pub(crate) fn staff(&self, action: &str, id: &str, body: &Value) -> reqwest::RequestBuilder {
        self.app.post(
            &format!("/api/v1/conversations/{id}/{action}"),
            &self.tenant.key,
            body,
        )
    }
}

fn person(id: &str, name: &str) -> Value {
    json!({"assignee": {"id": id, "name": name, "avatar_url": "https://cdn.example.com/a.png"}})
}

/// Reads a streamed response until `done` holds for what came so far (or 10 s pass).
pub(crate) async fn read_until(
    response: &mut reqwest::Response,
    seen: &mut String,
    done: impl Fn(&str) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done(seen) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, response.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("the stream ended or stalled ({other:?}) with: {seen}"),
        }
    }
}

async fn handoff_flow(postgres: bool) {
    let receiver = Receiver::start(200, "{}", 0).await;
    let scripted = Scripted::start(vec![
        call(
            "c1",
            "transfer_to_human",
            json!({"reason": "wants a refund"}),
        ),
        text("Welcome back! As Alex said, the refund is on its way."),
    ])
    .await;
    let mut builder = TestApp::builder()
        .provider("scripted", scripted.provider())
        .allow_private_urls();
    if postgres {
        builder = builder.postgres();
    }
    let app = builder.spawn().await;
    let d = desk(
        app,
        scripted,
        json!({"waiting_message": "A person will join shortly.", "notify_url": receiver.url}),
    )
    .await;
    let (token, id) = d.visitor().await;
    // The agent hands off: the run ends with the waiting message, the model asked once.
    let answer = expect(
        d.say(&token, &id, "I want my money back").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        answer["message"]["content"][0]["text"],
        "A person will join shortly."
    );
    assert_eq!(d.scripted.requests().len(), 1);
    let waiting = d.conversation(&id).await;
    assert_eq!(waiting["handler"], "human");
    assert!(waiting["waiting_since"].is_string(), "{waiting}");
    assert!(waiting["assignee"].is_null());
    let list = expect(
        d.app
            .get("/api/v1/conversations?waiting=true", &d.tenant.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(list["data"][0]["id"], id.as_str());
    // The tenant hears of it, signed.
    for _ in 0..100 {
        if !receiver.received().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hook = receiver
        .received()
        .pop()
        .expect("the conversation.waiting webhook");
    let body: Value = serde_json::from_slice(&hook.body).unwrap();
    assert_eq!(body["type"], "conversation.waiting");
    assert_eq!(body["conversation"]["id"], id.as_str());
    assert_eq!(body["event"]["data"]["reason"], "wants a refund");
    let secret = expect(
        d.app
            .get("/api/v1/webhook-signing-secret", &d.tenant.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let signature = hook.headers["x-frontdesk-signature"].to_str().unwrap();
    let t: i64 = signature
        .split(',')
        .find_map(|p| p.strip_prefix("t="))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        signature,
        frontdesk_agents::webhook_signature(secret["secret"].as_str().unwrap(), t, &hook.body)
    );

    // The visitor follows the conversation; a message now waits for people, no run.
    let mut stream = d.follow(&token, &id, "0").await;
    assert_eq!(stream.status(), StatusCode::OK);
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, |s| s.contains("handoff.requested")).await;
    assert!(
        !seen.contains("wants a refund"),
        "why the agent asked is for staff: {seen}"
    );
    let stored = expect(
        d.say(&token, &id, "Hello? Anyone?").await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(stored["handler"], "human");
    assert_eq!(stored["message"]["role"], "user");
    assert_eq!(d.scripted.requests().len(), 1, "no run started");

    // Two staff members race: one takes it, the other hears who has it.
    let (a, b) = tokio::join!(
        d.staff("takeover", &id, &person("alex", "Alex")).send(),
        d.staff("takeover", &id, &person("blair", "Blair")).send(),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let (winner, loser) = match (a.status(), b.status()) {
        (StatusCode::OK, StatusCode::CONFLICT) => (("alex", "Alex"), ("blair", "Blair")),
        (StatusCode::CONFLICT, StatusCode::OK) => (("blair", "Blair"), ("alex", "Alex")),
        other => panic!("one takeover must win: {other:?}"),
    };
    let held = d.conversation(&id).await;
    assert_eq!(held["assignee"]["id"], winner.0);
    assert!(held["waiting_since"].is_null());
    expect_error(
        d.staff(
            "staff-messages",
            &id,
            &json!({"content": "Mine!", "assignee": {"id": loser.0, "name": loser.1}}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CONFLICT,
        "conversation_taken",
    )
    .await;
    // The winner replies and notes; the visitor hears the reply (named, no account id).
    let mut reply = person(winner.0, winner.1);
    reply["content"] = json!("Your refund of 30 EUR is on its way.");
    let posted = expect(
        d.staff("staff-messages", &id, &reply).send().await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(posted["message"]["author"]["name"], winner.1);
    let mut note = person(winner.0, winner.1);
    note["content"] = json!("Customer is a VIP, flagged by finance");
    note["internal"] = json!(true);
    let noted = expect(
        d.staff("staff-messages", &id, &note).send().await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    assert!(noted["message"].is_null());
    read_until(&mut stream, &mut seen, |s| s.contains("refund of 30 EUR")).await;
    assert!(seen.contains("handoff.taken"), "{seen}");
    assert!(
        seen.contains(&format!("\"name\":\"{}\"", winner.1)),
        "{seen}"
    );
    assert!(
        !seen.contains(&format!("\"id\":\"{}\"", winner.0)),
        "staff ids stay hidden: {seen}"
    );
    // The note is staff's alone: not in the visitor's stream (replayed from the start), nor
    // their transcript; staff see it in the timeline.
    let mut replay = d.follow(&token, &id, "0").await;
    let mut replayed = String::new();
    read_until(&mut replay, &mut replayed, |s| {
        s.contains("refund of 30 EUR")
    })
    .await;
    assert!(!replayed.contains("VIP"), "{replayed}");
    let transcript = expect(
        d.widget(
            Method::GET,
            &format!("/widget/v1/conversations/{id}"),
            &token,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(!transcript.to_string().contains("VIP"));
    assert!(transcript.to_string().contains("refund of 30 EUR"));
    let timeline = expect(
        d.app
            .get(&format!("/api/v1/conversations/{id}/events"), &d.tenant.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let kinds: Vec<&str> = timeline
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "handoff.requested",
            "message.created",
            "handoff.taken",
            "message.created",
            "note.created"
        ]
    );
    // A visitor token is no staff credential.
    let refused = d
        .widget(
            Method::POST,
            &format!("/api/v1/conversations/{id}/staff-messages"),
            &token,
        )
        .json(&json!({"content": "I am staff now"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    // Only the holder hands back; then the agent answers, reading the staff reply (marked)
    // and never the note.
    expect_error(
        d.staff("handback", &id, &person(loser.0, loser.1))
            .send()
            .await
            .unwrap(),
        StatusCode::CONFLICT,
        "conversation_taken",
    )
    .await;
    let back = expect(
        d.staff("handback", &id, &person(winner.0, winner.1))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(back["handler"], "agent");
    assert!(back["assignee"].is_null());
    read_until(&mut stream, &mut seen, |s| s.contains("handoff.returned")).await;
    let answer = expect(
        d.say(&token, &id, "Thanks! When will it arrive?").await,
        StatusCode::OK,
    )
    .await;
    assert!(answer["message"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("Welcome back!"));
    let request = d.scripted.requests().pop().unwrap().to_string();
    assert!(
        request.contains(&format!(
            "[{} from the team wrote:] Your refund of 30 EUR is on its way.",
            winner.1
        )),
        "{request}"
    );
    assert!(
        request.contains("Hello? Anyone?"),
        "the visitor's waiting message is history too"
    );
    assert!(
        !request.contains("VIP"),
        "internal notes never reach the model"
    );
    // The export tells who took, replied and handed back, and when.
    let export = d
        .app
        .get(
            &format!("/api/v1/conversations/{id}/export?format=markdown"),
            &d.tenant.key,
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        export.contains(&format!("{} took the conversation", winner.1)),
        "{export}"
    );
    assert!(
        export.contains(&format!("{} handed it back to the agent", winner.1)),
        "{export}"
    );
    assert!(export.contains("Internal note"), "{export}");
}

#[tokio::test]
async fn the_agent_hands_off_and_staff_take_reply_note_and_hand_back() {
    handoff_flow(false).await;
}

#[tokio::test]
async fn the_handoff_holds_on_postgres() {
    handoff_flow(true).await;
}

#[tokio::test]
async fn a_conversation_nobody_takes_goes_back_to_the_agent_which_is_told() {
    let scripted = Scripted::start(vec![
        call("c1", "transfer_to_human", json!({})),
        text("Sorry, the team is busy. May I take your email address?"),
    ])
    .await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .spawn()
        .await;
    let d = desk(app, scripted, json!({"wait_seconds": 1})).await;
    let (token, id) = d.visitor().await;
    expect(d.say(&token, &id, "A human please").await, StatusCode::OK).await;
    assert_eq!(d.conversation(&id).await["handler"], "human");
    // The visitor's widget hears the agent going on (a run nobody's message started).
    let mut stream = d.follow(&token, &id, "0").await;
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, |s| s.contains(": following")).await;
    // The sweep (every 2 s) gives it back and the agent answers.
    let mut answered = Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let messages = expect(
            d.app
                .get(
                    &format!("/api/v1/conversations/{id}/messages"),
                    &d.tenant.key,
                )
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await;
        if messages.to_string().contains("May I take your email") {
            answered = messages;
            break;
        }
    }
    assert!(!answered.is_null(), "the agent did not go on");
    read_until(&mut stream, &mut seen, |s| s.contains("event: run.started")).await;
    assert!(seen.contains("handoff.timed_out"), "{seen}");
    let conversation = d.conversation(&id).await;
    assert_eq!(conversation["handler"], "agent");
    assert!(conversation["waiting_since"].is_null());
    let request = d.scripted.requests().pop().unwrap().to_string();
    assert!(
        request.contains("Nobody from the team could take this conversation"),
        "{request}"
    );
    let timeline = expect(
        d.app
            .get(&format!("/api/v1/conversations/{id}/events"), &d.tenant.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        timeline.as_array().unwrap().last().unwrap()["type"],
        "handoff.timed_out"
    );
}

/// A day of the week that is not today (UTC), as `mon` … `sun`.
fn another_day() -> &'static str {
    const DAYS: [&str; 7] = ["thu", "fri", "sat", "sun", "mon", "tue", "wed"];
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    // 1970-01-01 was a Thursday; two days later is never today.
    DAYS[((days + 2) % 7) as usize]
}

#[tokio::test]
async fn while_the_team_is_away_the_agent_is_told_and_goes_on() {
    let scripted = Scripted::start(vec![
        call(
            "c1",
            "transfer_to_human",
            json!({"reason": "asked for a person"}),
        ),
        text("Our team is away now. Shall I take your phone number?"),
        text("The team is away; I can note your question."),
    ])
    .await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .spawn()
        .await;
    let hours = json!({"hours": {"timezone": "UTC", "periods": [{"days": [another_day()], "from": "09:00", "to": "17:00"}]}});
    let d = desk(app, scripted, hours).await;
    let (token, id) = d.visitor().await;
    let answer = expect(
        d.say(&token, &id, "Can I talk to someone?").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        answer["message"]["content"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["text"],
        "Our team is away now. Shall I take your phone number?"
    );
    let request = d.scripted.requests().pop().unwrap().to_string();
    assert!(request.contains("outside opening hours"), "{request}");
    assert_eq!(d.conversation(&id).await["handler"], "agent");
    // The widget's button on a new conversation: the visitor's request is answered by a run.
    let (token, fresh) = d.visitor().await;
    let asked = expect(
        d.widget(
            Method::POST,
            &format!("/widget/v1/conversations/{fresh}/human"),
            &token,
        )
        .json(&json!({"content": "Talk to a person"}))
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(asked["status"], "away");
    assert!(asked["run_id"].as_str().unwrap().starts_with("run_"));
    let mut answered = false;
    for _ in 0..100 {
        let messages = expect(
            d.app
                .get(
                    &format!("/api/v1/conversations/{fresh}/messages"),
                    &d.tenant.key,
                )
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await
        .to_string();
        if messages.contains("I can note your question") {
            assert!(messages.contains("Talk to a person"));
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(answered, "the agent answered the button");
}

#[tokio::test]
async fn the_visitors_button_asks_for_a_person_when_the_agent_offers_it() {
    let scripted = Scripted::start(vec![]).await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .spawn()
        .await;
    let d = desk(
        app,
        scripted,
        json!({"waiting_message": "Hang on, a colleague is coming."}),
    )
    .await;
    let (token, id) = d.visitor().await;
    // Another visitor can neither follow this conversation nor ask for a person in it.
    let (stranger, _) = d.visitor().await;
    for (method, path) in [
        (Method::GET, format!("/widget/v1/conversations/{id}/events")),
        (Method::POST, format!("/widget/v1/conversations/{id}/human")),
    ] {
        let refused = d.widget(method, &path, &stranger).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(d.conversation(&id).await["handler"], "agent");
    let asked = expect(
        d.widget(
            Method::POST,
            &format!("/widget/v1/conversations/{id}/human"),
            &token,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(asked["status"], "waiting");
    assert_eq!(asked["message"], "Hang on, a colleague is coming.");
    // Pressing it again changes nothing and tells the visitor nothing twice.
    expect(
        d.widget(
            Method::POST,
            &format!("/widget/v1/conversations/{id}/human"),
            &token,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    let conversation = d.conversation(&id).await;
    assert_eq!(conversation["handler"], "human");
    assert!(conversation["waiting_since"].is_string());
    let transcript = expect(
        d.widget(
            Method::GET,
            &format!("/widget/v1/conversations/{id}"),
            &token,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        transcript["messages"]
            .to_string()
            .matches("Hang on, a colleague is coming.")
            .count(),
        1,
        "{transcript}"
    );
    // An agent without the button refuses it.
    expect(
        d.app
            .patch(
                "/api/v1/agents/support",
                &d.tenant.key,
                &json!({"widget": {"human_button": false}}),
            )
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    expect_error(
        d.widget(
            Method::POST,
            &format!("/widget/v1/conversations/{id}/human"),
            &token,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CONFLICT,
        "no_human_handoff",
    )
    .await;
    // Bad input: an unknown time zone, a takeover with a key and nobody named.
    expect_error(
        d.app
            .patch(
                "/api/v1/agents/support",
                &d.tenant.key,
                &json!({"human": {"hours": {"timezone": "Mars/Olympus", "periods": []}}}),
            )
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    expect_error(
        d.staff("takeover", &id, &json!({})).send().await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
}

#[tokio::test]
async fn chatkit_shows_staff_replies_and_starts_no_run_while_people_answer() {
    let scripted = Scripted::start(vec![]).await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .spawn()
        .await;
    let d = desk(app, scripted, json!({})).await;
    let (_, id) = d.visitor().await;
    let mut reply = person("sam", "Sam");
    reply["content"] = json!("Hello from Sam.");
    expect(
        d.staff("staff-messages", &id, &reply).send().await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    // The next read shows the reply as the assistant's side.
    let read = d
        .app
        .post(
            "/chatkit",
            &d.tenant.key,
            &json!({"type": "threads.get_by_id", "params": {"thread_id": id}}),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        read.contains("\"assistant_message\"") && read.contains("Hello from Sam."),
        "{read}"
    );
    // A new message waits for Sam: the stream holds the user's item and a notice, no answer.
    let body = json!({"type": "threads.add_user_message", "params": {"thread_id": id,
        "input": {"content": [{"type": "input_text", "text": "Thanks Sam"}], "attachments": [], "inference_options": {}}}});
    let response = d
        .app
        .post("/chatkit", &d.tenant.key, &body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let events = response.text().await.unwrap();
    assert!(
        events.contains("thread.item.done") && events.contains("A person from the team"),
        "{events}"
    );
    assert!(!events.contains("assistant_message"), "{events}");
    assert!(d.scripted.requests().is_empty(), "no run");
    let timeline = expect(
        d.app
            .get(&format!("/api/v1/conversations/{id}/events"), &d.tenant.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(timeline.to_string().contains("Thanks Sam"));
    // The native API answers 202 with the stored message.
    let stored = expect(
        d.app
            .post(
                &format!("/api/v1/conversations/{id}/messages"),
                &d.tenant.key,
                &json!({"content": "Still there?"}),
            )
            .send()
            .await
            .unwrap(),
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(stored["handler"], "human");
    assert_eq!(stored["message"]["content"][0]["text"], "Still there?");
    // Regenerating is refused while people answer.
    let last = stored["message"]["id"].as_str().unwrap();
    expect_error(
        d.app
            .post(
                &format!("/api/v1/conversations/{id}/messages/{last}/regenerate"),
                &d.tenant.key,
                &json!({}),
            )
            .send()
            .await
            .unwrap(),
        StatusCode::CONFLICT,
        "handled_by_human",
    )
    .await;
}

#[tokio::test]
async fn a_visitor_following_on_another_instance_hears_the_staff_reply() {
    let scripted = Scripted::start(vec![]).await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .postgres()
        .spawn()
        .await;
    let d = desk(app, scripted, json!({})).await;
    let (token, id) = d.visitor().await;
    // The visitor's stream is on a second server sharing the database.
    let other = d.app.another_instance().await;
    let mut stream = other
        .client
        .get(format!(
            "{}/widget/v1/conversations/{id}/events",
            other.base
        ))
        .bearer_auth(&token)
        .header("origin", SHOP)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, |s| s.contains(": following")).await;
    let mut reply = person("sam", "Sam");
    reply["content"] = json!("Answered from the first server.");
    expect(
        d.staff("staff-messages", &id, &reply).send().await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    read_until(&mut stream, &mut seen, |s| {
        s.contains("Answered from the first server.")
    })
    .await;
    assert!(seen.contains("handoff.taken"), "{seen}");
}

#[tokio::test]
async fn a_run_waiting_for_approval_does_not_answer_once_people_took_the_conversation() {
    let receiver = Receiver::start(200, r#"{"refunded": true}"#, 0).await;
    let scripted = Scripted::start(vec![
        call("c1", "refund", json!({"amount": 20})),
        text("This must not be said."),
    ])
    .await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .allow_private_urls()
        .spawn()
        .await;
    let tenant = app.tenant("Shop").await;
    let agent = json!({"slug": "support", "name": "Support", "model": "scripted/m",
        "approvals": {"approver": "staff"},
        "tools": [{"type": "webhook", "name": "refund", "url": receiver.url, "requires_approval": true,
                   "parameters": {"type": "object", "properties": {"amount": {"type": "number"}}}}]});
    expect(
        app.post("/api/v1/agents", &tenant.key, &agent)
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let conversation = expect(
        app.post(
            "/api/v1/conversations",
            &tenant.key,
            &json!({"agent": "support"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let id = conversation["id"].as_str().unwrap();
    let paused = expect(
        app.post(
            &format!("/api/v1/conversations/{id}/messages"),
            &tenant.key,
            &json!({"content": "Refund me 20"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(paused["status"], "awaiting_approval", "{paused}");
    let run = paused["run_id"].as_str().unwrap().to_owned();
    expect(
        app.post(
            &format!("/api/v1/conversations/{id}/takeover"),
            &tenant.key,
            &person("sam", "Sam"),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    // Approving now ends the run without the agent: no call, no model, no answer.
    let decided = app
        .post(
            &format!("/api/v1/runs/{run}/approvals/c1"),
            &tenant.key,
            &json!({"decision": "approve"}),
        )
        .send()
        .await
        .unwrap();
    assert!(
        decided.status().is_success(),
        "{}",
        decided.text().await.unwrap()
    );
    let mut status = Value::Null;
    for _ in 0..100 {
        let trace = expect(
            app.get(&format!("/api/v1/runs/{run}"), &tenant.key)
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await;
        if trace["status"] != "awaiting_approval" && trace["status"] != "running" {
            status = trace["status"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "cancelled");
    assert!(receiver.received().is_empty(), "the refund was not made");
    assert_eq!(
        scripted.requests().len(),
        1,
        "the model was not asked again"
    );
    let messages = expect(
        app.get(&format!("/api/v1/conversations/{id}/messages"), &tenant.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(!messages.to_string().contains("This must not be said."));
}
