use std::io::Read;
use std::path::{Path as FsPath, PathBuf};

use aperture_core::ContentHash;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, WriteMultipart};

use crate::crypt::{SEGMENT, Sealer, Sealing};
use crate::store::staging_path;
use crate::{BlobStore, Error, Result, run_blocking};

/// Parts of a streamed upload that may be in flight at once, per file.
const PARTS_IN_FLIGHT: usize = 2;

/// Bytes that have been hashed and are ready to be published under their hash.
///
/// Small content is held in memory; large content sits in the store's staging area, or, for
/// a store that uploads on publish ([`BlobStore::with_upload_on_publish`]), stays in its
/// local file, which must not change before it is published. Either
/// [`BlobStore::publish`] or [`BlobStore::discard`] it; a staged object that is simply dropped
/// stays in `staging/` until `fsck --repair` removes it.
#[derive(Debug)]
#[must_use = "publish or discard staged content"]
pub struct Staged {
    hash: ContentHash,
    size: u64,
    pub(crate) content: Content,
}

#[derive(Debug)]
pub(crate) enum Content {
    Memory(Bytes),
    Staging(Path),
    /// A local file, hashed but not uploaded yet.
    File(PathBuf),
}

impl Staged {
    /// The BLAKE3 hash of the content: the name it will be published under.
    pub fn hash(&self) -> ContentHash {
        self.hash
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The content, when it is held in memory (a small file, or bytes staged as they are).
    pub fn in_memory(&self) -> Option<&[u8]> {
        match &self.content {
            Content::Memory(bytes) => Some(bytes),
            Content::Staging(_) | Content::File(_) => None,
        }
    }
}

impl BlobStore {
    /// Hashes bytes already in memory.
    pub async fn stage_bytes(&self, bytes: Bytes) -> Result<Staged> {
        let (hash, bytes) = hash_off_runtime(bytes).await;
        Ok(Staged {
            hash,
            size: bytes.len() as u64,
            content: Content::Memory(bytes),
        })
    }

    /// Reads a local file whole and hashes it, when it is a regular file no larger than the
    /// part size; `None` when it is larger (use [`BlobStore::stage_file`]). Blocking: for
    /// callers already on a blocking thread, so a small file costs no extra hop between threads.
    pub fn stage_small_file_blocking(&self, path: &FsPath) -> Result<Option<Staged>> {
        let (_, hasher, chunk) = read_head(path, self.part_size)?;
        Ok((chunk.len() <= self.part_size).then(|| Staged {
            hash: hasher.finalize().into(),
            size: chunk.len() as u64,
            content: Content::Memory(Bytes::from(chunk)),
        }))
    }

    /// Reads a local file, hashing as it goes. A file up to the part size is read whole; a
    /// larger one is streamed part by part into the staging area, never held whole in memory.
    pub async fn stage_file(&self, path: &FsPath) -> Result<Staged> {
        let part_size = self.part_size;
        let owned = path.to_path_buf();
        if self.hashes_before_upload() {
            return run_blocking(move || hash_file(&owned, part_size)).await;
        }
        let (file, mut hasher, chunk) = run_blocking(move || read_head(&owned, part_size)).await?;
        if chunk.len() <= part_size {
            let hash = hasher.finalize().into();
            return Ok(Staged {
                hash,
                size: chunk.len() as u64,
                content: Content::Memory(Bytes::from(chunk)),
            });
        }
        // Large: what was read becomes the first part of a streamed upload, and hashing goes on
        // over the rest of the file in order.
        let staging = staging_path();
        let upload = self
            .store
            .put_multipart(&staging)
            .await
            .map_err(Error::backend)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, part_size);
        let streamed = stream_rest(
            &mut writer,
            file,
            path.to_path_buf(),
            chunk,
            part_size,
            &mut hasher,
            None,
        )
        .await;
        match streamed {
            Ok(size) => {
                writer.finish().await.map_err(Error::backend)?;
                Ok(Staged {
                    hash: hasher.finalize().into(),
                    size,
                    content: Content::Staging(staging),
                })
            }
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(staging = %staging, error = %abort, "cannot abort staged upload");
                }
                Err(e)
            }
        }
    }

    /// Publishes small staged content on the calling thread, for callers already on a blocking
    /// thread, when the store is an unencrypted local folder: the bytes go to a new file beside
    /// the blob's, which takes the blob's name only if no blob has it (a rename that does not
    /// replace). Same answers as [`BlobStore::publish`]: `true` when this call created the
    /// blob, `false` when an intact one was there. Gives the content back, untouched, when this
    /// store cannot publish it so (remote or encrypted stores, content not held in memory):
    /// then [`BlobStore::publish`] it. Not durable until [`BlobStore::sync`].
    pub fn publish_blocking(&self, staged: Staged) -> Result<std::result::Result<bool, Staged>> {
        let (Some(target), Content::Memory(bytes)) =
            (self.local_path(staged.hash), &staged.content)
        else {
            return Ok(Err(staged));
        };
        let write_err = |path: &FsPath| {
            let path = path.to_path_buf();
            move |source| Error::Write { path, source }
        };
        match crate::local::write_new(&target, bytes) {
            Ok(()) => return Ok(Ok(true)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(write_err(&target)(e)),
        }
        // Deduplicate only against an intact blob: one left empty, short or zero-filled (a power
        // cut before the batch's sync) is replaced. Small blobs are cheap to read and hash again.
        let intact = crate::local::holds(&target, bytes.len() as u64, staged.hash)
            .map_err(write_err(&target))?;
        if !intact {
            crate::local::replace(&target, bytes).map_err(write_err(&target))?;
        }
        Ok(Ok(!intact))
    }

    /// Puts staged content under its hash. Returns `true` when this call created the blob and
    /// `false` when the blob was already there (deduplicated). Safe to race with itself: the
    /// content under a hash is the same whoever writes it (in an encrypted store sealed with
    /// the one key recorded for the hash; an upload whose key was destroyed meanwhile, by an
    /// erasure, is abandoned before it completes).
    pub async fn publish(&self, staged: Staged) -> Result<bool> {
        let target = self.blob_path(staged.hash);
        // In an encrypted store, the blob's data key: the one recorded for its hash, made now
        // if there is none.
        let sealing = match &self.encryption {
            None => None,
            Some(encryption) => Some(encryption.blob(staged.hash, true).await?.ok_or_else(
                || Error::Keys {
                    problem: format!("no data key could be made for blob {}", staged.hash),
                },
            )?),
        };
        match staged.content {
            Content::Memory(bytes) => {
                let bytes = match &sealing {
                    None => bytes,
                    Some(sealing) => seal_off_runtime(sealing, bytes).await?,
                };
                match self
                    .store
                    .put_opts(&target, bytes.clone().into(), PutMode::Create.into())
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(
                        object_store::Error::AlreadyExists { .. }
                        | object_store::Error::NotImplemented { .. },
                    ) => {
                        // Deduplicate only against an intact blob: one left empty, short or
                        // zero-filled (a power cut before the batch's sync) is rewritten.
                        // Small blobs are cheap to read and hash again.
                        let intact = match self.verify(staged.hash).await {
                            Ok(_) => true,
                            Err(Error::Corrupt { .. } | Error::NotFound { .. }) => false,
                            Err(e) => return Err(e),
                        };
                        if !intact {
                            self.store
                                .put(&target, bytes.into())
                                .await
                                .map_err(Error::backend)?;
                        }
                        Ok(!intact)
                    }
                    Err(e) => Err(Error::backend(e)),
                }
            }
            Content::File(path) => {
                // Uploaded again even when a blob of that name exists: its size alone cannot
                // tell that its bytes are right (a damaged or planted object of the same size
                // would stay for ever), and local stores replace theirs too. A multipart
                // upload appears whole or not at all, so the old one serves until then.
                let existed = self.size(staged.hash).await?.is_some();
                self.upload_file(&path, &target, Some((staged.hash, staged.size)), sealing)
                    .await?;
                Ok(!existed)
            }
            Content::Staging(staging) => {
                // A rename, not rename-if-not-exists: replacing a blob with the same bytes is
                // harmless, and the stores that lack conditional renames still work.
                let existed = self.size(staged.hash).await?.is_some();
                self.store
                    .rename(&staging, &target)
                    .await
                    .map_err(Error::backend)?;
                Ok(!existed)
            }
        }
    }

    /// Streams a local file to `location` as a multipart upload, hashing it on the way, and
    /// returns its hash and size. With `expect`, the upload is completed only when the file
    /// still hashes to what was staged; otherwise (and on any error) it is aborted, so nothing
    /// appears under `location`.
    pub(crate) async fn upload_file(
        &self,
        path: &FsPath,
        location: &Path,
        expect: Option<(ContentHash, u64)>,
        sealing: Option<Sealing>,
    ) -> Result<(ContentHash, u64)> {
        let sealer = sealing.as_ref().map(Sealing::sealer).transpose()?;
        let part_size = self.part_size;
        let owned = path.to_path_buf();
        let (file, hasher, first) = run_blocking(move || {
            let (mut file, len) = open_regular(&owned)?;
            let mut hasher = blake3::Hasher::new();
            let first = read_at_most(&mut file, &owned, part_size, len, &mut hasher)?;
            Ok((file, hasher, first))
        })
        .await?;
        let upload = self
            .store
            .put_multipart(location)
            .await
            .map_err(Error::backend)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, part_size);
        let mut hasher = hasher;
        let streamed = stream_rest(
            &mut writer,
            file,
            path.to_path_buf(),
            first,
            part_size,
            &mut hasher,
            sealer,
        )
        .await
        .and_then(|size| {
            let hash: ContentHash = hasher.finalize().into();
            match expect {
                Some(expected) if expected != (hash, size) => Err(Error::SourceChanged {
                    path: path.to_path_buf(),
                }),
                _ => Ok((hash, size)),
            }
        });
        // The key checked right before the upload completes, once every part but the last
        // short one is up: one destroyed by an erasure meanwhile (the object may have been
        // sealed again since, with a new key) ends it. What is left is the last part and the
        // completion; an erasure and a whole new ingest of the same content inside that
        // window are repaired by this ingest's retry (its record is `BlobRaced`).
        let streamed = match (streamed, &sealing) {
            (Ok(done), Some(sealing)) => match async {
                writer.wait_for_capacity(0).await.map_err(Error::backend)?;
                sealing.still_current().await
            }
            .await
            {
                Ok(true) => Ok(done),
                Ok(false) => Err(Error::KeyGone {
                    object: location.to_string(),
                }),
                Err(e) => Err(e),
            },
            (other, _) => other,
        };
        let done = match streamed {
            Ok(done) => done,
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(location = %location, error = %abort, "cannot abort upload");
                }
                return Err(e);
            }
        };
        writer.finish().await.map_err(Error::backend)?;
        Ok(done)
    }

    /// Drops staged content without publishing it.
    pub async fn discard(&self, staged: Staged) -> Result<()> {
        if let Content::Staging(staging) = staged.content {
            match self.store.delete(&staging).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(Error::backend(e)),
            }
        }
        Ok(())
    }
}

/// Uploads `first` and then the rest of `file` (hashing it) through `writer`, sealed by
/// `sealer` when there is one. Returns the plaintext size.
async fn stream_rest(
    writer: &mut WriteMultipart,
    file: std::fs::File,
    path: PathBuf,
    first: Vec<u8>,
    part_size: usize,
    hasher: &mut blake3::Hasher,
    sealer: Option<Sealer>,
) -> Result<u64> {
    let mut size = first.len() as u64;
    let (first, mut sealer) = match sealer {
        None => (first, None),
        Some(mut sealer) => {
            run_blocking(move || {
                let mut out = Vec::with_capacity(first.len() + first.len() / SEGMENT * 16 + 64);
                sealer.push_into(&first, &mut out)?;
                Ok((out, Some(sealer)))
            })
            .await?
        }
    };
    writer.put(Bytes::from(first));
    let mut state = Some((file, std::mem::take(hasher)));
    loop {
        writer
            .wait_for_capacity(PARTS_IN_FLIGHT)
            .await
            .map_err(Error::backend)?;
        let (mut file, mut h) = state.take().expect("state is put back every iteration");
        let path = path.clone();
        let mut s = sealer.take();
        let (file, h, s, read, out) = run_blocking(move || {
            let chunk = read_chunk(&mut file, &path, part_size, &mut h)?;
            let read = chunk.len();
            let out = match s.take() {
                None => chunk,
                Some(sealer) if read == 0 => {
                    let mut out = Vec::with_capacity(SEGMENT + 64);
                    sealer.finish_into(&mut out)?;
                    out
                }
                Some(mut sealer) => {
                    let mut out = Vec::with_capacity(read + read / SEGMENT * 16 + 64);
                    sealer.push_into(&chunk, &mut out)?;
                    s = Some(sealer);
                    out
                }
            };
            Ok((file, h, s, read, out))
        })
        .await?;
        sealer = s;
        if !out.is_empty() {
            writer.put(Bytes::from(out));
        }
        if read == 0 {
            *hasher = h;
            return Ok(size);
        }
        size += read as u64;
        state = Some((file, h));
    }
}

/// Seals bytes held in memory, on the blocking pool unless they are small.
pub(crate) async fn seal_off_runtime(sealing: &Sealing, bytes: Bytes) -> Result<Bytes> {
    const INLINE: usize = 64 * 1024;
    if bytes.len() <= INLINE {
        return Ok(Bytes::from(sealing.seal_all(&bytes)?));
    }
    let sealing = sealing.clone();
    run_blocking(move || Ok(Bytes::from(sealing.seal_all(&bytes)?))).await
}

/// Hashes a file for a store that uploads on publish: a file up to `part_size` is kept in
/// memory, a larger one is only hashed (its head and then the rest, 1 MiB at a time).
fn hash_file(path: &FsPath, part_size: usize) -> Result<Staged> {
    let (mut file, mut hasher, chunk) = read_head(path, part_size)?;
    if chunk.len() <= part_size {
        return Ok(Staged {
            hash: hasher.finalize().into(),
            size: chunk.len() as u64,
            content: Content::Memory(Bytes::from(chunk)),
        });
    }
    let mut size = chunk.len() as u64;
    drop(chunk);
    let mut buf = vec![0; 1024 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(Error::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok(Staged {
        hash: hasher.finalize().into(),
        size,
        content: Content::File(path.to_path_buf()),
    })
}

/// Opens a local file and reads (and hashes) up to one byte more than `part_size`, which tells
/// whether the file fits in one part (a file that `fstat` says fits, and that reads to that
/// size, fits: see [`read_at_most`]).
fn read_head(path: &FsPath, part_size: usize) -> Result<(std::fs::File, blake3::Hasher, Vec<u8>)> {
    let (mut file, len) = open_regular(path)?;
    let mut hasher = blake3::Hasher::new();
    let chunk = read_at_most(&mut file, path, part_size + 1, len, &mut hasher)?;
    Ok((file, hasher, chunk))
}

/// Opens a local file for reading, and its length, refusing anything but a regular file:
/// reading a FIFO could wait forever for a writer, and a device might never end.
fn open_regular(path: &FsPath) -> Result<(std::fs::File, u64)> {
    let failed = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Opening a FIFO for reading waits for a writer; opened non-blocking, it is refused below.
    // (For a regular file on an ordinary file system, reads are unchanged.)
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).map_err(failed)?;
    let meta = file.metadata().map_err(failed)?;
    if meta.is_dir() {
        return Err(failed(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "is a directory",
        )));
    }
    if !meta.is_file() {
        return Err(failed(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    Ok((file, meta.len()))
}

/// Reads up to `limit` bytes and hashes them: fewer at the end of the file, or where `fstat`
/// said it ended ([`read_at_most`]); a stream of chunks ends only on an empty one.
fn read_chunk(
    file: &mut std::fs::File,
    path: &FsPath,
    limit: usize,
    hasher: &mut blake3::Hasher,
) -> Result<Vec<u8>> {
    let position = file_position(file);
    let expected = file
        .metadata()
        .map_or(0, |m| m.len().saturating_sub(position));
    read_at_most(file, path, limit, expected, hasher)
}

/// Reads up to `limit` bytes and hashes them, expecting `expected` (what `fstat` said is
/// left). For a small file ([`EARLY_END`]), reads ask for one byte more than `expected` and
/// stop once exactly `expected` bytes are in, taken as the end of the file: no further read
/// that returns nothing. A file that grows after its `fstat` is then stored at that size in
/// memory ([`read_head`]) and read on to its end by a stream ([`read_chunk`]); a read that
/// fills the extra byte means the file grew, and reading goes on to `limit`.
fn read_at_most(
    reader: &mut impl Read,
    path: &FsPath,
    limit: usize,
    expected: u64,
    hasher: &mut blake3::Hasher,
) -> Result<Vec<u8>> {
    let failed = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let buf = match usize::try_from(expected) {
        Ok(expected) if expected < limit && expected < EARLY_END => {
            let mut buf = vec![0u8; expected + 1];
            let mut filled = 0;
            while filled < buf.len() {
                match reader.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => {
                        filled += n;
                        if filled == expected {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(failed(e)),
                }
            }
            buf.truncate(filled);
            if filled > expected {
                reader
                    .take((limit - filled) as u64)
                    .read_to_end(&mut buf)
                    .map_err(failed)?;
            }
            buf
        }
        _ => {
            // Sized from the file where possible: a file of 100 KiB gets 100 KiB, not a part.
            let mut buf = Vec::with_capacity(usize::try_from(expected).unwrap_or(limit).min(limit));
            reader
                .take(limit as u64)
                .read_to_end(&mut buf)
                .map_err(failed)?;
            buf
        }
    };
    debug_assert!(buf.len() <= limit, "at most the limit is read");
    hasher.update(&buf);
    Ok(buf)
}

/// Below this size, [`read_at_most`] ends at the size `fstat` gave. Larger reads take the
/// usual way (a read that returns nothing at the end), which fills no buffer with zeros first.
const EARLY_END: usize = 64 * 1024;

fn file_position(file: &mut std::fs::File) -> u64 {
    use std::io::Seek;
    file.stream_position().unwrap_or(0)
}

/// Hashes on the blocking pool unless the buffer is small enough to hash in a few microseconds.
async fn hash_off_runtime(bytes: Bytes) -> (ContentHash, Bytes) {
    const INLINE: usize = 64 * 1024;
    if bytes.len() <= INLINE {
        return (ContentHash::of(&bytes), bytes);
    }
    match tokio::task::spawn_blocking(move || (ContentHash::of(&bytes), bytes)).await {
        Ok(done) => done,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out at most `step` bytes a read, as a slow or network file system may, and counts
    /// the reads.
    struct Trickle<'a> {
        left: &'a [u8],
        step: usize,
        reads: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.reads += 1;
            let n = buf.len().min(self.step).min(self.left.len());
            buf[..n].copy_from_slice(&self.left[..n]);
            self.left = &self.left[n..];
            Ok(n)
        }
    }

    /// What is read, and in how many reads.
    fn read_counting(content: &[u8], step: usize, limit: usize, expected: u64) -> (Vec<u8>, usize) {
        let mut hasher = blake3::Hasher::new();
        let mut reader = Trickle {
            left: content,
            step,
            reads: 0,
        };
        let got =
            read_at_most(&mut reader, FsPath::new("f"), limit, expected, &mut hasher).unwrap();
        assert_eq!(
            hasher.finalize(),
            blake3::hash(&got),
            "what is hashed is what is read"
        );
        (got, reader.reads)
    }

    fn read(content: &[u8], step: usize, limit: usize, expected: u64) -> Vec<u8> {
        read_counting(content, step, limit, expected).0
    }

    #[test]
    fn a_small_file_read_to_its_size_takes_no_read_that_returns_nothing() {
        let content = vec![3u8; 4096];
        assert_eq!(
            read_counting(&content, 8192, 8192, 4096),
            (content.clone(), 1)
        );
        assert_eq!(
            read_counting(&content, 1024, 8192, 4096),
            (content.clone(), 4)
        );
        // An empty file: one read, which returns nothing.
        assert_eq!(read_counting(&[], 8192, 8192, 0), (Vec::new(), 1));
        // Past the early end, the usual way: the last read returns nothing.
        let large = vec![5u8; EARLY_END];
        let mut hasher = blake3::Hasher::new();
        let mut reader = Trickle {
            left: &large,
            step: EARLY_END,
            reads: 0,
        };
        let got = read_at_most(
            &mut reader,
            FsPath::new("f"),
            2 * EARLY_END,
            EARLY_END as u64,
            &mut hasher,
        )
        .unwrap();
        assert_eq!(got.len(), EARLY_END);
        assert!(
            reader.left.is_empty() && reader.reads >= 2,
            "it read on to an empty read"
        );
    }

    #[test]
    fn a_buffer_is_sized_from_the_file_not_the_part() {
        // Staged files are held in memory as read (a chunk of 32 at a time): a file of 100 KiB
        // under a part of 8 MiB must not hold 8 MiB.
        let content = vec![2u8; 100 * 1024];
        let got = read(&content, 1 << 20, 8 << 20, content.len() as u64);
        assert_eq!(got, content);
        assert!(
            got.capacity() < 2 * content.len(),
            "{} bytes held",
            got.capacity()
        );
    }

    #[test]
    fn a_file_fstat_calls_empty_is_read_whole() {
        // As procfs reports its files.
        let content: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        assert_eq!(read(&content, 1, 8192, 0), content);
        assert_eq!(read(&content, 7, 8192, 0), content);
        assert_eq!(read(&content, 4096, 100, 0), content[..100]);
    }

    #[test]
    fn a_file_that_grows_at_the_limit_stops_there() {
        let content = vec![1u8; 200];
        assert_eq!(read(&content, 4096, 100, 99), content[..100]);
        assert_eq!(read(&content, 4096, 100, 100), content[..100]);
    }

    #[test]
    fn interrupted_reads_are_retried_and_errors_name_the_file() {
        struct Flaky(usize);
        impl Read for Flaky {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0 += 1;
                match self.0 {
                    1 => Err(std::io::ErrorKind::Interrupted.into()),
                    2 => {
                        buf[..10].fill(7);
                        Ok(10)
                    }
                    _ => Err(std::io::Error::other("disk gone")),
                }
            }
        }
        let mut hasher = blake3::Hasher::new();
        let path = FsPath::new("/photos/a.jpg");
        let got = read_at_most(&mut Flaky(0), path, 100, 10, &mut hasher).unwrap();
        assert_eq!(got, vec![7u8; 10]);
        let err = read_at_most(&mut Flaky(0), path, 100, 50, &mut hasher).unwrap_err();
        assert!(matches!(err, Error::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("/photos/a.jpg"), "{err}");
    }

    #[test]
    fn a_file_of_its_expected_size_is_read_whole_in_any_steps() {
        let content: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        for step in [1, 7, 4096, 5000, 9000] {
            assert_eq!(read(&content, step, 8192, 5000), content, "step {step}");
        }
        assert_eq!(read(&[], 1, 8192, 0), Vec::<u8>::new());
    }

    #[test]
    fn a_file_that_grew_past_its_expected_size_is_read_on_to_the_limit() {
        let content: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        for step in [4096, 10_000] {
            // fstat said 3,000; the file holds 10,000: all of it up to the limit.
            assert_eq!(
                read(&content, step, 8192, 3000),
                content[..8192],
                "step {step}"
            );
            assert_eq!(read(&content, step, 20_000, 3000), content, "step {step}");
        }
        // Reads that stop at exactly what fstat said end there: the file as it was then, as
        // when it grows just after it is read.
        for step in [1, 500, 3000] {
            assert_eq!(
                read(&content, step, 8192, 3000),
                content[..3000],
                "step {step}"
            );
        }
    }

    #[test]
    fn a_file_shorter_than_expected_is_read_to_its_end() {
        let content = vec![9u8; 100];
        assert_eq!(read(&content, 7, 8192, 4000), content);
        // Expected past the limit: read up to the limit, as before.
        assert_eq!(read(&content, 7, 64, 1 << 40), content[..64]);
    }
}
