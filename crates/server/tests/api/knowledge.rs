//! Knowledge bases over HTTP: create, list, get by id or name, delete; names unique per
//! tenant; bad input refused with the field named.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{expect, expect_error, TestApp};

#[tokio::test]
async fn knowledge_bases_are_created_listed_found_and_deleted() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let create =
        |body: serde_json::Value| app.post("/api/v1/knowledge-bases", &t.key, &body).send();
    let handbook = expect(
        create(json!({"name": "  Handbook ", "description": "Staff rules"}))
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let id = handbook["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("kb_"), "{handbook}");
    assert_eq!(handbook["name"], "Handbook");
    assert_eq!(handbook["description"], "Staff rules");
    expect(
        create(json!({"name": "FAQ"})).await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    // The same name again is a conflict; bad input names its field.
    expect_error(
        create(json!({"name": "Handbook"})).await.unwrap(),
        StatusCode::CONFLICT,
        "name_taken",
    )
    .await;
    for (body, field) in [
        (json!({"name": "   "}), "name"),
        (json!({"name": "x".repeat(201)}), "name"),
        (json!({"name": "kb_01jd8x5k7m3q4r5s6t7v8w9x0y"}), "name"),
        (
            json!({"name": "ok", "description": "d".repeat(2_001)}),
            "description",
        ),
    ] {
        let error = expect_error(
            create(body).await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
        assert_eq!(error["field"], field, "{error}");
    }
    let listed = expect(
        app.get("/api/v1/knowledge-bases", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let names: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kb| kb["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["FAQ", "Handbook"]);
    for path in [
        format!("/api/v1/knowledge-bases/{id}"),
        "/api/v1/knowledge-bases/Handbook".to_owned(),
    ] {
        let got = expect(app.get(&path, &t.key).send().await.unwrap(), StatusCode::OK).await;
        assert_eq!(got["id"], id.as_str());
    }
    expect(
        app.delete(&format!("/api/v1/knowledge-bases/{id}"), &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::NO_CONTENT,
    )
    .await;
    for path in [
        format!("/api/v1/knowledge-bases/{id}"),
        "/api/v1/knowledge-bases/nothing".to_owned(),
    ] {
        expect_error(
            app.get(&path, &t.key).send().await.unwrap(),
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
        expect_error(
            app.delete(&path, &t.key).send().await.unwrap(),
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    // The name is free again, and another tenant may use any name.
    expect(
        create(json!({"name": "Handbook"})).await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let other = app.tenant("Other").await;
    expect(
        app.post(
            "/api/v1/knowledge-bases",
            &other.key,
            &json!({"name": "FAQ"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    app.stop().await;
}
