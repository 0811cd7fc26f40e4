-- The search index's words with how many messages hold each: a search for a common word
-- looks in a window of the newest conversations instead of sorting every match (see `search.rs`).
CREATE VIRTUAL TABLE messages_fts_vocab USING fts5vocab(messages_fts, 'row');
