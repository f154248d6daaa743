//! A long video analysed in parts by several workers, one of which dies.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aperture_analyze::video::{Video, VideoOptions};
use aperture_analyze::{Analyzer, Input};
use aperture_blob::BlobStore;
use aperture_catalog::{Backend, JobState, NewAsset, NewSource, Recorded, SqliteCatalog};
use aperture_core::{ContentHash, InsightValue, MediaKind, Place};
use aperture_lake::Worker;
use aperture_media::fixtures::ffmpeg;

/// 25 fps, 12 s: a test pattern (0–3 s), a cut to a Mandelbrot zoom (3–8 s), a cut to another
/// moving pattern (8–12 s). With 5-second parts, the second and third shots run across the
/// edges at 5 and 10 s.
fn three_shots(dir: &Path) -> std::path::PathBuf {
    ffmpeg(
        dir,
        &[
            "-filter_complex",
            "testsrc2=s=320x240:r=25:d=3,format=yuv420p,setsar=1[a];\
             mandelbrot=s=320x240:r=25,trim=duration=5,setpts=PTS-STARTPTS,format=yuv420p,\
             setsar=1[b];\
             testsrc=s=320x240:r=25:d=4,format=yuv420p,setsar=1[c];\
             [a][b][c]concat=n=3:v=1:a=0[out]",
            "-map",
            "[out]",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
        ],
        "three.mp4",
    )
}

/// The shots stored for the asset: (start, end) in ms.
fn shots(insights: &[aperture_core::Insight]) -> Vec<(u64, u64)> {
    insights
        .iter()
        .filter_map(|i| match (&i.value, i.place) {
            (
                InsightValue::Shot(_),
                Place::Time {
                    start_ms, end_ms, ..
                },
            ) => Some((start_ms, end_ms)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_video_runs_in_parts_on_several_workers_and_a_dead_one_loses_only_its_part() {
    let dir = tempfile::tempdir().unwrap();
    let path = three_shots(dir.path());
    let bytes = bytes::Bytes::from(std::fs::read(&path).unwrap());
    let probe = aperture_media::probe_file(&path, &Default::default()).unwrap();
    let blobs = BlobStore::open_url("memory://", []).unwrap();
    blobs
        .publish(blobs.stage_bytes(bytes.clone()).await.unwrap())
        .await
        .unwrap();
    let catalog: Arc<dyn Backend> = Arc::new(SqliteCatalog::open_in_memory().unwrap());
    let collection = catalog.ensure_collection("c").unwrap().id;
    let recorded = catalog
        .record(&[NewAsset {
            collection,
            hash: ContentHash::of(&bytes),
            size: bytes.len() as u64,
            kind: MediaKind::Video,
            mime: probe.mime.clone(),
            metadata: probe.metadata.clone(),
            source: NewSource {
                path_bytes: b"/in/three.mp4".to_vec(),
                path: "/in/three.mp4".into(),
                name: "three.mp4".into(),
                file_size: bytes.len() as u64,
                modified_ns: None,
            },
            generation_seen: 0,
            jobs: vec![("video".into(), 120)],
        }])
        .unwrap();
    let Recorded::Created(id) = recorded[0] else {
        panic!("{recorded:?}");
    };
    let video = Arc::new(Video {
        options: VideoOptions {
            chunk: Duration::from_secs(5),
            ..VideoOptions::default()
        },
    });
    let worker = |n: usize| {
        Worker::new(
            blobs.clone(),
            catalog.clone(),
            vec![video.clone() as Arc<dyn Analyzer>],
        )
        .with_parallelism(1)
        .with_lease(Duration::from_secs(60))
        .with_id(format!("worker-{n}"))
    };
    let (one, two) = (worker(1), worker(2));

    // The first claim splits the video: three parts queued, the job waiting for them.
    let mut first = Default::default();
    assert_eq!(one.step(&mut first).await.unwrap(), 1);
    let jobs = catalog.jobs_of(id).unwrap();
    assert_eq!(jobs.len(), 4, "{jobs:?}");
    assert_eq!((jobs[0].state, jobs[0].parts), (JobState::Waiting, 3));
    // A worker takes the first part and dies with it.
    let doomed = catalog
        .claim("doomed", &["video".into()], 1, Duration::from_millis(300))
        .unwrap();
    assert_eq!(doomed[0].part.map(|p| p.index), Some(1));

    // Two workers take a part each and run them at once.
    let (mut a, mut b) = (Default::default(), Default::default());
    let (ran_a, ran_b) = tokio::join!(one.step(&mut a), two.step(&mut b));
    assert_eq!((ran_a.unwrap(), ran_b.unwrap()), (1, 1));
    // The dead worker's part runs once its lease runs out, and then the join.
    let (more_a, more_b) = tokio::join!(one.drain(&|_| {}), two.drain(&|_| {}));
    let (more_a, more_b) = (more_a.unwrap(), more_b.unwrap());
    let runs = |r: &aperture_lake::WorkerReport| r.analyzers.get("video").map_or(0, |t| t.jobs);
    assert_eq!(
        1 + runs(&a) + runs(&b) + runs(&more_a) + runs(&more_b),
        1 + 3 + 1,
        "the split, each part once, the join: {a:?} {b:?} {more_a:?} {more_b:?}"
    );
    let (a, b) = (more_a, more_b);
    assert_eq!(a.failed + b.failed + a.lost_leases + b.lost_leases, 0);
    let jobs = catalog.jobs_of(id).unwrap();
    assert_eq!(jobs.len(), 1, "the parts go once joined: {jobs:?}");
    assert_eq!((jobs[0].state, jobs[0].parts), (JobState::Succeeded, 0));

    // One timeline, as one pass over the whole video finds it.
    let stored = shots(&catalog.insights(id).unwrap());
    let asset = catalog.asset(id).unwrap();
    let whole = Video::default()
        .analyze(&Input {
            asset: &asset,
            path: &path,
            insights: &[],
            frames: &[],
            suppress_plates: true,
        })
        .unwrap();
    let expected = shots(&whole.insights);
    assert_eq!(stored.len(), 3, "{stored:?}");
    assert_eq!(
        stored.len(),
        expected.len(),
        "{stored:?} against {expected:?}"
    );
    for (s, e) in stored.iter().zip(&expected) {
        assert!(
            s.0.abs_diff(e.0) <= 40 && s.1.abs_diff(e.1) <= 40,
            "{stored:?} against {expected:?}"
        );
    }
    assert!(stored[1].0.abs_diff(3000) <= 80 && stored[2].0.abs_diff(8000) <= 80);
    // Each shot's keyframe and the storyboard are stored.
    for n in 0..3 {
        let name = aperture_analyze::video::keyframe_name(n);
        let jpeg = blobs.get_derived(id, &name).await.unwrap();
        assert!(image::load_from_memory(&jpeg).is_ok(), "{name}");
    }
    assert!(blobs.get_derived(id, "storyboard.jpg").await.is_ok());
}
