//! Wire types of the OpenAI Chat Completions API and their conversion to and from the
//! provider-neutral types. Lenient on what arrives (unknown fields ignored), exact on what
//! leaves.

use frontdesk_core::conversation::Usage;
use frontdesk_core::model::{ModelEvent, ModelMessage, ModelRequest};
use frontdesk_core::run::FinishReason;
use serde::Deserialize;
use serde_json::{json, Value};

/// The JSON body of a streaming request.
pub fn request_body(request: &ModelRequest) -> Value {
    let messages: Vec<Value> = request.messages.iter().map(message).collect();
    let mut body = json!({
        "model": request.model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|tool| {
                json!({"type": "function", "function": {
                    "name": tool.name, "description": tool.description, "parameters": tool.parameters,
                }})
            })
            .collect();
    }
    if let Some(schema) = &request.output_schema {
        body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": true}});
    }
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(p) = request.top_p {
        body["top_p"] = json!(p);
    }
    if let Some(n) = request.max_tokens {
        body["max_tokens"] = json!(n);
    }
    body
}

fn message(message: &ModelMessage) -> Value {
    match message {
        ModelMessage::System { text } => json!({"role": "system", "content": text}),
        ModelMessage::User { text } => json!({"role": "user", "content": text}),
        ModelMessage::Assistant { text, tool_calls } if tool_calls.is_empty() => {
            json!({"role": "assistant", "content": text})
        }
        ModelMessage::Assistant { text, tool_calls } => {
            let calls: Vec<Value> = tool_calls
                .iter()
                .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                .collect();
            let content = if text.is_empty() {
                Value::Null
            } else {
                json!(text)
            };
            json!({"role": "assistant", "content": content, "tool_calls": calls})
        }
        ModelMessage::Tool { call_id, content } => {
            json!({"role": "tool", "tool_call_id": call_id, "content": content})
        }
    }
}

/// One `chat.completion.chunk`.
#[derive(Debug, Deserialize)]
pub struct Chunk {
    #[serde(default)]
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    /// An error reported in the stream instead of a chunk.
    #[serde(default)]
    pub error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct Choice {
    #[serde(default)]
    pub delta: Delta,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Delta {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub tool_calls: Vec<ToolCallDelta>,
}

#[derive(Debug, Deserialize)]
pub struct ToolCallDelta {
    pub index: u32,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionDelta>,
}

#[derive(Debug, Deserialize)]
pub struct FunctionDelta {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct WireUsage {
    #[serde(default)]
    pub prompt_tokens: i64,
    #[serde(default)]
    pub completion_tokens: i64,
    #[serde(default)]
    pub total_tokens: i64,
}

/// The events one chunk carries, in order.
pub fn chunk_events(chunk: Chunk) -> Vec<ModelEvent> {
    let mut events = Vec::new();
    // We ask for one choice; servers that send more get their first.
    if let Some(choice) = chunk.choices.into_iter().next() {
        if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
            events.push(ModelEvent::TextDelta(text));
        }
        for call in choice.delta.tool_calls {
            let (name, arguments) = match call.function {
                Some(f) => (f.name, f.arguments.unwrap_or_default()),
                None => (None, String::new()),
            };
            events.push(ModelEvent::ToolCallDelta {
                index: call.index,
                id: call.id,
                name,
                arguments,
            });
        }
        if let Some(reason) = choice.finish_reason {
            events.push(ModelEvent::Finish(finish_reason(&reason)));
        }
    }
    if let Some(usage) = chunk.usage {
        let total = if usage.total_tokens > 0 {
            usage.total_tokens
        } else {
            usage.prompt_tokens + usage.completion_tokens
        };
        events.push(ModelEvent::Usage(Usage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: total,
        }));
    }
    events
}

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// The message of an error body (`{"error": {"message": …}}`), or the body's start.
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

    fn events(json: &str) -> Vec<ModelEvent> {
        chunk_events(serde_json::from_str(json).unwrap_or_else(|e| unreachable!("{e}")))
    }

    #[test]
    fn chunks_become_events() {
        let cases: Vec<(&str, Vec<ModelEvent>)> = vec![
            (
                r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
                vec![],
            ),
            (
                r#"{"choices":[{"index":0,"delta":{"content":"Hel"}}],"usage":null}"#,
                vec![ModelEvent::TextDelta("Hel".into())],
            ),
            (
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"weather","arguments":""}}]}}]}"#,
                vec![ModelEvent::ToolCallDelta {
                    index: 0,
                    id: Some("call_1".into()),
                    name: Some("weather".into()),
                    arguments: String::new(),
                }],
            ),
            (
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}}]}"#,
                vec![ModelEvent::ToolCallDelta {
                    index: 0,
                    id: None,
                    name: None,
                    arguments: "{\"city\":".into(),
                }],
            ),
            (
                r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
                vec![ModelEvent::Finish(FinishReason::ToolCalls)],
            ),
            (
                r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#,
                vec![ModelEvent::Finish(FinishReason::Length)],
            ),
            (
                r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#,
                vec![ModelEvent::Usage(Usage {
                    prompt_tokens: 9,
                    completion_tokens: 3,
                    total_tokens: 12,
                })],
            ),
        ];
        for (json, want) in cases {
            assert_eq!(events(json), want, "{json}");
        }
    }

    #[test]
    fn requests_carry_messages_tools_and_sampling() {
        let request = ModelRequest {
            model: "gpt-4.1-mini".into(),
            messages: vec![
                ModelMessage::System {
                    text: "Be brief.".into(),
                },
                ModelMessage::User {
                    text: "Weather in Oslo?".into(),
                },
                ModelMessage::Assistant {
                    text: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "call_1".into(),
                        name: "weather".into(),
                        arguments: "{\"city\":\"Oslo\"}".into(),
                    }],
                },
                ModelMessage::Tool {
                    call_id: "call_1".into(),
                    content: "12 C".into(),
                },
            ],
            tools: vec![ToolSpec {
                name: "weather".into(),
                description: "Weather".into(),
                parameters: json!({"type": "object"}),
            }],
            temperature: Some(0.2),
            max_tokens: Some(100),
            ..ModelRequest::default()
        };
        let body = request_body(&request);
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": "Be brief."})
        );
        assert_eq!(
            body["messages"][2]["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Oslo\"}"
        );
        assert_eq!(body["messages"][2]["content"], Value::Null);
        assert_eq!(
            body["messages"][3],
            json!({"role": "tool", "tool_call_id": "call_1", "content": "12 C"})
        );
        assert_eq!(body["tools"][0]["function"]["name"], "weather");
        assert_eq!(body["temperature"], 0.2);
        assert_eq!(body["max_tokens"], 100);
        assert!(body.get("top_p").is_none() && body.get("response_format").is_none());
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            error_message(r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#),
            "Rate limit reached"
        );
        assert_eq!(error_message("Bad Gateway"), "Bad Gateway");
    }
}
