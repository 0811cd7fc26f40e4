//! The widget's API (`/widget/v1/…`): a publishable key and an allowed `Origin` (or, on an
//! agent's public hosted page, this server's own origin) open a session and get a visitor
//! token; with it the page lists and reads its visitor's
//! conversations, starts them, sends messages (SSE like the native API), follows, cancels
//! and regenerates runs, and answers approvals meant for the end user. Another visitor's
//! conversation or run is a 404. Every response carries CORS headers for the page's origin
//! (the origin itself is checked against the key on every request); each visitor is rate
//! limited on its own, beside its key (or hosted page), and each client address on its own.

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use frontdesk_agents::{ApprovalDecision, Decided, Input, TurnOptions, TurnRequest};
use frontdesk_core::agent::{AgentRef, WidgetSettings};
use frontdesk_core::conversation::{BranchMessage, Conversation};
use frontdesk_core::end_user::EndUserView;
use frontdesk_core::id::{ConversationId, MessageId, RunId, TenantId};
use frontdesk_core::key::Origin;
use frontdesk_core::policy::Approver;
use frontdesk_core::run::DecidedBy;
use frontdesk_core::service::{
    ListConversations, NewConversation, PageOrigin, Visitor, WidgetEntry, WidgetSession,
};
use frontdesk_core::Error;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{path_id, ApiError, ApiResult, JsonBody, Query};
use crate::AppState;

/// Requests per minute of one visitor.
const VISITOR_PER_MINUTE: u32 = 60;

pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(super::widget_pages::routes())
        .merge(api_routes(state))
}

fn api_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/widget/v1/session", post(open_session).options(preflight))
        .route(
            "/widget/v1/conversations",
            get(list).post(create).options(preflight),
        )
        .route(
            "/widget/v1/conversations/{conversation}",
            get(read).options(preflight),
        )
        .route(
            "/widget/v1/conversations/{conversation}/messages",
            post(send).options(preflight),
        )
        .route(
            "/widget/v1/conversations/{conversation}/messages/{message}/regenerate",
            post(regenerate).options(preflight),
        )
        .route(
            "/widget/v1/conversations/{conversation}/events",
            get(super::widget_handoff::conversation_events).options(preflight),
        )
        .route(
            "/widget/v1/conversations/{conversation}/human",
            post(super::widget_handoff::ask_for_human).options(preflight),
        )
        .route(
            "/widget/v1/runs/{run}/events",
            get(events).options(preflight),
        )
        .route(
            "/widget/v1/runs/{run}/cancel",
            post(cancel).options(preflight),
        )
        .route(
            "/widget/v1/runs/{run}/approvals/{call_id}",
            post(decide).options(preflight),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::routes::client_limits::per_address,
        ))
        .layer(axum::middleware::from_fn(cors))
}

/// A CORS preflight: the headers come from [`cors`].
async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// CORS for the page that embeds the widget: preflights answer at once; responses name the
/// request's origin (whether it may use the key is checked by the handlers).
async fn cors(request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut response = next.run(request).await;
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, x-frontdesk-key, last-event-id"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    response
}

fn origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
}

/// This server's own origin: that of `public_url`, else the request's `Host` over plain
/// HTTP (`X-Forwarded-Proto`, when a trusted proxy sets it, names the scheme the browser used).
fn own_origin(state: &AppState, headers: &HeaderMap) -> Option<Origin> {
    let base = match &state.config.public_url {
        Some(url) => url.clone(),
        None => {
            let forwarded = state
                .config
                .limits
                .trust_forwarded_for
                .then(|| headers.get("x-forwarded-proto")?.to_str().ok())
                .flatten()
                .map(|proto| proto.split(',').next().unwrap_or("").trim());
            let scheme = match forwarded {
                Some("https") => "https",
                _ => "http",
            };
            format!("{scheme}://{}", headers.get(header::HOST)?.to_str().ok()?)
        }
    };
    let (scheme, rest) = base.split_once("://")?;
    let authority = rest.split('/').next()?;
    Origin::parse(&format!("{scheme}://{authority}")).ok()
}

/// The request's `Origin`, and whether it is this server's (a hosted page). Browsers send no
/// `Origin` on same-origin reads: without one, a `session` request has none, anything else is
/// taken as coming from this server's own pages.
fn page_origin(state: &AppState, headers: &HeaderMap, session: bool) -> PageOrigin {
    let own = own_origin(state, headers);
    match origin(headers) {
        Some(given) => PageOrigin {
            origin: Some(given.to_owned()),
            own: Origin::parse(given)
                .ok()
                .is_some_and(|given| own.is_some_and(|own| own == given)),
        },
        None if session => PageOrigin {
            origin: None,
            own: false,
        },
        None => PageOrigin {
            own: own.is_some(),
            origin: own.map(|own| own.as_str().to_owned()),
        },
    }
}

/// The visitor of a widget request, checked and rate limited.
pub(crate) async fn visitor(state: &AppState, headers: &HeaderMap) -> Result<Visitor, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| Error::Unauthenticated {
            code: "missing_visitor_token",
            message:
                "send the visitor token from POST /widget/v1/session as `Authorization: Bearer …`"
                    .into(),
        })?;
    let visitor = state
        .service
        .widget_visitor(token.trim(), &page_origin(state, headers, false))
        .await?;
    let shared = visitor
        .key
        .as_ref()
        .and_then(|key| key.rate_limit_per_minute)
        .unwrap_or(state.config.limits.rate_limit_per_minute);
    for (bucket, per_minute) in [
        (
            format!("visitor:{}", visitor.claims.visitor),
            VISITOR_PER_MINUTE,
        ),
        (visitor.shared_bucket(), shared),
    ] {
        if let Err(retry_after_secs) = state.limiter.check(&bucket, per_minute) {
            return Err(ApiError(Error::RateLimited {
                retry_after_secs,
                message: format!("too many requests; retry in {retry_after_secs} s"),
            }));
        }
    }
    Ok(visitor)
}

/// A conversation of this visitor with an agent it may use; anything else is a 404.
pub(crate) async fn own_conversation(
    state: &AppState,
    visitor: &Visitor,
    id: &str,
) -> Result<Conversation, ApiError> {
    let id = path_id(id, ConversationId::parse, "conversation")?;
    Ok(state.service.visitor_conversation(visitor, &id).await?)
}

/// A run in one of this visitor's conversations, with that conversation.
async fn own_run(
    state: &AppState,
    visitor: &Visitor,
    run: &str,
) -> Result<(RunId, Conversation), ApiError> {
    let run = path_id(run, RunId::parse, "run")?;
    let conversation = state
        .runner
        .run_conversation(visitor.tenant(), &run)
        .await?;
    let conversation = own_conversation(state, visitor, conversation.as_str())
        .await
        .map_err(|_| ApiError(Error::NotFound { resource: "run" }))?;
    Ok((run, conversation))
}

/// What the visitor may see of a conversation's runs and messages (its agent's settings;
/// the default view when the agent is gone).
pub(crate) async fn view_of(
    state: &AppState,
    conversation: &Conversation,
) -> Result<EndUserView, ApiError> {
    match state
        .service
        .get_agent(
            &conversation.tenant_id,
            &frontdesk_core::agent::AgentRef::Id(conversation.agent_id.clone()),
        )
        .await
    {
        Ok(agent) => Ok(EndUserView::of(&agent)),
        Err(Error::NotFound { .. }) => Ok(EndUserView::default()),
        Err(other) => Err(ApiError(other)),
    }
}

/// A run's events as the visitor may see them, streamed or answered as the client asked.
async fn respond_to_visitor(
    view: EndUserView,
    run: RunId,
    conversation: frontdesk_core::id::ConversationId,
    events: frontdesk_agents::Follower,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let events = events.map(move |event| view.event(event));
    crate::routes::turns::respond_events(run, conversation, events, headers).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// The agent's slug.
    pub agent: String,
    /// The tenant of a hosted page (`/c/{tenant}/{agent}`), which sends no key.
    #[serde(default)]
    pub tenant: Option<String>,
    /// A JWT (HS256, `sub`, `exp`) the tenant signed with its widget identity secret.
    #[serde(default)]
    pub user_token: Option<String>,
    /// The token of an earlier session in this browser, to stay the same visitor.
    #[serde(default)]
    pub visitor_token: Option<String>,
}

/// What the widget shows of its agent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WidgetAgent {
    pub slug: String,
    pub name: String,
    pub widget: WidgetSettings,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionResponse {
    #[serde(flatten)]
    pub session: WidgetSession,
    pub agent: WidgetAgent,
}

/// What a session request can prove before its body is read: a presented publishable key
/// exists and works, and a request without one (a hosted page's, which names its tenant in
/// the body) comes from a page on this server. Anything else is refused unread.
pub struct KnownKey;

impl axum::extract::FromRequestParts<AppState> for KnownKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match parts
            .headers
            .get("x-frontdesk-key")
            .and_then(|v| v.to_str().ok())
        {
            Some(key) => {
                state.service.authenticate(key).await?;
            }
            None => page_origin(state, &parts.headers, true).check_own()?,
        }
        Ok(KnownKey)
    }
}

/// Opens a widget session (`X-Frontdesk-Key: fd_pk_…`, from a page on an allowed origin;
/// or `tenant` and no key from the agent's public hosted page on this server).
#[utoipa::path(post, path = "/widget/v1/session", tag = "widget", security(("publishable_key" = []), ()),
    request_body = SessionRequest,
    responses((status = 200, body = SessionResponse),
              (status = 403, description = "the page's origin may not use the key (or a hosted page's session from elsewhere)", body = crate::openapi::ErrorBody),
              (status = 404, description = "no such agent, or the key may not reach it", body = crate::openapi::ErrorBody)))]
pub async fn open_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    _key: KnownKey,
    JsonBody(body): JsonBody<SessionRequest>,
) -> ApiResult<Json<SessionResponse>> {
    let key = headers.get("x-frontdesk-key").and_then(|v| v.to_str().ok());
    let tenant = match (&key, &body.tenant) {
        (None, Some(tenant)) => Some(path_id(tenant, TenantId::parse, "tenant")?),
        _ => None,
    };
    let entry = match (key, &tenant) {
        (Some(key), _) => WidgetEntry::Key(key),
        (None, Some(tenant)) => WidgetEntry::HostedPage(tenant),
        (None, None) => {
            return Err(ApiError(Error::Unauthenticated {
                code: "missing_api_key",
                message: "send the publishable key as `X-Frontdesk-Key: fd_pk_…`".into(),
            }))
        }
    };
    let session = state
        .service
        .open_widget_session(
            entry,
            &page_origin(&state, &headers, true),
            &body.agent,
            body.user_token.as_deref(),
            body.visitor_token.as_deref(),
        )
        .await?;
    let agent = session
        .agent
        .clone()
        .ok_or_else(|| Error::internal(std::io::Error::other("session without agent")))?;
    Ok(Json(SessionResponse {
        session,
        agent: WidgetAgent {
            slug: agent.spec.slug,
            name: agent.spec.name,
            widget: agent.spec.widget,
        },
    }))
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    cursor: Option<String>,
}

/// The visitor's conversations, most recent first.
#[utoipa::path(get, path = "/widget/v1/conversations", tag = "widget", security(("visitor_token" = [])),
    params(("agent" = Option<String>, Query, description = "only with this agent (slug)"),
           ("limit" = Option<u32>, Query, description = "page size (default 20, at most the server's `limits.max_page_size`)"),
           ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "`data`, `has_more`, `next_cursor`", body = Object)))]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<serde_json::Value>> {
    let visitor = visitor(&state, &headers).await?;
    let page = state
        .service
        .visitor_conversations(
            &visitor,
            ListConversations {
                agent: params.agent,
                limit: params.limit,
                cursor: params.cursor,
                archived: Some(false),
                ..ListConversations::default()
            },
        )
        .await?;
    Ok(Json(json!({
        "data": page.items.into_iter().map(for_visitor).collect::<Vec<_>>(),
        "has_more": page.next.is_some(),
        "next_cursor": page.next.map(|c| c.encode()),
    })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    agent: String,
}

/// Starts a conversation of the visitor with an agent its key allows.
#[utoipa::path(post, path = "/widget/v1/conversations", tag = "widget", security(("visitor_token" = [])),
    request_body = CreateBody,
    responses((status = 201, body = Conversation), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<(StatusCode, Json<Conversation>)> {
    let visitor = visitor(&state, &headers).await?;
    let agent = state
        .service
        .get_agent(visitor.tenant(), &AgentRef::parse(&body.agent)?)
        .await?;
    if !visitor.may_use(&agent) {
        return Err(ApiError(Error::NotFound { resource: "agent" }));
    }
    let conversation = state
        .service
        .create_conversation(
            visitor.tenant(),
            NewConversation {
                agent: agent.spec.slug,
                end_user_id: Some(visitor.claims.end_user.clone()),
                title: None,
                metadata: serde_json::Map::from_iter([("source".to_owned(), json!("widget"))]),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(for_visitor(conversation))))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WithMessages {
    #[serde(flatten)]
    conversation: Conversation,
    messages: Vec<BranchMessage>,
}

/// One of the visitor's conversations with its active branch (the latest 100 messages).
#[utoipa::path(get, path = "/widget/v1/conversations/{conversation}", tag = "widget", security(("visitor_token" = [])),
    params(("conversation" = String, Path, description = "conversation id")),
    responses((status = 200, body = WithMessages), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(conversation): Path<String>,
) -> ApiResult<Json<WithMessages>> {
    let visitor = visitor(&state, &headers).await?;
    let conversation = own_conversation(&state, &visitor, &conversation).await?;
    let (mut messages, _) = state
        .service
        .branch_page(visitor.tenant(), &conversation.id, true, Some(100), None)
        .await?;
    messages.reverse();
    let messages = view_of(&state, &conversation).await?.branch(messages);
    Ok(Json(WithMessages {
        conversation: for_visitor(conversation),
        messages,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    content: String,
    /// What the page says about this visit (the widget's `context` option): part of the run's
    /// context, under an identified user's signed claims.
    #[serde(default)]
    context: serde_json::Map<String, serde_json::Value>,
}

/// A conversation as its visitor sees it: without its metadata (the tenant's word about the
/// thread, its client or booking, is the run's context, not the visitor's to read).
fn for_visitor(mut conversation: Conversation) -> Conversation {
    conversation.metadata = serde_json::Map::new();
    // Who holds it shows by name and avatar, not by account.
    if let Some(assignee) = &mut conversation.assignee {
        assignee.id = String::new();
    }
    conversation
}

/// A turn of the visitor: the page's context beneath the conversation's metadata, the
/// identified user's signed claims over it.
fn visitor_turn(
    visitor: &Visitor,
    conversation: &frontdesk_core::id::ConversationId,
    input: Input,
    page: serde_json::Map<String, serde_json::Value>,
) -> TurnRequest {
    TurnRequest::on(visitor.tenant(), conversation, input).with_options(TurnOptions {
        context: visitor.claims.context.clone(),
        page_context: page,
        ..TurnOptions::default()
    })
}

/// Sends the visitor's message: SSE of the run with `Accept: text/event-stream`.
#[utoipa::path(post, path = "/widget/v1/conversations/{conversation}/messages", tag = "widget", security(("visitor_token" = [])),
    params(("conversation" = String, Path, description = "conversation id")),
    request_body = SendBody,
    responses((status = 200, description = "the run's events as the visitor may see them (SSE with `Accept: text/event-stream`), or the final message",
               content((Object = "application/json"), (String = "text/event-stream"))),
              (status = 202, description = "a person handles the conversation: the message waits for them (`{\"handler\": \"human\", \"message\"}`); no run started"),
              (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn send(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(conversation): Path<String>,
    JsonBody(body): JsonBody<SendBody>,
) -> ApiResult<Response> {
    let visitor = visitor(&state, &headers).await?;
    let conversation = own_conversation(&state, &visitor, &conversation).await?;
    let started = state
        .runner
        .start(visitor_turn(
            &visitor,
            &conversation.id,
            Input::Send { text: body.content },
            body.context,
        ))
        .await?;
    respond_to_visitor(
        view_of(&state, &conversation).await?,
        started.run_id,
        started.conversation_id,
        started.events,
        &headers,
    )
    .await
}

/// Another answer to a message of the visitor's conversation.
#[utoipa::path(post, path = "/widget/v1/conversations/{conversation}/messages/{message}/regenerate", tag = "widget", security(("visitor_token" = [])),
    params(("conversation" = String, Path, description = "conversation id"),
           ("message" = String, Path, description = "the answer to replace")),
    responses((status = 200, description = "as for sending a message",
               content((Object = "application/json"), (String = "text/event-stream"))),
              (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn regenerate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((conversation, message)): Path<(String, String)>,
) -> ApiResult<Response> {
    let visitor = visitor(&state, &headers).await?;
    let conversation = own_conversation(&state, &visitor, &conversation).await?;
    let message = path_id(&message, MessageId::parse, "message")?;
    let started = state
        .runner
        .start(visitor_turn(
            &visitor,
            &conversation.id,
            Input::Regenerate { message },
            Default::default(),
        ))
        .await?;
    respond_to_visitor(
        view_of(&state, &conversation).await?,
        started.run_id,
        started.conversation_id,
        started.events,
        &headers,
    )
    .await
}

/// Replays and follows a run of the visitor (`Last-Event-ID`), e.g. after a network drop.
#[utoipa::path(get, path = "/widget/v1/runs/{run}/events", tag = "widget", security(("visitor_token" = [])),
    params(("run" = String, Path, description = "run id"),
           ("Last-Event-ID" = Option<u64>, Header, description = "the last event seen")),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(run): Path<String>,
) -> ApiResult<Response> {
    let visitor = visitor(&state, &headers).await?;
    let (run, conversation) = own_run(&state, &visitor, &run).await?;
    let last = crate::routes::turns::last_event_id(&headers)?;
    let view = view_of(&state, &conversation).await?;
    let follower = state.runner.follow(visitor.tenant(), &run, last).await?;
    Ok(crate::routes::turns::sse(
        follower.map(move |event| view.event(event)),
    ))
}

/// Stops a run of the visitor (the stop button).
#[utoipa::path(post, path = "/widget/v1/runs/{run}/cancel", tag = "widget", security(("visitor_token" = [])),
    params(("run" = String, Path, description = "run id")),
    responses((status = 202, description = "`{run_id, status: cancelling}`", body = Object), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(run): Path<String>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let visitor = visitor(&state, &headers).await?;
    let (run, _) = own_run(&state, &visitor, &run).await?;
    match state.runner.cancel(visitor.tenant(), &run) {
        Err(Error::NotFound { .. }) => {
            state
                .runner
                .cancel_paused(visitor.tenant(), &run, DecidedBy::EndUser)
                .await?
        }
        other => other?,
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"run_id": run, "status": "cancelling"})),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    decision: String,
    #[serde(default)]
    reason: Option<String>,
}

/// The end user's answer to a call that waits for them (calls for staff are 403).
#[utoipa::path(post, path = "/widget/v1/runs/{run}/approvals/{call_id}", tag = "widget", security(("visitor_token" = [])),
    params(("run" = String, Path, description = "run id"),
           ("call_id" = String, Path, description = "the tool call waiting for the visitor")),
    request_body = DecisionBody,
    responses((status = 200, description = "the run resumes; as for sending a message", body = Object),
              (status = 403, description = "the call waits for staff, not the visitor", body = crate::openapi::ErrorBody),
              (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((run, call_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<DecisionBody>,
) -> ApiResult<Response> {
    let visitor = visitor(&state, &headers).await?;
    let (run, conversation) = own_run(&state, &visitor, &run).await?;
    let approve = match body.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => {
            return Err(ApiError(Error::invalid(
                "decision",
                "must be approve or reject",
            )))
        }
    };
    let decision = ApprovalDecision {
        approve,
        reason: body.reason,
        by: Approver::EndUser,
    };
    match state
        .runner
        .decide(visitor.tenant(), &run, &call_id, decision)
        .await?
    {
        Decided::Waiting { pending } => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"run_id": run, "status": "awaiting_approval", "pending": pending})),
        )
            .into_response()),
        Decided::Resumed {
            conversation_id,
            events,
        } => {
            let view = view_of(&state, &conversation).await?;
            respond_to_visitor(view, run, conversation_id, events, &headers).await
        }
    }
}
