//! Creating, changing and deleting agents, keeping every version.

use serde_json::Value;

use super::Service;
use crate::agent::{Agent, AgentRef, AgentSpec, AgentVersion};
use crate::error::{Error, Result, StoreError};
use crate::id::{AgentId, TenantId};
use crate::time::Timestamp;

impl Service {
    /// Creates an agent from its JSON spec.
    pub async fn create_agent(&self, tenant: &TenantId, spec: Value) -> Result<Agent> {
        let spec = AgentSpec::from_json(spec)?;
        self.check_handoffs(tenant, &spec).await?;
        let now = Timestamp::now();
        let agent = Agent {
            id: AgentId::new(),
            tenant_id: tenant.clone(),
            version: 1,
            spec,
            created_at: now,
            updated_at: now,
        };
        self.store
            .insert_agent(&agent)
            .await
            .map_err(|e| slug_conflict(&agent.spec.slug, e))?;
        Ok(agent)
    }

    pub async fn get_agent(&self, tenant: &TenantId, agent: &AgentRef) -> Result<Agent> {
        self.store
            .get_agent(tenant, agent)
            .await
            .map_err(|e| Error::from_store("agent", e))
    }

    /// An agent by id, deleted or not (a conversation's agent may be gone).
    pub async fn get_agent_any(
        &self,
        tenant: &TenantId,
        agent: &crate::id::AgentId,
    ) -> Result<Agent> {
        self.store
            .get_agent_any(tenant, agent)
            .await
            .map_err(|e| Error::from_store("agent", e))
    }

    pub async fn list_agents(&self, tenant: &TenantId) -> Result<Vec<Agent>> {
        self.store
            .list_agents(tenant)
            .await
            .map_err(|e| Error::from_store("agent", e))
    }

    /// Applies a JSON merge patch to an agent and saves it as a new version.
    pub async fn update_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentRef,
        patch: Value,
    ) -> Result<Agent> {
        let current = self.get_agent(tenant, agent).await?;
        let spec = current.spec.patched(patch)?;
        self.check_handoffs(tenant, &spec).await?;
        if spec == current.spec {
            return Ok(current);
        }
        let updated = Agent {
            version: current.version + 1,
            spec,
            updated_at: Timestamp::now(),
            ..current
        };
        match self.store.update_agent(&updated).await {
            Ok(()) => Ok(updated),
            // Either someone else saved a version meanwhile (409) or deleted the agent (404).
            Err(StoreError::Conflict("version")) => match self.get_agent(tenant, agent).await {
                Err(Error::NotFound { resource }) => Err(Error::NotFound { resource }),
                _ => Err(Error::Conflict {
                    code: "concurrent_update",
                    message:
                        "the agent was changed by someone else at the same time; fetch it and retry"
                            .to_owned(),
                }),
            },
            Err(e) => Err(slug_conflict(&updated.spec.slug, e)),
        }
    }

    /// Deletes an agent. Its conversations stay readable; its slug becomes free.
    pub async fn delete_agent(&self, tenant: &TenantId, agent: &AgentRef) -> Result<()> {
        let current = self.get_agent(tenant, agent).await?;
        self.store
            .delete_agent(tenant, &current.id, Timestamp::now())
            .await
            .map_err(|e| Error::from_store("agent", e))
    }

    /// All versions of an agent, newest first.
    pub async fn agent_versions(
        &self,
        tenant: &TenantId,
        agent: &AgentRef,
    ) -> Result<Vec<AgentVersion>> {
        let current = self.get_agent(tenant, agent).await?;
        self.store
            .list_agent_versions(tenant, &current.id)
            .await
            .map_err(|e| Error::from_store("agent", e))
    }

    /// One saved version of an agent (404 when it has none of that number).
    pub async fn agent_version(
        &self,
        tenant: &TenantId,
        agent: &AgentRef,
        version: i64,
    ) -> Result<AgentVersion> {
        self.agent_versions(tenant, agent)
            .await?
            .into_iter()
            .find(|v| v.version == version)
            .ok_or(Error::NotFound {
                resource: "agent version",
            })
    }

    /// Handoff targets must be agents of the same tenant.
    async fn check_handoffs(&self, tenant: &TenantId, spec: &AgentSpec) -> Result<()> {
        for (idx, slug) in spec.handoffs.iter().enumerate() {
            match self
                .store
                .get_agent(tenant, &AgentRef::Slug(slug.clone()))
                .await
            {
                Ok(_) => {}
                Err(StoreError::NotFound) => {
                    return Err(Error::invalid(
                        format!("handoffs[{idx}]"),
                        format!("no agent with slug `{slug}`"),
                    ))
                }
                Err(e) => return Err(Error::from_store("agent", e)),
            }
        }
        Ok(())
    }
}

fn slug_conflict(slug: &str, error: StoreError) -> Error {
    match error {
        StoreError::Conflict(_) => Error::Conflict {
            code: "slug_taken",
            message: format!("an agent with slug `{slug}` already exists"),
        },
        other => Error::from_store("agent", other),
    }
}
