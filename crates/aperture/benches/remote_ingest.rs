//! Ingest into remote blob stores against each store's own Python SDK uploading the same bytes
//! to the same server, in the same run: S3 (the s3s-fs test server) against boto3's
//! `upload_file`, Azure (Azurite) against azure-storage-blob's `BlobClient.upload_blob`, both
//! with their default transfer settings. Prints a table.
//!
//! ```sh
//! eval "$(bash scripts/services.sh start)"   # S3 and Azurite, and the variables below
//! cargo bench -p aperture --bench remote_ingest
//! ```
//!
//! Needs `APERTURE_TEST_S3_URL` / `APERTURE_TEST_S3_OPTIONS` and `APERTURE_TEST_AZURE_URL` /
//! `APERTURE_TEST_AZURE_OPTIONS` (a store whose variables are unset is skipped), and
//! `python3`: the peers run from a venv the bench makes on first use, with pinned packages from
//! PyPI, in `target/remote-ingest-venv` (`BENCH_VENV` to put it elsewhere).
//!
//! Aperture's side is the real binary: `aperture init --blobs URL/PREFIX` in a fresh data folder
//! (credentials as `AWS_*` / `AZURE_*` variables), then `aperture ingest DIR`, timed as a whole
//! (start-up, hashing, probing and the SQLite catalog included). The peer's side is timed from
//! its first upload to its last (the interpreter's start and imports left out), one file after
//! the other as a script calling the SDK would; each SDK parallelises within a file as its
//! defaults say (boto3: 8 MiB parts, 10 threads; azure-storage-blob: one request up to 64 MiB,
//! one connection). Each run writes under a prefix of its own, deleted after it.
//!
//! Sizes: `BENCH_LARGE_FILES` × `BENCH_LARGE_MB` (default 4 × 64 MiB) and `BENCH_SMALL_FILES`
//! of 16 KiB (default 2,000). Each measurement is the median of `BENCH_RUNS` (default 3), the
//! two sides interleaved; each run starts from warm page cache and after a `sync`. `BENCH_DIR`
//! picks where the source files and data folders live (default: the temporary folder).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/files.rs"]
mod files;
use files::{env_usize, make_files, median, run, settle};

/// The peers' packages, dependencies included, pinned so results compare across machines.
const PINS: &[&str] = &[
    "boto3==1.44.5",
    "botocore==1.44.18",
    "s3transfer==0.19.3",
    "jmespath==1.1.0",
    "python-dateutil==2.9.0.post0",
    "six==1.17.0",
    "urllib3==2.8.0",
    "azure-storage-blob==12.31.1",
    "azure-core==1.41.0",
    "isodate==0.7.2",
    "cryptography==50.0.2",
    "cffi==2.1.1",
    "pycparser==3.12",
    "typing_extensions==4.16.0",
    "requests==2.34.2",
    "certifi==2026.10.19.post1",
    "charset-normalizer==3.5.3",
    "idna==3.21",
];

/// The peer: `peer.py s3|azure upload|delete URL DIR|-`, store options in `BENCH_STORE_OPTIONS`
/// (as in `APERTURE_TEST_*_OPTIONS`). `upload` puts every file under DIR at URL's prefix plus
/// its relative path and prints the seconds it took; `delete` removes everything under URL.
const PEER: &str = r#"
import os, sys, time

kind, action, url, root = sys.argv[1:5]
opts = dict(kv.split("=", 1) for kv in os.environ["BENCH_STORE_OPTIONS"].split())
container, _, prefix = url.split("://", 1)[1].partition("/")
files = []
if action == "upload":
    for dirpath, _, names in os.walk(root):
        files += [os.path.join(dirpath, n) for n in names]
    files.sort()
key = lambda path: prefix + "/" + os.path.relpath(path, root)

if kind == "s3":
    import boto3
    client = boto3.client(
        "s3",
        endpoint_url=opts["aws_endpoint"],
        aws_access_key_id=opts["aws_access_key_id"],
        aws_secret_access_key=opts["aws_secret_access_key"],
        region_name=opts.get("aws_region", "us-east-1"),
    )
    if action == "upload":
        started = time.perf_counter()
        for path in files:
            client.upload_file(path, container, key(path))
        print(time.perf_counter() - started)
    else:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=container, Prefix=prefix + "/")
        for page in pages:
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=container, Delete={"Objects": keys, "Quiet": True})
else:
    from azure.storage.blob import BlobServiceClient
    service = BlobServiceClient(
        account_url=opts["azure_storage_endpoint"],
        credential={
            "account_name": opts["azure_storage_account_name"],
            "account_key": opts["azure_storage_account_key"],
        },
    )
    if action == "upload":
        started = time.perf_counter()
        for path in files:
            with open(path, "rb") as data:
                service.get_blob_client(container, key(path)).upload_blob(data)
        print(time.perf_counter() - started)
    else:
        bucket = service.get_container_client(container)
        for blob in bucket.list_blobs(name_starts_with=prefix + "/"):
            bucket.delete_blob(blob.name)
"#;

/// A remote store under test.
struct Store {
    /// `s3` or `azure`: the peer's argument.
    kind: &'static str,
    name: &'static str,
    peer: &'static str,
    /// The test server's URL (`s3://bucket`, `az://container`).
    url: String,
    /// `key=value` pairs separated by spaces, as object_store names the keys.
    options: String,
}

impl Store {
    fn from_env(kind: &'static str, name: &'static str, peer: &'static str) -> Option<Self> {
        let var = |suffix: &str| std::env::var(format!("APERTURE_TEST_{name}_{suffix}")).ok();
        Some(Self {
            kind,
            name,
            peer,
            url: var("URL")?.trim_end_matches('/').to_owned(),
            options: var("OPTIONS")?,
        })
    }

    /// The options as the environment `aperture` reads them from (`AWS_ENDPOINT=...`).
    fn env(&self) -> impl Iterator<Item = (String, &str)> {
        self.options
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_ascii_uppercase(), v))
    }
}

struct Work {
    name: &'static str,
    dir: PathBuf,
    files: usize,
    bytes: f64,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("remote_ingest: bench");
        return;
    }
    let large_files = env_usize("BENCH_LARGE_FILES", 4);
    let large_mb = env_usize("BENCH_LARGE_MB", 64);
    let small_files = env_usize("BENCH_SMALL_FILES", 2_000);
    let runs = env_usize("BENCH_RUNS", 3).max(1);
    let stores: Vec<Store> = [
        Store::from_env("s3", "S3", "boto3 upload_file"),
        Store::from_env("azure", "AZURE", "azure-storage-blob upload_blob"),
    ]
    .into_iter()
    .flatten()
    .collect();
    for name in ["S3", "AZURE"] {
        if !stores.iter().any(|s| s.name == name) {
            println!(
                "{name} skipped: APERTURE_TEST_{name}_URL / _OPTIONS are not set \
                 (eval \"$(bash scripts/services.sh start)\")"
            );
        }
    }
    if stores.is_empty() {
        return;
    }
    let python = venv();
    let root = tempfile::Builder::new()
        .prefix("aperture-bench-remote-")
        .tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into()))
        .expect("temporary folder");
    let peer = root.path().join("peer.py");
    std::fs::write(&peer, PEER).expect("peer script");
    const SMALL: usize = 16 << 10;
    let works = [
        Work {
            name: "large files",
            dir: root.path().join("large"),
            files: large_files,
            bytes: (large_files * (large_mb << 20)) as f64,
        },
        Work {
            name: "16 KiB files",
            dir: root.path().join("small"),
            files: small_files,
            bytes: (small_files * SMALL) as f64,
        },
    ];
    make_files(&works[0].dir, large_files, large_mb << 20, 1);
    make_files(&works[1].dir, small_files, SMALL, 2);
    // Prefixes of this run alone, so runs never deduplicate against one another.
    let run_id = format!(
        "bench-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );

    println!(
        "remote ingest benchmark: {large_files} × {large_mb} MiB and {small_files} × 16 KiB \
         files, median of {runs} runs, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("| store | work | aperture ingest | peer | ratio (aperture / peer) |");
    println!("|---|---|---|---|---|");
    for store in &stores {
        for work in &works {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            for run in 0..runs {
                let tag = work.name.split(' ').next().unwrap_or("work");
                let prefix = format!("{}/{run_id}/{tag}-{run}", store.url);
                settle(&work.dir);
                ours.push(aperture_ingest(
                    store,
                    &work.dir,
                    &root.path().join(format!("data-{}-{tag}-{run}", store.kind)),
                    &format!("{prefix}/aperture"),
                ));
                settle(&work.dir);
                theirs.push(peer_upload(
                    &python,
                    &peer,
                    store,
                    &work.dir,
                    &format!("{prefix}/peer"),
                ));
                // Each run's objects go before the next, so the server holds one run at a time.
                peer_delete(&python, &peer, store, &prefix);
            }
            let (ours, theirs) = (median(ours), median(theirs));
            let rate = |d: Duration| {
                let s = d.as_secs_f64();
                format!(
                    "{:.0} MB/s, {:.0} files/s ({s:.2} s)",
                    work.bytes / s / 1e6,
                    work.files as f64 / s
                )
            };
            println!(
                "| {} | {} | {} | {}: {} | {:.2}× |",
                store.name,
                work.name,
                rate(ours),
                store.peer,
                rate(theirs),
                theirs.as_secs_f64() / ours.as_secs_f64()
            );
        }
    }
    println!();
    println!(
        "Ratio above 1: Aperture is faster. Aperture's time is the whole `aperture ingest` \
         process (start-up, hashing, probing, SQLite catalog); the peer's is its upload loop only."
    );
}

/// The Python that runs the peers: a venv with [`PINS`], made when missing or different.
fn venv() -> PathBuf {
    let dir = std::env::var_os("BENCH_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/remote-ingest-venv"),
        PathBuf::from,
    );
    let python = dir.join("bin/python");
    let stamp = dir.join(".pins");
    let pins = PINS.join(" ");
    if python.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == pins) {
        return python;
    }
    eprintln!("making {} (pip install {pins})", dir.display());
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove the old venv");
    }
    run(Command::new("python3").args(["-m", "venv"]).arg(&dir));
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "-q",
            "--no-deps",
        ])
        .args(PINS));
    run(Command::new(&python).args(["-c", "import boto3, azure.storage.blob"]));
    std::fs::write(&stamp, pins).expect("venv stamp");
    python
}

fn aperture(store: &Store, data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aperture"));
    cmd.envs(store.env())
        .arg("--data")
        .arg(data)
        .args(args)
        .stdout(Stdio::null());
    cmd
}

fn aperture_ingest(store: &Store, sources: &Path, data: &Path, blobs: &str) -> Duration {
    run(&mut aperture(store, data, &["init", "--blobs", blobs]));
    let started = Instant::now();
    run(&mut aperture(
        store,
        data,
        &["ingest", &sources.to_string_lossy(), "--no-progress"],
    ));
    started.elapsed()
}

fn peer(python: &Path, script: &Path, store: &Store, action: &str, url: &str, dir: &str) -> String {
    let out = Command::new(python)
        .arg(script)
        .args([store.kind, action, url, dir])
        .env("BENCH_STORE_OPTIONS", &store.options)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "peer {} {action} {url} failed: {}",
        store.kind,
        out.status
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn peer_upload(python: &Path, script: &Path, store: &Store, sources: &Path, url: &str) -> Duration {
    let seconds = peer(
        python,
        script,
        store,
        "upload",
        url,
        &sources.to_string_lossy(),
    );
    Duration::from_secs_f64(
        seconds
            .parse()
            .unwrap_or_else(|_| panic!("the peer printed {seconds:?}, not seconds")),
    )
}

fn peer_delete(python: &Path, script: &Path, store: &Store, url: &str) {
    peer(python, script, store, "delete", url, "-");
}
