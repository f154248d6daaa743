//! Conformance: the job queue (order, leases, retries, requeues) and the change feed.

use super::*;
use std::time::Duration;

use crate::jobs::{JobQueue, MAX_ABANDONED_CLAIMS, MAX_ATTEMPTS, Part};

fn jobs_for(asset: AssetId, analyzers: &[(&str, i32)]) -> Vec<NewJob> {
    analyzers
        .iter()
        .map(|(name, priority)| NewJob {
            asset,
            analyzer: (*name).to_owned(),
            priority: *priority,
        })
        .collect()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

const LEASE: Duration = Duration::from_secs(60);

fn succeeded(asset: AssetId, analyzer: &str, version: &str, label: &str) -> Outcome {
    let mut i = insight(asset, Place::Whole);
    i.analyzer = analyzer.to_owned();
    i.analyzer_version = version.to_owned();
    i.value = self::label(label);
    Outcome::Succeeded {
        version: version.to_owned(),
        insights: vec![i],
        requeue: Vec::new(),
    }
}

/// Queuing twice adds nothing, jobs for missing assets are not queued, and claims go by
/// priority.
pub fn queue_is_idempotent_and_ordered<C: Catalog + JobQueue>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let a = id_of(record_one(&catalog, &new_asset(c, b"a", "/a")));
    let b = id_of(record_one(&catalog, &new_asset(c, b"b", "/b")));
    let mut all = jobs_for(a, &[("labels", 0), ("thumbnail", 10)]);
    all.extend(jobs_for(b, &[("labels", 0), ("thumbnail", 10)]));
    assert_eq!(catalog.enqueue(&all).unwrap(), 4);
    assert_eq!(
        catalog.enqueue(&all).unwrap(),
        0,
        "queuing twice adds nothing"
    );
    // A job for an asset that does not exist is not queued.
    assert_eq!(
        catalog
            .enqueue(&jobs_for(AssetId::new(), &[("labels", 0)]))
            .unwrap(),
        0
    );

    let both = names(&["labels", "thumbnail"]);
    let first = catalog.claim("w1", &both, 3, LEASE).unwrap();
    let order: Vec<_> = first.iter().map(|j| j.analyzer.as_str()).collect();
    assert_eq!(
        order,
        ["thumbnail", "thumbnail", "labels"],
        "priority first"
    );
    assert!(
        first
            .iter()
            .all(|j| j.state == JobState::Running && j.attempts == 1)
    );
    // Only the analyzers a worker can run.
    assert!(
        catalog
            .claim("w2", &names(&["ocr"]), 10, LEASE)
            .unwrap()
            .is_empty()
    );
    let rest = catalog.claim("w2", &both, 10, LEASE).unwrap();
    assert_eq!(rest.len(), 1);
    assert!(catalog.claim("w3", &both, 10, LEASE).unwrap().is_empty());

    for job in first.iter().chain(&rest) {
        let outcome = succeeded(job.asset, &job.analyzer, "1", "x");
        let worker = if rest.contains(job) { "w2" } else { "w1" };
        assert!(catalog.finish(job.id, worker, &outcome).unwrap());
    }
    assert_eq!(catalog.enqueue(&all).unwrap(), 0);
    assert!(
        catalog.claim("w1", &both, 10, LEASE).unwrap().is_empty(),
        "nothing re-runs"
    );
    let counts = catalog.job_counts().unwrap();
    assert_eq!(
        counts,
        [
            ("labels".to_owned(), JobState::Succeeded, 2),
            ("thumbnail".to_owned(), JobState::Succeeded, 2)
        ]
    );
    assert_eq!(catalog.state_counts().unwrap(), [(JobState::Succeeded, 4)]);
    assert_eq!(
        catalog.asset_count().unwrap(),
        catalog.stats().unwrap().assets
    );
    // Same version: nothing stale. A new version: both labels jobs again.
    assert_eq!(catalog.requeue_stale("labels", "1").unwrap(), 0);
    assert_eq!(catalog.requeue_stale("labels", "2").unwrap(), 2);
    let again = catalog.claim("w1", &both, 10, LEASE).unwrap();
    assert_eq!(again.len(), 2);
    assert!(
        again
            .iter()
            .all(|j| j.analyzer == "labels" && j.attempts == 1)
    );
    // Jobs queued with the asset, in the same transaction as its row.
    let mut with_jobs = new_asset(c, b"e", "/e");
    with_jobs.kind = MediaKind::Image;
    with_jobs.jobs = vec![("thumbnail".into(), 10)];
    let e = id_of(record_one(&catalog, &with_jobs));
    assert_eq!(catalog.jobs_of(e).unwrap()[0].state, JobState::Queued);
    // An analyzer added later: one job per asset of its kinds, once.
    assert_eq!(
        catalog
            .enqueue_missing(&spec("phash", &[MediaKind::Image], 5))
            .unwrap(),
        1
    );
    assert_eq!(
        catalog
            .enqueue_missing(&spec("phash", &[MediaKind::Image], 5))
            .unwrap(),
        0
    );
    assert_eq!(
        catalog
            .enqueue_missing(&spec("text", &[MediaKind::Other], 0))
            .unwrap(),
        2
    );
    assert_eq!(catalog.jobs_of(e).unwrap().len(), 2);

    // Deleting an asset takes its jobs with it.
    catalog.delete_asset(a).unwrap();
    assert!(catalog.jobs_of(a).unwrap().is_empty());
    assert_eq!(catalog.jobs_of(b).unwrap().len(), 3);
}

/// Every change a search index must follow is in the feed, in commit order: a new asset, a new
/// path for it, new insights (added, or a job's results), and its deletion.
pub fn change_feed<C: Catalog + JobQueue>(make: &dyn Fn() -> C) {
    let catalog = make();
    assert_eq!(catalog.last_change().unwrap(), 0);
    let c = catalog.ensure_collection("c").unwrap().id;
    let a = id_of(record_one(&catalog, &new_asset(c, b"a", "/a")));
    let start = catalog.last_change().unwrap();
    assert!(start > 0, "ingest is a change");
    let b = id_of(record_one(&catalog, &new_asset(c, b"b", "/b")));
    assert_eq!(
        record_one(&catalog, &new_asset(c, b"a", "/copy-of-a")),
        Recorded::Duplicate(a)
    );
    catalog.add_insights(&[insight(b, Place::Whole)]).unwrap();
    catalog.enqueue(&jobs_for(a, &[("labels", 0)])).unwrap();
    let job = &catalog.claim("w", &names(&["labels"]), 1, LEASE).unwrap()[0];
    assert!(
        catalog
            .finish(job.id, "w", &succeeded(a, "labels", "1", "cat"))
            .unwrap()
    );
    catalog.delete_asset(b).unwrap();

    let feed = catalog.changes(start, 100).unwrap();
    let assets: Vec<AssetId> = feed.iter().map(|change| change.asset).collect();
    assert_eq!(
        assets,
        [b, a, b, a, b],
        "ingest, new path, insights, job, delete"
    );
    assert!(
        feed.windows(2).all(|w| w[0].seq < w[1].seq),
        "in commit order"
    );
    assert_eq!(catalog.last_change().unwrap(), feed.last().unwrap().seq);
    assert_eq!(
        catalog.changes(start, 2).unwrap(),
        feed[..2],
        "paged by limit"
    );
    assert_eq!(catalog.changes(feed[2].seq, 100).unwrap(), feed[3..]);

    // Pruning forgets what every consumer applied, never what comes after, nor what a slower
    // consumer has yet to apply.
    assert_eq!(catalog.pruned_through().unwrap(), 0);
    assert_eq!(
        catalog.ack_changes("slow", feed[0].seq).unwrap(),
        2,
        "and before"
    );
    assert_eq!(
        catalog.ack_changes("fast", feed[2].seq).unwrap(),
        0,
        "slow holds it"
    );
    assert_eq!(catalog.changes(0, 100).unwrap(), feed[1..]);
    assert_eq!(catalog.pruned_through().unwrap(), feed[0].seq);
    assert_eq!(catalog.ack_changes("slow", feed[2].seq).unwrap(), 2);
    assert_eq!(catalog.changes(0, 100).unwrap(), feed[3..]);
    assert_eq!(catalog.pruned_through().unwrap(), feed[2].seq);
    let last = catalog.last_change().unwrap();
    catalog.ack_changes("fast", last).unwrap();
    catalog.ack_changes("slow", last).unwrap();
    assert!(catalog.changes(0, 100).unwrap().is_empty());
    assert_eq!(
        catalog.last_change().unwrap(),
        last,
        "pruning keeps the position"
    );
    assert_eq!(catalog.pruned_through().unwrap(), last);
    let c2 = id_of(record_one(&catalog, &new_asset(c, b"c", "/c")));
    let after = catalog.changes(last, 100).unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].asset, c2);
    assert!(after[0].seq > last, "numbers are never reused");
}

/// A job's new results replace its old ones (which stay until then) and leave other
/// analyzers' results alone.
pub fn queue_results_replace_old_ones<C: Catalog + JobQueue>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let a = id_of(record_one(&catalog, &new_asset(c, b"a", "/a")));
    let mut other = insight(a, Place::Whole);
    other.analyzer = "ocr".into();
    catalog.add_insights(&[other]).unwrap();
    catalog.enqueue(&jobs_for(a, &[("labels", 0)])).unwrap();
    let job = &catalog.claim("w", &names(&["labels"]), 1, LEASE).unwrap()[0];
    assert!(
        catalog
            .finish(job.id, "w", &succeeded(a, "labels", "1", "old"))
            .unwrap()
    );
    catalog.requeue_stale("labels", "2").unwrap();
    // While the new version runs, the old results are still there.
    let job = &catalog.claim("w", &names(&["labels"]), 1, LEASE).unwrap()[0];
    let labels = |c: &C| -> Vec<InsightValue> {
        c.insights(a)
            .unwrap()
            .into_iter()
            .filter(|i| i.analyzer == "labels")
            .map(|i| i.value)
            .collect()
    };
    assert_eq!(labels(&catalog), [label("old")]);
    assert!(
        catalog
            .finish(job.id, "w", &succeeded(a, "labels", "2", "new"))
            .unwrap()
    );
    assert_eq!(labels(&catalog), [label("new")]);
    assert_eq!(
        catalog.insights(a).unwrap().len(),
        2,
        "other analyzers' results stay"
    );
    let jobs = catalog.jobs_of(a).unwrap();
    assert_eq!(jobs[0].analyzer_version.as_deref(), Some("2"));
}

/// A job whose insights others read queues those others again, in its own transaction; a
/// dependent running on the old insights loses its lease and its result is dropped.
pub fn queue_requeues_dependents<C: Catalog + JobQueue>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let a = id_of(record_one(&catalog, &new_asset(c, b"a", "/a")));
    let b = id_of(record_one(&catalog, &new_asset(c, b"b", "/b")));
    catalog
        .enqueue(&jobs_for(a, &[("labels", 10), ("embedding", 0)]))
        .unwrap();
    catalog.enqueue(&jobs_for(b, &[("embedding", 0)])).unwrap();
    let state = |asset: AssetId, analyzer: &str| {
        let jobs = catalog.jobs_of(asset).unwrap();
        jobs.into_iter()
            .find(|j| j.analyzer == analyzer)
            .map(|j| j.state)
    };

    // The dependent ran first (on no labels) and succeeded.
    let embed = catalog
        .claim("w1", &names(&["embedding"]), 2, LEASE)
        .unwrap();
    assert_eq!(embed.len(), 2);
    for job in &embed {
        let done = succeeded(job.asset, "embedding", "1", "from nothing");
        assert!(catalog.finish(job.id, "w1", &done).unwrap());
    }
    assert_eq!(state(a, "embedding"), Some(JobState::Succeeded));

    // Labels land: the embedding of that asset, and only that one, is queued again.
    let labels = &catalog.claim("w2", &names(&["labels"]), 1, LEASE).unwrap()[0];
    let mut done = succeeded(a, "labels", "1", "cat");
    if let Outcome::Succeeded { requeue, .. } = &mut done {
        requeue.push("embedding".into());
        requeue.push("not-queued-here".into());
    }
    assert!(catalog.finish(labels.id, "w2", &done).unwrap());
    assert_eq!(state(a, "embedding"), Some(JobState::Queued));
    assert_eq!(state(b, "embedding"), Some(JobState::Succeeded));
    assert_eq!(state(a, "not-queued-here"), None, "requeue adds no job");

    // A dependent that is running when its inputs change loses its lease.
    let running = &catalog
        .claim("w1", &names(&["embedding"]), 1, LEASE)
        .unwrap()[0];
    let labels_again = {
        catalog.requeue_stale("labels", "2").unwrap();
        catalog.claim("w2", &names(&["labels"]), 1, LEASE).unwrap()[0].clone()
    };
    let mut done = succeeded(a, "labels", "2", "dog");
    if let Outcome::Succeeded { requeue, .. } = &mut done {
        requeue.push("embedding".into());
    }
    assert!(catalog.finish(labels_again.id, "w2", &done).unwrap());
    let stale = succeeded(a, "embedding", "1", "from cat");
    assert!(
        !catalog.finish(running.id, "w1", &stale).unwrap(),
        "a result computed from replaced insights is dropped"
    );
    assert_eq!(state(a, "embedding"), Some(JobState::Queued));
    let fresh = &catalog
        .claim("w1", &names(&["embedding"]), 1, LEASE)
        .unwrap()[0];
    assert_eq!(
        fresh.attempts, 1,
        "a requeued job starts its attempts afresh"
    );
}

/// A renewed lease keeps a long job with its worker; a job whose workers keep vanishing is
/// failed after [`MAX_ABANDONED_CLAIMS`] claims, with an error that says so.
pub fn queue_renews_leases_and_gives_up_on_abandoned_jobs<C: Catalog + JobQueue>(
    make: &dyn Fn() -> C,
) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let a = id_of(record_one(&catalog, &new_asset(c, b"a", "/a")));
    catalog.enqueue(&jobs_for(a, &[("ocr", 0)])).unwrap();
    let short = Duration::from_millis(30);
    let job = catalog.claim("w1", &names(&["ocr"]), 1, short).unwrap()[0].clone();
    assert!(catalog.renew(job.id, "w1", LEASE).unwrap());
    assert!(
        !catalog.renew(job.id, "w2", LEASE).unwrap(),
        "only the holder renews"
    );
    std::thread::sleep(Duration::from_millis(60));
    assert!(
        catalog
            .claim("w2", &names(&["ocr"]), 1, short)
            .unwrap()
            .is_empty(),
        "a renewed lease has not run out"
    );
    assert!(
        catalog
            .finish(job.id, "w1", &succeeded(a, "ocr", "1", "x"))
            .unwrap()
    );
    assert!(
        !catalog.renew(job.id, "w1", LEASE).unwrap(),
        "a finished job has no lease"
    );

    // Every worker that takes this job vanishes.
    let b = id_of(record_one(&catalog, &new_asset(c, b"b", "/b")));
    catalog.enqueue(&jobs_for(b, &[("ocr", 0)])).unwrap();
    for n in 0..MAX_ABANDONED_CLAIMS {
        let claimed = catalog
            .claim(&format!("doomed{n}"), &names(&["ocr"]), 1, short)
            .unwrap();
        assert_eq!(claimed.len(), 1, "claim {n}");
        std::thread::sleep(Duration::from_millis(40));
    }
    assert!(
        catalog
            .claim("w", &names(&["ocr"]), 1, short)
            .unwrap()
            .is_empty()
    );
    let job = &catalog.jobs_of(b).unwrap()[0];
    assert_eq!(job.state, JobState::Failed);
    assert!(
        job.last_error
            .as_deref()
            .unwrap_or("")
            .contains("worker stopped"),
        "{job:?}"
    );
}

/// A retryable failure waits for its backoff, an unrecoverable one fails at once, and every
/// lease uses up an attempt.
pub fn queue_retries_then_fails<C: Catalog + JobQueue>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let a = id_of(record_one(&catalog, &new_asset(c, b"a", "/a")));
    let b = id_of(record_one(&catalog, &new_asset(c, b"b", "/b")));
    catalog.enqueue(&jobs_for(a, &[("ocr", 0)])).unwrap();
    catalog.enqueue(&jobs_for(b, &[("ocr", 0)])).unwrap();
    let ocr = names(&["ocr"]);
    let jobs = catalog.claim("w", &ocr, 2, LEASE).unwrap();
    let failed = Outcome::Failed {
        error: "timed out".into(),
    };
    assert!(catalog.finish(jobs[0].id, "w", &failed).unwrap());
    let unrecoverable = Outcome::Unrecoverable {
        error: "cannot decode image /x.jpg: truncated".into(),
    };
    assert!(catalog.finish(jobs[1].id, "w", &unrecoverable).unwrap());
    // The retry waits for its backoff.
    assert!(catalog.claim("w", &ocr, 10, LEASE).unwrap().is_empty());
    let due = catalog.next_due(&ocr).unwrap().unwrap();
    assert!(due > UnixMillis::now());
    let states: Vec<_> = catalog
        .jobs_of(a)
        .unwrap()
        .into_iter()
        .chain(catalog.jobs_of(b).unwrap())
        .map(|j| (j.state, j.last_error))
        .collect();
    assert_eq!(
        states,
        [
            (JobState::Queued, Some("timed out".to_owned())),
            (
                JobState::Failed,
                Some("cannot decode image /x.jpg: truncated".to_owned())
            ),
        ]
    );
    // Past the last attempt a retryable failure is final. Attempts are counted at each lease,
    // so leases that run out (a crashing worker) use them up too.
    let d = id_of(record_one(&catalog, &new_asset(c, b"d", "/d")));
    catalog.enqueue(&jobs_for(d, &[("ocr", 0)])).unwrap();
    let mut last = None;
    for n in 1..=MAX_ATTEMPTS {
        std::thread::sleep(Duration::from_millis(3));
        let jobs = catalog.claim("w", &ocr, 1, Duration::ZERO).unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!((jobs[0].asset, jobs[0].attempts), (d, n));
        last = Some(jobs[0].id);
    }
    assert!(catalog.finish(last.unwrap(), "w", &failed).unwrap());
    let job = catalog.jobs_of(d).unwrap().remove(0);
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.last_error.as_deref(), Some("timed out"));
}

/// An expired lease is taken over, and the worker that lost it can no longer finish the job.
pub fn queue_leases_expire<C: Catalog + JobQueue>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let a = id_of(record_one(&catalog, &new_asset(c, b"a", "/a")));
    catalog.enqueue(&jobs_for(a, &[("labels", 0)])).unwrap();
    let labels = names(&["labels"]);
    // A worker takes the job and dies: its lease runs out.
    let dead = catalog.claim("dead", &labels, 1, Duration::ZERO).unwrap();
    assert_eq!(dead.len(), 1);
    std::thread::sleep(Duration::from_millis(5));
    let alive = catalog.claim("alive", &labels, 1, LEASE).unwrap();
    assert_eq!(alive.len(), 1, "an expired lease is taken over");
    assert_eq!(alive[0].id, dead[0].id);
    assert_eq!(alive[0].attempts, 2);
    // The first worker comes back to life: its result is refused, not recorded twice.
    assert!(
        !catalog
            .finish(dead[0].id, "dead", &succeeded(a, "labels", "1", "stale"))
            .unwrap()
    );
    assert!(
        catalog
            .finish(alive[0].id, "alive", &succeeded(a, "labels", "1", "ok"))
            .unwrap()
    );
    assert!(
        !catalog
            .finish(alive[0].id, "alive", &succeeded(a, "labels", "1", "ok"))
            .unwrap()
    );
    let found = catalog.insights(a).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].value, label("ok"));
}

/// Many workers on threads claim from one catalog at once: every job is leased exactly once.
pub fn queue_never_runs_a_job_twice<C: Catalog + JobQueue>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let mut all = Vec::new();
    for i in 0..200u32 {
        let id = id_of(record_one(
            &catalog,
            &new_asset(c, &i.to_le_bytes(), &format!("/{i}")),
        ));
        all.extend(jobs_for(id, &[("labels", 0)]));
    }
    catalog.enqueue(&all).unwrap();
    let labels = names(&["labels"]);
    let claimed: Vec<i64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|w| {
                let (catalog, labels) = (&catalog, &labels);
                s.spawn(move || {
                    let worker = format!("w{w}");
                    let mut mine = Vec::new();
                    loop {
                        let jobs = catalog.claim(&worker, labels, 7, LEASE).unwrap();
                        if jobs.is_empty() {
                            break;
                        }
                        for job in jobs {
                            let outcome = succeeded(job.asset, "labels", "1", "x");
                            assert!(catalog.finish(job.id, &worker, &outcome).unwrap());
                            mine.push(job.id);
                        }
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut sorted = claimed.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), claimed.len(), "no job leased twice");
    assert_eq!(claimed.len(), 200, "no job lost");
}

fn part_done(version: &str, result: &[u8]) -> Outcome {
    Outcome::PartDone {
        version: version.to_owned(),
        result: result.to_vec(),
    }
}

/// A long job splits into parts that several workers hold at once; a worker that dies loses
/// only its part; the last part queues the job again to join the results, which then go.
pub fn queue_splits_long_jobs_into_parts<C: Catalog + JobQueue>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let a = id_of(record_one(&catalog, &new_asset(c, b"a", "/a")));
    let video = names(&["video"]);
    catalog.enqueue(&jobs_for(a, &[("video", 7)])).unwrap();
    let job = catalog.claim("w1", &video, 1, LEASE).unwrap()[0].clone();
    assert_eq!((job.part, job.parts), (None, 0));
    let split = Outcome::Split {
        parts: vec![(0, Some(5_000)), (5_000, Some(10_000)), (10_000, None)],
    };
    assert!(
        !catalog.finish(job.id, "w2", &split).unwrap(),
        "only the holder splits"
    );
    // Stretches with a gap, an overlap, not from 0, open-ended before the last, or none.
    for bad in [
        vec![(0, Some(5_000)), (6_000, None)],
        vec![(0, Some(5_000)), (4_000, None)],
        vec![(1_000, Some(5_000)), (5_000, None)],
        vec![(0, None), (5_000, None)],
        vec![(0, Some(0)), (0, None)],
        vec![],
    ] {
        let refused = catalog.finish(job.id, "w1", &Outcome::Split { parts: bad.clone() });
        assert!(
            matches!(refused, Err(Error::InvalidInput { .. })),
            "{bad:?}: {refused:?}"
        );
    }
    assert_eq!(catalog.jobs_of(a).unwrap().len(), 1, "nothing written");
    assert!(catalog.finish(job.id, "w1", &split).unwrap());
    let jobs = catalog.jobs_of(a).unwrap();
    assert_eq!(jobs.len(), 4, "{jobs:?}");
    assert_eq!((jobs[0].state, jobs[0].parts), (JobState::Waiting, 3));
    assert_eq!(
        jobs[1..]
            .iter()
            .map(|j| (j.state, j.priority, j.part))
            .collect::<Vec<_>>(),
        (0..3)
            .map(|n| (
                JobState::Queued,
                7,
                Some(Part {
                    index: n + 1,
                    count: 3,
                    start_ms: u64::from(n) * 5_000,
                    end_ms: (n < 2).then_some(u64::from(n + 1) * 5_000),
                })
            ))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        catalog.state_counts().unwrap(),
        [(JobState::Queued, 3), (JobState::Waiting, 1)]
    );

    // Three workers hold a part each; the job itself is not runnable while it waits.
    let short = Duration::from_millis(30);
    let one = catalog.claim("w1", &video, 1, LEASE).unwrap();
    let two = catalog.claim("w2", &video, 1, LEASE).unwrap();
    let three = catalog.claim("doomed", &video, 5, short).unwrap();
    assert_eq!(
        [&one, &two, &three].map(|c| c.iter().map(|j| j.part.unwrap().index).collect::<Vec<_>>()),
        [vec![1], vec![2], vec![3]]
    );
    assert!(
        catalog
            .finish(one[0].id, "w1", &part_done("1", b"first"))
            .unwrap()
    );
    assert_eq!(catalog.jobs_of(a).unwrap()[0].state, JobState::Waiting);
    // The third part's worker dies: only its part runs again, elsewhere.
    std::thread::sleep(Duration::from_millis(60));
    let again = catalog.claim("w3", &video, 5, LEASE).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts), (three[0].id, 2));
    assert!(
        !catalog
            .finish(three[0].id, "doomed", &part_done("1", b"late"))
            .unwrap(),
        "a dead worker's part is not kept"
    );
    assert!(
        catalog
            .finish(again[0].id, "w3", &part_done("1", b"third"))
            .unwrap()
    );
    assert!(catalog.part_results(job.id).unwrap().len() == 2);
    assert!(catalog.claim("w1", &video, 5, LEASE).unwrap().is_empty());
    assert!(
        catalog
            .finish(two[0].id, "w2", &part_done("1", b"second"))
            .unwrap()
    );

    // The last part queues the job to join them.
    let join = catalog.claim("w2", &video, 5, LEASE).unwrap();
    assert_eq!(join.len(), 1);
    assert_eq!((join[0].id, join[0].part, join[0].parts), (job.id, None, 3));
    let results = catalog.part_results(job.id).unwrap();
    assert_eq!(
        results
            .iter()
            .map(|r| (r.part.index, r.version.as_str(), &r.result[..]))
            .collect::<Vec<_>>(),
        [
            (1, "1", &b"first"[..]),
            (2, "1", &b"second"[..]),
            (3, "1", &b"third"[..])
        ]
    );
    assert!(
        !catalog
            .finish(one[0].id, "w1", &part_done("1", b"again"))
            .unwrap(),
        "a finished part takes no more outcomes"
    );
    assert!(
        catalog
            .finish(join[0].id, "w2", &part_done("1", b"x"))
            .is_err(),
        "a whole job is no part"
    );
    // The second part came from another version: only it runs again.
    let redo = Outcome::RedoParts { parts: vec![2] };
    assert!(catalog.finish(join[0].id, "w2", &redo).unwrap());
    assert_eq!(catalog.jobs_of(a).unwrap()[0].state, JobState::Waiting);
    assert_eq!(
        catalog
            .part_results(job.id)
            .unwrap()
            .iter()
            .map(|r| r.part.index)
            .collect::<Vec<_>>(),
        [1, 3]
    );
    let again = catalog.claim("w1", &video, 5, LEASE).unwrap();
    assert_eq!(
        again
            .iter()
            .map(|j| j.part.map(|p| p.index))
            .collect::<Vec<_>>(),
        [Some(2)]
    );
    assert!(
        catalog
            .finish(again[0].id, "w1", &part_done("1", b"second"))
            .unwrap()
    );
    let join = catalog.claim("w2", &video, 5, LEASE).unwrap();
    assert_eq!((join[0].id, join[0].parts), (job.id, 3));
    assert_eq!(catalog.part_results(job.id).unwrap().len(), 3);
    assert!(
        catalog
            .finish(join[0].id, "w2", &succeeded(a, "video", "1", "joined"))
            .unwrap()
    );
    let jobs = catalog.jobs_of(a).unwrap();
    assert_eq!(jobs.len(), 1, "the parts go once joined: {jobs:?}");
    assert_eq!((jobs[0].state, jobs[0].parts), (JobState::Succeeded, 0));
    assert!(catalog.part_results(job.id).unwrap().is_empty());
    assert_eq!(catalog.insights(a).unwrap().len(), 1);
}

/// A part that fails for good fails its job, naming the part; the other parts go, a requeue
/// starts over, a part abandoned by every worker fails its job too, and erasing the asset
/// erases its parts' results.
pub fn queue_fails_split_jobs_by_their_parts<C: Catalog + JobQueue>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let video = names(&["video"]);
    let split = |asset: AssetId, worker: &str, lease: Duration| {
        catalog.enqueue(&jobs_for(asset, &[("video", 0)])).unwrap();
        let job = catalog.claim(worker, &video, 1, LEASE).unwrap()[0].clone();
        assert_eq!(job.asset, asset);
        let parts = vec![(0, Some(600_000)), (600_000, None)];
        assert!(
            catalog
                .finish(job.id, worker, &Outcome::Split { parts })
                .unwrap()
        );
        catalog.claim(worker, &video, 1, lease).unwrap()[0].clone()
    };

    let a = id_of(record_one(&catalog, &new_asset(c, b"a", "/a")));
    let first = split(a, "w", LEASE);
    let error = Outcome::Unrecoverable {
        error: "corrupt packets".into(),
    };
    // A failure that may pass is retried as a part.
    assert!(
        catalog
            .finish(
                first.id,
                "w",
                &Outcome::Failed {
                    error: "busy".into()
                }
            )
            .unwrap()
    );
    assert_eq!(catalog.jobs_of(a).unwrap()[0].state, JobState::Waiting);
    let jobs = catalog.jobs_of(a).unwrap();
    assert_eq!(jobs[1].state, JobState::Queued);
    // Take it again past its backoff, by making it due: claim until it comes back.
    let mut retried = None;
    for _ in 0..100 {
        if let Some(job) = catalog
            .claim("w", &video, 5, LEASE)
            .unwrap()
            .into_iter()
            .find(|j| j.id == first.id)
        {
            retried = Some(job);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let retried = retried.expect("the part is retried after its backoff");
    assert!(catalog.finish(retried.id, "w", &error).unwrap());
    let jobs = catalog.jobs_of(a).unwrap();
    assert_eq!(jobs.len(), 1, "the other parts go: {jobs:?}");
    assert_eq!(jobs[0].state, JobState::Failed);
    let why = jobs[0].last_error.clone().unwrap_or_default();
    assert!(
        why.contains("part 1 of 2 (00:00:00–00:10:00)") && why.contains("corrupt packets"),
        "{why}"
    );
    // A requeue starts over.
    assert_eq!(catalog.requeue_stale("video", "2").unwrap(), 1);
    let jobs = catalog.jobs_of(a).unwrap();
    assert_eq!(
        (jobs.len(), jobs[0].state, jobs[0].parts),
        (1, JobState::Queued, 0)
    );
    let rerun = catalog.claim("w", &video, 1, LEASE).unwrap()[0].clone();
    assert_eq!((rerun.asset, rerun.part), (a, None));
    assert!(
        catalog
            .finish(rerun.id, "w", &succeeded(a, "video", "2", "whole"))
            .unwrap()
    );

    // Every worker that takes a part vanishes.
    let b = id_of(record_one(&catalog, &new_asset(c, b"b", "/b")));
    let short = Duration::from_millis(30);
    let part = split(b, "doomed", short);
    for n in 1..MAX_ABANDONED_CLAIMS {
        std::thread::sleep(Duration::from_millis(40));
        let claimed = catalog
            .claim(&format!("doomed{n}"), &video, 1, short)
            .unwrap();
        assert_eq!(claimed[0].id, part.id, "claim {n}");
    }
    std::thread::sleep(Duration::from_millis(40));
    catalog.claim("w", &video, 10, LEASE).unwrap();
    let jobs = catalog.jobs_of(b).unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].state, JobState::Failed);
    assert!(
        jobs[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("part 1 of 2") && e.contains("worker stopped")),
        "{jobs:?}"
    );

    // Erasing an asset erases what its parts found.
    let d = id_of(record_one(&catalog, &new_asset(c, b"d", "/d")));
    let part = split(d, "w", LEASE);
    assert!(
        catalog
            .finish(part.id, "w", &part_done("1", b"what part 1 found"))
            .unwrap()
    );
    assert_eq!(catalog.jobs_of(d).unwrap().len(), 3);
    let parent = catalog.jobs_of(d).unwrap()[0].id;
    assert_eq!(catalog.part_results(parent).unwrap().len(), 1);
    catalog.delete_asset(d).unwrap();
    assert!(catalog.jobs_of(d).unwrap().is_empty());
    assert!(catalog.part_results(parent).unwrap().is_empty());

    // A job whose every worker dies while joining its parts fails, and its parts go.
    let e = id_of(record_one(&catalog, &new_asset(c, b"e", "/e")));
    let first = split(e, "w", LEASE);
    let last = catalog.claim("w", &video, 1, LEASE).unwrap()[0].clone();
    for part in [first, last] {
        assert!(catalog.finish(part.id, "w", &part_done("1", b"r")).unwrap());
    }
    for n in 0..MAX_ABANDONED_CLAIMS {
        let claimed = catalog
            .claim(&format!("joiner{n}"), &video, 1, short)
            .unwrap();
        assert_eq!((claimed[0].asset, claimed[0].parts), (e, 2), "claim {n}");
        std::thread::sleep(Duration::from_millis(40));
    }
    catalog.claim("w", &video, 10, LEASE).unwrap();
    let jobs = catalog.jobs_of(e).unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!((jobs[0].state, jobs[0].parts), (JobState::Failed, 0));
}

/// Workers racing: the last two parts of split jobs finish at the same moment, over and over;
/// every job is queued to join its parts all the same (neither finish may miss the other).
pub fn queue_joins_parts_that_finish_at_once<C: Catalog + JobQueue>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let video = names(&["video"]);
    for round in 0..20u32 {
        let a = id_of(record_one(
            &catalog,
            &new_asset(c, format!("video {round}").as_bytes(), &format!("/{round}")),
        ));
        catalog.enqueue(&jobs_for(a, &[("video", 0)])).unwrap();
        let job = catalog.claim("w", &video, 1, LEASE).unwrap()[0].clone();
        let split = Outcome::Split {
            parts: vec![(0, Some(1_000)), (1_000, None)],
        };
        assert!(catalog.finish(job.id, "w", &split).unwrap());
        let first = catalog.claim("w1", &video, 1, LEASE).unwrap()[0].clone();
        let second = catalog.claim("w2", &video, 1, LEASE).unwrap()[0].clone();
        let start = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            for (part, worker) in [(&first, "w1"), (&second, "w2")] {
                let (catalog, start) = (&catalog, &start);
                s.spawn(move || {
                    start.wait();
                    assert!(
                        catalog
                            .finish(part.id, worker, &part_done("1", b"r"))
                            .unwrap()
                    );
                });
            }
        });
        let whole = catalog
            .jobs_of(a)
            .unwrap()
            .into_iter()
            .find(|j| j.part.is_none())
            .unwrap();
        assert_eq!(
            whole.state,
            JobState::Queued,
            "round {round}: the job is queued to join"
        );
        // Out of the way for the next round.
        let joined = catalog.claim("w", &video, 1, LEASE).unwrap()[0].clone();
        assert_eq!(joined.id, whole.id);
        assert!(
            catalog
                .finish(joined.id, "w", &succeeded(a, "video", "1", "joined"))
                .unwrap()
        );
    }
}

/// Counts for a caller limited to some collections: the assets and jobs of those only.
pub fn queue_counts_per_collection<C: Catalog + JobQueue>(make: &dyn Fn() -> C) {
    let catalog = make();
    let press = catalog.ensure_collection("press").unwrap().id;
    let leaks = catalog.ensure_collection("leaks").unwrap().id;
    let empty = catalog.ensure_collection("empty").unwrap().id;
    let a = id_of(record_one(&catalog, &new_asset(press, b"a", "/a")));
    let b = id_of(record_one(&catalog, &new_asset(leaks, b"b", "/b")));
    let c = id_of(record_one(&catalog, &new_asset(leaks, b"c", "/c")));
    let mut all = jobs_for(a, &[("labels", 0)]);
    all.extend(jobs_for(b, &[("labels", 0), ("thumbnail", 0)]));
    all.extend(jobs_for(c, &[("labels", 0)]));
    catalog.enqueue(&all).unwrap();
    let queued = |n| vec![(JobState::Queued, n)];
    assert_eq!(catalog.counts_in(&[press]).unwrap(), (1, queued(1)));
    assert_eq!(catalog.counts_in(&[leaks]).unwrap(), (2, queued(3)));
    assert_eq!(catalog.counts_in(&[press, leaks]).unwrap(), (3, queued(4)));
    assert_eq!(catalog.counts_in(&[empty]).unwrap(), (0, vec![]));
    assert_eq!(catalog.counts_in(&[]).unwrap(), (0, vec![]));
}

/// Several jobs finished in one call answer as each would alone: kept, refused as not fitting
/// (nothing of it written, its neighbours kept), or not held (another worker's lease). Workers
/// on threads finishing batches at once never lose or double a job.
pub fn queue_finishes_jobs_in_batches<C: Catalog + JobQueue>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let assets: Vec<AssetId> = (0..6u8)
        .map(|i| id_of(record_one(&catalog, &new_asset(c, &[i], &format!("/{i}")))))
        .collect();
    for asset in &assets {
        catalog
            .enqueue(&jobs_for(*asset, &[("labels", 0)]))
            .unwrap();
    }
    let labels = names(&["labels"]);
    let mine = catalog.claim("w", &labels, 5, LEASE).unwrap();
    let theirs = catalog.claim("other", &labels, 1, LEASE).unwrap();
    assert_eq!((mine.len(), theirs.len()), (5, 1));
    let ok = |job: &Job, label: &str| succeeded(job.asset, "labels", "1", label);
    let finished = vec![
        (mine[0].id, ok(&mine[0], "zero")),
        (
            mine[1].id,
            Outcome::Failed {
                error: "busy".into(),
            },
        ),
        (
            mine[2].id,
            Outcome::Skipped {
                reason: "not for this".into(),
            },
        ),
        // A part's result for a whole job does not fit: refused, nothing written.
        (mine[3].id, part_done("1", b"part")),
        (mine[4].id, ok(&mine[4], "four")),
        // Not ours: not kept.
        (theirs[0].id, ok(&theirs[0], "stolen")),
    ];
    let answers = catalog.finish_many("w", &finished).unwrap();
    assert_eq!(answers.len(), 6);
    assert!(matches!(answers[0], Ok(true)), "{:?}", answers[0]);
    assert!(matches!(answers[1], Ok(true)), "{:?}", answers[1]);
    assert!(matches!(answers[2], Ok(true)), "{:?}", answers[2]);
    assert!(
        matches!(answers[3], Err(Error::InvalidInput { .. })),
        "{:?}",
        answers[3]
    );
    assert!(matches!(answers[4], Ok(true)), "{:?}", answers[4]);
    assert!(matches!(answers[5], Ok(false)), "{:?}", answers[5]);
    let state = |asset: AssetId| catalog.jobs_of(asset).unwrap()[0].state;
    let labels_of = |asset: AssetId| {
        catalog
            .insights(asset)
            .unwrap()
            .into_iter()
            .map(|i| i.value)
            .collect::<Vec<_>>()
    };
    assert_eq!(labels_of(mine[0].asset), [label("zero")]);
    assert_eq!(state(mine[0].asset), JobState::Succeeded);
    assert_eq!(state(mine[1].asset), JobState::Queued, "retried later");
    assert_eq!(state(mine[2].asset), JobState::Skipped);
    assert_eq!(
        state(mine[3].asset),
        JobState::Running,
        "the refused job is untouched"
    );
    assert!(labels_of(mine[3].asset).is_empty());
    assert_eq!(labels_of(mine[4].asset), [label("four")]);
    assert_eq!(state(theirs[0].asset), JobState::Running);
    assert!(
        labels_of(theirs[0].asset).is_empty(),
        "another's job is not written"
    );
    assert!(
        catalog
            .finish(mine[3].id, "w", &ok(&mine[3], "three"))
            .unwrap()
    );
    assert_eq!(catalog.finish_many("w", &[]).unwrap().len(), 0);

    // Four workers claim and finish in batches from one queue.
    let more: Vec<NewJob> = assets
        .iter()
        .flat_map(|a| (0..30).map(move |n| (*a, format!("a{n}"))))
        .map(|(asset, analyzer)| NewJob {
            asset,
            analyzer,
            priority: 0,
        })
        .collect();
    catalog.enqueue(&more).unwrap();
    let all: Vec<String> = (0..30).map(|n| format!("a{n}")).collect();
    let done: Vec<i64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|w| {
                let (catalog, all) = (&catalog, &all);
                s.spawn(move || {
                    let worker = format!("w{w}");
                    let mut kept = Vec::new();
                    loop {
                        let jobs = catalog.claim(&worker, all, 9, LEASE).unwrap();
                        if jobs.is_empty() {
                            break;
                        }
                        let finished: Vec<(i64, Outcome)> = jobs
                            .iter()
                            .map(|j| (j.id, succeeded(j.asset, &j.analyzer, "1", "x")))
                            .collect();
                        let answers = catalog.finish_many(&worker, &finished).unwrap();
                        for (job, answer) in jobs.iter().zip(answers) {
                            assert!(answer.unwrap(), "a job held by its worker is kept");
                            kept.push(job.id);
                        }
                    }
                    kept
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut unique = done.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), done.len(), "no job finished twice");
    assert_eq!(done.len(), 180, "no job lost");
}

/// A worker that stops gives back the jobs it claimed and did not start: queued again at once
/// for any worker, the claim not counted as an attempt; another worker cannot give them back.
pub fn queue_releases_unrun_jobs<C: Catalog + JobQueue>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let a = id_of(record_one(&catalog, &new_asset(c, b"a", "/a")));
    catalog
        .enqueue(&jobs_for(a, &[("labels", 0), ("thumbnail", 0), ("ocr", 0)]))
        .unwrap();
    let all = names(&["labels", "thumbnail", "ocr"]);
    let mine = catalog.claim("w", &all, 3, LEASE).unwrap();
    assert_eq!(mine.len(), 3);
    let ids: Vec<i64> = mine.iter().map(|j| j.id).collect();
    assert_eq!(catalog.release("other", &ids).unwrap(), 0, "not theirs");
    assert_eq!(catalog.release("w", &ids[..2]).unwrap(), 2);
    assert_eq!(
        catalog.release("w", &ids[..2]).unwrap(),
        0,
        "given back once"
    );
    let jobs = catalog.jobs_of(a).unwrap();
    let of = |id: i64| jobs.iter().find(|j| j.id == id).unwrap();
    for id in &ids[..2] {
        assert_eq!((of(*id).state, of(*id).attempts), (JobState::Queued, 0));
    }
    assert_eq!(of(ids[2]).state, JobState::Running, "the one still held");
    let again = catalog.claim("v", &all, 3, LEASE).unwrap();
    let mut taken: Vec<i64> = again.iter().map(|j| j.id).collect();
    taken.sort();
    let mut expected = ids[..2].to_vec();
    expected.sort();
    assert_eq!(taken, expected, "runnable again at once, for any worker");
    assert!(again.iter().all(|j| j.attempts == 1));
}
