//! What encryption adds: no plaintext and no content hash in the store, ranges and derived
//! objects that open, keys whose loss makes every copy unreadable, and no mixing of
//! encrypted and plain stores.

use std::path::Path;
use std::sync::Arc;

use aperture_blob::testing::MemoryKeys;
use aperture_blob::{BlobStore, Error};
use aperture_core::{AssetId, KeyOwner};
use futures::TryStreamExt;

use crate::conformance::content;

const PART: usize = 64 * 1024;

async fn store(dir: &Path, keys: &Arc<MemoryKeys>) -> BlobStore {
    let store = BlobStore::open_url(&format!("file://{}", dir.join("store").display()), [])
        .unwrap()
        .with_part_size(PART)
        .with_encryption(keys.encryption().unwrap());
    store.init().await.unwrap();
    store
}

/// Every file under `dir`, read whole.
fn files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    walk(dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_holds_no_plaintext_and_no_content_hash() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(MemoryKeys::new().unwrap());
    let store = store(dir.path(), &keys).await;
    let marker = b"a sentence that must never be stored in the clear";
    let mut small = marker.to_vec();
    small.extend(content(1000, 1));
    let mut large = content(5 * PART + 3, 2);
    large[3 * PART..3 * PART + marker.len()].copy_from_slice(marker);
    let mut hashes = Vec::new();
    for (name, bytes) in [("small", &small), ("large", &large)] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let staged = store.stage_file(&path).await.unwrap();
        hashes.push(staged.hash());
        assert!(store.publish(staged).await.unwrap());
        std::fs::remove_file(&path).unwrap();
    }
    let asset = AssetId::new();
    store
        .put_derived(asset, "thumbnail.jpg", small.clone().into())
        .await
        .unwrap();

    for (path, bytes) in files(&dir.path().join("store")) {
        assert!(!contains(&bytes, marker), "plaintext in {}", path.display());
        for hash in &hashes {
            let shown = path.to_string_lossy();
            assert!(!shown.contains(&hash.to_string()), "hash names {shown}");
            assert!(!contains(&bytes, hash.as_bytes()), "hash in {shown}");
        }
    }
    let listed: Vec<_> = store.list().try_collect().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|e| e.hash.is_none()));
    let mut names: Vec<_> = listed.iter().map(|e| e.name.clone()).collect();
    names.sort();
    let mut expected: Vec<_> = hashes.iter().map(|h| store.blob_name(*h)).collect();
    expected.sort();
    assert_eq!(names, expected);
    // Sizes are the plaintext's.
    assert_eq!(
        store.size(hashes[1]).await.unwrap(),
        Some(large.len() as u64)
    );
    assert_eq!(
        store.derived_size(asset, "thumbnail.jpg").await.unwrap(),
        small.len() as u64
    );
    assert_eq!(
        store.read_all(hashes[1]).await.unwrap().as_ref(),
        &large[..]
    );
    assert_eq!(
        store
            .get_derived(asset, "thumbnail.jpg")
            .await
            .unwrap()
            .as_ref(),
        &small[..]
    );
    assert!(
        store.local_path(hashes[0]).is_none(),
        "no plaintext file to read in place"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_of_encrypted_blobs_and_derived_objects_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(MemoryKeys::new().unwrap());
    let store = store(dir.path(), &keys).await;
    let bytes = content(3 * 65536 + 1234, 5);
    let path = dir.path().join("f");
    std::fs::write(&path, &bytes).unwrap();
    let staged = store.stage_file(&path).await.unwrap();
    let hash = staged.hash();
    store.publish(staged).await.unwrap();
    let asset = AssetId::new();
    store
        .put_derived_file(asset, "preview.mp4", &path)
        .await
        .unwrap();
    let len = bytes.len() as u64;
    // Within and across segments, ending in the second-to-last one and in the last.
    let seg = 65536;
    for range in [
        0..1,
        0..len,
        10..seg,
        seg - 1..seg + 1,
        seg..2 * seg,
        2 * seg..3 * seg,
        3 * seg - 7..3 * seg,
        len - 5..len,
        7..7,
    ] {
        let expected = &bytes[range.start as usize..range.end as usize];
        let blob = concat(store.get_range(hash, range.clone()).await).await;
        assert_eq!(blob.unwrap(), expected, "{range:?}");
        let derived = store.get_derived_range(asset, "preview.mp4", range.clone());
        assert_eq!(concat(derived.await).await.unwrap(), expected, "{range:?}");
    }
}

/// The bytes of a range read, or its first error.
async fn concat(
    stream: aperture_blob::Result<
        futures::stream::BoxStream<'static, aperture_blob::Result<bytes::Bytes>>,
    >,
) -> aperture_blob::Result<Vec<u8>> {
    stream?.map_ok(|b| b.to_vec()).try_concat().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroyed_key_leaves_every_copy_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(MemoryKeys::new().unwrap());
    let store = store(dir.path(), &keys).await;
    let bytes = content(2 * PART, 9);
    let staged = store.stage_bytes(bytes.clone().into()).await.unwrap();
    let hash = staged.hash();
    store.publish(staged).await.unwrap();
    let asset = AssetId::new();
    store
        .put_derived(asset, "t.jpg", bytes.clone().into())
        .await
        .unwrap();
    // A backup of the store, taken before the erasure.
    let backup = files(&dir.path().join("store"));

    assert!(keys.forget(KeyOwner::Blob(hash)));
    assert!(keys.forget(KeyOwner::Asset(asset)));
    store.delete(hash).await.unwrap();
    store.delete_derived(asset).await.unwrap();
    // The backup put back: its objects are there, and nobody can read them.
    for (path, bytes) in &backup {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    assert!(matches!(
        store.read_all(hash).await,
        Err(Error::KeyGone { .. })
    ));
    assert!(matches!(
        store.get_range(hash, 0..10).await.err(),
        Some(Error::KeyGone { .. })
    ));
    assert!(matches!(
        store.get_derived(asset, "t.jpg").await,
        Err(Error::KeyGone { .. })
    ));
    // A new key for the same content (the file ingested again) does not open the old copy.
    let staged = store.stage_bytes(bytes.clone().into()).await.unwrap();
    assert!(
        store.publish(staged).await.unwrap(),
        "the old copy is replaced"
    );
    assert_eq!(store.read_all(hash).await.unwrap().as_ref(), &bytes[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_and_plain_stores_do_not_mix() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("store").display());
    let keys = Arc::new(MemoryKeys::new().unwrap());
    store(dir.path(), &keys).await;
    let plain = BlobStore::open_url(&url, []).unwrap();
    let err = plain.init().await.unwrap_err();
    assert!(err.to_string().contains("no master key"), "{err}");

    let other = tempfile::tempdir().unwrap();
    let url = format!("file://{}", other.path().display());
    BlobStore::open_url(&url, []).unwrap().init().await.unwrap();
    let encrypted = BlobStore::open_url(&url, [])
        .unwrap()
        .with_encryption(keys.encryption().unwrap());
    let err = encrypted.init().await.unwrap_err();
    assert!(err.to_string().contains("without encryption"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altered_cut_or_swapped_ciphertext_is_corrupt_never_data() {
    // The stored layout: a 24-byte header, then 64 KiB segments each followed by a 16-byte tag.
    const HEADER: usize = 24;
    const SEALED_SEGMENT: usize = 65536 + 16;
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(MemoryKeys::new().unwrap());
    let store = store(dir.path(), &keys).await;
    let (a, b) = (content(3 * 65536 + 5, 1), content(3 * 65536 + 5, 2));
    let mut hashes = Vec::new();
    for bytes in [&a, &b] {
        let staged = store.stage_bytes(bytes.clone().into()).await.unwrap();
        hashes.push(staged.hash());
        store.publish(staged).await.unwrap();
    }
    let file = |hash| {
        let name = store.blob_name(hash);
        dir.path().join("store/blobs").join(&name[..3]).join(&name)
    };
    let (path_a, sealed_a) = (file(hashes[0]), std::fs::read(file(hashes[0])).unwrap());
    let sealed_b = std::fs::read(file(hashes[1])).unwrap();
    let range = |r: std::ops::Range<u64>| {
        let store = store.clone();
        let hash = hashes[0];
        async move { concat(store.get_range(hash, r).await).await }
    };

    // Each damage with whether a range in segment 0 still opens:
    // - one bit flipped in segment 1: segments are sealed one by one, so segment 0 still does;
    // - cut at a segment boundary: the segment now last was not sealed as the last, which a
    //   whole read and a range reaching it find; bytes before the cut are really the stored ones;
    // - another blob's ciphertext under this one's name: its key and context differ.
    let mut flipped = sealed_a.clone();
    flipped[HEADER + SEALED_SEGMENT + 10] ^= 1;
    let cut = sealed_a[..HEADER + 2 * SEALED_SEGMENT].to_vec();
    for (what, stored, head_opens) in [
        ("flipped", flipped, true),
        ("cut", cut, true),
        ("swapped", sealed_b, false),
    ] {
        std::fs::write(&path_a, &stored).unwrap();
        let whole = store.read_all(hashes[0]).await;
        assert!(matches!(whole, Err(Error::Corrupt { .. })), "{what}");
        let over = range(65536..65600).await;
        assert!(matches!(over, Err(Error::Corrupt { .. })), "{what}");
        let head = range(0..100).await;
        if head_opens {
            assert_eq!(head.unwrap(), &a[..100], "{what}");
        } else {
            assert!(matches!(head, Err(Error::Corrupt { .. })), "{what}");
        }
    }

    // Put back, it reads again.
    std::fs::write(&path_a, &sealed_a).unwrap();
    assert_eq!(store.read_all(hashes[0]).await.unwrap().as_ref(), &a[..]);
}
