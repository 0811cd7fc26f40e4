//! The engine's parts used outside a run's loop, by a realtime voice model that runs its own
//! loop: the agent's tools offered to it and called for it (with the same approval rules as
//! chat: a call that needs people's approval is not made), and one-shot text from an agent's
//! model (a call's summary).

use frontdesk_core::agent::Agent;
use frontdesk_core::context::RunContext;
use frontdesk_core::conversation::Usage;
use frontdesk_core::id::{ConversationId, RunId};
use frontdesk_core::model::{ModelEvent, ModelMessage, ModelRequest, ToolCall, ToolSpec};
use frontdesk_core::tool::{ToolContext, ToolOutput};
use frontdesk_core::{Error, Result};
use frontdesk_models::fallback;
use futures_util::StreamExt;
use serde_json::{Map, Value};

use crate::runner::Runner;
use crate::tools::{self, Kind, ToolSet};
use crate::work::set_instructions;

/// An agent's tools for a model that calls them outside a run (a realtime voice session).
#[derive(Clone)]
pub struct DirectTools {
    tools: ToolSet,
    context: ToolContext,
}

impl std::fmt::Debug for DirectTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectTools")
            .field("agent", &self.context.agent)
            .finish()
    }
}

impl DirectTools {
    /// What the model is offered: the agent's server-run tools (handoffs and human handoff
    /// are the call's own business).
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools
            .specs()
            .into_iter()
            .filter(|spec| {
                matches!(self.tools.get(&spec.name), Some(b) if matches!(b.kind, Kind::Tool(_)))
                    && spec.name != "transfer_to_human"
            })
            .collect()
    }

    /// Runs one call. A tool that needs approval is not run: the model is told to offer a
    /// follow-up instead.
    pub async fn call(&self, call: &ToolCall) -> ToolOutput {
        // Only what the model was offered runs (not a handoff, not the inbox's tool).
        if !self.specs().iter().any(|spec| spec.name == call.name) {
            return ToolOutput::error(format!("there is no tool called `{}`", call.name));
        }
        let bound = self.tools.get(&call.name);
        if bound.is_some_and(|b| b.approval.is_some()) {
            return ToolOutput::error(
                "this action needs a person's approval and cannot be done during a call; \
                 tell the caller the team will follow up",
            );
        }
        tools::execute(bound, &self.context, call).await
    }
}

impl Runner {
    /// The agent's tools for a realtime session in `conversation`; `run` names the session
    /// to webhooks (their signature covers it).
    pub async fn direct_tools(
        &self,
        agent: &Agent,
        conversation: &ConversationId,
        run: RunId,
        context: &Map<String, Value>,
    ) -> Result<DirectTools> {
        let tools = ToolSet::build(&self.deps().tools, agent).await?;
        for warning in &tools.warnings {
            tracing::warn!(agent = %agent.spec.slug, "{warning}");
        }
        Ok(DirectTools {
            tools,
            context: ToolContext {
                tenant: agent.tenant_id.clone(),
                run,
                conversation: conversation.clone(),
                agent: agent.spec.slug.clone(),
                end_user: None,
                run_context: RunContext::layered([context]),
            },
        })
    }

    /// A voice agent hands its caller to the team's inbox: the conversation waits for a
    /// person (followers and the `conversation.waiting` webhook hear it). `false` when the
    /// team is away.
    pub async fn call_asks_for_human(
        &self,
        agent: &Agent,
        conversation: &ConversationId,
        reason: Option<&str>,
    ) -> Result<bool> {
        let asked = crate::desk::ask(
            &self.deps().tools,
            &agent.tenant_id,
            conversation,
            &agent.spec.human,
            "agent",
            reason,
        )
        .await?;
        Ok(matches!(asked, crate::desk::Request::Waiting { .. }))
    }

    /// One answer of `agent`'s model (its fallbacks too, the tenant's own keys) to `prompt`
    /// under `system`, stored nowhere: a call's summary.
    pub async fn complete(
        &self,
        agent: &Agent,
        system: &str,
        prompt: &str,
        max_tokens: u32,
    ) -> Result<(String, Option<Usage>)> {
        let deps = self.deps();
        let keys = deps.keys(&agent.tenant_id).await?;
        let candidates = deps.candidates(agent, &keys)?;
        let mut messages = Vec::new();
        set_instructions(&mut messages, system);
        messages.push(ModelMessage::User {
            text: prompt.to_owned(),
        });
        let request = ModelRequest {
            messages,
            temperature: Some(0.2),
            max_tokens: Some(max_tokens),
            ..ModelRequest::default()
        };
        let mut stream = fallback::start(&candidates, &request, deps.retry)
            .await
            .map_err(|(e, _)| Error::Upstream {
                message: e.to_string(),
            })?
            .stream;
        let mut answer = String::new();
        let mut usage = None;
        while let Some(event) = stream.next().await {
            match event.map_err(|e| Error::Upstream {
                message: e.to_string(),
            })? {
                ModelEvent::TextDelta(text) => answer.push_str(&text),
                ModelEvent::Usage(u) => usage = Some(u),
                ModelEvent::ToolCallDelta { .. } | ModelEvent::Finish(_) => {}
            }
        }
        Ok((answer.trim().to_owned(), usage))
    }
}
