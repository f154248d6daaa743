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
use aperture_catalog::{
    BlobGeneration, Catalog, CollectionId, KnownSource, NewAsset, NewSource, Recorded,
};
use aperture_core::{AnalyzerSpec, AssetId, ContentHash};
use aperture_media::ProbeOptions;
use futures::StreamExt;
use tokio::sync::{Semaphore, mpsc};

pub use batch::{Commit, GroupCommit, Stopped};
pub use report::{FileError, FileErrorKind, FileReport, FileStatus, Report, Totals};
use walk::Found;

/// How many times a file is retried when a concurrent deletion removes its blob mid-ingest.
const RACE_RETRIES: u32 = 5;
/// Bytes of small files held in memory at once, in KiB.
const MEMORY_BUDGET_KIB: u32 = 256 * 1024;
/// Small files prepared together on one blocking thread, when the blob store can take their
/// bytes there (an unencrypted local folder): one hop between threads per chunk, not several
/// per file, which is what bounded many-small-file ingest.
const CHUNK: usize = 32;

/// How to ingest: where to record, how much at once, what to walk and what to queue.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// The collection to record into, created if missing.
    pub collection: String,
    /// Files in flight at once; a chunk of small files counts as one. Many small files in
    /// flight make catalog batches large, and so the one sync and one commit per batch cheap;
    /// memory is bounded separately.
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
            let chunk = if self.blobs.publishes_blocking() {
                CHUNK
            } else {
                1
            };
            let part_size = self.blobs.part_size() as u64;
            let units = files.ready_chunks(chunk).flat_map(|found| {
                let (small, others): (Vec<_>, Vec<_>) = found.into_iter().partition(|f| {
                    chunk > 1 && matches!(f, Found::File { size, .. } if *size <= part_size)
                });
                let mut units: Vec<Unit> = others.into_iter().map(Unit::One).collect();
                if !small.is_empty() {
                    units.push(Unit::Small(small));
                }
                futures::stream::iter(units)
            });
            let mut results = std::pin::pin!(
                units
                    .map(|unit| {
                        for found in unit.files() {
                            if let Found::File { size, .. } = found {
                                progress.found(*size);
                            }
                        }
                        job.run_unit(unit)
                    })
                    .buffer_unordered(options.concurrency.max(1))
            );
            while let Some(files) = results.next().await {
                for file in files {
                    progress.done(&file);
                    report.add(file, options.report_every_file);
                }
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

/// What one task takes on: one file, or a chunk of small files.
enum Unit {
    One(Found),
    Small(Vec<Found>),
}

impl Unit {
    fn files(&self) -> &[Found] {
        match self {
            Unit::One(found) => std::slice::from_ref(found),
            Unit::Small(found) => found,
        }
    }
}

enum Prepared {
    Known(AssetId),
    Ready {
        probe: Box<aperture_media::Probe>,
        /// A small file, already read and hashed, with its blob generation.
        small: Option<(Staged, BlobGeneration)>,
    },
    /// A small file whose blob is published already.
    Published {
        probe: Box<aperture_media::Probe>,
        hash: ContentHash,
        size: u64,
        written: bool,
        generation: BlobGeneration,
    },
}

/// A file as the walk found it, with what will be recorded about its source.
#[derive(Clone)]
struct Source {
    path: PathBuf,
    size: u64,
    modified_ns: Option<i64>,
    recorded: NewSource,
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
    async fn run_unit(&self, unit: Unit) -> Vec<FileReport> {
        match unit {
            Unit::One(found) => vec![self.run(found).await],
            Unit::Small(found) => self.run_small(found).await,
        }
    }

    async fn run(&self, found: Found) -> FileReport {
        match found {
            Found::Error { path, error } => FileReport::failed(&path, 0, error),
            Found::File {
                path,
                size,
                modified_ns,
            } => {
                let file = self.source(path, size, modified_ns);
                let mut report = FileReport::new(&file.path, size);
                let outcome = self.file(&file, &mut report).await;
                finish_report(&file.path, &mut report, outcome);
                report
            }
        }
    }

    fn source(&self, path: PathBuf, size: u64, modified_ns: Option<i64>) -> Source {
        let recorded = match &self.options.record_under {
            Some((from, to)) => path.strip_prefix(from).map(|rest| to.join(rest)).ok(),
            None => None,
        };
        let recorded = new_source(recorded.as_deref().unwrap_or(&path), size, modified_ns);
        Source {
            path,
            size,
            modified_ns,
            recorded,
        }
    }

    async fn file(&self, file: &Source, report: &mut FileReport) -> Result<(), Failure> {
        // Everything synchronous about a small file happens in one blocking call: thread
        // hops, not IO, are what limit many-small-file ingest.
        let permits = self.permits(file.size).await?;
        let first = self.prepare(file).await?;
        self.store(file, first, Some(permits), report).await
    }

    /// Small files, all prepared and published on one blocking thread, then recorded together.
    async fn run_small(&self, found: Vec<Found>) -> Vec<FileReport> {
        let mut walk_errors = Vec::new();
        let files: Vec<Source> = found
            .into_iter()
            .filter_map(|found| match found {
                Found::File {
                    path,
                    size,
                    modified_ns,
                } => Some(self.source(path, size, modified_ns)),
                Found::Error { path, error } => {
                    walk_errors.push(FileReport::failed(&path, 0, error));
                    None
                }
            })
            .collect();
        let mut reports: Vec<FileReport> = files
            .iter()
            .map(|file| FileReport::new(&file.path, file.size))
            .collect();
        let kib = files.iter().map(|f| f.size / 1024 + 1).sum::<u64>();
        let permits = match self.memory_permits(kib).await {
            Ok(permits) => permits,
            Err(failure) => {
                for (file, report) in files.iter().zip(&mut reports) {
                    finish_report(&file.path, report, Err(failure.clone()));
                }
                return reports;
            }
        };
        let (catalog, blobs) = (self.catalog.clone(), self.blobs.clone());
        let (collection, probe) = (self.collection, self.options.probe.clone());
        let (files, prepared) = blocking(move || {
            // One query for the chunk's known check; should it fail, each file asks alone,
            // so that one bad row fails only its own file.
            let paths: Vec<&[u8]> = files.iter().map(|f| &*f.recorded.path_bytes).collect();
            let known = match catalog.known_sources(collection, &paths) {
                Ok(known) if known.len() == files.len() => Some(known),
                Ok(known) => {
                    tracing::warn!(
                        asked = files.len(),
                        answered = known.len(),
                        "known sources: not one answer per path; asking one by one"
                    );
                    None
                }
                Err(error) => {
                    tracing::warn!(%error, "known sources failed; asking one by one");
                    None
                }
            };
            let prepared: Vec<_> = files
                .iter()
                .enumerate()
                .map(|(i, file)| {
                    let known = match &known {
                        Some(known) => known[i].clone(),
                        None => known_source(&catalog, collection, file)?,
                    };
                    prepare_blocking(&catalog, &blobs, &probe, file, known, true)
                })
                .collect();
            (files, prepared)
        })
        .await;
        drop(permits);

        // Published files are recorded together; any other goes its own way.
        let (mut published, mut assets, mut later) = (Vec::new(), Vec::new(), Vec::new());
        for (i, prepared) in prepared.into_iter().enumerate() {
            match prepared {
                Ok(Prepared::Published {
                    probe,
                    hash,
                    size,
                    written,
                    generation,
                }) => {
                    assets.push(self.new_asset(&files[i], &probe, hash, size, &generation));
                    published.push((i, probe, hash, size, written));
                }
                Ok(Prepared::Known(asset)) => reports[i].known(asset),
                Ok(ready @ Prepared::Ready { .. }) => later.push((i, ready)),
                Err(failure) => finish_report(&files[i].path, &mut reports[i], Err(failure)),
            }
        }
        let recorded = self.record.submit_many(assets).await;
        for ((i, probe, hash, size, written), recorded) in published.into_iter().zip(recorded) {
            match recorded {
                Ok(Ok(Recorded::BlobRaced)) => {
                    // A deletion of this content raced the publish: the usual retries.
                    let ready = Prepared::Ready { probe, small: None };
                    later.push((i, ready));
                }
                Ok(Ok(recorded)) => stored(&mut reports[i], recorded, &probe, hash, size, written),
                Ok(Err(failure)) => finish_report(&files[i].path, &mut reports[i], Err(failure)),
                Err(e) => finish_report(
                    &files[i].path,
                    &mut reports[i],
                    Err(Failure(
                        FileErrorKind::Catalog,
                        format!("catalog writer: {e}"),
                    )),
                ),
            }
        }
        let finished = futures::future::join_all(later.into_iter().map(|(i, ready)| {
            let (file, mut report) = (&files[i], reports[i].clone());
            async move {
                let outcome = self.store(file, ready, None, &mut report).await;
                finish_report(&file.path, &mut report, outcome);
                (i, report)
            }
        }))
        .await;
        for (i, report) in finished {
            reports[i] = report;
        }
        reports.extend(walk_errors);
        reports
    }

    fn new_asset(
        &self,
        file: &Source,
        probe: &aperture_media::Probe,
        hash: ContentHash,
        size: u64,
        generation: &BlobGeneration,
    ) -> NewAsset {
        NewAsset {
            collection: self.collection,
            hash,
            size,
            kind: probe.kind,
            mime: probe.mime.clone(),
            metadata: probe.metadata.clone(),
            source: file.recorded.clone(),
            generation_seen: generation.generation,
            jobs: self
                .options
                .jobs
                .iter()
                .filter(|spec| spec.applies_to(probe.kind))
                .map(|spec| (spec.name.to_owned(), spec.priority))
                .collect(),
        }
    }

    /// Publishes and records a prepared file, retrying while a deletion of the same content
    /// races it. `permits` are held until the bytes are published.
    async fn store(
        &self,
        file: &Source,
        first: Prepared,
        mut permits: Option<tokio::sync::SemaphorePermit<'_>>,
        report: &mut FileReport,
    ) -> Result<(), Failure> {
        let (probe, mut small) = match first {
            Prepared::Known(asset) => {
                report.known(asset);
                return Ok(());
            }
            Prepared::Ready { probe, small } => (probe, small),
            Prepared::Published { probe, .. } => (probe, None),
        };
        for attempt in 0..RACE_RETRIES {
            if permits.is_none() && small.is_none() {
                permits = Some(self.permits(file.size).await?);
            }
            let (staged, generation) = match small.take() {
                Some(ready) => ready,
                None => {
                    let staged = self
                        .blobs
                        .stage_file(&file.path)
                        .await
                        .map_err(Failure::blob)?;
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
            let asset = self.new_asset(file, &probe, hash, stored_size, &generation);
            let recorded =
                self.record.submit(asset).await.map_err(|e| {
                    Failure(FileErrorKind::Catalog, format!("catalog writer: {e}"))
                })??;
            if recorded == Recorded::BlobRaced {
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
            stored(report, recorded, &probe, hash, stored_size, written);
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
        if size > self.blobs_part_size() {
            return self
                .large
                .acquire()
                .await
                .map_err(Failure::of(FileErrorKind::Read));
        }
        self.memory_permits(size / 1024 + 1).await
    }

    async fn memory_permits(&self, kib: u64) -> Result<tokio::sync::SemaphorePermit<'_>, Failure> {
        let kib = u32::try_from(kib)
            .unwrap_or(u32::MAX)
            .min(MEMORY_BUDGET_KIB);
        self.memory
            .acquire_many(kib)
            .await
            .map_err(Failure::of(FileErrorKind::Read))
    }

    /// On one blocking thread: skip the file if it is known; else, when it fits in one part,
    /// read and hash it and probe those bytes (a larger file is probed from disk), and read its
    /// blob generation.
    async fn prepare(&self, file: &Source) -> Result<Prepared, Failure> {
        let (catalog, blobs) = (self.catalog.clone(), self.blobs.clone());
        let (collection, probe) = (self.collection, self.options.probe.clone());
        let file = file.clone();
        blocking(move || {
            let known = known_source(&catalog, collection, &file)?;
            prepare_blocking(&catalog, &blobs, &probe, &file, known, false)
        })
        .await
    }

    fn blobs_part_size(&self) -> u64 {
        self.blobs.part_size() as u64
    }
}

/// The newest source the catalog has at the file's path.
fn known_source(
    catalog: &Arc<dyn Catalog>,
    collection: CollectionId,
    file: &Source,
) -> Result<Option<KnownSource>, Failure> {
    catalog
        .known_source(collection, &file.recorded.path_bytes)
        .map_err(Failure::of(FileErrorKind::Catalog))
}

/// Skips a known file (`known`: the newest source the catalog has at its path); else, when it
/// fits in one part, reads and hashes it, probes and size-checks those bytes (a larger file is
/// probed and checked from disk) and reads its blob generation, and with `publish` stores its
/// bytes when the store takes them on this thread.
fn prepare_blocking(
    catalog: &Arc<dyn Catalog>,
    blobs: &BlobStore,
    probe_options: &ProbeOptions,
    file: &Source,
    known: Option<KnownSource>,
    publish: bool,
) -> Result<Prepared, Failure> {
    let path = &file.path;
    if let Some(known) = known
        && known.file_size == file.size
        && known.modified_ns == file.modified_ns
        && file.modified_ns.is_some()
    {
        return Ok(Prepared::Known(known.asset));
    }
    // A file of one part is read once, whole: its type, metadata and size check come from the
    // bytes that are stored (audio and video metadata excepted: ffprobe reads the path).
    let staged = if file.size <= blobs.part_size() as u64 {
        blobs
            .stage_small_file_blocking(path)
            .map_err(Failure::blob)?
    } else {
        None
    };
    let bytes = staged.as_ref().and_then(|s| s.in_memory());
    debug_assert!(
        staged.is_none() || bytes.is_some(),
        "a file staged on this thread is held in memory"
    );
    let probe = match bytes {
        Some(bytes) => aperture_media::probe_bytes(path, bytes, probe_options),
        None => aperture_media::probe_file(path, probe_options),
    }
    .map_err(Failure::of(FileErrorKind::Read))?;
    // A decompression bomb is refused before it is stored, as an upload is.
    if probe.kind == aperture_core::MediaKind::Image {
        let shown = path.display().to_string();
        match bytes {
            Some(bytes) => aperture_media::check_image_bytes(bytes, &shown),
            None => aperture_media::check_image_size(path, &shown),
        }
        .map_err(|e| match e {
            // Unreadable by now (gone, or swapped for something that is not a file).
            aperture_media::TooLarge::Io { .. } => Failure(FileErrorKind::Read, e.to_string()),
            e => Failure(FileErrorKind::TooLarge, format!("refused: {e}")),
        })?;
    }
    let probe = Box::new(probe);
    let Some(staged) = staged else {
        return Ok(Prepared::Ready { probe, small: None });
    };
    let generation = catalog
        .blob_generation(staged.hash())
        .map_err(Failure::of(FileErrorKind::Catalog))?;
    if !publish {
        return Ok(Prepared::Ready {
            probe,
            small: Some((staged, generation)),
        });
    }
    let (hash, size) = (staged.hash(), staged.size());
    match blobs.publish_blocking(staged).map_err(Failure::blob)? {
        Ok(written) => Ok(Prepared::Published {
            probe,
            hash,
            size,
            written,
            generation,
        }),
        Err(staged) => Ok(Prepared::Ready {
            probe,
            small: Some((staged, generation)),
        }),
    }
}

/// Marks a file stored: recorded as `recorded`, with what its probe found.
fn stored(
    report: &mut FileReport,
    recorded: Recorded,
    probe: &aperture_media::Probe,
    hash: ContentHash,
    size: u64,
    written: bool,
) {
    let problems = &probe.metadata.problems;
    report.stored(
        recorded,
        hash,
        size,
        written,
        probe.kind,
        &probe.mime,
        problems,
    );
}

/// Marks a file failed, with a message that names it, whichever layer the problem came from.
fn finish_report(path: &Path, report: &mut FileReport, outcome: Result<(), Failure>) {
    if let Err(Failure(kind, error)) = outcome {
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

/// Commits catalog rows in batches: one transaction for whatever is waiting, up to the
/// catalog's [`Catalog::record_batch_limit`], after making the batch's blobs durable with one
/// sync (a group commit).
fn rows_writer(
    blobs: BlobStore,
    catalog: Arc<dyn Catalog>,
) -> GroupCommit<NewAsset, Result<Recorded, Failure>> {
    GroupCommit::start(
        catalog.record_batch_limit(),
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
