//! Ingest throughput against the baseline of `cp` followed by `b3sum` over the same files and a
//! `sync` (ingest makes its blobs durable too), in the same run, and the same ingest into a
//! lake encrypted at rest (`init --encrypt`). Prints a table.
//!
//! ```sh
//! scripts/setup.sh --bench                # installs b3sum
//! cargo bench -p aperture --bench ingest
//! ```
//!
//! `BENCH_DIR` picks the file system (default: the temporary folder); the sources, the copies
//! and the data folders all live there. Sizes: `BENCH_LARGE_FILES` × `BENCH_LARGE_MB` (default 4 × 512 MiB) and `BENCH_SMALL_FILES`
//! files of 4 KiB (default 20,000). Every run starts from warm page cache on both sides (the
//! sources are read once before timing) and after a `sync`, so neither side pays for the
//! other's write-back. Each measurement is the median of `BENCH_RUNS` (default 3).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/files.rs"]
mod files;
use files::{env_usize, make_files, median, run, settle};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("ingest: bench");
        return;
    }
    let large_files = env_usize("BENCH_LARGE_FILES", 4);
    let large_mb = env_usize("BENCH_LARGE_MB", 512);
    let small_files = env_usize("BENCH_SMALL_FILES", 20_000);
    let runs = env_usize("BENCH_RUNS", 3).max(1);
    if !has_b3sum() {
        eprintln!("b3sum not found: the baseline needs it (scripts/setup.sh --bench installs it)");
        std::process::exit(2);
    }
    let root = tempfile::Builder::new()
        .prefix("aperture-bench-")
        .tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into()))
        .expect("temporary folder");

    let large = root.path().join("large");
    make_files(&large, large_files, large_mb << 20, 1);
    let small = root.path().join("small");
    make_files(&small, small_files, 4096, 2);

    println!(
        "ingest benchmark: {} × {} MiB and {} × 4 KiB files, median of {runs} runs, {} cores",
        large_files,
        large_mb,
        small_files,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "| workload | cp + b3sum + sync | aperture ingest | ratio (aperture / baseline) | \
         aperture ingest, encrypted | encrypted / plain |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, dir, files, bytes) in [
        (
            "large files",
            &large,
            large_files,
            (large_files * (large_mb << 20)) as f64,
        ),
        (
            "4 KiB files",
            &small,
            small_files,
            (small_files * 4096) as f64,
        ),
    ] {
        // Interleaved, so that a drift in the machine (this disk slows down for a while after
        // large deletions) hits both sides alike.
        let (mut base_times, mut sync_times, mut our_times, mut sealed_times) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for run in 0..runs {
            let (base, sync) = baseline(dir, &root.path().join(format!("cp-{name}-{run}")));
            base_times.push(base);
            sync_times.push(sync);
            our_times.push(aperture_ingest(
                dir,
                &root.path().join(format!("ap-{name}-{run}")),
                false,
            ));
            sealed_times.push(aperture_ingest(
                dir,
                &root.path().join(format!("enc-{name}-{run}")),
                true,
            ));
        }
        // The spread between runs, beside each median: this disk is noisy.
        let spread = |times: &[Duration]| {
            let (min, max) = (times.iter().min(), times.iter().max());
            format!(
                "{:.2}–{:.2} s",
                min.map_or(0.0, Duration::as_secs_f64),
                max.map_or(0.0, Duration::as_secs_f64)
            )
        };
        let (base_spread, our_spread) = (spread(&base_times), spread(&our_times));
        let (baseline, sync, ours, sealed) = (
            median(base_times),
            median(sync_times),
            median(our_times),
            median(sealed_times),
        );
        let rate = |d: Duration| {
            if name == "large files" {
                format!("{:.0} MB/s", bytes / d.as_secs_f64() / 1e6)
            } else {
                format!("{:.0} files/s", files as f64 / d.as_secs_f64())
            }
        };
        println!(
            "| {name} | {} ({:.2} s; {base_spread}; sync {:.2} s) | {} ({:.2} s; {our_spread}) | \
             {:.2}× | {} ({:.2} s) | {:.2}× |",
            rate(baseline),
            baseline.as_secs_f64(),
            sync.as_secs_f64(),
            rate(ours),
            ours.as_secs_f64(),
            baseline.as_secs_f64() / ours.as_secs_f64(),
            rate(sealed),
            sealed.as_secs_f64(),
            ours.as_secs_f64() / sealed.as_secs_f64()
        );
    }
    let rerun = aperture_reingest(&small, &root.path().join("reingest"));
    println!();
    println!(
        "re-ingest of the unchanged 4 KiB files (all reported as known): {:.0} files/s",
        small_files as f64 / rerun.as_secs_f64()
    );

    // What the flush of the blob store costs on its own: the same ingest without it.
    let mut unsynced = Vec::new();
    for n in 0..runs {
        let data = fresh_data(&root.path().join(format!("nosync-{n}")), false);
        let config = data.join("aperture.toml");
        let text = std::fs::read_to_string(&config).expect("aperture.toml");
        assert!(
            text.contains("\nfsync = true"),
            "aperture.toml no longer says fsync = true"
        );
        std::fs::write(&config, text.replace("\nfsync = true", "\nfsync = false")).expect("config");
        settle(&small);
        let started = Instant::now();
        run(&mut aperture(
            &data,
            &["ingest", &small.to_string_lossy(), "--no-progress"],
        ));
        unsynced.push(started.elapsed());
    }
    let unsynced = median(unsynced);
    println!(
        "4 KiB files with `[storage] fsync = false` (the catalog still syncs its commits): \
         {:.0} files/s ({:.2} s)",
        small_files as f64 / unsynced.as_secs_f64(),
        unsynced.as_secs_f64()
    );

    index_phase(root.path(), env_usize("BENCH_TEXT_FILES", 4_000), runs);
}

/// Small text files ingested, then indexed by the analyzers a lake without models runs (text,
/// with its language, and translation, which skips text already in the target language):
/// jobs per second of `aperture index`, beside files per second of the ingest before it.
fn index_phase(root: &Path, count: usize, runs: usize) {
    let texts = root.join("texts");
    std::fs::create_dir_all(&texts).expect("bench folder");
    const WORDS: [&str; 16] = [
        "archive", "river", "witness", "report", "night", "city", "harbour", "letter", "minutes",
        "budget", "council", "evidence", "street", "market", "school", "bridge",
    ];
    for i in 0..count {
        let line: Vec<&str> = (0..40)
            .map(|w| WORDS[(i * 7 + w * 13 + w * w) % 16])
            .collect();
        std::fs::write(
            texts.join(format!("note-{i:05}.txt")),
            format!("{} {i}.\n", line.join(" ")),
        )
        .expect("bench file");
    }
    let (mut ingests, mut indexes, mut jobs) = (Vec::new(), Vec::new(), 0);
    for n in 0..runs {
        let data = fresh_data(&root.join(format!("index-{n}")), false);
        settle(&texts);
        let started = Instant::now();
        run(&mut aperture(
            &data,
            &["ingest", &texts.to_string_lossy(), "--no-progress"],
        ));
        ingests.push(started.elapsed());
        let started = Instant::now();
        let out = aperture(&data, &["index", "--json", "--no-progress"])
            .stdout(Stdio::piped())
            .output()
            .expect("aperture index");
        indexes.push(started.elapsed());
        assert!(out.status.success(), "aperture index failed");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        jobs = ["succeeded", "skipped", "failed", "retried", "lost_leases"]
            .iter()
            .map(|k| report[k].as_u64().unwrap_or(0))
            .sum::<u64>();
    }
    let (ingest, index) = (median(ingests), median(indexes));
    let files_per_s = count as f64 / ingest.as_secs_f64();
    let jobs_per_s = jobs as f64 / index.as_secs_f64();
    println!();
    println!(
        "| {count} text files | ingest | `aperture index` ({jobs} jobs) | index jobs/s ÷ ingest files/s |"
    );
    println!("|---|---|---|---|");
    println!(
        "| median of {runs} | {files_per_s:.0} files/s ({:.2} s) | {jobs_per_s:.0} jobs/s ({:.2} s) | {:.2} |",
        ingest.as_secs_f64(),
        index.as_secs_f64(),
        jobs_per_s / files_per_s
    );
}

fn has_b3sum() -> bool {
    Command::new("b3sum")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Nothing is deleted until the end: on disks mounted with `discard`, deleting many files
/// slows every file operation for a while after, which would bleed into the next run.
/// The peer makes its copies durable as ingest makes its blobs durable: `sync` at the end.
/// Returns the whole time and the part of it that `sync` took.
fn baseline(sources: &Path, dest: &Path) -> (Duration, Duration) {
    settle(sources);
    let started = Instant::now();
    run(Command::new("cp").arg("-r").arg(sources).arg(dest));
    run(Command::new("sh").arg("-c").arg(format!(
        "find '{}' -type f -print0 | xargs -0 b3sum > /dev/null",
        dest.display()
    )));
    let syncing = Instant::now();
    run(&mut Command::new("sync"));
    (started.elapsed(), syncing.elapsed())
}

fn aperture(data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aperture"));
    cmd.arg("--data").arg(data).args(args).stdout(Stdio::null());
    // The encrypted lakes use their key files, whatever this shell holds.
    cmd.env_remove("APERTURE_MASTER_KEY");
    cmd
}

fn fresh_data(data: &Path, encrypt: bool) -> PathBuf {
    let init: &[&str] = if encrypt {
        &["init", "--encrypt"]
    } else {
        &["init"]
    };
    run(&mut aperture(data, init));
    data.to_path_buf()
}

fn aperture_ingest(sources: &Path, data: &Path, encrypt: bool) -> Duration {
    let data = fresh_data(data, encrypt);
    settle(sources);
    let started = Instant::now();
    run(&mut aperture(
        &data,
        &["ingest", &sources.to_string_lossy(), "--no-progress"],
    ));
    started.elapsed()
}

fn aperture_reingest(sources: &Path, data: &Path) -> Duration {
    let data = fresh_data(data, false);
    let ingest = ["ingest", &*sources.to_string_lossy(), "--no-progress"];
    run(&mut aperture(&data, &ingest));
    settle(sources);
    let started = Instant::now();
    run(&mut aperture(&data, &ingest));
    started.elapsed()
}
