-- Catalog schema on PostgreSQL, version 1: the SQLite catalog's tables as of its version 5,
-- in PostgreSQL's types. Ids are 16-byte UUIDv7, hashes 32-byte BLAKE3, times Unix ms UTC.

CREATE TABLE collections (
    id             BIGSERIAL PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    created_at     BIGINT NOT NULL,
    retention_days INTEGER,
    description    TEXT
);

CREATE TABLE assets (
    id            BYTEA PRIMARY KEY,
    collection_id BIGINT NOT NULL REFERENCES collections(id),
    content_hash  BYTEA NOT NULL,
    size          BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    mime          TEXT NOT NULL,
    ingested_at   BIGINT NOT NULL,
    captured_at   TEXT,
    metadata      TEXT NOT NULL,
    UNIQUE (collection_id, content_hash)
);
CREATE INDEX assets_by_hash ON assets (content_hash);
CREATE INDEX assets_by_kind ON assets (collection_id, kind, id);

CREATE TABLE asset_sources (
    asset_id      BYTEA NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    collection_id BIGINT NOT NULL REFERENCES collections(id),
    path_bytes    BYTEA NOT NULL,
    path          TEXT NOT NULL,
    name          TEXT NOT NULL,
    file_size     BIGINT NOT NULL,
    modified_ns   BIGINT,
    first_seen    BIGINT NOT NULL,
    last_seen     BIGINT NOT NULL,
    PRIMARY KEY (asset_id, path_bytes)
);
CREATE INDEX asset_sources_by_path ON asset_sources (collection_id, path_bytes);

CREATE TABLE blob_deletions (
    content_hash BYTEA PRIMARY KEY,
    generation   BIGINT NOT NULL,
    in_progress  BOOLEAN NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE insights (
    id               BIGSERIAL PRIMARY KEY,
    asset_id         BYTEA NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    analyzer         TEXT NOT NULL,
    analyzer_version TEXT NOT NULL,
    model            TEXT,
    model_version    TEXT,
    kind             TEXT NOT NULL,
    value            TEXT NOT NULL,
    confidence       REAL,
    language         TEXT,
    page             INTEGER,
    time_start_ms    BIGINT,
    time_end_ms      BIGINT,
    region_x         REAL,
    region_y         REAL,
    region_w         REAL,
    region_h         REAL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX insights_by_asset ON insights (asset_id, analyzer);

CREATE TABLE jobs (
    id               BIGSERIAL PRIMARY KEY,
    asset_id         BYTEA NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    analyzer         TEXT NOT NULL,
    analyzer_version TEXT,
    state            TEXT NOT NULL
        CHECK (state IN ('queued', 'running', 'waiting', 'succeeded', 'failed', 'skipped')),
    priority         INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    run_after        BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    part             INTEGER NOT NULL DEFAULT 0 CHECK (part >= 0),
    parts            INTEGER NOT NULL DEFAULT 0 CHECK (parts >= 0),
    start_ms         BIGINT,
    end_ms           BIGINT,
    result           BYTEA,
    UNIQUE (asset_id, analyzer, part)
);
-- Claims look only at runnable jobs: a small partial index however long the history.
CREATE INDEX jobs_runnable ON jobs (priority DESC, id) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_by_state ON jobs (state, analyzer);
-- Leases that ran out (abandoned jobs, `next_due`) without scanning the runnable backlog.
CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE state = 'running';

-- Workers LISTEN on `aperture_jobs`: a job that becomes queued wakes them (one notification
-- per transaction: PostgreSQL folds identical ones).
CREATE FUNCTION aperture_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('aperture_jobs', '');
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_queued_insert AFTER INSERT ON jobs
    FOR EACH ROW WHEN (NEW.state = 'queued') EXECUTE FUNCTION aperture_jobs_notify();
CREATE TRIGGER jobs_queued_update AFTER UPDATE OF state ON jobs
    FOR EACH ROW WHEN (NEW.state = 'queued' AND OLD.state <> 'queued')
    EXECUTE FUNCTION aperture_jobs_notify();

-- The change feed. Sequence numbers taken at insert time would commit out of order (a
-- transaction that took 7 may commit after one that took 8, and a follower that saw 8 would
-- skip 7 for ever). So a change is written without a number, by a transaction that holds a
-- shared advisory lock until it ends (the trigger below takes it); `Catalog::changes` first
-- numbers the changes written so far under the exclusive lock: it waits for the writers under
-- way, so every change it can see is committed and numbered now, in increasing order, and
-- writers that come later wait for it, so their changes get higher numbers. Advisory locks
-- belong to one database: other databases on the server never hold the feed back.
CREATE TABLE changes (
    id       BIGSERIAL PRIMARY KEY,
    seq      BIGINT UNIQUE,
    asset_id BYTEA NOT NULL
);
CREATE FUNCTION aperture_changes_writer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The key is CHANGES_LOCK in pg/mod.rs.
    PERFORM pg_advisory_xact_lock_shared(71813016190979);
    RETURN NULL;
END $$;
CREATE TRIGGER changes_writer BEFORE INSERT ON changes
    FOR EACH STATEMENT EXECUTE FUNCTION aperture_changes_writer();
CREATE INDEX changes_unnumbered ON changes (id) WHERE seq IS NULL;
CREATE SEQUENCE changes_seq;
-- The highest number handed out, kept across pruning (a sequence is not transactional), and
-- the highest pruned: a follower behind it missed changes and must rebuild.
CREATE TABLE changes_numbered (
    one    BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    last   BIGINT NOT NULL,
    pruned BIGINT NOT NULL
);
INSERT INTO changes_numbered (last, pruned) VALUES (0, 0);
-- Where each follower of the feed is: changes are pruned up to the slowest one.
CREATE TABLE change_consumers (
    name     TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    seen_at  BIGINT NOT NULL
);

CREATE FUNCTION aperture_asset_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO changes (asset_id) VALUES (OLD.id);
    ELSE
        INSERT INTO changes (asset_id) VALUES (NEW.asset_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER changes_asset_deleted AFTER DELETE ON assets
    FOR EACH ROW EXECUTE FUNCTION aperture_asset_changed();
CREATE TRIGGER changes_source_added AFTER INSERT ON asset_sources
    FOR EACH ROW EXECUTE FUNCTION aperture_asset_changed();

CREATE TABLE tokens (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    secret_hash     BYTEA NOT NULL,
    all_collections BOOLEAN NOT NULL,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);

CREATE TABLE token_collections (
    token_id   TEXT NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    collection TEXT NOT NULL,
    PRIMARY KEY (token_id, collection)
);

-- Web UI sessions, so that any server answers any browser: only a hash of the session id.
CREATE TABLE sessions (
    id_hash    BYTEA PRIMARY KEY,
    token_id   TEXT NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE audit (
    seq    BIGINT PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL,
    prev   BYTEA NOT NULL,
    hash   BYTEA NOT NULL
);

CREATE FUNCTION aperture_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION aperture_audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION aperture_audit_append_only();
