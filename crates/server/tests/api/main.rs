//! Integration tests of the HTTP API: the real server on a random port, driven over HTTP.

mod agents;
mod bad_input;
mod common;
mod conversations;
mod isolation;
mod keys;
mod system;
mod tenants;
