-- Human handoff: who answers a conversation (`handler`), since when it waits for a person,
-- who holds it; staff replies marked with their author; each conversation's timeline of
-- handoff events (asked, taken, replies, internal notes, handed back) with its own sequence;
-- staff avatars; an agent's human settings.
ALTER TABLE conversations ADD COLUMN handler TEXT NOT NULL DEFAULT 'agent';
ALTER TABLE conversations ADD COLUMN waiting_since BIGINT;
ALTER TABLE conversations ADD COLUMN wait_until BIGINT;
ALTER TABLE conversations ADD COLUMN assignee_id TEXT;
ALTER TABLE conversations ADD COLUMN assignee TEXT;
ALTER TABLE conversations ADD COLUMN event_seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX conversations_waiting ON conversations (tenant_id, waiting_since)
    WHERE waiting_since IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX conversations_wait_due ON conversations (wait_until)
    WHERE wait_until IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX conversations_human ON conversations (tenant_id, activity_at)
    WHERE handler = 'human' AND deleted_at IS NULL;

ALTER TABLE messages ADD COLUMN author TEXT;

CREATE TABLE conversation_events (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    conversation_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id, seq)
);

ALTER TABLE users ADD COLUMN avatar_url TEXT;
ALTER TABLE agents ADD COLUMN human TEXT NOT NULL DEFAULT '{}';
