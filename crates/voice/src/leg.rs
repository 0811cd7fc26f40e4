//! The caller's side of a call: a socket from Twilio's media stream or from a browser,
//! read as [`LegEvent`]s and written as audio, marks, clears and captions.
//!
//! The browser speaks frontdesk's own small protocol: binary frames are 16-bit PCM at
//! 24 kHz both ways; text frames are JSON — from the page `{"type": "mark", "name"}` (audio
//! up to that mark played), `{"type": "dtmf", "digit"}`, `{"type": "stop"}`; to the page
//! `{"type": "ready", "call_id"}`, `{"type": "mark", "name"}`, `{"type": "clear"}` (stop
//! playback), `{"type": "transcript", "speaker", "text"}` and `{"type": "end", "reason"}`.

use async_trait::async_trait;
use frontdesk_core::voice::Speaker;
use serde_json::{json, Value};

use crate::codec::{Audio, Format};
use crate::error::{Result, VoiceError};
use crate::twilio::{self, StreamEvent};

/// A WebSocket message, whichever library carries it.
#[derive(Debug, Clone, PartialEq)]
pub enum WsMessage {
    Text(String),
    Binary(Vec<u8>),
    Close,
}

/// A WebSocket as the voice crate uses it (the server adapts its own).
#[async_trait]
pub trait Socket: Send {
    /// The next message; `None` when the socket is gone.
    async fn recv(&mut self) -> Option<WsMessage>;
    async fn send(&mut self, message: WsMessage) -> Result<()>;
    /// Sends several messages with one flush where the socket can.
    async fn send_all(&mut self, messages: Vec<WsMessage>) -> Result<()> {
        for message in messages {
            self.send(message).await?;
        }
        Ok(())
    }
}

/// What the caller's side did.
#[derive(Debug, Clone, PartialEq)]
pub enum LegEvent {
    /// Audio in the leg's format.
    Audio(Audio),
    Dtmf(String),
    /// Audio up to this mark played.
    Mark(String),
    /// The caller hung up (or the page closed).
    Hangup,
    /// A frame that could not be read (skipped; the call goes on).
    Bad(String),
}

/// The caller's side.
#[async_trait]
pub trait Leg: Send {
    fn format(&self) -> Format;
    async fn recv(&mut self) -> LegEvent;
    async fn audio(&mut self, audio: &Audio) -> Result<()>;
    async fn mark(&mut self, name: &str) -> Result<()>;
    /// Audio, then a mark after it (sent together where the leg can).
    async fn audio_marked(&mut self, audio: &Audio, mark: &str) -> Result<()> {
        self.audio(audio).await?;
        self.mark(mark).await
    }
    /// Drops the audio queued for the caller (barge-in).
    async fn clear(&mut self) -> Result<()>;
    /// Shows what was said (browsers; a phone ignores it).
    async fn caption(&mut self, speaker: Speaker, text: &str) -> Result<()>;
    /// Ends the caller's side, saying why.
    async fn end(&mut self, reason: &str) -> Result<()>;
}

/// Twilio's bidirectional media stream, after its `start` frame.
pub struct TwilioLeg<S> {
    socket: S,
    stream_sid: String,
    /// The sid as a JSON string, for the frames.
    sid: String,
}

impl<S> TwilioLeg<S> {
    pub fn new(socket: S, stream_sid: String) -> Self {
        let sid = twilio::quoted(&stream_sid);
        Self {
            socket,
            stream_sid,
            sid,
        }
    }
}

impl<S> std::fmt::Debug for TwilioLeg<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioLeg")
            .field("stream", &self.stream_sid)
            .finish()
    }
}

/// Reads the stream's frames up to `start`: its stream and call sids and parameters.
pub async fn twilio_start<S: Socket>(socket: &mut S) -> Result<StreamEvent> {
    for _ in 0..8 {
        match socket.recv().await {
            // A frame that cannot be read is skipped here too.
            Some(WsMessage::Text(text)) => match twilio::parse_stream_frame(&text) {
                Ok(Some(start @ StreamEvent::Start { .. })) => return Ok(start),
                Ok(Some(StreamEvent::Stop)) => break,
                _ => {}
            },
            Some(WsMessage::Binary(_)) => {}
            Some(WsMessage::Close) | None => break,
        }
    }
    Err(VoiceError::Protocol(
        "the media stream did not start".to_owned(),
    ))
}

#[async_trait]
impl<S: Socket> Leg for TwilioLeg<S> {
    fn format(&self) -> Format {
        Format::Pcmu
    }

    async fn recv(&mut self) -> LegEvent {
        loop {
            let text = match self.socket.recv().await {
                Some(WsMessage::Text(text)) => text,
                Some(WsMessage::Binary(_)) => return LegEvent::Bad("binary frame".to_owned()),
                Some(WsMessage::Close) | None => return LegEvent::Hangup,
            };
            return match twilio::parse_stream_frame(&text) {
                Ok(Some(StreamEvent::Media { payload })) => LegEvent::Audio(payload),
                Ok(Some(StreamEvent::Dtmf { digit })) => LegEvent::Dtmf(digit),
                Ok(Some(StreamEvent::Mark { name })) => LegEvent::Mark(name),
                Ok(Some(StreamEvent::Stop)) => LegEvent::Hangup,
                Ok(Some(StreamEvent::Connected | StreamEvent::Start { .. }) | None) => continue,
                Err(error) => LegEvent::Bad(error.to_string()),
            };
        }
    }

    async fn audio(&mut self, audio: &Audio) -> Result<()> {
        self.socket
            .send(WsMessage::Text(twilio::media_frame(&self.sid, audio)))
            .await
    }

    async fn mark(&mut self, name: &str) -> Result<()> {
        self.socket
            .send(WsMessage::Text(twilio::mark_frame(&self.sid, name)))
            .await
    }

    async fn audio_marked(&mut self, audio: &Audio, mark: &str) -> Result<()> {
        self.socket
            .send_all(vec![
                WsMessage::Text(twilio::media_frame(&self.sid, audio)),
                WsMessage::Text(twilio::mark_frame(&self.sid, mark)),
            ])
            .await
    }

    async fn clear(&mut self) -> Result<()> {
        self.socket
            .send(WsMessage::Text(twilio::clear_frame(&self.sid)))
            .await
    }

    async fn caption(&mut self, _speaker: Speaker, _text: &str) -> Result<()> {
        Ok(())
    }

    async fn end(&mut self, _reason: &str) -> Result<()> {
        self.socket.send(WsMessage::Close).await
    }
}

/// A browser's voice socket.
pub struct BrowserLeg<S> {
    pub socket: S,
}

impl<S> std::fmt::Debug for BrowserLeg<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrowserLeg")
    }
}

impl<S: Socket> BrowserLeg<S> {
    async fn json(&mut self, value: Value) -> Result<()> {
        self.socket.send(WsMessage::Text(value.to_string())).await
    }

    /// Tells the page the call is ready.
    pub async fn ready(&mut self, call_id: &str) -> Result<()> {
        self.json(json!({"type": "ready", "call_id": call_id}))
            .await
    }
}

/// The largest browser frame read (1 s of 24 kHz PCM16 is 48 KB).
const MAX_BROWSER_FRAME: usize = 96_000;

#[async_trait]
impl<S: Socket> Leg for BrowserLeg<S> {
    fn format(&self) -> Format {
        Format::Pcm24k
    }

    async fn recv(&mut self) -> LegEvent {
        match self.socket.recv().await {
            Some(WsMessage::Binary(audio)) if audio.len() <= MAX_BROWSER_FRAME => {
                LegEvent::Audio(Audio::Raw(audio))
            }
            Some(WsMessage::Binary(_)) => LegEvent::Bad("audio frame too large".to_owned()),
            Some(WsMessage::Text(text)) => {
                let Ok(value) = serde_json::from_str::<Value>(&text) else {
                    return LegEvent::Bad("not JSON".to_owned());
                };
                let field = |key: &str| {
                    value
                        .get(key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                match value.get("type").and_then(Value::as_str) {
                    Some("mark") => LegEvent::Mark(field("name")),
                    Some("dtmf") => LegEvent::Dtmf(field("digit")),
                    Some("stop") => LegEvent::Hangup,
                    _ => LegEvent::Bad(format!("unknown message {}", field("type"))),
                }
            }
            Some(WsMessage::Close) | None => LegEvent::Hangup,
        }
    }

    async fn audio(&mut self, audio: &Audio) -> Result<()> {
        self.socket
            .send(WsMessage::Binary(audio.bytes().into_owned()))
            .await
    }

    async fn mark(&mut self, name: &str) -> Result<()> {
        self.json(json!({"type": "mark", "name": name})).await
    }

    async fn clear(&mut self) -> Result<()> {
        self.json(json!({"type": "clear"})).await
    }

    async fn caption(&mut self, speaker: Speaker, text: &str) -> Result<()> {
        self.json(json!({"type": "transcript", "speaker": speaker, "text": text}))
            .await
    }

    async fn end(&mut self, reason: &str) -> Result<()> {
        self.json(json!({"type": "end", "reason": reason})).await?;
        self.socket.send(WsMessage::Close).await
    }
}
