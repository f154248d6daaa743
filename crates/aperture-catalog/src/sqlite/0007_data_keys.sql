-- Catalog schema, version 7: data keys, for a lake that encrypts its objects at rest.

-- One random data key per blob, per asset (whose derived objects get theirs from it) and one
-- for blob names, each wrapped (encrypted) with a master key kept outside the catalog: the
-- catalog holds opaque bytes and does no crypto. `owner` is `KeyOwner::to_bytes` (a tag byte,
-- then the hash or id), so keys page in one order for rotation. Erasure deletes a key in the
-- transaction that erases what it encrypts (crypto-shredding), and `secure_delete` zeroes the
-- row. `created_at` (unix millis) tells fsck an ingest that crashed after making a blob's key
-- from one under way.
CREATE TABLE data_keys (
    owner      BLOB NOT NULL PRIMARY KEY,
    wrapped    BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
