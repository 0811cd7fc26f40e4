//! The realtime bridge: one task per call relays the caller's audio to a realtime model and
//! its audio back, runs its tool calls (the supervisor, the agent's own tools, transfer and
//! hang-up), handles barge-in, and records the call.
//!
//! Lifecycle: connect → configure (`session.update`) → greet → relay … → end (the caller
//! hung up, the agent ended or transferred the call, the call ran out of time, the server
//! stops, or the model's socket failed twice). The model's socket dropping mid-call is
//! reconnected once, the transcript so far replayed; a bad frame is logged and skipped.

use std::collections::HashMap;
use std::time::Duration;

use frontdesk_agents::DirectTools;
use frontdesk_core::model::ToolCall;
use frontdesk_core::voice::{CallStatus, CallToolCall, Speaker};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::call::CallLog;
use crate::ending::{apologise, connect, record, transfer};
use crate::error::{Result, VoiceError};
use crate::leg::{Leg, LegEvent};
use crate::playback::{heard_text, Playback};
use crate::realtime::{self, Connection, ServerEvent, SessionConfig};
use crate::supervisor::{self, ASK_SUPERVISOR, END_CALL, TRANSFER_CALL};

/// How long the model's socket may take to open.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the goodbye may play after the agent ended the call.
const GOODBYE_GRACE: Duration = Duration::from_secs(8);
/// Tool results waiting to be sent to the model, at most.
const RESULT_QUEUE: usize = 16;
/// Lines of the transcript replayed to a reconnected model, at most.
const REPLAY_LINES: usize = 40;
pub(crate) const APOLOGY: &str =
    "Sorry, we are having technical trouble. Please call again in a moment.";

pub use crate::ending::{Ending, PhoneLine};

/// What happens after a tool's result is given to the model.
#[derive(Debug)]
pub(crate) enum Then {
    Answer,
    /// Hang up once the goodbye played.
    End,
    /// The call went to a phone number: Twilio closes the stream.
    Transferred,
}

/// A tool's result, back from its task.
#[derive(Debug)]
struct ToolDone {
    call_id: String,
    output: String,
    records: Vec<CallToolCall>,
    tokens: Option<(String, i64, i64)>,
    supervisor: bool,
    then: Then,
    /// Where the call went (a number, or `inbox`).
    transferred_to: Option<String>,
}

/// The bridge's state between events.
struct Bridge<'a> {
    log: &'a mut CallLog,
    leg: &'a mut dyn Leg,
    phone: Option<PhoneLine>,
    conn: Connection,
    config: SessionConfig,
    direct: Option<DirectTools>,
    playback: Playback,
    /// A response is being made (a new `response.create` must wait for its end).
    responding: bool,
    create_queued: bool,
    /// The supervisor or a tool is working; the filler is said once the current response ends.
    working: usize,
    filler_due: bool,
    /// Answers cut before their transcript was done: heard and sent ms.
    cuts: HashMap<String, (u64, u64)>,
    ending: Option<(Ending, tokio::time::Instant)>,
    reconnected: bool,
    results_tx: mpsc::Sender<ToolDone>,
    frames_in: u64,
    frames_out: u64,
    bad_frames: u64,
    /// The agent's own tools called so far (its `budgets.max_tool_calls` bounds them).
    direct_calls: u32,
    /// Answers the caller spoke over: their audio still in flight is dropped.
    cut_items: std::collections::VecDeque<String>,
}

/// Runs a call through the agent's realtime model until it ends.
pub async fn run(log: &mut CallLog, leg: &mut dyn Leg, phone: Option<PhoneLine>) -> Ending {
    let agent = log.agent.clone();
    let Some(model) = agent.spec.voice.realtime_model.clone() else {
        return Ending::failed("the agent has no realtime model");
    };
    let host = log.host().clone();
    let endpoint = match host.realtime_endpoint(&agent.tenant_id, &model).await {
        Ok(endpoint) => endpoint,
        Err(error) => return apologise(leg, phone.as_ref(), log, error).await,
    };
    let direct = match (&agent.spec.voice.supervisor, log.conversation()) {
        (None, Some(conversation)) => {
            let context = json!({"call_id": log.call.id, "caller": log.call.from});
            let context = context.as_object().cloned().unwrap_or_default();
            match host
                .runner()
                .direct_tools(
                    &agent,
                    conversation,
                    frontdesk_core::id::RunId::new(),
                    &context,
                )
                .await
            {
                Ok(tools) => Some(tools),
                Err(error) => {
                    tracing::warn!(call = %log.call.id, %error, "the agent's tools are not available on this call");
                    None
                }
            }
        }
        _ => None,
    };
    let mut tools = supervisor::call_tools(&agent);
    if let Some(direct) = &direct {
        tools.extend(direct.specs().into_iter().map(|spec| {
            json!({"type": "function", "name": spec.name, "description": spec.description, "parameters": spec.parameters})
        }));
    }
    let voice = &agent.spec.voice;
    let config = SessionConfig {
        model: model
            .split_once('/')
            .map_or(model.as_str(), |(_, m)| m)
            .to_owned(),
        instructions: supervisor::instructions(&agent),
        voice: voice.voice.clone(),
        format: leg.format(),
        turn_detection: realtime::turn_detection(voice.turn_detection.as_ref()),
        transcription_model: voice.transcription_model.as_ref().map(|m| {
            m.split_once('/')
                .map_or(m.as_str(), |(_, name)| name)
                .to_owned()
        }),
        language: voice.languages.first().cloned(),
        tools,
    };
    let conn = match connect(&endpoint, &config).await {
        Ok(conn) => conn,
        Err(error) => return apologise(leg, phone.as_ref(), log, error).await,
    };
    let (results_tx, mut results_rx) = mpsc::channel(RESULT_QUEUE);
    let greeting = voice.greeting.clone();
    let max_call = voice.max_call();
    let mut bridge = Bridge {
        log,
        leg,
        phone,
        conn,
        config,
        direct,
        playback: Playback::default(),
        responding: false,
        create_queued: false,
        working: 0,
        filler_due: false,
        cuts: HashMap::new(),
        ending: None,
        reconnected: false,
        results_tx,
        frames_in: 0,
        frames_out: 0,
        bad_frames: 0,
        direct_calls: 0,
        cut_items: std::collections::VecDeque::new(),
    };
    if let Some(greeting) = greeting {
        match bridge.conn.send(&realtime::say(&greeting, true)).await {
            Ok(()) => bridge.responding = true,
            Err(error) => tracing::warn!(%error, "the greeting could not be asked for"),
        }
    }
    let deadline = tokio::time::Instant::now() + max_call;
    let shutdown = host.shutdown().clone();
    // The timers are made once (per event they would cost a timer registration each).
    let timer = tokio::time::sleep_until(deadline);
    let stopping = shutdown.cancelled();
    tokio::pin!(timer, stopping);
    let ending = loop {
        // The model's audio first: it is what the caller waits for.
        tokio::select! {
            biased;
            event = bridge.conn.recv() => {
                if let Some(ending) = bridge.on_model(event).await {
                    break ending;
                }
            }
            event = bridge.leg.recv() => {
                if let Some(ending) = bridge.on_leg(event).await {
                    break ending;
                }
            }
            Some(done) = results_rx.recv() => {
                if let Some(ending) = bridge.on_result(done).await {
                    break ending;
                }
            }
            () = &mut timer => {
                match bridge.ending.take() {
                    Some((ending, _)) => break ending,
                    None => break Ending { status: CallStatus::Completed, error: Some("the call reached its time limit".to_owned()) },
                }
            }
            () = &mut stopping => {
                let _ = bridge.leg.end("the service is restarting").await;
                break Ending::failed("the server stopped during the call");
            }
        }
        // A goodbye's grace, once the agent ended the call.
        if let Some((_, until)) = &bridge.ending {
            if timer.deadline() != *until {
                timer.as_mut().reset(*until);
            }
        }
    };
    bridge.log.frames(bridge.frames_in, bridge.frames_out);
    if bridge.bad_frames > 0 {
        tracing::warn!(call = %bridge.log.call.id, bad = bridge.bad_frames, "frames were skipped");
    }
    let _ = bridge.leg.end("the call ended").await;
    bridge.conn.close().await;
    ending
}

impl Bridge<'_> {
    async fn send(&mut self, event: &Value) {
        if let Err(error) = self.conn.send(event).await {
            tracing::debug!(%error, "an event could not be sent to the model");
        }
    }

    /// Asks for a response now, or once the current one ends.
    async fn answer(&mut self) {
        if self.responding {
            self.create_queued = true;
        } else {
            self.responding = true;
            self.send(&realtime::response_create()).await;
        }
    }

    /// The end of an answer's audio gets its mark (the caller's side says when it played).
    async fn mark_the_end(&mut self) {
        if let Some(mark) = self.playback.flush() {
            let _ = self.leg.mark(&mark).await;
        }
    }

    /// Whether a call that is ending has said its goodbye.
    fn goodbye_done(&self) -> bool {
        !self.responding && !self.playback.playing()
    }

    async fn on_leg(&mut self, event: LegEvent) -> Option<Ending> {
        match event {
            LegEvent::Audio(audio) => {
                self.frames_in += 1;
                if let Err(error) = self.conn.send_text(realtime::append_audio(&audio)).await {
                    tracing::debug!(%error, "audio could not be sent to the model");
                }
            }
            LegEvent::Mark(name) => {
                self.playback.marked(&name);
                if self.ending.is_some() && self.goodbye_done() {
                    return self.ending.take().map(|(ending, _)| ending);
                }
            }
            LegEvent::Dtmf(digit) => {
                let digit: String = digit
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '#' || *c == '*')
                    .take(1)
                    .collect();
                if !digit.is_empty() {
                    self.log.caller_said(&format!("(pressed {digit})")).await;
                    self.send(&realtime::text_item(
                        "user",
                        &format!("[The caller pressed {digit} on the keypad]"),
                    ))
                    .await;
                    self.answer().await;
                }
            }
            LegEvent::Hangup => {
                return Some(match self.ending.take() {
                    Some((ending, _)) => ending,
                    None => Ending::completed(),
                })
            }
            LegEvent::Bad(reason) => {
                self.bad_frames += 1;
                tracing::debug!(call = %self.log.call.id, %reason, "a frame from the caller's side was skipped");
            }
        }
        None
    }

    async fn on_model(&mut self, event: Option<Result<String>>) -> Option<Ending> {
        let raw = match event {
            Some(Ok(raw)) => raw,
            Some(Err(_)) | None => return self.reconnect().await,
        };
        let event = match realtime::parse_event(&raw) {
            Ok(event) => event,
            Err(error) => {
                self.bad_frames += 1;
                tracing::debug!(%error, "a frame from the model was skipped");
                return None;
            }
        };
        match event {
            ServerEvent::Audio { item_id, .. } if self.cut_items.contains(&item_id) => {}
            ServerEvent::Audio { item_id, audio } => {
                let ms = self.leg.format().duration_ms(audio.len());
                let sent = match self.playback.sent(&item_id, ms) {
                    Some(mark) => self.leg.audio_marked(&audio, &mark).await,
                    None => self.leg.audio(&audio).await,
                };
                if sent.is_ok() {
                    self.frames_out += 1;
                }
            }
            ServerEvent::AudioDone { .. } => self.mark_the_end().await,
            ServerEvent::SpeechStarted => self.barge_in().await,
            ServerEvent::InputTranscript { text, .. } => {
                let _ = self.leg.caption(Speaker::Caller, &text).await;
                self.log.caller_said(&text).await;
            }
            ServerEvent::TranscriptDelta { .. } => {}
            ServerEvent::TranscriptDone { item_id, text } => {
                let text = match self.cuts.remove(&item_id) {
                    Some((heard, sent)) => heard_text(&text, heard, sent),
                    None => text,
                };
                let _ = self.leg.caption(Speaker::Agent, &text).await;
                self.log.agent_said(Some(&item_id), &text).await;
            }
            ServerEvent::ResponseCreated { .. } => self.responding = true,
            ServerEvent::ResponseDone {
                input_tokens,
                output_tokens,
                out_of_band,
                ..
            } => {
                // The answer's audio is all sent: its end gets a mark.
                self.mark_the_end().await;
                let model = self
                    .log
                    .agent
                    .spec
                    .voice
                    .realtime_model
                    .clone()
                    .unwrap_or_default();
                self.log.usage(&model, input_tokens, output_tokens);
                self.responding = false;
                if self.create_queued {
                    self.create_queued = false;
                    self.answer().await;
                } else if self.filler_due && self.working > 0 && !out_of_band {
                    self.filler_due = false;
                    let filler = self.log.agent.spec.voice.filler().to_owned();
                    self.responding = true;
                    self.send(&realtime::say(&filler, false)).await;
                }
                if self.ending.is_some() && self.goodbye_done() {
                    return self.ending.take().map(|(ending, _)| ending);
                }
            }
            ServerEvent::FunctionCall {
                call_id,
                name,
                arguments,
            } => return self.on_function(call_id, name, arguments).await,
            ServerEvent::Error { message, code } => {
                // A refused `response.create` gets no `response.done`.
                if code.as_deref() != Some("conversation_already_has_active_response") {
                    self.responding = false;
                }
                tracing::warn!(call = %self.log.call.id, code = code.as_deref().unwrap_or(""), %message, "the realtime model reported an error");
            }
            ServerEvent::SessionCreated
            | ServerEvent::SessionUpdated
            | ServerEvent::SpeechStopped
            | ServerEvent::Other(_) => {}
        }
        None
    }

    /// The caller spoke over the answer: playback stops and the answer is cut to what
    /// they heard (in the model's context, the transcript and the conversation).
    async fn barge_in(&mut self) {
        if !self.playback.playing() {
            return;
        }
        let _ = self.leg.clear().await;
        let Some(cut) = self.playback.interrupt() else {
            return;
        };
        self.send(&realtime::truncate(&cut.item_id, cut.heard_ms))
            .await;
        match self.log.answer_text(&cut.item_id).map(str::to_owned) {
            // The transcript is in: cut it now.
            Some(text) => {
                let heard = heard_text(&text, cut.heard_ms, cut.sent_ms);
                self.log.interrupted(&cut.item_id, &heard).await;
            }
            // Still coming: cut it when it arrives.
            None => {
                self.cuts
                    .insert(cut.item_id.clone(), (cut.heard_ms, cut.sent_ms));
            }
        }
    }

    async fn on_function(
        &mut self,
        call_id: String,
        name: String,
        arguments: String,
    ) -> Option<Ending> {
        let args: Value = serde_json::from_str(&arguments).unwrap_or(Value::Null);
        let text = |key: &str| {
            args.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let at_ms = self.log.at_ms();
        let tx = self.results_tx.clone();
        let host = self.log.host().clone();
        let agent = self.log.agent.clone();
        let conversation = self.log.conversation().cloned();
        self.working += 1;
        self.filler_due = true;
        match name.as_str() {
            ASK_SUPERVISOR => {
                let (Some(slug), Some(conversation)) =
                    (agent.spec.voice.supervisor.clone(), conversation)
                else {
                    self.finish_now(call_id, "There is no supervisor on this call.")
                        .await;
                    return None;
                };
                let stored = self.log.supervisor_starts();
                let question = text("question");
                tokio::spawn(async move {
                    // The caller's last words are in the conversation before the run reads it.
                    let _ = stored.await;
                    let advice =
                        supervisor::ask(&host, &agent, &conversation, &slug, &question, at_ms)
                            .await;
                    let _ = tx
                        .send(ToolDone {
                            call_id,
                            output: advice.say,
                            records: advice.tools,
                            tokens: advice
                                .model
                                .map(|m| (m, advice.input_tokens, advice.output_tokens)),
                            supervisor: true,
                            then: Then::Answer,
                            transferred_to: None,
                        })
                        .await;
                });
            }
            END_CALL => {
                self.filler_due = false;
                // Handled here: the tools' queue is drained by this very task.
                return self
                    .on_result(ToolDone {
                        call_id,
                        output: "The call ends once your goodbye has played.".to_owned(),
                        records: vec![record(END_CALL, args, "ended", &agent.spec.slug, at_ms)],
                        tokens: None,
                        supervisor: false,
                        then: Then::End,
                        transferred_to: None,
                    })
                    .await;
            }
            TRANSFER_CALL => {
                let reason = text("reason");
                let phone = self.phone.clone();
                tokio::spawn(async move {
                    let (output, then, target) = transfer(
                        &host,
                        &agent,
                        conversation.as_ref(),
                        phone.as_ref(),
                        &reason,
                    )
                    .await;
                    let _ = tx
                        .send(ToolDone {
                            call_id,
                            records: vec![record(
                                TRANSFER_CALL,
                                args,
                                &output,
                                &agent.spec.slug,
                                at_ms,
                            )],
                            output,
                            tokens: None,
                            supervisor: false,
                            then,
                            transferred_to: target,
                        })
                        .await;
                });
            }
            _ => {
                self.direct_calls += 1;
                let budget = agent.spec.budgets.max_tool_calls;
                if self.direct_calls > budget {
                    self.finish_now(call_id, &format!("This call reached its limit of {budget} tool calls; offer to have the team follow up."))
                        .await;
                    return None;
                }
                let Some(direct) = self.direct.clone() else {
                    self.finish_now(call_id, &format!("There is no tool called {name}."))
                        .await;
                    return None;
                };
                tokio::spawn(async move {
                    let output = direct
                        .call(&ToolCall {
                            id: call_id.clone(),
                            name: name.clone(),
                            arguments: arguments.clone(),
                        })
                        .await;
                    let mut entry = record(&name, args, &output.content, &agent.spec.slug, at_ms);
                    entry.is_error = output.is_error;
                    let _ = tx
                        .send(ToolDone {
                            call_id,
                            output: output.content,
                            records: vec![entry],
                            tokens: None,
                            supervisor: false,
                            then: Then::Answer,
                            transferred_to: None,
                        })
                        .await;
                });
            }
        }
        None
    }

    /// Answers a call that cannot run at once.
    async fn finish_now(&mut self, call_id: String, output: &str) {
        self.working = self.working.saturating_sub(1);
        self.send(&realtime::function_output(&call_id, output))
            .await;
        self.answer().await;
    }

    async fn on_result(&mut self, done: ToolDone) -> Option<Ending> {
        self.working = self.working.saturating_sub(1);
        if self.working == 0 {
            self.filler_due = false;
        }
        if done.supervisor {
            self.log.supervisor_ended();
        }
        for record in done.records {
            self.log.tool(record);
        }
        if done.transferred_to.is_some() {
            self.log.call.transferred_to = done.transferred_to;
        }
        if let Some((model, input, output)) = done.tokens {
            self.log.usage(&model, input, output);
        }
        self.send(&realtime::function_output(&done.call_id, &done.output))
            .await;
        self.log.checkpoint().await;
        match done.then {
            Then::Answer => {
                self.answer().await;
                None
            }
            Then::End => {
                let until = tokio::time::Instant::now() + GOODBYE_GRACE;
                self.ending = Some((Ending::completed(), until));
                self.goodbye_done()
                    .then(|| self.ending.take().map(|(ending, _)| ending))
                    .flatten()
            }
            Then::Transferred => Some(Ending {
                status: CallStatus::Transferred,
                error: None,
            }),
        }
    }

    /// The model's socket dropped: open it again once and replay the call so far; a second
    /// drop (or a failed reconnect) ends the call with an apology.
    async fn reconnect(&mut self) -> Option<Ending> {
        if self.reconnected {
            let phone = self.phone.clone();
            return Some(
                apologise(
                    self.leg,
                    phone.as_ref(),
                    self.log,
                    VoiceError::Connection("the realtime model's socket dropped again".to_owned()),
                )
                .await,
            );
        }
        self.reconnected = true;
        tracing::warn!(call = %self.log.call.id, "the realtime model's socket dropped: reconnecting");
        let endpoint = match self
            .log
            .host()
            .realtime_endpoint(
                &self.log.agent.tenant_id,
                self.log
                    .agent
                    .spec
                    .voice
                    .realtime_model
                    .as_deref()
                    .unwrap_or_default(),
            )
            .await
        {
            Ok(endpoint) => endpoint,
            Err(error) => {
                let phone = self.phone.clone();
                return Some(apologise(self.leg, phone.as_ref(), self.log, error).await);
            }
        };
        match connect(&endpoint, &self.config).await {
            Ok(conn) => {
                let old = std::mem::replace(&mut self.conn, conn);
                drop(old);
                self.responding = false;
                self.create_queued = false;
                let _ = self.leg.clear().await;
                self.playback.interrupt();
                let lines = &self.log.call.transcript;
                let replay: Vec<Value> = lines[lines.len().saturating_sub(REPLAY_LINES)..]
                    .iter()
                    .map(|line| {
                        let role = match line.speaker {
                            Speaker::Caller => "user",
                            Speaker::Agent => "assistant",
                        };
                        realtime::text_item(role, &line.text)
                    })
                    .collect();
                for item in &replay {
                    self.send(item).await;
                }
                // Picks the conversation up where it was.
                self.send(&realtime::say(
                    "Sorry, the line dropped for a moment. Where were we?",
                    true,
                ))
                .await;
                self.responding = true;
                None
            }
            Err(error) => {
                let phone = self.phone.clone();
                Some(apologise(self.leg, phone.as_ref(), self.log, error).await)
            }
        }
    }
}
