//! The API error response and the JSON body extractor that produces our errors.
//!
//! Every error leaves as `{"error": {"type", "code", "message"}}` (plus `field` for a
//! validation error and `request_id` for our own faults), with the status of the domain's
//! code table and `Retry-After` where a retry makes sense. 5xx details are logged here,
//! once, and never sent.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use frontdesk_core::Error;
use serde::de::DeserializeOwned;
use serde_json::json;

tokio::task_local! {
    /// The id of the request being handled, for error bodies and logs.
    pub static REQUEST_ID: String;
    /// Set while an end user's request is handled (the widget, a hosted page, ChatKit with
    /// a visitor token): our own faults then say nothing but the request id.
    static END_USER: ();
}

/// Why a request's credentials were refused (its error code), for the failed-auth backoff.
#[derive(Debug, Clone, Copy)]
pub struct RefusedCredentials(pub &'static str);

/// Marks the requests of end users, whose server errors carry no details.
pub async fn mark_end_users(request: Request, next: axum::middleware::Next) -> Response {
    let path = request.uri().path();
    let visitor_token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer fdv1."));
    if path.starts_with("/widget/")
        || path.starts_with("/c/")
        || (path == "/chatkit" && visitor_token)
    {
        END_USER.scope((), next.run(request)).await
    } else {
        next.run(request).await
    }
}

/// The current request's id, when inside a request.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A domain error on its way to the client.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        Self(error)
    }
}

/// Results of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = self.0;
        let status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let request_id = current_request_id();
        if status.is_server_error() {
            tracing::error!(request.id = request_id.as_deref().unwrap_or("-"), error = ?error, "request failed");
        }
        let end_user = END_USER.try_with(|_| ()).is_ok();
        // Not a failure: the message waits for the people who handle the conversation.
        if let Error::ForPeople { message } = &error {
            let message = if end_user {
                frontdesk_core::end_user::EndUserView::default().message((**message).clone())
            } else {
                (**message).clone()
            };
            return (
                StatusCode::ACCEPTED,
                axum::Json(json!({"handler": "human", "message": message})),
            )
                .into_response();
        }
        let message = if status.is_server_error() && end_user {
            frontdesk_core::end_user::GENERIC_ERROR.to_owned()
        } else {
            error.public_message()
        };
        let mut body = json!({
            "type": error.kind().as_str(),
            "code": error.code(),
            "message": message,
        });
        if let Some(field) = error.field() {
            body["field"] = json!(field);
        }
        let details = match &error {
            // An end user learns which calls wait, not what a call for staff would do.
            Error::AwaitingApproval {
                run_id, pending, ..
            } if end_user => Some(json!({
                "run_id": run_id,
                "pending": frontdesk_core::end_user::EndUserView::default().pending(pending.clone()),
            })),
            _ => error.details(),
        };
        if let Some(serde_json::Value::Object(details)) = details {
            for (key, value) in details {
                body[key] = value;
            }
        }
        if status.is_server_error() {
            body["request_id"] = json!(request_id);
        }
        let mut response = (status, axum::Json(json!({ "error": body }))).into_response();
        if let Error::Unauthenticated { code, .. } = &error {
            response.extensions_mut().insert(RefusedCredentials(code));
        }
        if let Some(seconds) = error.retry_after_secs() {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// How long any body may take beyond what its length needs.
const BODY_BASE_ALLOWANCE: std::time::Duration = std::time::Duration::from_secs(10);
/// The slowest upload accepted: 16 KiB/s.
const BODY_MIN_BYTES_PER_SEC: u64 = 16 * 1024;
/// The length assumed of a body that declares none (sent in chunks).
const MAX_UNDECLARED_BODY: u64 = 1024 * 1024;

/// A JSON body decoded with our error shape: malformed JSON is a 400, a wrong shape a 422
/// naming the field, an oversized body a 413, a wrong content type a 415-like 400.
/// `application/merge-patch+json` (RFC 7396, what a `PATCH` sends) is JSON too.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_bytes(req, state).await?;
        frontdesk_core::json::from_body(&bytes)
            .map(JsonBody)
            .map_err(ApiError)
    }
}

/// A JSON body's bytes, once its content type is JSON and it arrived in time and whole.
async fn json_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                let t = t.trim();
                t.eq_ignore_ascii_case("application/json")
                    || t.eq_ignore_ascii_case("application/merge-patch+json")
            })
        });
    if !is_json {
        return Err(ApiError(Error::bad_request(
            "unsupported_content_type",
            "send the body as JSON with `Content-Type: application/json`",
        )));
    }
    // A body must arrive in time: a base allowance plus what the slowest acceptable client
    // needs for its declared length (a client that trickles bytes to hold a connection is
    // cut off).
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(MAX_UNDECLARED_BODY);
    let deadline =
        BODY_BASE_ALLOWANCE + std::time::Duration::from_secs(declared / BODY_MIN_BYTES_PER_SEC);
    let read = tokio::time::timeout(deadline, Bytes::from_request(req, state))
        .await
        .map_err(|_| {
            ApiError(Error::RequestTimeout {
                message: format!(
                    "the body did not arrive in time ({} s for its length)",
                    deadline.as_secs()
                ),
            })
        })?;
    read.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError(Error::PayloadTooLarge {
                message: "the request body is larger than this server accepts".to_owned(),
            })
        } else {
            ApiError(Error::bad_request(
                "invalid_body",
                format!("the body could not be read: {rejection}"),
            ))
        }
    })
}

/// A body that may be left out: `None` when the request has neither a body nor a
/// `Content-Type`, or its body is empty or JSON `null`; otherwise read as [`JsonBody`] reads
/// it.
impl<S, T> axum::extract::OptionalFromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let headers = req.headers();
        let empty = headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0");
        let undeclared = !headers.contains_key(header::CONTENT_LENGTH)
            && !headers.contains_key(header::TRANSFER_ENCODING);
        if !headers.contains_key(header::CONTENT_TYPE) && (empty || undeclared) {
            return Ok(None);
        }
        let bytes = json_bytes(req, state).await?;
        let trimmed = bytes.trim_ascii();
        if trimmed.is_empty() || trimmed == b"null" {
            return Ok(None);
        }
        frontdesk_core::json::from_body(&bytes)
            .map(|body| Some(JsonBody(body)))
            .map_err(ApiError)
    }
}

/// Query strings decoded with our error shape.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded_parse(query).map(Query).map_err(ApiError)
    }
}

fn serde_urlencoded_parse<T: DeserializeOwned>(query: &str) -> Result<T, Error> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| Error::bad_request("invalid_query", "the query string is malformed"))?,
    )
    .map(|q| q.0)
    .map_err(|e| {
        Error::bad_request(
            "invalid_query",
            format!("the query string is invalid: {}", e.body_text()),
        )
    })
}

/// Maps a path segment that should be an id; a malformed id cannot exist, so it is a 404.
pub fn path_id<T>(
    value: &str,
    parse: fn(&str) -> Result<T, frontdesk_core::id::IdError>,
    resource: &'static str,
) -> ApiResult<T> {
    parse(value).map_err(|_| ApiError(Error::NotFound { resource }))
}
