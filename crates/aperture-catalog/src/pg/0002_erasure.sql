-- Catalog schema, version 2: erasure that leaves no trace of what was erased, retention and
-- legal hold (as SQLite's 0006_erasure.sql).

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

-- Retention per collection, in seconds from each asset's ingest into it (NULL: kept for ever;
-- the days column it replaces was never set), and a legal hold, which stops every erasure in
-- the collection until an admin lifts it.
ALTER TABLE collections ADD COLUMN retention_secs BIGINT;
ALTER TABLE collections ADD COLUMN legal_hold BOOLEAN NOT NULL DEFAULT FALSE;
-- Whether OCR reads licence plates on pictures of vehicles here (a collection of documents);
-- elsewhere plate-like text on them is neither stored nor indexed.
ALTER TABLE collections ADD COLUMN read_plates BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE collections SET retention_secs = retention_days * 86400 WHERE retention_days IS NOT NULL;
CREATE INDEX assets_by_collection_age ON assets (collection_id, ingested_at);
