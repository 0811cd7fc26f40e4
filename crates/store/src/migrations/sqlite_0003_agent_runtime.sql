-- Structured answers (an agent's output schema) beside their text rendering.
ALTER TABLE messages ADD COLUMN structured TEXT;

-- Runs as traces: which agent ran, every model and tool call as a step, and the state of a
-- run paused for a human approval (with when that approval expires).
ALTER TABLE runs ADD COLUMN agent TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN steps TEXT NOT NULL DEFAULT '[]';
ALTER TABLE runs ADD COLUMN state TEXT;
ALTER TABLE runs ADD COLUMN expires_at BIGINT;
CREATE INDEX runs_awaiting ON runs (expires_at) WHERE status = 'awaiting_approval';

-- Agent config added with the runtime: model calls per run, budgets, who answers after a handoff.
ALTER TABLE agents ADD COLUMN max_turns BIGINT NOT NULL DEFAULT 10;
ALTER TABLE agents ADD COLUMN budgets TEXT NOT NULL DEFAULT '{}';
ALTER TABLE agents ADD COLUMN after_handoff TEXT NOT NULL DEFAULT '"stay"';
