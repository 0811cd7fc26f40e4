//! What end users see of a run: the agent's answers and that a tool ran (its name, whether it
//! worked) — never tool arguments or results (unless the agent's `widget.tool_details` allows
//! them), a guardrail's reason, or an error's details (they stay in the run's trace and the
//! log). Staff (secret keys, the dashboard) see everything. Every end-user surface (the
//! widget, hosted pages, ChatKit with a visitor token, voice callers) reads runs and stored
//! messages through [`EndUserView`].

use serde_json::{Map, Value};

use crate::agent::Agent;
use crate::conversation::{BranchMessage, ContentPart, Message};
use crate::policy::Approver;
use crate::run::{FinishReason, PendingApproval, RunEvent, SequencedEvent};

/// What an end user reads instead of an error's details.
pub const GENERIC_ERROR: &str =
    "Something went wrong while answering. Please try again in a moment.";

/// The end user's view of one agent's runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndUserView {
    /// Show tools' arguments and results.
    pub tool_details: bool,
}

impl EndUserView {
    /// The view an agent's settings allow.
    pub fn of(agent: &Agent) -> Self {
        Self {
            tool_details: agent.spec.widget.tool_details,
        }
    }

    /// An event as the end user may see it (its place in the run unchanged).
    pub fn event(&self, event: SequencedEvent) -> SequencedEvent {
        SequencedEvent {
            event: self.run_event(event.event),
            ..event
        }
    }

    fn run_event(&self, event: RunEvent) -> RunEvent {
        match event {
            RunEvent::ToolStarted { call_id, name, .. } if !self.tool_details => {
                RunEvent::ToolStarted {
                    call_id,
                    name,
                    arguments: Value::Object(Map::new()),
                }
            }
            RunEvent::ToolCompleted {
                call_id,
                name,
                is_error,
                duration_ms,
                ..
            } if !self.tool_details => RunEvent::ToolCompleted {
                call_id,
                name,
                result: String::new(),
                is_error,
                duration_ms,
            },
            // A call the end user decides shows them what they approve; one for staff does not.
            RunEvent::ApprovalRequired {
                run_id,
                call_id,
                tool,
                approver: Approver::Staff,
                expires_at,
                ..
            } if !self.tool_details => RunEvent::ApprovalRequired {
                run_id,
                call_id,
                tool,
                arguments: Value::Object(Map::new()),
                approver: Approver::Staff,
                expires_at,
            },
            RunEvent::GuardrailTripped { guardrail, .. } => RunEvent::GuardrailTripped {
                guardrail,
                message: String::new(),
            },
            RunEvent::Error { code, .. } => RunEvent::Error {
                code,
                message: GENERIC_ERROR.to_owned(),
            },
            RunEvent::MessageCompleted { message } => RunEvent::MessageCompleted {
                message: Box::new(self.message(*message)),
            },
            other @ (RunEvent::RunStarted { .. }
            | RunEvent::MessageDelta { .. }
            | RunEvent::ToolStarted { .. }
            | RunEvent::ToolCompleted { .. }
            | RunEvent::Handoff { .. }
            | RunEvent::ApprovalRequired { .. }
            | RunEvent::RunCompleted { .. }) => other,
        }
    }

    /// A stored message as the end user may see it: without tool calls and results (unless
    /// allowed), and of an answer a guardrail stopped, only the safe reply.
    pub fn message(&self, mut message: Message) -> Message {
        let tripped = message.finish_reason == Some(FinishReason::ContentFilter);
        message.content.retain(|part| match part {
            ContentPart::Text { .. } => true,
            ContentPart::ToolCall { .. } | ContentPart::ToolResult { .. } => {
                self.tool_details && !tripped
            }
            _ => !tripped,
        });
        if tripped {
            message.structured = None;
        }
        // A staff reply shows its author's name and avatar, not their account.
        if let Some(author) = &mut message.author {
            author.id = None;
        }
        message
    }

    /// Calls waiting for approval as the end user may see them: a call for staff without its
    /// arguments (unless allowed).
    pub fn pending(&self, pending: Vec<PendingApproval>) -> Vec<PendingApproval> {
        pending
            .into_iter()
            .map(|mut call| {
                if call.approver == Approver::Staff && !self.tool_details {
                    call.arguments = Value::Object(Map::new());
                }
                call
            })
            .collect()
    }

    /// A page of a branch as the end user may see it.
    pub fn branch(&self, messages: Vec<BranchMessage>) -> Vec<BranchMessage> {
        messages
            .into_iter()
            .map(|mut branch| {
                branch.message = self.message(branch.message);
                branch
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{MessageRole, Usage};
    use crate::id::{ConversationId, MessageId, RunId};
    use crate::run::RunFailure;
    use crate::time::Timestamp;
    use serde_json::json;

    fn answer(finish: FinishReason) -> Message {
        Message {
            id: MessageId::new(),
            conversation_id: ConversationId::new(),
            parent_id: None,
            seq: 2,
            role: MessageRole::Assistant,
            content: vec![
                ContentPart::ToolCall {
                    id: "c1".into(),
                    name: "lookup".into(),
                    arguments: json!({"order": "A-1"}),
                },
                ContentPart::ToolResult {
                    call_id: "c1".into(),
                    output: json!("row-4242"),
                    is_error: false,
                },
                ContentPart::Citation {
                    title: "Help".into(),
                    url: "https://help.example.com".into(),
                    document_id: None,
                    section: None,
                    page: None,
                },
                ContentPart::Text {
                    text: "Shipped.".into(),
                },
            ],
            model: None,
            finish_reason: Some(finish),
            usage: Some(Usage::default()),
            latency_ms: None,
            structured: Some(json!({"internal": true})),
            created_at: Timestamp::now(),
            author: None,
        }
    }

    #[test]
    fn messages_lose_tool_parts_and_a_tripped_turn_keeps_only_its_reply() {
        let view = EndUserView::default();
        let shown = view.message(answer(FinishReason::Stop));
        assert_eq!(shown.content.len(), 2, "{:?}", shown.content);
        assert!(matches!(shown.content[0], ContentPart::Citation { .. }));
        let tripped = view.message(answer(FinishReason::ContentFilter));
        assert_eq!(
            tripped.content,
            vec![ContentPart::Text {
                text: "Shipped.".into()
            }]
        );
        assert_eq!(tripped.structured, None);
        let detailed = EndUserView { tool_details: true }.message(answer(FinishReason::Stop));
        assert_eq!(detailed.content.len(), 4);
    }

    #[test]
    fn events_hide_arguments_results_reasons_and_error_details() {
        let view = EndUserView::default();
        let seen = |event: RunEvent| {
            view.event(SequencedEvent {
                seq: 7,
                at: Timestamp::now(),
                event,
            })
        };
        let started = seen(RunEvent::ToolStarted {
            call_id: "c1".into(),
            name: "lookup".into(),
            arguments: json!({"order": "A-1"}),
        });
        assert_eq!(started.seq, 7);
        assert!(
            matches!(started.event, RunEvent::ToolStarted { arguments, .. } if arguments == json!({}))
        );
        let error = seen(RunEvent::Error {
            code: RunFailure::ModelError,
            message: "/srv/app/secret.py failed".into(),
        });
        assert_eq!(
            error.event,
            RunEvent::Error {
                code: RunFailure::ModelError,
                message: GENERIC_ERROR.into()
            }
        );
        let tripped = seen(RunEvent::GuardrailTripped {
            guardrail: "output.blocked_patterns".into(),
            message: "matches pattern 0".into(),
        });
        assert!(
            matches!(tripped.event, RunEvent::GuardrailTripped { message, .. } if message.is_empty())
        );
        // The end user sees what they are asked to approve; a call for staff stays hidden.
        let approval = |approver| {
            seen(RunEvent::ApprovalRequired {
                run_id: RunId::new(),
                call_id: "c2".into(),
                tool: "refund".into(),
                arguments: json!({"amount": 20}),
                approver,
                expires_at: Timestamp::now(),
            })
            .event
        };
        assert!(
            matches!(approval(Approver::EndUser), RunEvent::ApprovalRequired { arguments, .. } if arguments == json!({"amount": 20}))
        );
        assert!(
            matches!(approval(Approver::Staff), RunEvent::ApprovalRequired { arguments, .. } if arguments == json!({}))
        );
    }
}
