//! Search on real media with the real models, as a user runs it: a relevance set with the
//! assets each query must find (recall@10 reported), near-duplicates made by the test
//! (precision and recall reported), and erasure out of both indexes. The relevance set runs on
//! both engines: the embedded index and the shared one on PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::Aperture;
use crate::real_media::{env_dir, with_models, with_models_and};

/// Runs `aperture search QUERY --json -n 10` and returns the hits' file names, best first.
fn names(ap: &Aperture, args: &[&str]) -> Vec<String> {
    hits(ap, args)
        .iter()
        .map(|h| h["asset"]["name"].as_str().unwrap().to_owned())
        .collect()
}

fn hits(ap: &Aperture, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["search"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-n", "10"]);
    ap.json(&all).as_array().unwrap().clone()
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
}

/// The relevance set: (how it must be found, query, files it must find).
const RELEVANCE: &[(&str, &str, &[&str])] = &[
    // A label word finds the photos that show it.
    ("label", "strawberry", &["imagenet_04_949.jpg"]),
    ("label", "strawberries", &["imagenet_04_949.jpg"]),
    ("label", "bald eagle", &["imagenet_17_22.jpg"]),
    ("label", "dalmatian", &["imagenet_16_251.jpg"]),
    ("label", "spoonbill", &["imagenet_14_129.jpg"]),
    ("label", "goose", &["imagenet_15_99.jpg"]),
    ("label", "cannon", &["imagenet_13_471.jpg"]),
    ("label", "yurt", &["imagenet_08_915.jpg"]),
    (
        "label",
        "jeep",
        &["imagenet_06_609.jpg", "imagenet_07_609.jpg"],
    ),
    ("label", "cat", &["chelsea.png"]),
    // A word visible in a photo finds it through OCR (clean scans and photographed text,
    // four scripts; `estaciones` finds `estación` through Spanish stemming, Chinese words
    // are found as character pairs).
    ("ocr", "invoice", &["ocr_en_00.jpg"]),
    ("ocr", "bakery", &["ocr_en_01.jpg"]),
    ("ocr", "flour", &["ocr_en_02.jpg"]),
    ("ocr", "charger", &["ocr_en_03.jpg"]),
    ("ocr", "estaciones", &["ocr_es_00.jpg"]),
    ("ocr", "limones", &["ocr_es_02.jpg"]),
    ("ocr", "guantes", &["ocr_es_04.jpg"]),
    ("ocr", "аптека", &["ocr_ru_02.jpg"]),
    ("ocr", "ветер", &["ocr_ru_01.jpg"]),
    ("ocr", "北京", &["ocr_zh_00.jpg"]),
    ("ocr", "饺子", &["ocr_zh_03.jpg"]),
    ("ocr", "segmentation", &["page.png"]),
    // Document text, per language.
    ("document", "paquetes", &["refcard-es-a4.pdf"]),
    ("document", "Копировать файлы", &["refcard-ru-a4.pdf"]),
    ("document", "软件包", &["refcard-zh_CN-a4.pdf"]),
    ("document", "quarterly revenue", &["report.txt"]),
    // A paraphrase that shares no word finds it through the text embedding.
    ("paraphrase", "a kitten", &["chelsea.png"]),
    ("paraphrase", "a bird of prey", &["imagenet_17_22.jpg"]),
    ("paraphrase", "company earnings grew", &["report.txt"]),
    ("paraphrase", "hot drink", &["coffee.png"]),
    ("paraphrase", "where can I buy medicine", &["ocr_ru_02.jpg"]),
];

fn relevance_collection(ap: &Aperture) {
    let (samples, ocr_set) = (
        env_dir("APERTURE_TEST_SAMPLES"),
        env_dir("APERTURE_TEST_OCR_SET"),
    );
    let dir = ap.inputs();
    for entry in std::fs::read_dir(samples.join("photos/imagenet")).unwrap() {
        let path = entry.unwrap().path();
        copy(&path, &dir.join(path.file_name().unwrap()));
    }
    for name in [
        "chelsea.png",
        "page.png",
        "coffee.png",
        "astronaut.png",
        "rocket.jpg",
    ] {
        copy(&samples.join("photos/skimage").join(name), &dir.join(name));
    }
    for lang in ["en", "es", "ru", "zh"] {
        for n in 0..5 {
            let name = format!("{lang}_{n:02}.jpg");
            copy(
                &ocr_set.join("photographed").join(&name),
                &dir.join(format!("ocr_{name}")),
            );
        }
    }
    for lang in ["en", "es", "ru", "zh_CN", "de"] {
        let name = format!("refcard-{lang}-a4.pdf");
        copy(&samples.join("documents").join(&name), &dir.join(&name));
    }
    std::fs::write(
        dir.join("report.txt"),
        "Quarterly report for the third quarter.\n\nRevenue rose twelve percent and operating \
         profit doubled compared with the same quarter last year, driven by exports.\n",
    )
    .unwrap();
    ap.ingest(&dir, "lake");
    ap.ok(&["index", "--no-progress"]);
}

#[test]
fn relevance_set_on_real_media_and_erasure() {
    let ap = with_models();
    relevance_collection(&ap);
    relevance_set(&ap, "embedded");
    // The erased asset's bytes are in no file of the embedded index.
    let strawberry = erased(&ap);
    let id_bytes = hex(&strawberry);
    for file in crate::files_under(&ap.data().join("search/vectors")) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(16).any(|w| w == id_bytes),
            "{} still names the erased asset",
            file.display()
        );
    }
    // Rebuilding gives the same answers.
    ap.ok(&["reindex-search"]);
    assert_eq!(names(&ap, &["bakery"])[0], "ocr_en_01.jpg");
}

/// The same set on the index every server shares (PostgreSQL text search and pgvector): the
/// same words match, ranked by `ts_rank_cd` instead of BM25. (Its erased rows stay in
/// PostgreSQL's files until a VACUUM: no byte check here.)
#[test]
fn relevance_set_on_the_shared_index() {
    let Some(server) = aperture_catalog::conformance::shared_server() else {
        return;
    };
    let url = aperture_catalog::conformance::fresh_database(&server, "relevance");
    let ap = with_models_and(&["--search", &url]);
    relevance_collection(&ap);
    assert!(
        !ap.data().join("search").exists(),
        "no index of its own in the data folder"
    );
    relevance_set(&ap, "shared");
    erased(&ap);
    ap.ok(&["reindex-search"]);
    assert_eq!(names(&ap, &["bakery"])[0], "ocr_en_01.jpg");
}

/// The relevance set, explanations, filters, similarity and bad queries on `ap`'s index.
fn relevance_set(ap: &Aperture, engine: &str) {
    let mut by_kind: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    // Mean reciprocal rank of the first wanted asset: how high, not only whether, it ranks
    // (where the engines' ranking differs; printed, not asserted).
    let mut reciprocal = 0.0;
    for (kind, query, expected) in RELEVANCE {
        let top = names(ap, &[query]);
        if let Some(rank) = top.iter().position(|n| expected.contains(&n.as_str())) {
            reciprocal += 1.0 / (rank + 1) as f64;
        }
        let found = expected
            .iter()
            .filter(|e| top.iter().any(|n| n == *e))
            .count();
        let recall = found as f64 / expected.len() as f64;
        let entry = by_kind.entry(kind).or_default();
        entry.0 += recall;
        entry.1 += 1;
        if recall < 1.0 {
            misses.push(format!("{query:?} wanted {expected:?}, got {top:?}"));
        }
    }
    let total: f64 = by_kind.values().map(|v| v.0).sum::<f64>() / RELEVANCE.len() as f64;
    eprintln!(
        "recall@10 on the relevance set ({} queries), {engine} index:",
        RELEVANCE.len()
    );
    for (kind, (sum, n)) in &by_kind {
        eprintln!("  {kind:<11} {:.3} ({n} queries)", sum / *n as f64);
    }
    eprintln!("  {:<11} {total:.3}", "all");
    eprintln!("  MRR         {:.3}", reciprocal / RELEVANCE.len() as f64);
    for miss in &misses {
        eprintln!("  miss: {miss}");
    }
    assert!(total >= 0.9, "recall@10 {total:.3}: {misses:#?}");
    for (kind, (sum, n)) in &by_kind {
        assert!(
            sum / *n as f64 >= 0.75,
            "{kind}: recall@10 {}",
            sum / *n as f64
        );
    }

    // Each hit says why it matched.
    let strawberry = &hits(ap, &["strawberry"])[0];
    assert_eq!(strawberry["asset"]["name"], "imagenet_04_949.jpg");
    let reasons = strawberry["reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r["type"] == "words" && r["field"] == "label" && r["text"] == "strawberry"),
        "{reasons:?}"
    );
    let bakery = &hits(ap, &["bakery"])[0];
    let line = bakery["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["field"] == "ocr")
        .unwrap_or_else(|| panic!("no OCR line in {bakery}"));
    assert!(line["text"].as_str().unwrap().contains("bakery"), "{line}");
    assert!(line["place"]["rect"].is_object(), "the line's box: {line}");
    let kitten = &hits(ap, &["a kitten"])[0];
    assert!(
        kitten["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["type"] == "meaning" && r["similarity"].as_f64().unwrap() > 0.3),
        "{kitten}"
    );

    // Filters.
    let docs = names(ap, &["kind:document"]);
    assert!(
        !docs.is_empty()
            && docs
                .iter()
                .all(|n| n.ends_with(".pdf") || n.ends_with(".txt"))
    );
    let ru = names(ap, &["lang:ru"]);
    assert!(ru.contains(&"refcard-ru-a4.pdf".to_owned()) && ru.contains(&"ocr_ru_02.jpg".into()));
    assert!(!ru.iter().any(|n| n.starts_with("ocr_en")), "{ru:?}");
    let dogs = names(ap, &["dog kind:image"]);
    assert!(dogs.contains(&"imagenet_16_251.jpg".to_owned()), "{dogs:?}");
    assert!(
        names(ap, &["strawberry kind:document"])
            .iter()
            .all(|n| !n.ends_with(".jpg"))
    );
    assert!(names(ap, &["invoice has:text"]).contains(&"ocr_en_00.jpg".to_owned()));
    assert!(
        names(ap, &["strawberry before:2000"]).is_empty(),
        "ingested today"
    );

    // Similar to a stored asset and to a file.
    let eagle = asset_id(ap, "imagenet_17_22.jpg");
    let out = ap.json(&["similar", &eagle, "-n", "5"]);
    let similar: Vec<&str> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["asset"]["name"].as_str().unwrap())
        .collect();
    assert!(!similar.contains(&"imagenet_17_22.jpg"), "not itself");
    let file = env_dir("APERTURE_TEST_SAMPLES").join("photos/imagenet/imagenet_04_949.jpg");
    let out = ap.json(&["similar", file.to_str().unwrap(), "-n", "3"]);
    assert_eq!(out[0]["asset"]["name"], "imagenet_04_949.jpg", "{out}");

    // Bad queries: clear errors, no crash.
    for (query, says) in [
        ("\"unbalanced", "unbalanced quote"),
        ("colour:red", "unknown filter"),
        ("after:someday", "YYYY"),
    ] {
        let out = ap.run(&["search", query]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{query}: {err}");
    }
    // (A 1 MB query is refused by the parser's own test: one argument this long is as much
    // as the operating system passes.)
    let huge = "x".repeat(100_000);
    let out = ap.run(&["search", &huge]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("100000 bytes"));
}

/// Erases the strawberry photo and checks no search finds it (by word, meaning or looks);
/// returns its id.
fn erased(ap: &Aperture) -> String {
    let file = env_dir("APERTURE_TEST_SAMPLES").join("photos/imagenet/imagenet_04_949.jpg");
    let strawberry = asset_id(ap, "imagenet_04_949.jpg");
    ap.ok(&["rm", &strawberry]);
    assert!(!names(ap, &["strawberry"]).contains(&"imagenet_04_949.jpg".to_owned()));
    assert!(!names(ap, &["a bowl of red fruit"]).contains(&"imagenet_04_949.jpg".to_owned()));
    let out = ap.json(&["similar", file.to_str().unwrap(), "-n", "10"]);
    assert!(
        out.as_array()
            .unwrap()
            .iter()
            .all(|h| h["asset"]["name"] != "imagenet_04_949.jpg")
    );
    strawberry
}

pub fn asset_id(ap: &Aperture, name: &str) -> String {
    ap.assets()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no asset {name}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn hex(id: &str) -> Vec<u8> {
    let digits: String = id.chars().filter(|c| *c != '-').collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

/// Copies of a photo as people make them: smaller, recompressed, cropped.
fn copies(original: &Path, dir: &Path) -> Vec<PathBuf> {
    let image = image::open(original).unwrap().to_rgb8();
    let (w, h) = image.dimensions();
    let stem = original.file_stem().unwrap().to_str().unwrap();
    let save = |img: &image::RgbImage, name: &str, quality: u8| {
        let path = dir.join(format!("{stem}_{name}.jpg"));
        let mut out = std::fs::File::create(&path).unwrap();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
            .encode_image(img)
            .unwrap();
        path
    };
    let resized =
        image::imageops::resize(&image, w / 2, h / 2, image::imageops::FilterType::Triangle);
    let cropped =
        image::imageops::crop_imm(&image, w / 10, h / 10, w * 8 / 10, h * 8 / 10).to_image();
    vec![
        save(&resized, "half", 90),
        save(&image, "q20", 20),
        save(&cropped, "crop80", 90),
    ]
}

#[test]
fn near_duplicates_are_grouped_and_different_photos_are_not() {
    let ap = with_models();
    let samples = env_dir("APERTURE_TEST_SAMPLES").join("photos/imagenet");
    let dir = ap.inputs();
    let mut originals: Vec<PathBuf> = std::fs::read_dir(&samples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    originals.sort();
    // Family of each file: its original's stem.
    let mut family: BTreeMap<String, String> = BTreeMap::new();
    for (i, original) in originals.iter().enumerate() {
        let stem = original.file_stem().unwrap().to_str().unwrap().to_owned();
        let name = format!("{stem}.jpg");
        copy(original, &dir.join(&name));
        family.insert(name, stem.clone());
        // Copies of every other photo; the rest stand alone.
        if i % 2 == 0 {
            for copy in copies(original, &dir) {
                family.insert(
                    copy.file_name().unwrap().to_str().unwrap().into(),
                    stem.clone(),
                );
            }
        }
    }
    ap.ingest(&dir, "photos");
    ap.ok(&["index", "--no-progress"]);

    let ids: BTreeMap<String, String> = ap
        .assets()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().replace('-', ""),
                a["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let groups = ap.json(&["duplicates"]);
    let mut predicted: BTreeSet<(String, String)> = BTreeSet::new();
    for group in groups.as_array().unwrap() {
        assert_eq!(group["kind"], "near", "no exact duplicates here: {group}");
        let members: Vec<&String> = group["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| &ids[&m["asset"].as_str().unwrap().replace('-', "")])
            .collect();
        for (i, a) in members.iter().enumerate() {
            for b in &members[i + 1..] {
                predicted.insert(((*a).min(*b).clone(), (*a).max(*b).clone()));
            }
        }
    }
    let names: Vec<&String> = family.keys().collect();
    let mut truth: BTreeSet<(String, String)> = BTreeSet::new();
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            if family[*a] == family[*b] {
                truth.insert(((*a).clone(), (*b).clone()));
            }
        }
    }
    let right = predicted.intersection(&truth).count();
    let precision = right as f64 / predicted.len().max(1) as f64;
    let recall = right as f64 / truth.len() as f64;
    eprintln!(
        "near-duplicates: {} true pairs, {} predicted, {right} right: precision {precision:.3}, \
         recall {recall:.3}",
        truth.len(),
        predicted.len()
    );
    for wrong in predicted.difference(&truth) {
        eprintln!("  wrongly grouped: {wrong:?}");
    }
    for missed in truth.difference(&predicted) {
        eprintln!("  missed: {missed:?}");
    }
    assert!(precision >= 0.95, "precision {precision:.3}");
    assert!(recall >= 0.9, "recall {recall:.3}");
    // The two different jeep photos are never one group.
    assert!(!predicted.contains(&(
        "imagenet_06_609.jpg".to_owned(),
        "imagenet_07_609.jpg".to_owned()
    )));
}
