//! Model providers against a scripted upstream speaking each protocol's documented framing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failure should fail loudly.

mod anthropic;
mod common;
mod embeddings;
mod openai_chat;
mod responses;
