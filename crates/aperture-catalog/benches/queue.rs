//! Job queue throughput: jobs claimed and finished per second by 1, 2, 4 and 8 worker threads,
//! with claim batches of 1 and 16, on SQLite and PostgreSQL, in the same run. Prints a table.
//!
//! ```sh
//! eval "$(bash scripts/services.sh start)"   # the shared test PostgreSQL (optional)
//! cargo bench -p aperture-catalog --bench queue
//! ```
//!
//! Catalogs compared:
//! - SQLite: a catalog file in a temporary folder (`SqliteCatalog::open`: WAL,
//!   `synchronous=FULL`, so every commit is synced);
//! - PostgreSQL, the test server of `APERTURE_TEST_POSTGRES` (skipped when unset), which runs
//!   with `fsync=off` and `synchronous_commit=off`: no commit is synced;
//! - PostgreSQL, a server of the bench's own (PostgreSQL's server binaries, as for
//!   `PgServer`), with its durable defaults (`fsync=on`, `synchronous_commit=on`): every
//!   commit is synced, as on a production server. Skipped without server binaries.
//!
//! Each run gets a fresh catalog (a new database on PostgreSQL) holding `BENCH_JOBS` assets
//! (default 20,000), recorded 256 to a transaction, each with one `labels` job. The workers
//! then claim and finish jobs, each with one small label insight, until a claim comes back
//! empty; the time is from the first claim to the last finish. Each run checks its result:
//! every job succeeded, finished exactly once. `BENCH_DIR` picks the SQLite file's folder.

use std::time::{Duration, Instant};

use aperture_catalog::conformance::{PgServer, fresh_database};
use aperture_catalog::{
    Catalog, JobQueue, JobState, NewAsset, NewSource, Outcome, PgCatalog, SqliteCatalog,
};
use aperture_core::human::HumanCount;
use aperture_core::{ContentHash, Insight, MediaKind, MediaMetadata, Place, UnixMillis, value};

const WORKERS: [usize; 4] = [1, 2, 4, 8];
const BATCHES: [usize; 2] = [1, 16];
const RECORD_BATCH: usize = 256;
const LEASE: Duration = Duration::from_secs(300);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Where the catalogs of one configuration come from.
enum Target<'a> {
    Sqlite,
    /// A PostgreSQL server, by the URL of a database to connect to for `CREATE DATABASE`.
    Postgres(&'a str),
}

struct Row<'a> {
    name: &'static str,
    syncs: &'static str,
    target: Target<'a>,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("queue: bench");
        return;
    }
    let jobs = env_usize("BENCH_JOBS", 20_000);
    let shared = std::env::var("APERTURE_TEST_POSTGRES").ok();
    // Started before the table, so its notes do not land inside it.
    let durable = PgServer::start_with(&[]);
    let durable_url = durable.as_ref().map(|s| s.url("postgres"));

    let mut rows = vec![Row {
        name: "SQLite (WAL, synchronous=FULL)",
        syncs: "yes",
        target: Target::Sqlite,
    }];
    if let Some(url) = &durable_url {
        rows.push(Row {
            name: "PostgreSQL (fsync=on, synchronous_commit=on)",
            syncs: "yes",
            target: Target::Postgres(url),
        });
    }
    if let Some(url) = &shared {
        rows.push(Row {
            name: "PostgreSQL test server (fsync=off, synchronous_commit=off)",
            syncs: "no",
            target: Target::Postgres(url),
        });
    }

    println!(
        "job queue benchmark: {jobs} jobs, each claimed and finished with one label insight, \
         lease {} s, {} cores",
        LEASE.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "| catalog | commits synced | claim batch | {} |",
        WORKERS
            .map(|w| format!("{w} worker{}", if w == 1 { "" } else { "s" }))
            .join(" | ")
    );
    println!("|---|---|---|{}", "---|".repeat(WORKERS.len()));
    // jobs/s by (row, batch, workers), for the ratios below.
    let mut rates = Vec::new();
    for row in &rows {
        for batch in BATCHES {
            let mut cells = Vec::new();
            for workers in WORKERS {
                let rate = run(&row.target, jobs, workers, batch);
                rates.push((row.name, batch, workers, rate));
                cells.push(format!("{} jobs/s", HumanCount(rate.round() as u64)));
            }
            println!(
                "| {} | {} | {batch} | {} |",
                row.name,
                row.syncs,
                cells.join(" | ")
            );
        }
    }
    println!();
    println!(
        "Every commit of a claim or a finish is one transaction; \"commits synced\" says whether \
         it waits for the disk."
    );
    if shared.is_some() {
        println!(
            "The test server (scripts/services.sh) runs with fsync=off, synchronous_commit=off \
             and full_page_writes=off: nothing waits for the disk, so its rows are an upper \
             bound, not what a production server does."
        );
    } else {
        println!(
            "PostgreSQL test-server rows skipped: APERTURE_TEST_POSTGRES is not set \
             (eval \"$(bash scripts/services.sh start)\")."
        );
    }
    if durable.is_none() {
        println!("Durable PostgreSQL rows skipped: no PostgreSQL server binaries.");
    } else {
        println!();
        println!("Like with like, both syncing every commit: PostgreSQL (durable) / SQLite");
        println!();
        println!(
            "| claim batch | {} |",
            WORKERS
                .map(|w| format!("{w} worker{}", if w == 1 { "" } else { "s" }))
                .join(" | ")
        );
        println!("|---|{}", "---|".repeat(WORKERS.len()));
        for batch in BATCHES {
            let rate = |name: &str, workers| {
                rates
                    .iter()
                    .find(|r| r.0.starts_with(name) && r.1 == batch && r.2 == workers)
                    .map_or(f64::NAN, |r| r.3)
            };
            let cells: Vec<String> = WORKERS
                .iter()
                .map(|&w| format!("{:.2}×", rate("PostgreSQL (", w) / rate("SQLite", w)))
                .collect();
            println!("| {batch} | {} |", cells.join(" | "));
        }
    }
}

/// One run on a fresh catalog: jobs per second.
fn run(target: &Target<'_>, jobs: usize, workers: usize, batch: usize) -> f64 {
    match target {
        Target::Sqlite => {
            let dir = tempfile::Builder::new()
                .prefix("aperture-bench-queue-")
                .tempdir_in(
                    std::env::var_os("BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into()),
                )
                .expect("temporary folder");
            let catalog = SqliteCatalog::open(&dir.path().join("catalog.db")).expect("sqlite");
            measure(&catalog, jobs, workers, batch)
        }
        Target::Postgres(admin_url) => {
            let url = fresh_database(admin_url, "aperture_bench");
            let (_, name) = url.rsplit_once('/').expect("a database URL");
            let mut admin =
                postgres::Client::connect(admin_url, postgres::NoTls).expect("connect to server");
            let rate = {
                let catalog = PgCatalog::open(&url).expect("postgres");
                measure(&catalog, jobs, workers, batch)
            };
            admin
                .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .expect("drop the bench database");
            rate
        }
    }
}

fn measure<C: Catalog + JobQueue>(catalog: &C, jobs: usize, workers: usize, batch: usize) -> f64 {
    setup(catalog, jobs);
    let analyzers = vec!["labels".to_owned()];
    let start = std::sync::Barrier::new(workers + 1);
    let (started, finished) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (analyzers, start) = (&analyzers, &start);
                s.spawn(move || {
                    let worker = format!("bench-{w}");
                    let mut done = Vec::new();
                    start.wait();
                    loop {
                        let claimed = catalog
                            .claim(&worker, analyzers, batch, LEASE)
                            .expect("claim");
                        if claimed.is_empty() {
                            break;
                        }
                        for job in claimed {
                            let outcome = Outcome::Succeeded {
                                version: "1".into(),
                                insights: vec![label(job.asset)],
                                requeue: vec![],
                            };
                            let held = catalog.finish(job.id, &worker, &outcome).expect("finish");
                            assert!(held, "job {} lost its lease", job.id);
                            done.push(job.id);
                        }
                    }
                    done
                })
            })
            .collect();
        start.wait();
        let started = Instant::now();
        let finished: Vec<i64> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("a worker panicked"))
            .collect();
        (started.elapsed(), finished)
    });
    check(catalog, jobs, finished);
    jobs as f64 / started.as_secs_f64()
}

/// Every job succeeded, and was finished exactly once.
fn check<C: Catalog + JobQueue>(catalog: &C, jobs: usize, mut finished: Vec<i64>) {
    finished.sort_unstable();
    let all = finished.len();
    finished.dedup();
    assert_eq!(all, finished.len(), "a job was finished twice");
    assert_eq!(all, jobs, "jobs finished");
    let counts = catalog.job_counts().expect("job counts");
    assert_eq!(
        counts,
        vec![("labels".to_owned(), JobState::Succeeded, jobs as u64)],
        "job states after the run"
    );
}

/// `jobs` assets, each with one `labels` job, recorded `RECORD_BATCH` at a time.
fn setup<C: Catalog>(catalog: &C, jobs: usize) {
    let collection = catalog.ensure_collection("bench").expect("collection").id;
    let assets: Vec<NewAsset> = (0..jobs)
        .map(|i| {
            let path = format!("/bench/{i:06}.jpg");
            NewAsset {
                collection,
                hash: ContentHash::of(&(i as u64).to_le_bytes()),
                size: 1000,
                kind: MediaKind::Image,
                mime: "image/jpeg".into(),
                metadata: MediaMetadata::default(),
                source: NewSource {
                    path_bytes: path.clone().into_bytes(),
                    name: path.rsplit('/').next().unwrap_or(&path).to_owned(),
                    path,
                    file_size: 1000,
                    modified_ns: Some(1_700_000_000_000_000_000),
                },
                generation_seen: 0,
                jobs: vec![("labels".into(), 0)],
            }
        })
        .collect();
    for chunk in assets.chunks(RECORD_BATCH) {
        catalog.record(chunk).expect("record");
    }
}

/// One small label insight, as the `labels` analyzer stores.
fn label(asset: aperture_core::AssetId) -> Insight {
    Insight {
        asset,
        analyzer: "labels".into(),
        analyzer_version: "1".into(),
        model: Some("efficientnet-lite0".into()),
        model_version: Some("57934424".into()),
        value: value::Label {
            name: "bald eagle".into(),
            class: 22,
            rank: 1,
            taxonomy: "imagenet-1k".into(),
        }
        .into(),
        confidence: Some(0.93),
        language: Some("en".into()),
        place: Place::Whole,
        created_at: UnixMillis::now(),
    }
}
