//! One suite, run on every kind of store: local disk, in memory, and real S3 and Azure
//! servers (see `remote.rs`; those tests skip when their server is not configured).

use std::path::Path;
use std::sync::Arc;

use aperture_blob::testing::{FullDisk, MemoryKeys};
use aperture_blob::{BlobStore, Error};
use aperture_core::ContentHash;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;

const PART: usize = 64 * 1024;

async fn local(dir: &Path) -> BlobStore {
    let store = BlobStore::open_url(&format!("file://{}", dir.join("store").display()), [])
        .unwrap()
        .with_part_size(PART)
        .with_durable(true);
    store.init().await.unwrap();
    store
}

async fn memory() -> BlobStore {
    let store = BlobStore::open_url("memory://", [])
        .unwrap()
        .with_part_size(PART);
    store.init().await.unwrap();
    store
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub(crate) fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn put_file(store: &BlobStore, dir: &Path, name: &str, bytes: &[u8]) -> (ContentHash, bool) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let staged = store.stage_file(&path).await.unwrap();
    let hash = staged.hash();
    assert_eq!(staged.size(), bytes.len() as u64);
    let created = store.publish(staged).await.unwrap();
    (hash, created)
}

macro_rules! suite {
    ($name:ident, $make:path) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn round_trip_every_size_class() {
                let dir = tempfile::tempdir().unwrap();
                let Some(store) = $make(dir.path()).await else {
                    return;
                };
                round_trip_every_size_class_on(&store, dir.path()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn same_content_is_stored_once() {
                let dir = tempfile::tempdir().unwrap();
                let Some(store) = $make(dir.path()).await else {
                    return;
                };
                same_content_is_stored_once_on(&store, dir.path()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn corruption_is_an_error_never_data() {
                let dir = tempfile::tempdir().unwrap();
                let Some(store) = $make(dir.path()).await else {
                    return;
                };
                corruption_is_an_error_never_data_on(&store, dir.path()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn unpublished_uploads_stay_out_of_sight() {
                let dir = tempfile::tempdir().unwrap();
                let Some(store) = $make(dir.path()).await else {
                    return;
                };
                unpublished_uploads_stay_out_of_sight_on(&store, dir.path()).await;
            }
        }
    };
}

async fn local_in(dir: &Path) -> Option<BlobStore> {
    Some(local(dir).await)
}

async fn memory_beside(_dir: &Path) -> Option<BlobStore> {
    Some(memory().await)
}

/// In memory, publishing as the remote stores do (no staging, parts straight to the name),
/// so that path runs where no S3 or Azure server does.
async fn memory_uploading(_dir: &Path) -> Option<BlobStore> {
    Some(memory().await.with_upload_on_publish(true))
}

/// Encrypted on local disk: every object sealed, blobs under keyed names.
async fn local_encrypted(dir: &Path) -> Option<BlobStore> {
    let keys = Arc::new(MemoryKeys::new().unwrap());
    let store = BlobStore::open_url(&format!("file://{}", dir.join("store").display()), [])
        .unwrap()
        .with_part_size(PART)
        .with_durable(true)
        .with_encryption(keys.encryption().unwrap());
    store.init().await.unwrap();
    Some(store)
}

async fn memory_encrypted(_dir: &Path) -> Option<BlobStore> {
    let keys = Arc::new(MemoryKeys::new().unwrap());
    let store = BlobStore::open_url("memory://", [])
        .unwrap()
        .with_part_size(PART)
        .with_encryption(keys.encryption().unwrap());
    store.init().await.unwrap();
    Some(store)
}

/// A remote store with encryption: sealed parts uploaded straight to their keyed names.
async fn s3_encrypted(dir: &Path) -> Option<BlobStore> {
    let keys = Arc::new(MemoryKeys::new().unwrap());
    Some(
        crate::remote::s3(dir)
            .await?
            .with_encryption(keys.encryption().unwrap()),
    )
}

async fn azure_encrypted(dir: &Path) -> Option<BlobStore> {
    let keys = Arc::new(MemoryKeys::new().unwrap());
    Some(
        crate::remote::azure(dir)
            .await?
            .with_encryption(keys.encryption().unwrap()),
    )
}

suite!(local_disk, local_in);
suite!(s3_encrypted_store, s3_encrypted);
suite!(azure_encrypted_store, azure_encrypted);
suite!(local_disk_encrypted, local_encrypted);
suite!(in_memory_encrypted, memory_encrypted);
suite!(in_memory, memory_beside);
suite!(in_memory_upload_on_publish, memory_uploading);
suite!(s3, crate::remote::s3);
suite!(azure, crate::remote::azure);

async fn round_trip_every_size_class_on(store: &BlobStore, dir: &Path) {
    let part = store.part_size();
    for (i, len) in [0, 1, part - 1, part, part + 1, 3 * part + 17]
        .into_iter()
        .enumerate()
    {
        let bytes = content(len, i as u64 + 1);
        let (hash, created) = put_file(store, dir, &format!("f{i}"), &bytes).await;
        assert!(created, "size {len}");
        assert_eq!(hash, ContentHash::of(&bytes), "size {len}");
        assert_eq!(store.size(hash).await.unwrap(), Some(len as u64));
        assert_eq!(store.read_all(hash).await.unwrap().as_ref(), &bytes[..]);
        let out = dir.join(format!("out{i}"));
        assert_eq!(store.read_to_file(hash, &out).await.unwrap(), len as u64);
        assert_eq!(std::fs::read(&out).unwrap(), bytes, "size {len}");
        assert_eq!(store.verify(hash).await.unwrap(), len as u64);
    }
    store.sync().await.unwrap();
    let listed: Vec<_> = store.list().try_collect().await.unwrap();
    assert_eq!(listed.len(), 6);
    assert!(store.list_staging().await.unwrap().is_empty());
}

async fn same_content_is_stored_once_on(store: &BlobStore, dir: &Path) {
    for len in [10, 3 * store.part_size()] {
        let bytes = content(len, 7);
        let (a, created_a) = put_file(store, dir, "a", &bytes).await;
        let (b, created_b) = put_file(store, dir, "b", &bytes).await;
        assert_eq!(a, b);
        assert!(created_a);
        assert!(!created_b, "second copy of {len} bytes must dedupe");
    }
    let listed: Vec<_> = store.list().try_collect().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(store.list_staging().await.unwrap().is_empty());
    // Staged bytes from memory dedupe against staged files.
    let staged = store.stage_bytes(content(10, 7).into()).await.unwrap();
    assert!(!store.publish(staged).await.unwrap());
}

async fn corruption_is_an_error_never_data_on(store: &BlobStore, dir: &Path) {
    let part = store.part_size();
    let bytes = content(2 * part + 5, 3);
    let (hash, _) = put_file(store, dir, "x", &bytes).await;
    let name = store.blob_name(hash);
    let key = object_store::path::Path::from(format!("blobs/{}/{name}", &name[..3]));
    for bad in [
        {
            let mut flipped = bytes.clone();
            flipped[part + 3] ^= 1;
            flipped
        },
        bytes[..part].to_vec(),
        Vec::new(),
    ] {
        let bad_len = bad.len();
        store.object_store().put(&key, bad.into()).await.unwrap();
        assert!(matches!(
            store.verify(hash).await,
            Err(Error::Corrupt { .. })
        ));
        // A reader never receives every byte of a wrong blob: the last chunk waits for the hash.
        let (mut received, mut failed) = (0, false);
        match store.get(hash).await {
            Ok(mut stream) => {
                while let Some(chunk) = stream.next().await {
                    match chunk {
                        Ok(chunk) => received += chunk.len(),
                        Err(e) => failed = matches!(e, Error::Corrupt { .. }),
                    }
                }
            }
            Err(e) => failed = matches!(e, Error::Corrupt { .. }),
        }
        assert!(failed, "a damaged blob's stream must end in Corrupt");
        assert!(
            received < bad_len.max(1),
            "{received} of {bad_len} damaged bytes went out"
        );
        // Ranges of a damaged blob fail too, whichever part they ask for.
        for range in [0..1, part as u64 / 2..part as u64 / 2 + 8] {
            let read = match store.get_range(hash, range.clone()).await {
                Ok(stream) => stream.try_collect::<Vec<_>>().await.map(|_| ()),
                Err(e) => Err(e),
            };
            assert!(
                matches!(read, Err(Error::Corrupt { .. })),
                "range {range:?} of a damaged blob: {read:?}"
            );
        }
        assert!(matches!(
            store.read_all(hash).await,
            Err(Error::Corrupt { .. })
        ));
        let out = dir.join("restored");
        let err = store.read_to_file(hash, &out).await.unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
        assert!(!out.exists(), "a corrupt blob must not leave a file behind");
        let leftovers: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".aperture-get"))
            .collect();
        assert!(leftovers.is_empty());
    }
    // Repaired, the same ranges read again (the memory of checked versions is per version).
    store.object_store().delete(&key).await.unwrap();
    let _ = put_file(store, dir, "repaired", &bytes).await;
    let range = part as u64 + 1..part as u64 + 9;
    let read: Vec<u8> = store
        .get_range(hash, range.clone())
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .concat();
    assert_eq!(read, bytes[range.start as usize..range.end as usize]);
    let missing = ContentHash::of(b"never stored");
    assert!(matches!(
        store.verify(missing).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(store.size(missing).await.unwrap(), None);
    store.delete(missing).await.unwrap();
}

async fn unpublished_uploads_stay_out_of_sight_on(store: &BlobStore, dir: &Path) {
    let path = dir.join("big");
    std::fs::write(&path, content(4 * store.part_size(), 9)).unwrap();
    let staged = store.stage_file(&path).await.unwrap();
    let hash = staged.hash();
    std::mem::forget(staged); // as if the process died before publishing
    assert!(
        store
            .list()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.size(hash).await.unwrap(), None);
    // Staged in `staging/`, or (a store that uploads on publish) not uploaded at all.
    let staging: Vec<_> = store.list_staging().await.unwrap();
    let expected = usize::from(!store.uploads_on_publish());
    assert_eq!(staging.len(), expected, "{staging:?}");
    for entry in &staging {
        store.delete_staging(entry).await.unwrap();
    }
    assert!(store.list_staging().await.unwrap().is_empty());

    let staged = store.stage_file(&path).await.unwrap();
    store.discard(staged).await.unwrap();
    assert!(store.list_staging().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_write_and_leaves_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let inner = local(dir.path()).await;
    let store = BlobStore::new(Arc::new(FullDisk::new(
        inner.object_store().clone(),
        3 * PART as u64,
    )))
    .with_part_size(PART);
    let big = dir.path().join("big");
    std::fs::write(&big, content(5 * PART, 1)).unwrap();
    let err = store.stage_file(&big).await.unwrap_err();
    assert!(err.to_string().contains("No space left"), "{err}");
    assert!(
        inner
            .list()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .is_empty()
    );
    assert!(inner.list_staging().await.unwrap().is_empty());
    // Smaller files still fit afterwards.
    let (hash, created) = put_file(&store, dir.path(), "small", &content(1000, 2)).await;
    assert!(created);
    assert_eq!(store.verify(hash).await.unwrap(), 1000);
}

#[tokio::test]
async fn an_unreadable_source_names_the_file() {
    let store = memory().await;
    let err = store
        .stage_file(Path::new("/definitely/not/here.jpg"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("/definitely/not/here.jpg"),
        "{err}"
    );
}

#[tokio::test]
async fn unfinished_local_writes_are_found_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path()).await;
    // What a put killed mid-write leaves on local disk: object_store hides it from listings.
    let leftover = dir.path().join("store/blobs/abc/abcdef#3");
    std::fs::create_dir_all(leftover.parent().unwrap()).unwrap();
    std::fs::write(&leftover, b"half").unwrap();
    assert!(
        store
            .list()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .is_empty()
    );
    let staging = store.list_staging().await.unwrap();
    assert_eq!(staging.len(), 1);
    assert_eq!(staging[0].key, "blobs/abc/abcdef#3");
    assert_eq!(staging[0].size, 4);
    store.delete_staging(&staging[0]).await.unwrap();
    assert!(!leftover.exists());
}

#[tokio::test]
async fn a_damaged_blob_is_replaced_when_its_content_comes_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path()).await;
    let bytes = content(5000, 4);
    let (hash, _) = put_file(&store, dir.path(), "a", &bytes).await;
    // As a power cut without fsync can leave it: the right name, no content.
    let hex = hash.to_string();
    let on_disk = dir.path().join(format!("store/blobs/{}/{hex}", &hex[..3]));
    std::fs::write(&on_disk, b"").unwrap();
    assert!(store.verify(hash).await.is_err());
    let (_, created) = put_file(&store, dir.path(), "again", &bytes).await;
    assert!(
        created,
        "a blob of the wrong size is rewritten, not deduplicated against"
    );
    assert_eq!(store.verify(hash).await.unwrap(), 5000);
}

#[tokio::test]
async fn writing_to_a_stream_never_hands_out_corrupt_bytes() {
    let dir = tempfile::tempdir().unwrap();
    for len in [1000, 3 * PART] {
        let store = local(&dir.path().join(len.to_string())).await;
        let bytes = content(len, 8);
        let (hash, _) = put_file(&store, dir.path(), "s", &bytes).await;
        let mut out = Vec::new();
        assert_eq!(
            store.read_to_writer(hash, &mut out).await.unwrap(),
            len as u64
        );
        assert_eq!(out, bytes);
        let hex = hash.to_string();
        let key = object_store::path::Path::from(format!("blobs/{}/{hex}", &hex[..3]));
        let mut bad = bytes.clone();
        bad[len / 2] ^= 0xff;
        store.object_store().put(&key, bad.into()).await.unwrap();
        let mut out = Vec::new();
        assert!(store.read_to_writer(hash, &mut out).await.is_err());
        assert!(out.is_empty(), "{len}: {} bytes handed out", out.len());
    }
}

#[tokio::test]
async fn a_file_changed_before_publishing_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = memory().await.with_upload_on_publish(true);
    let path = dir.path().join("big");
    let bytes = content(3 * PART, 5);
    std::fs::write(&path, &bytes).unwrap();
    let staged = store.stage_file(&path).await.unwrap();
    let hash = staged.hash();
    let mut changed = bytes.clone();
    changed[PART * 2] ^= 1;
    std::fs::write(&path, &changed).unwrap();
    let err = store.publish(staged).await.unwrap_err();
    assert!(matches!(err, Error::SourceChanged { .. }), "{err:?}");
    assert!(err.to_string().contains("big"), "{err}");
    assert_eq!(store.size(hash).await.unwrap(), None);
    assert!(
        store
            .list()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .is_empty()
    );
}

/// Small content published on the caller's thread reads back through the store as any blob
/// does, is deduplicated against an intact blob, replaces a damaged one, and is given back
/// untouched by stores that cannot take it so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_content_published_in_place_behaves_as_published_any_other_way() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path()).await;
    assert!(store.publishes_blocking());
    let path = dir.path().join("small");
    let bytes = content(3000, 11);
    std::fs::write(&path, &bytes).unwrap();
    let stage = || {
        store
            .stage_small_file_blocking(&path)
            .unwrap()
            .expect("smaller than a part")
    };
    let staged = stage();
    let hash = staged.hash();
    assert_eq!(store.publish_blocking(staged).unwrap().ok(), Some(true));
    assert_eq!(store.verify(hash).await.unwrap(), 3000);
    assert_eq!(
        store.publish_blocking(stage()).unwrap().ok(),
        Some(false),
        "an intact blob is deduplicated against"
    );
    // Async publishing sees the same blob.
    assert!(!store.publish(stage()).await.unwrap());

    let hex = hash.to_string();
    let on_disk = dir.path().join(format!("store/blobs/{}/{hex}", &hex[..3]));
    let mut damaged = bytes.clone();
    damaged[100] ^= 1;
    std::fs::write(&on_disk, &damaged).unwrap();
    assert!(store.verify(hash).await.is_err());
    assert_eq!(
        store.publish_blocking(stage()).unwrap().ok(),
        Some(true),
        "a damaged blob is replaced"
    );
    assert_eq!(store.verify(hash).await.unwrap(), 3000);
    let beside: Vec<_> = std::fs::read_dir(on_disk.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside.len(), 1, "nothing left beside the blob: {beside:?}");

    for other in [
        memory().await,
        local_encrypted(&dir.path().join("sealed")).await.unwrap(),
    ] {
        assert!(!other.publishes_blocking());
        let staged = other.stage_small_file_blocking(&path).unwrap().unwrap();
        let given_back = other.publish_blocking(staged).unwrap().unwrap_err();
        assert!(other.publish(given_back).await.unwrap());
        assert_eq!(other.verify(hash).await.unwrap(), 3000);
    }
}

/// Issue 17: a path that is no longer a regular file when it is read (a file replaced by a
/// FIFO or a folder after the walk saw it), or a device that never ends, is refused with an
/// error naming it, never read: a FIFO would block the read until a writer came. On a thread,
/// so that a regression fails here instead of hanging the suite.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r17_only_regular_files_are_staged() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path()).await;
    let fifo = dir.path().join("pipe");
    let name = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path that lives across the call.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    for (path, why) in [
        (fifo, "not a regular file"),
        (folder, "is a directory"),
        (std::path::PathBuf::from("/dev/zero"), "not a regular file"),
    ] {
        let (sent, answer) = std::sync::mpsc::channel();
        let (staging, asked) = (store.clone(), path.clone());
        std::thread::spawn(move || {
            let _ = sent.send(
                staging
                    .stage_small_file_blocking(&asked)
                    .map(|s| s.is_some()),
            );
        });
        let err = answer
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("staging {} waited", path.display()))
            .unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::Read { .. }), "{err:?}");
        assert!(message.contains(&*path.to_string_lossy()), "{message}");
        assert!(message.contains(why), "{message}");
    }
}
