//! Wire types of the OpenAI Responses API and their conversion to and from the
//! provider-neutral types. Lenient on what arrives (unknown fields and event types ignored),
//! exact on what leaves.

use frontdesk_core::conversation::Usage;
use frontdesk_core::model::{ModelError, ModelMessage, ModelRequest};
use frontdesk_core::run::FinishReason;
use serde::Deserialize;
use serde_json::{json, Value};

/// HTTP error bodies have the Chat Completions shape (`{"error": {"message": …}}`).
pub use crate::openai_chat::wire::error_message;

/// The JSON body of a streaming request. Nothing is stored at OpenAI (`store: false`): every
/// request carries the whole conversation, as with Chat Completions.
pub fn request_body(request: &ModelRequest) -> Value {
    let instructions: Vec<&str> = request
        .messages
        .iter()
        .filter_map(|m| match m {
            ModelMessage::System { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let mut body = json!({
        "model": request.model,
        "input": input_items(&request.messages),
        "stream": true,
        "store": false,
    });
    if !instructions.is_empty() {
        body["instructions"] = json!(instructions.join("\n\n"));
    }
    if !request.tools.is_empty() {
        // The API makes function tools strict unless told otherwise, and strict mode accepts
        // only a subset of JSON Schema that tools from MCP servers rarely keep to.
        body["tools"] = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                    "strict": false,
                })
            })
            .collect();
    }
    if let Some(schema) = &request.output_schema {
        body["text"] = json!({"format": {
            "type": "json_schema", "name": "output", "schema": schema, "strict": true,
        }});
    }
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(p) = request.top_p {
        body["top_p"] = json!(p);
    }
    if let Some(n) = request.max_tokens {
        body["max_output_tokens"] = json!(n);
    }
    body
}

/// The conversation as input items: messages, the assistant's function calls, and their
/// outputs. System messages travel as `instructions` instead.
fn input_items(messages: &[ModelMessage]) -> Vec<Value> {
    let mut items = Vec::new();
    for message in messages {
        match message {
            ModelMessage::System { .. } => {}
            ModelMessage::User { text } => {
                items.push(json!({"type": "message", "role": "user", "content": text}));
            }
            ModelMessage::Assistant { text, tool_calls } => {
                if !text.is_empty() || tool_calls.is_empty() {
                    items.push(json!({"type": "message", "role": "assistant", "content": text}));
                }
                items.extend(tool_calls.iter().map(|call| {
                    json!({
                        "type": "function_call",
                        "call_id": call.id,
                        "name": call.name,
                        "arguments": call.arguments,
                    })
                }));
            }
            ModelMessage::Tool { call_id, content } => {
                items.push(
                    json!({"type": "function_call_output", "call_id": call_id, "output": content}),
                );
            }
        }
    }
    items
}

/// One streamed event (the JSON `type` names it; the SSE `event:` line repeats it).
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub enum StreamEvent {
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta { delta: String },
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded { output_index: u32, item: OutputItem },
    #[serde(rename = "response.function_call_arguments.delta")]
    FunctionCallArgumentsDelta { output_index: u32, delta: String },
    #[serde(rename = "response.output_item.done")]
    OutputItemDone { output_index: u32, item: OutputItem },
    #[serde(rename = "response.completed")]
    Completed { response: Response },
    #[serde(rename = "response.incomplete")]
    Incomplete { response: Response },
    #[serde(rename = "response.failed")]
    Failed { response: Response },
    #[serde(rename = "error")]
    Error {
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        message: String,
    },
    /// Lifecycle events, reasoning, refusals, built-in tools and event types added after this
    /// code was written are skipped.
    #[serde(other)]
    Unknown,
}

/// An output item, as far as this provider cares.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub enum OutputItem {
    #[serde(rename = "function_call")]
    FunctionCall {
        call_id: String,
        name: String,
        #[serde(default)]
        arguments: String,
    },
    #[serde(other)]
    Other,
}

/// The Response object of a terminal event.
#[derive(Debug, Default, Deserialize)]
pub struct Response {
    #[serde(default)]
    pub output: Vec<OutputItem>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    #[serde(default)]
    pub error: Option<ErrorBody>,
    #[serde(default)]
    pub incomplete_details: Option<IncompleteDetails>,
}

impl Response {
    /// Whether the model called a function in this response.
    pub fn has_function_calls(&self) -> bool {
        self.output
            .iter()
            .any(|item| matches!(item, OutputItem::FunctionCall { .. }))
    }

    /// Token counts, when the response carries them.
    pub fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(|usage| Usage {
            prompt_tokens: usage.input_tokens,
            completion_tokens: usage.output_tokens,
            total_tokens: if usage.total_tokens > 0 {
                usage.total_tokens
            } else {
                usage.input_tokens + usage.output_tokens
            },
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct WireUsage {
    #[serde(default)]
    pub input_tokens: i64,
    #[serde(default)]
    pub output_tokens: i64,
    #[serde(default)]
    pub total_tokens: i64,
}

#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Deserialize)]
pub struct IncompleteDetails {
    #[serde(default)]
    pub reason: Option<String>,
}

/// Why an incomplete response stopped (`max_output_tokens` or `content_filter`).
pub fn incomplete_reason(details: Option<&IncompleteDetails>) -> FinishReason {
    match details.and_then(|d| d.reason.as_deref()) {
        Some("content_filter") => FinishReason::ContentFilter,
        _ => FinishReason::Length,
    }
}

/// An error the stream reported (an `error` event or a failed response), by its code:
/// rate limits may pass, `invalid_*` codes are the request's fault, the rest the server's.
pub fn stream_error(code: Option<&str>, message: &str) -> ModelError {
    let message = if message.is_empty() {
        "the response failed".to_owned()
    } else {
        message.to_owned()
    };
    match code {
        Some("rate_limit_exceeded") => ModelError::RateLimited { retry_after: None },
        Some(code) if code.starts_with("invalid_") => ModelError::Upstream {
            status: 400,
            message,
        },
        _ => ModelError::Upstream {
            status: 500,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_core::model::{ToolCall, ToolSpec};

    fn conversation() -> Vec<ModelMessage> {
        vec![
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
                        id: "call_1".into(),
                        name: "weather".into(),
                        arguments: "{\"city\":\"Oslo\"}".into(),
                    },
                    ToolCall {
                        id: "call_2".into(),
                        name: "weather".into(),
                        arguments: "{\"city\":\"Bergen\"}".into(),
                    },
                ],
            },
            ModelMessage::Tool {
                call_id: "call_1".into(),
                content: "12 C".into(),
            },
            ModelMessage::Tool {
                call_id: "call_2".into(),
                content: "9 C".into(),
            },
            ModelMessage::Assistant {
                text: "Oslo 12 C, Bergen 9 C.".into(),
                tool_calls: vec![],
            },
            ModelMessage::System {
                text: "Answer in Norwegian.".into(),
            },
        ]
    }

    #[test]
    fn requests_carry_instructions_items_tools_and_sampling() {
        let request = ModelRequest {
            model: "gpt-4.1-mini".into(),
            messages: conversation(),
            tools: vec![ToolSpec {
                name: "weather".into(),
                description: "Weather".into(),
                parameters: json!({"type": "object"}),
            }],
            temperature: Some(0.2),
            top_p: Some(0.9),
            max_tokens: Some(100),
            ..ModelRequest::default()
        };
        let body = request_body(&request);
        assert_eq!(
            body,
            json!({
                "model": "gpt-4.1-mini",
                "instructions": "Be brief.\n\nAnswer in Norwegian.",
                "input": [
                    {"type": "message", "role": "user", "content": "Weather in Oslo and Bergen?"},
                    {"type": "message", "role": "assistant", "content": "Checking."},
                    {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{\"city\":\"Oslo\"}"},
                    {"type": "function_call", "call_id": "call_2", "name": "weather", "arguments": "{\"city\":\"Bergen\"}"},
                    {"type": "function_call_output", "call_id": "call_1", "output": "12 C"},
                    {"type": "function_call_output", "call_id": "call_2", "output": "9 C"},
                    {"type": "message", "role": "assistant", "content": "Oslo 12 C, Bergen 9 C."},
                ],
                "tools": [{
                    "type": "function", "name": "weather", "description": "Weather",
                    "parameters": {"type": "object"}, "strict": false,
                }],
                "temperature": 0.2,
                "top_p": 0.9,
                "max_output_tokens": 100,
                "stream": true,
                "store": false,
            })
        );
    }

    #[test]
    fn a_minimal_request_leaves_optional_fields_out() {
        let request = ModelRequest {
            model: "gpt-4.1-mini".into(),
            messages: vec![
                ModelMessage::User { text: "Hi".into() },
                ModelMessage::Assistant {
                    text: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "call_9".into(),
                        name: "time".into(),
                        arguments: "{}".into(),
                    }],
                },
            ],
            ..ModelRequest::default()
        };
        let body = request_body(&request);
        for absent in [
            "instructions",
            "tools",
            "text",
            "temperature",
            "top_p",
            "max_output_tokens",
        ] {
            assert!(body.get(absent).is_none(), "{absent}: {body}");
        }
        // An assistant turn with only calls has no empty message item before them.
        assert_eq!(body["input"].as_array().map(Vec::len), Some(2));
        assert_eq!(body["input"][1]["type"], "function_call");
    }

    #[test]
    fn an_output_schema_becomes_a_strict_json_schema_text_format() {
        let schema = json!({"type": "object", "properties": {"ok": {"type": "boolean"}}});
        let request = ModelRequest {
            model: "gpt-4.1-mini".into(),
            messages: vec![ModelMessage::User { text: "Ok?".into() }],
            output_schema: Some(schema.clone()),
            ..ModelRequest::default()
        };
        assert_eq!(
            request_body(&request)["text"],
            json!({"format": {"type": "json_schema", "name": "output", "schema": schema, "strict": true}})
        );
    }

    #[test]
    fn terminal_events_give_usage_reasons_and_errors() {
        let completed: StreamEvent = serde_json::from_str(
            r#"{"type":"response.completed","sequence_number":9,"response":{"id":"resp_1","object":"response","status":"completed",
                "output":[{"type":"message","id":"msg_1","role":"assistant","content":[]},
                          {"type":"function_call","id":"fc_1","call_id":"call_1","name":"weather","arguments":"{}","status":"completed"}],
                "usage":{"input_tokens":11,"input_tokens_details":{"cached_tokens":0},"output_tokens":4,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":15}}}"#,
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let StreamEvent::Completed { response } = completed else {
            unreachable!("{completed:?}")
        };
        assert!(response.has_function_calls());
        assert_eq!(
            response.usage(),
            Some(Usage {
                prompt_tokens: 11,
                completion_tokens: 4,
                total_tokens: 15
            })
        );

        let cases = [
            (Some("max_output_tokens"), FinishReason::Length),
            (Some("content_filter"), FinishReason::ContentFilter),
            (None, FinishReason::Length),
        ];
        for (reason, want) in cases {
            let details = IncompleteDetails {
                reason: reason.map(str::to_owned),
            };
            assert_eq!(incomplete_reason(Some(&details)), want, "{reason:?}");
        }

        assert_eq!(
            stream_error(Some("server_error"), "boom"),
            ModelError::Upstream {
                status: 500,
                message: "boom".into()
            }
        );
        assert_eq!(
            stream_error(Some("rate_limit_exceeded"), "slow down"),
            ModelError::RateLimited { retry_after: None }
        );
        assert!(!stream_error(Some("invalid_prompt"), "no").is_retryable());
        assert_eq!(
            stream_error(None, ""),
            ModelError::Upstream {
                status: 500,
                message: "the response failed".into()
            }
        );

        let unknown: StreamEvent = serde_json::from_str(
            r#"{"type":"response.reasoning_summary_text.delta","sequence_number":3,"delta":"hm"}"#,
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(matches!(unknown, StreamEvent::Unknown));
    }
}
