//! Erasure you can prove: after `aperture rm --wait` (and `DELETE /api/v1/assets/{id}`), no
//! byte of an erased asset is left anywhere in the data folder — not its content, the text
//! extracted from it, its name or its hash — while what was not erased is still there.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::server::{Server, init_with, png};
use crate::{Aperture, files_under};

/// What must be gone: each needle with a name for messages.
pub(crate) struct Needles(pub(crate) Vec<(String, Vec<u8>)>);

impl Needles {
    /// The needles of one erased file: its name, a sentence of its content, a word that
    /// occurs only in its extracted text, and its BLAKE3 hash in hex and as raw bytes.
    pub(crate) fn of(name: &str, content: &[u8], word: Option<&str>) -> Self {
        let hash = blake3::hash(content);
        let mut needles = vec![
            (format!("name {name}"), name.as_bytes().to_vec()),
            (
                format!("hash {}", hash.to_hex()),
                hash.to_hex().as_bytes().to_vec(),
            ),
            ("raw hash".to_owned(), hash.as_bytes().to_vec()),
            // 24 bytes of the content itself, from its middle (around the word, if any, so that
            // they are its own).
            ("content".to_owned(), {
                let middle = content.len() / 2;
                let at = word
                    .and_then(|w| {
                        content[middle..]
                            .windows(w.len())
                            .position(|x| x == w.as_bytes())
                    })
                    .map_or(middle, |p| middle + p - 4);
                content[at..at + 24].to_vec()
            }),
        ];
        if let Some(word) = word {
            needles.push((format!("word {word}"), word.as_bytes().to_vec()));
        }
        Self(needles)
    }

    pub(crate) fn and(mut self, other: Needles) -> Self {
        self.0.extend(other.0);
        self
    }

    /// Where each needle is under `dir`: in a file's bytes or in its path.
    pub(crate) fn found_under(&self, dir: &Path) -> Vec<(String, PathBuf)> {
        let mut found = Vec::new();
        for file in files_under(dir) {
            // A file that went between listing and reading is no finding.
            let Ok(bytes) = std::fs::read(&file) else {
                continue;
            };
            let path = file.to_string_lossy().into_owned();
            for (what, needle) in &self.0 {
                let in_path = path.as_bytes().windows(needle.len()).any(|w| w == needle);
                if in_path || bytes.windows(needle.len()).any(|w| w == needle.as_slice()) {
                    found.push((what.clone(), file.clone()));
                }
            }
        }
        found
    }
}

/// A memo with a word found nowhere else, in a line of its own.
pub(crate) fn memo_text(word: &str) -> Vec<u8> {
    let mut text = String::from("Minutes of the harbour meeting.\n");
    for n in 0..40 {
        text.push_str(&format!(
            "Item {n}: the {word} crates leave the north quay at dawn.\n"
        ));
    }
    text.into_bytes()
}

fn names_found(ap: &Aperture, query: &str) -> Vec<String> {
    ap.json(&["search", query])
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["asset"]["name"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_gone(needles: &Needles, data: &Path) {
    let left = needles.found_under(data);
    assert!(
        left.is_empty(),
        "bytes of an erased asset are still in the data folder: {left:#?}"
    );
}

#[test]
fn rm_wait_leaves_no_byte_of_the_erased_assets_in_the_data_folder() {
    let ap = Aperture::init();
    let dir = ap.inputs();
    let (memo_name, word) = ("harbourmemo-quillet-7731.txt", "zubrovkaquillet");
    let photo_name = "harbourphoto-quillet-7731.png";
    let memo = memo_text(word);
    let photo = png(7);
    std::fs::write(dir.join(memo_name), &memo).unwrap();
    std::fs::write(dir.join(photo_name), &photo).unwrap();
    std::fs::write(dir.join("kept-note.txt"), memo_text("keptwordvolany")).unwrap();
    ap.ingest(&dir, "default");
    ap.ok(&["index"]);
    // Found by its other words (a query is the searcher's words, and the log keeps it).
    assert!(names_found(&ap, "harbour meeting").contains(&memo_name.to_owned()));
    let id = |name: &str| crate::search::asset_id(&ap, name);
    let (memo_id, photo_id) = (id(memo_name), id(photo_name));
    // Reads that the audit log records, with the names beside the chain.
    ap.ok(&["show", &memo_id]);
    assert!(ap.run(&["get", &photo_id, "-o", "-"]).status.success());
    assert!(
        ap.data().join("blobs/derived").join(&photo_id).exists(),
        "a thumbnail was made"
    );

    let needles =
        Needles::of(memo_name, &memo, Some(word)).and(Needles::of(photo_name, &photo, None));
    // The search itself sees them before: in the catalog, its log, the blobs, the index.
    let before = needles.found_under(&ap.data());
    for (what, _) in &needles.0 {
        assert!(
            before.iter().any(|(w, _)| w == what),
            "{what} is nowhere before the erasure: the search would prove nothing"
        );
    }
    let files: std::collections::BTreeSet<_> = before
        .iter()
        .map(|(_, f)| f.strip_prefix(ap.data()).unwrap().display().to_string())
        .collect();
    eprintln!("before erasure: {} findings in {files:?}", before.len());
    // In each place that must be searched: the catalog, the blobs and the search index.
    for place in ["catalog.db", "blobs/blobs/", "search/"] {
        assert!(
            files.iter().any(|f| f.starts_with(place)),
            "nothing found under {place} before the erasure: {files:?}"
        );
    }
    ap.ok(&["show", &id("kept-note.txt")]);

    let out = ap.ok(&["rm", "--wait", &memo_id, &photo_id]);
    assert!(
        out.contains("no bytes of the removed assets are left"),
        "{out}"
    );
    assert_gone(&needles, &ap.data());

    // What was not erased is all there, and the log still verifies, with the erased details
    // counted.
    assert_eq!(names_found(&ap, "keptwordvolany"), ["kept-note.txt"]);
    let verify = ap.ok(&["audit", "--verify"]);
    assert!(verify.contains("intact"), "{verify}");
    assert!(!verify.contains(" 0 private details erased"), "{verify}");
    // A finished deletion keeps no content hash (the needles above also searched for it).
    let db = rusqlite::Connection::open(ap.data().join("catalog.db")).unwrap();
    let under_way: i64 = db
        .query_row("SELECT COUNT(*) FROM blob_deletions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(under_way, 0);
    // The deletion generations are kept per bucket keyed from the audit key, not per hash
    // prefix: the two erased blobs' buckets are not the first two bytes of their hashes.
    let mut buckets: Vec<i64> = db
        .prepare("SELECT bucket FROM blob_deletion_generations ORDER BY bucket")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut plain: Vec<i64> = [&memo, &photo]
        .iter()
        .map(|c| {
            let h = blake3::hash(c);
            i64::from(u16::from_be_bytes([h.as_bytes()[0], h.as_bytes()[1]]))
        })
        .collect();
    buckets.dedup();
    plain.sort();
    plain.dedup();
    assert!(!buckets.is_empty());
    assert_ne!(buckets, plain, "buckets are plain hash prefixes");
    // A private detail deleted by hand (not by an erasure) is found.
    let deleted = db
        .execute(
            "DELETE FROM audit_private WHERE asset_id = (SELECT id FROM assets LIMIT 1)",
            [],
        )
        .unwrap();
    assert_eq!(
        deleted, 1,
        "the kept note's read is the one private detail left"
    );
    let out = ap.run(&["audit", "--verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains("by hand"), "{text}");
}

#[test]
fn an_api_erasure_leaves_no_byte_of_the_asset_in_a_running_servers_data_folder() {
    let (ap, admin) = init_with("");
    let server = Server::start(&ap, &admin);
    let (memo_name, word) = ("dockmemo-vellicant-4410.txt", "vellicantorbuzz");
    let memo = memo_text(word);
    let (status, uploaded) = server.upload(
        &admin,
        "default",
        &[
            (memo_name, &memo),
            ("kept.txt", &memo_text("keptwordvolany")),
        ],
    );
    assert_eq!(status, 200, "{uploaded}");
    server.wait_indexed(2);
    // Its text is extracted by the server's worker, then indexed.
    let started = Instant::now();
    let id = loop {
        let hits = server.json("/api/v1/search?q=harbour+meeting", &admin);
        let found = hits["hits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["asset"]["name"] == memo_name)
            .map(|h| h["asset"]["id"].as_str().unwrap().to_owned());
        if let Some(id) = found {
            break id;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{hits}");
        std::thread::sleep(Duration::from_millis(200));
    };
    // Reads: metadata and the original, both audited.
    server.json(&format!("/api/v1/assets/{id}"), &admin);
    let (status, _) = server.call(
        "GET",
        &format!("/api/v1/assets/{id}/original"),
        Some(&admin),
    );
    assert_eq!(status, 200);
    let needles = Needles::of(memo_name, &memo, Some(word));
    assert!(!needles.found_under(&ap.data()).is_empty());

    let (status, _) = server.call("DELETE", &format!("/api/v1/assets/{id}"), Some(&admin));
    assert_eq!(status, 204);
    // The server's index follows at once; within seconds nothing is left, while it runs.
    let started = Instant::now();
    loop {
        let left = needles.found_under(&ap.data());
        if left.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still there after 20 s: {left:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("API erasure: bytes gone after {:?}", started.elapsed());
    let hits = server.json("/api/v1/search?q=harbour+meeting", &admin);
    assert_eq!(hits["hits"].as_array().unwrap().len(), 1, "{hits}");
    drop(server);
    assert!(ap.ok(&["audit", "--verify"]).contains("intact"));
}

/// Assets of a collection, by name, as `ls` lists them.
fn names_in(ap: &Aperture, collection: &str) -> Vec<String> {
    ap.json(&["ls", "--collection", collection])
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn retention_erases_on_schedule_and_a_legal_hold_stops_it() {
    let (ap, _admin) = init_with("[retention]\nsweep_every_secs = 1\n");
    let ingest = |collection: &str, files: &[(&str, &[u8])]| {
        let dir = ap.dir.path().join(format!("in-{collection}"));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        ap.ingest(&dir, collection);
    };
    // Taken before the ingest: an erasure at 8 s after this is never early.
    let ingested = Instant::now();
    ingest(
        "short",
        &[
            ("a.txt", b"first short-lived note"),
            ("b.txt", b"second short-lived note"),
        ],
    );
    ingest("kept", &[("c.txt", b"a note kept for ever")]);
    ingest("held", &[("d.txt", b"a note under legal hold")]);
    ap.ok(&["collection", "set", "short", "--retention", "8s"]);
    ap.ok(&[
        "collection",
        "set",
        "held",
        "--retention",
        "1s",
        "--legal-hold",
        "on",
    ]);
    let listed = ap.ok(&["collection", "list"]);
    assert!(listed.contains("8s") && listed.contains(" on"), "{listed}");
    let held = crate::search::asset_id(&ap, "d.txt");
    let refused = ap.run(&["rm", &held]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("legal hold") && said.contains("held"),
        "{said}"
    );

    // A worker sweeps every second: the short-lived notes go once 8 s have passed since their
    // ingest, not before; the held one stays although its retention ran out long ago.
    let mut worker = ap
        .command(&["worker"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut gone_after = None;
    while ingested.elapsed() < Duration::from_secs(40) {
        let left = names_in(&ap, "short");
        if left.is_empty() {
            gone_after = Some(ingested.elapsed());
            break;
        }
        assert!(
            ingested.elapsed() >= Duration::from_secs(8) || left.len() == 2,
            "erased before its time: {left:?} after {:?}",
            ingested.elapsed()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let gone_after = gone_after.expect("the short-lived notes were not erased within 40 s");
    eprintln!("retention 8s: erased {gone_after:?} after ingest");
    assert!(gone_after >= Duration::from_secs(8));
    assert_eq!(names_in(&ap, "kept"), ["c.txt"]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(names_in(&ap, "held"), ["d.txt"], "a held asset was erased");

    // The hold lifted, its retention applies at the next sweep.
    ap.ok(&["collection", "set", "held", "--legal-hold", "off"]);
    let lifted = Instant::now();
    while !names_in(&ap, "held").is_empty() {
        assert!(
            lifted.elapsed() < Duration::from_secs(20),
            "not erased after the hold was lifted"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let _ = worker.kill();
    let _ = worker.wait();

    // Every step is in the log, and the log verifies.
    let log = ap.json(&["audit", "-n", "1000"]);
    let count = |action: &str| {
        log.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action)
            .count()
    };
    assert_eq!(count("retention_erase"), 3, "{log}");
    assert_eq!(count("collection_set"), 3, "{log}");
    assert!(ap.ok(&["audit", "--verify"]).contains("intact"));
}
