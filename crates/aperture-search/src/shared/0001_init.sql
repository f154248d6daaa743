-- The shared search index on PostgreSQL, version 1. Derived data: `aperture reindex-search`
-- builds it again from the catalog.

-- pgvector. Creating an extension needs a superuser (or pgvector marked trusted): on a managed
-- server, create it once by hand and this is a no-op.
CREATE EXTENSION IF NOT EXISTS vector;

-- Where the index is in the catalog's change feed. `format` is 0 while a build is under way.
CREATE TABLE search_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    format   INTEGER NOT NULL,
    position BIGINT NOT NULL
);

-- One row per asset: its filters, its words as pre-analysed lexemes (see `shared/mod.rs`), and
-- what hits are explained from (JSON).
CREATE TABLE search_documents (
    asset      BYTEA PRIMARY KEY,
    collection TEXT NOT NULL,
    kind       TEXT NOT NULL,
    date       BIGINT NOT NULL,
    langs      TEXT[] NOT NULL,
    translated TEXT[] NOT NULL,
    has        TEXT[] NOT NULL,
    words      TSVECTOR NOT NULL,
    explained  TEXT NOT NULL
);
-- No pending list (`fastupdate`): new entries go into the index at once, so a search never
-- scans a list of recent ones (which made queries ten times slower after a batch of writes).
CREATE INDEX search_documents_words ON search_documents USING gin (words)
    WITH (fastupdate = off);
CREATE INDEX search_documents_langs ON search_documents USING gin (langs, translated);
CREATE INDEX search_documents_newest ON search_documents (date DESC);
CREATE INDEX search_documents_by_collection ON search_documents (collection, date DESC);

-- Embedding spaces; space N's vectors are in `search_vectors_N`, made when its first vector
-- arrives (the dimension is fixed per table, as an HNSW index needs).
CREATE TABLE search_spaces (
    name   TEXT PRIMARY KEY,
    number SERIAL UNIQUE,
    dims   INTEGER NOT NULL
);

-- Every language some document's text is in or was translated into (which stemmed fields a
-- query looks in, and what it is translated into). A language stays listed when its last
-- document goes: harmless.
CREATE TABLE search_languages (
    code TEXT PRIMARY KEY
);
