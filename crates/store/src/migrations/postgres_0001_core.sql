-- frontdesk schema v1 for PostgreSQL. Timestamps are milliseconds since the Unix epoch.
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
    id TEXT PRIMARY KEY,
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
    id TEXT PRIMARY KEY,
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

CREATE INDEX messages_text_search ON messages USING GIN (to_tsvector('simple', text));
CREATE INDEX conversations_title_search ON conversations USING GIN (to_tsvector('simple', coalesce(title, '')));
