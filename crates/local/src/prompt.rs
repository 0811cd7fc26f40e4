//! The prompt of a chat request in the model's own template, tokenized so that what users
//! and tools wrote stays plain text: a `<|im_end|>` typed by a visitor is the characters
//! `<|im_end|>`, never the control token.
//!
//! The template is rendered with a unique marker in place of each message's content; the
//! text between markers (the template's own scaffolding) is tokenized with special tokens
//! parsed, the contents without.

use frontdesk_core::model::{ModelMessage, ModelRequest};
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::token::LlamaToken;

use crate::LocalError;

/// A marker no message contains (checked), standing for message `idx`'s content.
fn marker(nonce: u64, idx: usize) -> String {
    format!("\u{1}fdm{nonce:016x}_{idx}\u{1}")
}

/// Role and content of each message as the template sees them.
fn turns(request: &ModelRequest, extra_system: Option<&str>) -> Vec<(&'static str, String)> {
    let mut turns = Vec::with_capacity(request.messages.len() + 1);
    for message in &request.messages {
        match message {
            ModelMessage::System { text } => turns.push(("system", text.clone())),
            ModelMessage::User { text } => turns.push(("user", text.clone())),
            ModelMessage::Assistant { text, tool_calls } => {
                let mut content = text.clone();
                for call in tool_calls {
                    content.push_str(&format!(
                        "\n{{\"tool\": {}, \"arguments\": {}}}",
                        serde_json::Value::String(call.name.clone()),
                        call.arguments
                    ));
                }
                turns.push(("assistant", content));
            }
            ModelMessage::Tool { call_id, content } => {
                turns.push(("user", format!("Result of tool call {call_id}:\n{content}")));
            }
        }
    }
    if let Some(extra) = extra_system {
        match turns.first_mut() {
            Some(("system", text)) => {
                text.push_str("\n\n");
                text.push_str(extra);
            }
            _ => turns.insert(0, ("system", extra.to_owned())),
        }
    }
    turns
}

/// The prompt's tokens; `extra_system` is added to the system message (the output's shape).
pub fn tokenize(
    model: &LlamaModel,
    request: &ModelRequest,
    extra_system: Option<&str>,
) -> Result<Vec<LlamaToken>, LocalError> {
    let turns = turns(request, extra_system);
    let mut nonce = 0x5eed_f00d_u64;
    while turns
        .iter()
        .any(|(_, text)| text.contains(&format!("fdm{nonce:016x}")))
    {
        nonce = nonce
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
    }
    let chat = turns
        .iter()
        .enumerate()
        .map(|(idx, (role, _))| LlamaChatMessage::new((*role).to_owned(), marker(nonce, idx)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LocalError::Prompt(e.to_string()))?;
    let template = model
        .chat_template(None)
        .map_err(|e| LocalError::Prompt(format!("the model has no chat template: {e}")))?;
    let rendered = model
        .apply_chat_template(&template, &chat, true)
        .map_err(|e| LocalError::Prompt(format!("the chat template failed: {e}")))?;
    let vocab = model.vocab();
    let mut tokens = Vec::new();
    let mut rest = rendered.as_str();
    let mut first = true;
    for (idx, (_, content)) in turns.iter().enumerate() {
        let mark = marker(nonce, idx);
        let Some(at) = rest.find(&mark) else {
            // A template that drops a message (some drop system prompts): nothing to place.
            continue;
        };
        tokens.extend(vocab.tokenize(&rest.as_bytes()[..at], first, true));
        first = false;
        tokens.extend(vocab.tokenize(content.as_bytes(), false, false));
        rest = &rest[at + mark.len()..];
    }
    tokens.extend(vocab.tokenize(rest.as_bytes(), first, true));
    Ok(tokens)
}
