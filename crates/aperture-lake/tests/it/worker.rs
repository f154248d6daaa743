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

/// A fresh in-memory lake holding `count` small text documents, each with the jobs `jobs(i)`
/// names (analyzer, priority).
async fn documents(
    count: usize,
    jobs: impl Fn(usize) -> Vec<(String, i32)>,
) -> (BlobStore, Arc<dyn Backend>) {
    let blobs = BlobStore::open_url("memory://", []).unwrap();
    let catalog: Arc<dyn Backend> = Arc::new(SqliteCatalog::open_in_memory().unwrap());
    let collection = catalog.ensure_collection("c").unwrap().id;
    let mut assets = Vec::new();
    for i in 0..count {
        let bytes = Bytes::from(format!("note {i}\n"));
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
                path_bytes: format!("/in/{i}.txt").into_bytes(),
                path: format!("/in/{i}.txt"),
                name: format!("{i}.txt"),
                file_size: bytes.len() as u64,
                modified_ns: None,
            },
            generation_seen: 0,
            jobs: jobs(i),
        });
    }
    catalog.record(&assets).unwrap();
    (blobs, catalog)
}

type Run = Box<
    dyn Fn(
            &aperture_analyze::Input<'_>,
        ) -> Result<aperture_analyze::Output, aperture_analyze::Error>
        + Send
        + Sync,
>;

/// A test analyzer of documents: its name and priority, and what a job does.
struct Stub {
    spec: &'static aperture_core::AnalyzerSpec,
    run: Run,
}

impl Stub {
    fn analyzer(
        name: &'static str,
        priority: i32,
        run: Run,
    ) -> Arc<dyn aperture_analyze::Analyzer> {
        Self::reading(name, priority, &[], run)
    }

    /// One that reads the insights of the analyzers `reads`.
    fn reading(
        name: &'static str,
        priority: i32,
        reads: &'static [&'static str],
        run: Run,
    ) -> Arc<dyn aperture_analyze::Analyzer> {
        let spec = Box::leak(Box::new(aperture_core::AnalyzerSpec {
            name,
            version: "1",
            kinds: &[MediaKind::Document],
            priority,
            reads,
            produces: &[],
        }));
        Arc::new(Stub { spec, run })
    }
}

impl aperture_analyze::Analyzer for Stub {
    fn spec(&self) -> &'static aperture_core::AnalyzerSpec {
        self.spec
    }
    fn version(&self) -> String {
        "1".into()
    }
    fn analyze(
        &self,
        input: &aperture_analyze::Input<'_>,
    ) -> Result<aperture_analyze::Output, aperture_analyze::Error> {
        (self.run)(input)
    }
}

/// Notes how many of its jobs run at once, at most; each takes 20 ms.
#[derive(Default)]
struct Gauge {
    now: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

impl Gauge {
    fn analyzer(self: &Arc<Self>) -> Arc<dyn aperture_analyze::Analyzer> {
        let gauge = self.clone();
        Stub::analyzer(
            "gauge",
            0,
            Box::new(move |_| {
                use std::sync::atomic::Ordering::SeqCst;
                let now = gauge.now.fetch_add(1, SeqCst) + 1;
                gauge.most.fetch_max(now, SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                gauge.now.fetch_sub(1, SeqCst);
                Ok(aperture_analyze::Output::default())
            }),
        )
    }
}

/// A long job holds only its own slot: with two slots, the quick jobs of 200 assets run and
/// are recorded beside it (in the old way of claiming a slot's worth at a time and waiting
/// for all of them, they would wait for it, and it for them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_job_holds_one_slot_while_quick_ones_run_beside_it() {
    // One slow job, for the first asset; a quick one for every asset.
    let (blobs, catalog) = documents(200, |i| {
        let mut jobs = vec![("quick".to_owned(), 0)];
        if i == 0 {
            jobs.push(("slow".to_owned(), 10));
        }
        jobs
    })
    .await;
    // The slow job finishes only once every quick job is recorded (or gives up, failing).
    let counts = catalog.clone();
    let slow = Stub::analyzer(
        "slow",
        10,
        Box::new(move |_| {
            let started = std::time::Instant::now();
            while started.elapsed() < Duration::from_secs(30) {
                let done = counts
                    .job_counts()
                    .unwrap()
                    .into_iter()
                    .find(|(name, state, _)| name == "quick" && *state == JobState::Succeeded)
                    .map_or(0, |(_, _, n)| n);
                if done == 200 {
                    return Ok(aperture_analyze::Output::default());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(aperture_analyze::Error::BadInput {
                reason: "the quick jobs waited for this one".into(),
            })
        }),
    );
    let quick = Stub::analyzer("quick", 0, Box::new(|_| Ok(Default::default())));
    let worker = Worker::new(blobs, catalog.clone(), vec![slow, quick]).with_parallelism(2);
    let report = worker.drain(&|_| {}).await.unwrap();
    assert_eq!((report.succeeded, report.failed), (201, 0), "{report:?}");
}

/// `[worker] concurrency`: an analyzer limited to one job at a time never runs two, while
/// the same worker without the limit does run several at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyzer_runs_no_more_jobs_at_once_than_its_limit() {
    for limit in [Some(1), None] {
        let (blobs, catalog) = documents(12, |_| vec![("gauge".to_owned(), 0)]).await;
        let gauge = Arc::new(Gauge::default());
        let limits = limit
            .map(|n| [("gauge".to_owned(), n)].into_iter().collect())
            .unwrap_or_default();
        let worker = Worker::new(blobs, catalog, vec![gauge.analyzer()])
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

/// A worker told to stop gives back the jobs it claimed and had not started: at most the one
/// it was running stays leased (until its lease runs out), the rest are queued for others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_gives_back_what_it_did_not_start() {
    let (blobs, catalog) = documents(40, |_| vec![("gauge".to_owned(), 0)]).await;
    let worker = Worker::new(
        blobs,
        catalog.clone(),
        vec![Arc::new(Gauge::default()).analyzer()],
    )
    .with_parallelism(1);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let claimed_ahead = {
        let catalog = catalog.clone();
        async move {
            // Until the worker holds more than the job it runs, then stop it.
            loop {
                let running = catalog
                    .state_counts()
                    .unwrap()
                    .into_iter()
                    .find(|(state, _)| *state == JobState::Running)
                    .map_or(0, |(_, n)| n);
                if running > 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let _ = tx.send(());
        }
    };
    let stop = async move {
        let _ = rx.await;
    };
    let (report, ()) = tokio::join!(worker.run(stop, &|_| {}), claimed_ahead);
    let report = report.unwrap();
    let counts: std::collections::BTreeMap<JobState, u64> =
        catalog.state_counts().unwrap().into_iter().collect();
    let running = counts.get(&JobState::Running).copied().unwrap_or(0);
    assert!(running <= 1, "leased and not started: {counts:?}");
    assert_eq!(
        counts.get(&JobState::Queued).copied().unwrap_or(0)
            + counts.get(&JobState::Succeeded).copied().unwrap_or(0)
            + running,
        40,
        "{counts:?} {report:?}"
    );
}

/// A job that reads another job of the same asset runs once, after it, though both are
/// claimed together and the first one's result queues the reader again: never on old
/// results, never twice, never left leased and unrun.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_runs_once_after_what_it_reads_though_claimed_together() {
    let (blobs, catalog) = documents(60, |_| {
        vec![("base".to_owned(), 10), ("reader".to_owned(), 0)]
    })
    .await;
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    let base = Stub::analyzer("base", 10, Box::new(|_| Ok(Default::default())));
    let reader = Stub::reading(
        "reader",
        0,
        &["base"],
        Box::new(move |_| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Default::default())
        }),
    );
    // A reader left leased and unrun would hold the drain for its whole lease.
    let worker = Worker::new(blobs, catalog.clone(), vec![base, reader])
        .with_parallelism(2)
        .with_lease(Duration::from_secs(120));
    let report = tokio::time::timeout(Duration::from_secs(60), worker.drain(&|_| {}))
        .await
        .expect("a job was left leased and unrun")
        .unwrap();
    assert_eq!(
        (report.succeeded, report.lost_leases),
        (120, 0),
        "{report:?}"
    );
    assert_eq!(
        runs.load(std::sync::atomic::Ordering::SeqCst),
        60,
        "each reader once"
    );
    let counts: std::collections::BTreeMap<JobState, u64> =
        catalog.state_counts().unwrap().into_iter().collect();
    assert_eq!(counts.get(&JobState::Succeeded), Some(&120), "{counts:?}");
}

/// A classifier upgrade re-runs OCR only on the pictures whose vehicles it sees otherwise:
/// OCR reads from the labels only whether a picture shows a vehicle (to leave plates out).
/// An OCR job that failed keeps older results, so it runs again whatever the labels say.
#[tokio::test]
async fn a_new_classifier_reruns_ocr_only_where_the_vehicles_changed() {
    use std::sync::atomic::Ordering::SeqCst;
    const SPORTS_CAR: u32 = 817;
    const GOLDFISH: u32 = 1;
    let (blobs, catalog) = documents(6, |_| {
        vec![("labels".to_owned(), 10), ("ocr".to_owned(), 0)]
    })
    .await;
    // An image classifier stand-in: every asset gets one label of the class `class` holds,
    // with a confidence that changes at every run (as a new model's would).
    let class = Arc::new(std::sync::atomic::AtomicU32::new(SPORTS_CAR));
    let labels_runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let (now, runs) = (class.clone(), labels_runs.clone());
    let labels = Stub::analyzer(
        "labels",
        10,
        Box::new(move |input| {
            let run = runs.fetch_add(1, SeqCst);
            let label = aperture_core::value::Label {
                name: "a class".into(),
                class: now.load(SeqCst),
                rank: 1,
                taxonomy: "imagenet-1k".into(),
            };
            Ok(aperture_analyze::Output {
                insights: vec![aperture_core::Insight {
                    asset: input.asset.id,
                    analyzer: "labels".into(),
                    analyzer_version: "1".into(),
                    model: None,
                    model_version: None,
                    value: label.into(),
                    confidence: Some(0.5 + run as f32 / 1e4),
                    language: None,
                    place: aperture_core::Place::Whole,
                    created_at: aperture_core::UnixMillis::now(),
                }],
                ..Default::default()
            })
        }),
    );
    let ocr_runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ocr_fails = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (counted, fails) = (ocr_runs.clone(), ocr_fails.clone());
    let ocr = Stub::reading(
        "ocr",
        0,
        &["labels"],
        Box::new(move |_| {
            counted.fetch_add(1, SeqCst);
            if fails.load(SeqCst) {
                return Err(aperture_analyze::Error::BadInput {
                    reason: "unreadable".into(),
                });
            }
            Ok(Default::default())
        }),
    );
    let worker = Worker::new(blobs, catalog.clone(), vec![labels, ocr]);
    // Labels of `class_now` stored as version `version`, with OCR failing or not: OCR's runs
    // so far and how many failed this time.
    let upgrade = |version: Option<&'static str>, class_now: u32, fail: bool| {
        let (worker, catalog, class) = (&worker, &catalog, &class);
        let (ocr_runs, ocr_fails) = (&ocr_runs, &ocr_fails);
        async move {
            class.store(class_now, SeqCst);
            ocr_fails.store(fail, SeqCst);
            if let Some(version) = version {
                assert_eq!(catalog.requeue_stale("labels", version).unwrap(), 6);
            }
            let report = worker.drain(&|_| {}).await.unwrap();
            (ocr_runs.load(SeqCst), report.failed)
        }
    };
    assert_eq!(
        upgrade(None, SPORTS_CAR, false).await,
        (6, 0),
        "each read once"
    );
    // Upgraded: other confidences, the same vehicles. OCR's results hold.
    assert_eq!(upgrade(Some("2"), SPORTS_CAR, false).await, (6, 0));
    assert_eq!(labels_runs.load(SeqCst), 12);
    // No vehicle any more: every picture is read again.
    assert_eq!(upgrade(Some("3"), GOLDFISH, false).await, (12, 0));
    // Vehicles again, and OCR fails: its results are the goldfish's.
    assert_eq!(upgrade(Some("4"), SPORTS_CAR, true).await, (18, 6));
    // The same vehicles as the last labels, but not as those OCR's results came from.
    assert_eq!(upgrade(Some("5"), SPORTS_CAR, false).await, (24, 0));
    assert_eq!(upgrade(Some("6"), SPORTS_CAR, false).await, (24, 0));
}
