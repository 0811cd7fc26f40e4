//! The dashboard's session cookie, the extractors of a signed-in member, and the CSRF check
//! of every state-changing request.
//!
//! The cookie holds a random token (the store keeps its hash) and is `HttpOnly`,
//! `SameSite=Lax`, and `Secure` with the `__Host-` prefix when the server is reached over
//! HTTPS. A form posts the session's CSRF token in a hidden `csrf` field (a script sends it
//! as `X-CSRF-Token`); a request a browser marks as cross-site is refused before that.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use frontdesk_core::service::Staff;
use frontdesk_core::Error;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::render::PageError;
use crate::AppState;

const PLAIN_COOKIE: &str = "fd_session";
const SECURE_COOKIE: &str = "__Host-fd_session";
/// The largest form the dashboard takes (agent instructions and schemas included).
const MAX_FORM_BYTES: usize = 512 * 1024;

fn secure(state: &AppState) -> bool {
    state.config.public_url().starts_with("https://")
}

fn cookie_name(state: &AppState) -> &'static str {
    if secure(state) {
        SECURE_COOKIE
    } else {
        PLAIN_COOKIE
    }
}

/// The `Set-Cookie` value that carries a new session.
pub fn session_cookie(state: &AppState, token: &str) -> HeaderValue {
    let max_age = frontdesk_core::session::SESSION_MAX_AGE_MS / 1000;
    let secure = if secure(state) { "; Secure" } else { "" };
    let value = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        cookie_name(state)
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cleared_cookie(state: &AppState) -> HeaderValue {
    let secure = if secure(state) { "; Secure" } else { "" };
    let value = format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
        cookie_name(state)
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The session token the request's cookie carries, if any.
pub fn cookie_token(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(state);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty() && value.len() <= 128)
        .map(|(_, value)| value.to_owned())
}

/// Where to come back to after signing in: this request's path and query.
fn here(parts: &Parts) -> String {
    if parts.method == Method::GET {
        parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned())
    } else {
        "/".to_owned()
    }
}

/// A signed-in member (a page). Without a live session: a redirect to the sign-in page.
#[derive(Debug, Clone)]
pub struct StaffSession {
    pub staff: Staff,
    /// The session's cookie value (to sign out with).
    pub token: String,
}

impl FromRequestParts<AppState> for StaffSession {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let Some(token) = cookie_token(state, &parts.headers) else {
            return Err(PageError::SignIn { next: here(parts) });
        };
        match state.service.staff(&token).await {
            Ok(staff) => Ok(Self { staff, token }),
            Err(Error::Unauthenticated { .. }) => Err(PageError::SignIn { next: here(parts) }),
            Err(other) => Err(PageError::Failed(other)),
        }
    }
}

/// Refuses a state-changing request a browser says came from another site, or whose
/// `Origin` is not this server's.
fn same_origin(state: &AppState, headers: &HeaderMap) -> Result<(), Error> {
    let refused = || Error::Forbidden {
        code: "cross_site_request",
        message: "this form was sent from another site; reload the page and try again".to_owned(),
    };
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(fetch_site, Some("cross-site" | "same-site")) {
        return Err(refused());
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let own = state.config.public_url();
        let same_host = origin
            .split_once("://")
            .is_some_and(|(_, rest)| !host.is_empty() && rest.eq_ignore_ascii_case(host));
        if !(same_host || origin == own.trim_end_matches('/')) {
            return Err(refused());
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// A form whose only field is its CSRF token (a button).
#[derive(Debug, Deserialize)]
pub struct NoFields {}

/// A destructive action's form: what the member typed to confirm it (the object's name).
#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    pub confirm: String,
}

/// A state-changing form from a signed-in member: the session, the CSRF token checked,
/// and the form's fields.
#[derive(Debug)]
pub struct Submit<T> {
    pub session: StaffSession,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Submit<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PageError> {
        let (mut parts, body) = request.into_parts();
        let session = StaffSession::from_request_parts(&mut parts, state).await?;
        same_origin(state, &parts.headers)?;
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| Error::PayloadTooLarge {
                message: format!("a form may carry at most {} KiB", MAX_FORM_BYTES / 1024),
            })?;
        let presented = match parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
        {
            Some(header) => header.to_owned(),
            None => serde_urlencoded::from_bytes::<CsrfField>(&bytes)
                .map(|f| f.csrf)
                .unwrap_or_default(),
        };
        if !crate::auth::constant_time_eq(
            presented.as_bytes(),
            session.staff.session.csrf_token.as_bytes(),
        ) {
            return Err(PageError::Failed(Error::Forbidden {
                code: "csrf_token_invalid",
                message: "this form has expired (its security token does not match your session); reload the page and try again".to_owned(),
            }));
        }
        let form = serde_urlencoded::from_bytes::<T>(&bytes).map_err(|e| {
            Error::bad_request("invalid_form", format!("this form could not be read: {e}"))
        })?;
        Ok(Self { session, form })
    }
}

/// A form before sign-in (the sign-in, sign-up, invite and reset pages): the origin check
/// and the fields (these forms carry no session to forge).
#[derive(Debug)]
pub struct PublicForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for PublicForm<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PageError> {
        let (parts, body) = request.into_parts();
        same_origin(state, &parts.headers)?;
        let bytes =
            axum::body::to_bytes(body, 16 * 1024)
                .await
                .map_err(|_| Error::PayloadTooLarge {
                    message: "this form is too large".to_owned(),
                })?;
        serde_urlencoded::from_bytes::<T>(&bytes)
            .map(PublicForm)
            .map_err(|e| {
                PageError::Failed(Error::bad_request(
                    "invalid_form",
                    format!("this form could not be read: {e}"),
                ))
            })
    }
}

/// The client's address (for the sign-in back-off), as the rate limits see it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(crate::routes::client_limits::client_address_of(
            state,
            &parts.headers,
            &parts.extensions,
        )))
    }
}
