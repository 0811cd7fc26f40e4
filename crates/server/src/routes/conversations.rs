//! `/api/v1/conversations`: list and search, create, get with messages, update, delete
//! (soft, or `?purge=true`), export as JSON or Markdown.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use frontdesk_core::conversation::{BranchMessage, Conversation, Cursor, Message};
use frontdesk_core::id::ConversationId;
use frontdesk_core::service::{
    render_markdown, ConversationExport, ListConversations, NewConversation, UpdateConversation,
};
use frontdesk_core::Error;
use serde::{Deserialize, Serialize};

use super::ListPage;
use crate::auth::SecretKeyAuth;
use crate::error::{path_id, ApiError, ApiResult, JsonBody, Query};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/conversations",
            get(list_conversations).post(create_conversation),
        )
        .route(
            "/api/v1/conversations/{conversation}",
            get(get_conversation)
                .patch(update_conversation)
                .delete(delete_conversation),
        )
        .route(
            "/api/v1/conversations/{conversation}/messages",
            get(list_messages),
        )
        .route(
            "/api/v1/conversations/{conversation}/export",
            get(export_conversation),
        )
}

fn conversation_id(value: &str) -> ApiResult<ConversationId> {
    path_id(value, ConversationId::parse, "conversation")
}

/// Filters of the conversation list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only conversations with this agent (id or slug).
    agent: Option<String>,
    /// `false` (default): active ones; `true`: archived ones; `all`: both.
    archived: Option<String>,
    /// Only this end user's (or visitor's) conversations.
    end_user_id: Option<String>,
    /// Full-text search over titles and message text.
    q: Option<String>,
    /// `true`: only conversations waiting for a person, the longest waiting first.
    waiting: Option<bool>,
    /// Page size, 1 to the server's maximum (default 20).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Lists conversations, most recent activity first.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations", security(("secret_key" = [])),
    params(ListParams), responses((status = 200, body = ListPage<Conversation>), (status = 400), (status = 422)))]
pub async fn list_conversations(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<ListPage<Conversation>>> {
    let archived = match params.archived.as_deref() {
        None | Some("false") => Some(false),
        Some("true") => Some(true),
        Some("all") => None,
        Some(other) => {
            return Err(ApiError(Error::invalid(
                "archived",
                format!("`{other}` is not one of true, false, all"),
            )));
        }
    };
    let page = state
        .service
        .list_conversations(
            &auth.tenant,
            ListConversations {
                agent: params.agent,
                archived,
                end_user_id: params.end_user_id,
                q: params.q,
                waiting: params.waiting.unwrap_or(false),
                limit: params.limit,
                cursor: params.cursor,
                ..Default::default()
            },
        )
        .await?;
    let next_cursor = page.next.map(|c| c.encode());
    Ok(Json(ListPage {
        has_more: next_cursor.is_some(),
        data: page.items,
        next_cursor,
    }))
}

/// Creates an empty conversation with an agent.
#[utoipa::path(post, path = "/api/v1/conversations", tag = "conversations", security(("secret_key" = [])),
    request_body = NewConversation, responses((status = 201, body = Conversation), (status = 404, description = "no such agent"), (status = 422)))]
pub async fn create_conversation(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    JsonBody(input): JsonBody<NewConversation>,
) -> ApiResult<(StatusCode, Json<Conversation>)> {
    Ok((
        StatusCode::CREATED,
        Json(
            state
                .service
                .create_conversation(&auth.tenant, input)
                .await?,
        ),
    ))
}

/// Paging of a conversation's messages.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessageParams {
    /// `asc` (oldest first, default) or `desc` (newest first).
    order: Option<String>,
    /// Messages per page, 1 to the server's maximum (default 20).
    limit: Option<u32>,
    /// `next_cursor` of the previous page of messages.
    cursor: Option<String>,
}

struct MessagePaging {
    newest_first: bool,
    limit: Option<u32>,
    after_seq: Option<i64>,
}

impl MessageParams {
    fn parse(self) -> ApiResult<MessagePaging> {
        let newest_first = match self.order.as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(ApiError(Error::invalid(
                    "order",
                    format!("`{other}` is not one of asc, desc"),
                )))
            }
        };
        let after_seq = self
            .cursor
            .as_deref()
            .map(Cursor::decode)
            .transpose()?
            .map(|c| c.sort);
        Ok(MessagePaging {
            newest_first,
            limit: self.limit,
            after_seq,
        })
    }
}

async fn message_page(
    state: &AppState,
    auth: &SecretKeyAuth,
    conversation: &ConversationId,
    paging: MessagePaging,
) -> ApiResult<ListPage<Message>> {
    let (data, has_more) = state
        .service
        .list_messages(
            &auth.tenant,
            conversation,
            paging.newest_first,
            paging.limit,
            paging.after_seq,
        )
        .await?;
    let next_cursor = if has_more {
        data.last().map(|m| {
            Cursor {
                sort: m.seq,
                id: m.id.as_str().to_owned(),
            }
            .encode()
        })
    } else {
        None
    };
    Ok(ListPage {
        data,
        next_cursor,
        has_more,
    })
}

/// A conversation with a page of the messages on its active branch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConversationWithMessages {
    #[serde(flatten)]
    pub conversation: Conversation,
    /// The active branch: each message with `sibling_ids` when it has siblings (other
    /// answers to the same message, other versions of an edited one).
    pub messages: ListPage<BranchMessage>,
}

/// Gets a conversation with a page of its active branch (`order=desc&limit=50` for the
/// latest 50). Switch branches with `PATCH {"active_message_id": …}`.
#[utoipa::path(get, path = "/api/v1/conversations/{conversation}", tag = "conversations", security(("secret_key" = [])),
    params(("conversation" = String, Path, description = "conversation id"), MessageParams),
    responses((status = 200, body = ConversationWithMessages), (status = 404)))]
pub async fn get_conversation(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(conversation): Path<String>,
    Query(params): Query<MessageParams>,
) -> ApiResult<Json<ConversationWithMessages>> {
    let id = conversation_id(&conversation)?;
    let paging = params.parse()?;
    let conversation = state.service.get_conversation(&auth.tenant, &id).await?;
    let (data, has_more) = state
        .service
        .branch_page(
            &auth.tenant,
            &id,
            paging.newest_first,
            paging.limit,
            paging.after_seq,
        )
        .await?;
    let next_cursor = has_more.then(|| data.last()).flatten().map(|m| {
        Cursor {
            sort: m.message.seq,
            id: m.message.id.as_str().to_owned(),
        }
        .encode()
    });
    Ok(Json(ConversationWithMessages {
        conversation,
        messages: ListPage {
            data,
            next_cursor,
            has_more,
        },
    }))
}

/// Lists all of a conversation's messages in order of arrival, every branch included.
#[utoipa::path(get, path = "/api/v1/conversations/{conversation}/messages", tag = "conversations",
    security(("secret_key" = [])),
    params(("conversation" = String, Path, description = "conversation id"), MessageParams),
    responses((status = 200, body = ListPage<Message>), (status = 404)))]
pub async fn list_messages(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(conversation): Path<String>,
    Query(params): Query<MessageParams>,
) -> ApiResult<Json<ListPage<Message>>> {
    let id = conversation_id(&conversation)?;
    Ok(Json(
        message_page(&state, &auth, &id, params.parse()?).await?,
    ))
}

/// Changes a conversation's title, archived flag or metadata.
#[utoipa::path(patch, path = "/api/v1/conversations/{conversation}", tag = "conversations", security(("secret_key" = [])),
    params(("conversation" = String, Path, description = "conversation id")),
    request_body = UpdateConversation, responses((status = 200, body = Conversation), (status = 404), (status = 422)))]
pub async fn update_conversation(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(conversation): Path<String>,
    JsonBody(input): JsonBody<UpdateConversation>,
) -> ApiResult<Json<Conversation>> {
    let id = conversation_id(&conversation)?;
    Ok(Json(
        state
            .service
            .update_conversation(&auth.tenant, &id, input)
            .await?,
    ))
}

/// Whether a delete removes everything for good.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// `true`: remove the conversation and all its messages permanently.
    #[serde(default)]
    purge: bool,
}

/// Deletes a conversation: hidden at once, or with `purge=true` removed permanently.
#[utoipa::path(delete, path = "/api/v1/conversations/{conversation}", tag = "conversations", security(("secret_key" = [])),
    params(("conversation" = String, Path, description = "conversation id"), DeleteParams),
    responses((status = 204), (status = 404)))]
pub async fn delete_conversation(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(conversation): Path<String>,
    Query(params): Query<DeleteParams>,
) -> ApiResult<StatusCode> {
    let id = conversation_id(&conversation)?;
    state
        .service
        .delete_conversation(&auth.tenant, &id, params.purge)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The export format.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `json` (default) or `markdown`.
    format: Option<String>,
}

/// Exports a whole conversation as JSON or Markdown (a download).
#[utoipa::path(get, path = "/api/v1/conversations/{conversation}/export", tag = "conversations",
    security(("secret_key" = [])),
    params(("conversation" = String, Path, description = "conversation id"), ExportParams),
    responses((status = 200, description = "the conversation as JSON (default) or Markdown",
               content((ConversationExport = "application/json"), (String = "text/markdown"))),
              (status = 404)))]
pub async fn export_conversation(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(conversation): Path<String>,
    Query(params): Query<ExportParams>,
) -> ApiResult<Response> {
    let id = conversation_id(&conversation)?;
    let markdown = match params.format.as_deref() {
        None | Some("json") => false,
        Some("markdown") | Some("md") => true,
        Some(other) => {
            return Err(ApiError(Error::invalid(
                "format",
                format!("`{other}` is not one of json, markdown"),
            )))
        }
    };
    let export = state.service.export_conversation(&auth.tenant, &id).await?;
    let response = if markdown {
        let disposition = format!("attachment; filename=\"{id}.md\"");
        (
            [
                (
                    header::CONTENT_TYPE,
                    "text/markdown; charset=utf-8".to_owned(),
                ),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            render_markdown(&export),
        )
            .into_response()
    } else {
        let disposition = format!("attachment; filename=\"{id}.json\"");
        ([(header::CONTENT_DISPOSITION, disposition)], Json(export)).into_response()
    };
    Ok(response)
}
