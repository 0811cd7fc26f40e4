//! Passages of knowledge documents with their vectors (little-endian `f32`s), the full-text
//! search over them (FTS5's BM25 on SQLite, `ts_rank_cd` on PostgreSQL), and what an
//! instance's vector index loads. Scoped by tenant in every statement.

use async_trait::async_trait;
use frontdesk_core::id::{DocumentId, KnowledgeBaseId, TenantId};
use frontdesk_core::knowledge::{IndexedDocument, KnowledgeHit, NewPassage, Passage};
use frontdesk_core::store::{PassageStore, StoreResult};
use frontdesk_core::time::Timestamp;

use crate::db::{query_one, IfNone, Stmt};
use crate::knowledge::bump;
use crate::sql::{col, id_col};
use crate::{Dialect, SqlStore};

#[async_trait]
impl PassageStore for SqlStore {
    async fn document_passages(
        &self,
        tenant: &TenantId,
        id: &DocumentId,
        limit: u32,
    ) -> StoreResult<Vec<Passage>> {
        let stmt = Stmt::new(
            "SELECT id, document_id, seq, text, section, page, tokens FROM knowledge_passages \
             WHERE tenant_id = $1 AND document_id = $2 ORDER BY seq LIMIT $3",
        )
        .arg(tenant.as_str())
        .arg(id.as_str())
        .arg(i64::from(limit));
        self.db
            .query(stmt)
            .await?
            .iter()
            .map(|row| {
                Ok(Passage {
                    id: col(row, "id")?,
                    document_id: id_col(row, "document_id", DocumentId::parse)?,
                    seq: col::<i64>(row, "seq")? as u32,
                    text: col(row, "text")?,
                    section: col(row, "section")?,
                    page: col::<Option<i64>>(row, "page")?.map(|p| p as u32),
                    tokens: col::<i64>(row, "tokens")? as u32,
                })
            })
            .collect()
    }

    async fn begin_passages(
        &self,
        tenant: &TenantId,
        id: &DocumentId,
        keep: u32,
        total: u32,
        lease_until: Timestamp,
    ) -> StoreResult<()> {
        let clear = Stmt::new(
            "DELETE FROM knowledge_passages WHERE tenant_id = $1 AND document_id = $2 AND seq >= $3",
        )
        .arg(tenant.as_str())
        .arg(id.as_str())
        .arg(i64::from(keep));
        let progress = Stmt::new(
            "UPDATE knowledge_documents SET progress_done = $3, progress_total = $4, lease_until = $5, \
             updated_at = $6 WHERE tenant_id = $1 AND id = $2",
        )
        .arg(tenant.as_str())
        .arg(id.as_str())
        .arg(i64::from(keep))
        .arg(i64::from(total))
        .arg(lease_until.as_millis())
        .arg(Timestamp::now().as_millis())
        .if_none(IfNone::NotFound);
        // Passages removed from a ready document change what search finds.
        self.db
            .transaction(vec![clear, progress, bump(tenant)])
            .await
            .map(|_| ())
    }

    async fn add_passages(
        &self,
        tenant: &TenantId,
        kb: &KnowledgeBaseId,
        id: &DocumentId,
        passages: &[NewPassage],
        lease_until: Timestamp,
    ) -> StoreResult<()> {
        let mut stmts = Vec::with_capacity(passages.len() + 1);
        for passage in passages {
            stmts.push(
                Stmt::new(
                    "INSERT INTO knowledge_passages \
                     (tenant_id, knowledge_base_id, document_id, seq, text, section, page, tokens, vector) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .arg(tenant.as_str())
                .arg(kb.as_str())
                .arg(id.as_str())
                .arg(i64::from(passage.seq))
                .arg(passage.text.as_str())
                .arg(passage.section.clone())
                .arg(passage.page.map(i64::from))
                .arg(i64::from(passage.tokens))
                .arg(vector_bytes(&passage.vector)),
            );
        }
        stmts.push(
            Stmt::new(
                "UPDATE knowledge_documents SET progress_done = progress_done + $3, lease_until = $4, \
                 updated_at = $5 WHERE tenant_id = $1 AND id = $2 AND status = 'processing'",
            )
            .arg(tenant.as_str())
            .arg(id.as_str())
            .arg(passages.len() as i64)
            .arg(lease_until.as_millis())
            .arg(Timestamp::now().as_millis())
            // Deleted (or taken from us) meanwhile: the batch goes with it.
            .if_none(IfNone::NotFound),
        );
        self.db.transaction(stmts).await.map(|_| ())
    }

    async fn count_passages(&self, tenant: &TenantId, id: &DocumentId) -> StoreResult<u32> {
        let stmt = Stmt::new(
            "SELECT COUNT(*) AS n FROM knowledge_passages WHERE tenant_id = $1 AND document_id = $2",
        )
        .arg(tenant.as_str())
        .arg(id.as_str());
        let row = query_one(self.db.as_ref(), stmt).await?;
        Ok(row.map(|r| col::<i64>(&r, "n")).transpose()?.unwrap_or(0) as u32)
    }

    async fn knowledge_generation(&self, tenant: &TenantId) -> StoreResult<i64> {
        let stmt = Stmt::new("SELECT generation FROM knowledge_generations WHERE tenant_id = $1")
            .arg(tenant.as_str());
        Ok(query_one(self.db.as_ref(), stmt)
            .await?
            .map(|row| col::<i64>(&row, "generation"))
            .transpose()?
            .unwrap_or(0))
    }

    async fn indexed_documents(&self, tenant: &TenantId) -> StoreResult<Vec<IndexedDocument>> {
        let stmt = Stmt::new(
            "SELECT id, knowledge_base_id, version, embedding_model FROM knowledge_documents \
             WHERE tenant_id = $1 AND status = 'ready'",
        )
        .arg(tenant.as_str());
        self.db
            .query(stmt)
            .await?
            .iter()
            .map(|row| {
                Ok(IndexedDocument {
                    id: id_col(row, "id", DocumentId::parse)?,
                    knowledge_base_id: id_col(row, "knowledge_base_id", KnowledgeBaseId::parse)?,
                    version: col(row, "version")?,
                    embedding_model: col(row, "embedding_model")?,
                })
            })
            .collect()
    }

    async fn passage_vectors(
        &self,
        tenant: &TenantId,
        id: &DocumentId,
    ) -> StoreResult<Vec<(i64, Vec<f32>)>> {
        let stmt = Stmt::new(
            "SELECT id, vector FROM knowledge_passages WHERE tenant_id = $1 AND document_id = $2 ORDER BY seq",
        )
        .arg(tenant.as_str())
        .arg(id.as_str());
        self.db
            .query(stmt)
            .await?
            .iter()
            .map(|row| Ok((col(row, "id")?, vector_of(&col::<Vec<u8>>(row, "vector")?))))
            .collect()
    }

    async fn search_passages(
        &self,
        tenant: &TenantId,
        kbs: &[KnowledgeBaseId],
        documents: &[DocumentId],
        query: &str,
        limit: u32,
    ) -> StoreResult<Vec<i64>> {
        let terms = passage_terms(query);
        if terms.is_empty() || kbs.is_empty() {
            return Ok(Vec::new());
        }
        let mut stmt = Stmt::new("");
        let tenant_arg = stmt.bind(tenant.as_str());
        let kb_list = kbs
            .iter()
            .map(|kb| stmt.bind(kb.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let doc_filter = if documents.is_empty() {
            String::new()
        } else {
            let list = documents
                .iter()
                .map(|d| stmt.bind(d.as_str()))
                .collect::<Vec<_>>()
                .join(", ");
            format!(" AND p.document_id IN ({list})")
        };
        match self.dialect {
            Dialect::Sqlite => {
                // Any word may match (OR); BM25 ranks, a heading's words weighing half.
                let expression = terms
                    .iter()
                    .map(|t| format!("\"{t}\""))
                    .collect::<Vec<_>>()
                    .join(" OR ");
                let matches = stmt.bind(expression);
                let limit = stmt.bind(i64::from(limit));
                stmt.push(&format!(
                    "SELECT p.id FROM knowledge_passages_fts f \
                     JOIN knowledge_passages p ON p.id = f.rowid \
                     JOIN knowledge_documents d ON d.id = p.document_id \
                     WHERE knowledge_passages_fts MATCH {matches} AND p.tenant_id = {tenant_arg} \
                     AND p.knowledge_base_id IN ({kb_list}){doc_filter} AND d.status = 'ready' \
                     ORDER BY bm25(knowledge_passages_fts, 0.5, 1.0) LIMIT {limit}"
                ));
            }
            Dialect::Postgres => {
                let expression = terms.join(" | ");
                let matches = stmt.bind(expression);
                let limit = stmt.bind(i64::from(limit));
                stmt.push(&format!(
                    "SELECT p.id FROM knowledge_passages p \
                     JOIN knowledge_documents d ON d.id = p.document_id, \
                     to_tsquery('english', {matches}) q \
                     WHERE p.fts @@ q AND p.tenant_id = {tenant_arg} \
                     AND p.knowledge_base_id IN ({kb_list}){doc_filter} AND d.status = 'ready' \
                     ORDER BY ts_rank_cd(p.fts, q, 1) DESC, p.id LIMIT {limit}"
                ));
            }
        }
        self.db
            .query(stmt)
            .await?
            .iter()
            .map(|row| col(row, "id"))
            .collect()
    }

    async fn passages_by_id(
        &self,
        tenant: &TenantId,
        ids: &[i64],
    ) -> StoreResult<Vec<KnowledgeHit>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut stmt = Stmt::new("");
        let tenant_arg = stmt.bind(tenant.as_str());
        let list = ids
            .iter()
            .map(|id| stmt.bind(*id))
            .collect::<Vec<_>>()
            .join(", ");
        stmt.push(&format!(
            "SELECT p.id, p.document_id, p.knowledge_base_id, p.text, p.section, p.page, d.title, d.url \
             FROM knowledge_passages p JOIN knowledge_documents d ON d.id = p.document_id \
             WHERE p.tenant_id = {tenant_arg} AND p.id IN ({list}) AND d.status = 'ready'"
        ));
        let rows = self.db.query(stmt).await?;
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = col(row, "id")?;
            found.insert(
                id,
                KnowledgeHit {
                    passage_id: id,
                    document_id: id_col(row, "document_id", DocumentId::parse)?,
                    knowledge_base_id: id_col(row, "knowledge_base_id", KnowledgeBaseId::parse)?,
                    title: col(row, "title")?,
                    section: col(row, "section")?,
                    page: col::<Option<i64>>(row, "page")?.map(|p| p as u32),
                    url: col(row, "url")?,
                    text: col(row, "text")?,
                    score: 0.0,
                    similarity: None,
                    vector_rank: None,
                    text_rank: None,
                },
            );
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }
}

fn vector_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn vector_of(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// A query's words for the full-text search: lowercased, split at anything that is not a
/// letter or digit (no operator of FTS5 or `to_tsquery` gets through), at most 32.
fn passage_terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
    {
        if !terms.contains(&word) {
            terms.push(word);
        }
        if terms.len() == 32 {
            break;
        }
    }
    terms
}
