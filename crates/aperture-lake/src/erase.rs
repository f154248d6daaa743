//! Erasing an asset and everything derived from it.

use aperture_catalog::BlobClaim;
use aperture_core::AssetId;

use crate::{Lake, Result};

/// What [`Lake::erase`] did with the asset's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erased {
    /// The bytes were deleted too.
    WithBytes,
    /// The bytes stay: another asset has the same content.
    BytesShared,
    /// The bytes were deleted meanwhile by `aperture fsck --repair`.
    BytesRepaired,
}

impl Lake {
    /// Erases an asset and everything derived from it, and its bytes when no other asset has
    /// them. Catalog first, blob second: a crash in between leaves an unreferenced blob, which
    /// fsck finishes deleting, never an asset without its bytes.
    pub async fn erase(&self, id: AssetId) -> Result<Erased> {
        let deletion = self.catalog(move |c| c.delete_asset(id)).await?;
        // The log says which of its private details went with the asset, so that one missing
        // for any other reason is found.
        if !deletion.audit_details.is_empty() {
            self.record_audit(aperture_catalog::NewAuditEntry::erased_details(
                id,
                &deletion.audit_details,
            ))
            .await?;
        }
        // Derived objects (thumbnails) belong to this asset alone. Should this stop short, fsck
        // finds objects of erased assets and `fsck --repair` removes them.
        self.blobs.delete_derived(id).await?;
        let erased = match deletion.claim {
            None => Erased::BytesShared,
            Some(claim) if self.delete_claimed(claim).await? => Erased::WithBytes,
            Some(_) => Erased::BytesRepaired,
        };
        // One try, waiting 100 ms at most for other connections: what it misses goes at the
        // next erasure or opening, or with `rm --wait` (`scrub_catalog`).
        if !matches!(self.config.catalog, crate::CatalogLocation::Postgres(_)) {
            self.catalog(|c| c.scrub()).await?;
        }
        Ok(erased)
    }

    /// Leaves no bytes of erased rows in the catalog's files (SQLite's write-ahead log is
    /// checkpointed and truncated), trying for up to ten seconds while other connections hold
    /// on (each try keeps them waiting 100 ms at most). False when it could not (the catalog's
    /// next opening, or the next erasure, does it), and on PostgreSQL, which keeps deleted rows
    /// in its own files (see the deployment guide).
    pub async fn scrub_catalog(&self) -> Result<bool> {
        if matches!(self.config.catalog, crate::CatalogLocation::Postgres(_)) {
            return Ok(false);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if self.catalog(|c| c.scrub()).await? {
                return Ok(true);
            }
            if std::time::Instant::now() > deadline {
                tracing::warn!(
                    "other connections kept the catalog's log from being truncated; its next \
                     opening or erasure does it"
                );
                return Ok(false);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Deletes a claimed blob, unless the claim was taken over in the meantime (this deleter
    /// stalled and `fsck --repair` finished the work). True when this call deleted it.
    pub async fn delete_claimed(&self, claim: BlobClaim) -> Result<bool> {
        if !self.catalog(move |c| c.still_claimed(claim)).await? {
            return Ok(false);
        }
        self.blobs.delete(claim.hash).await?;
        self.catalog(move |c| c.blob_deleted(claim)).await?;
        Ok(true)
    }
}
