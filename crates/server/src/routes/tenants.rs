//! `/api/v1/tenants`: the platform operator creates tenants (`FRONTDESK_ADMIN_TOKEN`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use frontdesk_core::service::{NewTenant, TenantCreated};
use frontdesk_core::tenant::{Role, Tenant, User};
use serde::Serialize;

use super::keys::CreatedKey;
use crate::auth::AdminAuth;
use crate::error::{ApiResult, JsonBody};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/tenants", post(create_tenant))
}

/// The owner made with a new tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedOwner {
    pub user: User,
    pub role: Role,
    /// Set when a new user was made: their generated password, shown once.
    pub password: Option<String>,
}

/// A new tenant, its owner and its first secret key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedTenant {
    pub tenant: Tenant,
    pub owner: Option<CreatedOwner>,
    pub secret_key: CreatedKey,
}

/// Creates a tenant with a first secret key and, given `owner_email`, its owner.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", security(("admin_token" = [])),
    request_body = NewTenant, responses((status = 201, body = CreatedTenant), (status = 401), (status = 403), (status = 422)))]
pub async fn create_tenant(
    State(state): State<AppState>,
    _admin: AdminAuth,
    JsonBody(input): JsonBody<NewTenant>,
) -> ApiResult<(StatusCode, Json<CreatedTenant>)> {
    let created = state.service.create_tenant(input).await?;
    Ok((StatusCode::CREATED, Json(CreatedTenant::from(created))))
}

impl From<TenantCreated> for CreatedTenant {
    fn from(created: TenantCreated) -> Self {
        let owner = created.owner.map(|owner| CreatedOwner {
            user: owner.user,
            role: owner.role,
            password: owner.generated_password,
        });
        let secret_key = CreatedKey {
            record: created.secret_key,
            key: created.secret.expose().to_owned(),
        };
        CreatedTenant {
            tenant: created.tenant,
            owner,
            secret_key,
        }
    }
}
