//! Phone calls over Twilio media streams, bridged to a scripted Realtime server: the
//! receptionist (a voice agent asks its supervisor, which books through two webhooks),
//! barge-in truncation, transfer to a number, a dropped provider socket, many calls at once,
//! and the pipeline (speech-to-text → the chat model → text-to-speech) for models without a
//! realtime API. Callers' speech is made with espeak-ng and sox.

use serde_json::{json, Value};

use crate::scripted::{call, text, Receiver};
use crate::voice::{line, Line};
use crate::voice_peers::{
    outputs, phone_speech, say, speech_services, tool, until, utterance, RealtimeScript, Turn,
    TwilioPeer, TURN_FRAMES,
};

async fn voice_agent(line: &Line, voice: Value, tools: Value) -> String {
    line.agent(json!({"slug": "reception", "name": "Reception", "kind": "voice", "model": "scripted/x",
        "instructions": "You are the receptionist of City Clinic.", "voice": voice, "tools": tools}))
        .await
}

/// Waits until the caller heard (all of) these lines: 10 ms of μ-law per character.
async fn heard_all(peer: &TwilioPeer, lines: &[&str]) {
    let bytes: usize = lines.iter().map(|l| l.chars().count() * 80).sum();
    until("the answer heard", || {
        peer.heard.lock().unwrap().media_bytes >= bytes
    })
    .await;
    // The answer's end is marked once the model says it is complete: that mark and its echo
    // follow the last audio (a caller speaking before it would be speaking over the end).
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
}

#[tokio::test]
async fn the_receptionist_books_through_its_supervisor() {
    let hooks = Receiver::start(200, r#"{"ok": true, "slots": ["10:00", "14:30"]}"#, 0).await;
    let realtime = RealtimeScript::start(
        vec![
            tool("I'd like to book an appointment for next Tuesday.", "ask_supervisor",
                json!({"question": "The caller wants an appointment next Tuesday. Which times are free?"})),
            tool("Ten o'clock please. My name is Sam Lee.", "ask_supervisor",
                json!({"question": "Book next Tuesday at 10:00 for Sam Lee."})),
            tool("That's all, thank you.", "end_call", json!({})),
        ],
        TURN_FRAMES,
    )
    .await;
    let line = line(
        vec![
            call("s1", "check_availability", json!({"day": "next Tuesday"})),
            text("We have 10:00 and 14:30 free next Tuesday. Which suits you?"),
            call(
                "s2",
                "book_appointment",
                json!({"day": "next Tuesday", "time": "10:00", "name": "Sam Lee"}),
            ),
            text("You are booked for next Tuesday at 10:00, Sam."),
            text("Sam Lee called and booked an appointment for next Tuesday at 10:00."),
        ],
        Some(&realtime.base),
        None,
    )
    .await;
    let hook = |name: &str| {
        json!({"type": "webhook", "name": name, "description": name, "url": format!("{}/{name}", hooks.url),
        "parameters": {"type": "object", "properties": {"day": {"type": "string"}, "time": {"type": "string"}, "name": {"type": "string"}}}})
    };
    line.agent(json!({"slug": "front-desk", "name": "Front desk", "model": "scripted/x",
        "instructions": "You know the clinic's calendar.", "tools": [hook("check_availability"), hook("book_appointment")]}))
        .await;
    let agent = voice_agent(&line, json!({"realtime_model": "rt/gpt-realtime", "supervisor": "front-desk",
        "greeting": "City Clinic, how can I help?", "voice": "marin", "filler": "Let me check that."}), json!([])).await;
    let peer = line.caller(&agent, true).await;
    // The session is set up from the agent: μ-law both ways (no transcoding), its tools.
    until("the session", || {
        !realtime.events("session.update").is_empty()
    })
    .await;
    let session = &realtime.events("session.update")[0]["session"];
    assert_eq!(session["audio"]["input"]["format"]["type"], "audio/pcmu");
    assert_eq!(session["audio"]["output"]["format"]["type"], "audio/pcmu");
    assert_eq!(session["audio"]["output"]["voice"], "marin");
    let names: Vec<&str> = session["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ask_supervisor", "transfer_call", "end_call"]);
    assert!(session["instructions"]
        .as_str()
        .unwrap()
        .starts_with("You are the receptionist of City Clinic."));
    // The greeting is spoken and heard.
    until("the greeting", || {
        peer.heard.lock().unwrap().media_bytes > 0
    })
    .await;
    peer.play(&utterance(
        "I'd like to book an appointment for next Tuesday.",
    ));
    until("the supervisor's answer", || outputs(&realtime).len() == 1).await;
    assert_eq!(
        outputs(&realtime)[0],
        "We have 10:00 and 14:30 free next Tuesday. Which suits you?"
    );
    // While the supervisor worked, the caller heard the filler (said outside the
    // conversation), then the answer.
    heard_all(
        &peer,
        &[
            "City Clinic, how can I help?",
            "Let me check that.",
            "We have 10:00 and 14:30 free next Tuesday. Which suits you?",
        ],
    )
    .await;
    let fillers: Vec<Value> = realtime
        .events("response.create")
        .into_iter()
        .filter(|e| e["response"]["conversation"] == "none")
        .collect();
    assert_eq!(fillers.len(), 1);
    assert!(fillers[0]["response"]["instructions"]
        .as_str()
        .unwrap()
        .ends_with("Let me check that."));
    peer.play(&utterance("Ten o'clock please. My name is Sam Lee."));
    until("the booking", || outputs(&realtime).len() == 2).await;
    assert_eq!(
        outputs(&realtime)[1],
        "You are booked for next Tuesday at 10:00, Sam."
    );
    heard_all(
        &peer,
        &[
            "City Clinic, how can I help?",
            "Let me check that.",
            "We have 10:00 and 14:30 free next Tuesday. Which suits you?",
            "Let me check that.",
            "You are booked for next Tuesday at 10:00, Sam.",
        ],
    )
    .await;
    peer.play(&utterance("That's all, thank you."));
    // The agent hangs up: the stream closes.
    until("the hang-up", || peer.heard.lock().unwrap().closed).await;
    let call = line.ended_call().await;
    assert_eq!(call["status"], "completed");
    assert_eq!(call["channel"], "phone");
    assert_eq!(call["mode"], "realtime");
    assert_eq!(call["from"], "+15550001111");
    assert_eq!(call["provider_call_id"], "CA0001");
    assert_eq!(
        call["summary"],
        "Sam Lee called and booked an appointment for next Tuesday at 10:00."
    );
    let said = |speaker: &str| -> Vec<String> {
        call["transcript"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["speaker"] == speaker)
            .map(|l| l["text"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        said("caller"),
        [
            "I'd like to book an appointment for next Tuesday.",
            "Ten o'clock please. My name is Sam Lee.",
            "That's all, thank you."
        ]
    );
    let agent_lines = said("agent");
    assert_eq!(
        agent_lines,
        [
            "City Clinic, how can I help?",
            "Let me check that.",
            "We have 10:00 and 14:30 free next Tuesday. Which suits you?",
            "Let me check that.",
            "You are booked for next Tuesday at 10:00, Sam."
        ]
    );
    assert!(
        call["transcript"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["interrupted"].is_null()),
        "nothing was cut"
    );
    let tools: Vec<(&str, &str)> = call["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["agent"].as_str().unwrap()))
        .collect();
    assert_eq!(
        tools,
        [
            ("check_availability", "front-desk"),
            ("book_appointment", "front-desk"),
            ("end_call", "reception")
        ]
    );
    assert!(call["tool_calls"][0]["output"]
        .as_str()
        .unwrap()
        .contains("14:30"));
    assert!(call["tool_calls"][0]["run_id"]
        .as_str()
        .unwrap()
        .starts_with("run_"));
    assert!(call["usage"]["input_tokens"].as_i64().unwrap() >= 100);
    assert!(call["usage"]["frames_in"].as_u64().unwrap() >= 3 * TURN_FRAMES as u64);
    assert!(call["duration_ms"].as_i64().unwrap() > 0);
    // Both webhooks ran, with the supervisor's arguments.
    let paths: Vec<String> = hooks.received().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(paths, ["/check_availability", "/book_appointment"]);
    // The supervisor's runs are ordinary runs in the call's conversation.
    let conversation = call["conversation_id"].as_str().unwrap();
    let messages = crate::common::expect(
        line.app
            .get(
                &format!("/api/v1/conversations/{conversation}/messages"),
                &line.tenant.key,
            )
            .send()
            .await
            .unwrap(),
        reqwest::StatusCode::OK,
    )
    .await;
    let answers: Vec<&Value> = messages["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["model"] == "scripted/x")
        .collect();
    assert_eq!(answers.len(), 2, "{messages}");
    assert_eq!(answers[0]["content"][0]["name"], "check_availability");
    let run = crate::common::expect(
        line.app
            .get(
                &format!(
                    "/api/v1/runs/{}",
                    call["tool_calls"][0]["run_id"].as_str().unwrap()
                ),
                &line.tenant.key,
            )
            .send()
            .await
            .unwrap(),
        reqwest::StatusCode::OK,
    )
    .await;
    assert_eq!(run["agent"], "front-desk", "{run}");
}

#[tokio::test]
async fn a_caller_speaking_over_the_answer_cuts_it_to_what_they_heard() {
    let long =
        "Our clinic opens at eight in the morning and closes at six in the evening on weekdays.";
    let realtime = RealtimeScript::start(
        vec![
            say("When are you open?", long),
            say("Sorry, at the weekend?", "Closed at the weekend."),
        ],
        TURN_FRAMES,
    )
    .await;
    let line = line(
        vec![text("The caller asked about opening hours.")],
        Some(&realtime.base),
        None,
    )
    .await;
    let agent = voice_agent(
        &line,
        json!({"realtime_model": "rt/gpt-realtime"}),
        json!([]),
    )
    .await;
    // Marks are echoed only as the test says: 300 ms of the answer "play".
    let peer = line.caller(&agent, false).await;
    peer.play(&utterance("When are you open?"));
    until("the answer's audio", || {
        peer.pending_marks.lock().unwrap().len() >= 8
    })
    .await;
    peer.echo_marks(3);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // The caller speaks: playback is cleared and the answer truncated at 300 ms.
    peer.play(&utterance("Sorry, at the weekend?"));
    until("the clear", || peer.heard.lock().unwrap().clears == 1).await;
    until("the truncate", || {
        !realtime.events("conversation.item.truncate").is_empty()
    })
    .await;
    let truncate = &realtime.events("conversation.item.truncate")[0];
    assert_eq!(truncate["audio_end_ms"], 300);
    assert_eq!(truncate["content_index"], 0);
    peer.echo_marks(usize::MAX);
    // A keypad press reaches the model as the caller's words.
    peer.dtmf("5");
    until("the keypad press", || {
        realtime
            .events("conversation.item.create")
            .iter()
            .any(|e| e["item"]["content"][0]["text"] == "[The caller pressed 5 on the keypad]")
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    peer.echo_marks(usize::MAX);
    peer.stop();
    let call = line.ended_call().await;
    let cut = call["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["interrupted"] == true)
        .expect("the interrupted answer");
    // 10 ms of audio per character: 300 ms of an 880 ms answer is its first 30 characters,
    // back to a word's end.
    let expected =
        frontdesk_voice::playback::heard_text(long, 300, long.chars().count() as u64 * 10);
    assert_eq!(cut["text"], expected.as_str());
    assert!(
        long.starts_with(cut["text"].as_str().unwrap())
            && cut["text"].as_str().unwrap().len() < long.len()
    );
}

#[tokio::test]
async fn a_transfer_redirects_the_call_to_the_number_through_twilio() {
    let realtime = RealtimeScript::start(
        vec![tool(
            "Can I talk to a person?",
            "transfer_call",
            json!({"reason": "asked for a person"}),
        )],
        TURN_FRAMES,
    )
    .await;
    let line = line(
        vec![text("The caller asked for a person and was transferred.")],
        Some(&realtime.base),
        None,
    )
    .await;
    let agent = voice_agent(
        &line,
        json!({"realtime_model": "rt/gpt-realtime", "transfer_number": "+15550003333"}),
        json!([]),
    )
    .await;
    let peer = line.caller(&agent, true).await;
    peer.play(&utterance("Can I talk to a person?"));
    until("the redirect", || !line.rest.posts().is_empty()).await;
    let (path, form) = line.rest.posts()[0].clone();
    assert_eq!(path, "/2010-04-01/Accounts/AC0001/Calls/CA0001.json");
    let twiml = &form.iter().find(|(k, _)| k == "Twiml").unwrap().1;
    assert!(twiml.contains("<Dial>+15550003333</Dial>"), "{twiml}");
    let call = line.ended_call().await;
    assert_eq!(call["status"], "transferred");
    assert_eq!(call["transferred_to"], "+15550003333");
}

#[tokio::test]
async fn a_dropped_model_socket_reconnects_once_then_apologises() {
    // Dropped after the first turn: the call goes on over a new socket with the transcript
    // replayed.
    let realtime = RealtimeScript::start_with(
        vec![
            say("Hello, is this the clinic?", "Yes, this is City Clinic."),
            say("Do you open on Saturday?", "On Saturdays we open at nine."),
        ],
        TURN_FRAMES,
        Some(1),
        false,
    )
    .await;
    let line = line(
        vec![text("A caller asked about Saturdays.")],
        Some(&realtime.base),
        None,
    )
    .await;
    let agent = voice_agent(
        &line,
        json!({"realtime_model": "rt/gpt-realtime"}),
        json!([]),
    )
    .await;
    let peer = line.caller(&agent, true).await;
    peer.play(&utterance("Hello, is this the clinic?"));
    until("the reconnect", || {
        realtime.connections().len() == 2 && realtime.connections()[1].len() >= 3
    })
    .await;
    let replayed: Vec<Value> = realtime.connections()[1]
        .iter()
        .filter(|e| e["type"] == "conversation.item.create")
        .cloned()
        .collect();
    assert_eq!(
        replayed[0]["item"]["content"][0]["text"],
        "Hello, is this the clinic?"
    );
    assert_eq!(replayed[1]["item"]["role"], "assistant");
    peer.play(&utterance("Do you open on Saturday?"));
    heard_all(
        &peer,
        &[
            "Yes, this is City Clinic.",
            "Sorry, the line dropped for a moment. Where were we?",
            "On Saturdays we open at nine.",
        ],
    )
    .await;
    peer.stop();
    let call = line.ended_call().await;
    assert_eq!(call["status"], "completed");
    assert!(call["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["text"] == "On Saturdays we open at nine."));

    // A provider that stays down: one reconnect fails, Twilio plays an apology and the call
    // ends as failed.
    let down =
        RealtimeScript::start_with(vec![say("Hello?", "Hello.")], TURN_FRAMES, Some(1), true).await;
    let second = crate::voice::line(vec![], Some(&down.base), None).await;
    let agent = voice_agent(
        &second,
        json!({"realtime_model": "rt/gpt-realtime"}),
        json!([]),
    )
    .await;
    let peer = second.caller(&agent, true).await;
    peer.play(&utterance("Hello?"));
    until("the apology", || !second.rest.posts().is_empty()).await;
    let twiml = &second.rest.posts()[0]
        .1
        .iter()
        .find(|(k, _)| k == "Twiml")
        .unwrap()
        .1
        .clone();
    assert!(
        twiml.contains("<Say>Sorry") && twiml.contains("<Hangup/>"),
        "{twiml}"
    );
    let call = second.ended_call().await;
    assert_eq!(call["status"], "failed");
    assert!(
        call["error"].as_str().unwrap().contains("dropped"),
        "{call}"
    );
}

#[tokio::test]
async fn two_hundred_calls_run_at_once() {
    const CALLS: usize = 200;
    let turns: Vec<Turn> = (0..CALLS).map(|_| say("Hi!", "Hello there.")).collect();
    let realtime = RealtimeScript::start(turns, 5).await;
    let replies = (0..CALLS).map(|_| text("A short hello.")).collect();
    let line = line(replies, Some(&realtime.base), None).await;
    let agent = voice_agent(
        &line,
        json!({"realtime_model": "rt/gpt-realtime"}),
        json!([]),
    )
    .await;
    let mut peers = Vec::new();
    for _ in 0..CALLS {
        peers.push(line.caller(&agent, true).await);
    }
    let audio = vec![0xFFu8; 5 * 160];
    for peer in &peers {
        peer.play(&audio);
    }
    for peer in &peers {
        until("every caller heard the answer", || {
            peer.heard.lock().unwrap().media_bytes > 0
        })
        .await;
    }
    for peer in &peers {
        peer.stop();
    }
    for _ in 0..1_000 {
        let done = crate::common::expect(
            line.app
                .get("/api/v1/calls?status=completed&limit=100", &line.tenant.key)
                .send()
                .await
                .unwrap(),
            reqwest::StatusCode::OK,
        )
        .await;
        let active = crate::common::expect(
            line.app
                .get("/api/v1/calls?status=active", &line.tenant.key)
                .send()
                .await
                .unwrap(),
            reqwest::StatusCode::OK,
        )
        .await;
        if active["data"].as_array().unwrap().is_empty()
            && done["data"].as_array().unwrap().len() == 100
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("not every call ended");
}

#[tokio::test]
async fn the_pipeline_hears_transcribes_answers_and_speaks() {
    let (base, heard) = speech_services(vec!["When do you open tomorrow?"]).await;
    let line = line(
        vec![
            text("We open at nine tomorrow. See you then!"),
            text("The caller asked when the clinic opens."),
        ],
        None,
        Some(&base),
    )
    .await;
    let agent = voice_agent(
        &line,
        json!({"transcription_model": "speech/whisper-1", "speech_model": "speech/tts-1", "voice": "alloy",
            "turn_detection": {"type": "none", "silence_duration_ms": 400}}),
        json!([]),
    )
    .await;
    let peer = line.caller(&agent, true).await;
    // Real speech, then silence: the pipeline's own voice detection ends the utterance.
    let mut audio = phone_speech("When do you open tomorrow?");
    audio.extend(vec![0xFFu8; 8 * 600]);
    peer.play(&audio);
    until("the transcription", || !heard.lock().unwrap().is_empty()).await;
    until("the spoken answer", || {
        peer.heard.lock().unwrap().media_bytes > 0
    })
    .await;
    peer.stop();
    let call = line.ended_call().await;
    assert_eq!(call["mode"], "pipeline");
    let lines: Vec<&str> = call["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            "When do you open tomorrow?",
            "We open at nine tomorrow. See you then!"
        ]
    );
    // The answer's audio: two sentences, μ-law at 8 kHz (a third of 24 kHz samples).
    let expected = ("We open at nine tomorrow.".len() + "See you then!".len()) * 240 / 3;
    assert_eq!(peer.heard.lock().unwrap().media_bytes, expected);
}
