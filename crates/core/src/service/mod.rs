//! Domain operations: what the HTTP handlers and the CLI call. Each validates its input,
//! mints ids and timestamps, and calls the store. Nothing here knows HTTP or SQL.

mod agents;
mod branches;
mod calls;
mod conversations;
mod credentials;
mod handoff;
mod keys;
mod knowledge;
mod runs;
mod secrets;
mod sessions;
mod tenants;
mod turns;
mod widget;

use std::sync::Arc;

use crate::config::Limits;
use crate::store::Store;

pub use calls::NewCall;
pub use conversations::{
    render_markdown, ConversationExport, ListConversations, NewConversation, UpdateConversation,
};
pub use handoff::StaffPosted;
pub use keys::NewKey;
pub use secrets::{OwnSecrets, SecretInfo, DEFAULT_OVERLAP_SECS, MAX_OVERLAP_SECS};
pub use sessions::{AcceptInvite, SignUp, SignedIn, Staff};
pub use tenants::{
    Demo, DemoCreated, NewTenant, NewUser, TenantCreated, UserAdded, DEMO_OWNER_EMAIL,
};
pub use turns::TurnStart;
pub use widget::{PageOrigin, Visitor, WidgetEntry, WidgetSession};

/// The domain facade over a store.
#[derive(Clone)]
pub struct Service {
    store: Arc<dyn Store>,
    limits: Limits,
    sealer: Option<crate::credentials::Sealer>,
}

impl Service {
    pub fn new(store: Arc<dyn Store>, limits: Limits) -> Self {
        Self {
            store,
            limits,
            sealer: None,
        }
    }

    /// The service with a master key to seal tenants' provider keys with.
    pub fn with_sealer(mut self, sealer: Option<crate::credentials::Sealer>) -> Self {
        self.sealer = sealer;
        self
    }

    /// The store underneath, for readiness checks and tests.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Whether this server can seal tenants' provider keys and secrets (it has a master key).
    pub fn can_seal(&self) -> bool {
        self.sealer.is_some()
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Clamps a requested page size to `1..=max_page_size` (default 20).
    pub fn page_size(&self, requested: Option<u32>) -> crate::Result<u32> {
        match requested {
            None => Ok(20.min(self.limits.max_page_size)),
            Some(0) => Err(crate::Error::invalid("limit", "must be at least 1")),
            Some(n) if n > self.limits.max_page_size => Err(crate::Error::invalid(
                "limit",
                format!("must be at most {}", self.limits.max_page_size),
            )),
            Some(n) => Ok(n),
        }
    }
}
