use std::io::Write;
use std::path::Path as FsPath;
use std::pin::Pin;
use std::task::{Context, Poll};

use aperture_core::ContentHash;
use bytes::Bytes;
use futures::{Stream, StreamExt, stream::BoxStream};
use object_store::ObjectStoreExt;

use crate::run_blocking;
use crate::store::blob_path;
use crate::{BlobStore, Error, Result};

/// A blob's bytes as a stream, hashed as they pass. The stream's last item is an
/// [`Error::Corrupt`] instead of the end when the bytes do not match the blob's name, so a
/// consumer that writes somewhere temporary and commits only on a clean end never keeps bad data.
pub struct VerifiedStream {
    hash: ContentHash,
    expected_size: u64,
    seen: u64,
    hasher: Option<blake3::Hasher>,
    inner: BoxStream<'static, object_store::Result<Bytes>>,
}

impl VerifiedStream {
    /// The blob being read.
    pub fn hash(&self) -> ContentHash {
        self.hash
    }

    /// The size the store reports for the blob.
    pub fn size(&self) -> u64 {
        self.expected_size
    }

    fn finish(&mut self) -> Option<Result<Bytes>> {
        let hasher = self.hasher.take()?;
        let actual: ContentHash = hasher.finalize().into();
        if actual == self.hash && self.seen == self.expected_size {
            None
        } else {
            Some(Err(Error::Corrupt {
                hash: self.hash,
                reason: format!(
                    "content hashes to {actual} ({} of {} bytes read)",
                    self.seen, self.expected_size
                ),
            }))
        }
    }
}

impl Stream for VerifiedStream {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.hasher.is_none() {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.seen += chunk.len() as u64;
                if let Some(hasher) = self.hasher.as_mut() {
                    hasher.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.hasher = None;
                let hash = self.hash;
                Poll::Ready(Some(Err(Error::from_object(hash, e))))
            }
            Poll::Ready(None) => Poll::Ready(self.finish()),
        }
    }
}

impl BlobStore {
    /// Streams a blob, verifying it as it goes (see [`VerifiedStream`]).
    pub async fn get(&self, hash: ContentHash) -> Result<VerifiedStream> {
        let result = self
            .store
            .get(&blob_path(hash))
            .await
            .map_err(|e| Error::from_object(hash, e))?;
        Ok(VerifiedStream {
            hash,
            expected_size: result.meta.size,
            seen: 0,
            hasher: Some(blake3::Hasher::new()),
            inner: result.into_stream(),
        })
    }

    /// Streams bytes `range` of a blob, for HTTP range requests. A part cannot be checked
    /// against the blob's hash, so these bytes are **not verified**; `get` is.
    pub async fn get_range(
        &self,
        hash: ContentHash,
        range: std::ops::Range<u64>,
    ) -> Result<BoxStream<'static, Result<Bytes>>> {
        let options = object_store::GetOptions {
            range: Some(object_store::GetRange::Bounded(range)),
            ..Default::default()
        };
        let result = self
            .store
            .get_opts(&blob_path(hash), options)
            .await
            .map_err(|e| Error::from_object(hash, e))?;
        Ok(result
            .into_stream()
            .map(move |chunk| chunk.map_err(|e| Error::from_object(hash, e)))
            .boxed())
    }

    /// Reads a whole blob into memory and verifies it. For small blobs only: callers bound the
    /// size first.
    pub async fn read_all(&self, hash: ContentHash) -> Result<Bytes> {
        let mut stream = self.get(hash).await?;
        let mut out = Vec::with_capacity(usize::try_from(stream.size()).unwrap_or(0));
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(Bytes::from(out))
    }

    /// Reads a blob and checks that its bytes hash to its name. Returns its size.
    pub async fn verify(&self, hash: ContentHash) -> Result<u64> {
        let mut stream = self.get(hash).await?;
        let mut size = 0;
        while let Some(chunk) = stream.next().await {
            size += chunk?.len() as u64;
        }
        Ok(size)
    }

    /// Writes a blob to a local file, bit-exact. The bytes go to a temporary file beside
    /// `dest`, which replaces `dest` only once the whole blob has been verified: a corrupt blob
    /// or a failed write never leaves a partial or wrong file at `dest`.
    pub async fn read_to_file(&self, hash: ContentHash, dest: &FsPath) -> Result<u64> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let write_err = |source| Error::Write {
            path: dest.to_path_buf(),
            source,
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix(".aperture-get-");
        // A new file's usual mode (the umask applies), not tempfile's private 0600.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let tmp = builder.tempfile_in(&dir).map_err(write_err)?;
        let mut stream = self.get(hash).await?;
        let mut file = Some(tmp);
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            let mut f = file.take().expect("file is put back every iteration");
            let dest = dest.to_path_buf();
            file = Some(
                run_blocking(move || {
                    f.write_all(&chunk)
                        .map_err(|source| Error::Write { path: dest, source })?;
                    Ok(f)
                })
                .await?,
            );
        }
        let tmp = file.expect("file is put back every iteration");
        let dest_owned = dest.to_path_buf();
        run_blocking(move || {
            tmp.as_file().sync_all().map_err(|source| Error::Write {
                path: dest_owned.clone(),
                source,
            })?;
            tmp.persist(&dest_owned).map_err(|e| Error::Write {
                path: dest_owned,
                source: e.error,
            })?;
            Ok(())
        })
        .await?;
        Ok(size)
    }

    /// Writes a blob to a stream such as stdout, only once it is verified: a blob up to the
    /// part size is read into memory and checked first; a larger one is read and checked
    /// once, then streamed (and checked again on the way). A corrupt blob gives an error and
    /// no output; only bytes that change between the two reads could end in an error after
    /// some output. Writing to `out` blocks: meant for a command-line tool's stdout.
    pub async fn read_to_writer(
        &self,
        hash: ContentHash,
        out: &mut (dyn Write + Send),
    ) -> Result<u64> {
        let size = self.size(hash).await?.ok_or(Error::NotFound { hash })?;
        let write_err = |source| Error::Write {
            path: "<output>".into(),
            source,
        };
        if size <= self.part_size as u64 {
            let bytes = self.read_all(hash).await?;
            out.write_all(&bytes).map_err(write_err)?;
            out.flush().map_err(write_err)?;
            return Ok(bytes.len() as u64);
        }
        self.verify(hash).await?;
        let mut stream = self.get(hash).await?;
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            written += chunk.len() as u64;
            out.write_all(&chunk).map_err(write_err)?;
        }
        out.flush().map_err(write_err)?;
        Ok(written)
    }
}
