//! Ingest against real stores: a local blob store (made to run out of space by
//! `aperture_blob::testing::FullDisk`) and an in-memory SQLite catalog.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aperture_blob::BlobStore;
use aperture_blob::testing::FullDisk;
use aperture_catalog::{AssetQuery, Catalog, SqliteCatalog};
use aperture_core::ContentHash;
use aperture_ingest::{FileErrorKind, FileStatus, IngestOptions, Ingester, NoProgress, Report};
use futures::TryStreamExt;

/// Small enough that a few hundred kilobytes take several parts.
const PART: usize = 64 * 1024;

/// Deterministic pseudo-random bytes (xorshift64), so failures reproduce.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes files of the given sizes, each with its own content, into `dir`; returns their paths.
fn write_files(dir: &Path, sizes: &[usize]) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            let path = dir.join(format!("{i:02}-{size}.bin"));
            std::fs::write(&path, pseudo_random(size, i as u64 + 1)).unwrap();
            path
        })
        .collect()
}

/// A local blob store in `dir`, initialised.
async fn local_store(dir: &Path) -> BlobStore {
    let store = BlobStore::open_url(&format!("file://{}", dir.display()), []).unwrap();
    store.init().await.unwrap();
    store
}

fn catalog() -> Arc<dyn Catalog> {
    Arc::new(SqliteCatalog::open_in_memory().unwrap())
}

fn options() -> IngestOptions {
    IngestOptions {
        collection: "files".into(),
        report_every_file: true,
        ..IngestOptions::default()
    }
}

async fn ingest(blobs: BlobStore, catalog: &Arc<dyn Catalog>, dir: &Path) -> Report {
    Ingester::new(blobs, catalog.clone())
        .ingest(&[dir.to_path_buf()], &options(), &NoProgress)
        .await
        .unwrap()
}

/// The paths in `report` with this status.
fn with_status(report: &Report, status: FileStatus) -> BTreeSet<String> {
    report
        .files
        .iter()
        .filter(|f| f.status == status)
        .map(|f| f.path.clone())
        .collect()
}

/// Checks that the catalog and the store agree: every asset's blob is there and verifies, every
/// blob in the store is an asset's (nothing half-written, nothing orphaned), and no upload was
/// left in the staging area. Returns the number of assets.
async fn assert_consistent(store: &BlobStore, dir: &Path, catalog: &Arc<dyn Catalog>) -> usize {
    let assets = catalog
        .list_assets(&AssetQuery {
            limit: 1_000_000,
            ..AssetQuery::default()
        })
        .unwrap();
    let mut referenced = BTreeSet::new();
    for asset in &assets {
        let size = store.verify(asset.hash).await.unwrap_or_else(|e| {
            panic!("blob of asset {} ({}): {e}", asset.id, asset.name);
        });
        assert_eq!(size, asset.size, "{}", asset.name);
        referenced.insert(asset.hash);
    }
    let stored: BTreeSet<ContentHash> = store
        .list()
        .map_ok(|entry| entry.hash.expect("a plain store names blobs by hash"))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        stored, referenced,
        "blobs in the store versus in the catalog"
    );
    let staging: Vec<_> = store.list_staging().await.unwrap();
    assert!(staging.is_empty(), "left in staging: {staging:?}");
    // object_store hides its own in-progress files (`name#1`) from listings: look at the disk.
    let on_disk = files_under(&dir.join("staging"));
    assert!(on_disk.is_empty(), "left in staging on disk: {on_disk:?}");
    assets.len()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flat_map(|entry| {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files_under(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_fails_some_files_and_leaves_nothing_half_written() {
    let root = tempfile::tempdir().unwrap();
    let (store_dir, input) = (root.path().join("store"), root.path().join("in"));
    let local = local_store(&store_dir).await;
    // Six small files (read whole, one put each) and four larger than a part (streamed in
    // parts through the staging area): 720 kB, into 300 kB of free space.
    let sizes = [20_000; 6]
        .into_iter()
        .chain([150_000; 4])
        .collect::<Vec<_>>();
    let files = write_files(&input, &sizes);
    let total: usize = sizes.iter().sum();
    let capacity = 300_000;
    assert!(total > capacity);
    let full = BlobStore::new(Arc::new(FullDisk::new(
        local.object_store().clone(),
        capacity as u64,
    )))
    .with_part_size(PART);
    let catalog = catalog();

    let first = ingest(full, &catalog, &input).await;
    let stored = with_status(&first, FileStatus::Stored);
    let failed = with_status(&first, FileStatus::Failed);
    assert_eq!(first.totals.files, files.len() as u64, "{first:#?}");
    assert_eq!(stored.len() + failed.len(), files.len(), "{first:#?}");
    assert!(!stored.is_empty(), "nothing fitted: {first:#?}");
    assert!(!failed.is_empty(), "everything fitted: {first:#?}");
    for file in first
        .files
        .iter()
        .filter(|f| f.status == FileStatus::Failed)
    {
        let error = file
            .error
            .as_ref()
            .map(|e| e.message.as_str())
            .unwrap_or_default();
        assert!(error.contains("No space left"), "{file:#?}");
        assert_eq!(file.error_kind, Some(FileErrorKind::Store), "{file:#?}");
        assert!(
            error.contains(&file.path),
            "the error names no file: {file:#?}"
        );
        assert!(Path::new(&file.path).starts_with(&input), "{file:#?}");
    }
    let stored_bytes: u64 = first
        .files
        .iter()
        .filter(|f| f.status == FileStatus::Stored)
        .map(|f| f.size)
        .sum();
    assert!(stored_bytes <= capacity as u64, "{first:#?}");
    assert_eq!(
        assert_consistent(&local, &store_dir, &catalog).await,
        stored.len()
    );

    // Space freed: the same store and catalog, room for everything. What failed is stored
    // now; what was stored is recognised by path, size and time.
    let roomy = BlobStore::new(Arc::new(FullDisk::new(
        local.object_store().clone(),
        10 * total as u64,
    )))
    .with_part_size(PART);
    let second = ingest(roomy, &catalog, &input).await;
    assert_eq!(
        with_status(&second, FileStatus::Stored),
        failed,
        "{second:#?}"
    );
    assert_eq!(
        with_status(&second, FileStatus::Known),
        stored,
        "{second:#?}"
    );
    assert_eq!(second.totals.failed, 0, "{second:#?}");
    assert_eq!(
        assert_consistent(&local, &store_dir, &catalog).await,
        files.len()
    );
    let stats = catalog.stats().unwrap();
    assert_eq!(stats.stored_bytes, total as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_ingests_of_one_folder_at_once_store_each_content_once() {
    // A race needs luck to show itself: a few rounds, each from scratch.
    for round in 0..4 {
        let root = tempfile::tempdir().unwrap();
        let (store_dir, input) = (root.path().join("store"), root.path().join("in"));
        let store = local_store(&store_dir).await.with_part_size(PART);
        let sizes = [0, 1, 10_000, 10_000, PART, PART + 1, 3 * PART + 7, 200_000];
        write_files(&input, &sizes);
        // The same content again under another name.
        std::fs::copy(input.join("07-200000.bin"), input.join("copy of 07.bin")).unwrap();
        std::fs::copy(input.join("02-10000.bin"), input.join("copy of 02.bin")).unwrap();
        let distinct = sizes.len() as u64;
        let catalog = catalog();

        let (a, b) = tokio::join!(
            ingest(store.clone(), &catalog, &input),
            ingest(store.clone(), &catalog, &input),
        );
        for report in [&a, &b] {
            assert_eq!(report.totals.failed, 0, "round {round}: {report:#?}");
            assert_eq!(report.totals.files, distinct + 2, "round {round}");
        }
        assert_eq!(
            a.totals.stored + b.totals.stored,
            distinct,
            "round {round}: each content is created once: {a:#?} {b:#?}"
        );
        let stats = catalog.stats().unwrap();
        assert_eq!(stats.distinct_blobs, distinct, "round {round}: {stats:?}");
        assert_eq!(stats.assets, distinct, "round {round}: {stats:?}");
        assert_eq!(stats.sources, distinct + 2, "round {round}: {stats:?}");
        assert_eq!(
            assert_consistent(&store, &store_dir, &catalog).await as u64,
            distinct,
            "round {round}"
        );
    }
}

/// Issue 10: `aperture ingest` refuses a decompression bomb as an upload does: before its
/// bytes are stored, with a typed error naming the file; the rest of the batch goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r10_ingest_refuses_decompression_bombs_before_storing_them() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("bomb.png"), aperture_media::fixtures::bomb_png()).unwrap();
    std::fs::write(input.join("note.txt"), b"an ordinary file").unwrap();
    let blobs = local_store(&dir.path().join("blobs")).await;
    let catalog = catalog();
    let report = ingest(blobs.clone(), &catalog, &input).await;
    assert_eq!(report.totals.failed, 1, "{report:#?}");
    assert_eq!(report.totals.stored, 1, "{report:#?}");
    let bomb = report
        .files
        .iter()
        .find(|f| f.path.ends_with("bomb.png"))
        .unwrap();
    assert_eq!(bomb.error_kind, Some(FileErrorKind::TooLarge), "{bomb:#?}");
    let message = &bomb.error.as_ref().unwrap().message;
    assert!(
        message.contains("bomb.png") && message.contains("30000 × 30000"),
        "{message}"
    );
    let json = serde_json::to_value(bomb).unwrap();
    assert_eq!(
        json["error"],
        message.as_str(),
        "the report's JSON keeps the message"
    );
    assert_eq!(json["error_kind"], "too_large");
    // Only the ordinary file's bytes are in the store.
    let stored: Vec<_> = blobs.list().try_collect().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].hash, Some(ContentHash::of(b"an ordinary file")));
}

/// Hashes of the assets the catalog holds now.
fn catalog_hashes(catalog: &dyn Catalog) -> BTreeSet<String> {
    catalog
        .list_assets(&AssetQuery {
            limit: 100_000,
            ..AssetQuery::default()
        })
        .unwrap()
        .into_iter()
        .map(|a| a.hash.to_string())
        .collect()
}

/// The catalog learns of an asset only once its blob is written and made durable: a blob is
/// durable once a sync that began after it was in the store's folder has ended (small blobs
/// are written straight to the folder, large ones through the object store). When each sync
/// begins and ends (and at the end), every asset the catalog holds must have a durable blob.
/// Committing before syncing, during the sync, or writing a blob after its row, fails it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blobs_are_written_and_synced_before_the_catalog_commits() {
    use aperture_blob::SyncPhase;
    let dir = tempfile::tempdir().unwrap();
    let mut sizes: Vec<usize> = (0..40).map(|i| 100 + i * 37).collect();
    sizes.extend([3 * PART + 5, 5 * PART]);
    write_files(&dir.path().join("in"), &sizes);
    let catalog = catalog();
    let durable = Arc::new(std::sync::Mutex::new(BTreeSet::<String>::new()));
    let broken = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let check = {
        let (catalog, durable, broken) = (catalog.clone(), durable.clone(), broken.clone());
        move |when: &str| {
            let durable = durable.lock().unwrap();
            for hash in catalog_hashes(catalog.as_ref()) {
                if !durable.contains(&hash) {
                    broken
                        .lock()
                        .unwrap()
                        .push(format!("{when}: {hash} committed unsynced"));
                }
            }
        }
    };
    let observer = {
        let (durable, check) = (durable.clone(), check.clone());
        let blobs = dir.path().join("store/blobs");
        // The blobs in the folder when the running sync began.
        let began = std::sync::Mutex::new(BTreeSet::new());
        move |phase: SyncPhase| {
            check(&format!("{phase:?}"));
            match phase {
                SyncPhase::Begins => {
                    // A file still being written is named `<blob>#<digits>`.
                    *began.lock().unwrap() = files_under(&blobs)
                        .iter()
                        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
                        .filter(|name| !name.contains('#'))
                        .collect();
                }
                SyncPhase::Ended => {
                    let seen = std::mem::take(&mut *began.lock().unwrap());
                    durable.lock().unwrap().extend(seen);
                }
            }
        }
    };
    let store = local_store(&dir.path().join("store"))
        .await
        .with_part_size(PART)
        .with_sync_observer(Arc::new(observer));
    let report = ingest(store, &catalog, &dir.path().join("in")).await;
    assert_eq!(report.totals.stored, sizes.len() as u64, "{report:?}");
    check("the end");
    let broken = broken.lock().unwrap();
    assert!(broken.is_empty(), "{broken:?}");
    assert_eq!(durable.lock().unwrap().len(), sizes.len());
}
