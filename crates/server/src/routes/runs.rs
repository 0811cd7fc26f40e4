//! Runs: `GET /api/v1/runs` lists the tenant's runs (`?status=awaiting_approval`: the paused
//! ones with the calls they wait on, newest first); `GET /api/v1/runs/{id}` is a run's trace (every model call, tool call, handoff,
//! guardrail and approval with inputs, outputs, tokens and timings) and the calls it waits
//! on; `POST /api/v1/runs/{id}/approvals/{call_id}` decides one of them, and when none is
//! left the run goes on, its events streamed like a turn's.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use frontdesk_agents::{pending_approvals, ApprovalDecision, Decided};
use frontdesk_core::conversation::Usage;
use frontdesk_core::id::{ConversationId, RunId};
use frontdesk_core::policy::Approver;
use frontdesk_core::run::{PendingApproval, RunEvent, RunStatus, RunStep};
use frontdesk_core::time::Timestamp;
use frontdesk_core::Error;
use serde::{Deserialize, Serialize};

use crate::auth::SecretKeyAuth;
use crate::error::{path_id, ApiError, ApiResult, JsonBody, Query};
use crate::routes::turns::respond_events;
use crate::routes::ListPage;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/runs", get(list_runs))
        .route("/api/v1/runs/{run}", get(get_run))
        .route("/api/v1/runs/{run}/approvals/{call_id}", post(decide))
}

/// A run as a trace.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunTrace {
    pub id: RunId,
    pub conversation_id: Option<ConversationId>,
    pub status: RunStatus,
    /// The agent the run started with.
    pub agent: Option<String>,
    pub model: Option<String>,
    pub usage: Usage,
    pub steps: Vec<RunStep>,
    /// Calls waiting for a decision (`status` is `awaiting_approval`).
    pub approvals: Vec<PendingApproval>,
    /// Why it failed (its `error` event), when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::routes::turns::RunError>,
    pub expires_at: Option<Timestamp>,
    pub created_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
}

/// Which runs to list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunListParams {
    /// Only runs in this state (`awaiting_approval`: the runs waiting for a person).
    status: Option<RunStatus>,
    /// How many, newest first (default 20, at most the server's page size).
    limit: Option<u32>,
}

/// A run in a list: its trace without the steps, and the calls it waits on.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunSummary {
    pub id: RunId,
    pub conversation_id: ConversationId,
    pub status: RunStatus,
    pub agent: String,
    pub model: String,
    pub usage: Usage,
    /// Calls waiting for a decision (`status` is `awaiting_approval`).
    pub approvals: Vec<PendingApproval>,
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub completed_at: Timestamp,
}

/// The tenant's runs, newest first; `status=awaiting_approval` lists the ones waiting for a
/// person, with their pending calls (decide one with `POST /api/v1/runs/{run}/approvals/{call_id}`).
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", security(("secret_key" = [])),
    params(RunListParams),
    responses((status = 200, body = ListPage<RunSummary>), (status = 400)))]
pub async fn list_runs(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Query(params): Query<RunListParams>,
) -> ApiResult<Json<ListPage<RunSummary>>> {
    let limit = state.service.page_size(params.limit)?;
    let runs = state
        .service
        .list_runs(&auth.tenant, params.status, limit)
        .await?;
    let data = runs
        .into_iter()
        .map(|record| RunSummary {
            approvals: pending_approvals(&record),
            id: record.id,
            conversation_id: record.conversation_id,
            status: record.status,
            agent: record.agent,
            model: record.model,
            usage: record.usage,
            expires_at: record.expires_at,
            created_at: record.created_at,
            completed_at: record.completed_at,
        })
        .collect();
    Ok(Json(ListPage::all(data)))
}

/// A run's trace; a run still going has only its status until it ends or pauses.
#[utoipa::path(get, path = "/api/v1/runs/{run}", tag = "runs", security(("secret_key" = [])),
    params(("run" = String, Path, description = "run id")),
    responses((status = 200, body = RunTrace), (status = 404)))]
pub async fn get_run(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(run): Path<String>,
) -> ApiResult<Json<RunTrace>> {
    let run = path_id(&run, RunId::parse, "run")?;
    match state.service.get_run(&auth.tenant, &run).await {
        Ok(record)
            if !(record.status == RunStatus::Running
                && state.runner.is_live(&auth.tenant, &run)) =>
        {
            let approvals = pending_approvals(&record);
            let error = record.events.iter().rev().find_map(|e| match &e.event {
                RunEvent::Error { code, message } => Some(crate::routes::turns::RunError {
                    code: *code,
                    message: message.clone(),
                }),
                _ => None,
            });
            Ok(Json(RunTrace {
                error,
                id: record.id,
                conversation_id: Some(record.conversation_id),
                status: record.status,
                agent: Some(record.agent),
                model: Some(record.model),
                usage: record.usage,
                steps: record.steps,
                approvals,
                expires_at: record.expires_at,
                created_at: Some(record.created_at),
                completed_at: Some(record.completed_at),
            }))
        }
        Ok(_) | Err(Error::NotFound { .. }) if state.runner.is_live(&auth.tenant, &run) => {
            Ok(Json(RunTrace {
                id: run,
                conversation_id: None,
                status: RunStatus::Running,
                agent: None,
                model: None,
                usage: Usage::default(),
                steps: Vec::new(),
                approvals: Vec::new(),
                error: None,
                expires_at: None,
                created_at: None,
                completed_at: None,
            }))
        }
        Ok(_) => Err(ApiError(Error::NotFound { resource: "run" })),
        Err(error) => Err(ApiError(error)),
    }
}

/// What a person decided.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    Approve,
    Reject,
}

/// A decision on a call that waits for approval.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    pub decision: DecisionKind,
    /// Shown to the model with a rejection.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Other calls of the run still wait.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StillWaiting {
    pub run_id: RunId,
    pub status: RunStatus,
    /// Ids of the calls still waiting.
    pub pending: Vec<String>,
}

/// Approves or rejects a call of a paused run (as the tenant's staff: a secret key may
/// decide calls waiting for the end user too, relaying their answer). When it was the last
/// one, the run goes on: SSE of its further events, or one JSON object when it ends.
#[utoipa::path(post, path = "/api/v1/runs/{run}/approvals/{call_id}", tag = "runs", security(("secret_key" = [])),
    params(("run" = String, Path, description = "run id"), ("call_id" = String, Path, description = "the tool call's id")),
    request_body = DecisionBody,
    responses((status = 200, description = "the run went on: SSE with Accept: text/event-stream, else its result",
               body = crate::routes::turns::TurnResult),
              (status = 202, body = StillWaiting, description = "recorded; other calls still wait"),
              (status = 404), (status = 409, description = "the run is not waiting, or the call was decided")))]
pub async fn decide(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path((run, call_id)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<DecisionBody>,
) -> ApiResult<Response> {
    let run = path_id(&run, RunId::parse, "run")?;
    frontdesk_core::validate::max_chars("call_id", &call_id, 200)?;
    let decision = ApprovalDecision {
        approve: matches!(body.decision, DecisionKind::Approve),
        reason: body.reason,
        by: Approver::Staff,
    };
    match state
        .runner
        .decide(&auth.tenant, &run, &call_id, decision)
        .await?
    {
        Decided::Waiting { pending } => Ok((
            StatusCode::ACCEPTED,
            Json(StillWaiting {
                run_id: run,
                status: RunStatus::AwaitingApproval,
                pending,
            }),
        )
            .into_response()),
        Decided::Resumed {
            conversation_id,
            events,
        } => respond_events(run, conversation_id, events, &headers).await,
    }
}
