//! A tenant's documents as a service: add them (a file, text, a URL, a sitemap), follow their
//! ingestion, read and delete them, and search them (hybrid: vectors and full text, fused).
//! What the HTTP handlers, the CLI and the run engine (through [`Retriever`]) call.
//!
//! Invariants:
//! - Every call is scoped by tenant; another tenant's knowledge base or document is a 404,
//!   and a search only ever reads the caller's passages (the store filters by tenant, the
//!   index is per tenant).
//! - Adding a document only records it (queued, with its content): the work happens in the
//!   background ([`crate::ingest`]), so a request never waits on an embedder.
//! - Re-adding content already in the knowledge base returns the document that holds it.

use std::sync::Arc;

use frontdesk_core::embed::Embedder;
use frontdesk_core::id::{DocumentId, KnowledgeBaseId, TenantId};
use frontdesk_core::knowledge::{
    Document, DocumentSource, DocumentStatus, KnowledgeHit, KnowledgeQuery, Passage, Progress,
    Retrieval, RetrievalMode, Retriever,
};
use frontdesk_core::store::Store;
use frontdesk_core::time::Timestamp;
use frontdesk_core::{Error, Result, Service};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::chunk::ChunkSettings;
use crate::extract::{self, clean_line, ExtractError};
use crate::index::Indexes;
use crate::rank::fuse;

/// Limits and sizes of ingestion and retrieval.
#[derive(Debug, Clone)]
pub struct LibrarySettings {
    /// The largest file or fetched page, in bytes.
    pub max_document_bytes: usize,
    /// The most documents in one knowledge base.
    pub max_documents: usize,
    /// Pages a sitemap adds at most.
    pub max_sitemap_pages: u32,
    pub chunk: ChunkSettings,
    /// Documents ingested at once by this instance.
    pub workers: usize,
    /// Passages embedded per call.
    pub embed_batch: usize,
    /// Tries before a document fails for good (transient errors only; a broken file fails
    /// at once).
    pub max_attempts: u32,
    /// Outbound fetches may reach private addresses (the operator's `allow_private_urls`).
    pub allow_private_urls: bool,
}

impl Default for LibrarySettings {
    fn default() -> Self {
        Self {
            max_document_bytes: 20 * 1024 * 1024,
            max_documents: 10_000,
            max_sitemap_pages: 200,
            chunk: ChunkSettings::default(),
            workers: 1,
            embed_batch: 32,
            max_attempts: 5,
            allow_private_urls: false,
        }
    }
}

/// A new document: what the API and CLI hand in.
#[derive(Debug, Clone)]
pub enum NewDocument {
    /// A file's bytes, with the name it had (for display only: the type is sniffed), and the
    /// page it is published at, if any (citations link to it).
    File {
        filename: Option<String>,
        bytes: Vec<u8>,
        url: Option<String>,
    },
    Text {
        title: Option<String>,
        text: String,
    },
    Url {
        url: String,
        refresh_hours: Option<u32>,
    },
    Sitemap {
        url: String,
        max_pages: Option<u32>,
    },
}

/// A document added, or the one that already held the same content.
#[derive(Debug, Clone)]
pub struct Added {
    pub document: Document,
    /// It was there already; nothing was queued.
    pub existing: bool,
}

/// A document with its passages.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DocumentWithPassages {
    #[serde(flatten)]
    pub document: Document,
    pub passages: Vec<Passage>,
}

/// Passages shown with a document at most.
const MAX_SHOWN_PASSAGES: u32 = 1_000;
/// Candidates each ranking contributes to the fusion, per passage asked for.
const CANDIDATES_PER_RESULT: usize = 8;
/// Reciprocal rank fusion's constant.
const RRF_K: f32 = 60.0;

pub(crate) struct Inner {
    pub service: Service,
    pub embedder: Arc<dyn Embedder>,
    pub indexes: Indexes,
    pub settings: LibrarySettings,
    /// Wakes the ingestion workers when a document is queued here.
    pub queued: Notify,
    pub fetcher: reqwest::Client,
}

/// The knowledge service (cheap to clone).
#[derive(Clone)]
pub struct Library {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("embedder", &self.inner.embedder.model())
            .finish()
    }
}

impl Library {
    pub fn new(service: Service, embedder: Arc<dyn Embedder>, settings: LibrarySettings) -> Self {
        let indexes = Indexes::new(embedder.dimensions(), embedder.model());
        let fetcher = frontdesk_agents::outbound::builder(settings.allow_private_urls)
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            inner: Arc::new(Inner {
                service,
                embedder,
                indexes,
                settings,
                queued: Notify::new(),
                fetcher,
            }),
        }
    }

    pub fn settings(&self) -> &LibrarySettings {
        &self.inner.settings
    }

    /// The embedder's name (what vectors are made with).
    pub fn embedder(&self) -> &str {
        self.inner.embedder.model()
    }

    fn store(&self) -> &dyn Store {
        self.inner.service.store().as_ref()
    }

    /// Adds a document to a knowledge base (by id or name) and queues its ingestion.
    pub async fn add(&self, tenant: &TenantId, kb: &str, new: NewDocument) -> Result<Added> {
        let kb = self.inner.service.get_knowledge_base(tenant, kb).await?;
        let limit = self.inner.settings.max_document_bytes;
        let now = Timestamp::now();
        let mut document = Document {
            id: DocumentId::new(),
            tenant_id: tenant.clone(),
            knowledge_base_id: kb.id.clone(),
            title: String::new(),
            source: DocumentSource::Text,
            url: None,
            filename: None,
            media_type: None,
            size_bytes: 0,
            content_hash: None,
            status: DocumentStatus::Queued,
            error: None,
            progress: Progress::default(),
            attempts: 0,
            refresh_hours: None,
            fetched_at: None,
            embedding_model: None,
            created_at: now,
            updated_at: now,
            run_after: now,
        };
        let content = match new {
            NewDocument::File {
                filename,
                bytes,
                url,
            } => {
                let url = url.map(|u| self.checked_link(&u)).transpose()?;
                if bytes.len() > limit {
                    return Err(Error::PayloadTooLarge {
                        message: format!("the file is {} bytes; the limit is {limit}", bytes.len()),
                    });
                }
                let format = extract::sniff(&bytes).map_err(|e| match e {
                    ExtractError::Empty => Error::invalid("file", "the file is empty"),
                    other => Error::bad_request("unsupported_media_type", other.to_string()),
                })?;
                if format == extract::Format::Sitemap {
                    return Err(Error::bad_request(
                        "unsupported_media_type",
                        "a sitemap lists pages on the web: add it by URL as `{\"sitemap\": \"https://…\"}`",
                    ));
                }
                let filename = filename
                    .map(|f| clean_line(&f, 255))
                    .filter(|f| !f.is_empty());
                document.source = DocumentSource::Upload;
                document.title = filename.clone().unwrap_or_else(|| "Untitled".into());
                document.filename = filename;
                document.url = url;
                document.media_type = Some(format.media_type().to_owned());
                Some(bytes)
            }
            NewDocument::Text { title, text } => {
                if text.trim().is_empty() {
                    return Err(Error::invalid("text", "must not be empty"));
                }
                if text.len() > limit {
                    return Err(Error::PayloadTooLarge {
                        message: format!("the text is {} bytes; the limit is {limit}", text.len()),
                    });
                }
                let title = title.map(|t| clean_line(&t, 200)).unwrap_or_default();
                document.title = if title.is_empty() {
                    clean_line(text.trim(), 80)
                } else {
                    title
                };
                document.media_type = Some(extract::Format::Text.media_type().to_owned());
                Some(text.into_bytes())
            }
            NewDocument::Url { url, refresh_hours } => {
                let url = self.checked_url("url", &url)?;
                if let Some(hours) = refresh_hours {
                    if !(1..=24 * 365).contains(&hours) {
                        return Err(Error::invalid(
                            "refresh_hours",
                            "must be between 1 and 8760",
                        ));
                    }
                }
                // The same URL again: fetch it again now (an unchanged page keeps its passages).
                if let Some(existing) = self
                    .store()
                    .find_document(tenant, &kb.id, None, Some(url.as_str()))
                    .await
                    .map_err(|e| Error::from_store("document", e))?
                {
                    if existing.status != DocumentStatus::Processing {
                        self.store()
                            .requeue_document(tenant, &existing.id, now)
                            .await
                            .map_err(|e| Error::from_store("document", e))?;
                        self.inner.queued.notify_waiters();
                    }
                    let document = self.document(tenant, &kb.id, &existing.id).await?;
                    return Ok(Added {
                        document,
                        existing: true,
                    });
                }
                document.source = DocumentSource::Url;
                document.title = url.clone();
                document.url = Some(url);
                document.refresh_hours = refresh_hours;
                None
            }
            NewDocument::Sitemap { url, max_pages } => {
                let url = self.checked_url("sitemap", &url)?;
                let most = self.inner.settings.max_sitemap_pages;
                let pages = max_pages.unwrap_or(most);
                if pages == 0 || pages > most {
                    return Err(Error::invalid(
                        "max_pages",
                        format!("must be between 1 and {most}"),
                    ));
                }
                document.source = DocumentSource::Sitemap;
                document.title = url.clone();
                document.url = Some(url);
                // The page budget travels in `progress.total` until the sitemap is read.
                document.progress.total = u64::from(pages);
                None
            }
        };
        if let Some(content) = &content {
            let hash = hex::encode(Sha256::digest(content));
            if let Some(existing) = self
                .store()
                .find_document(tenant, &kb.id, Some(&hash), None)
                .await
                .map_err(|e| Error::from_store("document", e))?
            {
                return Ok(Added {
                    document: existing,
                    existing: true,
                });
            }
            document.size_bytes = content.len() as u64;
            document.content_hash = Some(hash);
        }
        let count = self
            .store()
            .list_documents(tenant, &kb.id)
            .await
            .map_err(|e| Error::from_store("document", e))?
            .len();
        if count >= self.inner.settings.max_documents {
            return Err(Error::Conflict {
                code: "too_many_documents",
                message: format!(
                    "a knowledge base holds at most {} documents",
                    self.inner.settings.max_documents
                ),
            });
        }
        self.store()
            .insert_document(&document, content.as_deref())
            .await
            .map_err(|e| Error::from_store("document", e))?;
        self.inner.queued.notify_waiters();
        Ok(Added {
            document,
            existing: false,
        })
    }

    fn checked_url(&self, field: &str, url: &str) -> Result<String> {
        let url = url.trim();
        if url.len() > 2_000 {
            return Err(Error::invalid(field, "must be at most 2000 characters"));
        }
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| Error::invalid(field, format!("is not a URL: {e}")))?;
        frontdesk_agents::outbound::check_url(&parsed, self.inner.settings.allow_private_urls)
            .map_err(|e| Error::invalid(field, e.to_string()))?;
        Ok(parsed.to_string())
    }

    /// A link to show with citations: an `http(s)` URL (it is never fetched).
    fn checked_link(&self, url: &str) -> Result<String> {
        let url = url.trim();
        let parsed = reqwest::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && url.len() <= 2_000)
            .ok_or_else(|| {
                Error::invalid("url", "must be an http(s) URL of at most 2000 characters")
            })?;
        Ok(parsed.to_string())
    }

    /// A knowledge base's documents, newest first.
    pub async fn documents(&self, tenant: &TenantId, kb: &str) -> Result<Vec<Document>> {
        let kb = self.inner.service.get_knowledge_base(tenant, kb).await?;
        self.store()
            .list_documents(tenant, &kb.id)
            .await
            .map_err(|e| Error::from_store("document", e))
    }

    async fn document(
        &self,
        tenant: &TenantId,
        kb: &KnowledgeBaseId,
        id: &DocumentId,
    ) -> Result<Document> {
        self.store()
            .get_document(tenant, kb, id)
            .await
            .map_err(|e| Error::from_store("document", e))
    }

    /// A document with its passages (the first 1,000).
    pub async fn get(&self, tenant: &TenantId, kb: &str, id: &str) -> Result<DocumentWithPassages> {
        let kb = self.inner.service.get_knowledge_base(tenant, kb).await?;
        let id = DocumentId::parse(id).map_err(|_| Error::NotFound {
            resource: "document",
        })?;
        let document = self.document(tenant, &kb.id, &id).await?;
        let passages = self
            .store()
            .document_passages(tenant, &id, MAX_SHOWN_PASSAGES)
            .await
            .map_err(|e| Error::from_store("document", e))?;
        Ok(DocumentWithPassages { document, passages })
    }

    /// Deletes a document: its passages and vectors go with it, and searches here stop
    /// finding it at once (other instances at their next search).
    pub async fn delete(&self, tenant: &TenantId, kb: &str, id: &str) -> Result<()> {
        let kb = self.inner.service.get_knowledge_base(tenant, kb).await?;
        let id = DocumentId::parse(id).map_err(|_| Error::NotFound {
            resource: "document",
        })?;
        self.store()
            .delete_document(tenant, &kb.id, &id)
            .await
            .map_err(|e| Error::from_store("document", e))
    }

    /// Queues a failed (or any settled) document again.
    pub async fn retry(&self, tenant: &TenantId, kb: &str, id: &str) -> Result<Document> {
        let kb = self.inner.service.get_knowledge_base(tenant, kb).await?;
        let id = DocumentId::parse(id).map_err(|_| Error::NotFound {
            resource: "document",
        })?;
        let document = self.document(tenant, &kb.id, &id).await?;
        if document.status == DocumentStatus::Processing {
            return Ok(document);
        }
        self.store()
            .requeue_document(tenant, &id, Timestamp::now())
            .await
            .map_err(|e| Error::from_store("document", e))?;
        self.inner.queued.notify_waiters();
        self.document(tenant, &kb.id, &id).await
    }

    /// Searches one knowledge base (by id or name).
    pub async fn query(
        &self,
        tenant: &TenantId,
        kb: &str,
        query: &KnowledgeQuery,
    ) -> Result<Vec<KnowledgeHit>> {
        let kb = self.inner.service.get_knowledge_base(tenant, kb).await?;
        let (text, top_k) = query.checked()?;
        self.search(
            tenant,
            &[kb.id],
            &query.document_ids,
            &text,
            top_k,
            query.min_score,
            query.mode.unwrap_or_default(),
        )
        .await
    }

    /// The hybrid search: the vector index's nearest passages and the full-text search's best,
    /// fused by reciprocal rank; `min_score` leaves out passages less similar than it (those
    /// only the full-text search found are kept: they hold the words asked for).
    #[allow(clippy::too_many_arguments)]
    pub async fn search(
        &self,
        tenant: &TenantId,
        kbs: &[KnowledgeBaseId],
        documents: &[DocumentId],
        query: &str,
        top_k: usize,
        min_score: Option<f64>,
        mode: RetrievalMode,
    ) -> Result<Vec<KnowledgeHit>> {
        if kbs.is_empty() || top_k == 0 {
            return Ok(Vec::new());
        }
        let candidates = (top_k * CANDIDATES_PER_RESULT).max(50);
        let store = self.store();
        let vector = async {
            if mode == RetrievalMode::Text {
                return Ok(Vec::new());
            }
            let embedded = self
                .inner
                .embedder
                .embed(&[query.to_owned()])
                .await
                .map_err(|e| Error::Unavailable(format!("the embedder failed: {e}")))?;
            let Some(vector) = embedded.into_iter().next() else {
                return Ok(Vec::new());
            };
            let index = self
                .inner
                .indexes
                .current(store, tenant)
                .await
                .map_err(|e| Error::from_store("knowledge", e))?;
            let found = index
                .read()
                .await
                .search(&vector, candidates, kbs, documents);
            Ok::<_, Error>(found)
        };
        let text = async {
            if mode == RetrievalMode::Vector {
                return Ok(Vec::new());
            }
            store
                .search_passages(tenant, kbs, documents, query, candidates as u32)
                .await
                .map_err(|e| Error::from_store("knowledge", e))
        };
        let (by_vector, by_text) = tokio::try_join!(vector, text)?;
        let similarity: std::collections::HashMap<i64, f32> =
            by_vector.iter().map(|s| (s.key, s.score)).collect();
        let vector_ranking: Vec<i64> = by_vector
            .iter()
            .filter(|s| min_score.is_none_or(|min| f64::from(s.score) >= min))
            .map(|s| s.key)
            .collect();
        let rankings = [vector_ranking, by_text];
        let fused = fuse(&rankings, RRF_K);
        let [vector_ranking, by_text] = &rankings;
        // Scaled so that first in both rankings is 1.
        let scale = (RRF_K + 1.0) / 2.0;
        let chosen: Vec<(i64, f32)> = fused
            .into_iter()
            .take(top_k)
            .map(|s| (s.key, s.score * scale))
            .collect();
        let ids: Vec<i64> = chosen.iter().map(|(id, _)| *id).collect();
        let mut hits = store
            .passages_by_id(tenant, &ids)
            .await
            .map_err(|e| Error::from_store("knowledge", e))?;
        for hit in &mut hits {
            let id = hit.passage_id;
            hit.score = chosen
                .iter()
                .find(|(c, _)| *c == id)
                .map_or(0.0, |(_, s)| f64::from(*s));
            hit.similarity = similarity.get(&id).map(|s| f64::from(*s));
            hit.vector_rank = vector_ranking
                .iter()
                .position(|p| *p == id)
                .map(|p| p as u32 + 1);
            hit.text_rank = by_text.iter().position(|p| *p == id).map(|p| p as u32 + 1);
        }
        Ok(hits)
    }
}

#[async_trait::async_trait]
impl Retriever for Library {
    async fn retrieve(&self, tenant: &TenantId, retrieval: Retrieval) -> Result<Vec<KnowledgeHit>> {
        self.search(
            tenant,
            &retrieval.knowledge_bases,
            &[],
            &retrieval.query,
            retrieval.top_k,
            retrieval.min_score,
            RetrievalMode::Hybrid,
        )
        .await
    }
}
