//! Handing conversations to people and back: the state changes, each checked and made
//! atomically with the timeline event that records it (see [`crate::handoff`]). Telling
//! followers, webhooks and starting the agent again are the runner's part.

use serde_json::json;

use super::conversations::MAX_MESSAGE_CHARS;
use super::Service;
use crate::conversation::{Conversation, Message, MessageDraft, MessageRole};
use crate::error::{Error, Result};
use crate::handoff::{
    check_avatar, Assignee, Author, ConversationEvent, EventKind, Expect, Handler, Handling,
    NewEvent,
};
use crate::id::{ConversationId, TenantId, UserId};
use crate::tenant::User;
use crate::time::Timestamp;
use crate::validate;

/// Longest internal note or staff reply reason.
const MAX_REASON_CHARS: usize = 2_000;

/// What a staff reply changed.
#[derive(Debug, Clone)]
pub struct StaffPosted {
    pub conversation: Conversation,
    /// The `handoff.taken` event, when replying took the conversation.
    pub taken: Option<ConversationEvent>,
    /// `message.created` (a reply) or `note.created` (an internal note).
    pub event: ConversationEvent,
    /// The reply as stored (none for a note).
    pub message: Option<Message>,
}

impl Service {
    /// A staff member as the assignee of conversations: their id, name and avatar.
    pub fn assignee_of(user: &User) -> Assignee {
        Assignee {
            id: user.id.to_string(),
            name: user.name.clone(),
            avatar_url: user.avatar_url.clone(),
        }
    }

    /// A member (by id) as the assignee of conversations.
    pub async fn member_assignee(&self, user: &UserId) -> Result<Assignee> {
        let user = self
            .store
            .get_user(user)
            .await
            .map_err(|e| Error::from_store("user", e))?;
        Ok(Self::assignee_of(&user))
    }

    /// Sets a user's display name and avatar (what visitors see on their replies).
    pub async fn set_profile(
        &self,
        user: &UserId,
        name: &str,
        avatar_url: Option<&str>,
    ) -> Result<()> {
        let name = name.trim();
        validate::non_empty("name", name, 200)?;
        let avatar_url = avatar_url.map(str::trim).filter(|a| !a.is_empty());
        if let Some(url) = avatar_url {
            check_avatar("avatar_url", url)?;
        }
        self.store
            .set_user_profile(user, name, avatar_url)
            .await
            .map_err(|e| Error::from_store("user", e))
    }

    /// The agent or the visitor asks for a person: the conversation waits (`None` when
    /// people handle it already).
    pub async fn request_human(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        by: &str,
        reason: Option<&str>,
        wait_seconds: u32,
    ) -> Result<Option<(Conversation, ConversationEvent)>> {
        if let Some(reason) = reason {
            validate::max_chars("reason", reason, MAX_REASON_CHARS)?;
        }
        let at = Timestamp::now();
        let handling = Handling {
            handler: Handler::Human,
            waiting_since: Some(at),
            wait_until: Some(at.plus_secs(u64::from(wait_seconds))),
            assignee: None,
        };
        let event = NewEvent {
            kind: EventKind::Requested,
            actor: None,
            data: json!({"by": by, "reason": reason}),
            at,
        };
        self.store
            .set_handling(tenant, conversation, &handling, &Expect::Agent, &event)
            .await
            .map_err(|e| Error::from_store("conversation", e))
    }

    /// A staff member takes the conversation (from the agent, or from the queue). Taking
    /// one's own again changes nothing (`None` event); someone else's is a 409 naming them.
    pub async fn take_over(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        assignee: &Assignee,
    ) -> Result<(Conversation, Option<ConversationEvent>)> {
        assignee.validate()?;
        let current = self.get_conversation(tenant, conversation).await?;
        if current
            .assignee
            .as_ref()
            .is_some_and(|a| a.id == assignee.id)
        {
            return Ok((current, None));
        }
        let at = Timestamp::now();
        let handling = Handling {
            handler: Handler::Human,
            waiting_since: None,
            wait_until: None,
            assignee: Some(assignee.clone()),
        };
        let event = NewEvent {
            kind: EventKind::Taken,
            actor: Some(assignee.clone()),
            data: json!({"waited_since": current.waiting_since}),
            at,
        };
        let expect = Expect::Free {
            id: assignee.id.clone(),
        };
        match self
            .store
            .set_handling(tenant, conversation, &handling, &expect, &event)
            .await
            .map_err(|e| Error::from_store("conversation", e))?
        {
            Some((conversation, event)) => Ok((conversation, Some(event))),
            None => Err(self.held_elsewhere(tenant, conversation).await),
        }
    }

    /// The conflict of a conversation someone else holds.
    async fn held_elsewhere(&self, tenant: &TenantId, conversation: &ConversationId) -> Error {
        match self.get_conversation(tenant, conversation).await {
            Ok(current) => Error::Conflict {
                code: "conversation_taken",
                message: match current.assignee {
                    Some(holder) => format!("{} handles this conversation", holder.name),
                    None => "the conversation changed hands; reload it".to_owned(),
                },
            },
            Err(e) => e,
        }
    }

    /// Hands the conversation back to the agent (by its holder, or anyone when nobody holds
    /// it); a 409 when someone else holds it.
    pub async fn hand_back(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        by: &Assignee,
    ) -> Result<(Conversation, ConversationEvent)> {
        let current = self.get_conversation(tenant, conversation).await?;
        if current.handler == Handler::Agent {
            return Err(Error::Conflict {
                code: "not_handed_off",
                message: "the agent already answers this conversation".to_owned(),
            });
        }
        let handling = Handling {
            handler: Handler::Agent,
            waiting_since: None,
            wait_until: None,
            assignee: None,
        };
        let event = NewEvent {
            kind: EventKind::Returned,
            actor: Some(by.clone()),
            data: json!({}),
            at: Timestamp::now(),
        };
        let expect = Expect::Free { id: by.id.clone() };
        match self
            .store
            .set_handling(tenant, conversation, &handling, &expect, &event)
            .await
            .map_err(|e| Error::from_store("conversation", e))?
        {
            Some(done) => Ok(done),
            None => Err(self.held_elsewhere(tenant, conversation).await),
        }
    }

    /// A staff member's reply (shown to the visitor, marked as theirs, and part of the
    /// agent's history later) or internal note (staff only). Replying to a conversation
    /// nobody holds takes it; one someone else holds is a 409.
    pub async fn staff_message(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        by: &Assignee,
        content: &str,
        internal: bool,
    ) -> Result<StaffPosted> {
        let content = content.trim();
        validate::non_empty("content", content, MAX_MESSAGE_CHARS)?;
        if internal {
            let current = self.get_conversation(tenant, conversation).await?;
            let event = self
                .append_event(
                    tenant,
                    conversation,
                    EventKind::Note,
                    Some(by.clone()),
                    json!({"content": content}),
                )
                .await?;
            return Ok(StaffPosted {
                conversation: current,
                taken: None,
                event,
                message: None,
            });
        }
        let (current, taken) = self.take_over(tenant, conversation, by).await?;
        let message = self
            .append_message(
                tenant,
                conversation,
                MessageDraft {
                    author: Some(Author::staff(by)),
                    ..MessageDraft::text(MessageRole::Assistant, content)
                },
            )
            .await?;
        let event = self
            .append_event(
                tenant,
                conversation,
                EventKind::Message,
                Some(by.clone()),
                json!({"message": message}),
            )
            .await?;
        Ok(StaffPosted {
            conversation: current,
            taken,
            event,
            message: Some(message),
        })
    }

    /// Stores a visitor's message for the people who handle the conversation (no run
    /// starts) and records it on the timeline.
    pub async fn message_for_people(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        draft: MessageDraft,
    ) -> Result<(Message, ConversationEvent)> {
        let message = self.append_message(tenant, conversation, draft).await?;
        let event = self
            .append_event(
                tenant,
                conversation,
                EventKind::Message,
                None,
                json!({"message": message}),
            )
            .await?;
        Ok((message, event))
    }

    /// Gives a conversation nobody took in time back to the agent (`None` when it was taken
    /// or changed meanwhile).
    pub async fn end_wait(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        since: Timestamp,
    ) -> Result<Option<(Conversation, ConversationEvent)>> {
        let at = Timestamp::now();
        let handling = Handling {
            handler: Handler::Agent,
            waiting_since: None,
            wait_until: None,
            assignee: None,
        };
        let event = NewEvent {
            kind: EventKind::TimedOut,
            actor: None,
            data: json!({"waited_seconds": (at.as_millis() - since.as_millis()).max(0) / 1000}),
            at,
        };
        self.store
            .set_handling(
                tenant,
                conversation,
                &handling,
                &Expect::WaitingSince(since),
                &event,
            )
            .await
            .map_err(|e| Error::from_store("conversation", e))
    }

    /// Conversations of any tenant whose wait for a person ran out by `now` (the wait
    /// sweep), the earliest due first.
    pub async fn waits_due(&self, now: Timestamp, limit: u32) -> Result<Vec<Conversation>> {
        self.store
            .waits_due(now, limit)
            .await
            .map_err(|e| Error::from_store("conversation", e))
    }

    /// The conversation's timeline after `after`, oldest first (at most `limit` events).
    pub async fn conversation_events(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ConversationEvent>> {
        self.store
            .events_after(tenant, conversation, after, limit)
            .await
            .map_err(|e| Error::from_store("conversation", e))
    }

    async fn append_event(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        kind: EventKind,
        actor: Option<Assignee>,
        data: serde_json::Value,
    ) -> Result<ConversationEvent> {
        let event = NewEvent {
            kind,
            actor,
            data,
            at: Timestamp::now(),
        };
        self.store
            .append_event(tenant, conversation, &event)
            .await
            .map_err(|e| Error::from_store("conversation", e))
    }
}
