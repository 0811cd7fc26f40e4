//! A call's record as it goes on: both sides' transcript (kept in the call and in its
//! conversation), the tools that ran, usage and cost; and its end, with a summary the text
//! model writes.
//!
//! The conversation holds the caller's lines as user messages and the agent's as its
//! answers, so staff read a call like a chat and a supervisor's runs see it as history.
//! While a supervisor's run is under way, lines wait and are stored after it (its answer
//! hangs from the conversation's active message).

use std::collections::HashMap;
use std::time::Instant;

use frontdesk_core::agent::{Agent, AgentRef};
use frontdesk_core::conversation::Message;
use frontdesk_core::service::{NewCall, NewConversation};
use frontdesk_core::time::Timestamp;
use frontdesk_core::voice::{Call, CallStatus, CallToolCall, Speaker, TranscriptLine};
use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::host::VoiceHost;
use crate::writer::Write;
use tokio::sync::mpsc;

/// What the summary model is told.
const SUMMARY_BRIEF: &str = "You write call notes for a business. Summarise the phone call \
below in two or three sentences: who called, what they wanted, what was done (bookings, \
answers, transfers) and anything the team must follow up. Plain text only.";
/// The transcript the summary reads at most (characters, its end kept).
const SUMMARY_INPUT_CHARS: usize = 12_000;

/// A call under way.
pub struct CallLog {
    host: VoiceHost,
    pub call: Call,
    pub agent: Agent,
    clock: Instant,
    /// The call's writes, off the audio path.
    writes: mpsc::UnboundedSender<Write>,
    /// The agent's answers by realtime item: their line in the transcript.
    answers: HashMap<String, usize>,
    /// Whether lines are stored as messages (not when runs store both sides themselves).
    store_lines: bool,
    /// The last answer a run stored, and its line (ConversationRelay cuts it on interrupt).
    last_answer: Option<(usize, Message)>,
}

impl std::fmt::Debug for CallLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallLog")
            .field("call", &self.call.id)
            .finish()
    }
}

impl CallLog {
    /// Opens the call's record and its conversation (`source: voice`, the call's id and
    /// numbers in its metadata; `context` is the run context the call's runs get).
    pub async fn open(
        host: &VoiceHost,
        agent: Agent,
        input: NewCall,
        context: Map<String, Value>,
    ) -> Result<Self> {
        let call = host.service().open_call(&agent, input).await?;
        Self::start(host, agent, call, context).await
    }

    /// Goes on with a call opened before it was answered (an outbound call placed through
    /// the API): still active, and of this agent.
    pub async fn resume(
        host: &VoiceHost,
        agent: Agent,
        id: &str,
        provider_call_id: Option<String>,
        context: Map<String, Value>,
    ) -> Result<Self> {
        let id = frontdesk_core::id::CallId::parse(id)
            .map_err(|_| frontdesk_core::Error::NotFound { resource: "call" })?;
        let mut call = host.service().get_call(&agent.tenant_id, &id).await?;
        if call.agent_id != agent.id
            || call.status != CallStatus::Active
            || call.conversation_id.is_some()
        {
            return Err(frontdesk_core::Error::NotFound { resource: "call" }.into());
        }
        if provider_call_id.is_some() {
            call.provider_call_id = provider_call_id;
        }
        Self::start(host, agent, call, context).await
    }

    async fn start(
        host: &VoiceHost,
        agent: Agent,
        mut call: Call,
        context: Map<String, Value>,
    ) -> Result<Self> {
        let service = host.service();
        let title = match (call.direction, &call.from, &call.to, call.channel) {
            (frontdesk_core::voice::CallDirection::Outbound, _, Some(to), _) => {
                format!("Call to {to}")
            }
            (_, Some(from), _, _) => format!("Call from {from}"),
            (_, None, _, frontdesk_core::voice::CallChannel::Browser) => {
                "Voice call (browser)".to_owned()
            }
            _ => "Call".to_owned(),
        };
        let mut metadata = context;
        metadata.insert("source".into(), json!("voice"));
        metadata.insert("call_id".into(), json!(call.id));
        if let Some(from) = &call.from {
            metadata.insert("caller".into(), json!(from));
        }
        let caller = match call.direction {
            frontdesk_core::voice::CallDirection::Outbound => call.to.clone(),
            frontdesk_core::voice::CallDirection::Inbound => call.from.clone(),
        };
        let conversation = service
            .create_conversation(
                &agent.tenant_id,
                NewConversation {
                    agent: agent.id.to_string(),
                    end_user_id: caller,
                    title: Some(title),
                    metadata,
                },
            )
            .await;
        match conversation {
            Ok(conversation) => call.conversation_id = Some(conversation.id),
            Err(error) => {
                call.status = CallStatus::Failed;
                call.error = Some(format!(
                    "the call's conversation could not be made: {error}"
                ));
                call.ended_at = Some(Timestamp::now());
                let _ = service.save_call(&call).await;
                return Err(error.into());
            }
        }
        service.save_call(&call).await?;
        let writes = crate::writer::start(
            service.clone(),
            call.tenant_id.clone(),
            call.conversation_id.clone(),
        );
        Ok(Self {
            host: host.clone(),
            call,
            agent,
            clock: Instant::now(),
            writes,
            answers: HashMap::new(),
            store_lines: true,
            last_answer: None,
        })
    }

    /// Whether the call's lines are stored in its conversation (off when each turn is a run,
    /// which stores the caller's message and the answer itself).
    pub fn store_lines(&mut self, on: bool) {
        self.store_lines = on;
    }

    /// A run answered: its stored answer goes into the transcript, cut to what the caller
    /// heard when they spoke over it.
    pub async fn answered(&mut self, message: &Message, heard: Option<&str>) {
        let text = message.text();
        let shown = heard.unwrap_or(&text).trim().to_owned();
        self.call.transcript.push(TranscriptLine {
            speaker: Speaker::Agent,
            text: shown.clone(),
            at_ms: self.at_ms(),
            interrupted: heard.is_some(),
        });
        self.last_answer = Some((self.call.transcript.len() - 1, message.clone()));
        if heard.is_some() {
            self.cut_stored(message, &shown).await;
        }
    }

    /// The caller spoke over the last answer after its run had ended (it was still being
    /// read out): it keeps what they heard.
    pub async fn cut_last_answer(&mut self, heard: &str) {
        let Some((line, message)) = self.last_answer.clone() else {
            return;
        };
        if let Some(entry) = self.call.transcript.get_mut(line) {
            entry.text = heard.trim().to_owned();
            entry.interrupted = true;
        }
        self.cut_stored(&message, heard.trim()).await;
    }

    async fn cut_stored(&self, message: &Message, heard: &str) {
        let _ = self.writes.send(Write::CutMessage {
            message: Box::new(message.clone()),
            heard: heard.to_owned(),
        });
    }

    pub fn host(&self) -> &VoiceHost {
        &self.host
    }

    /// Milliseconds since the call started.
    pub fn at_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    /// The conversation the call is kept in.
    pub fn conversation(&self) -> Option<&frontdesk_core::id::ConversationId> {
        self.call.conversation_id.as_ref()
    }

    /// The caller said `text`.
    pub async fn caller_said(&mut self, text: &str) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        self.call.transcript.push(TranscriptLine {
            speaker: Speaker::Caller,
            text: text.to_owned(),
            at_ms: self.at_ms(),
            interrupted: false,
        });
        self.store(Speaker::Caller, text, None);
    }

    /// The agent said `text` (the realtime item `item`, when it has one).
    pub async fn agent_said(&mut self, item: Option<&str>, text: &str) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        self.call.transcript.push(TranscriptLine {
            speaker: Speaker::Agent,
            text: text.to_owned(),
            at_ms: self.at_ms(),
            interrupted: false,
        });
        if let Some(item) = item {
            self.answers
                .insert(item.to_owned(), self.call.transcript.len() - 1);
        }
        self.store(Speaker::Agent, text, item);
    }

    fn store(&self, speaker: Speaker, text: &str, item: Option<&str>) {
        if !self.store_lines {
            return;
        }
        let model = match speaker {
            Speaker::Agent => self.agent.spec.voice.realtime_model.clone(),
            Speaker::Caller => None,
        };
        let _ = self.writes.send(Write::Line {
            speaker,
            text: text.to_owned(),
            item: item.map(str::to_owned),
            model,
        });
    }

    /// The caller spoke over the answer `item`: it keeps only what they heard, in the
    /// transcript and in the conversation.
    pub async fn interrupted(&mut self, item: &str, heard: &str) {
        let Some(line) = self.answers.get(item).copied() else {
            return;
        };
        if let Some(entry) = self.call.transcript.get_mut(line) {
            entry.text = heard.to_owned();
            entry.interrupted = true;
        }
        let _ = self.writes.send(Write::Cut {
            item: item.to_owned(),
            heard: heard.to_owned(),
        });
    }

    /// The text of the agent's answer `item` so far.
    pub fn answer_text(&self, item: &str) -> Option<&str> {
        self.answers
            .get(item)
            .and_then(|line| self.call.transcript.get(*line))
            .map(|line| line.text.as_str())
    }

    /// A supervisor's run is about to start: lines wait until it ends. Resolves once the
    /// lines said before are stored (the run's history holds them).
    pub fn supervisor_starts(&mut self) -> tokio::sync::oneshot::Receiver<()> {
        let (synced, stored) = tokio::sync::oneshot::channel();
        let _ = self.writes.send(Write::Hold(true));
        let _ = self.writes.send(Write::Synced(synced));
        stored
    }

    /// A supervisor's run ended: the lines that waited are stored.
    pub fn supervisor_ended(&mut self) {
        let _ = self.writes.send(Write::Hold(false));
    }

    pub fn tool(&mut self, call: CallToolCall) {
        self.call.tool_calls.push(call);
    }

    /// Adds a model's tokens (and their cost, when it has a price).
    pub fn usage(&mut self, model: &str, input: i64, output: i64) {
        let usage = &mut self.call.usage;
        usage.input_tokens += input;
        usage.output_tokens += output;
        if let Some(cost) = self.host.cost(model, input, output) {
            *usage.cost_usd.get_or_insert(0.0) += cost;
        }
    }

    pub fn frames(&mut self, inbound: u64, outbound: u64) {
        self.call.usage.frames_in += inbound;
        self.call.usage.frames_out += outbound;
    }

    /// Stores the record as it is now.
    pub async fn checkpoint(&self) {
        let _ = self.writes.send(Write::Save(Box::new(self.call.clone())));
    }

    /// Ends the call: how it went, its summary, and its record stored for good.
    pub async fn finish(mut self, status: CallStatus, error: Option<String>) -> Call {
        // What waited is stored first (held lines too: the call is over).
        let (done, flushed) = tokio::sync::oneshot::channel();
        let _ = self.writes.send(Write::Flush(done));
        let _ = flushed.await;
        let ended = Timestamp::now();
        self.call.status = status;
        if error.is_some() {
            self.call.error = error;
        }
        self.call.ended_at = Some(ended);
        self.call.duration_ms = Some(ended.as_millis() - self.call.started_at.as_millis());
        if !self.call.transcript.is_empty() {
            // How it ended is stored first: the summary may take a while (or outlast a
            // shutdown's wait).
            if let Err(error) = self.host.service().save_call(&self.call).await {
                tracing::warn!(call = %self.call.id, %error, "the call's record could not be saved");
            }
            self.call.summary = self.summary().await;
        }
        if let Err(error) = self.host.service().save_call(&self.call).await {
            tracing::warn!(call = %self.call.id, %error, "the call's record could not be saved");
        }
        tracing::info!(
            call = %self.call.id,
            status = status.as_str(),
            duration_ms = self.call.duration_ms,
            "call ended"
        );
        self.call
    }

    /// The summary by the supervisor's model (or the agent's own chat model).
    async fn summary(&mut self) -> Option<String> {
        let mut transcript = String::new();
        for line in &self.call.transcript {
            let who = match line.speaker {
                Speaker::Caller => "Caller",
                Speaker::Agent => "Agent",
            };
            transcript.push_str(&format!("{who}: {}\n", line.text));
        }
        for tool in &self.call.tool_calls {
            transcript.push_str(&format!("(tool {} → {})\n", tool.name, tool.output));
        }
        let start = transcript
            .char_indices()
            .rev()
            .nth(SUMMARY_INPUT_CHARS)
            .map_or(0, |(i, _)| i);
        let writer = match &self.agent.spec.voice.supervisor {
            Some(slug) => self
                .host
                .service()
                .get_agent(&self.call.tenant_id, &AgentRef::Slug(slug.clone()))
                .await
                .unwrap_or_else(|_| self.agent.clone()),
            None => self.agent.clone(),
        };
        match self
            .host
            .runner()
            .complete(&writer, SUMMARY_BRIEF, &transcript[start..], 300)
            .await
        {
            Ok((summary, usage)) => {
                if let Some(usage) = usage {
                    self.usage(
                        &writer.spec.model,
                        usage.prompt_tokens,
                        usage.completion_tokens,
                    );
                }
                Some(summary).filter(|s| !s.is_empty())
            }
            Err(error) => {
                tracing::warn!(call = %self.call.id, %error, "the call's summary could not be written");
                None
            }
        }
    }
}
