//! `aperture search`, `similar`, `duplicates` and `reindex-search`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use aperture_analyze::embed::TextEmbedder;
use aperture_analyze::{MINILM_MODEL, MINILM_SPACE};
use aperture_catalog::{Asset, Backend};
use aperture_core::{AssetId, MediaKind, MediaMetadata, UnixMillis, decode_vector};
use aperture_search::duplicates::{self, DuplicateOptions, Group};
use aperture_search::{Hit, QueryEncoder, Reason, SearchIndex, SearchOptions, Update};

use crate::app::App;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// Words, "phrases", -excluded words and filters: kind: collection: lang: label:
    /// after: before: has: similar:  (e.g. `harbour "no parking" kind:image after:2024`)
    query: String,
    /// Also rank by likeness to this image file (like `similar:` for a file not stored).
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
    /// Hits to show.
    #[arg(long, short = 'n', default_value_t = 10)]
    limit: usize,
    /// Print the hits as JSON, with every reason.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct SimilarArgs {
    /// An asset id (or a unique prefix), or an image file.
    target: String,
    /// More filters and words, in the query language (`kind:image collection:press`).
    #[arg(long, default_value = "")]
    filter: String,
    #[arg(long, short = 'n', default_value_t = 10)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct DuplicatesArgs {
    /// Least image-feature similarity (cosine, 0–1) for two images to be near-duplicates.
    #[arg(long, default_value_t = DuplicateOptions::default().min_similarity)]
    threshold: f32,
    /// Only exact duplicates (the same bytes).
    #[arg(long)]
    exact_only: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ReindexSearchArgs {
    #[arg(long)]
    json: bool,
}

pub fn index_dir(app: &App) -> PathBuf {
    app.config.data_dir.join("search")
}

/// Opens the search index and brings it up to date with the catalog. When another process
/// is updating it, searches what is there. Blocking.
fn open_current(dir: &Path, catalog: &dyn Backend) -> anyhow::Result<SearchIndex> {
    let mut index =
        SearchIndex::open(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    match index.update(catalog) {
        Ok(_) => {}
        Err(aperture_search::Error::Busy(_)) if index.is_built() => {
            eprintln!("note: another process is updating the search index; searching what it has");
        }
        Err(e) => return Err(e).context("cannot update the search index"),
    }
    Ok(index)
}

/// What `aperture index`, `ingest --index` and `rm` run afterwards.
pub async fn update(app: &App) -> anyhow::Result<Update> {
    let dir = index_dir(app);
    let catalog = app.catalog.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Update> {
        let mut index = SearchIndex::open(&dir)?;
        Ok(index.update(catalog.as_ref())?)
    })
    .await?
}

/// A query encoder that a server shares between requests.
pub trait SearchEncoder: QueryEncoder + Send + Sync {}

impl<T: QueryEncoder + Send + Sync> SearchEncoder for T {}

/// The encoders that turn query words into vectors: MiniLM when installed, and CLIP's text
/// tower when a CLIP model is configured. Blocking (loads the models).
pub fn encoders(config: &crate::config::Config) -> Vec<Box<dyn SearchEncoder>> {
    let mut out: Vec<Box<dyn SearchEncoder>> = Vec::new();
    let models = &config.models_dir;
    if let Ok(folder) = aperture_analyze::models::require(models, MINILM_MODEL) {
        let library = aperture_analyze::onnx::runtime_library(models).ok();
        match TextEmbedder::load_with(&folder, library.as_deref()) {
            Ok(model) => out.push(Box::new(MiniLm(model))),
            Err(e) => eprintln!("note: searching without meaning: {e}"),
        }
    }
    if let Some(id) = &config.clip_model {
        let clip = aperture_analyze::Clip::from_hub(models, id).map_err(|e| e.to_string());
        match clip.and_then(|c| Ok((c.space(), c.encoder().map_err(|e| e.to_string())?))) {
            Ok((space, encoder)) => out.push(Box::new(ClipText { space, encoder })),
            Err(e) => eprintln!("note: searching without CLIP: {e}"),
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

/// The image vectors of a file that is not stored: what the installed image analyzers make
/// of it (EfficientNet features, CLIP).
async fn example_vectors(app: &App, file: PathBuf) -> anyhow::Result<Vec<(String, Vec<f32>)>> {
    let (analyzers, _) = app.analyzers();
    tokio::task::spawn_blocking(move || image_vectors(&analyzers, &file)).await?
}

fn image_vectors(
    analyzers: &[Arc<dyn aperture_analyze::Analyzer>],
    file: &Path,
) -> anyhow::Result<Vec<(String, Vec<f32>)>> {
    let asset = Asset {
        id: AssetId::new(),
        collection: String::new(),
        hash: aperture_core::ContentHash::of(file.as_os_str().as_encoded_bytes()),
        size: std::fs::metadata(file)
            .with_context(|| format!("cannot read {}", file.display()))?
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
            })
            .with_context(|| format!("{}: {}", analyzer.name(), file.display()))?;
        for i in output.insights {
            if let (Some(space), Some(v)) = (i.value["space"].as_str(), i.value["vector"].as_str())
            {
                out.push((space.to_owned(), decode_vector(v)?));
            }
        }
    }
    if out.is_empty() {
        anyhow::bail!(
            "no image model is installed to compare {} with (`aperture models install efficientnet-lite0`)",
            file.display()
        );
    }
    Ok(out)
}

pub async fn search(app: &App, args: SearchArgs) -> anyhow::Result<ExitCode> {
    let query = aperture_search::parse(&args.query)?;
    let examples = match args.image.clone() {
        Some(file) => example_vectors(app, file).await?,
        None => Vec::new(),
    };
    let text = match &args.image {
        Some(file) => format!("{} (image {})", args.query, file.display()),
        None => args.query.clone(),
    };
    run_search(app, query, examples, text, args.limit, args.json).await
}

pub async fn similar(app: &App, args: SimilarArgs) -> anyhow::Result<ExitCode> {
    let mut query = aperture_search::parse(&args.filter)?;
    let file = Path::new(&args.target);
    let examples = if file.is_file() {
        example_vectors(app, file.to_owned()).await?
    } else {
        let id = app.resolve(&args.target).await?;
        query.similar = Some(id.to_string());
        Vec::new()
    };
    let text = format!("similar:{} {}", args.target, args.filter);
    run_search(
        app,
        query,
        examples,
        text.trim().to_owned(),
        args.limit,
        args.json,
    )
    .await
}

async fn run_search(
    app: &App,
    query: aperture_search::Query,
    examples: Vec<(String, Vec<f32>)>,
    text: String,
    limit: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (catalog, config, dir) = (app.catalog.clone(), app.config.clone(), index_dir(app));
    let hits = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Hit>> {
        let encoders = if query.terms.iter().any(|t| !t.excluded) {
            encoders(&config)
        } else {
            Vec::new()
        };
        let index = open_current(&dir, catalog.as_ref())?;
        let refs: Vec<&dyn QueryEncoder> = encoders
            .iter()
            .map(|e| e.as_ref() as &dyn QueryEncoder)
            .collect();
        let options = SearchOptions {
            limit,
            ..SearchOptions::default()
        };
        Ok(index.search_with_examples(catalog.as_ref(), &query, &refs, &examples, &options)?)
    })
    .await??;
    app.audit(
        "search",
        None,
        serde_json::json!({ "query": text, "limit": limit, "hits": hits.len() }),
    )
    .await?;
    if json {
        output::json(&hits)?;
    } else if hits.is_empty() {
        println!("no matches");
    } else {
        for (rank, hit) in hits.iter().enumerate() {
            print_hit(rank + 1, hit);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_hit(rank: usize, hit: &Hit) {
    let a = &hit.asset;
    println!(
        "{rank:>3}. {}  {:<8} {}  ({})",
        a.id,
        a.kind.as_str(),
        output::clip(&a.name, 60),
        a.collection
    );
    for reason in &hit.reasons {
        println!("       {}", describe(reason));
    }
}

/// One line saying why a hit matched, with matches in «».
fn describe(reason: &Reason) -> String {
    match reason {
        Reason::Words {
            field,
            text,
            highlights,
            place,
            confidence,
        } => {
            let mut marked = String::new();
            let mut at = 0;
            for r in highlights {
                if r.start < at || r.end > text.len() {
                    continue;
                }
                marked.push_str(&text[at..r.start]);
                marked.push('«');
                marked.push_str(&text[r.clone()]);
                marked.push('»');
                at = r.end;
            }
            marked.push_str(&text[at..]);
            let mut line = format!("{field}: {}", marked.replace('\n', " "));
            if let Some(c) = confidence {
                line.push_str(&format!(" ({:.0}%)", c * 100.0));
            }
            if let Some(aperture_core::Place::Page { page, .. }) = place {
                line.push_str(&format!(" [page {page}]"));
            }
            line
        }
        Reason::Meaning {
            space,
            similarity,
            text,
            place,
            ..
        } => {
            let mut line = format!("meaning ({space}, {similarity:.2})");
            if let Some(text) = text {
                line.push_str(&format!(": {}", output::clip(text, 90)));
            }
            if let aperture_core::Place::Page { page, .. } = place {
                line.push_str(&format!(" [page {page}]"));
            }
            line
        }
        Reason::Similar { space, similarity } => {
            format!("looks similar ({space}, {similarity:.2})")
        }
        Reason::Filters => "matches the filters".to_owned(),
    }
}

pub async fn duplicates(app: &App, args: DuplicatesArgs) -> anyhow::Result<ExitCode> {
    let (catalog, dir) = (app.catalog.clone(), index_dir(app));
    let (exact_only, threshold) = (args.exact_only, args.threshold);
    let groups = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Group>> {
        let mut groups = duplicates::exact(catalog.as_ref())?;
        if !exact_only {
            let index = open_current(&dir, catalog.as_ref())?;
            let options = DuplicateOptions {
                min_similarity: threshold,
                ..DuplicateOptions::default()
            };
            groups.extend(duplicates::near(&index, catalog.as_ref(), &options)?);
        }
        Ok(groups)
    })
    .await??;
    let catalog = app.catalog.clone();
    if args.json {
        output::json(&groups)?;
        return Ok(ExitCode::SUCCESS);
    }
    if groups.is_empty() {
        println!("no duplicates");
    }
    for (n, group) in groups.iter().enumerate() {
        print_group(n + 1, group, catalog.as_ref());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_group(n: usize, group: &Group, catalog: &dyn Backend) {
    println!(
        "group {n}: {} ({} assets)",
        group.kind.as_str(),
        group.members.len()
    );
    for m in &group.members {
        let name = catalog.asset(m.asset).map(|a| a.name).unwrap_or_default();
        let how = match (m.similarity, m.hamming) {
            (Some(s), Some(h)) => format!("similarity {s:.3}, hash distance {h}"),
            (Some(s), None) => format!("similarity {s:.3}"),
            _ => m.note.clone().unwrap_or_default(),
        };
        println!("  {}  {:<40} {how}", m.asset, output::clip(&name, 40));
    }
}

pub async fn reindex_search(app: &App, args: ReindexSearchArgs) -> anyhow::Result<ExitCode> {
    let dir = index_dir(app);
    let catalog = app.catalog.clone();
    let started = std::time::Instant::now();
    let (index, report) =
        tokio::task::spawn_blocking(move || SearchIndex::rebuild(&dir, catalog.as_ref())).await??;
    if args.json {
        output::json(&report)?;
    } else {
        println!(
            "rebuilt the search index in {:.1}s: {} assets, {} documents",
            started.elapsed().as_secs_f64(),
            output::count(report.indexed),
            output::count(index.documents())
        );
        for (space, vectors) in index.spaces() {
            println!("  {space}: {} vectors", output::count(vectors.len() as u64));
        }
    }
    Ok(ExitCode::SUCCESS)
}
