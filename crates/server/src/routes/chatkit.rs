//! The OpenAI ChatKit custom-backend protocol (`POST /chatkit`) over our store: threads are
//! conversations (their ids are `conv_…`), items are the messages of the active branch.
//! One endpoint takes `{type, params, metadata}`: the streaming types answer SSE of thread
//! stream events (`data:` lines, no `[DONE]`), the others JSON. `metadata.agent` (a slug)
//! picks the agent of a new thread. A secret key reaches all of the tenant's threads; a widget
//! visitor token (from `POST /widget/v1/session` with a publishable key) only its own. Failures inside a run are an in-stream `error` event;
//! failures before it are HTTP errors.
//!
//! Supported: `threads.create`, `threads.add_user_message`, `threads.retry_after_item`,
//! `threads.get_by_id`, `threads.list`, `items.list`, `threads.update`, `threads.delete`.
//! Client tools, attachments, transcription, widgets' actions and feedback answer 400
//! `unsupported_request` (not silently accepted).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use frontdesk_agents::{Follower, Input, TurnOptions, TurnRequest};
use frontdesk_core::agent::AgentRef;
use frontdesk_core::conversation::{content_text, Conversation, Message, MessageRole};
use frontdesk_core::id::{ConversationId, MessageId};
use frontdesk_core::run::{RunEvent, SequencedEvent};
use frontdesk_core::service::{ListConversations, NewConversation, UpdateConversation};
use frontdesk_core::{Error, Service};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::auth::SecretKeyAuth;
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::routes::wire::{self, Encoder, Frames};
use crate::AppState;

pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/chatkit", post(chatkit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::routes::client_limits::per_address_of_visitors,
        ))
}

/// A ChatKit request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ChatKitRequest {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    params: Value,
    #[serde(default)]
    metadata: Map<String, Value>,
}

/// The default (and largest) page of items or threads.
const DEFAULT_PAGE: u32 = 20;

fn param<'a>(params: &'a Value, name: &str) -> Result<&'a str, Error> {
    params[name]
        .as_str()
        .ok_or_else(|| Error::invalid(format!("params.{name}"), "is required"))
}

fn thread_id(params: &Value) -> Result<ConversationId, Error> {
    ConversationId::parse(param(params, "thread_id")?)
        .map_err(|_| Error::NotFound { resource: "thread" })
}

/// The text of a `UserMessageInput` (text parts and tags).
fn input_text(params: &Value) -> Result<String, Error> {
    let content = params["input"]["content"]
        .as_array()
        .ok_or_else(|| Error::invalid("params.input.content", "is required"))?;
    if params["input"]["attachments"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        return Err(unsupported("attachments"));
    }
    let mut text = String::new();
    for part in content {
        match part["type"].as_str() {
            Some("input_text" | "input_tag") => {
                text.push_str(part["text"].as_str().unwrap_or_default())
            }
            _ => {
                return Err(Error::invalid(
                    "params.input.content",
                    "only input_text and input_tag parts are supported",
                ))
            }
        }
    }
    Ok(text)
}

fn unsupported(what: &str) -> Error {
    Error::bad_request(
        "unsupported_request",
        format!("this backend does not support {what}"),
    )
}

fn item(message: &Message) -> Value {
    let common = |kind: &str| json!({"id": message.id, "thread_id": message.conversation_id, "created_at": message.created_at, "type": kind});
    match message.role {
        MessageRole::User => {
            let mut item = common("user_message");
            item["content"] = json!([{"type": "input_text", "text": message.text()}]);
            item["attachments"] = json!([]);
            item["inference_options"] = json!({});
            item
        }
        _ => {
            let mut item = common("assistant_message");
            item["content"] = json!([{"type": "output_text", "text": content_text(&message.content), "annotations": []}]);
            item
        }
    }
}

fn thread(conversation: &Conversation, items: Vec<Value>, has_more: bool) -> Value {
    let mut thread = json!({
        "id": conversation.id,
        "created_at": conversation.created_at,
        "status": {"type": "active"},
        "metadata": {},
        "items": {"data": items, "has_more": has_more},
    });
    if let Some(title) = &conversation.title {
        thread["title"] = json!(title);
    }
    thread
}

/// A thread with its first page of items (oldest first).
async fn thread_with_items(
    service: &Service,
    tenant: &frontdesk_core::id::TenantId,
    conversation: &Conversation,
) -> Result<Value, Error> {
    let (page, more) = service
        .branch_page(tenant, &conversation.id, false, Some(DEFAULT_PAGE), None)
        .await?;
    let items = page.iter().map(|m| item(&m.message)).collect();
    Ok(thread(conversation, items, more))
}

/// Who calls: the tenant with a secret key, or a widget visitor (limited to its end user).
pub struct Caller {
    tenant: frontdesk_core::id::TenantId,
    visitor: Option<frontdesk_core::service::Visitor>,
}

impl Caller {
    fn end_user(&self) -> Option<String> {
        self.visitor.as_ref().map(|v| v.claims.end_user.clone())
    }

    /// A turn of this caller: a visitor's request metadata lies beneath the thread's (it is
    /// the page's word), its identified user's claims over it.
    fn turn(
        &self,
        conversation: &ConversationId,
        input: Input,
        metadata: &Map<String, Value>,
    ) -> TurnRequest {
        let options = match &self.visitor {
            Some(visitor) => TurnOptions {
                context: visitor.claims.context.clone(),
                page_context: metadata.clone(),
                ..TurnOptions::default()
            },
            None => TurnOptions::default(),
        };
        TurnRequest::on(&self.tenant, conversation, input).with_options(options)
    }

    /// A run's events as this caller may see them: all of them for staff, the end user's
    /// view for a visitor.
    async fn events(
        &self,
        state: &AppState,
        conversation: &Conversation,
        events: Follower,
    ) -> Result<Follower, ApiError> {
        if self.visitor.is_none() {
            return Ok(events);
        }
        let view = crate::routes::widget::view_of(state, conversation).await?;
        Ok(events.map(move |event| view.event(event)))
    }

    /// A thread this caller may use; another's is a 404.
    async fn thread(&self, service: &Service, id: &ConversationId) -> Result<Conversation, Error> {
        match &self.visitor {
            Some(visitor) => service
                .visitor_conversation(visitor, id)
                .await
                .map_err(|e| match e {
                    Error::NotFound { .. } => Error::NotFound { resource: "thread" },
                    other => other,
                }),
            None => service.get_conversation(&self.tenant, id).await,
        }
    }
}

/// Who calls, found from the headers before the body is read (a caller without credentials
/// never gets the server to wait for a body).
impl axum::extract::FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let visitor_token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Bearer fdv1."));
        if visitor_token {
            let visitor = crate::routes::widget::visitor(state, &parts.headers).await?;
            return Ok(Caller {
                tenant: visitor.tenant().clone(),
                visitor: Some(visitor),
            });
        }
        let auth = SecretKeyAuth::from_request_parts(parts, state).await?;
        Ok(Caller {
            tenant: auth.tenant,
            visitor: None,
        })
    }
}

/// Every ChatKit request: a secret key, or a visitor token (`fdv1.…`) from a widget session.
#[utoipa::path(post, path = "/chatkit", tag = "chatkit", security(("secret_key" = []), ("visitor_token" = [])),
    request_body(content = ChatKitRequest, description = "a ChatKit request: `type` (`threads.create`, `threads.add_user_message`, `threads.list`, `items.list`, …) and its `params`"),
    responses((status = 200, description = "streaming operations answer server-sent thread events; the others JSON",
               content((Object = "application/json"), (String = "text/event-stream"))),
              (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn chatkit(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<ChatKitRequest>,
) -> ApiResult<Response> {
    let tenant = &caller.tenant;
    let service = &state.service;
    let params = &request.params;
    let json_response = |value: Value| Ok(Json(value).into_response());
    match request.kind.as_str() {
        "threads.create" => {
            let agent = request
                .metadata
                .get("agent")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    Error::invalid(
                        "metadata.agent",
                        "names the agent (its slug) of a new thread",
                    )
                })?;
            let found = service.get_agent(tenant, &AgentRef::parse(agent)?).await?;
            if caller.visitor.as_ref().is_some_and(|v| !v.may_use(&found)) {
                return Err(ApiError(Error::NotFound { resource: "agent" }));
            }
            let text = input_text(params)?;
            let conversation = service
                .create_conversation(
                    tenant,
                    NewConversation {
                        agent: agent.to_owned(),
                        end_user_id: caller.end_user(),
                        title: None,
                        // Staff's thread metadata is the conversation's (the run's context); a
                        // visitor's is only the page's word for its turns.
                        metadata: {
                            let mut metadata = if caller.visitor.is_none() {
                                request.metadata.clone()
                            } else {
                                Map::new()
                            };
                            metadata.insert("source".to_owned(), json!("chatkit"));
                            metadata
                        },
                    },
                )
                .await?;
            let started = state
                .runner
                .start(caller.turn(&conversation.id, Input::Send { text }, &request.metadata))
                .await?;
            let head = vec![
                json!({"type": "thread.created", "thread": thread(&conversation, Vec::new(), false)}),
                json!({"type": "thread.item.done", "item": item(&started.user_message)}),
            ];
            let events = caller.events(&state, &conversation, started.events).await?;
            Ok(stream(
                state.clone(),
                tenant.clone(),
                conversation.id,
                head,
                events,
            ))
        }
        kind if THREAD_OPERATIONS.contains(&kind) => {
            // One guard for every operation on a thread: the caller's own, or a 404.
            let thread = caller.thread(service, &thread_id(params)?).await?;
            on_thread(&state, &caller, kind, thread, params, &request.metadata).await
        }
        "threads.list" => {
            if params["order"].as_str().is_some_and(|o| o != "desc") {
                return Err(ApiError(Error::invalid(
                    "params.order",
                    "threads are listed newest first (desc)",
                )));
            }
            let limit = params["limit"]
                .as_u64()
                .map(|l| l.min(100) as u32)
                .unwrap_or(DEFAULT_PAGE);
            let listing = ListConversations {
                limit: Some(limit),
                cursor: params["after"].as_str().map(str::to_owned),
                ..ListConversations::default()
            };
            let page = match &caller.visitor {
                Some(visitor) => service.visitor_conversations(visitor, listing).await?,
                None => service.list_conversations(tenant, listing).await?,
            };
            let data: Vec<Value> = page
                .items
                .iter()
                .map(|c| thread(c, Vec::new(), false))
                .collect();
            let mut body = json!({"data": data, "has_more": page.next.is_some()});
            if let Some(next) = page.next {
                body["after"] = json!(next.encode());
            }
            json_response(body)
        }
        "threads.add_client_tool_output" => Err(ApiError(unsupported("client tools"))),
        "threads.add_structured_input" | "threads.custom_action" | "threads.sync_custom_action" => {
            Err(ApiError(unsupported("widget actions and structured input")))
        }
        "attachments.create" | "attachments.delete" => Err(ApiError(unsupported("attachments"))),
        "input.transcribe" => Err(ApiError(unsupported("transcription"))),
        "items.feedback" => Err(ApiError(unsupported("feedback"))),
        other => Err(ApiError(Error::invalid(
            "type",
            format!("`{other}` is not a ChatKit request type"),
        ))),
    }
}

/// Thread stream events: `head` (thread created, the user's item), then the run's.
fn stream(
    state: AppState,
    tenant: frontdesk_core::id::TenantId,
    conversation: ConversationId,
    head: Vec<Value>,
    follower: Follower,
) -> Response {
    let items = ThreadItems {
        state,
        tenant,
        conversation,
        head,
        answer: None,
    };
    wire::stream(follower, items)
}

/// A run's events as ChatKit thread stream events.
struct ThreadItems {
    state: AppState,
    tenant: frontdesk_core::id::TenantId,
    conversation: ConversationId,
    /// What goes first (the new thread, the user's item).
    head: Vec<Value>,
    /// The answer's item id, once the run started.
    answer: Option<String>,
}

impl Encoder for ThreadItems {
    fn open(&mut self, out: &mut Frames) {
        for event in self.head.drain(..) {
            out.data(&event);
        }
        out.data(&json!({"type": "stream_options", "stream_options": {"allow_cancel": true}}));
    }

    fn event(&mut self, event: SequencedEvent, out: &mut Frames) {
        match event.event {
            RunEvent::RunStarted {
                message_id,
                conversation_id,
                ..
            } => {
                let id = message_id.to_string();
                out.data(&json!({"type": "thread.item.added", "item": {"id": id, "thread_id": conversation_id,
                    "created_at": event.at, "type": "assistant_message", "content": []}}));
                out.data(
                    &json!({"type": "thread.item.updated", "item_id": id, "update": {
                    "type": "assistant_message.content_part.added", "content_index": 0,
                    "content": {"type": "output_text", "text": "", "annotations": []}}}),
                );
                self.answer = Some(id);
            }
            RunEvent::MessageDelta { text } => {
                if let Some(id) = &self.answer {
                    out.data(&json!({"type": "thread.item.updated", "item_id": id, "update": {
                        "type": "assistant_message.content_part.text_delta", "content_index": 0, "delta": text}}));
                }
            }
            RunEvent::ToolStarted { name, .. } => {
                out.data(&json!({"type": "progress_update", "text": format!("Using {name}…")}));
            }
            RunEvent::ApprovalRequired { tool, .. } => {
                out.data(&json!({"type": "notice", "level": "info",
                    "message": format!("`{tool}` waits for approval before it runs.")}));
            }
            RunEvent::MessageCompleted { message } => {
                let id = message.id.to_string();
                let text = content_text(&message.content);
                out.data(
                    &json!({"type": "thread.item.updated", "item_id": id, "update": {
                    "type": "assistant_message.content_part.done", "content_index": 0,
                    "content": {"type": "output_text", "text": text, "annotations": []}}}),
                );
                out.data(&json!({"type": "thread.item.done", "item": item(&message)}));
            }
            RunEvent::Error { message, .. } => {
                out.data(&json!({"type": "error", "code": "stream.error", "message": message, "allow_retry": true}));
            }
            RunEvent::ToolCompleted { .. }
            | RunEvent::Handoff { .. }
            | RunEvent::GuardrailTripped { .. }
            | RunEvent::RunCompleted { .. } => {}
        }
    }

    async fn close(&mut self, out: &mut Frames) {
        // The thread's title comes from its first message: tell the client.
        if let Ok(conversation) = self
            .state
            .service
            .get_conversation(&self.tenant, &self.conversation)
            .await
        {
            out.data(&json!({"type": "thread.updated", "thread": thread(&conversation, Vec::new(), false)}));
        }
    }
}

/// The operations on one thread; the dispatcher checks the thread is the caller's before
/// any of them runs ([`on_thread`] gets only the checked thread).
/// Every request type of the ChatKit protocol (some answered "not supported").
pub(crate) const REQUEST_TYPES: [&str; 16] = [
    "threads.create",
    "threads.list",
    "threads.add_user_message",
    "threads.retry_after_item",
    "threads.get_by_id",
    "items.list",
    "threads.update",
    "threads.delete",
    "threads.add_client_tool_output",
    "threads.add_structured_input",
    "threads.custom_action",
    "threads.sync_custom_action",
    "attachments.create",
    "attachments.delete",
    "input.transcribe",
    "items.feedback",
];

const THREAD_OPERATIONS: [&str; 6] = [
    "threads.add_user_message",
    "threads.retry_after_item",
    "threads.get_by_id",
    "items.list",
    "threads.update",
    "threads.delete",
];

/// An operation on a thread the caller may use.
async fn on_thread(
    state: &AppState,
    caller: &Caller,
    kind: &str,
    thread: Conversation,
    params: &Value,
    metadata: &Map<String, Value>,
) -> ApiResult<Response> {
    let service = &state.service;
    let tenant = &caller.tenant;
    let id = thread.id.clone();
    let json_response = |value: Value| Ok(Json(value).into_response());
    match kind {
        "threads.add_user_message" => {
            let text = input_text(params)?;
            let started = match state
                .runner
                .start(caller.turn(&id, Input::Send { text }, metadata))
                .await
            {
                Ok(started) => started,
                // People handle the thread: the message waits for them, no answer streams.
                Err(Error::ForPeople { message }) => {
                    let head = vec![
                        json!({"type": "thread.item.done", "item": item(&message)}),
                        json!({"type": "notice", "level": "info",
                            "message": "A person from the team handles this conversation and answers here."}),
                    ];
                    return Ok(stream(
                        state.clone(),
                        tenant.clone(),
                        id,
                        head,
                        Follower::finished(Vec::new(), 0),
                    ));
                }
                Err(other) => return Err(other.into()),
            };
            let head =
                vec![json!({"type": "thread.item.done", "item": item(&started.user_message)})];
            Ok(stream(
                state.clone(),
                tenant.clone(),
                id,
                head,
                caller.events(state, &thread, started.events).await?,
            ))
        }
        "threads.retry_after_item" => {
            let message = MessageId::parse(param(params, "item_id")?)
                .map_err(|_| Error::NotFound { resource: "item" })?;
            let started = state
                .runner
                .start(caller.turn(&id, Input::Regenerate { message }, metadata))
                .await?;
            Ok(stream(
                state.clone(),
                tenant.clone(),
                id,
                Vec::new(),
                caller.events(state, &thread, started.events).await?,
            ))
        }
        "threads.get_by_id" => json_response(thread_with_items(service, tenant, &thread).await?),
        "items.list" => {
            let newest_first = params["order"].as_str().unwrap_or("desc") == "desc";
            let limit = params["limit"]
                .as_u64()
                .map(|l| l.min(100) as u32)
                .unwrap_or(DEFAULT_PAGE);
            let after_seq = match params["after"].as_str() {
                Some(after) => {
                    let after = MessageId::parse(after)
                        .map_err(|_| Error::invalid("params.after", "is not an item id"))?;
                    Some(service.get_message(tenant, &id, &after).await?.seq)
                }
                None => None,
            };
            let (page, more) = service
                .branch_page(tenant, &id, newest_first, Some(limit), after_seq)
                .await?;
            let data: Vec<Value> = page.iter().map(|m| item(&m.message)).collect();
            let mut body = json!({"data": data, "has_more": more});
            if more {
                body["after"] = json!(page.last().map(|m| m.message.id.clone()));
            }
            json_response(body)
        }
        "threads.update" => {
            let title = param(params, "title")?.to_owned();
            let conversation = service
                .update_conversation(
                    tenant,
                    &id,
                    UpdateConversation {
                        title: Some(Some(title)),
                        archived: None,
                        metadata: None,
                        active_message_id: None,
                    },
                )
                .await?;
            json_response(thread_with_items(service, tenant, &conversation).await?)
        }
        "threads.delete" => {
            service.delete_conversation(tenant, &id, false).await?;
            json_response(json!({}))
        }
        other => Err(ApiError(Error::invalid(
            "type",
            format!("`{other}` is not a thread operation"),
        ))),
    }
}
