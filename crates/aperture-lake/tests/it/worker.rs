//! The worker against a real (in-memory SQLite) catalog and blob store.

use std::sync::Arc;
use std::time::Duration;

use aperture_analyze::builtin;
use aperture_blob::BlobStore;
use aperture_catalog::{Backend, JobState, NewAsset, NewSource, Outcome, Recorded, SqliteCatalog};
use aperture_core::{ContentHash, MediaKind, MediaMetadata};
use aperture_lake::Worker;
use bytes::Bytes;

/// A worker without the embedding model still queues the embedding again when the text it
/// reads changes: workers with other models installed share the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_requeues_readers_it_does_not_run() {
    let blobs = BlobStore::open_url("memory://", []).unwrap();
    let catalog: Arc<dyn Backend> = Arc::new(SqliteCatalog::open_in_memory().unwrap());
    let bytes = Bytes::from_static(b"Minutes of the meeting: the budget was approved.\n");
    let hash = ContentHash::of(&bytes);
    blobs
        .publish(blobs.stage_bytes(bytes.clone()).await.unwrap())
        .await
        .unwrap();
    let collection = catalog.ensure_collection("c").unwrap().id;
    let recorded = catalog
        .record(&[NewAsset {
            collection,
            hash,
            size: bytes.len() as u64,
            kind: MediaKind::Document,
            mime: "text/plain".into(),
            metadata: MediaMetadata::default(),
            source: NewSource {
                path_bytes: b"/in/minutes.txt".to_vec(),
                path: "/in/minutes.txt".into(),
                name: "minutes.txt".into(),
                file_size: bytes.len() as u64,
                modified_ns: None,
            },
            generation_seen: 0,
            jobs: vec![("text".into(), 60), ("embedding".into(), -10)],
        }])
        .unwrap();
    let Recorded::Created(id) = recorded[0] else {
        panic!("{recorded:?}");
    };

    // A worker elsewhere, with the model, embedded the asset before its text was read.
    let lease = Duration::from_secs(60);
    let early = catalog
        .claim("elsewhere", &["embedding".into()], 1, lease)
        .unwrap()
        .remove(0);
    let done = Outcome::Succeeded {
        version: "1".into(),
        insights: Vec::new(),
        requeue: Vec::new(),
    };
    assert!(catalog.finish(early.id, "elsewhere", &done).unwrap());

    // This worker has no models: it runs `text`, which the embedding reads.
    let worker = Worker::new(blobs, catalog.clone(), builtin());
    let report = worker.drain(&|_| {}).await.unwrap();
    assert_eq!(report.succeeded, 1, "{report:?}");
    let state = |analyzer: &str| {
        catalog
            .jobs_of(id)
            .unwrap()
            .into_iter()
            .find(|j| j.analyzer == analyzer)
            .unwrap()
            .state
    };
    assert_eq!(state("text"), JobState::Succeeded);
    assert_eq!(
        state("embedding"),
        JobState::Queued,
        "queued again for a worker that has the model"
    );
}
