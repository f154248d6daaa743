//! `aperture.toml` → [`ConfigFile`] (what the user wrote) → [`Config`] (validated, resolved).

use std::path::{Path, PathBuf};

use crate::{Error, Result};
use serde::Deserialize;

/// The config file's name in the data folder, read when no other file is given.
pub const CONFIG_NAME: &str = "aperture.toml";

/// The file `aperture init` writes: every setting, commented, with its default.
pub const DEFAULT_CONFIG: &str = r#"# Aperture configuration. Every setting is optional; the values shown are the defaults.

[storage]
# Where blob bytes live: file:///abs/path, s3://bucket/prefix, az://container/prefix
# (credentials and endpoints from AWS_* / AZURE_* variables). Default: the `blobs` folder of
# the data folder.
# blobs = "file:///var/lib/aperture/blobs"

# The catalog database: sqlite:///abs/path/catalog.db, or postgres://user@host:port/database
# for many workers and servers on many machines (a password goes in the URL: this file is
# written readable by its owner only; the connection is not encrypted, so keep the database
# on a private network).
# Default: `catalog.db` in the data folder.
# catalog = "sqlite:///var/lib/aperture/catalog.db"

# The search index: postgres://user@host:port/database for one index that every server and
# worker shares (PostgreSQL text search and pgvector, which the server needs; the database may
# be the catalog's), for collections larger than one machine's memory. Default: the embedded
# index in the `search` folder of the data folder, one per server.
# search = "postgres://aperture@db.internal:5432/lake"

# On local disk, flush blobs to stable storage before the catalog records them (one flush per
# batch of files), so that after a power cut no asset names bytes that were not on disk.
fsync = true

[ingest]
# Collection used when `aperture ingest` is given no --collection.
default_collection = "default"
# Files in flight at once (small files share a 256 MiB memory budget).
concurrency = 64
# Files over 8 MiB read at once; each holds up to three 8 MiB parts in memory.
large_concurrency = 2
# Follow symbolic links while walking folders (loops are detected and reported).
follow_symlinks = true
# Walk into hidden files and folders (names starting with a dot: .git, .DS_Store, .Trash).
# Paths named on the command line are always ingested.
include_hidden = false

[worker]
# Jobs one worker process (`aperture index`, `aperture worker`) runs at once; 0: one per
# core. `--threads` overrides it.
threads = 0
# Jobs of one analyzer running at once at most, by analyzer name, so that a slow one leaves
# cores to the others: { ocr = 1, speech = 1 }. Analyzers not named take any free slot.
concurrency = {}

[media]
# The ffprobe program used to read audio and video metadata.
ffprobe = "ffprobe"
# The ffmpeg program used to decode video (shots, keyframes, frames) and encode previews.
ffmpeg = "ffmpeg"

[video]
# Videos longer than this are analysed in parts of this many seconds, as jobs of their own
# that several workers run at once; the parts join into one timeline.
chunk_secs = 600
# Longer videos are refused (their jobs fail, naming the limit).
max_duration_secs = 21600
# Keyframes stored per video at most, for its longest shots.
max_keyframes = 1000

[ocr]
# The detector that finds lines of text: small (PP-OCRv6 small, `ppocr-v6`) or tiny
# (`aperture models install ppocr-v6-tiny`): half the OCR time, for a fast first pass or a
# re-index at scale, but small text in photos is missed more often. Every worker of a lake
# should use the same one: each takes the other's results for stale.
# Changing it makes earlier OCR results stale (`aperture reindex --analyzer ocr`).
detector = "small"

[speech]
# The Whisper model that transcribes speech: whisper-base (99 languages, detected per stretch
# of speech) or whisper-tiny-en (English only, about three times faster). Default: the first
# of those two that is installed.
# model = "whisper-base"
# The language everything is spoken in, as a two-letter code (Whisper's own haw, jw where
# there is none), when you know it: skips detection. Default: detected.
# language = "es"
# Longer recordings (and the sound of longer videos) are transcribed in parts of this many
# seconds, cut at pauses, that several workers run at once.
chunk_secs = 600
# Longer recordings are refused (their jobs fail, naming the limit).
max_duration_secs = 21600

[translate]
# The languages everything is translated into (two-letter codes): text in any other language
# (document pages, OCR lines, what was said) gets a translation into each, indexed for search.
targets = ["en"]
# Where Apertium's language pairs are (Debian's apertium-* packages; see `aperture models list`).
apertium_modes = "/usr/share/apertium/modes"
# An engine that has not answered after this many seconds (plus one per 10 kB of text) is
# stopped, and the job fails naming the file.
timeout_secs = 30
# Text translated per asset at most, in KiB: the rest is marked as not translated.
max_text_kib = 1024

[models]
# Where `aperture models install` puts models and the analyzers load them from.
# Default: the `models` folder of the data folder.
# dir = "/var/lib/aperture/models"
# Analyzers not to run even when their models are installed (see `aperture index --help`).
disabled = []
# A CLIP model from the Hugging Face hub for image embeddings that match text (no registry
# package carries one): pull it first with `aperture models pull ID`.
# clip = "openai/clip-vit-base-patch32"
# The memory the loaded models may take together, in MiB: to make room for another, models
# no job is using are unloaded, least recently used first; a model in use stays, and a job
# whose model does not fit beside those in use waits for them. 0: no limit. Default: a quarter
# of the machine's (or container's) memory.
# memory_mib = 1024

[server]
# Where `aperture serve` listens. Use 0.0.0.0:7878 to serve other machines (put TLS in front).
listen = "127.0.0.1:7878"
# Largest file an upload may carry, in MiB.
max_upload_mib = 4096
# An upload that sends nothing for this long is cut off (a client that never finishes).
idle_timeout_secs = 30
# Any other request must be answered within this time.
request_timeout_secs = 60
# Analysis workers `aperture serve` runs itself (0: leave analysis to `aperture worker`).
workers = 1
# Connections served at once, in all and from one address (an IPv6 /64 is one address).
# A request's headers must arrive within 10 s and its body at 1 KiB/s or more on average.
max_connections = 4096
max_connections_per_address = 64
# Set when a proxy terminates TLS in front of the server: session cookies are marked Secure
# (browsers then keep them over https only, so the web UI cannot sign in over plain http).
tls_in_front = false

[retention]
# How often `aperture serve` and `aperture worker` erase what outlived its collection's
# retention (set with `aperture collection set NAME --retention 90d`).
sweep_every_secs = 60

[audit]
# The key the audit log's chain is keyed with; made when missing. Keep a copy away from the
# catalog, and give every server, worker and CLI of the lake the same one. Default: audit.key in
# the data folder.
# key_file = "/etc/aperture/audit.key"

[encryption]
# Encryption at rest of every blob and derived object, each with its own data key, wrapped by
# this master key (64 hex digits in a file; the APERTURE_MASTER_KEY variable overrides it).
# Chosen when a lake is made (aperture init --encrypt); a lake made without it stays without.
# Keep the key away from the data folder's backups: with it, they can be read.
# key_file = "/etc/aperture/master.key"
# Earlier master keys, still accepted while `aperture key rotate` rewraps data keys.
# previous_key_files = []
"#;

/// `aperture.toml` as written: unknown keys are refused, missing ones take their defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigFile {
    /// The `[storage]` table.
    pub storage: StorageSection,
    /// The `[ingest]` table.
    pub ingest: IngestSection,
    /// The `[worker]` table.
    pub worker: WorkerSection,
    /// The `[media]` table.
    pub media: MediaSection,
    /// The `[video]` table.
    pub video: VideoSection,
    /// The `[ocr]` table.
    pub ocr: OcrSection,
    /// The `[speech]` table.
    pub speech: SpeechSection,
    /// The `[translate]` table.
    pub translate: TranslateSection,
    /// The `[models]` table.
    pub models: ModelsSection,
    /// The `[server]` table.
    pub server: ServerSection,
    /// The `[audit]` table.
    pub audit: AuditSection,
    /// The `[retention]` table.
    pub retention: RetentionSection,
    /// The `[encryption]` table.
    pub encryption: EncryptionSection,
}

/// `[encryption]`: the master key of a lake that encrypts its objects at rest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionSection {
    /// The file holding the master key (64 hex digits). Unset: no encryption, unless the
    /// `APERTURE_MASTER_KEY` variable holds the key.
    pub key_file: Option<PathBuf>,
    /// Files of earlier master keys, accepted for unwrapping only (during a rotation).
    pub previous_key_files: Vec<PathBuf>,
}

/// `[retention]`: how often servers and workers erase what outlived its collection's retention.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSection {
    /// Seconds between sweeps, at least 1. Default 60.
    pub sweep_every_secs: u64,
}

impl Default for RetentionSection {
    fn default() -> Self {
        Self {
            sweep_every_secs: 60,
        }
    }
}

/// `[audit]`: the audit log's key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSection {
    /// The file holding the key the audit chain is keyed with. Default `audit.key` in the data
    /// folder, made by `aperture init`. Keep a copy away from the catalog: whoever holds the
    /// key and can write the catalog can rewrite the log unseen. Every server and CLI of a
    /// lake needs the same key.
    pub key_file: Option<PathBuf>,
}

/// `[ocr]`: how text in pictures is read.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OcrSection {
    /// The detector: `small` or `tiny` ([`aperture_analyze::ocr::Detector`]).
    pub detector: String,
}

impl Default for OcrSection {
    fn default() -> Self {
        Self {
            detector: aperture_analyze::ocr::Detector::default()
                .as_str()
                .to_owned(),
        }
    }
}

/// `[speech]`: how speech is transcribed.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpeechSection {
    /// The Whisper model (a name of the model pack). Default: the first installed of
    /// `whisper-base`, `whisper-tiny-en`.
    pub model: Option<String>,
    /// The language of all speech, two letters. Default: detected.
    pub language: Option<String>,
    /// Longer sound is transcribed in parts of this many seconds. Default 600.
    pub chunk_secs: u64,
    /// Longer sound is refused. Default 21,600 (6 hours).
    pub max_duration_secs: u64,
}

impl Default for SpeechSection {
    fn default() -> Self {
        Self {
            model: None,
            language: None,
            chunk_secs: aperture_analyze::speech::DEFAULT_CHUNK.as_secs(),
            max_duration_secs: aperture_analyze::speech::DEFAULT_MAX_DURATION.as_secs(),
        }
    }
}

/// `[translate]`: what text is translated into, and with what.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TranslateSection {
    /// The languages everything is translated into, two letters. Default `["en"]`.
    pub targets: Vec<String>,
    /// Apertium's modes folder. Default `/usr/share/apertium/modes`.
    pub apertium_modes: PathBuf,
    /// Seconds an engine may take per text, besides one per 10 kB. Default 30.
    pub timeout_secs: u64,
    /// Text translated per asset at most, in KiB. Default 1,024.
    pub max_text_kib: usize,
}

impl Default for TranslateSection {
    fn default() -> Self {
        Self {
            targets: vec!["en".into()],
            apertium_modes: aperture_analyze::translate::apertium::MODES_DIR.into(),
            timeout_secs: aperture_analyze::translate::DEFAULT_TIMEOUT.as_secs(),
            max_text_kib: aperture_analyze::translate::DEFAULT_MAX_BYTES >> 10,
        }
    }
}

impl TranslateSection {
    /// An engine's deadline per text, besides its share by size.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_secs)
    }

    /// The translate analyzer as configured, with the engines installed (the OPUS-MT models
    /// pulled into `models_dir` among them), each allowed `timeout` per text.
    pub fn analyzer(
        &self,
        models_dir: &Path,
        timeout: std::time::Duration,
    ) -> aperture_analyze::Translate {
        let mut made = aperture_analyze::Translate::installed(
            Some(models_dir),
            &self.apertium_modes,
            timeout,
            self.targets.clone(),
        );
        made.max_bytes = self.max_text_kib << 10;
        made
    }
}

/// `[server]`: how `aperture serve` listens and limits requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Host and port to listen on. Default `127.0.0.1:7878`.
    pub listen: String,
    /// Largest upload in MiB, at least 1. Default 4096.
    pub max_upload_mib: u64,
    /// Seconds an upload may send nothing before it is cut off. Default 30.
    pub idle_timeout_secs: u64,
    /// Seconds any other request may take. Default 60.
    pub request_timeout_secs: u64,
    /// Analysis jobs the server itself runs at once (one worker, this parallel); 0 leaves
    /// analysis to `aperture worker`. Default 1.
    pub workers: usize,
    /// Connections served at once, from all clients. Default 4096 (fewer when the process may
    /// not open that many files).
    pub max_connections: usize,
    /// Connections served at once from one address (an IPv6 /64 counts as one). Default 64.
    pub max_connections_per_address: usize,
    /// Set when TLS is terminated in front of the server: session cookies are then marked
    /// `Secure`. (They are also when a request says `X-Forwarded-Proto: https`.) Default false.
    pub tls_in_front: bool,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7878".into(),
            max_upload_mib: 4096,
            idle_timeout_secs: 30,
            request_timeout_secs: 60,
            workers: 1,
            max_connections: 4096,
            max_connections_per_address: 64,
            tls_in_front: false,
        }
    }
}

/// `[models]`: where models are, and which analyzers run.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsSection {
    /// The models folder; a relative path is taken from the current folder, not the data
    /// folder. Default: `models` in the data folder.
    pub dir: Option<PathBuf>,
    /// Analyzers not to run even when their models are installed.
    pub disabled: Vec<String>,
    /// The hub id of a CLIP model to run (pulled first with `aperture models pull`).
    pub clip: Option<String>,
    /// The memory the loaded models may take together, in MiB (0: no limit). Default: a
    /// quarter of the machine's (or its container's) memory.
    pub memory_mib: Option<u64>,
}

/// `[storage]`: where bytes and the catalog live.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSection {
    /// The blob store's URL (`file://`, `s3://`, `az://`). Default: `blobs` in the data folder.
    pub blobs: Option<String>,
    /// The catalog's URL, `sqlite:///absolute/path`. Default: `catalog.db` in the data folder.
    pub catalog: Option<String>,
    /// The shared search index's URL, `postgres://…`. Default: the `search` folder.
    pub search: Option<String>,
    /// Flush local blobs to stable storage before the catalog records them. Default true.
    pub fsync: bool,
}

impl Default for StorageSection {
    fn default() -> Self {
        Self {
            blobs: None,
            catalog: None,
            search: None,
            fsync: true,
        }
    }
}

/// `[worker]`: how many jobs a worker runs at once.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSection {
    /// Jobs run at once; 0 (the default): one per core.
    pub threads: usize,
    /// Jobs of one analyzer running at once at most, by analyzer name (at least 1).
    pub concurrency: std::collections::BTreeMap<String, usize>,
}

/// `[ingest]`: defaults for ingests.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSection {
    /// The collection when none is named. Default `default`.
    pub default_collection: String,
    /// Files in flight at once, at least 1. Default 64.
    pub concurrency: usize,
    /// Files over the part size (8 MiB) in flight at once, at least 1. Default 2.
    pub large_concurrency: usize,
    /// Follow symbolic links while walking. Default true.
    pub follow_symlinks: bool,
    /// Walk into hidden files and folders. Default false.
    pub include_hidden: bool,
}

impl Default for IngestSection {
    fn default() -> Self {
        Self {
            default_collection: "default".into(),
            concurrency: 64,
            large_concurrency: 2,
            follow_symlinks: true,
            include_hidden: false,
        }
    }
}

/// `[media]`: the tools that probe files.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSection {
    /// The `ffprobe` program, on `PATH` unless a path is given. Default `ffprobe`.
    pub ffprobe: PathBuf,
    /// The `ffmpeg` program, on `PATH` unless a path is given. Default `ffmpeg`.
    pub ffmpeg: PathBuf,
}

impl Default for MediaSection {
    fn default() -> Self {
        Self {
            ffprobe: "ffprobe".into(),
            ffmpeg: "ffmpeg".into(),
        }
    }
}

/// `[video]`: how videos are analysed.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VideoSection {
    /// Longer videos are analysed in parts of this many seconds. Default 600.
    pub chunk_secs: u64,
    /// Longer videos are refused. Default 21,600 (6 hours).
    pub max_duration_secs: u64,
    /// Keyframes stored per video at most. Default 1,000.
    pub max_keyframes: usize,
}

impl Default for VideoSection {
    fn default() -> Self {
        let video = aperture_analyze::video::VideoOptions::default();
        Self {
            chunk_secs: video.chunk.as_secs(),
            max_duration_secs: video.max_duration.as_secs(),
            max_keyframes: video.max_keyframes,
        }
    }
}

impl VideoSection {
    /// The video analyzer's settings, with the media tools of `media`.
    pub fn options(&self, media: &MediaSection) -> aperture_analyze::video::VideoOptions {
        let mut options = aperture_analyze::video::VideoOptions {
            chunk: std::time::Duration::from_secs(self.chunk_secs),
            max_duration: std::time::Duration::from_secs(self.max_duration_secs),
            max_keyframes: self.max_keyframes,
            ..Default::default()
        };
        options.decode.ffmpeg = media.ffmpeg.clone();
        options
    }
}

/// Where a new data folder keeps its catalog and blobs (`aperture init --catalog --blobs`):
/// written into the config file `init` makes. `None` keeps the default.
#[derive(Debug, Clone, Default)]
pub struct StorageUrls {
    /// `[storage] catalog`.
    pub catalog: Option<String>,
    /// `[storage] blobs`.
    pub blobs: Option<String>,
    /// `[storage] search`.
    pub search: Option<String>,
    /// `[encryption] key_file`: the lake encrypts at rest with the master key in this file,
    /// made by `init` when it does not exist.
    pub master_key_file: Option<PathBuf>,
    /// The master key given directly (`APERTURE_MASTER_KEY`): the lake encrypts at rest with
    /// it, and no key file is written.
    pub master_key: Option<aperture_blob::SecretKey>,
}

impl StorageUrls {
    /// The default config with these URLs set in `[storage]`; refuses URLs that do not parse
    /// (checked before anything is written).
    pub fn config_text(&self) -> Result<String> {
        let mut text = DEFAULT_CONFIG.to_owned();
        if let Some(url) = &self.catalog {
            CatalogLocation::parse(url)?;
            text = set_line(&text, "# catalog = ", "catalog", url);
        }
        if let Some(url) = &self.blobs {
            url::Url::parse(url)
                .map_err(|e| Error::config(format!("blob store url {:?}: {e}", redact(url))))?;
            text = set_line(&text, "# blobs = ", "blobs", url);
        }
        if let Some(url) = &self.search {
            SearchLocation::parse(url)?;
            text = set_line(&text, "# search = ", "search", url);
        }
        if let Some(path) = &self.master_key_file {
            let path = absolute(path)?;
            text = set_line(
                &text,
                "# key_file = \"/etc/aperture/master.key\"",
                "key_file",
                &path.to_string_lossy(),
            );
        }
        Ok(text)
    }
}

/// Replaces the commented default line starting with `prefix` by `key = "value"`.
fn set_line(text: &str, prefix: &str, key: &str, value: &str) -> String {
    let quoted = toml::Value::String(value.to_owned()).to_string();
    text.lines()
        .map(|line| {
            if line.starts_with(prefix) {
                format!("{key} = {quoted}")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Where the catalog lives, from `[storage] catalog`.
#[derive(Clone, PartialEq, Eq)]
pub enum CatalogLocation {
    /// A SQLite file (absolute path): the embedded default.
    Sqlite(PathBuf),
    /// A PostgreSQL server, by its connection URL.
    Postgres(String),
}

impl CatalogLocation {
    /// `sqlite:///abs/path` or `postgres://…` (`postgresql://` too).
    pub fn parse(url: &str) -> Result<Self> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            return if Path::new(path).is_absolute() {
                Ok(Self::Sqlite(PathBuf::from(path)))
            } else {
                Err(Error::config(format!(
                    "catalog url {url:?} must be sqlite:///absolute/path"
                )))
            };
        }
        if is_postgres(url) {
            return Ok(Self::Postgres(url.to_owned()));
        }
        Err(Error::config(format!(
            "catalog url {:?} must start with sqlite:// or postgres://",
            redact(url)
        )))
    }

    /// Whether a catalog is there already (a SQLite file exists; a server is always taken
    /// to be).
    pub fn exists(&self) -> bool {
        match self {
            Self::Sqlite(path) => path.exists(),
            Self::Postgres(_) => true,
        }
    }
}

/// Where the search index lives, from `[storage] search`.
#[derive(Clone, PartialEq, Eq)]
pub enum SearchLocation {
    /// The embedded index in a folder: the default, one per server.
    Folder(PathBuf),
    /// The index every server shares on a PostgreSQL server (with pgvector), by its URL.
    Postgres(String),
}

impl SearchLocation {
    /// `postgres://…` (`postgresql://` too): the only engine a URL names yet.
    pub fn parse(url: &str) -> Result<Self> {
        if is_postgres(url) {
            return Ok(Self::Postgres(url.to_owned()));
        }
        Err(Error::config(format!(
            "search url {:?} must start with postgres:// (leave it out for the embedded index)",
            redact(url)
        )))
    }

    /// Opens the index there (blocking).
    pub fn open(&self) -> aperture_search::Result<aperture_search::SearchIndex> {
        match self {
            Self::Folder(dir) => aperture_search::SearchIndex::open(dir),
            Self::Postgres(url) => aperture_search::SearchIndex::open_shared(url),
        }
    }
}

/// Shown without a password.
impl std::fmt::Display for SearchLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Folder(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => write!(f, "{}", redact(url)),
        }
    }
}

impl std::fmt::Debug for SearchLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A URL with its password, if any, replaced by `***`: for messages and `init`'s summary.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Shown without a password.
impl std::fmt::Display for CatalogLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => write!(f, "{}", redact(url)),
        }
    }
}

impl std::fmt::Debug for CatalogLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

/// Settings resolved against the data folder and checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data folder, absolute.
    pub data_dir: PathBuf,
    /// The blob store's URL, as given or made from the data folder.
    pub blobs_url: String,
    /// Whether local blobs are flushed before they are recorded.
    pub storage_fsync: bool,
    /// Where the catalog is.
    pub catalog: CatalogLocation,
    /// Where the search index is.
    pub search: SearchLocation,
    /// Ingest defaults, checked.
    pub ingest: IngestSection,
    /// Worker settings.
    pub worker: WorkerSection,
    /// Media tools.
    pub media: MediaSection,
    /// Video analysis, checked.
    pub video: VideoSection,
    /// The OCR detector.
    pub ocr_detector: aperture_analyze::ocr::Detector,
    /// Speech recognition, checked.
    pub speech: SpeechSection,
    /// Translation, checked.
    pub translate: TranslateSection,
    /// The models folder, absolute.
    pub models_dir: PathBuf,
    /// Analyzers not to run.
    pub disabled_analyzers: Vec<String>,
    /// The hub id of the CLIP model to run, if any.
    pub clip_model: Option<String>,
    /// The memory the loaded models may take together, in bytes; 0: no limit.
    pub model_memory: u64,
    /// Server settings, checked.
    pub server: ServerSection,
    /// The audit key's file, absolute.
    pub audit_key_file: PathBuf,
    /// Retention sweeps, checked.
    pub retention: RetentionSection,
    /// The master key's file, absolute, when encryption is configured.
    pub master_key_file: Option<PathBuf>,
    /// Earlier master keys' files, absolute.
    pub previous_master_key_files: Vec<PathBuf>,
    /// The master key itself, which overrides the file: the binary sets it from
    /// `APERTURE_MASTER_KEY`. Its `Debug` shows only its id.
    pub master_key: Option<aperture_blob::SecretKey>,
}

impl Config {
    /// Reads `file` (or `<data_dir>/aperture.toml` when it exists) and resolves defaults.
    pub fn load(data_dir: &Path, file: Option<&Path>) -> Result<Self> {
        let default_file = data_dir.join(CONFIG_NAME);
        let file = match file {
            Some(f) => Some(f.to_path_buf()),
            None => default_file.exists().then_some(default_file),
        };
        let parsed = match &file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(Error::io("read config", path))?;
                toml::from_str::<ConfigFile>(&text).map_err(|e| Error::Config {
                    message: format!("invalid config {}: {}", path.display(), e.message()),
                    source: Some(Box::new(e)),
                })?
            }
            None => ConfigFile::default(),
        };
        Self::resolve(data_dir, parsed)
    }

    fn resolve(data_dir: &Path, file: ConfigFile) -> Result<Self> {
        let data_dir = absolute(data_dir)?;
        let blobs_url = match file.storage.blobs {
            Some(url) => url,
            None => file_url(&data_dir.join("blobs"))?,
        };
        let catalog = match file.storage.catalog {
            None => CatalogLocation::Sqlite(data_dir.join("catalog.db")),
            Some(url) => CatalogLocation::parse(&url)?,
        };
        let search = match file.storage.search {
            None => SearchLocation::Folder(data_dir.join("search")),
            Some(url) => SearchLocation::parse(&url)?,
        };
        if file.server.max_upload_mib == 0 {
            return Err(Error::config("server.max_upload_mib must be at least 1"));
        }
        let port = file
            .server
            .listen
            .rsplit_once(':')
            .map(|(_, p)| p.parse::<u16>());
        if !matches!(port, Some(Ok(_))) {
            return Err(Error::config(format!(
                "server.listen {:?} is not a host and port such as 127.0.0.1:7878",
                file.server.listen
            )));
        }
        if let Some(name) = file.worker.concurrency.keys().find(|name| {
            !aperture_analyze::SPECS
                .iter()
                .any(|s| s.name == name.as_str())
        }) {
            let known: Vec<&str> = aperture_analyze::SPECS.iter().map(|s| s.name).collect();
            return Err(Error::config(format!(
                "worker.concurrency names no analyzer {name:?}; known: {}",
                known.join(", ")
            )));
        }
        if let Some((name, _)) = file.worker.concurrency.iter().find(|(_, n)| **n == 0) {
            return Err(Error::config(format!(
                "worker.concurrency.{name} must be at least 1 (to stop it, list it in \
                 models.disabled)"
            )));
        }
        if file.ingest.concurrency == 0 || file.ingest.large_concurrency == 0 {
            return Err(Error::config(
                "ingest.concurrency and ingest.large_concurrency must be at least 1",
            ));
        }
        if file.speech.max_duration_secs == 0 {
            return Err(Error::config("speech.max_duration_secs must be at least 1"));
        }
        if file.speech.chunk_secs < 30 {
            // Each part decodes 30 s before its start: shorter parts would mostly repeat work.
            return Err(Error::config("speech.chunk_secs must be at least 30"));
        }
        if file.translate.targets.is_empty() {
            return Err(Error::config(
                "translate.targets must name at least one language",
            ));
        }
        if let Some(bad) = file
            .translate
            .targets
            .iter()
            .find(|t| t.len() != 2 || !t.chars().all(|c| c.is_ascii_lowercase()))
        {
            return Err(Error::config(format!(
                "translate.targets: {bad:?} is not a two-letter language code such as \"en\""
            )));
        }
        if file.translate.timeout_secs == 0 || file.translate.max_text_kib == 0 {
            return Err(Error::config(
                "translate.timeout_secs and translate.max_text_kib must be at least 1",
            ));
        }
        if file.retention.sweep_every_secs == 0 {
            return Err(Error::config(
                "retention.sweep_every_secs must be at least 1",
            ));
        }
        if file.video.chunk_secs == 0 || file.video.max_duration_secs == 0 {
            return Err(Error::config(
                "video.chunk_secs and video.max_duration_secs must be at least 1",
            ));
        }
        if let Some(model) = &file.speech.model
            && !aperture_analyze::speech::WHISPER_MODELS.contains(&model.as_str())
        {
            return Err(Error::config(format!(
                "speech.model {model:?} is not one of {}",
                aperture_analyze::speech::WHISPER_MODELS.join(", ")
            )));
        }
        if let Some(lang) = &file.speech.language
            && let Some(refused) = aperture_analyze::speech::refused_language(
                file.speech.model.as_deref().unwrap_or("whisper-base"),
                lang,
            )
        {
            return Err(Error::config(refused));
        }
        let ocr_detector = file
            .ocr
            .detector
            .parse()
            .map_err(|e| Error::config(format!("ocr.detector: {e}")))?;
        Ok(Self {
            video: file.video,
            ocr_detector,
            speech: file.speech,
            translate: file.translate,
            blobs_url,
            storage_fsync: file.storage.fsync,
            catalog,
            search,
            ingest: file.ingest,
            worker: file.worker,
            media: file.media,
            models_dir: match file.models.dir {
                Some(dir) => absolute(&dir)?,
                None => data_dir.join("models"),
            },
            disabled_analyzers: file.models.disabled,
            clip_model: file.models.clip,
            model_memory: file
                .models
                .memory_mib
                .map_or_else(|| physical_memory() / 4, |mib| mib.saturating_mul(1 << 20)),
            server: file.server,
            retention: file.retention,
            master_key_file: file
                .encryption
                .key_file
                .as_deref()
                .map(absolute)
                .transpose()?,
            previous_master_key_files: file
                .encryption
                .previous_key_files
                .iter()
                .map(|p| absolute(p))
                .collect::<Result<_>>()?,
            master_key: None,
            audit_key_file: match file.audit.key_file {
                Some(path) => absolute(&path)?,
                None => data_dir.join("audit.key"),
            },
            data_dir,
        })
    }
}

/// The memory this process may use, in bytes: the machine's, or its container's limit when
/// lower (cgroup v2 `memory.max`, v1 `memory.limit_in_bytes`); 0 where it cannot be told
/// (no limit then).
fn physical_memory() -> u64 {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib.saturating_mul(1024));
    let container = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(p).ok()?.trim().parse::<u64>().ok())
    .min();
    match container {
        Some(limit) if machine == 0 || limit < machine => limit,
        _ => machine,
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(Error::io("resolve", path))
}

/// A `file://` URL for a folder, escaped: a `#` or `%` in the name must not change the folder.
fn file_url(path: &Path) -> Result<String> {
    url::Url::from_directory_path(path)
        .map(String::from)
        .map_err(|()| Error::config(format!("{} is not an absolute folder path", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_default_parses_to_the_defaults() {
        let parsed: ConfigFile = toml::from_str(DEFAULT_CONFIG).unwrap();
        let config = Config::resolve(Path::new("/data"), parsed).unwrap();
        assert_eq!(config.blobs_url, "file:///data/blobs/");
        assert!(config.storage_fsync);
        assert_eq!(
            config.catalog,
            CatalogLocation::Sqlite(PathBuf::from("/data/catalog.db"))
        );
        assert_eq!(
            config.ingest.concurrency,
            IngestSection::default().concurrency
        );
        assert_eq!(config.ingest.default_collection, "default");
        assert_eq!(config.media.ffprobe, Path::new("ffprobe"));
        assert_eq!(config.media.ffmpeg, Path::new("ffmpeg"));
        assert_eq!(config.ocr_detector, aperture_analyze::ocr::Detector::Small);
        let written = config.video.options(&config.media);
        let default = aperture_analyze::video::VideoOptions::default();
        assert_eq!(
            (written.chunk, written.max_duration, written.max_keyframes),
            (default.chunk, default.max_duration, default.max_keyframes)
        );
    }

    #[test]
    fn odd_folder_names_stay_the_same_folder() {
        let config = Config::resolve(Path::new("/srv/a#1 %41"), ConfigFile::default()).unwrap();
        let url = url::Url::parse(&config.blobs_url).unwrap();
        assert_eq!(url.to_file_path().unwrap(), Path::new("/srv/a#1 %41/blobs"));
    }

    #[test]
    fn init_writes_the_storage_urls_it_is_given() {
        let urls = StorageUrls {
            catalog: Some("postgres://aperture@db.internal:5432/lake".into()),
            blobs: Some("s3://media-lake/aperture".into()),
            search: Some("postgres://aperture@search.internal:5432/lake".into()),
            master_key_file: Some("/etc/aperture/lake.key".into()),
            master_key: None,
        };
        let parsed: ConfigFile = toml::from_str(&urls.config_text().unwrap()).unwrap();
        let config = Config::resolve(Path::new("/d"), parsed).unwrap();
        assert_eq!(
            config.catalog,
            CatalogLocation::Postgres("postgres://aperture@db.internal:5432/lake".into())
        );
        assert_eq!(config.blobs_url, "s3://media-lake/aperture");
        assert_eq!(
            config.master_key_file.as_deref(),
            Some(Path::new("/etc/aperture/lake.key"))
        );
        assert_eq!(
            config.search,
            SearchLocation::Postgres("postgres://aperture@search.internal:5432/lake".into())
        );
        let bad = StorageUrls {
            catalog: Some("oracle://x".into()),
            ..StorageUrls::default()
        };
        assert!(bad.config_text().is_err());
        let bad = StorageUrls {
            search: Some("elasticsearch://x:9200".into()),
            ..StorageUrls::default()
        };
        let err = bad.config_text().unwrap_err().to_string();
        assert!(
            err.contains("search url") && err.contains("postgres://"),
            "{err}"
        );
        // Without a URL: the embedded index in the data folder.
        let parsed: ConfigFile = toml::from_str(DEFAULT_CONFIG).unwrap();
        let config = Config::resolve(Path::new("/d"), parsed).unwrap();
        assert_eq!(config.search, SearchLocation::Folder("/d/search".into()));
    }

    #[test]
    fn bad_settings_are_named() {
        let err = toml::from_str::<ConfigFile>("[ingest]\nconcurency = 3").unwrap_err();
        assert!(err.to_string().contains("concurency"), "{err}");
        let parsed: ConfigFile =
            toml::from_str("[storage]\ncatalog = \"postgres://u:secret@db:5432/lake\"").unwrap();
        let config = Config::resolve(Path::new("/d"), parsed).unwrap();
        assert_eq!(config.catalog.to_string(), "postgres://u:***@db:5432/lake");
        let parsed: ConfigFile =
            toml::from_str("[storage]\ncatalog = \"mysql://u:secret@db/lake\"").unwrap();
        let err = Config::resolve(Path::new("/d"), parsed).unwrap_err();
        assert!(err.to_string().contains("postgres://") && !err.to_string().contains("secret"));
        let parsed: ConfigFile = toml::from_str("[ingest]\nconcurrency = 0").unwrap();
        assert!(Config::resolve(Path::new("/d"), parsed).is_err());
        let parsed: ConfigFile = toml::from_str("[video]\nchunk_secs = 0").unwrap();
        let err = Config::resolve(Path::new("/d"), parsed).unwrap_err();
        assert!(err.to_string().contains("chunk_secs"), "{err}");
        let parsed: ConfigFile = toml::from_str("[speech]\nmodel = \"whisper-huge\"").unwrap();
        let err = Config::resolve(Path::new("/d"), parsed).unwrap_err();
        assert!(err.to_string().contains("whisper-base"), "{err}");
        for (toml, said) in [
            ("[speech]\nlanguage = \"Spanish\"", "not one Whisper knows"),
            ("[speech]\nlanguage = \"xx\"", "not one Whisper knows"),
            (
                "[speech]\nmodel = \"whisper-tiny-en\"\nlanguage = \"es\"",
                "English only",
            ),
            ("[speech]\nchunk_secs = 5", "at least 30"),
            (
                "[worker]\nconcurrency = { ocr = 0 }",
                "worker.concurrency.ocr",
            ),
            ("[worker]\nconcurrency = { orc = 1 }", "no analyzer \"orc\""),
            (
                "[ocr]\ndetector = \"large\"",
                "ocr.detector: unknown OCR detector \"large\"",
            ),
        ] {
            let parsed: ConfigFile = toml::from_str(toml).unwrap();
            let err = Config::resolve(Path::new("/d"), parsed).unwrap_err();
            assert!(err.to_string().contains(said), "{toml}: {err}");
        }
        let parsed: ConfigFile = toml::from_str("[speech]\nlanguage = \"haw\"").unwrap();
        assert!(Config::resolve(Path::new("/d"), parsed).is_ok());
        let parsed: ConfigFile =
            toml::from_str("[worker]\nthreads = 3\nconcurrency = { ocr = 1 }").unwrap();
        let config = Config::resolve(Path::new("/d"), parsed).unwrap();
        assert_eq!(config.worker.threads, 3);
        assert_eq!(config.worker.concurrency.get("ocr"), Some(&1));
        assert_eq!(config.ocr_detector, aperture_analyze::ocr::Detector::Small);
        let parsed: ConfigFile = toml::from_str("[ocr]\ndetector = \"tiny\"").unwrap();
        let config = Config::resolve(Path::new("/d"), parsed).unwrap();
        assert_eq!(config.ocr_detector, aperture_analyze::ocr::Detector::Tiny);
    }
}
