//! Ingestion: background workers that take queued documents from the database, read them
//! (fetching URLs first), cut them into passages, embed the passages and store them.
//!
//! Invariants:
//! - The database is the queue: a job survives a restart. A worker holds a lease on its
//!   document, renewed with every batch; a crashed worker's lease runs out and another
//!   worker takes the job over, keeping the passages already stored (extraction and chunking
//!   are deterministic, so the same content gives the same passages).
//! - A broken document (corrupt, encrypted, empty, unsupported) fails at once with its
//!   reason; a passing fault (a fetch that timed out, an embedder hiccup, a store error) is
//!   tried again with exponential backoff, `max_attempts` times.
//! - Few workers (one by default) and one embedding batch at a time each, yielding between
//!   batches: chat turns are never starved.

use std::time::Duration;

use frontdesk_core::knowledge::{Document, DocumentSource, NewPassage};
use frontdesk_core::store::DocumentEnd;
use frontdesk_core::time::Timestamp;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::chunk::{chunk, ChunkSettings};
use crate::extract::clean_line;
use crate::extract::{self, ExtractError, Format};
use crate::library::{Library, NewDocument};

/// How long a claim lasts without a renewal.
const LEASE: Duration = Duration::from_secs(60);
/// How often idle workers look for work that another instance queued.
const POLL: Duration = Duration::from_secs(2);
/// How often URL documents due for a re-fetch are queued.
const REFRESH_EVERY: Duration = Duration::from_secs(60);

/// Why one try at a document ended without it being ready.
#[derive(Debug)]
enum JobError {
    /// The document itself is the problem: trying again cannot help.
    Permanent(String),
    /// Something passing: try again later.
    Transient(String),
    /// The document was deleted (or taken over) meanwhile: nothing to record.
    Gone,
}

impl From<ExtractError> for JobError {
    fn from(error: ExtractError) -> Self {
        JobError::Permanent(error.to_string())
    }
}

fn store_error(error: frontdesk_core::StoreError) -> JobError {
    match error {
        frontdesk_core::StoreError::NotFound => JobError::Gone,
        other => JobError::Transient(format!("the database failed: {other}")),
    }
}

impl Library {
    /// Starts this instance's ingestion workers and the re-fetch schedule; they stop when
    /// `stop` is cancelled. `single_instance` puts documents that a previous run of this
    /// process left `processing` back in the queue at once (with several instances, their
    /// leases run out instead).
    pub async fn spawn_workers(&self, stop: CancellationToken, single_instance: bool) {
        if single_instance {
            match self.inner.service.store().release_documents().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(documents = n, "resuming interrupted ingestion"),
                Err(error) => tracing::warn!(%error, "could not release interrupted ingestion"),
            }
        }
        for worker in 0..self.inner.settings.workers.max(1) {
            let library = self.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                library.work(worker, stop).await;
            });
        }
        let library = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(REFRESH_EVERY) => {}
                }
                match library
                    .inner
                    .service
                    .store()
                    .queue_refreshes(Timestamp::now())
                    .await
                {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(
                            documents = n,
                            "re-fetching URL documents on their schedule"
                        );
                        library.inner.queued.notify_waiters();
                    }
                    Err(error) => tracing::warn!(%error, "could not queue re-fetches"),
                }
            }
        });
    }

    async fn work(&self, worker: usize, stop: CancellationToken) {
        loop {
            if stop.is_cancelled() {
                return;
            }
            let now = Timestamp::now();
            let claimed = self
                .inner
                .service
                .store()
                .claim_document(now, lease_until(), None)
                .await;
            match claimed {
                Ok(Some(document)) => {
                    tokio::select! {
                        () = self.ingest(document) => {}
                        // Stopping mid-job: the lease runs out and the job resumes later.
                        () = stop.cancelled() => return,
                    }
                    continue;
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(worker, %error, "could not take an ingestion job"),
            }
            let queued = self.inner.queued.notified();
            tokio::select! {
                () = stop.cancelled() => return,
                () = queued => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Ingests the document `id` here and now, if it is queued (the CLI, which has no
    /// workers), retrying passing faults after their backoff; how it ended is in the store.
    pub async fn ingest_now(
        &self,
        id: &frontdesk_core::id::DocumentId,
    ) -> frontdesk_core::Result<()> {
        let store = self.inner.service.store().clone();
        loop {
            let claimed = store
                .claim_document(Timestamp::now(), lease_until(), Some(id))
                .await
                .map_err(|e| frontdesk_core::Error::from_store("document", e))?;
            let Some(document) = claimed else {
                return Ok(());
            };
            let tenant = document.tenant_id.clone();
            let kb = document.knowledge_base_id.clone();
            self.ingest(document).await;
            let after = store
                .get_document(&tenant, &kb, id)
                .await
                .map_err(|e| frontdesk_core::Error::from_store("document", e))?;
            if after.status != frontdesk_core::knowledge::DocumentStatus::Queued {
                return Ok(());
            }
            let wait = (after.run_after.as_millis() - Timestamp::now().as_millis()).max(0);
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
    }

    /// Ingests one claimed document and records how it ended.
    pub async fn ingest(&self, document: Document) {
        let started = std::time::Instant::now();
        let store = self.inner.service.store().clone();
        let outcome = self.try_ingest(&document).await;
        let end = match outcome {
            Ok(()) => {
                tracing::info!(
                    document = %document.id,
                    ms = started.elapsed().as_millis() as u64,
                    "document ready"
                );
                DocumentEnd::Ready {
                    embedding_model: self.inner.embedder.model().to_owned(),
                }
            }
            Err(JobError::Gone) => return,
            Err(JobError::Permanent(reason)) => {
                tracing::info!(document = %document.id, %reason, "document failed");
                DocumentEnd::Failed { reason }
            }
            Err(JobError::Transient(reason))
                if document.attempts >= self.inner.settings.max_attempts =>
            {
                tracing::warn!(document = %document.id, %reason, "document failed after its last try");
                DocumentEnd::Failed {
                    reason: format!("{reason} (gave up after {} tries)", document.attempts),
                }
            }
            Err(JobError::Transient(reason)) => {
                let wait = backoff(document.attempts);
                tracing::info!(document = %document.id, %reason, retry_in_s = wait.as_secs(), "document will be tried again");
                DocumentEnd::Retry {
                    reason,
                    run_after: Timestamp::from_millis(
                        Timestamp::now().as_millis() + wait.as_millis() as i64,
                    ),
                }
            }
        };
        if let Err(error) = store
            .finish_document(&document.tenant_id, &document.id, end)
            .await
        {
            if !matches!(error, frontdesk_core::StoreError::NotFound) {
                tracing::warn!(document = %document.id, %error, "could not record how ingestion ended");
            }
        }
    }

    async fn try_ingest(&self, document: &Document) -> Result<(), JobError> {
        let store = self.inner.service.store().clone();
        let tenant = &document.tenant_id;
        let mut fresh_content = false;
        let extracted = match document.source {
            DocumentSource::Sitemap => return self.expand_sitemap(document).await,
            DocumentSource::Url => {
                let url = document
                    .url
                    .as_deref()
                    .ok_or_else(|| JobError::Permanent("the document has no URL".into()))?;
                let bytes = self.fetch(url).await?;
                let hash = hex::encode(Sha256::digest(&bytes));
                if document.content_hash.as_deref() == Some(hash.as_str())
                    && document.embedding_model.as_deref() == Some(self.inner.embedder.model())
                    && document.progress.total > 0
                    && u64::from(
                        store
                            .count_passages(tenant, &document.id)
                            .await
                            .map_err(store_error)?,
                    ) == document.progress.total
                {
                    // Unchanged since the last fetch: its passages stand.
                    store
                        .set_document_content(
                            tenant,
                            &document.id,
                            Some(&bytes),
                            &hash,
                            document.media_type.as_deref().unwrap_or("text/html"),
                            &document.title,
                        )
                        .await
                        .map_err(store_error)?;
                    return Ok(());
                }
                fresh_content = document.content_hash.as_deref() != Some(hash.as_str());
                let format = extract::sniff(&bytes)?;
                if format == Format::Sitemap {
                    return Err(JobError::Permanent(
                        "the URL is a sitemap: add it as `{\"sitemap\": url}` to fetch its pages"
                            .into(),
                    ));
                }
                let extracted = extract::extract(&bytes, format)?;
                let title = extracted.title.clone().unwrap_or_else(|| url.to_owned());
                store
                    .set_document_content(
                        tenant,
                        &document.id,
                        Some(&bytes),
                        &hash,
                        format.media_type(),
                        &title,
                    )
                    .await
                    .map_err(store_error)?;
                extracted
            }
            DocumentSource::Upload | DocumentSource::Text => {
                let bytes = store
                    .document_content(tenant, &document.id)
                    .await
                    .map_err(store_error)?;
                let format = if document.source == DocumentSource::Text {
                    // Text given through the API is read as Markdown (plain text is Markdown too).
                    Format::Markdown
                } else {
                    extract::sniff(&bytes)?
                };
                let extracted = extract::extract(&bytes, format)?;
                // An upload's own title names it better than its file name.
                let title = extracted.title.as_deref().map(|t| clean_line(t, 200));
                if let Some(title) = title
                    .filter(|t| document.source == DocumentSource::Upload && *t != document.title)
                {
                    let hash = document
                        .content_hash
                        .clone()
                        .unwrap_or_else(|| hex::encode(Sha256::digest(&bytes)));
                    store
                        .set_document_content(
                            tenant,
                            &document.id,
                            None,
                            &hash,
                            format.media_type(),
                            &title,
                        )
                        .await
                        .map_err(store_error)?;
                }
                extracted
            }
        };
        let passages = chunk(&extracted.blocks, self.chunk_settings());
        if passages.is_empty() {
            return Err(JobError::Permanent(ExtractError::NoText.to_string()));
        }
        let total = passages.len() as u32;
        // A job taken over from a crashed worker keeps what it stored (same content, same
        // passages); new content starts over.
        let stored = if fresh_content {
            0
        } else {
            store
                .count_passages(tenant, &document.id)
                .await
                .map_err(store_error)?
        };
        let keep = if document
            .embedding_model
            .as_deref()
            .is_some_and(|m| m != self.inner.embedder.model())
        {
            0
        } else {
            stored.min(total)
        };
        store
            .begin_passages(tenant, &document.id, keep, total, lease_until())
            .await
            .map_err(store_error)?;
        let batch = self.inner.settings.embed_batch.max(1);
        for group in passages[keep as usize..].chunks(batch) {
            let texts: Vec<String> = group.iter().map(passage_text).collect();
            // Any embedder failure is the server's state, not the document's (a missing model
            // works after `frontdesk models fetch`): try again later.
            let vectors = self
                .inner
                .embedder
                .embed(&texts)
                .await
                .map_err(|e| JobError::Transient(format!("the embedder failed: {e}")))?;
            let rows: Vec<NewPassage> = group
                .iter()
                .zip(vectors)
                .map(|(passage, vector)| NewPassage {
                    seq: passage.index as u32,
                    text: passage.text.clone(),
                    section: (!passage.section.is_empty()).then(|| passage.section.join(" › ")),
                    page: passage.page,
                    tokens: passage.tokens as u32,
                    vector,
                })
                .collect();
            store
                .add_passages(
                    tenant,
                    &document.knowledge_base_id,
                    &document.id,
                    &rows,
                    lease_until(),
                )
                .await
                .map_err(store_error)?;
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    fn chunk_settings(&self) -> ChunkSettings {
        self.inner.settings.chunk
    }

    /// Fetches a URL with the outbound checks of webhooks, at most `max_document_bytes`.
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, JobError> {
        let response = self.inner.fetcher.get(url).send().await.map_err(|e| {
            let reason = format!(
                "fetching {url}: {}",
                frontdesk_agents::outbound::describe(&e)
            );
            // A refused address will not become public by waiting.
            if frontdesk_agents::outbound::is_refused(&e) {
                JobError::Permanent(reason)
            } else {
                JobError::Transient(reason)
            }
        })?;
        let status = response.status();
        if status.is_client_error() {
            return Err(JobError::Permanent(format!(
                "fetching {url}: the server answered {status}"
            )));
        }
        if !status.is_success() {
            return Err(JobError::Transient(format!(
                "fetching {url}: the server answered {status}"
            )));
        }
        frontdesk_agents::outbound::read_limited(response, self.inner.settings.max_document_bytes)
            .await
            .map_err(|e| JobError::Permanent(format!("fetching {url}: {e}")))
    }

    /// Reads a sitemap (following an index one level down) and adds its pages as URL
    /// documents of the same knowledge base, at most the budget the sitemap was given.
    async fn expand_sitemap(&self, document: &Document) -> Result<(), JobError> {
        let url = document
            .url
            .as_deref()
            .ok_or_else(|| JobError::Permanent("the sitemap has no URL".into()))?;
        let budget = document.progress.total.max(1) as usize;
        let xml = self.fetch(url).await?;
        let xml = String::from_utf8(xml)
            .map_err(|_| JobError::Permanent("the sitemap is not UTF-8 XML".into()))?;
        if extract::sniff(xml.as_bytes()).ok() != Some(Format::Sitemap) {
            return Err(JobError::Permanent(
                "the URL is not a sitemap (no <urlset> or <sitemapindex>)".into(),
            ));
        }
        let mut pages = Vec::new();
        if extract::is_sitemap_index(&xml) {
            for nested in extract::sitemap_locations(&xml).into_iter().take(10) {
                if pages.len() >= budget {
                    break;
                }
                let Ok(inner) = self.fetch(&nested).await else {
                    continue;
                };
                let inner = String::from_utf8_lossy(&inner).into_owned();
                pages.extend(extract::sitemap_locations(&inner));
            }
        } else {
            pages = extract::sitemap_locations(&xml);
        }
        pages.dedup();
        let mut added = 0u64;
        for page in pages.into_iter().take(budget) {
            let new = NewDocument::Url {
                url: page.clone(),
                refresh_hours: document.refresh_hours,
            };
            match self
                .add(
                    &document.tenant_id,
                    document.knowledge_base_id.as_str(),
                    new,
                )
                .await
            {
                Ok(_) => added += 1,
                Err(frontdesk_core::Error::NotFound { .. }) => return Err(JobError::Gone),
                Err(error) => {
                    tracing::info!(sitemap = %url, %page, %error, "a sitemap page was not added");
                }
            }
        }
        if added == 0 {
            return Err(JobError::Permanent(
                "the sitemap lists no page that could be added".into(),
            ));
        }
        // The sitemap's progress says how many pages it added.
        let added = u32::try_from(added).unwrap_or(u32::MAX);
        self.inner
            .service
            .store()
            .begin_passages(
                &document.tenant_id,
                &document.id,
                added,
                added,
                lease_until(),
            )
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

/// What is embedded for a passage: its section's headings and its text, so a passage under
/// "Returns" is found for a question about returns even when its sentences do not say so.
fn passage_text(passage: &crate::chunk::Chunk) -> String {
    if passage.section.is_empty() {
        passage.text.clone()
    } else {
        format!("{}\n{}", passage.section.join(" › "), passage.text)
    }
}

fn lease_until() -> Timestamp {
    Timestamp::from_millis(Timestamp::now().as_millis() + LEASE.as_millis() as i64)
}

/// 10 s, 20 s, 40 s, … at most 10 minutes.
fn backoff(attempts: u32) -> Duration {
    let secs = 10u64.saturating_mul(1u64 << attempts.saturating_sub(1).min(6));
    Duration::from_secs(secs.min(600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stops_at_ten_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(2), Duration::from_secs(20));
        assert_eq!(backoff(4), Duration::from_secs(80));
        assert_eq!(backoff(30), Duration::from_secs(600));
    }
}
