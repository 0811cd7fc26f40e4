//! Following a conversation (not one run): its timeline events as server-sent events, each
//! with `id:` (its sequence number, for `Last-Event-ID`), then what happens live — staff
//! replies, "a person joined", "the assistant is back", typing, runs starting. One stream for
//! staff (everything) and visitors (no internal notes, no staff ids, messages as end users
//! see them).

use std::convert::Infallible;

use frontdesk_agents::{ConversationFeed, FeedItem};
use frontdesk_core::end_user::EndUserView;
use frontdesk_core::handoff::{ConversationEvent, EventKind};
use frontdesk_core::id::{ConversationId, TenantId};
use frontdesk_core::Service;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// Events read from the timeline at once.
const BATCH: u32 = 200;
/// A comment line this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// Who follows.
#[derive(Clone)]
pub(crate) enum Viewer {
    Staff,
    Visitor(EndUserView),
}

impl Viewer {
    /// The event as this viewer may see it (`None`: not at all).
    fn show(&self, event: &ConversationEvent) -> Option<Value> {
        match self {
            Viewer::Staff => serde_json::to_value(event).ok(),
            Viewer::Visitor(view) => {
                if event.kind.internal() {
                    return None;
                }
                let mut event = event.clone();
                // Why the agent asked for a person is for staff.
                if event.kind == EventKind::Requested {
                    let by = event.data.get("by").cloned().unwrap_or(Value::Null);
                    event.data = json!({"by": by});
                }
                if event.kind == EventKind::Message {
                    if let Some(message) = event.data.get("message").cloned() {
                        let message = serde_json::from_value(message).ok()?;
                        event.data = json!({"message": view.message(message)});
                    }
                }
                let mut value = serde_json::to_value(&event).ok()?;
                if let Some(actor) = value.get_mut("actor").and_then(Value::as_object_mut) {
                    actor.remove("id");
                }
                Some(value)
            }
        }
    }
}

struct Follow {
    service: Service,
    feed: Arc<ConversationFeed>,
    tenant: TenantId,
    conversation: ConversationId,
    viewer: Viewer,
    last: i64,
    receiver: Option<tokio::sync::broadcast::Receiver<FeedItem>>,
    /// Whether other instances may write (a shared database): then a quiet stream re-reads
    /// the timeline now and then.
    shared: bool,
    /// Frames ready to send.
    out: String,
}

impl Follow {
    fn frame(&mut self, id: Option<i64>, name: &str, data: &Value) {
        if let Some(id) = id {
            self.out.push_str(&format!("id: {id}\n"));
        }
        self.out
            .push_str(&format!("event: {name}\ndata: {data}\n\n"));
    }

    fn event(&mut self, event: &ConversationEvent) {
        if event.seq <= self.last {
            return;
        }
        self.last = event.seq;
        if let Some(data) = self.viewer.show(event) {
            self.frame(Some(event.seq), event.kind.as_str(), &data);
        }
    }

    /// Reads the timeline after the last event sent.
    async fn catch_up(&mut self) {
        loop {
            let batch = match self
                .service
                .conversation_events(&self.tenant, &self.conversation, self.last, BATCH)
                .await
            {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(conversation = %self.conversation, error = %error, "a conversation's timeline could not be read");
                    return;
                }
            };
            let full = batch.len() == BATCH as usize;
            for event in &batch {
                self.event(event);
            }
            if !full {
                return;
            }
        }
    }

    async fn next(&mut self) {
        let Some(receiver) = &mut self.receiver else {
            self.receiver = Some(self.feed.subscribe(&self.tenant, &self.conversation));
            return self.catch_up().await;
        };
        let quiet = if self.shared {
            frontdesk_agents::feed::POLL
        } else {
            KEEP_ALIVE
        };
        let waited = tokio::time::timeout(quiet, receiver.recv()).await;
        match waited {
            Ok(Ok(FeedItem::Event(event))) => {
                if event.seq > self.last.saturating_add(1) {
                    // Something came between: read it in order.
                    self.catch_up().await;
                } else {
                    self.event(&event);
                }
            }
            Ok(Ok(FeedItem::RunStarted { run_id, unprompted })) => {
                // A visitor follows the runs it starts itself; staff see every one.
                if unprompted || matches!(self.viewer, Viewer::Staff) {
                    self.frame(None, "run.started", &json!({"run_id": run_id}));
                }
            }
            Ok(Ok(FeedItem::Typing { name })) => {
                self.frame(None, "typing", &json!({"name": name}));
            }
            Ok(Err(RecvError::Lagged(_))) => self.catch_up().await,
            Ok(Err(RecvError::Closed)) => {
                self.receiver = None;
            }
            Err(_) => {
                // Quiet: another instance's events, then a keep-alive.
                if self.shared {
                    self.catch_up().await;
                }
                if self.out.is_empty() {
                    self.out.push_str(": keep-alive\n\n");
                }
            }
        }
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        // The last follower of a conversation here takes its channel with it.
        self.receiver = None;
        self.feed.release(&self.tenant, &self.conversation);
    }
}

/// The conversation's events after `after`, then live, as a streamed response.
pub(crate) fn conversation_events(
    service: Service,
    feed: Arc<ConversationFeed>,
    tenant: TenantId,
    conversation: ConversationId,
    after: i64,
    viewer: Viewer,
) -> axum::response::Response {
    let shared = service.store().backend() != "sqlite";
    let follow = Follow {
        shared,
        service,
        feed,
        tenant,
        conversation,
        viewer,
        last: after,
        receiver: None,
        out: ": following\n\n".to_owned(),
    };
    let body = futures_util::stream::unfold(follow, |mut follow| async move {
        while follow.out.is_empty() {
            follow.next().await;
        }
        let frames = std::mem::take(&mut follow.out);
        Some((Ok::<_, Infallible>(frames), follow))
    });
    super::wire::event_stream(body)
}
