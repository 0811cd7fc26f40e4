//! What the model sees of a conversation: the agent's instructions, then as much of the
//! branch as fits the model's context window, newest first kept, oldest dropped first. The
//! instructions are never dropped, and the newest message always goes (or the turn is
//! refused with a clear error rather than sent to fail upstream).

use frontdesk_core::agent::AgentSpec;
use std::collections::HashSet;

use frontdesk_core::conversation::{ContentPart, Message, MessageRole};
use frontdesk_core::model::{ModelMessage, ModelRequest, ToolCall};
use frontdesk_core::{Error, Result};
use frontdesk_models::context::estimate_tokens;
use serde_json::Value;

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
    // Each stored message becomes one or more model messages (an answer that used tools is
    // its calls, their results and the text), kept or dropped as a whole.
    let mut kept: Vec<Vec<ModelMessage>> = Vec::new();
    let mut used = 0u32;
    let mut dropped = 0usize;
    // Consecutive answers (an answer, the client's tool results, the answer that went on)
    // expand together, so a call and its result in different messages stay paired.
    let mut entries: Vec<Vec<ModelMessage>> = Vec::new();
    let mut answer: Vec<ContentPart> = Vec::new();
    for m in branch {
        // A turn a guardrail stopped is left out: the model never sees words that tripped it.
        if m.role == MessageRole::Assistant
            && m.finish_reason == Some(frontdesk_core::run::FinishReason::ContentFilter)
        {
            if answer.is_empty()
                && matches!(
                    entries.last().and_then(|g| g.first()),
                    Some(ModelMessage::User { .. })
                )
            {
                entries.pop();
            }
            answer.clear();
            continue;
        }
        match m.role {
            // A staff member's reply is the assistant's side, marked as theirs.
            MessageRole::Assistant => match &m.author {
                Some(author) => answer.push(ContentPart::Text {
                    text: format!("[{} from the team wrote:] {}", author.name, m.text()),
                }),
                None => answer.extend(m.content.iter().cloned()),
            },
            MessageRole::User => {
                if !answer.is_empty() {
                    entries.push(expand(&std::mem::take(&mut answer)));
                }
                entries.push(vec![ModelMessage::User { text: m.text() }]);
            }
            MessageRole::System | MessageRole::Tool => {}
        }
    }
    if !answer.is_empty() {
        entries.push(expand(&answer));
    }
    if let Some(text) = pending {
        entries.push(vec![ModelMessage::User {
            text: text.to_owned(),
        }]);
    }
    for (idx, group) in entries.into_iter().enumerate().rev() {
        if group.is_empty() {
            continue;
        }
        let cost: u32 = group.iter().map(message_cost).sum();
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
        kept.push(group);
    }
    // Start with a user message: models (Anthropic's among them) expect one first.
    while kept
        .last()
        .is_some_and(|g| !matches!(g.first(), Some(ModelMessage::User { .. })))
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
    messages.extend(kept.into_iter().rev().flatten());
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

fn message_cost(message: &ModelMessage) -> u32 {
    let text_cost = match message {
        ModelMessage::System { text } | ModelMessage::User { text } => estimate_tokens(text),
        ModelMessage::Assistant { text, tool_calls } => {
            estimate_tokens(text)
                + tool_calls
                    .iter()
                    .map(|c| estimate_tokens(&c.name) + estimate_tokens(&c.arguments))
                    .sum::<u32>()
        }
        ModelMessage::Tool { content, .. } => estimate_tokens(content),
    };
    text_cost + PER_MESSAGE
}

/// What a model sees of an answer's parts: text, then each step's tool calls with their
/// results, in order. Calls without a result (a run stopped while they ran) are left out, as
/// models refuse a call that was never answered; handoff notes and images are not sent.
pub fn expand(parts: &[ContentPart]) -> Vec<ModelMessage> {
    let answered: HashSet<&str> = parts
        .iter()
        .filter_map(|p| match p {
            ContentPart::ToolResult { call_id, .. } => Some(call_id.as_str()),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    let mut text = String::new();
    let mut calls: Vec<ToolCall> = Vec::new();
    let flush = |out: &mut Vec<ModelMessage>, text: &mut String, calls: &mut Vec<ToolCall>| {
        if !text.is_empty() || !calls.is_empty() {
            out.push(ModelMessage::Assistant {
                text: std::mem::take(text),
                tool_calls: std::mem::take(calls),
            });
        }
    };
    for part in parts {
        match part {
            ContentPart::Text { text: piece } => {
                if !calls.is_empty() {
                    flush(&mut out, &mut text, &mut calls);
                }
                if !text.is_empty() {
                    text.push_str("\n\n");
                }
                text.push_str(piece);
            }
            ContentPart::ToolCall {
                id,
                name,
                arguments,
            } if answered.contains(id.as_str()) => calls.push(ToolCall {
                id: id.clone(),
                name: name.clone(),
                arguments: match arguments {
                    Value::String(raw) => raw.clone(),
                    other => other.to_string(),
                },
            }),
            ContentPart::ToolResult {
                call_id, output, ..
            } => {
                flush(&mut out, &mut text, &mut calls);
                out.push(ModelMessage::Tool {
                    call_id: call_id.clone(),
                    content: match output {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                });
            }
            ContentPart::ToolCall { .. }
            | ContentPart::Handoff { .. }
            | ContentPart::Citation { .. }
            | ContentPart::ImageUrl { .. } => {}
        }
    }
    flush(&mut out, &mut text, &mut calls);
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use frontdesk_core::id::{ConversationId, MessageId};
    use frontdesk_core::time::Timestamp;

    /// A text message of `role` (for tests here and elsewhere in the crate).
    pub(crate) fn message(role: MessageRole, text: &str) -> Message {
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
            structured: None,
            created_at: Timestamp::now(),
            author: None,
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

    #[test]
    fn answers_with_tools_expand_to_calls_results_and_text() {
        let parts = vec![
            ContentPart::Text {
                text: "Checking.".into(),
            },
            ContentPart::ToolCall {
                id: "c1".into(),
                name: "lookup".into(),
                arguments: serde_json::json!({"q": 1}),
            },
            ContentPart::ToolCall {
                id: "c2".into(),
                name: "never_ran".into(),
                arguments: serde_json::json!({}),
            },
            ContentPart::ToolResult {
                call_id: "c1".into(),
                output: Value::String("found".into()),
                is_error: false,
            },
            ContentPart::Handoff {
                from: "a".into(),
                to: "b".into(),
            },
            ContentPart::Text {
                text: "Here it is.".into(),
            },
        ];
        let expanded = expand(&parts);
        assert_eq!(
            expanded,
            vec![
                ModelMessage::Assistant {
                    text: "Checking.".into(),
                    tool_calls: vec![ToolCall {
                        id: "c1".into(),
                        name: "lookup".into(),
                        arguments: "{\"q\":1}".into()
                    }]
                },
                ModelMessage::Tool {
                    call_id: "c1".into(),
                    content: "found".into()
                },
                ModelMessage::Assistant {
                    text: "Here it is.".into(),
                    tool_calls: vec![]
                },
            ]
        );
    }
}
