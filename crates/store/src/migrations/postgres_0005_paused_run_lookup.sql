-- Every new turn asks whether its conversation has a run waiting for an approval. This index
-- holds only such runs, so the answer costs the same however many runs a conversation had.
CREATE INDEX runs_paused_conversation ON runs (tenant_id, conversation_id) WHERE status = 'awaiting_approval';
