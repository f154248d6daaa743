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
        // Derived objects (thumbnails) belong to this asset alone. Should this stop short, fsck
        // finds objects of erased assets and `fsck --repair` removes them.
        self.blobs.delete_derived(id).await?;
        let Some(claim) = deletion.claim else {
            return Ok(Erased::BytesShared);
        };
        Ok(if self.delete_claimed(claim).await? {
            Erased::WithBytes
        } else {
            Erased::BytesRepaired
        })
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
