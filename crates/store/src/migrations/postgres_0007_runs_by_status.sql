-- A tenant's runs, newest first (`GET /api/v1/runs`), and the ones waiting for a person
-- (`?status=awaiting_approval`, the approvals page): read from an index, without walking
-- every run. The paused ones have a partial index of their own, like the per-conversation one.
CREATE INDEX runs_tenant_created ON runs (tenant_id, created_at);
CREATE INDEX runs_paused_tenant ON runs (tenant_id, created_at) WHERE status = 'awaiting_approval';
