-- Catalog schema, version 4: jobs split in time.
--
-- A job over long media may be split into parts, each a job of its own (`part` from 1, with
-- `start_ms` and `end_ms`, NULL for "to the end") that any worker may lease. The job itself
-- (`part` 0) records how many parts it has and waits in state 'waiting' until the last one
-- has finished; each part keeps its `result` for the job to join. SQLite cannot change a
-- CHECK or a UNIQUE constraint in place, so the table is rebuilt.

CREATE TABLE jobs_v4 (
    id               INTEGER PRIMARY KEY,
    asset_id         BLOB NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    analyzer         TEXT NOT NULL,
    analyzer_version TEXT,
    state            TEXT NOT NULL
        CHECK (state IN ('queued', 'running', 'waiting', 'succeeded', 'failed', 'skipped')),
    priority         INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    run_after        INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    part             INTEGER NOT NULL DEFAULT 0 CHECK (part >= 0),
    parts            INTEGER NOT NULL DEFAULT 0 CHECK (parts >= 0),
    start_ms         INTEGER,
    end_ms           INTEGER,
    result           BLOB,
    UNIQUE (asset_id, analyzer, part)
);

INSERT INTO jobs_v4 (id, asset_id, analyzer, analyzer_version, state, priority, attempts,
                     run_after, lease_owner, lease_expires_at, last_error, created_at, updated_at)
SELECT id, asset_id, analyzer, analyzer_version, state, priority, attempts, run_after,
       lease_owner, lease_expires_at, last_error, created_at, updated_at
FROM jobs;

DROP TABLE jobs;
ALTER TABLE jobs_v4 RENAME TO jobs;
CREATE INDEX jobs_ready ON jobs (state, priority DESC, run_after);
