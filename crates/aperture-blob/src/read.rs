use std::io::Write;
use std::path::Path as FsPath;
use std::pin::Pin;
use std::task::{Context, Poll};

use aperture_core::ContentHash;
use bytes::Bytes;
use futures::{Stream, StreamExt, stream::BoxStream};
use object_store::ObjectStoreExt;

use crate::crypt::{HEADER, Opener, Sealing, open_len, sealed_range};
use crate::run_blocking;
use crate::{BlobStore, Error, Result};

/// A blob's bytes as a stream, hashed as they pass. The last chunk is held back until the
/// whole blob has been hashed: when the bytes do not match the blob's name, the stream ends
/// with an [`Error::Corrupt`] instead of that chunk, so no consumer ever receives every byte of
/// a wrong blob (an HTTP download that announced its length is cut short, and the client sees
/// an error, not a complete wrong file).
pub struct VerifiedStream {
    hash: ContentHash,
    expected_size: u64,
    seen: u64,
    hasher: Option<blake3::Hasher>,
    /// The chunk last read, released when the next one arrives or the hash has been checked.
    held: Option<Bytes>,
    inner: BoxStream<'static, Result<Bytes>>,
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
        loop {
            if self.hasher.is_none() {
                return Poll::Ready(None);
            }
            let item = match self.inner.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(item) => item,
            };
            match item {
                Some(Ok(chunk)) => {
                    self.seen += chunk.len() as u64;
                    if let Some(hasher) = self.hasher.as_mut() {
                        hasher.update(&chunk);
                    }
                    if chunk.is_empty() {
                        continue;
                    }
                    if let Some(earlier) = self.held.replace(chunk) {
                        return Poll::Ready(Some(Ok(earlier)));
                    }
                }
                Some(Err(e)) => {
                    self.hasher = None;
                    self.held = None;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    let failed = self.finish();
                    let last = self.held.take();
                    return Poll::Ready(match failed {
                        Some(err) => Some(err),
                        None => last.map(Ok),
                    });
                }
            }
        }
    }
}

impl BlobStore {
    /// Streams a blob, verifying it as it goes (see [`VerifiedStream`]).
    pub async fn get(&self, hash: ContentHash) -> Result<VerifiedStream> {
        self.get_verified(hash, object_store::GetOptions::default())
            .await
    }

    /// [`BlobStore::get`] with these options (a version to match).
    async fn get_verified(
        &self,
        hash: ContentHash,
        options: object_store::GetOptions,
    ) -> Result<VerifiedStream> {
        let result = self
            .store
            .get_opts(&self.blob_path(hash), options)
            .await
            .map_err(|e| Error::from_object(hash, e))?;
        let stored = result.meta.size;
        let raw = result
            .into_stream()
            .map(move |chunk| chunk.map_err(|e| Error::from_object(hash, e)))
            .boxed();
        let (expected_size, inner) = match self.blob_sealing(hash).await? {
            None => (stored, raw),
            Some(sealing) => {
                let plain = open_len(stored).map_err(|reason| Error::Corrupt { hash, reason })?;
                let opened = Opened::new(raw, Start::Header(sealing, stored), 0, plain);
                (
                    plain,
                    opened.stream(move |reason| Error::Corrupt { hash, reason }),
                )
            }
        };
        Ok(VerifiedStream {
            hash,
            expected_size,
            seen: 0,
            hasher: Some(blake3::Hasher::new()),
            held: None,
            inner,
        })
    }

    /// The key of a blob in an encrypted store (`None` in others), [`Error::KeyGone`] when
    /// it was erased.
    pub(crate) async fn blob_sealing(&self, hash: ContentHash) -> Result<Option<Sealing>> {
        let Some(encryption) = &self.encryption else {
            return Ok(None);
        };
        match encryption.blob(hash, false).await? {
            Some(sealing) => Ok(Some(sealing)),
            None => Err(Error::KeyGone {
                object: format!("blob {hash}"),
            }),
        }
    }

    /// Streams plaintext `range` of an encrypted object at `path`: its header, then only the
    /// segments that hold the range, from the same version of the object. The key is asked
    /// for once the object is found, so a missing object is not-found, not a missing key.
    pub(crate) async fn sealed_range_stream(
        &self,
        path: &object_store::path::Path,
        sealing: impl std::future::Future<Output = Result<Sealing>>,
        range: std::ops::Range<u64>,
        fail: impl Fn(object_store::Error) -> Error + Clone + Send + Sync + 'static,
        corrupt: impl Fn(String) -> Error + Send + Sync + 'static,
    ) -> Result<BoxStream<'static, Result<Bytes>>> {
        let ranged = |range: std::ops::Range<u64>| object_store::GetOptions {
            range: Some(object_store::GetRange::Bounded(range)),
            ..Default::default()
        };
        let head = match self.store.get_opts(path, ranged(0..HEADER as u64)).await {
            Ok(head) => head,
            // An object too short to hold a header is damaged, not a backend failure.
            Err(e) if !matches!(e, object_store::Error::NotFound { .. }) => {
                return match self.store.head(path).await {
                    Ok(meta) if meta.size < HEADER as u64 => {
                        Err(corrupt(open_len(meta.size).err().unwrap_or_default()))
                    }
                    _ => Err(fail(e)),
                };
            }
            Err(e) => return Err(fail(e)),
        };
        let stored = head.meta.size;
        let version = head.meta.e_tag.clone();
        let header = head.bytes().await.map_err(fail.clone())?;
        let sealing = sealing.await?;
        let plain = open_len(stored).map_err(&corrupt)?;
        let range = range.start.min(plain)..range.end.min(plain);
        if range.is_empty() {
            return Ok(futures::stream::empty().boxed());
        }
        let (sealed, first, skip) = sealed_range(&range);
        let opener = sealing.opener(&header, stored, first).map_err(&corrupt)?;
        // The segments of the version whose header was read: an object replaced in between
        // (sealed again, with another nonce prefix) is a failed precondition, not garbage.
        let segments = object_store::GetOptions {
            if_match: version,
            ..ranged(sealed.start..sealed.end.min(stored))
        };
        let raw = self
            .store
            .get_opts(path, segments)
            .await
            .map_err(fail.clone())?
            .into_stream()
            .map(move |chunk| chunk.map_err(&fail))
            .boxed();
        // Only a range that reaches the object's end opens its last segment at the end.
        let to_end = sealed.end >= stored;
        let opened = Opened::new(
            raw,
            Start::Ready(opener, to_end),
            skip,
            range.end - range.start,
        );
        Ok(opened.stream(corrupt))
    }

    /// Streams bytes `range` of a blob, for HTTP range requests, verified: in an encrypted
    /// store every segment is authenticated as it opens; in a plain one the whole blob is
    /// hashed before the first byte of a range is read; the store remembers for a few minutes
    /// the versions of objects it has checked, so a video's many seeks hash it once, and reads
    /// the range from that version only. A damaged blob fails with [`Error::Corrupt`] before
    /// any byte goes out.
    pub async fn get_range(
        &self,
        hash: ContentHash,
        range: std::ops::Range<u64>,
    ) -> Result<BoxStream<'static, Result<Bytes>>> {
        if self.encryption.is_some() {
            let sealing = async {
                self.blob_sealing(hash).await?.ok_or(Error::KeyGone {
                    object: format!("blob {hash}"),
                })
            };
            return self
                .sealed_range_stream(
                    &self.blob_path(hash),
                    sealing,
                    range,
                    move |e| Error::from_object(hash, e),
                    move |reason| Error::Corrupt { hash, reason },
                )
                .await;
        }
        let version = self.verified_version(hash).await?;
        let options = object_store::GetOptions {
            range: Some(object_store::GetRange::Bounded(range)),
            if_match: version,
            ..Default::default()
        };
        let result = self
            .store
            .get_opts(&self.blob_path(hash), options)
            .await
            .map_err(|e| Error::from_object(hash, e))?;
        Ok(result
            .into_stream()
            .map(move |chunk| chunk.map_err(|e| Error::from_object(hash, e)))
            .boxed())
    }

    /// The version (e-tag) of a plain blob whose whole content hashes to its name: from the
    /// store's memory of checked versions, or read and hashed now. The hashing runs in a task
    /// of its own, so a request that gives up (a client gone, a deadline) does not waste it:
    /// the version is remembered for the next request; checks of one blob take turns.
    async fn verified_version(&self, hash: ContentHash) -> Result<Option<String>> {
        let path = self.blob_path(hash);
        let meta = self
            .store
            .head(&path)
            .await
            .map_err(|e| Error::from_object(hash, e))?;
        let key = (hash, meta.e_tag.clone());
        if meta.e_tag.is_some() && self.verified.contains(&key) {
            return Ok(meta.e_tag);
        }
        let turn = self.verified.turn(hash).await;
        if meta.e_tag.is_some() && self.verified.contains(&key) {
            return Ok(meta.e_tag);
        }
        let this = self.clone();
        let check = tokio::spawn(async move {
            let _turn = turn;
            let options = object_store::GetOptions {
                if_match: key.1.clone(),
                ..Default::default()
            };
            let mut stream = this.get_verified(hash, options).await?;
            while let Some(chunk) = stream.next().await {
                chunk?;
            }
            if key.1.is_some() {
                this.verified.insert(key);
            }
            Ok(())
        });
        match check.await {
            Ok(checked) => checked.map(|()| meta.e_tag),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The runtime is shutting down.
            Err(e) => Err(Error::backend(object_store::Error::Generic {
                store: "check",
                source: Box::new(e),
            })),
        }
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

    /// On an unencrypted local store, reads the blob's file on the calling (blocking) thread
    /// and checks that its bytes hash to its name: its path, for tools that read it in place.
    /// `None` where the store has no such file to read (remote or encrypted stores): then
    /// [`BlobStore::verify`] it.
    pub fn verify_local_blocking(&self, hash: ContentHash) -> Result<Option<std::path::PathBuf>> {
        let Some(path) = self.local_path(hash) else {
            return Ok(None);
        };
        let mut file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound { hash });
            }
            Err(source) => return Err(Error::Read { path, source }),
        };
        let mut hasher = blake3::Hasher::new();
        let read = hasher
            .update_reader(&mut file)
            .map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
        let actual: ContentHash = read.finalize().into();
        if actual != hash {
            return Err(Error::Corrupt {
                hash,
                reason: format!("content hashes to {actual}"),
            });
        }
        Ok(Some(path))
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

/// Where opening starts: at the object's first byte (the header comes first, and the stream
/// runs to the end), or at a segment with its opener made from a header read beforehand,
/// running to the object's end or not.
pub(crate) enum Start {
    Header(Sealing, u64),
    Ready(Opener, bool),
}

/// Opens an encrypted object's bytes as they stream in, and hands out plaintext bytes
/// `skip..skip + take` of what it opens.
pub(crate) struct Opened {
    raw: BoxStream<'static, Result<Bytes>>,
    start: Option<Start>,
    opener: Option<Opener>,
    /// Whether the bytes run to the object's end, so the last segment is opened at the end.
    to_end: bool,
    header: Vec<u8>,
    skip: u64,
    left: u64,
    done: bool,
}

impl Opened {
    pub(crate) fn new(
        raw: BoxStream<'static, Result<Bytes>>,
        start: Start,
        skip: u64,
        take: u64,
    ) -> Self {
        Self {
            raw,
            to_end: !matches!(start, Start::Ready(_, false)),
            start: Some(start),
            opener: None,
            header: Vec::new(),
            skip,
            left: take,
            done: false,
        }
    }

    /// The plaintext as a stream; a failure to open is `corrupt(reason)`, and ends it.
    pub(crate) fn stream(
        self,
        corrupt: impl Fn(String) -> Error + Send + Sync + 'static,
    ) -> BoxStream<'static, Result<Bytes>> {
        futures::stream::unfold((self, corrupt), |(mut state, corrupt)| async move {
            let next = state.next().await;
            match next {
                None => None,
                Some(Ok(bytes)) => Some((Ok(bytes), (state, corrupt))),
                Some(Err(Failure::Store(e))) => Some((Err(e), (state, corrupt))),
                Some(Err(Failure::Open(reason))) => Some((Err(corrupt(reason)), (state, corrupt))),
            }
        })
        .boxed()
    }

    async fn next(&mut self) -> Option<std::result::Result<Bytes, Failure>> {
        while !self.done {
            let step = match self.raw.next().await {
                Some(Ok(chunk)) => self.push(&chunk),
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(Failure::Store(e)));
                }
                None => {
                    self.done = true;
                    self.finish()
                }
            };
            match step {
                Ok(out) => {
                    let out = self.trim(out);
                    if self.done && self.left > 0 {
                        let reason = format!("it ends {} bytes early", self.left);
                        return Some(Err(Failure::Open(reason)));
                    }
                    if !out.is_empty() {
                        return Some(Ok(out));
                    }
                }
                Err(reason) => {
                    self.done = true;
                    return Some(Err(Failure::Open(reason)));
                }
            }
        }
        None
    }

    fn push(&mut self, mut chunk: &[u8]) -> std::result::Result<Vec<u8>, String> {
        if self.opener.is_none() {
            match self.start.take() {
                Some(Start::Ready(opener, _)) => self.opener = Some(opener),
                Some(Start::Header(sealing, stored)) => {
                    let take = (HEADER - self.header.len()).min(chunk.len());
                    self.header.extend_from_slice(&chunk[..take]);
                    chunk = &chunk[take..];
                    if self.header.len() < HEADER {
                        self.start = Some(Start::Header(sealing, stored));
                        return Ok(Vec::new());
                    }
                    self.opener = Some(sealing.opener(&self.header, stored, 0)?);
                }
                None => return Err("no way to open it".into()),
            }
        }
        let mut out = Vec::with_capacity(chunk.len());
        if let Some(opener) = self.opener.as_mut() {
            opener.push_into(chunk, &mut out)?;
        }
        Ok(out)
    }

    fn finish(&mut self) -> std::result::Result<Vec<u8>, String> {
        let Some(opener) = self.opener.as_mut() else {
            return Err("it ends before its first segment".into());
        };
        let mut out = Vec::new();
        if self.to_end {
            opener.finish_into(&mut out)?;
        }
        Ok(out)
    }

    fn trim(&mut self, mut out: Vec<u8>) -> Bytes {
        let skip = usize::try_from(self.skip)
            .unwrap_or(usize::MAX)
            .min(out.len());
        self.skip -= skip as u64;
        out.drain(..skip);
        out.truncate(usize::try_from(self.left).unwrap_or(usize::MAX));
        self.left -= out.len() as u64;
        Bytes::from(out)
    }
}

enum Failure {
    Store(Error),
    Open(String),
}
