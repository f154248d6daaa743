-- Catalog schema, version 5: what many servers and search indexes sharing one catalog need
-- (the PostgreSQL catalog has the same tables).

-- Web UI sessions, so that any server answers any browser: only a hash of the session id.
CREATE TABLE sessions (
    id_hash    BLOB PRIMARY KEY,
    token_id   TEXT NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Where each follower of the change feed is: changes are pruned up to the slowest one.
CREATE TABLE change_consumers (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    seen_at  INTEGER NOT NULL
);

-- The highest change pruned: a follower behind it missed changes and must rebuild. A catalog
-- pruned before this version starts at its first remaining change less one.
CREATE TABLE changes_pruned (
    one    INTEGER PRIMARY KEY CHECK (one = 1),
    pruned INTEGER NOT NULL
);
INSERT INTO changes_pruned (one, pruned)
VALUES (1, COALESCE((SELECT MIN(seq) - 1 FROM changes),
                    (SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0));
