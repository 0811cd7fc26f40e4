//! Regenerate, edit, the active branch with its siblings, switching branches, starting a
//! conversation with its first message, and the history the model gets (the branch only,
//! trimmed to the context window).

use frontdesk_core::id::ConversationId;
use frontdesk_core::model::ModelMessage;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{expect, expect_error, RecordingModel, TestApp};

fn texts(messages: &[ModelMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| match m {
            ModelMessage::System { text } => format!("system:{text}"),
            ModelMessage::User { text } => format!("user:{text}"),
            ModelMessage::Assistant { text, .. } => format!("assistant:{text}"),
            ModelMessage::Tool { content, .. } => format!("tool:{content}"),
        })
        .collect()
}

fn branch_texts(conversation: &Value) -> Vec<String> {
    conversation["messages"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"][0]["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn regenerate_and_edit_make_branches_and_the_model_sees_only_the_active_one() {
    let model = RecordingModel::new("answer", None);
    let app = TestApp::builder()
        .provider("rec", model.clone())
        .spawn()
        .await;
    let (t, id) = app.chat("rec/m").await;
    let send = |text: &str| {
        app.post(
            &format!("/api/v1/conversations/{id}/messages"),
            &t.key,
            &json!({"content": text}),
        )
    };
    let first = expect(send("one").send().await.unwrap(), StatusCode::OK).await;
    let a1 = first["message"]["id"].as_str().unwrap().to_owned();
    let second = expect(send("two").send().await.unwrap(), StatusCode::OK).await;
    let a2 = second["message"]["id"].as_str().unwrap().to_owned();
    let u2 = second["message"]["parent_id"].as_str().unwrap().to_owned();
    assert_eq!(second["conversation_id"], id.as_str());

    // Regenerate the second answer: a sibling, made from the same history.
    let again = expect(
        app.post(
            &format!("/api/v1/conversations/{id}/messages/{a2}/regenerate"),
            &t.key,
            &json!({}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    let a2b = again["message"]["id"].as_str().unwrap().to_owned();
    assert_eq!(again["message"]["parent_id"], u2.as_str());
    assert_eq!(again["message"]["content"][0]["text"], "answer #3");
    let requests = model.requests();
    assert_eq!(texts(&requests[2].messages), texts(&requests[1].messages));
    assert_eq!(
        texts(&requests[1].messages),
        ["user:one", "assistant:answer #1", "user:two"]
    );

    let conversation = expect(
        app.get(&format!("/api/v1/conversations/{id}"), &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        branch_texts(&conversation),
        ["one", "answer #1", "two", "answer #3"]
    );
    assert_eq!(conversation["active_message_id"], a2b.as_str());
    assert_eq!(
        conversation["messages"]["data"][3]["sibling_ids"],
        json!([a2, a2b])
    );
    assert!(conversation["messages"]["data"][0]
        .get("sibling_ids")
        .is_none());

    // Edit the first message: a new branch from the root; the model sees only it.
    let u1 = first["message"]["parent_id"].as_str().unwrap().to_owned();
    let edited = expect(
        app.post(
            &format!("/api/v1/conversations/{id}/messages/{u1}/edit"),
            &t.key,
            &json!({"content": "uno"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        texts(&model.requests()[3].messages),
        ["user:uno"],
        "an edited first message starts a fresh history"
    );
    let conversation = expect(
        app.get(&format!("/api/v1/conversations/{id}"), &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(branch_texts(&conversation), ["uno", "answer #4"]);
    let new_u1 = edited["message"]["parent_id"].as_str().unwrap();
    assert_eq!(
        conversation["messages"]["data"][0]["sibling_ids"],
        json!([u1, new_u1])
    );
    // Every message is still there in the full list.
    let all = expect(
        app.get(
            &format!("/api/v1/conversations/{id}/messages?limit=50"),
            &t.key,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    // one, answer #1, two, answer #2, answer #3, uno, answer #4
    assert_eq!(all["data"].as_array().unwrap().len(), 7);

    // Switch back to the first branch and continue it.
    let switched = expect(
        app.patch(
            &format!("/api/v1/conversations/{id}"),
            &t.key,
            &json!({"active_message_id": a1}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(switched["active_message_id"], a2b.as_str());
    expect(send("three").send().await.unwrap(), StatusCode::OK).await;
    assert_eq!(
        texts(&model.requests()[4].messages),
        [
            "user:one",
            "assistant:answer #1",
            "user:two",
            "assistant:answer #3",
            "user:three"
        ]
    );

    // Bad requests: editing an answer, regenerating a message of another conversation,
    // switching to a message that is not there.
    expect_error(
        app.post(
            &format!("/api/v1/conversations/{id}/messages/{a1}/edit"),
            &t.key,
            &json!({"content": "x"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    let other = app.conversation(&t, "support", &[]).await;
    let other_id = other["id"].as_str().unwrap();
    expect_error(
        app.post(
            &format!("/api/v1/conversations/{other_id}/messages/{a1}/regenerate"),
            &t.key,
            &json!({}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        app.patch(
            &format!("/api/v1/conversations/{id}"),
            &t.key,
            &json!({"active_message_id": "msg_01jd8x5k7m3q4r5s6t7v8w9x0y"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn one_call_starts_a_conversation_with_its_first_message() {
    let model = RecordingModel::new("hello", None);
    let app = TestApp::builder()
        .provider("rec", model.clone())
        .spawn()
        .await;
    let (t, _) = app.chat("rec/m").await;
    let body = json!({"agent": "support", "content": "Where is my order?", "end_user_id": "u-42",
                      "metadata": {"page": "/orders"}});
    let started = expect(
        app.post("/api/v1/messages", &t.key, &body)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let id = started["conversation_id"].as_str().unwrap();
    assert_eq!(started["message"]["content"][0]["text"], "hello #1");
    let conversation = expect(
        app.get(&format!("/api/v1/conversations/{id}"), &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(conversation["title"], "Where is my order?");
    assert_eq!(conversation["end_user_id"], "u-42");
    assert_eq!(conversation["metadata"]["page"], "/orders");
    assert_eq!(conversation["message_count"], 2);

    // As SSE, run.started names the new conversation.
    let response = app
        .post(
            "/api/v1/messages",
            &t.key,
            &json!({"agent": "support", "content": "Hi"}),
        )
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert!(text.contains("event: run.started"), "{text}");
    assert!(text.contains("\"conversation_id\":\"conv_"), "{text}");

    // Bad input creates nothing.
    let before = app
        .service
        .list_conversations(&t.id, Default::default())
        .await
        .unwrap();
    for (body, status, field) in [
        (
            json!({"agent": "support", "content": "  "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "content",
        ),
        (
            json!({"agent": "nobody", "content": "Hi"}),
            StatusCode::NOT_FOUND,
            "",
        ),
        (
            json!({"agent": "support"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "content",
        ),
    ] {
        let response = app
            .post("/api/v1/messages", &t.key, &body)
            .send()
            .await
            .unwrap();
        let error = expect(response, status).await;
        if !field.is_empty() {
            assert_eq!(error["error"]["field"], field, "{body}");
        }
    }
    let after = app
        .service
        .list_conversations(&t.id, Default::default())
        .await
        .unwrap();
    assert_eq!(before.items.len(), after.items.len());
    app.stop().await;
}

#[tokio::test]
async fn history_is_trimmed_to_the_context_window_oldest_first() {
    // A 300-token window; no max_tokens, so a quarter (75) is kept for the answer.
    let model = RecordingModel::new("ok", Some(300));
    let app = TestApp::builder()
        .provider("rec", model.clone())
        .spawn()
        .await;
    let (t, id) = app.chat("rec/m").await;
    expect(
        app.patch(
            "/api/v1/agents/support",
            &t.key,
            &json!({"instructions": "Always answer in French."}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    // Each message costs about 60 tokens (180 bytes / 3 + 4).
    for n in 0..6 {
        let text = format!("{n}{}", "x".repeat(179));
        expect(
            app.post(
                &format!("/api/v1/conversations/{id}/messages"),
                &t.key,
                &json!({"content": text}),
            )
            .send()
            .await
            .unwrap(),
            StatusCode::OK,
        )
        .await;
    }
    let last = model.requests().pop().unwrap();
    let seen = texts(&last.messages);
    assert_eq!(seen[0], "system:Always answer in French.");
    let user_turns: Vec<&String> = seen.iter().filter(|m| m.starts_with("user:")).collect();
    assert!(user_turns.last().unwrap().starts_with("user:5"), "{seen:?}");
    assert!(
        !seen.iter().any(|m| m.starts_with("user:0")),
        "the oldest turns are dropped: {seen:?}"
    );
    assert!(
        seen[1].starts_with("user:"),
        "history starts with a user message: {seen:?}"
    );

    // A message that cannot fit is refused before anything is stored.
    let count = app
        .service
        .get_conversation(&t.id, &ConversationId::parse(&id).unwrap())
        .await
        .unwrap()
        .message_count;
    expect_error(
        app.post(
            &format!("/api/v1/conversations/{id}/messages"),
            &t.key,
            &json!({"content": "y".repeat(3000)}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    let after = app
        .service
        .get_conversation(&t.id, &ConversationId::parse(&id).unwrap())
        .await
        .unwrap()
        .message_count;
    assert_eq!(count, after);
    app.stop().await;
}

/// The playground's comparison: another answer to the same message from another model or a
/// saved version of the agent, as a sibling; the agent itself stays as it is.
#[tokio::test]
async fn another_answer_from_another_model_or_an_earlier_version() {
    let first = RecordingModel::new("first", None);
    let second = RecordingModel::new("second", None);
    let app = TestApp::builder()
        .provider("rec", first.clone())
        .provider("alt", second.clone())
        .spawn()
        .await;
    let (t, id) = app.chat("rec/m").await;
    // Version 2 has other instructions.
    expect(
        app.patch(
            "/api/v1/agents/support",
            &t.key,
            &json!({"instructions": "Answer in French."}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    let sent = expect(
        app.post(
            &format!("/api/v1/conversations/{id}/messages"),
            &t.key,
            &json!({"content": "hello"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    let answer = sent["message"]["id"].as_str().unwrap().to_owned();
    let regenerate = |body: Value| {
        app.post(
            &format!("/api/v1/conversations/{id}/messages/{answer}/regenerate"),
            &t.key,
            &body,
        )
        .send()
    };
    // Version 1, on the other provider: its instructions (none), the other model.
    let compared = expect(
        regenerate(json!({"model": "alt/big", "agent_version": 1}))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(compared["message"]["content"][0]["text"], "second #1");
    assert_eq!(compared["message"]["model"], "alt/big");
    assert_eq!(
        compared["message"]["parent_id"],
        sent["message"]["parent_id"]
    );
    let asked = second.requests();
    assert_eq!(asked[0].model, "big");
    assert_eq!(texts(&asked[0].messages), ["user:hello"]);
    let current = first.requests();
    assert_eq!(
        texts(&current[0].messages),
        ["system:Answer in French.", "user:hello"]
    );

    // No body at all is a plain regenerate with the current agent.
    let plain = app
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/conversations/{id}/messages/{answer}/regenerate"),
            &t.key,
        )
        .send()
        .await
        .unwrap();
    let plain = expect(plain, StatusCode::OK).await;
    assert_eq!(plain["message"]["content"][0]["text"], "first #2");
    // Nor is an empty body sent as JSON.
    let empty = app
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/conversations/{id}/messages/{answer}/regenerate"),
            &t.key,
        )
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    let empty = expect(empty, StatusCode::OK).await;
    assert_eq!(empty["message"]["content"][0]["text"], "first #3");

    // A version the agent never had, a model no provider serves, bad values.
    expect_error(
        regenerate(json!({"agent_version": 9})).await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        regenerate(json!({"model": "nobody/m"})).await.unwrap(),
        StatusCode::CONFLICT,
        "model_unavailable",
    )
    .await;
    for bad in [
        json!({"model": "no-slash"}),
        json!({"agent_version": 0}),
        json!({"temperature": 1}),
    ] {
        let response = regenerate(bad.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    // The same on a new message.
    let sent = expect(
        app.post(
            &format!("/api/v1/conversations/{id}/messages"),
            &t.key,
            &json!({"content": "again", "model": "alt/small"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(sent["message"]["model"], "alt/small");
    // The agent is unchanged.
    let agent = expect(
        app.get("/api/v1/agents/support", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(agent["model"], "rec/m");
    assert_eq!(agent["version"], 2);
}
