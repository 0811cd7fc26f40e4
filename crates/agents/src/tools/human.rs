//! `transfer_to_human`: the agent hands the conversation to the tenant's people. While the
//! team is in, the conversation waits for a person and the run ends with the agent's waiting
//! message (the model is not asked again); while it is away, the model hears so and goes on
//! (it may take the customer's contact details).

use async_trait::async_trait;
use frontdesk_core::handoff::HumanSettings;
use frontdesk_core::model::ToolSpec;
use frontdesk_core::tool::{Tool, ToolContext, ToolOutput};
use serde_json::{json, Value};

use super::ToolEnv;

pub const TRANSFER_TO_HUMAN: &str = "transfer_to_human";

pub(crate) struct TransferToHuman {
    spec: ToolSpec,
    env: ToolEnv,
    settings: HumanSettings,
}

impl TransferToHuman {
    pub(crate) fn new(env: &ToolEnv, settings: &HumanSettings) -> Self {
        Self {
            spec: ToolSpec {
                name: TRANSFER_TO_HUMAN.into(),
                description: "Hand the conversation to a person on the team. Use it when the customer asks for a human, or when you cannot help and a person can. Say why in `reason` (staff read it)."
                    .into(),
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "reason": {
                            "type": "string",
                            "description": "Why a person should take over, in one sentence."
                        }
                    },
                    "additionalProperties": false
                }),
            },
            env: env.clone(),
            settings: settings.clone(),
        }
    }
}

#[async_trait]
impl Tool for TransferToHuman {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, context: &ToolContext, arguments: Value) -> ToolOutput {
        let reason = arguments
            .get("reason")
            .and_then(Value::as_str)
            .map(|r| frontdesk_core::validate::truncate(r.trim(), 2_000))
            .filter(|r| !r.is_empty());
        match crate::desk::ask(
            &self.env,
            &context.tenant,
            &context.conversation,
            &self.settings,
            "agent",
            reason.as_deref(),
        )
        .await
        {
            Ok(crate::desk::Request::Waiting { .. }) => {
                ToolOutput::ok("The conversation now waits for a person on the team.")
                    .ending_turn(self.settings.waiting_message())
            }
            Ok(crate::desk::Request::Away) => ToolOutput::ok(crate::desk::TEAM_AWAY),
            Err(error) => {
                tracing::warn!(conversation = %context.conversation, error = %error, "transfer_to_human failed");
                ToolOutput::error(
                    "The conversation could not be handed to the team just now. Apologise and help as well as you can.",
                )
            }
        }
    }
}
