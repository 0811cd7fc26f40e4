//! Knowledge documents over HTTP, on SQLite and PostgreSQL: added as text, uploads (type
//! sniffed), URLs and sitemaps; ingested in the background with status and progress; read with
//! their passages; found by the hybrid query; cited in answers (context and tool mode);
//! deleted from answers; resumed after a restart mid-ingestion; refused with reasons.

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{expect, expect_error, TestApp, TestTenant};
use crate::scripted::{call, text, Scripted};
use crate::words::Words;

const RETURNS: &str = "# Returns\n\nJackets and boots can be returned within 30 days, free of charge, \
in the original packaging. Print the label from your account.\n\n# Shipping\n\nOrders placed before \
2 pm leave the warehouse the same day. Shipping is free from 50 euros.";

async fn knowledge_base(app: &TestApp, t: &TestTenant, name: &str) -> String {
    let kb = expect(
        app.post("/api/v1/knowledge-bases", &t.key, &json!({ "name": name }))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    kb["id"].as_str().unwrap().to_owned()
}

async fn add(app: &TestApp, t: &TestTenant, kb: &str, body: Value) -> Value {
    expect(
        app.post(
            &format!("/api/v1/knowledge-bases/{kb}/documents"),
            &t.key,
            &body,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::ACCEPTED,
    )
    .await
}

async fn upload(
    app: &TestApp,
    t: &TestTenant,
    kb: &str,
    name: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    let form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_owned()));
    app.request(
        reqwest::Method::POST,
        &format!("/api/v1/knowledge-bases/{kb}/documents"),
        &t.key,
    )
    .multipart(form)
    .send()
    .await
    .unwrap()
}

/// The document once its ingestion settled (ready or failed).
async fn settled(app: &TestApp, t: &TestTenant, kb: &str, doc: &str) -> Value {
    for _ in 0..300 {
        let got = expect(
            app.get(
                &format!("/api/v1/knowledge-bases/{kb}/documents/{doc}"),
                &t.key,
            )
            .send()
            .await
            .unwrap(),
            StatusCode::OK,
        )
        .await;
        if got["status"] == "ready" || got["status"] == "failed" {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("document {doc} did not settle");
}

async fn query(app: &TestApp, t: &TestTenant, kb: &str, body: Value) -> Vec<Value> {
    let found = expect(
        app.post(
            &format!("/api/v1/knowledge-bases/{kb}/query"),
            &t.key,
            &body,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    found["data"].as_array().unwrap().clone()
}

/// A PDF of one text line per page (Helvetica), written out by hand with a correct xref;
/// `encrypted` adds a standard security handler whose password nobody knows.
fn pdf(pages: &[&str], encrypted: bool) -> Vec<u8> {
    let n = pages.len();
    let font = 3 + 2 * n;
    let mut objects: Vec<String> = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {n} >>",
            (0..n)
                .map(|i| format!("{} 0 R", 3 + 2 * i))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    ];
    for (i, line) in pages.iter().enumerate() {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 {font} 0 R >> >> /Contents {} 0 R >>",
            4 + 2 * i
        ));
        let stream = format!("BT /F1 12 Tf 72 700 Td ({line}) Tj ET");
        objects.push(format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        ));
    }
    objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned());
    if encrypted {
        objects.push(
            "<< /Filter /Standard /V 2 /R 3 /Length 128 /P -3904 /O <00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff> /U <ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100> >>".to_owned(),
        );
    }
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    let encrypt = if encrypted {
        format!(
            " /Encrypt {} 0 R /ID [<0123456789abcdef0123456789abcdef> <0123456789abcdef0123456789abcdef>]",
            objects.len()
        )
    } else {
        String::new()
    };
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R{encrypt} >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

async fn documents_flow(app: TestApp) {
    let t = app.tenant("Acme").await;
    let kb = knowledge_base(&app, &t, "Shop").await;
    // Text through the API: queued at once, ready in the background.
    let added = add(&app, &t, &kb, json!({"text": RETURNS, "title": "Policies"})).await;
    assert_eq!(added["existing"], false);
    assert!(
        ["queued", "processing", "ready"].contains(&added["status"].as_str().unwrap()),
        "{added}"
    );
    let text_doc = added["id"].as_str().unwrap().to_owned();
    assert!(text_doc.starts_with("doc_"));
    let ready = settled(&app, &t, &kb, &text_doc).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["title"], "Policies");
    assert_eq!(ready["progress"]["done"], ready["progress"]["total"]);
    let passages = ready["passages"].as_array().unwrap();
    assert!(passages.len() >= 2, "{ready}");
    assert!(
        passages.iter().any(|p| p["section"] == "Returns"),
        "{ready}"
    );
    // The same text again finds the same document.
    let again = expect(
        app.post(
            &format!("/api/v1/knowledge-bases/{kb}/documents"),
            &t.key,
            &json!({"text": RETURNS, "title": "Other title"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(again["existing"], true);
    assert_eq!(again["id"], text_doc.as_str());
    // Uploads, typed by their content whatever their names say.
    let html = "<html><head><title>Boot care</title></head><body><nav><a>Home</a> Jackets Returns</nav>\
        <main><h1>Boot care</h1><p>Waterproof boots need wax every season.</p></main><footer>Returns</footer></body></html>";
    let response = upload(&app, &t, &kb, "care.txt", html.as_bytes().to_vec()).await;
    let html_doc = expect(response, StatusCode::ACCEPTED).await;
    assert_eq!(html_doc["media_type"], "text/html");
    assert_eq!(html_doc["filename"], "care.txt");
    let csv = "product,days\njacket,30\nboots,14\ntent,60\n";
    let csv_doc = expect(
        upload(&app, &t, &kb, "table.pdf", csv.as_bytes().to_vec()).await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(csv_doc["media_type"], "text/csv");
    let pdf_doc = expect(
        upload(
            &app,
            &t,
            &kb,
            "manual.pdf",
            pdf(
                &["Tent setup takes ten minutes", "Tent poles are aluminium"],
                false,
            ),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let html_ready = settled(&app, &t, &kb, html_doc["id"].as_str().unwrap()).await;
    assert_eq!(html_ready["status"], "ready", "{html_ready}");
    assert_eq!(html_ready["title"], "Boot care");
    let html_text: Vec<&str> = html_ready["passages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert!(
        html_text.iter().all(|t| !t.contains("Home")),
        "navigation dropped: {html_text:?}"
    );
    let csv_ready = settled(&app, &t, &kb, csv_doc["id"].as_str().unwrap()).await;
    assert!(
        csv_ready["passages"][0]["text"]
            .as_str()
            .unwrap()
            .contains("product: jacket | days: 30"),
        "{csv_ready}"
    );
    let pdf_ready = settled(&app, &t, &kb, pdf_doc["id"].as_str().unwrap()).await;
    assert_eq!(pdf_ready["status"], "ready", "{pdf_ready}");
    let pages: Vec<(Value, &str)> = pdf_ready["passages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["page"].clone(), p["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        pages,
        vec![
            (json!(1), "Tent setup takes ten minutes"),
            (json!(2), "Tent poles are aluminium")
        ]
    );
    // The list shows each with its status.
    let listed = expect(
        app.get(&format!("/api/v1/knowledge-bases/{kb}/documents"), &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 4);
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "ready"),
        "{listed}"
    );
    // The hybrid search finds the passage that answers, with where it comes from.
    let found = query(
        &app,
        &t,
        &kb,
        json!({"query": "How do I return a jacket?", "top_k": 3}),
    )
    .await;
    assert_eq!(found[0]["document_id"], text_doc.as_str(), "{found:?}");
    assert_eq!(found[0]["section"], "Returns");
    assert_eq!(found[0]["title"], "Policies");
    assert!(found[0]["text"].as_str().unwrap().contains("30 days"));
    assert!(found[0]["score"].as_f64().unwrap() > 0.0);
    assert!(found.len() <= 3);
    // Each ranking alone, and a filter by document.
    let by_words = query(
        &app,
        &t,
        &kb,
        json!({"query": "aluminium poles", "mode": "text"}),
    )
    .await;
    assert_eq!(by_words[0]["page"], 2, "{by_words:?}");
    assert!(by_words.iter().all(|h| h["vector_rank"].is_null()));
    let only_pdf = query(
        &app,
        &t,
        &kb,
        json!({"query": "returns", "document_ids": [pdf_doc["id"]]}),
    )
    .await;
    assert!(
        only_pdf.iter().all(|h| h["document_id"] == pdf_doc["id"]),
        "{only_pdf:?}"
    );
    // Deleting a document takes it out of every search at once.
    let response = app
        .delete(
            &format!("/api/v1/knowledge-bases/{kb}/documents/{text_doc}"),
            &t.key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let after = query(
        &app,
        &t,
        &kb,
        json!({"query": "How do I return a jacket?", "top_k": 10}),
    )
    .await;
    assert!(
        after.iter().all(|h| h["document_id"] != text_doc.as_str()),
        "{after:?}"
    );
    expect_error(
        app.get(
            &format!("/api/v1/knowledge-bases/{kb}/documents/{text_doc}"),
            &t.key,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // Deleting the knowledge base takes its documents.
    let response = app
        .delete(&format!("/api/v1/knowledge-bases/{kb}"), &t.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    expect_error(
        app.post(
            &format!("/api/v1/knowledge-bases/{kb}/query"),
            &t.key,
            &json!({"query": "tent"}),
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
async fn documents_are_ingested_searched_and_deleted_on_sqlite() {
    documents_flow(TestApp::builder().embedder(Words::new()).spawn().await).await;
}

#[tokio::test]
async fn documents_are_ingested_searched_and_deleted_on_postgres() {
    documents_flow(
        TestApp::builder()
            .postgres()
            .embedder(Words::new())
            .spawn()
            .await,
    )
    .await;
}

#[tokio::test]
async fn bad_documents_are_refused_or_fail_with_a_reason() {
    let app = TestApp::builder().embedder(Words::new()).spawn().await;
    let t = app.tenant("Acme").await;
    let kb = knowledge_base(&app, &t, "Docs").await;
    // Refused at once: empty, binary, not exactly one source, bad URLs.
    let error = expect_error(
        upload(&app, &t, &kb, "empty.pdf", Vec::new()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    assert_eq!(error["field"], "file");
    let error = expect_error(
        upload(&app, &t, &kb, "x.bin", vec![0, 159, 146, 150, 0, 1]).await,
        StatusCode::BAD_REQUEST,
        "unsupported_media_type",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("PDF, DOCX"),
        "{error}"
    );
    let docs = format!("/api/v1/knowledge-bases/{kb}/documents");
    expect_error(
        app.post(
            &docs,
            &t.key,
            &json!({"text": "a", "url": "https://x.example"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_document",
    )
    .await;
    expect_error(
        app.post(&docs, &t.key, &json!({})).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_document",
    )
    .await;
    expect_error(
        app.post(&docs, &t.key, &json!({"text": "  "}))
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    for url in [
        "ftp://x.example/a",
        "http://127.0.0.1:9/admin",
        "http://169.254.169.254/latest",
        "not a url",
    ] {
        let error = expect_error(
            app.post(&docs, &t.key, &json!({"url": url}))
                .send()
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
        assert_eq!(error["field"], "url", "{url}: {error}");
    }
    expect_error(
        app.post(
            &docs,
            &t.key,
            &json!({"sitemap": "https://x.example/sitemap.xml", "max_pages": 0}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    // Accepted, then failed with the reason, touching nothing else.
    let good = add(&app, &t, &kb, json!({"text": "Tents are waterproof."})).await;
    let corrupt = expect(
        upload(
            &app,
            &t,
            &kb,
            "broken.pdf",
            b"%PDF-1.7\n1 0 obj << /Type /Cata".to_vec(),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let encrypted = expect(
        upload(&app, &t, &kb, "secret.pdf", pdf(&["Top secret"], true)).await,
        StatusCode::ACCEPTED,
    )
    .await;
    let blank = expect(
        upload(
            &app,
            &t,
            &kb,
            "blank.html",
            b"<html><body><nav>Home</nav><script>x()</script></body></html>".to_vec(),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let corrupt = settled(&app, &t, &kb, corrupt["id"].as_str().unwrap()).await;
    assert_eq!(corrupt["status"], "failed");
    assert!(
        corrupt["error"]
            .as_str()
            .unwrap()
            .contains("not a readable PDF"),
        "{corrupt}"
    );
    let encrypted = settled(&app, &t, &kb, encrypted["id"].as_str().unwrap()).await;
    assert_eq!(encrypted["status"], "failed");
    assert!(
        encrypted["error"].as_str().unwrap().contains("encrypted"),
        "{encrypted}"
    );
    let blank = settled(&app, &t, &kb, blank["id"].as_str().unwrap()).await;
    assert_eq!(blank["status"], "failed");
    assert!(
        blank["error"].as_str().unwrap().contains("no text"),
        "{blank}"
    );
    assert_eq!(blank["passages"], json!([]));
    let good = settled(&app, &t, &kb, good["id"].as_str().unwrap()).await;
    assert_eq!(good["status"], "ready", "{good}");
    // Queries are checked too.
    let q = format!("/api/v1/knowledge-bases/{kb}/query");
    for (body, field) in [
        (json!({"query": " "}), "query"),
        (json!({"query": "x", "top_k": 0}), "top_k"),
        (json!({"query": "x", "top_k": 51}), "top_k"),
        (json!({"query": "x", "min_score": 2}), "min_score"),
    ] {
        let error = expect_error(
            app.post(&q, &t.key, &body).send().await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
        assert_eq!(error["field"], field);
    }
    app.stop().await;
}

#[tokio::test]
async fn uploads_may_be_larger_than_other_bodies_up_to_their_own_limit() {
    let app = TestApp::builder().embedder(Words::new()).spawn().await;
    let t = app.tenant("Acme").await;
    let kb = knowledge_base(&app, &t, "Docs").await;
    // Over the server's 1 MiB body limit: an upload has its own (20 MiB).
    let manual: String = (0..30_000)
        .map(|i| format!("Line {i} of the manual says something about tents.\n"))
        .collect();
    assert!(manual.len() > 1_400_000);
    let response = upload(&app, &t, &kb, "manual.txt", manual.into_bytes()).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let big = "word ".repeat(5 * 1024 * 1024).into_bytes();
    let response = upload(&app, &t, &kb, "big.txt", big).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let big = "word ".repeat(21 * 1024 * 1024 / 5 + 1).into_bytes();
    let response = upload(&app, &t, &kb, "big.txt", big).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    app.stop().await;
}

/// A site to fetch from: two pages and a sitemap of them.
async fn site() -> String {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sitemap = format!(
        "<?xml version=\"1.0\"?><urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
         <url><loc>{base}/returns</loc></url><url><loc>{base}/warranty</loc></url><url><loc>{base}/gone</loc></url></urlset>"
    );
    let app = axum::Router::new()
        .route("/returns", get(|| async { axum::response::Html("<html><head><title>Returns policy</title></head><body><main><h1>Returns</h1><p>Return jackets within 30 days.</p></main></body></html>") }))
        .route("/warranty", get(|| async { axum::response::Html("<html><head><title>Warranty</title></head><body><p>Boots carry a two year warranty.</p></body></html>") }))
        .route("/sitemap.xml", get(move || { let s = sitemap.clone(); async move { s } }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test]
async fn pages_are_fetched_by_url_and_by_sitemap() {
    let app = TestApp::builder()
        .allow_private_urls()
        .embedder(Words::new())
        .spawn()
        .await;
    let t = app.tenant("Acme").await;
    let kb = knowledge_base(&app, &t, "Site").await;
    let site = site().await;
    let page = add(
        &app,
        &t,
        &kb,
        json!({"url": format!("{site}/returns"), "refresh_hours": 24}),
    )
    .await;
    assert_eq!(page["source"], "url");
    let page = settled(&app, &t, &kb, page["id"].as_str().unwrap()).await;
    assert_eq!(page["status"], "ready", "{page}");
    assert_eq!(page["title"], "Returns policy");
    assert_eq!(page["media_type"], "text/html");
    assert_eq!(page["refresh_hours"], 24);
    assert!(page["fetched_at"].is_string());
    // The same URL again is the same document, fetched again.
    let again = expect(
        app.post(
            &format!("/api/v1/knowledge-bases/{kb}/documents"),
            &t.key,
            &json!({"url": format!("{site}/returns")}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(again["id"], page["id"]);
    // A sitemap adds its pages (a missing one fails on its own).
    let map = add(
        &app,
        &t,
        &kb,
        json!({"sitemap": format!("{site}/sitemap.xml"), "max_pages": 5}),
    )
    .await;
    let map = settled(&app, &t, &kb, map["id"].as_str().unwrap()).await;
    assert_eq!(map["status"], "ready", "{map}");
    let mut listed = Value::Null;
    for _ in 0..200 {
        listed = expect(
            app.get(&format!("/api/v1/knowledge-bases/{kb}/documents"), &t.key)
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await;
        let docs = listed["data"].as_array().unwrap();
        if docs.len() == 4
            && docs
                .iter()
                .all(|d| d["status"] == "ready" || d["status"] == "failed")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let docs = listed["data"].as_array().unwrap();
    let status_of = |suffix: &str| {
        docs.iter()
            .find(|d| d["url"].as_str().is_some_and(|u| u.ends_with(suffix)))
            .map(|d| d["status"].clone())
    };
    assert_eq!(status_of("/warranty"), Some(json!("ready")), "{listed}");
    assert_eq!(status_of("/gone"), Some(json!("failed")), "{listed}");
    let gone = docs
        .iter()
        .find(|d| d["url"].as_str().unwrap().ends_with("/gone"))
        .unwrap();
    assert!(gone["error"].as_str().unwrap().contains("404"), "{gone}");
    let found = query(&app, &t, &kb, json!({"query": "warranty on boots"})).await;
    assert_eq!(found[0]["title"], "Warranty");
    assert!(found[0]["url"].as_str().unwrap().ends_with("/warranty"));
    // On its schedule a URL is fetched again (here: the schedule's sweep, a day and an hour on).
    let fetched = page["fetched_at"].as_str().unwrap().to_owned();
    let later = frontdesk_core::time::Timestamp::from_millis(
        frontdesk_core::time::Timestamp::now().as_millis() + 25 * 3_600_000,
    );
    let queued = app.service.store().queue_refreshes(later).await.unwrap();
    assert_eq!(queued, 1, "only the page with refresh_hours is due");
    let mut refetched = Value::Null;
    for _ in 0..200 {
        refetched = settled(&app, &t, &kb, page["id"].as_str().unwrap()).await;
        if refetched["fetched_at"].as_str() != Some(fetched.as_str()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ne!(
        refetched["fetched_at"].as_str(),
        Some(fetched.as_str()),
        "{refetched}"
    );
    assert_eq!(refetched["status"], "ready");
    app.stop().await;
}

async fn agent_with_knowledge(app: &TestApp, t: &TestTenant, kb: &str, mode: &str) -> String {
    let slug = format!("helper-{mode}-{}", &frontdesk_core::id::new_body()[18..]).to_lowercase();
    expect(
        app.post(
            "/api/v1/agents",
            &t.key,
            &json!({"slug": slug, "name": "Helper", "model": "scripted/m",
                    "knowledge": {"knowledge_base_ids": [kb], "top_k": 2, "mode": mode}}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let conversation = expect(
        app.post("/api/v1/conversations", &t.key, &json!({"agent": slug}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    conversation["id"].as_str().unwrap().to_owned()
}

async fn say(app: &TestApp, t: &TestTenant, conversation: &str, content: &str) -> Value {
    expect(
        app.post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            &t.key,
            &json!({"content": content}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await
}

fn citations(answer: &Value) -> Vec<Value> {
    answer["message"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "citation")
        .cloned()
        .collect()
}

#[tokio::test]
async fn answers_use_and_cite_the_knowledge_in_context_and_tool_mode() {
    let scripted = Scripted::start(vec![]).await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .embedder(Words::new())
        .spawn()
        .await;
    let t = app.tenant("Acme").await;
    let kb = knowledge_base(&app, &t, "Shop").await;
    let doc = add(&app, &t, &kb, json!({"text": RETURNS, "title": "Policies"})).await;
    let doc = doc["id"].as_str().unwrap().to_owned();
    settled(&app, &t, &kb, &doc).await;
    // Context mode: the passages are in the model's instructions; the answer cites them.
    let conversation = agent_with_knowledge(&app, &t, &kb, "context").await;
    scripted.push(text("Within 30 days, free of charge."));
    let answer = say(&app, &t, &conversation, "How do I return a jacket?").await;
    let system = scripted.requests().last().unwrap()["messages"][0].clone();
    assert_eq!(system["role"], "system");
    let system = system["content"].as_str().unwrap().to_owned();
    assert!(
        system.contains("[1] Policies › Returns") && system.contains("within 30 days"),
        "{system}"
    );
    // Both passages (top_k 2) reach the model; the answer cites the one the search is surest
    // of, not the shipping passage that came second.
    assert!(system.contains("[2] Policies › Shipping"), "{system}");
    let cited = citations(&answer);
    assert_eq!(cited.len(), 1, "{answer}");
    assert_eq!(cited[0]["document_id"], doc.as_str());
    assert_eq!(cited[0]["title"], "Policies");
    assert_eq!(cited[0]["section"], "Returns");
    assert_eq!(cited[0]["url"], "");
    // The search is a step of the run's trace.
    let run = answer["run_id"]
        .as_str()
        .or(answer["message"]["run_id"].as_str())
        .map(str::to_owned);
    if let Some(run) = run {
        let trace = expect(
            app.get(&format!("/api/v1/runs/{run}"), &t.key)
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await;
        assert!(trace.to_string().contains("\"knowledge\""), "{trace}");
    }
    // Tool mode: the model searches when it decides to; the result cites its passages.
    let conversation = agent_with_knowledge(&app, &t, &kb, "tool").await;
    scripted.push(call(
        "k1",
        "search_knowledge",
        json!({"query": "shipping free"}),
    ));
    scripted.push(text("Shipping is free from 50 euros."));
    let answer = say(&app, &t, &conversation, "Is shipping free?").await;
    let requests = scripted.requests();
    let offered = &requests[requests.len() - 2]["tools"];
    assert!(
        offered.to_string().contains("search_knowledge"),
        "{offered}"
    );
    let result = requests.last().unwrap()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        result.contains("Shipping is free from 50 euros"),
        "{result}"
    );
    let cited = citations(&answer);
    assert!(cited.iter().any(|c| c["section"] == "Shipping"), "{answer}");
    // Deleting the document: the next answer neither sees nor cites it.
    let conversation = agent_with_knowledge(&app, &t, &kb, "context").await;
    app.delete(
        &format!("/api/v1/knowledge-bases/{kb}/documents/{doc}"),
        &t.key,
    )
    .send()
    .await
    .unwrap();
    scripted.push(text("I do not know."));
    let answer = say(&app, &t, &conversation, "How do I return a jacket?").await;
    assert!(citations(&answer).is_empty(), "{answer}");
    let system = scripted.requests().last().unwrap()["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!system.contains("30 days"), "{system}");
    app.stop().await;
}

#[tokio::test]
async fn another_tenants_knowledge_is_never_found() {
    let scripted = Scripted::start(vec![]).await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .embedder(Words::new())
        .spawn()
        .await;
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let kb = knowledge_base(&app, &a, "secret-4711").await;
    let doc = add(
        &app,
        &a,
        &kb,
        json!({"text": "The vault code is 4711.", "title": "Vault"}),
    )
    .await;
    let doc = doc["id"].as_str().unwrap().to_owned();
    settled(&app, &a, &kb, &doc).await;
    // B sees 404s for A's knowledge base and document, by id and by name.
    for path in [
        format!("/api/v1/knowledge-bases/{kb}/documents"),
        format!("/api/v1/knowledge-bases/{kb}/documents/{doc}"),
        "/api/v1/knowledge-bases/secret-4711/documents".to_owned(),
    ] {
        expect_error(
            app.get(&path, &b.key).send().await.unwrap(),
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    for (path, body) in [
        (
            format!("/api/v1/knowledge-bases/{kb}/query"),
            json!({"query": "vault code"}),
        ),
        (
            format!("/api/v1/knowledge-bases/{kb}/documents"),
            json!({"text": "x"}),
        ),
        (
            format!("/api/v1/knowledge-bases/{kb}/documents/{doc}/retry"),
            json!({}),
        ),
    ] {
        expect_error(
            app.post(&path, &b.key, &body).send().await.unwrap(),
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    expect_error(
        app.delete(
            &format!("/api/v1/knowledge-bases/{kb}/documents/{doc}"),
            &b.key,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // An agent of B naming A's knowledge base finds nothing and cites nothing.
    let conversation = agent_with_knowledge(&app, &b, &kb, "context").await;
    scripted.push(text("No idea."));
    let answer = say(&app, &b, &conversation, "What is the vault code?").await;
    assert!(citations(&answer).is_empty(), "{answer}");
    let system = scripted.requests().last().unwrap()["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!system.contains("4711"), "{system}");
    // A's own document is still there.
    let found = query(&app, &a, &kb, json!({"query": "vault code"})).await;
    assert_eq!(found[0]["document_id"], doc.as_str());
    app.stop().await;
}

#[tokio::test]
async fn a_restart_in_the_middle_of_ingestion_completes_the_job() {
    let words = Words::new();
    let app = TestApp::builder().embedder(words.clone()).spawn().await;
    let t = app.tenant("Acme").await;
    let kb = knowledge_base(&app, &t, "Big").await;
    // 100 sections, a passage each: 4 batches of 32 passages; the second batch never returns.
    let text: String = (0..100)
        .map(|i| {
            format!("# Item {i}\n\nParagraph {i} tells about item number {i} in the catalogue.\n\n")
        })
        .collect();
    words.stall_after(2);
    let doc = add(&app, &t, &kb, json!({"text": text, "title": "Catalogue"})).await;
    let doc = doc["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/knowledge-bases/{kb}/documents/{doc}");
    let mut midway = Value::Null;
    for _ in 0..200 {
        midway = expect(app.get(&path, &t.key).send().await.unwrap(), StatusCode::OK).await;
        if words.stalled() && midway["progress"]["done"] == 32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(midway["status"], "processing", "{midway}");
    assert_eq!(midway["progress"]["done"], 32, "{midway}");
    assert_eq!(midway["progress"]["total"], 100, "{midway}");
    // The server stops with the job half done; the next one takes it up where it was.
    words.unstall();
    let app = app.restart().await;
    let done = settled(&app, &t, &kb, &doc).await;
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(done["progress"], json!({"done": 100, "total": 100}));
    let seqs: Vec<u64> = done["passages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..100).collect::<Vec<u64>>(), "each passage once");
    assert_eq!(done["attempts"], 2);
    let found = query(
        &app,
        &t,
        &kb,
        json!({"query": "item number 77", "mode": "text"}),
    )
    .await;
    assert!(
        found[0]["text"].as_str().unwrap().contains("77"),
        "{found:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn instances_on_one_postgres_database_search_the_same_documents() {
    let words = Words::new();
    let one = TestApp::builder()
        .postgres()
        .embedder(words.clone())
        .spawn()
        .await;
    let two = one.another_instance().await;
    let t = one.tenant("Acme").await;
    let kb = knowledge_base(&one, &t, "Shared").await;
    // Instance two searches first: its index is built (empty), then kept in step.
    assert!(query(
        &two,
        &t,
        &kb,
        json!({"query": "tent poles", "mode": "vector"})
    )
    .await
    .is_empty());
    let doc = add(
        &one,
        &t,
        &kb,
        json!({"text": "# Tents\n\nTent poles are aluminium.", "title": "Tents"}),
    )
    .await;
    let doc = doc["id"].as_str().unwrap().to_owned();
    settled(&one, &t, &kb, &doc).await;
    let found = query(
        &two,
        &t,
        &kb,
        json!({"query": "tent poles", "mode": "vector"}),
    )
    .await;
    assert_eq!(found[0]["document_id"], doc.as_str(), "{found:?}");
    // A deletion on one reaches two's index at its next search.
    one.delete(
        &format!("/api/v1/knowledge-bases/{kb}/documents/{doc}"),
        &t.key,
    )
    .send()
    .await
    .unwrap();
    assert!(query(
        &two,
        &t,
        &kb,
        json!({"query": "tent poles", "mode": "vector"})
    )
    .await
    .is_empty());
    assert!(query(&two, &t, &kb, json!({"query": "tent poles"}))
        .await
        .is_empty());
    two.stop_server().await;
    one.stop().await;
}
