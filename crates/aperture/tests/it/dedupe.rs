//! The same content under two names is stored once.

use crate::{Aperture, pseudo_random};

#[test]
fn same_content_under_two_names_is_one_blob_and_one_asset() {
    let ap = Aperture::init();
    let dir = ap.inputs();
    let photo = pseudo_random(100_000, 5);
    std::fs::write(dir.join("IMG_0001.raw"), &photo).unwrap();
    std::fs::create_dir(dir.join("backup")).unwrap();
    std::fs::write(dir.join("backup/copy of IMG_0001.raw"), &photo).unwrap();
    std::fs::write(dir.join("other.raw"), pseudo_random(50_000, 6)).unwrap();

    let report = ap.ingest(&dir, "photos");
    assert_eq!(report["totals"]["stored"], 2);
    assert_eq!(report["totals"]["duplicates"], 1);
    assert_eq!(report["totals"]["new_bytes"], 150_000);

    // The same files into a second collection: a new asset, but no new bytes.
    let again = ap.ingest(&dir, "archive");
    assert_eq!(again["totals"]["stored"], 2);
    assert_eq!(again["totals"]["new_bytes"], 0);

    let stats = ap.json(&["stats"]);
    assert_eq!(stats["stats"]["assets"], 4);
    assert_eq!(stats["stats"]["sources"], 6);
    assert_eq!(stats["stats"]["distinct_blobs"], 2);
    assert_eq!(stats["stats"]["stored_bytes"], 150_000);
    assert_eq!(stats["stats"]["logical_bytes"], 4 * 100_000 + 2 * 50_000);
    assert_eq!(stats["dedupe_savings"], 350_000);

    // One asset in "photos" remembers both names.
    let listed = ap.json(&["ls", "-c", "photos"]);
    let big = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["size"] == 100_000)
        .unwrap();
    let shown = ap.json(&["show", big["id"].as_str().unwrap()]);
    let mut paths: Vec<_> = shown["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["path"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    paths.sort();
    assert_eq!(paths, ["IMG_0001.raw", "copy of IMG_0001.raw"]);

    // On disk: exactly two blobs.
    assert_eq!(crate::files_under(&ap.data().join("blobs/blobs")).len(), 2);

    // Removing one of the two assets that share a blob keeps the bytes for the other.
    let id = big["id"].as_str().unwrap();
    let out = ap.ok(&["rm", id]);
    assert!(out.contains("another asset"), "{out}");
    assert_eq!(crate::files_under(&ap.data().join("blobs/blobs")).len(), 2);
    assert_eq!(ap.fsck()["healthy"], true);
}
