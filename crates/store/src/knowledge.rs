//! Knowledge bases and their documents (each also its own ingestion job); passages are in
//! `passages.rs`. Scoped by tenant in every statement.
//!
//! Whatever changes a tenant's searchable passages
//! (a document becoming ready, a deletion) bumps its row in `knowledge_generations` in the
//! same transaction, so an instance's vector index knows when to catch up.

use async_trait::async_trait;
use frontdesk_core::id::{DocumentId, KnowledgeBaseId, TenantId};
use frontdesk_core::knowledge::{
    Document, DocumentSource, DocumentStatus, KnowledgeBase, Progress,
};
use frontdesk_core::store::{DocumentEnd, KnowledgeStore, StoreResult};
use frontdesk_core::time::Timestamp;
use frontdesk_core::StoreError;

use crate::db::{execute, query_one, IfNone, Row, Stmt};
use crate::sql::{bad_value, col, id_col, ts, ts_opt};
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
            .arg(id.as_str())
            .if_none(IfNone::NotFound);
        self.db
            .transaction(vec![stmt, bump(tenant)])
            .await
            .map(|_| ())
    }

    async fn insert_document(&self, doc: &Document, content: Option<&[u8]>) -> StoreResult<()> {
        let mut stmts = vec![Stmt::new(format!(
            "INSERT INTO knowledge_documents ({DOC_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)"
        ))
        .arg(doc.id.as_str())
        .arg(doc.tenant_id.as_str())
        .arg(doc.knowledge_base_id.as_str())
        .arg(doc.title.as_str())
        .arg(doc.source.as_str())
        .arg(doc.url.clone())
        .arg(doc.filename.clone())
        .arg(doc.media_type.clone())
        .arg(doc.size_bytes as i64)
        .arg(doc.content_hash.clone())
        .arg(doc.status.as_str())
        .arg(doc.error.clone())
        .arg(doc.progress.done as i64)
        .arg(doc.progress.total as i64)
        .arg(i64::from(doc.attempts))
        .arg(doc.refresh_hours.map(i64::from))
        .arg(doc.fetched_at.map(Timestamp::as_millis))
        .arg(doc.embedding_model.clone())
        .arg(0i64)
        .arg(doc.run_after.as_millis())
        .arg(None::<i64>)
        .arg(doc.created_at.as_millis())
        .arg(doc.updated_at.as_millis())];
        if let Some(content) = content {
            stmts.push(
                Stmt::new(
                    "INSERT INTO knowledge_contents (document_id, tenant_id, body) VALUES ($1, $2, $3)",
                )
                .arg(doc.id.as_str())
                .arg(doc.tenant_id.as_str())
                .arg(content),
            );
        }
        self.db.transaction(stmts).await.map(|_| ())
    }

    async fn list_documents(
        &self,
        tenant: &TenantId,
        kb: &KnowledgeBaseId,
    ) -> StoreResult<Vec<Document>> {
        let stmt = Stmt::new(format!(
            "SELECT {DOC_COLUMNS} FROM knowledge_documents WHERE tenant_id = $1 AND knowledge_base_id = $2 \
             ORDER BY created_at DESC, id DESC"
        ))
        .arg(tenant.as_str())
        .arg(kb.as_str());
        self.db.query(stmt).await?.iter().map(document).collect()
    }

    async fn get_document(
        &self,
        tenant: &TenantId,
        kb: &KnowledgeBaseId,
        id: &DocumentId,
    ) -> StoreResult<Document> {
        let stmt = Stmt::new(format!(
            "SELECT {DOC_COLUMNS} FROM knowledge_documents \
             WHERE tenant_id = $1 AND knowledge_base_id = $2 AND id = $3"
        ))
        .arg(tenant.as_str())
        .arg(kb.as_str())
        .arg(id.as_str());
        document(
            &query_one(self.db.as_ref(), stmt)
                .await?
                .ok_or(StoreError::NotFound)?,
        )
    }

    async fn find_document(
        &self,
        tenant: &TenantId,
        kb: &KnowledgeBaseId,
        content_hash: Option<&str>,
        url: Option<&str>,
    ) -> StoreResult<Option<Document>> {
        let stmt = Stmt::new(format!(
            "SELECT {DOC_COLUMNS} FROM knowledge_documents \
             WHERE tenant_id = $1 AND knowledge_base_id = $2 AND (content_hash = $3 OR url = $4) \
             ORDER BY created_at LIMIT 1"
        ))
        .arg(tenant.as_str())
        .arg(kb.as_str())
        .arg(content_hash)
        .arg(url);
        query_one(self.db.as_ref(), stmt)
            .await?
            .as_ref()
            .map(document)
            .transpose()
    }

    async fn delete_document(
        &self,
        tenant: &TenantId,
        kb: &KnowledgeBaseId,
        id: &DocumentId,
    ) -> StoreResult<()> {
        let stmt = Stmt::new(
            "DELETE FROM knowledge_documents WHERE tenant_id = $1 AND knowledge_base_id = $2 AND id = $3",
        )
        .arg(tenant.as_str())
        .arg(kb.as_str())
        .arg(id.as_str())
        .if_none(IfNone::NotFound);
        self.db
            .transaction(vec![stmt, bump(tenant)])
            .await
            .map(|_| ())
    }

    async fn document_content(&self, tenant: &TenantId, id: &DocumentId) -> StoreResult<Vec<u8>> {
        let stmt = Stmt::new(
            "SELECT body FROM knowledge_contents WHERE tenant_id = $1 AND document_id = $2",
        )
        .arg(tenant.as_str())
        .arg(id.as_str());
        col(
            &query_one(self.db.as_ref(), stmt)
                .await?
                .ok_or(StoreError::NotFound)?,
            "body",
        )
    }

    async fn requeue_document(
        &self,
        tenant: &TenantId,
        id: &DocumentId,
        run_after: Timestamp,
    ) -> StoreResult<()> {
        let stmt = Stmt::new(
            "UPDATE knowledge_documents SET status = 'queued', error = NULL, attempts = 0, \
             run_after = $3, lease_until = NULL, updated_at = $4 \
             WHERE tenant_id = $1 AND id = $2 AND status <> 'processing'",
        )
        .arg(tenant.as_str())
        .arg(id.as_str())
        .arg(run_after.as_millis())
        .arg(Timestamp::now().as_millis());
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }

    async fn claim_document(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        only: Option<&DocumentId>,
    ) -> StoreResult<Option<Document>> {
        // The condition is checked again on the row the subquery picked: of two instances
        // racing for it, the second updates nothing (PostgreSQL re-reads the row it waited on).
        let due = "((status = 'queued' AND run_after <= $1) OR (status = 'processing' AND lease_until < $1)) \
                   AND ($3 = '' OR id = $3)";
        let stmt = Stmt::new(format!(
            "UPDATE knowledge_documents SET status = 'processing', lease_until = $2, \
             attempts = attempts + 1, updated_at = $1 \
             WHERE id = (SELECT id FROM knowledge_documents WHERE {due} ORDER BY run_after, id LIMIT 1) \
             AND {due} RETURNING {DOC_COLUMNS}"
        ))
        .arg(now.as_millis())
        .arg(lease_until.as_millis())
        .arg(only.map_or("", |id| id.as_str()));
        let outcome = execute(self.db.as_ref(), stmt).await?;
        outcome.rows.first().map(document).transpose()
    }

    async fn release_documents(&self) -> StoreResult<u64> {
        let stmt = Stmt::new(
            "UPDATE knowledge_documents SET status = 'queued', lease_until = NULL WHERE status = 'processing'",
        );
        Ok(execute(self.db.as_ref(), stmt).await?.affected)
    }

    async fn set_document_content(
        &self,
        tenant: &TenantId,
        id: &DocumentId,
        content: Option<&[u8]>,
        content_hash: &str,
        media_type: &str,
        title: &str,
    ) -> StoreResult<()> {
        let now = Timestamp::now().as_millis();
        let update = Stmt::new(
            "UPDATE knowledge_documents SET content_hash = $3, media_type = $4, title = $5, \
             size_bytes = COALESCE($6, size_bytes), fetched_at = CASE WHEN $6 IS NULL THEN fetched_at ELSE $7 END, \
             updated_at = $7 WHERE tenant_id = $1 AND id = $2",
        )
        .arg(tenant.as_str())
        .arg(id.as_str())
        .arg(content_hash)
        .arg(media_type)
        .arg(title)
        .arg(content.map(|c| c.len() as i64))
        .arg(now)
        .if_none(IfNone::NotFound);
        let Some(content) = content else {
            return execute(self.db.as_ref(), update).await.map(|_| ());
        };
        let clear =
            Stmt::new("DELETE FROM knowledge_contents WHERE tenant_id = $1 AND document_id = $2")
                .arg(tenant.as_str())
                .arg(id.as_str());
        let insert = Stmt::new(
            "INSERT INTO knowledge_contents (document_id, tenant_id, body) VALUES ($1, $2, $3)",
        )
        .arg(id.as_str())
        .arg(tenant.as_str())
        .arg(content);
        self.db
            .transaction(vec![update, clear, insert])
            .await
            .map(|_| ())
    }

    async fn finish_document(
        &self,
        tenant: &TenantId,
        id: &DocumentId,
        end: DocumentEnd,
    ) -> StoreResult<()> {
        let now = Timestamp::now().as_millis();
        let mut stmts = Vec::new();
        match end {
            DocumentEnd::Ready { embedding_model } => {
                stmts.push(
                    Stmt::new(
                        "UPDATE knowledge_documents SET status = 'ready', error = NULL, lease_until = NULL, \
                         embedding_model = $3, version = version + 1, updated_at = $4 \
                         WHERE tenant_id = $1 AND id = $2",
                    )
                    .arg(tenant.as_str())
                    .arg(id.as_str())
                    .arg(embedding_model)
                    .arg(now)
                    .if_none(IfNone::NotFound),
                );
                stmts.push(bump(tenant));
            }
            DocumentEnd::Failed { reason } => stmts.push(
                Stmt::new(
                    "UPDATE knowledge_documents SET status = 'failed', error = $3, lease_until = NULL, \
                     updated_at = $4 WHERE tenant_id = $1 AND id = $2",
                )
                .arg(tenant.as_str())
                .arg(id.as_str())
                .arg(reason)
                .arg(now)
                .if_none(IfNone::NotFound),
            ),
            DocumentEnd::Retry { reason, run_after } => stmts.push(
                Stmt::new(
                    "UPDATE knowledge_documents SET status = 'queued', error = $3, lease_until = NULL, \
                     run_after = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2",
                )
                .arg(tenant.as_str())
                .arg(id.as_str())
                .arg(reason)
                .arg(run_after.as_millis())
                .arg(now)
                .if_none(IfNone::NotFound),
            ),
        }
        self.db.transaction(stmts).await.map(|_| ())
    }

    async fn queue_refreshes(&self, now: Timestamp) -> StoreResult<u64> {
        let stmt = Stmt::new(
            "UPDATE knowledge_documents SET status = 'queued', attempts = 0, updated_at = $2, \
             run_after = $2 \
             WHERE source = 'url' AND refresh_hours IS NOT NULL AND status IN ('ready', 'failed') \
             AND COALESCE(fetched_at, created_at) + refresh_hours * 3600000 <= $1",
        )
        .arg(now.as_millis())
        // Queued as of the clock (`now` may be a schedule's time, as in tests).
        .arg(Timestamp::now().as_millis());
        Ok(execute(self.db.as_ref(), stmt).await?.affected)
    }
}

const DOC_COLUMNS: &str = "id, tenant_id, knowledge_base_id, title, source, url, filename, media_type, \
    size_bytes, content_hash, status, error, progress_done, progress_total, attempts, refresh_hours, \
    fetched_at, embedding_model, version, run_after, lease_until, created_at, updated_at";

fn document(row: &Row) -> StoreResult<Document> {
    let status: String = col(row, "status")?;
    let source: String = col(row, "source")?;
    Ok(Document {
        id: id_col(row, "id", DocumentId::parse)?,
        tenant_id: id_col(row, "tenant_id", TenantId::parse)?,
        knowledge_base_id: id_col(row, "knowledge_base_id", KnowledgeBaseId::parse)?,
        title: col(row, "title")?,
        source: DocumentSource::parse(&source).ok_or_else(|| {
            bad_value(
                "source",
                frontdesk_core::Error::invalid("source", source.clone()),
            )
        })?,
        url: col(row, "url")?,
        filename: col(row, "filename")?,
        media_type: col(row, "media_type")?,
        size_bytes: col::<i64>(row, "size_bytes")?.max(0) as u64,
        content_hash: col(row, "content_hash")?,
        status: DocumentStatus::parse(&status).ok_or_else(|| {
            bad_value(
                "status",
                frontdesk_core::Error::invalid("status", status.clone()),
            )
        })?,
        error: col(row, "error")?,
        progress: Progress {
            done: col::<i64>(row, "progress_done")?.max(0) as u64,
            total: col::<i64>(row, "progress_total")?.max(0) as u64,
        },
        attempts: col::<i64>(row, "attempts")?.clamp(0, i64::from(u32::MAX)) as u32,
        refresh_hours: col::<Option<i64>>(row, "refresh_hours")?.map(|h| h as u32),
        fetched_at: ts_opt(row, "fetched_at")?,
        embedding_model: col(row, "embedding_model")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        run_after: ts(row, "run_after")?,
    })
}

/// Bumps the tenant's knowledge generation (its searchable passages changed).
pub(crate) fn bump(tenant: &TenantId) -> Stmt {
    Stmt::new(
        "INSERT INTO knowledge_generations (tenant_id, generation) VALUES ($1, 1) \
         ON CONFLICT (tenant_id) DO UPDATE SET generation = knowledge_generations.generation + 1",
    )
    .arg(tenant.as_str())
}
