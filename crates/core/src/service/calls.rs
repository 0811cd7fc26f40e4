//! Voice calls: opening a call's record (within the tenant's limit of calls at once),
//! keeping it as the call goes on, and listing and reading calls.

use super::Service;
use crate::agent::{Agent, AgentRef};
use crate::conversation::{ContentPart, Page};
use crate::error::{Error, Result};
use crate::id::{CallId, TenantId};
use crate::time::Timestamp;
use crate::voice::{Call, CallChannel, CallDirection, CallQuery, CallStatus, CallUsage};

/// Longest search text for the call list.
const MAX_SEARCH_CHARS: usize = 200;

/// A call about to start.
#[derive(Debug, Clone)]
pub struct NewCall {
    pub channel: CallChannel,
    pub direction: CallDirection,
    /// `realtime`, `pipeline` or `conversation_relay`.
    pub mode: &'static str,
    pub from: Option<String>,
    pub to: Option<String>,
    pub provider_call_id: Option<String>,
}

impl Service {
    /// Opens a call's record for `agent`, refused (429) when the tenant already has its
    /// limit of calls under way.
    pub async fn open_call(&self, agent: &Agent, input: NewCall) -> Result<Call> {
        let tenant = &agent.tenant_id;
        // A tenant past its monthly quota takes no calls (their models would bill on).
        self.check_quota(tenant).await?;
        let active = self
            .store
            .active_calls(tenant)
            .await
            .map_err(|e| Error::from_store("call", e))?;
        let limit = self.limits.max_calls_per_tenant;
        if active >= limit {
            return Err(Error::RateLimited {
                retry_after_secs: 30,
                message: format!(
                    "this account has {limit} calls under way, its limit; try again when one ends"
                ),
            });
        }
        let call = Call {
            id: CallId::new(),
            tenant_id: tenant.clone(),
            agent_id: agent.id.clone(),
            conversation_id: None,
            channel: input.channel,
            direction: input.direction,
            mode: input.mode.to_owned(),
            from: input.from,
            to: input.to,
            provider_call_id: input.provider_call_id,
            status: CallStatus::Active,
            started_at: Timestamp::now(),
            ended_at: None,
            duration_ms: None,
            transcript: Vec::new(),
            summary: None,
            tool_calls: Vec::new(),
            usage: CallUsage::default(),
            error: None,
            transferred_to: None,
        };
        self.store
            .insert_call(&call)
            .await
            .map_err(|e| Error::from_store("call", e))?;
        Ok(call)
    }

    /// Sets the telephony provider's id of a call that has none yet.
    pub async fn set_provider_call_id(
        &self,
        tenant: &TenantId,
        id: &CallId,
        sid: &str,
    ) -> Result<()> {
        self.store
            .set_provider_call_id(tenant, id, sid)
            .await
            .map_err(|e| Error::from_store("call", e))
    }

    /// Whether the tenant has its limit of calls under way.
    pub async fn calls_at_limit(&self, tenant: &TenantId) -> Result<bool> {
        let active = self
            .store
            .active_calls(tenant)
            .await
            .map_err(|e| Error::from_store("call", e))?;
        Ok(active >= self.limits.max_calls_per_tenant)
    }

    /// Stores what the call holds now.
    pub async fn save_call(&self, call: &Call) -> Result<()> {
        self.store
            .update_call(call)
            .await
            .map_err(|e| Error::from_store("call", e))
    }

    /// The agent a telephony webhook names by id (its tenant comes with it).
    pub async fn phone_agent(&self, agent: &str) -> Result<Agent> {
        let id =
            crate::id::AgentId::parse(agent).map_err(|_| Error::NotFound { resource: "agent" })?;
        self.store
            .phone_agent(&id)
            .await
            .map_err(|e| Error::from_store("agent", e))
    }

    pub async fn get_call(&self, tenant: &TenantId, id: &CallId) -> Result<Call> {
        self.store
            .get_call(tenant, id)
            .await
            .map_err(|e| Error::from_store("call", e))
    }

    /// The tenant's calls, newest first; `agent` by slug or id.
    pub async fn list_calls(
        &self,
        tenant: &TenantId,
        agent: Option<&str>,
        mut query: CallQuery,
    ) -> Result<Page<Call>> {
        if let Some(agent) = agent {
            let agent = self.get_agent(tenant, &AgentRef::parse(agent)?).await?;
            query.agent_id = Some(agent.id);
        }
        if let Some(search) = &query.search {
            crate::validate::max_chars("q", search, MAX_SEARCH_CHARS)?;
            query.search = Some(search.trim().to_lowercase()).filter(|s| !s.is_empty());
        }
        self.store
            .list_calls(tenant, &query)
            .await
            .map_err(|e| Error::from_store("call", e))
    }

    /// An answer the caller spoke over keeps what they heard (its tool calls and sources
    /// too; the text after the point they spoke is dropped).
    pub async fn truncate_answer(
        &self,
        tenant: &TenantId,
        message: &crate::conversation::Message,
        heard: &str,
    ) -> Result<()> {
        let mut content = Vec::with_capacity(message.content.len());
        let mut text_done = false;
        for part in &message.content {
            match part {
                ContentPart::Text { .. } if text_done => {}
                ContentPart::Text { .. } => {
                    text_done = true;
                    content.push(ContentPart::Text {
                        text: heard.to_owned(),
                    });
                }
                other => content.push(other.clone()),
            }
        }
        if !text_done {
            content.push(ContentPart::Text {
                text: heard.to_owned(),
            });
        }
        self.store
            .truncate_answer(tenant, &message.id, &content, heard)
            .await
            .map_err(|e| Error::from_store("message", e))
    }

    /// Calls still `active` that started before `before` are marked failed, saying `why`
    /// (a process that stopped with calls under way; calls older than any call can last).
    pub async fn fail_stale_calls(&self, before: Timestamp, why: &str) -> Result<u64> {
        self.store
            .fail_stale_calls(before, why)
            .await
            .map_err(|e| Error::from_store("call", e))
    }

    /// Twilio's status callback for an outbound call: one it never connected to us (busy,
    /// not answered, failed, cancelled) ends here; a connected one ends with its own task.
    pub async fn outbound_status(
        &self,
        tenant: &TenantId,
        id: &CallId,
        status: &str,
    ) -> Result<()> {
        let mut call = self.get_call(tenant, id).await?;
        let unanswered = matches!(
            status,
            "busy" | "no-answer" | "failed" | "canceled" | "completed"
        );
        if call.status != CallStatus::Active || call.conversation_id.is_some() || !unanswered {
            return Ok(());
        }
        call.status = CallStatus::Failed;
        call.error = Some(format!("the call did not connect ({status})"));
        call.ended_at = Some(Timestamp::now());
        call.duration_ms = Some(0);
        self.save_call(&call).await
    }
}
