-- Gatehouse schema v6: what the desktop app needs. Agent suspension, and activity queries over
-- millions of events (by kind, and full text).
-- Never edit this file once landed: add 0007_*.sql instead.

-- Set while the person has suspended the agent: no new codes, tokens or approvals, and its tokens
-- are inactive, until resumed (NULL again).
ALTER TABLE agents ADD COLUMN suspended_at INTEGER;

-- The Activity view filters by kind, newest first.
CREATE INDEX events_by_kind ON events (kind, id);

-- Full-text search over each event's kind, client id and detail JSON. An external-content index:
-- the text stays in `events` (append-only, hash-chained, untouched here); this holds only the
-- index, filled by a trigger on insert. Events are never updated or deleted, so no other
-- trigger is needed. '_' is part of a token, so a client id (agt_...) is one token; '.', '@',
-- '/' and ':' split, so a recipient's domain or a URL's host can be found by its parts.
CREATE VIRTUAL TABLE events_fts USING fts5 (
    kind, client_id, detail,
    content = 'events', content_rowid = 'id',
    tokenize = "unicode61 remove_diacritics 2 tokenchars '_'"
);
CREATE TRIGGER events_fts_insert AFTER INSERT ON events
BEGIN
    INSERT INTO events_fts (rowid, kind, client_id, detail)
    VALUES (new.id, new.kind, new.client_id, new.detail);
END;
-- Index the events already there.
INSERT INTO events_fts (events_fts) VALUES ('rebuild');
