//! `aperture ingest`: a progress bar over [`aperture_ingest::Ingester`], then a summary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aperture_ingest::{FileReport, FileStatus, Ingester, Progress, Report};
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output;
use aperture_lake::Lake;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files and folders to ingest; folders are walked recursively.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// The collection to put them in (created if missing).
    #[arg(long, short)]
    collection: Option<String>,
    /// Print the report as JSON, with a line for every file.
    #[arg(long)]
    json: bool,
    /// Files read at once (default from the config).
    #[arg(long, short)]
    jobs: Option<usize>,
    /// Also walk into hidden files and folders (names starting with a dot).
    #[arg(long)]
    hidden: bool,
    /// Analyze what was stored right away (as `aperture index` does).
    #[arg(long)]
    index: bool,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

pub async fn run(lake: &Lake, args: Args) -> anyhow::Result<ExitCode> {
    let settings = &lake.config.ingest;
    let mut options = lake.ingest_options(
        args.collection
            .unwrap_or_else(|| settings.default_collection.clone()),
    );
    options.concurrency = args.jobs.unwrap_or(settings.concurrency).max(1);
    options.include_hidden |= args.hidden;
    options.report_every_file = args.json;
    let bar = Bar::new(!(args.json || args.no_progress));
    let ingester = Ingester::new(lake.blobs.clone(), lake.catalog.clone());
    let json = args.json;
    // Recorded before any file is stored, and again with the outcome.
    let paths: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
    crate::access::record(
        lake,
        "ingest_start",
        Some(options.collection.clone()),
        serde_json::json!({ "paths": paths }),
    )
    .await?;
    let report = ingester.ingest(&args.paths, &options, &bar).await?;
    bar.bar.finish_and_clear();
    crate::access::record(
        lake,
        "ingest",
        Some(options.collection.clone()),
        serde_json::json!({ "paths": paths, "totals": report.totals }),
    )
    .await?;
    if args.json {
        output::json(&report)?;
    } else {
        summary(&report);
    }
    let indexed = if args.index {
        crate::index::drain(lake, json || args.no_progress, !json).await?
    } else {
        ExitCode::SUCCESS
    };
    Ok(if report.totals.failed == 0 {
        indexed
    } else {
        ExitCode::FAILURE
    })
}

struct Bar {
    bar: ProgressBar,
    bytes: AtomicU64,
}

impl Bar {
    fn new(visible: bool) -> Self {
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(0), target).with_style(
            ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:30}] {human_pos}/{human_len} files {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Self {
            bar,
            bytes: AtomicU64::new(0),
        }
    }
}

impl Progress for Bar {
    fn found(&self, _bytes: u64) {
        self.bar.inc_length(1);
    }

    fn done(&self, file: &FileReport) {
        let bytes = self.bytes.fetch_add(file.size, Ordering::Relaxed) + file.size;
        self.bar.inc(1);
        let secs = self.bar.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "{} ({}/s)",
            HumanBytes(bytes),
            HumanBytes((bytes as f64 / secs) as u64)
        ));
    }
}

fn summary(report: &Report) {
    let t = &report.totals;
    let secs = report.elapsed.as_secs_f64().max(1e-3);
    println!(
        "ingested {} files ({}) into {:?} in {:.1} s: {}/s, {} files/s",
        output::count(t.files),
        output::bytes(t.bytes),
        report.collection,
        secs,
        output::bytes((t.bytes as f64 / secs) as u64),
        output::count((t.files as f64 / secs) as u64),
    );
    println!(
        "  {} stored, {} duplicates, {} already known, {} failed; {} new in the blob store",
        output::count(t.stored),
        output::count(t.duplicates),
        output::count(t.known),
        output::count(t.failed),
        output::bytes(t.new_bytes),
    );
    if t.hidden_skipped > 0 {
        println!(
            "  {} hidden files or folders left out (--hidden takes them too)",
            output::count(t.hidden_skipped)
        );
    }
    let failed: Vec<_> = report
        .files
        .iter()
        .filter(|f| f.status == FileStatus::Failed)
        .map(|f| f.error.clone().unwrap_or_else(|| f.path.clone()))
        .collect();
    if !failed.is_empty() {
        println!("failed:");
        output::capped(failed.into_iter(), 20, "--json lists them all");
    }
    let warned: Vec<_> = report
        .files
        .iter()
        .filter(|f| f.status != FileStatus::Failed && !f.warnings.is_empty())
        .map(|f| format!("{}: {}", f.path, f.warnings.join("; ")))
        .collect();
    if !warned.is_empty() {
        println!("stored with warnings:");
        output::capped(warned.into_iter(), 20, "--json lists them all");
    }
}
