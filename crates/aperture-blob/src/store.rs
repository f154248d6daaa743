use std::sync::Arc;

use aperture_core::{ContentHash, UnixMillis};
use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode};

use crate::crypt::{Encryption, open_len};
use crate::run_blocking;
use crate::{Error, Result};

/// The blob layout this build writes and reads.
pub const LAYOUT_VERSION: u32 = 1;
const LAYOUT_KEY: &str = "aperture-blobs.json";
const BLOBS: &str = "blobs";
const STAGING: &str = "staging";
/// What the layout marker says of an encrypted store's objects and names.
const ENCRYPTION: &str = "xchacha20poly1305-stream-64k-v1, names keyed-blake3";

/// How long [`BlobStore::init`] waits for a remote store to answer, all retries included.
const INIT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(15);

/// Files up to this size are read whole and written in one put; larger ones stream in parts of
/// this size, so memory per file stays bounded. 8 MiB is above S3's 5 MiB minimum part size.
pub(crate) const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

/// Content-addressed blobs in an object store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BlobStore {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) part_size: usize,
    /// The folder of a local store: object_store hides its own unfinished writes there
    /// (`name#N` files) from listings, so finding what a killed writer left needs the folder.
    local_root: Option<std::path::PathBuf>,
    /// Whether [`BlobStore::sync`] flushes local writes to stable storage.
    durable: bool,
    /// The URL a remote store was opened from, for messages; `None` for local ones.
    url: Option<String>,
    /// Whether large files go straight to their blob's name at publish (see
    /// [`BlobStore::with_upload_on_publish`]) instead of through `staging/`.
    pub(crate) upload_on_publish: bool,
    /// Set for a lake that encrypts at rest: blob names and data keys.
    pub(crate) encryption: Option<Encryption>,
    /// The versions of plain blobs whose whole content was hashed and matched, so that range
    /// reads of them need not hash it again (shared by clones).
    pub(crate) verified: CheckedVersions,
    /// Called as each [`BlobStore::sync`] begins and ends (see [`BlobStore::with_sync_observer`]).
    sync_observer: Option<SyncObserver>,
}

/// What [`BlobStore::with_sync_observer`] calls.
#[derive(Clone)]
struct SyncObserver(Arc<dyn Fn(SyncPhase) + Send + Sync>);

/// When a [`BlobStore::sync`] observer is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPhase {
    /// The sync begins: what was written before now will be durable when it ends.
    Begins,
    /// The sync succeeded.
    Ended,
}

impl std::fmt::Debug for SyncObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncObserver")
    }
}

/// A bounded memory of (blob, object version) pairs found intact, least recently used
/// forgotten first, each for [`CheckedVersions::TRUST`] only: damage that leaves an object's
/// version unchanged (bit rot keeps its size and time) is found by the next check. Checks of
/// one blob take turns (`stripes`), so parallel seeks into a video hash it once.
#[derive(Clone)]
pub(crate) struct CheckedVersions {
    cache: Arc<std::sync::Mutex<lru::LruCache<Version, std::time::Instant>>>,
    stripes: Arc<[Arc<tokio::sync::Mutex<()>>]>,
}

/// A blob and the e-tag of the object version read.
pub(crate) type Version = (ContentHash, Option<String>);

impl CheckedVersions {
    /// Versions remembered at most.
    const CAPACITY: usize = 4096;
    /// How long a check holds: long enough for a video's seeks, short enough for rot.
    const TRUST: std::time::Duration = std::time::Duration::from_secs(300);
    /// Locks that checks of one blob share (blobs are spread over them by hash).
    const STRIPES: usize = 64;

    fn new() -> Self {
        let capacity =
            std::num::NonZeroUsize::new(Self::CAPACITY).unwrap_or(std::num::NonZeroUsize::MIN);
        Self {
            cache: Arc::new(std::sync::Mutex::new(lru::LruCache::new(capacity))),
            stripes: (0..Self::STRIPES)
                .map(|_| Arc::new(tokio::sync::Mutex::new(())))
                .collect(),
        }
    }

    pub(crate) fn contains(&self, key: &Version) -> bool {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        match cache.get(key) {
            Some(at) if at.elapsed() < Self::TRUST => true,
            Some(_) => {
                cache.pop(key);
                false
            }
            None => false,
        }
    }

    pub(crate) fn insert(&self, key: Version) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.put(key, std::time::Instant::now());
    }

    /// The turn to check `hash`: held while one check runs.
    pub(crate) async fn turn(&self, hash: ContentHash) -> tokio::sync::OwnedMutexGuard<()> {
        let stripe = usize::from(hash.as_bytes()[0]) % Self::STRIPES;
        self.stripes[stripe].clone().lock_owned().await
    }
}

impl std::fmt::Debug for CheckedVersions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckedVersions")
    }
}

/// A blob found by [`BlobStore::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEntry {
    /// Its name in the store: its content hash, or in an encrypted store a keyed hash of it
    /// (see [`BlobStore::blob_name`]).
    pub name: String,
    /// Its content hash, where the name is one (stores without encryption).
    pub hash: Option<ContentHash>,
    /// Its size in bytes as the store reports it (not verified); in an encrypted store, the
    /// size of its plaintext, or of the object when that is no encrypted object's size.
    pub size: u64,
    /// When the store last wrote it.
    pub last_modified: UnixMillis,
}

/// A staged upload left behind by an interrupted writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagingEntry {
    /// Where it is, relative to the store's root.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written: young leftovers may still be in use.
    pub last_modified: UnixMillis,
}

impl BlobStore {
    /// A store over any object store. It cannot see object_store's unfinished local writes nor
    /// [`BlobStore::sync`] them; prefer [`BlobStore::open_url`] for local folders.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            part_size: DEFAULT_PART_SIZE,
            local_root: None,
            durable: false,
            url: None,
            upload_on_publish: false,
            encryption: None,
            verified: CheckedVersions::new(),
            sync_observer: None,
        }
    }

    /// Encrypts every blob and derived object written, names blobs by keyed hashes, and reads
    /// only such objects (see [`Encryption`]). Large files are hashed first and uploaded at
    /// [`BlobStore::publish`], sealed on the way (their data key belongs to their hash), so
    /// nothing unencrypted goes through `staging/`. Chosen when a store is made:
    /// [`BlobStore::init`] refuses to mix.
    pub fn with_encryption(mut self, encryption: Encryption) -> Self {
        self.encryption = Some(encryption);
        self
    }

    /// Calls `observe` as each [`BlobStore::sync`] begins and when it has succeeded:
    /// everything written before it began is durable from then on. For tests that check the
    /// order of writes, syncs and catalog commits.
    pub fn with_sync_observer(mut self, observe: Arc<dyn Fn(SyncPhase) + Send + Sync>) -> Self {
        self.sync_observer = Some(SyncObserver(observe));
        self
    }

    /// Whether objects are encrypted (see [`BlobStore::with_encryption`]).
    pub fn is_encrypted(&self) -> bool {
        self.encryption.is_some()
    }

    /// Whether large files are hashed at staging and uploaded at publish.
    pub(crate) fn hashes_before_upload(&self) -> bool {
        self.upload_on_publish || self.encryption.is_some()
    }

    /// The name a blob is stored under: its content hash, or in an encrypted store a keyed
    /// hash of it, which only holders of the lake's keys can compute.
    pub fn blob_name(&self, hash: ContentHash) -> String {
        match &self.encryption {
            Some(encryption) => encryption.blob_name(hash),
            None => hash.to_string(),
        }
    }

    pub(crate) fn blob_path(&self, hash: ContentHash) -> Path {
        named_path(&self.blob_name(hash))
    }

    /// Sets the part size of streamed uploads (and the size up to which a file is read whole).
    pub fn with_part_size(mut self, part_size: usize) -> Self {
        debug_assert!(part_size >= 1024, "tiny parts make uploads crawl");
        self.part_size = part_size.max(1024);
        self
    }

    /// Makes large files go up at [`BlobStore::publish`], in parts straight to their blob's
    /// name, instead of into `staging/` at [`BlobStore::stage_file`] and then renamed. Right
    /// for object stores (S3, Azure), where a rename is a server-side copy (on S3 limited to
    /// 5 GB) plus a delete, and a multipart upload becomes visible only once complete.
    /// Staging then only hashes the file, which must stay unchanged until it is published
    /// ([`Error::SourceChanged`] otherwise), and a blob already stored whole is not uploaded
    /// again. [`BlobStore::open_url`] sets it for `s3://` and `az://` stores.
    pub fn with_upload_on_publish(mut self, upload_on_publish: bool) -> Self {
        self.upload_on_publish = upload_on_publish;
        self
    }

    /// Whether large files are uploaded at publish (see [`BlobStore::with_upload_on_publish`]).
    pub fn uploads_on_publish(&self) -> bool {
        self.hashes_before_upload()
    }

    /// The part size of streamed uploads; files up to this size are read whole.
    pub fn part_size(&self) -> usize {
        self.part_size
    }

    /// Opens a store from a URL: `file:///abs/dir`, `memory://`, `s3://bucket/prefix`,
    /// `az://container/prefix`. `options` are the backend's settings (credentials, endpoint),
    /// as object_store's builders name them (`aws_endpoint`, `azure_storage_account_name`, ...);
    /// keys that are not the URL's backend's are ignored, so one list can serve both. Remote
    /// stores connect within 5 s, give a request 60 s and retry a failed one a few times
    /// with backoff (options such as `timeout` or `connect_timeout` override that).
    pub fn open_url(
        url: &str,
        options: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        let mut local_root = None;
        let mut remote_url = None;
        let store: Arc<dyn ObjectStore> = match parsed.scheme() {
            "file" => {
                let dir = parsed
                    .to_file_path()
                    .map_err(|()| invalid("not an absolute local path".into()))?;
                std::fs::create_dir_all(&dir).map_err(|source| Error::Write {
                    path: dir.clone(),
                    source,
                })?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .map_err(Error::backend)?;
                local_root = Some(dir);
                Arc::new(store)
            }
            "memory" => Arc::new(InMemory::new()),
            "s3" | "s3a" | "az" | "azure" | "abfs" | "abfss" => {
                remote_url = Some(url.to_owned());
                remote(url, &parsed, options)?
            }
            other => return Err(invalid(format!("unknown scheme {other:?}"))),
        };
        Ok(Self {
            local_root,
            upload_on_publish: remote_url.is_some(),
            url: remote_url,
            ..Self::new(store)
        })
    }

    /// On local disk, makes [`BlobStore::sync`] flush to stable storage (object stores are
    /// durable when a write returns). Only stores opened with [`BlobStore::open_url`] know
    /// their folder; one built with [`BlobStore::new`] syncs nothing and cannot list
    /// object_store's unfinished local writes.
    pub fn with_durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Makes every blob published so far durable: on local disk, one `syncfs` of the file
    /// system the store is on, which covers a whole batch of files at once (and also flushes
    /// whatever else is dirty on that file system, other processes' writes included).
    /// Callers that record blobs elsewhere (the catalog) call this before recording, so that
    /// after a power cut no record names a blob that was not on disk. Writeback errors are
    /// reported as Linux reports them to `syncfs` (since 5.8; older kernels report none).
    pub async fn sync(&self) -> Result<()> {
        let observe = |phase| {
            if let Some(SyncObserver(observe)) = &self.sync_observer {
                observe(phase);
            }
        };
        observe(SyncPhase::Begins);
        if let Some(root) = self.local_root.clone().filter(|_| self.durable) {
            run_blocking(move || {
                let dir = std::fs::File::open(&root).map_err(|source| Error::Write {
                    path: root.clone(),
                    source,
                })?;
                flush_file_system(&dir).map_err(|source| Error::Write { path: root, source })
            })
            .await?;
        }
        observe(SyncPhase::Ended);
        Ok(())
    }

    /// Writes the layout marker into a new store, or checks it in an existing one. For a
    /// remote store this is also the check that it can be used: a server that does not
    /// answer, a missing bucket or container, or refused credentials end in
    /// [`Error::Unavailable`] naming the URL, within seconds.
    pub async fn init(&self) -> Result<()> {
        let Some(url) = &self.url else {
            return self.write_or_check_marker().await;
        };
        let unavailable = |problem: String, source| Error::Unavailable {
            url: url.clone(),
            problem,
            source,
        };
        // A listing first: some servers (s3s-fs) create a missing bucket on the first put,
        // while every one refuses to list a missing bucket or container.
        let check = async {
            self.store
                .list_with_delimiter(None)
                .await
                .map_err(Error::backend)?;
            self.write_or_check_marker().await
        };
        match tokio::time::timeout(INIT_DEADLINE, check).await {
            Ok(Err(Error::Backend { source })) => {
                Err(unavailable(remote_problem(&source), Some(Box::new(source))))
            }
            Ok(done) => done,
            Err(_) => Err(unavailable(
                format!("no answer within {} s", INIT_DEADLINE.as_secs()),
                None,
            )),
        }
    }

    async fn write_or_check_marker(&self) -> Result<()> {
        let key = Path::from(LAYOUT_KEY);
        let mut marker = serde_json::json!({ "layout": LAYOUT_VERSION, "hash": "blake3" });
        if self.encryption.is_some() {
            marker["encryption"] = ENCRYPTION.into();
        }
        let marker = marker.to_string();
        match self
            .store
            .put_opts(&key, marker.into(), PutMode::Create.into())
            .await
        {
            Ok(_) | Err(object_store::Error::NotImplemented { .. }) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(Error::backend(e)),
        }
        let found = self
            .store
            .get(&key)
            .await
            .map_err(Error::backend)?
            .bytes()
            .await
            .map_err(Error::backend)?;
        let marker = serde_json::from_slice::<serde_json::Value>(&found).ok();
        let layout = marker.as_ref().and_then(|v| v.get("layout")?.as_u64());
        if layout != Some(u64::from(LAYOUT_VERSION)) {
            return Err(Error::UnsupportedLayout {
                found: String::from_utf8_lossy(&found).chars().take(100).collect(),
                expected: LAYOUT_VERSION,
            });
        }
        let encrypted = marker.as_ref().and_then(|v| v.get("encryption")?.as_str());
        match (encrypted, self.encryption.is_some()) {
            (None, false) => Ok(()),
            (Some(ENCRYPTION), true) => Ok(()),
            (Some(other), true) => Err(Error::EncryptionMismatch {
                problem: format!(
                    "the blob store is encrypted as {other:?}; this build reads {ENCRYPTION:?}"
                ),
            }),
            (Some(_), false) => Err(Error::EncryptionMismatch {
                problem: "the blob store is encrypted, and no master key is configured: set \
                          APERTURE_MASTER_KEY or [encryption] key_file"
                    .into(),
            }),
            (None, true) => Err(Error::EncryptionMismatch {
                problem: "the blob store was made without encryption, which is chosen when a \
                          lake is made (aperture init --encrypt); remove the master key setting"
                    .into(),
            }),
        }
    }

    /// The object store underneath, for callers that need the raw interface (tests, tools).
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Whether [`BlobStore::publish_blocking`] publishes here (an unencrypted local folder).
    pub fn publishes_blocking(&self) -> bool {
        self.local_root.is_some() && self.encryption.is_none()
    }

    /// The blob's file when the store is a local folder, so that tools that want a path
    /// (ffprobe, decoders) read it in place. Reads through it are not verified: call
    /// [`BlobStore::verify`] first where that matters.
    /// `None` for remote and for encrypted stores.
    pub fn local_path(&self, hash: ContentHash) -> Option<std::path::PathBuf> {
        let root = self
            .local_root
            .as_ref()
            .filter(|_| self.encryption.is_none())?;
        Some(
            self.blob_path(hash)
                .parts()
                .fold(root.clone(), |dir, part| dir.join(part.as_ref())),
        )
    }

    /// The size of a blob, or `None` when there is no such blob.
    pub async fn size(&self, hash: ContentHash) -> Result<Option<u64>> {
        match self.store.head(&self.blob_path(hash)).await {
            Ok(meta) if self.encryption.is_some() => open_len(meta.size)
                .map(Some)
                .map_err(|reason| Error::Corrupt { hash, reason }),
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::backend(e)),
        }
    }

    /// Deletes a blob. Deleting a blob that is not there is not an error.
    pub async fn delete(&self, hash: ContentHash) -> Result<()> {
        match self.store.delete(&self.blob_path(hash)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::backend(e)),
        }
    }

    /// Every blob in the store. Objects under `blobs/` whose names are not hashes are skipped.
    pub fn list(&self) -> BoxStream<'static, Result<BlobEntry>> {
        let encrypted = self.encryption.is_some();
        self.store
            .list(Some(&Path::from(BLOBS)))
            .map_err(Error::backend)
            .try_filter_map(move |meta| async move {
                let Some(name) = meta
                    .location
                    .filename()
                    .filter(|name| name.len() == 64 && name.parse::<ContentHash>().is_ok())
                    .filter(|name| named_path(name) == meta.location)
                else {
                    return Ok(None);
                };
                Ok(Some(BlobEntry {
                    name: name.to_owned(),
                    hash: (!encrypted).then(|| name.parse().ok()).flatten(),
                    size: if encrypted {
                        open_len(meta.size).unwrap_or(meta.size)
                    } else {
                        meta.size
                    },
                    last_modified: UnixMillis(meta.last_modified.timestamp_millis()),
                }))
            })
            .boxed()
    }

    /// Deletes a blob by its stored name, for one whose content hash is known to nobody (an
    /// encrypted blob whose key is gone), if it is still the version a listing saw
    /// (`listed`, the store's own time of its last write): one written since (an ingest
    /// sealing the same content again) stays. Returns whether it was deleted; one that is not
    /// there is not an error.
    pub async fn delete_named_if_unchanged(&self, name: &str, listed: UnixMillis) -> Result<bool> {
        if name.len() != 64 || name.parse::<ContentHash>().is_err() {
            return Err(Error::InvalidName {
                name: name.chars().take(130).collect(),
            });
        }
        let path = named_path(name);
        let meta = match self.store.head(&path).await {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(Error::backend(e)),
        };
        if meta.last_modified.timestamp_millis() != listed.0 {
            return Ok(false);
        }
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(e) => Err(Error::backend(e)),
        }
    }

    /// What interrupted writers left behind: staged uploads never published, and on local
    /// disk the store's own unfinished writes (`name#N`), which its listings hide.
    pub async fn list_staging(&self) -> Result<Vec<StagingEntry>> {
        let mut found: Vec<StagingEntry> = self
            .store
            .list(Some(&Path::from(STAGING)))
            .map_err(Error::backend)
            .map_ok(|meta| StagingEntry {
                key: meta.location.to_string(),
                size: meta.size,
                last_modified: UnixMillis(meta.last_modified.timestamp_millis()),
            })
            .try_collect()
            .await?;
        if let Some(root) = self.local_root.clone() {
            found.extend(run_blocking(move || unfinished_local_writes(&root)).await?);
        }
        Ok(found)
    }

    /// Removes a leftover found by [`BlobStore::list_staging`].
    pub async fn delete_staging(&self, entry: &StagingEntry) -> Result<()> {
        if is_unfinished_write(&entry.key) {
            let Some(root) = &self.local_root else {
                return Ok(());
            };
            let path = root.join(&entry.key);
            return match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(Error::Write { path, source }),
            };
        }
        debug_assert!(entry.key.starts_with(STAGING));
        let path = Path::parse(&entry.key).map_err(|e| Error::backend(e.into()))?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::backend(e)),
        }
    }
}

#[cfg(target_os = "linux")]
fn flush_file_system(dir: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs only reads the descriptor, which `dir` keeps open for the call.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn flush_file_system(dir: &std::fs::File) -> std::io::Result<()> {
    // No syncfs: flushing the folder is the best a portable program can do.
    dir.sync_all()
}

/// `name#123`: how object_store's local store names a file it is still writing.
fn is_unfinished_write(key: &str) -> bool {
    key.rsplit_once('#').is_some_and(|(name, n)| {
        !name.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Unfinished local writes under `blobs/` and `staging/`, as keys relative to `root`.
fn unfinished_local_writes(root: &std::path::Path) -> Result<Vec<StagingEntry>> {
    let mut found = Vec::new();
    let mut dirs = vec![root.join(BLOBS), root.join(STAGING)];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(Error::Read { path: dir, source }),
        };
        for entry in entries {
            let entry = entry.map_err(|source| Error::Read {
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(path);
                continue;
            }
            let Ok(key) = path.strip_prefix(root) else {
                continue;
            };
            let key = key.to_string_lossy().into_owned();
            if is_unfinished_write(&key) {
                let meta = entry.metadata().map_err(|source| Error::Read {
                    path: path.clone(),
                    source,
                })?;
                found.push(StagingEntry {
                    key,
                    size: meta.len(),
                    last_modified: meta
                        .modified()
                        .map_or(UnixMillis(0), UnixMillis::from_system_time),
                });
            }
        }
    }
    Ok(found)
}

/// `blobs/<first 3 hex digits>/<64 hex digits>`: one level of 4,096 folders. On local disk a
/// new folder per blob (as two levels of 256 give while a store is young) costs more than the
/// write; 4,096 folders stay small up to hundreds of millions of blobs, and object stores see
/// no folders at all.
fn named_path(name: &str) -> Path {
    Path::from_iter([BLOBS, &name[0..3], name])
}

pub(crate) fn staging_path() -> Path {
    Path::from_iter([STAGING, &uuid::Uuid::now_v7().simple().to_string()])
}

/// What [`BlobStore::init`] says when a remote store fails: what the server's status means,
/// or that no connection could be made.
fn remote_problem(e: &object_store::Error) -> String {
    let status = match e {
        object_store::Error::NotFound { .. } => Some(404),
        object_store::Error::PermissionDenied { .. } => Some(403),
        object_store::Error::Unauthenticated { .. } => Some(401),
        e => http_status(e),
    };
    match status {
        Some(404) => "the bucket or container does not exist".into(),
        Some(401 | 403) => "the credentials were refused".into(),
        Some(status) => format!("the server answered with status {status}"),
        None if connection_failed(e) => "the server does not answer".into(),
        None => "the request failed".into(),
    }
}

/// The HTTP status in an error that object_store did not map to a variant of its own (a
/// listing's, say). Its retry error, which knows the status, is private: its message is not.
fn http_status(e: &(dyn std::error::Error + 'static)) -> Option<u16> {
    const MARK: &str = "status code: ";
    let mut next = Some(e);
    while let Some(e) = next {
        let text = e.to_string();
        if let Some(at) = text.find(MARK) {
            let digits = text.get(at + MARK.len()..at + MARK.len() + 3)?;
            return digits.parse().ok();
        }
        next = e.source();
    }
    None
}

/// Whether an error comes from a connection that could not be made or broke off.
fn connection_failed(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind;
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::TimedOut
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::AddrNotAvailable
            )
        {
            return true;
        }
        // reqwest says "error sending request" / "client error (Connect)" without an io error
        // in the chain on some paths.
        let text = e.to_string();
        if text.contains("Connect") || text.contains("connection") {
            return true;
        }
        next = e.source();
    }
    false
}

/// How remote stores are reached: a connection that cannot be made is noticed in seconds, a
/// request gets a minute, and a failed one is tried again up to four times with backoff
/// (0.2, 0.4, 0.8, 1.6 s), all within two minutes.
#[cfg(any(feature = "s3", feature = "azure"))]
fn client_defaults() -> (object_store::ClientOptions, object_store::RetryConfig) {
    use std::time::Duration;
    let client = object_store::ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(60));
    let retry = object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 4,
        retry_timeout: Duration::from_secs(120),
    };
    (client, retry)
}

/// Builds an S3 or Azure store. Settings come from `options` only: the binary passes the
/// usual environment variables (`AWS_*`, `AZURE_*`) through, lower-cased, which is what
/// object_store's `from_env` builders read.
fn remote(
    url: &str,
    parsed: &url::Url,
    options: impl IntoIterator<Item = (String, String)>,
) -> Result<Arc<dyn ObjectStore>> {
    let (scheme, prefix) =
        object_store::ObjectStoreScheme::parse(parsed).map_err(|e| Error::InvalidUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    let prefix = Path::parse(prefix).map_err(|e| Error::InvalidUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    let store: Arc<dyn ObjectStore> = match scheme {
        object_store::ObjectStoreScheme::AmazonS3 => s3(url, options)?,
        object_store::ObjectStoreScheme::MicrosoftAzure => azure(url, options)?,
        _ => {
            return Err(Error::InvalidUrl {
                url: url.to_owned(),
                reason: "not an S3 or Azure Blob url".into(),
            });
        }
    };
    Ok(if prefix.as_ref().is_empty() {
        store
    } else {
        Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
    })
}

#[cfg(feature = "s3")]
fn s3(
    url: &str,
    options: impl IntoIterator<Item = (String, String)>,
) -> Result<Arc<dyn ObjectStore>> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    let (client, retry) = client_defaults();
    let mut builder = AmazonS3Builder::new()
        .with_url(url)
        .with_client_options(client)
        .with_retry(retry);
    for (key, value) in options {
        if let Ok(key) = key.parse::<AmazonS3ConfigKey>() {
            builder = builder.with_config(key, value);
        }
    }
    Ok(Arc::new(builder.build().map_err(|e| {
        Error::InvalidUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        }
    })?))
}

#[cfg(not(feature = "s3"))]
fn s3(
    url: &str,
    _options: impl IntoIterator<Item = (String, String)>,
) -> Result<Arc<dyn ObjectStore>> {
    Err(Error::FeatureDisabled {
        url: url.to_owned(),
        feature: "s3",
    })
}

#[cfg(feature = "azure")]
fn azure(
    url: &str,
    options: impl IntoIterator<Item = (String, String)>,
) -> Result<Arc<dyn ObjectStore>> {
    use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
    let (client, retry) = client_defaults();
    let mut builder = MicrosoftAzureBuilder::new()
        .with_url(url)
        .with_client_options(client)
        .with_retry(retry);
    for (key, value) in options {
        if let Ok(key) = key.parse::<AzureConfigKey>() {
            builder = builder.with_config(key, value);
        }
    }
    Ok(Arc::new(builder.build().map_err(|e| {
        Error::InvalidUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        }
    })?))
}

#[cfg(not(feature = "azure"))]
fn azure(
    url: &str,
    _options: impl IntoIterator<Item = (String, String)>,
) -> Result<Arc<dyn ObjectStore>> {
    Err(Error::FeatureDisabled {
        url: url.to_owned(),
        feature: "azure",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_paths_fan_out_by_hash_prefix() {
        let hash = ContentHash::of(b"");
        assert_eq!(
            BlobStore::new(Arc::new(InMemory::new()))
                .blob_path(hash)
                .as_ref(),
            format!("blobs/af1/{hash}").as_str()
        );
    }

    #[test]
    fn unfinished_writes_are_recognised() {
        assert!(is_unfinished_write("blobs/af1/af13#1"));
        assert!(is_unfinished_write("staging/0192#12"));
        assert!(!is_unfinished_write("blobs/af1/af13"));
        assert!(!is_unfinished_write("blobs/af1/af13#"));
        assert!(!is_unfinished_write("blobs/af1/af13#x1"));
    }

    #[test]
    fn urls_are_checked() {
        let err = BlobStore::open_url("ftp://x", []).unwrap_err();
        assert!(err.to_string().contains("unknown scheme"), "{err}");
        let err = BlobStore::open_url("file://relative/dir", []);
        assert!(err.is_err());
        if !cfg!(feature = "s3") {
            let err = BlobStore::open_url("s3://bucket/x", []).unwrap_err();
            assert!(err.to_string().contains("`s3` feature"), "{err}");
        }
    }
}
