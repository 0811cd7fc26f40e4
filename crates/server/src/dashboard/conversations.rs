//! Conversations: search and filters (in the URL, shareable), keyset pages, a transcript with
//! tool calls, citations, branches and per-message tokens and cost, export, delete; a run's
//! trace; and the approvals waiting for staff.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect};
use frontdesk_agents::{pending_approvals, ApprovalDecision};
use frontdesk_core::conversation::{ConversationStatus, Message};
use frontdesk_core::id::{ConversationId, MessageId, RunId};
use frontdesk_core::policy::Approver;
use frontdesk_core::run::{RunRecord, RunStatus};
use frontdesk_core::service::ListConversations;
use frontdesk_core::session::Action;
use frontdesk_core::time::Timestamp;
use frontdesk_core::Error;
use minijinja::context;
use serde::Deserialize;
use serde_json::{json, Value};

use super::frame::{Frame, When};
use super::render::{page, PageResult};
use super::session::{ConfirmForm, StaffSession, Submit};
use crate::AppState;

fn conversation_id(raw: &str) -> Result<ConversationId, Error> {
    ConversationId::parse(raw).map_err(|_| Error::NotFound {
        resource: "conversation",
    })
}

fn run_id(raw: &str) -> Result<RunId, Error> {
    RunId::parse(raw).map_err(|_| Error::NotFound { resource: "run" })
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    end_user: Option<String>,
    #[serde(default)]
    archived: Option<String>,
    #[serde(default)]
    status: Option<String>,
    /// Last active on or after this day (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    from: Option<String>,
    /// Last active on or before this day.
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

/// A `YYYY-MM-DD` day as the timestamp of its start (UTC), plus `days_after` days.
fn day_start(field: &str, day: &str, days_after: i64) -> Result<Timestamp, Error> {
    Timestamp::parse_rfc3339(&format!("{day}T00:00:00Z"))
        .filter(|_| day.len() == 10)
        .map(|t| Timestamp::from_millis(t.as_millis() + days_after * 86_400_000))
        .ok_or_else(|| Error::invalid(field, format!("`{day}` is not a day like 2026-12-01")))
}

pub async fn list(
    State(state): State<AppState>,
    session: StaffSession,
    Query(query): Query<ListQuery>,
) -> PageResult {
    let staff = &session.staff;
    let tenant = &staff.tenant.id;
    let agents = state.service.list_agents(tenant).await?;
    let blank = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let params = ListConversations {
        agent: blank(&query.agent),
        archived: match query.archived.as_deref() {
            Some("yes") => Some(true),
            Some("all") => None,
            _ => Some(false),
        },
        end_user_id: blank(&query.end_user),
        q: blank(&query.q),
        limit: Some(50),
        cursor: blank(&query.cursor),
        ..Default::default()
    };
    let mut params = params;
    params.status = match blank(&query.status).as_deref() {
        None => None,
        Some(value) => Some(ConversationStatus::parse(value).ok_or_else(|| {
            Error::invalid(
                "status",
                "one of failed, guardrail_tripped, awaiting_approval",
            )
        })?),
    };
    if let Some(day) = blank(&query.from) {
        params.active_from = Some(day_start("from", &day, 0)?);
    }
    if let Some(day) = blank(&query.to) {
        params.active_to = Some(day_start("to", &day, 1)?);
    }
    let page_of = state.service.list_conversations(tenant, params).await?;
    let rows: Vec<Value> = page_of
        .items
        .iter()
        .map(|c| {
            json!({
                "id": c.id.as_str(),
                "title": c.title.clone().or_else(|| c.preview.clone()).unwrap_or_else(|| "(no messages yet)".into()),
                "preview": c.preview,
                "agent": super::agent_name(&agents, c.agent_id.as_str()),
                "end_user": c.end_user_id,
                "messages": c.message_count,
                "last": When::of(c.last_message_at.unwrap_or(c.created_at)),
            })
        })
        .collect();
    // The next page keeps the filters: they are in the URL.
    let next = page_of.next.as_ref().map(|cursor| {
        super::next_page(
            "/conversations",
            &[
                ("q", &query.q),
                ("agent", &query.agent),
                ("end_user", &query.end_user),
                ("archived", &query.archived),
                ("status", &query.status),
                ("from", &query.from),
                ("to", &query.to),
            ],
            cursor,
        )
    });
    let agent_options = super::agent_options(&agents);
    Ok(page(
        StatusCode::OK,
        "conversations.html",
        context! {
            frame => Frame::new(staff, "conversations", "Conversations"),
            conversations => rows, next,
            filters => json!({"q": query.q, "agent": query.agent, "end_user": query.end_user,
                              "archived": query.archived.clone().unwrap_or_default(), "cursor": query.cursor,
                              "status": query.status, "from": query.from, "to": query.to}),
            agents => agent_options,
            filtered => [&query.q, &query.agent, &query.end_user, &query.status, &query.from, &query.to]
                .iter()
                .any(|v| blank(v).is_some()),
        },
    ))
}

/// A message for the transcript: its parts, tokens and what they cost.
fn message_view(
    message: &Message,
    prices: &std::collections::BTreeMap<String, frontdesk_core::usage::Price>,
) -> Value {
    let cost = match (&message.model, &message.usage) {
        (Some(model), Some(usage)) => prices
            .get(model)
            .map(|p| p.cost(usage.prompt_tokens, usage.completion_tokens)),
        _ => None,
    };
    let parts: Vec<Value> = message
        .content
        .iter()
        .map(|part| {
            let mut value = serde_json::to_value(part).unwrap_or(Value::Null);
            // Arguments and results, readable.
            for key in ["arguments", "output"] {
                if let Some(inner) = value.get(key).cloned() {
                    value[format!("{key}_pretty")] =
                        Value::String(serde_json::to_string_pretty(&inner).unwrap_or_default());
                }
            }
            value
        })
        .collect();
    json!({
        "id": message.id.as_str(),
        "role": message.role,
        "parts": parts,
        "model": message.model,
        "usage": message.usage,
        "cost": cost,
        "latency_ms": message.latency_ms,
        "finish_reason": message.finish_reason,
        "structured": message.structured.as_ref().map(|s| serde_json::to_string_pretty(s).unwrap_or_default()),
        "at": When::of(message.created_at),
    })
}

pub async fn show(
    State(state): State<AppState>,
    session: StaffSession,
    Path(conversation): Path<String>,
) -> PageResult {
    let staff = &session.staff;
    let tenant = &staff.tenant.id;
    let id = conversation_id(&conversation)?;
    let conversation = state.service.get_conversation(tenant, &id).await?;
    let branch = state.service.active_branch(tenant, &id).await?;
    let agent = state
        .service
        .get_agent_any(tenant, &conversation.agent_id)
        .await?;
    let runs = state.service.conversation_runs(tenant, &id).await?;
    let prices = &state.config.prices;
    let messages: Vec<Value> = branch
        .iter()
        .map(|b| {
            let mut view = message_view(&b.message, prices);
            if let Some(at) = b.sibling_ids.iter().position(|id| *id == b.message.id) {
                let of = b.sibling_ids.len();
                view["branch"] = json!({
                    "at": at + 1,
                    "of": of,
                    "prev": at.checked_sub(1).map(|i| b.sibling_ids[i].as_str()),
                    "next": b.sibling_ids.get(at + 1).map(|id| id.as_str()),
                });
            }
            view
        })
        .collect();
    let run_rows: Vec<Value> = runs.iter().map(run_summary).collect();
    let total_tokens: i64 = branch
        .iter()
        .filter_map(|b| b.message.usage.map(|u| u.total_tokens))
        .sum();
    Ok(page(
        StatusCode::OK,
        "conversation.html",
        context! {
            frame => Frame::new(staff, "conversations", conversation.title.clone().unwrap_or_else(|| "Conversation".into())),
            conversation => json!({
                "id": conversation.id.as_str(),
                "title": conversation.title,
                "end_user": conversation.end_user_id,
                "metadata": if conversation.metadata.is_empty() { None } else { Some(serde_json::to_string_pretty(&conversation.metadata).unwrap_or_default()) },
                "created": When::of(conversation.created_at),
                "messages": conversation.message_count,
                "archived": conversation.archived,
            }),
            agent => json!({"id": agent.id.as_str(), "name": agent.spec.name, "slug": agent.spec.slug}),
            messages, runs => run_rows, total_tokens,
        },
    ))
}

fn run_summary(run: &RunRecord) -> Value {
    json!({
        "id": run.id.as_str(),
        "status": run.status.as_str(),
        "agent": run.agent,
        "model": run.model,
        "tokens": run.usage.total_tokens,
        "duration_ms": (run.completed_at.as_millis() - run.created_at.as_millis()).max(0),
        "at": When::of(run.created_at),
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
}

pub async fn export(
    State(state): State<AppState>,
    session: StaffSession,
    Path(conversation): Path<String>,
    Query(query): Query<ExportQuery>,
) -> PageResult {
    let id = conversation_id(&conversation)?;
    let export = state
        .service
        .export_conversation(&session.staff.tenant.id, &id)
        .await?;
    let (content_type, extension, body) = match query.format.as_deref() {
        Some("json") => (
            "application/json",
            "json",
            serde_json::to_string_pretty(&export).map_err(Error::internal)?,
        ),
        _ => (
            "text/markdown; charset=utf-8",
            "md",
            frontdesk_core::service::render_markdown(&export),
        ),
    };
    let disposition = format!("attachment; filename=\"{}.{extension}\"", id.as_str());
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    Path(conversation): Path<String>,
    submit: Submit<ConfirmForm>,
) -> PageResult {
    let staff = &submit.session.staff;
    staff.require(Action::Edit)?;
    let id = conversation_id(&conversation)?;
    state
        .service
        .get_conversation(&staff.tenant.id, &id)
        .await?;
    if submit.form.confirm.trim() != "delete" {
        return Err(Error::invalid("confirm", "type `delete` to delete this conversation").into());
    }
    state
        .service
        .delete_conversation(&staff.tenant.id, &id, true)
        .await?;
    Ok(Redirect::to("/conversations").into_response())
}

/// Which branch to show: the one through this message.
#[derive(Debug, Deserialize)]
pub struct BranchForm {
    message: String,
}

/// Shows another branch: the newest message at or below `message` becomes the active one
/// (the next answer continues from there, as in the widget).
pub async fn switch_branch(
    State(state): State<AppState>,
    Path(conversation): Path<String>,
    submit: Submit<BranchForm>,
) -> PageResult {
    let staff = &submit.session.staff;
    staff.require(Action::Edit)?;
    let id = conversation_id(&conversation)?;
    let message = MessageId::parse(submit.form.message.trim()).map_err(|_| Error::NotFound {
        resource: "message",
    })?;
    state
        .service
        .set_active_message(&staff.tenant.id, &id, &message)
        .await?;
    Ok(Redirect::to(&format!(
        "/conversations/{}#{}",
        id.as_str(),
        message.as_str()
    ))
    .into_response())
}

pub async fn run(
    State(state): State<AppState>,
    session: StaffSession,
    Path(run): Path<String>,
) -> PageResult {
    let staff = &session.staff;
    let id = run_id(&run)?;
    let record = state.service.get_run(&staff.tenant.id, &id).await?;
    let start = record.created_at.as_millis();
    let total = (record.completed_at.as_millis() - start).max(1);
    let steps: Vec<Value> = record
        .steps
        .iter()
        .map(|step| {
            let offset = (step.started_at.as_millis() - start).max(0);
            json!({
                "kind": step.kind,
                "name": step.name,
                "agent": step.agent,
                "duration_ms": step.duration_ms,
                "offset_ms": offset,
                // Where the step's bar starts and how wide it is, in percent of the run.
                "left": (offset as f64 / total as f64 * 100.0).min(100.0),
                "width": (step.duration_ms as f64 / total as f64 * 100.0).clamp(0.5, 100.0),
                "input": serde_json::to_string_pretty(&step.input).unwrap_or_default(),
                "output": serde_json::to_string_pretty(&step.output).unwrap_or_default(),
                "usage": step.usage,
                "error": step.error,
            })
        })
        .collect();
    let approvals: Vec<Value> = pending_approvals(&record)
        .iter()
        .map(|p| json!({"call_id": p.call_id, "tool": p.tool, "arguments": serde_json::to_string_pretty(&p.arguments).unwrap_or_default(), "approver": p.approver.as_str(), "decided": p.decision.is_some()}))
        .collect();
    Ok(page(
        StatusCode::OK,
        "run.html",
        context! {
            frame => Frame::new(staff, "conversations", "Run trace"),
            run => json!({
                "id": record.id.as_str(),
                "conversation_id": record.conversation_id.as_str(),
                "status": record.status.as_str(),
                "agent": record.agent,
                "model": record.model,
                "usage": record.usage,
                "duration_ms": total,
                "at": When::of(record.created_at),
            }),
            steps, approvals,
        },
    ))
}

pub async fn approvals(State(state): State<AppState>, session: StaffSession) -> PageResult {
    let staff = &session.staff;
    let runs = state
        .service
        .list_runs(&staff.tenant.id, Some(RunStatus::AwaitingApproval), 100)
        .await?;
    let mut rows = Vec::new();
    for record in &runs {
        for pending in pending_approvals(record) {
            if pending.decision.is_some() || pending.approver != Approver::Staff {
                continue;
            }
            rows.push(json!({
                "run": record.id.as_str(),
                "conversation": record.conversation_id.as_str(),
                "agent": record.agent,
                "call_id": pending.call_id,
                "tool": pending.tool,
                "arguments": serde_json::to_string_pretty(&pending.arguments).unwrap_or_default(),
                "at": When::of(record.created_at),
                "expires": record.expires_at.map(When::of),
            }));
        }
    }
    Ok(page(
        StatusCode::OK,
        "approvals.html",
        context! { frame => Frame::new(staff, "approvals", "Approvals"), approvals => rows },
    ))
}

#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    decision: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    back: Option<String>,
}

pub async fn decide(
    State(state): State<AppState>,
    Path((run, call_id)): Path<(String, String)>,
    submit: Submit<DecisionForm>,
) -> PageResult {
    let staff = &submit.session.staff;
    staff.require(Action::Edit)?;
    let run = run_id(&run)?;
    frontdesk_core::validate::max_chars("call_id", &call_id, 200)?;
    let approve = match submit.form.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(Error::invalid("decision", "approve or reject").into()),
    };
    let reason = submit
        .form
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if let Some(reason) = &reason {
        frontdesk_core::validate::max_chars("reason", reason, 2000)?;
    }
    let decision = ApprovalDecision {
        approve,
        reason,
        by: Approver::Staff,
    };
    // The run goes on by itself when this was its last call; its answer lands in the
    // conversation whoever watches.
    state
        .runner
        .decide(&staff.tenant.id, &run, &call_id, decision)
        .await?;
    let back = match submit.form.back.as_deref() {
        Some("run") => format!("/runs/{}", run.as_str()),
        _ => "/approvals".to_owned(),
    };
    Ok(Redirect::to(&back).into_response())
}
