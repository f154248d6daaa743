-- Catalog schema, version 3: data keys, for a lake that encrypts its objects at rest (as
-- SQLite's 0007_data_keys.sql). A deleted row stays in PostgreSQL's files until VACUUM reuses
-- its page, and in the WAL and backups: such a copy of a wrapped key is shredded for good only
-- once the master key that wrapped it is retired (keys are rewrapped, then it is destroyed).

CREATE TABLE data_keys (
    owner      BYTEA PRIMARY KEY,
    wrapped    BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
