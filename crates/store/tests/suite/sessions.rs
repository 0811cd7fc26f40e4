//! Dashboard sessions, invites, password resets and membership changes, and the activity
//! the overview reads: the same checks on both backends.

use frontdesk_core::conversation::ConversationQuery;
use frontdesk_core::conversation::{MessageDraft, MessageRole, Usage};
use frontdesk_core::id::RunId;
use frontdesk_core::policy::Approver;
use frontdesk_core::run::{RunEvent, RunRecord, RunStatus, SequencedEvent};
use frontdesk_core::service::{AcceptInvite, NewConversation, NewUser};
use frontdesk_core::session::LinkKind;
use frontdesk_core::store::{ConversationStore, RunStore, SessionStore};
use frontdesk_core::tenant::Role;
use frontdesk_core::time::Timestamp;
use frontdesk_core::Error;

use super::{tenant, Fixture};

const PASSWORD: &str = "a long enough password";

pub async fn sessions_and_links(fx: &Fixture) {
    let service = &fx.service;
    let acme = tenant(service, "Acme").await;
    let globex = tenant(service, "Globex").await;
    for (tenant, role) in [(&acme, Role::Owner), (&globex, Role::Viewer)] {
        service
            .add_user(
                tenant,
                NewUser {
                    email: "ada@example.test".into(),
                    name: Some("Ada".into()),
                    role,
                    password: Some(PASSWORD.into()),
                },
            )
            .await
            .unwrap();
    }
    assert!(matches!(
        service
            .sign_in("ada@example.test", "wrong password", "test")
            .await,
        Err(Error::Unauthenticated { .. })
    ));
    assert!(matches!(
        service
            .sign_in("nobody@example.test", PASSWORD, "test")
            .await,
        Err(Error::Unauthenticated { .. })
    ));
    let signed = service
        .sign_in("Ada@Example.test", PASSWORD, "test")
        .await
        .unwrap();
    let cookie = signed.token.expose().to_owned();
    // The store keeps the hash, never the cookie.
    assert!(fx.store.get_session(&cookie).await.unwrap().is_none());
    let staff = service.staff(&cookie).await.unwrap();
    assert_eq!(staff.tenants.len(), 2);
    assert_eq!(staff.tenant.name, "Acme", "the first tenant by name");
    assert_eq!(staff.role, Role::Owner);
    service.switch_tenant(&staff, &globex).await.unwrap();
    let staff = service.staff(&cookie).await.unwrap();
    assert_eq!(
        (staff.tenant.id.clone(), staff.role),
        (globex.clone(), Role::Viewer)
    );

    // Leaving the shown tenant moves the session to another one.
    service.remove_member(&staff, &staff.user.id).await.unwrap();
    let staff = service.staff(&cookie).await.unwrap();
    assert_eq!(staff.tenant.id, acme);

    // Invites: one use, for the invited email, as the invited role.
    let (token, link) = service
        .create_invite(&staff, Some("ben@example.test"), Role::Editor)
        .await
        .unwrap();
    assert_eq!(link.kind, LinkKind::Invite);
    assert_eq!(service.pending_invites(&acme).await.unwrap().len(), 1);
    let accept = |email: &str| AcceptInvite {
        email: email.into(),
        name: Some("Ben".into()),
        password: PASSWORD.into(),
    };
    assert!(matches!(
        service
            .accept_invite(token.expose(), accept("eve@example.test"), "t")
            .await,
        Err(Error::InvalidField { .. })
    ));
    // Two acceptances at once: one wins.
    let (a, b) = tokio::join!(
        service.accept_invite(token.expose(), accept("ben@example.test"), "t"),
        service.accept_invite(token.expose(), accept("ben@example.test"), "t"),
    );
    assert!(
        a.is_ok() != b.is_ok(),
        "exactly one acceptance wins: {a:?} {b:?}"
    );
    assert!(service.pending_invites(&acme).await.unwrap().is_empty());
    let members = service.list_members(&acme).await.unwrap();
    let ben = members
        .iter()
        .find(|(_, u)| u.email == "ben@example.test")
        .unwrap();
    assert_eq!(ben.0.role, Role::Editor);
    let ben_session = a.or(b).unwrap();

    // A reset link sets the password once and ends every session of that user.
    let reset = service.create_reset_link("ben@example.test").await.unwrap();
    assert!(
        service
            .usable_link(reset.expose(), LinkKind::Invite)
            .await
            .is_err(),
        "kinds do not mix"
    );
    service
        .reset_password(reset.expose(), "another long password")
        .await
        .unwrap();
    assert!(service.staff(ben_session.token.expose()).await.is_err());
    assert!(service
        .reset_password(reset.expose(), "yet another password")
        .await
        .is_err());
    service
        .sign_in("ben@example.test", "another long password", "t")
        .await
        .unwrap();

    // Roles: the last owner stays; an invite above one's role is refused.
    let owner = service.staff(&cookie).await.unwrap();
    assert!(matches!(
        service
            .set_member_role(&owner, &owner.user.id, Role::Viewer)
            .await,
        Err(Error::Conflict { .. })
    ));
    let ben_signed = service
        .sign_in("ben@example.test", "another long password", "t")
        .await
        .unwrap();
    let ben_staff = service.staff(ben_signed.token.expose()).await.unwrap();
    assert!(matches!(
        service.create_invite(&ben_staff, None, Role::Viewer).await,
        Err(Error::Forbidden { .. })
    ));

    // Removed from their only tenant, a member's session ends.
    service
        .remove_member(&owner, &ben_staff.user.id)
        .await
        .unwrap();
    assert!(service.staff(ben_signed.token.expose()).await.is_err());
    assert!(fx
        .store
        .get_session(&ben_signed.session.token_hash)
        .await
        .unwrap()
        .is_none());
    service.sign_out(&cookie).await.unwrap();
    assert!(service.staff(&cookie).await.is_err());
}

pub async fn activity(fx: &Fixture) {
    let service = &fx.service;
    let acme = tenant(service, "Acme").await;
    service
        .create_agent(&acme, serde_json::json!({"slug": "a", "name": "A"}))
        .await
        .unwrap();
    let mut last = None;
    for _ in 0..3 {
        let conversation = service
            .create_conversation(
                &acme,
                NewConversation {
                    agent: "a".into(),
                    end_user_id: None,
                    title: None,
                    metadata: Default::default(),
                },
            )
            .await
            .unwrap();
        service
            .append_message(
                &acme,
                &conversation.id,
                MessageDraft::text(MessageRole::User, "hi"),
            )
            .await
            .unwrap();
        last = Some(conversation.id);
    }
    // Two runs: one streamed its first text 120 ms in, one waited for a person first.
    let conversation = last.expect("a conversation");
    let start = Timestamp::now();
    let at = |ms: i64| Timestamp::from_millis(start.as_millis() + ms);
    let event = |seq: u64, ms: i64, event: RunEvent| SequencedEvent {
        seq,
        at: at(ms),
        event,
    };
    let delta = || RunEvent::MessageDelta { text: "Hi".into() };
    let done = || RunEvent::RunCompleted {
        status: RunStatus::Completed,
        usage: Usage::default(),
    };
    for events in [
        vec![
            event(
                1,
                0,
                RunEvent::MessageDelta {
                    text: String::new(),
                },
            ),
            event(2, 120, delta()),
            event(3, 400, done()),
        ],
        vec![
            event(
                1,
                0,
                RunEvent::ApprovalRequired {
                    run_id: RunId::new(),
                    call_id: "c".into(),
                    tool: "t".into(),
                    arguments: serde_json::json!({}),
                    approver: Approver::Staff,
                    expires_at: at(60_000),
                },
            ),
            event(2, 9_000, delta()),
            event(3, 9_100, done()),
        ],
    ] {
        let record = RunRecord {
            id: RunId::new(),
            tenant_id: acme.clone(),
            conversation_id: conversation.clone(),
            status: RunStatus::Completed,
            agent: "a".into(),
            model: "m".into(),
            usage: Usage::default(),
            steps: Vec::new(),
            state: None,
            expires_at: None,
            created_at: start,
            completed_at: events.last().unwrap().at,
            events,
        };
        fx.store.save_run(&record).await.unwrap();
    }
    let now = Timestamp::now().as_millis();
    let activity = service
        .activity(
            &acme,
            Timestamp::from_millis(now - 86_400_000),
            Timestamp::from_millis(now + 1000),
        )
        .await
        .unwrap();
    let conversations: i64 = activity.rows.iter().map(|d| d.conversations).sum();
    assert_eq!(conversations, 3);
    let messages: i64 = activity.rows.iter().map(|d| d.messages).sum();
    assert_eq!(messages, 3);
    assert_eq!(activity.runs.runs, 2);
    assert_eq!(activity.runs.first_token_ms, vec![120]);
    let mut durations = activity.runs.durations_ms.clone();
    durations.sort_unstable();
    assert_eq!(durations, vec![400, 9_100]);
    assert!(
        activity.rows.iter().all(|d| d.day.len() == 10),
        "{activity:?}"
    );
    // The rollup kept by the writes is what a rebuild from the rows makes.
    fx.store.rebuild_daily_activity().await.unwrap();
    let rebuilt = service
        .activity(
            &acme,
            Timestamp::from_millis(now - 86_400_000),
            Timestamp::from_millis(now + 1000),
        )
        .await
        .unwrap();
    assert_eq!(rebuilt.rows, activity.rows);
    let other = tenant(service, "Other").await;
    let theirs = service
        .activity(
            &other,
            Timestamp::from_millis(now - 86_400_000),
            Timestamp::from_millis(now + 1000),
        )
        .await
        .unwrap();
    assert!(theirs.rows.is_empty());
}

/// Search pages: every match once, newest activity first, across pages; titles and message
/// text alike; never another tenant's.
pub async fn search_pages(fx: &Fixture) {
    use frontdesk_core::service::ListConversations;
    let service = &fx.service;
    let acme = tenant(service, "Acme").await;
    let other = tenant(service, "Other").await;
    for t in [&acme, &other] {
        service
            .create_agent(t, serde_json::json!({"slug": "a", "name": "A"}))
            .await
            .unwrap();
    }
    let mut matching = Vec::new();
    for n in 0..7 {
        let (tenant, text, title) = match n % 3 {
            0 => (&acme, "where is my parcel", None),
            1 => (&acme, "nothing to see", Some("Parcel question".to_owned())),
            _ => (&acme, "unrelated words", None),
        };
        let conversation = service
            .create_conversation(
                tenant,
                NewConversation {
                    agent: "a".into(),
                    end_user_id: None,
                    title,
                    metadata: Default::default(),
                },
            )
            .await
            .unwrap();
        service
            .append_message(
                tenant,
                &conversation.id,
                MessageDraft::text(MessageRole::User, text),
            )
            .await
            .unwrap();
        if n % 3 != 2 {
            matching.push(conversation.id.clone());
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    // Another tenant's matches never show.
    let theirs = service
        .create_conversation(
            &other,
            NewConversation {
                agent: "a".into(),
                end_user_id: None,
                title: Some("parcel".into()),
                metadata: Default::default(),
            },
        )
        .await
        .unwrap();
    matching.reverse();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = service
            .list_conversations(
                &acme,
                ListConversations {
                    q: Some("parcel".into()),
                    limit: Some(2),
                    cursor: cursor.take(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|c| c.id.clone()));
        match page.next {
            Some(next) => cursor = Some(next.encode()),
            None => break,
        }
    }
    assert_eq!(seen, matching, "newest activity first, every match once");
    assert!(!seen.contains(&theirs.id));
    // The window a common word takes (here from one matching message on) pages the same, for a
    // whole word and for a prefix; it falls back to the set where it finds no whole page.
    let windowed = fx.store.clone().with_search_window_from(1);
    for (q, limit) in [
        ("parcel", 2),
        ("parc", 2),
        ("parcel", 10),
        ("where parc", 1),
    ] {
        let mut pages = Vec::new();
        for store in [&fx.store, &windowed] {
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page = store
                    .list_conversations(
                        &acme,
                        &ConversationQuery {
                            search: Some(q.to_owned()),
                            limit,
                            after: after.take(),
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                seen.extend(page.items.iter().map(|c| c.id.clone()));
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            pages.push(seen);
        }
        assert_eq!(pages[0], pages[1], "{q} by {limit}");
        assert!(
            !pages[1].is_empty() && !pages[1].contains(&theirs.id),
            "{q}"
        );
    }
}
