//! The overview (conversations, messages, tokens and cost per day for 7/30/90 days as SVG
//! charts drawn here, top agents, the failure rate, run times) and the usage page (tokens
//! and cost by day, agent and model, the quota, a CSV export).

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use frontdesk_core::time::Timestamp;
use frontdesk_core::usage::{percentile, UsageGroup, UsageReport};
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

fn by_day(
    report: &UsageReport,
) -> std::collections::HashMap<&str, &frontdesk_core::usage::UsageLine> {
    report.data.iter().map(|l| (l.key.as_str(), l)).collect()
}

pub async fn page_overview(
    State(state): State<AppState>,
    session: StaffSession,
    Query(query): Query<RangeQuery>,
) -> PageResult {
    let staff = &session.staff;
    let tenant = &staff.tenant.id;
    let (days, from, to) = range(&query);
    let prices = &state.config.prices;
    let usage = state
        .service
        .usage(tenant, Some(from), Some(to), UsageGroup::Day, prices)
        .await?;
    let per_agent = state
        .service
        .usage(tenant, Some(from), Some(to), UsageGroup::Agent, prices)
        .await?;
    let activity = state.service.activity(tenant, from, to).await?;
    let keys = day_keys(from, days);
    let usage_days = by_day(&usage);
    let activity_days: std::collections::HashMap<&str, _> =
        activity.days.iter().map(|d| (d.day.as_str(), d)).collect();
    let series = |f: &dyn Fn(&str) -> f64| -> Vec<(String, f64)> {
        keys.iter().map(|k| (k.clone(), f(k))).collect()
    };
    let conversations = series(&|k| activity_days.get(k).map_or(0.0, |d| d.conversations as f64));
    let messages = series(&|k| activity_days.get(k).map_or(0.0, |d| d.messages as f64));
    let tokens = series(&|k| usage_days.get(k).map_or(0.0, |l| l.total_tokens as f64));
    let cost = series(&|k| usage_days.get(k).and_then(|l| l.cost_usd).unwrap_or(0.0));
    let runs: i64 = activity.days.iter().map(|d| d.runs).sum();
    let failed: i64 = activity.days.iter().map(|d| d.failed_runs).sum();
    let mut durations = activity.run_durations_ms.clone();
    durations.sort_unstable();
    let agents = state.service.list_agents(tenant).await?;
    let mut top: Vec<Value> = per_agent
        .data
        .iter()
        .map(|line| {
            let name = agents
                .iter()
                .find(|a| a.id.as_str() == line.key)
                .map(|a| a.spec.name.clone())
                .unwrap_or_else(|| "(deleted agent)".to_owned());
            json!({"name": name, "messages": line.messages, "tokens": line.total_tokens, "cost": line.cost_usd})
        })
        .collect();
    top.sort_by_key(|v| std::cmp::Reverse(v["messages"].as_i64().unwrap_or(0)));
    top.truncate(5);
    let total_conversations: i64 = activity.days.iter().map(|d| d.conversations).sum();
    let charts = vec![
        chart::bars(
            "Conversations",
            "conversations",
            &conversations,
            chart::Unit::Count,
        ),
        chart::bars("Messages", "messages", &messages, chart::Unit::Count),
        chart::bars("Tokens", "tokens", &tokens, chart::Unit::Count),
        chart::bars("Cost", "US dollars", &cost, chart::Unit::Usd),
    ];
    Ok(page(
        StatusCode::OK,
        "overview.html",
        context! {
            frame => Frame::new(staff, "overview", "Overview"),
            days, charts, top,
            totals => json!({
                "conversations": total_conversations,
                "messages": activity.days.iter().map(|d| d.messages).sum::<i64>(),
                "tokens": usage.total.total_tokens,
                "cost": usage.total.cost_usd,
                "runs": runs,
                "failed": failed,
                "failure_rate": if runs > 0 { Some(failed as f64 / runs as f64 * 100.0) } else { None },
                "p50": percentile(&durations, 0.5),
                "p95": percentile(&durations, 0.95),
            }),
            has_agents => !agents.is_empty(),
            empty => total_conversations == 0 && usage.total.messages == 0,
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

fn group(query: &UsageQuery) -> UsageGroup {
    match query.by.as_deref() {
        Some("agent") => UsageGroup::Agent,
        Some("model") => UsageGroup::Model,
        _ => UsageGroup::Day,
    }
}

async fn usage_report(
    state: &AppState,
    session: &StaffSession,
    query: &UsageQuery,
) -> Result<(UsageReport, Vec<Value>), frontdesk_core::Error> {
    let tenant = &session.staff.tenant.id;
    let (_, from, to) = range(&RangeQuery {
        days: query.days.clone(),
    });
    let report = state
        .service
        .usage(
            tenant,
            Some(from),
            Some(to),
            group(query),
            &state.config.prices,
        )
        .await?;
    let agents = state.service.list_agents(tenant).await?;
    let rows = report
        .data
        .iter()
        .map(|line| {
            let label = match group(query) {
                UsageGroup::Agent => agents
                    .iter()
                    .find(|a| a.id.as_str() == line.key)
                    .map(|a| a.spec.name.clone())
                    .unwrap_or_else(|| "(deleted agent)".to_owned()),
                _ if line.key.is_empty() => "(no model)".to_owned(),
                _ => line.key.clone(),
            };
            json!({"key": line.key, "label": label, "prompt": line.prompt_tokens, "completion": line.completion_tokens,
                   "total": line.total_tokens, "messages": line.messages, "cost": line.cost_usd})
        })
        .collect();
    Ok((report, rows))
}

pub async fn usage(
    State(state): State<AppState>,
    session: StaffSession,
    Query(query): Query<UsageQuery>,
) -> PageResult {
    let staff = &session.staff;
    let (report, rows) = usage_report(&state, &session, &query).await?;
    let month = state
        .service
        .usage(
            &staff.tenant.id,
            None,
            None,
            UsageGroup::Day,
            &state.config.prices,
        )
        .await?;
    let (days, from, _) = range(&RangeQuery {
        days: query.days.clone(),
    });
    let chart = if group(&query) == UsageGroup::Day {
        let lines = by_day(&report);
        let points: Vec<(String, f64)> = day_keys(from, days)
            .into_iter()
            .map(|k| {
                let value = lines.get(k.as_str()).map_or(0.0, |l| l.total_tokens as f64);
                (k, value)
            })
            .collect();
        Some(chart::bars(
            "Tokens per day",
            "tokens",
            &points,
            chart::Unit::Count,
        ))
    } else {
        None
    };
    let quota = staff.tenant.monthly_token_quota;
    Ok(page(
        StatusCode::OK,
        "usage.html",
        context! {
            frame => Frame::new(staff, "usage", "Usage"),
            rows, chart, days,
            by => match group(&query) { UsageGroup::Day => "day", UsageGroup::Agent => "agent", UsageGroup::Model => "model" },
            total => json!({"prompt": report.total.prompt_tokens, "completion": report.total.completion_tokens,
                            "total": report.total.total_tokens, "messages": report.total.messages, "cost": report.total.cost_usd}),
            quota => json!({
                "limit": quota,
                "used": month.total.total_tokens,
                "percent": quota.filter(|q| *q > 0).map(|q| (month.total.total_tokens as f64 / q as f64 * 100.0).min(100.0)),
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
    let (_, rows) = usage_report(&state, &session, &query).await?;
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
