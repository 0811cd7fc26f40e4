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
