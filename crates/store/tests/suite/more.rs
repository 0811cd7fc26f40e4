//! Store suite, continued: the message tree (paths, siblings, switching branches), stored
//! runs, and sealed provider credentials — each checked for tenant isolation too.

use frontdesk_core::conversation::{MessageDraft, MessageRole, Parent, Usage};
use frontdesk_core::credentials::SealedCredential;
use frontdesk_core::id::{ConversationId, MessageId, RunId, TenantId};
use frontdesk_core::run::{RunEvent, RunRecord, RunStatus, RunStep, SequencedEvent, StepKind};
use frontdesk_core::service::NewConversation;
use frontdesk_core::store::{BranchStore, CredentialStore, RunStore};
use frontdesk_core::time::Timestamp;
use frontdesk_core::StoreError;
use secrecy::ExposeSecret;
use serde_json::json;

use super::{tenant, Fixture};

async fn conversation(fx: &Fixture, tenant: &TenantId) -> ConversationId {
    fx.service
        .create_agent(tenant, json!({"slug": "support", "name": "Support"}))
        .await
        .unwrap();
    fx.service
        .create_conversation(
            tenant,
            NewConversation {
                agent: "support".into(),
                end_user_id: None,
                title: None,
                metadata: Default::default(),
            },
        )
        .await
        .unwrap()
        .id
}

async fn say(
    fx: &Fixture,
    tenant: &TenantId,
    conversation: &ConversationId,
    role: MessageRole,
    text: &str,
    parent: Parent,
) -> MessageId {
    let draft = MessageDraft {
        parent,
        ..MessageDraft::text(role, text)
    };
    fx.service
        .append_message(tenant, conversation, draft)
        .await
        .unwrap()
        .id
}

fn texts(messages: &[frontdesk_core::conversation::Message]) -> Vec<String> {
    messages.iter().map(|m| m.text()).collect()
}

pub async fn branches(fx: &Fixture) {
    use MessageRole::{Assistant, User};
    let a = tenant(&fx.service, "A").await;
    let conv = conversation(fx, &a).await;
    assert!(fx
        .service
        .message_path(&a, &conv, None, 100)
        .await
        .unwrap()
        .is_empty());
    let u1 = say(fx, &a, &conv, User, "u1", Parent::Active).await;
    let a1 = say(fx, &a, &conv, Assistant, "a1", Parent::Message(u1.clone())).await;
    let u2 = say(fx, &a, &conv, User, "u2", Parent::Active).await;
    let a2 = say(fx, &a, &conv, Assistant, "a2", Parent::Message(u2.clone())).await;
    // Regenerate a2: a sibling under u2, which becomes the active end.
    let a2b = say(fx, &a, &conv, Assistant, "a2b", Parent::Message(u2.clone())).await;
    let path = fx.service.message_path(&a, &conv, None, 100).await.unwrap();
    assert_eq!(texts(&path), ["u1", "a1", "u2", "a2b"]);
    let branch = fx.service.active_branch(&a, &conv).await.unwrap();
    assert_eq!(branch[3].sibling_ids, [a2.clone(), a2b.clone()]);
    assert!(branch[0].sibling_ids.is_empty() && branch[2].sibling_ids.is_empty());
    // The path to a given message, and only its last `max` messages.
    let to_a2 = fx
        .service
        .message_path(&a, &conv, Some(&a2), 100)
        .await
        .unwrap();
    assert_eq!(texts(&to_a2), ["u1", "a1", "u2", "a2"]);
    let last_two = fx.service.message_path(&a, &conv, None, 2).await.unwrap();
    assert_eq!(texts(&last_two), ["u2", "a2b"]);

    // Edit u1 (the first message): a new root, and its answer.
    let u1b = say(fx, &a, &conv, User, "u1b", Parent::Root).await;
    let a1b = say(
        fx,
        &a,
        &conv,
        Assistant,
        "a1b",
        Parent::Message(u1b.clone()),
    )
    .await;
    let branch = fx.service.active_branch(&a, &conv).await.unwrap();
    let shown: Vec<&str> = branch
        .iter()
        .map(|m| match &m.message.content[0] {
            frontdesk_core::conversation::ContentPart::Text { text } => text.as_str(),
            _ => "",
        })
        .collect();
    assert_eq!(shown, ["u1b", "a1b"]);
    assert_eq!(branch[0].sibling_ids, [u1.clone(), u1b.clone()]);
    assert_eq!(branch[0].message.parent_id, None);

    // Switch back to the first branch: the newest message under u1 is a2b.
    let switched = fx.service.set_active_message(&a, &conv, &u1).await.unwrap();
    assert_eq!(switched.active_message_id.as_ref(), Some(&a2b));
    let path = fx.service.message_path(&a, &conv, None, 100).await.unwrap();
    assert_eq!(texts(&path), ["u1", "a1", "u2", "a2b"]);
    // The next message continues the shown branch.
    let u3 = say(fx, &a, &conv, User, "u3", Parent::Active).await;
    let stored = fx.service.get_message(&a, &conv, &u3).await.unwrap();
    assert_eq!(stored.parent_id.as_ref(), Some(&a2b));
    // Switching to a leaf shows exactly that leaf.
    let switched = fx
        .service
        .set_active_message(&a, &conv, &a1b)
        .await
        .unwrap();
    assert_eq!(switched.active_message_id.as_ref(), Some(&a1b));

    // Another tenant sees none of it; an unknown message is refused.
    let b = tenant(&fx.service, "B").await;
    assert!(fx.service.get_message(&b, &conv, &u1).await.is_err());
    assert!(fx
        .service
        .message_path(&b, &conv, None, 100)
        .await
        .unwrap()
        .is_empty());
    assert!(fx.service.set_active_message(&b, &conv, &u1).await.is_err());
    assert!(fx
        .service
        .set_active_message(&a, &conv, &MessageId::new())
        .await
        .is_err());
    assert!(matches!(
        fx.store.get_message(&b, &conv, &a1).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn runs(fx: &Fixture) {
    let a = tenant(&fx.service, "A").await;
    let conv = conversation(fx, &a).await;
    let now = Timestamp::now();
    let mut record = RunRecord {
        id: RunId::new(),
        tenant_id: a.clone(),
        conversation_id: conv,
        status: RunStatus::AwaitingApproval,
        agent: "support".into(),
        model: "openai/gpt-4.1-mini".into(),
        usage: Usage {
            prompt_tokens: 5,
            completion_tokens: 2,
            total_tokens: 7,
        },
        steps: vec![RunStep {
            kind: StepKind::Model,
            name: "openai/gpt-4.1-mini".into(),
            agent: "support".into(),
            started_at: now,
            duration_ms: 12,
            input: serde_json::json!({"messages": 2}),
            output: serde_json::json!({"text": "Hi"}),
            usage: None,
            error: None,
        }],
        events: vec![
            SequencedEvent {
                seq: 1,
                at: now,
                event: RunEvent::MessageDelta { text: "Hi".into() },
            },
            SequencedEvent {
                seq: 2,
                at: now,
                event: RunEvent::RunCompleted {
                    status: RunStatus::AwaitingApproval,
                    usage: Usage::default(),
                },
            },
        ],
        state: Some(serde_json::json!({"pending": ["c1"]})),
        expires_at: Some(Timestamp::from_millis(now.as_millis() - 1_000)),
        created_at: now,
        completed_at: now,
    };
    fx.store.save_run(&record).await.unwrap();
    assert_eq!(fx.store.get_run(&a, &record.id).await.unwrap(), record);
    let b = tenant(&fx.service, "B").await;
    assert!(matches!(
        fx.store.get_run(&b, &record.id).await,
        Err(StoreError::NotFound)
    ));
    // The expiry sweep finds it; only one claim wins, and not another tenant's.
    let expired = fx.store.expired_approvals(now, 10).await.unwrap();
    assert!(expired.contains(&(a.clone(), record.id.clone())));
    assert!(!fx
        .store
        .claim_paused_run(&b, &record.id, now, true)
        .await
        .unwrap());
    // It expired: a person's late decision cannot claim it, the sweep can, once.
    assert!(!fx
        .store
        .claim_paused_run(&a, &record.id, now, false)
        .await
        .unwrap());
    assert!(fx
        .store
        .claim_paused_run(&a, &record.id, now, true)
        .await
        .unwrap());
    assert!(!fx
        .store
        .claim_paused_run(&a, &record.id, now, true)
        .await
        .unwrap());
    // A claim holds for a while; one whose process died is found once it runs out.
    assert!(fx.store.abandoned_claims(now, 10).await.unwrap().is_empty());
    let later = now.plus_secs(5 * 3_600);
    assert!(fx
        .store
        .abandoned_claims(later, 10)
        .await
        .unwrap()
        .contains(&(a.clone(), record.id.clone())));
    assert!(!fx
        .store
        .expired_approvals(now, 10)
        .await
        .unwrap()
        .contains(&(a.clone(), record.id.clone())));
    // Saving again replaces what is kept (a run that went on and finished).
    record.status = RunStatus::Completed;
    record.state = None;
    record.expires_at = None;
    record.steps.clear();
    fx.store.save_run(&record).await.unwrap();
    assert_eq!(fx.store.get_run(&a, &record.id).await.unwrap(), record);
    // Saving ends the claim.
    assert!(fx
        .store
        .abandoned_claims(later, 10)
        .await
        .unwrap()
        .is_empty());
    // Another tenant cannot overwrite it by reusing its id.
    let mut theirs = record.clone();
    theirs.tenant_id = b.clone();
    theirs.status = RunStatus::Failed;
    assert!(matches!(
        fx.store.save_run(&theirs).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        fx.store.get_run(&a, &record.id).await.unwrap().status,
        RunStatus::Completed
    );
    // Lists: a tenant's runs by state, newest first, without their events; never another
    // tenant's.
    let mut paused = Vec::new();
    for n in 0..3 {
        let run = RunRecord {
            id: RunId::new(),
            status: RunStatus::AwaitingApproval,
            state: Some(serde_json::json!({"pending": [n]})),
            created_at: Timestamp::from_millis(now.as_millis() + 10 + n),
            ..record.clone()
        };
        fx.store.save_run(&run).await.unwrap();
        paused.push(run.id);
    }
    let listed = fx
        .store
        .list_runs(&a, Some(RunStatus::AwaitingApproval), 10)
        .await
        .unwrap();
    let ids: Vec<RunId> = listed.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, paused.iter().rev().cloned().collect::<Vec<_>>());
    assert!(listed
        .iter()
        .all(|r| r.events.is_empty() && r.state.is_some()));
    let two = fx
        .store
        .list_runs(&a, Some(RunStatus::AwaitingApproval), 2)
        .await
        .unwrap();
    assert_eq!(two.len(), 2);
    let all = fx.store.list_runs(&a, None, 10).await.unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all.last().map(|r| r.id.clone()), Some(record.id.clone()));
    assert!(fx.store.list_runs(&b, None, 10).await.unwrap().is_empty());
}

pub async fn provider_credentials(fx: &Fixture) {
    let a = tenant(&fx.service, "A").await;
    let b = tenant(&fx.service, "B").await;
    let sealed = |sealed: &str, hint: &str| SealedCredential {
        provider: "openai".into(),
        sealed: sealed.into(),
        hint: hint.into(),
        at: Timestamp::now(),
    };
    let first = fx
        .store
        .put_credential(&a, &sealed("v1:one", "sk-…0001"))
        .await
        .unwrap();
    assert_eq!(first.hint, "sk-…0001");
    // Putting again replaces it, keeping its creation time.
    let second = fx
        .store
        .put_credential(&a, &sealed("v1:two", "sk-…0002"))
        .await
        .unwrap();
    assert_eq!(
        (second.created_at, second.hint.as_str()),
        (first.created_at, "sk-…0002")
    );
    assert_eq!(
        fx.store.sealed_credentials(&a).await.unwrap(),
        [("openai".to_owned(), "v1:two".to_owned())]
    );
    assert_eq!(fx.store.list_credentials(&a).await.unwrap(), [second]);
    assert!(fx.store.list_credentials(&b).await.unwrap().is_empty());
    assert!(fx.store.sealed_credentials(&b).await.unwrap().is_empty());
    assert!(matches!(
        fx.store.delete_credential(&b, "openai").await,
        Err(StoreError::NotFound)
    ));
    fx.store.delete_credential(&a, "openai").await.unwrap();
    assert!(fx.store.sealed_credentials(&a).await.unwrap().is_empty());
}

/// What a turn starts from, read in one call: each part is the one the single reads give,
/// and nothing of another tenant's.
pub async fn turn_context(fx: &Fixture) {
    use frontdesk_core::agent::AgentRef;
    use frontdesk_core::store::TurnStore;
    use MessageRole::{Assistant, User};
    let a = tenant(&fx.service, "A").await;
    let conv = conversation(fx, &a).await;
    let month = Timestamp::now().month_key();
    // A fresh conversation: no history, no tokens, no keys, no paused run.
    let fresh = fx
        .store
        .turn_context(&a, &conv, &month, Some(100), None)
        .await
        .unwrap();
    assert_eq!(fresh.conversation.id, conv);
    assert_eq!(fresh.tenant.id, a);
    assert_eq!(fresh.agent.as_ref().unwrap().spec.slug, "support");
    assert_eq!(fresh.active_path.as_deref().map(<[_]>::len), Some(0));
    assert_eq!((fresh.tokens_used, fresh.sealed_credentials.len()), (0, 0));
    assert!(fresh.paused_run.is_none());
    // Two turns, one answer with usage; a stored key; a run waiting for approval.
    let u1 = say(fx, &a, &conv, User, "u1", Parent::Active).await;
    let answer = MessageDraft {
        parent: Parent::Message(u1.clone()),
        usage: Some(Usage {
            prompt_tokens: 30,
            completion_tokens: 12,
            total_tokens: 42,
        }),
        ..MessageDraft::text(Assistant, "a1")
    };
    fx.service.append_message(&a, &conv, answer).await.unwrap();
    say(fx, &a, &conv, User, "u2", Parent::Active).await;
    let key = SealedCredential {
        provider: "openai".into(),
        sealed: "v1:sealed".into(),
        hint: "sk-…0001".into(),
        at: Timestamp::now(),
    };
    fx.store.put_credential(&a, &key).await.unwrap();
    let now = Timestamp::now();
    let paused = RunRecord {
        id: RunId::new(),
        tenant_id: a.clone(),
        conversation_id: conv.clone(),
        status: RunStatus::AwaitingApproval,
        agent: "support".into(),
        model: "openai/gpt-4.1-mini".into(),
        usage: Usage::default(),
        steps: Vec::new(),
        events: Vec::new(),
        state: None,
        expires_at: None,
        created_at: now,
        completed_at: now,
    };
    fx.store.save_run(&paused).await.unwrap();
    let ctx = fx
        .store
        .turn_context(&a, &conv, &month, Some(100), None)
        .await
        .unwrap();
    assert_eq!(ctx.conversation.message_count, 3);
    assert_eq!(ctx.tokens_used, 42);
    assert_eq!(
        ctx.sealed_credentials,
        [("openai".to_owned(), "v1:sealed".to_owned())]
    );
    assert_eq!(ctx.paused_run, Some(paused.id.clone()));
    assert_eq!(
        texts(ctx.active_path.as_deref().unwrap()),
        ["u1", "a1", "u2"]
    );
    // A caller that knows the branch up to the active message is not sent it again; one that
    // knows an older leaf is.
    let leaf = ctx.conversation.active_message_id.clone().unwrap();
    let known = fx
        .store
        .turn_context(&a, &conv, &month, Some(100), Some(&leaf))
        .await
        .unwrap();
    assert_eq!(known.active_path.as_deref().map(<[_]>::len), Some(0));
    assert_eq!(known.conversation.active_message_id, Some(leaf));
    let stale = fx
        .store
        .turn_context(&a, &conv, &month, Some(100), Some(&u1))
        .await
        .unwrap();
    assert_eq!(
        texts(stale.active_path.as_deref().unwrap()),
        ["u1", "a1", "u2"]
    );
    // The history is as long as asked, or not read at all; another month used nothing.
    let short = fx
        .store
        .turn_context(&a, &conv, "1999-01", Some(2), None)
        .await
        .unwrap();
    assert_eq!(texts(short.active_path.as_deref().unwrap()), ["a1", "u2"]);
    assert_eq!(short.tokens_used, 0);
    let without = fx
        .store
        .turn_context(&a, &conv, &month, None, None)
        .await
        .unwrap();
    assert!(without.active_path.is_none());
    // Another tenant finds nothing of it, and its own conversation shows none of A's.
    let b = tenant(&fx.service, "B").await;
    assert!(matches!(
        fx.store
            .turn_context(&b, &conv, &month, Some(100), None)
            .await,
        Err(StoreError::NotFound)
    ));
    let theirs = conversation(fx, &b).await;
    let other = fx
        .store
        .turn_context(&b, &theirs, &month, Some(100), None)
        .await
        .unwrap();
    assert_eq!(other.tenant.id, b);
    assert_eq!((other.tokens_used, other.sealed_credentials.len()), (0, 0));
    assert!(other.paused_run.is_none());
    assert_eq!(other.active_path.as_deref().map(<[_]>::len), Some(0));
    // A deleted agent is missing; a deleted conversation is not found.
    fx.service
        .delete_agent(&a, &AgentRef::Slug("support".into()))
        .await
        .unwrap();
    let orphan = fx
        .store
        .turn_context(&a, &conv, &month, None, None)
        .await
        .unwrap();
    assert!(orphan.agent.is_none());
    fx.service
        .delete_conversation(&a, &conv, false)
        .await
        .unwrap();
    assert!(matches!(
        fx.store.turn_context(&a, &conv, &month, None, None).await,
        Err(StoreError::NotFound)
    ));
}

/// frontdesk's own secrets of a tenant are made on first use: many first uses at once agree
/// on one value (it is inserted only if absent), which later reads return.
pub async fn first_use_secrets_agree_under_a_race(fx: &Fixture) {
    let service = fx
        .service
        .clone()
        .with_sealer(Some(frontdesk_core::credentials::Sealer::new([9u8; 32])));
    let a = tenant(&service, "A").await;
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let service = service.clone();
            let a = a.clone();
            tokio::spawn(async move { service.webhook_signing_secret(&a).await.unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    for racer in racers {
        seen.push(racer.await.unwrap().expose_secret().to_owned());
    }
    seen.dedup();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let later = service.webhook_signing_secret(&a).await.unwrap();
    assert_eq!(later.expose_secret(), seen[0]);
    // Another tenant's is its own.
    let b = tenant(&service, "B").await;
    assert_ne!(
        service
            .webhook_signing_secret(&b)
            .await
            .unwrap()
            .expose_secret(),
        seen[0]
    );
}

/// The server's widget token secret is sealed under the master key: made sealed, and a value
/// an older version kept in the clear is sealed on its next use, to the same secret.
pub async fn the_widget_token_secret_is_sealed(fx: &Fixture) {
    use frontdesk_core::credentials::Sealer;
    use frontdesk_core::service::PageOrigin;
    use frontdesk_core::store::BaseStore;
    let sealer = Sealer::new([5u8; 32]);
    let service = fx.service.clone().with_sealer(Some(sealer.clone()));
    let page = PageOrigin {
        origin: None,
        own: true,
    };
    // Any visitor check makes the secret (the token itself is refused).
    assert!(service.widget_visitor("fdv1.x.y", &page).await.is_err());
    let stored = fx
        .store
        .get_setting("widget_token_secret")
        .await
        .unwrap()
        .unwrap();
    assert!(Sealer::is_sealed(&stored), "{stored}");
    let opened = sealer.open_server("widget_token_secret", &stored).unwrap();
    assert_eq!(opened.expose_secret().len(), 64);
    // A value kept in the clear before is sealed on its next use.
    let plain = "ab".repeat(32);
    fx.store
        .set_setting("widget_token_secret", &plain)
        .await
        .unwrap();
    assert!(service.widget_visitor("fdv1.x.y", &page).await.is_err());
    let stored = fx
        .store
        .get_setting("widget_token_secret")
        .await
        .unwrap()
        .unwrap();
    assert!(Sealer::is_sealed(&stored), "{stored}");
    assert_eq!(
        sealer
            .open_server("widget_token_secret", &stored)
            .unwrap()
            .expose_secret(),
        plain
    );
    // Another master key cannot open it.
    assert!(Sealer::new([6u8; 32])
        .open_server("widget_token_secret", &stored)
        .is_err());
}
