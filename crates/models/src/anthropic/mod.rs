//! Anthropic Messages, streaming (`ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`).

pub mod wire;

use std::collections::HashMap;

use async_trait::async_trait;
use frontdesk_core::conversation::Usage;
use frontdesk_core::model::{ModelError, ModelEvent, ModelProvider, ModelRequest, ModelStream};
use frontdesk_core::run::FinishReason;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::http::{Connections, HttpSettings};
use crate::sse::SseEvent;
use crate::streaming::{self, EventParser, Flow};
use crate::Timeouts;

/// The API version this provider speaks.
const API_VERSION: &str = "2023-06-01";

/// An Anthropic Messages endpoint.
pub struct Anthropic {
    http: Connections,
    base_url: String,
    api_key: Option<SecretString>,
    timeouts: Timeouts,
}

impl std::fmt::Debug for Anthropic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anthropic")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Anthropic {
    /// `base_url` is the API host (`https://api.anthropic.com`); requests go to `/v1/messages`.
    pub fn new(
        base_url: &str,
        api_key: Option<SecretString>,
        http: impl Into<HttpSettings>,
    ) -> Result<Self, ModelError> {
        let http: HttpSettings = http.into();
        let base_url = base_url.trim_end_matches('/');
        Ok(Self {
            http: Connections::new(base_url, http)?,
            base_url: base_url.to_owned(),
            api_key,
            timeouts: http.timeouts,
        })
    }
}

#[async_trait]
impl ModelProvider for Anthropic {
    async fn stream(&self, request: ModelRequest) -> Result<ModelStream, ModelError> {
        let started = Instant::now();
        let key = match (&request.api_key, &self.api_key) {
            (Some(key), _) => key.expose(),
            (None, Some(key)) => key.expose_secret(),
            (None, None) => {
                return Err(ModelError::Config(
                    "no Anthropic API key: set ANTHROPIC_API_KEY or add the tenant's own key"
                        .to_owned(),
                ))
            }
        };
        let (client, lease) = self.http.lease()?;
        let call = client
            .post(format!("{}/v1/messages", self.base_url))
            .header("x-api-key", key)
            .header("anthropic-version", API_VERSION)
            .json(&wire::request_body(&request));
        let response = streaming::send(call, self.timeouts, wire::error_message).await?;
        let parser = Parser {
            structured: request.output_schema.is_some(),
            ..Parser::default()
        };
        Ok(streaming::events(
            response,
            lease,
            parser,
            self.timeouts,
            started,
        ))
    }
}

/// Follows the content blocks of one message.
#[derive(Default)]
struct Parser {
    /// The request forced the output tool: its input is the answer's text.
    structured: bool,
    /// Content block index → tool call index, for tool-use blocks.
    tool_blocks: HashMap<u32, u32>,
    /// The output tool's block, when structured.
    output_block: Option<u32>,
    input_tokens: i64,
}

impl EventParser for Parser {
    fn parse(&mut self, event: SseEvent, out: &mut Vec<ModelEvent>) -> Result<Flow, ModelError> {
        let parsed: wire::StreamEvent = serde_json::from_str(&event.data)
            .map_err(|e| ModelError::Protocol(format!("an unexpected event: {e}")))?;
        match parsed {
            wire::StreamEvent::MessageStart { message } => {
                let usage = message.usage.unwrap_or_default();
                self.input_tokens = usage.input_tokens
                    + usage.cache_creation_input_tokens.unwrap_or(0)
                    + usage.cache_read_input_tokens.unwrap_or(0);
            }
            wire::StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                if let wire::ContentBlock::ToolUse { id, name } = content_block {
                    if self.structured && name == wire::OUTPUT_TOOL {
                        self.output_block = Some(index);
                    } else {
                        let call = self.tool_blocks.len() as u32;
                        self.tool_blocks.insert(index, call);
                        out.push(ModelEvent::ToolCallDelta {
                            index: call,
                            id: Some(id),
                            name: Some(name),
                            arguments: String::new(),
                        });
                    }
                }
            }
            wire::StreamEvent::ContentBlockDelta { index, delta } => match delta {
                wire::BlockDelta::TextDelta { text } if !text.is_empty() => {
                    out.push(ModelEvent::TextDelta(text))
                }
                // The forced output tool's input is the answer (empty pieces add nothing).
                wire::BlockDelta::InputJsonDelta { partial_json }
                    if self.output_block == Some(index) && !partial_json.is_empty() =>
                {
                    out.push(ModelEvent::TextDelta(partial_json));
                }
                wire::BlockDelta::InputJsonDelta { partial_json } => {
                    if let Some(call) = self.tool_blocks.get(&index) {
                        out.push(ModelEvent::ToolCallDelta {
                            index: *call,
                            id: None,
                            name: None,
                            arguments: partial_json,
                        });
                    }
                }
                _ => {}
            },
            wire::StreamEvent::MessageDelta { delta, usage } => {
                if let Some(usage) = usage {
                    out.push(ModelEvent::Usage(Usage {
                        prompt_tokens: self.input_tokens,
                        completion_tokens: usage.output_tokens,
                        total_tokens: self.input_tokens + usage.output_tokens,
                    }));
                }
                if let Some(reason) = delta.stop_reason {
                    let reason = match wire::finish_reason(&reason) {
                        // The forced output tool is the answer, not a call to run.
                        FinishReason::ToolCalls
                            if self.output_block.is_some() && self.tool_blocks.is_empty() =>
                        {
                            FinishReason::Stop
                        }
                        other => other,
                    };
                    out.push(ModelEvent::Finish(reason));
                }
            }
            wire::StreamEvent::MessageStop {} => return Ok(Flow::End),
            wire::StreamEvent::ContentBlockStop {}
            | wire::StreamEvent::Ping {}
            | wire::StreamEvent::Unknown => {}
            wire::StreamEvent::Error { error } => {
                let status = if error.kind == "overloaded_error" {
                    529
                } else {
                    500
                };
                return Err(ModelError::Upstream {
                    status,
                    message: error.message,
                });
            }
        }
        Ok(Flow::Continue)
    }
}
