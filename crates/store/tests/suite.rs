//! The store test suite: the same checks against SQLite and against a real PostgreSQL.
//!
//! PostgreSQL comes from `FRONTDESK_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each test gets a fresh schema. When it cannot
//! be reached the PostgreSQL tests fail: `make test` starts it first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failure should fail loudly.

use std::sync::Arc;

use frontdesk_core::agent::AgentRef;
use frontdesk_core::config::Limits;
use frontdesk_core::conversation::{MessageDraft, MessageRole, Parent, Usage};
use frontdesk_core::key::{KeyKind, KeySecret, Origin};
use frontdesk_core::service::{
    Demo, ListConversations, NewConversation, NewKey, NewTenant, NewUser, UpdateConversation,
};
use frontdesk_core::store::{AgentStore, BaseStore, ConversationStore, KeyStore, TenantStore};
use frontdesk_core::tenant::{verify_password, Role};
use frontdesk_core::{Error, Service};
use frontdesk_store::SqlStore;
use serde_json::json;

/// A store on a fresh database, and what cleans it up.
pub(crate) struct Fixture {
    pub(crate) service: Service,
    pub(crate) store: SqlStore,
    schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let store = SqlStore::connect(&url).await.unwrap();
        Self::finish(store, None, Some(dir)).await
    }

    async fn postgres() -> Self {
        let url = std::env::var("FRONTDESK_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let schema = format!("fdtest_{}", frontdesk_core::id::new_body());
        let store = SqlStore::connect_postgres_schema(&url, &schema)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL at {url} is required for this suite (make test starts it): {e:#}"
                )
            });
        Self::finish(store, Some(schema), None).await
    }

    async fn finish(
        store: SqlStore,
        schema: Option<String>,
        dir: Option<tempfile::TempDir>,
    ) -> Self {
        store.migrate().await.unwrap();
        // Migrating twice is a no-op.
        store.migrate().await.unwrap();
        let service = Service::new(Arc::new(store.clone()), Limits::default());
        Self {
            service,
            store,
            schema,
            _dir: dir,
        }
    }

    async fn done(self) {
        if let Some(schema) = &self.schema {
            self.store.drop_postgres_schema(schema).await.unwrap();
        }
        self.store.close().await;
    }
}

pub(crate) async fn tenant(service: &Service, name: &str) -> frontdesk_core::id::TenantId {
    service
        .create_tenant(NewTenant {
            name: name.into(),
            owner_email: None,
            monthly_token_quota: None,
        })
        .await
        .unwrap()
        .tenant
        .id
}

async fn tenants_users_and_keys(fx: &Fixture) {
    let service = &fx.service;
    let created = service
        .create_tenant(NewTenant {
            name: "Acme".into(),
            owner_email: Some("Owner@Acme.test".into()),
            monthly_token_quota: Some(1000),
        })
        .await
        .unwrap();
    let owner = created.owner.as_ref().unwrap();
    assert_eq!(owner.user.email, "owner@acme.test");
    assert!(verify_password(
        owner.generated_password.as_deref().unwrap(),
        &owner.user.password_hash
    ));
    assert_eq!(
        service.get_tenant(&created.tenant.id).await.unwrap(),
        created.tenant
    );

    // The same user joins a second tenant without a new password.
    let other = tenant(service, "Other").await;
    let again = service
        .add_user(
            &other,
            NewUser {
                email: "owner@acme.test".into(),
                name: None,
                role: Role::Viewer,
                password: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(again.user.id, owner.user.id);
    assert!(again.generated_password.is_none());
    let members = fx.store.list_memberships(&other).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].0.role, Role::Viewer);

    // The tenant's first secret key authenticates, and only for its tenant.
    let key = service.authenticate(created.secret.expose()).await.unwrap();
    assert_eq!(key.tenant_id, created.tenant.id);
    assert_eq!(key.kind, KeyKind::Secret);
    let touched = fx
        .store
        .get_api_key(&created.tenant.id, &key.id)
        .await
        .unwrap();
    assert!(touched.last_used_at.is_some());
    assert!(
        fx.store.get_api_key(&other, &key.id).await.is_err(),
        "another tenant's key is not found"
    );
    assert!(fx
        .store
        .list_api_keys(&other)
        .await
        .unwrap()
        .iter()
        .all(|k| k.id != key.id));

    // Publishable keys carry their origins and agents.
    service
        .create_agent(
            &created.tenant.id,
            json!({"slug": "support", "name": "Support"}),
        )
        .await
        .unwrap();
    let (publishable, secret) = service
        .create_key(
            &created.tenant.id,
            NewKey {
                kind: KeyKind::Publishable,
                name: "Website".into(),
                allowed_origins: vec![Origin::parse("https://shop.example.com").unwrap()],
                allowed_agents: vec!["support".into()],
                rate_limit_per_minute: Some(30),
            },
        )
        .await
        .unwrap();
    let found = service.authenticate(secret.expose()).await.unwrap();
    assert_eq!(found.allowed_origins, publishable.allowed_origins);
    assert_eq!(found.allowed_agents, vec!["support".to_owned()]);
    assert_eq!(found.rate_limit_per_minute, Some(30));

    // Revoked and unknown keys fail; revoking twice keeps the first time.
    let revoked = service
        .revoke_key(&created.tenant.id, &publishable.id)
        .await
        .unwrap();
    let revoked_again = service
        .revoke_key(&created.tenant.id, &publishable.id)
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, revoked_again.revoked_at);
    assert!(matches!(
        service.authenticate(secret.expose()).await,
        Err(Error::Unauthenticated {
            code: "revoked_api_key",
            ..
        })
    ));
    let unknown = KeySecret::generate(KeyKind::Secret);
    assert!(matches!(
        service.authenticate(unknown.expose()).await,
        Err(Error::Unauthenticated { .. })
    ));
    assert!(matches!(
        service.revoke_key(&other, &key.id).await,
        Err(Error::NotFound { .. })
    ));
}

async fn agents_and_versions(fx: &Fixture) {
    let service = &fx.service;
    let a = tenant(service, "A").await;
    let b = tenant(service, "B").await;
    let agent = service
        .create_agent(
            &a,
            json!({"slug": "support", "name": "Support", "instructions": "Help.", "temperature": 0.3,
                   "tools": [{"type": "builtin", "name": "current_time"}],
                   "widget": {"title": "Hi", "starter_prompts": ["Where is my order?"]}}),
        )
        .await
        .unwrap();
    assert_eq!(agent.version, 1);
    let by_slug = service
        .get_agent(&a, &AgentRef::Slug("support".into()))
        .await
        .unwrap();
    assert_eq!(by_slug, agent);
    assert_eq!(
        service
            .get_agent(&a, &AgentRef::Id(agent.id.clone()))
            .await
            .unwrap(),
        agent
    );

    // Slugs are unique per tenant, not globally.
    let dup = service
        .create_agent(&a, json!({"slug": "support", "name": "Again"}))
        .await;
    assert!(
        matches!(
            dup,
            Err(Error::Conflict {
                code: "slug_taken",
                ..
            })
        ),
        "{dup:?}"
    );
    service
        .create_agent(&b, json!({"slug": "support", "name": "B's"}))
        .await
        .unwrap();

    // Updates keep every version.
    let v2 = service
        .update_agent(
            &a,
            &AgentRef::Slug("support".into()),
            json!({"instructions": "Help kindly."}),
        )
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(v2.spec.temperature, Some(0.3));
    let versions = service
        .agent_versions(&a, &AgentRef::Id(agent.id.clone()))
        .await
        .unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![2, 1]
    );
    assert_eq!(versions[1].spec.instructions, "Help.");
    // A no-op patch makes no version.
    let same = service
        .update_agent(
            &a,
            &AgentRef::Slug("support".into()),
            json!({"instructions": "Help kindly."}),
        )
        .await
        .unwrap();
    assert_eq!(same.version, 2);
    // A stale writer loses.
    let stale = frontdesk_core::agent::Agent {
        version: 2,
        ..v2.clone()
    };
    assert!(matches!(
        fx.store.update_agent(&stale).await,
        Err(frontdesk_core::StoreError::Conflict("version"))
    ));

    // Handoffs must name agents of the same tenant.
    let bad = service
        .create_agent(
            &b,
            json!({"slug": "triage", "name": "T", "handoffs": ["billing"]}),
        )
        .await;
    assert!(
        matches!(&bad, Err(Error::InvalidField { field, .. }) if field == "handoffs[0]"),
        "{bad:?}"
    );

    // Tenant B sees none of A's agents.
    assert!(matches!(
        service.get_agent(&b, &AgentRef::Id(agent.id.clone())).await,
        Err(Error::NotFound { .. })
    ));
    assert!(service
        .agent_versions(&b, &AgentRef::Id(agent.id.clone()))
        .await
        .is_err());
    assert!(service
        .update_agent(&b, &AgentRef::Id(agent.id.clone()), json!({"name": "x"}))
        .await
        .is_err());
    assert!(service
        .delete_agent(&b, &AgentRef::Id(agent.id.clone()))
        .await
        .is_err());
    assert_eq!(service.list_agents(&b).await.unwrap().len(), 1);

    // Deleting frees the slug but keeps the row for old conversations.
    service
        .delete_agent(&a, &AgentRef::Slug("support".into()))
        .await
        .unwrap();
    assert!(service
        .get_agent(&a, &AgentRef::Slug("support".into()))
        .await
        .is_err());
    assert!(fx.store.get_agent_any(&a, &agent.id).await.is_ok());
    service
        .create_agent(&a, json!({"slug": "support", "name": "Support 2"}))
        .await
        .unwrap();
}

async fn conversations_and_messages(fx: &Fixture) {
    let service = &fx.service;
    let a = tenant(service, "A").await;
    let b = tenant(service, "B").await;
    let support = service
        .create_agent(&a, json!({"slug": "support", "name": "Support"}))
        .await
        .unwrap();
    service
        .create_agent(&a, json!({"slug": "sales", "name": "Sales"}))
        .await
        .unwrap();
    service
        .create_agent(&b, json!({"slug": "support", "name": "Support"}))
        .await
        .unwrap();

    let new = |agent: &str, end_user: Option<&str>| NewConversation {
        agent: agent.into(),
        end_user_id: end_user.map(str::to_owned),
        title: None,
        metadata: Default::default(),
    };
    let first = service
        .create_conversation(&a, new("support", Some("visitor-1")))
        .await
        .unwrap();
    assert_eq!(first.agent_id, support.id);
    assert_eq!(first.message_count, 0);

    // Appending updates counters, preview and title in one go; parents chain by default.
    let question = "Where is my order #1234? It was due last week and I have heard nothing since.";
    let m1 = service
        .append_message(
            &a,
            &first.id,
            MessageDraft::text(MessageRole::User, question),
        )
        .await
        .unwrap();
    let mut answer = MessageDraft::text(
        MessageRole::Assistant,
        "Let me check the refund status for you.",
    );
    answer.model = Some("local/smollm2-135m".into());
    answer.finish_reason = Some(frontdesk_core::run::FinishReason::Stop);
    answer.usage = Some(Usage {
        prompt_tokens: 12,
        completion_tokens: 9,
        total_tokens: 21,
    });
    answer.latency_ms = Some(420);
    let m2 = service.append_message(&a, &first.id, answer).await.unwrap();
    // Answers with usage count towards the tenant's month.
    let month = m2.created_at.month_key();
    assert_eq!(fx.store.tokens_used(&a, &month).await.unwrap(), 21);
    assert_eq!(fx.store.tokens_used(&b, &month).await.unwrap(), 0);
    let (from, to) = (
        m2.created_at.month_start(),
        frontdesk_core::time::Timestamp::from_millis(m2.created_at.as_millis() + 1),
    );
    for (group, key) in [
        (
            frontdesk_core::usage::UsageGroup::Day,
            m2.created_at.to_rfc3339()[..10].to_owned(),
        ),
        (
            frontdesk_core::usage::UsageGroup::Agent,
            support.id.to_string(),
        ),
        (
            frontdesk_core::usage::UsageGroup::Model,
            "local/smollm2-135m".to_owned(),
        ),
    ] {
        let rows = fx.store.usage(&a, from, to, group).await.unwrap();
        assert_eq!(rows.len(), 1, "{group:?}: {rows:?}");
        assert_eq!(
            (
                rows[0].key.as_str(),
                rows[0].total_tokens,
                rows[0].prompt_tokens,
                rows[0].messages
            ),
            (key.as_str(), 21, 12, 1)
        );
        assert!(fx
            .store
            .usage(&b, from, to, group)
            .await
            .unwrap()
            .is_empty());
    }
    assert_eq!((m1.seq, m2.seq), (1, 2));
    assert_eq!(m1.parent_id, None);
    assert_eq!(m2.parent_id, Some(m1.id.clone()));
    let got = service.get_conversation(&a, &first.id).await.unwrap();
    assert_eq!(got.message_count, 2);
    assert_eq!(got.title.as_deref(), Some(question));
    assert_eq!(
        got.preview.as_deref(),
        Some("Let me check the refund status for you.")
    );
    assert_eq!(got.last_message_at, Some(m2.created_at));

    // Messages read back in both orders, paginated.
    for text in ["three", "four", "five"] {
        service
            .append_message(&a, &first.id, MessageDraft::text(MessageRole::User, text))
            .await
            .unwrap();
    }
    let (page, more) = service
        .list_messages(&a, &first.id, false, Some(2), None)
        .await
        .unwrap();
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert!(more);
    assert_eq!(page[1], m2);
    let (page, more) = service
        .list_messages(&a, &first.id, false, Some(10), Some(2))
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    assert!(!more);
    let (page, _) = service
        .list_messages(&a, &first.id, true, Some(2), None)
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|m| m.text()).collect::<Vec<_>>(),
        vec!["five", "four"]
    );

    // Listing: newest activity first, cursor pages, filters.
    let second = service
        .create_conversation(&a, new("sales", Some("visitor-2")))
        .await
        .unwrap();
    let third = service
        .create_conversation(&a, new("support", Some("visitor-2")))
        .await
        .unwrap();
    service
        .append_message(
            &a,
            &second.id,
            MessageDraft::text(MessageRole::User, "Do you ship to Norway?"),
        )
        .await
        .unwrap();
    let ids = |page: &frontdesk_core::conversation::Page<
        frontdesk_core::conversation::Conversation,
    >| { page.items.iter().map(|c| c.id.clone()).collect::<Vec<_>>() };
    let all = service
        .list_conversations(&a, ListConversations::default())
        .await
        .unwrap();
    // Newest activity first; ties (same millisecond) by id, newest first.
    let mut expected: Vec<_> = all
        .items
        .iter()
        .map(|c| (c.last_message_at.unwrap_or(c.created_at), c.id.clone()))
        .collect();
    expected.sort_by(|x, y| y.cmp(x));
    let expected: Vec<_> = expected.into_iter().map(|(_, id)| id).collect();
    assert_eq!(ids(&all), expected);
    assert_eq!(expected.len(), 3);
    let p1 = service
        .list_conversations(
            &a,
            ListConversations {
                limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&p1), expected[..2].to_vec());
    let cursor = p1.next.as_ref().map(|c| c.encode());
    let p2 = service
        .list_conversations(
            &a,
            ListConversations {
                limit: Some(2),
                cursor,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&p2), expected[2..].to_vec());
    assert!(p2.next.is_none());
    let by_agent = service
        .list_conversations(
            &a,
            ListConversations {
                agent: Some("sales".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&by_agent), vec![second.id.clone()]);
    let by_user = service
        .list_conversations(
            &a,
            ListConversations {
                end_user_id: Some("visitor-2".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut got = ids(&by_user);
    got.sort();
    let mut want = vec![second.id.clone(), third.id.clone()];
    want.sort();
    assert_eq!(got, want);

    // Search matches titles and message text, whole words and a prefix of the last one.
    let search = |q: &str| ListConversations {
        q: Some(q.into()),
        ..Default::default()
    };
    assert_eq!(
        ids(&service
            .list_conversations(&a, search("refund"))
            .await
            .unwrap()),
        vec![first.id.clone()]
    );
    assert_eq!(
        ids(&service
            .list_conversations(&a, search("NORW"))
            .await
            .unwrap()),
        vec![second.id.clone()]
    );
    assert_eq!(
        ids(&service
            .list_conversations(&a, search("order 1234"))
            .await
            .unwrap()),
        vec![first.id.clone()]
    );
    assert!(service
        .list_conversations(&a, search("refund norway"))
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(service
        .list_conversations(&a, search("\"*) AND zzqx ("))
        .await
        .unwrap()
        .items
        .is_empty());
    let titled = service
        .update_conversation(
            &a,
            &third.id,
            UpdateConversation {
                title: Some(Some("Invoice question".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(titled.title.as_deref(), Some("Invoice question"));
    assert_eq!(
        ids(&service
            .list_conversations(&a, search("invoice"))
            .await
            .unwrap()),
        vec![third.id.clone()]
    );
    // Tenant B's search never finds A's text.
    assert!(service
        .list_conversations(&b, search("refund"))
        .await
        .unwrap()
        .items
        .is_empty());

    // Archive, then filter.
    service
        .update_conversation(
            &a,
            &first.id,
            UpdateConversation {
                archived: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let active = service
        .list_conversations(
            &a,
            ListConversations {
                archived: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!ids(&active).contains(&first.id));
    let archived = service
        .list_conversations(
            &a,
            ListConversations {
                archived: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&archived), vec![first.id.clone()]);

    // Tenant isolation on every operation.
    assert!(matches!(
        service.get_conversation(&b, &first.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(service
        .list_messages(&b, &first.id, false, None, None)
        .await
        .is_err());
    assert!(service
        .append_message(&b, &first.id, MessageDraft::text(MessageRole::User, "hi"))
        .await
        .is_err());
    assert!(service
        .update_conversation(&b, &first.id, UpdateConversation::default())
        .await
        .is_err());
    assert!(service
        .delete_conversation(&b, &first.id, false)
        .await
        .is_err());
    assert!(service
        .delete_conversation(&b, &first.id, true)
        .await
        .is_err());
    assert!(service
        .list_conversations(&b, ListConversations::default())
        .await
        .unwrap()
        .items
        .is_empty());
    assert_eq!(
        service
            .get_conversation(&a, &first.id)
            .await
            .unwrap()
            .message_count,
        5
    );

    // Export has every message in order.
    let export = service.export_conversation(&a, &first.id).await.unwrap();
    assert_eq!(export.messages.len(), 5);
    assert_eq!(export.agent_slug, "support");
    let markdown = frontdesk_core::service::render_markdown(&export);
    assert!(
        markdown.starts_with("# Where is my order #1234?"),
        "{markdown}"
    );
    assert!(markdown.contains("## Assistant") && markdown.contains("refund status"));

    // Soft delete hides; purge removes for good, messages included.
    service
        .delete_conversation(&a, &second.id, false)
        .await
        .unwrap();
    assert!(service.get_conversation(&a, &second.id).await.is_err());
    assert!(service
        .list_conversations(&a, search("norway"))
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(service
        .append_message(&a, &second.id, MessageDraft::text(MessageRole::User, "x"))
        .await
        .is_err());
    service
        .delete_conversation(&a, &second.id, true)
        .await
        .unwrap();
    service
        .delete_conversation(&a, &first.id, true)
        .await
        .unwrap();
    assert!(service
        .delete_conversation(&a, &first.id, true)
        .await
        .is_err());
    assert!(service
        .list_conversations(&a, search("refund"))
        .await
        .unwrap()
        .items
        .is_empty());
}

async fn concurrent_appends_keep_order_and_parents(fx: &Fixture) {
    let service = &fx.service;
    let a = tenant(service, "A").await;
    service
        .create_agent(&a, json!({"slug": "support", "name": "Support"}))
        .await
        .unwrap();
    let new = |agent: &str| NewConversation {
        agent: agent.into(),
        end_user_id: None,
        title: None,
        metadata: Default::default(),
    };
    let conversation = service
        .create_conversation(&a, new("support"))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..24)
        .map(|n| {
            let service = service.clone();
            let (tenant, id) = (a.clone(), conversation.id.clone());
            tokio::spawn(async move {
                service
                    .append_message(
                        &tenant,
                        &id,
                        MessageDraft::text(MessageRole::User, format!("message {n}")),
                    )
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let (messages, _) = service
        .list_messages(&a, &conversation.id, false, Some(100), None)
        .await
        .unwrap();
    assert_eq!(
        messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=24).collect::<Vec<_>>()
    );
    // Each message's default parent is the message before it: one unbroken chain.
    assert_eq!(messages[0].parent_id, None);
    for pair in messages.windows(2) {
        assert_eq!(
            pair[1].parent_id.as_ref(),
            Some(&pair[0].id),
            "seq {}",
            pair[1].seq
        );
    }
    assert_eq!(
        service
            .get_conversation(&a, &conversation.id)
            .await
            .unwrap()
            .message_count,
        24
    );

    // An explicit parent must belong to the same conversation; a bad one writes nothing.
    let other = service
        .create_conversation(&a, new("support"))
        .await
        .unwrap();
    let mut draft = MessageDraft::text(MessageRole::User, "reply to the wrong thread");
    draft.parent = Parent::Message(messages[3].id.clone());
    assert!(service.append_message(&a, &other.id, draft).await.is_err());
    assert_eq!(
        service
            .get_conversation(&a, &other.id)
            .await
            .unwrap()
            .message_count,
        0
    );
    // A sibling answer: same parent as an earlier message.
    let mut sibling = MessageDraft::text(MessageRole::Assistant, "another answer");
    sibling.parent = Parent::Message(messages[3].id.clone());
    let sibling = service
        .append_message(&a, &conversation.id, sibling)
        .await
        .unwrap();
    assert_eq!(sibling.parent_id.as_ref(), Some(&messages[3].id));
    assert_eq!(sibling.seq, 25);
}

async fn tenant_creation_is_all_or_nothing(fx: &Fixture) {
    let service = &fx.service;
    let first = service
        .create_tenant(NewTenant {
            name: "First".into(),
            owner_email: Some("taken@example.com".into()),
            monthly_token_quota: None,
        })
        .await
        .unwrap();
    // A setup whose new user collides with an existing email (as a concurrent creation would)
    // fails as a whole: no tenant, no key.
    let owner = first.owner.unwrap();
    let tenant = frontdesk_core::tenant::Tenant {
        id: frontdesk_core::id::TenantId::new(),
        name: "Second".into(),
        monthly_token_quota: None,
        created_at: frontdesk_core::time::Timestamp::now(),
    };
    let user = frontdesk_core::tenant::User {
        id: frontdesk_core::id::UserId::new(),
        ..owner.user.clone()
    };
    let secret = KeySecret::generate(KeyKind::Secret);
    let key = frontdesk_core::key::ApiKey {
        tenant_id: tenant.id.clone(),
        id: frontdesk_core::id::KeyId::new(),
        ..first.secret_key.clone()
    };
    let setup = frontdesk_core::store::TenantSetup {
        tenant: tenant.clone(),
        owner: Some(frontdesk_core::store::NewMember {
            membership: frontdesk_core::tenant::Membership {
                tenant_id: tenant.id.clone(),
                user_id: user.id.clone(),
                role: Role::Owner,
                created_at: tenant.created_at,
            },
            new_user: Some(user),
        }),
        key,
        key_hash: secret.hash(),
    };
    assert!(matches!(
        fx.store.create_tenant(&setup).await,
        Err(frontdesk_core::StoreError::Conflict("email"))
    ));
    assert!(fx.store.get_tenant(&tenant.id).await.is_err());
    assert!(service.authenticate(secret.expose()).await.is_err());
}

async fn the_demo_is_made_once(fx: &Fixture) {
    let service = &fx.service;
    let origins = vec!["http://127.0.0.1:8080".to_owned()];
    // Two instances starting at once: one makes the demo, the other waits its turn.
    let (first, second) = tokio::join!(
        service.bootstrap_demo(&origins),
        service.bootstrap_demo(&origins)
    );
    let outcomes = [first.unwrap(), second.unwrap()];
    let created: Vec<_> = outcomes
        .iter()
        .filter(|d| matches!(d, Demo::Created(_)))
        .collect();
    assert_eq!(created.len(), 1, "{outcomes:?}");
    let Demo::Created(demo) = created[0] else {
        unreachable!()
    };
    assert!(service.authenticate(demo.secret_key.expose()).await.is_ok());
    assert!(service
        .authenticate(demo.publishable_key.expose())
        .await
        .is_ok());
    // Later starts find it and reveal nothing.
    match service.bootstrap_demo(&origins).await.unwrap() {
        Demo::Existing { tenant, .. } => assert_eq!(tenant.id, demo.tenant.id),
        other => panic!("expected the existing demo, got {other:?}"),
    }
    // A claim left by a process that died long ago is taken over.
    fx.store
        .set_setting("demo_tenant_id", "pending:1000")
        .await
        .unwrap();
    assert!(matches!(
        service.bootstrap_demo(&origins).await.unwrap(),
        Demo::Created(_)
    ));
}

async fn settings(fx: &Fixture) {
    assert_eq!(fx.store.get_setting("demo").await.unwrap(), None);
    fx.store.set_setting("demo", "one").await.unwrap();
    fx.store.set_setting("demo", "two").await.unwrap();
    assert_eq!(
        fx.store.get_setting("demo").await.unwrap().as_deref(),
        Some("two")
    );
    fx.store.ping().await.unwrap();
}

#[path = "suite/handoff.rs"]
mod handoff;
#[path = "suite/more.rs"]
mod more;
#[path = "suite/sessions.rs"]
mod sessions;
use handoff::handoff;
use more::{
    branches, first_use_secrets_agree_under_a_race, provider_credentials, runs,
    the_widget_token_secret_is_sealed, turn_context,
};
use sessions::{activity, search_pages, sessions_and_links};

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fx = Fixture::sqlite().await;
                    super::$name(&fx).await;
                    fx.done().await;
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fx = Fixture::postgres().await;
                    super::$name(&fx).await;
                    fx.done().await;
                }
            )*
        }
    };
}

suite!(
    tenants_users_and_keys,
    agents_and_versions,
    conversations_and_messages,
    concurrent_appends_keep_order_and_parents,
    tenant_creation_is_all_or_nothing,
    the_demo_is_made_once,
    settings,
    branches,
    runs,
    provider_credentials,
    turn_context,
    first_use_secrets_agree_under_a_race,
    the_widget_token_secret_is_sealed,
    sessions_and_links,
    activity,
    search_pages,
    handoff,
);
