//! Peers of the voice tests: a scripted Realtime server speaking the GA event names, a
//! scripted Twilio (the media-stream socket, and its REST API for transfers and outbound
//! calls), a ConversationRelay peer, and callers' speech made with espeak-ng and sox.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// What the scripted model does after the caller finished an utterance.
#[derive(Debug, Clone)]
pub enum Action {
    /// Says this (audio and its transcript).
    Say(String),
    /// Calls a tool.
    Call(String, Value),
}

/// One exchange: the caller says `heard` (transcribed), the model does `then`.
#[derive(Debug, Clone)]
pub struct Turn {
    pub heard: String,
    pub then: Action,
}

pub fn say(heard: &str, answer: &str) -> Turn {
    Turn {
        heard: heard.to_owned(),
        then: Action::Say(answer.to_owned()),
    }
}

pub fn tool(heard: &str, name: &str, arguments: Value) -> Turn {
    Turn {
        heard: heard.to_owned(),
        then: Action::Call(name.to_owned(), arguments),
    }
}

struct Shared {
    turns: VecDeque<Turn>,
    /// Client events of each connection, in order.
    connections: Vec<Vec<Value>>,
    /// Drops the connection after this many turns (once).
    drop_after: Option<usize>,
    /// Drops every connection at once after the first drop (a provider that stays down).
    stay_down: bool,
    turns_done: usize,
}

/// A scripted OpenAI Realtime server: the caller's turns are counted in audio frames
/// (`frames_per_turn` appends end one); answers are audio of 10 ms per character in the
/// session's format, in 100 ms pieces.
#[derive(Clone)]
pub struct RealtimeScript {
    /// `http://127.0.0.1:PORT/v1`: a provider's base URL.
    pub base: String,
    shared: Arc<Mutex<Shared>>,
}

impl RealtimeScript {
    pub async fn start(turns: Vec<Turn>, frames_per_turn: usize) -> Self {
        Self::start_with(turns, frames_per_turn, None, false).await
    }

    pub async fn start_with(
        turns: Vec<Turn>,
        frames_per_turn: usize,
        drop_after: Option<usize>,
        stay_down: bool,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        let shared = Arc::new(Mutex::new(Shared {
            turns: turns.into(),
            connections: Vec::new(),
            drop_after,
            stay_down,
            turns_done: 0,
        }));
        let state = shared.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let Ok(socket) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    serve(socket, state, frames_per_turn).await;
                });
            }
        });
        Self { base, shared }
    }

    /// Every connection's client events.
    pub fn connections(&self) -> Vec<Vec<Value>> {
        self.shared.lock().unwrap().connections.clone()
    }

    /// The client events of every connection with this type.
    pub fn events(&self, kind: &str) -> Vec<Value> {
        self.connections()
            .into_iter()
            .flatten()
            .filter(|e| e["type"] == kind)
            .collect()
    }
}

type Server = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn send(socket: &mut Server, event: Value) -> bool {
    socket
        .send(Message::Text(event.to_string().into()))
        .await
        .is_ok()
}

/// One response: created, then the audio and its transcript (or a function call), done.
async fn respond(
    socket: &mut Server,
    n: usize,
    action: &Action,
    bytes_per_ms: usize,
    in_conversation: bool,
) {
    let id = format!("resp_{n}");
    let item = format!("item_{n}");
    send(socket, json!({"type": "response.created", "event_id": format!("e{n}a"), "response": {"id": id, "status": "in_progress"}})).await;
    match action {
        Action::Say(text) => {
            let total = text.chars().count() * 10 * bytes_per_ms;
            let piece = 100 * bytes_per_ms;
            let mut sent = 0;
            while sent < total {
                let len = piece.min(total - sent);
                let audio = vec![0x55u8; len];
                send(socket, json!({"type": "response.output_audio.delta", "response_id": id, "item_id": item, "output_index": 0, "content_index": 0, "delta": B64.encode(audio)})).await;
                sent += len;
            }
            send(socket, json!({"type": "response.output_audio_transcript.done", "response_id": id, "item_id": item, "transcript": text})).await;
        }
        Action::Call(name, arguments) => {
            send(socket, json!({"type": "response.output_item.done", "response_id": id, "item": {"id": item, "type": "function_call", "call_id": format!("call_{n}"), "name": name, "arguments": arguments.to_string()}})).await;
        }
    }
    let mut response = json!({"id": id, "object": "realtime.response", "status": "completed", "usage": {"input_tokens": 100, "output_tokens": 40}});
    if !in_conversation {
        response["conversation_id"] = Value::Null;
        response["metadata"] = json!({"frontdesk": "filler"});
    }
    send(
        socket,
        json!({"type": "response.done", "response": response}),
    )
    .await;
}

async fn serve(mut socket: Server, shared: Arc<Mutex<Shared>>, frames_per_turn: usize) {
    let (index, refuse) = {
        let mut state = shared.lock().unwrap();
        state.connections.push(Vec::new());
        (
            state.connections.len() - 1,
            state.stay_down && state.connections.len() > 1,
        )
    };
    if refuse {
        let _ = socket.close(None).await;
        return;
    }
    send(
        &mut socket,
        json!({"type": "session.created", "event_id": "e0", "session": {"type": "realtime"}}),
    )
    .await;
    let mut bytes_per_ms = 8;
    let mut frames = 0;
    let mut responses = 0;
    let mut last_output = String::new();
    while let Some(Ok(message)) = socket.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let event: Value = serde_json::from_str(&text).unwrap();
        shared.lock().unwrap().connections[index].push(event.clone());
        match event["type"].as_str().unwrap_or_default() {
            "session.update" => {
                if event["session"]["audio"]["input"]["format"]["type"] == "audio/pcm" {
                    bytes_per_ms = 48;
                }
                send(
                    &mut socket,
                    json!({"type": "session.updated", "session": event["session"]}),
                )
                .await;
            }
            "input_audio_buffer.append" => {
                frames += 1;
                let more = !shared.lock().unwrap().turns.is_empty();
                if frames == 1 && more {
                    send(&mut socket, json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "in"})).await;
                }
                if frames < frames_per_turn {
                    continue;
                }
                frames = 0;
                let turn = {
                    let mut state = shared.lock().unwrap();
                    let turn = state.turns.pop_front();
                    state.turns_done += usize::from(turn.is_some());
                    turn
                };
                let Some(turn) = turn else { continue };
                send(&mut socket, json!({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 500, "item_id": "in"})).await;
                send(&mut socket, json!({"type": "conversation.item.input_audio_transcription.completed", "item_id": "in", "content_index": 0, "transcript": turn.heard})).await;
                responses += 1;
                respond(
                    &mut socket,
                    index * 100 + responses,
                    &turn.then,
                    bytes_per_ms,
                    true,
                )
                .await;
                let drop_now = {
                    let mut state = shared.lock().unwrap();
                    let due = state.drop_after == Some(state.turns_done);
                    if due {
                        state.drop_after = None;
                    }
                    due
                };
                if drop_now {
                    let _ = socket.close(None).await;
                    return;
                }
            }
            "conversation.item.create" if event["item"]["type"] == "function_call_output" => {
                last_output = event["item"]["output"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
            }
            "response.create" => {
                responses += 1;
                let instructions = event["response"]["instructions"]
                    .as_str()
                    .unwrap_or_default();
                let in_conversation = event["response"]["conversation"] != "none";
                let text = match instructions.split_once("nothing else: ") {
                    Some((_, said)) => said.to_owned(),
                    None => std::mem::take(&mut last_output),
                };
                respond(
                    &mut socket,
                    index * 100 + responses,
                    &Action::Say(text),
                    bytes_per_ms,
                    in_conversation,
                )
                .await;
            }
            _ => {}
        }
    }
}

/// What the scripted Twilio side got on a media stream.
#[derive(Debug, Default, Clone)]
pub struct Heard {
    pub media_bytes: usize,
    pub marks: Vec<String>,
    pub clears: usize,
    pub closed: bool,
}

/// Twilio's side of a media stream.
pub struct TwilioPeer {
    out: tokio::sync::mpsc::UnboundedSender<Message>,
    pub heard: Arc<Mutex<Heard>>,
    /// Marks received and not echoed (when the test decides what "played").
    pub pending_marks: Arc<Mutex<VecDeque<String>>>,
    stream_sid: String,
}

fn mark_frame(sid: &str, name: &str) -> Message {
    Message::Text(
        json!({"event": "mark", "streamSid": sid, "mark": {"name": name}})
            .to_string()
            .into(),
    )
}

impl TwilioPeer {
    /// Connects to `url` (signed with `token`) and sends `connected` and `start` with these
    /// parameters. With `echo`, every mark is echoed at once (the caller heard everything).
    pub async fn connect(url: &str, token: &str, parameters: Value, echo: bool) -> Self {
        let mut request = url.into_client_request().unwrap();
        let signature = frontdesk_voice::twilio::signature(token, url, &[]);
        request
            .headers_mut()
            .insert("x-twilio-signature", signature.parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let (mut sink, mut stream) = socket.split();
        let (out, mut outgoing) = tokio::sync::mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(message) = outgoing.recv().await {
                let close = matches!(message, Message::Close(_));
                if sink.send(message).await.is_err() || close {
                    break;
                }
            }
        });
        let stream_sid = "MZ00000000000000000000000000000001".to_owned();
        let heard = Arc::new(Mutex::new(Heard::default()));
        let pending = Arc::new(Mutex::new(VecDeque::new()));
        let (h, p, echo_out, sid) = (
            heard.clone(),
            pending.clone(),
            out.clone(),
            stream_sid.clone(),
        );
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let text = match message {
                    Message::Text(text) => text,
                    Message::Close(_) => break,
                    _ => continue,
                };
                let frame: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(frame["streamSid"], sid.as_str(), "{frame}");
                match frame["event"].as_str().unwrap_or_default() {
                    "media" => {
                        let payload = B64
                            .decode(frame["media"]["payload"].as_str().unwrap())
                            .unwrap();
                        h.lock().unwrap().media_bytes += payload.len();
                    }
                    "mark" => {
                        let name = frame["mark"]["name"].as_str().unwrap().to_owned();
                        h.lock().unwrap().marks.push(name.clone());
                        if echo {
                            let _ = echo_out.send(mark_frame(&sid, &name));
                        } else {
                            p.lock().unwrap().push_back(name);
                        }
                    }
                    "clear" => {
                        h.lock().unwrap().clears += 1;
                        p.lock().unwrap().clear();
                    }
                    other => panic!("Twilio does not take `{other}` on a media stream"),
                }
            }
            h.lock().unwrap().closed = true;
        });
        let peer = Self {
            out,
            heard,
            pending_marks: pending,
            stream_sid,
        };
        peer.send(json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}));
        let sid = peer.stream_sid.clone();
        peer.send(
            json!({"event": "start", "sequenceNumber": "1", "streamSid": sid, "start": {
            "streamSid": sid, "accountSid": "AC0001", "callSid": "CA0001", "tracks": ["inbound"],
            "customParameters": parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}),
        );
        peer
    }

    pub fn send(&self, frame: Value) {
        let _ = self.out.send(Message::Text(frame.to_string().into()));
    }

    /// Sends `audio` (μ-law) as 20 ms media frames.
    pub fn play(&self, audio: &[u8]) {
        for (i, chunk) in audio.chunks(160).enumerate() {
            self.send(json!({"event": "media", "sequenceNumber": (i + 2).to_string(), "streamSid": self.stream_sid,
                "media": {"track": "inbound", "chunk": (i + 1).to_string(), "timestamp": (i * 20).to_string(), "payload": B64.encode(chunk)}}));
        }
    }

    /// Echoes up to `at_most` of the marks received so far (their audio played).
    pub fn echo_marks(&self, at_most: usize) {
        let names: Vec<String> = {
            let mut pending = self.pending_marks.lock().unwrap();
            let n = at_most.min(pending.len());
            pending.drain(..n).collect()
        };
        for name in names {
            let _ = self.out.send(mark_frame(&self.stream_sid, &name));
        }
    }

    pub fn dtmf(&self, digit: &str) {
        self.send(json!({"event": "dtmf", "streamSid": self.stream_sid, "dtmf": {"track": "inbound_track", "digit": digit}}));
    }

    /// The caller hangs up: `stop`, then the socket closes.
    pub fn stop(&self) {
        self.send(json!({"event": "stop", "streamSid": self.stream_sid, "stop": {"accountSid": "AC0001", "callSid": "CA0001"}}));
        let _ = self.out.send(Message::Close(None));
    }
}

/// Waits until `check` holds (polling every 20 ms, 10 s at most).
pub async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Speech made with espeak-ng, converted by sox to `-r RATE` and the encoding `args` say.
fn speech(text: &str, convert: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("speech.wav");
    let out = dir.path().join("speech.out");
    let made = std::process::Command::new("espeak-ng")
        .args(["-w", wav.to_str().unwrap(), text])
        .status()
        .expect("espeak-ng (make test installs it)");
    assert!(made.success());
    let mut args: Vec<String> = vec![wav.to_str().unwrap().to_owned()];
    args.extend(convert.iter().map(|a| (*a).to_owned()));
    args.push(out.to_str().unwrap().to_owned());
    let converted = std::process::Command::new("sox")
        .args(&args)
        .status()
        .expect("sox (make test installs it)");
    assert!(converted.success());
    std::fs::read(out).unwrap()
}

/// A caller saying `text`: 8 kHz μ-law, as a phone line carries it.
pub fn phone_speech(text: &str) -> Vec<u8> {
    speech(
        text,
        &["-r", "8000", "-c", "1", "-e", "mu-law", "-t", "raw"],
    )
}

/// A WAV file of `text` at 24 kHz (a browser's fake microphone).
pub fn speech_wav(text: &str, path: &PathBuf) {
    let raw = speech(
        text,
        &[
            "-r",
            "24000",
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            "-t",
            "wav",
        ],
    );
    std::fs::write(path, raw).unwrap();
}

/// Form posts: the path and the fields.
type Posts = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

/// A scripted Twilio REST API: records form posts and answers a call sid.
#[derive(Clone)]
pub struct TwilioRest {
    pub url: String,
    pub posts: Posts,
}

impl TwilioRest {
    pub async fn start() -> Self {
        let posts = Arc::new(Mutex::new(Vec::new()));
        let p = posts.clone();
        let app =
            axum::Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
                let p = p.clone();
                async move {
                    let form: Vec<(String, String)> =
                        serde_urlencoded::from_bytes(&body).unwrap_or_default();
                    p.lock().unwrap().push((uri.path().to_owned(), form));
                    axum::Json(
                        json!({"sid": "CA00000000000000000000000000000042", "status": "queued"}),
                    )
                }
            });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, posts }
    }

    pub fn posts(&self) -> Vec<(String, Vec<(String, String)>)> {
        self.posts.lock().unwrap().clone()
    }
}

/// Frames (20 ms each) that make one caller turn at the scripted model.
pub const TURN_FRAMES: usize = 25;

/// `TURN_FRAMES` frames of the caller saying `text`.
pub fn utterance(text: &str) -> Vec<u8> {
    let mut audio = phone_speech(text);
    audio.resize(TURN_FRAMES * 160, 0xFF);
    audio
}

/// The tool results the scripted model got, in order.
pub fn outputs(realtime: &RealtimeScript) -> Vec<String> {
    realtime
        .events("conversation.item.create")
        .iter()
        .filter(|e| e["item"]["type"] == "function_call_output")
        .map(|e| e["item"]["output"].as_str().unwrap().to_owned())
        .collect()
}

/// Speech services of the OpenAI shape: transcriptions answer `said` in turn (their bodies'
/// sizes are recorded), speech answers 24 kHz PCM (240 samples a character).
pub async fn speech_services(said: Vec<&'static str>) -> (String, Arc<Mutex<Vec<usize>>>) {
    let said = Arc::new(Mutex::new(VecDeque::from(said)));
    let heard = Arc::new(Mutex::new(Vec::new()));
    let h = heard.clone();
    let app = axum::Router::new()
        .route(
            "/v1/audio/transcriptions",
            axum::routing::post(move |body: axum::body::Bytes| {
                let (said, h) = (said.clone(), h.clone());
                async move {
                    h.lock().unwrap().push(body.len());
                    axum::Json(json!({"text": said.lock().unwrap().pop_front().unwrap_or("")}))
                }
            }),
        )
        .route(
            "/v1/audio/speech",
            axum::routing::post(|body: axum::Json<Value>| async move {
                assert_eq!(body["response_format"], "pcm");
                vec![0x10u8; body["input"].as_str().unwrap().len() * 240 * 2]
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, heard)
}
