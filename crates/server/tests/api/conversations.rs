//! Conversations over HTTP: list, filter, search, page, read with messages, update,
//! delete and purge, export.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{expect, expect_error, TestApp};

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn conversations_list_search_and_page() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    app.agent(&t, "support").await;
    app.agent(&t, "sales").await;
    let refund = app
        .conversation(
            &t,
            "support",
            &[
                "I want a refund for my blender",
                "Sure, I can help with that.",
            ],
        )
        .await;
    let shipping = app
        .conversation(&t, "sales", &["Do you ship to Iceland?"])
        .await;
    let empty = app.conversation(&t, "support", &[]).await;

    let all = expect(
        app.get("/api/v1/conversations", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&all).len(), 3);
    assert_eq!(all["has_more"], false);

    // Pages of one, following the cursor, cover everything once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/conversations?limit=1&cursor={c}"),
            None => "/api/v1/conversations?limit=1".to_owned(),
        };
        let page = expect(app.get(&path, &t.key).send().await.unwrap(), StatusCode::OK).await;
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids(&all));

    let by_agent = expect(
        app.get("/api/v1/conversations?agent=sales", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&by_agent), vec![shipping["id"].as_str().unwrap()]);
    let search = expect(
        app.get("/api/v1/conversations?q=blender", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&search), vec![refund["id"].as_str().unwrap()]);
    let search = expect(
        app.get("/api/v1/conversations?q=icel", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&search), vec![shipping["id"].as_str().unwrap()]);

    // Archive one; the default list hides it; archived=true and all show it.
    let id = empty["id"].as_str().unwrap();
    let archived = expect(
        app.patch(
            &format!("/api/v1/conversations/{id}"),
            &t.key,
            &json!({"archived": true, "title": "Spam", "metadata": {"crm": 42}}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(archived["archived"], true);
    assert_eq!(archived["title"], "Spam");
    assert_eq!(archived["metadata"], json!({"crm": 42}));
    let active = expect(
        app.get("/api/v1/conversations", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(!ids(&active).contains(&id.to_owned()));
    let only = expect(
        app.get("/api/v1/conversations?archived=true", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&only), vec![id]);
    let both = expect(
        app.get("/api/v1/conversations?archived=all", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&both).len(), 3);
    // title: null clears it.
    let cleared = expect(
        app.patch(
            &format!("/api/v1/conversations/{id}"),
            &t.key,
            &json!({"title": null}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(cleared["title"], Value::Null);
    assert_eq!(cleared["archived"], true);
    app.stop().await;
}

#[tokio::test]
async fn a_conversation_reads_with_paged_messages_and_exports() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    app.agent(&t, "support").await;
    let texts: Vec<String> = (1..=7).map(|n| format!("message number {n}")).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let conversation = app.conversation(&t, "support", &refs).await;
    let id = conversation["id"].as_str().unwrap();

    let got = expect(
        app.get(&format!("/api/v1/conversations/{id}?limit=3"), &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(got["message_count"], 7);
    assert_eq!(got["title"], "message number 1");
    assert_eq!(got["preview"], "message number 7");
    let seqs = |page: &Value| {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(seqs(&got["messages"]), vec![1, 2, 3]);
    assert_eq!(got["messages"]["has_more"], true);
    assert_eq!(got["messages"]["data"][1]["role"], "assistant");
    assert_eq!(
        got["messages"]["data"][1]["content"],
        json!([{"type": "text", "text": "message number 2"}])
    );
    let cursor = got["messages"]["next_cursor"].as_str().unwrap();
    let next = expect(
        app.get(
            &format!("/api/v1/conversations/{id}/messages?limit=3&cursor={cursor}"),
            &t.key,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(seqs(&next), vec![4, 5, 6]);

    // The latest messages, newest first.
    let latest = expect(
        app.get(
            &format!("/api/v1/conversations/{id}?order=desc&limit=2"),
            &t.key,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(seqs(&latest["messages"]), vec![7, 6]);

    // Export as JSON and Markdown.
    let response = app
        .get(&format!("/api/v1/conversations/{id}/export"), &t.key)
        .send()
        .await
        .unwrap();
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains(".json"));
    let export = expect(response, StatusCode::OK).await;
    assert_eq!(export["messages"].as_array().unwrap().len(), 7);
    assert_eq!(export["agent_slug"], "support");
    let response = app
        .get(
            &format!("/api/v1/conversations/{id}/export?format=markdown"),
            &t.key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/markdown"));
    let markdown = response.text().await.unwrap();
    assert!(markdown.starts_with("# message number 1\n"), "{markdown}");
    assert_eq!(markdown.matches("## User").count(), 4);
    assert_eq!(markdown.matches("## Assistant").count(), 3);
    expect_error(
        app.get(
            &format!("/api/v1/conversations/{id}/export?format=pdf"),
            &t.key,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn delete_hides_and_purge_removes_for_good() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    app.agent(&t, "support").await;
    let soft = app
        .conversation(&t, "support", &["keep my data in your backups"])
        .await;
    let hard = app
        .conversation(&t, "support", &["forget me entirely please"])
        .await;
    let soft_id = soft["id"].as_str().unwrap();
    let hard_id = hard["id"].as_str().unwrap();

    expect(
        app.delete(&format!("/api/v1/conversations/{soft_id}"), &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::NO_CONTENT,
    )
    .await;
    expect_error(
        app.get(&format!("/api/v1/conversations/{soft_id}"), &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect(
        app.delete(
            &format!("/api/v1/conversations/{hard_id}?purge=true"),
            &t.key,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::NO_CONTENT,
    )
    .await;
    expect_error(
        app.get(&format!("/api/v1/conversations/{hard_id}"), &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let list = expect(
        app.get("/api/v1/conversations?archived=all&q=forget", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(list["data"], json!([]));

    // The purged rows are gone from the database; the soft-deleted ones remain until purged.
    let tenant = &t.id;
    let soft_conv = frontdesk_core::id::ConversationId::parse(soft_id).unwrap();
    let hard_conv = frontdesk_core::id::ConversationId::parse(hard_id).unwrap();
    let store = app.service.store();
    assert!(
        store.purge_conversation(tenant, &hard_conv).await.is_err(),
        "purged rows must be gone"
    );
    store.purge_conversation(tenant, &soft_conv).await.unwrap();
    app.stop().await;
}
