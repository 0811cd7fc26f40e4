//! frontdesk-core: the domain of frontdesk.
//!
//! Ids, timestamps, the domain types (tenants, users, keys, agents, conversations,
//! messages), the error type with its code table, the configuration, the `Store` trait the
//! store crate implements, and the `Service` facade that handlers and the CLI call.
//! This crate knows neither HTTP nor SQL.

pub mod agent;
pub mod config;
pub mod context;
pub mod conversation;
pub mod credentials;
pub mod embed;
pub mod end_user;
pub mod error;
pub mod handoff;
pub mod id;
pub mod json;
pub mod key;
pub mod knowledge;
pub mod model;
pub mod policy;
pub mod run;
pub mod schema;
pub mod service;
pub mod session;
pub mod store;
pub mod tenant;
pub mod time;
pub mod tool;
pub mod usage;
pub mod validate;
pub mod visitor;
pub mod voice;
pub mod widget;

pub use error::{Error, Result, StoreError};
pub use service::Service;
pub use store::Store;
