//! Opening a data folder: the config turned into a blob store and a catalog.

use std::path::Path;
use std::sync::Arc;

use aperture_analyze::{Analyzer, Unavailable};
use aperture_blob::BlobStore;
use aperture_catalog::{Backend, NewToken, PgCatalog, Scope, SqliteCatalog};
use aperture_core::AssetId;

use crate::config::{CONFIG_NAME, CatalogLocation, Config, SearchLocation, StorageUrls};
use crate::{Error, Result};

/// An opened data folder: its config, blob store and catalog. Cheap to clone.
#[derive(Clone)]
pub struct Lake {
    /// The validated config.
    pub config: Config,
    /// The content-addressed blobs.
    pub blobs: BlobStore,
    /// The catalog, job queue, tokens and audit log.
    pub catalog: Arc<dyn Backend>,
    /// The translate analyzer, its engines discovered once and started on first use, kept
    /// running (shared by clones): the workers and on-demand translation use it.
    translators: Arc<std::sync::OnceLock<aperture_analyze::Translate>>,
    /// The same engines again, with pipelines of their own and a short deadline: queries
    /// are translated with them, never waiting behind an asset's text.
    query_translators: Arc<std::sync::OnceLock<aperture_analyze::Translate>>,
    /// One on-demand translation at a time (`Lake::translate`).
    pub(crate) on_demand: Arc<tokio::sync::Semaphore>,
    /// The key the audit chain is keyed with (`[audit] key_file`).
    pub audit_key: Arc<aperture_catalog::access::AuditKey>,
    /// Where the log's head is written after each append (beside the key).
    pub(crate) audit_head: Arc<std::path::PathBuf>,
}

/// What [`Lake::init`] did.
pub struct Initialised {
    /// The opened lake.
    pub lake: Lake,
    /// The config file used.
    pub config_file: std::path::PathBuf,
    /// False when the folder was initialised already.
    pub fresh: bool,
    /// The first admin token, when none existed (shown once, never stored).
    pub admin_token: Option<String>,
}

/// What `aperture init` says: where everything is, the admin token when one was made, and
/// what to do next.
impl std::fmt::Display for Initialised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let config = &self.lake.config;
        let verb = if self.fresh {
            "initialised"
        } else {
            "already initialised"
        };
        writeln!(
            f,
            "{verb} Aperture data folder {}",
            config.data_dir.display()
        )?;
        writeln!(f, "  config   {}", self.config_file.display())?;
        writeln!(f, "  catalog  {}", config.catalog)?;
        writeln!(f, "  blobs    {}", crate::config::redact(&config.blobs_url))?;
        writeln!(f, "  search   {}", config.search)?;
        if let Some(file) = &config.master_key_file
            && self.lake.blobs.is_encrypted()
            && config.master_key.is_none()
        {
            writeln!(f, "  encrypted at rest, master key {}", file.display())?;
            writeln!(
                f,
                "   (keep a copy of it away from the data folder's backups: without it nothing \
                 can be read, with it the backups can)"
            )?;
        } else if self.lake.blobs.is_encrypted() {
            writeln!(
                f,
                "  encrypted at rest, master key from APERTURE_MASTER_KEY"
            )?;
        }
        if let Some(token) = &self.admin_token {
            writeln!(f, "admin token: {token}")?;
            writeln!(
                f,
                "  (shown only now; it may do everything: keep it secret, and make narrower ones"
            )?;
            writeln!(
                f,
                "   with `aperture token create --name NAME --scopes read,search`)"
            )?;
            let at = &config.server.listen;
            writeln!(
                f,
                "  API: curl -H 'Authorization: Bearer {token}' http://{at}/api/v1/status"
            )?;
            writeln!(
                f,
                "  web UI: aperture serve, then open http://{at}/#token={token}"
            )?;
        }
        write!(
            f,
            "next: aperture --data {} ingest PATH...",
            config.data_dir.display()
        )
    }
}

impl Lake {
    /// Creates the data folder and the config file with every default (at `config_file` when
    /// given, else in the data folder) unless they exist, opens it, and makes the first admin
    /// token when there is none (its creation audited as done by `actor`).
    pub async fn init(
        data_dir: &Path,
        config_file: Option<&Path>,
        store_options: Vec<(String, String)>,
        actor: &str,
    ) -> Result<Initialised> {
        let storage = StorageUrls::default();
        Self::init_with(data_dir, config_file, &storage, store_options, actor).await
    }

    /// [`Lake::init`] with the catalog and blob store a new config file names (`aperture init
    /// --catalog URL --blobs URL`). Both are reached and checked before `init` returns: a
    /// missing bucket, wrong credentials or an unreachable server is an error naming it. An
    /// existing folder keeps its config; asking it for other URLs is an error.
    pub async fn init_with(
        data_dir: &Path,
        config_file: Option<&Path>,
        storage: &StorageUrls,
        store_options: Vec<(String, String)>,
        actor: &str,
    ) -> Result<Initialised> {
        let dir = std::path::absolute(data_dir).map_err(Error::io("resolve", data_dir))?;
        std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        // The lake's files are its owner's alone: other local users cannot even list them.
        #[cfg(unix)]
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(Error::io("restrict", &dir))?;
        let config_path = config_file.map_or_else(|| dir.join(CONFIG_NAME), Path::to_path_buf);
        let wrote_config = !config_path.exists();
        // Kept even when `init` fails below: the catalog may already hold keys it wrapped,
        // and `init` run again uses it.
        if wrote_config
            && let Some(key_file) = &storage.master_key_file
            && !key_file.exists()
        {
            crate::encryption::make_key_file(key_file)?;
        }
        if wrote_config {
            let text = storage.config_text()?;
            // Readable by its owner only: a catalog URL may carry a password.
            crate::audit_key::write_private(&config_path, &text)
                .map_err(Error::io("write", &config_path))?;
        }
        let mut config = Config::load(&dir, Some(&config_path))?;
        config.master_key = storage.master_key.clone();
        if !wrote_config {
            refuse_other_storage(&config, storage)?;
        }
        // A config written beforehand (by a script, say) does not make the folder initialised.
        let fresh = wrote_config || !config.catalog.exists();
        let search = config.search.clone();
        let connected = match Self::connect(config, store_options, true).await {
            // The shared search index is reached (and its tables made) now, not at the first
            // search: a server without pgvector is an error of `init`.
            Ok(lake) if matches!(search, SearchLocation::Postgres(_)) => {
                tokio::task::spawn_blocking(move || Ok(search.open().map(|_| lake)?)).await?
            }
            other => other,
        };
        let lake = match connected {
            Ok(lake) => lake,
            Err(e) => {
                // A server that cannot be reached leaves no half-made folder: `init` again
                // once it is fixed starts afresh.
                if wrote_config {
                    let _ = std::fs::remove_file(&config_path);
                }
                return Err(e);
            }
        };
        let admin_token = first_admin_token(&lake, actor).await?;
        Ok(Initialised {
            lake,
            config_file: config_path,
            fresh,
            admin_token,
        })
    }

    /// Opens an initialised data folder. `store_options` are credentials and endpoints for
    /// remote blob stores (object_store's lower-case keys).
    pub async fn open(config: Config, store_options: Vec<(String, String)>) -> Result<Self> {
        if !config.data_dir.join(CONFIG_NAME).exists() && !config.catalog.exists() {
            return Err(Error::NotInitialised {
                dir: config.data_dir.clone(),
            });
        }
        Self::connect(config, store_options, false).await
    }

    /// Opens the catalog and the store; `init` makes an encrypted lake's name key, which a
    /// lake that is only opened must have.
    async fn connect(
        config: Config,
        store_options: Vec<(String, String)>,
        init: bool,
    ) -> Result<Self> {
        let blobs = BlobStore::open_url(&config.blobs_url, store_options)?
            .with_durable(config.storage_fsync);
        let ring = crate::encryption::key_ring(&config)?;
        // Without encryption the store is checked first, so that an unreachable one leaves no
        // catalog behind; with it, the store needs its name key from the catalog first.
        if ring.is_none() {
            blobs.init().await?;
        }
        let location = config.catalog.clone();
        let key_file = config.audit_key_file.clone();
        let audit_head = Arc::new(crate::audit_key::head_file(&key_file));
        let (catalog, audit_key) = tokio::task::spawn_blocking(move || -> Result<_> {
            let catalog: Arc<dyn Backend> = match &location {
                CatalogLocation::Sqlite(path) => Arc::new(SqliteCatalog::open(path)?),
                CatalogLocation::Postgres(url) => Arc::new(PgCatalog::open(url)?),
            };
            let key = crate::audit_key::load_or_make_key(&key_file, catalog.as_ref())?;
            // Deletion buckets keyed from it: a bucket's generation says nothing of what was
            // deleted to someone who reads the catalog without the key.
            if let Some(buckets) = key.derive("aperture deletion buckets") {
                catalog.key_deletion_buckets(buckets);
            }
            Ok((catalog, key))
        })
        .await??;
        let blobs = match ring {
            None => blobs,
            Some(ring) => {
                let encryption = crate::encryption::encryption(ring, catalog.clone(), init).await?;
                let blobs = blobs.with_encryption(encryption);
                blobs.init().await?;
                blobs
            }
        };
        Ok(Self {
            config,
            blobs,
            catalog,
            translators: Arc::default(),
            query_translators: Arc::default(),
            on_demand: Arc::new(tokio::sync::Semaphore::new(1)),
            audit_key: Arc::new(audit_key),
            audit_head,
        })
    }

    /// Runs a catalog call on the blocking pool: the catalog traits are synchronous.
    pub async fn catalog<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Backend) -> aperture_catalog::Result<T> + Send + 'static,
    ) -> Result<T> {
        crate::blocking(&self.catalog, f).await
    }

    /// Resolves a full id or a unique prefix of one (among every collection).
    pub async fn resolve(&self, text: &str) -> Result<AssetId> {
        self.view_all().resolve(text).await
    }

    /// The analyzers this data folder runs: every one whose models are installed, less those
    /// the config disables; and those that cannot run, with the command that fixes it.
    pub fn analyzers(&self) -> (Vec<Arc<dyn Analyzer>>, Vec<Unavailable>) {
        let (mut analyzers, mut missing) = aperture_analyze::available(&self.config.models_dir);
        if let Some(id) = &self.config.clip_model {
            match aperture_analyze::Clip::from_hub(&self.config.models_dir, id) {
                Ok(clip) => analyzers.push(Arc::new(clip)),
                Err(e) => missing.push(Unavailable {
                    analyzer: "clip",
                    reason: e.to_string(),
                }),
            }
        }
        // The analyzers that run ffmpeg, with the configured program and limits.
        let video = self.config.video.options(&self.config.media);
        // An analyzer whose configured model is not installed (while another one is).
        let mut unusable: Vec<(&'static str, String)> = Vec::new();
        for analyzer in &mut analyzers {
            match analyzer.name() {
                "video" => {
                    *analyzer = Arc::new(aperture_analyze::Video {
                        options: video.clone(),
                    });
                }
                "speech" => {
                    let speech = &self.config.speech;
                    match aperture_analyze::Speech::new(
                        &self.config.models_dir,
                        speech.model.as_deref(),
                    ) {
                        Ok(mut made) => {
                            made.audio.ffmpeg = self.config.media.ffmpeg.clone();
                            made.language = speech.language.clone();
                            made.chunk = std::time::Duration::from_secs(speech.chunk_secs);
                            made.max_duration =
                                std::time::Duration::from_secs(speech.max_duration_secs);
                            *analyzer = Arc::new(made);
                        }
                        Err(e) => unusable.push((analyzer.name(), e.to_string())),
                    }
                }
                "preview" => {
                    let mut preview = aperture_analyze::video::preview::Preview::default();
                    preview.options.decode.ffmpeg = self.config.media.ffmpeg.clone();
                    preview.options.max_duration = video.max_duration;
                    *analyzer = Arc::new(preview);
                }
                _ => {}
            }
        }
        analyzers.retain(|a| !unusable.iter().any(|(name, _)| *name == a.name()));
        // Translation needs no model files (Apertium is a system package); its engines are
        // discovered once per lake.
        analyzers.push(Arc::new(self.translator().clone()));
        missing.extend(
            unusable
                .into_iter()
                .map(|(analyzer, reason)| Unavailable { analyzer, reason }),
        );
        aperture_analyze::set_model_budget(self.config.model_memory);
        let disabled = &self.config.disabled_analyzers;
        analyzers.retain(|a| !disabled.iter().any(|d| d == a.name()));
        // OCR with the configured detector. It waits for a picture's labels to tell a
        // vehicle's plate; with labels disabled it waits for nothing and leaves plate-shaped
        // text out of every picture.
        let labels = analyzers.iter().any(|a| a.name() == "labels");
        if let Some(at) = analyzers.iter().position(|a| a.name() == "ocr") {
            let detector = self.config.ocr_detector;
            match aperture_analyze::ocr::Ocr::with_detector(&self.config.models_dir, detector) {
                Ok(made) if labels => analyzers[at] = Arc::new(made),
                Ok(made) => analyzers[at] = Arc::new(made.without_labels()),
                Err(e) => {
                    analyzers.remove(at);
                    missing.push(Unavailable {
                        analyzer: "ocr",
                        reason: e.to_string(),
                    });
                }
            }
        }
        missing.retain(|m| !disabled.iter().any(|d| d == m.analyzer));
        (analyzers, missing)
    }

    /// The translate analyzer as configured, its engines kept running between calls.
    pub fn translator(&self) -> &aperture_analyze::Translate {
        self.translators.get_or_init(|| {
            self.config
                .translate
                .analyzer(&self.config.models_dir, self.config.translate.timeout())
        })
    }

    /// The translate analyzer for queries: the same engines, their own pipelines, a
    /// deadline of [`QUERY_TIMEOUT`] per text.
    pub fn query_translator(&self) -> &aperture_analyze::Translate {
        self.query_translators.get_or_init(|| {
            self.config
                .translate
                .analyzer(&self.config.models_dir, QUERY_TIMEOUT)
        })
    }
}

/// What an engine may take to translate a query's words.
pub const QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Creates the first admin token of a fresh data folder (none when tokens exist).
async fn first_admin_token(lake: &Lake, actor: &str) -> Result<Option<String>> {
    if !lake.catalog(|c| c.tokens()).await?.is_empty() {
        return Ok(None);
    }
    let new = NewToken::generate("admin", vec![Scope::Admin], None)?;
    lake.create_token(actor, &new).await?;
    Ok(Some(new.text))
}

/// `init` of a folder that has a config already: URLs given on the command line must be the
/// ones it has, never silently ignored.
fn refuse_other_storage(config: &Config, storage: &StorageUrls) -> Result<()> {
    if let Some(url) = &storage.catalog
        && CatalogLocation::parse(url)? != config.catalog
    {
        return Err(Error::config(format!(
            "{} is initialised with the catalog {}; edit its config to move it",
            config.data_dir.display(),
            config.catalog
        )));
    }
    if let Some(url) = &storage.search
        && SearchLocation::parse(url)? != config.search
    {
        return Err(Error::config(format!(
            "{} is initialised with the search index {}; edit its config to move it",
            config.data_dir.display(),
            config.search
        )));
    }
    if storage.master_key_file.is_some() && config.master_key_file.is_none() {
        return Err(Error::config(format!(
            "{} is initialised without encryption, which is chosen when a lake is made",
            config.data_dir.display()
        )));
    }
    if let Some(url) = &storage.blobs
        && url.trim_end_matches('/') != config.blobs_url.trim_end_matches('/')
    {
        return Err(Error::config(format!(
            "{} is initialised with the blob store {}; edit its config to move it",
            config.data_dir.display(),
            crate::config::redact(&config.blobs_url)
        )));
    }
    Ok(())
}
