//! Encryption at rest: an encrypted lake's blob store holds no plaintext and no content hash;
//! erasure destroys the data keys, so a backup of the store put back cannot be read; rotating
//! the master key rewraps data keys and rewrites no object.

use std::path::Path;

use crate::Aperture;
use crate::erasure::{Needles, memo_text};
use crate::server::png;

fn copy_tree(from: &Path, to: &Path) {
    for file in crate::files_under(from) {
        let target = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
}

fn data_keys(data: &Path) -> i64 {
    let db = rusqlite::Connection::open(data.join("catalog.db")).unwrap();
    db.query_row("SELECT COUNT(*) FROM data_keys", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn an_encrypted_store_holds_no_plaintext_and_erasure_leaves_backups_unreadable() {
    let ap = Aperture::init_with(&["--encrypt"]);
    let key_file = ap.data().join("master.key");
    let config = std::fs::read_to_string(ap.data().join("aperture.toml")).unwrap();
    assert!(config.contains(&format!("key_file = {:?}", key_file.display().to_string())));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the master key is readable by others: {mode:o}"
        );
    }

    let dir = ap.inputs();
    let (memo_name, word) = ("quaymemo-brindlewick.txt", "brindlewickzoster");
    let memo = memo_text(word);
    let photo = png(11);
    std::fs::write(dir.join(memo_name), &memo).unwrap();
    std::fs::write(dir.join("quayphoto.png"), &photo).unwrap();
    ap.ingest(&dir, "default");
    ap.ok(&["index"]);
    let id = |name: &str| crate::search::asset_id(&ap, name);
    let (memo_id, photo_id) = (id(memo_name), id("quayphoto.png"));
    let store = ap.data().join("blobs");
    assert!(
        store.join("derived").join(&photo_id).exists(),
        "a thumbnail was made"
    );
    assert!(crate::files_under(&store.join("blobs")).len() >= 2);

    // The store holds neither their bytes nor their hashes, in names or contents; the lake
    // reads them as they were.
    let needles =
        Needles::of(memo_name, &memo, Some(word)).and(Needles::of("quayphoto.png", &photo, None));
    let found = needles.found_under(&store);
    assert!(found.is_empty(), "plaintext in the blob store: {found:#?}");
    let got = ap.command(&["get", &memo_id, "-o", "-"]).output().unwrap();
    assert!(got.status.success());
    assert_eq!(got.stdout, memo);
    let thumb_before = crate::files_under(&store.join("derived").join(&photo_id));
    assert!(!thumb_before.is_empty());

    // A backup of the store, then the erasure.
    let backup = ap.dir.path().join("backup");
    copy_tree(&store, &backup);
    ap.ok(&["rm", "--wait", &memo_id, &photo_id]);
    // The blob keys and the photo's asset key are gone; only the name key stays.
    assert_eq!(data_keys(&ap.data()), 1);

    // The backup put back: every object is on disk again, and nobody can read it.
    copy_tree(&backup, &store);
    let fsck = ap.fsck()["findings"].clone();
    assert_eq!(fsck["keyless"], 2, "{fsck}");
    assert_eq!(fsck["orphan_derived"], 1, "{fsck}");
    assert!(
        fsck["unreferenced"].as_array().unwrap().is_empty(),
        "{fsck}"
    );
    // Ingested again, the memo gets a new key; the old copy is replaced, not reused.
    std::fs::remove_file(dir.join("quayphoto.png")).unwrap();
    ap.ingest(&dir, "default");
    let again = id(memo_name);
    let got = ap.command(&["get", &again, "-o", "-"]).output().unwrap();
    assert_eq!(got.stdout, memo);
    let repaired = ap.json(&["fsck", "--repair", "--min-age", "0"])["findings"].clone();
    assert_eq!(repaired["keyless"], 1, "{repaired}");
    assert_eq!(ap.fsck()["findings"]["keyless"], 0);
}

#[test]
fn rotation_rewraps_keys_without_rewriting_objects_and_a_missing_key_is_refused() {
    let ap = Aperture::init_with(&["--encrypt"]);
    let dir = ap.inputs();
    let memo = memo_text("rotationword");
    std::fs::write(dir.join("memo.txt"), &memo).unwrap();
    ap.ingest(&dir, "default");
    let id = crate::search::asset_id(&ap, "memo.txt");
    let objects = |ap: &Aperture| -> Vec<(std::path::PathBuf, Vec<u8>)> {
        crate::files_under(&ap.data().join("blobs/blobs"))
            .into_iter()
            .map(|f| {
                let bytes = std::fs::read(&f).unwrap();
                (f, bytes)
            })
            .collect()
    };
    let before = objects(&ap);

    let new_key = ap.dir.path().join("keys/new.key");
    let made = ap.ok(&["key", "new", new_key.to_str().unwrap()]);
    assert!(made.contains("new master key"), "{made}");
    let refused = ap.run(&["key", "new", new_key.to_str().unwrap()]);
    assert!(!refused.status.success(), "a key file is never overwritten");
    let out = ap.ok(&["key", "rotate", "--to", new_key.to_str().unwrap()]);
    assert!(out.contains("rewrapped 2 data keys"), "{out}");
    assert_eq!(objects(&ap), before, "rotation rewrote objects");
    let hex = std::fs::read_to_string(&new_key).unwrap();
    let status = ap
        .command(&["key", "status"])
        .env("APERTURE_MASTER_KEY", hex.trim())
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert_eq!(
        status.lines().count(),
        1,
        "the old key wraps nothing: {status}"
    );
    assert!(status.contains("wraps 2 data keys"), "{status}");

    // The old key alone no longer unwraps them, and says which key would.
    let got = ap.run(&["get", &id, "-o", "-"]);
    let err = String::from_utf8_lossy(&got.stderr);
    assert!(
        !got.status.success() && err.contains("not configured"),
        "{err}"
    );
    // The new key, from the environment, does.
    let got = ap
        .command(&["get", &id, "-o", "-"])
        .env("APERTURE_MASTER_KEY", hex.trim())
        .output()
        .unwrap();
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(got.stdout, memo);
    let again = ap
        .command(&["key", "rotate", "--to", new_key.to_str().unwrap()])
        .env("APERTURE_MASTER_KEY", hex.trim())
        .output()
        .unwrap();
    let again = String::from_utf8_lossy(&again.stdout);
    assert!(
        again.contains("rewrapped 0 data keys") && again.contains("2 already"),
        "{again}"
    );

    // No key at all: refused with what to do, nothing read.
    let config_path = ap.data().join("aperture.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let without: String = config
        .lines()
        .filter(|l| !l.starts_with("key_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&config_path, without).unwrap();
    let got = ap.run(&["get", &id, "-o", "-"]);
    let err = String::from_utf8_lossy(&got.stderr);
    assert!(
        !got.status.success() && err.contains("APERTURE_MASTER_KEY"),
        "{err}"
    );
    // A wrong key in the environment is refused without showing it.
    let got = ap
        .command(&["ls"])
        .env("APERTURE_MASTER_KEY", "not a key at all")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&got.stderr);
    assert!(
        !got.status.success() && !err.contains("not a key at all"),
        "{err}"
    );
}
