-- Voice calls: one row per phone call or browser voice session. The transcript, tool calls
-- and usage are JSON written as the call goes on; `search` holds the lowercased numbers,
-- summary and transcript for the call list's search.
CREATE TABLE calls (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    conversation_id TEXT,
    channel TEXT NOT NULL,
    direction TEXT NOT NULL,
    mode TEXT NOT NULL,
    from_number TEXT,
    to_number TEXT,
    provider_call_id TEXT,
    status TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    duration_ms BIGINT,
    transcript TEXT NOT NULL DEFAULT '[]',
    summary TEXT,
    tool_calls TEXT NOT NULL DEFAULT '[]',
    usage TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    transferred_to TEXT,
    search TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX calls_by_start ON calls (tenant_id, started_at DESC, id DESC);
CREATE INDEX calls_active ON calls (tenant_id) WHERE status = 'active';

-- An answer a caller spoke over keeps only what they heard: its new text leaves the
-- full-text index and waits to join it again (see migration 6).
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages WHEN old.text IS NOT new.text BEGIN
    DELETE FROM messages_fts WHERE rowid = (
        SELECT (c.pk << 20) | old.seq FROM conversations c
        WHERE c.id = old.conversation_id
        AND NOT EXISTS (SELECT 1 FROM messages_fts_pending p WHERE p.message_pk = old.pk));
    INSERT OR IGNORE INTO messages_fts_pending (message_pk) VALUES (new.pk);
END;
