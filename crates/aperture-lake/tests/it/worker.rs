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

static QUICK: aperture_core::AnalyzerSpec = aperture_core::AnalyzerSpec {
    name: "quick",
    version: "1",
    kinds: &[MediaKind::Document],
    priority: 0,
    reads: &[],
    produces: &[],
};

static SLOW: aperture_core::AnalyzerSpec = aperture_core::AnalyzerSpec {
    name: "slow",
    version: "1",
    kinds: &[MediaKind::Document],
    priority: 10,
    reads: &[],
    produces: &[],
};

/// Answers at once, with nothing found.
struct Quick;

impl aperture_analyze::Analyzer for Quick {
    fn spec(&self) -> &'static aperture_core::AnalyzerSpec {
        &QUICK
    }
    fn version(&self) -> String {
        "1".into()
    }
    fn analyze(
        &self,
        _: &aperture_analyze::Input<'_>,
    ) -> Result<aperture_analyze::Output, aperture_analyze::Error> {
        Ok(aperture_analyze::Output::default())
    }
}

/// Finishes only once every quick job is recorded (or gives up after a while, failing).
struct Slow {
    catalog: Arc<dyn Backend>,
    quick_jobs: u64,
}

impl aperture_analyze::Analyzer for Slow {
    fn spec(&self) -> &'static aperture_core::AnalyzerSpec {
        &SLOW
    }
    fn version(&self) -> String {
        "1".into()
    }
    fn analyze(
        &self,
        _: &aperture_analyze::Input<'_>,
    ) -> Result<aperture_analyze::Output, aperture_analyze::Error> {
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            let done = self
                .catalog
                .job_counts()
                .unwrap()
                .into_iter()
                .find(|(name, state, _)| name == "quick" && *state == JobState::Succeeded)
                .map_or(0, |(_, _, n)| n);
            if done == self.quick_jobs {
                return Ok(aperture_analyze::Output::default());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(aperture_analyze::Error::BadInput {
            reason: "the quick jobs waited for this one".into(),
        })
    }
}

/// A long job holds only its own slot: with two slots, the quick jobs of 200 assets run and
/// are recorded beside it (in the old way of claiming a slot's worth at a time and waiting
/// for all of them, they would wait for it, and it for them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_job_holds_one_slot_while_quick_ones_run_beside_it() {
    let blobs = BlobStore::open_url("memory://", []).unwrap();
    let catalog: Arc<dyn Backend> = Arc::new(SqliteCatalog::open_in_memory().unwrap());
    let collection = catalog.ensure_collection("c").unwrap().id;
    let assets: Vec<NewAsset> = (0..200)
        .map(|i| {
            let bytes = Bytes::from(format!("note {i}\n"));
            NewAsset {
                collection,
                hash: ContentHash::of(&bytes),
                size: bytes.len() as u64,
                kind: MediaKind::Document,
                mime: "text/plain".into(),
                metadata: MediaMetadata::default(),
                source: NewSource {
                    path_bytes: format!("/in/{i}.txt").into_bytes(),
                    path: format!("/in/{i}.txt"),
                    name: format!("{i}.txt"),
                    file_size: bytes.len() as u64,
                    modified_ns: None,
                },
                generation_seen: 0,
                // One slow job, for the first asset; a quick one for every asset.
                jobs: if i == 0 {
                    vec![("slow".into(), 10), ("quick".into(), 0)]
                } else {
                    vec![("quick".into(), 0)]
                },
            }
        })
        .collect();
    for i in 0..200 {
        let bytes = Bytes::from(format!("note {i}\n"));
        blobs
            .publish(blobs.stage_bytes(bytes).await.unwrap())
            .await
            .unwrap();
    }
    catalog.record(&assets).unwrap();
    let slow = Slow {
        catalog: catalog.clone(),
        quick_jobs: 200,
    };
    let worker = Worker::new(
        blobs,
        catalog.clone(),
        vec![
            Arc::new(slow) as Arc<dyn aperture_analyze::Analyzer>,
            Arc::new(Quick),
        ],
    )
    .with_parallelism(2);
    let report = worker.drain(&|_| {}).await.unwrap();
    assert_eq!((report.succeeded, report.failed), (201, 0), "{report:?}");
}

static GAUGE: aperture_core::AnalyzerSpec = aperture_core::AnalyzerSpec {
    name: "gauge",
    version: "1",
    kinds: &[MediaKind::Document],
    priority: 0,
    reads: &[],
    produces: &[],
};

/// Notes how many of its jobs run at once, at most.
#[derive(Default)]
struct Gauge {
    now: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

impl aperture_analyze::Analyzer for Gauge {
    fn spec(&self) -> &'static aperture_core::AnalyzerSpec {
        &GAUGE
    }
    fn version(&self) -> String {
        "1".into()
    }
    fn analyze(
        &self,
        _: &aperture_analyze::Input<'_>,
    ) -> Result<aperture_analyze::Output, aperture_analyze::Error> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.now.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        self.now.fetch_sub(1, SeqCst);
        Ok(aperture_analyze::Output::default())
    }
}

/// `[worker] concurrency`: an analyzer limited to one job at a time never runs two, while
/// the same worker without the limit does run several at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyzer_runs_no_more_jobs_at_once_than_its_limit() {
    for limit in [Some(1), None] {
        let blobs = BlobStore::open_url("memory://", []).unwrap();
        let catalog: Arc<dyn Backend> = Arc::new(SqliteCatalog::open_in_memory().unwrap());
        let collection = catalog.ensure_collection("c").unwrap().id;
        let mut assets = Vec::new();
        for i in 0..12 {
            let bytes = Bytes::from(format!("gauge {i}\n"));
            blobs
                .publish(blobs.stage_bytes(bytes.clone()).await.unwrap())
                .await
                .unwrap();
            assets.push(NewAsset {
                collection,
                hash: ContentHash::of(&bytes),
                size: bytes.len() as u64,
                kind: MediaKind::Document,
                mime: "text/plain".into(),
                metadata: MediaMetadata::default(),
                source: NewSource {
                    path_bytes: format!("/g/{i}").into_bytes(),
                    path: format!("/g/{i}"),
                    name: format!("{i}"),
                    file_size: bytes.len() as u64,
                    modified_ns: None,
                },
                generation_seen: 0,
                jobs: vec![("gauge".into(), 0)],
            });
        }
        catalog.record(&assets).unwrap();
        let gauge = Arc::new(Gauge::default());
        let limits = limit
            .map(|n| [("gauge".to_owned(), n)].into_iter().collect())
            .unwrap_or_default();
        let worker = Worker::new(
            blobs,
            catalog,
            vec![gauge.clone() as Arc<dyn aperture_analyze::Analyzer>],
        )
        .with_parallelism(4)
        .with_limits(limits);
        let report = worker.drain(&|_| {}).await.unwrap();
        assert_eq!(report.succeeded, 12, "{report:?}");
        let most = gauge.most.load(std::sync::atomic::Ordering::SeqCst);
        match limit {
            Some(n) => assert_eq!(most, n, "the limit held"),
            None => assert!(most > 1, "without a limit, jobs run side by side: {most}"),
        }
    }
}
