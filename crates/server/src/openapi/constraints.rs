//! What the server checks about a request, said in the document: patterns, lengths, ranges
//! and enums the derive cannot see (they live in the domain's `validate` functions). Each
//! entry names the schema property or the operation's parameter it adds to; a test checks
//! every entry lands, so a renamed field cannot leave its rule behind silently.
//!
//! Rules between fields or against stored data (two tools with one name, a handoff to the
//! agent itself, a regular expression the `regex` crate refuses) are in the descriptions;
//! the server answers them with 422 naming the field.

use serde_json::{json, Value};

/// A slug: what `validate::slug` accepts.
pub(super) const SLUG: &str = "^[a-z0-9][a-z0-9-]{0,63}$";
/// An agent named by id or slug.
pub(super) const AGENT_REF: &str = "^([a-z0-9][a-z0-9-]{0,63}|agt_[0-7][0-9a-hjkmnp-tv-z]{25})$";
/// A tool, secret or server name: what `validate::tool_name` accepts.
const NAME: &str = "^[A-Za-z0-9_-]{1,64}$";
/// Holds something other than white space (Unicode `White_Space`, as Rust's `trim`).
pub(super) const NOT_BLANK: &str =
    "[^\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]";
/// `provider/model`, no white space.
pub(super) const MODEL: &str = "^[A-Za-z0-9_-]+/[^\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]+$";
/// An absolute http(s) URL with a host, no credentials and no white space.
const URL: &str = "^https?://[^/?#@\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]+([/?#][^\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*)?$";

/// A phone number in E.164 form.
pub(super) const PHONE: &str = "^\\+[0-9]{8,15}$";

/// An origin: `scheme://host[:port]`, any case, surrounding white space and a trailing `/`
/// ignored.
const ORIGIN: &str = "^[\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*[Hh][Tt][Tt][Pp][Ss]?://([A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?/*[\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*$";

/// An email address as `tenant::normalize_email` takes it: one `@`, a dotted domain that
/// neither starts nor ends with a dot, no white space but around it.
const EMAIL: &str = "^[\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*[^@\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]+@[^@.\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^@\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*\\.[^@\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*[^@.\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*$";

/// A page frontdesk fetches: http(s), a host name in ASCII (an international name in its
/// `xn--` form), an optional port.
const FETCHED_URL: &str = "^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][^\\s]*)?$";

pub(super) fn text(min: usize, max: usize) -> Value {
    if min > 0 {
        json!({"minLength": min, "maxLength": max, "pattern": NOT_BLANK})
    } else {
        json!({"maxLength": max})
    }
}

fn headers() -> Value {
    json!({
        "maxProperties": 32,
        "propertyNames": {"pattern": "^[A-Za-z0-9_-]{1,128}$"},
        "additionalProperties": {"type": "string", "maxLength": 4096, "pattern": "^[^\\r\\n]*$"},
    })
}

/// A message's content: text, or a list of text parts.
fn content() -> Value {
    json!({
        "type": ["string", "array"],
        "maxLength": 100_000,
        "pattern": NOT_BLANK,
        "items": {"$ref": "#/components/schemas/ContentPartText"},
        "contains": {"properties": {"text": {"pattern": NOT_BLANK}}},
        "description": "The message: text, or a list of text parts (100,000 characters at most, not all blank).",
    })
}

pub(super) fn range(min: u64, max: u64) -> Value {
    json!({"minimum": min, "maximum": max})
}

/// `(schema, JSON pointer in it, what to add)`.
fn properties() -> Vec<(&'static str, &'static str, Value)> {
    let prompt = json!({"maxItems": 8, "items": text(1, 200)});
    vec![
        ("AgentSpec", "/properties/slug", json!({"pattern": SLUG})),
        ("AgentSpec", "/properties/name", text(1, 200)),
        ("AgentSpec", "/properties/description", text(0, 2_000)),
        ("AgentSpec", "/properties/instructions", text(0, 100_000)),
        (
            "AgentSpec",
            "/properties/model",
            json!({"maxLength": 200, "pattern": MODEL}),
        ),
        (
            "AgentSpec",
            "/properties/fallback_models",
            json!({"maxItems": 8, "items": {"maxLength": 200, "pattern": MODEL}}),
        ),
        (
            "AgentSpec",
            "/properties/temperature",
            json!({"minimum": 0, "maximum": 2}),
        ),
        (
            "AgentSpec",
            "/properties/top_p",
            json!({"minimum": 0, "maximum": 1}),
        ),
        ("AgentSpec", "/properties/max_tokens", range(1, 1_000_000)),
        (
            "AgentSpec",
            "/properties/tools",
            json!({"maxItems": 128, "description": "Tool names are unique within an agent; `transfer_to_…` is kept for handoffs."}),
        ),
        (
            "AgentSpec",
            "/properties/mcp_servers",
            json!({"maxItems": 32}),
        ),
        (
            "AgentSpec",
            "/properties/handoffs",
            json!({"maxItems": 32, "items": {"pattern": SLUG}, "description": "Slugs of agents in the same tenant this agent may hand off to (not itself)."}),
        ),
        (
            "AgentSpec",
            "/properties/output_schema",
            json!({"description": "JSON Schema the final answer must match: an object schema (`type` absent or `object`)."}),
        ),
        ("AgentSpec", "/properties/max_turns", range(1, 100)),
        (
            "ToolEntryBuiltin",
            "",
            json!({"additionalProperties": false}),
        ),
        (
            "ContentPartText",
            "",
            json!({"additionalProperties": false}),
        ),
        (
            "ToolEntryWebhook",
            "",
            json!({"additionalProperties": false}),
        ),
        (
            "ToolEntryBuiltin",
            "/properties/name",
            json!({"enum": frontdesk_core::tool::BUILTIN_TOOLS}),
        ),
        (
            "ToolEntryWebhook",
            "/properties/name",
            json!({"pattern": NAME, "not": {"pattern": "^transfer_to_"}}),
        ),
        (
            "ToolEntryWebhook",
            "/properties/description",
            text(0, 2_000),
        ),
        (
            "ToolEntryWebhook",
            "/properties/parameters",
            json!({"description": "JSON Schema of the arguments: an object schema (`type` absent or `object`).", "properties": {"type": {"const": "object"}}}),
        ),
        (
            "ToolEntryWebhook",
            "/properties/url",
            json!({"maxLength": 2048, "pattern": URL}),
        ),
        ("ToolEntryWebhook", "/properties/headers", headers()),
        (
            "ToolEntryWebhook",
            "/properties/timeout_ms",
            range(1, 120_000),
        ),
        (
            "McpServerEntry",
            "/properties/name",
            json!({"pattern": NAME}),
        ),
        (
            "McpServerEntry",
            "/properties/url",
            json!({"maxLength": 2048, "pattern": URL}),
        ),
        ("McpServerEntry", "/properties/headers", headers()),
        ("Guardrails", "/properties/safe_reply", text(1, 2_000)),
        (
            "InputGuardrails",
            "/properties/max_chars",
            json!({"minimum": 1}),
        ),
        (
            "InputGuardrails",
            "/properties/blocked_patterns",
            json!({"maxItems": 64, "items": {"format": "regex", "minLength": 1, "maxLength": 1_000, "pattern": NOT_BLANK}}),
        ),
        (
            "InputGuardrails",
            "/properties/classifier",
            json!({"pattern": SLUG}),
        ),
        (
            "OutputGuardrails",
            "/properties/blocked_patterns",
            json!({"maxItems": 64, "items": {"format": "regex", "minLength": 1, "maxLength": 1_000, "pattern": NOT_BLANK}}),
        ),
        (
            "OutputGuardrails",
            "/properties/classifier",
            json!({"pattern": SLUG}),
        ),
        (
            "OutputGuardrails",
            "/properties/schema",
            json!({"type": ["object", "boolean", "null"], "description": "A JSON Schema (an object or a boolean) the answer must match."}),
        ),
        (
            "Approvals",
            "/properties/expires_after_seconds",
            range(1, 2_592_000),
        ),
        (
            "Approvals",
            "/properties/tools",
            json!({"maxItems": 128, "items": {"pattern": NAME}}),
        ),
        ("Budgets", "/properties/max_tokens", json!({"minimum": 1})),
        ("Budgets", "/properties/max_tool_calls", range(1, 1_000)),
        ("Budgets", "/properties/max_seconds", range(1, 3_600)),
        (
            "KnowledgeSettings",
            "/properties/knowledge_base_ids",
            json!({"maxItems": 32, "items": {"pattern": "^kb_[0-7][0-9a-hjkmnp-tv-z]{25}$"}}),
        ),
        ("KnowledgeSettings", "/properties/top_k", range(1, 50)),
        (
            "KnowledgeSettings",
            "/properties/min_score",
            json!({"minimum": -1, "maximum": 1}),
        ),
        ("KnowledgeQuery", "/properties/query", text(1, 2_000)),
        ("KnowledgeQuery", "/properties/top_k", range(1, 50)),
        (
            "KnowledgeQuery",
            "/properties/min_score",
            json!({"minimum": -1, "maximum": 1}),
        ),
        (
            "KnowledgeQuery",
            "/properties/document_ids",
            json!({"maxItems": 100, "items": {"pattern": "^doc_[0-7][0-9a-hjkmnp-tv-z]{25}$"}}),
        ),
        (
            "NewDocumentBody",
            "",
            json!({"oneOf": [
                {"required": ["text"], "properties": {"text": {"type": "string"}}},
                {"required": ["url"], "properties": {"url": {"type": "string"}}},
                {"required": ["sitemap"], "properties": {"sitemap": {"type": "string"}}},
            ]}),
        ),
        (
            "UploadForm",
            "/properties/url",
            json!({"type": "string", "maxLength": 2000, "pattern": URL}),
        ),
        (
            "NewDocumentBody",
            "/properties/text",
            text(1, 20 * 1024 * 1024),
        ),
        ("NewDocumentBody", "/properties/title", text(0, 200)),
        (
            "NewDocumentBody",
            "/properties/url",
            json!({"maxLength": 2000, "pattern": FETCHED_URL}),
        ),
        (
            "NewDocumentBody",
            "/properties/sitemap",
            json!({"maxLength": 2000, "pattern": FETCHED_URL}),
        ),
        (
            "NewDocumentBody",
            "/properties/refresh_hours",
            range(1, 8_760),
        ),
        ("NewDocumentBody", "/properties/max_pages", range(1, 200)),
        ("Assignee", "/properties/id", text(1, 200)),
        ("Assignee", "/properties/name", text(1, 200)),
        (
            "Assignee",
            "/properties/avatar_url",
            json!({"maxLength": 2_048, "pattern": URL}),
        ),
        ("StaffMessage", "/properties/content", text(1, 100_000)),
        // A secret key's caller names the person acting (a dashboard session is its member).
        ("Acting", "", json!({"required": ["assignee"]})),
        (
            "StaffMessage",
            "",
            json!({"required": ["content", "assignee"]}),
        ),
        (
            "HumanSettings",
            "/properties/waiting_message",
            text(1, 2_000),
        ),
        (
            "HumanSettings",
            "/properties/wait_seconds",
            range(1, 86_400),
        ),
        (
            "HumanSettings",
            "/properties/notify_url",
            json!({"maxLength": 2_048, "pattern": URL}),
        ),
        (
            "OpeningHours",
            "/properties/periods",
            json!({"maxItems": 50}),
        ),
        (
            "Period",
            "/properties/days",
            json!({"minItems": 1, "items": {"enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}}),
        ),
        (
            "Period",
            "/properties/from",
            json!({"pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}),
        ),
        (
            "Period",
            "/properties/to",
            json!({"pattern": "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"}),
        ),
        ("WidgetSettings", "/properties/title", text(0, 200)),
        ("WidgetSettings", "/properties/subtitle", text(0, 200)),
        ("WidgetSettings", "/properties/placeholder", text(0, 200)),
        ("WidgetSettings", "/properties/greeting", text(0, 2_000)),
        (
            "WidgetSettings",
            "/properties/avatar_url",
            json!({"maxLength": 2048, "pattern": URL.replace("https?", "https")}),
        ),
        (
            "WidgetSettings",
            "/properties/accent_color",
            json!({"pattern": "^#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$"}),
        ),
        (
            "WidgetSettings",
            "/properties/radius",
            json!({"maximum": 48}),
        ),
        (
            "WidgetSettings",
            "/properties/starter_prompts",
            prompt.clone(),
        ),
        (
            "WidgetSettings",
            "/properties/texts",
            json!({"maxProperties": 40, "propertyNames": {"maxLength": 35, "pattern": "^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$"}}),
        ),
        ("WidgetTexts", "/properties/title", text(0, 200)),
        ("WidgetTexts", "/properties/subtitle", text(0, 200)),
        ("WidgetTexts", "/properties/placeholder", text(0, 200)),
        ("WidgetTexts", "/properties/greeting", text(0, 2_000)),
        ("WidgetTexts", "/properties/starter_prompts", prompt),
        (
            "WidgetTexts",
            "/properties/labels",
            json!({"propertyNames": {"enum": frontdesk_core::widget::LABELS}, "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NOT_BLANK}}),
        ),
        ("NewKey", "/properties/name", text(0, 200)),
        (
            "NewKey",
            "/properties/allowed_origins",
            json!({"maxItems": 32}),
        ),
        ("Origin", "", json!({"pattern": ORIGIN, "maxLength": 300})),
        (
            "NewKey",
            "/properties/allowed_agents",
            json!({"maxItems": 64, "items": {"pattern": SLUG}, "description": "Agent slugs a publishable key may reach (agents of the tenant); empty means all."}),
        ),
        (
            "NewKey",
            "/properties/rate_limit_per_minute",
            range(1, 1_000_000),
        ),
        (
            "NewConversation",
            "/properties/agent",
            json!({"pattern": AGENT_REF}),
        ),
        ("NewConversation", "/properties/end_user_id", text(1, 256)),
        ("NewConversation", "/properties/title", text(1, 200)),
        (
            "NewConversation",
            "/properties/metadata",
            json!({"maxProperties": 64}),
        ),
        (
            "StartConversation",
            "/properties/agent",
            json!({"pattern": AGENT_REF}),
        ),
        ("StartConversation", "/properties/end_user_id", text(1, 256)),
        ("StartConversation", "/properties/title", text(1, 200)),
        (
            "StartConversation",
            "/properties/metadata",
            json!({"maxProperties": 64}),
        ),
        (
            "SendMessage",
            "/properties/metadata",
            json!({"maxProperties": 64}),
        ),
        ("SendMessage", "/properties/content", content()),
        (
            "SendMessage",
            "/properties/model",
            json!({"maxLength": 200, "pattern": MODEL}),
        ),
        (
            "SendMessage",
            "/properties/agent_version",
            json!({"minimum": 1}),
        ),
        (
            "Answering",
            "/properties/model",
            json!({"maxLength": 200, "pattern": MODEL}),
        ),
        (
            "Answering",
            "/properties/agent_version",
            json!({"minimum": 1}),
        ),
        ("StartConversation", "/properties/content", content()),
        ("UpdateConversation", "/properties/title", text(1, 200)),
        (
            "UpdateConversation",
            "/properties/active_message_id",
            json!({"pattern": "^msg_[0-7][0-9a-hjkmnp-tv-z]{25}$"}),
        ),
        (
            "UpdateConversation",
            "/properties/metadata",
            json!({"maxProperties": 64}),
        ),
        ("NewTenant", "/properties/name", text(1, 200)),
        ("NewKnowledgeBase", "/properties/name", text(1, 200)),
        (
            "NewKnowledgeBase",
            "/properties/description",
            json!({"maxLength": 2000}),
        ),
        (
            "NewTenant",
            "/properties/owner_email",
            json!({"pattern": EMAIL, "maxLength": 254}),
        ),
        (
            "NewTenant",
            "/properties/monthly_token_quota",
            json!({"minimum": 0}),
        ),
        (
            "PutSecret",
            "/properties/value",
            json!({"minLength": 1, "maxLength": 4_096, "pattern": "^[^\\r\\n]*[^\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^\\r\\n]*$"}),
        ),
    ]
}

/// `(path, method, parameter, what to add)`.
fn parameters() -> Vec<(&'static str, &'static str, &'static str, Value)> {
    let order = json!({"enum": ["asc", "desc"]});
    vec![
        (
            "/api/v1/agents/{agent}",
            "get",
            "agent",
            json!({"pattern": AGENT_REF}),
        ),
        (
            "/api/v1/conversations",
            "get",
            "agent",
            json!({"pattern": AGENT_REF}),
        ),
        (
            "/api/v1/conversations",
            "get",
            "archived",
            json!({"enum": ["true", "false", "all"]}),
        ),
        (
            "/api/v1/conversations",
            "get",
            "end_user_id",
            json!({"maxLength": 256}),
        ),
        (
            "/api/v1/conversations",
            "get",
            "q",
            json!({"maxLength": 200}),
        ),
        (
            "/api/v1/conversations/{conversation}",
            "get",
            "order",
            order.clone(),
        ),
        (
            "/api/v1/conversations/{conversation}/messages",
            "get",
            "order",
            order,
        ),
        (
            "/api/v1/conversations/{conversation}/export",
            "get",
            "format",
            json!({"enum": ["json", "markdown"]}),
        ),
        (
            "/api/v1/secrets/{name}",
            "put",
            "name",
            json!({"pattern": NAME}),
        ),
        (
            "/api/v1/secrets/{name}",
            "delete",
            "name",
            json!({"pattern": NAME}),
        ),
        (
            "/api/v1/usage",
            "get",
            "group_by",
            json!({"enum": ["day", "agent", "model"]}),
        ),
        (
            "/api/v1/usage",
            "get",
            "from",
            json!({"format": "date-time"}),
        ),
        ("/api/v1/usage", "get", "to", json!({"format": "date-time"})),
        (
            "/api/v1/webhook-signing-secret/rotate",
            "post",
            "overlap_seconds",
            range(0, 604_800),
        ),
        (
            "/api/v1/widget-identity-secret/rotate",
            "post",
            "overlap_seconds",
            range(0, 604_800),
        ),
    ]
}

/// Adds every rule to `doc`; `max_page_size` bounds each `limit`. Returns the entries that
/// found nothing to add to.
pub fn apply(doc: &mut Value, max_page_size: u32) -> Vec<String> {
    let mut missing = Vec::new();
    for (schema, pointer, rules) in properties()
        .into_iter()
        .chain(super::call_rules::properties())
    {
        let target = doc
            .pointer_mut(&format!("/components/schemas/{schema}"))
            .and_then(|schema| schema.pointer_mut(pointer));
        match target {
            Some(target) => add(target, rules),
            None => missing.push(format!("{schema}{pointer}")),
        }
    }
    for (path, method, name, rules) in parameters()
        .into_iter()
        .chain(super::call_rules::parameters())
    {
        match parameter(doc, path, method, name) {
            Some(schema) => add(schema, rules),
            None => missing.push(format!("{method} {path} {name}")),
        }
    }
    bound_limits(doc, max_page_size);
    missing
}

/// Bounds every `limit` parameter by `max_page_size`.
pub fn bound_limits(doc: &mut Value, max_page_size: u32) {
    let paths: Vec<String> = doc["paths"]
        .as_object()
        .map(|paths| paths.keys().cloned().collect())
        .unwrap_or_default();
    for path in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if let Some(limit) = parameter(doc, &path, method, "limit") {
                if let Some(schema) = limit.as_object_mut() {
                    schema.remove("format");
                }
                add(limit, range(1, u64::from(max_page_size)));
            }
        }
    }
}

fn parameter<'d>(
    doc: &'d mut Value,
    path: &str,
    method: &str,
    name: &str,
) -> Option<&'d mut Value> {
    doc["paths"]
        .get_mut(path)?
        .get_mut(method)?
        .get_mut("parameters")?
        .as_array_mut()?
        .iter_mut()
        .find(|parameter| parameter["name"] == name)?
        .get_mut("schema")
}

/// Adds `rules` to a property. A property that may be `null` (`Option`) keeps its `null`:
/// string rules apply to strings only, so they sit beside the type; a `$ref` or `oneOf`
/// wrapper gets the rules beside it too (JSON Schema 2020-12 reads sibling keywords).
fn add(target: &mut Value, rules: Value) {
    let (Some(target), Value::Object(rules)) = (target.as_object_mut(), rules) else {
        return;
    };
    for (key, rule) in rules {
        match (target.get_mut(&key), rule) {
            (Some(Value::Object(existing)), Value::Object(rule)) if key == "items" => {
                existing.extend(rule);
            }
            (_, rule) => {
                target.insert(key, rule);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_rule_finds_its_field() {
        let missing = super::apply(&mut super::super::generated_native(), 100);
        assert!(
            missing.is_empty(),
            "rules for fields that are not there: {missing:?}"
        );
    }
}
