//! Agents: the configuration a tenant writes (instructions, model, tools, knowledge, …).
//!
//! The wire shape is the one ARCHITECTURE.md fixes: top-level fields may be added, none
//! renamed. Unknown fields are rejected so that a typo is an error, not a silent default.
//! Every change is kept as a numbered version.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::id::{AgentId, TenantId};
use crate::time::Timestamp;
use crate::validate;
pub use crate::widget::{WidgetPosition, WidgetSettings, WidgetTexts, WidgetTheme};

/// The model used when an agent names none.
pub const DEFAULT_MODEL: &str = "local/smollm2-135m";

/// Chat or voice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    #[default]
    Chat,
    Voice,
}

impl AgentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::Chat => "chat",
            AgentKind::Voice => "voice",
        }
    }

    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "chat" => Ok(AgentKind::Chat),
            "voice" => Ok(AgentKind::Voice),
            other => Err(Error::invalid(
                "kind",
                format!("`{other}` is not one of chat, voice"),
            )),
        }
    }
}

/// HTTP method of a webhook tool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    #[default]
    Post,
    Put,
    Patch,
    Delete,
}

/// A tool the agent may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ToolEntry {
    /// A tool built into frontdesk, by name.
    Builtin { name: String },
    /// An HTTP endpoint of the tenant's, called with the model's arguments as JSON.
    Webhook {
        name: String,
        #[serde(default)]
        description: String,
        /// JSON Schema of the arguments.
        #[serde(default = "empty_object_schema")]
        #[schema(value_type = Object)]
        parameters: Value,
        url: String,
        #[serde(default)]
        method: HttpMethod,
        #[serde(default)]
        headers: std::collections::BTreeMap<String, String>,
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u32,
        #[serde(default)]
        requires_approval: bool,
    },
}

impl ToolEntry {
    /// Checks one tool of an agent (`field` names it in errors, as `tools[0]`); its name
    /// when it is good.
    pub fn validate(&self, field: &str) -> Result<&String> {
        let name = match self {
            ToolEntry::Builtin { name } => {
                if !crate::tool::BUILTIN_TOOLS.contains(&name.as_str()) {
                    return Err(Error::invalid(
                        format!("{field}.name"),
                        format!(
                            "`{name}` is not a built-in tool; there are: {}",
                            crate::tool::BUILTIN_TOOLS.join(", ")
                        ),
                    ));
                }
                name
            }
            ToolEntry::Webhook {
                name,
                description,
                parameters,
                url,
                headers,
                timeout_ms,
                ..
            } => {
                validate::max_chars(
                    &format!("{field}.description"),
                    description,
                    MAX_DESCRIPTION,
                )?;
                json_schema_object(&format!("{field}.parameters"), parameters)?;
                validate::http_url(&format!("{field}.url"), url)?;
                header_map(&format!("{field}.headers"), headers)?;
                if *timeout_ms == 0 || *timeout_ms > 120_000 {
                    return Err(Error::invalid(
                        format!("{field}.timeout_ms"),
                        "must be between 1 and 120000",
                    ));
                }
                name
            }
        };
        validate::tool_name(&format!("{field}.name"), name)?;
        // Built-ins may (`transfer_to_human`); a webhook may not pose as a handoff.
        if name.starts_with("transfer_to_") && !matches!(self, ToolEntry::Builtin { .. }) {
            return Err(Error::invalid(
                format!("{field}.name"),
                "names starting with transfer_to_ are kept for handoffs",
            ));
        }
        Ok(name)
    }
}

fn empty_object_schema() -> Value {
    serde_json::json!({"type": "object", "properties": {}})
}

fn default_timeout_ms() -> u32 {
    10_000
}

/// An MCP server (Streamable HTTP) whose tools the agent may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct McpServerEntry {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub requires_approval: bool,
}

/// Which knowledge bases the agent searches, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeSettings {
    #[serde(default)]
    pub knowledge_base_ids: Vec<String>,
    #[serde(default = "default_top_k")]
    pub top_k: u32,
    /// Leave out passages less similar to the question than this (cosine, -1 to 1).
    #[serde(default)]
    pub min_score: Option<f64>,
    /// How the agent gets its knowledge: `context` (the passages that match the visitor's
    /// message go into the prompt before every model call) or `tool` (the model calls
    /// `search_knowledge` when it decides to).
    #[serde(default)]
    pub mode: KnowledgeMode,
}

/// How an agent gets its knowledge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KnowledgeMode {
    #[default]
    Context,
    Tool,
}

fn default_top_k() -> u32 {
    5
}

/// The configuration of an agent: what a tenant writes and versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub instructions: String,
    /// `provider/model`, e.g. `openai/gpt-4.1-mini` or `local/smollm2-135m`.
    #[serde(default = "default_model")]
    pub model: String,
    #[serde(default)]
    pub fallback_models: Vec<String>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub tools: Vec<ToolEntry>,
    #[serde(default)]
    pub mcp_servers: Vec<McpServerEntry>,
    /// Slugs of agents in the same tenant this agent may hand off to.
    #[serde(default)]
    pub handoffs: Vec<String>,
    /// JSON Schema the final answer must match.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub output_schema: Option<Value>,
    #[serde(default)]
    pub guardrails: crate::policy::Guardrails,
    #[serde(default)]
    pub knowledge: Option<KnowledgeSettings>,
    #[serde(default)]
    pub approvals: crate::policy::Approvals,
    /// Model calls in one run at most (tool calls and handoffs each take one more).
    #[serde(default = "default_max_turns")]
    pub max_turns: u32,
    #[serde(default)]
    pub budgets: crate::policy::Budgets,
    /// Who answers the next turn after this agent handed off during one.
    #[serde(default)]
    pub after_handoff: crate::policy::AfterHandoff,
    #[serde(default)]
    pub widget: WidgetSettings,
    /// Handing conversations to people: the waiting message, the team's hours, how long to
    /// wait, who to notify.
    #[serde(default, deserialize_with = "crate::handoff::settings_object")]
    pub human: crate::handoff::HumanSettings,
    #[serde(default)]
    pub kind: AgentKind,
    /// How calls reach the agent and how it sounds: see `frontdesk_core::voice`.
    #[serde(default, deserialize_with = "crate::voice::settings_object")]
    pub voice: crate::voice::VoiceSettings,
}

fn default_max_turns() -> u32 {
    crate::policy::DEFAULT_MAX_TURNS
}

fn default_model() -> String {
    DEFAULT_MODEL.to_owned()
}

/// An agent as stored: its spec plus identity and bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Agent {
    pub id: AgentId,
    #[serde(skip)]
    pub tenant_id: TenantId,
    /// Starts at 1 and grows by one with every update.
    pub version: i64,
    #[serde(flatten)]
    pub spec: AgentSpec,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One saved version of an agent's spec.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AgentVersion {
    pub agent_id: AgentId,
    pub version: i64,
    pub spec: AgentSpec,
    pub created_at: Timestamp,
}

/// How a caller names an agent: by id (`agt_…`) or by slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentRef {
    Id(AgentId),
    Slug(String),
}

impl AgentRef {
    /// `agt_…` is an id; anything else must be a slug.
    pub fn parse(value: &str) -> Result<Self> {
        if value.starts_with("agt_") {
            AgentId::parse(value)
                .map(AgentRef::Id)
                .map_err(|e| Error::invalid("agent", e.to_string()))
        } else {
            validate::slug("agent", value)?;
            Ok(AgentRef::Slug(value.to_owned()))
        }
    }
}

/// Limits on an agent's fields.
const MAX_NAME: usize = 200;
const MAX_DESCRIPTION: usize = 2_000;
const MAX_INSTRUCTIONS: usize = 100_000;
const MAX_TOOLS: usize = 128;
const MAX_LIST: usize = 32;

impl AgentSpec {
    /// Parses a spec from JSON, naming the field that is wrong, then validates it.
    pub fn from_json(value: Value) -> Result<Self> {
        objects_where_structs_go(&value)?;
        let spec: AgentSpec = crate::json::from_value(value)?;
        spec.validate()?;
        Ok(spec)
    }

    /// Applies a JSON merge patch (RFC 7396) and validates the result.
    pub fn patched(&self, patch: Value) -> Result<Self> {
        let Value::Object(patch) = patch else {
            return Err(Error::bad_request(
                "invalid_body",
                "the body must be a JSON object",
            ));
        };
        let mut current = serde_json::to_value(self).map_err(Error::internal)?;
        merge_patch(&mut current, Value::Object(patch));
        Self::from_json(current)
    }

    /// Checks lengths, formats and ranges.
    pub fn validate(&self) -> Result<()> {
        validate::slug("slug", &self.slug)?;
        validate::non_empty("name", &self.name, MAX_NAME)?;
        validate::max_chars("description", &self.description, MAX_DESCRIPTION)?;
        validate::max_chars("instructions", &self.instructions, MAX_INSTRUCTIONS)?;
        model_name("model", &self.model)?;
        validate::max_items("fallback_models", &self.fallback_models, 8)?;
        for (idx, model) in self.fallback_models.iter().enumerate() {
            model_name(&format!("fallback_models[{idx}]"), model)?;
        }
        if let Some(t) = self.temperature {
            if !(0.0..=2.0).contains(&t) {
                return Err(Error::invalid("temperature", "must be between 0 and 2"));
            }
        }
        if let Some(p) = self.top_p {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::invalid("top_p", "must be between 0 and 1"));
            }
        }
        if let Some(n) = self.max_tokens {
            if n == 0 || n > 1_000_000 {
                return Err(Error::invalid(
                    "max_tokens",
                    "must be between 1 and 1000000",
                ));
            }
        }
        validate::max_items("tools", &self.tools, MAX_TOOLS)?;
        let mut names = std::collections::HashSet::new();
        for (idx, tool) in self.tools.iter().enumerate() {
            let field = format!("tools[{idx}]");
            let name = tool.validate(&field)?;
            if !names.insert(name.clone()) {
                return Err(Error::invalid(
                    format!("{field}.name"),
                    format!("the tool name `{name}` is used twice"),
                ));
            }
        }
        validate::max_items("mcp_servers", &self.mcp_servers, MAX_LIST)?;
        for (idx, server) in self.mcp_servers.iter().enumerate() {
            validate::tool_name(&format!("mcp_servers[{idx}].name"), &server.name)?;
            validate::http_url(&format!("mcp_servers[{idx}].url"), &server.url)?;
            header_map(&format!("mcp_servers[{idx}].headers"), &server.headers)?;
        }
        validate::max_items("handoffs", &self.handoffs, MAX_LIST)?;
        for (idx, slug) in self.handoffs.iter().enumerate() {
            validate::slug(&format!("handoffs[{idx}]"), slug)?;
            if *slug == self.slug {
                return Err(Error::invalid(
                    format!("handoffs[{idx}]"),
                    "an agent cannot hand off to itself",
                ));
            }
        }
        if let Some(schema) = &self.output_schema {
            json_schema_object("output_schema", schema)?;
        }
        if !(1..=100).contains(&self.max_turns) {
            return Err(Error::invalid("max_turns", "must be between 1 and 100"));
        }
        self.guardrails.validate()?;
        self.approvals.validate()?;
        self.budgets.validate()?;
        self.human.validate()?;
        self.voice.validate()?;
        if self.voice.supervisor.as_deref() == Some(self.slug.as_str()) {
            return Err(Error::invalid(
                "voice.supervisor",
                "an agent cannot supervise itself",
            ));
        }
        if let Some(knowledge) = &self.knowledge {
            validate::max_items(
                "knowledge.knowledge_base_ids",
                &knowledge.knowledge_base_ids,
                MAX_LIST,
            )?;
            if knowledge.top_k == 0 || knowledge.top_k > 50 {
                return Err(Error::invalid(
                    "knowledge.top_k",
                    "must be between 1 and 50",
                ));
            }
            if let Some(id) = knowledge
                .knowledge_base_ids
                .iter()
                .find(|id| crate::id::KnowledgeBaseId::parse(id).is_err())
            {
                return Err(Error::invalid(
                    "knowledge.knowledge_base_ids",
                    format!("`{id}` is not a knowledge base id (`kb_…`)"),
                ));
            }
            if let Some(min) = knowledge.min_score {
                if !(-1.0..=1.0).contains(&min) {
                    return Err(Error::invalid(
                        "knowledge.min_score",
                        "must be between -1 and 1",
                    ));
                }
            }
        }
        self.widget.validate()?;
        let size = serde_json::to_vec(self)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > 512 * 1024 {
            return Err(Error::PayloadTooLarge {
                message: format!("the agent config is {size} bytes; the limit is 524288"),
            });
        }
        Ok(())
    }
}

/// serde reads a struct from a JSON array too (its fields in order); an agent's settings are
/// objects, so an array where one goes is refused, naming the field, as the schema says.
fn objects_where_structs_go(spec: &Value) -> Result<()> {
    const STRUCTS: &[&str] = &[
        "/guardrails",
        "/guardrails/input",
        "/guardrails/output",
        "/approvals",
        "/budgets",
        "/knowledge",
        "/widget",
    ];
    let mut places: Vec<(String, &Value)> = STRUCTS
        .iter()
        .filter_map(|pointer| spec.pointer(pointer).map(|v| ((*pointer).to_owned(), v)))
        .collect();
    if let Some(Value::Object(texts)) = spec.pointer("/widget/texts") {
        places.extend(
            texts
                .iter()
                .map(|(tag, v)| (format!("/widget/texts/{tag}"), v)),
        );
    }
    for list in ["tools", "mcp_servers"] {
        if let Some(Value::Array(items)) = spec.get(list) {
            places.extend(
                items
                    .iter()
                    .enumerate()
                    .map(|(n, v)| (format!("/{list}/{n}"), v)),
            );
        }
    }
    for (pointer, value) in places {
        if value.is_array() {
            return Err(Error::invalid(
                pointer.trim_start_matches('/').replace('/', "."),
                "must be an object",
            ));
        }
    }
    Ok(())
}

/// RFC 7396: objects merge key by key, recursively; `null` removes a key; anything else
/// replaces the target.
fn merge_patch(target: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(fields) = target {
        for (key, value) in patch {
            if value.is_null() {
                fields.remove(&key);
            } else {
                merge_patch(fields.entry(key).or_insert(Value::Null), value);
            }
        }
    }
}

/// `provider/model`, each part non-empty, no spaces.
pub fn model_name(field: &str, value: &str) -> Result<()> {
    validate::max_chars(field, value, 200)?;
    match value.split_once('/') {
        Some((provider, model))
            if !provider.is_empty()
                && !model.is_empty()
                && provider
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !value.contains(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(Error::invalid(
            field,
            format!(
                "`{}` is not `provider/model` (for example openai/gpt-4.1-mini)",
                validate::truncate(value, 80)
            ),
        )),
    }
}

fn json_schema_object(field: &str, schema: &Value) -> Result<()> {
    match schema {
        Value::Object(map) if map.get("type").is_none_or(|t| t == "object") => {
            crate::schema::compile(field, schema).map(|_| ())
        }
        _ => Err(Error::invalid(
            field,
            "must be a JSON Schema object with \"type\": \"object\"",
        )),
    }
}

fn header_map(field: &str, headers: &std::collections::BTreeMap<String, String>) -> Result<()> {
    if headers.len() > MAX_LIST {
        return Err(Error::invalid(
            field,
            format!("has {} headers; the limit is {MAX_LIST}", headers.len()),
        ));
    }
    for (name, value) in headers {
        let name_ok = !name.is_empty()
            && name.len() <= 128
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok || value.chars().count() > 4096 || value.contains(['\r', '\n']) {
            return Err(Error::invalid(
                format!("{field}.{}", validate::truncate(name, 40)),
                "is not a valid HTTP header",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: Value) -> Result<AgentSpec> {
        AgentSpec::from_json(value)
    }

    #[test]
    fn minimal_spec_gets_defaults() {
        let agent = spec(json!({"slug": "support", "name": "Support"}))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(agent.model, DEFAULT_MODEL);
        assert_eq!(agent.kind, AgentKind::Chat);
        assert!(agent.tools.is_empty());
    }

    #[test]
    fn bad_specs_name_the_field() {
        let cases = [
            (json!({"slug": "Support", "name": "S"}), "slug"),
            (json!({"slug": "s", "name": ""}), "name"),
            (json!({"slug": "s", "name": "S", "model": "gpt-4"}), "model"),
            (
                json!({"slug": "s", "name": "S", "temperature": 3}),
                "temperature",
            ),
            (
                json!({"slug": "s", "name": "S", "temperature": "hot"}),
                "temperature",
            ),
            (json!({"slug": "s", "name": "S", "colour": "red"}), "colour"),
            (
                json!({"slug": "s", "name": "S", "tools": [{"type": "webhook", "name": "x", "url": "file:///etc"}]}),
                "tools[0].url",
            ),
            (
                json!({"slug": "s", "name": "S", "tools": [{"type": "builtin", "name": "a b"}]}),
                "tools[0].name",
            ),
            (
                json!({"slug": "s", "name": "S", "tools": [{"type": "magic", "name": "a"}]}),
                "tools[0]",
            ),
            (
                json!({"slug": "s", "name": "S", "handoffs": ["s"]}),
                "handoffs[0]",
            ),
            (
                json!({"slug": "s", "name": "S", "output_schema": "yes"}),
                "output_schema",
            ),
            (
                json!({"slug": "s", "name": "S", "widget": {"accent_color": "blue"}}),
                "widget.accent_color",
            ),
        ];
        for (input, field) in cases {
            let error = spec(input.clone())
                .err()
                .unwrap_or_else(|| unreachable!("{input} should fail"));
            let got = error.field().unwrap_or_default().to_owned();
            assert!(
                got.starts_with(field) || got.contains(field),
                "{input}: field {got:?}, want {field:?} ({error})"
            );
        }
    }

    #[test]
    fn merge_patch_changes_only_named_fields() {
        let agent =
            spec(json!({"slug": "s", "name": "S", "temperature": 0.5, "instructions": "Be kind."}))
                .unwrap_or_else(|e| unreachable!("{e}"));
        let patched = agent
            .patched(json!({"name": "New", "temperature": null}))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(patched.name, "New");
        assert_eq!(patched.temperature, None);
        assert_eq!(patched.instructions, "Be kind.");
        assert!(agent.patched(json!({"bogus": 1})).is_err());
        // Nested objects merge too: a widget patch keeps the widget's other fields.
        let with_widget = agent
            .patched(json!({"widget": {"title": "Hi", "starter_prompts": ["a"]}}))
            .unwrap_or_else(|e| unreachable!("{e}"));
        let greeted = with_widget
            .patched(json!({"widget": {"greeting": "Hello!", "title": null}}))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(greeted.widget.greeting.as_deref(), Some("Hello!"));
        assert_eq!(greeted.widget.starter_prompts, vec!["a".to_owned()]);
        assert_eq!(greeted.widget.title, None);
        assert!(agent.patched(json!([1])).is_err());
    }
}
