//! Ingest: walk folders, store each file's bytes as a blob, probe it and record it in the
//! catalog, many files at once. One bad file never stops a batch: every file gets a line in
//! the [`Report`], with the problem named.
//!
//! **Order of writes**, which makes a crash at any moment safe: the blob is published under
//! its hash first, the catalog row is committed second. A crash in between leaves an
//! unreferenced blob (invisible, and reused or collected later), never a row without its blob.

mod batch;
mod report;
mod walk;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aperture_blob::{BlobStore, Staged};
use aperture_catalog::{BlobGeneration, Catalog, CollectionId, NewAsset, NewSource, Recorded};
use aperture_core::{AnalyzerSpec, AssetId};
use aperture_media::ProbeOptions;
use futures::StreamExt;
use tokio::sync::{Semaphore, mpsc};

pub use batch::{Commit, GroupCommit, Stopped};
pub use report::{FileError, FileErrorKind, FileReport, FileStatus, Report, Totals};
use walk::Found;

/// How many times a file is retried when a concurrent deletion removes its blob mid-ingest.
const RACE_RETRIES: u32 = 5;
/// Catalog rows committed per transaction at most.
const BATCH: usize = 256;
/// Bytes of small files held in memory at once, in KiB.
const MEMORY_BUDGET_KIB: u32 = 256 * 1024;

/// How to ingest: where to record, how much at once, what to walk and what to queue.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// The collection to record into, created if missing.
    pub collection: String,
    /// Files in flight at once. Many small files in flight make catalog batches large, and
    /// so the one sync and one commit per batch cheap; memory is bounded separately.
    pub concurrency: usize,
    /// Files larger than the blob store's part size in flight at once (each holds a few parts).
    pub large_concurrency: usize,
    /// Follow symbolic links while walking, to files and folders alike.
    pub follow_symlinks: bool,
    /// Walk into names that start with a dot (`.git`, `.DS_Store`). Paths given by name are
    /// always taken.
    pub include_hidden: bool,
    /// Keep a report line for every file, not only those with problems.
    pub report_every_file: bool,
    /// How to probe each file.
    pub probe: ProbeOptions,
    /// Analysis jobs queued with every new asset whose kind they take.
    /// The analyzers to queue a job for, each for the kinds its spec names.
    pub jobs: Vec<&'static AnalyzerSpec>,
    /// Record files found under the first path as if they were under the second: an upload
    /// staged in a temporary folder is recorded under the name its sender gave it.
    pub record_under: Option<(PathBuf, PathBuf)>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            collection: "default".into(),
            concurrency: 64,
            large_concurrency: 2,
            follow_symlinks: true,
            include_hidden: false,
            report_every_file: false,
            probe: ProbeOptions::default(),
            jobs: Vec::new(),
            record_under: None,
        }
    }
}

/// Receives progress as it happens (a progress bar, a log). Called from many tasks at once.
pub trait Progress: Send + Sync {
    /// A file was found by the walk.
    fn found(&self, _bytes: u64) {}
    /// A file is done, whatever the outcome.
    fn done(&self, _file: &FileReport) {}
}

/// Ignores progress.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Why an ingest failed as a whole; a single file's failure is a line in the [`Report`].
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The catalog could not open the collection.
    #[error(transparent)]
    Catalog(#[from] aperture_catalog::Error),
}

/// Stores files as blobs, probes them and records them in the catalog. Holds only the two
/// stores: each [`Ingester::ingest`] is independent of the others.
pub struct Ingester {
    blobs: BlobStore,
    catalog: Arc<dyn Catalog>,
}

impl Ingester {
    /// An ingester over these stores.
    pub fn new(blobs: BlobStore, catalog: Arc<dyn Catalog>) -> Self {
        Self { blobs, catalog }
    }

    /// Ingests files and folders (recursively). Fails as a whole only when the collection
    /// cannot be opened; every per-file problem is in the report.
    pub async fn ingest(
        &self,
        paths: &[PathBuf],
        options: &IngestOptions,
        progress: &dyn Progress,
    ) -> Result<Report, Error> {
        let started = Instant::now();
        let catalog = self.catalog.clone();
        let name = options.collection.clone();
        let collection = blocking(move || catalog.ensure_collection(&name)).await?;

        let (found_tx, found_rx) = mpsc::channel::<Found>(4096);
        let walker = walk::spawn(
            paths.to_vec(),
            options.follow_symlinks,
            options.include_hidden,
            found_tx,
        );
        let record = rows_writer(self.blobs.clone(), self.catalog.clone());

        let mut report = Report::default();
        {
            let job = Job {
                blobs: &self.blobs,
                catalog: &self.catalog,
                collection: collection.id,
                options,
                record,
                large: Semaphore::new(options.large_concurrency.max(1)),
                memory: Semaphore::new(MEMORY_BUDGET_KIB as usize),
            };
            let files = futures::stream::unfold(found_rx, |mut rx| async move {
                rx.recv().await.map(|found| (found, rx))
            });
            let mut results = std::pin::pin!(
                files
                    .map(|found| {
                        if let Found::File { size, .. } = &found {
                            progress.found(*size);
                        }
                        job.run(found)
                    })
                    .buffer_unordered(options.concurrency.max(1))
            );
            while let Some(file) = results.next().await {
                progress.done(&file);
                report.add(file, options.report_every_file);
            }
        }
        // The walker ends once its channel closes; its panic is ours. Every file's row was
        // committed before its report came back.
        match walker.await {
            Ok(hidden) => report.totals.hidden_skipped = hidden,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
        report.elapsed = started.elapsed();
        report.collection = collection.name;
        Ok(report)
    }
}

enum Prepared {
    Known(AssetId),
    Ready {
        probe: Box<aperture_media::Probe>,
        /// A small file, already read and hashed, with its blob generation.
        small: Option<(Staged, BlobGeneration)>,
    },
}

struct Job<'a> {
    blobs: &'a BlobStore,
    catalog: &'a Arc<dyn Catalog>,
    collection: CollectionId,
    options: &'a IngestOptions,
    record: GroupCommit<NewAsset, Result<Recorded, Failure>>,
    large: Semaphore,
    memory: Semaphore,
}

impl Job<'_> {
    async fn run(&self, found: Found) -> FileReport {
        match found {
            Found::Error { path, error } => FileReport::failed(&path, 0, error),
            Found::File {
                path,
                size,
                modified_ns,
            } => {
                let mut report = FileReport::new(&path, size);
                if let Err(Failure(kind, error)) =
                    self.file(&path, size, modified_ns, &mut report).await
                {
                    // Every message names its file, whichever layer it came from.
                    let shown = path.display().to_string();
                    report.fail(FileError::new(
                        kind,
                        if error.contains(&shown) {
                            error
                        } else {
                            format!("cannot ingest {shown}: {error}")
                        },
                    ));
                }
                report
            }
        }
    }

    async fn file(
        &self,
        path: &Path,
        size: u64,
        modified_ns: Option<i64>,
        report: &mut FileReport,
    ) -> Result<(), Failure> {
        let recorded = match &self.options.record_under {
            Some((from, to)) => path.strip_prefix(from).map(|rest| to.join(rest)).ok(),
            None => None,
        };
        let source = new_source(recorded.as_deref().unwrap_or(path), size, modified_ns);
        // Everything synchronous about a small file happens in one blocking call: thread
        // hops, not IO, are what limit many-small-file ingest.
        let mut permits = Some(self.permits(size).await?);
        let first = self.prepare(path, &source, size, modified_ns).await?;
        let (probe, mut small) = match first {
            Prepared::Known(asset) => {
                report.known(asset);
                return Ok(());
            }
            Prepared::Ready { probe, small } => (probe, small),
        };

        for attempt in 0..RACE_RETRIES {
            if permits.is_none() {
                permits = Some(self.permits(size).await?);
            }
            let (staged, generation) = match small.take() {
                Some(ready) => ready,
                None => {
                    let staged = self.blobs.stage_file(path).await.map_err(Failure::blob)?;
                    let (catalog, hash) = (self.catalog.clone(), staged.hash());
                    let generation = blocking(move || catalog.blob_generation(hash))
                        .await
                        .map_err(Failure::of(FileErrorKind::Catalog))?;
                    (staged, generation)
                }
            };
            let hash = staged.hash();
            // While a deletion of this content is under way the catalog answers BlobRaced;
            // the retry publishes again once the deletion has finished.
            let stored_size = staged.size();
            let written = match self.blobs.publish(staged).await {
                Ok(written) => written,
                // An encrypted blob's key destroyed by an erasure while this was being
                // published: the retry reads the generation again and gets a new key.
                Err(aperture_blob::Error::KeyGone { .. }) => {
                    drop(permits.take());
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => return Err(Failure::blob(e)),
            };
            drop(permits.take());
            let asset = NewAsset {
                collection: self.collection,
                hash,
                size: stored_size,
                kind: probe.kind,
                mime: probe.mime.clone(),
                metadata: probe.metadata.clone(),
                source: source.clone(),
                generation_seen: generation.generation,
                jobs: self
                    .options
                    .jobs
                    .iter()
                    .filter(|spec| spec.applies_to(probe.kind))
                    .map(|spec| (spec.name.to_owned(), spec.priority))
                    .collect(),
            };
            let recorded =
                self.record.submit(asset).await.map_err(|e| {
                    Failure(FileErrorKind::Catalog, format!("catalog writer: {e}"))
                })??;
            if recorded == Recorded::BlobRaced {
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
            report.stored(
                recorded,
                hash,
                stored_size,
                written,
                probe.kind,
                &probe.mime,
                &probe.metadata.problems,
            );
            return Ok(());
        }
        Err(Failure(
            FileErrorKind::DeletionInProgress,
            "the same content is being deleted; if no `aperture rm` is running, one was \
             interrupted: `aperture fsck --repair --min-age 0` finishes it; then ingest again"
                .into(),
        ))
    }

    /// A large file holds up to a few parts in memory (and probing a large PDF reads it
    /// whole), so only a few large files are in flight at once. A small file is held whole
    /// until published, so small files share a memory budget. Both are given back once the
    /// file is published, before the catalog commit, where many files wait together.
    async fn permits(&self, size: u64) -> Result<tokio::sync::SemaphorePermit<'_>, Failure> {
        let closed = Failure::of(FileErrorKind::Read);
        if size > self.blobs_part_size() {
            return self.large.acquire().await.map_err(closed);
        }
        let kib = u32::try_from(size / 1024 + 1)
            .unwrap_or(u32::MAX)
            .min(MEMORY_BUDGET_KIB);
        self.memory.acquire_many(kib).await.map_err(closed)
    }

    /// On one blocking thread: skip the file if it is known; else probe it and, when it fits
    /// in one part, read and hash it and read its blob generation.
    async fn prepare(
        &self,
        path: &Path,
        source: &NewSource,
        size: u64,
        modified_ns: Option<i64>,
    ) -> Result<Prepared, Failure> {
        let catalog = self.catalog.clone();
        let blobs = self.blobs.clone();
        let (collection, key) = (self.collection, source.path_bytes.clone());
        let probe_options = self.options.probe.clone();
        let path = path.to_path_buf();
        let small_enough = size <= self.blobs_part_size();
        blocking(move || {
            let known = catalog
                .known_source(collection, &key)
                .map_err(Failure::of(FileErrorKind::Catalog))?;
            if let Some(known) = known
                && known.file_size == size
                && known.modified_ns == modified_ns
                && modified_ns.is_some()
            {
                return Ok(Prepared::Known(known.asset));
            }
            let probe = aperture_media::probe_file(&path, &probe_options)
                .map_err(Failure::of(FileErrorKind::Read))?;
            // A decompression bomb is refused before it is stored, as an upload is.
            if probe.kind == aperture_core::MediaKind::Image {
                aperture_media::check_image_size(&path, &path.display().to_string())
                    .map_err(|e| Failure(FileErrorKind::TooLarge, format!("refused: {e}")))?;
            }
            let staged = if small_enough {
                blobs
                    .stage_small_file_blocking(&path)
                    .map_err(Failure::blob)?
            } else {
                None
            };
            let small = match staged {
                Some(staged) => {
                    let generation = catalog
                        .blob_generation(staged.hash())
                        .map_err(Failure::of(FileErrorKind::Catalog))?;
                    Some((staged, generation))
                }
                None => None,
            };
            Ok(Prepared::Ready {
                probe: Box::new(probe),
                small,
            })
        })
        .await
    }

    fn blobs_part_size(&self) -> u64 {
        self.blobs.part_size() as u64
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(50 << attempt.min(6))
}

fn new_source(path: &Path, size: u64, modified_ns: Option<i64>) -> NewSource {
    NewSource {
        path_bytes: path_bytes(path),
        path: path.to_string_lossy().into_owned(),
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        file_size: size,
        modified_ns,
    }
}

#[cfg(unix)]
fn path_bytes(path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().to_vec()
}

#[cfg(not(unix))]
fn path_bytes(path: &Path) -> Vec<u8> {
    path.to_string_lossy().as_bytes().to_vec()
}

/// Commits catalog rows in batches: one transaction for whatever is waiting, up to `BATCH`,
/// after making the batch's blobs durable with one sync (a group commit).
fn rows_writer(
    blobs: BlobStore,
    catalog: Arc<dyn Catalog>,
) -> GroupCommit<NewAsset, Result<Recorded, Failure>> {
    GroupCommit::start(
        BATCH,
        Box::new(move |assets: Vec<NewAsset>| {
            let (blobs, catalog) = (blobs.clone(), catalog.clone());
            Box::pin(async move {
                if let Err(e) = blobs.sync().await {
                    let error = Failure(
                        FileErrorKind::Store,
                        format!("cannot make the stored bytes durable: {e}"),
                    );
                    return vec![Err(error); assets.len()];
                }
                blocking(move || record_batch(catalog.as_ref(), &assets)).await
            })
        }),
    )
}

/// Records a batch in one transaction; when that fails, one by one, so that one bad row does
/// not fail its neighbours.
fn record_batch(catalog: &dyn Catalog, assets: &[NewAsset]) -> Vec<Result<Recorded, Failure>> {
    match catalog.record(assets) {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(batch_error) => {
            tracing::warn!(error = %batch_error, "batch failed; recording one by one");
            assets
                .iter()
                .map(|asset| {
                    catalog
                        .record(std::slice::from_ref(asset))
                        .map(|mut out| out.remove(0))
                        .map_err(|e| {
                            Failure(
                                FileErrorKind::Catalog,
                                format!("cannot record in catalog: {e}"),
                            )
                        })
                })
                .collect()
        }
    }
}

/// A file's failure on its way in: its kind and what went wrong (the message is prefixed with
/// the file's name when it does not name it already).
#[derive(Debug, Clone)]
struct Failure(FileErrorKind, String);

impl Failure {
    fn of<E: std::fmt::Display>(kind: FileErrorKind) -> impl FnOnce(E) -> Failure {
        move |e| Failure(kind, e.to_string())
    }

    /// A blob store error: reading the file, or storing its bytes.
    fn blob(e: aperture_blob::Error) -> Failure {
        let kind = match e {
            aperture_blob::Error::Read { .. } => FileErrorKind::Read,
            _ => FileErrorKind::Store,
        };
        Failure(kind, e.to_string())
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
