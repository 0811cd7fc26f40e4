//! Settings (admins and owners): the tenant's provider keys (hint only), the monthly quota
//! and this month's use, the webhook signing and widget identity secrets (a new one is
//! shown once, when rotated), and the secrets tool headers refer to.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use frontdesk_core::session::Action;
use frontdesk_core::time::Timestamp;
use frontdesk_core::Error;
use minijinja::context;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};

use super::frame::{Frame, When};
use super::render::{page, PageResult};
use super::session::{NoFields, StaffSession, Submit};
use crate::AppState;

/// The last four characters of a secret, for recognising it.
fn hint(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

async fn settings_page(
    state: &AppState,
    session: &StaffSession,
    status: StatusCode,
    revealed: Option<Value>,
    error: Option<(String, String)>,
) -> PageResult {
    let staff = &session.staff;
    staff.require(Action::Administer)?;
    let tenant = &staff.tenant.id;
    // Without a master key nothing can be sealed: the page says so instead of failing.
    let sealing = state.service.can_seal();
    let (provider_keys, secrets, signing, identity) = if sealing {
        let provider_keys: Vec<Value> = state
            .service
            .list_provider_keys(tenant)
            .await?
            .iter()
            .map(|k| json!({"provider": k.provider, "hint": k.hint, "updated": When::of(k.updated_at)}))
            .collect();
        let secrets: Vec<Value> = state
            .service
            .list_secrets(tenant)
            .await?
            .iter()
            .map(|s| json!({"name": s.name, "hint": s.hint, "updated": When::of(s.updated_at)}))
            .collect();
        let signing = state.service.webhook_signing_secrets(tenant).await?;
        let identity = state.service.widget_identity_secrets(tenant).await?;
        (
            provider_keys,
            secrets,
            Some(
                json!({"hint": hint(signing.current.expose_secret()), "overlap": signing.previous.is_some()}),
            ),
            Some(
                json!({"hint": hint(identity.current.expose_secret()), "overlap": identity.previous.is_some()}),
            ),
        )
    } else {
        (Vec::new(), Vec::new(), None, None)
    };
    let used = super::overview::month_tokens(state, tenant).await?;
    let providers: Vec<&String> = state
        .config
        .providers
        .keys()
        .filter(|name| state.runner.accepts_tenant_key(name))
        .collect();
    let (error_field, error_message) = error.unzip();
    Ok(page(
        status,
        "settings.html",
        context! {
            frame => Frame::new(staff, "settings", "Settings"),
            tenant => json!({"id": staff.tenant.id.as_str(), "name": staff.tenant.name,
                             "quota": staff.tenant.monthly_token_quota, "created": When::of(staff.tenant.created_at)}),
            used, month => Timestamp::now().month_key(),
            provider_keys, providers, secrets, revealed, error_field, error_message,
            signing, identity, sealing,
        },
    ))
}

pub async fn page_get(State(state): State<AppState>, session: StaffSession) -> PageResult {
    settings_page(&state, &session, StatusCode::OK, None, None).await
}

#[derive(Debug, Deserialize)]
pub struct ProviderKeyForm {
    #[serde(default)]
    provider: String,
    #[serde(default)]
    api_key: String,
}

pub async fn put_provider_key(
    State(state): State<AppState>,
    submit: Submit<ProviderKeyForm>,
) -> PageResult {
    let session = &submit.session;
    session.staff.require(Action::Administer)?;
    let provider = submit.form.provider.trim();
    let result = if state.runner.accepts_tenant_key(provider) {
        state
            .service
            .put_provider_key(&session.staff.tenant.id, provider, &submit.form.api_key)
            .await
            .map(|_| ())
    } else {
        Err(Error::invalid(
            "provider",
            format!("`{provider}` is not a provider this server knows"),
        ))
    };
    settle(&state, session, result, "provider_key").await
}

/// After a change: back to the page, or the page again with the error beside its form.
async fn settle(
    state: &AppState,
    session: &StaffSession,
    result: Result<(), Error>,
    form: &str,
) -> PageResult {
    match result {
        Ok(()) => Ok(Redirect::to("/settings").into_response()),
        Err(
            error
            @ (Error::InvalidField { .. } | Error::Conflict { .. } | Error::BadRequest { .. }),
        ) => {
            settings_page(
                state,
                session,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some((form.to_owned(), error.public_message())),
            )
            .await
        }
        Err(error) => Err(error.into()),
    }
}

pub async fn delete_provider_key(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    submit: Submit<NoFields>,
) -> PageResult {
    let staff = &submit.session.staff;
    staff.require(Action::Administer)?;
    state
        .service
        .delete_provider_key(&staff.tenant.id, &provider)
        .await?;
    Ok(Redirect::to("/settings").into_response())
}

#[derive(Debug, Deserialize)]
pub struct SecretForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
}

pub async fn put_secret(State(state): State<AppState>, submit: Submit<SecretForm>) -> PageResult {
    let session = &submit.session;
    session.staff.require(Action::Administer)?;
    let result = state
        .service
        .put_secret(
            &session.staff.tenant.id,
            submit.form.name.trim(),
            &submit.form.value,
        )
        .await
        .map(|_| ());
    settle(&state, session, result, "secret").await
}

pub async fn delete_secret(
    State(state): State<AppState>,
    Path(name): Path<String>,
    submit: Submit<NoFields>,
) -> PageResult {
    let staff = &submit.session.staff;
    staff.require(Action::Administer)?;
    state.service.delete_secret(&staff.tenant.id, &name).await?;
    Ok(Redirect::to("/settings").into_response())
}

#[derive(Debug, Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    overlap_hours: String,
}

/// Rotates the webhook signing or widget identity secret and shows the new one once.
pub async fn rotate(
    State(state): State<AppState>,
    Path(which): Path<String>,
    submit: Submit<RotateForm>,
) -> PageResult {
    let session = &submit.session;
    session.staff.require(Action::Administer)?;
    let tenant = &session.staff.tenant.id;
    let hours = submit.form.overlap_hours.trim();
    let overlap_secs = if hours.is_empty() {
        frontdesk_core::service::DEFAULT_OVERLAP_SECS
    } else {
        match hours.parse::<u64>() {
            Ok(h) => h.saturating_mul(3600),
            Err(_) => {
                return settings_page(
                    &state,
                    session,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    None,
                    Some((which.clone(), "enter the overlap in whole hours".to_owned())),
                )
                .await
            }
        }
    };
    let (label, secret) = match which.as_str() {
        "signing" => (
            "webhook signing secret",
            state
                .service
                .rotate_webhook_signing_secret(tenant, overlap_secs)
                .await,
        ),
        "identity" => (
            "widget identity secret",
            state
                .service
                .rotate_widget_identity_secret(tenant, overlap_secs)
                .await,
        ),
        _ => return Err(Error::NotFound { resource: "secret" }.into()),
    };
    match secret {
        Ok(secret) => {
            let revealed = json!({"label": label, "value": secret.expose_secret()});
            settings_page(&state, session, StatusCode::OK, Some(revealed), None).await
        }
        Err(error @ Error::InvalidField { .. }) => {
            settings_page(
                &state,
                session,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some((which, error.public_message())),
            )
            .await
        }
        Err(error) => Err(error.into()),
    }
}
