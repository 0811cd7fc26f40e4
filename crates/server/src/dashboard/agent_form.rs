//! The agent editor's form: which fields it shows how, reading a posted form back into a
//! whole agent spec (or the errors of the fields that do not parse), and the JSON merge
//! patch that turns the stored spec into the edited one.

use frontdesk_core::agent::AgentSpec;
use serde_json::{Map, Value};

/// The fields the editor shows as JSON, each with a label and what it holds.
pub(super) const JSON_FIELDS: &[(&str, &str, &str)] = &[
    ("tools", "Tools", "Built-ins ({\"type\": \"builtin\", \"name\": …}) and webhooks ({\"type\": \"webhook\", \"name\", \"description\", \"parameters\", \"url\", …})."),
    ("mcp_servers", "MCP servers", "[{\"name\", \"url\", \"headers\", \"requires_approval\"}]"),
    ("output_schema", "Output schema", "A JSON Schema the final answer must match; null for free text."),
    ("guardrails", "Guardrails", "Input and output checks (blocked terms, PII, …)."),
    ("approvals", "Approvals", "Which tool calls wait for a person, and how long."),
    ("knowledge", "Knowledge", "Knowledge bases and retrieval settings; null for none."),
    ("budgets", "Budgets", "Per-run limits on tokens, cost and tool calls."),
    ("widget", "Widget", "Title, greeting, starter prompts, colours, the public page."),
    ("voice", "Voice", "Voice agent settings (transport, realtime model, greeting)."),
];

/// The editor's values for an agent spec.
pub(super) fn editor_values(spec: &AgentSpec) -> Map<String, Value> {
    let json = serde_json::to_value(spec).unwrap_or(Value::Null);
    let mut values = Map::new();
    let text = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for field in [
        "slug",
        "name",
        "description",
        "instructions",
        "model",
        "temperature",
        "top_p",
        "max_tokens",
        "max_turns",
        "kind",
        "after_handoff",
    ] {
        values.insert(field.into(), Value::String(text(&json[field])));
    }
    values.insert(
        "fallback_models".into(),
        Value::String(spec.fallback_models.join("\n")),
    );
    values.insert("handoffs".into(), Value::String(spec.handoffs.join("\n")));
    for (field, _, _) in JSON_FIELDS {
        let pretty = serde_json::to_string_pretty(&json[*field]).unwrap_or_default();
        values.insert((*field).into(), Value::String(pretty));
    }
    values
}

/// Reads the editor's form into a full spec, or the errors of the fields that do not parse.
pub(super) fn spec_from_form(
    current: &Value,
    form: &Map<String, Value>,
) -> Result<Value, Map<String, Value>> {
    let mut spec = current.clone();
    let mut errors = Map::new();
    let text = |name: &str| {
        form.get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let Value::Object(fields) = &mut spec else {
        return Ok(spec);
    };
    for field in ["slug", "name", "description", "instructions", "model"] {
        fields.insert(
            field.into(),
            Value::String(text(field).trim_end().to_owned()),
        );
    }
    for field in ["kind", "after_handoff"] {
        if form.contains_key(field) {
            fields.insert(field.into(), Value::String(text(field)));
        }
    }
    for (field, integer) in [
        ("temperature", false),
        ("top_p", false),
        ("max_tokens", true),
        ("max_turns", true),
    ] {
        let raw = text(field);
        let raw = raw.trim();
        if raw.is_empty() {
            if field == "max_turns" {
                fields.remove(field);
            } else {
                fields.insert(field.into(), Value::Null);
            }
            continue;
        }
        let parsed = if integer {
            raw.parse::<u64>().ok().map(Value::from)
        } else {
            raw.parse::<f64>()
                .ok()
                .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number))
        };
        match parsed {
            Some(value) => {
                fields.insert(field.into(), value);
            }
            None => {
                let kind = if integer {
                    "a whole number"
                } else {
                    "a number"
                };
                errors.insert(
                    field.into(),
                    Value::String(format!("enter {kind}, or leave it empty")),
                );
            }
        }
    }
    for field in ["fallback_models", "handoffs"] {
        let list: Vec<Value> = super::entries(&text(field))
            .into_iter()
            .map(Value::String)
            .collect();
        fields.insert(field.into(), Value::Array(list));
    }
    for (field, label, _) in JSON_FIELDS {
        let raw = text(field);
        let raw = raw.trim();
        let value = if raw.is_empty() {
            Ok(Value::Null)
        } else {
            serde_json::from_str::<Value>(raw)
        };
        match value {
            Ok(Value::Null) if !matches!(*field, "output_schema" | "knowledge") => {
                fields.remove(*field);
            }
            Ok(value) => {
                fields.insert((*field).into(), value);
            }
            Err(e) => {
                errors.insert(
                    (*field).into(),
                    Value::String(format!("{label} is not valid JSON: {e}")),
                );
            }
        }
    }
    if errors.is_empty() {
        Ok(spec)
    } else {
        Err(errors)
    }
}

/// The JSON merge patch that turns `old` into `new` (removed keys become `null`).
pub(super) fn merge_diff(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut patch = Map::new();
            for (key, value) in b {
                match a.get(key) {
                    Some(before) if before == value => {}
                    Some(before) if before.is_object() && value.is_object() => {
                        patch.insert(key.clone(), merge_diff(before, value));
                    }
                    _ => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            for key in a.keys() {
                if !b.contains_key(key) {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            Value::Object(patch)
        }
        _ => new.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_diff_turns_the_old_value_into_the_new_one() {
        let old = serde_json::json!({"a": 1, "b": {"x": 1, "y": 2}, "c": [1], "gone": true});
        let new = serde_json::json!({"a": 1, "b": {"x": 1, "z": 3}, "c": [2]});
        let patch = merge_diff(&old, &new);
        assert_eq!(
            patch,
            serde_json::json!({"b": {"y": null, "z": 3}, "c": [2], "gone": null})
        );
    }
}
