-- Branches: walking a conversation's message tree down from a message (siblings, the newest
-- leaf under a message) needs the children of a message.
CREATE INDEX messages_parent ON messages (parent_id);

-- Finished runs with their events, so a run can be replayed after its live log is gone.
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    conversation_id TEXT NOT NULL,
    status TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    total_tokens BIGINT NOT NULL,
    events TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    completed_at BIGINT NOT NULL
);
CREATE INDEX runs_conversation ON runs (tenant_id, conversation_id, created_at);

-- Model provider keys a tenant brings, sealed with the operator's master key.
CREATE TABLE provider_credentials (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    sealed TEXT NOT NULL,
    hint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, provider)
);
