//! The run's context through every entry point: an agent whose instructions say
//! `You are helping {{context.client_name}}` and a webhook that reads `event_id` from the
//! context, driven through the native API, the widget (an identified user's claims and the
//! page's context), ChatKit thread metadata, `/openai/v1` chat completions and responses
//! (`metadata`) and the AI SDK route (`context` in the body). The receiver checks the `v2`
//! signature, written here from the documented scheme.

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{expect, TestApp, TestTenant};
use crate::scripted::{call, text, Received, Receiver, Scripted};

const SHOP: &str = "https://shop.example.com";

/// What a receiver does to check `v2`: the HMAC-SHA256 of timestamp, method, path and query,
/// tool, run, context header and body, joined by newlines.
fn verify_v2(secret: &str, request: &Received) -> bool {
    use hmac::Mac;
    let header = request.headers["x-frontdesk-signature"].to_str().unwrap();
    let field = |name: &str| {
        header
            .split(',')
            .find_map(|part| part.strip_prefix(&format!("{name}=")))
            .map(str::to_owned)
    };
    let (Some(t), Some(v2)) = (field("t"), field("v2")) else {
        return false;
    };
    let header_of = |name: &str| {
        request
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    for line in [
        t,
        request.method.clone(),
        request.uri.clone(),
        header_of("x-frontdesk-tool"),
        header_of("x-frontdesk-run"),
        header_of("x-frontdesk-context"),
    ] {
        mac.update(line.as_bytes());
        mac.update(b"\n");
    }
    mac.update(&request.body);
    mac.verify_slice(&hex::decode(v2).unwrap()).is_ok()
}

/// The context a webhook call carried.
fn context_of(request: &Received) -> Value {
    let header = request.headers["x-frontdesk-context"].to_str().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn read(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

struct Setup {
    app: TestApp,
    t: TestTenant,
    scripted: Scripted,
    receiver: Receiver,
    publishable: String,
    user_token: String,
}

async fn setup(entry_points: usize) -> Setup {
    let mut replies = Vec::new();
    for n in 0..entry_points {
        replies.push(call(&format!("c{n}"), "lookup", json!({})));
        replies.push(text("Done."));
    }
    let scripted = Scripted::start(replies).await;
    let receiver = Receiver::start(200, r#"{"seats": 2}"#, 0).await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .allow_private_urls()
        .spawn()
        .await;
    let t = app.tenant("Acme").await;
    let agent = json!({"slug": "desk", "name": "Desk", "model": "scripted/m",
        "instructions": "You are helping {{context.client_name}}.",
        "tools": [{"type": "webhook", "name": "lookup", "description": "Looks the event up.",
                   "url": format!("{}/hooks/lookup", receiver.url), "method": "POST",
                   "parameters": {"type": "object", "properties": {}}}]});
    expect(
        app.post("/api/v1/agents", &t.key, &agent)
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let key = expect(
        app.post(
            "/api/v1/api-keys",
            &t.key,
            &json!({"kind": "publishable", "name": "site",
            "allowed_origins": [SHOP], "allowed_agents": ["desk"]}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let identity = expect(
        app.get("/api/v1/widget-identity-secret", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let exp = frontdesk_core::time::Timestamp::now().as_millis() / 1000 + 600;
    let user_token = frontdesk_core::visitor::sign_user_claims(
        identity["secret"].as_str().unwrap(),
        &json!({"sub": "user-7", "exp": exp, "iat": exp - 600, "client_name": "Acme Dental"}),
    );
    Setup {
        app,
        t,
        scripted,
        receiver,
        publishable: key["key"].as_str().unwrap().to_owned(),
        user_token,
    }
}

#[tokio::test]
async fn every_entry_point_gives_the_run_its_context() {
    let entry_points = [
        "native",
        "widget",
        "chatkit",
        "openai.chat",
        "openai.responses",
        "ai-sdk",
    ];
    let s = setup(entry_points.len()).await;
    let (app, key) = (&s.app, &s.t.key);
    let both = json!({"client_name": "Acme Dental", "event_id": "evt_42"});

    // The native API: the conversation's metadata, and the turn's.
    let conv = expect(
        app.post(
            "/api/v1/conversations",
            key,
            &json!({"agent": "desk", "metadata": {"client_name": "Acme Dental"}}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let done = expect(
        app.post(
            &format!(
                "/api/v1/conversations/{}/messages",
                conv["id"].as_str().unwrap()
            ),
            key,
            &json!({"content": "Hi", "metadata": {"event_id": "evt_42"}}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(done["status"], "completed", "{done}");

    // The widget: the identified user's claims, and what the page says.
    let session = expect(
        app.client
            .post(format!("{}/widget/v1/session", app.base))
            .header("x-frontdesk-key", &s.publishable)
            .header("origin", SHOP)
            .json(&json!({"agent": "desk", "user_token": s.user_token}))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let token = session["token"].as_str().unwrap();
    let widget = |method: Method, path: &str| {
        app.client
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(token)
            .header("origin", SHOP)
    };
    let conv = expect(
        widget(Method::POST, "/widget/v1/conversations")
            .json(&json!({"agent": "desk"}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    // The tenant's backend knows the event and sets it on the conversation.
    expect(
        app.patch(
            &format!("/api/v1/conversations/{}", conv["id"].as_str().unwrap()),
            key,
            &json!({"metadata": {"event_id": "evt_42"}}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    // The page cannot pass itself off as the signed user (the claims win), nor replace what
    // the tenant set (its word lies beneath the conversation's metadata).
    let done = expect(
        widget(
            Method::POST,
            &format!(
                "/widget/v1/conversations/{}/messages",
                conv["id"].as_str().unwrap()
            ),
        )
        .json(&json!({"content": "Hi", "context": {"event_id": "evt_forged", "client_name": "Forged", "page": "checkout"}}))
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(done["status"], "completed", "{done}");

    // ChatKit: the thread's metadata.
    let body = json!({"type": "threads.create",
        "metadata": {"agent": "desk", "client_name": "Acme Dental", "event_id": "evt_42"},
        "params": {"input": {"content": [{"type": "input_text", "text": "Hi"}], "attachments": [], "inference_options": {}}}});
    read(app.post("/chatkit", key, &body).send().await.unwrap()).await;

    // OpenAI Chat Completions and Responses: `metadata`.
    expect(
        app.post(
            "/openai/v1/chat/completions",
            key,
            &json!({"model": "desk", "messages": [{"role": "user", "content": "Hi"}], "metadata": both}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    expect(
        app.post(
            "/openai/v1/responses",
            key,
            &json!({"model": "desk", "input": "Hi", "metadata": both}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;

    // The AI SDK: `context` in the request body.
    let body = json!({"id": "chat-ctx", "trigger": "submit-message", "context": both,
        "messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": "Hi"}]}]});
    let streamed = read(
        app.post("/api/v1/ai-sdk/chat/desk", key, &body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(streamed.ends_with("data: [DONE]\n\n"), "{streamed}");

    // Every entry point: the instructions read the context, the webhook got it, signed.
    let secret = expect(
        app.get("/api/v1/webhook-signing-secret", key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let secret = secret["secret"].as_str().unwrap();
    let requests = s.scripted.requests();
    let calls = s.receiver.received();
    assert_eq!(calls.len(), entry_points.len());
    for (n, entry) in entry_points.iter().enumerate() {
        let first = &requests[2 * n];
        assert_eq!(
            first["messages"][0]["content"], "You are helping Acme Dental.",
            "{entry}: {first}"
        );
        let call = &calls[n];
        assert_eq!(call.uri, "/hooks/lookup", "{entry}");
        let context = context_of(call);
        assert_eq!(context["event_id"], "evt_42", "{entry}: {context}");
        assert_eq!(context["client_name"], "Acme Dental", "{entry}: {context}");
        assert!(context.get("iat").is_none(), "{entry}: {context}");
        assert!(verify_v2(secret, call), "{entry}");
        // Changing what the signature covers breaks it: another path, another context.
        let mut moved = call.clone();
        moved.uri = "/hooks/other".into();
        assert!(!verify_v2(secret, &moved), "{entry}");
        let mut forged = call.clone();
        forged.headers.insert(
            "x-frontdesk-context",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(r#"{"event_id":"evt_1"}"#)
                .parse()
                .unwrap(),
        );
        assert!(!verify_v2(secret, &forged), "{entry}");
    }
    // The README's receiver, run as written, accepts the real request and refuses it moved.
    let call = &calls[0];
    assert!(readme_receiver_accepts(secret, call, &call.uri).await);
    assert!(!readme_receiver_accepts(secret, call, "/hooks/other").await);
    s.app.stop().await;
}

/// Runs the Python receiver from the README (its only `python` block) on a request.
async fn readme_receiver_accepts(secret: &str, request: &Received, target: &str) -> bool {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"),
    )
    .unwrap();
    let code = readme
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README shows a receiver in Python");
    let header = |name: &str| {
        request
            .headers
            .get(name.to_ascii_lowercase())
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let mut headers = serde_json::Map::new();
    for name in [
        "X-Frontdesk-Signature",
        "X-Frontdesk-Tool",
        "X-Frontdesk-Run",
        "X-Frontdesk-Context",
    ] {
        if let Some(value) = header(name) {
            headers.insert(name.to_owned(), json!(value));
        }
    }
    let input = json!({"secret": secret, "method": request.method, "target": target,
        "headers": headers, "body": String::from_utf8(request.body.clone()).unwrap()});
    let script = format!(
        "{code}\nimport json, sys\nr = json.loads(sys.argv[1])\n\
         print(json.dumps(verified(r['secret'], r['method'], r['target'], r['headers'], r['body'].encode())))"
    );
    let output = tokio::process::Command::new(crate::mcp::python())
        .arg("-c")
        .arg(script)
        .arg(input.to_string())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice::<bool>(&output.stdout).unwrap()
}

/// Bad context is refused with its field, before anything is stored.
#[tokio::test]
async fn an_oversized_context_is_refused() {
    let s = setup(0).await;
    let conv = expect(
        s.app
            .post("/api/v1/conversations", &s.t.key, &json!({"agent": "desk"}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let id = conv["id"].as_str().unwrap();
    let big: serde_json::Map<String, Value> =
        (0..100).map(|n| (format!("k{n}"), json!(n))).collect();
    let error = expect(
        s.app
            .post(
                &format!("/api/v1/conversations/{id}/messages"),
                &s.t.key,
                &json!({"content": "Hi", "metadata": big}),
            )
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error["error"]["field"], "metadata", "{error}");
    let messages = expect(
        s.app
            .get(&format!("/api/v1/conversations/{id}/messages"), &s.t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(messages["data"], json!([]), "{messages}");
    s.app.stop().await;
}
