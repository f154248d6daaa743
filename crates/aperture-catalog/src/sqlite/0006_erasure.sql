-- Catalog schema, version 6: erasure that leaves no trace of what was erased, retention and
-- legal hold.

-- Deletion generations per bucket of content hashes, not per hash: a finished deletion keeps no
-- content hash (which would prove the file was once held). A bucket is two bytes of a hash of
-- the content hash keyed with a secret kept outside the catalog (derived from the audit key),
-- so it says nothing of the hashes in it either. An ingest that read its bucket's generation
-- before publishing records nothing if it changed.
CREATE TABLE blob_deletion_generations (
    bucket     INTEGER PRIMARY KEY,
    generation INTEGER NOT NULL
);
-- blob_deletions now holds deletions under way only.
DELETE FROM blob_deletions WHERE in_progress = 0;

-- The details of audit entries that name an asset (its name, paths, what was read): kept
-- beside the chain, which holds only a keyed digest of each (keyed by its salt), and deleted
-- when the asset is erased. `asset_id` links a detail to the asset it names; `path` is an
-- ingested path, deleted when an asset at or under it is erased. A detail is stored only while
-- its asset exists (see Access::append_audit), and goes with it.
CREATE TABLE audit_private (
    seq      INTEGER NOT NULL,
    part     INTEGER NOT NULL,
    asset_id BLOB REFERENCES assets(id) ON DELETE CASCADE,
    path     TEXT,
    salt     BLOB NOT NULL,
    detail   TEXT NOT NULL,
    PRIMARY KEY (seq, part)
);
CREATE INDEX audit_private_by_asset ON audit_private (asset_id) WHERE asset_id IS NOT NULL;
CREATE INDEX audit_private_by_path ON audit_private (path) WHERE path IS NOT NULL;

-- Retention per collection, in seconds from each asset's ingest into it (NULL: kept for ever;
-- the days column it replaces was never set), and a legal hold, which stops every erasure in
-- the collection until an admin lifts it.
ALTER TABLE collections ADD COLUMN retention_secs INTEGER;
ALTER TABLE collections ADD COLUMN legal_hold INTEGER NOT NULL DEFAULT 0;
-- Whether OCR reads licence plates on pictures of vehicles here (a collection of documents);
-- elsewhere plate-like text on them is neither stored nor indexed.
ALTER TABLE collections ADD COLUMN read_plates INTEGER NOT NULL DEFAULT 0;
UPDATE collections SET retention_secs = retention_days * 86400 WHERE retention_days IS NOT NULL;
CREATE INDEX assets_by_collection_age ON assets (collection_id, ingested_at);
