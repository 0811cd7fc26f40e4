//! Voice relay benchmark: phone calls over Twilio media streams, bridged by the real server
//! (SQLite) to a Realtime-shaped echo model, at 1, 50 and 500 calls at once. Each caller
//! sends 20 ms μ-law frames in real time (50 a second) and echoes the marks it gets, as
//! Twilio does; the model echoes every frame back as audio. Each frame carries the time it
//! was sent, so both hops are timed: caller → model (uplink) and model → caller (downlink).
//! Every 3 s (a turn of a conversation) a frame ends the caller's speech: the model answers with its events and the
//! first audio of an answer, timed from its send to the caller's first byte.
//!
//! The same callers talking straight to the echo model (no frontdesk between) give the
//! baseline: frontdesk's added latency per frame is the relay's less the baseline's, and its
//! CPU is the run's less the baseline's (everything shares one process). Memory per call is
//! the resident memory with every call connected, less before, less the baseline's.
//!
//! `cargo bench -p frontdesk-server --bench voice -- [--calls 1,50,500] [--seconds N]`; the
//! table also goes to `target/bench-voice.md`.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use frontdesk_core::config::{Config, ProviderConfig, ProviderKind};
use frontdesk_core::service::NewTenant;
use frontdesk_core::store::BaseStore;
use frontdesk_core::Service;
use frontdesk_server::AppState;
use frontdesk_store::SqlStore;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const TOKEN: &str = "bench-twilio-token";
/// Marks a frame that ends the caller's speech.
const END_OF_SPEECH: u8 = 0xEE;

/// The stream parameters the webhook's TwiML gives the bench's calls (its token among them).
static PARAMETERS: OnceLock<Value> = OnceLock::new();

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// A 160-byte frame stamped with now.
fn frame(end_of_speech: bool) -> Vec<u8> {
    let mut audio = vec![0xFFu8; 160];
    restamp(&mut audio);
    audio[16] = if end_of_speech { END_OF_SPEECH } else { 0 };
    audio
}

fn restamp(audio: &mut [u8]) {
    let nanos = origin().elapsed().as_nanos() as u64;
    audio[..8].copy_from_slice(&nanos.to_le_bytes());
}

fn age(audio: &[u8]) -> Duration {
    let sent = u64::from_le_bytes(audio[..8].try_into().unwrap());
    origin()
        .elapsed()
        .saturating_sub(Duration::from_nanos(sent))
}

#[derive(Default)]
struct Samples {
    uplink: Vec<Duration>,
    downlink: Vec<Duration>,
    answer: Vec<Duration>,
    frames: u64,
}

type Shared = Arc<Mutex<Samples>>;

/// The echo model: Realtime's shape, every appended frame back as audio at once.
async fn echo_model(samples: Shared) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let samples = samples.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
                let Ok(mut socket) =
                    tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await
                else {
                    return;
                };
                let send = |v: Value| Message::Text(v.to_string().into());
                let _ = socket
                    .send(send(json!({"type": "session.created", "session": {}})))
                    .await;
                let mut n = 0u64;
                while let Some(Ok(Message::Text(text))) = socket.next().await {
                    let event: Value = serde_json::from_str(&text).unwrap();
                    if event["type"] != "input_audio_buffer.append" {
                        continue;
                    }
                    let mut audio = B64.decode(event["audio"].as_str().unwrap()).unwrap();
                    samples.lock().unwrap().uplink.push(age(&audio));
                    n += 1;
                    if audio[16] == END_OF_SPEECH {
                        for e in [
                            json!({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 1000, "item_id": "in"}),
                            json!({"type": "conversation.item.input_audio_transcription.completed", "item_id": "in", "transcript": "Hello?"}),
                            json!({"type": "response.created", "response": {"id": format!("r{n}")}}),
                        ] {
                            let _ = socket.send(send(e)).await;
                        }
                    }
                    restamp(&mut audio);
                    let delta = json!({"type": "response.output_audio.delta", "item_id": format!("it{}", n / 50),
                        "response_id": "r", "output_index": 0, "content_index": 0, "delta": B64.encode(&audio)});
                    if socket.send(send(delta)).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    base
}

/// One caller: `seconds` of real-time frames; the marks it gets echoed.
async fn caller(
    url: String,
    direct: bool,
    seconds: u64,
    samples: Shared,
    start: Arc<tokio::sync::Barrier>,
    phase: Duration,
    turn_offset: u64,
) {
    let mut request = url.as_str().into_client_request().unwrap();
    if !direct {
        let signature = frontdesk_voice::twilio::signature(TOKEN, &url, &[]);
        request
            .headers_mut()
            .insert("x-twilio-signature", signature.parse().unwrap());
    }
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .unwrap();
    let (mut sink, mut stream) = socket.split();
    let sid = "MZ0000000000000000000000000000bench";
    if !direct {
        for f in [
            json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
            json!({"event": "start", "sequenceNumber": "1", "streamSid": sid, "start": {"streamSid": sid, "callSid": "CAbench",
                "accountSid": "ACbench", "customParameters": PARAMETERS.get().cloned().unwrap_or_default(),
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}),
        ] {
            sink.send(Message::Text(f.to_string().into()))
                .await
                .unwrap();
        }
    }
    let (out, mut outgoing) = tokio::sync::mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        while let Some(text) = outgoing.recv().await {
            if sink.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let marks = out.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(Message::Text(text))) = stream.next().await {
            let value: Value = serde_json::from_str(&text).unwrap();
            let payload = if direct {
                value["delta"].as_str().map(str::to_owned)
            } else {
                match value["event"].as_str() {
                    Some("media") => value["media"]["payload"].as_str().map(str::to_owned),
                    Some("mark") => {
                        let _ = marks.send(
                            json!({"event": "mark", "streamSid": sid, "mark": value["mark"]})
                                .to_string(),
                        );
                        None
                    }
                    _ => None,
                }
            };
            if let Some(payload) = payload {
                let audio = B64.decode(payload).unwrap();
                let mut s = samples.lock().unwrap();
                let took = age(&audio);
                if audio[16] == END_OF_SPEECH {
                    s.answer.push(took);
                }
                s.downlink.push(took);
                s.frames += 1;
            }
        }
    });
    start.wait().await;
    // Calls start at their own moments: their 20 ms frames do not all arrive at once.
    tokio::time::sleep(phase).await;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for i in 0..seconds * 50 {
        tick.tick().await;
        // Each call's turns end at its own moments (every 3 s), not all calls at once.
        let audio = frame((i + turn_offset) % 150 == 149);
        let text = if direct {
            json!({"type": "input_audio_buffer.append", "audio": B64.encode(&audio)}).to_string()
        } else {
            json!({"event": "media", "streamSid": sid, "media": {"track": "inbound", "chunk": (i + 1).to_string(),
                "timestamp": (i * 20).to_string(), "payload": B64.encode(&audio)}})
            .to_string()
        };
        out.send(text).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    if !direct {
        let _ = out.send(json!({"event": "stop", "streamSid": sid, "stop": {}}).to_string());
    }
    // The reader holds a sender (for marks): it goes first, then the writer drains.
    reader.abort();
    drop(out);
    let _ = writer.await;
}

fn rss_kib() -> u64 {
    proc_field("/proc/self/status", |status| {
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    })
}

/// CPU time of this process (user + system), in clock ticks (100 a second).
fn cpu_ticks() -> u64 {
    proc_field("/proc/self/stat", |stat| {
        let after = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    })
}

fn proc_field(path: &str, read: impl Fn(&str) -> Option<u64>) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| read(&text))
        .unwrap_or(0)
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort();
    let idx = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
    samples[idx].as_secs_f64() * 1000.0
}

struct Run {
    uplink: (f64, f64),
    downlink: (f64, f64),
    answer: (f64, f64),
    frames: u64,
    cpu_seconds: f64,
    rss_per_call_kib: f64,
}

async fn run(url: &str, direct: bool, calls: usize, seconds: u64, samples: Shared) -> Run {
    *samples.lock().unwrap() = Samples::default();
    let before = rss_kib();
    let start = Arc::new(tokio::sync::Barrier::new(calls + 1));
    let mut tasks = Vec::new();
    for i in 0..calls {
        let phase = Duration::from_micros(20_000 * i as u64 / calls as u64);
        let turn_offset = (i as u64 * 150) / calls as u64;
        tasks.push(tokio::spawn(caller(
            url.to_owned(),
            direct,
            seconds,
            samples.clone(),
            start.clone(),
            phase,
            turn_offset,
        )));
    }
    // Every call connected (and, through frontdesk, started) before the clock runs.
    tokio::time::sleep(Duration::from_millis(300 + calls as u64 * 4)).await;
    let connected = rss_kib();
    let cpu_before = cpu_ticks();
    start.wait().await;
    for task in tasks {
        task.await.unwrap();
    }
    let cpu = (cpu_ticks() - cpu_before) as f64 / 100.0;
    let mut s = std::mem::take(&mut *samples.lock().unwrap());
    Run {
        uplink: (
            percentile(&mut s.uplink, 0.5),
            percentile(&mut s.uplink, 0.99),
        ),
        downlink: (
            percentile(&mut s.downlink, 0.5),
            percentile(&mut s.downlink, 0.99),
        ),
        answer: (
            percentile(&mut s.answer, 0.5),
            percentile(&mut s.answer, 0.99),
        ),
        frames: s.frames,
        cpu_seconds: cpu,
        rss_per_call_kib: connected.saturating_sub(before) as f64 / calls as f64,
    }
}

#[tokio::main]
async fn main() {
    let mut calls = vec![1, 50, 500];
    let mut seconds = 6;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--calls" => {
                calls = it
                    .next()
                    .expect("--calls 1,50,500")
                    .split(',')
                    .map(|n| n.parse().expect("a number"))
                    .collect()
            }
            "--seconds" => seconds = it.next().and_then(|v| v.parse().ok()).expect("--seconds N"),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    origin();
    let samples: Shared = Arc::default();
    let model = echo_model(samples.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::connect(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let mut config = Config {
        bootstrap_demo: false,
        master_key: Some(frontdesk_core::credentials::generate_master_key().into()),
        ..Config::default()
    };
    config.limits.max_connections_per_address = 100_000;
    config.limits.max_calls_per_tenant = 10_000;
    let mut provider = ProviderConfig::new(ProviderKind::Openai);
    provider.base_url = Some(model.clone());
    provider.api_key = Some("sk-bench".to_owned().into());
    config.providers.insert("rt".into(), provider);
    let sealer = frontdesk_core::credentials::sealer_for(&config).unwrap();
    let service = Service::new(Arc::new(store.clone()), config.limits.clone()).with_sealer(sealer);
    let tenant = service
        .create_tenant(NewTenant {
            name: "Bench Clinic".into(),
            owner_email: None,
            monthly_token_quota: None,
        })
        .await
        .unwrap();
    for (name, value) in [
        ("TWILIO_ACCOUNT_SID", "ACbench"),
        ("TWILIO_AUTH_TOKEN", TOKEN),
    ] {
        service
            .put_secret(&tenant.tenant.id, name, value)
            .await
            .unwrap();
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    config.public_url = Some(base.clone());
    let state = AppState::new(service.clone(), config).unwrap();
    tokio::spawn(frontdesk_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    let agent: Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/agents"))
        .bearer_auth(tenant.secret.expose())
        .json(&json!({"slug": "reception", "name": "Reception", "voice": {"realtime_model": "rt/echo"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Twilio asks the webhook first; its TwiML's parameters go with every stream.
    let webhook = format!("{base}/voice/twilio/{}", agent["id"].as_str().unwrap());
    let form = vec![
        ("CallSid".to_owned(), "CAbench".to_owned()),
        ("From".to_owned(), "+15550001111".to_owned()),
    ];
    let twiml = reqwest::Client::new()
        .post(&webhook)
        .header(
            "x-twilio-signature",
            frontdesk_voice::twilio::signature(TOKEN, &webhook, &form),
        )
        .form(&form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut parameters = serde_json::Map::new();
    for tag in twiml.split("<Parameter ").skip(1) {
        let attribute = |name: &str| {
            tag.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_default()
                .to_owned()
        };
        parameters.insert(attribute("name"), Value::String(attribute("value")));
    }
    assert!(parameters.contains_key("token"), "{twiml}");
    PARAMETERS.set(Value::Object(parameters)).unwrap();
    let stream = format!(
        "{}/voice/twilio/{}/stream",
        base.replacen("http://", "ws://", 1),
        agent["id"].as_str().unwrap()
    );
    let direct = format!(
        "{}/realtime?model=echo",
        model.replacen("http://", "ws://", 1)
    );

    let mut table = String::from(
        "| calls | path | frames relayed/s | uplink p50 / p99 ms | downlink p50 / p99 ms | end of speech → first audio p50 / p99 ms | CPU s | frames per core-second | memory per call |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for &n in &calls {
        let through = run(&stream, false, n, seconds, samples.clone()).await;
        let straight = run(&direct, true, n, seconds, samples.clone()).await;
        let added_cpu = (through.cpu_seconds - straight.cpu_seconds).max(0.001);
        // Each frame is relayed twice through frontdesk: in (caller → model) and out.
        let relayed = through.frames * 2;
        for (label, r, extra) in [
            (
                "through frontdesk",
                &through,
                format!("{:.0}", relayed as f64 / added_cpu),
            ),
            ("straight (baseline)", &straight, "—".to_owned()),
        ] {
            table.push_str(&format!(
                "| {n} | {label} | {:.0} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} | {extra} | {:.0} KiB |\n",
                r.frames as f64 * 2.0 / seconds as f64,
                r.uplink.0, r.uplink.1, r.downlink.0, r.downlink.1, r.answer.0, r.answer.1, r.cpu_seconds, r.rss_per_call_kib,
            ));
        }
        table.push_str(&format!(
            "| {n} | **frontdesk adds** | | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} | | {:.0} KiB |\n",
            through.uplink.0 - straight.uplink.0,
            through.uplink.1 - straight.uplink.1,
            through.downlink.0 - straight.downlink.0,
            through.downlink.1 - straight.downlink.1,
            through.answer.0 - straight.answer.0,
            through.answer.1 - straight.answer.1,
            added_cpu,
            through.rss_per_call_kib - straight.rss_per_call_kib,
        ));
        println!("{n} calls done");
        // Let the calls' records settle before the next size.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("{table}");
    let out =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-voice.md");
    std::fs::write(&out, &table).unwrap();
}
