//! `/api/v1/usage`: tokens and cost per day, agent or model over a time range.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use frontdesk_core::time::Timestamp;
use frontdesk_core::usage::{UsageGroup, UsageReport};
use frontdesk_core::Error;
use serde::Deserialize;

use crate::auth::SecretKeyAuth;
use crate::error::{ApiError, ApiResult, Query};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/usage", get(usage))
}

/// The range and grouping of a report.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// Start (RFC 3339, inclusive); default: the start of this month (UTC).
    from: Option<String>,
    /// End (RFC 3339, exclusive); default: now.
    to: Option<String>,
    /// `day` (default), `agent` or `model`.
    group_by: Option<String>,
}

fn timestamp(field: &str, value: Option<&str>) -> ApiResult<Option<Timestamp>> {
    value
        .map(|v| {
            Timestamp::parse_rfc3339(v).ok_or_else(|| {
                ApiError(Error::invalid(
                    field,
                    format!("`{v}` is not an RFC 3339 time (2026-11-01T00:00:00Z)"),
                ))
            })
        })
        .transpose()
}

/// Tokens and cost (from the operator's price table) per day, agent or model.
#[utoipa::path(get, path = "/api/v1/usage", tag = "usage", security(("secret_key" = [])),
    params(UsageParams), responses((status = 200, body = UsageReport), (status = 422)))]
pub async fn usage(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Query(params): Query<UsageParams>,
) -> ApiResult<Json<UsageReport>> {
    let group = UsageGroup::parse(params.group_by.as_deref().unwrap_or("day"))?;
    let from = timestamp("from", params.from.as_deref())?;
    let to = timestamp("to", params.to.as_deref())?;
    Ok(Json(
        state
            .service
            .usage(&auth.tenant, from, to, group, &state.config.prices)
            .await?,
    ))
}
