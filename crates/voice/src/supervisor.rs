//! The voice agent's own tools and the chat-supervisor pattern.
//!
//! A realtime voice agent is offered `ask_supervisor` when it has a supervisor (the text
//! agent with the business's tools and knowledge), `transfer_call` and `end_call` always,
//! and its own tools otherwise. Asking the supervisor is an ordinary run of the text agent in
//! the call's conversation (traced, billed, shown in the dashboard); its answer is what the
//! voice says next.

use frontdesk_agents::{Input, TurnOptions, TurnRequest};
use frontdesk_core::agent::Agent;
use frontdesk_core::conversation::ContentPart;
use frontdesk_core::id::{ConversationId, RunId};
use frontdesk_core::run::RunStatus;
use frontdesk_core::voice::CallToolCall;
use serde_json::{json, Value};

use crate::host::VoiceHost;

pub const ASK_SUPERVISOR: &str = "ask_supervisor";
pub const TRANSFER_CALL: &str = "transfer_call";
pub const END_CALL: &str = "end_call";

/// What the supervisor is told about its part.
const SUPERVISOR_BRIEF: &str = "You are advising a voice agent on a live phone call. The last \
message is the voice agent telling you what the caller needs. Use your tools and knowledge, \
then answer with exactly what the voice agent should say to the caller next: one to three \
short spoken sentences, no lists, no markdown, no links, no emojis. If you need something \
from the caller (a name, a time), say what to ask them.";

/// The rules every voice agent follows, after its own instructions.
fn voice_rules(supervised: bool) -> String {
    let mut rules = String::from(
        "\n\nYou are speaking on a phone call. Keep every answer short and natural, one idea \
         at a time; never read out lists, links or markdown. If the caller asks for a person, \
         or you cannot help, call transfer_call. When the caller is done, say goodbye and call \
         end_call.",
    );
    if supervised {
        rules.push_str(
            " For anything beyond greetings and small talk — facts about the business, \
             availability, bookings, the caller's account — call ask_supervisor right away with \
             what the caller needs (the line tells the caller you are checking), then say what \
             it tells you, in your own voice. Never make up facts.",
        );
    }
    rules
}

/// The realtime session's instructions.
pub fn instructions(agent: &Agent) -> String {
    let voice = &agent.spec.voice;
    format!(
        "{}{}",
        agent.spec.instructions,
        voice_rules(voice.supervisor.is_some())
    )
}

/// The call's own tools, as the Realtime API takes them.
pub fn call_tools(agent: &Agent) -> Vec<Value> {
    let mut tools = Vec::new();
    if agent.spec.voice.supervisor.is_some() {
        tools.push(json!({
            "type": "function",
            "name": ASK_SUPERVISOR,
            "description": "Ask the expert agent, which has the business's tools and knowledge, what to say next.",
            "parameters": {
                "type": "object",
                "properties": {"question": {"type": "string", "description": "What the caller needs, with the details they gave."}},
                "required": ["question"],
            },
        }));
    }
    tools.push(json!({
        "type": "function",
        "name": TRANSFER_CALL,
        "description": "Hand the call to a person from the team.",
        "parameters": {
            "type": "object",
            "properties": {"reason": {"type": "string", "description": "Why, for the person who takes over."}},
        },
    }));
    tools.push(json!({
        "type": "function",
        "name": END_CALL,
        "description": "Hang up, after saying goodbye.",
        "parameters": {"type": "object", "properties": {}},
    }));
    tools
}

/// What the supervisor said, and what its run did.
#[derive(Debug, Clone)]
pub struct Advice {
    /// What the voice says next.
    pub say: String,
    pub run_id: Option<RunId>,
    pub tools: Vec<CallToolCall>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub model: Option<String>,
}

impl Advice {
    fn only(say: impl Into<String>) -> Self {
        Self {
            say: say.into(),
            run_id: None,
            tools: Vec::new(),
            input_tokens: 0,
            output_tokens: 0,
            model: None,
        }
    }
}

/// Asks the supervisor `slug` about `question`: a run of it in the call's conversation.
pub async fn ask(
    host: &VoiceHost,
    voice_agent: &Agent,
    conversation: &ConversationId,
    slug: &str,
    question: &str,
    at_ms: u64,
) -> Advice {
    let question = question.trim();
    if question.is_empty() {
        return Advice::only("Tell the caller you did not catch that and ask them to repeat it.");
    }
    let request = TurnRequest::on(
        &voice_agent.tenant_id,
        conversation,
        Input::Send {
            text: question.to_owned(),
        },
    )
    .with_options(TurnOptions {
        agent: Some(slug.to_owned()),
        instructions: Some(SUPERVISOR_BRIEF.to_owned()),
        ..TurnOptions::default()
    });
    let outcome =
        match host.runner().run_to_end(request).await {
            Ok(outcome) => outcome,
            Err(frontdesk_core::Error::ForPeople { .. }) => return Advice::only(
                "A person from the team is handling this conversation. Tell the caller someone \
                 will get back to them shortly.",
            ),
            Err(error) => {
                tracing::warn!(%error, supervisor = slug, "the supervisor could not be asked");
                return Advice::only(
                    "You cannot check that right now. Apologise, and offer to transfer the caller \
                 to the team or to take a message.",
                );
            }
        };
    let mut tools = Vec::new();
    let mut say = String::new();
    if let Some(message) = &outcome.message {
        for part in &message.content {
            match part {
                ContentPart::ToolCall {
                    id,
                    name,
                    arguments,
                } => tools.push(CallToolCall {
                    name: name.clone(),
                    arguments: arguments.clone(),
                    output: message
                        .content
                        .iter()
                        .find_map(|p| match p {
                            ContentPart::ToolResult { call_id, output, .. } if call_id == id => {
                                Some(match output {
                                    Value::String(s) => s.clone(),
                                    other => other.to_string(),
                                })
                            }
                            _ => None,
                        })
                        .unwrap_or_default(),
                    is_error: message.content.iter().any(|p| {
                        matches!(p, ContentPart::ToolResult { call_id, is_error: true, .. } if call_id == id)
                    }),
                    agent: slug.to_owned(),
                    run_id: Some(outcome.run_id.clone()),
                    at_ms,
                }),
                ContentPart::Text { text } => say.push_str(text),
                _ => {}
            }
        }
    }
    let say = match outcome.status {
        RunStatus::AwaitingApproval => "That needs a team member's approval. Tell the caller the \
            team will confirm it shortly."
            .to_owned(),
        _ if say.trim().is_empty() => "You could not find an answer. Apologise and offer to \
            transfer the caller to the team."
            .to_owned(),
        _ => say.trim().to_owned(),
    };
    Advice {
        say,
        run_id: Some(outcome.run_id.clone()),
        tools,
        input_tokens: outcome.usage.prompt_tokens,
        output_tokens: outcome.usage.completion_tokens,
        model: outcome.message.as_ref().and_then(|m| m.model.clone()),
    }
}
