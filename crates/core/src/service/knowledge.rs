//! Knowledge bases: create, list, get and delete, always within one tenant.

use super::Service;
use crate::error::{Error, Result};
use crate::id::{KnowledgeBaseId, TenantId};
use crate::knowledge::{KnowledgeBase, NewKnowledgeBase};
use crate::time::Timestamp;
use crate::StoreError;

/// How many knowledge bases a tenant may have.
pub const MAX_KNOWLEDGE_BASES: usize = 100;

impl Service {
    /// Creates a knowledge base; its name must be new in the tenant (409 `name_taken`).
    pub async fn create_knowledge_base(
        &self,
        tenant: &TenantId,
        new: NewKnowledgeBase,
    ) -> Result<KnowledgeBase> {
        let new = new.checked()?;
        if self.list_knowledge_bases(tenant).await?.len() >= MAX_KNOWLEDGE_BASES {
            return Err(Error::Conflict {
                code: "too_many_knowledge_bases",
                message: format!("a tenant has at most {MAX_KNOWLEDGE_BASES} knowledge bases"),
            });
        }
        let now = Timestamp::now();
        let kb = KnowledgeBase {
            id: KnowledgeBaseId::new(),
            tenant_id: tenant.clone(),
            name: new.name,
            description: new.description,
            created_at: now,
            updated_at: now,
        };
        match self.store.insert_knowledge_base(&kb).await {
            Ok(()) => Ok(kb),
            Err(StoreError::Conflict(_)) => Err(Error::Conflict {
                code: "name_taken",
                message: format!("a knowledge base is already called `{}`", kb.name),
            }),
            Err(e) => Err(Error::from_store("knowledge base", e)),
        }
    }

    /// The tenant's knowledge bases, by name.
    pub async fn list_knowledge_bases(&self, tenant: &TenantId) -> Result<Vec<KnowledgeBase>> {
        self.store
            .list_knowledge_bases(tenant)
            .await
            .map_err(|e| Error::from_store("knowledge base", e))
    }

    /// One knowledge base, by id or by name.
    pub async fn get_knowledge_base(
        &self,
        tenant: &TenantId,
        id_or_name: &str,
    ) -> Result<KnowledgeBase> {
        let found = match KnowledgeBaseId::parse(id_or_name) {
            Ok(id) => self.store.get_knowledge_base(tenant, &id).await,
            Err(_) => self
                .list_knowledge_bases(tenant)
                .await?
                .into_iter()
                .find(|kb| kb.name == id_or_name)
                .ok_or(StoreError::NotFound),
        };
        found.map_err(|e| Error::from_store("knowledge base", e))
    }

    /// Deletes a knowledge base.
    pub async fn delete_knowledge_base(&self, tenant: &TenantId, id_or_name: &str) -> Result<()> {
        let kb = self.get_knowledge_base(tenant, id_or_name).await?;
        self.store
            .delete_knowledge_base(tenant, &kb.id)
            .await
            .map_err(|e| Error::from_store("knowledge base", e))
    }
}
