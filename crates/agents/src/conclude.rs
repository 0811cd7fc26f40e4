//! How a run ends: its answer stored (whole, partial, or the safe reply of a tripped
//! guardrail) and published, the run with its steps and events recorded — or, for a run that
//! waits for approvals, its state saved so that it can go on later.

use frontdesk_core::conversation::{ContentPart, Message, MessageDraft, MessageRole, Parent};
use frontdesk_core::run::{FinishReason, RunEvent, RunFailure, RunRecord, RunStatus};
use frontdesk_core::time::Timestamp;

use crate::deps::{Deps, MAX_HISTORY};
use crate::ports::{Publisher, RunControl};
use crate::recent::RecentPaths;
use crate::work::{End, Meta, Paused, Pending, Work};

/// What ending a run needs: the store (through the service), the run control to say it is
/// no longer live, and the kept branches for the next turn.
pub(crate) struct Ending<'a> {
    pub deps: &'a Deps,
    pub control: &'a dyn RunControl,
    pub recent: &'a RecentPaths,
}

impl Ending<'_> {
    /// Publishes and stores how a run ended (or that it paused).
    pub(crate) async fn conclude(&self, meta: Meta, work: Work, end: End, publisher: &Publisher) {
        let mut parts = work.progress.parts.clone();
        let (finish, structured, error) = match end {
            End::Paused(pending) => {
                self.pause(meta, work, pending, publisher).await;
                return;
            }
            End::Answer {
                text,
                structured,
                finish,
            } => {
                if !text.is_empty() {
                    parts.push(ContentPart::Text { text });
                }
                (finish, structured, None)
            }
            End::Failed {
                failure,
                message,
                partial,
            } => {
                if !partial.is_empty() {
                    parts.push(ContentPart::Text { text: partial });
                }
                (FinishReason::Error, None, Some((failure, message)))
            }
            End::Cancelled { partial } => {
                if !partial.is_empty() {
                    parts.push(ContentPart::Text { text: partial });
                }
                (FinishReason::Cancelled, None, None)
            }
            End::Tripped(trip) => {
                tracing::info!(run.id = %meta.run_id, guardrail = trip.guardrail, reason = %trip.message, "a guardrail tripped");
                publisher.publish(RunEvent::GuardrailTripped {
                    guardrail: trip.guardrail.to_owned(),
                    message: trip.message,
                });
                let reply = work.agent.spec.guardrails.safe_reply().to_owned();
                publisher.publish(RunEvent::MessageDelta {
                    text: reply.clone(),
                });
                parts.push(ContentPart::Text { text: reply });
                (FinishReason::ContentFilter, None, None)
            }
        };
        if let Some((failure, message)) = &error {
            tracing::warn!(run.id = %meta.run_id, model = %work.progress.model, code = %failure, error = %message, "the run failed");
            publisher.publish(RunEvent::Error {
                code: *failure,
                message: message.clone(),
            });
        }
        let usage = work.progress.usage;
        let model = if work.progress.model.is_empty() {
            work.candidates
                .first()
                .map(|c| c.label.clone())
                .unwrap_or_default()
        } else {
            work.progress.model.clone()
        };
        let draft = MessageDraft {
            id: Some(meta.answer_id.clone()),
            parent: Parent::Message(meta.user_message.id.clone()),
            role: MessageRole::Assistant,
            content: parts,
            model: Some(model.clone()),
            finish_reason: Some(finish),
            usage: (work.progress.model_calls > 0).then_some(usage),
            latency_ms: Some(work.progress.active_ms as i64),
            structured,
            author: None,
        };
        let mut status = match finish {
            FinishReason::Cancelled => RunStatus::Cancelled,
            FinishReason::Error => RunStatus::Failed,
            _ => RunStatus::Completed,
        };
        match self
            .deps
            .service
            .append_message(&meta.tenant, &meta.conversation, draft)
            .await
        {
            Ok(message) => {
                self.keep_branch(&meta, &message);
                publisher.publish(RunEvent::MessageCompleted {
                    message: Box::new(message),
                });
            }
            Err(error) => {
                tracing::error!(run.id = %meta.run_id, error = %error, "could not store the answer");
                publisher.publish(RunEvent::Error {
                    code: RunFailure::StorageFailed,
                    message: "the answer could not be stored".into(),
                });
                status = RunStatus::Failed;
            }
        }
        // Hidden until the run's record is stored: a client that sees the end may read the
        // run (or the response it made) at once.
        publisher.append(RunEvent::RunCompleted { status, usage });
        self.control.untrack(&meta.run_id);
        let record = RunRecord {
            id: meta.run_id.clone(),
            tenant_id: meta.tenant.clone(),
            conversation_id: meta.conversation.clone(),
            status,
            agent: meta.entry_agent.clone(),
            model,
            usage,
            steps: work.progress.steps,
            events: publisher.events(),
            state: None,
            expires_at: None,
            created_at: meta.created_at,
            completed_at: Timestamp::now(),
        };
        if let Err(error) = self.deps.service.record_run(&record).await {
            tracing::error!(run.id = %meta.run_id, error = %error, "could not store the run's events");
        }
        publisher.wake();
    }

    /// Saves a paused run with what it needs to go on, then ends this part of its stream.
    async fn pause(&self, meta: Meta, work: Work, pending: Vec<Pending>, publisher: &Publisher) {
        let expires_at =
            Timestamp::now().plus_secs(work.agent.spec.approvals.expires_after_seconds);
        let paused = Paused {
            answer_id: Some(meta.answer_id.clone()),
            agent_id: work.agent.id.clone(),
            user_message_id: meta.user_message.id.clone(),
            end_user: work.context.end_user.clone(),
            progress: work.progress.clone(),
            pending: pending.clone(),
            options: work.options.clone(),
        };
        let usage = work.progress.usage;
        // The events are in the log before the record is saved, and followers are woken only
        // after it is: whoever sees `approval.required` can decide at once.
        for call in &pending {
            publisher.append(RunEvent::ApprovalRequired {
                run_id: meta.run_id.clone(),
                call_id: call.call_id.clone(),
                tool: call.name.clone(),
                arguments: call.arguments.clone(),
                approver: call.approver,
                expires_at,
            });
        }
        publisher.append(RunEvent::RunCompleted {
            status: RunStatus::AwaitingApproval,
            usage,
        });
        let record = RunRecord {
            id: meta.run_id.clone(),
            tenant_id: meta.tenant.clone(),
            conversation_id: meta.conversation.clone(),
            status: RunStatus::AwaitingApproval,
            agent: meta.entry_agent.clone(),
            model: work.progress.model.clone(),
            usage,
            steps: work.progress.steps.clone(),
            events: publisher.events(),
            state: serde_json::to_value(&paused).ok(),
            expires_at: Some(expires_at),
            created_at: meta.created_at,
            completed_at: Timestamp::now(),
        };
        self.control.untrack(&meta.run_id);
        if let Err(error) = self.deps.service.record_run(&record).await {
            // Nobody may decide a pause that was not saved: it never happened; the run fails.
            tracing::error!(run.id = %meta.run_id, error = %error, "could not save the paused run");
            publisher.discard_hidden();
            publisher.publish(RunEvent::Error {
                code: RunFailure::StorageFailed,
                message: "the run could not be saved to wait for its approval".into(),
            });
            publisher.publish(RunEvent::RunCompleted {
                status: RunStatus::Failed,
                usage,
            });
            return;
        }
        publisher.wake();
    }

    /// Keeps the branch an answer ends, for the next turn on its conversation.
    fn keep_branch(&self, meta: &Meta, answer: &Message) {
        let Some(branch) = &meta.branch else {
            return;
        };
        self.recent.put_answer(
            &meta.tenant,
            &meta.conversation,
            (branch, MAX_HISTORY as usize),
            &meta.user_message,
            answer,
        );
    }
}
