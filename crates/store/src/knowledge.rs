//! Knowledge bases, scoped by tenant in every statement.

use async_trait::async_trait;
use frontdesk_core::id::{KnowledgeBaseId, TenantId};
use frontdesk_core::knowledge::KnowledgeBase;
use frontdesk_core::store::{KnowledgeStore, StoreResult};
use frontdesk_core::StoreError;

use crate::db::{execute, query_one, Row, Stmt};
use crate::sql::{col, id_col, ts};
use crate::SqlStore;

const COLUMNS: &str = "id, tenant_id, name, description, created_at, updated_at";

fn knowledge_base(row: &Row) -> StoreResult<KnowledgeBase> {
    Ok(KnowledgeBase {
        id: id_col(row, "id", KnowledgeBaseId::parse)?,
        tenant_id: id_col(row, "tenant_id", TenantId::parse)?,
        name: col(row, "name")?,
        description: col(row, "description")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

#[async_trait]
impl KnowledgeStore for SqlStore {
    async fn insert_knowledge_base(&self, kb: &KnowledgeBase) -> StoreResult<()> {
        let stmt = Stmt::new(format!(
            "INSERT INTO knowledge_bases ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .arg(kb.id.as_str())
        .arg(kb.tenant_id.as_str())
        .arg(kb.name.as_str())
        .arg(kb.description.as_str())
        .arg(kb.created_at.as_millis())
        .arg(kb.updated_at.as_millis())
        .unique("name");
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }

    async fn list_knowledge_bases(&self, tenant: &TenantId) -> StoreResult<Vec<KnowledgeBase>> {
        let stmt = Stmt::new(format!(
            "SELECT {COLUMNS} FROM knowledge_bases WHERE tenant_id = $1 ORDER BY name, id"
        ))
        .arg(tenant.as_str());
        self.db
            .query(stmt)
            .await?
            .iter()
            .map(knowledge_base)
            .collect()
    }

    async fn get_knowledge_base(
        &self,
        tenant: &TenantId,
        id: &KnowledgeBaseId,
    ) -> StoreResult<KnowledgeBase> {
        let stmt = Stmt::new(format!(
            "SELECT {COLUMNS} FROM knowledge_bases WHERE tenant_id = $1 AND id = $2"
        ))
        .arg(tenant.as_str())
        .arg(id.as_str());
        knowledge_base(
            &query_one(self.db.as_ref(), stmt)
                .await?
                .ok_or(StoreError::NotFound)?,
        )
    }

    async fn delete_knowledge_base(
        &self,
        tenant: &TenantId,
        id: &KnowledgeBaseId,
    ) -> StoreResult<()> {
        let stmt = Stmt::new("DELETE FROM knowledge_bases WHERE tenant_id = $1 AND id = $2")
            .arg(tenant.as_str())
            .arg(id.as_str());
        match execute(self.db.as_ref(), stmt).await?.affected {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }
}
