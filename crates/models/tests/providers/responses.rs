//! The Responses API provider against the scripted upstream, which writes the event stream
//! as OpenAI documents it: an `event: <type>` line and a `data: <json>` line whose JSON
//! repeats the `type` and carries an increasing `sequence_number`; no `[DONE]`.

use std::collections::BTreeMap;
use std::time::Duration;

use frontdesk_core::config::{ProviderConfig, ProviderKind};
use frontdesk_core::conversation::Usage;
use frontdesk_core::model::{
    ModelError, ModelEvent, ModelMessage, ModelProvider, ModelRequest, ProviderSecret, ToolSpec,
};
use frontdesk_core::run::FinishReason;
use frontdesk_models::openai_responses::OpenAiResponses;
use frontdesk_models::registry::Registry;
use frontdesk_models::Timeouts;
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::common::{collect, upstream, Script, Upstream};

/// Writes events in OpenAI's framing, numbering them as the server does.
#[derive(Default)]
struct Wire {
    sequence_number: u64,
}

impl Wire {
    fn event(&mut self, mut event: Value) -> String {
        event["sequence_number"] = json!(self.sequence_number);
        self.sequence_number += 1;
        let kind = event["type"].as_str().unwrap().to_owned();
        format!("event: {kind}\ndata: {event}\n\n")
    }

    /// `response.created` and `response.in_progress`.
    fn start(&mut self) -> String {
        let response = response("in_progress", json!([]), Value::Null);
        [
            self.event(json!({"type": "response.created", "response": response})),
            self.event(json!({"type": "response.in_progress", "response": response})),
        ]
        .concat()
    }

    /// A message item at `output_index` opening, before its text deltas.
    fn message_added(&mut self, output_index: u32) -> String {
        [
            self.event(json!({
                "type": "response.output_item.added", "output_index": output_index,
                "item": {"type": "message", "id": "msg_1", "status": "in_progress", "role": "assistant", "content": []},
            })),
            self.event(json!({
                "type": "response.content_part.added", "item_id": "msg_1", "output_index": output_index,
                "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []},
            })),
        ]
        .concat()
    }

    fn text_delta(&mut self, output_index: u32, delta: &str) -> String {
        self.event(json!({
            "type": "response.output_text.delta", "item_id": "msg_1", "output_index": output_index,
            "content_index": 0, "delta": delta, "logprobs": [],
        }))
    }

    /// A message item at `output_index` closing with its whole text.
    fn message_done(&mut self, output_index: u32, text: &str) -> String {
        let part = json!({"type": "output_text", "text": text, "annotations": []});
        [
            self.event(json!({
                "type": "response.output_text.done", "item_id": "msg_1", "output_index": output_index,
                "content_index": 0, "text": text, "logprobs": [],
            })),
            self.event(json!({
                "type": "response.content_part.done", "item_id": "msg_1", "output_index": output_index,
                "content_index": 0, "part": part,
            })),
            self.event(json!({
                "type": "response.output_item.done", "output_index": output_index,
                "item": {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant", "content": [part]},
            })),
        ]
        .concat()
    }

    fn call_added(&mut self, output_index: u32, call_id: &str, name: &str) -> String {
        self.event(json!({
            "type": "response.output_item.added", "output_index": output_index,
            "item": {"type": "function_call", "id": format!("fc_{output_index}"), "call_id": call_id,
                     "name": name, "arguments": "", "status": "in_progress"},
        }))
    }

    fn arguments_delta(&mut self, output_index: u32, delta: &str) -> String {
        self.event(json!({
            "type": "response.function_call_arguments.delta", "item_id": format!("fc_{output_index}"),
            "output_index": output_index, "delta": delta,
        }))
    }

    fn call_done(
        &mut self,
        output_index: u32,
        call_id: &str,
        name: &str,
        arguments: &str,
    ) -> String {
        let item = json!({
            "type": "function_call", "id": format!("fc_{output_index}"), "call_id": call_id,
            "name": name, "arguments": arguments, "status": "completed",
        });
        [
            self.event(json!({
                "type": "response.function_call_arguments.done", "item_id": format!("fc_{output_index}"),
                "output_index": output_index, "arguments": arguments,
            })),
            self.event(json!({"type": "response.output_item.done", "output_index": output_index, "item": item})),
        ]
        .concat()
    }

    fn completed(&mut self, output: Value) -> String {
        let response = response("completed", output, usage(11, 4));
        self.event(json!({"type": "response.completed", "response": response}))
    }
}

/// A Response object with the fields a server sends.
fn response(status: &str, output: Value, usage: Value) -> Value {
    json!({
        "id": "resp_1", "object": "response", "created_at": 1_750_000_000, "status": status,
        "model": "gpt-4.1-mini-2025-04-14", "output": output, "usage": usage,
        "error": null, "incomplete_details": null, "instructions": null, "tools": [],
        "tool_choice": "auto", "parallel_tool_calls": true, "temperature": 1.0, "top_p": 1.0,
        "store": false, "text": {"format": {"type": "text"}}, "truncation": "disabled", "metadata": {},
    })
}

fn usage(input_tokens: i64, output_tokens: i64) -> Value {
    json!({
        "input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    })
}

const USAGE: Usage = Usage {
    prompt_tokens: 11,
    completion_tokens: 4,
    total_tokens: 15,
};

fn stream(chunks: Vec<String>) -> Script {
    Script::Stream {
        chunks: chunks.into_iter().map(|chunk| (0, chunk)).collect(),
        break_at_end: false,
    }
}

fn provider(upstream: &Upstream) -> OpenAiResponses {
    OpenAiResponses::new(
        &upstream.base_url,
        Some(SecretString::from("sk-operator-secret".to_owned())),
        Timeouts::default(),
    )
    .unwrap()
}

fn request() -> ModelRequest {
    ModelRequest {
        model: "gpt-4.1-mini".into(),
        messages: vec![
            ModelMessage::System {
                text: "Be brief.".into(),
            },
            ModelMessage::User {
                text: "Hello".into(),
            },
        ],
        ..ModelRequest::default()
    }
}

/// The request the upstream saw: its Authorization header and body.
fn seen(upstream: &Upstream) -> (Option<String>, Value) {
    let requests = upstream.requests.lock().unwrap();
    let (headers, body) = requests.last().unwrap();
    let authorization = headers
        .get("authorization")
        .map(|value| value.to_str().unwrap().to_owned());
    (authorization, body.clone())
}

/// A text turn, in the order OpenAI sends it.
fn text_turn(wire: &mut Wire, pieces: &[&str]) -> Vec<String> {
    let mut chunks = vec![wire.start(), wire.message_added(0)];
    chunks.extend(pieces.iter().map(|piece| wire.text_delta(0, piece)));
    let text = pieces.concat();
    chunks.push(wire.message_done(0, &text));
    chunks.push(wire.completed(json!([{
        "type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }])));
    chunks
}

#[tokio::test]
async fn streams_text_usage_and_finish() {
    let mut wire = Wire::default();
    let mut chunks = text_turn(&mut wire, &["Hel", "lo, \"world\""]);
    // An event type this code does not know is skipped.
    chunks.insert(
        3,
        wire.event(json!({"type": "response.future_event", "item_id": "msg_1"})),
    );
    let up = upstream(stream(chunks)).await;
    let (events, error) = collect(&provider(&up), request()).await;
    assert_eq!(error, None);
    assert_eq!(
        events,
        vec![
            ModelEvent::TextDelta("Hel".into()),
            ModelEvent::TextDelta("lo, \"world\"".into()),
            ModelEvent::Usage(USAGE),
            ModelEvent::Finish(FinishReason::Stop),
        ]
    );
    let (authorization, body) = seen(&up);
    assert_eq!(authorization.as_deref(), Some("Bearer sk-operator-secret"));
    assert_eq!(
        body,
        json!({
            "model": "gpt-4.1-mini",
            "instructions": "Be brief.",
            "input": [{"type": "message", "role": "user", "content": "Hello"}],
            "stream": true,
            "store": false,
        })
    );
}

#[tokio::test]
async fn two_tool_calls_are_assembled_from_their_deltas() {
    let mut wire = Wire::default();
    // A reasoning item takes output index 0: the calls at 1 and 2 become tool calls 0 and 1.
    let whole = [
        wire.start(),
        wire.event(json!({
            "type": "response.output_item.added", "output_index": 0,
            "item": {"type": "reasoning", "id": "rs_1", "summary": []},
        })),
        wire.event(json!({
            "type": "response.output_item.done", "output_index": 0,
            "item": {"type": "reasoning", "id": "rs_1", "summary": []},
        })),
        wire.call_added(1, "call_a", "weather"),
        wire.arguments_delta(1, "{\"city\":"),
        wire.call_added(2, "call_b", "time"),
        wire.arguments_delta(2, "{}"),
        wire.arguments_delta(1, "\"Oslo\"}"),
        wire.call_done(1, "call_a", "weather", "{\"city\":\"Oslo\"}"),
        wire.call_done(2, "call_b", "time", "{}"),
        wire.completed(json!([
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "weather",
             "arguments": "{\"city\":\"Oslo\"}", "status": "completed"},
            {"type": "function_call", "id": "fc_2", "call_id": "call_b", "name": "time",
             "arguments": "{}", "status": "completed"},
        ])),
    ]
    .concat();
    // Chunk boundaries fall inside SSE lines too.
    let (left, right) = whole.split_at(whole.len() / 2 + 3);
    let up = upstream(Script::Stream {
        chunks: vec![(0, left.to_owned()), (5, right.to_owned())],
        break_at_end: false,
    })
    .await;
    let (events, error) = collect(&provider(&up), request()).await;
    assert_eq!(error, None);
    let mut calls: Vec<(Option<String>, Option<String>, String)> = Vec::new();
    for event in &events {
        if let ModelEvent::ToolCallDelta {
            index,
            id,
            name,
            arguments,
        } = event
        {
            let index = *index as usize;
            if index == calls.len() {
                calls.push((id.clone(), name.clone(), String::new()));
            } else {
                assert!(id.is_none() && name.is_none(), "{event:?}");
            }
            calls[index].2.push_str(arguments);
        }
    }
    assert_eq!(
        calls,
        vec![
            (
                Some("call_a".to_owned()),
                Some("weather".to_owned()),
                "{\"city\":\"Oslo\"}".to_owned()
            ),
            (
                Some("call_b".to_owned()),
                Some("time".to_owned()),
                "{}".to_owned()
            ),
        ]
    );
    assert_eq!(
        events[events.len() - 2..],
        [
            ModelEvent::Usage(USAGE),
            ModelEvent::Finish(FinishReason::ToolCalls)
        ]
    );
}

#[tokio::test]
async fn a_call_sent_whole_without_deltas_still_arrives() {
    let mut wire = Wire::default();
    let chunks = vec![
        wire.start(),
        wire.event(json!({
            "type": "response.output_item.done", "output_index": 0,
            "item": {"type": "function_call", "id": "fc_0", "call_id": "call_z", "name": "time",
                     "arguments": "{\"tz\":\"UTC\"}", "status": "completed"},
        })),
        wire.completed(json!([])),
    ];
    let up = upstream(stream(chunks)).await;
    let (events, error) = collect(&provider(&up), request()).await;
    assert_eq!(error, None);
    assert_eq!(
        events,
        vec![
            ModelEvent::ToolCallDelta {
                index: 0,
                id: Some("call_z".into()),
                name: Some("time".into()),
                arguments: String::new(),
            },
            ModelEvent::ToolCallDelta {
                index: 0,
                id: None,
                name: None,
                arguments: "{\"tz\":\"UTC\"}".into(),
            },
            ModelEvent::Usage(USAGE),
            ModelEvent::Finish(FinishReason::ToolCalls),
        ]
    );
}

#[tokio::test]
async fn an_incomplete_response_at_max_output_tokens_finishes_with_length() {
    let mut wire = Wire::default();
    let mut incomplete = response("incomplete", json!([]), usage(11, 4));
    incomplete["incomplete_details"] = json!({"reason": "max_output_tokens"});
    let chunks = vec![
        wire.start(),
        wire.message_added(0),
        wire.text_delta(0, "Once upon"),
        wire.event(json!({"type": "response.incomplete", "response": incomplete})),
    ];
    let up = upstream(stream(chunks)).await;
    let (events, error) = collect(&provider(&up), request()).await;
    assert_eq!(error, None);
    assert_eq!(
        events,
        vec![
            ModelEvent::TextDelta("Once upon".into()),
            ModelEvent::Usage(USAGE),
            ModelEvent::Finish(FinishReason::Length),
        ]
    );
}

#[tokio::test]
async fn an_output_schema_tools_and_sampling_reach_the_request_body() {
    let mut wire = Wire::default();
    let up = upstream(stream(text_turn(&mut wire, &["{\"ok\":true}"]))).await;
    let schema = json!({
        "type": "object", "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"], "additionalProperties": false,
    });
    let request = ModelRequest {
        output_schema: Some(schema.clone()),
        tools: vec![ToolSpec {
            name: "weather".into(),
            description: "The weather in a city".into(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        }],
        temperature: Some(0.3),
        top_p: Some(0.8),
        max_tokens: Some(256),
        ..request()
    };
    let (events, error) = collect(&provider(&up), request).await;
    assert_eq!(error, None);
    assert_eq!(events[0], ModelEvent::TextDelta("{\"ok\":true}".into()));
    let (_, body) = seen(&up);
    assert_eq!(
        body["text"],
        json!({"format": {"type": "json_schema", "name": "output", "schema": schema, "strict": true}})
    );
    assert_eq!(
        body["tools"],
        json!([{
            "type": "function", "name": "weather", "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "strict": false,
        }])
    );
    assert_eq!(
        (
            &body["temperature"],
            &body["top_p"],
            &body["max_output_tokens"]
        ),
        (&json!(0.3), &json!(0.8), &json!(256))
    );
}

#[tokio::test]
async fn a_tenant_key_overrides_the_configured_one() {
    let mut wire = Wire::default();
    let up = upstream(stream(text_turn(&mut wire, &["Hi"]))).await;
    let with_tenant_key = ModelRequest {
        api_key: Some(ProviderSecret(SecretString::from(
            "sk-tenant-own".to_owned(),
        ))),
        ..request()
    };
    let (_, error) = collect(&provider(&up), with_tenant_key).await;
    assert_eq!(error, None);
    assert_eq!(seen(&up).0.as_deref(), Some("Bearer sk-tenant-own"));

    // With neither key, no Authorization header goes out (a local gateway may need none).
    let keyless = OpenAiResponses::new(&up.base_url, None, Timeouts::default()).unwrap();
    let (_, error) = collect(&keyless, request()).await;
    assert_eq!(error, None);
    assert_eq!(seen(&up).0, None);
}

#[tokio::test]
async fn upstream_dying_mid_stream_is_an_error_after_the_partial_text() {
    let mut wire = Wire::default();
    let up = upstream(Script::Stream {
        chunks: vec![
            (0, wire.start() + &wire.message_added(0)),
            (0, wire.text_delta(0, "Partial ")),
            (5, wire.text_delta(0, "answer")),
        ],
        break_at_end: true,
    })
    .await;
    let (events, error) = collect(&provider(&up), request()).await;
    // What was flushed before the break arrives (the last piece may die with the connection).
    let sent = [
        ModelEvent::TextDelta("Partial ".into()),
        ModelEvent::TextDelta("answer".into()),
    ];
    assert!(
        !events.is_empty() && sent.starts_with(&events),
        "{events:?}"
    );
    assert!(matches!(error, Some(ModelError::Connect(_))), "{error:?}");
    assert!(error.unwrap().is_retryable());
}

#[tokio::test]
async fn a_body_that_ends_without_a_terminal_event_is_an_error() {
    let mut wire = Wire::default();
    let chunks = vec![
        wire.start(),
        wire.message_added(0),
        wire.text_delta(0, "Half"),
    ];
    let up = upstream(stream(chunks)).await;
    let (events, error) = collect(&provider(&up), request()).await;
    assert_eq!(events, vec![ModelEvent::TextDelta("Half".into())]);
    assert!(matches!(error, Some(ModelError::Connect(_))), "{error:?}");
}

#[tokio::test]
async fn a_429_with_retry_after_is_rate_limited_and_other_statuses_carry_their_message() {
    let up = upstream(Script::Status(
        429,
        vec![("retry-after", "7")],
        r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
    ))
    .await;
    let error = provider(&up).stream(request()).await.err().unwrap();
    assert_eq!(
        error,
        ModelError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );

    let up = upstream(Script::Status(
        401,
        vec![],
        r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
    ))
    .await;
    let error = provider(&up).stream(request()).await.err().unwrap();
    assert_eq!(
        error,
        ModelError::Upstream {
            status: 401,
            message: "Incorrect API key provided".into()
        }
    );
    assert!(!error.is_retryable());
    assert!(!format!("{error} {error:?}").contains("sk-operator-secret"));
}

#[tokio::test]
async fn a_failed_response_is_an_error_after_the_partial_text() {
    let mut wire = Wire::default();
    let mut failed = response("failed", json!([]), Value::Null);
    failed["error"] = json!({"code": "server_error", "message": "The model had a problem."});
    let chunks = vec![
        wire.start(),
        wire.message_added(0),
        wire.text_delta(0, "Start"),
        wire.event(json!({"type": "response.failed", "response": failed})),
    ];
    let up = upstream(stream(chunks)).await;
    let (events, error) = collect(&provider(&up), request()).await;
    assert_eq!(events, vec![ModelEvent::TextDelta("Start".into())]);
    assert_eq!(
        error,
        Some(ModelError::Upstream {
            status: 500,
            message: "The model had a problem.".into()
        })
    );
}

#[tokio::test]
async fn an_error_event_ends_the_stream_with_its_error() {
    let mut wire = Wire::default();
    let chunks = vec![
        wire.start(),
        wire.event(json!({
            "type": "error", "code": "rate_limit_exceeded",
            "message": "Too many tokens per minute.", "param": null,
        })),
    ];
    let up = upstream(stream(chunks)).await;
    let (events, error) = collect(&provider(&up), request()).await;
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(error, Some(ModelError::RateLimited { retry_after: None }));
}

#[tokio::test]
async fn a_malformed_event_is_a_protocol_error() {
    let mut wire = Wire::default();
    let chunks = vec![
        wire.start(),
        wire.message_added(0),
        wire.text_delta(0, "ok"),
        "event: response.output_text.delta\ndata: {not json\n\n".to_owned(),
    ];
    let up = upstream(stream(chunks)).await;
    let (events, error) = collect(&provider(&up), request()).await;
    assert_eq!(events, vec![ModelEvent::TextDelta("ok".into())]);
    assert!(matches!(error, Some(ModelError::Protocol(_))), "{error:?}");
    assert!(!error.unwrap().is_retryable());
}

#[tokio::test]
async fn the_registry_builds_each_openai_kind_with_its_protocol() {
    let mut wire = Wire::default();
    let up = upstream(stream(text_turn(&mut wire, &["Hi"]))).await;
    let mut config = BTreeMap::new();
    for (name, kind) in [
        ("responses", ProviderKind::OpenaiResponses),
        ("chat", ProviderKind::Openai),
    ] {
        config.insert(
            name.to_owned(),
            ProviderConfig {
                base_url: Some(up.base_url.clone()),
                ..ProviderConfig::new(kind)
            },
        );
    }
    let registry = Registry::from_config(&config, Timeouts::default()).unwrap();

    let candidate = registry.candidate("responses/gpt-4.1-mini").unwrap();
    let (events, error) = collect(candidate.provider.as_ref(), request()).await;
    assert_eq!(error, None);
    assert_eq!(events[0], ModelEvent::TextDelta("Hi".into()));
    let (_, body) = seen(&up);
    assert!(body.get("input").is_some() && body.get("messages").is_none());

    // The same upstream, spoken to in Chat Completions: the body has `messages`.
    let candidate = registry.candidate("chat/gpt-4.1-mini").unwrap();
    let _ = collect(candidate.provider.as_ref(), request()).await;
    let (_, body) = seen(&up);
    assert!(body.get("messages").is_some() && body.get("input").is_none());
}
