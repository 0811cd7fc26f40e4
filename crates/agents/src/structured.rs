//! Structured output: the answer of an agent with an `output_schema` is JSON matching it. The
//! provider's native mode does most of the work; the Runner still validates, asks once more
//! with the errors when the answer does not match, and keeps the JSON beside a text rendering.
//!
//! One convention is built in: `{"response": "…", "suggestions": ["…"]}` renders as the reply
//! (the widget shows the suggestions as quick replies).

use serde_json::Value;

/// The JSON in an answer: the whole text, or the first fenced block when a model wrapped it.
pub fn parse(text: &str) -> Result<Value, String> {
    let trimmed = text.trim();
    let body = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.trim_end().strip_suffix("```"))
        .unwrap_or(trimmed);
    serde_json::from_str(body.trim()).map_err(|e| format!("the answer is not valid JSON: {e}"))
}

/// Validates `text` against the schema; returns the JSON or what is wrong with it.
pub fn validate(schema: &Value, text: &str) -> Result<Value, String> {
    let compiled = frontdesk_core::schema::compile("output_schema", schema)
        .map_err(|e| format!("the agent's output schema does not compile: {e}"))?;
    let value = parse(text)?;
    compiled
        .check(&value)
        .map_err(|e| format!("the answer does not match the schema: {e}"))?;
    Ok(value)
}

/// The message that asks the model to try again.
pub fn repair_prompt(problem: &str) -> String {
    format!(
        "Your previous answer was rejected: {problem}. Answer again with only a JSON value that matches the required schema."
    )
}

/// The text shown for a structured answer: `response` when the object has one, else the JSON.
pub fn render(value: &Value) -> String {
    match value.get("response").and_then(Value::as_str) {
        Some(response) => response.to_owned(),
        None => serde_json::to_string_pretty(value).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_are_validated_and_rendered() {
        let schema = json!({
            "type": "object",
            "properties": {"response": {"type": "string"}, "suggestions": {"type": "array", "items": {"type": "string"}}},
            "required": ["response", "suggestions"]
        });
        let value = validate(
            &schema,
            "```json\n{\"response\": \"Hi!\", \"suggestions\": [\"Track order\"]}\n```",
        )
        .unwrap_or_default();
        assert_eq!(render(&value), "Hi!");
        assert!(validate(&schema, "{\"response\": 1}")
            .unwrap_err()
            .contains("does not match"));
        assert!(validate(&schema, "Hello")
            .unwrap_err()
            .contains("not valid JSON"));
        assert_eq!(render(&json!({"a": 1})), "{\n  \"a\": 1\n}");
    }
}
