//! The catalog: what Aperture knows about every stored file, and its job queue.
//!
//! One trait, [`Catalog`], with SQLite as the embedded default and PostgreSQL ([`PgCatalog`])
//! for many processes on many machines. Every implementation must pass
//! the suite in `conformance` (feature `conformance`), run with one line by `catalog_conformance!`.
//!
//! ```
//! use aperture_catalog::{Catalog, SqliteCatalog};
//!
//! let catalog = SqliteCatalog::open_in_memory().unwrap();
//! let photos = catalog.ensure_collection("photos").unwrap();
//! assert_eq!(catalog.collection("photos").unwrap(), photos);
//! assert_eq!(catalog.stats().unwrap().assets, 0);
//! ```

pub mod access;
#[cfg(feature = "conformance")]
pub mod conformance;
mod decode;
mod error;
pub mod jobs;
mod pg;
mod sqlite;
mod types;

pub use access::{Access, AuditEntry, NewAuditEntry, NewToken, Scope, Token};
pub use error::{Error, Result};
pub use jobs::{Job, JobQueue, JobState, MAX_PARTS, NewJob, Outcome, Part, PartResult, Stretch};
pub use pg::{Migration, PgCatalog, Postgres, close_apart};
pub use sqlite::SqliteCatalog;
pub use types::*;

use aperture_core::{AssetId, ContentHash, Insight, KeyOwner, UnixMillis};

/// A follower of the change feed not heard from for this long no longer holds back pruning;
/// when it comes back it finds its position pruned and rebuilds.
pub(crate) const CONSUMER_EXPIRY_MS: i64 = 7 * 24 * 3600 * 1000;

/// A catalog with its job queue, tokens and audit log: what a worker or a server needs.
pub trait Backend: Catalog + JobQueue + Access {}

impl<T: Catalog + JobQueue + Access> Backend for T {}

/// The catalog's operations. Implementations are synchronous and thread-safe; async callers run
/// them on a blocking pool. Write operations are each one transaction.
pub trait Catalog: Send + Sync + std::fmt::Debug {
    /// `sqlite`, `postgres`, ...
    fn backend(&self) -> &'static str;

    /// The collection with this name, created if missing. A name is 1–128 letters, digits,
    /// `-`, `_`, `.` or inner spaces; others are [`Error::InvalidInput`].
    fn ensure_collection(&self, name: &str) -> Result<Collection>;
    /// The collection with this name; [`Error::NotFound`] when there is none.
    fn collection(&self, name: &str) -> Result<Collection>;
    /// Every collection, by name.
    fn collections(&self) -> Result<Vec<Collection>>;
    /// Changes a collection's retention, legal hold or plate reading in one statement (what
    /// is not named stays as it is, whatever another process changed meanwhile); returns the
    /// collection as it is now.
    fn change_collection(&self, name: &str, change: &PolicyChange) -> Result<Collection>;
    /// Up to `limit` assets whose collection's retention has run out by `now` (counted from
    /// their ingest into it), oldest first, in collections not under legal hold.
    fn expired_assets(&self, now: UnixMillis, limit: usize) -> Result<Vec<AssetId>>;

    /// The newest source recorded at this exact path in a collection, to skip unchanged files:
    /// the one last seen latest, and of those the one with the highest asset id (by bytes).
    fn known_source(&self, collection: CollectionId, path: &[u8]) -> Result<Option<KnownSource>>;

    /// [`Catalog::known_source`] for many paths at once: one answer per path, in order.
    /// Ingest asks for a chunk of small files together.
    fn known_sources(
        &self,
        collection: CollectionId,
        paths: &[&[u8]],
    ) -> Result<Vec<Option<KnownSource>>> {
        paths
            .iter()
            .map(|path| self.known_source(collection, path))
            .collect()
    }

    /// The deletion generation of a blob; read it before publishing the blob, and pass it in
    /// [`NewAsset::generation_seen`].
    fn blob_generation(&self, hash: ContentHash) -> Result<BlobGeneration>;

    /// Records a batch of ingested files in one transaction. One outcome per item, in order.
    /// An item whose blob was deleted by a concurrent `delete_asset` after its generation was
    /// read is [`Recorded::BlobRaced`] and was not recorded: publish the blob again and retry.
    fn record(&self, batch: &[NewAsset]) -> Result<Vec<Recorded>>;

    /// How many items a [`Catalog::record`] batch should hold at most. Ingest commits this
    /// many files per transaction, after one sync of the blob store: larger batches sync
    /// less often, and hold the catalog's write lock (or, on PostgreSQL, one advisory lock per
    /// content hash, from a lock table every session shares) longer.
    fn record_batch_limit(&self) -> usize {
        256
    }

    /// The asset with this id; [`Error::NotFound`] when there is none.
    fn asset(&self, id: AssetId) -> Result<Asset>;
    /// The assets of `ids` that exist, in one read (search hits, grids); ids of erased or
    /// unknown assets are left out. In no particular order.
    fn assets(&self, ids: &[AssetId]) -> Result<Vec<Asset>>;
    /// Ids whose hex form starts with `prefix` (at most `limit`), so people can type short ids.
    fn assets_with_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<AssetId>>;
    /// Assets in id (= ingest) order, after `query.after`.
    fn list_assets(&self, query: &AssetQuery) -> Result<Vec<Asset>>;
    /// The paths the asset was found at, oldest first.
    fn sources(&self, id: AssetId) -> Result<Vec<Source>>;
    /// Counts and sizes by kind. It reads every asset: to poll, use [`Catalog::asset_count`].
    fn stats(&self) -> Result<Stats>;
    /// How many assets there are (cheaper than [`Catalog::stats`]).
    fn asset_count(&self) -> Result<u64>;
    /// Distinct blobs referenced by assets, in hash order after `after`, at most `limit`.
    fn referenced_blobs(
        &self,
        after: Option<ContentHash>,
        limit: usize,
    ) -> Result<Vec<(ContentHash, u64)>>;

    /// Removes an asset and everything derived from it (sources, insights, jobs, its data
    /// key). When no other asset uses its blob, the blob is claimed for deletion
    /// ([`Deletion::claim`]) and its data key destroyed in the same transaction:
    /// check [`Catalog::still_claimed`], delete the blob, then call [`Catalog::blob_deleted`].
    /// Refused with [`Error::LegalHold`] (nothing changed) while its collection is on hold.
    fn delete_asset(&self, id: AssetId) -> Result<Deletion>;
    /// Leaves no bytes of deleted rows in the catalog's own files: on SQLite (which zeroes
    /// deleted rows, `secure_delete`) the write-ahead log is checkpointed into the database and
    /// truncated to nothing. False when readers kept it from finishing (a later scrub does).
    /// PostgreSQL keeps deleted rows in its files until VACUUM reuses their pages, and in its
    /// WAL: nothing to do here (see the deployment guide).
    fn scrub(&self) -> Result<bool>;
    /// Keys the mapping of content hashes to deletion buckets with a secret kept outside the
    /// catalog, so that the buckets' generations say nothing of what was deleted. Call once,
    /// right after opening, before any ingest or deletion; every process of a lake must use
    /// the same key (a lake derives it from its audit key). Unkeyed until then.
    fn key_deletion_buckets(&self, key: [u8; 32]);

    /// Claims an unreferenced blob for deletion: one `fsck` found unreferenced, or one whose
    /// deletion was never finished. `None` when an asset uses it. Each claim bumps the blob's
    /// generation, so an ingest that found the blob present before it records nothing
    /// (`Recorded::BlobRaced`) and, as long as the claim is held, neither does a later one.
    /// The blob's data key is destroyed with the claim, in the same transaction.
    fn claim_blob_deletion(&self, hash: ContentHash) -> Result<Option<BlobClaim>>;

    /// Whether `claim` is still the blob's current claim: check it right before deleting, so
    /// a deleter that stalled while another finished its work deletes nothing.
    fn still_claimed(&self, claim: BlobClaim) -> Result<bool>;

    /// Ends a claim after the blob was deleted. Ingests may publish the content again.
    fn blob_deleted(&self, claim: BlobClaim) -> Result<()>;

    /// Blobs whose deletion was claimed before `before` and never finished (the deleter died).
    fn unfinished_blob_deletions(&self, before: UnixMillis) -> Result<Vec<ContentHash>>;

    /// The wrapped (encrypted) data key of `owner`, if it has one. The catalog stores wrapped
    /// keys as opaque bytes and does no crypto; the master key that wraps them is kept
    /// outside it.
    fn data_key(&self, owner: KeyOwner) -> Result<Option<Vec<u8>>>;
    /// Records `wrapped` as `owner`'s data key unless it already has one, and returns the key
    /// kept: two processes racing to make a key both end up using the same one. For
    /// [`KeyOwner::Asset`], nothing is recorded and `None` returned when the asset does not
    /// exist (it was erased meanwhile), checked in the same transaction, so an erasure never
    /// leaves a key behind; for the others always `Some`.
    ///
    /// A blob's key is destroyed when the blob is claimed for deletion, which bumps its
    /// generation: an ingest reads [`Catalog::blob_generation`] before asking for the key, so
    /// that a key destroyed while it encrypts makes its record [`Recorded::BlobRaced`].
    fn keep_data_key(&self, owner: KeyOwner, wrapped: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .keep_data_keys(&[(owner, wrapped.to_vec())])?
            .pop()
            .flatten())
    }
    /// [`Catalog::keep_data_key`] for many owners at once: one answer per owner, in order.
    /// On SQLite one transaction (one sync) for all, which is what keeps an encrypted ingest
    /// of many small files fast; on PostgreSQL one transaction each.
    fn keep_data_keys(&self, keys: &[(KeyOwner, Vec<u8>)]) -> Result<Vec<Option<Vec<u8>>>>;
    /// Up to `limit` data keys, in the order of their owners' bytes
    /// ([`KeyOwner::to_bytes`]) after `after`, to rewrap them all when the master key
    /// changes. Rows whose owner does not decode are skipped with a warning.
    fn data_keys_page(
        &self,
        after: Option<KeyOwner>,
        limit: usize,
    ) -> Result<Vec<(KeyOwner, Vec<u8>)>>;
    /// Replaces `owner`'s wrapped key with `new` if it is still `old` (compare-and-swap);
    /// false, changing nothing, when it is gone or was changed meanwhile.
    fn rewrap_data_key(&self, owner: KeyOwner, old: &[u8], new: &[u8]) -> Result<bool>;
    /// Deletes the blob keys made before `older_than` whose blob no asset uses (an ingest
    /// that crashed between making the key and recording its asset), for `fsck`; returns how
    /// many. Each deletion bumps the blob's generation, as a claim does, so an ingest that
    /// was handed the key meanwhile records nothing and makes a new one. Keys of unused blobs
    /// that exist are destroyed by [`Catalog::claim_blob_deletion`] instead. Many keys may be
    /// dropped in several transactions, each key with its generation's bump.
    fn drop_unused_blob_keys(&self, older_than: UnixMillis) -> Result<u64>;

    /// Adds insights without replacing any, and notes each asset in the change feed. All or
    /// nothing: [`Error::NotFound`] when one names a missing asset. Analyzers that run as jobs
    /// store theirs through [`JobQueue::finish`], which replaces their old ones.
    fn add_insights(&self, insights: &[Insight]) -> Result<()>;
    /// Every insight of the asset, in the order they were added.
    fn insights(&self, asset: AssetId) -> Result<Vec<Insight>>;
    /// The insights of these kinds only, of all these assets in one read (e.g. `thumbnail`
    /// and `sensitive` for a grid, without reading any vectors); each asset's in the order
    /// they were stored.
    fn insights_of_kinds(&self, assets: &[AssetId], kinds: &[&str]) -> Result<Vec<Insight>>;

    /// The change feed: assets whose searchable content changed (ingested, new path, analysed,
    /// deleted) after `after`, in commit order, at most `limit`. An asset may appear many
    /// times; each entry means "look at it again".
    fn changes(&self, after: i64, limit: usize) -> Result<Vec<Change>>;
    /// The newest change's sequence number, pruned or not (0 before the first change).
    fn last_change(&self) -> Result<i64>;
    /// Records that the follower `consumer` (one search index) applied every change up to and
    /// including `through`, and forgets the changes every follower applied. A follower not
    /// heard from for a week stops holding changes back. Returns how many were forgotten.
    fn ack_changes(&self, consumer: &str, through: i64) -> Result<u64>;
    /// The newest change forgotten so far (0: none). A follower whose position is below it
    /// missed changes, and must rebuild.
    fn pruned_through(&self) -> Result<i64>;
}
