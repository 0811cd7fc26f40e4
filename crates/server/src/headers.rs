//! Headers every response carries: `X-Content-Type-Options: nosniff` (a browser never guesses
//! a type we did not send), `Referrer-Policy: no-referrer` unless the response chose one (our
//! URLs carry ids), and for an HTML
//! page that set no policy of its own (the index, the API docs) a content security policy
//! that loads nothing from elsewhere, runs no script and cannot be framed.

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The policy of our plain pages: their own inline styles, images from here, no script, no
/// frame.
const DEFAULT_PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Adds the headers every response carries.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The dashboard's pages say `same-origin`: with `no-referrer` a browser sends
    // `Origin: null` with their forms, and the origin check could not tell them from a forgery.
    if !headers.contains_key(header::REFERRER_POLICY) {
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html && !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DEFAULT_PAGE_CSP),
        );
    }
    response
}
