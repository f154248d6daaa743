//! Opening the data folder: the config turned into a blob store and a catalog.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use aperture_blob::BlobStore;
use aperture_catalog::{Backend, SqliteCatalog};
use aperture_core::AssetId;

use crate::config::{CONFIG_NAME, Config, DEFAULT_CONFIG};

pub struct App {
    pub config: Config,
    pub blobs: BlobStore,
    pub catalog: Arc<dyn Backend>,
}

impl App {
    /// The analyzers this data folder runs: every one whose models are installed, less those
    /// the config disables; and those that cannot run, with the command that fixes it.
    pub fn analyzers(
        &self,
    ) -> (
        Vec<Arc<dyn aperture_analyze::Analyzer>>,
        Vec<aperture_analyze::Unavailable>,
    ) {
        let (mut analyzers, mut missing) = aperture_analyze::available(&self.config.models_dir);
        if let Some(id) = &self.config.clip_model {
            match aperture_analyze::Clip::from_hub(&self.config.models_dir, id) {
                Ok(clip) => analyzers.push(Arc::new(clip)),
                Err(e) => missing.push(aperture_analyze::Unavailable {
                    analyzer: "clip",
                    reason: e.to_string(),
                }),
            }
        }
        let disabled = &self.config.disabled_analyzers;
        analyzers.retain(|a| !disabled.iter().any(|d| d == a.name()));
        missing.retain(|m| !disabled.iter().any(|d| d == m.analyzer));
        (analyzers, missing)
    }
}

/// `--data`, else `$APERTURE_DATA` (clap reads it), else the platform's data directory.
pub fn data_dir(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir);
    }
    directories::ProjectDirs::from("org", "Aperture", "aperture")
        .map(|dirs| dirs.data_dir().to_path_buf())
        .context("cannot find a data directory for this user; pass --data DIR")
}

/// Credentials and endpoints for remote blob stores, from the environment object_store
/// documents (AWS_*, AZURE_*), lower-cased as its builders expect.
fn store_options() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_") || k.starts_with("AZURE_"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

/// Creates the data folder, and the config file with every default (at `--config` when one
/// is given, else in the data folder) unless it exists already.
pub async fn init(data_dir: &Path, config_file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let dir = std::path::absolute(data_dir)
        .with_context(|| format!("cannot resolve {}", data_dir.display()))?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config_path = config_file.map_or_else(|| dir.join(CONFIG_NAME), Path::to_path_buf);
    let fresh = !config_path.exists();
    if fresh {
        std::fs::write(&config_path, DEFAULT_CONFIG)
            .with_context(|| format!("cannot write {}", config_path.display()))?;
    }
    let config = Config::load(&dir, Some(&config_path))?;
    // A config written beforehand (by a script, say) does not make the folder initialised.
    let fresh = fresh || !config.catalog_path.exists();
    let app = App::connect(config).await?;
    let verb = if fresh {
        "initialised"
    } else {
        "already initialised"
    };
    println!("{verb} Aperture data folder {}", dir.display());
    println!("  config   {}", config_path.display());
    println!("  catalog  {}", app.config.catalog_path.display());
    println!("  blobs    {}", app.config.blobs_url);
    if let Some(token) = crate::access::first_admin_token(&app).await? {
        println!("admin token: {token}");
        println!("  (shown only now; it may do everything: keep it secret, and make narrower ones");
        println!("   with `aperture token create --name NAME --scopes read,search`)");
        println!(
            "  API: curl -H 'Authorization: Bearer {token}' http://127.0.0.1:7878/api/v1/status"
        );
        println!("  web UI: aperture serve, then open http://127.0.0.1:7878/#token={token}");
    }
    println!("next: aperture --data {} ingest PATH...", dir.display());
    Ok(ExitCode::SUCCESS)
}

impl App {
    /// Opens an initialised data folder.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        if !config.data_dir.join(CONFIG_NAME).exists() && !config.catalog_path.exists() {
            bail!(
                "no Aperture data folder at {}; create one with `aperture --data {} init`",
                config.data_dir.display(),
                config.data_dir.display()
            );
        }
        Self::connect(config).await
    }

    async fn connect(config: Config) -> anyhow::Result<Self> {
        let blobs = BlobStore::open_url(&config.blobs_url, store_options())?
            .with_durable(config.storage_fsync);
        blobs.init().await?;
        let path = config.catalog_path.clone();
        let catalog = tokio::task::spawn_blocking(move || SqliteCatalog::open(&path))
            .await?
            .with_context(|| format!("cannot open catalog {}", config.catalog_path.display()))?;
        Ok(Self {
            config,
            blobs,
            catalog: Arc::new(catalog),
        })
    }

    /// Runs a catalog call on the blocking pool.
    pub async fn catalog<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Backend) -> aperture_catalog::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let catalog = self.catalog.clone();
        Ok(tokio::task::spawn_blocking(move || f(catalog.as_ref())).await??)
    }

    /// Resolves a full id or a unique prefix of one.
    pub async fn resolve(&self, text: &str) -> anyhow::Result<AssetId> {
        let prefix = text.trim().to_owned();
        let found = self
            .catalog(move |c| c.assets_with_prefix(&prefix, 2))
            .await?;
        match found.as_slice() {
            [id] => Ok(*id),
            [] => bail!("no asset with id {text}"),
            _ => Err(aperture_catalog::Error::Ambiguous {
                prefix: text.to_owned(),
                count: found.len(),
            }
            .into()),
        }
    }
}
