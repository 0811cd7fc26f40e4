//! Knowledge bases: the documents of a tenant that agents answer from, named per tenant.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::id::{DocumentId, KnowledgeBaseId, TenantId};
use crate::time::Timestamp;
use crate::validate;

/// A knowledge base as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KnowledgeBase {
    pub id: KnowledgeBaseId,
    #[serde(skip)]
    pub tenant_id: TenantId,
    /// Unique within the tenant (`frontdesk ingest --kb NAME` finds it by name).
    pub name: String,
    pub description: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a new knowledge base is given.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKnowledgeBase {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

impl NewKnowledgeBase {
    /// The name trimmed and checked, the description checked.
    pub fn checked(self) -> Result<Self> {
        let name = self.name.trim().to_owned();
        validate::non_empty("name", &name, 200)?;
        if KnowledgeBaseId::parse(&name).is_ok() {
            return Err(crate::Error::invalid(
                "name",
                "must not look like a knowledge base id (`kb_…`)",
            ));
        }
        validate::max_chars("description", &self.description, 2_000)?;
        Ok(Self {
            name,
            description: self.description,
        })
    }
}

/// Where a document is in its ingestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentStatus {
    /// Waiting for a worker.
    Queued,
    /// Being extracted, chunked and embedded.
    Processing,
    /// Searchable.
    Ready,
    /// Given up on; `error` says why.
    Failed,
}

impl DocumentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentStatus::Queued => "queued",
            DocumentStatus::Processing => "processing",
            DocumentStatus::Ready => "ready",
            DocumentStatus::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "queued" => DocumentStatus::Queued,
            "processing" => DocumentStatus::Processing,
            "ready" => DocumentStatus::Ready,
            "failed" => DocumentStatus::Failed,
            _ => return None,
        })
    }
}

/// How a document came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentSource {
    /// A file uploaded (multipart `file`, or the CLI).
    Upload,
    /// Text given through the API.
    Text,
    /// A page fetched from a URL (and re-fetched on its schedule).
    Url,
    /// A sitemap whose pages became documents of their own.
    Sitemap,
}

impl DocumentSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentSource::Upload => "upload",
            DocumentSource::Text => "text",
            DocumentSource::Url => "url",
            DocumentSource::Sitemap => "sitemap",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "upload" => DocumentSource::Upload,
            "text" => DocumentSource::Text,
            "url" => DocumentSource::Url,
            "sitemap" => DocumentSource::Sitemap,
            _ => return None,
        })
    }
}

/// How far a document's ingestion got: passages embedded of those found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// A document in a knowledge base, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Document {
    pub id: DocumentId,
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub knowledge_base_id: KnowledgeBaseId,
    /// The document's own title (PDF/DOCX metadata, HTML `<title>`, the first heading), else
    /// the file name or URL.
    pub title: String,
    pub source: DocumentSource,
    /// The page it was fetched from (a citation links to it).
    pub url: Option<String>,
    pub filename: Option<String>,
    /// The type sniffed from the content (`application/pdf`, `text/html`, …); null until known.
    pub media_type: Option<String>,
    pub size_bytes: u64,
    /// SHA-256 of the content, hex; re-adding the same content finds this document.
    pub content_hash: Option<String>,
    pub status: DocumentStatus,
    /// Why it failed (or why the last try did, while it waits to try again).
    pub error: Option<String>,
    pub progress: Progress,
    /// Tries so far.
    pub attempts: u32,
    /// A URL document is fetched again this often.
    pub refresh_hours: Option<u32>,
    pub fetched_at: Option<Timestamp>,
    /// The embedder its vectors were made with.
    pub embedding_model: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When its ingestion may next be tried (backoff).
    #[serde(skip)]
    pub run_after: Timestamp,
}

/// A passage of a document, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Passage {
    /// Stable while the document is unchanged.
    pub id: i64,
    pub document_id: DocumentId,
    /// Its place in the document, from 0.
    pub seq: u32,
    pub text: String,
    /// The headings above it, outermost first, joined by ` › `.
    pub section: Option<String>,
    pub page: Option<u32>,
    pub tokens: u32,
}

/// A passage to store, with its vector.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPassage {
    pub seq: u32,
    pub text: String,
    pub section: Option<String>,
    pub page: Option<u32>,
    pub tokens: u32,
    pub vector: Vec<f32>,
}

/// A ready document's place in a tenant's index: what the vector index holds per document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedDocument {
    pub id: DocumentId,
    pub knowledge_base_id: KnowledgeBaseId,
    /// Changes whenever the document's passages do.
    pub version: i64,
    pub embedding_model: Option<String>,
}

/// A passage found by a query, with where it comes from (what a citation names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KnowledgeHit {
    pub passage_id: i64,
    pub document_id: DocumentId,
    pub knowledge_base_id: KnowledgeBaseId,
    /// The document's title.
    pub title: String,
    pub section: Option<String>,
    pub page: Option<u32>,
    /// The document's link, where it has one.
    pub url: Option<String>,
    pub text: String,
    /// The fused score: higher is better (reciprocal-rank fusion, scaled so 1 is first in both
    /// rankings).
    pub score: f64,
    /// Cosine similarity to the query (null when only the full-text search found it).
    pub similarity: Option<f64>,
    /// Its rank in the vector and the full-text ranking, from 1 (null where it was not found).
    pub vector_rank: Option<u32>,
    pub text_rank: Option<u32>,
}

/// A search of a tenant's knowledge.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeQuery {
    pub query: String,
    /// Passages wanted, 1–50 (default 5).
    #[serde(default)]
    pub top_k: Option<u32>,
    /// Only these documents.
    #[serde(default)]
    pub document_ids: Vec<DocumentId>,
    /// Leave out passages whose cosine similarity to the query is below this (full-text
    /// matches are kept).
    #[serde(default)]
    pub min_score: Option<f64>,
    /// `hybrid` (default), `vector` or `text`.
    #[serde(default)]
    pub mode: Option<RetrievalMode>,
}

/// Which rankings a search uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetrievalMode {
    #[default]
    Hybrid,
    Vector,
    Text,
}

/// The most passages a query returns.
pub const MAX_TOP_K: u32 = 50;

impl KnowledgeQuery {
    /// The query trimmed and checked, and its `top_k`.
    pub fn checked(&self) -> Result<(String, usize)> {
        let query = self.query.trim();
        validate::non_empty("query", query, 2_000)?;
        let top_k = self.top_k.unwrap_or(5);
        if top_k == 0 || top_k > MAX_TOP_K {
            return Err(crate::Error::invalid(
                "top_k",
                format!("must be between 1 and {MAX_TOP_K}"),
            ));
        }
        if self.document_ids.len() > 100 {
            return Err(crate::Error::invalid(
                "document_ids",
                "at most 100 documents",
            ));
        }
        if let Some(min) = self.min_score {
            if !(-1.0..=1.0).contains(&min) {
                return Err(crate::Error::invalid(
                    "min_score",
                    "must be between -1 and 1",
                ));
            }
        }
        Ok((query.to_owned(), top_k as usize))
    }
}

/// What an agent's run asks of a tenant's knowledge.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrieval {
    pub knowledge_bases: Vec<KnowledgeBaseId>,
    pub query: String,
    pub top_k: usize,
    pub min_score: Option<f64>,
}

/// Searches a tenant's knowledge bases: what the run engine calls (the knowledge crate
/// implements it).
#[async_trait::async_trait]
pub trait Retriever: Send + Sync + 'static {
    async fn retrieve(&self, tenant: &TenantId, retrieval: Retrieval) -> Result<Vec<KnowledgeHit>>;
}
