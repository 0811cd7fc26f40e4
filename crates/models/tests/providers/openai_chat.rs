//! The Chat Completions provider against the scripted upstream.

use std::time::Duration;

use frontdesk_core::conversation::Usage;
use frontdesk_core::model::{ModelError, ModelEvent, ModelMessage, ModelProvider, ModelRequest};
use frontdesk_core::run::FinishReason;
use frontdesk_models::openai_chat::OpenAiChat;
use frontdesk_models::Timeouts;
use futures_util::StreamExt;
use secrecy::SecretString;

use crate::common::{upstream, upstream_sequence, Script, Upstream};

fn sse(json: &str) -> String {
    format!("data: {json}\n\n")
}

fn text_chunk(text: &str) -> String {
    sse(&format!(
        r#"{{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{{"index":0,"delta":{{"content":{}}},"finish_reason":null}}],"usage":null}}"#,
        serde_json::to_string(text).unwrap()
    ))
}

fn finish_chunk(reason: &str) -> String {
    sse(&format!(
        r#"{{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{{"index":0,"delta":{{}},"finish_reason":"{reason}"}}],"usage":null}}"#
    ))
}

const USAGE: &str = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":4,"total_tokens":15}}"#;

fn provider(upstream: &Upstream, timeouts: Timeouts) -> OpenAiChat {
    OpenAiChat::new(
        &upstream.base_url,
        Some(SecretString::from("sk-test-secret".to_owned())),
        timeouts,
    )
    .unwrap()
}

fn request() -> ModelRequest {
    ModelRequest {
        model: "gpt-4.1-mini".into(),
        messages: vec![ModelMessage::User {
            text: "Hello".into(),
        }],
        ..ModelRequest::default()
    }
}

async fn collect(provider: &OpenAiChat) -> (Vec<ModelEvent>, Option<ModelError>) {
    crate::common::collect(provider, request()).await
}

#[tokio::test]
async fn streams_text_finish_and_usage() {
    let up = upstream(Script::Stream {
        chunks: vec![
            (0, text_chunk("Hel")),
            (5, text_chunk("lo, \"world\"")),
            (0, finish_chunk("stop")),
            (0, sse(USAGE)),
            (0, "data: [DONE]\n\n".into()),
        ],
        break_at_end: false,
    })
    .await;
    let (events, error) = collect(&provider(&up, Timeouts::default())).await;
    assert_eq!(error, None);
    assert_eq!(
        events,
        vec![
            ModelEvent::TextDelta("Hel".into()),
            ModelEvent::TextDelta("lo, \"world\"".into()),
            ModelEvent::Finish(FinishReason::Stop),
            ModelEvent::Usage(Usage {
                prompt_tokens: 11,
                completion_tokens: 4,
                total_tokens: 15
            }),
        ]
    );
    let requests = up.requests.lock().unwrap();
    let (headers, body) = &requests[0];
    assert_eq!(headers["authorization"], "Bearer sk-test-secret");
    assert_eq!(body["model"], "gpt-4.1-mini");
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["messages"][0],
        serde_json::json!({"role": "user", "content": "Hello"})
    );
}

#[tokio::test]
async fn tool_call_deltas_come_through_in_pieces() {
    let call = |json: &str| {
        sse(&format!(
            r#"{{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{{"index":0,"delta":{{"tool_calls":[{json}]}},"finish_reason":null}}]}}"#
        ))
    };
    // Chunk boundaries fall inside SSE lines too.
    let whole = [
        call(r#"{"index":0,"id":"call_a","type":"function","function":{"name":"weather","arguments":""}}"#),
        call(r#"{"index":0,"function":{"arguments":"{\"city\":"}}"#),
        call(r#"{"index":1,"id":"call_b","type":"function","function":{"name":"time","arguments":"{}"}}"#),
        call(r#"{"index":0,"function":{"arguments":"\"Oslo\"}"}}"#),
        finish_chunk("tool_calls"),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    let (left, right) = whole.split_at(whole.len() / 2 + 3);
    let up = upstream(Script::Stream {
        chunks: vec![(0, left.to_owned()), (5, right.to_owned())],
        break_at_end: false,
    })
    .await;
    let (events, error) = collect(&provider(&up, Timeouts::default())).await;
    assert_eq!(error, None);
    let mut arguments = ["".to_owned(), "".to_owned()];
    let mut names = [None, None];
    for event in &events {
        if let ModelEvent::ToolCallDelta {
            index,
            name,
            arguments: piece,
            ..
        } = event
        {
            arguments[*index as usize].push_str(piece);
            if name.is_some() {
                names[*index as usize] = name.clone();
            }
        }
    }
    assert_eq!(
        arguments,
        ["{\"city\":\"Oslo\"}".to_owned(), "{}".to_owned()]
    );
    assert_eq!(names, [Some("weather".to_owned()), Some("time".to_owned())]);
    assert_eq!(
        events.last(),
        Some(&ModelEvent::Finish(FinishReason::ToolCalls))
    );
}

#[tokio::test]
async fn upstream_dying_mid_stream_is_an_error_after_the_partial_text() {
    let up = upstream(Script::Stream {
        chunks: vec![(0, text_chunk("Partial ")), (5, text_chunk("answer"))],
        break_at_end: true,
    })
    .await;
    let (events, error) = collect(&provider(&up, Timeouts::default())).await;
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
async fn a_body_that_ends_without_finishing_is_an_error() {
    let up = upstream(Script::Stream {
        chunks: vec![(0, text_chunk("Half"))],
        break_at_end: false,
    })
    .await;
    let (events, error) = collect(&provider(&up, Timeouts::default())).await;
    assert_eq!(events, vec![ModelEvent::TextDelta("Half".into())]);
    assert!(matches!(error, Some(ModelError::Connect(_))), "{error:?}");
}

#[tokio::test]
async fn a_malformed_chunk_is_a_protocol_error() {
    let up = upstream(Script::Stream {
        chunks: vec![(0, text_chunk("ok")), (0, "data: {not json\n\n".into())],
        break_at_end: false,
    })
    .await;
    let (events, error) = collect(&provider(&up, Timeouts::default())).await;
    assert_eq!(events, vec![ModelEvent::TextDelta("ok".into())]);
    assert!(matches!(error, Some(ModelError::Protocol(_))), "{error:?}");
    assert!(!error.unwrap().is_retryable());
}

#[tokio::test]
async fn an_error_event_mid_stream_is_an_upstream_error() {
    // After text, and alone with fields no chunk would have.
    for chunks in [
        vec![
            (0, text_chunk("ok")),
            (
                0,
                sse(r#"{"error":{"message":"overloaded","type":"server_error"}}"#),
            ),
        ],
        vec![(
            0,
            sse(r#"{"error":{"message":"overloaded"},"choices":null}"#),
        )],
    ] {
        let up = upstream(Script::Stream {
            chunks,
            break_at_end: false,
        })
        .await;
        let (_, error) = collect(&provider(&up, Timeouts::default())).await;
        assert_eq!(
            error,
            Some(ModelError::Upstream {
                status: 500,
                message: "overloaded".into()
            })
        );
    }
}

#[tokio::test]
async fn status_errors_map_to_model_errors() {
    let up = upstream(Script::Status(
        429,
        vec![("retry-after", "7")],
        r#"{"error":{"message":"slow down"}}"#,
    ))
    .await;
    let error = provider(&up, Timeouts::default())
        .stream(request())
        .await
        .err()
        .unwrap();
    assert_eq!(
        error,
        ModelError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );

    let up = upstream(Script::Status(429, vec![("retry-after-ms", "250")], "{}")).await;
    let error = provider(&up, Timeouts::default())
        .stream(request())
        .await
        .err()
        .unwrap();
    assert_eq!(
        error,
        ModelError::RateLimited {
            retry_after: Some(Duration::from_millis(250))
        }
    );

    let up = upstream(Script::Status(
        503,
        vec![],
        r#"{"error":{"message":"maintenance"}}"#,
    ))
    .await;
    let error = provider(&up, Timeouts::default())
        .stream(request())
        .await
        .err()
        .unwrap();
    assert_eq!(
        error,
        ModelError::Upstream {
            status: 503,
            message: "maintenance".into()
        }
    );
    assert!(error.is_retryable());

    let up = upstream(Script::Status(
        401,
        vec![],
        r#"{"error":{"message":"bad key"}}"#,
    ))
    .await;
    let error = provider(&up, Timeouts::default())
        .stream(request())
        .await
        .err()
        .unwrap();
    assert!(!error.is_retryable());
    assert!(!format!("{error} {error:?}").contains("sk-test-secret"));
}

#[tokio::test]
async fn first_token_and_idle_timeouts() {
    let quick = Timeouts {
        connect: Duration::from_secs(2),
        first_token: Duration::from_millis(150),
        idle: Duration::from_millis(150),
    };
    // Headers come at once, but the first token never does in time.
    let up = upstream(Script::Stream {
        chunks: vec![(2_000, text_chunk("late"))],
        break_at_end: false,
    })
    .await;
    let (events, error) = collect(&provider(&up, quick)).await;
    assert!(events.is_empty());
    assert_eq!(error, Some(ModelError::Timeout(Duration::from_millis(150))));
    // The first token comes, then the stream stalls.
    let up = upstream(Script::Stream {
        chunks: vec![(0, text_chunk("early")), (2_000, text_chunk("late"))],
        break_at_end: false,
    })
    .await;
    let (events, error) = collect(&provider(&up, quick)).await;
    assert_eq!(events, vec![ModelEvent::TextDelta("early".into())]);
    assert_eq!(error, Some(ModelError::Timeout(Duration::from_millis(150))));
    // An idle timeout shorter than the first token's applies from the first token on (the
    // stall is shorter than the first-token timeout, longer than the idle one).
    let patient_first = Timeouts {
        first_token: Duration::from_secs(5),
        ..quick
    };
    let (events, error) = collect(&provider(&up, patient_first)).await;
    assert_eq!(events, vec![ModelEvent::TextDelta("early".into())]);
    assert_eq!(error, Some(ModelError::Timeout(Duration::from_millis(150))));
}

#[tokio::test]
async fn an_unreachable_server_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let provider = OpenAiChat::new(&base, None, Timeouts::default()).unwrap();
    let error = provider.stream(request()).await.err().unwrap();
    assert!(matches!(error, ModelError::Connect(_)), "{error:?}");
    assert!(error.is_retryable());
}

mod fallback {
    use std::sync::Arc;

    use frontdesk_models::fallback::{start, Candidate, RetryPolicy};

    use super::*;

    fn ok_stream() -> Script {
        Script::Stream {
            chunks: vec![
                (0, text_chunk("Hi")),
                (0, finish_chunk("stop")),
                (0, "data: [DONE]\n\n".into()),
            ],
            break_at_end: false,
        }
    }

    fn candidate(upstream: &Upstream, label: &str, timeouts: Timeouts) -> Candidate {
        Candidate {
            provider: Arc::new(provider(upstream, timeouts)),
            label: label.into(),
            model: "m".into(),
            api_key: None,
        }
    }

    const FAST: RetryPolicy = RetryPolicy {
        max_retries: 2,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
    };

    async fn texts(
        stream: frontdesk_core::model::ModelStream,
    ) -> Vec<Result<ModelEvent, ModelError>> {
        stream.collect().await
    }

    #[tokio::test]
    async fn a_429_is_retried_after_its_retry_after() {
        let up = upstream_sequence(vec![
            Script::Status(429, vec![("retry-after-ms", "20")], "{}"),
            ok_stream(),
        ])
        .await;
        let started = start(
            &[candidate(&up, "openai/m", Timeouts::default())],
            &request(),
            FAST,
        )
        .await
        .ok()
        .unwrap();
        assert_eq!(started.candidate, 0);
        assert_eq!(started.failures.len(), 1);
        assert!(matches!(
            started.failures[0].error,
            ModelError::RateLimited { .. }
        ));
        assert_eq!(
            texts(started.stream).await[0],
            Ok(ModelEvent::TextDelta("Hi".into()))
        );
        assert_eq!(up.requests.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_failing_model_falls_back_to_the_next() {
        let broken = upstream(Script::Status(502, vec![], "{}")).await;
        let good = upstream(ok_stream()).await;
        let candidates = [
            candidate(&broken, "openai/a", Timeouts::default()),
            candidate(&good, "other/b", Timeouts::default()),
        ];
        let started = start(&candidates, &request(), FAST).await.ok().unwrap();
        assert_eq!(started.candidate, 1);
        // One attempt and two retries on the broken one.
        assert_eq!(broken.requests.lock().unwrap().len(), 3);
        assert_eq!(
            started
                .failures
                .iter()
                .filter(|attempt| attempt.label == "openai/a")
                .count(),
            3
        );
    }

    #[tokio::test]
    async fn a_first_token_timeout_falls_back_and_a_bad_key_is_not_retried() {
        let quick = Timeouts {
            connect: Duration::from_secs(1),
            first_token: Duration::from_millis(100),
            idle: Duration::from_secs(1),
        };
        let slow = upstream(Script::Stream {
            chunks: vec![(1_000, text_chunk("late"))],
            break_at_end: false,
        })
        .await;
        let unauthorized = upstream(Script::Status(
            401,
            vec![],
            r#"{"error":{"message":"bad key"}}"#,
        ))
        .await;
        let good = upstream(ok_stream()).await;
        let policy = RetryPolicy {
            max_retries: 0,
            ..FAST
        };
        let candidates = [
            candidate(&slow, "a/slow", quick),
            candidate(&unauthorized, "b/key", quick),
            candidate(&good, "c/good", quick),
        ];
        let started = start(&candidates, &request(), policy).await.ok().unwrap();
        assert_eq!(started.candidate, 2);
        assert_eq!(unauthorized.requests.lock().unwrap().len(), 1);
        assert!(matches!(started.failures[0].error, ModelError::Timeout(_)));
        assert!(matches!(
            started.failures[1].error,
            ModelError::Upstream { status: 401, .. }
        ));
    }

    #[tokio::test]
    async fn when_all_fail_the_last_error_comes_back_and_late_errors_are_not_retried() {
        let broken = upstream(Script::Status(
            500,
            vec![],
            r#"{"error":{"message":"down"}}"#,
        ))
        .await;
        let err = start(
            &[candidate(&broken, "a/x", Timeouts::default())],
            &request(),
            FAST,
        )
        .await
        .err()
        .unwrap();
        assert_eq!(
            err.0,
            ModelError::Upstream {
                status: 500,
                message: "down".into()
            }
        );
        assert_eq!(err.1.len(), 3);

        // Once a token went out, a broken stream is the run's to report: no retry.
        let dying = upstream(Script::Stream {
            chunks: vec![(0, text_chunk("Part")), (5, text_chunk("ial"))],
            break_at_end: true,
        })
        .await;
        let started = start(
            &[candidate(&dying, "a/x", Timeouts::default())],
            &request(),
            FAST,
        )
        .await
        .ok()
        .unwrap();
        let items = texts(started.stream).await;
        assert_eq!(items[0], Ok(ModelEvent::TextDelta("Part".into())));
        assert!(matches!(items.last(), Some(Err(ModelError::Connect(_)))));
        assert_eq!(dying.requests.lock().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn speaks_http2_when_told_and_opens_a_connection_for_each_full_lane() {
    use frontdesk_core::config::HttpVersion;
    use frontdesk_models::http::HttpSettings;
    let up = upstream(Script::Stream {
        chunks: vec![
            (0, text_chunk("Hi")),
            (300, finish_chunk("stop")),
            (0, "data: [DONE]\n\n".to_owned()),
        ],
        break_at_end: false,
    })
    .await;
    let settings = HttpSettings {
        version: HttpVersion::Http2,
        max_streams_per_connection: 2,
        timeouts: Timeouts::default(),
    };
    let h2 = OpenAiChat::new(&up.base_url, None, settings).unwrap();
    // Two streams in the middle of their answers fill the first connection: a third one
    // opens another, since a stream keeps its place until its body ends.
    let mut first = h2.stream(request()).await.unwrap();
    let mut second = h2.stream(request()).await.unwrap();
    for stream in [&mut first, &mut second] {
        let event = stream.next().await.unwrap().unwrap();
        assert_eq!(event, ModelEvent::TextDelta("Hi".into()));
    }
    let (events, error) = collect(&h2).await;
    assert!(error.is_none(), "{error:?}");
    assert!(events.contains(&ModelEvent::TextDelta("Hi".into())));
    assert_eq!(up.connections(), 2);
    for stream in [first, second] {
        let rest: Vec<_> = stream.collect().await;
        assert!(rest.iter().all(Result::is_ok), "{rest:?}");
    }
    // Every place was given back: five at once need three connections, not more.
    let results = futures_util::future::join_all((0..5).map(|_| collect(&h2))).await;
    for (events, error) in results {
        assert!(error.is_none(), "{error:?}");
        assert!(
            events.contains(&ModelEvent::TextDelta("Hi".into())),
            "{events:?}"
        );
    }
    assert_eq!(up.connections(), 3);
    assert!(up
        .versions
        .lock()
        .unwrap()
        .iter()
        .all(|v| *v == axum::http::Version::HTTP_2));

    // Plain http:// with the default settings: HTTP/1.1, a connection per stream at once,
    // and each goes back to the pool after its answer (its body is read to the end).
    let h1 = provider(&up, Timeouts::default());
    let results = futures_util::future::join_all((0..2).map(|_| collect(&h1))).await;
    assert!(results.iter().all(|(_, error)| error.is_none()));
    assert_eq!(up.connections(), 5);
    let (_, error) = collect(&h1).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(up.connections(), 5, "a kept-alive connection is used again");
    let versions = up.versions.lock().unwrap().clone();
    assert_eq!(versions[8..], [axum::http::Version::HTTP_11; 3]);
}
