//! Voice at its edges: a realtime agent's own tools (approval rules as in chat), the
//! tenant's limit of calls at once, frames that cannot be read, a transfer to the team's
//! inbox, the pipeline's barge-in, and a server stopping with a call under way.

use serde_json::json;

use crate::common::expect_error;
use crate::scripted::{text, Receiver};
use crate::voice::{line, Line, TOKEN};
use crate::voice_peers::{
    outputs, phone_speech, say, speech_services, tool, until, utterance, RealtimeScript,
    TwilioPeer, TURN_FRAMES,
};

#[tokio::test]
async fn a_realtime_agent_runs_its_own_tools_under_the_approval_rules() {
    let hooks = Receiver::start(200, r#"{"status": "shipped"}"#, 0).await;
    let realtime = RealtimeScript::start(
        vec![
            tool("Where is order 12?", "order_status", json!({"order": "12"})),
            tool("Refund it please.", "refund", json!({"order": "12"})),
        ],
        TURN_FRAMES,
    )
    .await;
    let line = line(
        vec![text("A caller asked about order 12.")],
        Some(&realtime.base),
        None,
    )
    .await;
    let hook = |name: &str, approval: bool| {
        json!({"type": "webhook", "name": name, "description": name,
        "url": format!("{}/{name}", hooks.url), "requires_approval": approval,
        "parameters": {"type": "object", "properties": {"order": {"type": "string"}}}})
    };
    let agent = line
        .agent(json!({"slug": "shop", "name": "Shop", "model": "scripted/x", "voice": {"realtime_model": "rt/gpt-realtime"},
            "tools": [hook("order_status", false), hook("refund", true)]}))
        .await;
    // A stream without the token the webhook gave (a replayed upgrade: its signature covers
    // only the URL) is refused, and no call is opened for it.
    let forged = TwilioPeer::connect(
        &line.socket(&agent, "stream"),
        TOKEN,
        json!({"from": "+15550009999", "expires": "9999999999", "token": "00"}),
        true,
    )
    .await;
    until("the forged stream closed", || {
        forged.heard.lock().unwrap().closed
    })
    .await;
    assert!(
        line.calls().await.is_empty(),
        "a call was opened for a forged stream"
    );
    let peer = line.caller(&agent, true).await;
    until("the session", || {
        !realtime.events("session.update").is_empty()
    })
    .await;
    let tools: Vec<String> = realtime.events("session.update")[0]["session"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        tools,
        ["transfer_call", "end_call", "order_status", "refund"]
    );
    // A frame that cannot be read is skipped; the call goes on.
    peer.send(json!({"event": "media", "streamSid": "MZ00000000000000000000000000000001"}));
    peer.send(json!({"event": "media", "media": {"payload": "%%% not base64"}}));
    peer.play(&utterance("Where is order 12?"));
    until("the tool's result", || outputs(&realtime).len() == 1).await;
    assert_eq!(outputs(&realtime)[0], r#"{"status": "shipped"}"#);
    peer.play(&utterance("Refund it please."));
    until("the refused refund", || outputs(&realtime).len() == 2).await;
    assert!(
        outputs(&realtime)[1].contains("needs a person's approval"),
        "{:?}",
        outputs(&realtime)
    );
    let paths: Vec<String> = hooks.received().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(
        paths,
        ["/order_status"],
        "the refund needing approval did not run"
    );
    peer.stop();
    let call = line.ended_call().await;
    let tools: Vec<(&str, bool)> = call["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap(),
                t["is_error"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(tools, [("order_status", false), ("refund", true)]);
}

#[tokio::test]
async fn the_tenants_limit_of_calls_at_once_holds() {
    let realtime = RealtimeScript::start(vec![], TURN_FRAMES).await;
    let line = line(vec![], Some(&realtime.base), None).await;
    let agent = line
        .agent(
            json!({"slug": "busy", "name": "Busy", "model": "scripted/x",
            "voice": {"realtime_model": "rt/gpt-realtime", "phone_number": "+15550002222"}}),
        )
        .await;
    // 250 calls under way (the line's limit): the next is turned away politely.
    let record = line
        .app
        .service
        .get_agent(
            &line.tenant.id,
            &frontdesk_core::agent::AgentRef::Slug("busy".into()),
        )
        .await
        .unwrap();
    for _ in 0..250 {
        line.app
            .service
            .open_call(
                &record,
                frontdesk_core::service::NewCall {
                    channel: frontdesk_core::voice::CallChannel::Phone,
                    direction: frontdesk_core::voice::CallDirection::Inbound,
                    mode: "realtime",
                    from: None,
                    to: None,
                    provider_call_id: None,
                },
            )
            .await
            .unwrap();
    }
    let twiml = line
        .webhook(&agent, "", &[("CallSid", "CA9")])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        twiml.contains("All our lines are busy") && twiml.contains("<Hangup/>"),
        "{twiml}"
    );
    expect_error(
        line.app
            .post(
                "/api/v1/calls",
                &line.tenant.key,
                &json!({"agent": "busy", "to": "+15550009999"}),
            )
            .send()
            .await
            .unwrap(),
        reqwest::StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    // Another tenant has its own limit.
    let other = line.app.tenant("Other").await;
    let list = crate::common::expect(
        line.app
            .get("/api/v1/calls?status=active", &other.key)
            .send()
            .await
            .unwrap(),
        reqwest::StatusCode::OK,
    )
    .await;
    assert!(list["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_transfer_without_a_number_hands_the_caller_to_the_inbox() {
    let realtime = RealtimeScript::start(
        vec![tool(
            "I want to talk to someone.",
            "transfer_call",
            json!({"reason": "wants a person"}),
        )],
        TURN_FRAMES,
    )
    .await;
    let line = line(
        vec![text("The caller asked for a person.")],
        Some(&realtime.base),
        None,
    )
    .await;
    let agent = line
        .agent(json!({"slug": "desk", "name": "Desk", "model": "scripted/x", "voice": {"realtime_model": "rt/gpt-realtime"}}))
        .await;
    let peer = line.caller(&agent, true).await;
    peer.play(&utterance("I want to talk to someone."));
    until("the tool's result", || !outputs(&realtime).is_empty()).await;
    assert!(
        outputs(&realtime)[0].contains("someone will get back to them"),
        "{:?}",
        outputs(&realtime)
    );
    peer.stop();
    let call = line.ended_call().await;
    assert_eq!(call["status"], "transferred");
    assert_eq!(call["transferred_to"], "inbox");
    let waiting = crate::common::expect(
        line.app
            .get("/api/v1/conversations?waiting=true", &line.tenant.key)
            .send()
            .await
            .unwrap(),
        reqwest::StatusCode::OK,
    )
    .await;
    assert_eq!(waiting["data"][0]["id"], call["conversation_id"]);
}

#[tokio::test]
async fn a_stopping_server_ends_its_calls_and_keeps_their_records() {
    let realtime =
        RealtimeScript::start(vec![say("Hello?", "Hello, City Clinic.")], TURN_FRAMES).await;
    let line = line(vec![], Some(&realtime.base), None).await;
    let agent = line
        .agent(
            json!({"slug": "desk", "name": "Desk", "voice": {"realtime_model": "rt/gpt-realtime"}}),
        )
        .await;
    let peer = line.caller(&agent, true).await;
    peer.play(&utterance("Hello?"));
    until("the answer", || peer.heard.lock().unwrap().media_bytes > 0).await;
    let Line { app, tenant, .. } = line;
    let app = app.restart().await;
    until("the caller's side closed", || {
        peer.heard.lock().unwrap().closed
    })
    .await;
    let calls = crate::common::expect(
        app.get("/api/v1/calls", &tenant.key).send().await.unwrap(),
        reqwest::StatusCode::OK,
    )
    .await;
    let call = &calls["data"][0];
    assert_eq!(call["status"], "failed");
    assert_eq!(call["error"], "the server stopped during the call");
    assert_eq!(call["transcript"][1]["text"], "Hello, City Clinic.");
}

#[tokio::test]
async fn the_pipeline_stops_speaking_when_the_caller_speaks() {
    let long = "We open at nine tomorrow and close at six in the evening.";
    let (base, _) =
        speech_services(vec!["When do you open tomorrow?", "Sorry, at what time?"]).await;
    let line = line(
        vec![
            text(long),
            text("At nine."),
            text("The caller asked about opening times."),
        ],
        None,
        Some(&base),
    )
    .await;
    let agent = line
        .agent(
            json!({"slug": "pipe", "name": "Pipe", "model": "scripted/x",
            "voice": {"transcription_model": "speech/whisper-1", "speech_model": "speech/tts-1",
                "turn_detection": {"type": "none", "silence_duration_ms": 400}}}),
        )
        .await;
    let peer = line.caller(&agent, false).await;
    let mut speech = phone_speech("When do you open tomorrow?");
    speech.extend(vec![0xFFu8; 8 * 600]);
    peer.play(&speech);
    // The answer's audio (57 characters: 570 ms, a mark per 100 ms and one at its end)
    // arrives; 200 ms of it plays.
    until("the answer's audio", || {
        peer.pending_marks.lock().unwrap().len() >= 6
    })
    .await;
    peer.echo_marks(2);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    peer.play(&speech);
    until("the clear", || peer.heard.lock().unwrap().clears == 1).await;
    until("the second answer", || line.scripted.requests().len() >= 2).await;
    peer.echo_marks(usize::MAX);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    peer.echo_marks(usize::MAX);
    peer.stop();
    let call = line.ended_call().await;
    let cut = call["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["interrupted"] == true)
        .expect("the interrupted answer");
    let expected =
        frontdesk_voice::playback::heard_text(long, 200, long.chars().count() as u64 * 10);
    assert_eq!(cut["text"], expected.as_str());
    assert!(!expected.is_empty() && expected.len() < long.len());
}
