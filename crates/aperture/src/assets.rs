//! `ls`, `show`, `get`, `rm` and `stats`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use aperture_catalog::AssetQuery;
use aperture_core::MediaKind;
use aperture_lake::Erased;

use crate::output;
use aperture_lake::Lake;

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Only this collection.
    #[arg(long, short)]
    collection: Option<String>,
    /// Only this kind: image, video, audio, document or other.
    #[arg(long, short)]
    kind: Option<MediaKind>,
    /// At most this many assets.
    #[arg(long, short = 'n', default_value_t = 100)]
    limit: usize,
    /// Start after this asset id (for paging).
    #[arg(long)]
    after: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The asset's id, or a unique prefix of it.
    id: String,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct CaptionsArgs {
    /// The asset's id, or a unique prefix of it.
    id: String,
    /// `vtt` (WebVTT) or `srt` (SubRip).
    #[arg(long, default_value = "vtt")]
    format: aperture_lake::captions::CaptionFormat,
    /// Only the segments in this language (`en`, `fr`, ...).
    #[arg(long)]
    lang: Option<String>,
    /// Where to write them (`-`, the default, for standard output).
    #[arg(short, long, default_value = "-")]
    output: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct TranslateArgs {
    /// The asset's id, or a unique prefix of it.
    id: String,
    /// The language to translate into, two letters (`en`, `es`, `fr`, ...).
    #[arg(long, value_name = "LANG")]
    to: String,
    /// Print the translations as JSON insights.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// The asset's id, or a unique prefix of it.
    id: String,
    /// Where to write the bytes; `-` for standard output.
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,
    /// Of a video, the frame shown at this moment (`00:01:23`, `1:23.5`, `83`) as a JPEG,
    /// instead of the original.
    #[arg(long, value_name = "TIME", value_parser = parse_time, conflicts_with = "blur_faces")]
    frame: Option<u64>,
    /// Of an image, a copy with every face blurred beyond recognition (JPEG, or PNG for a
    /// PNG), for sharing; faces are only detected, nothing about them is kept.
    #[arg(long)]
    blur_faces: bool,
}

fn parse_time(text: &str) -> Result<u64, String> {
    aperture_core::human::parse_clock(text)
        .ok_or_else(|| format!("{text:?} is not a time: write 00:01:23, 1:23.5 or 83"))
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Asset ids (or unique prefixes).
    #[arg(required = true)]
    ids: Vec<String>,
    /// Return only when the erased assets' bytes are gone from the search index too, waiting
    /// (up to --timeout seconds) for another process that is updating it, such as a server.
    #[arg(long)]
    wait: bool,
    /// Seconds `--wait` waits at most.
    #[arg(long, default_value_t = 120, requires = "wait")]
    timeout: u64,
}

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    #[arg(long)]
    json: bool,
}

pub async fn ls(lake: &Lake, args: LsArgs) -> anyhow::Result<ExitCode> {
    let collection = match args.collection.clone() {
        Some(name) => Some(lake.catalog(move |c| c.collection(&name)).await?.id),
        None => None,
    };
    let after = match &args.after {
        Some(text) => Some(lake.resolve(text).await?),
        None => None,
    };
    let query = AssetQuery {
        collections: collection.map(|c| vec![c]),
        kind: args.kind,
        after,
        limit: args.limit,
    };
    let assets = lake.catalog(move |c| c.list_assets(&query)).await?;
    crate::access::record(
        lake,
        "list",
        args.collection.clone(),
        serde_json::json!({ "kind": args.kind.map(|k| k.as_str()), "count": assets.len() }),
    )
    .await?;
    if args.json {
        output::json(&assets)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<32}  {:<8}  {:>10}  {:<16}  NAME",
        "ID", "KIND", "SIZE", "COLLECTION"
    );
    for a in &assets {
        println!(
            "{:<32}  {:<8}  {:>10}  {:<16}  {}",
            a.id,
            a.kind,
            output::bytes(a.size),
            output::clip(&a.collection, 16),
            a.name
        );
    }
    if assets.len() == args.limit
        && let Some(last) = assets.last()
    {
        eprintln!("(more: aperture ls --after {})", last.id);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn show(lake: &Lake, args: ShowArgs) -> anyhow::Result<ExitCode> {
    let id = lake.resolve(&args.id).await?;
    let detail = lake.detail(id).await?;
    crate::access::record_asset(
        lake,
        "read_metadata",
        &detail.asset,
        serde_json::json!({ "collection": detail.asset.collection }),
    )
    .await?;
    if args.json {
        output::json(&detail)?;
    } else {
        println!("{detail}");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn captions(lake: &Lake, args: CaptionsArgs) -> anyhow::Result<ExitCode> {
    let id = lake.resolve(&args.id).await?;
    let asset = lake.catalog(move |c| c.asset(id)).await?;
    let insights = lake
        .catalog(move |c| c.insights_of_kinds(&[id], &["transcript_segment", "translation"]))
        .await?;
    crate::access::record_asset(
        lake,
        "read_captions",
        &asset,
        serde_json::json!({ "collection": asset.collection }),
    )
    .await?;
    let text = aperture_lake::captions::captions(&insights, args.format, args.lang.as_deref())
        .map_err(|e| anyhow::anyhow!("{}: {e}", asset.name))?;
    if args.output.as_os_str() == "-" {
        print!("{text}");
    } else {
        write_replacing(&args.output, text.as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `aperture translate`: each piece of text with its place, languages and engine, then the
/// translation; text no engine reaches the language from is said, not skipped.
pub async fn translate(lake: &Lake, args: TranslateArgs) -> anyhow::Result<ExitCode> {
    aperture_lake::check_language(&args.to)?;
    let id = lake.resolve(&args.id).await?;
    let asset = lake.catalog(move |c| c.asset(id)).await?;
    crate::access::record_asset(
        lake,
        "translate",
        &asset,
        serde_json::json!({ "collection": asset.collection, "to": args.to }),
    )
    .await?;
    let translations = lake.translate(id, &args.to).await?;
    if args.json {
        crate::output::json(&translations)?;
        return Ok(ExitCode::SUCCESS);
    }
    if translations.is_empty() {
        println!(
            "{} has no text outside {} (text, OCR and speech are read by `aperture index`)",
            asset.name, args.to
        );
    }
    for insight in &translations {
        let aperture_core::InsightValue::Translation(t) = &insight.value else {
            continue;
        };
        let via = t
            .pivot_language
            .as_deref()
            .map(|p| format!(" via {p}"))
            .unwrap_or_default();
        println!(
            "{} {} → {}{via} ({}){}",
            t.source,
            t.source_language,
            t.target_language,
            t.engine,
            aperture_core::human::where_in(&insight.place)
        );
        match &t.note {
            Some(note) if t.text.is_empty() => println!("  ({note})"),
            note => {
                println!("  {}", t.text.replace('\n', "\n  "));
                if let Some(note) = note {
                    println!("  ({note})");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn get(lake: &Lake, args: GetArgs) -> anyhow::Result<ExitCode> {
    let id = lake.resolve(&args.id).await?;
    let asset = lake.catalog(move |c| c.asset(id)).await?;
    if let Some(time_ms) = args.frame {
        crate::access::record_asset(
            lake,
            "read_frame",
            &asset,
            serde_json::json!({ "collection": asset.collection, "at_ms": time_ms }),
        )
        .await?;
        let jpeg = lake.frame(id, time_ms, 4096).await?;
        if args.output.as_os_str() == "-" {
            use std::io::Write;
            std::io::stdout().write_all(&jpeg)?;
        } else {
            write_replacing(&args.output, &jpeg)?;
            eprintln!(
                "wrote the frame at {} of {} to {}",
                aperture_core::human::clock(time_ms),
                asset.name,
                args.output.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.blur_faces {
        crate::access::record_asset(
            lake,
            "read_original",
            &asset,
            serde_json::json!({ "collection": asset.collection, "blur": "faces" }),
        )
        .await?;
        let blurred = lake.blur_faces(id).await?;
        if args.output.as_os_str() == "-" {
            use std::io::Write;
            std::io::stdout().write_all(&blurred.bytes)?;
        } else {
            write_replacing(&args.output, &blurred.bytes)?;
        }
        eprintln!("{}: {} faces blurred", asset.name, blurred.faces);
        return Ok(ExitCode::SUCCESS);
    }
    crate::access::record_asset(
        lake,
        "read_original",
        &asset,
        serde_json::json!({ "collection": asset.collection }),
    )
    .await?;
    if args.output.as_os_str() == "-" {
        let mut stdout = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
        // Verified before the first byte goes out: a corrupt blob prints nothing.
        lake.blobs
            .read_to_writer(asset.hash, &mut stdout)
            .await
            .with_context(|| format!("cannot read asset {id}"))?;
    } else {
        let written = lake
            .blobs
            .read_to_file(asset.hash, &args.output)
            .await
            .with_context(|| format!("cannot read asset {id}"))?;
        eprintln!(
            "wrote {} ({}) to {}",
            asset.name,
            output::bytes(written),
            args.output.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`: never half a
/// file.
fn write_replacing(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    temp.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    temp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

pub async fn rm(lake: &Lake, args: RmArgs) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let mut removed = false;
    for text in &args.ids {
        match remove(lake, text).await {
            Ok(line) => {
                println!("{line}");
                removed = true;
            }
            Err(e) => {
                eprintln!("error: {text}: {e:#}");
                failed = true;
            }
        }
    }
    // Out of the search indexes at once (searches never show a removed asset anyway). The
    // catalog and the blob store hold no bytes of them by now (`Lake::erase`).
    if removed {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(args.timeout);
        loop {
            match lake.update_search().await {
                Ok(_) => {
                    if args.wait {
                        wait_said(lake).await?;
                    }
                    break;
                }
                Err(aperture_lake::Error::Search(aperture_search::Error::Busy(_)))
                    if args.wait && std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(e) if args.wait => {
                    anyhow::bail!("the search index still holds the removed assets: {e:#}");
                }
                Err(e) => {
                    eprintln!(
                        "note: the search index will drop the removed assets on its next update: {e:#}"
                    );
                    break;
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// What `rm --wait` can promise, once the search index has applied the erasure.
async fn wait_said(lake: &Lake) -> anyhow::Result<()> {
    if matches!(
        lake.config.catalog,
        aperture_lake::CatalogLocation::Postgres(_)
    ) {
        println!(
            "erased: the rows are gone from the catalog and the search index, and the bytes from the blob store; PostgreSQL keeps deleted rows in its files until VACUUM reuses their pages, and in its WAL and backups"
        );
    } else if lake.scrub_catalog().await? {
        println!(
            "erased: no bytes of the removed assets are left in the catalog, the blob store or the search index"
        );
    } else {
        anyhow::bail!(
            "the catalog's write-ahead log could not be truncated: other processes kept reading the catalog for 10 s; it is truncated when the catalog is next opened, or stop them and run `aperture fsck`"
        );
    }
    Ok(())
}

async fn remove(lake: &Lake, text: &str) -> anyhow::Result<String> {
    let id = lake.resolve(text).await?;
    let asset = lake.catalog(move |c| c.asset(id)).await?;
    crate::access::record_asset(
        lake,
        "delete",
        &asset,
        serde_json::json!({ "collection": asset.collection }),
    )
    .await?;
    Ok(match lake.erase(id).await? {
        Erased::WithBytes => format!("removed {id} ({}) and its bytes", asset.name),
        Erased::BytesShared => format!(
            "removed {id} ({}); its bytes stay, another asset has the same content",
            asset.name
        ),
        Erased::BytesRepaired => format!(
            "removed {id} ({}); its bytes were deleted by `aperture fsck --repair`",
            asset.name
        ),
    })
}

pub async fn stats(lake: &Lake, args: StatsArgs) -> anyhow::Result<ExitCode> {
    let stats = lake.catalog(|c| c.stats()).await?;
    if args.json {
        output::json(&serde_json::json!({
            "stats": stats,
            "dedupe_savings": stats.dedupe_savings(),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("{stats}");
    Ok(ExitCode::SUCCESS)
}
