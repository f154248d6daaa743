//! The search index as the application uses it: brought up to date from the catalog, the
//! query encoders loaded from the models folder, and example images turned into vectors.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aperture_analyze::embed::TextEmbedder;
use aperture_analyze::{Analyzer, MINILM_MODEL, MINILM_SPACE};
use aperture_catalog::{Asset, Backend};
use aperture_core::{AssetId, MediaKind, MediaMetadata, UnixMillis};
use aperture_search::duplicates::{self, DuplicateOptions, Group};
use aperture_search::{Hit, Query, QueryEncoder, SearchIndex, SearchOptions, Update};

use crate::config::{Config, SearchLocation};
use crate::{Error, Lake, Result};

/// A query encoder that a server shares between requests.
pub trait SearchEncoder: QueryEncoder + Send + Sync {}

impl<T: QueryEncoder + Send + Sync> SearchEncoder for T {}

/// Opens the search index and brings it up to date with the catalog. When another process
/// is updating it, searches what is there. Blocking.
pub fn open_current(location: &SearchLocation, catalog: &dyn Backend) -> Result<SearchIndex> {
    let mut index = location.open()?;
    match index.update(catalog) {
        Ok(_) => {}
        Err(aperture_search::Error::Busy(_)) if index.is_built()? => {
            tracing::info!("another process is updating the search index; searching what it has");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(index)
}

impl Lake {
    /// Brings the search index up to date with the catalog: what `aperture index`, `ingest
    /// --index` and `rm` run afterwards.
    pub async fn update_search(&self) -> Result<Update> {
        let location = self.config.search.clone();
        let catalog = self.catalog.clone();
        tokio::task::spawn_blocking(move || -> Result<Update> {
            let mut index = location.open()?;
            Ok(index.update(catalog.as_ref())?)
        })
        .await?
    }

    /// Runs a query on an up-to-date index, loading the query encoders for it (a server keeps
    /// them loaded instead), ranked also by likeness to `examples` (space, vector).
    pub async fn search(
        &self,
        query: Query,
        examples: Vec<(String, Vec<f32>)>,
        limit: usize,
    ) -> Result<Vec<Hit>> {
        let lake = self.clone();
        tokio::task::spawn_blocking(move || -> Result<Vec<Hit>> {
            let encoders = if query.terms.iter().any(|t| !t.excluded) {
                encoders(&lake.config)
            } else {
                Vec::new()
            };
            let index = open_current(&lake.config.search, lake.catalog.as_ref())?;
            let refs: Vec<&dyn QueryEncoder> = encoders
                .iter()
                .map(|e| e.as_ref() as &dyn QueryEncoder)
                .collect();
            let options = SearchOptions {
                limit,
                ..SearchOptions::default()
            };
            lake.search_in(&index, query, &refs, &examples, &options)
        })
        .await?
    }

    /// Runs `query` on `index` (up to date or not, as the caller keeps it), its words first
    /// translated into the languages the index holds (on the query translator's pipelines,
    /// within a 3 s budget: [`QUERY_BUDGET`]), ranked also by
    /// likeness to `examples`. What `aperture search` and the server's searches run. Blocking.
    pub fn search_in(
        &self,
        index: &SearchIndex,
        mut query: Query,
        encoders: &[&dyn QueryEncoder],
        examples: &[(String, Vec<f32>)],
        options: &SearchOptions,
    ) -> Result<Vec<Hit>> {
        translate_query(self.query_translator(), index, &mut query);
        Ok(index.search_with_examples(
            self.catalog.as_ref(),
            &query,
            encoders,
            examples,
            options,
        )?)
    }

    /// The image vectors of a file that is not stored: what the installed image analyzers
    /// make of it (EfficientNet features, CLIP).
    pub async fn example_vectors(&self, file: PathBuf) -> Result<Vec<(String, Vec<f32>)>> {
        let (analyzers, _) = self.analyzers();
        tokio::task::spawn_blocking(move || image_vectors(&analyzers, &file)).await?
    }
}

/// Adds to `query` its words translated into the languages of the index and the target
/// languages, from the language they are in (detected) and from the first target language,
/// with the pairs `translator` has: an English query then also finds
/// Spanish text by its Spanish words, and a Spanish query English text. Nothing for
/// `translate:off`; a pair that fails is left out (logged), never failing the search, and
/// translating stops after [`QUERY_BUDGET`] or [`MAX_QUERY_ROUTES`] routes. Blocking.
fn translate_query(
    translator: &aperture_analyze::Translate,
    index: &SearchIndex,
    query: &mut Query,
) {
    let sentence = query.sentence();
    if query.no_translate || sentence.trim().is_empty() || !query.translations.is_empty() {
        return;
    }
    let Some(first_target) = translator.targets.first() else {
        return;
    };
    let mut into: std::collections::BTreeSet<String> =
        index.languages().unwrap_or_default().into_iter().collect();
    into.extend(translator.targets.iter().cloned());
    // A word or two rarely tells its language: the first target language is tried as well,
    // and when nothing tells, every language present (each into the targets, and the targets
    // into each: a star through the targets, not every pair).
    let detected = aperture_analyze::detect_short_language(&sentence);
    let froms: Vec<String> = match &detected {
        Some(lang) if lang != first_target => vec![lang.clone(), first_target.clone()],
        Some(_) => vec![first_target.clone()],
        None => into.iter().cloned().collect(),
    };
    let is_target = |lang: &str| translator.targets.iter().any(|t| t == lang);
    let started = std::time::Instant::now();
    let mut routes = 0;
    for from in &froms {
        for to in into.iter().filter(|to| *to != from) {
            if started.elapsed() > QUERY_BUDGET || routes == MAX_QUERY_ROUTES {
                tracing::warn!("the query's translations stopped at their budget");
                return;
            }
            if detected.is_none() && !is_target(from) && !is_target(to) {
                continue;
            }
            if query.translations.iter().any(|t| &t.language == to) {
                continue;
            }
            let Some(route) = translator.translators.route(from, to) else {
                continue;
            };
            routes += 1;
            match route.translate(&[&sentence]) {
                Ok(mut out) => {
                    let text = out.pop().unwrap_or_default();
                    // Unchanged: the words were not in `from` after all.
                    if !text.trim().is_empty() && text.trim() != sentence.trim() {
                        query.translations.push(aperture_search::query::Translated {
                            language: to.clone(),
                            text,
                        });
                    }
                }
                Err(e) => tracing::warn!("the query was not translated into {to}: {e}"),
            }
        }
    }
}

/// Time a query's translations may take together.
pub const QUERY_BUDGET: std::time::Duration = std::time::Duration::from_secs(3);

/// Routes a query is translated along at most.
pub const MAX_QUERY_ROUTES: usize = 8;

/// Exact duplicates (the same bytes), and with an index near duplicates (image features
/// confirmed by perceptual hash) at `min_similarity` or the default. Blocking.
pub fn duplicate_groups(
    catalog: &dyn Backend,
    index: Option<&SearchIndex>,
    min_similarity: Option<f32>,
    within: duplicates::Within<'_>,
) -> Result<Vec<Group>> {
    let mut groups = duplicates::exact(catalog, within)?;
    if let Some(index) = index {
        let mut options = DuplicateOptions::default();
        if let Some(t) = min_similarity {
            options.min_similarity = t.clamp(0.0, 1.0);
        }
        groups.extend(duplicates::near(index, catalog, &options, within)?);
    }
    Ok(groups)
}

impl Lake {
    /// [`duplicate_groups`] on an up-to-date index (none: exact duplicates only).
    pub async fn duplicates(&self, near: bool, min_similarity: Option<f32>) -> Result<Vec<Group>> {
        let (catalog, location) = (self.catalog.clone(), self.config.search.clone());
        tokio::task::spawn_blocking(move || {
            let index = near
                .then(|| open_current(&location, catalog.as_ref()))
                .transpose()?;
            duplicate_groups(
                catalog.as_ref(),
                index.as_ref(),
                min_similarity,
                duplicates::Within::All,
            )
        })
        .await?
    }

    /// Rebuilds the search index from the catalog: the embedded one beside the current one,
    /// then swapped in (searches keep working meanwhile); the shared one in place.
    pub async fn rebuild_search(&self) -> Result<(SearchIndex, Update)> {
        let (catalog, location) = (self.catalog.clone(), self.config.search.clone());
        tokio::task::spawn_blocking(move || -> Result<(SearchIndex, Update)> {
            Ok(match &location {
                SearchLocation::Folder(dir) => SearchIndex::rebuild(dir, catalog.as_ref())?,
                SearchLocation::Postgres(_) => location.open()?.rebuild_here(catalog.as_ref())?,
            })
        })
        .await?
    }
}

/// The encoders that turn query words into vectors: MiniLM when installed, and CLIP's text
/// tower when a CLIP model is configured. Blocking (loads the models). One that cannot load
/// is left out with a warning: searching goes on without it.
pub fn encoders(config: &Config) -> Vec<Box<dyn SearchEncoder>> {
    let mut out: Vec<Box<dyn SearchEncoder>> = Vec::new();
    let models = &config.models_dir;
    if let Ok(folder) = aperture_models::require(models, MINILM_MODEL) {
        let library = aperture_analyze::onnx::runtime_library(models).ok();
        match TextEmbedder::load_with(&folder, library.as_deref()) {
            Ok(model) => out.push(Box::new(MiniLm(model))),
            Err(e) => tracing::warn!(error = %e, "searching without meaning"),
        }
    }
    if let Some(id) = &config.clip_model {
        let clip = aperture_analyze::Clip::from_hub(models, id).map_err(|e| e.to_string());
        match clip.and_then(|c| Ok((c.space(), c.encoder().map_err(|e| e.to_string())?))) {
            Ok((space, encoder)) => out.push(Box::new(ClipText { space, encoder })),
            Err(e) => tracing::warn!(error = %e, "searching without CLIP"),
        }
    }
    out
}

struct MiniLm(TextEmbedder);

impl QueryEncoder for MiniLm {
    fn space(&self) -> &str {
        MINILM_SPACE
    }

    fn encode(&self, text: &str) -> Result<Vec<f32>, String> {
        let mut v = self.0.embed(&[text]).map_err(|e| e.to_string())?;
        v.pop().ok_or_else(|| "no vector".to_owned())
    }
}

struct ClipText {
    space: String,
    encoder: Arc<aperture_analyze::clip::ClipEncoder>,
}

impl QueryEncoder for ClipText {
    fn space(&self) -> &str {
        &self.space
    }

    fn encode(&self, text: &str) -> Result<Vec<f32>, String> {
        let mut v = self
            .encoder
            .embed_texts(&[text])
            .map_err(|e| e.to_string())?;
        v.pop().ok_or_else(|| "no vector".to_owned())
    }
}

fn image_vectors(analyzers: &[Arc<dyn Analyzer>], file: &Path) -> Result<Vec<(String, Vec<f32>)>> {
    let asset = Asset {
        id: AssetId::new(),
        collection: String::new(),
        hash: aperture_core::ContentHash::of(file.as_os_str().as_encoded_bytes()),
        size: std::fs::metadata(file)
            .map_err(Error::io("read", file))?
            .len(),
        kind: MediaKind::Image,
        mime: String::new(),
        ingested_at: UnixMillis::now(),
        captured_at: None,
        name: file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        metadata: MediaMetadata::default(),
    };
    let mut out = Vec::new();
    for analyzer in analyzers
        .iter()
        .filter(|a| matches!(a.name(), "labels" | "clip"))
    {
        let output = analyzer
            .analyze(&aperture_analyze::Input {
                asset: &asset,
                path: file,
                insights: &[],
                frames: &[],
                suppress_plates: true,
            })
            .map_err(|source| Error::Analyze {
                analyzer: analyzer.name(),
                path: file.to_owned(),
                source,
            })?;
        for i in output.insights {
            if let Some(v) = i.value.as_vector() {
                out.push((v.space.clone(), v.data.clone()));
            }
        }
    }
    if out.is_empty() {
        return Err(Error::InvalidInput {
            what: format!("example image {}", file.display()),
            reason: "no image model is installed to compare it with \
                     (`aperture models install efficientnet-lite0`)"
                .into(),
        });
    }
    Ok(out)
}
