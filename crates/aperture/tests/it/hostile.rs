//! A hostile corpus — over 200 files cut short, with bits flipped, under lying names, bombs,
//! markup nested deep — ingested and indexed with the real models in one batch: no panic,
//! every file reported, the lake consistent, and the process's peak memory bounded (reported
//! with `--nocapture`).

use aperture_media::fixtures;

use crate::real_media::{env_dir, with_models};

/// The most the whole `ingest --index` process may take at its peak: issue 16's goal.
/// Measured here (debug build, models unloaded past 256 MiB): 496 to 555 MB, at its most
/// near the end, with MiniLM loaded and the documents embedded. It was 586 to 636 MB while an
/// image model could load beside Whisper in use (a load now waits for room), 480 to 500 MB
/// before the image models ran a session per core, 1.5 to 2.1 GB with every model kept, 32
/// passages an embedding pass and candle's encoder, and 4.6 GB before text was cut down ahead
/// of the tokenizer.
const PEAK_RSS_LIMIT_MB: u64 = 600;

/// The `[models] memory_mib` the lake runs with.
const MODEL_MEMORY_MIB: u64 = 256;

/// Runs `command` on two of this machine's cores (CI has two): a worker runs a job per core
/// at once, and each job's model and memory come on top of the budget, so the bound holds for
/// two. With more cores the peak is about the budget plus each job's memory times the cores.
fn on_two_cores(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // async-signal-safe libc functions on memory of its own.
    unsafe {
        command.pre_exec(|| {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut kept = 0;
            for cpu in 0..libc::CPU_SETSIZE as usize {
                if libc::CPU_ISSET(cpu, &set) {
                    if kept == 2 {
                        libc::CPU_CLR(cpu, &mut set);
                    } else {
                        kept += 1;
                    }
                }
            }
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Runs `command` to its end; its exit code, stdout, stderr and its own peak resident set in
/// MB (from `wait4`, so no other process the tests start counts).
fn run_measured(mut command: std::process::Command) -> (Option<i32>, Vec<u8>, String, u64) {
    use std::io::Read;
    #[expect(
        clippy::zombie_processes,
        reason = "reaped by wait4 below, which also gives its resource usage"
    )]
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).unwrap();
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = String::new();
        stderr.read_to_string(&mut buf).unwrap();
        buf
    });
    let mut status = 0;
    // SAFETY: wait4 writes into the status and the struct it is given; the child is ours.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = i32::try_from(child.id()).unwrap();
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let peak = u64::try_from(usage.ru_maxrss).unwrap() / 1024;
    (code, out.join().unwrap(), err.join().unwrap(), peak)
}

#[test]
fn a_hostile_corpus_is_ingested_and_indexed_in_bounded_memory() {
    let ap = with_models();
    // The models this process keeps loaded at once: a small machine's setting.
    let config = ap.data().join("aperture.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let template = "# memory_mib = 1024";
    assert!(text.contains(template), "the config template changed");
    let text = text.replace(template, &format!("memory_mib = {MODEL_MEMORY_MIB}"));
    std::fs::write(&config, text).unwrap();
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

    let mut command = ap.command(&[
        "ingest",
        dir.to_str().unwrap(),
        "--index",
        "--json",
        "--no-progress",
    ]);
    on_two_cores(&mut command);
    command.env("APERTURE_LOG", "aperture_analyze::loaded=info");
    let started = std::time::Instant::now();
    let (code, stdout, stderr, peak) = run_measured(command);
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Some files fail (an empty PDF is no PDF): the batch goes on and says so.
    assert!(matches!(code, Some(0 | 1)), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&stdout).unwrap_or_else(|e| panic!("no report ({e}): {stderr}"));
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
        "hostile corpus: {} files, {} stored, {} failed in {:.0?}; peak RSS {peak} MB; \
         {} models unloaded to make room",
        lines.len(),
        lines.iter().filter(|l| l["status"] == "stored").count(),
        lines.iter().filter(|l| l["status"] == "failed").count(),
        started.elapsed(),
        stderr.matches("model unloaded to make room").count(),
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
    // Memory saved by a model that failed early would prove nothing: each ran to the end on
    // some file.
    for analyzer in ["sensitive", "labels", "ocr", "speech", "embedding"] {
        let succeeded: i64 = db
            .query_row(
                "SELECT count(*) FROM jobs WHERE analyzer = ?1 AND state = 'succeeded'",
                [analyzer],
                |r| r.get(0),
            )
            .unwrap();
        assert!(succeeded > 0, "no {analyzer} job succeeded");
    }
    let fsck = ap.fsck();
    assert_eq!(fsck["healthy"], true, "{fsck}");
}
