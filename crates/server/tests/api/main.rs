//! Integration tests of the HTTP API: the real server on a random port, driven over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failure should fail loudly.

mod agents;
mod ai_sdk;
mod bad_input;
mod branches;
mod browser;
mod browser_pages;
mod chatkit;
mod common;
mod context;
mod contract;
mod conversations;
mod dashboard;
mod dashboard_browser;
mod documents;
mod handoff;
mod handoff_browser;
mod hosted;
mod isolation;
mod keys;
mod knowledge;
mod mcp;
mod openai_compat;
mod page_checks;
mod parity;
mod provider_keys;
mod runtime;
mod scripted;
mod system;
mod tenants;
mod turns;
mod upstream;
mod voice;
mod voice_browser;
mod voice_edges;
mod voice_peers;
mod voice_stream;
mod widget;
mod words;
