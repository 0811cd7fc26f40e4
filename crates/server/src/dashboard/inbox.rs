//! The inbox: conversations waiting for a person first (the longest waiting on top), then
//! the ones people handle and the ones active lately; a conversation opens with its
//! transcript, timeline (taken, replies, internal notes, handed back) and the staff's
//! controls — take over, reply or note, hand back. Pages work without JavaScript (forms);
//! `inbox.js` makes them live: the list follows the tenant's changes, a conversation its
//! events and the agent's answers as they are written.

use std::collections::HashSet;
use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use frontdesk_core::conversation::{Conversation, Message};
use frontdesk_core::handoff::{ConversationEvent, EventKind, Handler};
use frontdesk_core::id::ConversationId;
use frontdesk_core::service::{ListConversations, Service};
use frontdesk_core::session::Action;
use frontdesk_core::time::Timestamp;
use frontdesk_core::Error;
use minijinja::context;
use serde::Deserialize;
use serde_json::{json, Value};

use super::frame::{Frame, When};
use super::render::{page, PageResult};
use super::session::{StaffSession, Submit};
use crate::AppState;

/// Conversations the list shows per group.
const SHOWN: u32 = 50;
/// How far back "live" reaches.
const LIVE_SECS: i64 = 24 * 3600;

fn conversation_id(raw: &str) -> Result<ConversationId, Error> {
    ConversationId::parse(raw).map_err(|_| Error::NotFound {
        resource: "conversation",
    })
}

/// Initials for an avatar: "Ada Lovelace" → "AL".
fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|w| w.chars().next())
        .take(2)
        .collect::<String>()
        .to_uppercase()
}

/// A row of the list.
async fn row(service: &Service, conversation: &Conversation, names: &mut AgentNames) -> Value {
    let agent = names.get(service, conversation).await;
    let now = Timestamp::now().as_millis();
    json!({
        "id": conversation.id.as_str(),
        "title": conversation.title,
        "preview": conversation.preview,
        "agent": agent,
        "visitor": conversation.end_user_id,
        "handler": conversation.handler,
        "waiting": conversation.waiting_since.map(|since| json!({
            "at": When::of(since),
            "minutes": (now - since.as_millis()).max(0) / 60_000,
        })),
        "assignee": conversation.assignee.as_ref().map(|a| json!({"name": a.name, "initials": initials(&a.name)})),
        "last": conversation.last_message_at.map(When::of),
    })
}

/// Agent names by id, read once per page.
#[derive(Default)]
struct AgentNames(std::collections::HashMap<String, String>);

impl AgentNames {
    async fn get(&mut self, service: &Service, conversation: &Conversation) -> String {
        let id = conversation.agent_id.as_str().to_owned();
        if let Some(name) = self.0.get(&id) {
            return name.clone();
        }
        let name = service
            .get_agent_any(&conversation.tenant_id, &conversation.agent_id)
            .await
            .map(|a| a.spec.name)
            .unwrap_or_else(|_| "(deleted agent)".to_owned());
        self.0.insert(id, name.clone());
        name
    }
}

pub async fn list(State(state): State<AppState>, session: StaffSession) -> PageResult {
    let staff = &session.staff;
    let tenant = &staff.tenant.id;
    let service = &state.service;
    let waiting = service
        .list_conversations(
            tenant,
            ListConversations {
                waiting: true,
                archived: Some(false),
                limit: Some(SHOWN),
                ..Default::default()
            },
        )
        .await?;
    let live = service
        .list_conversations(
            tenant,
            ListConversations {
                archived: Some(false),
                active_from: Some(Timestamp::from_millis(
                    Timestamp::now().as_millis() - LIVE_SECS * 1000,
                )),
                limit: Some(SHOWN),
                ..Default::default()
            },
        )
        .await?;
    let mut names = AgentNames::default();
    let waiting_ids: HashSet<&str> = waiting.items.iter().map(|c| c.id.as_str()).collect();
    let mut waiting_rows = Vec::new();
    for conversation in &waiting.items {
        waiting_rows.push(row(service, conversation, &mut names).await);
    }
    // People's conversations before the agent's.
    let mut live_items: Vec<&Conversation> = live
        .items
        .iter()
        .filter(|c| !waiting_ids.contains(c.id.as_str()))
        .collect();
    live_items.sort_by_key(|c| c.handler != Handler::Human);
    let mut live_rows = Vec::new();
    for conversation in live_items {
        live_rows.push(row(service, conversation, &mut names).await);
    }
    Ok(page(
        StatusCode::OK,
        "inbox.html",
        context! {
            frame => Frame::new(staff, "inbox", "Inbox"),
            waiting => waiting_rows,
            live => live_rows,
        },
    ))
}

/// A transcript entry: a message (a staff reply shows its author) or a timeline event.
fn message_entry(message: &Message) -> Value {
    json!({
        "kind": "message",
        "id": message.id.as_str(),
        "role": message.role,
        "text": message.text(),
        "author": message.author.as_ref().map(|a| json!({"name": a.name, "initials": initials(&a.name)})),
        "at": When::of(message.created_at),
        "sort": message.created_at.as_millis(),
    })
}

fn event_entry(event: &ConversationEvent) -> Option<Value> {
    let actor = event.actor.as_ref().map(|a| a.name.clone());
    let text = match event.kind {
        EventKind::Message => return None,
        EventKind::Requested => {
            let by = event
                .data
                .get("by")
                .and_then(Value::as_str)
                .unwrap_or("agent");
            let reason = event.data.get("reason").and_then(Value::as_str);
            match reason {
                Some(reason) => format!("The {by} asked for a person: {reason}"),
                None => format!("The {by} asked for a person"),
            }
        }
        EventKind::Taken => format!("{} took the conversation", actor.unwrap_or_default()),
        EventKind::Returned => format!(
            "{} handed the conversation back to the agent",
            actor.unwrap_or_default()
        ),
        EventKind::TimedOut => "Nobody took it in time: the agent went on".to_owned(),
        EventKind::Note => event
            .data
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    };
    Some(json!({
        "kind": if event.kind == EventKind::Note { "note" } else { "event" },
        "seq": event.seq,
        "text": text,
        "actor": event.actor.as_ref().map(|a| a.name.clone()),
        "at": When::of(event.created_at),
        "sort": event.created_at.as_millis(),
    }))
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
    let events = state
        .service
        .conversation_events(tenant, &id, 0, 1_000)
        .await?;
    let mut entries: Vec<Value> = branch
        .iter()
        .filter(|b| b.message.role != frontdesk_core::conversation::MessageRole::Tool)
        .map(|b| message_entry(&b.message))
        .collect();
    entries.extend(events.iter().filter_map(event_entry));
    entries.sort_by_key(|e| e["sort"].as_i64().unwrap_or(0));
    let last_seq = events.last().map_or(0, |e| e.seq);
    let me = staff.user.id.to_string();
    let mut names = AgentNames::default();
    let summary = row(&state.service, &conversation, &mut names).await;
    let mine = conversation.assignee.as_ref().is_some_and(|a| a.id == me);
    let held_by_other = conversation.assignee.is_some() && !mine;
    Ok(page(
        StatusCode::OK,
        "inbox_conversation.html",
        context! {
            frame => Frame::new(staff, "inbox", conversation.title.clone().unwrap_or_else(|| "Conversation".into())),
            conversation => summary,
            entries, last_seq, mine, held_by_other,
            human => conversation.handler == Handler::Human,
        },
    ))
}

/// A staff action's form.
#[derive(Debug, Deserialize)]
pub struct ReplyForm {
    content: String,
    #[serde(default)]
    internal: Option<String>,
}

pub async fn take(
    State(state): State<AppState>,
    Path(conversation): Path<String>,
    submit: Submit<super::session::NoFields>,
) -> Result<Response, super::PageError> {
    let staff = &submit.session.staff;
    staff.require(Action::Edit)?;
    let id = conversation_id(&conversation)?;
    let by = Service::assignee_of(&staff.user);
    state.runner.take_over(&staff.tenant.id, &id, &by).await?;
    Ok(Redirect::to(&format!("/inbox/{}", id.as_str())).into_response())
}

pub async fn hand_back(
    State(state): State<AppState>,
    Path(conversation): Path<String>,
    submit: Submit<super::session::NoFields>,
) -> Result<Response, super::PageError> {
    let staff = &submit.session.staff;
    staff.require(Action::Edit)?;
    let id = conversation_id(&conversation)?;
    let by = Service::assignee_of(&staff.user);
    state.runner.hand_back(&staff.tenant.id, &id, &by).await?;
    Ok(Redirect::to(&format!("/inbox/{}", id.as_str())).into_response())
}

pub async fn reply(
    State(state): State<AppState>,
    Path(conversation): Path<String>,
    submit: Submit<ReplyForm>,
) -> Result<Response, super::PageError> {
    let staff = &submit.session.staff;
    staff.require(Action::Edit)?;
    let id = conversation_id(&conversation)?;
    let by = Service::assignee_of(&staff.user);
    let internal = submit.form.internal.is_some();
    state
        .runner
        .staff_message(&staff.tenant.id, &id, &by, &submit.form.content, internal)
        .await?;
    Ok(Redirect::to(&format!("/inbox/{}", id.as_str())).into_response())
}

/// Which of the tenant's conversations change, as server-sent events (the list refreshes).
pub async fn changes(State(state): State<AppState>, session: StaffSession) -> Response {
    let receiver = state
        .runner
        .feed()
        .subscribe_tenant(&session.staff.tenant.id);
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let frame =
            match tokio::time::timeout(std::time::Duration::from_secs(15), receiver.recv()).await {
                Ok(Ok(conversation)) => format!(
                    "event: changed\ndata: {{\"id\":\"{}\"}}\n\n",
                    conversation.as_str()
                ),
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                    "event: changed\ndata: {}\n\n".to_owned()
                }
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return None,
                Err(_) => ": keep-alive\n\n".to_owned(),
            };
        Some((Ok::<_, Infallible>(frame), receiver))
    });
    crate::routes::wire::event_stream(body)
}

/// The member's profile: the name and avatar visitors see on their replies.
pub async fn profile(session: StaffSession) -> PageResult {
    let staff = &session.staff;
    Ok(page(
        StatusCode::OK,
        "profile.html",
        context! {
            frame => Frame::new(staff, "profile", "Your profile"),
            name => staff.user.name,
            avatar_url => staff.user.avatar_url,
            initials => initials(&staff.user.name),
            saved => false,
            error => Option::<String>::None,
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct ProfileForm {
    name: String,
    #[serde(default)]
    avatar_url: String,
}

pub async fn save_profile(
    State(state): State<AppState>,
    submit: Submit<ProfileForm>,
) -> PageResult {
    let staff = &submit.session.staff;
    let form = &submit.form;
    let (status, saved, error) = match state
        .service
        .set_profile(&staff.user.id, &form.name, Some(form.avatar_url.as_str()))
        .await
    {
        Ok(()) => (StatusCode::OK, true, None),
        Err(e @ Error::InvalidField { .. }) => {
            (StatusCode::UNPROCESSABLE_ENTITY, false, Some(e.to_string()))
        }
        Err(other) => return Err(other.into()),
    };
    Ok(page(
        status,
        "profile.html",
        context! {
            frame => Frame::new(staff, "profile", "Your profile"),
            name => form.name,
            avatar_url => form.avatar_url,
            initials => initials(&form.name),
            saved, error,
        },
    ))
}
