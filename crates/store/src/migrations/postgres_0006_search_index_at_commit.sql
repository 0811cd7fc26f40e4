-- SQLite only: there the full-text index of messages is filled once per commit. PostgreSQL
-- indexes each message in its own row, so nothing changes here.
SELECT 1;
