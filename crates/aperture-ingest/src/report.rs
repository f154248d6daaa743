use std::path::Path;
use std::time::Duration;

use aperture_catalog::Recorded;
use aperture_core::human::{HumanBytes as B, HumanCount as N, capped};
use aperture_core::{AssetId, ContentHash, MediaKind};
use serde::Serialize;

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    /// A new asset.
    Stored,
    /// Same content as an asset already in the collection: recorded as another source of it.
    Duplicate,
    /// Already ingested from this path with the same size and time: nothing to do.
    Known,
    /// Not stored; `error` says why.
    Failed,
}

/// One file's line in the [`Report`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileReport {
    /// The path as walked (before `record_under`), as lossy UTF-8.
    pub path: String,
    /// Its size in bytes: as found by the walk, or as stored.
    pub size: u64,
    /// What happened to it.
    pub status: FileStatus,
    /// The asset it is now a source of, unless it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset: Option<AssetId>,
    /// The blob it was stored as, once hashed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<ContentHash>,
    /// What it is, once probed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<MediaKind>,
    /// Its MIME type, once probed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
    /// The bytes were new to the blob store (not shared with any earlier asset).
    pub new_bytes: bool,
    /// Problems with the content; the file was stored all the same.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Why it failed.
    /// Why it was not stored (serialised as its message, with its kind beside it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<FileError>,
    /// The kind of `error`, for scripts: `walk`, `read`, `too_large`, `store`, `catalog`,
    /// `deletion_in_progress`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<FileErrorKind>,
}

/// What kind of problem kept a file out: what a caller acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileErrorKind {
    /// Walking to it failed (a folder that cannot be read, a symbolic-link loop, a file that
    /// vanished), or it is not a regular file.
    Walk,
    /// It could not be read or probed.
    Read,
    /// An image whose header claims more pixels than any analyzer decodes (a decompression
    /// bomb): refused before it was stored.
    TooLarge,
    /// The blob store could not take its bytes (disk full, permissions).
    Store,
    /// The catalog could not record it.
    Catalog,
    /// The same content is being deleted (an `rm` running, or one that was interrupted).
    DeletionInProgress,
}

/// Why one file was not stored: its kind, and a message that names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FileError {
    /// What kind of problem.
    pub kind: FileErrorKind,
    /// For people: names the file and the problem.
    pub message: String,
}

impl FileError {
    /// An error of `kind`; `message` must name the file.
    pub fn new(kind: FileErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// Reports keep today's JSON: the message as a string (`error_kind` says the kind).
impl Serialize for FileError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.message)
    }
}

impl FileReport {
    pub(crate) fn new(path: &Path, size: u64) -> Self {
        Self {
            path: path.to_string_lossy().into_owned(),
            size,
            status: FileStatus::Failed,
            asset: None,
            hash: None,
            kind: None,
            mime: None,
            new_bytes: false,
            warnings: Vec::new(),
            error: None,
            error_kind: None,
        }
    }

    pub(crate) fn failed(path: &Path, size: u64, error: FileError) -> Self {
        let mut report = Self::new(path, size);
        report.fail(error);
        report
    }

    pub(crate) fn fail(&mut self, error: FileError) {
        self.status = FileStatus::Failed;
        self.error_kind = Some(error.kind);
        self.error = Some(error);
    }

    pub(crate) fn known(&mut self, asset: AssetId) {
        self.status = FileStatus::Known;
        self.asset = Some(asset);
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn stored(
        &mut self,
        recorded: Recorded,
        hash: ContentHash,
        size: u64,
        new_bytes: bool,
        kind: MediaKind,
        mime: &str,
        problems: &[String],
    ) {
        let (status, asset) = match recorded {
            Recorded::Created(id) => (FileStatus::Stored, Some(id)),
            Recorded::Duplicate(id) => (FileStatus::Duplicate, Some(id)),
            Recorded::Known(id) => (FileStatus::Known, Some(id)),
            Recorded::BlobRaced => (FileStatus::Failed, None),
        };
        self.status = status;
        self.asset = asset;
        self.hash = Some(hash);
        self.size = size;
        self.new_bytes = new_bytes;
        self.kind = Some(kind);
        self.mime = Some(mime.to_owned());
        self.warnings = problems.to_vec();
    }
}

/// Counts over every file of an ingest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Files found (hidden ones left out).
    pub files: u64,
    /// Their bytes, whatever happened to them.
    pub bytes: u64,
    /// Files stored as new assets.
    pub stored: u64,
    /// Files whose content was already an asset in the collection.
    pub duplicates: u64,
    /// Files already ingested from the same path, unchanged.
    pub known: u64,
    /// Files that were not stored.
    pub failed: u64,
    /// Files stored with a warning about their content.
    pub warnings: u64,
    /// Bytes newly written to the blob store.
    pub new_bytes: u64,
    /// Hidden files and folders left out of the walk (not counted in `files`).
    pub hidden_skipped: u64,
}

/// The outcome of an ingest: totals, plus a line per file with a problem (or per file, when
/// asked for).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The collection ingested into.
    pub collection: String,
    /// Counts over every file.
    pub totals: Totals,
    /// Wall-clock time of the whole ingest.
    #[serde(serialize_with = "seconds")]
    pub elapsed: Duration,
    /// The files with a problem, or every file when `report_every_file` is set.
    pub files: Vec<FileReport>,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Report {
    pub(crate) fn add(&mut self, file: FileReport, keep_every_file: bool) {
        let t = &mut self.totals;
        t.files += 1;
        t.bytes += file.size;
        match file.status {
            FileStatus::Stored => t.stored += 1,
            FileStatus::Duplicate => t.duplicates += 1,
            FileStatus::Known => t.known += 1,
            FileStatus::Failed => t.failed += 1,
        }
        if !file.warnings.is_empty() {
            t.warnings += 1;
        }
        if file.new_bytes {
            t.new_bytes += file.size;
        }
        if keep_every_file || file.status == FileStatus::Failed || !file.warnings.is_empty() {
            self.files.push(file);
        }
    }
}

/// What `aperture ingest` prints: totals, rates, and the files that failed or were stored
/// with warnings (the first 20 of each).
impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = &self.totals;
        let secs = self.elapsed.as_secs_f64().max(1e-3);
        writeln!(
            f,
            "ingested {} files ({}) into {:?} in {:.1} s: {}/s, {} files/s",
            N(t.files),
            B(t.bytes),
            self.collection,
            secs,
            B((t.bytes as f64 / secs) as u64),
            N((t.files as f64 / secs) as u64),
        )?;
        write!(
            f,
            "  {} stored, {} duplicates, {} already known, {} failed; {} new in the blob store",
            N(t.stored),
            N(t.duplicates),
            N(t.known),
            N(t.failed),
            B(t.new_bytes),
        )?;
        if t.hidden_skipped > 0 {
            write!(
                f,
                "\n  {} hidden files or folders left out (--hidden takes them too)",
                N(t.hidden_skipped)
            )?;
        }
        let failed: Vec<_> = self
            .files
            .iter()
            .filter(|x| x.status == FileStatus::Failed)
            .map(|x| {
                x.error
                    .as_ref()
                    .map_or_else(|| x.path.clone(), |e| e.message.clone())
            })
            .collect();
        if !failed.is_empty() {
            write!(
                f,
                "\nfailed:\n{}",
                capped(&failed, 20, "--json lists them all").trim_end()
            )?;
        }
        let warned: Vec<_> = self
            .files
            .iter()
            .filter(|x| x.status != FileStatus::Failed && !x.warnings.is_empty())
            .map(|x| format!("{}: {}", x.path, x.warnings.join("; ")))
            .collect();
        if !warned.is_empty() {
            write!(
                f,
                "\nstored with warnings:\n{}",
                capped(&warned, 20, "--json lists them all").trim_end()
            )?;
        }
        Ok(())
    }
}
