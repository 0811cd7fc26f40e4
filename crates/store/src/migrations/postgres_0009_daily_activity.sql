-- Fills the dashboard's daily rollup from the conversations and messages there are
-- (also run by `SqlStore::rebuild_daily_activity`, after a bulk import).
DELETE FROM daily_activity;
INSERT INTO daily_activity (tenant_id, day, agent_id, model, conversations)
SELECT tenant_id, to_char(to_timestamp(created_at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), agent_id, '', COUNT(*)
FROM conversations GROUP BY 1, 2, 3;
INSERT INTO daily_activity (tenant_id, day, agent_id, model, messages, answers, guardrail_answers, prompt_tokens, completion_tokens, total_tokens)
SELECT m.tenant_id, to_char(to_timestamp(m.created_at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), c.agent_id, COALESCE(m.model, ''), COUNT(*), COUNT(m.finish_reason),
    SUM(CASE WHEN m.finish_reason = 'content_filter' THEN 1 ELSE 0 END),
    COALESCE(SUM(m.prompt_tokens), 0), COALESCE(SUM(m.completion_tokens), 0), COALESCE(SUM(m.total_tokens), 0)
FROM messages m JOIN conversations c ON c.id = m.conversation_id
GROUP BY 1, 2, 3, 4
ON CONFLICT (tenant_id, day, agent_id, model) DO UPDATE SET messages = excluded.messages,
    answers = excluded.answers, guardrail_answers = excluded.guardrail_answers, prompt_tokens = excluded.prompt_tokens,
    completion_tokens = excluded.completion_tokens, total_tokens = excluded.total_tokens;
