//! Runs that ended or paused, kept for replay, traces and resuming after an approval.

use super::Service;
use crate::error::{Error, Result};
use crate::id::{RunId, TenantId};
use crate::run::RunRecord;

impl Service {
    /// Keeps a run that ended or paused, with its steps and events.
    pub async fn record_run(&self, run: &RunRecord) -> Result<()> {
        self.store
            .save_run(run)
            .await
            .map_err(|e| Error::from_store("run", e))
    }

    /// A finished run of `tenant`.
    pub async fn get_run(&self, tenant: &TenantId, run: &RunId) -> Result<RunRecord> {
        self.store
            .get_run(tenant, run)
            .await
            .map_err(|e| Error::from_store("run", e))
    }

    /// The tenant's runs (in `status` when given), newest first, without their events.
    pub async fn list_runs(
        &self,
        tenant: &TenantId,
        status: Option<crate::run::RunStatus>,
        limit: u32,
    ) -> Result<Vec<RunRecord>> {
        self.store
            .list_runs(tenant, status, limit)
            .await
            .map_err(|e| Error::from_store("run", e))
    }

    /// Takes a paused run of `tenant` to record a decision (`expired`: the sweep's, only once
    /// the approval expired; a person's only before). Not paused is a 409, unknown a 404.
    /// The daily rollup over the UTC days that `[from, to)` covers, and a sample of its runs.
    pub async fn activity(
        &self,
        tenant: &TenantId,
        from: crate::time::Timestamp,
        to: crate::time::Timestamp,
    ) -> Result<crate::usage::Activity> {
        self.store
            .activity(tenant, from, to)
            .await
            .map_err(|e| Error::from_store("run", e))
    }

    /// A conversation's runs, oldest first (its first 500).
    pub async fn conversation_runs(
        &self,
        tenant: &TenantId,
        conversation: &crate::id::ConversationId,
    ) -> Result<Vec<RunRecord>> {
        self.store
            .conversation_runs(tenant, conversation, 500)
            .await
            .map_err(|e| Error::from_store("run", e))
    }

    pub async fn claim_paused_run(
        &self,
        tenant: &TenantId,
        run: &RunId,
        expired: bool,
    ) -> Result<()> {
        let now = crate::time::Timestamp::now();
        let claimed = self
            .store
            .claim_paused_run(tenant, run, now, expired)
            .await
            .map_err(|e| Error::from_store("run", e))?;
        if claimed {
            return Ok(());
        }
        // Not found at all is a 404; found but not (or no longer) open to this is a conflict.
        let record = self.get_run(tenant, run).await?;
        let late = record.status == crate::run::RunStatus::AwaitingApproval
            && record.expires_at.is_some_and(|at| at < now);
        Err(Error::Conflict {
            code: if late {
                "approval_expired"
            } else {
                "run_not_awaiting_approval"
            },
            message: if late {
                "the approval expired; the run goes on as if the call was rejected".to_owned()
            } else {
                format!(
                    "the run is {}, not waiting for an approval",
                    record.status.as_str()
                )
            },
        })
    }

    /// The run of `conversation` that waits for approvals, if one does.
    pub async fn paused_run_of(
        &self,
        tenant: &TenantId,
        conversation: &crate::id::ConversationId,
    ) -> Result<Option<RunId>> {
        self.store
            .paused_run_of(tenant, conversation)
            .await
            .map_err(|e| Error::from_store("run", e))
    }

    /// Runs whose resuming process died (their claim ran out).
    pub async fn abandoned_claims(&self, limit: u32) -> Result<Vec<(TenantId, RunId)>> {
        self.store
            .abandoned_claims(crate::time::Timestamp::now(), limit)
            .await
            .map_err(|e| Error::from_store("run", e))
    }

    /// Paused runs whose approval expired.
    pub async fn expired_approvals(&self, limit: u32) -> Result<Vec<(TenantId, RunId)>> {
        self.store
            .expired_approvals(crate::time::Timestamp::now(), limit)
            .await
            .map_err(|e| Error::from_store("run", e))
    }
}
