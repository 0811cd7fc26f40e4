//! The tools of the agent in charge, as the Runner offers and calls them: built-ins, webhooks,
//! MCP servers' tools, and one `transfer_to_<slug>` per handoff target.
//!
//! Arguments are parsed and validated against the tool's schema before it runs; a bad
//! argument, an unknown tool, a failure or a timeout becomes an error result the model sees.

pub mod builtin;
pub mod human;
pub mod mcp;
pub mod trial;
pub mod webhook;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use frontdesk_core::agent::{Agent, AgentRef, ToolEntry};
use frontdesk_core::model::{ToolCall, ToolSpec};
use frontdesk_core::policy::Approver;
use frontdesk_core::schema::Schema;
use frontdesk_core::tool::{Tool, ToolContext, ToolOutput};
use frontdesk_core::{Result, Service};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

/// How long a built-in or MCP tool may take.
const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(30);
/// The prefix of handoff tools.
pub const HANDOFF_PREFIX: &str = "transfer_to_";

/// What a tool is.
#[derive(Clone)]
pub enum Kind {
    Tool(Arc<dyn Tool>),
    /// Hands the run to the agent with this slug.
    Handoff {
        slug: String,
    },
    /// The client runs it (a protocol adapter's caller): the run ends with the call.
    Client,
}

/// A tool as the agent in charge has it.
#[derive(Clone)]
pub struct Bound {
    pub spec: ToolSpec,
    pub kind: Kind,
    /// Who must approve a call before it runs.
    pub approval: Option<Approver>,
    schema: Option<Arc<Schema>>,
    timeout: Duration,
}

/// The tools of one agent, in the order they are offered.
#[derive(Clone, Default)]
pub struct ToolSet {
    tools: Vec<Bound>,
    by_name: HashMap<String, usize>,
    /// Problems met while gathering the tools (an MCP server down): logged and traced.
    pub warnings: Vec<String>,
}

/// What building tool sets needs from outside: HTTP clients and the tenant's secrets.
#[derive(Clone)]
pub struct ToolEnv {
    pub service: Service,
    pub allow_private: bool,
    pub mcp: mcp::McpClients,
    /// The one client for webhooks (connections are reused across runs; each request sets
    /// its own timeout), made on first use.
    pub webhooks: Arc<std::sync::OnceLock<reqwest::Client>>,
    /// The tenant's knowledge, when this server has it (context and `search_knowledge`).
    pub knowledge: Option<Arc<dyn frontdesk_core::knowledge::Retriever>>,
    /// Conversations' live feed (handing a conversation to people is told there).
    pub feed: Arc<crate::feed::ConversationFeed>,
}

impl ToolEnv {
    pub(crate) fn webhook_client(&self) -> Result<reqwest::Client> {
        if let Some(client) = self.webhooks.get() {
            return Ok(client.clone());
        }
        let client = crate::outbound::builder(self.allow_private)
            .build()
            .map_err(frontdesk_core::Error::internal)?;
        Ok(self.webhooks.get_or_init(|| client).clone())
    }
}

/// The tenant's secrets for webhooks, opened once per run when the agent has webhooks.
struct WebhookSecrets {
    signing: SecretString,
    /// The signing secret a rotation replaced, while its overlap lasts.
    previous_signing: Option<SecretString>,
    named: HashMap<String, SecretString>,
}

impl WebhookSecrets {
    async fn open(
        env: &ToolEnv,
        tenant: &frontdesk_core::id::TenantId,
        named: HashMap<String, SecretString>,
    ) -> Result<Self> {
        let signing = env.service.webhook_signing_secrets(tenant).await?;
        Ok(Self {
            signing: signing.current,
            previous_signing: signing.previous,
            named,
        })
    }
}

/// A webhook tool ready to call, from its entry; `None` for another kind of tool.
fn webhook_of(
    env: &ToolEnv,
    entry: &ToolEntry,
    secrets: &WebhookSecrets,
) -> Result<Option<webhook::Webhook>> {
    let ToolEntry::Webhook {
        name,
        description,
        parameters,
        url,
        method,
        headers,
        timeout_ms,
        ..
    } = entry
    else {
        return Ok(None);
    };
    Ok(Some(webhook::Webhook {
        spec: ToolSpec {
            name: name.clone(),
            description: description.clone(),
            parameters: parameters.clone(),
        },
        url: url.clone(),
        method: *method,
        headers: headers.clone(),
        timeout: Duration::from_millis(u64::from(*timeout_ms)),
        client: env.webhook_client()?,
        allow_private: env.allow_private,
        signing_secret: secrets.signing.clone(),
        previous_signing_secret: secrets.previous_signing.clone(),
        secrets: secrets.named.clone(),
    }))
}

/// The name of the handoff tool for `slug`.
pub fn handoff_tool_name(slug: &str) -> String {
    format!("{HANDOFF_PREFIX}{}", slug.replace('-', "_"))
}

impl ToolSet {
    /// Gathers the tools of `agent` (of `tenant`).
    pub async fn build(env: &ToolEnv, agent: &Agent) -> Result<ToolSet> {
        let mut set = ToolSet::default();
        let tenant = &agent.tenant_id;
        let spec = &agent.spec;
        let approvals = &spec.approvals;
        let needs_approval = |name: &str, flagged: bool| {
            (flagged || approvals.tools.iter().any(|t| t == name)).then_some(approvals.approver)
        };
        let mut secrets: Option<WebhookSecrets> = None;
        let named = if spec
            .tools
            .iter()
            .any(|t| matches!(t, ToolEntry::Webhook { .. }))
            || !spec.mcp_servers.is_empty()
        {
            env.service.open_secrets(tenant).await?
        } else {
            HashMap::new()
        };
        for entry in &spec.tools {
            match entry {
                ToolEntry::Builtin { name } if name == human::TRANSFER_TO_HUMAN => set.push(
                    Arc::new(human::TransferToHuman::new(env, &spec.human)),
                    needs_approval(name, false),
                    DEFAULT_TOOL_TIMEOUT,
                ),
                ToolEntry::Builtin { name } => match builtin::builtin(name) {
                    Some(tool) => set.push(tool, needs_approval(name, false), DEFAULT_TOOL_TIMEOUT),
                    None => set.warnings.push(format!("unknown built-in tool `{name}`")),
                },
                ToolEntry::Webhook {
                    name,
                    requires_approval,
                    ..
                } => {
                    if secrets.is_none() {
                        secrets = Some(WebhookSecrets::open(env, tenant, named.clone()).await?);
                    }
                    let Some(secrets) = secrets.as_ref() else {
                        continue;
                    };
                    let Some(tool) = webhook_of(env, entry, secrets)? else {
                        continue;
                    };
                    let timeout = tool.timeout;
                    set.push(
                        Arc::new(tool),
                        needs_approval(name, *requires_approval),
                        timeout + Duration::from_secs(1),
                    );
                }
            }
        }
        if spec
            .knowledge
            .as_ref()
            .is_some_and(|k| k.mode == frontdesk_core::agent::KnowledgeMode::Tool)
        {
            match env
                .knowledge
                .as_ref()
                .and_then(|retriever| crate::knowledge::tool_for(retriever, tenant, spec))
            {
                Some(tool) => set.push(
                    Arc::new(tool),
                    needs_approval(crate::knowledge::SEARCH_KNOWLEDGE, false),
                    DEFAULT_TOOL_TIMEOUT,
                ),
                None if env.knowledge.is_none() => set.warnings.push(
                    "this server has no knowledge search: `search_knowledge` is left out".into(),
                ),
                None => {}
            }
        }
        for server in &spec.mcp_servers {
            match env
                .mcp
                .tools(tenant, server, env.allow_private, &named)
                .await
            {
                Ok(tools) => {
                    for tool in tools {
                        let name = tool.spec().name.clone();
                        if name.starts_with(HANDOFF_PREFIX) {
                            set.warnings.push(format!(
                                "the MCP server `{}` offers `{name}`, a name kept for handoffs; it is left out",
                                server.name
                            ));
                            continue;
                        }
                        let approval = needs_approval(&name, server.requires_approval);
                        set.push(tool, approval, DEFAULT_TOOL_TIMEOUT);
                    }
                }
                Err(error) => set.warnings.push(format!(
                    "the MCP server `{}` is unavailable: {error}",
                    server.name
                )),
            }
        }
        for slug in &spec.handoffs {
            let target = match env
                .service
                .get_agent(tenant, &AgentRef::Slug(slug.clone()))
                .await
            {
                Ok(target) => target,
                Err(frontdesk_core::Error::NotFound { .. }) => {
                    set.warnings
                        .push(format!("the handoff target `{slug}` does not exist"));
                    continue;
                }
                Err(other) => return Err(other),
            };
            let about = if target.spec.description.is_empty() {
                String::new()
            } else {
                format!(" {}", target.spec.description)
            };
            let spec = ToolSpec {
                name: handoff_tool_name(slug),
                description: format!(
                    "Hand the conversation off to the {} agent.{about}",
                    target.spec.name
                ),
                parameters: json!({"type": "object", "properties": {}, "additionalProperties": false}),
            };
            set.insert(Bound {
                spec,
                kind: Kind::Handoff { slug: slug.clone() },
                approval: None,
                schema: None,
                timeout: DEFAULT_TOOL_TIMEOUT,
            });
        }
        Ok(set)
    }

    fn push(&mut self, tool: Arc<dyn Tool>, approval: Option<Approver>, timeout: Duration) {
        let spec = tool.spec().clone();
        let schema = frontdesk_core::schema::compile("parameters", &spec.parameters)
            .ok()
            .map(Arc::new);
        self.insert(Bound {
            spec,
            kind: Kind::Tool(tool),
            approval,
            schema,
            timeout,
        });
    }

    fn insert(&mut self, bound: Bound) {
        if self.by_name.contains_key(&bound.spec.name) {
            self.warnings.push(format!(
                "two tools are called `{}`; the first one is kept",
                bound.spec.name
            ));
            return;
        }
        self.by_name
            .insert(bound.spec.name.clone(), self.tools.len());
        self.tools.push(bound);
    }

    /// Adds tools the client runs itself; a name the agent already has keeps the agent's.
    pub fn add_client_tools(&mut self, specs: &[ToolSpec]) {
        for spec in specs {
            self.insert(Bound {
                spec: spec.clone(),
                kind: Kind::Client,
                approval: None,
                schema: None,
                timeout: DEFAULT_TOOL_TIMEOUT,
            });
        }
    }

    /// What the model is offered.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.iter().map(|t| t.spec.clone()).collect()
    }

    pub fn get(&self, name: &str) -> Option<&Bound> {
        self.by_name.get(name).and_then(|&idx| self.tools.get(idx))
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}

/// Fills `{{secrets.NAME}}` placeholders in a header value; a missing secret is an error
/// naming it. Other `{{…}}` text is left as it is.
pub fn fill_secrets(
    value: &str,
    secrets: &HashMap<String, SecretString>,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        match after[..end].trim().strip_prefix("secrets.") {
            Some(name) => match secrets.get(name) {
                Some(secret) => out.push_str(secret.expose_secret()),
                None => {
                    return Err(format!(
                    "the secret `{name}` used in a header is not set (PUT /api/v1/secrets/{name})"
                ))
                }
            },
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses a call's arguments and checks them against the tool's schema.
pub fn parse_arguments(
    bound: Option<&Bound>,
    call: &ToolCall,
) -> std::result::Result<Value, String> {
    let text = call.arguments.trim();
    let value: Value = if text.is_empty() {
        json!({})
    } else {
        serde_json::from_str(text).map_err(|e| format!("the arguments are not valid JSON: {e}"))?
    };
    if !value.is_object() {
        return Err("the arguments must be a JSON object".to_owned());
    }
    if let Some(schema) = bound.and_then(|b| b.schema.as_ref()) {
        schema
            .check(&value)
            .map_err(|e| format!("the arguments do not match the tool's parameters: {e}"))?;
    }
    Ok(value)
}

/// Runs one call of a tool that is not a handoff, within its timeout.
pub async fn execute(bound: Option<&Bound>, context: &ToolContext, call: &ToolCall) -> ToolOutput {
    let Some(bound) = bound else {
        return ToolOutput::error(format!("there is no tool called `{}`", call.name));
    };
    let arguments = match parse_arguments(Some(bound), call) {
        Ok(arguments) => arguments,
        Err(message) => return ToolOutput::error(message),
    };
    let Kind::Tool(tool) = &bound.kind else {
        return ToolOutput::error("this tool is not run by the server");
    };
    match tokio::time::timeout(bound.timeout, tool.call(context, arguments)).await {
        Ok(output) => output,
        Err(_) => ToolOutput::error(format!(
            "the tool did not answer within {} s",
            bound.timeout.as_secs_f32()
        )),
    }
}
