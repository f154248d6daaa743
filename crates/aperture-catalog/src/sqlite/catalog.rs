//! The [`Catalog`] of [`SqliteCatalog`]: collections, assets, sources, insights, blob
//! deletion claims and the change feed.

use std::collections::HashMap;

use aperture_core::{AssetId, ContentHash, Insight, KeyOwner, UnixMillis};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::rows::{self, asset_from_row, blob, insight_from_row};
use super::{IN_CHUNK, SqliteCatalog};
use crate::CONSUMER_EXPIRY_MS;
use crate::decode::{
    blob_keys, hash_from, id_from, prefix_bounds, readable_insights, validate_collection_name,
};
use crate::types::DeletionBuckets;
use crate::*;

const ASSET_COLUMNS: &str = "a.id, c.name, a.content_hash, a.size, a.kind, a.mime, a.ingested_at,
    a.captured_at, a.metadata,
    COALESCE((SELECT s.name FROM asset_sources s WHERE s.asset_id = a.id
              ORDER BY s.last_seen DESC LIMIT 1), '')";

/// Whether an asset already has a source at a path.
const SOURCE_EXISTS: &str =
    "SELECT EXISTS (SELECT 1 FROM asset_sources WHERE asset_id = ?1 AND path_bytes = ?2)";

impl Catalog for SqliteCatalog {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn ensure_collection(&self, name: &str) -> Result<Collection> {
        validate_collection_name(name)?;
        let conn = self.write();
        conn.execute(
            "INSERT INTO collections (name, created_at) VALUES (?1, ?2)
             ON CONFLICT (name) DO NOTHING",
            params![name, UnixMillis::now().0],
        )?;
        drop(conn);
        self.collection(name)
    }

    fn collection(&self, name: &str) -> Result<Collection> {
        self.read()
            .query_row(
                "SELECT id, name, created_at, retention_secs, legal_hold, read_plates FROM collections WHERE name = ?1",
                [name],
                rows::collection_from_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound {
                what: "collection",
                key: name.to_owned(),
            })
    }

    fn collections(&self) -> Result<Vec<Collection>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT id, name, created_at, retention_secs, legal_hold, read_plates FROM collections ORDER BY name",
        )?;
        let rows = stmt.query_map([], rows::collection_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn change_collection(&self, name: &str, change: &PolicyChange) -> Result<Collection> {
        let changed = self.write().execute(
            "UPDATE collections SET
                 retention_secs = CASE WHEN ?2 THEN ?3 ELSE retention_secs END,
                 legal_hold = COALESCE(?4, legal_hold),
                 read_plates = COALESCE(?5, read_plates)
             WHERE name = ?1",
            params![
                name,
                change.retention_secs.is_some(),
                change.retention_secs.flatten().map(secs_i64),
                change.legal_hold,
                change.read_plates
            ],
        )?;
        if changed == 0 {
            return Err(Error::NotFound {
                what: "collection",
                key: name.to_owned(),
            });
        }
        self.collection(name)
    }

    fn expired_assets(&self, now: UnixMillis, limit: usize) -> Result<Vec<AssetId>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT a.id FROM collections c
             JOIN assets a ON a.collection_id = c.id
             WHERE c.retention_secs IS NOT NULL AND c.legal_hold = 0
               AND a.ingested_at <= ?1 - c.retention_secs * 1000
             LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now.0, limit as i64], |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|r| id_from(&r?)).collect()
    }

    fn known_source(&self, collection: CollectionId, path: &[u8]) -> Result<Option<KnownSource>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT asset_id, file_size, modified_ns FROM asset_sources
             WHERE collection_id = ?1 AND path_bytes = ?2
             ORDER BY last_seen DESC, asset_id DESC LIMIT 1",
        )?;
        let found = stmt
            .query_row(params![collection.0, path], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                ))
            })
            .optional()?;
        found
            .map(|(id, size, modified_ns)| {
                Ok(KnownSource {
                    asset: id_from(&id)?,
                    file_size: size as u64,
                    modified_ns,
                })
            })
            .transpose()
    }

    fn known_sources(
        &self,
        collection: CollectionId,
        paths: &[&[u8]],
    ) -> Result<Vec<Option<KnownSource>>> {
        let conn = self.read();
        let mut found = HashMap::with_capacity(paths.len());
        for chunk in paths.chunks(IN_CHUNK) {
            // Lists padded to a power of two (repeating a path), so that a few statements
            // serve every chunk length in the statement cache.
            let width = chunk.len().next_power_of_two().min(IN_CHUNK);
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT path_bytes, asset_id, file_size, modified_ns FROM (
                     SELECT path_bytes, asset_id, file_size, modified_ns,
                            row_number() OVER (PARTITION BY path_bytes
                                               ORDER BY last_seen DESC, asset_id DESC) AS rank
                     FROM asset_sources WHERE collection_id = ?1 AND path_bytes IN ({}))
                 WHERE rank = 1",
                vec!["?"; width].join(", ")
            ))?;
            let padded = chunk.iter().chain(std::iter::repeat(&chunk[0])).take(width);
            let params = std::iter::once(&collection.0 as &dyn rusqlite::ToSql)
                .chain(padded.map(|p| p as &dyn rusqlite::ToSql));
            let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
            while let Some(row) = rows.next()? {
                let known = KnownSource {
                    asset: id_from(&row.get::<_, Vec<u8>>(1)?)?,
                    file_size: row.get::<_, i64>(2)? as u64,
                    modified_ns: row.get(3)?,
                };
                found.insert(row.get::<_, Vec<u8>>(0)?, known);
            }
        }
        Ok(paths.iter().map(|path| found.get(*path).cloned()).collect())
    }

    fn blob_generation(&self, hash: ContentHash) -> Result<BlobGeneration> {
        generation_of(&self.read(), &hash, self.buckets.of(&hash))
    }

    /// Four times the default: small-file ingest syncs a quarter as often (the ingest bench).
    /// A batch of 1,024 rows holds the write lock about 20 ms (18 µs a row by `perf` on the
    /// 2-core machine), and the worker's and server's writes wait that long behind it.
    fn record_batch_limit(&self) -> usize {
        1024
    }

    fn record(&self, batch: &[NewAsset]) -> Result<Vec<Recorded>> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = UnixMillis::now().0;
        let mut out = Vec::with_capacity(batch.len());
        for item in batch {
            out.push(record_one(&tx, item, now, &self.buckets)?);
        }
        tx.commit()?;
        Ok(out)
    }

    fn assets(&self, ids: &[AssetId]) -> Result<Vec<Asset>> {
        let conn = self.read();
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IN_CHUNK) {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {ASSET_COLUMNS} FROM assets a JOIN collections c ON c.id = a.collection_id
                 WHERE a.id IN ({})",
                vec!["?"; chunk.len()].join(", ")
            ))?;
            let params = chunk.iter().map(|id| id.as_bytes().to_vec());
            let rows = stmt.query_map(rusqlite::params_from_iter(params), asset_from_row)?;
            for row in rows {
                out.push(row??);
            }
        }
        Ok(out)
    }

    fn asset(&self, id: AssetId) -> Result<Asset> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ASSET_COLUMNS} FROM assets a JOIN collections c ON c.id = a.collection_id
             WHERE a.id = ?1"
        ))?;
        let row = stmt
            .query_row([id.as_bytes().as_slice()], asset_from_row)
            .optional()?;
        row.ok_or_else(|| Error::NotFound {
            what: "asset",
            key: id.to_string(),
        })?
    }

    fn assets_with_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<AssetId>> {
        let (lo, hi) = prefix_bounds(prefix)?;
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT id FROM assets WHERE id >= ?1 AND id <= ?2 ORDER BY id LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![lo, hi, limit as i64], |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|r| id_from(&r?)).collect()
    }

    fn list_assets(&self, query: &AssetQuery) -> Result<Vec<Asset>> {
        if query.collections.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        // One placeholder per collection: few statements, each cached by its text.
        let in_collections = match &query.collections {
            Some(ids) => format!(
                "a.collection_id IN ({})",
                (0..ids.len())
                    .map(|n| format!("?{}", n + 4))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            None => "1".to_owned(),
        };
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ASSET_COLUMNS} FROM assets a JOIN collections c ON c.id = a.collection_id
             WHERE {in_collections}
               AND (?1 IS NULL OR a.kind = ?1)
               AND (?2 IS NULL OR a.id > ?2)
             ORDER BY a.id LIMIT ?3"
        ))?;
        let mut values: Vec<rusqlite::types::Value> = vec![
            query.kind.map(|k| k.as_str().to_owned()).into(),
            query.after.map(|a| a.as_bytes().to_vec()).into(),
            (query.limit as i64).into(),
        ];
        values.extend(query.collections.iter().flatten().map(|c| c.0.into()));
        let rows = stmt.query_map(rusqlite::params_from_iter(values), asset_from_row)?;
        rows.map(|r| r?).collect()
    }

    fn sources(&self, id: AssetId) -> Result<Vec<Source>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT path, name, file_size, modified_ns, first_seen, last_seen
             FROM asset_sources WHERE asset_id = ?1 ORDER BY first_seen, path",
        )?;
        let rows = stmt.query_map([id.as_bytes().as_slice()], |r| {
            Ok(Source {
                path: r.get(0)?,
                name: r.get(1)?,
                file_size: r.get::<_, i64>(2)? as u64,
                modified_ns: r.get(3)?,
                first_seen: UnixMillis(r.get(4)?),
                last_seen: UnixMillis(r.get(5)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn asset_count(&self) -> Result<u64> {
        let conn = self.read();
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM assets", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    fn stats(&self) -> Result<Stats> {
        let conn = self.read();
        let mut stats = Stats {
            collections: conn.query_row("SELECT COUNT(*) FROM collections", [], |r| {
                r.get::<_, i64>(0)
            })? as u64,
            ..Stats::default()
        };
        let mut stmt = conn.prepare_cached(
            "SELECT kind, COUNT(*), COALESCE(SUM(size), 0) FROM assets GROUP BY kind",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (kind, assets, bytes) = row?;
            let kind = kind.parse().map_err(|e| Error::Corrupt {
                reason: format!("{e}"),
            })?;
            stats.assets += assets as u64;
            stats.by_kind.insert(
                kind,
                KindStats {
                    assets: assets as u64,
                    bytes: bytes as u64,
                },
            );
        }
        let (sources, logical): (i64, i64) = conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(a.size), 0)
             FROM asset_sources s JOIN assets a ON a.id = s.asset_id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let (blobs, stored): (i64, i64) = conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(size), 0)
             FROM (SELECT content_hash, MAX(size) AS size FROM assets GROUP BY content_hash)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        stats.sources = sources as u64;
        stats.logical_bytes = logical as u64;
        stats.distinct_blobs = blobs as u64;
        stats.stored_bytes = stored as u64;
        Ok(stats)
    }

    fn referenced_blobs(
        &self,
        after: Option<ContentHash>,
        limit: usize,
    ) -> Result<Vec<(ContentHash, u64)>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT content_hash, MAX(size) FROM assets
             WHERE (?1 IS NULL OR content_hash > ?1)
             GROUP BY content_hash ORDER BY content_hash LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            params![after.map(|h| h.as_bytes().to_vec()), limit as i64],
            |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)),
        )?;
        rows.map(|r| {
            let (hash, size) = r?;
            Ok((hash_from(&hash)?, size as u64))
        })
        .collect()
    }

    fn delete_asset(&self, id: AssetId) -> Result<Deletion> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let key = id.as_bytes().as_slice();
        let hash: Option<Vec<u8>> = tx
            .query_row(
                "SELECT content_hash FROM assets WHERE id = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()?;
        let hash = hash.ok_or_else(|| Error::NotFound {
            what: "asset",
            key: id.to_string(),
        })?;
        let held: Option<String> = tx
            .query_row(
                "SELECT c.name FROM assets a JOIN collections c ON c.id = a.collection_id
                 WHERE a.id = ?1 AND c.legal_hold = 1",
                [key],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(collection) = held {
            return Err(Error::LegalHold { collection });
        }
        let audit_details = erase_private_audit(&tx, key)?;
        // Cascades remove sources, insights and jobs.
        tx.execute("DELETE FROM assets WHERE id = ?1", [key])?;
        tx.execute(
            "DELETE FROM data_keys WHERE owner = ?1",
            [KeyOwner::Asset(id).to_bytes()],
        )?;
        let still_used: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM assets WHERE content_hash = ?1)",
            [&hash],
            |r| r.get(0),
        )?;
        let claim = if still_used {
            None
        } else {
            Some(claim_in(&tx, &hash, &self.buckets)?)
        };
        tx.commit()?;
        Ok(Deletion {
            asset: id,
            hash: hash_from(&hash)?,
            claim,
            audit_details,
        })
    }

    fn scrub(&self) -> Result<bool> {
        super::checkpoint(&self.write())
    }

    fn key_deletion_buckets(&self, key: [u8; 32]) {
        self.buckets.key(key);
    }

    fn claim_blob_deletion(&self, hash: ContentHash) -> Result<Option<BlobClaim>> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let used: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM assets WHERE content_hash = ?1)",
            [blob(&hash)],
            |r| r.get(0),
        )?;
        let claim = if used {
            None
        } else {
            Some(claim_in(&tx, blob(&hash), &self.buckets)?)
        };
        tx.commit()?;
        Ok(claim)
    }

    fn still_claimed(&self, claim: BlobClaim) -> Result<bool> {
        Ok(self.read().query_row(
            "SELECT EXISTS (SELECT 1 FROM blob_deletions
                 WHERE content_hash = ?1 AND generation = ?2 AND in_progress = 1)",
            params![blob(&claim.hash), claim.generation],
            |r| r.get(0),
        )?)
    }

    fn blob_deleted(&self, claim: BlobClaim) -> Result<()> {
        // The row goes (no trace of the hash is kept) and the bucket's generation moves on: an
        // ingest that saw the blob while it was being deleted must not record against the
        // generation it read.
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let finished = tx.execute(
            "DELETE FROM blob_deletions WHERE content_hash = ?1 AND generation = ?2",
            params![blob(&claim.hash), claim.generation],
        )?;
        if finished > 0 {
            tx.execute(
                "UPDATE blob_deletion_generations SET generation = generation + 1
                 WHERE bucket = ?1",
                [self.buckets.of(&claim.hash)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn unfinished_blob_deletions(&self, before: UnixMillis) -> Result<Vec<ContentHash>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT content_hash FROM blob_deletions WHERE in_progress = 1 AND updated_at < ?1
             ORDER BY content_hash",
        )?;
        let rows = stmt.query_map([before.0], |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|r| hash_from(&r?)).collect()
    }

    fn data_key(&self, owner: KeyOwner) -> Result<Option<Vec<u8>>> {
        Ok(self
            .read()
            .prepare_cached("SELECT wrapped FROM data_keys WHERE owner = ?1")?
            .query_row([owner.to_bytes()], |r| r.get(0))
            .optional()?)
    }

    fn keep_data_keys(&self, keys: &[(KeyOwner, Vec<u8>)]) -> Result<Vec<Option<Vec<u8>>>> {
        // Most calls find the key made already: no write. An asset's key exists only while
        // the asset does (they are deleted together).
        let mut kept: Vec<Option<Vec<u8>>> = keys
            .iter()
            .map(|(owner, _)| self.data_key(*owner))
            .collect::<Result<_>>()?;
        if kept.iter().all(Option::is_some) {
            return Ok(kept);
        }
        let mut conn = self.write();
        // One writer at a time: no erasure comes between the check and the insert. One
        // transaction (one sync) for the batch.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = UnixMillis::now().0;
        for ((owner, wrapped), kept) in keys.iter().zip(kept.iter_mut()) {
            if kept.is_some() {
                continue;
            }
            if let KeyOwner::Asset(id) = owner {
                let exists: bool = tx
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM assets WHERE id = ?1)")?
                    .query_row([id.as_bytes().as_slice()], |r| r.get(0))?;
                if !exists {
                    continue;
                }
            }
            let key = owner.to_bytes();
            tx.prepare_cached(
                "INSERT INTO data_keys (owner, wrapped, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (owner) DO NOTHING",
            )?
            .execute(params![key, wrapped, now])?;
            *kept = Some(
                tx.prepare_cached("SELECT wrapped FROM data_keys WHERE owner = ?1")?
                    .query_row([&key], |r| r.get(0))?,
            );
        }
        tx.commit()?;
        Ok(kept)
    }

    fn data_keys_page(
        &self,
        after: Option<KeyOwner>,
        limit: usize,
    ) -> Result<Vec<(KeyOwner, Vec<u8>)>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT owner, wrapped FROM data_keys WHERE ?1 IS NULL OR owner > ?1
             ORDER BY owner LIMIT ?2",
        )?;
        crate::decode::data_keys_page(after, limit, |after, n| {
            let rows = stmt.query_map(params![after, n], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn rewrap_data_key(&self, owner: KeyOwner, old: &[u8], new: &[u8]) -> Result<bool> {
        let changed = self.write().execute(
            "UPDATE data_keys SET wrapped = ?3 WHERE owner = ?1 AND wrapped = ?2",
            params![owner.to_bytes(), old, new],
        )?;
        Ok(changed > 0)
    }

    fn drop_unused_blob_keys(&self, older_than: UnixMillis) -> Result<u64> {
        let range = blob_keys();
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let dropped: Vec<Vec<u8>> = tx
            .prepare_cached(
                "DELETE FROM data_keys
                 WHERE owner BETWEEN ?1 AND ?2 AND length(owner) = ?3 AND created_at < ?4
                   AND NOT EXISTS (SELECT 1 FROM assets WHERE content_hash = substr(owner, 2))
                 RETURNING owner",
            )?
            .query_map(params![range.lo, range.hi, range.len, older_than.0], |r| {
                r.get(0)
            })?
            .collect::<rusqlite::Result<_>>()?;
        // As a claim does: an ingest handed one of these keys meanwhile records nothing.
        for owner in &dropped {
            if let Some(KeyOwner::Blob(hash)) = KeyOwner::from_bytes(owner) {
                tx.prepare_cached(
                    "INSERT INTO blob_deletion_generations (bucket, generation) VALUES (?1, 1)
                     ON CONFLICT (bucket) DO UPDATE SET generation = generation + 1",
                )?
                .execute([self.buckets.of(&hash)])?;
            }
        }
        tx.commit()?;
        Ok(dropped.len() as u64)
    }

    fn add_insights(&self, insights: &[Insight]) -> Result<()> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        insert_insights(&tx, insights)?;
        let assets: std::collections::BTreeSet<AssetId> =
            insights.iter().map(|i| i.asset).collect();
        for asset in assets {
            note_change(&tx, asset.as_bytes())?;
        }
        tx.commit()?;
        Ok(())
    }

    fn changes(&self, after: i64, limit: usize) -> Result<Vec<Change>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, asset_id FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        rows.map(|r| {
            let (seq, asset) = r?;
            Ok(Change {
                seq,
                asset: id_from(&asset)?,
            })
        })
        .collect()
    }

    fn last_change(&self) -> Result<i64> {
        Ok(self.read().query_row(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)",
            [],
            |r| r.get(0),
        )?)
    }

    fn ack_changes(&self, consumer: &str, through: i64) -> Result<u64> {
        let now = UnixMillis::now().0;
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO change_consumers (name, position, seen_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET position = excluded.position,
                 seen_at = excluded.seen_at",
            params![consumer, through, now],
        )?;
        tx.execute(
            "DELETE FROM change_consumers WHERE seen_at < ?1",
            [now - CONSUMER_EXPIRY_MS],
        )?;
        let horizon: i64 = tx.query_row(
            "SELECT COALESCE(MIN(position), ?1) FROM change_consumers",
            [through],
            |r| r.get(0),
        )?;
        tx.execute(
            "UPDATE changes_pruned SET pruned = MAX(pruned, ?1)",
            [horizon],
        )?;
        let pruned = tx.execute("DELETE FROM changes WHERE seq <= ?1", [horizon])?;
        tx.commit()?;
        Ok(pruned as u64)
    }

    fn pruned_through(&self) -> Result<i64> {
        Ok(self
            .read()
            .query_row("SELECT pruned FROM changes_pruned", [], |r| r.get(0))?)
    }

    fn insights(&self, asset: AssetId) -> Result<Vec<Insight>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT asset_id, analyzer, analyzer_version, model, model_version, kind, value,
                 confidence, language, page, time_start_ms, time_end_ms,
                 region_x, region_y, region_w, region_h, created_at
             FROM insights WHERE asset_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([asset.as_bytes().as_slice()], insight_from_row)?;
        readable_insights(rows.map(|r| r.map_err(Error::from).and_then(|i| i)))
    }

    fn insights_of_kinds(&self, assets: &[AssetId], kinds: &[&str]) -> Result<Vec<Insight>> {
        if assets.is_empty() || kinds.is_empty() {
            return Ok(Vec::new());
        }
        let conn = self.read();
        let mut out = Vec::new();
        // Bounded statements: SQLite limits the number of parameters of one.
        for chunk in assets.chunks(IN_CHUNK) {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT asset_id, analyzer, analyzer_version, model, model_version, kind, value,
                     confidence, language, page, time_start_ms, time_end_ms,
                     region_x, region_y, region_w, region_h, created_at
                 FROM insights WHERE asset_id IN ({}) AND kind IN ({}) ORDER BY id",
                vec!["?"; chunk.len()].join(", "),
                vec!["?"; kinds.len()].join(", ")
            ))?;
            let params = chunk
                .iter()
                .map(|id| rusqlite::types::Value::Blob(id.as_bytes().to_vec()))
                .chain(
                    kinds
                        .iter()
                        .map(|k| rusqlite::types::Value::Text((*k).to_owned())),
                );
            let rows = stmt.query_map(rusqlite::params_from_iter(params), insight_from_row)?;
            out.extend(readable_insights(
                rows.map(|r| r.map_err(Error::from).and_then(|i| i)),
            )?);
        }
        Ok(out)
    }
}

/// Inserts insights in the caller's transaction; every one must name an existing asset.
pub(super) fn insert_insights(tx: &rusqlite::Connection, insights: &[Insight]) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO insights (asset_id, analyzer, analyzer_version, model, model_version,
                 kind, value, confidence, language, page, time_start_ms, time_end_ms,
                 region_x, region_y, region_w, region_h, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?;
    for i in insights {
        let (page, time, rect) = i.place.columns();
        let exists: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM assets WHERE id = ?1)")?
            .query_row([i.asset.as_bytes().as_slice()], |r| r.get(0))?;
        if !exists {
            return Err(Error::NotFound {
                what: "asset",
                key: i.asset.to_string(),
            });
        }
        stmt.execute(params![
            i.asset.as_bytes().as_slice(),
            i.analyzer,
            i.analyzer_version,
            i.model,
            i.model_version,
            i.kind(),
            i.value.to_json_value().to_string(),
            i.confidence,
            i.language,
            page,
            time.map(|t| t.0 as i64),
            time.map(|t| t.1 as i64),
            rect.map(|r| r.x),
            rect.map(|r| r.y),
            rect.map(|r| r.w),
            rect.map(|r| r.h),
            i.created_at.0,
        ])?;
    }
    Ok(())
}

/// Records in the caller's transaction that an asset's searchable content changed.
pub(super) fn note_change(tx: &rusqlite::Connection, asset: &[u8]) -> Result<()> {
    tx.prepare_cached("INSERT INTO changes (asset_id) VALUES (?1)")?
        .execute([asset])?;
    Ok(())
}

/// Seconds as SQLite stores them (a retention past 292 billion years is for ever enough).
fn secs_i64(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX / 1000)
}

/// Deletes what the audit log keeps that names an asset, in the caller's transaction (before
/// its sources go): its private details, and those of the paths it was ingested from or of a
/// folder above one. Returns them as (entry, part).
fn erase_private_audit(tx: &rusqlite::Transaction<'_>, asset: &[u8]) -> Result<Vec<(i64, i32)>> {
    let mut erased = Vec::new();
    let mut by_asset =
        tx.prepare_cached("DELETE FROM audit_private WHERE asset_id = ?1 RETURNING seq, part")?;
    let mut rows = by_asset.query([asset])?;
    while let Some(r) = rows.next()? {
        erased.push((r.get(0)?, r.get(1)?));
    }
    let paths: Vec<String> = tx
        .prepare_cached("SELECT path FROM asset_sources WHERE asset_id = ?1")?
        .query_map([asset], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut by_path = tx.prepare_cached(
        "DELETE FROM audit_private WHERE asset_id IS NULL AND path = ?1 RETURNING seq, part",
    )?;
    for path in crate::access::path_and_folders(&paths) {
        let mut rows = by_path.query([path])?;
        while let Some(r) = rows.next()? {
            erased.push((r.get(0)?, r.get(1)?));
        }
    }
    Ok(erased)
}

/// The deletion generation of `hash`'s bucket, and whether the blob is being deleted.
fn generation_of(
    conn: &rusqlite::Connection,
    hash: &ContentHash,
    bucket: i64,
) -> Result<BlobGeneration> {
    let (generation, deleting) = conn
        .prepare_cached(
            "SELECT COALESCE((SELECT generation FROM blob_deletion_generations WHERE bucket = ?1), 0),
                    EXISTS (SELECT 1 FROM blob_deletions
                            WHERE content_hash = ?2 AND in_progress = 1)",
        )?
        .query_row(params![bucket, blob(hash)], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(BlobGeneration {
        generation,
        deleting,
    })
}

/// Marks a blob as being deleted, with a new generation of its bucket, in the caller's
/// transaction. The generation is above any claim still open on the blob (one left by a
/// catalog from before buckets), so a claim taken over is never current again.
fn claim_in(
    tx: &rusqlite::Transaction<'_>,
    hash: &[u8],
    buckets: &DeletionBuckets,
) -> Result<BlobClaim> {
    let hash = hash_from(hash)?;
    let now = UnixMillis::now().0;
    let generation: i64 = tx.query_row(
        "INSERT INTO blob_deletion_generations (bucket, generation)
         VALUES (?1, 1 + COALESCE((SELECT generation FROM blob_deletions WHERE content_hash = ?2), 0))
         ON CONFLICT (bucket) DO UPDATE
         SET generation = 1 + MAX(generation,
             COALESCE((SELECT generation FROM blob_deletions WHERE content_hash = ?2), 0))
         RETURNING generation",
        params![buckets.of(&hash), blob(&hash)],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO blob_deletions (content_hash, generation, in_progress, updated_at)
         VALUES (?1, ?2, 1, ?3)
         ON CONFLICT (content_hash) DO UPDATE
         SET generation = ?2, in_progress = 1, updated_at = ?3",
        params![blob(&hash), generation, now],
    )?;
    // The blob's data key goes with the claim, which moved the generation on: an ingest that
    // was handed the key before records nothing, and one after makes a new key.
    tx.prepare_cached("DELETE FROM data_keys WHERE owner = ?1")?
        .execute([KeyOwner::Blob(hash).to_bytes()])?;
    Ok(BlobClaim { hash, generation })
}

fn record_one(
    tx: &rusqlite::Transaction<'_>,
    item: &NewAsset,
    now: i64,
    buckets: &DeletionBuckets,
) -> Result<Recorded> {
    let hash = blob(&item.hash);
    let now_seen = generation_of(tx, &item.hash, buckets.of(&item.hash))?;
    if now_seen.generation != item.generation_seen || now_seen.deleting {
        return Ok(Recorded::BlobRaced);
    }
    let existing: Option<Vec<u8>> = tx
        .prepare_cached("SELECT id FROM assets WHERE collection_id = ?1 AND content_hash = ?2")?
        .query_row(params![item.collection.0, hash], |r| r.get(0))
        .optional()?;
    let (id, created) = match existing {
        Some(id) => (id_from(&id)?, false),
        None => {
            let id = AssetId::new();
            let metadata =
                serde_json::to_string(&item.metadata).map_err(|e| Error::InvalidInput {
                    reason: format!("metadata does not serialize: {e}"),
                })?;
            tx.prepare_cached(
                "INSERT INTO assets (id, collection_id, content_hash, size, kind, mime,
                     ingested_at, captured_at, metadata)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                id.as_bytes().as_slice(),
                item.collection.0,
                hash,
                item.size as i64,
                item.kind.as_str(),
                item.mime,
                now,
                item.metadata.captured_at,
                metadata,
            ])?;
            (id, true)
        }
    };
    let source = &item.source;
    // A new asset has no sources yet.
    let known: bool = !created
        && tx
            .prepare_cached(SOURCE_EXISTS)?
            .query_row(params![id.as_bytes().as_slice(), source.path_bytes], |r| {
                r.get(0)
            })?;
    tx.prepare_cached(
        "INSERT INTO asset_sources (asset_id, collection_id, path_bytes, path, name, file_size,
             modified_ns, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
         ON CONFLICT (asset_id, path_bytes) DO UPDATE
         SET file_size = excluded.file_size, modified_ns = excluded.modified_ns,
             last_seen = excluded.last_seen",
    )?
    .execute(params![
        id.as_bytes().as_slice(),
        item.collection.0,
        source.path_bytes,
        source.path,
        source.name,
        source.file_size as i64,
        source.modified_ns,
        now,
    ])?;
    if !item.jobs.is_empty() {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO jobs (asset_id, analyzer, state, priority, run_after, created_at,
                 updated_at)
             VALUES (?1, ?2, 'queued', ?3, ?4, ?4, ?4)
             ON CONFLICT (asset_id, analyzer, part) DO NOTHING",
        )?;
        for (analyzer, priority) in &item.jobs {
            stmt.execute(params![id.as_bytes().as_slice(), analyzer, priority, now])?;
        }
    }
    Ok(match (created, known) {
        (true, _) => Recorded::Created(id),
        (false, false) => Recorded::Duplicate(id),
        (false, true) => Recorded::Known(id),
    })
}
