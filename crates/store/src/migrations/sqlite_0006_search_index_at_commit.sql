-- A new message waits here to join the full-text index, which the writer fills once per
-- commit (see `sqlite/search_index.rs`). Indexed inside each append, the index wrote a
-- segment of its own for every message of a group commit (every savepoint flushes it);
-- filled at commit, one segment holds them all.
CREATE TABLE messages_fts_pending (message_pk INTEGER PRIMARY KEY);
DROP TRIGGER messages_fts_insert;
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts_pending (message_pk) VALUES (new.pk);
END;
-- A message still waiting leaves the queue; one already indexed leaves the index (the rowid
-- is NULL, which matches nothing, while the message waits).
DROP TRIGGER messages_fts_delete;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    DELETE FROM messages_fts WHERE rowid = (
        SELECT (c.pk << 20) | old.seq FROM conversations c
        WHERE c.id = old.conversation_id
        AND NOT EXISTS (SELECT 1 FROM messages_fts_pending p WHERE p.message_pk = old.pk));
    DELETE FROM messages_fts_pending WHERE message_pk = old.pk;
END;
