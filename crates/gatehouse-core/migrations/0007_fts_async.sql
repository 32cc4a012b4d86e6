-- Gatehouse schema v7: full-text indexing leaves the write path.
-- Never edit this file once landed: add 0008_*.sql instead.

-- 0006's trigger indexed every event inside the transaction that appended it, which halved audit
-- append throughput. Events are now indexed in batches by the server's background indexer
-- (audit::index_step, run through the store's writer), and searches scan the few events it has
-- not reached yet (audit::query).
DROP TRIGGER events_fts_insert;

-- How far the index reaches: every event with id <= last_indexed_id is in events_fts, none after
-- it. One row. Advanced in the same transaction that indexes the events.
CREATE TABLE events_fts_state (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    last_indexed_id INTEGER NOT NULL
);
-- Until now the trigger indexed every event as it was appended (and 0006 rebuilt the index over
-- the events before it), so the index reaches the newest event.
INSERT INTO events_fts_state (only_row, last_indexed_id)
SELECT 1, COALESCE(MAX(id), 0) FROM events;
