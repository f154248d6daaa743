//! Test helpers: an [`ObjectStore`] that runs out of space, and data keys held in memory.
//!
//! Real stores are used everywhere else; this wrapper exists because a full disk cannot be
//! produced on demand on every machine that runs the tests.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, UploadPart,
};

/// Wraps a store and fails every write once `capacity` bytes have been written through it, as a
/// full disk would. An aborted upload gives its space back.
#[derive(Debug)]
pub struct FullDisk {
    inner: Arc<dyn ObjectStore>,
    free: Arc<AtomicI64>,
}

impl FullDisk {
    /// Wraps `inner` with `capacity` bytes free.
    pub fn new(inner: Arc<dyn ObjectStore>, capacity: u64) -> Self {
        Self {
            inner,
            free: Arc::new(AtomicI64::new(i64::try_from(capacity).unwrap_or(i64::MAX))),
        }
    }
}

fn take(free: &AtomicI64, len: usize) -> object_store::Result<()> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    if free.fetch_sub(len, Ordering::SeqCst) < len {
        free.fetch_add(len, Ordering::SeqCst);
        return Err(object_store::Error::Generic {
            store: "FullDisk",
            source: Box::new(std::io::Error::from_raw_os_error(28)),
        });
    }
    Ok(())
}

impl fmt::Display for FullDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FullDisk({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FullDisk {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        take(&self.free, payload.content_length())?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(FullDiskUpload {
            inner,
            free: self.free.clone(),
            taken: 0,
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[derive(Debug)]
struct FullDiskUpload {
    inner: Box<dyn MultipartUpload>,
    free: Arc<AtomicI64>,
    taken: usize,
}

#[async_trait]
impl MultipartUpload for FullDiskUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        match take(&self.free, data.content_length()) {
            Ok(()) => {
                self.taken += data.content_length();
                self.inner.put_part(data)
            }
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        let taken = i64::try_from(std::mem::take(&mut self.taken)).unwrap_or(i64::MAX);
        self.free.fetch_add(taken, Ordering::SeqCst);
        self.inner.abort().await
    }
}

/// Data keys kept in memory, wrapped by a master key as a lake's catalog keeps them, for
/// tests of encrypted stores. [`MemoryKeys::forget`] destroys a key, as erasure does.
#[derive(Debug)]
pub struct MemoryKeys {
    ring: crate::KeyRing,
    wrapped: std::sync::Mutex<std::collections::HashMap<aperture_core::KeyOwner, Vec<u8>>>,
}

impl MemoryKeys {
    /// No keys yet, wrapped by a new random master key.
    pub fn new() -> crate::Result<Self> {
        Ok(Self {
            ring: crate::KeyRing::new(crate::SecretKey::random()?, Vec::new()),
            wrapped: Default::default(),
        })
    }

    /// An encryption over these keys, with a new random name key.
    pub fn encryption(self: &Arc<Self>) -> crate::Result<crate::Encryption> {
        Ok(crate::Encryption::new(
            crate::SecretKey::random()?,
            self.clone(),
        ))
    }

    /// Destroys `owner`'s key; returns whether it had one.
    pub fn forget(&self, owner: aperture_core::KeyOwner) -> bool {
        self.lock().remove(&owner).is_some()
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<aperture_core::KeyOwner, Vec<u8>>>
    {
        self.wrapped.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl crate::DataKeys for MemoryKeys {
    async fn data_key(
        &self,
        owner: aperture_core::KeyOwner,
        create: bool,
    ) -> crate::Result<Option<crate::SecretKey>> {
        let found = self.lock().get(&owner).cloned();
        let wrapped = match found {
            Some(wrapped) => wrapped,
            None if create => {
                let fresh = self.ring.wrap(owner, &crate::SecretKey::random()?)?;
                self.lock().entry(owner).or_insert(fresh).clone()
            }
            None => return Ok(None),
        };
        self.ring.unwrap(owner, &wrapped).map(Some)
    }
}
