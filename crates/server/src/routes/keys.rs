//! `/api/v1/api-keys`: create (the key is shown once), list (never the key), revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use frontdesk_core::id::KeyId;
use frontdesk_core::key::ApiKey;
use frontdesk_core::service::NewKey;
use serde::Serialize;

use super::ListPage;
use crate::auth::SecretKeyAuth;
use crate::error::{path_id, ApiResult, JsonBody};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/api-keys", get(list_keys).post(create_key))
        .route("/api/v1/api-keys/{key}", delete(revoke_key))
}

/// A key just created: its record and, this once, the key itself.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub record: ApiKey,
    /// The key. It is shown only in this response; store it now.
    pub key: String,
}

/// Creates a secret or publishable key.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", security(("secret_key" = [])),
    request_body = NewKey, responses((status = 201, body = CreatedKey), (status = 422)))]
pub async fn create_key(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    JsonBody(input): JsonBody<NewKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let (record, secret) = state.service.create_key(&auth.tenant, input).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            record,
            key: secret.expose().to_owned(),
        }),
    ))
}

/// Lists the tenant's keys (prefixes only), newest first.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", security(("secret_key" = [])),
    responses((status = 200, body = ListPage<ApiKey>)))]
pub async fn list_keys(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
) -> ApiResult<Json<ListPage<ApiKey>>> {
    Ok(Json(ListPage::all(
        state.service.list_keys(&auth.tenant).await?,
    )))
}

/// Revokes a key at once. Revoking a revoked key changes nothing.
#[utoipa::path(delete, path = "/api/v1/api-keys/{key}", tag = "api-keys", security(("secret_key" = [])),
    params(("key" = String, Path, description = "key id (`key_…`)")),
    responses((status = 200, body = ApiKey), (status = 404)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(key): Path<String>,
) -> ApiResult<Json<ApiKey>> {
    let key = path_id(&key, KeyId::parse, "API key")?;
    Ok(Json(state.service.revoke_key(&auth.tenant, &key).await?))
}
