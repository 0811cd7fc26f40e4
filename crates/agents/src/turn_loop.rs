//! The agent loop of one run: call the model, run the tools it asks for, hand off, pause for
//! approvals, check guardrails and structured output, and stop on budgets. Every step is
//! published as a `RunEvent` and recorded as a `RunStep`.
//!
//! [`TurnLoop`] holds only what it is given (the dependencies, the run's log and its cancel
//! token); the run's state is the [`Work`] it is handed, plain data, so a run paused for an
//! approval is saved with it and taken up again later, in this process or another one.

use std::time::Duration;

use frontdesk_core::agent::AgentRef;
use frontdesk_core::conversation::ContentPart;
use frontdesk_core::model::{ModelMessage, ModelRequest, ToolCall};
use frontdesk_core::run::{FinishReason, RunEvent, RunFailure, RunStep, StepKind};
use frontdesk_core::time::Timestamp;
use frontdesk_core::tool::ToolOutput;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::deps::Deps;
use crate::guardrails;
use crate::history;
use crate::knowledge;
use crate::model_step::{model_step, StepResult};
use crate::ports::Publisher;
use crate::structured;
use crate::tools::{self, Kind, ToolSet};
use crate::work::{
    clip, instructions, set_instructions, Decision, End, Pending, Work, TRACE_CHARS,
};

/// Tool calls of one step run at the same time, at most this many.
const TOOL_CONCURRENCY: usize = 4;
/// Most sources one answer cites.
pub(crate) const MAX_CITATIONS: usize = 10;
/// Longest tool result a model is shown (characters); the rest is cut with a note.
const MAX_TOOL_RESULT_CHARS: usize = 16_000;

/// The loop of one run over explicit dependencies.
pub(crate) struct TurnLoop<'a> {
    pub deps: &'a Deps,
    pub publisher: &'a Publisher,
    pub cancel: &'a CancellationToken,
}

impl TurnLoop<'_> {
    /// Runs the loop until an answer, a failure, a cancel, a pause or a tripped guardrail.
    pub(crate) async fn drive(&self, work: &mut Work) -> End {
        let clock = Instant::now();
        let spent = Duration::from_millis(work.progress.active_ms);
        let budget = Duration::from_secs(u64::from(work.agent.spec.budgets.max_seconds));
        let deadline = clock + budget.saturating_sub(spent);
        let end = tokio::select! {
            end = self.steps(work) => end,
            () = tokio::time::sleep_until(deadline) => End::Failed {
                failure: RunFailure::TimeBudgetExceeded,
                message: format!(
                    "the run took longer than its budget of {} s (budgets.max_seconds)",
                    budget.as_secs()
                ),
                // What the client already saw of the call in flight stays with the answer.
                partial: std::mem::take(&mut work.progress.streaming),
            },
        };
        work.progress.active_ms += clock.elapsed().as_millis() as u64;
        end
    }

    async fn steps(&self, work: &mut Work) -> End {
        let mut repair: Option<Vec<ModelMessage>> = None;
        let mut repaired = false;
        loop {
            knowledge::find(self.deps.tools.knowledge.as_deref(), work).await;
            let spec = &work.agent.spec;
            if work.progress.model_calls >= spec.max_turns {
                return End::failed(
                    RunFailure::MaxTurnsExceeded,
                    format!(
                        "the run stopped after {} model calls (max_turns) without a final answer",
                        spec.max_turns
                    ),
                );
            }
            if let Some(max) = spec.budgets.max_tokens {
                if work.progress.usage.total_tokens as u64 >= max {
                    return End::failed(
                        RunFailure::TokenBudgetExceeded,
                        format!(
                            "the run used {} tokens, its budget is {max} (budgets.max_tokens)",
                            work.progress.usage.total_tokens
                        ),
                    );
                }
            }
            let mut messages = work.base.clone();
            let mut system = instructions(spec, &work.options, &work.context.run_context);
            if let Some(found) = work
                .progress
                .knowledge
                .as_ref()
                .filter(|f| f.agent == spec.slug && !f.context.is_empty())
            {
                system = format!("{}\n\n{}", system.trim_end(), found.context);
            }
            set_instructions(&mut messages, &system);
            messages.extend(history::expand(&work.progress.parts));
            if let Some(extra) = &repair {
                messages.extend(extra.iter().cloned());
            }
            let request = ModelRequest {
                model: String::new(),
                messages,
                tools: work.tools.specs(),
                output_schema: spec.output_schema.clone(),
                temperature: spec.temperature,
                top_p: spec.top_p,
                max_tokens: spec.max_tokens,
                api_key: None,
            };
            let buffer = spec.output_schema.is_some()
                || !spec.guardrails.output.blocked_patterns.is_empty()
                || spec.guardrails.output.schema.is_some()
                || spec.guardrails.output.classifier.is_some();
            let started = Timestamp::now();
            let clock = Instant::now();
            let mut step = model_step(
                self.deps.retry,
                &work.candidates,
                &request,
                self.publisher,
                buffer,
                self.cancel,
                &mut work.progress.streaming,
            )
            .await;
            work.progress.streaming.clear();
            work.progress.model_calls += 1;
            if let Some(usage) = &step.usage {
                work.progress.add_usage(usage);
            }
            record_attempts(work, &mut step);
            let spec = &work.agent.spec;
            work.progress.model = step.model.clone();
            work.progress.steps.push(RunStep {
                kind: StepKind::Model,
                name: step.model.clone(),
                agent: spec.slug.clone(),
                started_at: started,
                duration_ms: clock.elapsed().as_millis() as u64,
                input: json!({
                    "messages": request.messages.len(),
                    "tools": request.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
                    "output_schema": request.output_schema.is_some(),
                }),
                output: json!({
                    "text": clip(&step.text, TRACE_CHARS),
                    "tool_calls": step.calls.iter().map(|c| json!({"id": c.id, "name": c.name, "arguments": clip(&c.arguments, TRACE_CHARS)})).collect::<Vec<_>>(),
                    "finish_reason": step.finish.map(FinishReason::as_str),
                }),
                usage: step.usage,
                error: step.error.as_ref().map(|(_, message)| message.clone()),
            });
            // Text held back for checks is never kept unchecked, not even partly.
            let partial = if buffer {
                String::new()
            } else {
                step.text.clone()
            };
            if step.cancelled {
                return End::Cancelled { partial };
            }
            if let Some((failure, message)) = step.error {
                return End::Failed {
                    failure,
                    message,
                    partial,
                };
            }
            if step.calls.is_empty() {
                // The final answer: structured output, then output guardrails.
                let mut text = step.text;
                let mut structured_value = None;
                if let Some(schema) = &spec.output_schema {
                    match structured::validate(schema, &text) {
                        Ok(value) => {
                            text = structured::render(&value);
                            structured_value = Some(value);
                        }
                        Err(problem) if !repaired => {
                            repaired = true;
                            repair = Some(vec![
                                ModelMessage::Assistant {
                                    text: text.clone(),
                                    tool_calls: Vec::new(),
                                },
                                ModelMessage::User {
                                    text: structured::repair_prompt(&problem),
                                },
                            ]);
                            continue;
                        }
                        Err(problem) => {
                            return End::failed(RunFailure::InvalidStructuredOutput, problem)
                        }
                    }
                }
                if buffer {
                    let checks = &step_text_for_checks(&text, &structured_value);
                    if let Some(trip) =
                        Box::pin(guardrails::screen_output(self.deps, work, checks)).await
                    {
                        return End::Tripped(trip);
                    }
                    if !text.is_empty() {
                        self.publisher
                            .publish(RunEvent::MessageDelta { text: text.clone() });
                    }
                }
                return End::Answer {
                    text,
                    structured: structured_value,
                    finish: step.finish.unwrap_or(FinishReason::Stop),
                };
            }
            repair = None;
            // Text beside tool calls ("let me check") was streamed as it came; when answers
            // are held back for checks it is neither shown nor kept, as it was not checked.
            if !step.text.is_empty() && !buffer {
                work.progress
                    .parts
                    .push(ContentPart::Text { text: step.text });
            }
            if let Some(end) = Box::pin(self.run_calls(work, step.calls)).await {
                return end;
            }
        }
    }

    /// Runs a step's tool calls: handoffs, approvals, and the rest concurrently.
    async fn run_calls(&self, work: &mut Work, calls: Vec<ToolCall>) -> Option<End> {
        for call in &calls {
            let arguments = serde_json::from_str(&call.arguments)
                .unwrap_or_else(|_| Value::String(call.arguments.clone()));
            work.progress.parts.push(ContentPart::ToolCall {
                id: call.id.clone(),
                name: call.name.clone(),
                arguments,
            });
        }
        let max_calls = work.agent.spec.budgets.max_tool_calls;
        work.progress.tool_calls += calls.len() as u32;
        if work.progress.tool_calls > max_calls {
            return Some(End::failed(
                RunFailure::ToolCallBudgetExceeded,
                format!(
                    "the run asked for more than {max_calls} tool calls (budgets.max_tool_calls)"
                ),
            ));
        }
        let handoff = calls.iter().find_map(|c| match work.tools.get(&c.name) {
            Some(tools::Bound {
                kind: Kind::Handoff { slug },
                ..
            }) => Some((c.id.clone(), slug.clone())),
            _ => None,
        });
        let mut runnable = Vec::new();
        let mut pending = Vec::new();
        let mut for_client = 0usize;
        let mut skipped: Vec<(ToolCall, String)> = Vec::new();
        for call in calls {
            let bound = work.tools.get(&call.name);
            match bound.map(|b| (&b.kind, b.approval)) {
                Some((Kind::Client, _)) => for_client += 1,
                Some((Kind::Handoff { .. }, _)) => {
                    if handoff.as_ref().is_some_and(|(id, _)| *id != call.id) {
                        skipped.push((
                            call,
                            "Only one handoff can be taken at a time; this one was ignored."
                                .to_owned(),
                        ));
                    }
                }
                Some((Kind::Tool(_), Some(_))) if handoff.is_some() => {
                    skipped.push((
                        call,
                        "Not run: the conversation was handed off to another agent.".to_owned(),
                    ));
                }
                Some((Kind::Tool(_), Some(approver))) => match tools::parse_arguments(bound, &call)
                {
                    Ok(arguments) => pending.push(Pending {
                        call_id: call.id,
                        name: call.name,
                        arguments,
                        approver,
                        decision: None,
                    }),
                    Err(problem) => skipped.push((call, problem)),
                },
                _ => runnable.push(call),
            }
        }
        for (call, note) in skipped.drain(..) {
            self.finish_call(work, &call, ToolOutput::error(note), 0);
        }
        self.run_tools(work, runnable).await;
        if let Some(text) = work.progress.end_turn.take() {
            // A tool ended the turn (the conversation went to people): its answer is final.
            if !text.is_empty() {
                self.publisher
                    .publish(RunEvent::MessageDelta { text: text.clone() });
            }
            return Some(End::Answer {
                text,
                structured: None,
                finish: FinishReason::Stop,
            });
        }
        if let Some((call_id, slug)) = handoff {
            if let Some(end) = self.hand_off(work, &call_id, &slug).await {
                return Some(end);
            }
        }
        if !pending.is_empty() {
            Some(End::Paused(pending))
        } else if for_client > 0 {
            // The client runs these: the run ends here with the calls for it to make.
            Some(End::Answer {
                text: String::new(),
                structured: None,
                finish: FinishReason::ToolCalls,
            })
        } else {
            None
        }
    }

    /// Runs calls concurrently (bounded); their results are recorded in call order.
    async fn run_tools(&self, work: &mut Work, calls: Vec<ToolCall>) {
        if calls.is_empty() {
            return;
        }
        for call in &calls {
            let arguments = tools::parse_arguments(work.tools.get(&call.name), call)
                .unwrap_or_else(|_| Value::String(call.arguments.clone()));
            self.publisher.publish(RunEvent::ToolStarted {
                call_id: call.id.clone(),
                name: call.name.clone(),
                arguments,
            });
        }
        let tools = work.tools.clone();
        let context = work.context.clone();
        let results: Vec<(ToolCall, ToolOutput, u64)> = futures_util::stream::iter(calls)
            .map(|call| {
                let tools = tools.clone();
                let context = context.clone();
                async move {
                    let clock = Instant::now();
                    let output = tools::execute(tools.get(&call.name), &context, &call).await;
                    (call, output, clock.elapsed().as_millis() as u64)
                }
            })
            .buffered(TOOL_CONCURRENCY)
            .collect()
            .await;
        for (call, output, duration_ms) in results {
            self.finish_call(work, &call, output, duration_ms);
        }
    }

    /// Records a call's result: the part the model sees, the event, the trace step.
    fn finish_call(&self, work: &mut Work, call: &ToolCall, output: ToolOutput, duration_ms: u64) {
        let content = if output.content.chars().count() > MAX_TOOL_RESULT_CHARS {
            format!(
                "{}\n[cut: the result was longer than {MAX_TOOL_RESULT_CHARS} characters]",
                clip(&output.content, MAX_TOOL_RESULT_CHARS)
            )
        } else {
            output.content
        };
        if output.is_error {
            tracing::info!(run.id = %work.context.run, tool = %call.name, error = %clip(&content, 300), "a tool call failed");
        }
        if let Some(text) = output.end_turn {
            work.progress.end_turn = Some(text);
        }
        self.publisher.publish(RunEvent::ToolCompleted {
            call_id: call.id.clone(),
            name: call.name.clone(),
            result: clip(&content, TRACE_CHARS),
            is_error: output.is_error,
            duration_ms,
        });
        work.progress.steps.push(RunStep {
            kind: StepKind::Tool,
            name: call.name.clone(),
            agent: work.agent.spec.slug.clone(),
            started_at: Timestamp::now(),
            duration_ms,
            input: serde_json::from_str(&call.arguments)
                .unwrap_or_else(|_| Value::String(clip(&call.arguments, TRACE_CHARS))),
            output: Value::String(clip(&content, TRACE_CHARS)),
            usage: None,
            error: output.is_error.then(|| clip(&content, 300)),
        });
        work.progress.parts.push(ContentPart::ToolResult {
            call_id: call.id.clone(),
            output: Value::String(content),
            is_error: output.is_error,
        });
        // The answer cites what its tools returned links to, each link once.
        for source in output.sources {
            let cited = work
                .progress
                .parts
                .iter()
                .filter(|p| matches!(p, ContentPart::Citation { .. }))
                .collect::<Vec<_>>();
            if cited.len() >= MAX_CITATIONS
                || cited.iter().any(|p| knowledge::same_source(p, &source))
            {
                continue;
            }
            work.progress.parts.push(source.citation());
        }
    }

    /// Hands the run to `slug`: same history, the target's instructions, tools and model.
    async fn hand_off(&self, work: &mut Work, call_id: &str, slug: &str) -> Option<End> {
        let from = work.agent.spec.slug.clone();
        let call = ToolCall {
            id: call_id.to_owned(),
            name: tools::handoff_tool_name(slug),
            arguments: "{}".into(),
        };
        let target = match self
            .deps
            .service
            .get_agent(&work.agent.tenant_id, &AgentRef::Slug(slug.to_owned()))
            .await
        {
            Ok(target) => target,
            Err(error) => {
                let output = ToolOutput::error(format!("the handoff to `{slug}` failed: {error}"));
                self.finish_call(work, &call, output, 0);
                return None;
            }
        };
        let candidates = match self.deps.registry.candidates(
            &target.spec.model,
            &target.spec.fallback_models,
            &work.keys,
        ) {
            Ok(candidates) => candidates,
            Err(error) => {
                let output =
                    ToolOutput::error(format!("the agent `{slug}` cannot answer now: {error}"));
                self.finish_call(work, &call, output, 0);
                return None;
            }
        };
        let tools = match offered_tools(self.deps, &target, &work.options).await {
            Ok(tools) => tools,
            Err(error) => {
                return Some(End::failed(RunFailure::ToolsUnavailable, error.to_string()))
            }
        };
        self.finish_call(
            work,
            &call,
            ToolOutput::ok(json!({"assistant": slug}).to_string()),
            0,
        );
        self.publisher.publish(RunEvent::Handoff {
            from: from.clone(),
            to: slug.to_owned(),
        });
        work.progress.parts.push(ContentPart::Handoff {
            from: from.clone(),
            to: slug.to_owned(),
        });
        work.progress.steps.push(RunStep {
            kind: StepKind::Handoff,
            name: slug.to_owned(),
            agent: from,
            started_at: Timestamp::now(),
            duration_ms: 0,
            input: Value::Null,
            output: Value::Null,
            usage: None,
            error: None,
        });
        for warning in &tools.warnings {
            tracing::warn!(run.id = %work.context.run, agent = %slug, "{warning}");
        }
        work.context.agent = slug.to_owned();
        work.agent = target;
        work.candidates = candidates;
        work.tools = tools;
        None
    }

    /// Takes up a paused run: each decided call runs (approved) or becomes a result that says
    /// it was not run (rejected, expired), then the loop goes on.
    pub(crate) async fn resume(&self, work: &mut Work, pending: Vec<Pending>) -> End {
        for call in pending {
            let tool_call = ToolCall {
                id: call.call_id.clone(),
                name: call.name.clone(),
                arguments: call.arguments.to_string(),
            };
            let decision = call.decision.unwrap_or(Decision {
                approve: false,
                reason: None,
                by: frontdesk_core::run::DecidedBy::Expired,
            });
            work.progress.steps.push(RunStep {
                kind: StepKind::Approval,
                name: call.name.clone(),
                agent: work.agent.spec.slug.clone(),
                started_at: Timestamp::now(),
                duration_ms: 0,
                input: call.arguments.clone(),
                output: json!({"approved": decision.approve, "by": decision.by, "reason": decision.reason}),
                usage: None,
                error: None,
            });
            if decision.approve {
                self.run_tools(work, vec![tool_call]).await;
            } else {
                let why = decision
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                let note = if decision.by == frontdesk_core::run::DecidedBy::Expired {
                    format!("The call was not run: nobody approved it in time{why}.")
                } else {
                    format!("The call was not run: it was rejected{why}.")
                };
                self.finish_call(work, &tool_call, ToolOutput::error(note), 0);
            }
        }
        // Calls of the same step that the client runs itself are still its to make: the run
        // ends with them, as it would have without the approval (the model is not asked again).
        if client_calls_open(work) {
            return End::Answer {
                text: String::new(),
                structured: None,
                finish: FinishReason::ToolCalls,
            };
        }
        self.drive(work).await
    }
}

/// The tools a run offers for `agent`: its own (built-ins, webhooks, MCP servers' tools,
/// handoffs) and the caller's. One place for a new run, a handoff and a resumed run alike.
pub(crate) async fn offered_tools(
    deps: &Deps,
    agent: &frontdesk_core::agent::Agent,
    options: &crate::request::TurnOptions,
) -> frontdesk_core::Result<ToolSet> {
    let mut tools = ToolSet::build(&deps.tools, agent).await?;
    tools.add_client_tools(&options.client_tools);
    Ok(tools)
}

/// Whether the answer so far holds a call of a client tool without its result.
fn client_calls_open(work: &Work) -> bool {
    let parts = &work.progress.parts;
    parts.iter().any(|part| match part {
        ContentPart::ToolCall { id, name, .. } => {
            matches!(
                work.tools.get(name),
                Some(tools::Bound {
                    kind: Kind::Client,
                    ..
                })
            ) && !parts
                .iter()
                .any(|p| matches!(p, ContentPart::ToolResult { call_id, .. } if call_id == id))
        }
        _ => false,
    })
}

/// Puts the attempts that failed before a model call started (retries, fallbacks) in the
/// trace, each with its model, error and timing. A call that failed as a whole keeps its
/// last attempt as its own error.
fn record_attempts(work: &mut Work, step: &mut StepResult) {
    let mut attempts = std::mem::take(&mut step.failed_attempts);
    if step.error.is_some() {
        if let Some(last) = attempts.pop() {
            step.model = last.label;
        }
    }
    for (number, attempt) in attempts.into_iter().enumerate() {
        work.progress.steps.push(RunStep {
            kind: StepKind::ModelAttempt,
            name: attempt.label,
            agent: work.agent.spec.slug.clone(),
            started_at: attempt.started_at,
            duration_ms: attempt.duration.as_millis() as u64,
            input: json!({"attempt": number + 1}),
            output: json!({"failure": RunFailure::from_model(&attempt.error)}),
            usage: None,
            error: Some(attempt.error.to_string()),
        });
    }
}

/// What output guardrails look at: the JSON for a structured answer, else the text.
fn step_text_for_checks(text: &str, structured: &Option<Value>) -> String {
    match structured {
        Some(value) => value.to_string(),
        None => text.to_owned(),
    }
}
