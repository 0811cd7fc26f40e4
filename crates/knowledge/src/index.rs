//! Each instance's vector index of a tenant's passages, kept in step with the database.
//!
//! The database holds every passage with its vector (SQLite or PostgreSQL alike); an
//! instance loads a tenant's vectors on its first search and afterwards, whenever the
//! tenant's knowledge generation moved (a document became ready or was deleted, here or on
//! another instance), reloads only the documents whose version changed and drops the
//! deleted ones. A missing index is therefore always rebuilt from the database.

use std::collections::HashMap;
use std::sync::Arc;

use frontdesk_core::id::{DocumentId, KnowledgeBaseId, TenantId};
use frontdesk_core::store::Store;
use frontdesk_core::StoreError;
use tokio::sync::{Mutex, RwLock};

use crate::rank::Scored;
use crate::vector::VectorIndex;

/// What a vector in the index belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub passage: i64,
    /// Indexes into [`TenantIndex::documents`].
    document: u32,
}

#[derive(Debug, Clone)]
struct Held {
    id: DocumentId,
    knowledge_base: KnowledgeBaseId,
    version: i64,
}

/// One tenant's vectors.
#[derive(Debug)]
pub struct TenantIndex {
    generation: i64,
    documents: Vec<Held>,
    slots: HashMap<DocumentId, u32>,
    vectors: VectorIndex<Key>,
}

impl TenantIndex {
    fn new(dimensions: usize) -> Self {
        Self {
            generation: -1,
            documents: Vec::new(),
            slots: HashMap::new(),
            vectors: VectorIndex::new(dimensions),
        }
    }

    /// How many vectors it holds.
    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// The `k` passages nearest `query` among these knowledge bases (and documents, when any
    /// are named).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        kbs: &[KnowledgeBaseId],
        documents: &[DocumentId],
    ) -> Vec<Scored<i64>> {
        let allowed: Vec<bool> = self
            .documents
            .iter()
            .map(|held| {
                kbs.contains(&held.knowledge_base)
                    && (documents.is_empty() || documents.contains(&held.id))
            })
            .collect();
        self.vectors
            .search(query, k, |key| {
                allowed.get(key.document as usize).copied().unwrap_or(false)
            })
            .into_iter()
            .map(|s| Scored {
                key: s.key.passage,
                score: s.score,
            })
            .collect()
    }

    fn drop_documents(&mut self, gone: &[u32]) {
        if gone.is_empty() {
            return;
        }
        self.vectors
            .remove_where(|key| gone.contains(&key.document));
        for slot in gone {
            if let Some(held) = self.documents.get(*slot as usize) {
                self.slots.remove(&held.id);
            }
        }
    }
}

/// The indexes of the tenants this instance has searched.
pub struct Indexes {
    dimensions: usize,
    model: String,
    tenants: Mutex<HashMap<TenantId, Arc<RwLock<TenantIndex>>>>,
}

impl Indexes {
    /// Indexes of vectors of `dimensions`, made by the embedder `model` (documents embedded
    /// by another model are not loaded: their vectors are not comparable).
    pub fn new(dimensions: usize, model: impl Into<String>) -> Self {
        Self {
            dimensions,
            model: model.into(),
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant's index, brought up to date with the database.
    pub async fn current(
        &self,
        store: &dyn Store,
        tenant: &TenantId,
    ) -> Result<Arc<RwLock<TenantIndex>>, StoreError> {
        let index = {
            let mut tenants = self.tenants.lock().await;
            tenants
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(RwLock::new(TenantIndex::new(self.dimensions))))
                .clone()
        };
        let generation = store.knowledge_generation(tenant).await?;
        if index.read().await.generation == generation {
            return Ok(index);
        }
        let mut held = index.write().await;
        if held.generation == generation {
            return Ok(index.clone());
        }
        let ready = store.indexed_documents(tenant).await?;
        let wanted: HashMap<&DocumentId, &frontdesk_core::knowledge::IndexedDocument> =
            ready.iter().map(|d| (&d.id, d)).collect();
        // Gone, or changed since loaded.
        let stale: Vec<u32> = held
            .slots
            .iter()
            .filter(|(id, slot)| {
                wanted
                    .get(id)
                    .is_none_or(|d| d.version != held.documents[**slot as usize].version)
            })
            .map(|(_, slot)| *slot)
            .collect();
        // Slots of dropped documents are never reused: start afresh when most are dead.
        let live = held.slots.len() - stale.len();
        if held.documents.len() > 64 && live * 2 < held.documents.len() {
            *held = TenantIndex::new(self.dimensions);
        } else {
            held.drop_documents(&stale);
        }
        for document in &ready {
            if held.slots.contains_key(&document.id) {
                continue;
            }
            if document.embedding_model.as_deref() != Some(self.model.as_str()) {
                tracing::warn!(
                    document = %document.id,
                    model = ?document.embedding_model,
                    embedder = %self.model,
                    "a document's vectors come from another embedder; it is found by full text only until it is ingested again"
                );
                continue;
            }
            let vectors = store.passage_vectors(tenant, &document.id).await?;
            let slot = held.documents.len() as u32;
            held.documents.push(Held {
                id: document.id.clone(),
                knowledge_base: document.knowledge_base_id.clone(),
                version: document.version,
            });
            held.slots.insert(document.id.clone(), slot);
            for (passage, vector) in vectors {
                held.vectors.add(
                    Key {
                        passage,
                        document: slot,
                    },
                    &vector,
                );
            }
        }
        held.generation = generation;
        Ok(index.clone())
    }

    /// Forgets a tenant's index (it is rebuilt on its next search).
    pub async fn forget(&self, tenant: &TenantId) {
        self.tenants.lock().await.remove(tenant);
    }
}
