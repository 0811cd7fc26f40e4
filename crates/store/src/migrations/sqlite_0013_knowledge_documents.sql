-- Documents of knowledge bases, their content, their passages (with vectors) and a full-text
-- index over the passages. A document is also its own ingestion job: `status`, `run_after`
-- (backoff) and `lease_until` (a worker's claim; a crashed worker's lease runs out).
CREATE TABLE knowledge_documents (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    knowledge_base_id TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    url TEXT,
    filename TEXT,
    media_type TEXT,
    size_bytes BIGINT NOT NULL DEFAULT 0,
    content_hash TEXT,
    status TEXT NOT NULL,
    error TEXT,
    progress_done BIGINT NOT NULL DEFAULT 0,
    progress_total BIGINT NOT NULL DEFAULT 0,
    attempts BIGINT NOT NULL DEFAULT 0,
    refresh_hours BIGINT,
    fetched_at BIGINT,
    embedding_model TEXT,
    version BIGINT NOT NULL DEFAULT 0,
    run_after BIGINT NOT NULL,
    lease_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX knowledge_documents_by_kb ON knowledge_documents (tenant_id, knowledge_base_id, created_at);
CREATE INDEX knowledge_documents_by_hash ON knowledge_documents (tenant_id, knowledge_base_id, content_hash);
CREATE INDEX knowledge_documents_jobs ON knowledge_documents (status, run_after);

CREATE TABLE knowledge_contents (
    document_id TEXT PRIMARY KEY REFERENCES knowledge_documents(id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    body BLOB NOT NULL
);

CREATE TABLE knowledge_passages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    knowledge_base_id TEXT NOT NULL,
    document_id TEXT NOT NULL REFERENCES knowledge_documents(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    text TEXT NOT NULL,
    section TEXT,
    page BIGINT,
    tokens BIGINT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX knowledge_passages_by_document ON knowledge_passages (document_id, seq);

CREATE VIRTUAL TABLE knowledge_passages_fts USING fts5 (
    section, text,
    content = 'knowledge_passages', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER knowledge_passages_fts_insert AFTER INSERT ON knowledge_passages BEGIN
    INSERT INTO knowledge_passages_fts (rowid, section, text) VALUES (new.id, new.section, new.text);
END;
CREATE TRIGGER knowledge_passages_fts_delete AFTER DELETE ON knowledge_passages BEGIN
    INSERT INTO knowledge_passages_fts (knowledge_passages_fts, rowid, section, text)
    VALUES ('delete', old.id, old.section, old.text);
END;

-- Changes whenever a tenant's searchable passages do: instances keep their vector index in
-- step with it.
CREATE TABLE knowledge_generations (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    generation BIGINT NOT NULL
);
