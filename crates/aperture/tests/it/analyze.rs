//! Indexing end to end: analyzers run off the queue by `index` and `worker` processes.

use std::collections::BTreeMap;
use std::time::Duration;

use aperture_media::fixtures;

use crate::Aperture;

fn show(ap: &Aperture, id: &str) -> serde_json::Value {
    ap.json(&["show", id])
}

#[test]
fn index_fills_in_thumbnails_and_hashes_and_rm_erases_them() {
    let ap = Aperture::init();
    let dir = ap.inputs();
    std::fs::write(dir.join("photo.jpg"), fixtures::jpeg(640, 480)).unwrap();
    std::fs::write(dir.join("scan.png"), fixtures::png(300, 500)).unwrap();
    std::fs::write(dir.join("notes.txt"), b"meeting at noon").unwrap();
    // A JPEG that stops inside its header: ingest keeps it, its analyses fail for good.
    let jpeg = fixtures::jpeg(64, 64);
    std::fs::write(dir.join("broken.jpg"), &jpeg[..120]).unwrap();

    let out = ap.run(&["ingest", dir.to_str().unwrap(), "--index", "--no-progress"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a job failed for good: {stdout}"
    );
    // Two analyses of each picture, the text, and a translation job each (skipped).
    assert!(stdout.contains("ran 11 jobs"), "{stdout}");

    let assets: BTreeMap<String, serde_json::Value> = ap
        .assets()
        .into_iter()
        .map(|a| (a["name"].as_str().unwrap().to_owned(), a))
        .collect();
    let states = |shown: &serde_json::Value| -> Vec<(String, String)> {
        let mut jobs: Vec<(String, String)> = shown["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| {
                (
                    j["analyzer"].as_str().unwrap().to_owned(),
                    j["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        jobs.sort();
        jobs
    };
    let pair = |a: &str, s: &str| (a.to_owned(), s.to_owned());
    for (name, (w, h)) in [("photo.jpg", (256, 192)), ("scan.png", (154, 256))] {
        let shown = show(&ap, assets[name]["id"].as_str().unwrap());
        // Translation has no text to read in a picture without OCR: skipped.
        assert_eq!(
            states(&shown),
            [
                pair("phash", "succeeded"),
                pair("thumbnail", "succeeded"),
                pair("translate", "skipped")
            ],
            "{shown}"
        );
        let insights = shown["insights"].as_array().unwrap();
        let thumb = insights.iter().find(|i| i["kind"] == "thumbnail").unwrap();
        assert_eq!(
            (
                thumb["value"]["width"].as_u64(),
                thumb["value"]["height"].as_u64()
            ),
            (Some(w), Some(h)),
            "{name}"
        );
        assert_eq!(thumb["analyzer_version"], "1-256");
        let phash = insights.iter().find(|i| i["kind"] == "phash").unwrap();
        assert_eq!(phash["value"]["hash"].as_str().unwrap().len(), 16);
    }
    let notes = show(&ap, assets["notes.txt"]["id"].as_str().unwrap());
    // English already: nothing to translate.
    assert_eq!(
        states(&notes),
        [pair("text", "succeeded"), pair("translate", "skipped")],
        "no image analyzer for text: {notes}"
    );
    assert_eq!(notes["insights"][0]["value"]["text"], "meeting at noon");
    let broken = show(&ap, assets["broken.jpg"]["id"].as_str().unwrap());
    let pictures = broken["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["analyzer"] != "translate");
    for job in pictures {
        assert_eq!(job["state"], "failed", "{broken}");
        assert!(
            job["last_error"].as_str().unwrap().contains("broken.jpg"),
            "{broken}"
        );
    }

    // Indexing again runs nothing: the same versions already succeeded.
    let again = ap.json(&["index"]);
    assert_eq!(again["succeeded"], 0, "{again}");

    // Erasure takes the thumbnail with it.
    let photo = assets["photo.jpg"]["id"].as_str().unwrap();
    let derived = ap.data().join("blobs/derived").join(photo);
    assert!(derived.join("thumbnail-256.jpg").exists());
    ap.ok(&["rm", photo]);
    assert!(!derived.join("thumbnail-256.jpg").exists());
    let fsck = ap.json(&["fsck", "--min-age", "0"]);
    assert_eq!(fsck["healthy"], true);
    assert_eq!(fsck["findings"]["orphan_derived"], 0);
}

fn images(ap: &Aperture, count: usize) {
    // The queue is what is tested: thumbnails and hashes only, not translation's jobs
    // (skipped on pictures without text).
    let config = ap.data().join("aperture.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("disabled = []"), "{text}");
    std::fs::write(
        &config,
        text.replace("disabled = []", "disabled = [\"translate\"]"),
    )
    .unwrap();
    let dir = ap.inputs();
    for i in 0..count {
        let side = 200 + i as u32 * 7;
        std::fs::write(
            dir.join(format!("img-{i:03}.png")),
            fixtures::png(side, side / 2),
        )
        .unwrap();
    }
    let report = ap.ingest(&dir, "c");
    assert_eq!(report["totals"]["stored"], count);
}

fn jobs_of_all(ap: &Aperture) -> Vec<serde_json::Value> {
    ap.assets()
        .iter()
        .flat_map(|a| {
            show(ap, a["id"].as_str().unwrap())["jobs"]
                .as_array()
                .unwrap()
                .clone()
        })
        .collect()
}

/// Two `index` processes drain one queue at the same time: every job is leased exactly once.
#[test]
fn two_workers_never_run_the_same_job() {
    let ap = Aperture::init();
    images(&ap, 40);
    let spawn = || {
        ap.command(&["index", "--no-progress", "--json"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let reports: Vec<serde_json::Value> = [a, b]
        .into_iter()
        .map(|child| serde_json::from_slice(&child.wait_with_output().unwrap().stdout).unwrap())
        .collect();
    let ran: u64 = reports
        .iter()
        .map(|r| r["succeeded"].as_u64().unwrap())
        .sum();
    assert_eq!(ran, 80, "{reports:?}");
    let jobs = jobs_of_all(&ap);
    assert_eq!(jobs.len(), 80);
    for job in &jobs {
        assert_eq!(job["state"], "succeeded", "{job}");
        assert_eq!(job["attempts"], 1, "a job leased twice: {job}");
    }
}

/// The running jobs and their lease holders, read from the catalog beside the workers.
fn leased(db: &rusqlite::Connection) -> Vec<(i64, String)> {
    let mut query = db
        .prepare("SELECT id, lease_owner FROM jobs WHERE state = 'running' ORDER BY id")
        .unwrap();
    query
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn signal(child: &std::process::Child, signal: i32) {
    // SAFETY: kill only sends a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

/// Stops a child and returns once every one of its threads has stopped: `kill` only sends
/// the signal, and a child that runs on for a moment could take the catalog's write lock
/// after the caller looked.
fn freeze(child: &std::process::Child) {
    signal(child, libc::SIGSTOP);
    let mut status = 0;
    // SAFETY: waits on our own child; WUNTRACED reports its stop, not its exit, so the
    // Child's own wait later still reaps it.
    let pid = unsafe { libc::waitpid(child.id() as i32, &mut status, libc::WUNTRACED) };
    assert_eq!(pid, child.id() as i32, "waitpid failed");
    assert!(
        libc::WIFSTOPPED(status),
        "the child exited instead of stopping"
    );
}

/// Workers killed while they hold leases, many times: their leases run out, other workers
/// take the jobs over and finish them, and every job ends exactly once with one result. A
/// worker frozen past its lease and then woken finds its results refused: nothing it does
/// after the takeover reaches the catalog.
#[test]
fn killed_workers_lose_no_job_and_duplicate_none() {
    let ap = Aperture::init();
    images(&ap, 60);
    let db = rusqlite::Connection::open(ap.data().join("catalog.db")).unwrap();
    let worker = || {
        ap.command(&["worker", "--lease", "2"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // Frozen (SIGSTOP) while it holds leases, so what it holds cannot change under us. Its
    // jobs are those of a lease holder not seen before (a killed worker's stay running until
    // their leases expire). Never frozen inside a write: a process stopped there holds the
    // catalog's write lock, and every other writer waits out its busy timeout (a frozen
    // machine would do the same; what this test is about is the leases).
    let probe = rusqlite::Connection::open(ap.data().join("catalog.db")).unwrap();
    probe.busy_timeout(Duration::ZERO).unwrap();
    let writable = || probe.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").is_ok();
    let mut owners: std::collections::BTreeSet<String> = Default::default();
    let mut freeze_holding = |child: &std::process::Child| -> Vec<i64> {
        let started = std::time::Instant::now();
        let new = |owners: &std::collections::BTreeSet<String>| -> Vec<(i64, String)> {
            leased(&db)
                .into_iter()
                .filter(|(_, owner)| !owners.contains(owner))
                .collect()
        };
        loop {
            if !new(&owners).is_empty() {
                freeze(child);
                let held = new(&owners);
                if !held.is_empty() && writable() {
                    owners.extend(held.iter().map(|(_, o)| o.clone()));
                    return held.into_iter().map(|(id, _)| id).collect();
                }
                signal(child, libc::SIGCONT);
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no job was leased"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let mut taken: Vec<i64> = Vec::new();
    for _ in 0..5 {
        let mut child = worker();
        taken.extend(freeze_holding(&child));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    // One more, frozen and left alive: another worker takes its jobs over meanwhile.
    let mut sleeper = worker();
    let held = freeze_holding(&sleeper);
    taken.extend(&held);
    let done = ap.json(&["index", "--lease", "2"]);
    assert_eq!(done["failed"], 0, "{done}");
    let finished = |id: i64| -> (String, i64, i64) {
        db.query_row(
            "SELECT state, attempts, updated_at FROM jobs WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    let before: Vec<_> = held.iter().map(|id| finished(*id)).collect();
    // The last change number handed out: the feed's rows are pruned once applied, so their
    // count may fall, but a result kept would take a new number.
    let changes = |db: &rusqlite::Connection| -> i64 {
        db.query_row(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let feed = changes(&db);
    // Woken, it runs its stale jobs to the end and tries to record them: refused.
    signal(&sleeper, libc::SIGCONT);
    std::thread::sleep(Duration::from_secs(3));
    signal(&sleeper, libc::SIGTERM);
    sleeper.wait().unwrap();
    let after: Vec<_> = held.iter().map(|id| finished(*id)).collect();
    assert_eq!(
        before, after,
        "a worker whose lease was taken over changed its jobs"
    );
    assert_eq!(
        changes(&db),
        feed,
        "a stale worker's result reached the change feed"
    );

    let jobs = jobs_of_all(&ap);
    assert_eq!(jobs.len(), 120);
    assert!(jobs.iter().all(|j| j["state"] == "succeeded"), "{jobs:?}");
    // Every job a killed or frozen worker held was taken over: run again, by another.
    taken.sort_unstable();
    taken.dedup();
    assert!(
        taken.len() >= 6,
        "each worker held at least one job: {taken:?}"
    );
    for id in &taken {
        let (state, attempts, _) = finished(*id);
        assert_eq!(state, "succeeded");
        assert!(
            attempts >= 2,
            "job {id} held by a killed worker was not taken over"
        );
    }
    for a in ap.assets() {
        let shown = show(&ap, a["id"].as_str().unwrap());
        let mut kinds: Vec<_> = shown["insights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["kind"].as_str().unwrap().to_owned())
            .collect();
        kinds.sort();
        assert_eq!(
            kinds,
            ["phash", "thumbnail"],
            "exactly one result each: {shown}"
        );
    }
}
