//! The runs live in this process, with the tokens that stop them: the in-process
//! [`RunControl`]. Many instances need one that reaches the instance running a run (the
//! scale-out work); the engine does not change for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use frontdesk_core::id::{ConversationId, RunId, TenantId};
use frontdesk_core::{Error, Result};
use tokio_util::sync::CancellationToken;

use crate::ports::RunControl;

/// A live run: whose, in which conversation, and how to stop it.
struct LiveRun {
    tenant: TenantId,
    conversation: ConversationId,
    cancel: CancellationToken,
}

/// The runs live in this process.
#[derive(Clone, Default)]
pub struct LocalRuns {
    runs: Arc<Mutex<HashMap<RunId, LiveRun>>>,
}

impl LocalRuns {
    fn runs(&self) -> MutexGuard<'_, HashMap<RunId, LiveRun>> {
        match self.runs.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl RunControl for LocalRuns {
    fn track(
        &self,
        run: &RunId,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> CancellationToken {
        let cancel = CancellationToken::new();
        self.runs().insert(
            run.clone(),
            LiveRun {
                tenant: tenant.clone(),
                conversation: conversation.clone(),
                cancel: cancel.clone(),
            },
        );
        cancel
    }

    fn untrack(&self, run: &RunId) {
        self.runs().remove(run);
    }

    fn cancel(&self, tenant: &TenantId, run: &RunId) -> Result<()> {
        match self.runs().get(run) {
            Some(live) if live.tenant == *tenant => {
                live.cancel.cancel();
                Ok(())
            }
            _ => Err(Error::NotFound { resource: "run" }),
        }
    }

    fn cancel_conversation(&self, tenant: &TenantId, conversation: &ConversationId) -> usize {
        let runs = self.runs();
        let live = runs
            .values()
            .filter(|live| live.tenant == *tenant && live.conversation == *conversation);
        let mut stopped = 0;
        for run in live {
            run.cancel.cancel();
            stopped += 1;
        }
        stopped
    }

    fn live_conversation(&self, tenant: &TenantId, run: &RunId) -> Option<ConversationId> {
        self.runs()
            .get(run)
            .filter(|live| live.tenant == *tenant)
            .map(|live| live.conversation.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_sees_or_stops_a_live_run() {
        let runs = LocalRuns::default();
        let (run, tenant, conversation) = (RunId::new(), TenantId::new(), ConversationId::new());
        let token = runs.track(&run, &tenant, &conversation);
        let stranger = TenantId::new();
        assert!(!runs.is_live(&stranger, &run));
        assert!(matches!(
            runs.cancel(&stranger, &run),
            Err(Error::NotFound { .. })
        ));
        assert!(!token.is_cancelled());
        assert_eq!(runs.live_conversation(&tenant, &run), Some(conversation));
        assert!(runs.cancel(&tenant, &run).is_ok());
        assert!(token.is_cancelled());
        runs.untrack(&run);
        assert!(!runs.is_live(&tenant, &run));
    }
}
