//! The OpenAI embeddings client against the scripted upstream: the request it sends, the
//! vectors it returns, and how error statuses and malformed answers map.

use std::time::Duration;

use frontdesk_core::embed::{EmbedError, Embedder};
use frontdesk_core::model::ModelError;
use frontdesk_models::openai_embeddings::OpenAiEmbeddings;
use frontdesk_models::Timeouts;
use secrecy::SecretString;
use serde_json::json;

use crate::common::{upstream, upstream_sequence, Script, Upstream};

fn client(upstream: &Upstream, model: &str, dimensions: usize) -> OpenAiEmbeddings {
    OpenAiEmbeddings::new(
        &upstream.base_url,
        Some(SecretString::from("sk-test-secret".to_owned())),
        model,
        dimensions,
        Timeouts::default(),
    )
    .unwrap()
}

fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A documented answer: `vectors[i]` at index `indices[i]`.
fn answer(vectors: &[(usize, Vec<f32>)]) -> &'static str {
    let data: Vec<_> = vectors
        .iter()
        .map(|(index, embedding)| json!({"object": "embedding", "index": index, "embedding": embedding}))
        .collect();
    let body = json!({
        "object": "list",
        "data": data,
        "model": "m",
        "usage": {"prompt_tokens": 4, "total_tokens": 4}
    });
    Box::leak(body.to_string().into_boxed_str())
}

#[tokio::test]
async fn sends_model_input_format_and_key_and_returns_vectors_in_input_order() {
    // The upstream lists the second input's vector first: order comes from `index`.
    let up = upstream(Script::Status(
        200,
        vec![],
        answer(&[(1, vec![0.0, 1.0, 0.5]), (0, vec![1.0, 0.0, -0.5])]),
    ))
    .await;
    let embedder = client(&up, "nomic-embed-text", 3);
    assert_eq!(embedder.dimensions(), 3);
    assert_eq!(embedder.model(), "nomic-embed-text");

    let vectors = embedder.embed(&texts(&["first", "second"])).await.unwrap();
    assert_eq!(vectors, vec![vec![1.0, 0.0, -0.5], vec![0.0, 1.0, 0.5]]);

    let requests = up.requests.lock().unwrap();
    assert_eq!(requests.len(), 1);
    let (headers, body) = &requests[0];
    assert_eq!(
        body,
        &json!({"model": "nomic-embed-text", "input": ["first", "second"], "encoding_format": "float"})
    );
    assert_eq!(headers["authorization"], "Bearer sk-test-secret");
    assert_eq!(headers["content-type"], "application/json");
}

#[tokio::test]
async fn a_shorter_text_embedding_3_vector_is_asked_for() {
    let up = upstream(Script::Status(200, vec![], answer(&[(0, vec![0.25; 256])]))).await;
    let vectors = client(&up, "text-embedding-3-small", 256)
        .embed(&texts(&["hello"]))
        .await
        .unwrap();
    assert_eq!(vectors, vec![vec![0.25; 256]]);
    let body = &up.requests.lock().unwrap()[0].1;
    assert_eq!(
        body,
        &json!({"model": "text-embedding-3-small", "input": ["hello"], "encoding_format": "float", "dimensions": 256})
    );
}

#[tokio::test]
async fn many_texts_go_in_several_requests_in_order() {
    let up = upstream_sequence(vec![
        Script::Status(200, vec![], answer(&[(0, vec![1.0]), (1, vec![2.0])])),
        Script::Status(200, vec![], answer(&[(0, vec![3.0])])),
    ])
    .await;
    let vectors = client(&up, "m", 1)
        .with_max_inputs(2)
        .embed(&texts(&["a", "b", "c"]))
        .await
        .unwrap();
    assert_eq!(vectors, vec![vec![1.0], vec![2.0], vec![3.0]]);
    let requests = up.requests.lock().unwrap();
    let inputs: Vec<_> = requests
        .iter()
        .map(|(_, body)| body["input"].clone())
        .collect();
    assert_eq!(inputs, vec![json!(["a", "b"]), json!(["c"])]);
}

#[tokio::test]
async fn no_texts_send_no_request() {
    let up = upstream(Script::Status(500, vec![], "{}")).await;
    let vectors = client(&up, "m", 3).embed(&[]).await.unwrap();
    assert!(vectors.is_empty());
    assert!(up.requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_error_status_keeps_its_status_and_message_but_not_the_key() {
    let up = upstream(Script::Status(
        401,
        vec![],
        r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#,
    ))
    .await;
    let error = client(&up, "m", 3).embed(&texts(&["a"])).await.unwrap_err();
    match &error {
        EmbedError::Provider(ModelError::Upstream { status, message }) => {
            assert_eq!(*status, 401);
            assert_eq!(message, "Incorrect API key provided");
        }
        other => panic!("expected Upstream, got {other:?}"),
    }
    assert!(!error.is_retryable());
    assert!(!error.to_string().contains("sk-test-secret"));
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retryable() {
    let up = upstream(Script::Status(
        429,
        vec![("retry-after", "2")],
        r#"{"error":{"message":"slow down"}}"#,
    ))
    .await;
    let error = client(&up, "m", 3).embed(&texts(&["a"])).await.unwrap_err();
    assert!(
        matches!(
            error,
            EmbedError::Provider(ModelError::RateLimited { retry_after: Some(wait) })
                if wait == Duration::from_secs(2)
        ),
        "{error:?}"
    );
    assert!(error.is_retryable());

    let up = upstream(Script::Status(
        503,
        vec![],
        r#"{"error":{"message":"overloaded"}}"#,
    ))
    .await;
    let error = client(&up, "m", 3).embed(&texts(&["a"])).await.unwrap_err();
    assert!(
        matches!(
            &error,
            EmbedError::Provider(ModelError::Upstream { status: 503, .. })
        ),
        "{error:?}"
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn an_input_over_the_context_length_is_too_large() {
    let up = upstream(Script::Status(
        400,
        vec![],
        r#"{"error":{"message":"This model's maximum context length is 8192 tokens, however you requested 9000 tokens.","type":"invalid_request_error","code":null}}"#,
    ))
    .await;
    let error = client(&up, "m", 3)
        .embed(&texts(&["long"]))
        .await
        .unwrap_err();
    assert!(matches!(error, EmbedError::InputTooLarge(_)), "{error:?}");
}

#[tokio::test]
async fn malformed_answers_are_protocol_errors() {
    for body in [
        // A vector of the wrong length.
        answer(&[(0, vec![1.0, 2.0])]),
        // Too few vectors.
        answer(&[]),
        // An index out of range.
        answer(&[(3, vec![1.0, 2.0, 3.0])]),
        // Not the documented shape.
        r#"{"object":"list","data":"nope"}"#,
        "not json",
    ] {
        let up = upstream(Script::Status(200, vec![], body)).await;
        let error = client(&up, "m", 3).embed(&texts(&["a"])).await.unwrap_err();
        assert!(
            matches!(error, EmbedError::Provider(ModelError::Protocol(_))),
            "{body}: {error:?}"
        );
    }
    let up = upstream(Script::Status(
        200,
        vec![],
        answer(&[(0, vec![1.0, 2.0, 3.0]), (0, vec![1.0, 2.0, 3.0])]),
    ))
    .await;
    let error = client(&up, "m", 3)
        .embed(&texts(&["a", "b"]))
        .await
        .unwrap_err();
    assert!(
        matches!(error, EmbedError::Provider(ModelError::Protocol(_))),
        "{error:?}"
    );
}
