//! `aperture search`, `similar`, `duplicates` and `reindex-search`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aperture_catalog::Backend;
use aperture_search::Hit;
use aperture_search::duplicates::{DuplicateOptions, Group};

use crate::output;
use aperture_lake::Lake;

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
    /// An asset id (or a unique prefix), a moment of a video as `ID@00:01:23` (its shot is
    /// compared), or an image file.
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

pub async fn search(lake: &Lake, args: SearchArgs) -> anyhow::Result<ExitCode> {
    let query = aperture_search::parse(&args.query)?;
    let examples = match args.image.clone() {
        Some(file) => lake.example_vectors(file).await?,
        None => Vec::new(),
    };
    let text = match &args.image {
        Some(file) => format!("{} (image {})", args.query, file.display()),
        None => args.query.clone(),
    };
    run_search(lake, query, examples, text, args.limit, args.json).await
}

pub async fn similar(lake: &Lake, args: SimilarArgs) -> anyhow::Result<ExitCode> {
    let mut query = aperture_search::parse(&args.filter)?;
    let file = Path::new(&args.target);
    let examples = if file.is_file() {
        lake.example_vectors(file.to_owned()).await?
    } else {
        let (id, at) = match args.target.split_once('@') {
            Some((id, time)) => {
                let at = aperture_core::human::parse_clock(time).ok_or_else(|| {
                    anyhow::anyhow!("{time:?} is not a moment of a video: write 00:01:23 or 83.5")
                })?;
                (id, Some(at))
            }
            None => (args.target.as_str(), None),
        };
        let id = lake.resolve(id).await?;
        query.similar = Some(id.to_string());
        query.similar_at = at;
        Vec::new()
    };
    let text = format!("similar:{} {}", args.target, args.filter);
    run_search(
        lake,
        query,
        examples,
        text.trim().to_owned(),
        args.limit,
        args.json,
    )
    .await
}

async fn run_search(
    lake: &Lake,
    query: aperture_search::Query,
    examples: Vec<(String, Vec<f32>)>,
    text: String,
    limit: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let hits = lake.search(query, examples, limit).await?;
    crate::access::record(
        lake,
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
        println!("       {}", reason.describe());
    }
}

pub async fn duplicates(lake: &Lake, args: DuplicatesArgs) -> anyhow::Result<ExitCode> {
    let groups = lake
        .duplicates(!args.exact_only, Some(args.threshold))
        .await?;
    let catalog = lake.catalog.clone();
    if args.json {
        output::json(&groups)?;
        return Ok(ExitCode::SUCCESS);
    }
    if groups.is_empty() {
        println!("no duplicates");
    }
    // The catalog is synchronous (PostgreSQL's client must not run on an async thread).
    tokio::task::block_in_place(|| {
        for (n, group) in groups.iter().enumerate() {
            print_group(n + 1, group, catalog.as_ref());
        }
    });
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

pub async fn reindex_search(lake: &Lake, args: ReindexSearchArgs) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let (index, report) = lake.rebuild_search().await?;
    // The shared index answers from its server: asked off the async threads.
    let (documents, spaces) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        Ok((index.documents()?, index.space_sizes()?))
    })
    .await??;
    if args.json {
        output::json(&report)?;
    } else {
        println!(
            "rebuilt the search index in {:.1}s: {} assets, {} documents",
            started.elapsed().as_secs_f64(),
            output::count(report.indexed),
            output::count(documents)
        );
        for (space, vectors) in spaces {
            println!("  {space}: {} vectors", output::count(vectors));
        }
    }
    Ok(ExitCode::SUCCESS)
}
