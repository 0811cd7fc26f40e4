//! The browser voice page in headless Chromium with a fake microphone playing speech made
//! with espeak-ng: the page captures PCM at 24 kHz, talks to the agent's realtime model
//! through frontdesk, plays the answer (echoing marks as it plays) and shows the transcript.

use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::browser::{screenshot, Driver};
use crate::scripted::text;
use crate::voice::line;
use crate::voice_peers::{say, speech_wav, RealtimeScript};

#[tokio::test]
async fn the_voice_page_talks_with_a_fake_microphone() {
    let realtime = RealtimeScript::start(
        vec![say(
            "Hello, are you open today?",
            "Hi! Yes, we are open until six.",
        )],
        50,
    )
    .await;
    let line = line(
        vec![text("A visitor asked whether the clinic is open today.")],
        Some(&realtime.base),
        None,
    )
    .await;
    line.agent(
        json!({"slug": "web-voice", "name": "City Clinic", "kind": "voice", "model": "scripted/x",
        "voice": {"realtime_model": "rt/gpt-realtime", "browser": true}}),
    )
    .await;
    line.agent(json!({"slug": "no-page", "name": "Private", "voice": {"realtime_model": "rt/gpt-realtime"}})).await;
    let page = format!("{}/voice/{}/web-voice", line.app.base, line.tenant.id);
    // An agent without the page: 404 for the page and its socket.
    let hidden = line
        .app
        .client
        .get(format!(
            "{}/voice/{}/no-page",
            line.app.base, line.tenant.id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(hidden.status(), reqwest::StatusCode::NOT_FOUND);
    // A socket opened from another site is refused.
    let socket = format!("{}/ws", page.replacen("http://", "ws://", 1));
    let mut foreign = socket.as_str().into_client_request().unwrap();
    foreign
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(foreign).await.is_err(),
        "a foreign origin opened a call"
    );

    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("caller.wav");
    speech_wav("Hello, are you open today?", &wav);
    let capture = format!("--use-file-for-fake-audio-capture={}", wav.display());
    let driver = Driver::start().await;
    let browser = driver
        .browser_with(&[
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            &capture,
            "--autoplay-policy=no-user-gesture-required",
        ])
        .await;
    browser.goto(&page).await.unwrap();
    let run = |script: &'static str| {
        let browser = browser.clone();
        async move { browser.execute(script, Vec::new()).await.unwrap() }
    };
    assert_eq!(run("return document.title;").await, json!("City Clinic"));
    run("document.querySelector('.talk').click(); return true;").await;
    for _ in 0..150 {
        let lines = run("return [...document.querySelectorAll('.lines li')].map(l => l.className + ': ' + l.textContent);").await;
        let lines: Vec<String> = serde_json::from_value(lines).unwrap();
        if lines.len() >= 2 {
            assert_eq!(
                lines,
                [
                    "caller: Hello, are you open today?",
                    "agent: Hi! Yes, we are open until six."
                ]
            );
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        run("return document.querySelector('.state').textContent;").await,
        json!("Live — speak now")
    );
    // The session took 24 kHz PCM from the page; the answer was played (its marks came back).
    let session = &realtime.events("session.update")[0]["session"];
    assert_eq!(
        session["audio"]["input"]["format"],
        json!({"type": "audio/pcm", "rate": 24000})
    );
    screenshot(&browser, "voice-page").await;
    run("document.querySelector('.talk').click(); return true;").await;
    let call = line.ended_call().await;
    assert_eq!(call["channel"], "browser");
    assert_eq!(call["status"], "completed");
    assert!(call["usage"]["frames_in"].as_u64().unwrap() >= 50);
    assert!(call["usage"]["frames_out"].as_u64().unwrap() >= 1);
    assert_eq!(
        call["summary"],
        "A visitor asked whether the clinic is open today."
    );
    browser.close().await.unwrap();
}

/// A finished call of `agent`, as a call leaves its record.
async fn recorded_call(
    app: &crate::common::TestApp,
    tenant: &crate::common::TestTenant,
    agent: &str,
) -> String {
    use frontdesk_core::voice::{CallStatus, CallToolCall, Speaker, TranscriptLine};
    let agent = app
        .service
        .get_agent(
            &tenant.id,
            &frontdesk_core::agent::AgentRef::Slug(agent.into()),
        )
        .await
        .unwrap();
    let mut call = app
        .service
        .open_call(
            &agent,
            frontdesk_core::service::NewCall {
                channel: frontdesk_core::voice::CallChannel::Phone,
                direction: frontdesk_core::voice::CallDirection::Inbound,
                mode: "realtime",
                from: Some("+15550001111".into()),
                to: Some("+15550002222".into()),
                provider_call_id: Some("CA0001".into()),
            },
        )
        .await
        .unwrap();
    let line = |speaker, text: &str, at_ms, interrupted| TranscriptLine {
        speaker,
        text: text.into(),
        at_ms,
        interrupted,
    };
    call.transcript = vec![
        line(Speaker::Agent, "City Clinic, how can I help?", 200, false),
        line(
            Speaker::Caller,
            "I'd like to book for next Tuesday.",
            2_500,
            false,
        ),
        line(Speaker::Agent, "We have ten and half past", 5_100, true),
    ];
    call.tool_calls = vec![CallToolCall {
        name: "check_availability".into(),
        arguments: json!({"day": "next Tuesday"}),
        output: "{\"slots\": [\"10:00\"]}".into(),
        is_error: false,
        agent: "front-desk".into(),
        run_id: None,
        at_ms: 4_000,
    }];
    call.summary = Some("Sam asked for a Tuesday appointment.".into());
    call.status = CallStatus::Completed;
    call.duration_ms = Some(65_000);
    call.ended_at = Some(frontdesk_core::time::Timestamp::now());
    app.service.save_call(&call).await.unwrap();
    call.id.to_string()
}

#[tokio::test]
async fn the_dashboard_lists_searches_and_shows_calls() {
    use crate::dashboard::{member, Dash, PASSWORD};
    use frontdesk_core::tenant::Role;
    let app = crate::common::TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    member(&app, &acme, "ada@acme.test", Role::Owner).await;
    app.agent(&acme, "reception").await;
    let id = recorded_call(&app, &acme, "reception").await;
    let dash = Dash::sign_in(&app, "ada@acme.test", PASSWORD).await;
    for (path, expect) in [
        ("/calls".to_owned(), "Sam asked for a Tuesday appointment."),
        ("/calls?q=tuesday".to_owned(), "+15550001111"),
        ("/calls?q=nobody+said+this".to_owned(), "Nothing matches"),
        (
            "/calls?status=completed&channel=phone".to_owned(),
            "1 min 05 s",
        ),
        (format!("/calls/{id}"), "We have ten and half past"),
        (format!("/calls/{id}"), "interrupted"),
        (format!("/calls/{id}"), "check_availability"),
    ] {
        let html = dash.page(&path, reqwest::StatusCode::OK).await;
        assert!(html.contains(expect), "{path} lacks {expect:?}");
    }
    dash.page(
        "/calls?status=ringing",
        reqwest::StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // Another tenant's member: not found.
    let other = app.tenant("Other").await;
    member(&app, &other, "bo@other.test", Role::Owner).await;
    let stranger = Dash::sign_in(&app, "bo@other.test", PASSWORD).await;
    stranger
        .page(&format!("/calls/{id}"), reqwest::StatusCode::NOT_FOUND)
        .await;
    assert!(!stranger
        .page("/calls", reqwest::StatusCode::OK)
        .await
        .contains("+15550001111"));
    // In the browser: no serious accessibility problem, light and narrow.
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    crate::dashboard_browser::sign_in(&browser, &app.base, "ada@acme.test", PASSWORD).await;
    for (path, name) in [
        ("/calls".to_owned(), "calls"),
        (format!("/calls/{id}"), "call"),
    ] {
        browser.goto(&format!("{}{path}", app.base)).await.unwrap();
        crate::page_checks::axe(&browser, &format!("dashboard-{name}")).await;
        screenshot(&browser, &format!("dashboard-{name}")).await;
    }
    browser.set_window_size(390, 844).await.unwrap();
    browser
        .goto(&format!("{}/calls/{id}", app.base))
        .await
        .unwrap();
    let fits = browser
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(fits, json!(true));
    browser.close().await.unwrap();
}
