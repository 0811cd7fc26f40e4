//! `/api/v1/knowledge-bases`: create, list, get (by id or name) and delete a tenant's
//! knowledge bases.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use frontdesk_core::knowledge::{KnowledgeBase, NewKnowledgeBase};

use super::ListPage;
use crate::auth::SecretKeyAuth;
use crate::error::{ApiResult, JsonBody};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/knowledge-bases",
            get(list_knowledge_bases).post(create_knowledge_base),
        )
        .route(
            "/api/v1/knowledge-bases/{kb}",
            get(get_knowledge_base).delete(delete_knowledge_base),
        )
}

/// Creates a knowledge base; its name is unique in the tenant.
#[utoipa::path(post, path = "/api/v1/knowledge-bases", tag = "knowledge", security(("secret_key" = [])),
    request_body = NewKnowledgeBase,
    responses((status = 201, body = KnowledgeBase), (status = 409, description = "name taken, or too many"), (status = 422)))]
pub async fn create_knowledge_base(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    JsonBody(new): JsonBody<NewKnowledgeBase>,
) -> ApiResult<(StatusCode, Json<KnowledgeBase>)> {
    let kb = state
        .service
        .create_knowledge_base(&auth.tenant, new)
        .await?;
    Ok((StatusCode::CREATED, Json(kb)))
}

/// Lists the tenant's knowledge bases, by name.
#[utoipa::path(get, path = "/api/v1/knowledge-bases", tag = "knowledge", security(("secret_key" = [])),
    responses((status = 200, body = ListPage<KnowledgeBase>)))]
pub async fn list_knowledge_bases(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
) -> ApiResult<Json<ListPage<KnowledgeBase>>> {
    Ok(Json(ListPage::all(
        state.service.list_knowledge_bases(&auth.tenant).await?,
    )))
}

/// Gets a knowledge base by id (`kb_…`) or name.
#[utoipa::path(get, path = "/api/v1/knowledge-bases/{kb}", tag = "knowledge", security(("secret_key" = [])),
    params(("kb" = String, Path, description = "knowledge base id or name")),
    responses((status = 200, body = KnowledgeBase), (status = 404)))]
pub async fn get_knowledge_base(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(kb): Path<String>,
) -> ApiResult<Json<KnowledgeBase>> {
    Ok(Json(
        state.service.get_knowledge_base(&auth.tenant, &kb).await?,
    ))
}

/// Deletes a knowledge base.
#[utoipa::path(delete, path = "/api/v1/knowledge-bases/{kb}", tag = "knowledge", security(("secret_key" = [])),
    params(("kb" = String, Path, description = "knowledge base id or name")),
    responses((status = 204), (status = 404)))]
pub async fn delete_knowledge_base(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(kb): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .service
        .delete_knowledge_base(&auth.tenant, &kb)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
