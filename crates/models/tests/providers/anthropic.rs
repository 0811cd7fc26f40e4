//! The Anthropic Messages provider against the scripted upstream.

use frontdesk_core::conversation::Usage;
use frontdesk_core::model::{ModelError, ModelEvent, ModelMessage, ModelProvider, ModelRequest};
use frontdesk_core::run::FinishReason;
use frontdesk_models::anthropic::Anthropic;
use frontdesk_models::Timeouts;
use secrecy::SecretString;
use serde_json::json;

use crate::common::{collect, upstream, Script, Upstream};

fn event(kind: &str, data: serde_json::Value) -> String {
    format!("event: {kind}\ndata: {data}\n\n")
}

fn start() -> String {
    event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude", "usage": {"input_tokens": 21, "cache_read_input_tokens": 4, "output_tokens": 1}}}),
    )
}

fn stop(reason: &str, output_tokens: i64) -> Vec<String> {
    vec![
        event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": null}, "usage": {"output_tokens": output_tokens}}),
        ),
        event("message_stop", json!({"type": "message_stop"})),
    ]
}

fn provider(up: &Upstream) -> Anthropic {
    let base = up.base_url.trim_end_matches("/v1");
    Anthropic::new(
        base,
        Some(SecretString::from("sk-ant-secret".to_owned())),
        Timeouts::default(),
    )
    .unwrap()
}

fn request() -> ModelRequest {
    ModelRequest {
        model: "claude-sonnet-4-5".into(),
        messages: vec![
            ModelMessage::System {
                text: "Be brief.".into(),
            },
            ModelMessage::User { text: "Hi".into() },
        ],
        ..ModelRequest::default()
    }
}

fn stream(events: Vec<String>) -> Script {
    Script::Stream {
        chunks: events.into_iter().map(|e| (0, e)).collect(),
        break_at_end: false,
    }
}

#[tokio::test]
async fn streams_text_usage_and_stop() {
    let mut events = vec![
        start(),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", json!({"type": "ping"})),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " there"}}),
        ),
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
    ];
    events.extend(stop("end_turn", 5));
    let up = upstream(stream(events)).await;
    let (events, error) = collect(&provider(&up), request()).await;
    assert_eq!(error, None);
    assert_eq!(
        events,
        vec![
            ModelEvent::TextDelta("Hello".into()),
            ModelEvent::TextDelta(" there".into()),
            ModelEvent::Usage(Usage {
                prompt_tokens: 25,
                completion_tokens: 5,
                total_tokens: 30
            }),
            ModelEvent::Finish(FinishReason::Stop),
        ]
    );
    let requests = up.requests.lock().unwrap();
    let (headers, body) = &requests[0];
    assert_eq!(headers["x-api-key"], "sk-ant-secret");
    assert_eq!(headers["anthropic-version"], "2023-06-01");
    assert_eq!(body["system"], "Be brief.");
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "Hi"}]}])
    );
}

#[tokio::test]
async fn tool_use_blocks_become_tool_call_deltas() {
    let mut events = vec![
        start(),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Checking."}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"Oslo\"}"}}),
        ),
    ];
    events.extend(stop("tool_use", 30));
    let up = upstream(stream(events)).await;
    let (events, error) = collect(&provider(&up), request()).await;
    assert_eq!(error, None);
    assert_eq!(events[0], ModelEvent::TextDelta("Checking.".into()));
    assert_eq!(
        events[1],
        ModelEvent::ToolCallDelta {
            index: 0,
            id: Some("toolu_1".into()),
            name: Some("weather".into()),
            arguments: String::new()
        }
    );
    let arguments: String = events
        .iter()
        .filter_map(|e| match e {
            ModelEvent::ToolCallDelta { arguments, .. } => Some(arguments.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(arguments, "{\"city\": \"Oslo\"}");
    assert_eq!(
        events.last(),
        Some(&ModelEvent::Finish(FinishReason::ToolCalls))
    );
}

#[tokio::test]
async fn an_output_schema_streams_as_json_text() {
    let mut events = vec![
        start(),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_9", "name": "structured_output", "input": {}}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"response\": \"Hi\", "}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "\"suggestions\": []}"}}),
        ),
    ];
    events.extend(stop("tool_use", 12));
    let up = upstream(stream(events)).await;
    let request = ModelRequest {
        output_schema: Some(json!({"type": "object"})),
        ..request()
    };
    let (events, error) = collect(&provider(&up), request).await;
    assert_eq!(error, None);
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            ModelEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        json!({"response": "Hi", "suggestions": []})
    );
    assert_eq!(events.last(), Some(&ModelEvent::Finish(FinishReason::Stop)));
    assert_eq!(
        up.requests.lock().unwrap()[0].1["tool_choice"]["name"],
        "structured_output"
    );
}

#[tokio::test]
async fn errors_map_to_model_errors() {
    let up = upstream(Script::Status(
        529,
        vec![],
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    ))
    .await;
    let error = provider(&up).stream(request()).await.err().unwrap();
    assert_eq!(
        error,
        ModelError::Upstream {
            status: 529,
            message: "Overloaded".into()
        }
    );
    assert!(error.is_retryable());

    let up = upstream(stream(vec![
        start(),
        event("error", json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})),
    ]))
    .await;
    let (_, error) = collect(&provider(&up), request()).await;
    assert_eq!(
        error,
        Some(ModelError::Upstream {
            status: 529,
            message: "Overloaded".into()
        })
    );

    let up = upstream(stream(vec![
        start(),
        "event: content_block_delta\ndata: {broken\n\n".to_owned(),
    ]))
    .await;
    let (_, error) = collect(&provider(&up), request()).await;
    assert!(matches!(error, Some(ModelError::Protocol(_))), "{error:?}");
    assert!(!format!("{error:?}").contains("sk-ant-secret"));
}
