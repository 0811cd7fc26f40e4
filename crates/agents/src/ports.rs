//! The engine's ports: what changes when frontdesk runs as several instances (or under an
//! eval harness) sits behind these traits, and the binary picks the implementations where it
//! wires the app. Today's are in process: the hub (`hub::RunHub`) is the run log,
//! `live::LocalRuns` the run control.
//!
//! - [`RunLog`]: each run's ordered events — open, append, follow from a sequence number,
//!   reopen a resumed run, keep for a while after the end.
//! - [`RunControl`]: which runs are live, and stopping them.

use std::pin::Pin;

use frontdesk_core::id::{ConversationId, RunId, TenantId};
use frontdesk_core::run::{RunEvent, SequencedEvent};
use frontdesk_core::Result;
use futures_util::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

/// Where runs' events are written and read.
pub trait RunLog: Send + Sync + 'static {
    /// Opens the log of a new run.
    fn open(&self, run: &RunId, tenant: &TenantId) -> Publisher;
    /// Opens the log of a run that goes on after a pause, holding its earlier events (the
    /// sequence numbers go on).
    fn reopen(&self, run: &RunId, tenant: &TenantId, events: Vec<SequencedEvent>) -> Publisher;
    /// Follows a run of `tenant` from after `last_seq` (0: from the start); `None` for
    /// another tenant's run or one this log no longer holds (its stored record serves it).
    fn follow(&self, run: &RunId, tenant: &TenantId, last_seq: u64) -> Option<Follower>;
    /// Whether this log's copy of `run` ends with a pause for approvals (it may have gone on
    /// elsewhere since).
    fn paused(&self, run: &RunId) -> bool;
}

/// Writes one run's events in order: what a [`RunLog`] gives the engine.
pub trait RunWriter: Send + Sync + 'static {
    /// Appends an event that followers do not see until the next [`RunWriter::wake`]: for
    /// events that must be stored before anyone acts on them. Returns its sequence number.
    fn append(&self, event: RunEvent) -> u64;
    /// Shows the followers what was appended, and wakes them.
    fn wake(&self);
    /// Drops what was appended but not yet shown (it must not be seen after all).
    fn discard_hidden(&self);
    /// Every event written so far.
    fn events(&self) -> Vec<SequencedEvent>;
}

/// The writing end of one run's log.
#[derive(Clone)]
pub struct Publisher(std::sync::Arc<dyn RunWriter>);

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Publisher")
    }
}

impl Publisher {
    pub fn new(writer: std::sync::Arc<dyn RunWriter>) -> Self {
        Self(writer)
    }

    /// Appends an event and wakes the followers; returns its sequence number.
    pub fn publish(&self, event: RunEvent) -> u64 {
        let seq = self.0.append(event);
        self.0.wake();
        seq
    }

    /// See [`RunWriter::append`].
    pub fn append(&self, event: RunEvent) -> u64 {
        self.0.append(event)
    }

    /// See [`RunWriter::wake`].
    pub fn wake(&self) {
        self.0.wake();
    }

    /// See [`RunWriter::discard_hidden`].
    pub fn discard_hidden(&self) {
        self.0.discard_hidden();
    }

    /// Every event published so far.
    pub fn events(&self) -> Vec<SequencedEvent> {
        self.0.events()
    }
}

/// Reads one run's events from a point on, to its end (or its pause).
pub struct Follower(Pin<Box<dyn Stream<Item = SequencedEvent> + Send>>);

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Follower")
    }
}

impl Follower {
    /// A follower over any ordered stream of a run's events.
    pub fn from_stream(events: impl Stream<Item = SequencedEvent> + Send + 'static) -> Self {
        Self(Box::pin(events))
    }

    /// A follower over a finished run's stored events, from after `last_seq`.
    pub fn finished(events: Vec<SequencedEvent>, last_seq: u64) -> Self {
        let after = events.into_iter().filter(move |e| e.seq > last_seq);
        Self::from_stream(futures_util::stream::iter(after))
    }

    /// The same events, each passed through `view` (what an end user may see of them).
    pub fn map(self, view: impl FnMut(SequencedEvent) -> SequencedEvent + Send + 'static) -> Self {
        Self::from_stream(self.0.map(view))
    }

    /// The next event, waiting for it; `None` after the last one.
    pub async fn next(&mut self) -> Option<SequencedEvent> {
        self.0.next().await
    }
}

/// Which runs are live, and how to stop them.
pub trait RunControl: Send + Sync + 'static {
    /// Registers a live run; the token stops it.
    fn track(
        &self,
        run: &RunId,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> CancellationToken;
    /// The run ended (or paused) here.
    fn untrack(&self, run: &RunId);
    /// Stops a live run of `tenant`; 404 when it is not live (or another tenant's).
    fn cancel(&self, tenant: &TenantId, run: &RunId) -> Result<()>;
    /// The conversation of a live run of `tenant`.
    fn live_conversation(&self, tenant: &TenantId, run: &RunId) -> Option<ConversationId>;
    /// Stops every live run of a conversation (staff took it); how many.
    fn cancel_conversation(&self, tenant: &TenantId, conversation: &ConversationId) -> usize;
    /// Whether a run of `tenant` is live.
    fn is_live(&self, tenant: &TenantId, run: &RunId) -> bool {
        self.live_conversation(tenant, run).is_some()
    }
}
