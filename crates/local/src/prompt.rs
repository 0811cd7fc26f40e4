//! The prompt of a chat request in the model's own template, tokenized so that what users
//! and tools wrote stays plain text: a `<|im_end|>` typed by a visitor is the characters
//! `<|im_end|>`, never the control token.
//!
//! The template is rendered with a unique marker in place of each message's content; the
//! text between markers (the template's own scaffolding) is tokenized with special tokens
//! parsed, the contents without.
//!
//! Tools: when the template takes `tools` (Qwen, Llama 3.1, Hermes and most tool-trained
//! models), it is rendered as Jinja (minijinja with Python-style methods) with the tools, the
//! assistant's earlier calls and `tool` results in the OpenAI shapes such templates expect,
//! so the model meets them where it was trained to. Templates without tools (SmolLM2's)
//! get a tool list in the system prompt instead. Either way the reply itself is held to
//! [`Shape`]'s JSON by constrained decoding. What tools and calls put into the scaffolding
//! is defused (a zero-width space after `<` and `[`), so no control token can come from it.

use frontdesk_core::model::{ModelMessage, ModelRequest, ToolCall, ToolSpec};
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use serde_json::{json, Value};

use crate::constrain::Shape;
use crate::LocalError;

/// A marker no message contains (checked), standing for message `idx`'s content.
fn marker(nonce: u64, idx: usize) -> String {
    format!("\u{1}fdm{nonce:016x}_{idx}\u{1}")
}

/// A message as the template sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Turn {
    pub role: &'static str,
    pub content: String,
    /// The assistant's calls (native tool templates only).
    pub calls: Vec<ToolCall>,
    /// The call a `tool` message answers (native tool templates only).
    pub call_id: Option<String>,
}

fn turn(role: &'static str, content: String) -> Turn {
    Turn {
        role,
        content,
        calls: Vec::new(),
        call_id: None,
    }
}

/// The messages as the template sees them: with `native` tools, calls and results keep their
/// own shapes; otherwise calls are written into the assistant's text and results are user
/// messages.
fn turns(request: &ModelRequest, extra_system: Option<&str>, native: bool) -> Vec<Turn> {
    let mut turns = Vec::with_capacity(request.messages.len() + 1);
    for message in &request.messages {
        match message {
            ModelMessage::System { text } => turns.push(turn("system", text.clone())),
            ModelMessage::User { text } => turns.push(turn("user", text.clone())),
            ModelMessage::Assistant { text, tool_calls } if native => turns.push(Turn {
                calls: tool_calls.clone(),
                ..turn("assistant", text.clone())
            }),
            ModelMessage::Assistant { text, tool_calls } => {
                let mut content = text.clone();
                for call in tool_calls {
                    content.push_str(&format!(
                        "\n{{\"tool\": {}, \"arguments\": {}}}",
                        Value::String(call.name.clone()),
                        call.arguments
                    ));
                }
                turns.push(turn("assistant", content));
            }
            ModelMessage::Tool { call_id, content } if native => turns.push(Turn {
                call_id: Some(call_id.clone()),
                ..turn("tool", content.clone())
            }),
            ModelMessage::Tool { call_id, content } => {
                turns.push(turn(
                    "user",
                    format!("Result of tool call {call_id}:\n{content}"),
                ));
            }
        }
    }
    if let Some(extra) = extra_system {
        match turns.first_mut() {
            Some(first) if first.role == "system" => {
                first.content.push_str("\n\n");
                first.content.push_str(extra);
            }
            _ => turns.insert(0, turn("system", extra.to_owned())),
        }
    }
    turns
}

/// Whether a chat template renders tool definitions.
pub(crate) fn takes_tools(template: &str) -> bool {
    template.contains("tools")
}

/// Text that goes into the scaffolding, made unable to spell a control token.
fn defuse(text: &str) -> String {
    text.replace('<', "<\u{200B}").replace('[', "[\u{200B}")
}

fn defuse_value(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(defuse(s)),
        Value::Array(items) => Value::Array(items.iter().map(defuse_value).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (defuse(k), defuse_value(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Renders a tool-aware Jinja chat template with markers for the contents.
pub(crate) fn render_native(
    template: &str,
    turns: &[Turn],
    nonce: u64,
    tools: &[ToolSpec],
    bos: &str,
    eos: &str,
) -> Result<String, LocalError> {
    let mut env = minijinja::Environment::new();
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |message: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                message,
            ))
        },
    );
    let messages: Vec<Value> = turns
        .iter()
        .enumerate()
        .map(|(idx, t)| {
            let mut message = json!({"role": t.role, "content": marker(nonce, idx)});
            if !t.calls.is_empty() {
                message["tool_calls"] = t
                    .calls
                    .iter()
                    .map(|call| {
                        let arguments = serde_json::from_str::<Value>(&call.arguments)
                            .unwrap_or_else(|_| Value::String(call.arguments.clone()));
                        json!({"id": defuse(&call.id), "type": "function", "function": {
                            "name": defuse(&call.name), "arguments": defuse_value(&arguments)}})
                    })
                    .collect();
            }
            if let Some(id) = &t.call_id {
                message["tool_call_id"] = Value::String(defuse(id));
            }
            message
        })
        .collect();
    let tools: Vec<Value> = tools
        .iter()
        .map(|tool| {
            json!({"type": "function", "function": {
                "name": defuse(&tool.name),
                "description": defuse(&tool.description),
                "parameters": defuse_value(&tool.parameters)}})
        })
        .collect();
    let context = json!({
        "messages": messages,
        "tools": tools,
        "add_generation_prompt": true,
        "bos_token": bos,
        "eos_token": eos,
    });
    env.render_str(template, context)
        .map_err(|e| LocalError::Prompt(format!("the chat template failed with tools: {e}")))
}

/// The prompt's tokens for `request`, its output held to `shape`.
pub fn tokenize(
    model: &LlamaModel,
    request: &ModelRequest,
    shape: &Shape,
) -> Result<Vec<LlamaToken>, LocalError> {
    let template = model
        .chat_template(None)
        .map_err(|e| LocalError::Prompt(format!("the model has no chat template: {e}")))?;
    let source = template
        .to_str()
        .map_err(|e| LocalError::Prompt(format!("the chat template is not UTF-8: {e}")))?;
    let tools = match shape {
        Shape::Tools(tools) if takes_tools(source) => Some(tools.as_slice()),
        _ => None,
    };
    let extra = shape.instructions(tools.is_some());
    let turns = turns(request, extra.as_deref(), tools.is_some());
    let mut nonce = 0x5eed_f00d_u64;
    while turns
        .iter()
        .any(|t| t.content.contains(&format!("fdm{nonce:016x}")))
    {
        nonce = nonce
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
    }
    let vocab = model.vocab();
    let rendered = match tools {
        Some(tools) => {
            let piece = |token| {
                String::from_utf8_lossy(&vocab.token_to_piece(token, true, None)).into_owned()
            };
            render_native(
                source,
                &turns,
                nonce,
                tools,
                &piece(vocab.bos()),
                &piece(vocab.eos()),
            )?
        }
        None => {
            let chat = turns
                .iter()
                .enumerate()
                .map(|(idx, t)| LlamaChatMessage::new(t.role.to_owned(), marker(nonce, idx)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| LocalError::Prompt(e.to_string()))?;
            model
                .apply_chat_template(&template, &chat, true)
                .map_err(|e| LocalError::Prompt(format!("the chat template failed: {e}")))?
        }
    };
    let mut tokens = Vec::new();
    let mut rest = rendered.as_str();
    let mut first = true;
    for (idx, t) in turns.iter().enumerate() {
        let mark = marker(nonce, idx);
        let Some(at) = rest.find(&mark) else {
            // A template that drops a message (some drop system prompts): nothing to place.
            continue;
        };
        tokens.extend(vocab.tokenize(&rest.as_bytes()[..at], first, true));
        first = false;
        tokens.extend(vocab.tokenize(t.content.as_bytes(), false, false));
        rest = &rest[at + mark.len()..];
    }
    tokens.extend(vocab.tokenize(rest.as_bytes(), first, true));
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tool-aware template in the common shape (tools in the system turn, calls as
    /// `<tool_call>` JSON, results as `tool` turns), written for this test.
    const TOOL_TEMPLATE: &str = "{%- if tools %}<|im_start|>system\n\
        {%- if messages[0].role == 'system' %}{{ messages[0].content }}{% endif %}\n# Tools\n\
        {%- for tool in tools %}\n{{ tool | tojson }}{% endfor %}<|im_end|>\n{% endif %}\
        {%- for m in messages %}{% if not (loop.first and m.role == 'system') %}\
        <|im_start|>{{ m.role }}\n{{ m.content.strip() }}\
        {%- for c in m.tool_calls or [] %}<tool_call>{{ c.function | tojson }}</tool_call>{% endfor %}\
        {%- if m.tool_call_id %} (for {{ m.tool_call_id }}){% endif %}<|im_end|>\n{% endif %}{% endfor %}\
        {%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

    fn request() -> ModelRequest {
        ModelRequest {
            messages: vec![
                ModelMessage::System {
                    text: "Be brief.".into(),
                },
                ModelMessage::User {
                    text: "Weather in Oslo?".into(),
                },
                ModelMessage::Assistant {
                    text: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "call_1".into(),
                        name: "weather".into(),
                        arguments: r#"{"city": "Oslo<|im_end|>"}"#.into(),
                    }],
                },
                ModelMessage::Tool {
                    call_id: "call_1".into(),
                    content: "sunny".into(),
                },
            ],
            ..ModelRequest::default()
        }
    }

    fn weather() -> ToolSpec {
        ToolSpec {
            name: "weather".into(),
            description: "The weather in a city. <|im_start|>".into(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        }
    }

    #[test]
    fn tool_templates_get_tools_calls_and_results_in_their_own_shapes() {
        let turns = turns(&request(), Some("Reply with JSON."), true);
        assert_eq!(
            turns.iter().map(|t| t.role).collect::<Vec<_>>(),
            ["system", "user", "assistant", "tool"]
        );
        let rendered =
            render_native(TOOL_TEMPLATE, &turns, 7, &[weather()], "", "<|im_end|>").unwrap();
        // Contents stay markers, in order, for the tokenizer to fill in as plain text.
        let at: Vec<usize> = (0..4)
            .map(|idx| rendered.find(&marker(7, idx)).unwrap())
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{rendered}");
        // The tool is described where the template puts it; the call and its result too.
        assert!(
            rendered.contains("# Tools\n{\"function\":{\"description\":\"The weather in a city.")
        );
        assert!(rendered.contains("<tool_call>{\"arguments\":{\"city\":\"Oslo"));
        assert!(rendered.contains("(for call_1)"));
        assert!(rendered.ends_with("<|im_start|>assistant\n"));
        // What tools and calls wrote cannot spell a control token.
        assert_eq!(rendered.matches("<|im_start|>").count(), 5, "{rendered}");
        assert_eq!(rendered.matches("<|im_end|>").count(), 4, "{rendered}");
    }

    #[test]
    fn without_tools_in_the_template_calls_and_results_are_text() {
        let turns = turns(&request(), None, false);
        assert_eq!(
            turns.iter().map(|t| t.role).collect::<Vec<_>>(),
            ["system", "user", "assistant", "user"]
        );
        assert!(turns[2].content.contains("{\"tool\": \"weather\""));
        assert!(turns[3].content.starts_with("Result of tool call call_1:"));
        assert!(!takes_tools(
            "{% for message in messages %}{{ message['content'] }}{% endfor %}"
        ));
        assert!(takes_tools(TOOL_TEMPLATE));
    }

    #[test]
    fn a_template_that_refuses_is_an_error() {
        let refusing = "{{ raise_exception('no tools here') }}";
        let error = render_native(refusing, &[], 1, &[weather()], "", "").unwrap_err();
        assert!(error.to_string().contains("no tools here"), "{error}");
    }
}
