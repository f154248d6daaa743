//! A hostile corpus — over 200 files cut short, with bits flipped, under lying names, bombs,
//! markup nested deep — ingested and indexed with the real models in one batch: no panic,
//! every file reported, the lake consistent, and the process's peak memory bounded (reported
//! with `--nocapture`).

use aperture_media::fixtures;

use crate::real_media::{env_dir, with_models};

/// The most the whole `ingest --index` process may take at its peak. Measured here (debug
/// build): 1.5 to 2.1 GB, of which the models loaded together take over 1 GB; 4.6 GB before
/// text was cut down ahead of the tokenizer. The goal is 600 MB (issue 16): this bound only
/// catches regressions until model memory is worked on.
const PEAK_RSS_LIMIT_MB: u64 = 2_500;

/// The largest resident set of any child process waited for so far, in MB.
fn children_peak_rss_mb() -> u64 {
    // SAFETY: getrusage writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) },
        0
    );
    u64::try_from(usage.ru_maxrss).unwrap() / 1024
}

#[test]
fn a_hostile_corpus_is_ingested_and_indexed_in_bounded_memory() {
    let ap = with_models();
    let samples = env_dir("APERTURE_TEST_SAMPLES");
    let photos: Vec<_> = [
        "photos/imagenet/imagenet_04_949.jpg",
        "photos/skimage/chelsea.png",
        "documents/refcard-ja-a4.pdf",
    ]
    .iter()
    .map(|p| samples.join(p))
    .collect();
    let dir = ap.inputs().join("hostile");
    let files = fixtures::hostile_corpus(&dir, &photos);
    assert!(files.len() >= 200, "{} files", files.len());
    if std::env::var_os("HOSTILE_KEEP").is_some() {
        std::process::Command::new("cp")
            .args(["-r", dir.to_str().unwrap(), "/tmp/hostile"])
            .status()
            .unwrap();
        return;
    }

    let before = children_peak_rss_mb();
    let out = ap
        .command(&[
            "ingest",
            dir.to_str().unwrap(),
            "--index",
            "--json",
            "--no-progress",
        ])
        .output()
        .unwrap();
    let peak = children_peak_rss_mb();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Some files fail (an empty PDF is no PDF): the batch goes on and says so.
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("no report ({e}): {stderr}"));
    let lines = report["files"].as_array().unwrap();
    assert_eq!(lines.len(), files.len(), "every file reported");
    for line in lines {
        let status = line["status"].as_str().unwrap();
        assert!(
            matches!(status, "stored" | "duplicate" | "failed"),
            "{line}"
        );
        if status == "failed" {
            let error = line["error"].as_str().unwrap_or_default();
            let path = line["path"].as_str().unwrap();
            let name = path.rsplit('/').next().unwrap();
            assert!(error.contains(name), "the error names the file: {line}");
        }
    }
    eprintln!(
        "hostile corpus: {} files, {} stored, {} failed; peak RSS {peak} MB (before {before} MB)",
        lines.len(),
        lines.iter().filter(|l| l["status"] == "stored").count(),
        lines.iter().filter(|l| l["status"] == "failed").count(),
    );
    assert!(
        peak <= PEAK_RSS_LIMIT_MB,
        "ingest --index peaked at {peak} MB (limit {PEAK_RSS_LIMIT_MB} MB)"
    );
    // Nothing is left half-done: every job ended, and the store and catalog agree.
    let db = rusqlite::Connection::open(ap.data().join("catalog.db")).unwrap();
    let unfinished: i64 = db
        .query_row(
            "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running', 'waiting')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unfinished, 0);
    let fsck = ap.fsck();
    assert_eq!(fsck["healthy"], true, "{fsck}");
}
