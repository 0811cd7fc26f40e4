//! API keys (create, shown once with a copy button; allowed origins and agents; rate limit;
//! revoke; last used) and the embed page (script tag, inline element, hosted-page link and
//! a live preview for an agent and a publishable key).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use frontdesk_core::id::KeyId;
use frontdesk_core::key::{ApiKey, KeyKind, Origin};
use frontdesk_core::service::NewKey;
use frontdesk_core::session::Action;
use frontdesk_core::Error;
use minijinja::context;
use serde::Deserialize;
use serde_json::{json, Value};

use super::frame::{Frame, When};
use super::render::{page, PageResult};
use super::session::{StaffSession, Submit};
use crate::AppState;

fn key_row(key: &ApiKey) -> Value {
    json!({
        "id": key.id.as_str(),
        "name": key.name,
        "kind": key.kind.as_str(),
        "prefix": key.prefix,
        "origins": key.allowed_origins.iter().map(Origin::as_str).collect::<Vec<_>>(),
        "agents": key.allowed_agents,
        "rate": key.rate_limit_per_minute,
        "created": When::of(key.created_at),
        "last_used": key.last_used_at.map(When::of),
        "revoked": key.revoked_at.map(When::of),
    })
}

async fn keys_page(
    state: &AppState,
    session: &StaffSession,
    status: StatusCode,
    created: Option<Value>,
    errors: serde_json::Map<String, Value>,
    values: Value,
) -> PageResult {
    let staff = &session.staff;
    staff.require(Action::Administer)?;
    let keys = state.service.list_keys(&staff.tenant.id).await?;
    let agents: Vec<Value> = state
        .service
        .list_agents(&staff.tenant.id)
        .await?
        .iter()
        .map(|a| json!({"slug": a.spec.slug, "name": a.spec.name}))
        .collect();
    let rows: Vec<Value> = keys.iter().map(key_row).collect();
    Ok(page(
        status,
        "keys.html",
        context! {
            frame => Frame::new(staff, "keys", "API keys"),
            keys => rows, agents, created, errors, values,
            default_rate => state.config.limits.rate_limit_per_minute,
            base => state.config.public_url(),
        },
    ))
}

pub async fn list(State(state): State<AppState>, session: StaffSession) -> PageResult {
    keys_page(
        &state,
        &session,
        StatusCode::OK,
        None,
        serde_json::Map::new(),
        json!({}),
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct NewKeyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    origins: String,
    #[serde(default)]
    agents: String,
    #[serde(default)]
    rate: String,
}

fn read_key_form(form: &NewKeyForm) -> Result<NewKey, (String, Error)> {
    let kind = KeyKind::parse(form.kind.trim()).map_err(|e| ("kind".to_owned(), e))?;
    let mut allowed_origins = Vec::new();
    for origin in super::entries(&form.origins) {
        allowed_origins.push(Origin::parse(&origin).map_err(|e| ("origins".to_owned(), e))?);
    }
    let rate = form.rate.trim();
    let rate_limit_per_minute = if rate.is_empty() {
        None
    } else {
        Some(rate.parse::<u32>().map_err(|_| {
            (
                "rate".to_owned(),
                Error::invalid(
                    "rate",
                    "enter requests per minute as a whole number, or leave it empty",
                ),
            )
        })?)
    };
    Ok(NewKey {
        kind,
        name: form.name.clone(),
        allowed_origins,
        allowed_agents: super::entries(&form.agents),
        rate_limit_per_minute,
    })
}

pub async fn create(State(state): State<AppState>, submit: Submit<NewKeyForm>) -> PageResult {
    let session = &submit.session;
    session.staff.require(Action::Administer)?;
    let form = &submit.form;
    let values = json!({"name": form.name, "kind": form.kind, "origins": form.origins, "agents": form.agents, "rate": form.rate});
    let input = read_key_form(form);
    let result = match input {
        Ok(input) => state
            .service
            .create_key(&session.staff.tenant.id, input)
            .await
            .map_err(|e| {
                let field = match e.field() {
                    Some(f) if f.starts_with("allowed_origins") => "origins".to_owned(),
                    Some(f) if f.starts_with("allowed_agents") => "agents".to_owned(),
                    Some(f) if f.starts_with("rate_limit") => "rate".to_owned(),
                    Some(f) => f.to_owned(),
                    None => "form".to_owned(),
                };
                (field, e)
            }),
        Err(error) => Err(error),
    };
    match result {
        Ok((key, secret)) => {
            let created =
                json!({"key": secret.expose(), "name": key.name, "kind": key.kind.as_str()});
            keys_page(
                &state,
                session,
                StatusCode::CREATED,
                Some(created),
                serde_json::Map::new(),
                json!({}),
            )
            .await
        }
        Err((field, error @ (Error::InvalidField { .. } | Error::BadRequest { .. }))) => {
            let mut errors = serde_json::Map::new();
            errors.insert(field, Value::String(error.public_message()));
            keys_page(
                &state,
                session,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                errors,
                values,
            )
            .await
        }
        Err((_, error)) => Err(error.into()),
    }
}

pub async fn revoke(
    State(state): State<AppState>,
    Path(key): Path<String>,
    submit: Submit<super::session::NoFields>,
) -> PageResult {
    let staff = &submit.session.staff;
    staff.require(Action::Administer)?;
    let key = KeyId::parse(&key).map_err(|_| Error::NotFound { resource: "key" })?;
    state.service.revoke_key(&staff.tenant.id, &key).await?;
    Ok(Redirect::to("/keys").into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct EmbedQuery {
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    key: Option<String>,
}

/// The embed page: choose an agent and a publishable key (by its id; the key itself is
/// typed in, as it is shown only once), get the snippets, and preview the widget.
pub async fn embed(
    State(state): State<AppState>,
    session: StaffSession,
    Query(query): Query<EmbedQuery>,
) -> PageResult {
    let staff = &session.staff;
    let agents = state.service.list_agents(&staff.tenant.id).await?;
    let keys: Vec<ApiKey> = state
        .service
        .list_keys(&staff.tenant.id)
        .await?
        .into_iter()
        .filter(|k| k.kind == KeyKind::Publishable && k.revoked_at.is_none())
        .collect();
    let agent = query
        .agent
        .as_deref()
        .and_then(|slug| agents.iter().find(|a| a.spec.slug == slug))
        .or_else(|| agents.first());
    // A publishable key is public by design (it sits in web pages); what is typed in must
    // be one of this tenant's live publishable keys to be used in the snippets.
    let key = match query
        .key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
    {
        Some(presented) => match state.service.live_key(presented).await {
            Ok(found)
                if found.tenant_id == staff.tenant.id && found.kind == KeyKind::Publishable =>
            {
                Some(presented.to_owned())
            }
            _ => None,
        },
        None => None,
    };
    let key_error = query.key.as_deref().is_some_and(|k| !k.trim().is_empty()) && key.is_none();
    let base = state.config.public_url();
    let agent_view = agent.map(|a| {
        json!({"slug": a.spec.slug, "name": a.spec.name, "public_page": a.spec.widget.public_page})
    });
    let agent_options: Vec<Value> = agents
        .iter()
        .map(|a| json!({"slug": a.spec.slug, "name": a.spec.name}))
        .collect();
    let key_rows: Vec<Value> = keys.iter().map(key_row).collect();
    Ok(page(
        StatusCode::OK,
        "embed.html",
        context! {
            frame => Frame::new(staff, "embed", "Embed"),
            agents => agent_options, agent => agent_view, keys => key_rows, key, key_error,
            base, tenant_id => staff.tenant.id.as_str(),
        },
    ))
}
