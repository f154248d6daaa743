//! The whole image pipeline, and the re-index a model upgrade asks for, on photos made by
//! augmenting the sample photos (flips, crops, rescaling, recompression): ingest, then every
//! analyzer the installed models allow (`aperture index`), then an image classifier upgrade
//! (`aperture reindex --analyzer labels` + `aperture index`) twice in the same run:
//!
//! - as it cost before OCR could be spared: the labels and OCR re-run everywhere (OCR reads
//!   the labels, to leave plates out of pictures of vehicles), and what reads them;
//! - as it costs now: OCR re-runs only where the new labels show vehicles elsewhere.
//!
//! The upgrade is simulated: the installed model runs again, its earlier results recorded as
//! another version's (as a new model's fingerprint changes it), and on `BENCH_VEHICLE_CHANGES`
//! percent of the photos (default 10) the earlier labels altered to show a car, so that the
//! new ones differ there in what OCR reads. Where OCR's tiny detector is installed, the whole
//! pipeline runs again on the same photos in a second lake set to it (`[ocr] detector`).
//! Prints a table, and the re-index extrapolated to 490 million images on N nodes (naively: as
//! if nodes added up linearly).
//!
//! ```sh
//! scripts/test.sh -p aperture --lib        # once: installs the models and fetches the samples
//! cargo bench -p aperture --bench reindex
//! ```
//!
//! `BENCH_PHOTOS` (default 2,000; the samples are small, 0.05 to 0.5 megapixels, so their
//! per-photo costs are below a camera's), `APERTURE_TEST_SAMPLES` (default `target/test-samples`),
//! `APERTURE_TEST_MODELS` (default `target/test-models/models`), `BENCH_THREADS` (the
//! worker's, default: the config's).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use image::DynamicImage;
use image::codecs::jpeg::JpegEncoder;
use serde_json::Value;

#[allow(dead_code)] // the ingest benches' helpers: this one runs commands and reads sizes
#[path = "common/files.rs"]
mod files;
use files::{env_usize, run};

/// The reference system's size: images a re-index must get through.
const REFERENCE_IMAGES: f64 = 490e6;

fn env_dir(name: &str, default: &str) -> PathBuf {
    std::env::var_os(name)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(default)
        })
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("reindex: bench");
        return;
    }
    let count = env_usize("BENCH_PHOTOS", 2_000);
    let changes = env_usize("BENCH_VEHICLE_CHANGES", 10).min(100);
    let samples = env_dir("APERTURE_TEST_SAMPLES", "target/test-samples");
    let models = env_dir("APERTURE_TEST_MODELS", "target/test-models/models");
    if !models.is_dir() || !samples.join("photos").is_dir() {
        eprintln!(
            "needs the models ({}) and the sample photos ({}): run scripts/test.sh once",
            models.display(),
            samples.join("photos").display()
        );
        std::process::exit(2);
    }
    let root = tempfile::Builder::new()
        .prefix("aperture-reindex-")
        .tempdir()
        .expect("temporary folder");
    let photos = root.path().join("photos");
    let started = Instant::now();
    let sources = augment(&samples.join("photos"), &photos, count);
    eprintln!(
        "{count} photos from {sources} samples in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let data = lake(&root.path().join("data"), &models, "");
    let started = Instant::now();
    ingest(&data, &photos);
    let ingest_secs = started.elapsed().as_secs_f64();
    let (first, first_secs) = index(&data);
    // The same photos in a lake whose OCR runs PP-OCRv6's tiny detector, where installed.
    let tiny_model = models.join(aperture_analyze::ocr::PPOCR_TINY_DETECTOR_MODEL);
    let tiny = tiny_model.is_dir().then(|| {
        let data = lake(
            &root.path().join("data-tiny"),
            &models,
            "[ocr]\ndetector = \"tiny\"\n",
        );
        ingest(&data, &photos);
        let (report, secs) = index(&data);
        // The same work, or the ratio means nothing (a stale tiny model: no OCR at all).
        let ocr_jobs = |r: &Value| r["analyzers"]["ocr"]["jobs"].as_u64();
        assert_eq!(
            ocr_jobs(&report),
            ocr_jobs(&first),
            "OCR jobs with the tiny detector"
        );
        (report, secs)
    });

    // As before: the labels, OCR and what reads them, everywhere.
    let (before, before_secs) = upgrade(&data, &["labels", "ocr"], 0);
    // Now: OCR only where the vehicles changed.
    let (now, now_secs) = upgrade(&data, &["labels"], changes);

    println!(
        "re-index benchmark: {count} photos augmented from {sources} samples ({:.2} megapixels \
         on average), {} cores",
        megapixels(&photos),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("| run | jobs | seconds | images/s | per analyzer: jobs, seconds in it |");
    println!("|---|---|---|---|---|");
    println!(
        "| ingest | {count} files | {ingest_secs:.1} | {:.1} | |",
        count as f64 / ingest_secs
    );
    row(
        "whole pipeline (`aperture index`)",
        &first,
        first_secs,
        count,
    );
    if let Some((report, secs)) = &tiny {
        row(
            "whole pipeline, OCR's tiny detector (`[ocr] detector = \"tiny\"`)",
            report,
            *secs,
            count,
        );
    }
    row(
        "classifier upgrade, as before (labels and OCR everywhere)",
        &before,
        before_secs,
        count,
    );
    row(
        &format!("classifier upgrade, now ({changes} % of photos with vehicles changed)"),
        &now,
        now_secs,
        count,
    );
    println!();
    println!(
        "Re-index after a classifier upgrade: {:.1}× faster than before.",
        before_secs / now_secs
    );
    match &tiny {
        Some((_, secs)) => println!(
            "Whole pipeline with OCR's tiny detector: {:.2}× the images/s of the small one.",
            first_secs / secs
        ),
        None => println!(
            "OCR's tiny detector is not installed (`aperture models install ppocr-v6-tiny`): \
             its row is left out."
        ),
    }
    println!();
    println!(
        "Extrapolated to {REFERENCE_IMAGES:.0} images on nodes like this one, naively (as if \
         nodes added up linearly):"
    );
    println!();
    println!(
        "| nodes | classifier upgrade, before | now | whole pipeline | whole pipeline, tiny \
         OCR detector |"
    );
    println!("|---|---|---|---|---|");
    let at_scale = |secs: f64, nodes: f64| duration(REFERENCE_IMAGES * secs / count as f64 / nodes);
    for nodes in [1.0, 10.0, 50.0, 100.0] {
        println!(
            "| {nodes:.0} | {} | {} | {} | {} |",
            at_scale(before_secs, nodes),
            at_scale(now_secs, nodes),
            at_scale(first_secs, nodes),
            tiny.as_ref()
                .map_or_else(|| "-".to_owned(), |(_, secs)| at_scale(*secs, nodes))
        );
    }
}

/// A data folder at `data` whose models are `models`, with `extra` appended to its config.
fn lake(data: &Path, models: &Path, extra: &str) -> PathBuf {
    std::fs::create_dir_all(data).expect("data folder");
    let mut config = format!("[models]\ndir = {:?}\n", models.display().to_string());
    if let Some(threads) = std::env::var("BENCH_THREADS")
        .ok()
        .filter(|t| !t.is_empty())
    {
        config.push_str(&format!("[worker]\nthreads = {threads}\n"));
    }
    config.push_str(extra);
    std::fs::write(data.join("aperture.toml"), config).expect("config");
    run(&mut aperture(data, &["init"]));
    data.to_path_buf()
}

fn ingest(data: &Path, photos: &Path) {
    run(&mut aperture(
        data,
        &["ingest", &photos.to_string_lossy(), "--no-progress"],
    ));
}

/// A model upgrade of `stale` analyzers: their results recorded as another version's, and on
/// `changes` percent of the assets the labels altered to show a car; then `aperture reindex`
/// and `aperture index`. Returns the report of `aperture index` and the seconds of both.
fn upgrade(data: &Path, stale: &[&str], changes: usize) -> (Value, f64) {
    let catalog = rusqlite::Connection::open(data.join("catalog.db")).expect("catalog");
    for analyzer in stale {
        let marked = catalog
            .execute(
                "UPDATE jobs SET analyzer_version = 'before-the-upgrade' WHERE analyzer = ?1",
                [analyzer],
            )
            .expect("mark results stale");
        assert!(marked > 0, "no results of {analyzer}");
    }
    if changes > 0 {
        let altered = catalog
            .execute(
                "UPDATE insights SET value = json_set(value, '$.class', 817)
                 WHERE analyzer = 'labels' AND kind = 'label'
                   AND json_extract(value, '$.rank') = 1
                   AND asset_id IN (SELECT id FROM assets ORDER BY id
                                    LIMIT (SELECT count(*) FROM assets) * ?1 / 100)",
                [changes as i64],
            )
            .expect("alter the labels");
        assert!(altered > 0, "no labels altered");
    }
    drop(catalog);
    let started = Instant::now();
    let mut args = vec!["reindex"];
    for analyzer in stale {
        args.extend(["--analyzer", analyzer]);
    }
    run(&mut aperture(data, &args));
    let (report, _) = index(data);
    (report, started.elapsed().as_secs_f64())
}

/// Mean megapixels of the JPEG photos in `dir`.
fn megapixels(dir: &Path) -> f64 {
    let sizes: Vec<f64> = std::fs::read_dir(dir)
        .expect("photos")
        .flatten()
        .filter_map(|e| image::image_dimensions(e.path()).ok())
        .map(|(w, h)| f64::from(w) * f64::from(h) / 1e6)
        .collect();
    sizes.iter().sum::<f64>() / sizes.len().max(1) as f64
}

/// Writes `count` JPEG photos into `out`, each a sample photo flipped or not, cropped,
/// rescaled and recompressed differently (so that none is a byte-identical duplicate).
/// Returns how many samples they came from.
fn augment(samples: &Path, out: &Path, count: usize) -> usize {
    std::fs::create_dir_all(out).expect("photo folder");
    let mut sources = Vec::new();
    collect(samples, &mut sources);
    sources.sort();
    let images: Vec<DynamicImage> = sources
        .iter()
        .filter_map(|p| image::open(p).ok())
        .filter(|i| i.width() >= 128 && i.height() >= 128)
        .map(|i| DynamicImage::ImageRgb8(i.to_rgb8()))
        .collect();
    // The same picture twice among the samples would make duplicates.
    let mut seen = std::collections::HashSet::new();
    let images: Vec<DynamicImage> = images
        .into_iter()
        .filter(|i| seen.insert(blake3::hash(i.as_bytes())))
        .collect();
    assert!(!images.is_empty(), "no sample photo decodes");
    for n in 0..count {
        let source = &images[n % images.len()];
        let v = (n / images.len()) as u32;
        let mut img = if v % 2 == 1 {
            source.fliph()
        } else {
            source.clone()
        };
        // Keep 70 to 100 % of each side, from an offset that moves with the variant.
        let keep = 70 + (v * 7) % 31;
        let (w, h) = (img.width() * keep / 100, img.height() * keep / 100);
        let (x, y) = (
            (img.width() - w) * ((v * 3) % 5) / 4,
            (img.height() - h) * ((v * 5) % 3) / 2,
        );
        img = img.crop_imm(x, y, w, h);
        // Rescaled to 60 to 140 % of the crop.
        let scale = 60 + (v * 13) % 81;
        let (w, h) = (
            (w * scale / 100).clamp(64, 4000),
            (h * scale / 100).clamp(64, 4000),
        );
        img = img.resize_exact(w, h, image::imageops::FilterType::Triangle);
        let mut bytes = Vec::new();
        let quality = 60 + ((v * 11) % 36) as u8;
        JpegEncoder::new_with_quality(Cursor::new(&mut bytes), quality)
            .encode_image(&img)
            .expect("encode");
        std::fs::write(out.join(format!("photo-{n:05}.jpg")), bytes).expect("write photo");
    }
    images.len()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("samples").flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Runs `aperture index --json`: its report and the seconds it took.
fn index(data: &Path) -> (Value, f64) {
    let started = Instant::now();
    let out = aperture(data, &["index", "--json", "--no-progress"])
        .stdout(Stdio::piped())
        .output()
        .expect("aperture index");
    let secs = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "aperture index failed");
    (serde_json::from_slice(&out.stdout).expect("json"), secs)
}

fn row(name: &str, report: &Value, secs: f64, images: usize) {
    let jobs: u64 = ["succeeded", "skipped", "failed", "retried", "lost_leases"]
        .iter()
        .map(|k| report[k].as_u64().unwrap_or(0))
        .sum();
    let analyzers = report["analyzers"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(name, t)| {
                    format!(
                        "{name} {} / {:.0} s",
                        t["jobs"].as_u64().unwrap_or(0),
                        t["seconds"].as_f64().unwrap_or(0.0)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    println!(
        "| {name} | {jobs} (failed {}) | {secs:.1} | {:.1} | {analyzers} |",
        report["failed"].as_u64().unwrap_or(0),
        images as f64 / secs
    );
}

fn duration(secs: f64) -> String {
    if secs >= 86_400.0 {
        format!("{:.1} days", secs / 86_400.0)
    } else {
        format!("{:.1} hours", secs / 3_600.0)
    }
}

fn aperture(data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aperture"));
    cmd.arg("--data").arg(data).args(args).stdout(Stdio::null());
    cmd
}
