//! OpenAI Responses API, streaming: the official API's current interface (`POST
//! {base_url}/responses`). Stateless on purpose: `store: false`, and every request carries the
//! whole conversation, so the Runner's history stays the one source of truth.

pub mod wire;

use std::collections::HashMap;

use async_trait::async_trait;
use frontdesk_core::model::{
    ModelError, ModelEvent, ModelProvider, ModelRequest, ModelStream, ProviderSecret,
};
use frontdesk_core::run::FinishReason;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::http::{Connections, HttpSettings};
use crate::sse::SseEvent;
use crate::streaming::{self, EventParser, Flow};
use crate::Timeouts;

/// A Responses API endpoint.
pub struct OpenAiResponses {
    http: Connections,
    base_url: String,
    api_key: Option<SecretString>,
    timeouts: Timeouts,
}

impl std::fmt::Debug for OpenAiResponses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiResponses")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl OpenAiResponses {
    /// `base_url` is the API root (`https://api.openai.com/v1`).
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
impl ModelProvider for OpenAiResponses {
    async fn stream(&self, request: ModelRequest) -> Result<ModelStream, ModelError> {
        let started = Instant::now();
        let (client, lease) = self.http.lease()?;
        let mut call = client
            .post(format!("{}/responses", self.base_url))
            .json(&wire::request_body(&request));
        let key = request.api_key.as_ref().map(ProviderSecret::expose);
        if let Some(key) = key.or(self.api_key.as_ref().map(ExposeSecret::expose_secret)) {
            call = call.bearer_auth(key);
        }
        let response = streaming::send(call, self.timeouts, wire::error_message).await?;
        Ok(streaming::events(
            response,
            lease,
            EventsParser::default(),
            self.timeouts,
            started,
        ))
    }
}

/// Follows the output items of one response. There is no `[DONE]`: the stream ends with a
/// terminal event (`response.completed`, `.incomplete`, `.failed`) or an `error` event.
#[derive(Default)]
struct EventsParser {
    /// Function-call output index → its call, numbered densely from 0 in order of arrival.
    calls: HashMap<u32, Call>,
}

struct Call {
    index: u32,
    /// Some arguments were passed on already.
    has_arguments: bool,
}

impl EventsParser {
    /// The call at an output index, announced (with its id and name) when first seen.
    fn call(
        &mut self,
        output_index: u32,
        first: Option<(String, String)>,
        out: &mut Vec<ModelEvent>,
    ) -> Option<&mut Call> {
        if !self.calls.contains_key(&output_index) {
            let (id, name) = first?;
            let index = self.calls.len() as u32;
            self.calls.insert(
                output_index,
                Call {
                    index,
                    has_arguments: false,
                },
            );
            out.push(ModelEvent::ToolCallDelta {
                index,
                id: Some(id),
                name: Some(name),
                arguments: String::new(),
            });
        }
        self.calls.get_mut(&output_index)
    }

    /// Passes an arguments piece on.
    fn arguments(
        &mut self,
        output_index: u32,
        first: Option<(String, String)>,
        arguments: String,
        out: &mut Vec<ModelEvent>,
    ) {
        if let Some(call) = self.call(output_index, first, out) {
            if !arguments.is_empty() {
                call.has_arguments = true;
                let index = call.index;
                out.push(ModelEvent::ToolCallDelta {
                    index,
                    id: None,
                    name: None,
                    arguments,
                });
            }
        }
    }
}

impl EventParser for EventsParser {
    fn parse(&mut self, event: SseEvent, out: &mut Vec<ModelEvent>) -> Result<Flow, ModelError> {
        let parsed: wire::StreamEvent = serde_json::from_str(&event.data)
            .map_err(|e| ModelError::Protocol(format!("an unexpected event: {e}")))?;
        match parsed {
            wire::StreamEvent::OutputTextDelta { delta } => {
                if !delta.is_empty() {
                    out.push(ModelEvent::TextDelta(delta));
                }
            }
            wire::StreamEvent::OutputItemAdded {
                output_index,
                item:
                    wire::OutputItem::FunctionCall {
                        call_id,
                        name,
                        arguments,
                    },
            } => self.arguments(output_index, Some((call_id, name)), arguments, out),
            wire::StreamEvent::FunctionCallArgumentsDelta {
                output_index,
                delta,
            } => self.arguments(output_index, None, delta, out),
            // Servers that send a call's arguments whole, with no deltas, send them here.
            wire::StreamEvent::OutputItemDone {
                output_index,
                item:
                    wire::OutputItem::FunctionCall {
                        call_id,
                        name,
                        arguments,
                    },
            } => {
                let streamed = self
                    .calls
                    .get(&output_index)
                    .is_some_and(|call| call.has_arguments);
                if !streamed {
                    self.arguments(output_index, Some((call_id, name)), arguments, out);
                }
            }
            wire::StreamEvent::Completed { response } => {
                out.extend(response.usage().map(ModelEvent::Usage));
                let reason = if self.calls.is_empty() && !response.has_function_calls() {
                    FinishReason::Stop
                } else {
                    FinishReason::ToolCalls
                };
                out.push(ModelEvent::Finish(reason));
                return Ok(Flow::End);
            }
            wire::StreamEvent::Incomplete { response } => {
                out.extend(response.usage().map(ModelEvent::Usage));
                let reason = wire::incomplete_reason(response.incomplete_details.as_ref());
                out.push(ModelEvent::Finish(reason));
                return Ok(Flow::End);
            }
            wire::StreamEvent::Failed { response } => {
                let error = response.error.unwrap_or(wire::ErrorBody {
                    code: None,
                    message: String::new(),
                });
                return Err(wire::stream_error(error.code.as_deref(), &error.message));
            }
            wire::StreamEvent::Error { code, message } => {
                return Err(wire::stream_error(code.as_deref(), &message));
            }
            wire::StreamEvent::OutputItemAdded { .. }
            | wire::StreamEvent::OutputItemDone { .. }
            | wire::StreamEvent::Unknown => {}
        }
        Ok(Flow::Continue)
    }
}
