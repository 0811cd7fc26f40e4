//! The overview (conversations, messages, tokens and cost per day for 7/30/90 days as SVG
//! charts drawn here, top agents, the failure rate, run times) and the usage page (tokens
//! and cost by day, agent and model, the quota, a CSV export).

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use frontdesk_core::time::Timestamp;
use std::collections::BTreeMap;

use frontdesk_core::usage::{percentile, DailyRow, RUN_SAMPLE};
use minijinja::context;
use serde::Deserialize;
use serde_json::{json, Value};

use super::chart;
use super::frame::Frame;
use super::render::{page, PageResult};
use super::session::StaffSession;
use crate::AppState;

const DAY_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Default, Deserialize)]
pub struct RangeQuery {
    #[serde(default)]
    days: Option<String>,
}

/// The chosen range: 7, 30 or 90 days ending today (UTC), as `(days, from, to)`.
fn range(query: &RangeQuery) -> (i64, Timestamp, Timestamp) {
    let days = match query.days.as_deref() {
        Some("7") => 7,
        Some("90") => 90,
        _ => 30,
    };
    let now = Timestamp::now().as_millis();
    let tomorrow = (now / DAY_MS + 1) * DAY_MS;
    (
        days,
        Timestamp::from_millis(tomorrow - days * DAY_MS),
        Timestamp::from_millis(tomorrow),
    )
}

/// Every day of the range as `YYYY-MM-DD`.
fn day_keys(from: Timestamp, days: i64) -> Vec<String> {
    (0..days)
        .map(|d| {
            Timestamp::from_millis(from.as_millis() + d * DAY_MS)
                .to_rfc3339()
                .chars()
                .take(10)
                .collect()
        })
        .collect()
}

/// A row's cost in US dollars, when its model has a price.
fn cost(state: &AppState, row: &DailyRow) -> Option<f64> {
    state
        .config
        .prices
        .get(&row.model)
        .map(|p| p.cost(row.prompt_tokens, row.completion_tokens))
}

/// Sums of rollup rows under one key.
#[derive(Debug, Default, Clone, serde::Serialize)]
struct Sums {
    conversations: i64,
    messages: i64,
    answers: i64,
    guardrail: i64,
    prompt: i64,
    completion: i64,
    total: i64,
    cost: Option<f64>,
}

impl Sums {
    fn add(&mut self, row: &DailyRow, cost: Option<f64>) {
        self.conversations += row.conversations;
        self.messages += row.messages;
        self.answers += row.answers;
        self.guardrail += row.guardrail_answers;
        self.prompt += row.prompt_tokens;
        self.completion += row.completion_tokens;
        self.total += row.total_tokens;
        if let Some(cost) = cost {
            self.cost = Some(self.cost.unwrap_or(0.0) + cost);
        }
    }
}

/// The rollup's rows summed by `key`, in key order, and the grand total.
fn group(
    state: &AppState,
    rows: &[DailyRow],
    key: impl Fn(&DailyRow) -> String,
) -> (BTreeMap<String, Sums>, Sums) {
    let mut groups: BTreeMap<String, Sums> = BTreeMap::new();
    let mut total = Sums::default();
    for row in rows {
        let cost = cost(state, row);
        groups.entry(key(row)).or_default().add(row, cost);
        total.add(row, cost);
    }
    (groups, total)
}

/// Tokens the tenant used this month (UTC), for the quota.
pub(super) async fn month_tokens(
    state: &AppState,
    tenant: &frontdesk_core::id::TenantId,
) -> Result<i64, frontdesk_core::Error> {
    let now = Timestamp::now();
    let tomorrow = (now.as_millis() / DAY_MS + 1) * DAY_MS;
    let activity = state
        .service
        .activity(tenant, now.month_start(), Timestamp::from_millis(tomorrow))
        .await?;
    Ok(activity.rows.iter().map(|r| r.total_tokens).sum())
}

pub async fn page_overview(
    State(state): State<AppState>,
    session: StaffSession,
    Query(query): Query<RangeQuery>,
) -> PageResult {
    let staff = &session.staff;
    let tenant = &staff.tenant.id;
    let (days, from, to) = range(&query);
    let activity = state.service.activity(tenant, from, to).await?;
    let (per_day, totals) = group(&state, &activity.rows, |r| r.day.clone());
    let (per_agent, _) = group(&state, &activity.rows, |r| r.agent_id.clone());
    let keys = day_keys(from, days);
    let series = |f: &dyn Fn(&Sums) -> f64| -> Vec<(String, f64)> {
        keys.iter()
            .map(|k| (k.clone(), per_day.get(k).map_or(0.0, f)))
            .collect()
    };
    let charts = vec![
        chart::bars(
            "Conversations",
            "conversations",
            &series(&|s| s.conversations as f64),
            chart::Unit::Count,
        ),
        chart::bars(
            "Messages",
            "messages",
            &series(&|s| s.messages as f64),
            chart::Unit::Count,
        ),
        chart::bars(
            "Tokens",
            "tokens",
            &series(&|s| s.total as f64),
            chart::Unit::Count,
        ),
        chart::bars(
            "Cost",
            "US dollars",
            &series(&|s| s.cost.unwrap_or(0.0)),
            chart::Unit::Usd,
        ),
    ];
    let agents = state.service.list_agents(tenant).await?;
    let mut top: Vec<Value> = per_agent
        .iter()
        .filter(|(_, sums)| sums.messages > 0)
        .map(|(id, sums)| {
            let name = super::agent_name(&agents, id);
            json!({"name": name, "messages": sums.messages, "tokens": sums.total, "cost": sums.cost})
        })
        .collect();
    top.sort_by_key(|v| std::cmp::Reverse(v["messages"].as_i64().unwrap_or(0)));
    top.truncate(5);
    let sample = &activity.runs;
    let mut durations = sample.durations_ms.clone();
    durations.sort_unstable();
    let mut first = sample.first_token_ms.clone();
    first.sort_unstable();
    Ok(page(
        StatusCode::OK,
        "overview.html",
        context! {
            frame => Frame::new(staff, "overview", "Overview"),
            days, charts, top,
            totals => json!({
                "conversations": totals.conversations,
                "messages": totals.messages,
                "tokens": totals.total,
                "cost": totals.cost,
                "runs": sample.runs,
                "failed": sample.failed,
                "sampled": sample.runs >= i64::from(RUN_SAMPLE),
                "failure_rate": if sample.runs > 0 { Some(sample.failed as f64 / sample.runs as f64 * 100.0) } else { None },
                "guardrail": totals.guardrail,
                "answers": totals.answers,
                "guardrail_rate": if totals.answers > 0 { Some(totals.guardrail as f64 / totals.answers as f64 * 100.0) } else { None },
                "p50": percentile(&durations, 0.5),
                "p95": percentile(&durations, 0.95),
                "first_p50": percentile(&first, 0.5),
                "first_p95": percentile(&first, 0.95),
            }),
            has_agents => !agents.is_empty(),
            empty => totals.conversations == 0 && totals.messages == 0,
        },
    ))
}

#[derive(Debug, Default, Deserialize)]
pub struct UsageQuery {
    #[serde(default)]
    days: Option<String>,
    #[serde(default)]
    by: Option<String>,
}

fn by(query: &UsageQuery) -> &'static str {
    match query.by.as_deref() {
        Some("agent") => "agent",
        Some("model") => "model",
        _ => "day",
    }
}

/// The usage page's rows: tokens, answers and cost per day, agent or model.
async fn usage_rows(
    state: &AppState,
    session: &StaffSession,
    query: &UsageQuery,
) -> Result<(Vec<Value>, Sums, BTreeMap<String, Sums>), frontdesk_core::Error> {
    let tenant = &session.staff.tenant.id;
    let (_, from, to) = range(&RangeQuery {
        days: query.days.clone(),
    });
    let activity = state.service.activity(tenant, from, to).await?;
    let grouping = by(query);
    let (groups, total) = group(state, &activity.rows, |r| match grouping {
        "agent" => r.agent_id.clone(),
        "model" => r.model.clone(),
        _ => r.day.clone(),
    });
    let agents = state.service.list_agents(tenant).await?;
    let rows = groups
        .iter()
        .filter(|(_, sums)| sums.total > 0 || grouping == "day")
        .map(|(key, sums)| {
            let label = match grouping {
                "agent" => super::agent_name(&agents, key),
                _ if key.is_empty() => "(no model)".to_owned(),
                _ => key.clone(),
            };
            json!({"key": key, "label": label, "prompt": sums.prompt, "completion": sums.completion,
                   "total": sums.total, "messages": sums.answers, "cost": sums.cost})
        })
        .collect();
    Ok((rows, total, groups))
}

pub async fn usage(
    State(state): State<AppState>,
    session: StaffSession,
    Query(query): Query<UsageQuery>,
) -> PageResult {
    let staff = &session.staff;
    let (rows, total, groups) = usage_rows(&state, &session, &query).await?;
    let (days, from, _) = range(&RangeQuery {
        days: query.days.clone(),
    });
    let chart = (by(&query) == "day").then(|| {
        let points: Vec<(String, f64)> = day_keys(from, days)
            .into_iter()
            .map(|k| {
                let value = groups.get(&k).map_or(0.0, |s| s.total as f64);
                (k, value)
            })
            .collect();
        chart::bars("Tokens per day", "tokens", &points, chart::Unit::Count)
    });
    let used = month_tokens(&state, &staff.tenant.id).await?;
    let quota = staff.tenant.monthly_token_quota;
    Ok(page(
        StatusCode::OK,
        "usage.html",
        context! {
            frame => Frame::new(staff, "usage", "Usage"),
            rows, chart, days, by => by(&query),
            total => json!({"prompt": total.prompt, "completion": total.completion,
                            "total": total.total, "messages": total.answers, "cost": total.cost}),
            quota => json!({
                "limit": quota,
                "used": used,
                "percent": quota.filter(|q| *q > 0).map(|q| (used as f64 / q as f64 * 100.0).min(100.0)),
                "month": Timestamp::now().month_key(),
            }),
        },
    ))
}

/// Quotes a CSV field when it needs it.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

pub async fn usage_csv(
    State(state): State<AppState>,
    session: StaffSession,
    Query(query): Query<UsageQuery>,
) -> PageResult {
    let (rows, _, _) = usage_rows(&state, &session, &query).await?;
    let mut csv =
        String::from("key,label,prompt_tokens,completion_tokens,total_tokens,messages,cost_usd\n");
    for row in rows {
        let text = |key: &str| match &row[key] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let line: Vec<String> = [
            "key",
            "label",
            "prompt",
            "completion",
            "total",
            "messages",
            "cost",
        ]
        .iter()
        .map(|k| csv_field(&text(k)))
        .collect();
        csv.push_str(&line.join(","));
        csv.push('\n');
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"usage.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn ranges_end_tomorrow_and_cover_their_days() {
        let (days, from, to) = range(&RangeQuery {
            days: Some("7".into()),
        });
        assert_eq!(days, 7);
        assert_eq!(to.as_millis() - from.as_millis(), 7 * DAY_MS);
        assert_eq!(day_keys(from, days).len(), 7);
        let (days, ..) = range(&RangeQuery {
            days: Some("nonsense".into()),
        });
        assert_eq!(days, 30);
    }
}
