//! Signing in and out, signing up (when the operator allows it), accepting an invite,
//! resetting a password with a one-time link, and switching tenants.
//!
//! Failed sign-ins back off twice over: per client address (the same budget as failed API
//! authentications) and per email (a few tries a minute, wherever they come from).

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use frontdesk_core::id::TenantId;
use frontdesk_core::service::{AcceptInvite, SignUp, SignedIn};
use frontdesk_core::session::LinkKind;
use frontdesk_core::Error;
use minijinja::context;
use serde::Deserialize;

use super::render::{page, PageError, PageResult};
use super::session::{
    cleared_cookie, cookie_token, session_cookie, ClientAddress, NoFields, PublicForm, Submit,
};
use crate::AppState;

/// Failed sign-ins per email per minute, from anywhere.
const FAILURES_PER_EMAIL_PER_MINUTE: u32 = 5;
/// Sign-up attempts per client address per minute.
const SIGNUPS_PER_ADDRESS_PER_MINUTE: u32 = 5;

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

/// Only a path on this server is a place to come back to (never `//elsewhere`).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && path.len() <= 500
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Sets the session cookie and goes to `next`.
fn signed_in(state: &AppState, signed: &SignedIn, next: &str) -> Response {
    let mut response = Redirect::to(next).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(state, signed.token.expose()),
    );
    response
}

fn account_page(status: StatusCode, view: &str, extra: minijinja::Value) -> Response {
    page(status, "account.html", context! { view, ..extra })
}

pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> Response {
    // Someone signed in already goes on.
    if let Some(token) = cookie_token(&state, &headers) {
        if state.service.staff(&token).await.is_ok() {
            return Redirect::to(&safe_next(query.next.as_deref())).into_response();
        }
    }
    account_page(
        StatusCode::OK,
        "login",
        context! { next => safe_next(query.next.as_deref()), signup => state.config.allow_signup },
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// The budgets failed password checks spend: per email (from anywhere) and per client
/// address (shared with failed API authentications).
struct Backoff {
    email: String,
    address: Option<String>,
}

impl Backoff {
    fn new(email: &str, address: Option<std::net::IpAddr>) -> Self {
        Self {
            email: format!("signin:{}", email.trim().to_lowercase()),
            address: address
                .map(|a| format!("auth:{}", crate::routes::client_limits::address_bucket(a))),
        }
    }

    /// Seconds to wait when a budget is spent.
    fn spent(&self, state: &AppState) -> Option<u64> {
        [Some(&self.email), self.address.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|bucket| state.limiter.peek(bucket).err())
    }

    fn failed(&self, state: &AppState) {
        let _ = state
            .limiter
            .check(&self.email, FAILURES_PER_EMAIL_PER_MINUTE);
        if let Some(bucket) = &self.address {
            let _ = state
                .limiter
                .check(bucket, state.config.limits.auth_failures_per_minute);
        }
    }
}

/// A page answering 429 with `Retry-After`.
fn too_many(mut response: Response, secs: u64) -> Response {
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    if let Ok(value) = secs.to_string().parse() {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    PublicForm(form): PublicForm<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let backoff = Backoff::new(&form.email, address);
    let refused = |status: StatusCode, message: String| {
        account_page(
            status,
            "login",
            context! { next => next.clone(), email => form.email.clone(), error => message,
            signup => state.config.allow_signup },
        )
    };
    if let Some(secs) = backoff.spent(&state) {
        let page = refused(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed sign-ins. Try again in {secs} seconds."),
        );
        return too_many(page, secs);
    }
    match state
        .service
        .sign_in(&form.email, &form.password, &user_agent(&headers))
        .await
    {
        Ok(signed) => signed_in(&state, &signed, &next),
        Err(error @ Error::Unauthenticated { .. }) => {
            backoff.failed(&state);
            refused(StatusCode::UNAUTHORIZED, error.public_message())
        }
        Err(error @ Error::Forbidden { .. }) => {
            refused(StatusCode::FORBIDDEN, error.public_message())
        }
        Err(error) => PageError::Failed(error).into_response(),
    }
}

pub async fn logout(State(state): State<AppState>, submit: Submit<NoFields>) -> PageResult {
    state.service.sign_out(&submit.session.token).await?;
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cleared_cookie(&state));
    Ok(response)
}

fn signup_allowed(state: &AppState) -> Result<(), PageError> {
    if state.config.allow_signup {
        Ok(())
    } else {
        Err(PageError::Failed(Error::NotFound { resource: "page" }))
    }
}

pub async fn signup_page(State(state): State<AppState>) -> PageResult {
    signup_allowed(&state)?;
    Ok(account_page(StatusCode::OK, "signup", context! {}))
}

#[derive(Debug, Deserialize)]
pub struct SignUpForm {
    #[serde(default)]
    organisation: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn signup(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientAddress(address): ClientAddress,
    PublicForm(form): PublicForm<SignUpForm>,
) -> PageResult {
    signup_allowed(&state)?;
    // Each try costs from a small budget per address: sign-up says when an email has an
    // account, and makes organisations.
    if let Some(address) = address {
        let bucket = format!(
            "signup:{}",
            crate::routes::client_limits::address_bucket(address)
        );
        if let Err(secs) = state.limiter.check(&bucket, SIGNUPS_PER_ADDRESS_PER_MINUTE) {
            return Err(Error::RateLimited {
                retry_after_secs: secs,
                message: format!("Too many sign-ups from here. Try again in {secs} seconds."),
            }
            .into());
        }
    }
    let input = SignUp {
        organisation: form.organisation.clone(),
        email: form.email.clone(),
        name: Some(form.name.clone()).filter(|n| !n.trim().is_empty()),
        password: form.password,
    };
    match state.service.sign_up(input, &user_agent(&headers)).await {
        Ok(signed) => Ok(signed_in(&state, &signed, "/")),
        Err(error @ (Error::InvalidField { .. } | Error::Conflict { .. })) => Ok(account_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "signup",
            context! { error => error.public_message(), field => error.field(),
            organisation => form.organisation, name => form.name, email => form.email },
        )),
        Err(error) => Err(error.into()),
    }
}

pub async fn invite_page(State(state): State<AppState>, Path(token): Path<String>) -> PageResult {
    let (link, tenant) = state.service.usable_link(&token, LinkKind::Invite).await?;
    Ok(account_page(
        StatusCode::OK,
        "invite",
        context! {
            token,
            tenant => tenant.map(|t| t.name),
            role => link.role.map(|r| r.as_str()),
            email => link.email,
            fixed_email => link.email.is_some(),
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn accept_invite(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    PublicForm(form): PublicForm<InviteForm>,
) -> PageResult {
    // An existing account joins with its password: guesses here spend the sign-in budgets.
    let backoff = Backoff::new(&form.email, address);
    if let Some(secs) = backoff.spent(&state) {
        return Err(Error::RateLimited {
            retry_after_secs: secs,
            message: format!("Too many failed sign-ins. Try again in {secs} seconds."),
        }
        .into());
    }
    let input = AcceptInvite {
        email: form.email.clone(),
        name: Some(form.name.clone()),
        password: form.password,
    };
    match state
        .service
        .accept_invite(&token, input, &user_agent(&headers))
        .await
    {
        Ok(signed) => Ok(signed_in(&state, &signed, "/")),
        Err(
            error @ (Error::InvalidField { .. }
            | Error::Unauthenticated { .. }
            | Error::Conflict { .. }),
        ) => {
            let status = match &error {
                Error::Unauthenticated { .. } => {
                    backoff.failed(&state);
                    StatusCode::UNAUTHORIZED
                }
                Error::Conflict { .. } => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let (link, tenant) = state.service.usable_link(&token, LinkKind::Invite).await?;
            Ok(account_page(
                status,
                "invite",
                context! {
                    token,
                    tenant => tenant.map(|t| t.name),
                    role => link.role.map(|r| r.as_str()),
                    fixed_email => link.email.is_some(),
                    email => link.email.unwrap_or(form.email),
                    name => form.name,
                    error => error.public_message(),
                    field => error.field(),
                },
            ))
        }
        Err(error) => Err(error.into()),
    }
}

pub async fn reset_page(State(state): State<AppState>, Path(token): Path<String>) -> PageResult {
    state.service.usable_link(&token, LinkKind::Reset).await?;
    Ok(account_page(StatusCode::OK, "reset", context! { token }))
}

#[derive(Debug, Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    password: String,
}

pub async fn reset(
    State(state): State<AppState>,
    Path(token): Path<String>,
    PublicForm(form): PublicForm<ResetForm>,
) -> PageResult {
    match state.service.reset_password(&token, &form.password).await {
        Ok(()) => Ok(account_page(StatusCode::OK, "reset_done", context! {})),
        Err(error @ Error::InvalidField { .. }) => Ok(account_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reset",
            context! { token, error => error.public_message() },
        )),
        Err(error) => Err(error.into()),
    }
}

#[derive(Debug, Deserialize)]
pub struct SwitchForm {
    tenant: String,
}

pub async fn switch_tenant(
    State(state): State<AppState>,
    submit: Submit<SwitchForm>,
) -> PageResult {
    let tenant =
        TenantId::parse(&submit.form.tenant).map_err(|_| Error::NotFound { resource: "tenant" })?;
    state
        .service
        .switch_tenant(&submit.session.staff, &tenant)
        .await?;
    Ok(Redirect::to("/").into_response())
}
