//! What starting a turn needs, read in one call to the store: the conversation, its agent,
//! its active branch, whether a run of it waits for an approval, the tenant's provider keys
//! and whether its quota allows another turn.

use std::collections::HashMap;

use secrecy::SecretString;

use super::Service;
use crate::agent::Agent;
use crate::conversation::{Conversation, Message};
use crate::error::{Error, Result};
use crate::id::{ConversationId, MessageId, RunId, TenantId};
use crate::store::TurnContext;
use crate::time::Timestamp;
use crate::StoreError;

/// What a turn starts from. Each part that can fail on its own carries its own result, so
/// the caller checks them in the order its checks go.
#[derive(Debug)]
pub struct TurnStart {
    pub conversation: Conversation,
    /// The conversation's agent (`not_found` when it was deleted).
    pub agent: Result<Agent>,
    /// The active branch, oldest first, when it was asked for (empty when its active message
    /// is the one the caller knows).
    pub active_path: Option<Vec<Message>>,
    /// The run of the conversation that waits for approvals, if one does.
    pub paused_run: Option<RunId>,
    /// The tenant's provider keys in the clear.
    pub keys: Result<HashMap<String, SecretString>>,
    /// `quota_exceeded` when the tenant has used its monthly tokens.
    pub quota: Result<()>,
}

impl Service {
    /// Everything a turn on `conversation` starts from; with `history: Some(max)`, the last
    /// `max` messages of its active branch too, unless its active message is `known` (then
    /// the branch is left empty). A missing conversation is `not_found`.
    pub async fn turn_start(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        history: Option<u32>,
        known: Option<&MessageId>,
    ) -> Result<TurnStart> {
        let now = Timestamp::now();
        let TurnContext {
            conversation,
            tenant: tenant_row,
            tokens_used,
            sealed_credentials,
            paused_run,
            agent,
            active_path,
        } = self
            .store
            .turn_context(tenant, conversation, &now.month_key(), history, known)
            .await
            .map_err(|e| Error::from_store("conversation", e))?;
        Ok(TurnStart {
            conversation,
            agent: agent.ok_or_else(|| Error::from_store("agent", StoreError::NotFound)),
            active_path,
            paused_run,
            keys: self.open_sealed(tenant, sealed_credentials),
            quota: super::tenants::quota_verdict(&tenant_row, tokens_used, now),
        })
    }
}
