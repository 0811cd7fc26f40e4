//! The human side of a conversation: asking for a person (the agent's `transfer_to_human`
//! or the visitor's button), staff taking it, replying, writing internal notes and handing
//! it back, and the sweep that gives a conversation nobody took in time back to the agent.
//! The state changes are the service's (`frontdesk_core::service`); here they are told to
//! the conversation's followers ([`ConversationFeed`]), to the tenant (a signed
//! `conversation.waiting` webhook) and, where the agent must go on, turned into a run.

use std::sync::Arc;
use std::time::Duration;

use frontdesk_core::agent::Agent;
use frontdesk_core::conversation::{Conversation, MessageDraft, MessageRole};
use frontdesk_core::handoff::{Assignee, ConversationEvent, Handler, HumanSettings};
use frontdesk_core::id::{ConversationId, RunId, TenantId};
use frontdesk_core::service::StaffPosted;
use frontdesk_core::time::Timestamp;
use frontdesk_core::{Error, Result};
use secrecy::ExposeSecret;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::feed::{ConversationFeed, FeedItem};
use crate::request::{Input, TurnOptions, TurnRequest};
use crate::runner::Runner;
use crate::tools::ToolEnv;

/// What the agent is told when nobody took the conversation in time.
const NOBODY_CAME: &str = "Nobody from the team could take this conversation in time. Tell the \
customer that the team is busy, answer what you can yourself, and offer to take their name and \
email address or phone number so that someone gets back to them.";
/// What the agent is told when the team is away.
pub(crate) const TEAM_AWAY: &str = "Nobody from the team is available right now (outside \
opening hours). Tell the customer so, answer what you can yourself, and offer to take their \
name and email address or phone number so that someone gets back to them.";
/// Conversations the sweep looks at per round.
const SWEEP_BATCH: u32 = 200;

/// What asking for a person came to.
#[derive(Debug)]
pub enum Asked {
    /// The conversation waits for a person; the visitor is told `message`.
    Waiting { message: String },
    /// The team is away: the agent goes on (for the visitor's button, in the run here).
    Away { run_id: Option<RunId> },
}

/// What asking for a person did.
pub(crate) enum Request {
    /// The team is away: nothing changed.
    Away,
    /// The conversation waits for a person (`new`: this request made it wait; else it was
    /// handed to people already).
    Waiting { new: bool },
}

/// Asks for a person on behalf of `by` (`agent` or `visitor`): the conversation waits,
/// its followers hear it and the tenant's webhook is sent.
pub(crate) async fn ask(
    env: &ToolEnv,
    tenant: &TenantId,
    conversation: &ConversationId,
    settings: &HumanSettings,
    by: &str,
    reason: Option<&str>,
) -> Result<Request> {
    if !settings.open_at(Timestamp::now()) {
        return Ok(Request::Away);
    }
    let asked = env
        .service
        .request_human(tenant, conversation, by, reason, settings.wait_seconds())
        .await?;
    let new = asked.is_some();
    if let Some((conversation, event)) = asked {
        publish(&env.feed, tenant, &conversation.id, event.clone());
        if let Some(url) = &settings.notify_url {
            notify_waiting(env, tenant, url.clone(), conversation, event);
        }
    }
    Ok(Request::Waiting { new })
}

fn publish(
    feed: &ConversationFeed,
    tenant: &TenantId,
    conversation: &ConversationId,
    event: ConversationEvent,
) {
    feed.publish(tenant, conversation, FeedItem::Event(Arc::new(event)));
}

/// Sends the signed `conversation.waiting` webhook in the background (once; a failure is
/// logged, never shown to the visitor).
fn notify_waiting(
    env: &ToolEnv,
    tenant: &TenantId,
    url: String,
    conversation: Conversation,
    event: ConversationEvent,
) {
    let env = env.clone();
    let tenant = tenant.clone();
    tokio::spawn(async move {
        let sent = async {
            let parsed = reqwest::Url::parse(&url)
                .map_err(|_| Error::invalid("human.notify_url", "must be a URL"))?;
            crate::outbound::check_url(&parsed, env.allow_private)
                .map_err(|refused| Error::invalid("human.notify_url", refused.to_string()))?;
            let secrets = env.service.webhook_signing_secrets(&tenant).await?;
            let body = serde_json::to_vec(&json!({
                "type": "conversation.waiting",
                "created_at": event.created_at,
                "conversation": conversation,
                "event": event,
            }))
            .map_err(Error::internal)?;
            let now = Timestamp::now().as_millis() / 1000;
            let mut header =
                crate::tools::webhook::signature(secrets.current.expose_secret(), now, &body);
            if let Some(previous) = &secrets.previous {
                let v1 = crate::tools::webhook::signature(previous.expose_secret(), now, &body);
                if let Some((_, v1)) = v1.split_once(',') {
                    header.push(',');
                    header.push_str(v1);
                }
            }
            let response = env
                .webhook_client()?
                .post(&url)
                .timeout(Duration::from_secs(10))
                .header("Content-Type", "application/json")
                .header("X-Frontdesk-Signature", header)
                .header("X-Frontdesk-Event", "conversation.waiting")
                .body(body)
                .send()
                .await
                .map_err(|e| Error::Upstream {
                    message: e.without_url().to_string(),
                })?;
            if !response.status().is_success() {
                return Err(Error::Upstream {
                    message: format!("answered {}", response.status()),
                });
            }
            Ok(())
        }
        .await;
        if let Err(error) = sent {
            tracing::warn!(tenant = %tenant, error = %error, "the conversation.waiting webhook was not delivered");
        }
    });
}

impl Runner {
    /// The conversations' live feed.
    pub fn feed(&self) -> &Arc<ConversationFeed> {
        &self.deps().tools.feed
    }

    /// The visitor asks for a person (the widget's button). While the team is in, the
    /// conversation waits and the visitor reads the waiting message (stored as the agent's,
    /// once); while it is away, the agent answers the visitor's request, `said` (a run, which
    /// the visitor follows).
    pub async fn visitor_asks_for_human(
        &self,
        tenant: &TenantId,
        conversation: &Conversation,
        agent: &Agent,
        said: &str,
    ) -> Result<Asked> {
        if conversation.handler == Handler::Human {
            return Ok(Asked::Waiting {
                message: agent.spec.human.waiting_message().to_owned(),
            });
        }
        let env = &self.deps().tools;
        match ask(
            env,
            tenant,
            &conversation.id,
            &agent.spec.human,
            "visitor",
            None,
        )
        .await?
        {
            Request::Waiting { new } => {
                let message = agent.spec.human.waiting_message().to_owned();
                if new {
                    let (_, event) = env
                        .service
                        .message_for_people(
                            tenant,
                            &conversation.id,
                            MessageDraft::text(MessageRole::Assistant, message.clone()),
                        )
                        .await?;
                    publish(&env.feed, tenant, &conversation.id, event);
                }
                Ok(Asked::Waiting { message })
            }
            Request::Away => {
                let started = self
                    .start(TurnRequest {
                        options: TurnOptions {
                            instructions: Some(format!(
                                "The customer asked to talk to a person. {TEAM_AWAY}"
                            )),
                            ..TurnOptions::default()
                        },
                        ..TurnRequest::on(
                            tenant,
                            &conversation.id,
                            Input::Send {
                                text: said.to_owned(),
                            },
                        )
                    })
                    .await?;
                Ok(Asked::Away {
                    run_id: Some(started.run_id),
                })
            }
        }
    }

    /// A staff member takes the conversation: the agent stops answering there (a run in
    /// progress is cancelled) and the visitor hears that a person joined.
    pub async fn take_over(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        by: &Assignee,
    ) -> Result<Conversation> {
        let (taken, event) = self
            .deps()
            .service
            .take_over(tenant, conversation, by)
            .await?;
        if let Some(event) = event {
            self.cancel_conversation_runs(tenant, conversation).await;
            publish(self.feed(), tenant, conversation, event);
        }
        Ok(taken)
    }

    /// A staff reply (or internal note), told to the conversation's followers.
    pub async fn staff_message(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        by: &Assignee,
        content: &str,
        internal: bool,
    ) -> Result<StaffPosted> {
        let posted = self
            .deps()
            .service
            .staff_message(tenant, conversation, by, content, internal)
            .await?;
        if let Some(taken) = &posted.taken {
            self.cancel_conversation_runs(tenant, conversation).await;
            publish(self.feed(), tenant, conversation, taken.clone());
        }
        publish(self.feed(), tenant, conversation, posted.event.clone());
        Ok(posted)
    }

    /// Hands the conversation back to the agent ("the assistant is back").
    pub async fn hand_back(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        by: &Assignee,
    ) -> Result<Conversation> {
        let (conversation, event) = self
            .deps()
            .service
            .hand_back(tenant, conversation, by)
            .await?;
        publish(self.feed(), tenant, &conversation.id, event);
        Ok(conversation)
    }

    /// Someone is writing in the conversation (a fleeting event; nothing is stored).
    pub fn typing(&self, tenant: &TenantId, conversation: &ConversationId, name: &str) {
        self.feed().publish(
            tenant,
            conversation,
            FeedItem::Typing {
                name: name.to_owned(),
            },
        );
    }

    /// Gives every conversation that waited longer than its agent allows back to the agent,
    /// which is told and answers (a run each); how many.
    pub async fn expire_waits(&self) -> usize {
        let service = &self.deps().service;
        let waiting = match service.waits_due(Timestamp::now(), SWEEP_BATCH).await {
            Ok(waiting) => waiting,
            Err(error) => {
                tracing::warn!(error = %error, "the wait sweep could not list waiting conversations");
                return 0;
            }
        };
        let mut ended = 0;
        for conversation in waiting {
            match self.end_wait_if_due(&conversation).await {
                Ok(true) => ended += 1,
                Ok(false) => {}
                Err(error) => tracing::warn!(
                    conversation = %conversation.id,
                    error = %error,
                    "a conversation's wait for a person could not be ended"
                ),
            }
        }
        ended
    }

    async fn end_wait_if_due(&self, conversation: &Conversation) -> Result<bool> {
        let Some(since) = conversation.waiting_since else {
            return Ok(false);
        };
        let tenant = &conversation.tenant_id;
        let service = &self.deps().service;
        let agent = service
            .get_agent(
                tenant,
                &frontdesk_core::agent::AgentRef::Id(conversation.agent_id.clone()),
            )
            .await;
        let Some((_, event)) = service.end_wait(tenant, &conversation.id, since).await? else {
            return Ok(false);
        };
        publish(self.feed(), tenant, &conversation.id, event);
        if agent.is_ok() {
            self.start(TurnRequest {
                options: TurnOptions {
                    instructions: Some(NOBODY_CAME.to_owned()),
                    ..TurnOptions::default()
                },
                ..TurnRequest::on(tenant, &conversation.id, Input::Continue)
            })
            .await?;
        }
        Ok(true)
    }

    /// Runs [`Runner::expire_waits`] every `every` until `stop`.
    pub fn spawn_wait_expiry(&self, every: Duration, stop: CancellationToken) {
        let runner = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {
                        let ended = runner.expire_waits().await;
                        if ended > 0 {
                            tracing::info!(ended, "conversations nobody took in time went back to their agents");
                        }
                    }
                }
            }
        });
    }
}
