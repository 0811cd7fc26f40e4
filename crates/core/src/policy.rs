//! What an agent's run may do and must check: guardrails, human approvals, budgets, and who
//! answers after a handoff. These are parts of the agent config (`guardrails`, `approvals`,
//! `budgets`, `max_turns`, `after_handoff`); the Runner enforces them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::validate;

/// Most patterns a guardrail may list, and the longest pattern.
const MAX_PATTERNS: usize = 64;
const MAX_PATTERN_CHARS: usize = 1_000;
/// Compiled size limit of one pattern (the regex engine is linear-time; this bounds memory).
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// Checks on what goes into the model and what comes out of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Guardrails {
    pub input: InputGuardrails,
    pub output: OutputGuardrails,
    /// What the end user is told when a guardrail trips.
    pub safe_reply: Option<String>,
}

/// Checks on the end user's message, before the model sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct InputGuardrails {
    /// Longest message accepted, in characters.
    pub max_chars: Option<u32>,
    /// Regular expressions (case-insensitive) that trip the guardrail when they match.
    pub blocked_patterns: Vec<String>,
    /// Replace e-mail addresses, phone numbers and card numbers with placeholders before the
    /// message is stored or sent to a model.
    pub redact_pii: bool,
    /// Slug of an agent of the same tenant that judges the message (see [`Verdict`]).
    pub classifier: Option<String>,
}

/// Checks on the answer, before the end user sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OutputGuardrails {
    pub blocked_patterns: Vec<String>,
    pub classifier: Option<String>,
    /// JSON Schema the answer (parsed as JSON) must match.
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
}

/// What a classifier agent answers (it is asked for exactly this shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub tripped: bool,
    #[serde(default)]
    pub reason: String,
}

impl Verdict {
    /// The JSON Schema a classifier's answer is constrained to.
    pub fn schema() -> Value {
        serde_json::json!({
            "type": "object",
            "properties": {
                "tripped": {"type": "boolean"},
                "reason": {"type": "string"}
            },
            "required": ["tripped", "reason"],
            "additionalProperties": false
        })
    }
}

impl Guardrails {
    pub const DEFAULT_SAFE_REPLY: &'static str =
        "Sorry, I can't help with that. Is there something else I can do for you?";

    pub fn safe_reply(&self) -> &str {
        self.safe_reply
            .as_deref()
            .unwrap_or(Self::DEFAULT_SAFE_REPLY)
    }

    pub fn is_empty(&self) -> bool {
        *self == Guardrails::default()
    }

    pub fn validate(&self) -> Result<()> {
        if let Some(reply) = &self.safe_reply {
            validate::non_empty("guardrails.safe_reply", reply, 2_000)?;
        }
        if self.input.max_chars == Some(0) {
            return Err(Error::invalid(
                "guardrails.input.max_chars",
                "must be at least 1",
            ));
        }
        patterns(
            "guardrails.input.blocked_patterns",
            &self.input.blocked_patterns,
        )?;
        patterns(
            "guardrails.output.blocked_patterns",
            &self.output.blocked_patterns,
        )?;
        for (field, slug) in [
            ("guardrails.input.classifier", &self.input.classifier),
            ("guardrails.output.classifier", &self.output.classifier),
        ] {
            if let Some(slug) = slug {
                validate::slug(field, slug)?;
            }
        }
        if let Some(schema) = &self.output.schema {
            crate::schema::compile("guardrails.output.schema", schema)?;
        }
        Ok(())
    }
}

/// Compiles guardrail patterns: case-insensitive, size-limited.
pub fn compile_patterns(field: &str, patterns: &[String]) -> Result<Vec<regex::Regex>> {
    patterns
        .iter()
        .enumerate()
        .map(|(idx, pattern)| {
            regex::RegexBuilder::new(pattern)
                .case_insensitive(true)
                .size_limit(PATTERN_SIZE_LIMIT)
                .build()
                .map_err(|e| Error::invalid(format!("{field}[{idx}]"), e.to_string()))
        })
        .collect()
}

fn patterns(field: &str, list: &[String]) -> Result<()> {
    validate::max_items(field, list, MAX_PATTERNS)?;
    for (idx, pattern) in list.iter().enumerate() {
        validate::non_empty(&format!("{field}[{idx}]"), pattern, MAX_PATTERN_CHARS)?;
    }
    compile_patterns(field, list).map(|_| ())
}

/// Who must approve a tool call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Approver {
    /// The person chatting (the widget shows them the call and asks).
    #[default]
    EndUser,
    /// The tenant's staff (the dashboard or the tenant's backend with a secret key).
    Staff,
}

impl Approver {
    pub fn as_str(self) -> &'static str {
        match self {
            Approver::EndUser => "end_user",
            Approver::Staff => "staff",
        }
    }
}

/// Which tool calls wait for a person, who decides, and for how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Approvals {
    pub approver: Approver,
    /// An approval not answered in this time counts as a rejection (the model is told).
    pub expires_after_seconds: u64,
    /// More tools that need approval, by name (MCP tools and built-ins have no
    /// `requires_approval` of their own).
    pub tools: Vec<String>,
}

impl Default for Approvals {
    fn default() -> Self {
        Self {
            approver: Approver::default(),
            expires_after_seconds: 3_600,
            tools: Vec::new(),
        }
    }
}

impl Approvals {
    pub fn validate(&self) -> Result<()> {
        if !(1..=30 * 86_400).contains(&self.expires_after_seconds) {
            return Err(Error::invalid(
                "approvals.expires_after_seconds",
                "must be between 1 and 2592000 (30 days)",
            ));
        }
        validate::max_items("approvals.tools", &self.tools, 128)?;
        for (idx, name) in self.tools.iter().enumerate() {
            validate::tool_name(&format!("approvals.tools[{idx}]"), name)?;
        }
        Ok(())
    }
}

/// Limits on one run, so that a loop of tool calls or handoffs ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Budgets {
    /// Tokens (prompt + completion, all model calls of the run).
    pub max_tokens: Option<u64>,
    pub max_tool_calls: u32,
    /// Wall time of the run, not counting time waiting for an approval.
    pub max_seconds: u32,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            max_tokens: None,
            max_tool_calls: 32,
            max_seconds: 300,
        }
    }
}

impl Budgets {
    pub fn validate(&self) -> Result<()> {
        if self.max_tokens == Some(0) {
            return Err(Error::invalid("budgets.max_tokens", "must be at least 1"));
        }
        if !(1..=1_000).contains(&self.max_tool_calls) {
            return Err(Error::invalid(
                "budgets.max_tool_calls",
                "must be between 1 and 1000",
            ));
        }
        if !(1..=3_600).contains(&self.max_seconds) {
            return Err(Error::invalid(
                "budgets.max_seconds",
                "must be between 1 and 3600",
            ));
        }
        Ok(())
    }
}

/// Who answers the turn after one in which the agent handed off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AfterHandoff {
    /// The agent now in charge keeps the conversation.
    #[default]
    Stay,
    /// Every turn starts again with the conversation's own agent.
    Return,
}

/// The default of `max_turns`: model calls in one run.
pub const DEFAULT_MAX_TURNS: u32 = 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_patterns_and_limits_name_their_field() {
        let guardrails = Guardrails {
            input: InputGuardrails {
                blocked_patterns: vec!["ok".into(), "(unclosed".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        let error = guardrails.validate().map(|_| ()).unwrap_err().to_string();
        assert!(
            error.contains("guardrails.input.blocked_patterns[1]"),
            "{error}"
        );
        let budgets = Budgets {
            max_tool_calls: 0,
            ..Budgets::default()
        };
        assert!(budgets.validate().is_err());
        assert!(Approvals {
            expires_after_seconds: 0,
            ..Approvals::default()
        }
        .validate()
        .is_err());
        assert!(Guardrails::default().validate().is_ok());
    }

    #[test]
    fn patterns_are_case_insensitive() {
        let compiled = compile_patterns("p", &["refund".into()]).unwrap_or_default();
        assert!(compiled.iter().any(|r| r.is_match("I want a REFUND")));
    }
}
