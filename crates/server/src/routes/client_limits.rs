//! Limits per client address: its address (the connection's peer, or the entry a trusted
//! proxy appended to `X-Forwarded-For`), the bucket it counts in (IPv6 by /64), and the
//! budget of widget requests (and ChatKit calls with a visitor token) one address may make.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use frontdesk_core::Error;

use crate::error::ApiError;
use crate::AppState;

/// The client's address: the connection's peer, or the last `X-Forwarded-For` entry when
/// the operator says a proxy sets it.
pub(crate) fn client_address(state: &AppState, request: &Request) -> Option<IpAddr> {
    client_address_of(state, request.headers(), request.extensions())
}

/// [`client_address`] from a request's headers and extensions.
pub(crate) fn client_address_of(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
) -> Option<IpAddr> {
    if state.config.limits.trust_forwarded_for {
        // The entry the proxy in front of us appended: the last one.
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|entry| entry.trim().parse::<IpAddr>().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

/// The bucket of a client address: IPv4 addresses one by one, IPv6 by /64 (one host
/// commonly holds a whole /64, so single addresses would not bound it).
pub(crate) fn address_bucket(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// A budget per client address for all widget requests, whatever visitor tokens it
/// holds (new sessions make new visitors, so this is what bounds one client).
pub(crate) async fn per_address(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != axum::http::Method::OPTIONS {
        if let Err(refused) = address_budget(&state, &request) {
            return refused.into_response();
        }
    }
    next.run(request).await
}

/// The same budget for requests made with a visitor token elsewhere (ChatKit from a page).
pub(crate) async fn per_address_of_visitors(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let visitor = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer fdv1."));
    if visitor {
        if let Err(refused) = address_budget(&state, &request) {
            return refused.into_response();
        }
    }
    next.run(request).await
}

fn address_budget(state: &AppState, request: &Request) -> Result<(), ApiError> {
    let Some(address) = client_address(state, request) else {
        return Ok(());
    };
    let per_minute = state.config.limits.widget_per_ip_per_minute;
    state
        .limiter
        .check(&address_bucket(address), per_minute)
        .map_err(|retry_after_secs| {
            ApiError(Error::RateLimited {
                retry_after_secs,
                message: format!(
                    "too many requests from this address; retry in {retry_after_secs} s"
                ),
            })
        })
}
