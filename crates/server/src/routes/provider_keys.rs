//! Model provider keys a tenant brings (`/api/v1/provider-keys`): set, list by hint,
//! delete. A key is sealed before it is stored and never returned.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use frontdesk_core::credentials::CredentialInfo;
use frontdesk_core::Error;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::auth::SecretKeyAuth;
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::routes::ListPage;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/provider-keys", get(list_provider_keys))
        .route(
            "/api/v1/provider-keys/{provider}",
            put(put_provider_key).delete(delete_provider_key),
        )
}

/// A provider key to store.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutProviderKey {
    #[schema(value_type = String)]
    pub api_key: SecretString,
}

/// Stores the tenant's own key for a provider (`openai`, `anthropic`, or one the operator
/// declared); the tenant's turns on that provider use it instead of the operator's.
#[utoipa::path(put, path = "/api/v1/provider-keys/{provider}", tag = "provider-keys", security(("secret_key" = [])),
    params(("provider" = String, Path, description = "provider name, as in `provider/model`")),
    request_body = PutProviderKey,
    responses((status = 200, body = CredentialInfo), (status = 404, description = "no such provider"),
              (status = 409, description = "the server has no master key"), (status = 422)))]
pub async fn put_provider_key(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(provider): Path<String>,
    JsonBody(input): JsonBody<PutProviderKey>,
) -> ApiResult<Json<CredentialInfo>> {
    if !state.runner.accepts_tenant_key(&provider) {
        return Err(ApiError(Error::NotFound {
            resource: "provider",
        }));
    }
    Ok(Json(
        state
            .service
            .put_provider_key(&auth.tenant, &provider, input.api_key.expose_secret())
            .await?,
    ))
}

/// Lists the tenant's provider keys: provider and hint only.
#[utoipa::path(get, path = "/api/v1/provider-keys", tag = "provider-keys", security(("secret_key" = [])),
    responses((status = 200, body = ListPage<CredentialInfo>)))]
pub async fn list_provider_keys(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
) -> ApiResult<Json<ListPage<CredentialInfo>>> {
    Ok(Json(ListPage::all(
        state.service.list_provider_keys(&auth.tenant).await?,
    )))
}

/// Deletes the tenant's key for a provider; its turns go back to the operator's key.
#[utoipa::path(delete, path = "/api/v1/provider-keys/{provider}", tag = "provider-keys", security(("secret_key" = [])),
    params(("provider" = String, Path, description = "provider name")),
    responses((status = 204), (status = 404)))]
pub async fn delete_provider_key(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(provider): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .service
        .delete_provider_key(&auth.tenant, &provider)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
