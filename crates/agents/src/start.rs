//! Preparing a turn: everything between a [`TurnRequest`] and a run's task. It finds the
//! conversation (creating it with an imported history for a new one), checks what a turn
//! checks — in the order a client expects: the conversation, a paused run, the agent, its
//! model (with the tenant's own keys), the quota — stores the new user message (nothing is
//! stored when a check fails, nor when the history cannot fit the model), and builds the
//! model request from the branch the turn answers. A run that goes on after its approvals is
//! prepared here too, from its saved state, so it has the same agent rules and tools.

use std::sync::Arc;

use frontdesk_core::agent::{Agent, AgentRef};
use frontdesk_core::context::RunContext;
use frontdesk_core::conversation::{
    ContentPart, Conversation, Message, MessageDraft, MessageRole, Parent,
};
use frontdesk_core::handoff::Handler;
use frontdesk_core::id::{ConversationId, MessageId, RunId, TenantId};
use frontdesk_core::model::ModelMessage;
use frontdesk_core::policy::AfterHandoff;
use frontdesk_core::service::TurnStart;
use frontdesk_core::time::Timestamp;
use frontdesk_core::tool::ToolContext;
use frontdesk_core::{Error, Result};

use crate::deps::{open_keys, window_of, Deps, MAX_HISTORY};
use crate::guardrails;
use crate::history;
use crate::import;
use crate::recent::RecentPaths;
use crate::request::{
    check_text, AgentMatch, Input, Resolved, Resumption, Target, TurnOptions, TurnRequest,
};
use crate::tools::ToolSet;
use crate::work::{Meta, Pending, Progress, Work};

/// A run ready to start.
pub(crate) struct Prepared {
    pub meta: Meta,
    pub work: Work,
    pub stage: Stage,
}

/// Whether a run begins or goes on.
pub(crate) enum Stage {
    /// A new run: `run.started`, the input guardrails, then the loop.
    Fresh,
    /// A run after its approvals: the decided calls, then the loop, on the same log.
    Resumed {
        pending: Vec<Pending>,
        /// Its events so far (the log is reopened with them).
        events: Vec<frontdesk_core::run::SequencedEvent>,
    },
}

/// Prepares any turn.
pub(crate) async fn prepare(
    deps: &Deps,
    recent: &RecentPaths,
    request: TurnRequest,
) -> Result<Prepared> {
    let TurnRequest {
        tenant,
        target,
        input,
        options,
    } = request;
    frontdesk_core::context::check("context", &options.context)?;
    frontdesk_core::context::check("context", &options.page_context)?;
    if let Some(model) = &options.model {
        frontdesk_core::agent::model_name("model", model)?;
    }
    if let Input::Resume(resumption) = input {
        return resume(deps, resumption, options).await;
    }
    let (conversation, agent_match, resolved) = match target {
        Target::New(new) => {
            let (conversation, resolved) =
                import::new_conversation(deps, &tenant, new, input).await?;
            (conversation, None, resolved)
        }
        Target::Conversation { id, agent } => {
            let resolved = resolve(deps, &tenant, &id, agent.as_ref(), input).await?;
            (id, agent, resolved)
        }
    };
    fresh(
        deps,
        recent,
        &tenant,
        &conversation,
        agent_match.as_ref(),
        resolved,
        options,
    )
    .await
}

/// A conversation of another agent than the one the caller addresses is refused.
fn check_agent(conversation: &Conversation, expected: Option<&AgentMatch>) -> Result<()> {
    match expected {
        Some(expected) if conversation.agent_id != expected.agent => Err(Error::invalid(
            expected.field,
            "this conversation belongs to another agent",
        )),
        _ => Ok(()),
    }
}

/// What an input on an existing conversation answers; a reply with the client's tool results
/// stores them first (as part of the answer that asked for them).
async fn resolve(
    deps: &Deps,
    tenant: &TenantId,
    conversation: &ConversationId,
    agent: Option<&AgentMatch>,
    input: Input,
) -> Result<Resolved> {
    Ok(match input {
        Input::Send { text } => Resolved::Send(text),
        Input::Edit { message, text } => Resolved::Edit { message, text },
        Input::Regenerate { message } => Resolved::Regenerate(message),
        Input::Reply {
            after,
            tool_results,
            text,
        } => {
            let stored = deps.service.get_conversation(tenant, conversation).await?;
            check_agent(&stored, agent)?;
            let after = after.or(stored.active_message_id);
            if text.is_none() && tool_results.is_empty() {
                return Err(Error::invalid("input", "must not be empty"));
            }
            let last = if tool_results.is_empty() {
                after
            } else {
                Some(
                    import::store_tool_results(deps, tenant, conversation, after, tool_results)
                        .await?,
                )
            };
            match (text, last) {
                (Some(text), Some(after)) => Resolved::Reply { after, text },
                (Some(text), None) => Resolved::Send(text),
                (None, Some(after)) => Resolved::Continue(after),
                (None, None) => return Err(Error::invalid("input", "nothing to answer")),
            }
        }
        Input::History => {
            return Err(Error::invalid(
                "input",
                "only a new conversation answers its imported history",
            ))
        }
        Input::Resume(_) => return Err(Error::invalid("input", "not a new turn")),
        Input::Continue => {
            let stored = deps.service.get_conversation(tenant, conversation).await?;
            check_agent(&stored, agent)?;
            match stored.active_message_id {
                Some(active) => Resolved::Continue(active),
                None => return Err(Error::invalid("input", "nothing to answer")),
            }
        }
    })
}

/// The message a turn stores, and where; or the stored one it answers.
enum Question {
    New { text: String, parent: Parent },
    Stored(Box<Message>),
}

/// Prepares a new run on a conversation.
async fn fresh(
    deps: &Deps,
    recent: &RecentPaths,
    tenant: &TenantId,
    conversation: &ConversationId,
    agent_match: Option<&AgentMatch>,
    resolved: Resolved,
    options: TurnOptions,
) -> Result<Prepared> {
    // What the turn starts from is read in one call; its parts are checked in the order a
    // turn's checks go (a missing conversation comes first). A new message goes after the
    // active one: its branch is read with the rest.
    let sends = matches!(resolved, Resolved::Send(_));
    let known = sends.then(|| recent.get(tenant, conversation)).flatten();
    let TurnStart {
        conversation,
        agent: entry,
        active_path,
        paused_run,
        keys,
        quota,
    } = deps
        .service
        .turn_start(
            tenant,
            conversation,
            sends.then_some(MAX_HISTORY),
            known.as_ref().map(|(leaf, _)| leaf),
        )
        .await?;
    check_agent(&conversation, agent_match)?;
    // People handle the conversation: a new message is stored for them and no run starts.
    if conversation.handler == Handler::Human {
        return Err(match resolved {
            Resolved::Send(text) => {
                let draft = MessageDraft::text(MessageRole::User, check_text(text)?);
                let (message, event) = deps
                    .service
                    .message_for_people(tenant, &conversation.id, draft)
                    .await?;
                deps.tools.feed.publish(
                    tenant,
                    &conversation.id,
                    crate::feed::FeedItem::Event(Arc::new(event)),
                );
                Error::ForPeople {
                    message: Box::new(message),
                }
            }
            _ => Error::Conflict {
                code: "handled_by_human",
                message: "a person handles this conversation now; send a new message instead"
                    .to_owned(),
            },
        });
    }
    // One thing at a time: a run waiting for approvals is decided (or cancelled) first, or
    // its answer would land on a branch the conversation has left.
    if let Some(paused) = paused_run {
        let record = deps.service.get_run(tenant, &paused).await?;
        return Err(Error::awaiting_approval(
            "approval_pending",
            paused,
            crate::approvals::pending_approvals(&record),
        ));
    }
    let entry = entry.map_err(|e| match e {
        Error::NotFound { .. } => Error::Conflict {
            code: "agent_unavailable",
            message: "the conversation's agent was deleted; start a new conversation".to_owned(),
        },
        other => other,
    })?;
    let question = question(deps, tenant, &conversation.id, resolved).await?;
    let branch: Arc<[Message]> = match (&question, active_path) {
        (
            Question::New {
                parent: Parent::Active,
                ..
            },
            Some(read),
        ) => active_branch(deps, tenant, &conversation, read, known).await?,
        (
            Question::New {
                parent: Parent::Root,
                ..
            },
            _,
        ) => Arc::new([]),
        (Question::New { parent, .. }, _) => deps
            .service
            .message_path(tenant, &conversation.id, parent.message(), MAX_HISTORY)
            .await?
            .into(),
        (Question::Stored(anchor), _) => {
            let mut path = deps
                .service
                .message_path(tenant, &conversation.id, Some(&anchor.id), MAX_HISTORY)
                .await?;
            // The anchor itself is the last message; who answers is decided by what came
            // before it (an answer being continued is on the path to its own handoffs).
            if anchor.role == MessageRole::User {
                path.pop();
            }
            path.into()
        }
    };
    // A turn's version and model are the conversation's own agent's (an agent a handoff
    // left in charge runs as it is, as it does when handed to within the run).
    let entry = with_model(as_of(deps, entry, options.agent_version).await?, &options);
    // A turn answered by another agent (a voice agent's supervisor) is that agent's run.
    let (entry, agent) = match &options.agent {
        Some(slug) => {
            let other = deps
                .service
                .get_agent(&entry.tenant_id, &AgentRef::Slug(slug.clone()))
                .await?;
            (other.clone(), other)
        }
        None => {
            let agent = agent_in_charge(deps, entry.clone(), &branch).await?;
            (entry, agent)
        }
    };
    let keys = open_keys(keys?);
    let candidates = deps.candidates(&agent, &keys)?;
    let window = window_of(&candidates);
    quota?;
    // The branch the question hangs from, kept with the answer for the next turn (not for an
    // answer being continued: its branch holds the answer already).
    let keeps = match &question {
        Question::New { .. } => true,
        Question::Stored(anchor) => anchor.role == MessageRole::User,
    };
    // The history is built before the new message is stored, so that one that cannot fit
    // the model is refused with nothing written.
    let (base, user_message) = match question {
        Question::New { text, parent } => {
            let text = if agent.spec.guardrails.input.redact_pii {
                guardrails::redact_pii(&text)
            } else {
                text
            };
            let base = fitted(&agent, &branch, Some(&text), window)?;
            let draft = MessageDraft {
                parent,
                ..MessageDraft::text(MessageRole::User, text)
            };
            let stored = deps
                .service
                .append_message(tenant, &conversation.id, draft)
                .await?;
            (base, stored)
        }
        Question::Stored(anchor) => {
            let mut path = branch.to_vec();
            if anchor.role == MessageRole::User {
                path.push((*anchor).clone());
            }
            (fitted(&agent, &path, None, window)?, *anchor)
        }
    };
    let run_id = RunId::new();
    let meta = Meta {
        run_id: run_id.clone(),
        tenant: tenant.clone(),
        conversation: conversation.id.clone(),
        user_message,
        entry_agent: entry.spec.slug.clone(),
        answer_id: MessageId::new(),
        created_at: Timestamp::now(),
        branch: keeps.then_some(branch),
    };
    let work = Work {
        context: ToolContext {
            tenant: tenant.clone(),
            run: run_id,
            conversation: conversation.id.clone(),
            agent: agent.spec.slug.clone(),
            end_user: conversation.end_user_id.clone(),
            run_context: RunContext::layered([
                &options.page_context,
                &conversation.metadata,
                &options.context,
            ]),
        },
        agent,
        candidates,
        // Gathered in the run's task: listing MCP servers' tools may take a while.
        tools: ToolSet::default(),
        base,
        progress: Progress::default(),
        keys,
        options,
    };
    Ok(Prepared {
        meta,
        work,
        stage: Stage::Fresh,
    })
}

/// The message a resolved input stores (with its place), or the stored one it answers.
async fn question(
    deps: &Deps,
    tenant: &TenantId,
    conversation: &ConversationId,
    resolved: Resolved,
) -> Result<Question> {
    let message =
        |id: MessageId| async move { deps.service.get_message(tenant, conversation, &id).await };
    Ok(match resolved {
        Resolved::Send(text) => Question::New {
            text: check_text(text)?,
            parent: Parent::Active,
        },
        Resolved::Edit { message: id, text } => {
            let original = message(id).await?;
            if original.role != MessageRole::User {
                return Err(Error::invalid(
                    "message_id",
                    "only a user message can be edited",
                ));
            }
            Question::New {
                text: check_text(text)?,
                parent: Parent::of(original.parent_id),
            }
        }
        Resolved::Regenerate(id) => {
            let chosen = message(id).await?;
            let question = match (chosen.role, &chosen.parent_id) {
                (MessageRole::User, _) => chosen,
                (MessageRole::Assistant, Some(parent)) => message(parent.clone()).await?,
                _ => {
                    return Err(Error::invalid(
                        "message_id",
                        "only an answer (or the message it answers) can be regenerated",
                    ))
                }
            };
            if question.role != MessageRole::User {
                return Err(Error::invalid(
                    "message_id",
                    "only an answer to a user message can be regenerated",
                ));
            }
            Question::Stored(Box::new(question))
        }
        Resolved::Reply { after, text } => {
            // The message must be this conversation's.
            message(after.clone()).await?;
            Question::New {
                text: check_text(text)?,
                parent: Parent::Message(after),
            }
        }
        Resolved::Continue(after) => Question::Stored(Box::new(message(after).await?)),
    })
}

/// The model request's history from a branch (and the pending message), fitted to `window`.
fn fitted(
    agent: &Agent,
    branch: &[Message],
    pending: Option<&str>,
    window: u32,
) -> Result<Vec<ModelMessage>> {
    let (request, dropped) = history::model_request(&agent.spec, branch, pending, window)?;
    if dropped > 0 {
        tracing::debug!(agent = %agent.spec.slug, dropped, window, "history trimmed to the context window");
    }
    Ok(request.messages)
}

/// The agent's config as of a saved version, when the turn asks for one.
async fn as_of(deps: &Deps, agent: Agent, version: Option<i64>) -> Result<Agent> {
    match version {
        Some(version) if version != agent.version => {
            let saved = deps
                .service
                .agent_version(&agent.tenant_id, &AgentRef::Id(agent.id.clone()), version)
                .await?;
            Ok(Agent {
                version: saved.version,
                spec: saved.spec,
                ..agent
            })
        }
        _ => Ok(agent),
    }
}

/// The agent with the model the turn asks for, without its fallbacks.
fn with_model(mut agent: Agent, options: &TurnOptions) -> Agent {
    if let Some(model) = &options.model {
        agent.spec.model.clone_from(model);
        agent.spec.fallback_models.clear();
    }
    agent
}

/// The agent in charge on a branch: the conversation's own, or the one a handoff on the
/// branch left in charge (when the conversation's agent keeps handoffs in place).
async fn agent_in_charge(deps: &Deps, entry: Agent, branch: &[Message]) -> Result<Agent> {
    if entry.spec.after_handoff == AfterHandoff::Return || entry.spec.handoffs.is_empty() {
        return Ok(entry);
    }
    let last = branch.iter().rev().find_map(|m| {
        m.content.iter().rev().find_map(|part| match part {
            ContentPart::Handoff { to, .. } => Some(to.clone()),
            _ => None,
        })
    });
    let Some(slug) = last else {
        return Ok(entry);
    };
    if slug == entry.spec.slug {
        return Ok(entry);
    }
    match deps
        .service
        .get_agent(&entry.tenant_id, &AgentRef::Slug(slug))
        .await
    {
        Ok(agent) => Ok(agent),
        Err(Error::NotFound { .. }) => Ok(entry),
        Err(other) => Err(other),
    }
}

/// The conversation's active branch: the one kept from this process's last answer when the
/// conversation still ends there, else the one read with the turn.
async fn active_branch(
    deps: &Deps,
    tenant: &TenantId,
    conversation: &Conversation,
    read: Vec<Message>,
    known: Option<(MessageId, Arc<[Message]>)>,
) -> Result<Arc<[Message]>> {
    match (known, &conversation.active_message_id) {
        (Some((leaf, path)), Some(active)) if leaf == *active => Ok(path),
        // Left out for a leaf that is no longer active (PostgreSQL reads the conversation and
        // the branch at slightly different moments): read it now.
        (Some(_), Some(_)) if read.is_empty() => Ok(deps
            .service
            .message_path(tenant, &conversation.id, None, MAX_HISTORY)
            .await?
            .into()),
        _ => Ok(read.into()),
    }
}

/// Prepares a run that goes on after its approvals, from its saved state.
async fn resume(
    deps: &Deps,
    resumption: Box<Resumption>,
    options: TurnOptions,
) -> Result<Prepared> {
    let Resumption { record, paused } = *resumption;
    let tenant = record.tenant_id.clone();
    let conversation = deps
        .service
        .get_conversation(&tenant, &record.conversation_id)
        .await?;
    let agent = deps
        .service
        .get_agent(&tenant, &AgentRef::Id(paused.agent_id.clone()))
        .await?;
    // The version and model the run started with, for the conversation's own agent (one a
    // handoff put in charge goes on with its current config).
    let agent = match paused.agent_id == conversation.agent_id {
        true => with_model(as_of(deps, agent, options.agent_version).await?, &options),
        false => agent,
    };
    let user_message = deps
        .service
        .get_message(&tenant, &record.conversation_id, &paused.user_message_id)
        .await?;
    let keys = deps.keys(&tenant).await?;
    let candidates = deps.candidates(&agent, &keys)?;
    let branch = deps
        .service
        .message_path(
            &tenant,
            &record.conversation_id,
            Some(&user_message.id),
            MAX_HISTORY,
        )
        .await?;
    let window = window_of(&candidates);
    let base = fitted(&agent, &branch, None, window)?;
    let meta = Meta {
        run_id: record.id.clone(),
        tenant: tenant.clone(),
        conversation: record.conversation_id.clone(),
        user_message,
        entry_agent: record.agent.clone(),
        answer_id: paused.answer_id.clone().unwrap_or_default(),
        created_at: record.created_at,
        // The next turn reads its branch: a resumed run is rare.
        branch: None,
    };
    let work = Work {
        context: ToolContext {
            tenant,
            run: record.id.clone(),
            conversation: record.conversation_id.clone(),
            agent: agent.spec.slug.clone(),
            end_user: paused.end_user.clone(),
            run_context: RunContext::layered([
                &options.page_context,
                &conversation.metadata,
                &options.context,
            ]),
        },
        agent,
        candidates,
        tools: ToolSet::default(),
        base,
        progress: paused.progress,
        keys,
        options,
    };
    Ok(Prepared {
        meta,
        work,
        stage: Stage::Resumed {
            pending: paused.pending,
            events: record.events,
        },
    })
}
