//! Wire types of the Anthropic Messages API and their conversion. An output schema becomes a
//! forced tool whose input streams as the answer's text, so callers get JSON text from every
//! provider alike.

use frontdesk_core::model::{ModelMessage, ModelRequest};
use frontdesk_core::run::FinishReason;
use serde::Deserialize;
use serde_json::{json, Value};

/// The tool an output schema turns into.
pub const OUTPUT_TOOL: &str = "structured_output";
/// Anthropic requires `max_tokens`; this is used when the agent sets none.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The JSON body of a streaming request.
pub fn request_body(request: &ModelRequest) -> Value {
    let system: Vec<&str> = request
        .messages
        .iter()
        .filter_map(|m| match m {
            ModelMessage::System { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let mut body = json!({
        "model": request.model,
        "max_tokens": request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages(&request.messages),
        "stream": true,
    });
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    let mut tools: Vec<Value> = request
        .tools
        .iter()
        .map(
            |t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}),
        )
        .collect();
    if let Some(schema) = &request.output_schema {
        tools.push(json!({"name": OUTPUT_TOOL, "description": "Give the final answer in this shape.", "input_schema": schema}));
        body["tool_choice"] = json!({"type": "tool", "name": OUTPUT_TOOL});
    }
    if !tools.is_empty() {
        body["tools"] = json!(tools);
    }
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(p) = request.top_p {
        body["top_p"] = json!(p);
    }
    body
}

/// Messages alternate user/assistant; tool results travel in user messages, and
/// consecutive messages of the same role merge.
fn messages(messages: &[ModelMessage]) -> Vec<Value> {
    let mut out: Vec<(String, Vec<Value>)> = Vec::new();
    for message in messages {
        let (role, blocks) = match message {
            ModelMessage::System { .. } => continue,
            ModelMessage::User { text } => ("user", vec![json!({"type": "text", "text": text})]),
            ModelMessage::Assistant { text, tool_calls } => {
                let mut blocks = Vec::new();
                if !text.is_empty() {
                    blocks.push(json!({"type": "text", "text": text}));
                }
                for call in tool_calls {
                    let input: Value =
                        serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
                    blocks.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
                }
                ("assistant", blocks)
            }
            ModelMessage::Tool { call_id, content } => (
                "user",
                vec![json!({"type": "tool_result", "tool_use_id": call_id, "content": content})],
            ),
        };
        match out.last_mut() {
            Some((last_role, last_blocks)) if last_role == role => last_blocks.extend(blocks),
            _ => out.push((role.to_owned(), blocks)),
        }
    }
    out.into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect()
}

/// One streamed event (`type` names it).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    MessageStart {
        message: MessageStart,
    },
    ContentBlockStart {
        index: u32,
        content_block: ContentBlock,
    },
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta,
    },
    ContentBlockStop {},
    MessageDelta {
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<OutputUsage>,
    },
    MessageStop {},
    Ping {},
    Error {
        error: ErrorBody,
    },
    /// Event types added after this code was written are skipped.
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Deserialize)]
pub struct MessageStart {
    #[serde(default)]
    pub usage: Option<InputUsage>,
}

#[derive(Debug, Default, Deserialize)]
pub struct InputUsage {
    #[serde(default)]
    pub input_tokens: i64,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<i64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    Text {},
    ToolUse {
        id: String,
        name: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub struct MessageDeltaBody {
    #[serde(default)]
    pub stop_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct OutputUsage {
    #[serde(default)]
    pub output_tokens: i64,
}

#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub message: String,
}

/// Maps `stop_reason`.
pub fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "max_tokens" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// The message of an error body (`{"type":"error","error":{"message":…}}`), or its start.
pub fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| body.chars().take(300).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_core::model::{ToolCall, ToolSpec};

    #[test]
    fn requests_follow_the_messages_api() {
        let request = ModelRequest {
            model: "claude-sonnet-4-5".into(),
            messages: vec![
                ModelMessage::System {
                    text: "Be brief.".into(),
                },
                ModelMessage::User {
                    text: "Weather in Oslo and Bergen?".into(),
                },
                ModelMessage::Assistant {
                    text: "Checking.".into(),
                    tool_calls: vec![
                        ToolCall {
                            id: "tu_1".into(),
                            name: "weather".into(),
                            arguments: "{\"city\":\"Oslo\"}".into(),
                        },
                        ToolCall {
                            id: "tu_2".into(),
                            name: "weather".into(),
                            arguments: "{\"city\":\"Bergen\"}".into(),
                        },
                    ],
                },
                ModelMessage::Tool {
                    call_id: "tu_1".into(),
                    content: "12 C".into(),
                },
                ModelMessage::Tool {
                    call_id: "tu_2".into(),
                    content: "9 C".into(),
                },
            ],
            tools: vec![ToolSpec {
                name: "weather".into(),
                description: "Weather".into(),
                parameters: json!({"type": "object"}),
            }],
            output_schema: Some(
                json!({"type": "object", "properties": {"answer": {"type": "string"}}}),
            ),
            ..ModelRequest::default()
        };
        let body = request_body(&request);
        assert_eq!(body["system"], "Be brief.");
        assert_eq!(body["max_tokens"], DEFAULT_MAX_TOKENS);
        let messages = body["messages"].as_array().unwrap_or(&Vec::new()).clone();
        assert_eq!(
            messages.len(),
            3,
            "the two tool results merge into one user message: {messages:?}"
        );
        assert_eq!(
            messages[1]["content"][1],
            json!({"type": "tool_use", "id": "tu_1", "name": "weather", "input": {"city": "Oslo"}})
        );
        assert_eq!(messages[2]["role"], "user");
        assert_eq!(
            messages[2]["content"][1],
            json!({"type": "tool_result", "tool_use_id": "tu_2", "content": "9 C"})
        );
        assert_eq!(body["tools"][1]["name"], OUTPUT_TOOL);
        assert_eq!(
            body["tool_choice"],
            json!({"type": "tool", "name": OUTPUT_TOOL})
        );
    }
}
