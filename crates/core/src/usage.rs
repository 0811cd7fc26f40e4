//! Usage reports: tokens per day, agent or model over a time range, and their cost from the
//! operator's price table (`[prices."provider/model"]` in the configuration).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::time::Timestamp;

/// How a report groups its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UsageGroup {
    Day,
    Agent,
    Model,
}

impl UsageGroup {
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "day" => Ok(UsageGroup::Day),
            "agent" => Ok(UsageGroup::Agent),
            "model" => Ok(UsageGroup::Model),
            other => Err(Error::invalid(
                "group_by",
                format!("`{other}` is not one of day, agent, model"),
            )),
        }
    }
}

/// What the store sums: tokens of one group key and model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    pub key: String,
    pub model: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    pub messages: i64,
}

/// What one million tokens of a model cost, in US dollars.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_million_usd: f64,
    pub output_per_million_usd: f64,
}

impl Price {
    /// What `prompt` input and `completion` output tokens cost, in US dollars.
    pub fn cost(&self, prompt: i64, completion: i64) -> f64 {
        prompt as f64 / 1e6 * self.input_per_million_usd
            + completion as f64 / 1e6 * self.output_per_million_usd
    }
}

/// One line of a report.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UsageLine {
    /// The day (`YYYY-MM-DD`, UTC), the agent id or the model.
    pub key: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    /// Answers counted.
    pub messages: i64,
    /// Cost in US dollars of the tokens whose model has a price; `null` when none has.
    pub cost_usd: Option<f64>,
}

/// A usage report.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UsageReport {
    pub from: Timestamp,
    pub to: Timestamp,
    pub group_by: UsageGroup,
    pub data: Vec<UsageLine>,
    pub total: UsageLine,
}

/// Sums store rows into report lines by key, pricing each model's tokens.
pub fn report(
    rows: Vec<UsageRow>,
    prices: &BTreeMap<String, Price>,
    from: Timestamp,
    to: Timestamp,
    group_by: UsageGroup,
) -> UsageReport {
    let empty = |key: String| UsageLine {
        key,
        prompt_tokens: 0,
        completion_tokens: 0,
        total_tokens: 0,
        messages: 0,
        cost_usd: None,
    };
    let mut lines: BTreeMap<String, UsageLine> = BTreeMap::new();
    let mut total = empty("total".to_owned());
    for row in rows {
        let cost = prices
            .get(&row.model)
            .map(|price| price.cost(row.prompt_tokens, row.completion_tokens));
        for line in [
            lines
                .entry(row.key.clone())
                .or_insert_with(|| empty(row.key.clone())),
            &mut total,
        ] {
            line.prompt_tokens += row.prompt_tokens;
            line.completion_tokens += row.completion_tokens;
            line.total_tokens += row.total_tokens;
            line.messages += row.messages;
            if let Some(cost) = cost {
                line.cost_usd = Some(line.cost_usd.unwrap_or(0.0) + cost);
            }
        }
    }
    UsageReport {
        from,
        to,
        group_by,
        data: lines.into_values().collect(),
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_sum_by_key_and_price_by_model() {
        let row = |key: &str, model: &str, prompt, completion| UsageRow {
            key: key.into(),
            model: model.into(),
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            messages: 1,
        };
        let mut prices = BTreeMap::new();
        prices.insert(
            "openai/gpt-4.1-mini".to_owned(),
            Price {
                input_per_million_usd: 0.4,
                output_per_million_usd: 1.6,
            },
        );
        let rows = vec![
            row("2026-11-01", "openai/gpt-4.1-mini", 1_000_000, 500_000),
            row("2026-11-01", "local/smollm2-135m", 10, 10),
            row("2026-11-02", "local/smollm2-135m", 5, 5),
        ];
        let report = report(
            rows,
            &prices,
            Timestamp::from_millis(0),
            Timestamp::from_millis(1),
            UsageGroup::Day,
        );
        assert_eq!(report.data.len(), 2);
        assert_eq!(report.data[0].total_tokens, 1_500_020);
        assert_eq!(
            report.data[0].cost_usd.map(|c| (c * 100.0).round() / 100.0),
            Some(1.2)
        );
        assert_eq!(report.data[1].cost_usd, None);
        assert_eq!(report.total.messages, 3);
    }
}

/// One row of the daily rollup: a UTC day, an agent and a model (empty for conversations
/// and messages without one).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DailyRow {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub agent_id: String,
    pub model: String,
    pub conversations: i64,
    /// Messages of every role.
    pub messages: i64,
    /// Messages with a finish reason (the answers of runs).
    pub answers: i64,
    /// Answers a guardrail stopped.
    pub guardrail_answers: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
}

/// The latest runs of a range (at most [`RUN_SAMPLE`]): how many, how many failed, how
/// long the completed ones took, and how long those that streamed text took to its start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSample {
    pub runs: i64,
    pub failed: i64,
    pub durations_ms: Vec<i64>,
    pub first_token_ms: Vec<i64>,
}

/// How many of a range's latest runs the overview looks at.
pub const RUN_SAMPLE: u32 = 2_000;

/// A tenant's activity over whole days: the rollup's rows and a sample of its runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Activity {
    pub rows: Vec<DailyRow>,
    pub runs: RunSample,
}

/// The value below which `p` (0..=1) of `sorted` lie (nearest rank); `None` when empty.
pub fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}
