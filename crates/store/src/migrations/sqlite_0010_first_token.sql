-- How long a run took to its first streamed text (the overview's first-token time); NULL
-- for runs that wrote none or waited for a person first, and for runs saved before this.
ALTER TABLE runs ADD COLUMN first_token_ms BIGINT;
