//! Route tables, one small file per area; handlers extract, make one domain call, and map
//! the result.

pub mod agents;
pub mod ai_sdk;
pub mod chatkit;
pub mod conversations;
pub mod keys;
pub mod openai;
pub mod provider_keys;
pub mod runs;
pub mod secrets;
pub mod system;
pub mod tenants;
pub mod turns;
pub mod usage;
pub mod widget;
pub mod widget_pages;

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

/// A body of pre-framed server-sent events (each protocol frames its own), unbuffered.
pub(crate) fn event_stream<S>(body: S) -> axum::response::Response
where
    S: futures_util::Stream<Item = Result<String, std::convert::Infallible>> + Send + 'static,
{
    use axum::http::{header, HeaderValue};
    let mut response = axum::response::Response::new(axum::body::Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
