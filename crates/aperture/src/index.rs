//! `aperture index`, `aperture worker` and `aperture reindex`: running the analyzers.

use std::process::ExitCode;
use std::time::Instant;

use aperture_lake::{Follower, Lake, Worker, WorkerReport};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output;

#[derive(Debug, clap::Args)]
pub struct IndexArgs {
    #[command(flatten)]
    lease: JobArgs,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, clap::Args)]
pub struct JobArgs {
    /// Seconds a job stays leased to this worker; if it has not finished by then (it died),
    /// another worker takes the job over.
    #[arg(long = "lease", value_name = "SECONDS", default_value_t = 600)]
    seconds: u64,
    /// Jobs run at once (default: `[worker] threads` in aperture.toml, else one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: Option<u32>,
}

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    lease: JobArgs,
}

#[derive(Debug, clap::Args)]
pub struct ReindexArgs {
    /// The analyzer whose results are out of date (see `aperture index --help` for names).
    #[arg(long, required = true)]
    analyzer: Vec<String>,
}

/// A worker running every analyzer this data folder can run; says which cannot.
fn worker(lake: &Lake, lease: JobArgs) -> Worker {
    let (worker, missing) = lake.worker(
        std::time::Duration::from_secs(lease.seconds),
        lease.threads.map(|n| n as usize),
    );
    for m in missing {
        eprintln!("note: analyzer {} is not running: {}", m.analyzer, m.reason);
    }
    worker
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(term) => { term.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

/// Runs every queued job, then prints what happened.
pub async fn index(lake: &Lake, args: IndexArgs) -> anyhow::Result<ExitCode> {
    let report = run_drain(lake, args.lease, args.no_progress || args.json).await?;
    if args.json {
        output::json(&report)?;
    } else {
        println!("{report}");
    }
    Ok(exit(&report))
}

/// What `ingest --index` runs after ingesting.
pub async fn drain(lake: &Lake, no_bar: bool, print_summary: bool) -> anyhow::Result<ExitCode> {
    let report = run_drain(
        lake,
        JobArgs {
            seconds: 600,
            threads: None,
        },
        no_bar,
    )
    .await?;
    if print_summary {
        println!("{report}");
    }
    Ok(exit(&report))
}

fn exit(report: &WorkerReport) -> ExitCode {
    if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Brings the search index up to date after the analyzers ran. It is derived data: a
/// failure is reported, not fatal (the next search or update catches up); another process
/// updating it is no failure at all.
async fn update_search(lake: &Lake, quiet: bool) {
    match lake.update_search().await {
        Ok(update) => {
            if !quiet && (update.indexed > 0 || update.removed > 0) {
                println!(
                    "search index: {} assets updated, {} removed",
                    output::count(update.indexed),
                    output::count(update.removed)
                );
            }
        }
        Err(e @ aperture_lake::Error::Search(aperture_search::Error::Busy(_))) => {
            eprintln!("note: {e}; it will catch up on its own");
        }
        Err(e) => eprintln!("warning: the search index was not updated: {e:#}"),
    }
}

async fn run_drain(lake: &Lake, lease: JobArgs, quiet: bool) -> anyhow::Result<WorkerReport> {
    let worker = worker(lake, lease);
    worker.enqueue_missing().await?;
    let waiting: u64 = lake
        .catalog(|c| c.job_counts())
        .await?
        .into_iter()
        .filter(|(_, state, _)| state.is_pending())
        .map(|(_, _, n)| n)
        .sum();
    let bar = ProgressBar::with_draw_target(
        Some(waiting),
        if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    )
    .with_style(
        ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{bar:30}] {human_pos}/{human_len} jobs {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let report = worker
        .drain(&|report: &WorkerReport| {
            bar.set_position(report.jobs());
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(report.rates(secs));
        })
        .await?;
    bar.finish_and_clear();
    update_search(lake, quiet).await;
    Ok(report)
}

/// How often a long-running worker brings the search index up to date.
const SEARCH_FOLLOW_SECS: u64 = 5;

/// Runs until interrupted (Ctrl-C or SIGTERM), taking jobs as they come.
pub async fn run_worker(lake: &Lake, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let worker = worker(lake, args.lease);
    worker.enqueue_missing().await?;
    eprintln!("worker {} running; Ctrl-C stops it", worker.id());
    let stop = stop_signal();
    // On a catalog of its own (SQLite) the worker keeps the data folder's search index current
    // for the CLI; on a shared one the servers keep theirs, and a worker's would be one more
    // follower holding the feed back. The shared search index is one follower for all:
    // whichever process takes its lock applies the changes, workers included.
    let follows = matches!(
        lake.config.catalog,
        aperture_lake::CatalogLocation::Sqlite(_)
    ) || matches!(
        lake.config.search,
        aperture_lake::SearchLocation::Postgres(_)
    );
    let follow = async {
        if !follows {
            return std::future::pending().await;
        }
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(SEARCH_FOLLOW_SECS));
        let mut follower = Follower::new(lake);
        loop {
            tick.tick().await;
            follower.step(false).await;
        }
    };
    // Retention: what outlived its collection's retention is erased as time goes by.
    let every = std::time::Duration::from_secs(lake.config.retention.sweep_every_secs);
    let retention = lake.run_retention(every, std::future::pending());
    let report = tokio::select! {
        report = worker.run(stop, &|report: &WorkerReport| {
            tracing::info!(jobs = report.jobs(), "progress");
        }) => report?,
        _ = follow => unreachable!("the follower loops forever"),
        () = retention => unreachable!("retention sweeps until stopped"),
    };
    if follows {
        update_search(lake, false).await;
    }
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// Queues again the results of analyzers whose version changed; search keeps serving the
/// old results until the new ones replace them.
pub async fn reindex(lake: &Lake, args: ReindexArgs) -> anyhow::Result<ExitCode> {
    for name in &args.analyzer {
        let (version, stale) = lake.reindex(name).await?;
        let stale = output::count(stale);
        println!("{name}: {stale} stale results queued again (version {version})");
    }
    println!("next: aperture index (or a running aperture worker) brings them up to date");
    Ok(ExitCode::SUCCESS)
}
