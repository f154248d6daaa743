//! Derived objects: what analyzers make from an asset (thumbnails, previews), kept under the
//! asset's id rather than a content hash, so that erasing an asset is one prefix delete and
//! no other asset can share them.

use std::collections::BTreeSet;

use aperture_core::AssetId;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

use crate::crypt::{Sealing, open_len};
use crate::read::{Opened, Start};
use crate::write::seal_off_runtime;
use crate::{BlobStore, Error, Result};

const DERIVED: &str = "derived";

impl BlobStore {
    /// Stores (or replaces) a derived object of `asset`. `name` is a plain file name
    /// (`thumbnail-256.jpg`): letters, digits, `.`, `-`, `_`.
    pub async fn put_derived(&self, asset: AssetId, name: &str, bytes: Bytes) -> Result<()> {
        let key = derived_key(asset, name)?;
        let bytes = match self.derived_sealing(asset, name, true).await? {
            None => bytes,
            Some(sealing) => seal_off_runtime(&sealing, bytes).await?,
        };
        self.store
            .put(&key, PutPayload::from(bytes))
            .await
            .map_err(Error::backend)?;
        Ok(())
    }

    /// Stores (or replaces) a large derived object of `asset` from a local file, streamed in
    /// parts through the staging area and then moved into place: never held whole in memory,
    /// never half-written under its name.
    pub async fn put_derived_file(
        &self,
        asset: AssetId,
        name: &str,
        file: &std::path::Path,
    ) -> Result<()> {
        let key = derived_key(asset, name)?;
        let sealing = self.derived_sealing(asset, name, true).await?;
        let staged = self.stage_file(file).await?;
        match staged.content {
            crate::write::Content::Memory(bytes) => {
                let bytes = match &sealing {
                    None => bytes,
                    Some(sealing) => seal_off_runtime(sealing, bytes).await?,
                };
                self.store
                    .put(&key, PutPayload::from(bytes))
                    .await
                    .map_err(Error::backend)?;
            }
            crate::write::Content::File(path) => {
                self.upload_file(&path, &key, None, sealing).await?;
            }
            crate::write::Content::Staging(path) => {
                self.store
                    .rename(&path, &key)
                    .await
                    .map_err(Error::backend)?;
            }
        }
        Ok(())
    }

    /// The size of a derived object of `asset`, [`Error::DerivedNotFound`] when there is none.
    pub async fn derived_size(&self, asset: AssetId, name: &str) -> Result<u64> {
        let key = derived_key(asset, name)?;
        let meta = self.store.head(&key).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => Error::DerivedNotFound {
                asset,
                name: name.to_owned(),
            },
            e => Error::backend(e),
        })?;
        if self.encryption.is_none() {
            return Ok(meta.size);
        }
        open_len(meta.size).map_err(|reason| Error::CorruptDerived {
            asset,
            name: name.to_owned(),
            reason,
        })
    }

    /// The key of a derived object in an encrypted store (`None` in others). Without
    /// `create`, [`Error::KeyGone`] when its asset's key is gone; with it, when its asset is.
    async fn derived_sealing(
        &self,
        asset: AssetId,
        name: &str,
        create: bool,
    ) -> Result<Option<Sealing>> {
        let Some(encryption) = &self.encryption else {
            return Ok(None);
        };
        match encryption.derived(asset, name, create).await? {
            Some(sealing) => Ok(Some(sealing)),
            None => Err(Error::KeyGone {
                object: format!("derived object {name:?} of asset {asset}"),
            }),
        }
    }

    /// Streams bytes `range` of a derived object (a video preview for a player's range
    /// requests).
    pub async fn get_derived_range(
        &self,
        asset: AssetId,
        name: &str,
        range: std::ops::Range<u64>,
    ) -> Result<futures::stream::BoxStream<'static, Result<Bytes>>> {
        let key = derived_key(asset, name)?;
        if self.encryption.is_some() {
            let owned = name.to_owned();
            let missing = name.to_owned();
            let sealing = async {
                self.derived_sealing(asset, name, false)
                    .await?
                    .ok_or_else(|| Error::KeyGone {
                        object: format!("derived object {name:?} of asset {asset}"),
                    })
            };
            return self
                .sealed_range_stream(
                    &key,
                    sealing,
                    range,
                    move |e| match e {
                        object_store::Error::NotFound { .. } => Error::DerivedNotFound {
                            asset,
                            name: missing.clone(),
                        },
                        e => Error::backend(e),
                    },
                    move |reason| Error::CorruptDerived {
                        asset,
                        name: owned.clone(),
                        reason,
                    },
                )
                .await;
        }
        let options = object_store::GetOptions {
            range: Some(object_store::GetRange::Bounded(range)),
            ..Default::default()
        };
        let result = self
            .store
            .get_opts(&key, options)
            .await
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => Error::DerivedNotFound {
                    asset,
                    name: name.to_owned(),
                },
                e => Error::backend(e),
            })?;
        Ok(result
            .into_stream()
            .map(|chunk| chunk.map_err(Error::backend))
            .boxed())
    }

    /// A derived object of `asset`, [`Error::DerivedNotFound`] when there is none. Not
    /// verified like a blob: a derived object can always be made again.
    pub async fn get_derived(&self, asset: AssetId, name: &str) -> Result<Bytes> {
        let key = derived_key(asset, name)?;
        let found = self.store.get(&key).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => Error::DerivedNotFound {
                asset,
                name: name.to_owned(),
            },
            e => Error::backend(e),
        })?;
        let Some(sealing) = self.derived_sealing(asset, name, false).await? else {
            return found.bytes().await.map_err(Error::backend);
        };
        let stored = found.meta.size;
        let raw = found
            .into_stream()
            .map(|chunk| chunk.map_err(Error::backend))
            .boxed();
        let plain = open_len(stored).unwrap_or(0);
        let owned = name.to_owned();
        let mut opened =
            Opened::new(raw, Start::Header(sealing, stored), 0, plain).stream(move |reason| {
                Error::CorruptDerived {
                    asset,
                    name: owned.clone(),
                    reason,
                }
            });
        let mut out = Vec::with_capacity(usize::try_from(plain).unwrap_or(0));
        while let Some(chunk) = opened.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(Bytes::from(out))
    }

    /// Deletes every derived object of `asset`; returns how many there were.
    pub async fn delete_derived(&self, asset: AssetId) -> Result<u64> {
        let prefix = Path::from_iter([DERIVED, &asset.to_string()]);
        let keys = self
            .store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .boxed();
        let deleted: Vec<Path> = self
            .store
            .delete_stream(keys)
            .try_collect()
            .await
            .map_err(Error::backend)?;
        Ok(deleted.len() as u64)
    }

    /// The assets that have derived objects, for `fsck` to find those of erased assets.
    pub async fn derived_owners(&self) -> Result<BTreeSet<AssetId>> {
        let mut owners = BTreeSet::new();
        let mut listing = self.store.list(Some(&Path::from(DERIVED)));
        while let Some(meta) = listing.try_next().await.map_err(Error::backend)? {
            let owner = meta
                .location
                .parts()
                .nth(1)
                .and_then(|part| part.as_ref().parse::<AssetId>().ok());
            if let Some(owner) = owner {
                owners.insert(owner);
            }
        }
        Ok(owners)
    }
}

fn derived_key(asset: AssetId, name: &str) -> Result<Path> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !valid {
        return Err(Error::InvalidName {
            name: name.chars().take(130).collect(),
        });
    }
    Ok(Path::from_iter([DERIVED, &asset.to_string(), name]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_file_names() {
        let asset = AssetId::new();
        assert!(derived_key(asset, "thumbnail-256.jpg").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "a b", "é"] {
            assert!(derived_key(asset, bad).is_err(), "{bad:?}");
        }
    }
}
