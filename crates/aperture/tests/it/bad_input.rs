//! Bad files in a batch: each gets a clear line naming it and the problem; the rest go in.

use std::os::unix::ffi::OsStrExt;

use crate::{Aperture, pseudo_random};

#[test]
fn one_bad_file_never_stops_a_batch() {
    let ap = Aperture::init();
    let dir = ap.inputs();
    std::fs::write(dir.join("good.bin"), pseudo_random(10_000, 1)).unwrap();
    std::fs::write(dir.join("empty.txt"), b"").unwrap();
    // A JPEG cut off after its header.
    std::fs::write(
        dir.join("cut.jpg"),
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00",
    )
    .unwrap();
    // A PDF that calls itself a JPEG.
    std::fs::write(
        dir.join("liar.jpg"),
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
    )
    .unwrap();
    // A name that is not UTF-8.
    let odd = std::ffi::OsStr::from_bytes(b"odd-\xff\xfe-name.bin");
    std::fs::write(dir.join(odd), b"odd").unwrap();
    std::fs::create_dir(dir.join("loop")).unwrap();
    std::os::unix::fs::symlink("..", dir.join("loop/back-up")).unwrap();
    std::os::unix::fs::symlink("nowhere", dir.join("dangling.bin")).unwrap();
    let missing = ap.dir.path().join("not-there");

    let out = ap.run(&[
        "ingest",
        dir.to_str().unwrap(),
        missing.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "failures make the exit code 1");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = report["files"].as_array().unwrap();
    let line = |needle: &str| {
        files
            .iter()
            .find(|f| f["path"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no report line for {needle}: {report}"))
            .clone()
    };

    assert_eq!(line("good.bin")["status"], "stored");
    assert_eq!(line("odd-")["status"], "stored");
    let empty = line("empty.txt");
    assert_eq!(empty["status"], "stored");
    assert!(empty["warnings"][0].as_str().unwrap().contains("empty"));
    let cut = line("cut.jpg");
    assert_eq!(cut["status"], "stored", "damaged files are kept: {cut}");
    assert!(
        cut["warnings"][0].as_str().unwrap().contains("truncated"),
        "{cut}"
    );
    let liar = line("liar.jpg");
    assert_eq!(liar["mime"], "application/pdf");
    assert!(
        liar["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("extension .jpg")),
        "{liar}"
    );
    for (needle, problem) in [
        ("back-up", "loop"),
        ("dangling.bin", "No such file"),
        ("not-there", "No such file"),
    ] {
        let f = line(needle);
        assert_eq!(f["status"], "failed", "{f}");
        let error = f["error"].as_str().unwrap();
        assert!(error.contains(needle) && error.contains(problem), "{error}");
    }
    assert_eq!(report["totals"]["failed"], 3);
    assert_eq!(report["totals"]["stored"], 5);

    // The catalog keeps the exact name bytes, and the readable form shows them.
    let odd_asset = ap
        .assets()
        .into_iter()
        .find(|a| a["name"].as_str().unwrap().starts_with("odd-"))
        .unwrap();
    assert_eq!(odd_asset["name"], "odd-\u{fffd}\u{fffd}-name.bin");
    assert_eq!(ap.fsck()["healthy"], true);

    // Nothing half-written: on disk, the blob store holds exactly the stored files.
    let stats = ap.json(&["stats"]);
    assert_eq!(stats["stats"]["distinct_blobs"], 5);
    let on_disk = crate::files_under(&ap.data().join("blobs"));
    let blobs: Vec<_> = on_disk
        .iter()
        .filter(|p| {
            p.parent()
                .unwrap()
                .parent()
                .unwrap()
                .ends_with("blobs/blobs")
        })
        .collect();
    assert_eq!(blobs.len(), 5, "{on_disk:?}");
    assert!(
        on_disk
            .iter()
            .all(|p| !p.to_string_lossy().contains('#') && !p.to_string_lossy().contains("staging")),
        "{on_disk:?}"
    );
}

#[test]
fn bad_commands_get_clear_errors() {
    let ap = Aperture::init();
    for (args, needle) in [
        (vec!["show", "zzzz"], "not an asset id"),
        (vec!["show", "0123"], "no asset with id 0123"),
        (vec!["get", "0123", "-o", "/tmp/x"], "no asset"),
        (vec!["rm", "0123"], "no asset"),
        (vec!["ls", "--kind", "hologram"], "invalid media kind"),
        (vec!["ls", "-c", "nope"], "collection nope not found"),
        (vec!["ingest", "/tmp", "-c", "../etc"], "collection name"),
    ] {
        let out = ap.run(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    let uninitialised = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aperture"))
        .arg("--data")
        .arg(uninitialised.path().join("nothing"))
        .arg("ls")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("aperture --data"));
}

#[test]
fn hidden_files_are_left_out_unless_asked_for() {
    let ap = Aperture::init();
    let dir = ap.inputs();
    std::fs::write(dir.join("photo.bin"), pseudo_random(1000, 1)).unwrap();
    std::fs::write(dir.join(".DS_Store"), pseudo_random(100, 2)).unwrap();
    std::fs::create_dir(dir.join(".git")).unwrap();
    std::fs::write(dir.join(".git/config"), b"[core]\n").unwrap();

    let report = ap.ingest(&dir, "c");
    assert_eq!(report["totals"]["stored"], 1);
    assert_eq!(report["totals"]["hidden_skipped"], 2);

    // Named on the command line, a hidden file is taken.
    let named = ap.ingest(&dir.join(".DS_Store"), "c");
    assert_eq!(named["totals"]["stored"], 1);

    let all = ap.json(&["ingest", dir.to_str().unwrap(), "-c", "c", "--hidden"]);
    assert_eq!(all["totals"]["stored"], 1, "{all}");
    assert_eq!(all["totals"]["known"], 2, "{all}");
    assert_eq!(all["totals"]["hidden_skipped"], 0);
}
