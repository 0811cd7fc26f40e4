//! Voice over Twilio: the webhook's signature checked against vectors from PyPI `twilio`'s
//! `RequestValidator`, its TwiML, ConversationRelay with a scripted peer (setup, prompts, an
//! interrupt, DTMF, the end), the calls API and its tenant isolation, outbound calls and
//! Realtime client secrets.

use std::path::PathBuf;

use frontdesk_core::config::{ProviderConfig, ProviderKind};
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{expect, expect_error, TestApp, TestTenant};
use crate::scripted::{call, text, Reply, Scripted};
use crate::voice_peers::TwilioRest;

pub const TOKEN: &str = "twilio-auth-token-1";

/// A tenant with a Twilio account, a scripted chat model, a scripted Twilio REST API and
/// (when given) a realtime provider `rt`.
pub struct Line {
    pub app: TestApp,
    pub tenant: TestTenant,
    pub scripted: Scripted,
    pub rest: TwilioRest,
}

pub async fn line(replies: Vec<Reply>, realtime: Option<&str>, speech: Option<&str>) -> Line {
    let scripted = Scripted::start(replies).await;
    let rest = TwilioRest::start().await;
    let (rest_url, realtime, speech) = (
        rest.url.clone(),
        realtime.map(str::to_owned),
        speech.map(str::to_owned),
    );
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .allow_private_urls()
        .configure(move |config| {
            config.voice.twilio_api_url = rest_url;
            config.limits.max_calls_per_tenant = 250;
            for (name, base) in [("rt", realtime), ("speech", speech)] {
                if let Some(base) = base {
                    let mut provider = ProviderConfig::new(ProviderKind::Openai);
                    provider.base_url = Some(base);
                    provider.api_key = Some("sk-test".to_owned().into());
                    config.providers.insert(name.to_owned(), provider);
                }
            }
        })
        .spawn()
        .await;
    let tenant = app.tenant("Clinic").await;
    for (name, value) in [
        ("TWILIO_ACCOUNT_SID", "AC0001"),
        ("TWILIO_AUTH_TOKEN", TOKEN),
    ] {
        let response = app
            .request(Method::PUT, &format!("/api/v1/secrets/{name}"), &tenant.key)
            .json(&json!({"value": value}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }
    Line {
        app,
        tenant,
        scripted,
        rest,
    }
}

impl Line {
    /// Creates an agent from `spec` and answers its id.
    pub async fn agent(&self, spec: Value) -> String {
        let agent = expect(
            self.app
                .post("/api/v1/agents", &self.tenant.key, &spec)
                .send()
                .await
                .unwrap(),
            StatusCode::CREATED,
        )
        .await;
        agent["id"].as_str().unwrap().to_owned()
    }

    /// Twilio's voice webhook for a call to `agent`, signed like Twilio signs it.
    pub async fn webhook(
        &self,
        agent: &str,
        query: &str,
        params: &[(&str, &str)],
    ) -> reqwest::Response {
        let url = format!("{}/voice/twilio/{agent}{query}", self.app.base);
        let owned: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let signature = frontdesk_voice::twilio::signature(TOKEN, &url, &owned);
        self.app
            .client
            .post(&url)
            .header("x-twilio-signature", signature)
            .form(&owned)
            .send()
            .await
            .unwrap()
    }

    /// What Twilio passes a call's stream: the `<Parameter>`s of the webhook's TwiML for a
    /// call `CA0001` from +15550001111 (the stream's token among them).
    pub async fn stream_parameters(&self, agent: &str) -> Value {
        let twiml = self
            .webhook(
                agent,
                "",
                &[
                    ("CallSid", "CA0001"),
                    ("From", "+15550001111"),
                    ("To", "+15550002222"),
                    ("Direction", "inbound"),
                ],
            )
            .await
            .text()
            .await
            .unwrap();
        twiml_parameters(&twiml)
    }

    /// Twilio's side of a call to `agent`, its stream started with the webhook's parameters
    /// (with `echo`, every mark comes back at once: the caller heard everything).
    pub async fn caller(&self, agent: &str, echo: bool) -> crate::voice_peers::TwilioPeer {
        crate::voice_peers::TwilioPeer::connect(
            &self.socket(agent, "stream"),
            TOKEN,
            self.stream_parameters(agent).await,
            echo,
        )
        .await
    }

    /// The socket URL of an agent's stream or relay.
    pub fn socket(&self, agent: &str, kind: &str) -> String {
        format!(
            "{}/voice/twilio/{agent}/{kind}",
            self.app.base.replacen("http://", "ws://", 1)
        )
    }

    pub async fn calls(&self) -> Vec<Value> {
        let list = expect(
            self.app
                .get("/api/v1/calls", &self.tenant.key)
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await;
        list["data"].as_array().unwrap().clone()
    }

    /// The tenant's only call, once it ended.
    pub async fn ended_call(&self) -> Value {
        for _ in 0..500 {
            let calls = self.calls().await;
            if let Some(call) = calls.first().filter(|c| {
                c["status"] != "active" && c["summary"].is_string() || c["status"] == "failed"
            }) {
                return call.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("the call did not end: {:?}", self.calls().await);
    }
}

/// The `<Parameter name value>`s of TwiML, as a JSON object.
pub fn twiml_parameters(twiml: &str) -> Value {
    let mut parameters = serde_json::Map::new();
    for tag in twiml.split("<Parameter ").skip(1) {
        let attribute = |name: &str| {
            tag.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default()
                .to_owned()
        };
        parameters.insert(attribute("name"), Value::String(attribute("value")));
    }
    Value::Object(parameters)
}

fn python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-test/bin/python")
}

/// `RequestValidator(token).compute_signature(url, params)` from PyPI `twilio`.
fn twilio_signature(url: &str, params: &[(&str, &str)]) -> String {
    let params: serde_json::Map<String, Value> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    let script = "import json, sys\nfrom twilio.request_validator import RequestValidator\n\
        token, url, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])\n\
        print(RequestValidator(token).compute_signature(url, params))";
    let out = std::process::Command::new(python())
        .args(["-c", script, TOKEN, url, &Value::Object(params).to_string()])
        .output()
        .expect("the test venv's python (make test sets it up)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn the_webhook_checks_twilios_signature_and_answers_twiml() {
    let line = line(vec![], None, None).await;
    let agent = line
        .agent(
            json!({"slug": "desk", "name": "Desk", "model": "scripted/x", "kind": "voice",
            "voice": {"realtime_model": "rt/gpt-realtime", "greeting": "Hello!"}}),
        )
        .await;
    let url = format!("{}/voice/twilio/{agent}", line.app.base);
    let params = [
        ("CallSid", "CA0001"),
        ("From", "+15550001111"),
        ("To", "+15550002222"),
        ("Direction", "inbound"),
    ];
    // The signature Twilio's own library computes is accepted; ours agrees with it.
    let signature = twilio_signature(&url, &params);
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    assert_eq!(
        frontdesk_voice::twilio::signature(TOKEN, &url, &owned),
        signature
    );
    let post = |signature: Option<String>, form: Vec<(String, String)>| {
        let mut request = line.app.client.post(&url).form(&form);
        if let Some(signature) = signature {
            request = request.header("x-twilio-signature", signature);
        }
        request.send()
    };
    let answer = post(Some(signature.clone()), owned.clone()).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/xml"));
    let twiml = answer.text().await.unwrap();
    let stream = line.socket(&agent, "stream");
    assert!(
        twiml.contains(&format!("<Connect><Stream url=\"{stream}\">")),
        "{twiml}"
    );
    assert!(
        twiml.contains("<Parameter name=\"from\" value=\"+15550001111\"/>"),
        "{twiml}"
    );
    // A changed parameter, another token's signature or none at all: 403.
    let mut changed = owned.clone();
    changed[1].1 = "+15559999999".to_owned();
    expect_error(
        post(Some(signature.clone()), changed).await.unwrap(),
        StatusCode::FORBIDDEN,
        "invalid_signature",
    )
    .await;
    expect_error(
        post(None, owned.clone()).await.unwrap(),
        StatusCode::FORBIDDEN,
        "invalid_signature",
    )
    .await;
    // The media stream's upgrade is signed too (over its URL): unsigned, it is refused.
    let request = stream.as_str().into_client_request().unwrap();
    let refused = tokio_tungstenite::connect_async(request).await;
    assert!(refused.is_err(), "an unsigned media stream was accepted");
    // Another tenant's agent with no Twilio account: nothing to check with, 403.
    let other = line.app.tenant("Other").await;
    let stranger = expect(
        line.app
            .post(
                "/api/v1/agents",
                &other.key,
                &json!({"slug": "x", "name": "X", "voice": {"realtime_model": "rt/m"}}),
            )
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let stranger_url = format!(
        "{}/voice/twilio/{}",
        line.app.base,
        stranger["id"].as_str().unwrap()
    );
    let refused = line
        .app
        .client
        .post(&stranger_url)
        .header("x-twilio-signature", signature)
        .form(&owned)
        .send()
        .await
        .unwrap();
    expect_error(refused, StatusCode::FORBIDDEN, "twilio_not_configured").await;
    // An agent id nobody has: 404.
    let unknown = line
        .webhook("agt_01jd8x5k7m3q4r5s6t7v8w9x0y", "", &params)
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

/// The ConversationRelay peer's socket.
type Relay =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn relay_send(socket: &mut Relay, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// Reads `text` frames up to `last: true`: the tokens joined.
async fn relay_answer(socket: &mut Relay) -> String {
    let mut answer = String::new();
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("an answer in time")
            .unwrap()
            .unwrap();
        let Message::Text(frame) = frame else {
            continue;
        };
        let frame: Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(frame["type"], "text", "{frame}");
        answer.push_str(frame["token"].as_str().unwrap());
        if frame["last"] == true {
            return answer;
        }
    }
}

#[tokio::test]
async fn conversation_relay_answers_prompts_with_text_turns_and_ends_the_call() {
    let line = line(
        vec![
            text("We are open from nine to five on weekdays."),
            text("Our address is 1 Main Street, next to the bakery on the corner."),
            text("You pressed one: I will connect you to bookings."),
            call("c1", "end_call", json!({})),
            text("The caller asked about opening hours and the address, then hung up."),
        ],
        None,
        None,
    )
    .await;
    let agent = line
        .agent(json!({"slug": "relay", "name": "Relay", "model": "scripted/x", "instructions": "You answer the phone for a clinic.",
            "voice": {"transport": "conversation_relay", "greeting": "Hello, City Clinic.", "languages": ["en-US"], "transfer_number": "+15550003333"}}))
        .await;
    let answer = line
        .webhook(
            &agent,
            "",
            &[
                ("CallSid", "CA77"),
                ("From", "+15550001111"),
                ("To", "+15550002222"),
            ],
        )
        .await;
    let twiml = answer.text().await.unwrap();
    let socket_url = line.socket(&agent, "relay");
    assert!(
        twiml.contains(&format!(
            "<ConversationRelay url=\"{socket_url}\" language=\"en-US\""
        )),
        "{twiml}"
    );
    assert!(
        twiml.contains("welcomeGreeting=\"Hello, City Clinic.\""),
        "{twiml}"
    );
    assert!(twiml.contains("<Connect action=\""), "{twiml}");
    // Twilio connects, signing the upgrade.
    let mut request = socket_url.as_str().into_client_request().unwrap();
    let signature = frontdesk_voice::twilio::signature(TOKEN, &socket_url, &[]);
    request
        .headers_mut()
        .insert("x-twilio-signature", signature.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    relay_send(&mut socket, json!({"type": "setup", "sessionId": "VX1", "callSid": "CA77", "accountSid": "AC0001",
        "from": "+15550001111", "to": "+15550002222", "direction": "inbound", "customParameters": twiml_parameters(&twiml)})).await;
    // A partial prompt waits; the last one is answered with streamed tokens.
    relay_send(
        &mut socket,
        json!({"type": "prompt", "voicePrompt": "When are you", "lang": "en-US", "last": false}),
    )
    .await;
    relay_send(&mut socket, json!({"type": "prompt", "voicePrompt": "When are you open?", "lang": "en-US", "last": true})).await;
    assert_eq!(
        relay_answer(&mut socket).await,
        "We are open from nine to five on weekdays."
    );
    relay_send(
        &mut socket,
        json!({"type": "prompt", "voicePrompt": "Where are you?", "last": true}),
    )
    .await;
    assert!(relay_answer(&mut socket)
        .await
        .starts_with("Our address is"));
    // The caller speaks over the answer: it keeps what they heard.
    relay_send(&mut socket, json!({"type": "interrupt", "utteranceUntilInterrupt": "Our address is 1 Main Street", "durationUntilInterruptMs": 1800})).await;
    // A keypad press is a turn of its own.
    relay_send(&mut socket, json!({"type": "dtmf", "digit": "1"})).await;
    assert!(relay_answer(&mut socket).await.contains("pressed one"));
    relay_send(
        &mut socket,
        json!({"type": "prompt", "voicePrompt": "That's all, bye.", "last": true}),
    )
    .await;
    // The agent ends the call: an `end` frame for the `<Connect action>`.
    let end = loop {
        let Message::Text(frame) = socket.next().await.unwrap().unwrap() else {
            continue;
        };
        let frame: Value = serde_json::from_str(&frame).unwrap();
        if frame["type"] == "end" {
            break frame;
        }
    };
    let handoff: Value = serde_json::from_str(end["handoffData"].as_str().unwrap()).unwrap();
    assert_eq!(handoff["reason"], "ended");
    socket.close(None).await.unwrap();
    let call = line.ended_call().await;
    assert_eq!(call["status"], "completed");
    assert_eq!(call["mode"], "conversation_relay");
    assert_eq!(call["from"], "+15550001111");
    assert_eq!(call["provider_call_id"], "CA77");
    assert_eq!(
        call["summary"],
        "The caller asked about opening hours and the address, then hung up."
    );
    let lines: Vec<(String, String)> = call["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["speaker"].as_str().unwrap().to_owned(),
                l["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(lines[0], ("agent".into(), "Hello, City Clinic.".into()));
    assert_eq!(lines[1], ("caller".into(), "When are you open?".into()));
    let cut = call["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["interrupted"] == true)
        .expect("an interrupted line");
    assert_eq!(cut["text"], "Our address is 1 Main Street");
    assert!(call["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "end_call"));
    // Each prompt was a turn with the call's rules and its own tools offered.
    let first = &line.scripted.requests()[0];
    assert!(
        first["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("phone call"),
        "{first}"
    );
    let offered: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(offered, ["end_call", "transfer_call"]);
    // The conversation holds the turns as ordinary runs; the interrupted answer is cut.
    let conversation = call["conversation_id"].as_str().unwrap();
    let messages = expect(
        line.app
            .get(
                &format!("/api/v1/conversations/{conversation}/messages"),
                &line.tenant.key,
            )
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let texts: Vec<String> = messages["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert!(
        texts.contains(&"Our address is 1 Main Street".to_owned()),
        "{texts:?}"
    );
    assert!(
        texts.contains(&"When are you open?".to_owned()),
        "{texts:?}"
    );
    // Twilio's action callback: a transfer dials the agent's own number only.
    let action = |data: Value| {
        let url = format!("{}/voice/twilio/{agent}/relay-action", line.app.base);
        let form = vec![("HandoffData".to_owned(), data.to_string())];
        let signature = frontdesk_voice::twilio::signature(TOKEN, &url, &form);
        line.app
            .client
            .post(url)
            .header("x-twilio-signature", signature)
            .form(&form)
            .send()
    };
    let dial = action(json!({"reason": "transfer", "number": "+15550003333"}))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(dial.contains("<Dial>+15550003333</Dial>"), "{dial}");
    let other = action(json!({"reason": "transfer", "number": "+19990000000"}))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        other.contains("<Hangup/>") && !other.contains("Dial"),
        "{other}"
    );
}

#[tokio::test]
async fn calls_are_listed_searched_and_kept_to_their_tenant() {
    let line = line(vec![], None, None).await;
    let agent = line
        .agent(json!({"slug": "out", "name": "Out", "model": "scripted/x", "voice": {"realtime_model": "rt/m", "phone_number": "+15550002222"}}))
        .await;
    // Outbound: no public URL problem in tests (the test server sets it); Twilio is asked
    // to ring the number, and the call's record exists at once.
    let placed = expect(
        line.app
            .post(
                "/api/v1/calls",
                &line.tenant.key,
                &json!({"agent": "out", "to": "+15550009999"}),
            )
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(placed["direction"], "outbound");
    assert_eq!(placed["status"], "active");
    assert_eq!(
        placed["provider_call_id"],
        "CA00000000000000000000000000000042"
    );
    let posts = line.rest.posts();
    let (path, form) = &posts[0];
    assert_eq!(path, "/2010-04-01/Accounts/AC0001/Calls.json");
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(field("To"), "+15550009999");
    assert_eq!(field("From"), "+15550002222");
    assert_eq!(
        field("StatusCallback"),
        format!(
            "{}/voice/twilio/{agent}/status?call={}",
            line.app.base,
            placed["id"].as_str().unwrap()
        )
    );
    assert_eq!(
        field("Url"),
        format!(
            "{}/voice/twilio/{agent}?call={}",
            line.app.base,
            placed["id"].as_str().unwrap()
        )
    );
    // When Twilio asks the webhook for the answered call, the stream carries the record.
    let twiml = line
        .webhook(
            &agent,
            &format!("?call={}", placed["id"].as_str().unwrap()),
            &[("CallSid", "CA42"), ("Direction", "outbound-api")],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        twiml.contains(&format!(
            "<Parameter name=\"call_id\" value=\"{}\"/>",
            placed["id"].as_str().unwrap()
        )),
        "{twiml}"
    );
    // Bad input: a number that is not E.164, an unknown agent.
    expect_error(
        line.app
            .post(
                "/api/v1/calls",
                &line.tenant.key,
                &json!({"agent": "out", "to": "555"}),
            )
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    expect(
        line.app
            .post(
                "/api/v1/calls",
                &line.tenant.key,
                &json!({"agent": "nobody", "to": "+15550009999"}),
            )
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    // List, filter, search, read.
    let id = placed["id"].as_str().unwrap();
    let got = expect(
        line.app
            .get(&format!("/api/v1/calls/{id}"), &line.tenant.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(got["to"], "+15550009999");
    for (query, count) in [
        ("?status=active", 1),
        ("?status=completed", 0),
        ("?channel=phone", 1),
        ("?q=0009999", 1),
        ("?q=nothing", 0),
        ("?agent=out", 1),
    ] {
        let list = expect(
            line.app
                .get(&format!("/api/v1/calls{query}"), &line.tenant.key)
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(list["data"].as_array().unwrap().len(), count, "{query}");
    }
    expect_error(
        line.app
            .get("/api/v1/calls?status=ringing", &line.tenant.key)
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    // Twilio reports the call was not answered: its record ends (an unsigned report is
    // refused).
    let status_url = format!("{}/voice/twilio/{agent}/status?call={id}", line.app.base);
    let form = vec![
        ("CallSid".to_owned(), "CA42".to_owned()),
        ("CallStatus".to_owned(), "no-answer".to_owned()),
    ];
    let unsigned = line
        .app
        .client
        .post(&status_url)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::FORBIDDEN);
    let signature = frontdesk_voice::twilio::signature(TOKEN, &status_url, &form);
    let reported = line
        .app
        .client
        .post(&status_url)
        .header("x-twilio-signature", signature)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(reported.status(), StatusCode::NO_CONTENT);
    let ended = expect(
        line.app
            .get(&format!("/api/v1/calls/{id}"), &line.tenant.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(ended["status"], "failed");
    assert_eq!(ended["error"], "the call did not connect (no-answer)");
    // Another tenant sees none of it.
    let other = line.app.tenant("Other").await;
    expect(
        line.app
            .get(&format!("/api/v1/calls/{id}"), &other.key)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    let theirs = expect(
        line.app
            .get("/api/v1/calls", &other.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(theirs["data"].as_array().unwrap().is_empty());
    expect(
        line.app
            .post(
                "/api/v1/calls",
                &other.key,
                &json!({"agent": agent, "to": "+15550009999"}),
            )
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn client_secrets_are_minted_from_the_agent_at_its_provider() {
    let minted = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let m = minted.clone();
    let provider = axum::Router::new().route(
        "/v1/realtime/client_secrets",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::Json<Value>| {
            let m = m.clone();
            async move {
                assert_eq!(headers["authorization"], "Bearer sk-test");
                m.lock().unwrap().push(body.0);
                axum::Json(json!({"value": "ek_test_1", "expires_at": 1_900_000_000, "session": {"type": "realtime"}}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, provider).await.unwrap() });
    let line = line(vec![], Some(&base), None).await;
    line.agent(json!({"slug": "web", "name": "Web", "instructions": "Greet warmly.", "voice": {"realtime_model": "rt/gpt-realtime", "voice": "marin"}}))
        .await;
    let secret = expect(
        line.app
            .post(
                "/api/v1/agents/web/realtime-client-secrets",
                &line.tenant.key,
                &json!({}),
            )
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(secret["value"], "ek_test_1");
    let sent = minted.lock().unwrap()[0].clone();
    assert_eq!(sent["session"]["model"], "gpt-realtime");
    assert_eq!(sent["session"]["audio"]["output"]["voice"], "marin");
    assert!(sent["session"]["instructions"]
        .as_str()
        .unwrap()
        .starts_with("Greet warmly."));
    assert_eq!(sent["expires_after"]["seconds"], 600);
    // An agent without a realtime model: 409; another tenant's agent: 404.
    line.agent(json!({"slug": "plain", "name": "Plain"})).await;
    expect_error(
        line.app
            .post(
                "/api/v1/agents/plain/realtime-client-secrets",
                &line.tenant.key,
                &json!({}),
            )
            .send()
            .await
            .unwrap(),
        StatusCode::CONFLICT,
        "voice_not_configured",
    )
    .await;
    let other = line.app.tenant("Other").await;
    expect(
        line.app
            .post(
                "/api/v1/agents/web/realtime-client-secrets",
                &other.key,
                &json!({}),
            )
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
}
