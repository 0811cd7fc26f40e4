//! frontdesk-local: the embedded models. The chat model is any GGUF that llama.cpp runs
//! (through `llama-cpp-2`), SmolLM2-135M-Instruct by default, served as the `local`
//! `ModelProvider`; `catalog` knows where the default model files come from and fetches them.
//!
//! This crate is apart because llama.cpp's build is heavy: nothing else waits for it.
//!
//! Invariants:
//! - What users and tools wrote is tokenized as text, never as control tokens.
//! - A cancelled request stops decoding at the next token and frees its slot.
//! - Nothing here panics on a model file or a request; errors name what to do.

pub mod catalog;
pub mod chat;
mod constrain;
pub mod embed;
mod minilm;
mod prompt;

pub use chat::{LocalChat, LocalConfig};

/// What can go wrong in this crate before a request streams.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot load the local model: {0}")]
    Load(String),
    #[error("cannot build the prompt: {0}")]
    Prompt(String),
}
