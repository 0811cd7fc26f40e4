//! The OpenAI Realtime protocol over WebSocket, as a client: the session configured from
//! the agent, the client events a call sends, and the server events it reads — the GA names
//! and the beta ones older servers send (`../shared/PROTOCOLS.md` §5).

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::codec::{Audio, Format};
use crate::error::{Result, VoiceError};

/// How a realtime session is set up.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub model: String,
    pub instructions: String,
    pub voice: Option<String>,
    /// The caller's audio as it reaches the model, and the model's audio as the caller needs it.
    pub format: Format,
    /// `turn_detection` as the Realtime API takes it (`null` turns it off).
    pub turn_detection: Value,
    pub transcription_model: Option<String>,
    pub language: Option<String>,
    /// `[{type: "function", name, description, parameters}]`.
    pub tools: Vec<Value>,
}

/// The Realtime API's `turn_detection` from the agent's setting (server VAD by default).
pub fn turn_detection(setting: Option<&frontdesk_core::voice::TurnDetection>) -> Value {
    let Some(detection) = setting else {
        return json!({"type": "server_vad", "create_response": true, "interrupt_response": true});
    };
    // Each type takes its own fields only (the API refuses the other's).
    let mut value = match detection.kind.as_str() {
        "none" => return Value::Null,
        "semantic_vad" => json!({"type": "semantic_vad", "eagerness": detection.eagerness}),
        _ => json!({"type": "server_vad", "threshold": detection.threshold,
            "prefix_padding_ms": detection.prefix_padding_ms, "silence_duration_ms": detection.silence_duration_ms}),
    };
    if let Some(object) = value.as_object_mut() {
        object.retain(|_, v| !v.is_null());
        object.insert("create_response".into(), json!(true));
        object.insert("interrupt_response".into(), json!(true));
    }
    value
}

/// `session.update` for a GA server.
pub fn session_update(config: &SessionConfig) -> Value {
    let mut input = Map::new();
    input.insert("format".into(), config.format.realtime());
    input.insert("turn_detection".into(), config.turn_detection.clone());
    let mut transcription = Map::new();
    transcription.insert(
        "model".into(),
        json!(config
            .transcription_model
            .as_deref()
            .unwrap_or("gpt-4o-mini-transcribe")),
    );
    if let Some(language) = &config.language {
        // The transcription takes ISO 639-1 (`en`), not a region.
        let primary = language.split('-').next().unwrap_or(language);
        transcription.insert("language".into(), json!(primary));
    }
    input.insert("transcription".into(), Value::Object(transcription));
    let mut output = Map::new();
    output.insert("format".into(), config.format.realtime());
    if let Some(voice) = &config.voice {
        output.insert("voice".into(), json!(voice));
    }
    json!({
        "type": "session.update",
        "session": {
            "type": "realtime",
            "model": config.model,
            "instructions": config.instructions,
            "output_modalities": ["audio"],
            "audio": {"input": input, "output": output},
            "tools": config.tools,
            "tool_choice": "auto",
        }
    })
}

/// The caller's audio, written by hand: it is the hottest event of a call.
pub fn append_audio(audio: &Audio) -> String {
    format!(
        "{{\"type\":\"input_audio_buffer.append\",\"audio\":\"{}\"}}",
        audio.base64()
    )
}

/// Cuts the model's answer to what the caller heard.
pub fn truncate(item_id: &str, audio_end_ms: u64) -> Value {
    json!({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": audio_end_ms})
}

/// A tool's result.
pub fn function_output(call_id: &str, output: &str) -> Value {
    json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": call_id, "output": output}})
}

/// A text message in the conversation (a caller's keypad press; the transcript replayed
/// after a reconnect).
pub fn text_item(role: &str, text: &str) -> Value {
    let kind = if role == "assistant" {
        "output_text"
    } else {
        "input_text"
    };
    json!({"type": "conversation.item.create", "item": {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}})
}

/// Asks the model to answer.
pub fn response_create() -> Value {
    json!({"type": "response.create"})
}

/// Asks the model to say something outside the conversation (a greeting, a filler while
/// the supervisor thinks): `conversation: "none"` keeps it out of the model's context, no
/// tools.
pub fn say(text: &str, in_conversation: bool) -> Value {
    let mut response = json!({
        "instructions": format!("Say exactly this, in the caller's language, and nothing else: {text}"),
        "tool_choice": "none",
    });
    if !in_conversation {
        response["conversation"] = json!("none");
        response["metadata"] = json!({"frontdesk": "filler"});
    }
    json!({"type": "response.create", "response": response})
}

/// A server event this bridge acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    SessionCreated,
    SessionUpdated,
    /// The caller started speaking (barge-in).
    SpeechStarted,
    SpeechStopped,
    /// What the caller said, transcribed.
    InputTranscript {
        item_id: String,
        text: String,
    },
    ResponseCreated {
        id: String,
    },
    /// Audio of the model's answer, in the session's format.
    Audio {
        item_id: String,
        audio: Audio,
    },
    /// The model's spoken words so far (a delta) and in full (done).
    TranscriptDelta {
        item_id: String,
        delta: String,
    },
    TranscriptDone {
        item_id: String,
        text: String,
    },
    /// The answer's audio is complete.
    AudioDone {
        item_id: String,
    },
    /// The model asks for a tool.
    FunctionCall {
        call_id: String,
        name: String,
        arguments: String,
    },
    ResponseDone {
        id: String,
        status: String,
        input_tokens: i64,
        output_tokens: i64,
        /// An out-of-band answer (a filler) rather than one in the conversation.
        out_of_band: bool,
    },
    Error {
        message: String,
        code: Option<String>,
    },
    /// Anything else (rate limits, item bookkeeping).
    Other(String),
}

fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A server event's fields this bridge reads (the rest is skipped while parsing).
#[derive(serde::Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default)]
    item_id: Option<String>,
    #[serde(default)]
    delta: Option<String>,
    #[serde(default)]
    transcript: Option<String>,
    #[serde(default)]
    response: Option<Value>,
    #[serde(default)]
    item: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

/// Reads one server event (GA or beta names).
pub fn parse_event(raw: &str) -> Result<ServerEvent> {
    let event: Event<'_> = serde_json::from_str(raw)
        .map_err(|e| VoiceError::Protocol(format!("not a realtime event: {e}")))?;
    let item_id = || event.item_id.clone().unwrap_or_default();
    Ok(match event.kind.as_ref() {
        "response.output_audio.delta" | "response.audio.delta" => {
            let delta = event.delta.unwrap_or_default();
            if !crate::codec::is_base64(&delta) {
                return Err(VoiceError::Protocol("audio delta is not base64".to_owned()));
            }
            ServerEvent::Audio {
                item_id: event.item_id.unwrap_or_default(),
                audio: Audio::Base64(delta),
            }
        }
        "response.output_audio.done" | "response.audio.done" => {
            ServerEvent::AudioDone { item_id: item_id() }
        }
        "session.created" => ServerEvent::SessionCreated,
        "session.updated" => ServerEvent::SessionUpdated,
        "input_audio_buffer.speech_started" => ServerEvent::SpeechStarted,
        "input_audio_buffer.speech_stopped" => ServerEvent::SpeechStopped,
        "conversation.item.input_audio_transcription.completed" => ServerEvent::InputTranscript {
            item_id: item_id(),
            text: event.transcript.clone().unwrap_or_default(),
        },
        "response.created" => ServerEvent::ResponseCreated {
            id: event
                .response
                .as_ref()
                .map(|r| text(r, "id"))
                .unwrap_or_default(),
        },
        "response.output_audio_transcript.delta" | "response.audio_transcript.delta" => {
            ServerEvent::TranscriptDelta {
                item_id: item_id(),
                delta: event.delta.clone().unwrap_or_default(),
            }
        }
        "response.output_audio_transcript.done" | "response.audio_transcript.done" => {
            ServerEvent::TranscriptDone {
                item_id: item_id(),
                text: event.transcript.clone().unwrap_or_default(),
            }
        }
        "response.output_item.done" => match &event.item {
            Some(item) if text(item, "type") == "function_call" => ServerEvent::FunctionCall {
                call_id: text(item, "call_id"),
                name: text(item, "name"),
                arguments: text(item, "arguments"),
            },
            _ => ServerEvent::Other(event.kind.into_owned()),
        },
        "response.done" => {
            let response = event.response.clone().unwrap_or(Value::Null);
            let usage = response.get("usage").cloned().unwrap_or(Value::Null);
            let tokens = |key: &str| usage.get(key).and_then(Value::as_i64).unwrap_or(0);
            ServerEvent::ResponseDone {
                id: text(&response, "id"),
                status: text(&response, "status"),
                input_tokens: tokens("input_tokens"),
                output_tokens: tokens("output_tokens"),
                out_of_band: response
                    .get("metadata")
                    .and_then(|m| m.get("frontdesk"))
                    .is_some()
                    || response.get("conversation_id").is_some_and(Value::is_null),
            }
        }
        "error" => {
            let error = event.error.clone().unwrap_or(Value::Null);
            ServerEvent::Error {
                message: text(&error, "message"),
                code: error.get("code").and_then(Value::as_str).map(str::to_owned),
            }
        }
        _ => ServerEvent::Other(event.kind.into_owned()),
    })
}

/// Where a realtime model is and how to sign in to it.
#[derive(Clone)]
pub struct Endpoint {
    /// `ws(s)://…/realtime?model=…`.
    pub url: String,
    pub api_key: Option<secrecy::SecretString>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("url", &self.url).finish()
    }
}

/// The realtime URL of a provider's HTTP base URL (`https://api.openai.com/v1` →
/// `wss://api.openai.com/v1/realtime?model=…`).
pub fn realtime_url(base_url: &str, model: &str) -> Result<String> {
    let base = base_url.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        return Err(VoiceError::Config(format!(
            "the provider's base URL `{base_url}` is not http(s)"
        )));
    };
    let mut url = url::Url::parse(&format!("{ws}/realtime"))
        .map_err(|e| VoiceError::Config(format!("bad realtime URL: {e}")))?;
    url.query_pairs_mut().append_pair("model", model);
    Ok(url.to_string())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A connection to a realtime model.
pub struct Connection {
    socket: Socket,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("realtime::Connection")
    }
}

impl Connection {
    /// Opens the socket (`Authorization: Bearer` when there is a key) within `timeout`.
    pub async fn open(endpoint: &Endpoint, timeout: std::time::Duration) -> Result<Self> {
        use secrecy::ExposeSecret;
        let mut request = endpoint
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| VoiceError::Config(format!("bad realtime URL: {e}")))?;
        if let Some(key) = &endpoint.api_key {
            let value = format!("Bearer {}", key.expose_secret())
                .parse()
                .map_err(|_| VoiceError::Config("the API key is not a valid header".to_owned()))?;
            request.headers_mut().insert("authorization", value);
        }
        // Audio is many small frames: no Nagle delay on them.
        // A small read buffer: the library's default 128 KiB would be zeroed on every read.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(8 * 1024)
            .max_message_size(Some(16 * 1024 * 1024));
        let connect = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
        let (socket, _) = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| {
                VoiceError::Upstream("the realtime model did not answer in time".to_owned())
            })?
            .map_err(|e| VoiceError::Upstream(format!("cannot reach the realtime model: {e}")))?;
        Ok(Self { socket })
    }

    pub async fn send(&mut self, event: &Value) -> Result<()> {
        self.send_text(event.to_string()).await
    }

    /// Sends an event already written as JSON.
    pub async fn send_text(&mut self, event: String) -> Result<()> {
        self.socket
            .send(Message::Text(event.into()))
            .await
            .map_err(|e| VoiceError::Connection(e.to_string()))
    }

    /// The next server event's text; `None` when the socket closed.
    pub async fn recv(&mut self) -> Option<Result<String>> {
        loop {
            match self.socket.next().await? {
                Ok(Message::Text(text)) => return Some(Ok(text.to_string())),
                Ok(
                    Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_),
                ) => {}
                Ok(Message::Close(_)) => return None,
                Err(e) => return Some(Err(VoiceError::Connection(e.to_string()))),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_come_from_the_provider_base() {
        assert_eq!(
            realtime_url("https://api.openai.com/v1", "gpt-realtime")
                .ok()
                .as_deref(),
            Some("wss://api.openai.com/v1/realtime?model=gpt-realtime")
        );
        assert_eq!(
            realtime_url("http://127.0.0.1:9/v1/", "m x")
                .ok()
                .as_deref(),
            Some("ws://127.0.0.1:9/v1/realtime?model=m+x")
        );
        assert!(realtime_url("ftp://x", "m").is_err());
    }

    #[test]
    fn ga_and_beta_event_names_read_the_same() {
        for name in ["response.output_audio.delta", "response.audio.delta"] {
            let raw = json!({"type": name, "item_id": "it1", "delta": "AAE="}).to_string();
            assert_eq!(
                parse_event(&raw).ok(),
                Some(ServerEvent::Audio {
                    item_id: "it1".into(),
                    audio: Audio::Base64("AAE=".into())
                })
            );
        }
        let call = json!({"type": "response.output_item.done", "item": {"type": "function_call", "call_id": "c1", "name": "ask_supervisor", "arguments": "{}"}});
        assert!(
            matches!(parse_event(&call.to_string()), Ok(ServerEvent::FunctionCall { name, .. }) if name == "ask_supervisor")
        );
        let done = json!({"type": "response.done", "response": {"id": "r1", "status": "completed", "usage": {"input_tokens": 12, "output_tokens": 30}}});
        assert!(matches!(
            parse_event(&done.to_string()),
            Ok(ServerEvent::ResponseDone {
                input_tokens: 12,
                output_tokens: 30,
                out_of_band: false,
                ..
            })
        ));
        assert!(parse_event("{").is_err());
    }

    #[test]
    fn the_session_names_formats_tools_and_turn_detection() {
        let update = session_update(&SessionConfig {
            model: "gpt-realtime".into(),
            instructions: "Be brief.".into(),
            voice: Some("marin".into()),
            format: Format::Pcmu,
            turn_detection: json!({"type": "server_vad"}),
            transcription_model: None,
            language: Some("de-DE".into()),
            tools: vec![json!({"type": "function", "name": "ask_supervisor"})],
        });
        assert_eq!(
            update["session"]["audio"]["input"]["format"],
            json!({"type": "audio/pcmu"})
        );
        assert_eq!(
            update["session"]["audio"]["output"]["voice"],
            json!("marin")
        );
        assert_eq!(
            update["session"]["audio"]["input"]["transcription"]["language"],
            json!("de")
        );
        assert_eq!(
            update["session"]["tools"][0]["name"],
            json!("ask_supervisor")
        );
    }
}
