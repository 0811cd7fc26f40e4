//! What a caller adds to a turn beyond the agent's config: tools it runs itself and
//! instructions. Kept with a paused run, so it goes on after its approvals with the same.

use frontdesk_core::model::ToolSpec;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a caller adds to a turn beyond the agent's config. Kept with a paused run, so the
/// run goes on after its approvals with the same.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TurnOptions {
    /// Tools the client runs itself: offered to the model beside the agent's; a call of one
    /// ends the run with `finish_reason: tool_calls`, the call left for the client.
    pub client_tools: Vec<ToolSpec>,
    /// Instructions the client sends, after the agent's own.
    pub instructions: Option<String>,
    /// Context for this turn, over the conversation's metadata (the caller's, and an
    /// identified end user's claims last): see `frontdesk_core::context`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub context: Map<String, Value>,
    /// What an end user's page says (the widget's `context`, a visitor's ChatKit metadata):
    /// not to be trusted, so it lies beneath the conversation's metadata and never replaces
    /// what the tenant set.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub page_context: Map<String, Value>,
    /// Another `provider/model` for the conversation's own agent this turn, without its
    /// fallbacks (the playground compares answers this way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// A saved version of the conversation's agent to run the turn with, in place of the
    /// current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<i64>,
    /// Another agent of the tenant answers this turn in the conversation (by slug): a voice
    /// agent's supervisor, asked what to say on a call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

impl TurnOptions {
    /// Options with the client's instructions: its system texts joined, none when blank.
    pub fn with_instructions<S: AsRef<str>>(mut self, texts: &[S]) -> Self {
        let joined = texts
            .iter()
            .map(|t| t.as_ref().trim())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("\n\n");
        self.instructions = (!joined.is_empty()).then_some(joined);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_instructions_are_joined_once_and_blank_ones_dropped() {
        let options = TurnOptions::default().with_instructions(&["Be brief.", "  ", "Use French."]);
        assert_eq!(
            options.instructions.as_deref(),
            Some("Be brief.\n\nUse French.")
        );
        let none = TurnOptions::default().with_instructions(&[" "]);
        assert_eq!(none.instructions, None);
    }
}
