//! A run's context: what the app that embeds frontdesk knows about the thread (the client,
//! the event, the booking) and hands to the agent. It is the conversation's `metadata`,
//! overlaid with what the caller passes for one turn and then with the identified end user's
//! claims (a signed user token's claims beside `sub`), later layers winning per key.
//!
//! Instructions use it as `{{context.NAME}}` (a dotted path reaches into objects): values are
//! inserted as text in one pass, so a value that itself looks like a placeholder stays text;
//! a missing value renders empty. Webhook tools receive it in a signed header, MCP tools in
//! the call's `_meta`.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Most keys a context (or a conversation's metadata) holds.
pub const MAX_KEYS: usize = 64;
/// Largest context (or metadata) as JSON.
pub const MAX_BYTES: usize = 16 * 1024;

/// The context of one run; cheap to clone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunContext(Arc<Map<String, Value>>);

impl RunContext {
    /// The context of `layers`, later ones winning per key.
    pub fn layered<'a>(layers: impl IntoIterator<Item = &'a Map<String, Value>>) -> Self {
        let mut merged = Map::new();
        for layer in layers {
            for (key, value) in layer {
                merged.insert(key.clone(), value.clone());
            }
        }
        Self(Arc::new(merged))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn values(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The value at a dotted path (`booking.id`).
    pub fn get(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.');
        let mut value = self.0.get(parts.next()?)?;
        for part in parts {
            value = value.get(part)?;
        }
        Some(value)
    }

    /// `template` with each `{{context.NAME}}` (spaces inside the braces allowed) replaced by
    /// its value: a string as it is, anything else as JSON, nothing when missing. Other
    /// `{{…}}` stay as they are.
    pub fn render(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(open) = rest.find("{{") {
            out.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                out.push_str(&rest[open..]);
                return out;
            };
            let inner = after[..close].trim();
            match inner.strip_prefix("context.") {
                Some(path) if is_path(path) => match self.get(path) {
                    Some(Value::String(text)) => out.push_str(text),
                    Some(Value::Null) | None => {}
                    Some(other) => out.push_str(&other.to_string()),
                },
                _ => out.push_str(&rest[open..open + 2 + close + 2]),
            }
            rest = &after[close + 2..];
        }
        out.push_str(rest);
        out
    }

    /// The context as JSON text, for a header or a log.
    pub fn to_json(&self) -> String {
        Value::Object((*self.0).clone()).to_string()
    }
}

/// A dotted path of names made of letters, digits, `_` and `-`.
fn is_path(path: &str) -> bool {
    !path.is_empty()
        && path.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

/// Checks what a caller passes as context or metadata under `field`: at most [`MAX_KEYS`]
/// keys and [`MAX_BYTES`] as JSON.
pub fn check(field: &str, values: &Map<String, Value>) -> Result<()> {
    if values.len() > MAX_KEYS {
        return Err(Error::invalid(
            field,
            format!("has {} keys; the limit is {MAX_KEYS}", values.len()),
        ));
    }
    let size = serde_json::to_vec(values)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_BYTES {
        return Err(Error::invalid(
            field,
            format!("is {size} bytes as JSON; the limit is {MAX_BYTES}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn placeholders_render_once_and_missing_ones_are_empty() {
        let context = RunContext::layered([
            &map(json!({"client_name": "Old", "event": {"id": "evt_1"}})),
            &map(
                json!({"client_name": "Acme Dental", "tricky": "{{context.secret}}",
                        "secret": "hidden", "seats": 4}),
            ),
        ]);
        let cases = [
            (
                "You are helping {{context.client_name}}.",
                "You are helping Acme Dental.",
            ),
            ("{{ context.client_name }}", "Acme Dental"),
            (
                "Event {{context.event.id}}, {{context.seats}} seats",
                "Event evt_1, 4 seats",
            ),
            ("Missing: [{{context.nope}}]", "Missing: []"),
            // A value is text: a placeholder inside it is not expanded again.
            ("{{context.tricky}}", "{{context.secret}}"),
            // Other placeholders and broken ones stay as they are.
            (
                "{{secrets.KEY}} and {{context.}} and {{context.a b}}",
                "{{secrets.KEY}} and {{context.}} and {{context.a b}}",
            ),
            (
                "unclosed {{context.client_name",
                "unclosed {{context.client_name",
            ),
            ("no placeholders", "no placeholders"),
        ];
        for (template, expected) in cases {
            assert_eq!(context.render(template), expected, "{template}");
        }
        assert_eq!(context.get("event.id"), Some(&json!("evt_1")));
    }

    #[test]
    fn oversized_contexts_are_refused_with_their_field() {
        let many: Map<String, Value> = (0..=MAX_KEYS).map(|n| (n.to_string(), json!(n))).collect();
        let error = check("context", &many).err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.starts_with("context:")));
        let big = map(json!({"a": "x".repeat(MAX_BYTES)}));
        assert!(check("metadata", &big).is_err());
        assert!(check("metadata", &map(json!({"a": 1}))).is_ok());
    }
}
