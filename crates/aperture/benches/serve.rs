//! Searches per second and latency of `aperture serve` from a load generator on loopback,
//! first on an idle server, then while files are uploaded and analysed. Prints a table.
//!
//! ```sh
//! cargo bench -p aperture --bench serve
//! ```
//!
//! The corpus: `BENCH_DOCS` generated text documents (default 2,000, words drawn from a
//! fixed vocabulary) and, when `APERTURE_TEST_SAMPLES` points at the sample media, its photos
//! and documents; ingested and indexed before the server starts. Models come from
//! `APERTURE_TEST_MODELS` (default `target/test-models/models`, where `scripts/test.sh`
//! installs them); without them, searches are full text only. `BENCH_CLIENTS` concurrent
//! keep-alive clients (default 8) search for `BENCH_SECS` seconds (default 20) per phase.
//! During the second phase one more client uploads generated images (256 × 256 PNG) one at
//! a time, and the server's worker analyses them (thumbnail, hash, labels, OCR, ...).
//! A second table times, one at a time, the requests behind the web page's views.
//!
//! For a large collection without models (full text only, quick to index):
//! `BENCH_DOCS=100000 APERTURE_TEST_MODELS=/none cargo bench -p aperture --bench serve`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WORDS: &[&str] = &[
    "harbour", "council", "budget", "river", "election", "protest", "hospital", "school", "bridge",
    "market", "factory", "border", "village", "archive", "letter", "contract", "payment",
    "minister", "police", "report", "witness", "station", "airport", "treaty", "harvest", "storm",
    "flood", "museum", "library", "concert", "festival", "railway", "mountain", "forest", "island",
    "garden", "painting", "camera", "journal", "invoice",
];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64: deterministic documents and queries.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn word(&mut self) -> &'static str {
        WORDS[(self.next() % WORDS.len() as u64) as usize]
    }
}

fn aperture(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aperture"));
    cmd.arg("--data").arg(data);
    cmd
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("aperture runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn png(seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let base = [rng.next() as u8, rng.next() as u8, rng.next() as u8];
    let img = image::RgbImage::from_fn(256, 256, |x, y| {
        image::Rgb([
            base[0].wrapping_add(x as u8),
            base[1].wrapping_add(y as u8),
            base[2].wrapping_add((x ^ y) as u8),
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data: &Path) -> Server {
    let mut child = aperture(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = aperture_server::testing::listening_url(&mut child);
    Server(child, url)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

struct Phase {
    latencies: Vec<Duration>,
    errors: u64,
    secs: f64,
    uploads: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn phase(url: &str, token: &str, clients: usize, secs: u64, upload: bool) -> Phase {
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let first_errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let uploads = Arc::new(AtomicU64::new(0));
    let all = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut threads = Vec::new();
    for c in 0..clients {
        let (stop, errors, all) = (stop.clone(), errors.clone(), all.clone());
        let first_errors = first_errors.clone();
        let (url, auth) = (url.to_owned(), format!("Bearer {token}"));
        threads.push(std::thread::spawn(move || {
            let agent = agent();
            let mut rng = Rng(0x9e37_79b9 + c as u64);
            let mut mine = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let q = match rng.next() % 4 {
                    0 => rng.word().to_owned(),
                    1 => format!("{} {}", rng.word(), rng.word()),
                    2 => format!("{} kind:document", rng.word()),
                    _ => format!("\"{} {}\"", rng.word(), rng.word()),
                };
                let t = Instant::now();
                let answer = agent
                    .get(&format!("{url}/api/v1/search"))
                    .query("q", &q)
                    .query("limit", "24")
                    .header("Authorization", &auth)
                    .call()
                    .map_err(|e| e.to_string())
                    .and_then(|mut r| {
                        let status = r.status();
                        let body = r.body_mut().read_to_string().unwrap_or_default();
                        if status == 200 {
                            Ok(())
                        } else {
                            Err(format!("{status}: {body}"))
                        }
                    });
                match answer {
                    Ok(()) => mine.push(t.elapsed()),
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        let mut first = first_errors.lock().unwrap();
                        if first.len() < 3 {
                            first.push(format!("{q}: {e}"));
                        }
                    }
                }
            }
            all.lock().unwrap().extend(mine);
        }));
    }
    if upload {
        let (stop, uploads) = (stop.clone(), uploads.clone());
        let (url, auth) = (url.to_owned(), format!("Bearer {token}"));
        threads.push(std::thread::spawn(move || {
            let agent = agent();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let boundary = "bench-boundary";
                let mut body = Vec::new();
                write!(
                    body,
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload-{n}.png\"\r\n\r\n"
                )
                .unwrap();
                body.extend(png(n));
                write!(body, "\r\n--{boundary}--\r\n").unwrap();
                let ok = agent
                    .post(&format!("{url}/api/v1/assets"))
                    .header("Authorization", &auth)
                    .header(
                        "Content-Type",
                        &format!("multipart/form-data; boundary={boundary}"),
                    )
                    .send(&body[..])
                    .is_ok_and(|r| r.status() == 200);
                if ok {
                    uploads.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    for e in first_errors.lock().unwrap().iter() {
        eprintln!("search failed: {e}");
    }
    let mut latencies = std::mem::take(&mut *all.lock().unwrap());
    latencies.sort();
    Phase {
        latencies,
        errors: errors.load(Ordering::Relaxed),
        secs: started.elapsed().as_secs_f64(),
        uploads: uploads.load(Ordering::Relaxed),
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("serve: bench");
        return;
    }
    let docs = env_usize("BENCH_DOCS", 2_000);
    let clients = env_usize("BENCH_CLIENTS", 8);
    let secs = env_usize("BENCH_SECS", 20) as u64;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let models = std::env::var_os("APERTURE_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-models/models")
        });
    let with_models = models.is_dir();
    let mut config = String::new();
    if with_models {
        config.push_str(&format!(
            "[models]\ndir = {:?}\n",
            models.display().to_string()
        ));
    }
    std::fs::write(data.join("aperture.toml"), config).unwrap();
    let init = run(aperture(&data).arg("init"));
    let token = init
        .lines()
        .find_map(|l| l.strip_prefix("admin token: "))
        .expect("admin token")
        .to_owned();

    let corpus = root.path().join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    let mut rng = Rng(42);
    for i in 0..docs {
        let words: Vec<&str> = (0..60 + rng.next() % 200).map(|_| rng.word()).collect();
        std::fs::write(corpus.join(format!("doc-{i:05}.txt")), words.join(" ")).unwrap();
    }
    let mut paths = vec![corpus.display().to_string()];
    if let Some(samples) = std::env::var_os("APERTURE_TEST_SAMPLES") {
        for sub in ["photos", "documents"] {
            let p = Path::new(&samples).join(sub);
            if p.is_dir() {
                paths.push(p.display().to_string());
            }
        }
    }
    let t = Instant::now();
    run(aperture(&data)
        .arg("ingest")
        .args(&paths)
        .arg("--no-progress"));
    run(aperture(&data).args(["index", "--no-progress"]));
    let stats = run(aperture(&data).args(["stats"]));
    eprintln!(
        "corpus ready in {:.0} s ({}):\n{stats}",
        t.elapsed().as_secs_f64(),
        if with_models {
            "with models"
        } else {
            "no models: full text only"
        }
    );

    let server = start(&data);
    let pages = page_latencies(&server.1, &token);
    // Warm-up: connections, caches.
    phase(&server.1, &token, clients, 2, false);
    let idle = phase(&server.1, &token, clients, secs, false);
    let busy = phase(&server.1, &token, clients, secs, true);

    println!(
        "serve benchmark: GET /api/v1/search from {clients} keep-alive clients on loopback, {secs} s per phase, {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if with_models {
            "words + MiniLM meaning"
        } else {
            "full text only"
        }
    );
    println!();
    println!(
        "| phase | searches | searches/s | p50 ms | p95 ms | p99 ms | max ms | errors | uploads/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, p) in [("idle", &idle), ("while ingesting", &busy)] {
        print_row(name, p);
    }
    println!();
    println!(
        "What the web page asks for, one request at a time on the idle server ({PAGE_TIMES} times each):"
    );
    println!();
    println!("| request | median ms | p99 ms | max ms |");
    println!("|---|---|---|---|");
    for (name, [median, p99, max]) in pages {
        println!("| {name} | {median:.1} | {p99:.1} | {max:.1} |");
    }
}

/// How many times each of the web page's requests is timed.
const PAGE_TIMES: usize = 200;

/// The requests behind the web page's views, each timed [`PAGE_TIMES`] times on the idle
/// server.
fn page_latencies(url: &str, token: &str) -> Vec<(String, [f64; 3])> {
    let agent = agent();
    let auth = format!("Bearer {token}");
    let get = |path: &str| -> serde_json::Value {
        let mut r = agent
            .get(&format!("{url}{path}"))
            .header("Authorization", &auth)
            .call()
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let body = r
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .unwrap();
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null)
    };
    // A cursor deep into the list, and an asset to open.
    let mut cursor = String::new();
    for _ in 0..10 {
        let page = get(&format!("/api/v1/assets?limit=200&cursor={cursor}"));
        match page["next"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    let first = get("/api/v1/assets?limit=1");
    let id = first["items"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let paths = [
        (
            "newest 48 (empty search box)",
            "/api/v1/assets?limit=48".to_owned(),
        ),
        (
            "a page 2,000 assets in",
            format!("/api/v1/assets?limit=48&cursor={cursor}"),
        ),
        ("indexing status", "/api/v1/status".to_owned()),
        ("collections", "/api/v1/collections".to_owned()),
        ("one asset page", format!("/api/v1/assets/{id}")),
        (
            "search, one word, 48 hits",
            "/api/v1/search?q=harbour&limit=48".to_owned(),
        ),
        (
            "search, two words + filter",
            "/api/v1/search?q=river%20storm%20kind:document&limit=48".to_owned(),
        ),
    ];
    paths
        .into_iter()
        .map(|(name, path)| {
            let mut times: Vec<f64> = (0..PAGE_TIMES)
                .map(|_| {
                    let t = Instant::now();
                    get(&path);
                    t.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            times.sort_by(f64::total_cmp);
            let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
            (name.to_owned(), [at(0.5), at(0.99), at(1.0)])
        })
        .collect()
}

fn print_row(name: &str, p: &Phase) {
    println!(
        "| {name} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.2} |",
        p.latencies.len(),
        p.latencies.len() as f64 / p.secs,
        percentile(&p.latencies, 0.50),
        percentile(&p.latencies, 0.95),
        percentile(&p.latencies, 0.99),
        percentile(&p.latencies, 1.0),
        p.errors,
        p.uploads as f64 / p.secs,
    );
}
