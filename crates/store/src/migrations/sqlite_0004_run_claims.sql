-- A paused run taken up by a decision is claimed until this time; a claim its process never
-- released (it died) is found by the sweep and the run ends as failed instead of hanging.
ALTER TABLE runs ADD COLUMN claimed_until BIGINT;
CREATE INDEX runs_claimed ON runs (claimed_until) WHERE status = 'running';
