//! `aperture ingest`: a progress bar over [`aperture_ingest::Ingester`], then a summary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aperture_core::human::HumanBytes;
use aperture_ingest::{FileReport, Ingester, Progress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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
    // Recorded before any file is stored, and again with the outcome. The paths are private:
    // erasing an asset ingested from one of them (or below it) erases them from the log.
    let paths: Vec<String> = args
        .paths
        .iter()
        // As the walker records sources (absolute, links and `..` kept as given).
        .map(|p| {
            std::path::absolute(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string()
        })
        .collect();
    let entry = |action: &str, detail: serde_json::Value| {
        paths.iter().fold(
            aperture_catalog::NewAuditEntry::new(
                crate::access::cli_actor(),
                action,
                Some(options.collection.clone()),
                detail,
            ),
            |entry, path| entry.naming_path(path, serde_json::json!({ "path": path })),
        )
    };
    lake.record_audit(entry(
        "ingest_start",
        serde_json::json!({ "paths": paths.len() }),
    ))
    .await?;
    let report = ingester.ingest(&args.paths, &options, &bar).await?;
    bar.bar.finish_and_clear();
    lake.record_audit(entry(
        "ingest",
        serde_json::json!({ "paths": paths.len(), "totals": report.totals }),
    ))
    .await?;
    if args.json {
        output::json(&report)?;
    } else {
        println!("{report}");
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
