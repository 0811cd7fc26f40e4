//! Finished runs, kept for replay.

use super::Service;
use crate::error::{Error, Result};
use crate::id::{RunId, TenantId};
use crate::run::RunRecord;

impl Service {
    /// Keeps a finished run and its events.
    pub async fn record_run(&self, run: &RunRecord) -> Result<()> {
        self.store
            .insert_run(run)
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
}
