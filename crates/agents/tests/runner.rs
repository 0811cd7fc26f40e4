//! The Runner with a scripted model provider (a real `ModelProvider` whose answers each test
//! writes) over a real SQLite store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failure should fail loudly.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use frontdesk_agents::{Input, RunHub, Runner, TurnRequest};
use frontdesk_core::config::Limits;
use frontdesk_core::conversation::{MessageRole, Usage};
use frontdesk_core::id::{ConversationId, TenantId};
use frontdesk_core::model::{
    ModelError, ModelEvent, ModelMessage, ModelProvider, ModelRequest, ModelStream,
};
use frontdesk_core::run::{FinishReason, RunEvent, RunFailure, RunStatus, StepKind};
use frontdesk_core::service::{NewConversation, NewTenant};
use frontdesk_core::store::BaseStore;
use frontdesk_core::{Error, Service};
use frontdesk_models::fallback::RetryPolicy;
use frontdesk_models::registry::Registry;
use frontdesk_store::SqlStore;
use serde_json::json;

/// One scripted step of a model's answer.
#[derive(Clone)]
enum Step {
    Event(ModelEvent),
    Pause(u64),
    Fail(ModelError),
}

/// A provider that fails `stream()` with `refuse` when set, else plays `steps`; it records
/// the requests it gets.
#[derive(Clone, Default)]
struct Scripted {
    steps: Vec<Step>,
    refuse: Option<ModelError>,
    requests: Arc<Mutex<Vec<ModelRequest>>>,
}

#[async_trait]
impl ModelProvider for Scripted {
    async fn stream(&self, request: ModelRequest) -> Result<ModelStream, ModelError> {
        self.requests.lock().unwrap().push(request);
        if let Some(error) = &self.refuse {
            return Err(error.clone());
        }
        let steps = self.steps.clone();
        let stream = futures_util::stream::unfold(steps.into_iter(), |mut steps| async move {
            loop {
                match steps.next()? {
                    Step::Event(event) => return Some((Ok(event), steps)),
                    Step::Fail(error) => return Some((Err(error), steps)),
                    Step::Pause(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                }
            }
        });
        Ok(Box::pin(stream))
    }
}

fn text(t: &str) -> Step {
    Step::Event(ModelEvent::TextDelta(t.into()))
}

const USAGE: Usage = Usage {
    prompt_tokens: 10,
    completion_tokens: 3,
    total_tokens: 13,
};

struct Fixture {
    service: Service,
    runner: Runner,
    tenant: TenantId,
    conversation: ConversationId,
    _dir: tempfile::TempDir,
}

async fn fixture(providers: Vec<(&str, Scripted)>, model: &str, fallbacks: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let service = Service::new(Arc::new(store), Limits::default());
    let tenant = service
        .create_tenant(NewTenant {
            name: "T".into(),
            owner_email: None,
            monthly_token_quota: None,
        })
        .await
        .unwrap()
        .tenant
        .id;
    service
        .create_agent(&tenant, json!({"slug": "support", "name": "Support", "instructions": "Be kind.", "model": model, "fallback_models": fallbacks}))
        .await
        .unwrap();
    let conversation = service
        .create_conversation(
            &tenant,
            NewConversation {
                agent: "support".into(),
                end_user_id: None,
                title: None,
                metadata: Default::default(),
            },
        )
        .await
        .unwrap()
        .id;
    let mut registry = Registry::default();
    for (name, provider) in providers {
        registry.register(name, Arc::new(provider));
    }
    let retry = RetryPolicy {
        max_retries: 1,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    };
    let runner = Runner::new(service.clone(), registry, RunHub::default(), retry);
    Fixture {
        service,
        runner,
        tenant,
        conversation,
        _dir: dir,
    }
}

async fn drain(mut events: frontdesk_agents::Follower) -> Vec<RunEvent> {
    let mut out = Vec::new();
    while let Some(event) = events.next().await {
        out.push(event.event);
    }
    out
}

#[tokio::test]
async fn a_turn_streams_and_stores_both_messages() {
    let model = Scripted {
        steps: vec![
            text("Hello"),
            Step::Pause(5),
            text(" there!"),
            Step::Event(ModelEvent::Usage(USAGE)),
            Step::Event(ModelEvent::Finish(FinishReason::Stop)),
        ],
        ..Scripted::default()
    };
    let requests = model.requests.clone();
    let fx = fixture(vec![("script", model)], "script/m1", &[]).await;
    let run = fx
        .runner
        .start(TurnRequest::on(
            &fx.tenant,
            &fx.conversation,
            Input::Send { text: "Hi!".into() },
        ))
        .await
        .unwrap();
    let events = drain(run.events).await;
    let names: Vec<&str> = events.iter().map(RunEvent::name).collect();
    assert_eq!(
        names,
        [
            "run.started",
            "message.delta",
            "message.delta",
            "message.completed",
            "run.completed"
        ]
    );
    let RunEvent::MessageCompleted { message } = &events[3] else {
        unreachable!()
    };
    assert_eq!(message.text(), "Hello there!");
    assert_eq!(message.finish_reason, Some(FinishReason::Stop));
    assert_eq!(message.usage, Some(USAGE));
    assert_eq!(message.model.as_deref(), Some("script/m1"));
    assert_eq!(message.parent_id.as_ref(), Some(&run.user_message.id));
    assert_eq!(
        events[4],
        RunEvent::RunCompleted {
            status: RunStatus::Completed,
            usage: USAGE
        }
    );

    let (stored, _) = fx
        .service
        .list_messages(&fx.tenant, &fx.conversation, false, None, None)
        .await
        .unwrap();
    assert_eq!(
        stored
            .iter()
            .map(|m| (m.role, m.text()))
            .collect::<Vec<_>>(),
        vec![
            (MessageRole::User, "Hi!".to_owned()),
            (MessageRole::Assistant, "Hello there!".to_owned()),
        ]
    );
    // The model saw the instructions, then the user's message, under its own name.
    let request = requests.lock().unwrap()[0].clone();
    assert_eq!(request.model, "m1");
    assert_eq!(
        request.messages,
        vec![
            ModelMessage::System {
                text: "Be kind.".into()
            },
            ModelMessage::User { text: "Hi!".into() }
        ]
    );

    // The second turn carries the history.
    let run = fx
        .runner
        .start(TurnRequest::on(
            &fx.tenant,
            &fx.conversation,
            Input::Send {
                text: "Thanks".into(),
            },
        ))
        .await
        .unwrap();
    drain(run.events).await;
    let request = requests.lock().unwrap()[1].clone();
    assert_eq!(request.messages.len(), 4);
    assert_eq!(
        request.messages[2],
        ModelMessage::Assistant {
            text: "Hello there!".into(),
            tool_calls: vec![]
        }
    );
}

#[tokio::test]
async fn an_upstream_failure_keeps_the_partial_answer() {
    let model = Scripted {
        steps: vec![
            text("Partial"),
            Step::Fail(ModelError::Connect("reset".into())),
        ],
        ..Scripted::default()
    };
    let fx = fixture(vec![("script", model)], "script/m", &[]).await;
    let run = fx
        .runner
        .start(TurnRequest::on(
            &fx.tenant,
            &fx.conversation,
            Input::Send { text: "Hi".into() },
        ))
        .await
        .unwrap();
    let events = drain(run.events).await;
    let names: Vec<&str> = events.iter().map(RunEvent::name).collect();
    assert_eq!(
        names,
        [
            "run.started",
            "message.delta",
            "error",
            "message.completed",
            "run.completed"
        ]
    );
    // The provider's error arrives typed: a broken connection is `model_unreachable`.
    assert!(matches!(
        &events[2],
        RunEvent::Error {
            code: RunFailure::ModelUnreachable,
            ..
        }
    ));
    let RunEvent::MessageCompleted { message } = &events[3] else {
        unreachable!()
    };
    assert_eq!(
        (message.text(), message.finish_reason),
        ("Partial".to_owned(), Some(FinishReason::Error))
    );
    assert!(matches!(
        events[4],
        RunEvent::RunCompleted {
            status: RunStatus::Failed,
            ..
        }
    ));
}

#[tokio::test]
async fn a_failing_model_falls_back_before_the_first_token() {
    let broken = Scripted {
        refuse: Some(ModelError::Upstream {
            status: 503,
            message: "down".into(),
        }),
        ..Scripted::default()
    };
    let tries = broken.requests.clone();
    let good = Scripted {
        steps: vec![
            text("From the fallback"),
            Step::Event(ModelEvent::Finish(FinishReason::Stop)),
        ],
        ..Scripted::default()
    };
    let fx = fixture(
        vec![("broken", broken), ("good", good)],
        "broken/a",
        &["good/b"],
    )
    .await;
    // Headless: run to the end with nobody following, then read how it went.
    let outcome = fx
        .runner
        .run_to_end(TurnRequest::on(
            &fx.tenant,
            &fx.conversation,
            Input::Send { text: "Hi".into() },
        ))
        .await
        .unwrap();
    assert_eq!(outcome.status, RunStatus::Completed);
    assert!(outcome.failure.is_none());
    let message = outcome.message.expect("an answer");
    assert_eq!(message.text(), "From the fallback");
    assert_eq!(message.model.as_deref(), Some("good/b"));
    assert_eq!(tries.lock().unwrap().len(), 2, "one try and one retry");
    // The trace shows each failed attempt before the model call that answered.
    let record = fx
        .service
        .get_run(&fx.tenant, &outcome.run_id)
        .await
        .unwrap();
    let steps: Vec<(StepKind, &str)> = record
        .steps
        .iter()
        .map(|s| (s.kind, s.name.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            (StepKind::ModelAttempt, "broken/a"),
            (StepKind::ModelAttempt, "broken/a"),
            (StepKind::Model, "good/b"),
        ]
    );
    let attempt = &record.steps[0];
    assert!(
        attempt.error.as_deref().unwrap().contains("503"),
        "{attempt:?}"
    );
    assert_eq!(attempt.output["failure"], "model_error");
    assert_eq!(record.steps[1].input["attempt"], 2);
}

#[tokio::test]
async fn cancel_stops_the_answer_and_keeps_what_was_said() {
    let model = Scripted {
        steps: vec![text("Once upon"), Step::Pause(10_000), text(" a time")],
        ..Scripted::default()
    };
    let fx = fixture(vec![("script", model)], "script/m", &[]).await;
    let mut run = fx
        .runner
        .start(TurnRequest::on(
            &fx.tenant,
            &fx.conversation,
            Input::Send {
                text: "Tell me a story".into(),
            },
        ))
        .await
        .unwrap();
    // Wait for the first words, then press stop.
    loop {
        let event = run.events.next().await.unwrap();
        if event.event.name() == "message.delta" {
            break;
        }
    }
    assert!(
        matches!(
            fx.runner.cancel(&TenantId::new(), &run.run_id),
            Err(Error::NotFound { .. })
        ),
        "another tenant cannot cancel it"
    );
    fx.runner.cancel(&fx.tenant, &run.run_id).unwrap();
    let rest = drain(run.events).await;
    let RunEvent::MessageCompleted { message } = &rest[0] else {
        panic!("{rest:?}")
    };
    assert_eq!(
        (message.text(), message.finish_reason),
        ("Once upon".to_owned(), Some(FinishReason::Cancelled))
    );
    assert!(matches!(
        rest[1],
        RunEvent::RunCompleted {
            status: RunStatus::Cancelled,
            ..
        }
    ));
}

#[tokio::test]
async fn a_client_that_leaves_changes_nothing_and_can_come_back() {
    let model = Scripted {
        steps: vec![
            text("a"),
            Step::Pause(20),
            text("b"),
            Step::Pause(20),
            text("c"),
            Step::Event(ModelEvent::Finish(FinishReason::Stop)),
        ],
        ..Scripted::default()
    };
    let fx = fixture(vec![("script", model)], "script/m", &[]).await;
    let run = fx
        .runner
        .start(TurnRequest::on(
            &fx.tenant,
            &fx.conversation,
            Input::Send { text: "Hi".into() },
        ))
        .await
        .unwrap();
    let run_id = run.run_id.clone();
    drop(run.events);
    // Re-attach after event 2 (run.started, first delta): the rest arrives, nothing twice.
    let follower = fx.runner.log().follow(&run_id, &fx.tenant, 2).unwrap();
    let rest = drain(follower).await;
    let deltas: Vec<String> = rest
        .iter()
        .filter_map(|e| match e {
            RunEvent::MessageDelta { text } => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(deltas, ["b", "c"]);
    assert!(fx
        .runner
        .log()
        .follow(&run_id, &TenantId::new(), 0)
        .is_none());
    fx.runner.shutdown().await;
    let (stored, _) = fx
        .service
        .list_messages(&fx.tenant, &fx.conversation, false, None, None)
        .await
        .unwrap();
    assert_eq!(stored[1].text(), "abc");
}

#[tokio::test]
async fn an_unconfigured_model_is_refused_before_anything_is_stored() {
    let fx = fixture(vec![], "local/smollm2-135m", &[]).await;
    let error = fx
        .runner
        .start(TurnRequest::on(
            &fx.tenant,
            &fx.conversation,
            Input::Send { text: "Hi".into() },
        ))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            error,
            Error::Conflict {
                code: "model_unavailable",
                ..
            }
        ),
        "{error:?}"
    );
    let (stored, _) = fx
        .service
        .list_messages(&fx.tenant, &fx.conversation, false, None, None)
        .await
        .unwrap();
    assert!(stored.is_empty());
    // Another tenant's conversation is not found.
    let error = fx
        .runner
        .start(TurnRequest::on(
            &TenantId::new(),
            &fx.conversation,
            Input::Send { text: "Hi".into() },
        ))
        .await
        .err()
        .unwrap();
    assert!(matches!(error, Error::NotFound { .. }));
}

#[tokio::test]
async fn a_spent_monthly_quota_stops_turns_before_the_model_is_called() {
    let model = Scripted {
        steps: vec![
            text("Hi"),
            Step::Event(ModelEvent::Usage(USAGE)),
            Step::Event(ModelEvent::Finish(FinishReason::Stop)),
        ],
        ..Scripted::default()
    };
    let requests = model.requests.clone();
    let fx = fixture(vec![("script", model)], "script/m", &[]).await;
    // A tenant with a quota of 13 tokens: one turn (13 tokens) spends it.
    let quota_tenant = fx
        .service
        .create_tenant(NewTenant {
            name: "Q".into(),
            owner_email: None,
            monthly_token_quota: Some(13),
        })
        .await
        .unwrap()
        .tenant
        .id;
    fx.service
        .create_agent(
            &quota_tenant,
            json!({"slug": "support", "name": "S", "model": "script/m"}),
        )
        .await
        .unwrap();
    let conversation = fx
        .service
        .create_conversation(
            &quota_tenant,
            NewConversation {
                agent: "support".into(),
                end_user_id: None,
                title: None,
                metadata: Default::default(),
            },
        )
        .await
        .unwrap()
        .id;
    let run = fx
        .runner
        .start(TurnRequest::on(
            &quota_tenant,
            &conversation,
            Input::Send { text: "one".into() },
        ))
        .await
        .unwrap();
    drain(run.events).await;
    let error = fx
        .runner
        .start(TurnRequest::on(
            &quota_tenant,
            &conversation,
            Input::Send { text: "two".into() },
        ))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(error, Error::QuotaExceeded { retry_after_secs, .. } if retry_after_secs > 0),
        "{error:?}"
    );
    assert_eq!(
        requests.lock().unwrap().len(),
        1,
        "the model was not called again"
    );
    let (stored, _) = fx
        .service
        .list_messages(&quota_tenant, &conversation, false, None, None)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2, "the refused message was not stored");
    // The tenant without a quota is not affected.
    let run = fx
        .runner
        .start(TurnRequest::on(
            &fx.tenant,
            &fx.conversation,
            Input::Send { text: "Hi".into() },
        ))
        .await
        .unwrap();
    drain(run.events).await;
}

#[tokio::test]
async fn a_finished_run_replays_from_the_store_when_the_live_log_is_gone() {
    let model = Scripted {
        steps: vec![
            text("Stored"),
            text(" answer"),
            Step::Event(ModelEvent::Usage(USAGE)),
            Step::Event(ModelEvent::Finish(FinishReason::Stop)),
        ],
        ..Scripted::default()
    };
    let fx = fixture(vec![("script", model)], "script/m1", &[]).await;
    let run = fx
        .runner
        .start(TurnRequest::on(
            &fx.tenant,
            &fx.conversation,
            Input::Send { text: "Hi!".into() },
        ))
        .await
        .unwrap();
    let live = drain(run.events).await;
    // Wait for the record: it is written right after the last event.
    let mut record = None;
    for _ in 0..100 {
        if let Ok(found) = fx.service.get_run(&fx.tenant, &run.run_id).await {
            record = Some(found);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let record = record.expect("the run was stored");
    assert_eq!(record.status, RunStatus::Completed);
    assert_eq!(record.usage, USAGE);
    assert_eq!(record.model, "script/m1");

    // Another runner (another instance, or after a restart) has no live log of it.
    let other = Runner::new(
        fx.service.clone(),
        Registry::default(),
        RunHub::default(),
        RetryPolicy::default(),
    );
    let replayed = drain(other.follow(&fx.tenant, &run.run_id, 0).await.unwrap()).await;
    assert_eq!(replayed, live);
    let tail = drain(other.follow(&fx.tenant, &run.run_id, 3).await.unwrap()).await;
    assert_eq!(tail, live[3..]);
    // Another tenant's id, or an unknown run, is not found.
    let stranger = TenantId::new();
    assert!(other.follow(&stranger, &run.run_id, 0).await.is_err());
    assert!(other
        .follow(&fx.tenant, &frontdesk_core::id::RunId::new(), 0)
        .await
        .is_err());
}

/// The runner keeps the branch its last answer ends and starts the next turn from it; what
/// changed the conversation since (a turn answered elsewhere, a branch switch) is read.
#[tokio::test]
async fn a_turn_sees_what_changed_the_conversation_since_the_last_answer() {
    use frontdesk_core::conversation::{MessageDraft, Parent};
    let model = Scripted {
        steps: vec![
            text("ok"),
            Step::Event(ModelEvent::Finish(FinishReason::Stop)),
        ],
        ..Scripted::default()
    };
    let requests = model.requests.clone();
    let fx = fixture(vec![("script", model)], "script/m1", &[]).await;
    let turn = |text: &'static str| {
        let (runner, tenant, conversation) = (&fx.runner, &fx.tenant, &fx.conversation);
        async move {
            let run = runner
                .start(TurnRequest::on(
                    tenant,
                    conversation,
                    Input::Send { text: text.into() },
                ))
                .await
                .unwrap();
            drain(run.events).await;
            run.user_message
        }
    };
    let seen = |n: usize| -> Vec<ModelMessage> { requests.lock().unwrap()[n].messages.clone() };
    let user = |t: &str| ModelMessage::User { text: t.into() };
    let answer = |t: &str| ModelMessage::Assistant {
        text: t.into(),
        tool_calls: vec![],
    };
    let first = turn("first").await;
    // A turn answered elsewhere (another instance) since this runner's answer.
    for (role, text) in [
        (MessageRole::User, "there"),
        (MessageRole::Assistant, "done there"),
    ] {
        let draft = MessageDraft {
            parent: Parent::Active,
            ..MessageDraft::text(role, text)
        };
        fx.service
            .append_message(&fx.tenant, &fx.conversation, draft)
            .await
            .unwrap();
    }
    turn("second").await;
    assert_eq!(
        seen(1)[1..],
        [
            user("first"),
            answer("ok"),
            user("there"),
            answer("done there"),
            user("second")
        ]
    );
    // The next turn goes on from this runner's own answer.
    let third = turn("third").await;
    assert_eq!(seen(2).len(), 8);
    assert_eq!(seen(2)[5..], [user("second"), answer("ok"), user("third")]);
    // Another answer to the first message: a new branch, which the next turn goes on.
    let again = fx
        .runner
        .start(TurnRequest::on(
            &fx.tenant,
            &fx.conversation,
            Input::Regenerate {
                message: first.id.clone(),
            },
        ))
        .await
        .unwrap();
    drain(again.events).await;
    turn("after").await;
    assert_eq!(seen(4)[1..], [user("first"), answer("ok"), user("after")]);
    // Back to the third answer's branch: the turn after it sees that branch.
    let (messages, _) = fx
        .service
        .list_messages(&fx.tenant, &fx.conversation, false, None, None)
        .await
        .unwrap();
    let third_answer = messages
        .iter()
        .find(|m| m.parent_id.as_ref() == Some(&third.id))
        .unwrap();
    fx.service
        .set_active_message(&fx.tenant, &fx.conversation, &third_answer.id)
        .await
        .unwrap();
    turn("fourth").await;
    assert_eq!(seen(5).len(), 10);
    assert_eq!(seen(5)[7..], [user("third"), answer("ok"), user("fourth")]);
}
