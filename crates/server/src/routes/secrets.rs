//! Tenant secrets for tools (`/api/v1/secrets`): values that webhook and MCP headers use as
//! `{{secrets.NAME}}`, stored sealed, listed by hint, never returned. Also the webhook
//! signing secret tenants verify `X-Frontdesk-Signature` with, and refreshing MCP tool lists.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use frontdesk_core::service::{SecretInfo, DEFAULT_OVERLAP_SECS};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::auth::SecretKeyAuth;
use crate::error::{ApiResult, JsonBody, Query};
use crate::routes::ListPage;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/secrets", get(list_secrets))
        .route(
            "/api/v1/secrets/{name}",
            put(put_secret).delete(delete_secret),
        )
        .route("/api/v1/webhook-signing-secret", get(get_signing_secret))
        .route(
            "/api/v1/webhook-signing-secret/rotate",
            post(rotate_signing_secret),
        )
        .route("/api/v1/mcp/refresh", post(refresh_mcp))
        .route("/api/v1/widget-identity-secret", get(get_identity_secret))
        .route(
            "/api/v1/widget-identity-secret/rotate",
            post(rotate_identity_secret),
        )
}

/// A secret's value.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSecret {
    #[schema(value_type = String)]
    pub value: SecretString,
}

/// Stores (or replaces) a secret; tool headers name it as `{{secrets.NAME}}`.
#[utoipa::path(put, path = "/api/v1/secrets/{name}", tag = "tools", security(("secret_key" = [])),
    params(("name" = String, Path, description = "letters, digits, `_` and `-`")),
    request_body = PutSecret,
    responses((status = 200, body = SecretInfo), (status = 409, description = "the server has no master key"),
              (status = 422)))]
pub async fn put_secret(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(name): Path<String>,
    JsonBody(input): JsonBody<PutSecret>,
) -> ApiResult<Json<SecretInfo>> {
    Ok(Json(
        state
            .service
            .put_secret(&auth.tenant, &name, input.value.expose_secret())
            .await?,
    ))
}

/// Lists the tenant's secrets: names and hints only.
#[utoipa::path(get, path = "/api/v1/secrets", tag = "tools", security(("secret_key" = [])),
    responses((status = 200, body = ListPage<SecretInfo>)))]
pub async fn list_secrets(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
) -> ApiResult<Json<ListPage<SecretInfo>>> {
    Ok(Json(ListPage::all(
        state.service.list_secrets(&auth.tenant).await?,
    )))
}

/// Deletes a secret.
#[utoipa::path(delete, path = "/api/v1/secrets/{name}", tag = "tools", security(("secret_key" = [])),
    params(("name" = String, Path, description = "secret name")),
    responses((status = 204), (status = 404)))]
pub async fn delete_secret(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.service.delete_secret(&auth.tenant, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The secret webhook requests are signed with.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SigningSecret {
    /// `whsec_…`: the HMAC-SHA256 key of `X-Frontdesk-Signature`.
    pub secret: String,
    /// How receivers check a request.
    pub scheme: &'static str,
}

fn signing(secret: &SecretString) -> SigningSecret {
    SigningSecret {
        secret: secret.expose_secret().to_owned(),
        scheme: "X-Frontdesk-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\"> (GET/DELETE: the raw query string in place of the body)",
    }
}

/// The tenant's webhook signing secret (made on first use).
#[utoipa::path(get, path = "/api/v1/webhook-signing-secret", tag = "tools", security(("secret_key" = [])),
    responses((status = 200, body = SigningSecret), (status = 409, description = "the server has no master key")))]
pub async fn get_signing_secret(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
) -> ApiResult<Json<SigningSecret>> {
    let secret = state.service.webhook_signing_secret(&auth.tenant).await?;
    Ok(Json(signing(&secret)))
}

/// How long the replaced secret still counts after a rotation.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RotateParams {
    /// Seconds the old secret still counts (default a day, at most a week; 0: not at all).
    overlap_seconds: Option<u64>,
}

impl RotateParams {
    fn overlap(&self) -> u64 {
        self.overlap_seconds.unwrap_or(DEFAULT_OVERLAP_SECS)
    }
}

/// Replaces the webhook signing secret: requests are signed with the new one from now on,
/// and with the old one too while the overlap lasts (`t=…,v1=<new>,v2=<new>,v1=<old>,v2=<old>`).
#[utoipa::path(post, path = "/api/v1/webhook-signing-secret/rotate", tag = "tools", security(("secret_key" = [])),
    params(RotateParams),
    responses((status = 200, body = SigningSecret), (status = 422)))]
pub async fn rotate_signing_secret(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Query(params): Query<RotateParams>,
) -> ApiResult<Json<SigningSecret>> {
    let secret = state
        .service
        .rotate_webhook_signing_secret(&auth.tenant, params.overlap())
        .await?;
    Ok(Json(signing(&secret)))
}

/// Forgets the cached tool lists of the tenant's MCP servers: the next run lists them again.
#[utoipa::path(post, path = "/api/v1/mcp/refresh", tag = "tools", security(("secret_key" = [])),
    responses((status = 204)))]
pub async fn refresh_mcp(State(state): State<AppState>, auth: SecretKeyAuth) -> StatusCode {
    state.runner.refresh_mcp_tools(&auth.tenant);
    StatusCode::NO_CONTENT
}

/// The secret a tenant signs its users' widget tokens with.
#[derive(Serialize, utoipa::ToSchema)]
pub struct IdentitySecret {
    pub secret: String,
    /// How to make a user token.
    pub scheme: &'static str,
}

fn identity(secret: &SecretString) -> IdentitySecret {
    IdentitySecret {
        secret: secret.expose_secret().to_owned(),
        scheme: "a JWT signed HS256 with this secret, claims {\"sub\": <your user id>, \"exp\": <unix seconds>}; pass it to Frontdesk.identify(token)",
    }
}

/// The tenant's widget identity secret (made on first use): sign your users' tokens with it.
#[utoipa::path(get, path = "/api/v1/widget-identity-secret", tag = "tools", security(("secret_key" = [])),
    responses((status = 200, body = IdentitySecret)))]
pub async fn get_identity_secret(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
) -> ApiResult<Json<IdentitySecret>> {
    let secret = state.service.widget_identity_secret(&auth.tenant).await?;
    Ok(Json(identity(&secret)))
}

/// Replaces the widget identity secret; user tokens signed with the old one still count while
/// the overlap lasts.
#[utoipa::path(post, path = "/api/v1/widget-identity-secret/rotate", tag = "tools", security(("secret_key" = [])),
    params(RotateParams),
    responses((status = 200, body = IdentitySecret), (status = 422)))]
pub async fn rotate_identity_secret(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Query(params): Query<RotateParams>,
) -> ApiResult<Json<IdentitySecret>> {
    let secret = state
        .service
        .rotate_widget_identity_secret(&auth.tenant, params.overlap())
        .await?;
    Ok(Json(identity(&secret)))
}
