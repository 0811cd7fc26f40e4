//! MCP servers' tools (Streamable HTTP), through the `rmcp` client.
//!
//! A connection per tenant and server is kept and its tool list cached for
//! [`TOOLS_TTL`] (or until [`McpClients::forget`]); a call on a connection that broke drops
//! it, so the next run connects again. The HTTP client is the outbound one: private and
//! loopback addresses are refused unless the operator allows them. Header values may name
//! tenant secrets as `{{secrets.NAME}}`.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use frontdesk_core::agent::McpServerEntry;
use frontdesk_core::id::TenantId;
use frontdesk_core::model::ToolSpec;
use frontdesk_core::tool::{Source, Tool, ToolContext, ToolOutput};
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientRequest, Meta, RawContent, ResourceContents,
    ServerResult,
};
use rmcp::service::{Peer, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::{
    StreamableHttpClientTransport, StreamableHttpClientTransportConfig,
};
use rmcp::ServiceExt;
use secrecy::SecretString;
use serde_json::Value;

use crate::outbound;

/// Where an MCP tool call's `_meta` carries the run's context.
pub const CONTEXT_META_KEY: &str = "frontdesk/context";

/// How long a server's tool list is used before it is listed again.
pub const TOOLS_TTL: Duration = Duration::from_secs(300);
/// How long connecting and listing may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type Key = (TenantId, String, u64);

/// A live session with one MCP server and the tools it listed.
struct Connection {
    /// Kept so the session lives; calls go through `peer`.
    _service: RunningService<RoleClient, ()>,
    peer: Peer<RoleClient>,
    tools: Vec<rmcp::model::Tool>,
    listed_at: Instant,
}

/// The MCP sessions of this process.
#[derive(Clone, Default)]
pub struct McpClients {
    sessions: Arc<Mutex<HashMap<Key, Arc<Connection>>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl McpClients {
    /// The tools of `server` for `tenant`, connecting and listing when needed.
    pub async fn tools(
        &self,
        tenant: &TenantId,
        server: &McpServerEntry,
        allow_private: bool,
        secrets: &HashMap<String, SecretString>,
    ) -> Result<Vec<Arc<dyn Tool>>, String> {
        let mut headers = reqwest::header::HeaderMap::new();
        let mut hasher = DefaultHasher::new();
        server.url.hash(&mut hasher);
        for (name, value) in &server.headers {
            let value = super::fill_secrets(value, secrets)?;
            name.hash(&mut hasher);
            value.hash(&mut hasher);
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| format!("header {name}: {e}"))?;
            let mut value = reqwest::header::HeaderValue::from_str(&value)
                .map_err(|e| format!("header {name}: {e}"))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let key: Key = (tenant.clone(), server.name.clone(), hasher.finish());
        let cached = lock(&self.sessions).get(&key).cloned();
        let connection = match cached {
            Some(connection) if connection.listed_at.elapsed() < TOOLS_TTL => connection,
            _ => {
                let connection = Arc::new(connect(server, allow_private, headers).await?);
                lock(&self.sessions).insert(key.clone(), connection.clone());
                connection
            }
        };
        Ok(connection
            .tools
            .iter()
            .map(|tool| {
                let spec = ToolSpec {
                    name: tool.name.to_string(),
                    description: tool
                        .description
                        .as_deref()
                        .map(str::to_owned)
                        .unwrap_or_default(),
                    parameters: Value::Object((*tool.input_schema).clone()),
                };
                Arc::new(McpTool {
                    spec,
                    server: server.name.clone(),
                    connection: connection.clone(),
                    clients: self.clone(),
                    key: key.clone(),
                }) as Arc<dyn Tool>
            })
            .collect())
    }

    /// Forgets every session of `tenant`: the next run connects and lists again.
    pub fn forget(&self, tenant: &TenantId) {
        lock(&self.sessions).retain(|key, _| key.0 != *tenant);
    }

    /// Forgets the sessions of one server (by its name) of `tenant`.
    pub fn forget_server(&self, tenant: &TenantId, server: &str) {
        lock(&self.sessions).retain(|key, _| key.0 != *tenant || key.1 != server);
    }

    fn drop_session(&self, key: &Key) {
        lock(&self.sessions).remove(key);
    }
}

async fn connect(
    server: &McpServerEntry,
    allow_private: bool,
    headers: reqwest::header::HeaderMap,
) -> Result<Connection, String> {
    let url = reqwest::Url::parse(&server.url).map_err(|e| format!("bad URL: {e}"))?;
    outbound::check_url(&url, allow_private).map_err(|e| e.to_string())?;
    let client = outbound::builder(allow_private)
        .default_headers(headers)
        .build()
        .map_err(|e| e.to_string())?;
    let transport = StreamableHttpClientTransport::with_client(
        client,
        StreamableHttpClientTransportConfig::with_uri(server.url.as_str()),
    );
    let work = async {
        let service =
            ().serve(transport)
                .await
                .map_err(|e| format!("could not start a session: {e}"))?;
        let tools = service
            .list_all_tools()
            .await
            .map_err(|e| format!("could not list its tools: {e}"))?;
        let peer = service.peer().clone();
        Ok::<_, String>(Connection {
            _service: service,
            peer,
            tools,
            listed_at: Instant::now(),
        })
    };
    tokio::time::timeout(CONNECT_TIMEOUT, work)
        .await
        .map_err(|_| format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))?
}

/// One tool of an MCP server.
struct McpTool {
    spec: ToolSpec,
    server: String,
    connection: Arc<Connection>,
    clients: McpClients,
    key: Key,
}

#[async_trait]
impl Tool for McpTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, context: &ToolContext, arguments: Value) -> ToolOutput {
        let params = CallToolRequestParams {
            meta: None,
            name: self.spec.name.clone().into(),
            arguments: match arguments {
                Value::Object(map) => Some(map),
                _ => None,
            },
            task: None,
        };
        let mut request = CallToolRequest::new(params);
        // The run's context travels in the call's `_meta`, under our name. rmcp writes
        // `_meta` from the request's extensions (the params' own field would be written a
        // second time beside it).
        if !context.run_context.is_empty() {
            let mut meta = Meta::new();
            meta.0.insert(
                CONTEXT_META_KEY.to_owned(),
                Value::Object(context.run_context.values().clone()),
            );
            request.extensions.insert(meta);
        }
        let answer = match self
            .connection
            .peer
            .send_request(ClientRequest::CallToolRequest(request))
            .await
        {
            Ok(ServerResult::CallToolResult(result)) => Ok(result),
            Ok(_) => Err(rmcp::ServiceError::UnexpectedResponse),
            Err(error) => Err(error),
        };
        match answer {
            Ok(result) => {
                let mut texts: Vec<String> = Vec::new();
                let mut sources = Vec::new();
                for content in &result.content {
                    match &content.raw {
                        RawContent::Text(text) => texts.push(text.text.clone()),
                        RawContent::Image(_) => texts.push("[image]".into()),
                        RawContent::Audio(_) => texts.push("[audio]".into()),
                        RawContent::ResourceLink(link) => {
                            let title = link.title.as_deref().unwrap_or(&link.name);
                            texts.push(format!("[resource: {title} <{}>]", link.uri));
                            sources.extend(Source::link(title, &link.uri));
                        }
                        RawContent::Resource(embedded) => match &embedded.resource {
                            ResourceContents::TextResourceContents { uri, text, .. } => {
                                texts.push(format!("[resource <{uri}>]\n{text}"));
                                sources.extend(Source::link("", uri));
                            }
                            ResourceContents::BlobResourceContents { uri, .. } => {
                                texts.push(format!("[resource <{uri}>]"));
                                sources.extend(Source::link("", uri));
                            }
                        },
                    }
                }
                if texts.is_empty() {
                    if let Some(structured) = &result.structured_content {
                        texts.push(structured.to_string());
                    }
                }
                let content = texts.join("\n");
                if result.is_error.unwrap_or(false) {
                    ToolOutput::error(if content.is_empty() {
                        "the MCP tool reported an error".to_owned()
                    } else {
                        content
                    })
                } else {
                    ToolOutput::ok(content).with_sources(sources)
                }
            }
            Err(error) => {
                // A broken session is dropped so the next run connects afresh.
                self.clients.drop_session(&self.key);
                ToolOutput::error(format!("the MCP server `{}` failed: {error}", self.server))
            }
        }
    }
}
