//! What the engine's parts depend on, passed explicitly: the domain service, the model
//! registry, the retry policy and the tools' environment. The loop, guardrails, concluding
//! and approvals are functions of this (and of the run's own state), not of the Runner.

use std::collections::HashMap;

use frontdesk_core::agent::Agent;
use frontdesk_core::id::TenantId;
use frontdesk_core::model::ProviderSecret;
use frontdesk_core::{Error, Result, Service};
use frontdesk_models::context;
use frontdesk_models::fallback::{Candidate, RetryPolicy};
use frontdesk_models::registry::{Registry, TenantKeys};

use crate::tools::ToolEnv;

/// How many earlier messages a turn sends to the model at most.
pub(crate) const MAX_HISTORY: u32 = 100;

/// The engine's dependencies.
#[derive(Clone)]
pub(crate) struct Deps {
    pub service: Service,
    pub registry: Registry,
    pub retry: RetryPolicy,
    pub tools: ToolEnv,
}

impl Deps {
    /// The tenant's provider keys, opened for one run.
    pub(crate) async fn keys(&self, tenant: &TenantId) -> Result<TenantKeys> {
        Ok(open_keys(self.service.open_provider_keys(tenant).await?))
    }

    /// The models that may answer for `agent`, its own first; 409 when none is configured.
    pub(crate) fn candidates(&self, agent: &Agent, keys: &TenantKeys) -> Result<Vec<Candidate>> {
        self.registry
            .candidates(&agent.spec.model, &agent.spec.fallback_models, keys)
            .map_err(|e| Error::Conflict {
                code: "model_unavailable",
                message: e.to_string(),
            })
    }
}

/// Provider keys in the clear, as the model registry takes them.
pub(crate) fn open_keys(keys: HashMap<String, secrecy::SecretString>) -> TenantKeys {
    keys.into_iter()
        .map(|(provider, key)| (provider, ProviderSecret(key)))
        .collect()
}

/// The smallest context window among the candidates.
pub(crate) fn window_of(candidates: &[Candidate]) -> u32 {
    candidates
        .iter()
        .map(|c| {
            c.provider
                .context_window(&c.model)
                .unwrap_or_else(|| context::known_window(&c.model))
        })
        .min()
        .unwrap_or(context::DEFAULT_CONTEXT_WINDOW)
}
