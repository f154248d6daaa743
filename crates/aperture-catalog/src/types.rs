use std::collections::BTreeMap;

use aperture_core::{AssetId, ContentHash, MediaKind, MediaMetadata, UnixMillis};
use serde::Serialize;

/// A collection's id in the catalog: stable, never reused, meaningless outside one catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CollectionId(pub i64);

/// A named group of assets; content is deduplicated within a collection, not across them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Collection {
    /// The catalog's id for it.
    pub id: CollectionId,
    /// Its unique name, as used in URLs, token grants and the CLI.
    pub name: String,
    /// When it was first created.
    pub created_at: UnixMillis,
    /// Assets are erased this many seconds after their ingest into the collection; `None`
    /// keeps them for ever.
    pub retention_secs: Option<u64>,
    /// Under legal hold: nothing in it is erased, by hand or by retention, until an admin
    /// lifts the hold.
    pub legal_hold: bool,
    /// OCR reads licence plates on pictures of vehicles here (a collection of documents);
    /// elsewhere plate-like text on them is neither stored nor indexed.
    pub read_plates: bool,
}

/// What an admin changes of a collection ([`crate::Catalog::change_collection`]); `None`
/// leaves a setting as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyChange {
    /// The retention: `Some(None)` keeps assets for ever.
    pub retention_secs: Option<Option<u64>>,
    /// The legal hold.
    pub legal_hold: Option<bool>,
    /// Whether OCR reads licence plates on pictures of vehicles.
    pub read_plates: Option<bool>,
}

/// A file as ingest found it: where it was and what it was like then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewSource {
    /// The exact OS bytes of the path, so names that are not UTF-8 survive.
    #[serde(skip)]
    pub path_bytes: Vec<u8>,
    /// The path for people (lossy UTF-8).
    pub path: String,
    /// The file name, for display.
    pub name: String,
    /// Size in bytes when ingest read the file.
    pub file_size: u64,
    /// Modification time in nanoseconds since the epoch, when known.
    pub modified_ns: Option<i64>,
}

/// Everything ingest records about one file.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAsset {
    /// The collection to record the file in.
    pub collection: CollectionId,
    /// The hash the blob was published under.
    pub hash: ContentHash,
    /// Size of the blob in bytes.
    pub size: u64,
    /// What the bytes are, from sniffing.
    pub kind: MediaKind,
    /// MIME type from sniffing.
    pub mime: String,
    /// What probing found; stored as JSON.
    pub metadata: MediaMetadata,
    /// Where the file was found.
    pub source: NewSource,
    /// [`BlobGeneration::generation`] as read before the blob was published.
    pub generation_seen: i64,
    /// Analysis jobs to queue with the asset, in the same transaction: (analyzer, priority).
    pub jobs: Vec<(String, i32)>,
}

/// What [`crate::Catalog::record`] did with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "asset", rename_all = "snake_case")]
pub enum Recorded {
    /// A new asset.
    Created(AssetId),
    /// The content was already an asset in this collection; this path was added as a source.
    Duplicate(AssetId),
    /// This path with this content was already recorded.
    Known(AssetId),
    /// A concurrent deletion removed the blob; nothing was recorded.
    BlobRaced,
}

/// The deletion generation of a blob's bucket (one of 65,536, see [`crate::Catalog::key_deletion_buckets`]):
/// 0 until a deletion in the bucket is first claimed, then higher each time a deletion there is
/// claimed or finished. Per bucket, not per blob, so that a finished
/// deletion keeps no content hash; an ingest raced by a deletion of another blob in its bucket
/// (one in 65,536) retries, as it would for its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobGeneration {
    /// The bucket's generation.
    pub generation: i64,
    /// A deletion of the blob started and has not finished.
    pub deleting: bool,
}

/// The newest recorded source at a path, to tell whether the file there changed since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownSource {
    /// The asset the path held then.
    pub asset: AssetId,
    /// Size in bytes as recorded.
    pub file_size: u64,
    /// Modification time in nanoseconds since the epoch, as recorded.
    pub modified_ns: Option<i64>,
}

/// One stored piece of content in one collection, as listed and shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Asset {
    /// Its id; ids sort by ingest time.
    pub id: AssetId,
    /// The name of its collection.
    pub collection: String,
    /// The blob holding its bytes.
    pub hash: ContentHash,
    /// Size in bytes.
    pub size: u64,
    /// What it is, from sniffing.
    pub kind: MediaKind,
    /// MIME type from sniffing.
    pub mime: String,
    /// When it was first recorded.
    pub ingested_at: UnixMillis,
    /// When it was made, copied from `metadata.captured_at` when first recorded.
    pub captured_at: Option<String>,
    /// The name it was most recently ingested under.
    pub name: String,
    /// What probing found when it was first recorded.
    pub metadata: MediaMetadata,
}

/// One path an asset was found at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// The path for people (lossy UTF-8).
    pub path: String,
    /// The file name, for display.
    pub name: String,
    /// Size in bytes when last seen.
    pub file_size: u64,
    /// Modification time in nanoseconds since the epoch, when known.
    pub modified_ns: Option<i64>,
    /// When ingest first found the asset at this path.
    pub first_seen: UnixMillis,
    /// When ingest last found it there.
    pub last_seen: UnixMillis,
}

/// A page of [`crate::Catalog::list_assets`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetQuery {
    /// Only assets of these collections (`None`: every collection). A caller limited to some
    /// collections pages through exactly those, so a cursor never names another's asset.
    pub collections: Option<Vec<CollectionId>>,
    /// Only assets of this kind.
    pub kind: Option<MediaKind>,
    /// Keyset paging: only assets with a larger id.
    pub after: Option<AssetId>,
    /// At most this many assets.
    pub limit: usize,
}

/// Totals of one media kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KindStats {
    /// How many assets.
    pub assets: u64,
    /// Their bytes, each asset counted once however many paths it has.
    pub bytes: u64,
}

/// What [`crate::Catalog::stats`] reports: counts and sizes, for `aperture stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// How many collections.
    pub collections: u64,
    /// How many assets.
    pub assets: u64,
    /// Paths recorded across all assets (one file seen under two names counts twice).
    pub sources: u64,
    /// Assets and bytes by kind; kinds with no assets are missing.
    pub by_kind: BTreeMap<MediaKind, KindStats>,
    /// Bytes of every source, as if each file were stored on its own.
    pub logical_bytes: u64,
    /// Bytes of distinct blobs: what the store actually holds.
    pub stored_bytes: u64,
    /// How many distinct blobs assets reference.
    pub distinct_blobs: u64,
}

impl Stats {
    /// Bytes that deduplication saved: what the files take less what the store holds.
    pub fn dedupe_savings(&self) -> u64 {
        self.logical_bytes.saturating_sub(self.stored_bytes)
    }
}

/// What `aperture stats` prints: a table by kind, then totals and what deduplication saved.
impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use aperture_core::human::{HumanBytes as B, HumanCount as N};
        writeln!(f, "{:<10} {:>10} {:>12}", "KIND", "ASSETS", "BYTES")?;
        for (kind, k) in &self.by_kind {
            let (assets, bytes) = (N(k.assets).to_string(), B(k.bytes).to_string());
            writeln!(f, "{:<10} {assets:>10} {bytes:>12}", kind.as_str())?;
        }
        let total = B(self.by_kind.values().map(|k| k.bytes).sum()).to_string();
        writeln!(
            f,
            "{:<10} {:>10} {total:>12}",
            "total",
            N(self.assets).to_string()
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{} collections, {} source paths, {} distinct blobs",
            N(self.collections),
            N(self.sources),
            N(self.distinct_blobs)
        )?;
        write!(
            f,
            "stored {} for {} of files: deduplication saved {}",
            B(self.stored_bytes),
            B(self.logical_bytes),
            B(self.dedupe_savings())
        )
    }
}

/// What [`crate::Catalog::delete_asset`] removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deletion {
    /// The asset that was removed.
    pub asset: AssetId,
    /// Its blob, which other assets may still use.
    pub hash: ContentHash,
    /// Set when no asset uses the blob any more: the claim to delete it with.
    pub claim: Option<BlobClaim>,
    /// The private audit details deleted with the asset, as (entry, part): the erasure says
    /// so in the log, so that a detail missing for any other reason is found.
    pub audit_details: Vec<(i64, i32)>,
}

/// How content hashes map to deletion buckets: two bytes of the hash keyed with a secret kept
/// outside the catalog ([`crate::Catalog::key_deletion_buckets`]), so that a bucket's generation says
/// nothing of which contents were deleted; unkeyed (the hash's first two bytes) until then.
#[derive(Debug, Default)]
pub(crate) struct DeletionBuckets(std::sync::OnceLock<[u8; 32]>);

impl DeletionBuckets {
    /// Sets the key; the first one set stays.
    pub(crate) fn key(&self, key: [u8; 32]) {
        let _ = self.0.set(key);
    }

    /// The bucket of `hash`, 0 to 65,535.
    pub(crate) fn of(&self, hash: &ContentHash) -> i64 {
        let b = match self.0.get() {
            Some(key) => *blake3::keyed_hash(key, hash.as_bytes()).as_bytes(),
            None => *hash.as_bytes(),
        };
        i64::from(u16::from_be_bytes([b[0], b[1]]))
    }
}

/// The right to delete one unreferenced blob, as long as it is the blob's current claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BlobClaim {
    /// The blob to delete.
    pub hash: ContentHash,
    /// The generation this claim set; a newer claim replaces it.
    pub generation: i64,
}

/// One entry of the change feed ([`crate::Catalog::changes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Its position in the feed: increasing, never reused.
    pub seq: i64,
    /// The asset to look at again.
    pub asset: AssetId,
}
