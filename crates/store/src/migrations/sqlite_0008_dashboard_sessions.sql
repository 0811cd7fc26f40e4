-- Dashboard sessions and one-time links (invites, password resets), each keyed by the
-- SHA-256 of its secret.
CREATE TABLE dashboard_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    user_agent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX dashboard_sessions_by_user ON dashboard_sessions (user_id);

CREATE TABLE sign_in_links (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('invite', 'reset')),
    tenant_id TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    email TEXT,
    role TEXT CHECK (role IS NULL OR role IN ('owner', 'admin', 'editor', 'viewer')),
    created_by TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX sign_in_links_by_tenant ON sign_in_links (tenant_id, created_at);

-- What the dashboard charts, per tenant, UTC day (`YYYY-MM-DD`), agent and model (empty for
-- conversations and messages without one): kept by the writes that make conversations and
-- messages, so a 90-day overview reads a few hundred rows, not a million messages. Filled
-- from the existing data by the next migration (and `SqlStore::rebuild_daily_activity`).
CREATE TABLE daily_activity (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    day TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    model TEXT NOT NULL,
    conversations BIGINT NOT NULL DEFAULT 0,
    messages BIGINT NOT NULL DEFAULT 0,
    answers BIGINT NOT NULL DEFAULT 0,
    -- Answers a guardrail stopped (finish reason `content_filter`).
    guardrail_answers BIGINT NOT NULL DEFAULT 0,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    total_tokens BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, agent_id, model)
);

-- The dashboard's conversation filters: conversations with a failed run, with an answer a
-- guardrail stopped.
CREATE INDEX runs_failed_conversation ON runs (tenant_id, conversation_id) WHERE status = 'failed';
CREATE INDEX messages_guardrail_conversation ON messages (tenant_id, conversation_id) WHERE finish_reason = 'content_filter';
