//! Agents: the list, creating one (blank or from a starting template), the editor of its
//! whole configuration (errors beside the field they concern), version history with a diff
//! between any two versions, restoring one, and deleting.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use frontdesk_core::agent::{Agent, AgentRef};
use frontdesk_core::session::Action;
use frontdesk_core::Error;
use minijinja::context;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::agent_form::{editor_values, merge_diff, spec_from_form, JSON_FIELDS};
use super::frame::{Frame, When};
use super::render::{page, PageResult};
use super::session::{ConfirmForm, StaffSession, Submit};
use crate::AppState;

/// Starting points for a new agent: `(key, label, description, spec fields)`.
fn starter(template: &str) -> Option<(&'static str, Value)> {
    match template {
        "blank" => Some(("Blank", serde_json::json!({}))),
        "support" => Some((
            "Customer support",
            serde_json::json!({
                "description": "Answers customers' questions about orders, shipping and returns.",
                "instructions": "You are the support assistant of {{context.company}}. Answer briefly and politely. When you do not know, say so and offer to connect the customer with a person.",
                "widget": {"greeting": "Hi! How can I help you today?", "starter_prompts": ["Where is my order?", "How do returns work?"]}
            }),
        )),
        "sales" => Some((
            "Sales assistant",
            serde_json::json!({
                "description": "Helps visitors choose a plan and books demos.",
                "instructions": "You help visitors understand the product and choose a plan. Ask one question at a time about their needs. Never invent prices; when unsure, offer a demo with the team.",
                "widget": {"greeting": "Looking for the right plan? Ask me anything.", "starter_prompts": ["Which plan fits a team of 10?", "Can I book a demo?"]}
            }),
        )),
        "faq" => Some((
            "FAQ with structured answers",
            serde_json::json!({
                "description": "Answers from a fixed FAQ and says how sure it is.",
                "instructions": "Answer the question in one or two sentences.",
                "output_schema": {"type": "object", "properties": {"answer": {"type": "string"}, "confident": {"type": "boolean"}}, "required": ["answer", "confident"], "additionalProperties": false}
            }),
        )),
        _ => None,
    }
}

const STARTERS: &[&str] = &["blank", "support", "sales", "faq"];

fn agent_ref(raw: &str) -> Result<AgentRef, Error> {
    AgentRef::parse(raw).map_err(|_| Error::NotFound { resource: "agent" })
}

pub async fn list(State(state): State<AppState>, session: StaffSession) -> PageResult {
    let staff = &session.staff;
    let agents = state.service.list_agents(&staff.tenant.id).await?;
    let rows: Vec<Value> = agents
        .iter()
        .map(|agent| {
            serde_json::json!({
                "id": agent.id.as_str(),
                "slug": agent.spec.slug,
                "name": agent.spec.name,
                "description": agent.spec.description,
                "model": agent.spec.model,
                "tools": agent.spec.tools.len() + agent.spec.mcp_servers.len(),
                "version": agent.version,
                "updated": When::of(agent.updated_at),
            })
        })
        .collect();
    Ok(page(
        StatusCode::OK,
        "agents.html",
        context! { frame => Frame::new(staff, "agents", "Agents"), agents => rows },
    ))
}

pub async fn new_page(session: StaffSession) -> PageResult {
    session.staff.require(Action::Edit)?;
    Ok(new_form(&session, StatusCode::OK, None, Map::new()))
}

fn new_form(
    session: &StaffSession,
    status: StatusCode,
    error: Option<(String, Option<String>)>,
    values: Map<String, Value>,
) -> Response {
    let starters: Vec<Value> = STARTERS
        .iter()
        .filter_map(|key| starter(key).map(|(label, spec)| (key, label, spec)))
        .map(|(key, label, spec)| {
            serde_json::json!({"key": key, "label": label, "description": spec.get("description")})
        })
        .collect();
    let mut errors = Map::new();
    if let Some((message, field)) = error {
        errors.insert(
            field.unwrap_or_else(|| "form".into()),
            Value::String(message),
        );
    }
    page(
        status,
        "agents.html",
        context! {
            frame => Frame::new(&session.staff, "agents", "New agent"),
            creating => true, starters, errors, values,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct NewAgentForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    template: String,
}

pub async fn create(State(state): State<AppState>, submit: Submit<NewAgentForm>) -> PageResult {
    let staff = &submit.session.staff;
    staff.require(Action::Edit)?;
    let form = submit.form;
    let (_, mut spec) = starter(&form.template).unwrap_or(("Blank", serde_json::json!({})));
    let slug = if form.slug.trim().is_empty() {
        slugify(&form.name)
    } else {
        form.slug.trim().to_owned()
    };
    if let Value::Object(fields) = &mut spec {
        fields.insert("name".into(), Value::String(form.name.trim().to_owned()));
        fields.insert("slug".into(), Value::String(slug.clone()));
    }
    match state.service.create_agent(&staff.tenant.id, spec).await {
        Ok(agent) => Ok(
            Redirect::to(&format!("/agents/{}?saved=created", agent.id.as_str())).into_response(),
        ),
        Err(error @ (Error::InvalidField { .. } | Error::Conflict { .. })) => {
            let field = match &error {
                Error::Conflict { .. } => Some("slug".to_owned()),
                other => other.field().map(top_field),
            };
            let mut values = Map::new();
            values.insert("name".into(), Value::String(form.name));
            values.insert("slug".into(), Value::String(slug));
            values.insert("template".into(), Value::String(form.template));
            Ok(new_form(
                &submit.session,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some((error.public_message(), field)),
                values,
            ))
        }
        Err(error) => Err(error.into()),
    }
}

/// A slug from a display name: lowercase letters, digits and dashes.
fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for ch in name.trim().to_lowercase().chars() {
        if ch.is_ascii_alphanumeric() {
            slug.push(ch);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').chars().take(64).collect()
}

/// The top-level config field an error's dotted path starts with (`tools[0].url` → `tools`).
fn top_field(path: &str) -> String {
    path.split(['.', '[']).next().unwrap_or(path).to_owned()
}

/// Models to suggest in the editor: the local default, common ones of each configured
/// provider, and every model the tenant's agents use already.
pub(super) fn model_choices(state: &AppState, agents: &[Agent]) -> Vec<String> {
    let mut models = std::collections::BTreeSet::new();
    models.insert(frontdesk_core::agent::DEFAULT_MODEL.to_owned());
    for (name, provider) in &state.config.providers {
        let common: &[&str] = match provider.kind {
            frontdesk_core::config::ProviderKind::Anthropic => {
                &["claude-sonnet-4-5", "claude-haiku-4-5"]
            }
            _ => &["gpt-4.1-mini", "gpt-4.1", "gpt-4o-mini"],
        };
        for model in common {
            models.insert(format!("{name}/{model}"));
        }
    }
    for agent in agents {
        models.insert(agent.spec.model.clone());
        models.extend(agent.spec.fallback_models.iter().cloned());
    }
    models.into_iter().collect()
}

async fn editor(
    state: &AppState,
    session: &StaffSession,
    agent: &Agent,
    status: StatusCode,
    values: Map<String, Value>,
    errors: Map<String, Value>,
    saved: Option<&str>,
) -> PageResult {
    let staff = &session.staff;
    let all = state.service.list_agents(&staff.tenant.id).await?;
    let models = model_choices(state, &all);
    let others: Vec<String> = all
        .into_iter()
        .filter(|a| a.id != agent.id)
        .map(|a| a.spec.slug)
        .collect();
    let json_fields: Vec<Value> = JSON_FIELDS
        .iter()
        .map(|(key, label, help)| serde_json::json!({"key": key, "label": label, "help": help}))
        .collect();
    Ok(page(
        status,
        "agent_edit.html",
        context! {
            frame => Frame::new(staff, "agents", format!("{} · agent", agent.spec.name)),
            agent => serde_json::json!({
                "id": agent.id.as_str(), "slug": agent.spec.slug, "name": agent.spec.name,
                "version": agent.version, "updated": When::of(agent.updated_at),
            }),
            values, errors, json_fields, models, others, saved,
            builtins => frontdesk_core::tool::BUILTIN_TOOLS,
        },
    ))
}

#[derive(Debug, Default, Deserialize)]
pub struct EditQuery {
    #[serde(default)]
    saved: Option<String>,
}

pub async fn edit(
    State(state): State<AppState>,
    session: StaffSession,
    Path(agent): Path<String>,
    Query(query): Query<EditQuery>,
) -> PageResult {
    let agent = state
        .service
        .get_agent(&session.staff.tenant.id, &agent_ref(&agent)?)
        .await?;
    let saved = query
        .saved
        .as_deref()
        .filter(|s| matches!(*s, "saved" | "created" | "restored"));
    editor(
        &state,
        &session,
        &agent,
        StatusCode::OK,
        editor_values(&agent.spec),
        Map::new(),
        saved,
    )
    .await
}

pub async fn save(
    State(state): State<AppState>,
    Path(agent): Path<String>,
    submit: Submit<Map<String, Value>>,
) -> PageResult {
    let session = &submit.session;
    session.staff.require(Action::Edit)?;
    let tenant = &session.staff.tenant.id;
    let current = state.service.get_agent(tenant, &agent_ref(&agent)?).await?;
    let form = submit.form;
    let values = |form: &Map<String, Value>| {
        let mut values = editor_values(&current.spec);
        for (key, value) in form {
            if values.contains_key(key) {
                values.insert(key.clone(), value.clone());
            }
        }
        values
    };
    let expected = form
        .get("version")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if expected != current.version.to_string() {
        let mut errors = Map::new();
        errors.insert(
            "form".into(),
            Value::String(format!(
                "Someone saved version {} while you were editing. Your changes are below; copy what you need, reload, and save again.",
                current.version
            )),
        );
        return editor(
            &state,
            session,
            &current,
            StatusCode::CONFLICT,
            values(&form),
            errors,
            None,
        )
        .await;
    }
    let old = serde_json::to_value(&current.spec).unwrap_or(Value::Null);
    let new = match spec_from_form(&old, &form) {
        Ok(spec) => spec,
        Err(errors) => {
            return editor(
                &state,
                session,
                &current,
                StatusCode::UNPROCESSABLE_ENTITY,
                values(&form),
                errors,
                None,
            )
            .await
        }
    };
    match state
        .service
        .update_agent(
            tenant,
            &AgentRef::Id(current.id.clone()),
            merge_diff(&old, &new),
        )
        .await
    {
        Ok(agent) => {
            Ok(Redirect::to(&format!("/agents/{}?saved=saved", agent.id.as_str())).into_response())
        }
        Err(
            error
            @ (Error::InvalidField { .. } | Error::BadRequest { .. } | Error::Conflict { .. }),
        ) => {
            let field = match &error {
                Error::Conflict {
                    code: "slug_taken", ..
                } => "slug".to_owned(),
                Error::Conflict { .. } => "form".to_owned(),
                other => other
                    .field()
                    .map(top_field)
                    .unwrap_or_else(|| "form".to_owned()),
            };
            let mut errors = Map::new();
            errors.insert(field, Value::String(error.public_message()));
            editor(
                &state,
                session,
                &current,
                StatusCode::UNPROCESSABLE_ENTITY,
                values(&form),
                errors,
                None,
            )
            .await
        }
        Err(error) => Err(error.into()),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    Path(agent): Path<String>,
    submit: Submit<ConfirmForm>,
) -> PageResult {
    let staff = &submit.session.staff;
    staff.require(Action::Edit)?;
    let current = state
        .service
        .get_agent(&staff.tenant.id, &agent_ref(&agent)?)
        .await?;
    if submit.form.confirm.trim() != current.spec.slug {
        return Err(Error::invalid(
            "confirm",
            format!("type the agent's slug `{}` to delete it", current.spec.slug),
        )
        .into());
    }
    state
        .service
        .delete_agent(&staff.tenant.id, &AgentRef::Id(current.id))
        .await?;
    Ok(Redirect::to("/agents").into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct DiffQuery {
    #[serde(default)]
    a: Option<i64>,
    #[serde(default)]
    b: Option<i64>,
}

pub async fn versions(
    State(state): State<AppState>,
    session: StaffSession,
    Path(agent): Path<String>,
    Query(query): Query<DiffQuery>,
) -> PageResult {
    let staff = &session.staff;
    let reference = agent_ref(&agent)?;
    let agent = state
        .service
        .get_agent(&staff.tenant.id, &reference)
        .await?;
    let versions = state
        .service
        .agent_versions(&staff.tenant.id, &reference)
        .await?;
    let newest = versions.first().map(|v| v.version).unwrap_or(agent.version);
    let b = query.b.unwrap_or(newest);
    let a = query.a.unwrap_or(b - 1).max(1);
    let pretty = |version: i64| {
        versions
            .iter()
            .find(|v| v.version == version)
            .map(|v| serde_json::to_string_pretty(&v.spec).unwrap_or_default())
    };
    let diff = match (pretty(a), pretty(b)) {
        (Some(left), Some(right)) => Some(super::diff::lines(&left, &right)),
        _ => None,
    };
    let rows: Vec<Value> = versions
        .iter()
        .map(|v| serde_json::json!({"version": v.version, "created": When::of(v.created_at), "name": v.spec.name, "model": v.spec.model}))
        .collect();
    Ok(page(
        StatusCode::OK,
        "agent_versions.html",
        context! {
            frame => Frame::new(staff, "agents", format!("{} · versions", agent.spec.name)),
            agent => serde_json::json!({"id": agent.id.as_str(), "name": agent.spec.name, "slug": agent.spec.slug, "version": agent.version}),
            versions => rows, a, b, diff,
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct RestoreForm {
    version: i64,
}

pub async fn restore(
    State(state): State<AppState>,
    Path(agent): Path<String>,
    submit: Submit<RestoreForm>,
) -> PageResult {
    let staff = &submit.session.staff;
    staff.require(Action::Edit)?;
    let reference = agent_ref(&agent)?;
    let current = state
        .service
        .get_agent(&staff.tenant.id, &reference)
        .await?;
    let versions = state
        .service
        .agent_versions(&staff.tenant.id, &reference)
        .await?;
    let target = versions
        .into_iter()
        .find(|v| v.version == submit.form.version)
        .ok_or(Error::NotFound {
            resource: "version",
        })?;
    let old = serde_json::to_value(&current.spec).unwrap_or(Value::Null);
    let new = serde_json::to_value(&target.spec).unwrap_or(Value::Null);
    state
        .service
        .update_agent(
            &staff.tenant.id,
            &AgentRef::Id(current.id.clone()),
            merge_diff(&old, &new),
        )
        .await?;
    Ok(Redirect::to(&format!("/agents/{}?saved=restored", current.id.as_str())).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_come_from_names() {
        assert_eq!(slugify("  Customer Support (EU) "), "customer-support-eu");
        assert_eq!(slugify("Ünïcode ok"), "n-code-ok");
        assert_eq!(top_field("tools[0].url"), "tools");
        assert_eq!(top_field("widget.title"), "widget");
    }
}
