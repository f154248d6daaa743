//! SIGKILL `aperture ingest` at random moments, many times: the store and catalog must stay
//! consistent after every kill, and a final run must finish the job.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::{Aperture, blake3_file, pseudo_random};

#[test]
fn killing_ingest_at_random_moments_never_loses_or_corrupts() {
    let ap = Aperture::init();
    let dir = ap.inputs();
    let mut expected = BTreeSet::new();
    for i in 0..400u64 {
        let size = 512 + (i as usize * 7919) % 60_000;
        let bytes = pseudo_random(size, i + 1);
        expected.insert(blake3::hash(&bytes).to_hex().to_string());
        std::fs::write(dir.join(format!("small-{i:03}.bin")), &bytes).unwrap();
        if i % 50 == 0 {
            // Duplicates under other names.
            std::fs::write(dir.join(format!("dup-{i:03}.bin")), &bytes).unwrap();
        }
    }
    for i in 0..4u64 {
        // Over the 8 MiB part size: these take the streamed, staged path.
        let bytes = pseudo_random(9 * 1024 * 1024 + i as usize, 1000 + i);
        expected.insert(blake3::hash(&bytes).to_hex().to_string());
        std::fs::write(dir.join(format!("large-{i}.bin")), &bytes).unwrap();
    }

    // Time one full ingest in a scratch data folder, to spread the kills over its length.
    let scratch = Aperture::init();
    let started = Instant::now();
    scratch.ok(&["ingest", dir.to_str().unwrap(), "--no-progress"]);
    let full = started.elapsed().max(Duration::from_millis(50));

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("crash test seed {seed}, full ingest {full:?}");
    let mut rng = seed | 1;
    let mut kills = 0;
    for round in 0..25u64 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // New content every round, so the blob store is written to while kills land...
        for i in 0..20u64 {
            let bytes = pseudo_random(700 + (i as usize * 131), 10_000 + round * 100 + i);
            expected.insert(blake3::hash(&bytes).to_hex().to_string());
            std::fs::write(dir.join(format!("r{round:02}-{i:02}.bin")), &bytes).unwrap();
        }
        // ...and a fresh collection, so every file is recorded again rather than skipped.
        let collection = format!("round-{round}");
        let delay = full.mul_f64((rng % 1000) as f64 / 1000.0 * 1.2);
        let mut child = ap
            .command(&[
                "ingest",
                dir.to_str().unwrap(),
                "--no-progress",
                "-c",
                &collection,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL on Unix
            kills += 1;
        }
        child.wait().unwrap();
        check_consistent(&ap, &expected, round);
    }
    eprintln!("killed {kills} of 25 runs mid-ingest");
    assert!(kills >= 10, "too few kills landed mid-ingest ({kills})");

    // A run to the end finishes the job.
    let report = ap.ingest(&dir, "round-24");
    assert_eq!(report["totals"]["failed"], 0, "{report}");
    let assets: Vec<_> = ap
        .json(&["ls", "-c", "round-24", "--limit", "100000"])
        .as_array()
        .unwrap()
        .clone();
    let hashes: BTreeSet<String> = assets
        .iter()
        .map(|a| a["hash"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(hashes, expected);
    assert_eq!(assets.len(), expected.len());
    check_consistent(&ap, &expected, 99);
    // Every file's bytes come back.
    let out = ap.dir.path().join("check.bin");
    for a in assets.iter().step_by(37) {
        ap.ok(&[
            "get",
            a["id"].as_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(blake3_file(&out), a["hash"].as_str().unwrap());
    }
    // What the kills left behind is only ever unreferenced or staged data, which repair removes.
    let repaired = ap.json(&["fsck", "--repair", "--min-age", "0"]);
    assert_eq!(repaired["healthy"], true);
    let after = ap.fsck();
    assert_eq!(
        after["findings"]["unreferenced"].as_array().unwrap().len(),
        0
    );
    assert_eq!(after["findings"]["staging_leftovers"], 0);
}

fn check_consistent(ap: &Aperture, expected: &BTreeSet<String>, round: u64) {
    // Every blob verifies, every asset's blob exists.
    let fsck = ap.fsck();
    assert_eq!(fsck["healthy"], true, "round {round}: {fsck}");
    // Every visible asset is one of the inputs, complete.
    for a in ap.assets() {
        let hash = a["hash"].as_str().unwrap();
        assert!(expected.contains(hash), "round {round}: unknown asset {a}");
    }
}

/// `rm` killed after its catalog transaction, before deleting the blob: the content cannot be
/// ingested again while the deletion is unfinished, the error says how to finish it, and
/// `fsck --repair` does.
#[test]
fn an_interrupted_rm_is_finished_by_fsck_repair() {
    use aperture_catalog::Catalog;

    let ap = Aperture::init();
    let dir = ap.inputs();
    let file = dir.join("evidence.bin");
    std::fs::write(&file, pseudo_random(20_000, 77)).unwrap();
    let report = ap.ingest(&file, "c");
    let id: aperture_core::AssetId = report["files"][0]["asset"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // What `rm` does first, then dies.
    let catalog = aperture_catalog::SqliteCatalog::open(&ap.data().join("catalog.db")).unwrap();
    let deletion = catalog.delete_asset(id).unwrap();
    assert!(deletion.claim.is_some());
    drop(catalog);

    // Young, it may still be running: fsck leaves it alone unless told otherwise.
    let fsck = ap.fsck();
    assert_eq!(fsck["healthy"], true);
    assert_eq!(fsck["findings"]["unfinished_deletions"], 0);
    let fsck = ap.json(&["fsck", "--min-age", "0"]);
    assert_eq!(fsck["findings"]["unfinished_deletions"], 1);

    let blocked = ap.ingest(&file, "c");
    assert_eq!(blocked["totals"]["failed"], 1, "{blocked}");
    let error = blocked["files"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("evidence.bin") && error.contains("fsck --repair"),
        "{error}"
    );

    let repaired = ap.json(&["fsck", "--repair", "--min-age", "0"]);
    assert_eq!(repaired["findings"]["repaired"], 1, "{repaired}");
    let after = ap.json(&["fsck", "--min-age", "0"]);
    assert_eq!(after["findings"]["unfinished_deletions"], 0);

    let again = ap.ingest(&file, "c");
    assert_eq!(again["totals"]["stored"], 1, "{again}");
    let restored = ap.dir.path().join("restored.bin");
    let id = again["files"][0]["asset"].as_str().unwrap();
    ap.ok(&["get", id, "-o", restored.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(&restored).unwrap(),
        std::fs::read(&file).unwrap()
    );
    assert_eq!(ap.fsck()["healthy"], true);
}
