-- Catalog schema, version 1. Ids are 16-byte UUIDv7, hashes 32-byte BLAKE3, times Unix ms UTC.

CREATE TABLE collections (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    created_at     INTEGER NOT NULL,
    -- Assets older than this are due for erasure; NULL keeps them forever.
    retention_days INTEGER,
    description    TEXT
);

-- One row per (collection, content): the same bytes under two names are one asset with two
-- sources; the same bytes in two collections are two assets sharing one blob.
CREATE TABLE assets (
    id            BLOB PRIMARY KEY,
    collection_id INTEGER NOT NULL REFERENCES collections(id),
    content_hash  BLOB NOT NULL,
    size          INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    mime          TEXT NOT NULL,
    ingested_at   INTEGER NOT NULL,
    captured_at   TEXT,
    metadata      TEXT NOT NULL,
    UNIQUE (collection_id, content_hash)
);
CREATE INDEX assets_by_hash ON assets (content_hash);
CREATE INDEX assets_by_kind ON assets (collection_id, kind, id);

-- Every place an asset was ingested from. path_bytes is the exact OS path (names with odd
-- bytes survive), path its readable form.
CREATE TABLE asset_sources (
    asset_id      BLOB NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    collection_id INTEGER NOT NULL REFERENCES collections(id),
    path_bytes    BLOB NOT NULL,
    path          TEXT NOT NULL,
    name          TEXT NOT NULL,
    file_size     INTEGER NOT NULL,
    modified_ns   INTEGER,
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    PRIMARY KEY (asset_id, path_bytes)
);
CREATE INDEX asset_sources_by_path ON asset_sources (collection_id, path_bytes);

-- Blobs whose last asset was deleted. `generation` grows with each deletion so that an ingest
-- that found the blob present can tell whether a deletion raced it (see Catalog::record).
CREATE TABLE blob_deletions (
    content_hash BLOB PRIMARY KEY,
    generation   INTEGER NOT NULL,
    in_progress  INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- What analyzers found, and where in the asset.
CREATE TABLE insights (
    id               INTEGER PRIMARY KEY,
    asset_id         BLOB NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    analyzer         TEXT NOT NULL,
    analyzer_version TEXT NOT NULL,
    model            TEXT,
    model_version    TEXT,
    kind             TEXT NOT NULL,
    value            TEXT NOT NULL,
    confidence       REAL,
    language         TEXT,
    page             INTEGER,
    time_start_ms    INTEGER,
    time_end_ms      INTEGER,
    region_x         REAL,
    region_y         REAL,
    region_w         REAL,
    region_h         REAL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX insights_by_asset ON insights (asset_id, analyzer);

-- The job queue: one job per (asset, analyzer).
CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY,
    asset_id         BLOB NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    analyzer         TEXT NOT NULL,
    analyzer_version TEXT,
    state            TEXT NOT NULL
        CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'skipped')),
    priority         INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    run_after        INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (asset_id, analyzer)
);
CREATE INDEX jobs_ready ON jobs (state, priority DESC, run_after);
