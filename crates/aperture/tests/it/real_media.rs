//! End to end on real media with the real models: ingest a folder of photos, a scanned page,
//! a photographed sign and documents, index it, and read back what each asset got.
//! `scripts/test.sh` installs the models and fetches the media (APERTURE_TEST_MODELS,
//! APERTURE_TEST_SAMPLES, APERTURE_TEST_OCR_SET).

use std::collections::BTreeMap;
use std::path::PathBuf;

use aperture_analyze::ocr::Detector;

use crate::Aperture;

pub fn env_dir(var: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{var} is not set: run the tests with scripts/test.sh"))
}

/// A data folder whose config points at the installed test models.
pub fn with_models() -> Aperture {
    with_models_and(&[])
}

/// [`with_models`] initialised with `aperture init ARGS`.
pub fn with_models_and(init_args: &[&str]) -> Aperture {
    let ap = Aperture::init_with(init_args);
    let config = ap.data().join("aperture.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let models = env_dir("APERTURE_TEST_MODELS");
    let text = text.replace(
        "# dir = \"/var/lib/aperture/models\"",
        &format!("dir = {:?}", models.to_str().unwrap()),
    );
    std::fs::write(&config, text).unwrap();
    ap
}

/// Sets `[ocr] detector` in the data folder's config (written by `init` with the default).
pub fn choose_ocr_detector(ap: &Aperture, detector: Detector) {
    let config = ap.data().join("aperture.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let line = |d: Detector| format!("detector = \"{}\"", d.as_str());
    let default = line(Detector::default());
    assert!(text.contains(&default), "{text}");
    std::fs::write(&config, text.replace(&default, &line(detector))).unwrap();
}

fn of_kind<'a>(insights: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    insights.iter().filter(|i| i["kind"] == kind).collect()
}

#[test]
fn a_folder_of_real_photos_and_documents_is_understood() {
    let ap = with_models();
    let (samples, ocr_set) = (
        env_dir("APERTURE_TEST_SAMPLES"),
        env_dir("APERTURE_TEST_OCR_SET"),
    );
    let dir = ap.inputs();
    let copy = |from: PathBuf, name: &str| {
        std::fs::copy(&from, dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    };
    copy(
        samples.join("photos/imagenet/imagenet_04_949.jpg"),
        "strawberries.jpg",
    );
    copy(
        samples.join("photos/imagenet/imagenet_17_22.jpg"),
        "bird.jpg",
    );
    copy(samples.join("photos/skimage/chelsea.png"), "chelsea.png");
    copy(samples.join("photos/skimage/page.png"), "page.png");
    copy(ocr_set.join("photographed/es_00.jpg"), "cartel.jpg");
    copy(
        samples.join("documents/refcard-en-a4.pdf"),
        "refcard-en.pdf",
    );
    copy(
        samples.join("documents/refcard-ru-a4.pdf"),
        "refcard-ru.pdf",
    );
    let scan = std::fs::read(ocr_set.join("photographed/en_02.jpg")).unwrap();
    let (w, h) = image_size(&scan);
    std::fs::write(
        dir.join("scanned-letter.pdf"),
        aperture_media::fixtures::pdf_of_scans(&[(scan, w, h)]),
    )
    .unwrap();

    let out = ap.run(&["ingest", dir.to_str().unwrap(), "--index", "--no-progress"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let assets: BTreeMap<String, serde_json::Value> = ap
        .assets()
        .into_iter()
        .map(|a| {
            let id = a["id"].as_str().unwrap();
            (
                a["name"].as_str().unwrap().to_owned(),
                ap.json(&["show", id]),
            )
        })
        .collect();
    assert_eq!(assets.len(), 8);
    for (name, shown) in &assets {
        let jobs = shown["jobs"].as_array().unwrap();
        for job in jobs {
            assert!(
                job["state"] == "succeeded" || job["state"] == "skipped",
                "{name}: {job}"
            );
        }
        let insights = shown["insights"].as_array().unwrap();
        // Every asset is described by a text embedding, which names its model.
        let embedding = of_kind(insights, "text_embedding");
        assert!(!embedding.is_empty(), "{name}: {shown}");
        assert_eq!(embedding[0]["model"], "all-minilm-l6-v2");
        for insight in insights {
            assert!(insight["analyzer_version"].as_str().is_some(), "{insight}");
        }
    }

    let insights = |name: &str| assets[name]["insights"].as_array().unwrap().clone();
    let top_label = |name: &str| {
        let all = insights(name);
        let labels = of_kind(&all, "label");
        assert_eq!(labels.len(), 5, "{name}");
        assert!(labels.iter().all(|l| l["model"] == "efficientnet-lite0"));
        labels
            .iter()
            .find(|l| l["value"]["rank"] == 1)
            .map(|l| l["value"]["name"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(top_label("strawberries.jpg"), "strawberry");
    assert_eq!(top_label("bird.jpg"), "bald eagle");
    assert!(
        top_label("chelsea.png").contains("cat"),
        "{}",
        top_label("chelsea.png")
    );
    for name in ["strawberries.jpg", "chelsea.png", "page.png"] {
        let all = insights(name);
        let features = of_kind(&all, "image_features");
        assert_eq!(features[0]["value"]["dims"], 1280, "{name}");
        let sensitive = of_kind(&all, "sensitive");
        assert!(
            sensitive[0]["value"]["score"].as_f64().unwrap() < 0.2,
            "{name}"
        );
        assert_eq!(sensitive[0]["value"]["blur"], false);
    }
    // The cat's description, which its embedding is made of, says what it shows.
    let cat = insights("chelsea.png");
    let described = of_kind(&cat, "text_embedding")[0]["value"]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(described.contains("cat"), "{described}");

    // OCR: the scanned page and the photographed sign, line by line with boxes.
    let ocr_text = |name: &str| {
        let all = insights(name);
        of_kind(&all, "ocr_line")
            .iter()
            .map(|l| {
                let rect = &l["place"]["rect"];
                assert!(rect["w"].as_f64().unwrap() > 0.0, "{l}");
                l["value"]["text"].as_str().unwrap().to_owned()
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let page = ocr_text("page.png");
    assert!(page.contains("Region-based segmentation"), "{page}");
    assert!(
        page.contains("markers are found at the two extreme parts"),
        "{page}"
    );
    let sign = ocr_text("cartel.jpg");
    assert!(sign.contains("estación de autobuses"), "{sign}");
    let sign_lines = insights("cartel.jpg");
    assert_eq!(of_kind(&sign_lines, "ocr_line")[0]["language"], "es");

    // A scanned PDF: no text layer, so OCR reads its page.
    let letter = insights("scanned-letter.pdf");
    let lines = of_kind(&letter, "ocr_line");
    let read: Vec<&str> = lines
        .iter()
        .map(|l| {
            assert_eq!(l["place"]["page"], 1, "{l}");
            l["value"]["text"].as_str().unwrap()
        })
        .collect();
    assert!(
        read.join(" ").contains("umbrella at the office"),
        "{read:?}"
    );
    for name in ["refcard-en.pdf", "refcard-ru.pdf"] {
        let all = insights(name);
        assert!(
            of_kind(&all, "ocr_line").is_empty(),
            "{name}: pages with text are not OCRed"
        );
    }

    // Documents: the text layer per page, with its language; passages embedded per page.
    for (name, lang) in [("refcard-en.pdf", "en"), ("refcard-ru.pdf", "ru")] {
        let all = insights(name);
        let pages = of_kind(&all, "text");
        assert!(!pages.is_empty(), "{name}");
        assert!(pages.iter().all(|p| p["language"] == lang), "{name}");
        let passages: Vec<_> = of_kind(&all, "text_embedding")
            .into_iter()
            .filter(|e| e["value"]["source"] == "text")
            .collect();
        assert!(passages.len() >= 2, "{name}");
        assert!(
            passages
                .iter()
                .all(|p| p["place"]["page"].as_u64().is_some()),
            "{name}"
        );
    }
}

fn image_size(bytes: &[u8]) -> (u32, u32) {
    let image = image::load_from_memory(bytes).unwrap();
    (image.width(), image.height())
}

/// The OCR lines of the asset named `name`: `(text, box)` and the analyzer versions.
fn ocr_of(ap: &Aperture, name: &str) -> (Vec<(String, String)>, Vec<String>) {
    let id = ap
        .assets()
        .into_iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no asset {name}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let detail = ap.json(&["show", &id]);
    let lines = of_kind(detail["insights"].as_array().unwrap(), "ocr_line");
    let read = lines
        .iter()
        .map(|l| {
            let text = l["value"]["text"].as_str().unwrap().to_owned();
            (text, l["value"]["quad"].to_string())
        })
        .collect();
    let mut versions: Vec<String> = lines
        .iter()
        .map(|l| l["analyzer_version"].as_str().unwrap().to_owned())
        .collect();
    versions.dedup();
    (read, versions)
}

/// `[ocr] detector = "tiny"` in the config: the tiny detector finds the lines, its files are
/// in the analyzer's version (so results of the other are re-run by `aperture reindex`), and
/// without its model OCR does not run, naming the command that installs it.
#[test]
fn the_ocr_detector_is_chosen_in_the_config() {
    let ap = with_models();
    let samples = env_dir("APERTURE_TEST_SAMPLES").join("photos/skimage");
    let dir = ap.inputs();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(samples.join("page.png"), dir.join("page.png")).unwrap();
    ap.ingest(&dir, "pages");
    ap.ok(&["index"]);
    let (small, small_versions) = ocr_of(&ap, "page.png");
    assert!(small.len() >= 5, "page.png: {small:?}");
    assert_eq!(small_versions.len(), 1, "{small_versions:?}");

    choose_ocr_detector(&ap, Detector::Tiny);
    ap.ok(&["reindex", "--analyzer", "ocr"]);
    ap.ok(&["index"]);
    let (tiny, tiny_versions) = ocr_of(&ap, "page.png");
    assert_eq!(tiny_versions.len(), 1, "{tiny_versions:?}");
    assert_ne!(
        tiny_versions, small_versions,
        "the version names the detector"
    );
    assert!(tiny_versions[0].contains("+tiny:"), "{tiny_versions:?}");
    // A printed page reads nearly the same (the small detector's box cuts the first `>` of
    // `>>> markers`, the tiny one's does not); the boxes are the other detector's.
    assert_eq!(tiny.len(), small.len(), "{tiny:?}\n{small:?}");
    let same_text = tiny.iter().zip(&small).filter(|(t, s)| t.0 == s.0).count();
    assert!(same_text + 1 >= small.len(), "{tiny:?}\n{small:?}");
    assert_ne!(
        tiny, small,
        "the boxes are the same: the tiny detector did not run"
    );

    // A models folder without the tiny detector: OCR does not run, and says why.
    let models = ap.data().join("models-without-tiny");
    std::fs::create_dir_all(&models).unwrap();
    for entry in std::fs::read_dir(env_dir("APERTURE_TEST_MODELS")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "ppocr-v6-tiny" {
            std::os::unix::fs::symlink(entry.path(), models.join(entry.file_name())).unwrap();
        }
    }
    let config = ap.data().join("aperture.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let installed = format!(
        "dir = {:?}",
        env_dir("APERTURE_TEST_MODELS").to_str().unwrap()
    );
    assert!(text.contains(&installed), "{text}");
    std::fs::write(
        &config,
        text.replace(&installed, &format!("dir = {:?}", models.to_str().unwrap())),
    )
    .unwrap();
    let out = ap.run(&["index"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("analyzer ocr is not running")
            && said.contains("aperture models install ppocr-v6-tiny"),
        "{said}"
    );
}
