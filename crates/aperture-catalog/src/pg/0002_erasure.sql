-- Catalog schema, version 2: erasure that leaves no trace of what was erased (as SQLite's
-- 0006_erasure.sql).

CREATE TABLE blob_deletion_generations (
    bucket     INTEGER PRIMARY KEY,
    generation BIGINT NOT NULL
);
DELETE FROM blob_deletions WHERE NOT in_progress;

CREATE TABLE audit_private (
    seq      BIGINT NOT NULL,
    part     INTEGER NOT NULL,
    asset_id BYTEA REFERENCES assets(id) ON DELETE CASCADE,
    path     TEXT,
    salt     BYTEA NOT NULL,
    detail   TEXT NOT NULL,
    PRIMARY KEY (seq, part)
);
CREATE INDEX audit_private_by_asset ON audit_private (asset_id) WHERE asset_id IS NOT NULL;
CREATE INDEX audit_private_by_path ON audit_private (path) WHERE path IS NOT NULL;
