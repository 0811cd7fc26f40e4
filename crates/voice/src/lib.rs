//! frontdesk-voice: voice calls.
//!
//! Phone calls (Twilio media streams and ConversationRelay) and browser voice sessions are
//! bridged as tasks in the one binary — no process per call. Each call has an explicit
//! lifecycle and a record ([`call::CallLog`]):
//! - `session`: where calls come in (a Twilio media stream, a browser socket);
//! - `bridge`: the realtime bridge (audio both ways, tools, barge-in, reconnect);
//! - `pipeline`: speech-to-text → the agent's chat model → text-to-speech;
//! - `relay`: Twilio ConversationRelay (text turns, Twilio speaks);
//! - `supervisor`: the call's own tools and the chat-supervisor pattern;
//! - `leg`, `realtime`, `twilio`, `codec`, `playback`: the wire and audio.

pub mod bridge;
pub mod call;
pub mod codec;
mod ending;
pub mod error;
pub mod host;
pub mod leg;
pub mod pipeline;
pub mod playback;
pub mod realtime;
pub mod relay;
pub mod session;
pub mod supervisor;
mod turns;
pub mod twilio;
mod writer;

pub use error::{Result, VoiceError};
pub use host::VoiceHost;
pub use leg::{Socket, WsMessage};
