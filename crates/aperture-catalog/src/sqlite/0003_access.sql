-- Catalog schema, version 3: API tokens with scopes and collection grants, and the audit log.

-- Only a hash of each token's secret is kept; `id` is the token's public part.
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    scopes      TEXT NOT NULL, -- comma-separated: read,search,ingest,admin
    secret_hash BLOB NOT NULL,
    -- 1: every collection; 0: only those in token_collections.
    all_collections INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

-- Grants by collection name, so a grant may precede the collection's first file.
CREATE TABLE token_collections (
    token_id   TEXT NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    collection TEXT NOT NULL,
    PRIMARY KEY (token_id, collection)
);

-- Append-only: each entry carries the hash of the one before (see access.rs). The triggers
-- stop honest mistakes; the chain catches the rest.
CREATE TABLE audit (
    seq    INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL,
    prev   BLOB NOT NULL,
    hash   BLOB NOT NULL
);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
