//! Trying an agent's tools from its editor: one webhook request, signed and sent the way a
//! run sends it (marked `X-Frontdesk-Test: 1`), and the tools its MCP servers offer.

use std::time::Duration;

use frontdesk_core::agent::{Agent, ToolEntry};
use frontdesk_core::context::RunContext;
use frontdesk_core::id::{ConversationId, RunId};
use frontdesk_core::tool::{McpServerTools, OfferedTool, ToolContext, WebhookTrial};
use frontdesk_core::{Error, Result};
use serde_json::Value;

use super::{webhook_of, ToolEnv, WebhookSecrets};

/// How long asking one MCP server for its tools may take.
const MCP_LIST_TIMEOUT: Duration = Duration::from_secs(15);

/// Sends `entry` (a webhook tool, saved or not) once for `agent`, with `arguments` checked
/// against its parameters first.
pub async fn webhook(
    env: &ToolEnv,
    agent: &Agent,
    entry: &ToolEntry,
    arguments: &Value,
) -> Result<WebhookTrial> {
    entry.validate("tool")?;
    let ToolEntry::Webhook { parameters, .. } = entry else {
        return Err(Error::invalid(
            "tool.type",
            "only webhook tools send requests to try",
        ));
    };
    if !arguments.is_object() {
        return Err(Error::invalid(
            "arguments",
            "must be a JSON object, as a model writes them",
        ));
    }
    let schema = frontdesk_core::schema::compile("tool.parameters", parameters)?;
    schema
        .check(arguments)
        .map_err(|message| Error::invalid("arguments", message))?;
    let named = env.service.open_secrets(&agent.tenant_id).await?;
    let secrets = WebhookSecrets::open(env, &agent.tenant_id, named).await?;
    let Some(tool) = webhook_of(env, entry, &secrets)? else {
        return Err(Error::invalid("tool.type", "not a webhook tool"));
    };
    let context = ToolContext {
        tenant: agent.tenant_id.clone(),
        run: RunId::new(),
        conversation: ConversationId::new(),
        agent: agent.spec.slug.clone(),
        end_user: None,
        run_context: RunContext::default(),
    };
    Ok(tool.trial(&context, arguments).await)
}

/// The tools each of the agent's MCP servers offers now (asked afresh), or why it could not
/// be asked; the servers are asked at once.
pub async fn mcp_tools(env: &ToolEnv, agent: &Agent) -> Result<Vec<McpServerTools>> {
    let servers = &agent.spec.mcp_servers;
    if servers.is_empty() {
        return Ok(Vec::new());
    }
    let tenant = &agent.tenant_id;
    let named = env.service.open_secrets(tenant).await?;
    for server in servers {
        env.mcp.forget_server(tenant, &server.name);
    }
    let asked = servers.iter().map(|server| {
        let named = &named;
        async move {
            let listed = tokio::time::timeout(
                MCP_LIST_TIMEOUT,
                env.mcp.tools(tenant, server, env.allow_private, named),
            )
            .await
            .unwrap_or_else(|_| Err("the server did not answer in time".to_owned()));
            let (tools, error) = match listed {
                Ok(tools) => (
                    tools
                        .iter()
                        .map(|tool| {
                            let spec = tool.spec();
                            OfferedTool {
                                name: spec.name.clone(),
                                description: spec.description.clone(),
                                parameters: spec.parameters.clone(),
                            }
                        })
                        .collect(),
                    None,
                ),
                Err(error) => (Vec::new(), Some(error)),
            };
            McpServerTools {
                name: server.name.clone(),
                url: server.url.clone(),
                tools,
                error,
            }
        }
    });
    Ok(futures_util::future::join_all(asked).await)
}
