-- frontdesk schema v1 for SQLite. Timestamps are milliseconds since the Unix epoch.
-- Tables that feed FTS5 indexes have an INTEGER PRIMARY KEY so their rowids stay stable.
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    monthly_token_quota BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE memberships (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('secret', 'publishable')),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    allowed_origins TEXT NOT NULL,
    allowed_agents TEXT NOT NULL,
    rate_limit_per_minute BIGINT,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    instructions TEXT NOT NULL,
    model TEXT NOT NULL,
    fallback_models TEXT NOT NULL,
    temperature DOUBLE PRECISION,
    top_p DOUBLE PRECISION,
    max_tokens BIGINT,
    tools TEXT NOT NULL,
    mcp_servers TEXT NOT NULL,
    handoffs TEXT NOT NULL,
    output_schema TEXT,
    guardrails TEXT NOT NULL,
    knowledge TEXT,
    approvals TEXT NOT NULL,
    widget TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('chat', 'voice')),
    voice TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE UNIQUE INDEX agents_tenant_slug ON agents (tenant_id, slug) WHERE deleted_at IS NULL;
CREATE INDEX agents_tenant ON agents (tenant_id, created_at);

CREATE TABLE agent_versions (
    agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    spec TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (agent_id, version)
);

CREATE TABLE conversations (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    agent_id TEXT NOT NULL REFERENCES agents(id),
    end_user_id TEXT,
    title TEXT,
    preview TEXT,
    message_count BIGINT NOT NULL DEFAULT 0,
    last_message_at BIGINT,
    -- The latest message, and the one before it (set by the same update, so that an append
    -- learns its default parent from the row it locks, not from a stale snapshot).
    last_message_id TEXT,
    previous_message_id TEXT,
    activity_at BIGINT NOT NULL,
    archived BIGINT NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX conversations_list ON conversations (tenant_id, activity_at DESC, id DESC);
CREATE INDEX conversations_agent ON conversations (tenant_id, agent_id, activity_at DESC, id DESC);
CREATE INDEX conversations_end_user ON conversations (tenant_id, end_user_id, activity_at DESC, id DESC);

CREATE TABLE messages (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    parent_id TEXT,
    role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    content TEXT NOT NULL,
    text TEXT NOT NULL,
    model TEXT,
    finish_reason TEXT,
    prompt_tokens BIGINT,
    completion_tokens BIGINT,
    total_tokens BIGINT,
    latency_ms BIGINT,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX messages_conversation_seq ON messages (conversation_id, seq);

-- Tokens used per tenant and calendar month (UTC, `YYYY-MM`), kept with each answer, so a
-- quota check is one row read.
CREATE TABLE usage_counters (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    period TEXT NOT NULL,
    total_tokens BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, period)
);

-- Message text is indexed under rowid = conversation pk << 20 | seq, so a search yields the
-- matching conversations straight from the index, without visiting the messages.
CREATE VIRTUAL TABLE messages_fts USING fts5 (text, content = '', contentless_delete = 1);
-- Segments are merged by the store's writer between requests, not inside an append.
INSERT INTO messages_fts (messages_fts, rank) VALUES ('automerge', 0);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, text)
    SELECT (c.pk << 20) | new.seq, new.text FROM conversations c WHERE c.id = new.conversation_id;
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    DELETE FROM messages_fts
    WHERE rowid = ((SELECT c.pk FROM conversations c WHERE c.id = old.conversation_id) << 20) | old.seq;
END;

CREATE VIRTUAL TABLE conversations_fts USING fts5 (title, content = 'conversations', content_rowid = 'pk');
CREATE TRIGGER conversations_fts_insert AFTER INSERT ON conversations BEGIN
    INSERT INTO conversations_fts (rowid, title) VALUES (new.pk, coalesce(new.title, ''));
END;
CREATE TRIGGER conversations_fts_delete AFTER DELETE ON conversations BEGIN
    INSERT INTO conversations_fts (conversations_fts, rowid, title) VALUES ('delete', old.pk, coalesce(old.title, ''));
END;
CREATE TRIGGER conversations_fts_update AFTER UPDATE OF title ON conversations WHEN old.title IS NOT new.title BEGIN
    INSERT INTO conversations_fts (conversations_fts, rowid, title) VALUES ('delete', old.pk, coalesce(old.title, ''));
    INSERT INTO conversations_fts (rowid, title) VALUES (new.pk, coalesce(new.title, ''));
END;
