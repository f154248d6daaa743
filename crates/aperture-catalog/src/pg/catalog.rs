//! The [`Catalog`] of [`PgCatalog`]: collections, assets, sources, insights, blob deletion
//! claims and the change feed.

use std::collections::BTreeSet;

use aperture_core::{AssetId, ContentHash, Insight, KeyOwner, UnixMillis};
use postgres::Transaction;
use postgres::types::ToSql;

use super::rows::{self, ASSET_COLUMNS, INSIGHT_COLUMNS};
use super::{CHANGES_LOCK, PgCatalog, hash_lock};
use crate::CONSUMER_EXPIRY_MS;
use crate::decode::{
    blob_keys, hash_from, id_from, prefix_bounds, readable_insights, validate_collection_name,
};
use crate::types::DeletionBuckets;
use crate::*;

fn ids(ids: &[AssetId]) -> Vec<&[u8]> {
    ids.iter().map(|id| id.as_bytes().as_slice()).collect()
}

/// Blob keys dropped per transaction by `drop_unused_blob_keys`: each holds its blobs' locks,
/// and advisory locks share one table of the server's of bounded size.
const KEYS_PER_DROP: i64 = 256;

/// Paths asked about in one `known_sources` query at most.
const KNOWN_SOURCES_CHUNK: usize = 1000;

impl Catalog for PgCatalog {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn ensure_collection(&self, name: &str) -> Result<Collection> {
        validate_collection_name(name)?;
        self.with_retry(|c| {
            c.execute(
                "INSERT INTO collections (name, created_at) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &UnixMillis::now().0],
            )?;
            Ok(())
        })?;
        self.collection(name)
    }

    fn collection(&self, name: &str) -> Result<Collection> {
        let row = self.with_retry(|c| {
            Ok(c.query_opt(
                "SELECT id, name, created_at, retention_secs, legal_hold, read_plates FROM collections WHERE name = $1",
                &[&name],
            )?)
        })?;
        row.as_ref()
            .map(rows::collection)
            .ok_or_else(|| Error::NotFound {
                what: "collection",
                key: name.to_owned(),
            })
    }

    fn collections(&self) -> Result<Vec<Collection>> {
        let found = self.with_retry(|c| {
            Ok(c.query(
                "SELECT id, name, created_at, retention_secs, legal_hold, read_plates FROM collections ORDER BY name",
                &[],
            )?)
        })?;
        Ok(found.iter().map(rows::collection).collect())
    }

    fn change_collection(&self, name: &str, change: &PolicyChange) -> Result<Collection> {
        let secs = change
            .retention_secs
            .flatten()
            .map(|s| i64::try_from(s).unwrap_or(i64::MAX / 1000));
        let changed = self.with_retry(|c| {
            Ok(c.execute(
                "UPDATE collections SET
                     retention_secs = CASE WHEN $2 THEN $3 ELSE retention_secs END,
                     legal_hold = COALESCE($4, legal_hold),
                     read_plates = COALESCE($5, read_plates)
                 WHERE name = $1",
                &[
                    &name,
                    &change.retention_secs.is_some(),
                    &secs,
                    &change.legal_hold,
                    &change.read_plates,
                ],
            )?)
        })?;
        if changed == 0 {
            return Err(Error::NotFound {
                what: "collection",
                key: name.to_owned(),
            });
        }
        self.collection(name)
    }

    fn expired_assets(&self, now: UnixMillis, limit: usize) -> Result<Vec<AssetId>> {
        let rows = self.with_retry(|c| {
            Ok(c.query(
                "SELECT a.id FROM collections c
                 JOIN assets a ON a.collection_id = c.id
                 WHERE c.retention_secs IS NOT NULL AND NOT c.legal_hold
                   AND a.ingested_at <= $1 - c.retention_secs * 1000
                 LIMIT $2",
                &[&now.0, &(limit as i64)],
            )?)
        })?;
        rows.iter().map(|r| id_from(r.get(0))).collect()
    }

    fn known_source(&self, collection: CollectionId, path: &[u8]) -> Result<Option<KnownSource>> {
        let row = self.with_retry(|c| {
            Ok(c.query_opt(
                "SELECT asset_id, file_size, modified_ns FROM asset_sources
                 WHERE collection_id = $1 AND path_bytes = $2
                 ORDER BY last_seen DESC, asset_id DESC LIMIT 1",
                &[&collection.0, &path],
            )?)
        })?;
        row.map(|r| {
            Ok(KnownSource {
                asset: id_from(r.get(0))?,
                file_size: r.get::<_, i64>(1) as u64,
                modified_ns: r.get(2),
            })
        })
        .transpose()
    }

    fn known_sources(
        &self,
        collection: CollectionId,
        paths: &[&[u8]],
    ) -> Result<Vec<Option<KnownSource>>> {
        let mut found = std::collections::HashMap::with_capacity(paths.len());
        // A bounded array per query, however many paths a caller passes.
        for chunk in paths.chunks(KNOWN_SOURCES_CHUNK) {
            let rows = self.with_retry(|c| {
                Ok(c.query(
                    "SELECT DISTINCT ON (path_bytes) path_bytes, asset_id, file_size, modified_ns
                     FROM asset_sources WHERE collection_id = $1 AND path_bytes = ANY($2)
                     ORDER BY path_bytes, last_seen DESC, asset_id DESC",
                    &[&collection.0, &chunk],
                )?)
            })?;
            for r in rows {
                let known = KnownSource {
                    asset: id_from(r.get(1))?,
                    file_size: r.get::<_, i64>(2) as u64,
                    modified_ns: r.get(3),
                };
                found.insert(r.get::<_, Vec<u8>>(0), known);
            }
        }
        Ok(paths.iter().map(|path| found.get(*path).cloned()).collect())
    }

    fn blob_generation(&self, hash: ContentHash) -> Result<BlobGeneration> {
        self.with_retry(|c| generation_of(c, &hash, self.buckets.of(&hash)))
    }

    fn record(&self, batch: &[NewAsset]) -> Result<Vec<Recorded>> {
        // Locks in one order (by key) whatever the batch's order: two batches never deadlock.
        let locks: BTreeSet<i64> = batch
            .iter()
            .map(|item| hash_lock(item.hash.as_bytes()))
            .collect();
        let locks: Vec<i64> = locks.into_iter().collect();
        self.tx(|tx| {
            tx.execute(
                "SELECT pg_advisory_xact_lock(k) FROM unnest($1::BIGINT[]) AS k ORDER BY k",
                &[&locks],
            )?;
            let now = UnixMillis::now().0;
            batch
                .iter()
                .map(|item| record_one(tx, item, now, &self.buckets))
                .collect()
        })
    }

    fn asset(&self, id: AssetId) -> Result<Asset> {
        let row = self.with_retry(|c| {
            Ok(c.query_opt(
                &format!(
                    "SELECT {ASSET_COLUMNS} FROM assets a JOIN collections c
                         ON c.id = a.collection_id
                     WHERE a.id = $1"
                ),
                &[&id.as_bytes().as_slice()],
            )?)
        })?;
        match row {
            Some(r) => rows::asset(&r),
            None => Err(Error::NotFound {
                what: "asset",
                key: id.to_string(),
            }),
        }
    }

    fn assets(&self, wanted: &[AssetId]) -> Result<Vec<Asset>> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let keys = ids(wanted);
        let found = self.with_retry(|c| {
            Ok(c.query(
                &format!(
                    "SELECT {ASSET_COLUMNS} FROM assets a JOIN collections c
                         ON c.id = a.collection_id
                     WHERE a.id = ANY($1)"
                ),
                &[&keys],
            )?)
        })?;
        found.iter().map(rows::asset).collect()
    }

    fn assets_with_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<AssetId>> {
        let (lo, hi) = prefix_bounds(prefix)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let found = self.with_retry(|c| {
            Ok(c.query(
                "SELECT id FROM assets WHERE id >= $1 AND id <= $2 ORDER BY id LIMIT $3",
                &[&lo, &hi, &limit],
            )?)
        })?;
        found.iter().map(|r| id_from(r.get(0))).collect()
    }

    fn list_assets(&self, query: &AssetQuery) -> Result<Vec<Asset>> {
        if query.collections.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let collections: Option<Vec<i64>> = query
            .collections
            .as_ref()
            .map(|ids| ids.iter().map(|c| c.0).collect());
        let kind = query.kind.map(|k| k.as_str());
        let after = query.after.map(|a| a.as_bytes().to_vec());
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let found = self.with_retry(|c| {
            Ok(c.query(
                &format!(
                    "SELECT {ASSET_COLUMNS} FROM assets a JOIN collections c
                         ON c.id = a.collection_id
                     WHERE ($1::BIGINT[] IS NULL OR a.collection_id = ANY($1))
                       AND ($2::TEXT IS NULL OR a.kind = $2)
                       AND ($3::BYTEA IS NULL OR a.id > $3)
                     ORDER BY a.id LIMIT $4"
                ),
                &[&collections, &kind, &after, &limit],
            )?)
        })?;
        found.iter().map(rows::asset).collect()
    }

    fn sources(&self, id: AssetId) -> Result<Vec<Source>> {
        let found = self.with_retry(|c| {
            Ok(c.query(
                "SELECT path, name, file_size, modified_ns, first_seen, last_seen
                 FROM asset_sources WHERE asset_id = $1 ORDER BY first_seen, path",
                &[&id.as_bytes().as_slice()],
            )?)
        })?;
        Ok(found
            .iter()
            .map(|r| Source {
                path: r.get(0),
                name: r.get(1),
                file_size: r.get::<_, i64>(2) as u64,
                modified_ns: r.get(3),
                first_seen: UnixMillis(r.get(4)),
                last_seen: UnixMillis(r.get(5)),
            })
            .collect())
    }

    fn stats(&self) -> Result<Stats> {
        self.tx(|tx| {
            let mut stats = Stats {
                collections: tx
                    .query_one("SELECT COUNT(*) FROM collections", &[])?
                    .get::<_, i64>(0) as u64,
                ..Stats::default()
            };
            for r in tx.query(
                "SELECT kind, COUNT(*), COALESCE(SUM(size), 0)::BIGINT FROM assets GROUP BY kind",
                &[],
            )? {
                let kind: String = r.get(0);
                let kind = kind.parse().map_err(|e| Error::Corrupt {
                    reason: format!("{e}"),
                })?;
                let (assets, bytes) = (r.get::<_, i64>(1) as u64, r.get::<_, i64>(2) as u64);
                stats.assets += assets;
                stats.by_kind.insert(kind, KindStats { assets, bytes });
            }
            let r = tx.query_one(
                "SELECT COUNT(*), COALESCE(SUM(a.size), 0)::BIGINT
                 FROM asset_sources s JOIN assets a ON a.id = s.asset_id",
                &[],
            )?;
            stats.sources = r.get::<_, i64>(0) as u64;
            stats.logical_bytes = r.get::<_, i64>(1) as u64;
            let r = tx.query_one(
                "SELECT COUNT(*), COALESCE(SUM(size), 0)::BIGINT
                 FROM (SELECT content_hash, MAX(size) AS size FROM assets GROUP BY content_hash) b",
                &[],
            )?;
            stats.distinct_blobs = r.get::<_, i64>(0) as u64;
            stats.stored_bytes = r.get::<_, i64>(1) as u64;
            Ok(stats)
        })
    }

    fn asset_count(&self) -> Result<u64> {
        let n: i64 =
            self.with_retry(|c| Ok(c.query_one("SELECT COUNT(*) FROM assets", &[])?.get(0)))?;
        Ok(n as u64)
    }

    fn referenced_blobs(
        &self,
        after: Option<ContentHash>,
        limit: usize,
    ) -> Result<Vec<(ContentHash, u64)>> {
        let after = after.map(|h| h.as_bytes().to_vec());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let found = self.with_retry(|c| {
            Ok(c.query(
                "SELECT content_hash, MAX(size) FROM assets
                 WHERE ($1::BYTEA IS NULL OR content_hash > $1)
                 GROUP BY content_hash ORDER BY content_hash LIMIT $2",
                &[&after, &limit],
            )?)
        })?;
        found
            .iter()
            .map(|r| Ok((hash_from(r.get(0))?, r.get::<_, i64>(1) as u64)))
            .collect()
    }

    fn delete_asset(&self, id: AssetId) -> Result<Deletion> {
        let key = id.as_bytes().as_slice();
        self.tx(|tx| {
            let hash: Vec<u8> = tx
                .query_opt("SELECT content_hash FROM assets WHERE id = $1", &[&key])?
                .ok_or_else(|| Error::NotFound {
                    what: "asset",
                    key: id.to_string(),
                })?
                .get(0);
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&hash_lock(&hash)])?;
            // The collection's row is locked against a hold being set until this commits.
            let collection = tx.query_opt(
                "SELECT c.name, c.legal_hold FROM assets a
                 JOIN collections c ON c.id = a.collection_id
                 WHERE a.id = $1 FOR SHARE OF c",
                &[&key],
            )?;
            if let Some(row) = collection
                && row.get::<_, bool>(1)
            {
                return Err(Error::LegalHold {
                    collection: row.get(0),
                });
            }
            let audit_details = erase_private_audit(tx, key)?;
            // Cascades remove sources, insights and jobs; 0 rows: a concurrent delete won.
            if tx.execute("DELETE FROM assets WHERE id = $1", &[&key])? == 0 {
                return Err(Error::NotFound {
                    what: "asset",
                    key: id.to_string(),
                });
            }
            // After the asset's row: a `keep_data_key` that locked it has committed its key by
            // now, and this statement sees it.
            tx.execute(
                "DELETE FROM data_keys WHERE owner = $1",
                &[&KeyOwner::Asset(id).to_bytes()],
            )?;
            let claim = if still_used(tx, &hash)? {
                None
            } else {
                Some(claim_in(tx, &hash, &self.buckets)?)
            };
            Ok(Deletion {
                asset: id,
                hash: hash_from(&hash)?,
                claim,
                audit_details,
            })
        })
    }

    fn scrub(&self) -> Result<bool> {
        // Dead rows stay in PostgreSQL's files until VACUUM reuses their pages, and in its WAL
        // and backups: nothing a connection can scrub (see the deployment guide).
        Ok(false)
    }

    fn key_deletion_buckets(&self, key: [u8; 32]) {
        self.buckets.key(key);
    }

    fn claim_blob_deletion(&self, hash: ContentHash) -> Result<Option<BlobClaim>> {
        let key = hash.as_bytes().as_slice();
        self.tx(|tx| {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&hash_lock(key)])?;
            if still_used(tx, key)? {
                Ok(None)
            } else {
                Ok(Some(claim_in(tx, key, &self.buckets)?))
            }
        })
    }

    fn still_claimed(&self, claim: BlobClaim) -> Result<bool> {
        self.with_retry(|c| {
            Ok(c.query_one(
                "SELECT EXISTS (SELECT 1 FROM blob_deletions
                     WHERE content_hash = $1 AND generation = $2 AND in_progress)",
                &[&claim.hash.as_bytes().as_slice(), &claim.generation],
            )?
            .get(0))
        })
    }

    fn blob_deleted(&self, claim: BlobClaim) -> Result<()> {
        // The row goes (no trace of the hash is kept) and the bucket's generation moves on.
        self.tx(|tx| {
            let finished = tx.execute(
                "DELETE FROM blob_deletions WHERE content_hash = $1 AND generation = $2",
                &[&claim.hash.as_bytes().as_slice(), &claim.generation],
            )?;
            if finished > 0 {
                tx.execute(
                    "UPDATE blob_deletion_generations SET generation = generation + 1
                     WHERE bucket = $1",
                    &[&(self.buckets.of(&claim.hash) as i32)],
                )?;
            }
            Ok(())
        })
    }

    fn unfinished_blob_deletions(&self, before: UnixMillis) -> Result<Vec<ContentHash>> {
        let found = self.with_retry(|c| {
            Ok(c.query(
                "SELECT content_hash FROM blob_deletions WHERE in_progress AND updated_at < $1
                 ORDER BY content_hash",
                &[&before.0],
            )?)
        })?;
        found.iter().map(|r| hash_from(r.get(0))).collect()
    }

    fn data_key(&self, owner: KeyOwner) -> Result<Option<Vec<u8>>> {
        let key = owner.to_bytes();
        let row = self.with_retry(|c| {
            Ok(c.query_opt("SELECT wrapped FROM data_keys WHERE owner = $1", &[&key])?)
        })?;
        Ok(row.map(|r| r.get(0)))
    }

    fn keep_data_keys(&self, keys: &[(KeyOwner, Vec<u8>)]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter()
            .map(|(owner, wrapped)| self.keep_one_data_key(*owner, wrapped))
            .collect()
    }

    fn data_keys_page(
        &self,
        after: Option<KeyOwner>,
        limit: usize,
    ) -> Result<Vec<(KeyOwner, Vec<u8>)>> {
        crate::decode::data_keys_page(after, limit, |after, n| {
            let rows = self.with_retry(|c| {
                Ok(c.query(
                    "SELECT owner, wrapped FROM data_keys
                     WHERE $1::BYTEA IS NULL OR owner > $1
                     ORDER BY owner LIMIT $2",
                    &[&after, &n],
                )?)
            })?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn rewrap_data_key(&self, owner: KeyOwner, old: &[u8], new: &[u8]) -> Result<bool> {
        let key = owner.to_bytes();
        // A compare-and-swap: in a transaction, so that one whose answer was lost is looked
        // up, not run again (which would find the new value and say the key is gone).
        let changed = self.tx(|tx| {
            Ok(tx.execute(
                "UPDATE data_keys SET wrapped = $3 WHERE owner = $1 AND wrapped = $2",
                &[&key, &old, &new],
            )?)
        })?;
        Ok(changed > 0)
    }

    fn drop_unused_blob_keys(&self, older_than: UnixMillis) -> Result<u64> {
        // In transactions of up to KEYS_PER_DROP keys: each key goes with its generation's
        // bump, under its blob's lock (which `record` takes), so an asset recorded meanwhile
        // either keeps its key or records nothing.
        let range = blob_keys();
        // Below every blob key: the tag alone.
        let mut after = range.lo[..1].to_vec();
        let mut dropped = 0;
        loop {
            let found = self.with_retry(|c| {
                Ok(c.query(
                    "SELECT owner FROM data_keys
                     WHERE owner > $1 AND owner <= $2 AND length(owner) = $3 AND created_at < $4
                       AND NOT EXISTS (SELECT 1 FROM assets
                                       WHERE content_hash = substring(owner FROM 2))
                     ORDER BY owner LIMIT $5",
                    &[
                        &after,
                        &range.hi,
                        &(range.len as i32),
                        &older_than.0,
                        &KEYS_PER_DROP,
                    ],
                )?)
            })?;
            let owners: Vec<Vec<u8>> = found.iter().map(|r| r.get(0)).collect();
            let Some(last) = owners.last() else {
                break;
            };
            after = last.clone();
            let locks: BTreeSet<i64> = owners
                .iter()
                .map(|o| hash_lock(o.get(1..).unwrap_or_default()))
                .collect();
            let locks: Vec<i64> = locks.into_iter().collect();
            dropped += self.tx(|tx| {
                tx.execute(
                    "SELECT pg_advisory_xact_lock(k) FROM unnest($1::BIGINT[]) AS k ORDER BY k",
                    &[&locks],
                )?;
                // Checked again under the locks: an asset may have been recorded meanwhile.
                let gone = tx.query(
                    "DELETE FROM data_keys
                     WHERE owner = ANY($1) AND created_at < $2
                       AND NOT EXISTS (SELECT 1 FROM assets
                                       WHERE content_hash = substring(owner FROM 2))
                     RETURNING owner",
                    &[&owners, &older_than.0],
                )?;
                for row in &gone {
                    if let Some(KeyOwner::Blob(hash)) = KeyOwner::from_bytes(row.get(0)) {
                        bump_generation(tx, self.buckets.of(&hash))?;
                    }
                }
                Ok(gone.len() as u64)
            })?;
            if (owners.len() as i64) < KEYS_PER_DROP {
                break;
            }
        }
        Ok(dropped)
    }

    fn add_insights(&self, insights: &[Insight]) -> Result<()> {
        let assets: BTreeSet<AssetId> = insights.iter().map(|i| i.asset).collect();
        self.tx(|tx| {
            insert_insights(tx, insights)?;
            for asset in &assets {
                note_change(tx, asset.as_bytes())?;
            }
            Ok(())
        })
    }

    fn insights(&self, asset: AssetId) -> Result<Vec<Insight>> {
        let found = self.with_retry(|c| {
            Ok(c.query(
                &format!("SELECT {INSIGHT_COLUMNS} FROM insights WHERE asset_id = $1 ORDER BY id"),
                &[&asset.as_bytes().as_slice()],
            )?)
        })?;
        readable_insights(found.iter().map(rows::insight))
    }

    fn insights_of_kinds(&self, assets: &[AssetId], kinds: &[&str]) -> Result<Vec<Insight>> {
        if assets.is_empty() || kinds.is_empty() {
            return Ok(Vec::new());
        }
        let keys = ids(assets);
        let found = self.with_retry(|c| {
            Ok(c.query(
                &format!(
                    "SELECT {INSIGHT_COLUMNS} FROM insights
                     WHERE asset_id = ANY($1) AND kind = ANY($2) ORDER BY id"
                ),
                &[&keys, &kinds],
            )?)
        })?;
        readable_insights(found.iter().map(rows::insight))
    }

    fn changes(&self, after: i64, limit: usize) -> Result<Vec<Change>> {
        self.number_changes()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let found = self.with_retry(|c| {
            Ok(c.query(
                "SELECT seq, asset_id FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &limit],
            )?)
        })?;
        found
            .iter()
            .map(|r| {
                Ok(Change {
                    seq: r.get(0),
                    asset: id_from(r.get(1))?,
                })
            })
            .collect()
    }

    fn last_change(&self) -> Result<i64> {
        self.number_changes()?;
        self.with_retry(|c| {
            Ok(c.query_one("SELECT last FROM changes_numbered", &[])?
                .get(0))
        })
    }

    fn ack_changes(&self, consumer: &str, through: i64) -> Result<u64> {
        let now = UnixMillis::now().0;
        self.tx(|tx| {
            tx.execute(
                "INSERT INTO change_consumers (name, position, seen_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position,
                     seen_at = EXCLUDED.seen_at",
                &[&consumer, &through, &now],
            )?;
            tx.execute(
                "DELETE FROM change_consumers WHERE seen_at < $1",
                &[&(now - CONSUMER_EXPIRY_MS)],
            )?;
            let horizon: i64 = tx
                .query_one("SELECT MIN(position) FROM change_consumers", &[])?
                .get::<_, Option<i64>>(0)
                .unwrap_or(through);
            tx.execute(
                "UPDATE changes_numbered SET pruned = GREATEST(pruned, $1)",
                &[&horizon],
            )?;
            Ok(tx.execute(
                "DELETE FROM changes WHERE seq IS NOT NULL AND seq <= $1",
                &[&horizon],
            )?)
        })
    }

    fn pruned_through(&self) -> Result<i64> {
        self.with_retry(|c| {
            Ok(c.query_one("SELECT pruned FROM changes_numbered", &[])?
                .get(0))
        })
    }
}

impl PgCatalog {
    /// Numbers the changes committed so far, after waiting for the transactions writing
    /// changes now (see `0001_init.sql`).
    fn number_changes(&self) -> Result<()> {
        // Nothing to number (the usual case of a follower's poll): no lock, no write. A change
        // being written now is not visible yet, and will be numbered above what is.
        let pending: bool = self.with_retry(|c| {
            Ok(c.query_one(
                "SELECT EXISTS (SELECT 1 FROM changes WHERE seq IS NULL)",
                &[],
            )?
            .get(0))
        })?;
        if !pending {
            return Ok(());
        }
        let numbered = self.tx(|tx| {
            // A writer that stays open (stuck, or a long batch) must not hold every follower,
            // nor, queued behind this lock, every other writer: give up and number next time.
            tx.batch_execute("SET LOCAL lock_timeout = '2s'")?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHANGES_LOCK])?;
            let numbered = tx.execute(
                "WITH ready AS (SELECT id FROM changes WHERE seq IS NULL ORDER BY id),
                 numbered AS (SELECT id, nextval('changes_seq') AS seq FROM ready)
                 UPDATE changes SET seq = numbered.seq FROM numbered
                 WHERE changes.id = numbered.id",
                &[],
            )?;
            if numbered > 0 {
                tx.execute(
                    "UPDATE changes_numbered
                     SET last = GREATEST(last, (SELECT MAX(seq) FROM changes))",
                    &[],
                )?;
            }
            Ok(())
        });
        match numbered {
            Err(Error::Backend { source, .. })
                if source
                    .downcast_ref::<postgres::Error>()
                    .and_then(postgres::Error::code)
                    == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) =>
            {
                tracing::warn!("a writer of changes is taking long; numbering them next time");
                Ok(())
            }
            other => other,
        }
    }
}

fn still_used(tx: &mut Transaction<'_>, hash: &[u8]) -> Result<bool> {
    Ok(tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM assets WHERE content_hash = $1)",
            &[&hash],
        )?
        .get(0))
}

/// Inserts insights in the caller's transaction; every one must name an existing asset.
pub(super) fn insert_insights(tx: &mut Transaction<'_>, insights: &[Insight]) -> Result<()> {
    if insights.is_empty() {
        return Ok(());
    }
    let assets: BTreeSet<AssetId> = insights.iter().map(|i| i.asset).collect();
    let wanted: Vec<&[u8]> = assets.iter().map(|a| a.as_bytes().as_slice()).collect();
    let present: i64 = tx
        .query_one("SELECT COUNT(*) FROM assets WHERE id = ANY($1)", &[&wanted])?
        .get(0);
    if present as usize != wanted.len() {
        let found: BTreeSet<Vec<u8>> = tx
            .query("SELECT id FROM assets WHERE id = ANY($1)", &[&wanted])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let missing = assets
            .iter()
            .find(|a| !found.contains(a.as_bytes().as_slice()))
            .map_or_else(String::new, ToString::to_string);
        return Err(Error::NotFound {
            what: "asset",
            key: missing,
        });
    }
    let stmt = tx.prepare(
        "INSERT INTO insights (asset_id, analyzer, analyzer_version, model, model_version,
             kind, value, confidence, language, page, time_start_ms, time_end_ms,
             region_x, region_y, region_w, region_h, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )?;
    for i in insights {
        let (page, time, rect) = i.place.columns();
        let page = page.map(|p| i32::try_from(p).unwrap_or(i32::MAX));
        let (start, end) = (
            time.map(|t| t.0.min(i64::MAX as u64) as i64),
            time.map(|t| t.1.min(i64::MAX as u64) as i64),
        );
        let value = i.value.to_json_value().to_string();
        let params: [&(dyn ToSql + Sync); 17] = [
            &i.asset.as_bytes().as_slice(),
            &i.analyzer,
            &i.analyzer_version,
            &i.model,
            &i.model_version,
            &i.kind(),
            &value,
            &i.confidence,
            &i.language,
            &page,
            &start,
            &end,
            &rect.map(|r| r.x),
            &rect.map(|r| r.y),
            &rect.map(|r| r.w),
            &rect.map(|r| r.h),
            &i.created_at.0,
        ];
        tx.execute(&stmt, &params)?;
    }
    Ok(())
}

/// Records in the caller's transaction that an asset's searchable content changed.
pub(super) fn note_change(tx: &mut Transaction<'_>, asset: &[u8]) -> Result<()> {
    tx.execute("INSERT INTO changes (asset_id) VALUES ($1)", &[&asset])?;
    Ok(())
}

/// Deletes what the audit log keeps that names an asset, in the caller's transaction (before
/// its sources go): its private details, and those of the paths it was ingested from or of a
/// folder above one. Returns them as (entry, part).
fn erase_private_audit(tx: &mut Transaction<'_>, asset: &[u8]) -> Result<Vec<(i64, i32)>> {
    let mut erased: Vec<(i64, i32)> = tx
        .query(
            "DELETE FROM audit_private WHERE asset_id = $1 RETURNING seq, part",
            &[&asset],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let paths: Vec<String> = tx
        .query(
            "SELECT path FROM asset_sources WHERE asset_id = $1",
            &[&asset],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let folders: Vec<&str> = crate::access::path_and_folders(&paths)
        .into_iter()
        .collect();
    erased.extend(
        tx.query(
            "DELETE FROM audit_private WHERE asset_id IS NULL AND path = ANY($1)
             RETURNING seq, part",
            &[&folders],
        )?
        .iter()
        .map(|r| (r.get::<_, i64>(0), r.get::<_, i32>(1))),
    );
    Ok(erased)
}

/// The deletion generation of `hash`'s bucket, and whether the blob is being deleted.
fn generation_of(
    c: &mut impl postgres::GenericClient,
    hash: &ContentHash,
    bucket: i64,
) -> Result<BlobGeneration> {
    let row = c.query_one(
        "SELECT COALESCE((SELECT generation FROM blob_deletion_generations WHERE bucket = $1), 0),
                EXISTS (SELECT 1 FROM blob_deletions WHERE content_hash = $2 AND in_progress)",
        &[&(bucket as i32), &hash.as_bytes().as_slice()],
    )?;
    Ok(BlobGeneration {
        generation: row.get(0),
        deleting: row.get(1),
    })
}

/// Marks a blob as being deleted, with a new generation of its bucket, in the caller's
/// transaction (which holds the blob's lock). The generation is above any claim still open on
/// the blob, so a claim taken over is never current again.
fn claim_in(tx: &mut Transaction<'_>, hash: &[u8], buckets: &DeletionBuckets) -> Result<BlobClaim> {
    let hash = hash_from(hash)?;
    let key = hash.as_bytes().as_slice();
    let generation: i64 = tx
        .query_one(
            "INSERT INTO blob_deletion_generations AS g (bucket, generation)
             VALUES ($1, 1 + COALESCE((SELECT generation FROM blob_deletions
                                       WHERE content_hash = $2), 0))
             ON CONFLICT (bucket) DO UPDATE
             SET generation = 1 + GREATEST(g.generation,
                 COALESCE((SELECT generation FROM blob_deletions WHERE content_hash = $2), 0))
             RETURNING generation",
            &[&(buckets.of(&hash) as i32), &key],
        )?
        .get(0);
    tx.execute(
        "INSERT INTO blob_deletions (content_hash, generation, in_progress, updated_at)
         VALUES ($1, $2, TRUE, $3)
         ON CONFLICT (content_hash) DO UPDATE
         SET generation = $2, in_progress = TRUE, updated_at = $3",
        &[&key, &generation, &UnixMillis::now().0],
    )?;
    // The blob's data key goes with the claim, which moved the generation on: an ingest that
    // was handed the key before records nothing, and one after makes a new key.
    tx.execute(
        "DELETE FROM data_keys WHERE owner = $1",
        &[&KeyOwner::Blob(hash).to_bytes()],
    )?;
    Ok(BlobClaim { hash, generation })
}

/// Moves the generation of a bucket on, in the caller's transaction (which holds the locks of
/// the blobs concerned): an ingest that read the old one records nothing.
fn bump_generation(tx: &mut Transaction<'_>, bucket: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO blob_deletion_generations AS g (bucket, generation) VALUES ($1, 1)
         ON CONFLICT (bucket) DO UPDATE SET generation = g.generation + 1",
        &[&(bucket as i32)],
    )?;
    Ok(())
}

/// Records one file in the caller's transaction, which holds its blob's lock.
fn record_one(
    tx: &mut Transaction<'_>,
    item: &NewAsset,
    now: i64,
    buckets: &DeletionBuckets,
) -> Result<Recorded> {
    let hash = item.hash.as_bytes().as_slice();
    let now_seen = generation_of(tx, &item.hash, buckets.of(&item.hash))?;
    if now_seen.generation != item.generation_seen || now_seen.deleting {
        return Ok(Recorded::BlobRaced);
    }
    let metadata = serde_json::to_string(&item.metadata).map_err(|e| Error::InvalidInput {
        reason: format!("metadata does not serialize: {e}"),
    })?;
    let fresh = AssetId::new();
    // Another server recording the same content in the same collection at the same moment
    // waits here for it, then finds its row.
    let inserted = tx.query_opt(
        "INSERT INTO assets (id, collection_id, content_hash, size, kind, mime, ingested_at,
             captured_at, metadata)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (collection_id, content_hash) DO NOTHING
         RETURNING id",
        &[
            &fresh.as_bytes().as_slice(),
            &item.collection.0,
            &hash,
            &(item.size.min(i64::MAX as u64) as i64),
            &item.kind.as_str(),
            &item.mime,
            &now,
            &item.metadata.captured_at,
            &metadata,
        ],
    )?;
    let (id, created) = match inserted {
        Some(_) => (fresh, true),
        None => {
            let row = tx.query_one(
                "SELECT id FROM assets WHERE collection_id = $1 AND content_hash = $2",
                &[&item.collection.0, &hash],
            )?;
            (id_from(row.get(0))?, false)
        }
    };
    let key = id.as_bytes().as_slice();
    let source = &item.source;
    // A new asset has no sources yet.
    let known: bool = !created
        && tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM asset_sources WHERE asset_id = $1 AND path_bytes = $2)",
                &[&key, &source.path_bytes],
            )?
            .get(0);
    tx.execute(
        "INSERT INTO asset_sources (asset_id, collection_id, path_bytes, path, name, file_size,
             modified_ns, first_seen, last_seen)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
         ON CONFLICT (asset_id, path_bytes) DO UPDATE
         SET file_size = EXCLUDED.file_size, modified_ns = EXCLUDED.modified_ns,
             last_seen = EXCLUDED.last_seen",
        &[
            &key,
            &item.collection.0,
            &source.path_bytes,
            &source.path,
            &source.name,
            &(source.file_size.min(i64::MAX as u64) as i64),
            &source.modified_ns,
            &now,
        ],
    )?;
    for (analyzer, priority) in &item.jobs {
        tx.execute(
            "INSERT INTO jobs (asset_id, analyzer, state, priority, run_after, created_at,
                 updated_at)
             VALUES ($1, $2, 'queued', $3, $4, $4, $4)
             ON CONFLICT (asset_id, analyzer, part) DO NOTHING",
            &[&key, analyzer, priority, &now],
        )?;
    }
    Ok(match (created, known) {
        (true, _) => Recorded::Created(id),
        (false, false) => Recorded::Duplicate(id),
        (false, true) => Recorded::Known(id),
    })
}

impl PgCatalog {
    /// [`Catalog::keep_data_key`], one transaction.
    fn keep_one_data_key(&self, owner: KeyOwner, wrapped: &[u8]) -> Result<Option<Vec<u8>>> {
        // Most calls find the key made already: no write. An asset's key exists only while
        // the asset does (they are deleted together).
        if let Some(kept) = self.data_key(owner)? {
            return Ok(Some(kept));
        }
        let key = owner.to_bytes();
        let now = UnixMillis::now().0;
        self.tx(|tx| {
            if let KeyOwner::Asset(id) = owner {
                // Locks the asset's row against deletion until this commits; `delete_asset`
                // deletes the key after the row, so it waits and then finds the key. One
                // whose deletion committed first is not found here.
                let exists = tx.query_opt(
                    "SELECT 1 FROM assets WHERE id = $1 FOR KEY SHARE",
                    &[&id.as_bytes().as_slice()],
                )?;
                if exists.is_none() {
                    return Ok(None);
                }
            }
            // Inserts, or reads the key another process committed meanwhile (a plain DO
            // NOTHING would leave nothing to read if it was deleted in between).
            let kept = tx.query_one(
                "INSERT INTO data_keys AS k (owner, wrapped, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (owner) DO UPDATE SET wrapped = k.wrapped
                 RETURNING wrapped",
                &[&key, &wrapped, &now],
            )?;
            Ok(Some(kept.get(0)))
        })
    }
}
