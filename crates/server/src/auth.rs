//! Authentication extractors: a tenant's secret key (or a dashboard session), and the
//! platform operator's token.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use frontdesk_core::id::TenantId;
use frontdesk_core::key::{ApiKey, KeyKind};
use frontdesk_core::Error;
use secrecy::ExposeSecret;
pub(crate) use sha2_compare::constant_time_eq;

use crate::error::ApiError;
use crate::AppState;

/// A request authenticated with a tenant's secret key (and within its rate limit), or by a
/// signed-in member's dashboard session (the dashboard's playground uses the same API).
#[derive(Debug, Clone)]
pub struct SecretKeyAuth {
    pub tenant: TenantId,
    /// The key, when a key authenticated the request.
    pub key: Option<ApiKey>,
    /// The member, when a dashboard session did.
    pub member: Option<frontdesk_core::id::UserId>,
}

/// API paths whose every method needs an admin (keys, credentials, secrets).
const ADMIN_PATHS: &[&str] = &[
    "/api/v1/api-keys",
    "/api/v1/provider-keys",
    "/api/v1/secrets",
    "/api/v1/webhook-signing-secret",
    "/api/v1/widget-identity-secret",
];

/// A request with the dashboard's session cookie and no `Authorization`: the session's
/// CSRF token must come as `X-CSRF-Token` (a header no other site can set without our
/// consent), and the member's role must allow what the request does.
async fn session_auth(
    parts: &Parts,
    state: &AppState,
    cookie: &str,
) -> Result<SecretKeyAuth, ApiError> {
    use frontdesk_core::session::Action;
    let staff = state.service.staff(cookie).await?;
    let presented = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !constant_time_eq(presented.as_bytes(), staff.session.csrf_token.as_bytes()) {
        return Err(ApiError(Error::Forbidden {
            code: "csrf_token_invalid",
            message: "a dashboard session must send its CSRF token as X-CSRF-Token".to_owned(),
        }));
    }
    let path = parts.uri.path();
    let action = if ADMIN_PATHS.iter().any(|p| path.starts_with(p)) {
        Action::Administer
    } else if parts.method == axum::http::Method::GET {
        Action::Read
    } else {
        Action::Edit
    };
    staff.require(action)?;
    let per_minute = state.config.limits.rate_limit_per_minute;
    if let Err(retry_after_secs) = state
        .limiter
        .check(&format!("member:{}", staff.user.id.as_str()), per_minute)
    {
        return Err(ApiError(Error::RateLimited {
            retry_after_secs,
            message: format!(
                "a member may make {per_minute} requests per minute; retry in {retry_after_secs} s"
            ),
        }));
    }
    Ok(SecretKeyAuth {
        tenant: staff.tenant.id.clone(),
        key: None,
        member: Some(staff.user.id.clone()),
    })
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
        ApiError(Error::Unauthenticated {
            code: "missing_api_key",
            message: "send your secret key as `Authorization: Bearer fd_sk_…`".to_owned(),
        })
    })?;
    let value = header.to_str().unwrap_or_default();
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    token.ok_or_else(|| {
        ApiError(Error::Unauthenticated {
            code: "invalid_authorization",
            message: "the Authorization header must be `Bearer <key>`".to_owned(),
        })
    })
}

impl FromRequestParts<AppState> for SecretKeyAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if !parts.headers.contains_key(AUTHORIZATION) {
            if let Some(cookie) = crate::dashboard::session::cookie_token(state, &parts.headers) {
                return session_auth(parts, state, &cookie).await;
            }
        }
        let token = bearer(parts)?;
        let key = state.service.authenticate(token).await?;
        if key.kind != KeyKind::Secret {
            return Err(ApiError(Error::Forbidden {
                code: "publishable_key_not_allowed",
                message: "publishable keys only work with the widget API; use a secret key here"
                    .to_owned(),
            }));
        }
        let per_minute = key
            .rate_limit_per_minute
            .unwrap_or(state.config.limits.rate_limit_per_minute);
        if let Err(retry_after_secs) = state.limiter.check(key.id.as_str(), per_minute) {
            return Err(ApiError(Error::RateLimited {
                retry_after_secs,
                message: format!("this key is limited to {per_minute} requests per minute; retry in {retry_after_secs} s"),
            }));
        }
        Ok(Self {
            tenant: key.tenant_id.clone(),
            key: Some(key),
            member: None,
        })
    }
}

/// Backs off failed authentication per client address: each 401 of a request that presented
/// credentials takes one of
/// `limits.auth_failures_per_minute`; once they are spent, that address's requests that carry
/// credentials (an `Authorization` or `X-Frontdesk-Key` header) answer 429 with `Retry-After`
/// until the budget refills, before any key is looked up. Guessing keys or the operator token
/// then costs a minute per handful of tries. Refused visitor tokens do not count (they are
/// signed, and expire in the normal course of a widget's life).
pub async fn back_off_failed_auth(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    // Only a request that presents credentials can guess any; one without them is not looked at.
    let carries_credentials = request.headers().contains_key(AUTHORIZATION)
        || request.headers().contains_key("x-frontdesk-key");
    let address = crate::routes::client_limits::client_address(&state, &request);
    let (true, Some(address)) = (carries_credentials, address) else {
        return next.run(request).await;
    };
    let bucket = format!(
        "auth:{}",
        crate::routes::client_limits::address_bucket(address)
    );
    if let Err(retry_after_secs) = state.limiter.peek(&bucket) {
        return ApiError(Error::RateLimited {
            retry_after_secs,
            message: format!(
                "too many failed authentications from this address; retry in {retry_after_secs} s"
            ),
        })
        .into_response();
    }
    let response = next.run(request).await;
    // A refused visitor token does not count: it is signed (no one guesses one), and an
    // expired one is a widget's everyday 401 — a busy office behind one address must not lock
    // itself out. What was refused is the error's own code, not what the request claimed.
    let visitor_token_refused = response
        .extensions()
        .get::<crate::error::RefusedCredentials>()
        .is_some_and(|refused| {
            matches!(
                refused.0,
                "invalid_visitor_token" | "visitor_token_expired" | "missing_visitor_token"
            )
        });
    if response.status() == axum::http::StatusCode::UNAUTHORIZED && !visitor_token_refused {
        let per_minute = state.config.limits.auth_failures_per_minute;
        // The budget being spent is what the next request sees.
        let _ = state.limiter.check(&bucket, per_minute);
    }
    response
}

/// A request from the platform operator (`FRONTDESK_ADMIN_TOKEN`).
#[derive(Debug, Clone, Copy)]
pub struct AdminAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // No credentials at all is a 401, whether or not the operator API is on.
        if !parts.headers.contains_key(AUTHORIZATION) {
            return Err(ApiError(Error::Unauthenticated {
                code: "missing_admin_token",
                message:
                    "send the operator token (FRONTDESK_ADMIN_TOKEN) as `Authorization: Bearer …`"
                        .to_owned(),
            }));
        }
        let Some(expected) = &state.config.admin_token else {
            return Err(ApiError(Error::Forbidden {
                code: "admin_api_disabled",
                message: "the operator API is disabled: set FRONTDESK_ADMIN_TOKEN to enable it"
                    .to_owned(),
            }));
        };
        check_token(parts, expected, "invalid_admin_token").map(|()| AdminAuth)
    }
}

/// A scrape of `/metrics`: free unless `metrics_token` is configured.
#[derive(Debug, Clone, Copy)]
pub struct MetricsAuth;

impl FromRequestParts<AppState> for MetricsAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match &state.config.metrics_token {
            Some(expected) => {
                check_token(parts, expected, "invalid_metrics_token").map(|()| MetricsAuth)
            }
            None => Ok(MetricsAuth),
        }
    }
}

/// Checks the bearer token against a configured secret, in constant time.
fn check_token(
    parts: &Parts,
    expected: &secrecy::SecretString,
    code: &'static str,
) -> Result<(), ApiError> {
    let token = bearer(parts)?;
    if constant_time_eq(token.as_bytes(), expected.expose_secret().as_bytes()) {
        Ok(())
    } else {
        Err(ApiError(Error::Unauthenticated {
            code,
            message: "the token is not valid".to_owned(),
        }))
    }
}

/// Comparison whose time does not depend on where the inputs differ.
mod sha2_compare {
    pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}
