//! The voice crate's one error type.

/// What went wrong on a call.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// A peer sent something that is not the protocol (a frame this bridge cannot read).
    #[error("protocol: {0}")]
    Protocol(String),
    /// A provider (the realtime model, Twilio, speech services) failed.
    #[error("{0}")]
    Upstream(String),
    /// The agent or its settings cannot take calls this way.
    #[error("{0}")]
    Config(String),
    /// The socket to a peer closed or failed.
    #[error("connection: {0}")]
    Connection(String),
    /// The platform refused (an unknown agent, a limit reached).
    #[error(transparent)]
    Domain(#[from] frontdesk_core::Error),
}

pub type Result<T> = std::result::Result<T, VoiceError>;
