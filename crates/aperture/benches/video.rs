//! Video: shot detection and the whole video pipeline against ffmpeg decoding the same file to
//! nothing (the ceiling) and PySceneDetect's content and adaptive detectors, accuracy on the
//! Big Buck Bunny trailer's edit list, and moment-search latency over ten hours of shots.
//! Prints tables.
//!
//! ```sh
//! scripts/fetch-samples.sh target/test-samples --with-trailer --with-film
//! scripts/bench/setup-peers.sh            # PySceneDetect in target/bench-venv (optional)
//! cargo bench -p aperture --bench video
//! ```
//!
//! `BENCH_VIDEOS` (colon-separated files; default the trailer and the film in
//! `target/test-samples/video`), `BENCH_RUNS` (median of, default 3), `BENCH_THREADS`
//! (decoder threads on both sides, default 2), `APERTURE_TEST_MODELS` (a model folder: the
//! keyframe analyzers run too), `BENCH_HOURS` (hours of synthetic shots to search, default
//! 10).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aperture_analyze::video::{Video, VideoOptions, shots};
use aperture_analyze::{Analyzer, Input};
use aperture_catalog::{Asset, NewAsset, NewSource};
use aperture_core::value::{self, Transition};
use aperture_core::{
    AssetId, ContentHash, Insight, InsightValue, MediaKind, MediaMetadata, Place, UnixMillis,
};
use aperture_media::video::DecodeOptions;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn time<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let started = Instant::now();
    let out = f();
    (started.elapsed().as_secs_f64(), out)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("video: bench");
        return;
    }
    let runs = env_usize("BENCH_RUNS", 3).max(1);
    let threads = env_usize("BENCH_THREADS", 2).max(1);
    let samples = root().join("target/test-samples/video");
    let videos: Vec<PathBuf> = match std::env::var("BENCH_VIDEOS") {
        Ok(list) => list.split(':').map(PathBuf::from).collect(),
        Err(_) => ["trailer_bbb.mp4", "bbb_film.mp4"]
            .iter()
            .map(|n| samples.join(n))
            .filter(|p| p.exists())
            .collect(),
    };
    if videos.is_empty() {
        eprintln!(
            "no videos: run scripts/fetch-samples.sh target/test-samples --with-trailer --with-film"
        );
        std::process::exit(2);
    }
    let python = root().join("target/bench-venv/bin/python");
    let peer = python.exists().then_some(python);
    if peer.is_none() {
        eprintln!("(PySceneDetect columns empty: run scripts/bench/setup-peers.sh)");
    }
    println!(
        "video benchmark: median of {runs} runs, {threads} decoder threads, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    speed(&videos, runs, threads, peer.as_deref());
    let trailer = videos.iter().find(|v| v.ends_with("trailer_bbb.mp4"));
    if let Some(trailer) = trailer {
        accuracy(trailer, threads, peer.as_deref());
    }
    pipeline(&videos, threads);
    moment_search(env_usize("BENCH_HOURS", 10));
}

struct Probed {
    asset: Asset,
    fps: f64,
    duration: f64,
}

fn probed(path: &Path) -> Probed {
    let probe = aperture_media::probe_file(path, &Default::default()).expect("probe");
    let fps = probe.metadata.frame_rate.unwrap_or(25.0);
    let duration = probe.metadata.duration_ms.unwrap_or(0) as f64 / 1000.0;
    Probed {
        asset: Asset {
            id: AssetId::new(),
            collection: "bench".into(),
            hash: ContentHash::of(path.as_os_str().as_encoded_bytes()),
            size: std::fs::metadata(path).map_or(0, |m| m.len()),
            kind: MediaKind::Video,
            mime: probe.mime,
            ingested_at: UnixMillis::now(),
            captured_at: None,
            name: path.file_name().unwrap().to_string_lossy().into_owned(),
            metadata: probe.metadata,
        },
        fps,
        duration,
    }
}

/// Decode and detect, as the video analyzer does before its keyframes.
fn detect(path: &Path, fps: f64, threads: usize) -> shots::Detection {
    let opts = DecodeOptions {
        threads,
        ..DecodeOptions::default()
    };
    let mut detector = shots::Detector::new(fps, shots::Params::default());
    for frame in aperture_media::video::frames(path, "bench", fps, &opts).expect("ffmpeg") {
        detector.push(&frame.expect("frame").image);
    }
    detector.finish()
}

fn ffmpeg_null(path: &Path, threads: usize) -> f64 {
    time(|| {
        let status = Command::new("ffmpeg")
            .args([
                "-nostdin",
                "-v",
                "error",
                "-threads",
                &threads.to_string(),
                "-i",
            ])
            .arg(path)
            .args(["-map", "0:v:0", "-f", "null", "-"])
            .status()
            .expect("ffmpeg");
        assert!(status.success());
    })
    .0
}

/// PySceneDetect's own timing of detection (decoding included; interpreter start-up and
/// imports not) and its cuts.
fn scenedetect(python: &Path, path: &Path, detector: &str, threads: usize) -> (f64, Vec<u64>) {
    let out = Command::new(python)
        .arg(root().join("scripts/bench/scenedetect_peer.py"))
        .arg(path)
        .args(["--detector", detector, "--threads", &threads.to_string()])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value =
        serde_json::from_str(line.lines().last().unwrap_or("{}")).expect("peer JSON");
    let cuts = json["cuts"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c.as_u64()).collect())
        .unwrap_or_default();
    (json["seconds"].as_f64().unwrap_or(f64::NAN), cuts)
}

fn speed(videos: &[PathBuf], runs: usize, threads: usize, peer: Option<&Path>) {
    println!();
    println!("## Shot detection speed");
    println!();
    println!(
        "| file | length | frames | ffmpeg decode to null | ours (decode + detect) | × real time | frames/s | ours / decode | PySceneDetect content | adaptive | ours vs content | ours vs adaptive |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for path in videos {
        let p = probed(path);
        let decode = median((0..runs).map(|_| ffmpeg_null(path, threads)).collect());
        let mut frames = 0;
        let ours = median(
            (0..runs)
                .map(|_| {
                    let (s, d) = time(|| detect(path, p.fps, threads));
                    frames = d.frames;
                    s
                })
                .collect(),
        );
        let (content, adaptive) = match peer {
            Some(py) => (
                median(
                    (0..runs)
                        .map(|_| scenedetect(py, path, "content", threads).0)
                        .collect(),
                ),
                median(
                    (0..runs)
                        .map(|_| scenedetect(py, path, "adaptive", threads).0)
                        .collect(),
                ),
            ),
            None => (f64::NAN, f64::NAN),
        };
        println!(
            "| {} | {:.1} s | {frames} | {decode:.2} s | {ours:.2} s | {:.1}× | {:.0} | {:.2}× | {content:.2} s | {adaptive:.2} s | {:.2}× | {:.2}× |",
            path.file_name().unwrap().to_string_lossy(),
            p.duration,
            p.duration / ours,
            frames as f64 / ours,
            decode / ours,
            content / ours,
            adaptive / ours,
        );
    }
}

/// Scores with `scripts/bench/score_cuts.py`, the same rules for every detector.
fn score(truth: &Path, cuts: &[u64], gradual: &[(u64, u64)]) -> serde_json::Value {
    let file = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(
        file.path(),
        serde_json::json!({ "cuts": cuts, "gradual": gradual }).to_string(),
    )
    .expect("write");
    let out = Command::new("python3")
        .arg(root().join("scripts/bench/score_cuts.py"))
        .arg(truth)
        .arg(file.path())
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or("{}")).unwrap_or_default()
}

fn accuracy(trailer: &Path, threads: usize, peer: Option<&Path>) {
    let truth = root().join("crates/aperture-analyze/benches/data/trailer_bbb.edits.json");
    let p = probed(trailer);
    let found = detect(trailer, p.fps, threads);
    let cuts: Vec<u64> = found
        .boundaries
        .iter()
        .filter(|b| b.kind == Transition::Cut)
        .map(|b| b.start)
        .collect();
    let gradual: Vec<(u64, u64)> = found
        .boundaries
        .iter()
        .filter(|b| b.kind != Transition::Cut)
        .map(|b| (b.start, b.end))
        .collect();
    let mut rows = vec![("aperture".to_owned(), score(&truth, &cuts, &gradual))];
    if let Some(py) = peer {
        for detector in ["content", "adaptive"] {
            let (_, cuts) = scenedetect(py, trailer, detector, threads);
            rows.push((
                format!("PySceneDetect {detector}"),
                score(&truth, &cuts, &[]),
            ));
        }
    }
    println!();
    println!(
        "## Accuracy on the trailer ({}; cuts ±2 frames, gradual transitions by overlap, scripts/bench/score_cuts.py)",
        truth.strip_prefix(root()).unwrap_or(&truth).display()
    );
    println!();
    println!(
        "| detector | cuts P | cuts R | cuts F1 | gradual P | gradual R | gradual F1 | all F1 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, s) in rows {
        let f = |k: &str, m: &str| s[k][m].as_f64().unwrap_or(f64::NAN);
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            f("cuts", "p"),
            f("cuts", "r"),
            f("cuts", "f1"),
            f("gradual", "p"),
            f("gradual", "r"),
            f("gradual", "f1"),
            f("all", "f1"),
        );
    }
}

/// The video analyzer, then (with models) the image analyzers on its keyframes; and two
/// pipelines at once, as two workers would run them.
fn pipeline(videos: &[PathBuf], threads: usize) {
    let models = std::env::var_os("APERTURE_TEST_MODELS").map(PathBuf::from);
    let keyframe_analyzers: Vec<Arc<dyn Analyzer>> = match &models {
        Some(dir) => {
            let (all, _) = aperture_analyze::available(dir);
            all.into_iter()
                .filter(|a| a.spec().applies_to(MediaKind::Video) && a.reads().contains(&"video"))
                .collect()
        }
        None => Vec::new(),
    };
    let video = Video {
        options: VideoOptions {
            decode: DecodeOptions {
                threads,
                ..DecodeOptions::default()
            },
            ..VideoOptions::default()
        },
    };
    println!();
    println!("## Whole pipeline");
    println!();
    let names: Vec<&str> = keyframe_analyzers.iter().map(|a| a.name()).collect();
    println!(
        "Keyframe analyzers: {}",
        if names.is_empty() {
            "none (set APERTURE_TEST_MODELS to a model folder)".to_owned()
        } else {
            names.join(", ")
        }
    );
    println!();
    println!(
        "| file | length | shots | video analyzer | × real time | keyframe analysis | whole pipeline | × real time |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let run_one = |path: &Path| -> (f64, f64, usize) {
        let p = probed(path);
        let (video_s, out) = time(|| {
            video
                .analyze(&Input {
                    asset: &p.asset,
                    path,
                    insights: &[],
                    frames: &[],
                    suppress_plates: true,
                })
                .expect("video analyzer")
        });
        let dir = tempfile::tempdir().expect("temp");
        let mut frames = Vec::new();
        for i in &out.insights {
            if let InsightValue::Shot(value::Shot {
                keyframe: Some(name),
                ..
            }) = &i.value
            {
                let bytes = &out.derived.iter().find(|(n, _)| n == name).unwrap().1;
                let file = dir.path().join(name);
                std::fs::write(&file, bytes).unwrap();
                frames.push(aperture_analyze::Frame {
                    place: i.place,
                    path: file,
                });
            }
        }
        let shots = frames.len();
        let (frames_s, _) = time(|| {
            let mut insights = out.insights.clone();
            for a in &keyframe_analyzers {
                let found = a
                    .analyze(&Input {
                        asset: &p.asset,
                        path,
                        insights: &insights,
                        frames: &frames,
                        suppress_plates: true,
                    })
                    .map(|o| o.insights)
                    .unwrap_or_default();
                insights.extend(found);
            }
        });
        (video_s, frames_s, shots)
    };
    for path in videos {
        let p = probed(path);
        let (video_s, frames_s, shots) = run_one(path);
        println!(
            "| {} | {:.1} s | {shots} | {video_s:.2} s | {:.1}× | {frames_s:.2} s | {:.2} s | {:.1}× |",
            path.file_name().unwrap().to_string_lossy(),
            p.duration,
            p.duration / video_s,
            video_s + frames_s,
            p.duration / (video_s + frames_s),
        );
    }
    // Two workers: the first file twice at once, against twice one after the other.
    let path = &videos[0];
    let (one, _) = time(|| run_one(path));
    let (two, _) = time(|| {
        std::thread::scope(|s| {
            let a = s.spawn(|| run_one(path));
            let b = s.spawn(|| run_one(path));
            (a.join().unwrap(), b.join().unwrap())
        })
    });
    println!();
    println!(
        "A second worker: {} twice at once in {two:.2} s against {:.2} s one after the other: {:.2}× the throughput.",
        path.file_name().unwrap().to_string_lossy(),
        2.0 * one,
        2.0 * one / two
    );
}

/// Hours of synthetic video (a shot every 4 s, each with two labels and a line of on-screen
/// text) recorded through the catalog and indexed; then searches for words that occur in a
/// few shots, with their moments.
fn moment_search(hours: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("temp");
        let lake = aperture_lake::Lake::init(dir.path(), None, Vec::new(), "bench")
            .await
            .expect("lake")
            .lake;
        let catalog = lake.catalog.clone();
        let videos = hours * 12; // five minutes each
        let shots_per_video = 75u64;
        const WORDS: &[&str] = &[
            "harbour", "tractor", "lantern", "glacier", "parade", "market", "bridge", "orchard",
            "stadium", "monastery", "refinery", "courtroom", "checkpoint", "convoy", "ferry",
        ];
        let (record_s, _) = time(|| {
            let collection = catalog.ensure_collection("bench").expect("collection");
            for v in 0..videos {
                let name = format!("reel-{v:04}.mp4");
                let recorded = catalog
                    .record(&[NewAsset {
                        collection: collection.id,
                        hash: ContentHash::of(name.as_bytes()),
                        size: 1,
                        kind: MediaKind::Video,
                        mime: "video/mp4".into(),
                        metadata: MediaMetadata {
                            duration_ms: Some(shots_per_video * 4000),
                            ..MediaMetadata::default()
                        },
                        source: NewSource {
                            path_bytes: name.clone().into_bytes(),
                            path: name.clone(),
                            name: name.clone(),
                            file_size: 1,
                            modified_ns: None,
                        },
                        generation_seen: 0,
                        jobs: Vec::new(),
                    }])
                    .expect("record");
                let id = match recorded[0] {
                    aperture_catalog::Recorded::Created(id)
                    | aperture_catalog::Recorded::Duplicate(id)
                    | aperture_catalog::Recorded::Known(id) => id,
                    _ => continue,
                };
                let mut insights = Vec::new();
                for s in 0..shots_per_video {
                    let place = Place::Time {
                        start_ms: s * 4000,
                        end_ms: (s + 1) * 4000,
                        rect: None,
                    };
                    let insight = |analyzer: &str, value: InsightValue, confidence| Insight {
                        asset: id,
                        analyzer: analyzer.into(),
                        analyzer_version: "1".into(),
                        model: None,
                        model_version: None,
                        value,
                        confidence,
                        language: Some("en".into()),
                        place,
                        created_at: UnixMillis::now(),
                    };
                    insights.push(insight(
                        "video",
                        value::Shot {
                            index: s as u32,
                            transition: Transition::Cut,
                            content: None,
                            keyframe: None,
                        }
                        .into(),
                        None,
                    ));
                    let n = (v as u64 * shots_per_video + s) as usize;
                    insights.push(insight(
                        "labels",
                        value::Label {
                            name: WORDS[n % WORDS.len()].into(),
                            class: 0,
                            rank: 1,
                            taxonomy: "bench".into(),
                        }
                        .into(),
                        Some(0.8),
                    ));
                    insights.push(insight(
                        "ocr",
                        value::OcrLine {
                            text: format!("{} sign number {n}", WORDS[(n * 7 + 3) % WORDS.len()]),
                            quad: [[0.0; 2]; 4],
                            engine: "bench".into(),
                        }
                        .into(),
                        Some(0.9),
                    ));
                }
                catalog.add_insights(&insights).expect("insights");
            }
        });
        let (index_s, _) = time(|| {
            let mut index =
                aperture_lake::open_current(&lake.config.search, catalog.as_ref()).expect("index");
            index.update(catalog.as_ref()).expect("update");
        });
        let index =
            aperture_lake::open_current(&lake.config.search, catalog.as_ref()).expect("index");
        let mut latencies = Vec::new();
        let mut moments = 0;
        for q in 0..200 {
            let text = match q % 3 {
                0 => format!("\"sign number {}\"", (q * 7919) % (videos * 75)),
                1 => WORDS[q % WORDS.len()].to_owned(),
                _ => format!("{} sign", WORDS[(q * 5) % WORDS.len()]),
            };
            let query = aperture_search::parse(&text).expect("query");
            let started = Instant::now();
            let hits = index
                .search(
                    catalog.as_ref(),
                    &query,
                    &[],
                    &aperture_search::SearchOptions::default(),
                )
                .expect("search");
            latencies.push(started.elapsed());
            moments += hits
                .iter()
                .flat_map(|h| &h.reasons)
                .filter(|r| {
                    matches!(
                        r,
                        aperture_search::Reason::Words {
                            place: Some(Place::Time { .. }),
                            ..
                        }
                    )
                })
                .count();
        }
        latencies.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!();
        println!("## Moment search");
        println!();
        println!(
            "{hours} h of video: {videos} videos, {} shots with a label and a line of text each, recorded in {record_s:.1} s, indexed in {index_s:.1} s.",
            videos as u64 * shots_per_video
        );
        println!();
        println!("| queries | p50 | p95 | max | moments named in the hits |");
        println!("|---|---|---|---|---|");
        println!(
            "| {} | {:.1} ms | {:.1} ms | {:.1} ms | {moments} |",
            latencies.len(),
            ms(latencies[latencies.len() / 2]),
            ms(latencies[latencies.len() * 95 / 100]),
            ms(*latencies.last().unwrap()),
        );
    });
}
