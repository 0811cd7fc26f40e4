//! Route tables, one small file per area; handlers extract, make one domain call, and map
//! the result.

pub mod agents;
pub mod ai_sdk;
pub mod calls;
pub mod chatkit;
pub(crate) mod client_limits;
pub mod conversations;
pub(crate) mod follow;
pub mod handoff;
pub mod keys;
pub mod knowledge;
pub mod openai;
pub mod provider_keys;
pub mod runs;
pub mod secrets;
pub mod system;
pub mod tenants;
pub mod turns;
pub mod usage;
pub mod voice;
pub mod widget;
pub mod widget_handoff;
pub mod widget_pages;
pub(crate) mod wire;

use serde::Serialize;

/// A page of a list: `data`, and where the next page starts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListPage<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

impl<T> ListPage<T> {
    pub fn all(data: Vec<T>) -> Self {
        Self {
            data,
            next_cursor: None,
            has_more: false,
        }
    }
}
