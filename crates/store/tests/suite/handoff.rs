//! Who handles a conversation: one holder at a time under a race, a timeline numbered in
//! order, the waiting list oldest first with its own cursor, and the wait sweep's
//! compare-and-set; the same on both backends.

use frontdesk_core::conversation::{MessageDraft, MessageRole};
use frontdesk_core::handoff::{Assignee, EventKind, Handler};
use frontdesk_core::service::{ListConversations, NewConversation};
use frontdesk_core::store::HandoffStore;
use frontdesk_core::time::Timestamp;
use frontdesk_core::Error;
use serde_json::json;

use super::{tenant, Fixture};

fn person(id: &str) -> Assignee {
    Assignee {
        id: id.into(),
        name: format!("Person {id}"),
        avatar_url: None,
    }
}

pub async fn handoff(fx: &Fixture) {
    let service = &fx.service;
    let a = tenant(service, "A").await;
    let b = tenant(service, "B").await;
    service
        .create_agent(&a, json!({"slug": "support", "name": "Support"}))
        .await
        .unwrap();
    let new = || NewConversation {
        agent: "support".into(),
        end_user_id: None,
        title: None,
        metadata: Default::default(),
    };
    let first = service.create_conversation(&a, new()).await.unwrap();
    let second = service.create_conversation(&a, new()).await.unwrap();

    // Asking twice waits once; the second ask changes nothing.
    let (waiting, asked) = service
        .request_human(&a, &second.id, "agent", Some("refund"), 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(waiting.handler, Handler::Human);
    assert_eq!(asked.seq, 1);
    assert_eq!(asked.kind, EventKind::Requested);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    service
        .request_human(&a, &first.id, "visitor", None, 300)
        .await
        .unwrap()
        .unwrap();
    assert!(service
        .request_human(&a, &first.id, "visitor", None, 300)
        .await
        .unwrap()
        .is_none());
    let due = service.waits_due(Timestamp::now(), 10).await.unwrap();
    assert_eq!(due.len(), 1, "only the wait of 0 s is due");
    assert_eq!(due[0].id, second.id);
    // Oldest waiting first, page by page; another tenant sees none.
    let page = service
        .list_conversations(
            &a,
            ListConversations {
                waiting: true,
                limit: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items[0].id, second.id);
    let next = service
        .list_conversations(
            &a,
            ListConversations {
                waiting: true,
                limit: Some(1),
                cursor: page.next.map(|c| c.encode()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(next.items[0].id, first.id);
    assert!(next.next.is_none());
    let theirs = service
        .list_conversations(
            &b,
            ListConversations {
                waiting: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(theirs.items.is_empty());
    assert!(matches!(
        service.take_over(&b, &first.id, &person("b")).await,
        Err(Error::NotFound { .. })
    ));

    // Eight staff race for one conversation: exactly one holds it.
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let service = service.clone();
            let (tenant, id) = (a.clone(), first.id.clone());
            tokio::spawn(async move {
                service
                    .take_over(&tenant, &id, &person(&n.to_string()))
                    .await
            })
        })
        .collect();
    let mut won = Vec::new();
    for (n, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(_) => won.push(n),
            Err(Error::Conflict { code, .. }) => assert_eq!(code, "conversation_taken"),
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(won.len(), 1, "one winner: {won:?}");
    let holder = person(&won[0].to_string());
    let held = service.get_conversation(&a, &first.id).await.unwrap();
    assert_eq!(held.assignee.as_ref(), Some(&holder));
    assert!(held.waiting_since.is_none());
    // Taking one's own again records nothing.
    let (_, again) = service.take_over(&a, &first.id, &holder).await.unwrap();
    assert!(again.is_none());

    // A reply is a message with its author and an event; a note only an event.
    let posted = service
        .staff_message(&a, &first.id, &holder, "On it.", false)
        .await
        .unwrap();
    let reply = posted.message.unwrap();
    assert_eq!(reply.role, MessageRole::Assistant);
    assert_eq!(reply.author.as_ref().unwrap().name, holder.name);
    let noted = service
        .staff_message(&a, &first.id, &holder, "VIP", true)
        .await
        .unwrap();
    assert!(noted.message.is_none());
    let (stored, _) = service
        .message_for_people(
            &a,
            &first.id,
            MessageDraft::text(MessageRole::User, "thanks"),
        )
        .await
        .unwrap();
    assert!(stored.author.is_none());
    let events = service
        .conversation_events(&a, &first.id, 0, 100)
        .await
        .unwrap();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Requested,
            EventKind::Taken,
            EventKind::Message,
            EventKind::Note,
            EventKind::Message
        ]
    );
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(
        service
            .conversation_events(&a, &first.id, 3, 100)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(service
        .conversation_events(&b, &first.id, 0, 100)
        .await
        .unwrap()
        .is_empty());
    // The author survives a read.
    let read = fx.store.events_after(&a, &first.id, 2, 1).await.unwrap();
    assert_eq!(read[0].actor.as_ref(), Some(&holder));

    // Handing back: only the holder; then the agent answers.
    assert!(matches!(
        service.hand_back(&a, &first.id, &person("intruder")).await,
        Err(Error::Conflict { .. })
    ));
    let (back, _) = service.hand_back(&a, &first.id, &holder).await.unwrap();
    assert_eq!(back.handler, Handler::Agent);
    assert!(back.assignee.is_none());

    // The sweep ends a wait only while it is still the same wait.
    let since = service
        .get_conversation(&a, &second.id)
        .await
        .unwrap()
        .waiting_since
        .unwrap();
    // Due: the one asked with no time to wait, not the one that waits five minutes.
    let due = service.waits_due(Timestamp::now(), 10).await.unwrap();
    assert!(due.iter().any(|c| c.id == second.id));
    assert!(!due.iter().any(|c| c.id == first.id));
    assert!(service
        .end_wait(
            &a,
            &second.id,
            Timestamp::from_millis(since.as_millis() - 1)
        )
        .await
        .unwrap()
        .is_none());
    let (ended, event) = service
        .end_wait(&a, &second.id, since)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.handler, Handler::Agent);
    assert_eq!(event.kind, EventKind::TimedOut);
    assert!(service
        .end_wait(&a, &second.id, since)
        .await
        .unwrap()
        .is_none());
}
