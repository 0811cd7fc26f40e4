//! What the model sees of a conversation: the agent's instructions, then as much of the
//! branch as fits the model's context window, newest first kept, oldest dropped first. The
//! instructions are never dropped, and the newest message always goes (or the turn is
//! refused with a clear error rather than sent to fail upstream).

use frontdesk_core::agent::AgentSpec;
use frontdesk_core::conversation::{Message, MessageRole};
use frontdesk_core::model::{ModelMessage, ModelRequest};
use frontdesk_core::{Error, Result};
use frontdesk_models::context::estimate_tokens;

/// Tokens a message costs beyond its text (role, separators).
const PER_MESSAGE: u32 = 4;

/// The answer's share of the window when the agent sets no `max_tokens`.
fn reserve(spec: &AgentSpec, window: u32) -> u32 {
    spec.max_tokens.unwrap_or_else(|| (window / 4).min(4096))
}

/// The request for a turn: the branch (oldest first), then `pending`, the new user message
/// when it is not stored yet (so that one that cannot fit is refused before it is stored).
/// Returns it with how many earlier messages did not fit.
pub fn model_request(
    spec: &AgentSpec,
    branch: &[Message],
    pending: Option<&str>,
    window: u32,
) -> Result<(ModelRequest, usize)> {
    let instructions = spec.instructions.trim();
    let fixed = if instructions.is_empty() {
        0
    } else {
        estimate_tokens(instructions) + PER_MESSAGE
    };
    let budget = window
        .checked_sub(reserve(spec, window))
        .and_then(|left| left.checked_sub(fixed))
        .ok_or_else(|| Error::Conflict {
            code: "context_length_exceeded",
            message: format!(
                "the agent's instructions and max_tokens leave no room in the model's context window ({window} tokens)"
            ),
        })?;
    let mut kept: Vec<(ModelMessage, u32)> = Vec::new();
    let mut used = 0u32;
    let mut dropped = 0usize;
    let entries = branch
        .iter()
        .map(|m| (m.role, m.text()))
        .chain(pending.map(|text| (MessageRole::User, text.to_owned())));
    let entries: Vec<(MessageRole, String)> = entries.collect();
    for (idx, (role, text)) in entries.into_iter().enumerate().rev() {
        let cost = estimate_tokens(&text) + PER_MESSAGE;
        let model_message = match role {
            MessageRole::User => ModelMessage::User { text },
            MessageRole::Assistant if !text.is_empty() => ModelMessage::Assistant {
                text,
                tool_calls: Vec::new(),
            },
            MessageRole::Assistant | MessageRole::System | MessageRole::Tool => continue,
        };
        if used.saturating_add(cost) > budget {
            if kept.is_empty() {
                return Err(Error::invalid(
                    "content",
                    format!(
                        "the message is too long for the agent's model: about {cost} tokens, and {budget} fit"
                    ),
                ));
            }
            dropped = idx + 1;
            break;
        }
        used += cost;
        kept.push((model_message, cost));
    }
    // Start with a user message: models (Anthropic's among them) expect one first.
    while kept
        .last()
        .is_some_and(|(m, _)| !matches!(m, ModelMessage::User { .. }))
    {
        kept.pop();
        dropped += 1;
    }
    let mut messages = Vec::with_capacity(kept.len() + 1);
    if !instructions.is_empty() {
        messages.push(ModelMessage::System {
            text: spec.instructions.clone(),
        });
    }
    messages.extend(kept.into_iter().rev().map(|(m, _)| m));
    Ok((
        ModelRequest {
            model: String::new(),
            messages,
            tools: Vec::new(),
            output_schema: spec.output_schema.clone(),
            temperature: spec.temperature,
            top_p: spec.top_p,
            max_tokens: spec.max_tokens,
            api_key: None,
        },
        dropped,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_core::conversation::ContentPart;
    use frontdesk_core::id::{ConversationId, MessageId};
    use frontdesk_core::time::Timestamp;

    fn message(role: MessageRole, text: &str) -> Message {
        Message {
            id: MessageId::new(),
            conversation_id: ConversationId::new(),
            parent_id: None,
            seq: 1,
            role,
            content: vec![ContentPart::Text { text: text.into() }],
            model: None,
            finish_reason: None,
            usage: None,
            latency_ms: None,
            created_at: Timestamp::now(),
        }
    }

    fn spec(instructions: &str, max_tokens: Option<u32>) -> AgentSpec {
        let mut spec: AgentSpec = serde_json::from_value(serde_json::json!({
            "slug": "a", "name": "A", "model": "openai/gpt-4.1-mini"
        }))
        .unwrap();
        spec.instructions = instructions.into();
        spec.max_tokens = max_tokens;
        spec
    }

    #[test]
    fn oldest_turns_go_first_and_instructions_stay() {
        // Each 30-byte message costs 10 + 4 tokens; the window leaves room for three.
        let line = "x".repeat(30);
        let branch: Vec<Message> = (0..7)
            .map(|n| {
                let role = if n % 2 == 0 {
                    MessageRole::User
                } else {
                    MessageRole::Assistant
                };
                message(role, &format!("{n}{}", &line[1..]))
            })
            .collect();
        let first_chars = |request: &ModelRequest| -> Vec<String> {
            request.messages[1..]
                .iter()
                .map(|m| match m {
                    ModelMessage::User { text } | ModelMessage::Assistant { text, .. } => {
                        text[..1].to_owned()
                    }
                    _ => String::new(),
                })
                .collect()
        };
        let spec = spec("Be kind.", Some(10));
        // Instructions cost 3 + 4 = 7 and the answer 10: a window of 59 leaves 42, room
        // for the three newest messages.
        let (request, dropped) = model_request(&spec, &branch, None, 59).unwrap();
        assert!(
            matches!(&request.messages[0], ModelMessage::System { text } if text == "Be kind.")
        );
        assert_eq!(first_chars(&request), ["4", "5", "6"]);
        assert_eq!(dropped, 4);
        // Room for two: answer 5 and question 6; the history must start with a question.
        let (request, dropped) = model_request(&spec, &branch, None, 45).unwrap();
        assert_eq!(first_chars(&request), ["6"]);
        assert_eq!(dropped, 6);

        // Everything fits in a big window.
        let (all, none) = model_request(&spec, &branch, None, 100_000).unwrap();
        assert_eq!((all.messages.len(), none), (8, 0));
    }

    #[test]
    fn a_message_that_cannot_fit_is_refused_clearly() {
        let long = "y".repeat(3000);
        let error = model_request(&spec("", Some(100)), &[], Some(&long), 500).unwrap_err();
        assert!(error.to_string().contains("too long"), "{error}");
        let branch = vec![message(MessageRole::User, "hi")];
        let error =
            model_request(&spec(&"z".repeat(3000), Some(100)), &branch, None, 500).unwrap_err();
        assert!(error.to_string().contains("instructions"), "{error}");
    }
}
