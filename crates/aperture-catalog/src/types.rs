use std::collections::BTreeMap;

use aperture_core::{AssetId, ContentHash, MediaKind, MediaMetadata, UnixMillis};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CollectionId(pub i64);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Collection {
    pub id: CollectionId,
    pub name: String,
    pub created_at: UnixMillis,
    pub retention_days: Option<u32>,
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
    pub file_size: u64,
    /// Modification time in nanoseconds since the epoch, when known.
    pub modified_ns: Option<i64>,
}

/// Everything ingest records about one file.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAsset {
    pub collection: CollectionId,
    pub hash: ContentHash,
    pub size: u64,
    pub kind: MediaKind,
    pub mime: String,
    pub metadata: MediaMetadata,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobGeneration {
    pub generation: i64,
    /// A deletion of the blob started and has not finished.
    pub deleting: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownSource {
    pub asset: AssetId,
    pub file_size: u64,
    pub modified_ns: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Asset {
    pub id: AssetId,
    pub collection: String,
    pub hash: ContentHash,
    pub size: u64,
    pub kind: MediaKind,
    pub mime: String,
    pub ingested_at: UnixMillis,
    pub captured_at: Option<String>,
    /// The name it was most recently ingested under.
    pub name: String,
    pub metadata: MediaMetadata,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    pub path: String,
    pub name: String,
    pub file_size: u64,
    pub modified_ns: Option<i64>,
    pub first_seen: UnixMillis,
    pub last_seen: UnixMillis,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetQuery {
    /// Only assets of these collections (`None`: every collection). A caller limited to some
    /// collections pages through exactly those, so a cursor never names another's asset.
    pub collections: Option<Vec<CollectionId>>,
    pub kind: Option<MediaKind>,
    /// Keyset paging: only assets with a larger id.
    pub after: Option<AssetId>,
    pub limit: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KindStats {
    pub assets: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub collections: u64,
    pub assets: u64,
    /// Paths recorded across all assets (one file seen under two names counts twice).
    pub sources: u64,
    pub by_kind: BTreeMap<MediaKind, KindStats>,
    /// Bytes of every source, as if each file were stored on its own.
    pub logical_bytes: u64,
    /// Bytes of distinct blobs: what the store actually holds.
    pub stored_bytes: u64,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deletion {
    pub asset: AssetId,
    pub hash: ContentHash,
    /// Set when no asset uses the blob any more: the claim to delete it with.
    pub claim: Option<BlobClaim>,
}

/// The right to delete one unreferenced blob, as long as it is the blob's current claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BlobClaim {
    pub hash: ContentHash,
    pub generation: i64,
}

/// One entry of the change feed ([`crate::Catalog::changes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Change {
    pub seq: i64,
    pub asset: AssetId,
}
