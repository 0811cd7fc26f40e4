//! Calls: the list (search and filters in the URL, keyset pages) and one call with its
//! transcript (both sides, interrupted lines marked), summary, tools, usage and cost, and a
//! link to its conversation (where the supervisor's runs are).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use frontdesk_core::conversation::Cursor;
use frontdesk_core::id::CallId;
use frontdesk_core::voice::{CallChannel, CallQuery, CallStatus};
use frontdesk_core::Error;
use minijinja::context;
use serde::Deserialize;
use serde_json::{json, Value};

use super::frame::{Frame, When};
use super::render::{page, PageResult};
use super::session::StaffSession;
use crate::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

fn blank(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `1 min 05 s`, `42 s`.
fn duration(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "—".to_owned();
    };
    let seconds = ms / 1000;
    match seconds {
        0..=59 => format!("{seconds} s"),
        _ => format!("{} min {:02} s", seconds / 60, seconds % 60),
    }
}

pub async fn list(
    State(state): State<AppState>,
    session: StaffSession,
    Query(query): Query<ListQuery>,
) -> PageResult {
    let staff = &session.staff;
    let tenant = &staff.tenant.id;
    let agents = state.service.list_agents(tenant).await?;
    let status = blank(&query.status)
        .map(|s| {
            CallStatus::parse(&s).ok_or_else(|| {
                Error::invalid("status", "one of active, completed, failed, transferred")
            })
        })
        .transpose()?;
    let channel = blank(&query.channel)
        .map(|c| {
            CallChannel::parse(&c).ok_or_else(|| Error::invalid("channel", "phone or browser"))
        })
        .transpose()?;
    let after = blank(&query.cursor)
        .map(|c| Cursor::decode(&c))
        .transpose()?;
    let page_of = state
        .service
        .list_calls(
            tenant,
            blank(&query.agent).as_deref(),
            CallQuery {
                status,
                channel,
                search: blank(&query.q),
                limit: 50,
                after,
                ..CallQuery::default()
            },
        )
        .await?;
    let rows: Vec<Value> = page_of
        .items
        .iter()
        .map(|c| {
            json!({
                "id": c.id.as_str(),
                "who": match c.direction {
                    frontdesk_core::voice::CallDirection::Outbound => c.to.clone().map(|to| format!("To {to}")),
                    frontdesk_core::voice::CallDirection::Inbound => c.from.clone(),
                }.unwrap_or_else(|| "Browser".to_owned()),
                "agent": super::agent_name(&agents, c.agent_id.as_str()),
                "channel": c.channel.as_str(),
                "status": c.status.as_str(),
                "summary": c.summary,
                "duration": duration(c.duration_ms),
                "started": When::of(c.started_at),
            })
        })
        .collect();
    let next = page_of.next.as_ref().map(|cursor| {
        super::next_page(
            "/calls",
            &[
                ("q", &query.q),
                ("agent", &query.agent),
                ("status", &query.status),
                ("channel", &query.channel),
            ],
            cursor,
        )
    });
    let agent_options = super::agent_options(&agents);
    Ok(page(
        StatusCode::OK,
        "calls.html",
        context! {
            frame => Frame::new(staff, "calls", "Calls"),
            calls => rows, next,
            filters => json!({"q": query.q, "agent": query.agent, "status": query.status,
                              "channel": query.channel, "cursor": query.cursor}),
            agents => agent_options,
            filtered => [&query.q, &query.agent, &query.status, &query.channel].iter().any(|v| blank(v).is_some()),
        },
    ))
}

pub async fn show(
    State(state): State<AppState>,
    session: StaffSession,
    Path(call): Path<String>,
) -> PageResult {
    let staff = &session.staff;
    let tenant = &staff.tenant.id;
    let id = CallId::parse(&call).map_err(|_| Error::NotFound { resource: "call" })?;
    let call = state.service.get_call(tenant, &id).await?;
    let agents = state.service.list_agents(tenant).await?;
    let lines: Vec<Value> = call
        .transcript
        .iter()
        .map(|line| {
            json!({
                "speaker": line.speaker,
                "text": line.text,
                "at": format!("{}:{:02}", line.at_ms / 60_000, line.at_ms / 1000 % 60),
                "interrupted": line.interrupted,
            })
        })
        .collect();
    let tools: Vec<Value> = call
        .tool_calls
        .iter()
        .map(|tool| {
            json!({
                "name": tool.name,
                "agent": tool.agent,
                "arguments": serde_json::to_string_pretty(&tool.arguments).unwrap_or_default(),
                "output": tool.output,
                "is_error": tool.is_error,
                "run_id": tool.run_id,
                "at": format!("{}:{:02}", tool.at_ms / 60_000, tool.at_ms / 1000 % 60),
            })
        })
        .collect();
    let title = match (call.direction, &call.from, &call.to) {
        (frontdesk_core::voice::CallDirection::Outbound, _, Some(to)) => format!("Call to {to}"),
        (_, Some(from), _) => format!("Call from {from}"),
        _ => "Voice call in the browser".to_owned(),
    };
    Ok(page(
        StatusCode::OK,
        "call.html",
        context! {
            frame => Frame::new(staff, "calls", &title),
            title,
            call => json!({
                "id": call.id.as_str(),
                "agent": super::agent_name(&agents, call.agent_id.as_str()),
                "agent_id": call.agent_id.as_str(),
                "conversation_id": call.conversation_id,
                "channel": call.channel.as_str(),
                "direction": call.direction.as_str(),
                "mode": call.mode,
                "status": call.status.as_str(),
                "started": When::of(call.started_at),
                "duration": duration(call.duration_ms),
                "summary": call.summary,
                "error": call.error,
                "transferred_to": call.transferred_to,
                "usage": call.usage,
                "provider_call_id": call.provider_call_id,
            }),
            lines, tools,
        },
    ))
}
