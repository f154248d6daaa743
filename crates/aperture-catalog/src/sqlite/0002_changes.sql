-- Catalog schema, version 2: a feed of changes for the search index to follow.

-- Assets whose searchable content changed (ingested, given a new path, analysed, deleted), in
-- commit order. The search index applies them by re-reading the asset (or dropping it when it
-- is gone) and prunes what it applied. Consumers must treat an entry as "look again", never
-- as a description of the change.
CREATE TABLE changes (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    asset_id BLOB NOT NULL
);

CREATE TRIGGER changes_asset_deleted AFTER DELETE ON assets
BEGIN
    INSERT INTO changes (asset_id) VALUES (OLD.id);
END;

-- A new asset comes with its first source in the same transaction: this covers both.
CREATE TRIGGER changes_source_added AFTER INSERT ON asset_sources
BEGIN
    INSERT INTO changes (asset_id) VALUES (NEW.asset_id);
END;
