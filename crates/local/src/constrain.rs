//! Constrained decoding with llguidance: with an output schema, or with tools, the local
//! model can only produce JSON that matches. Tool use is one JSON object per turn, either
//! `{"answer": "…"}` or `{"tool": "<name>", "arguments": {…}}`, which `Shape::finish` turns
//! into the same `ModelEvent`s a hosted model sends.

use frontdesk_core::model::{ModelError, ModelEvent, ModelRequest, ToolSpec};
use frontdesk_core::run::FinishReason;
use llama_cpp_2::sampling::LlamaSampler;
use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use serde_json::{json, Value};

/// What the output must be.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Free text, streamed as it comes.
    Text,
    /// JSON matching the request's output schema, streamed as it comes.
    Schema(Value),
    /// An answer or a tool call, as one JSON object, sent when complete.
    Tools(Vec<ToolSpec>),
}

impl Shape {
    pub fn of(request: &ModelRequest) -> Self {
        if !request.tools.is_empty() {
            Shape::Tools(request.tools.clone())
        } else if let Some(schema) = &request.output_schema {
            Shape::Schema(schema.clone())
        } else {
            Shape::Text
        }
    }

    /// Whether text may stream token by token.
    pub fn streams(&self) -> bool {
        !matches!(self, Shape::Tools(_))
    }

    /// The JSON Schema the output is held to, if any.
    pub fn schema(&self) -> Option<Value> {
        match self {
            Shape::Text => None,
            Shape::Schema(schema) => Some(schema.clone()),
            Shape::Tools(tools) => {
                let mut options = vec![json!({
                    "type": "object",
                    "properties": {"answer": {"type": "string"}},
                    "required": ["answer"],
                    "additionalProperties": false
                })];
                for tool in tools {
                    options.push(json!({
                        "type": "object",
                        "properties": {
                            "tool": {"const": tool.name},
                            "arguments": tool.parameters
                        },
                        "required": ["tool", "arguments"],
                        "additionalProperties": false
                    }));
                }
                Some(json!({"anyOf": options}))
            }
        }
    }

    /// What the system prompt adds so that the model knows the shape it must take; with
    /// `tools_in_template` the template itself lists the tools.
    pub fn instructions(&self, tools_in_template: bool) -> Option<String> {
        match self {
            Shape::Text => None,
            Shape::Schema(schema) => Some(format!(
                "Answer with one JSON value matching this JSON Schema, and nothing else:\n{schema}"
            )),
            Shape::Tools(tools) => {
                let mut text = String::from(
                    "You can call tools. Reply with one JSON object and nothing else: either \
                     {\"answer\": \"<your reply to the user>\"} or \
                     {\"tool\": \"<tool name>\", \"arguments\": {<arguments>}}.\nTools:\n",
                );
                if tools_in_template {
                    return Some(text.replace("\nTools:\n", ""));
                }
                for tool in tools {
                    text.push_str(&format!(
                        "- {}: {} Arguments (JSON Schema): {}\n",
                        tool.name, tool.description, tool.parameters
                    ));
                }
                Some(text)
            }
        }
    }

    /// The events of a complete (buffered) `Tools` output.
    pub fn finish(&self, output: &str, call_id: &str) -> Result<Vec<ModelEvent>, ModelError> {
        let value: Value = serde_json::from_str(output.trim()).map_err(|e| {
            ModelError::Protocol(format!(
                "the local model's constrained output is not JSON: {e}"
            ))
        })?;
        if let Some(answer) = value.get("answer").and_then(Value::as_str) {
            return Ok(vec![ModelEvent::TextDelta(answer.to_owned())]);
        }
        match (
            value.get("tool").and_then(Value::as_str),
            value.get("arguments"),
        ) {
            (Some(name), Some(arguments)) => Ok(vec![ModelEvent::ToolCallDelta {
                index: 0,
                id: Some(call_id.to_owned()),
                name: Some(name.to_owned()),
                arguments: arguments.to_string(),
            }]),
            _ => Err(ModelError::Protocol(
                "the local model's output is neither an answer nor a tool call".to_owned(),
            )),
        }
    }

    /// How a complete `Tools` output ended.
    pub fn finish_reason(events: &[ModelEvent]) -> FinishReason {
        if events
            .iter()
            .any(|e| matches!(e, ModelEvent::ToolCallDelta { .. }))
        {
            FinishReason::ToolCalls
        } else {
            FinishReason::Stop
        }
    }
}

/// A sampler that allows only tokens keeping the output inside `schema`.
pub fn sampler(factory: &ParserFactory, schema: Value) -> Result<LlamaSampler, ModelError> {
    let parser = factory
        .create_parser(TopLevelGrammar::from_json_schema(schema))
        .map_err(|e| {
            ModelError::Config(format!(
                "the JSON Schema cannot constrain the local model: {e}"
            ))
        })?;
    Ok(LlamaSampler::from(Matcher::new(Ok(parser))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weather() -> ToolSpec {
        ToolSpec {
            name: "weather".into(),
            description: "The weather in a city.".into(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        }
    }

    #[test]
    fn tool_outputs_become_model_events() {
        let shape = Shape::Tools(vec![weather()]);
        assert!(!shape.streams());
        let schema = shape.schema().unwrap_or_default();
        assert_eq!(schema["anyOf"][1]["properties"]["tool"]["const"], "weather");
        let call = shape
            .finish(
                r#"{"tool": "weather", "arguments": {"city": "Oslo"}}"#,
                "call_1",
            )
            .unwrap_or_default();
        assert_eq!(
            call,
            [ModelEvent::ToolCallDelta {
                index: 0,
                id: Some("call_1".into()),
                name: Some("weather".into()),
                arguments: r#"{"city":"Oslo"}"#.into()
            }]
        );
        assert_eq!(Shape::finish_reason(&call), FinishReason::ToolCalls);
        let answer = shape.finish(r#"{"answer": "Hi"}"#, "c").unwrap_or_default();
        assert_eq!(answer, [ModelEvent::TextDelta("Hi".into())]);
        assert_eq!(Shape::finish_reason(&answer), FinishReason::Stop);
        assert!(shape.finish("not json", "c").is_err());
        assert!(shape.finish(r#"{"other": 1}"#, "c").is_err());
    }
}
