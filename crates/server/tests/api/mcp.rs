//! MCP servers as tool sources, against real servers: one built with the official Python SDK
//! (`mcp` from PyPI, set up by `make test` in .venv-test) and one built with `rmcp`.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Content, RawResource, ServerCapabilities, ServerInfo};
use rmcp::schemars;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{tool, tool_handler, tool_router, ServerHandler};
use serde_json::{json, Value};

use crate::common::{expect, expect_error, TestApp, TestTenant};
use crate::scripted::{call, text, Scripted};

/// The Python of the interop venv; missing is a loud failure naming the fix.
pub(crate) fn python() -> PathBuf {
    if let Ok(path) = std::env::var("FRONTDESK_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-test/bin/python");
    assert!(
        path.exists(),
        "{} is missing: run `make test` (or ./scripts/ensure-test-python.sh) to install the MCP SDK",
        path.display()
    );
    path
}

/// Runs a Python fixture (`tests/fixtures/<script>`) with `args` and returns the JSON it
/// prints; a failure shows its stderr.
pub(crate) async fn run_fixture(script: &str, args: &[&str]) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(script);
    let output = tokio::process::Command::new(python())
        .arg(path)
        .args(args)
        .kill_on_drop(true)
        .output();
    let output = crate::common::within(output).await;
    assert!(
        output.status.success(),
        "{script} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{script}: {e}: {}", String::from_utf8_lossy(&output.stdout)))
}

/// The Python MCP server on a free port; killed when dropped.
struct PyServer {
    url: String,
    child: tokio::process::Child,
}

impl PyServer {
    async fn start() -> Self {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mcp_server.py");
        let child = tokio::process::Command::new(python())
            .arg(script)
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return PyServer {
                    url: format!("http://127.0.0.1:{port}/mcp"),
                    child,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the Python MCP server did not start on port {port}");
    }

    async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

async fn setup(scripted: &Scripted, url: &str) -> (TestApp, TestTenant, String) {
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .allow_private_urls()
        .spawn()
        .await;
    let t = app.tenant("Acme").await;
    expect(
        app.request(reqwest::Method::PUT, "/api/v1/secrets/mcp_token", &t.key)
            .json(&json!({"value": "mcp-secret-42"}))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let agent = json!({"slug": "inv", "name": "Inventory", "model": "scripted/m",
        "mcp_servers": [{"name": "inventory", "url": url, "headers": {"Authorization": "Bearer {{secrets.mcp_token}}"}}]});
    expect(
        app.post("/api/v1/agents", &t.key, &agent)
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let conv = expect(
        app.post("/api/v1/conversations", &t.key, &json!({"agent": "inv"}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    (app, t, conv["id"].as_str().unwrap().to_owned())
}

async fn say(app: &TestApp, t: &TestTenant, conv: &str, content: &str) -> Value {
    expect(
        app.post(
            &format!("/api/v1/conversations/{conv}/messages"),
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

fn last_tool_result(scripted: &Scripted) -> (String, String) {
    let request = scripted.requests().pop().unwrap();
    let message = request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "tool")
        .cloned()
        .unwrap();
    (
        message["tool_call_id"].as_str().unwrap().to_owned(),
        message["content"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn tools_of_a_python_sdk_mcp_server_are_listed_called_and_their_errors_surfaced() {
    let server = PyServer::start().await;
    let scripted = Scripted::start(vec![
        call("c1", "add", json!({"a": 2, "b": 3})),
        text("2 + 3 = 5"),
        call("c2", "fail", json!({})),
        text("The inventory is down."),
        call("c3", "whoami", json!({})),
        text("ok"),
    ])
    .await;
    let (app, t, conv) = setup(&scripted, &server.url).await;
    let done = say(&app, &t, &conv, "What is 2 + 3?").await;
    assert_eq!(done["status"], "completed", "{done}");
    // The model was offered the server's tools with their schemas.
    let first = &scripted.requests()[0];
    let offered: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(offered, ["add", "fail", "whoami", "context", "policy"]);
    assert_eq!(
        first["tools"][0]["function"]["parameters"]["required"],
        json!(["a", "b"])
    );
    assert_eq!(last_tool_result(&scripted), ("c1".into(), "5".into()));
    // A tool error comes back as an error result, and the run goes on.
    let done = say(&app, &t, &conv, "Check stock").await;
    assert_eq!(done["status"], "completed");
    let (_, content) = last_tool_result(&scripted);
    assert!(content.contains("inventory system is down"), "{content}");
    let result = done["message"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "tool_result")
        .unwrap()
        .clone();
    assert_eq!(result["is_error"], true);
    // The configured header, with the secret filled in, reached the server.
    say(&app, &t, &conv, "Who am I?").await;
    assert_eq!(last_tool_result(&scripted).1, "Bearer mcp-secret-42");
    // The run's context reaches the server in the call's `_meta`: the conversation's
    // metadata with the turn's over it.
    expect(
        app.request(
            reqwest::Method::PATCH,
            &format!("/api/v1/conversations/{conv}"),
            &t.key,
        )
        .json(&json!({"metadata": {"client_name": "Acme Dental", "event_id": "evt_1"}}))
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    scripted.push(call("c6", "context", json!({})));
    scripted.push(text("ok"));
    expect(
        app.post(
            &format!("/api/v1/conversations/{conv}/messages"),
            &t.key,
            &json!({"content": "Context?", "metadata": {"event_id": "evt_42"}}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&last_tool_result(&scripted).1).unwrap(),
        json!({"client_name": "Acme Dental", "event_id": "evt_42"})
    );
    // Resource links in a result: the model sees them, the answer cites the web ones.
    scripted.push(call("c5", "policy", json!({"topic": "returns"})));
    scripted.push(text("Returns are free within 30 days."));
    let done = say(&app, &t, &conv, "Returns?").await;
    let (_, content) = last_tool_result(&scripted);
    assert!(
        content.contains("returns: free within 30 days.")
            && content.contains("[resource: Returns policy <https://help.example.com/returns>]"),
        "{content}"
    );
    let cited: Vec<&Value> = done["message"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "citation")
        .collect();
    assert_eq!(
        cited,
        [
            &json!({"type": "citation", "title": "Returns policy", "url": "https://help.example.com/returns"})
        ]
    );
    // The server goes down mid-conversation: the call fails as a result the model sees.
    server.kill().await;
    scripted.push(call("c4", "add", json!({"a": 1, "b": 1})));
    scripted.push(text("The calculator is unavailable."));
    let done = say(&app, &t, &conv, "And 1 + 1?").await;
    assert_eq!(done["status"], "completed", "{done}");
    let (id, content) = last_tool_result(&scripted);
    assert_eq!(id, "c4");
    assert!(
        content.contains("MCP server `inventory` failed"),
        "{content}"
    );
    // Refreshing drops the cached list; with the server gone its tools are not offered.
    expect(
        app.post("/api/v1/mcp/refresh", &t.key, &json!({}))
            .send()
            .await
            .unwrap(),
        StatusCode::NO_CONTENT,
    )
    .await;
    scripted.push(text("No tools now."));
    let done = say(&app, &t, &conv, "Anything?").await;
    assert_eq!(done["status"], "completed");
    let last = scripted.requests().pop().unwrap();
    assert!(
        last.get("tools").is_none() || last["tools"] == json!([]),
        "{last}"
    );
    app.stop().await;
}

/// An MCP server built with `rmcp`.
#[derive(Debug, Clone)]
struct Calculator {
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct MulRequest {
    a: i64,
    b: i64,
}

#[tool_router]
impl Calculator {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Multiply two integers")]
    fn multiply(&self, Parameters(MulRequest { a, b }): Parameters<MulRequest>) -> String {
        (a * b).to_string()
    }

    #[tool(description = "Where the shop's help pages are")]
    fn help_pages(&self) -> Result<CallToolResult, rmcp::ErrorData> {
        let mut link = RawResource::new("https://help.example.com/shipping", "shipping");
        link.title = Some("Shipping times".into());
        Ok(CallToolResult::success(vec![
            Content::text("Parcels arrive in two days."),
            Content::resource_link(link),
        ]))
    }
}

/// Serves the rmcp `Calculator` until `stop`; answers its URL.
pub(crate) async fn serve_calculator(stop: &tokio_util::sync::CancellationToken) -> String {
    let service = StreamableHttpService::new(
        || Ok(Calculator::new()),
        std::sync::Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig {
            cancellation_token: stop.child_token(),
            ..Default::default()
        },
    );
    let router = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let shutdown = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled_owned().await })
            .await;
    });
    url
}

#[tool_handler]
impl ServerHandler for Calculator {
    fn get_info(&self) -> ServerInfo {
        ServerInfo {
            capabilities: ServerCapabilities::builder().enable_tools().build(),
            ..Default::default()
        }
    }
}

#[tokio::test]
async fn tools_of_an_rmcp_server_are_called() {
    let stop = tokio_util::sync::CancellationToken::new();
    let url = serve_calculator(&stop).await;
    let scripted = Scripted::start(vec![
        call("m1", "multiply", json!({"a": 6, "b": 7})),
        text("42"),
    ])
    .await;
    let (app, t, conv) = setup(&scripted, &url).await;
    let done = say(&app, &t, &conv, "6 times 7?").await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(last_tool_result(&scripted), ("m1".into(), "42".into()));
    stop.cancel();
    app.stop().await;
}

/// The editor lists what each MCP server offers, asked afresh; a server that cannot be
/// reached says why, beside the others.
#[tokio::test]
async fn the_editor_lists_the_tools_each_mcp_server_offers() {
    let server = PyServer::start().await;
    let scripted = Scripted::start(Vec::new()).await;
    let (app, t, _) = setup(&scripted, &server.url).await;
    expect(
        app.patch(
            "/api/v1/agents/inv",
            &t.key,
            &json!({"mcp_servers": [
                {"name": "inventory", "url": server.url, "headers": {"Authorization": "Bearer {{secrets.mcp_token}}"}},
                {"name": "gone", "url": "http://127.0.0.1:9/mcp"}
            ]}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    let listed = expect(
        app.get("/api/v1/agents/inv/mcp-tools", &t.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let servers = listed["data"].as_array().unwrap();
    assert_eq!(servers.len(), 2, "{listed}");
    assert_eq!(servers[0]["name"], "inventory");
    assert!(servers[0]["error"].is_null(), "{listed}");
    let names: Vec<&str> = servers[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"add"), "{names:?}");
    let add = servers[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "add")
        .unwrap();
    assert_eq!(add["parameters"]["type"], "object");
    assert_eq!(servers[1]["name"], "gone");
    assert!(servers[1]["error"].is_string(), "{listed}");
    assert!(servers[1]["tools"].as_array().unwrap().is_empty());
    // Another tenant cannot ask.
    let other = app.tenant("Other").await;
    expect_error(
        app.get("/api/v1/agents/inv/mcp-tools", &other.key)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    server.kill().await;
}
