//! The OpenAI-compatible API (`/openai/v1`) driven by the official `openai` Python SDK
//! (in .venv-test): models, chat completions streamed and not, usage, client tools both ways,
//! and the SDK's exception types for 401, 404, 422 and 429.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{expect, TestApp};
use crate::mcp::run_fixture;
use crate::scripted::{call, text, Scripted};

#[tokio::test]
async fn the_openai_python_sdk_talks_to_an_agent() {
    let scripted = Scripted::start(vec![
        text("Hello from the agent."),
        text("Streaming works."),
        call("call_w", "get_weather", json!({"city": "Oslo"})),
        text("It is sunny in Oslo."),
        call("call_b", "get_weather", json!({"city": "Bergen"})),
    ])
    .await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .spawn()
        .await;
    let t = app.tenant("Acme").await;
    let agent = json!({"slug": "support", "name": "Support", "model": "scripted/gpt-test", "instructions": "Be brief.",
        "tools": [{"type": "builtin", "name": "current_time"}]});
    expect(
        app.post("/api/v1/agents", &t.key, &agent)
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let limited = expect(
        app.post(
            "/api/v1/api-keys",
            &t.key,
            &json!({"kind": "secret", "name": "limited", "rate_limit_per_minute": 1}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let limited = limited["key"].as_str().unwrap().to_owned();
    let out = run_fixture(
        "openai_client.py",
        &[&format!("{}/openai/v1", app.base), &t.key, &limited],
    )
    .await;
    assert_eq!(out["models"], json!(["support"]));
    assert_eq!(out["model"], "support");
    assert_eq!(
        out["plain"],
        json!({"content": "Hello from the agent.", "finish_reason": "stop", "total_tokens": 25, "object": "chat.completion"})
    );
    assert_eq!(out["stream"]["text"], "Streaming works.");
    assert_eq!(out["stream"]["usage"], 25);
    assert_eq!(out["tool_call"]["finish_reason"], "tool_calls");
    assert_eq!(out["tool_call"]["name"], "get_weather");
    assert_eq!(out["tool_call"]["arguments"], json!({"city": "Oslo"}));
    assert_eq!(out["tool_answer"], "It is sunny in Oslo.");
    assert_eq!(
        out["stream_tool_call"],
        json!({"finish_reason": "tool_calls", "name": "get_weather", "arguments": {"city": "Bergen"}})
    );
    assert_eq!(
        out["errors"]["bad_key"],
        json!(["AuthenticationError", 401])
    );
    assert_eq!(
        out["errors"]["unknown_model"],
        json!(["NotFoundError", 404])
    );
    assert_eq!(
        out["errors"]["rate_limited"],
        json!(["RateLimitError", 429])
    );
    assert_eq!(
        out["errors"]["bad_role"],
        json!(["UnprocessableEntityError", 422])
    );
    // What the model saw: the agent's instructions, then the client's system message; the
    // agent's own tool and the client's tool side by side; the client's tool result.
    let requests = scripted.requests();
    assert_eq!(
        requests[0]["messages"][0]["content"],
        "Be brief.\n\nAnswer in English."
    );
    let offered: Vec<&str> = requests[2]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(offered, ["current_time", "get_weather"]);
    let tool_message = requests[3]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap();
    assert_eq!(tool_message["content"], "Sunny, 21 C");
    assert_eq!(tool_message["tool_call_id"], "call_w");
    // Each request is a conversation of its own, visible in the native API.
    let conversations = expect(
        app.get("/api/v1/conversations", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(conversations["data"].as_array().unwrap().len(), 5);
    assert_eq!(
        conversations["data"][0]["metadata"]["source"],
        "openai.chat_completions"
    );
    // Another tenant's key sees its own (no) agents.
    let other = app.tenant("Other").await;
    let models = expect(
        app.get("/openai/v1/models", &other.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(models["data"], json!([]));
    let body = json!({"model": "support", "messages": [{"role": "user", "content": "hi"}]});
    let response = app
        .post("/openai/v1/chat/completions", &other.key, &body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = app
        .get("/openai/v1/models/support", &other.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // A history that ends with the assistant has nothing to answer.
    let body = json!({"model": "support", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]});
    let response = app
        .post("/openai/v1/chat/completions", &t.key, &body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A tool result for a call nobody made is refused.
    let body = json!({"model": "support", "messages": [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "x", "content": "1"}]});
    let response = app
        .post("/openai/v1/chat/completions", &t.key, &body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}

#[tokio::test]
async fn the_responses_api_chains_turns_by_previous_response_id_and_conversation() {
    let scripted = Scripted::start(vec![
        text("Nice to meet you, Ada."),
        text("Your name is Ada."),
        text("Streamed answer."),
        call("call_w", "get_weather", json!({"city": "Oslo"})),
        text("Sunny in Oslo."),
        text("Hi again."),
    ])
    .await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .spawn()
        .await;
    let t = app.tenant("Acme").await;
    let agent = json!({"slug": "support", "name": "Support", "model": "scripted/gpt-test", "instructions": "Be brief."});
    expect(
        app.post("/api/v1/agents", &t.key, &agent)
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let conversation = app
        .conversation(&t, "support", &["Earlier question", "Earlier answer"])
        .await;
    let conversation = conversation["id"].as_str().unwrap();
    let out = run_fixture(
        "openai_responses.py",
        &[&format!("{}/openai/v1", app.base), &t.key, conversation],
    )
    .await;
    assert!(out["first"]["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(out["first"]["text"], "Nice to meet you, Ada.");
    assert_eq!(out["first"]["status"], "completed");
    assert_eq!(out["first"]["total_tokens"], 25);
    assert_eq!(out["second"]["text"], "Your name is Ada.");
    assert_eq!(out["second"]["previous"], out["first"]["id"]);
    assert_eq!(out["stream"]["text"], "Streamed answer.");
    assert_eq!(out["stream"]["status"], "completed");
    assert!(out["stream"]["deltas"].as_u64().unwrap() >= 2);
    assert_eq!(out["call"]["name"], "get_weather");
    assert_eq!(out["call"]["arguments"], json!({"city": "Oslo"}));
    assert_eq!(out["answered"], "Sunny in Oslo.");
    assert_eq!(out["retrieved"], "Sunny in Oslo.");
    assert_eq!(out["conversation"]["text"], "Hi again.");
    assert_eq!(out["conversation"]["conversation"], conversation);
    let requests = scripted.requests();
    // The second turn carried the first without resending it.
    let texts = |r: &Value| -> Vec<String> {
        r["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(
        texts(&requests[1]),
        [
            "Be brief.",
            "My name is Ada.",
            "Nice to meet you, Ada.",
            "What is my name?"
        ]
    );
    // The client's tool result reached the model, paired with its call.
    let messages = requests[4]["messages"].as_array().unwrap();
    let call_at = messages
        .iter()
        .position(|m| m["tool_calls"][0]["id"] == "call_w")
        .unwrap();
    assert_eq!(messages[call_at + 1]["role"], "tool");
    assert_eq!(messages[call_at + 1]["content"], "Sunny, 21 C");
    // The conversation's own history came along.
    assert_eq!(
        texts(&requests[5])[1..],
        ["Earlier question", "Earlier answer", "Hello there"]
    );
    // Another tenant cannot chain onto these responses.
    let other = app.tenant("Other").await;
    expect(
        app.post("/api/v1/agents", &other.key, &agent)
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let first = out["first"]["id"].as_str().unwrap();
    let body = json!({"model": "support", "input": "x", "previous_response_id": first});
    let response = app
        .post("/openai/v1/responses", &other.key, &body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = app
        .get(&format!("/openai/v1/responses/{first}"), &other.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = json!({"model": "support", "input": "x", "conversation": conversation});
    let response = app
        .post("/openai/v1/responses", &other.key, &body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}
