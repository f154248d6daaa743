//! Workers: lease jobs from the queue, run their analyzers, store what they found.
//!
//! Any number of workers, in any number of processes, may share one catalog: each job is
//! leased to one worker at a time, and a worker that dies simply lets its lease run out.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aperture_blob::BlobStore;
use aperture_catalog::{Backend, Job, Outcome};
use aperture_core::{AssetId, UnixMillis};
use serde::Serialize;

use aperture_analyze::{Analyzer, Error, Input, Output};
use aperture_ingest::GroupCommit;

/// The longest an idle worker waits before it looks at the queue again.
const IDLE_WAIT: Duration = Duration::from_secs(5);

/// How long a job is leased: a worker that has not finished by then is presumed dead.
pub const LEASE: Duration = Duration::from_secs(10 * 60);

/// Jobs claimed at once at most: cheap jobs are claimed many at a time, so that claims and
/// finishes (each a transaction) are shared by many jobs.
const MAX_CLAIM: usize = 256;

/// The work a claim should hold per job slot, judged by how long jobs took so far: long
/// enough that claiming costs little, short enough that claimed jobs do not wait long for a
/// slot (their leases are not renewed while they wait).
const CLAIM_AHEAD: Duration = Duration::from_millis(250);

/// Finished jobs recorded in one transaction at most.
const FINISH_BATCH: usize = 256;

/// What a worker did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkerReport {
    /// Jobs whose results were stored.
    pub succeeded: u64,
    /// Failed for good (damaged input, or out of attempts).
    pub failed: u64,
    /// Failed, to be retried later.
    pub retried: u64,
    /// Jobs the analyzer declined (not applicable, or the asset is gone).
    pub skipped: u64,
    /// Finished after the lease had passed to another worker: the result was dropped.
    pub lost_leases: u64,
    /// Per analyzer: jobs run and seconds spent in the analyzer.
    pub analyzers: BTreeMap<String, AnalyzerTime>,
}

/// Time spent in one analyzer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AnalyzerTime {
    /// Jobs it ran.
    pub jobs: u64,
    /// Seconds spent in it, summed over jobs that ran side by side.
    pub seconds: f64,
}

impl WorkerReport {
    /// Jobs run, whatever came of them.
    pub fn jobs(&self) -> u64 {
        self.succeeded + self.failed + self.retried + self.skipped + self.lost_leases
    }

    /// Jobs per second per analyzer, over `secs`: `labels 3.2/s, ocr 0.8/s`.
    pub fn rates(&self, secs: f64) -> String {
        self.analyzers
            .iter()
            .map(|(name, t)| format!("{name} {:.1}/s", t.jobs as f64 / secs))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What `aperture index` prints.
impl std::fmt::Display for WorkerReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use aperture_core::human::HumanCount as N;
        write!(
            f,
            "ran {} jobs: {} succeeded, {} skipped, {} failed, {} to retry later",
            N(self.jobs()),
            N(self.succeeded),
            N(self.skipped),
            N(self.failed),
            N(self.retried)
        )?;
        for (name, t) in &self.analyzers {
            let per_item = if t.jobs > 0 {
                t.seconds / t.jobs as f64
            } else {
                0.0
            };
            write!(
                f,
                "\n  {name:<12} {:>8} jobs  {:>8.1} ms each",
                N(t.jobs),
                per_item * 1000.0
            )?;
        }
        if self.failed > 0 {
            write!(f, "\n(aperture show ID lists each job's error)")?;
        }
        Ok(())
    }
}

/// A job that ran, as its worker recorded it.
struct RanJob {
    analyzer: String,
    seconds: f64,
    /// As recorded (a result whose objects could not be made durable is recorded failed).
    outcome: Outcome,
    /// False: the lease had passed to another worker and the outcome was dropped.
    kept: bool,
}

/// A job whose analyzer ran.
struct Analyzed {
    job: Job,
    seconds: f64,
    outcome: Outcome,
    derived: bool,
}

/// A job's outcome on its way to the catalog.
struct Finished {
    job: i64,
    /// The asset, for messages.
    name: String,
    outcome: Outcome,
    /// Derived objects were stored: they are synced before the outcome is recorded.
    derived: bool,
}

type Finisher = GroupCommit<Finished, aperture_catalog::Result<(bool, Outcome)>>;

impl WorkerReport {
    fn add(&mut self, ran: RanJob) {
        let time = self.analyzers.entry(ran.analyzer).or_default();
        time.jobs += 1;
        time.seconds += ran.seconds;
        match (&ran.outcome, ran.kept) {
            (_, false) => self.lost_leases += 1,
            (
                Outcome::Succeeded { .. }
                | Outcome::Split { .. }
                | Outcome::PartDone { .. }
                | Outcome::RedoParts { .. },
                true,
            ) => self.succeeded += 1,
            (Outcome::Skipped { .. }, true) => self.skipped += 1,
            (Outcome::Failed { .. }, true) => self.retried += 1,
            (Outcome::Unrecoverable { .. }, true) => self.failed += 1,
        }
    }
}

/// Leases jobs of its analyzers and runs them, many at once, renewing each lease while its
/// job runs. Its id names the host (`HOSTNAME`), the process and a fresh UUID, so no two
/// workers share one.
pub struct Worker {
    id: String,
    blobs: BlobStore,
    catalog: Arc<dyn Backend>,
    analyzers: BTreeMap<String, Arc<dyn Analyzer>>,
    parallel: usize,
    /// Jobs of one analyzer running at once at most, by name.
    limits: BTreeMap<String, usize>,
    lease: Duration,
}

impl Worker {
    /// A worker for these analyzers (one per name: a later one with the same name wins).
    pub fn new(
        blobs: BlobStore,
        catalog: Arc<dyn Backend>,
        analyzers: Vec<Arc<dyn Analyzer>>,
    ) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        Self {
            id: format!(
                "{host}-{}-{}",
                std::process::id(),
                uuid::Uuid::now_v7().simple()
            ),
            blobs,
            catalog,
            analyzers: analyzers
                .into_iter()
                .map(|a| (a.name().to_owned(), a))
                .collect(),
            parallel: std::thread::available_parallelism().map_or(2, |n| n.get()),
            limits: BTreeMap::new(),
            lease: LEASE,
        }
    }

    /// Jobs run at once (default: one per core).
    pub fn with_parallelism(mut self, parallel: usize) -> Self {
        self.parallel = parallel.max(1);
        self
    }

    /// Runs at most `limit` jobs of the analyzer named at once (each at least 1), so that a
    /// slow analyzer leaves slots to the others.
    pub fn with_limits(mut self, limits: BTreeMap<String, usize>) -> Self {
        self.limits = limits
            .into_iter()
            .map(|(name, n)| (name, n.max(1)))
            .collect();
        self
    }

    /// Sets the lease length (default [`LEASE`]); it is renewed every third of it.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Holds leases under `id` instead of the generated one (it must be unique among the
    /// workers sharing the catalog).
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// The id leases are held under.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn names(&self) -> Vec<String> {
        self.analyzers.keys().cloned().collect()
    }

    /// Queues this worker's analyzers for every asset that has no job for them yet.
    pub async fn enqueue_missing(&self) -> aperture_catalog::Result<u64> {
        let mut added = 0;
        for analyzer in self.analyzers.values() {
            let (catalog, analyzer) = (self.catalog.clone(), analyzer.clone());
            added += blocking(move || catalog.enqueue_missing(analyzer.spec())).await?;
        }
        Ok(added)
    }

    /// Leases up to one job per slot and runs them. Returns how many jobs it ran (0: none
    /// runnable).
    pub async fn step(&self, report: &mut WorkerReport) -> aperture_catalog::Result<usize> {
        let finisher = self.finisher();
        let jobs = self.claim(self.parallel).await?;
        let count = jobs.len();
        let results =
            futures::future::join_all(jobs.into_iter().map(|job| self.run_job(job, &finisher)))
                .await;
        for result in results {
            report.add(result?);
        }
        Ok(count)
    }

    async fn claim(&self, limit: usize) -> aperture_catalog::Result<Vec<Job>> {
        let (catalog, names, id, lease) = (
            self.catalog.clone(),
            self.names(),
            self.id.clone(),
            self.lease,
        );
        blocking(move || catalog.claim(&id, &names, limit, lease)).await
    }

    /// Runs jobs, `parallel` at a time, until none is runnable or `stop` completes: a slot
    /// that frees takes the next claimed job at once, so a long job (a scanned book) holds
    /// only its own slot while the others go on. Claims grow with how quick jobs are.
    /// Returns how many jobs it ran.
    async fn pump<S: std::future::Future<Output = ()>>(
        &self,
        report: &mut WorkerReport,
        progress: &(dyn Fn(&WorkerReport) + Sync),
        mut stop: std::pin::Pin<&mut S>,
    ) -> aperture_catalog::Result<Option<usize>> {
        let finisher = self.finisher();
        let mut claimed = std::collections::VecDeque::new();
        // Jobs whose analyzers run (one per slot), and jobs being recorded: a job gives its
        // slot back before it is recorded, so that many are recorded together.
        let mut running = futures::stream::FuturesUnordered::new();
        let mut recording = futures::stream::FuturesUnordered::new();
        let (mut ran, mut claim_size) = (0, self.parallel);
        // Jobs running per analyzer, for the limits.
        let mut active: BTreeMap<String, usize> = BTreeMap::new();
        // Seconds per job, smoothed; judges how many to claim.
        let mut per_job: Option<f64> = None;
        loop {
            let mut claimed_none = false;
            while running.len() < self.parallel {
                // The first claimed job whose analyzer is under its limit; else claim more
                // (jobs of other analyzers may be queued behind), unless enough are waiting.
                let startable = claimed.iter().position(|job: &Job| {
                    self.limits.get(&job.analyzer).is_none_or(|limit| {
                        active.get(&job.analyzer).copied().unwrap_or(0) < *limit
                    })
                });
                if let Some(job) = startable.and_then(|i| claimed.remove(i)) {
                    *active.entry(job.analyzer.clone()).or_insert(0) += 1;
                    running.push(self.analyze_job(job));
                    continue;
                }
                if claimed_none || claimed.len() >= MAX_CLAIM {
                    break;
                }
                let jobs = self.claim(claim_size).await?;
                claimed_none = jobs.is_empty();
                claimed.extend(jobs);
            }
            if running.is_empty() && recording.is_empty() {
                return Ok(Some(ran));
            }
            tokio::select! {
                _ = &mut stop => return Ok(None),
                Some(analyzed) = futures::StreamExt::next(&mut running) => {
                    if let Some(n) = active.get_mut(&analyzed.job.analyzer) {
                        *n = n.saturating_sub(1);
                    }
                    per_job = Some(match per_job {
                        None => analyzed.seconds,
                        Some(mean) => 0.9 * mean + 0.1 * analyzed.seconds,
                    });
                    recording.push(self.record(analyzed, &finisher));
                }
                Some(result) = futures::StreamExt::next(&mut recording) => {
                    ran += 1;
                    report.add(result?);
                    progress(report);
                }
            }
            if let Some(mean) = per_job {
                let ahead = (CLAIM_AHEAD.as_secs_f64() / mean.max(1e-6)).ceil();
                claim_size = (self.parallel as f64 * ahead).clamp(1.0, MAX_CLAIM as f64) as usize;
                claim_size = claim_size.max(self.parallel);
            }
        }
    }

    /// Records finished jobs in groups: whatever finished while the last group was being
    /// written goes into the next, after one sync that makes the derived objects of all of
    /// them durable (objects first, then the rows that name them).
    fn finisher(&self) -> Finisher {
        let (blobs, catalog, worker) = (self.blobs.clone(), self.catalog.clone(), self.id.clone());
        GroupCommit::start(
            FINISH_BATCH,
            Box::new(move |mut finished: Vec<Finished>| {
                let (blobs, catalog, worker) = (blobs.clone(), catalog.clone(), worker.clone());
                Box::pin(async move {
                    if finished.iter().any(|f| f.derived)
                        && let Err(e) = blobs.sync().await
                    {
                        for f in finished.iter_mut().filter(|f| f.derived) {
                            f.outcome = Outcome::Failed {
                                error: format!(
                                    "cannot make the results of {} durable: {e}",
                                    f.name
                                ),
                            };
                        }
                    }
                    let outcomes: Vec<Outcome> =
                        finished.iter().map(|f| f.outcome.clone()).collect();
                    let list: Vec<(i64, Outcome)> =
                        finished.into_iter().map(|f| (f.job, f.outcome)).collect();
                    let count = list.len();
                    match blocking(move || catalog.finish_many(&worker, &list)).await {
                        Ok(answers) => answers
                            .into_iter()
                            .zip(outcomes)
                            .map(|(kept, outcome)| kept.map(|kept| (kept, outcome)))
                            .collect(),
                        Err(e) => {
                            let message = e.to_string();
                            (0..count)
                                .map(|_| {
                                    Err(aperture_catalog::Error::Backend {
                                        backend: "catalog",
                                        source: message.clone().into(),
                                    })
                                })
                                .collect()
                        }
                    }
                })
            }),
        )
    }

    /// Runs jobs until none is left that this worker can run, waiting for retries that come
    /// due. `progress` is called after every job.
    pub async fn drain(
        &self,
        progress: &(dyn Fn(&WorkerReport) + Sync),
    ) -> aperture_catalog::Result<WorkerReport> {
        let mut report = WorkerReport::default();
        let mut never = std::pin::pin!(std::future::pending::<()>());
        loop {
            if self.pump(&mut report, progress, never.as_mut()).await? > Some(0) {
                continue;
            }
            let (catalog, names) = (self.catalog.clone(), self.names());
            let Some(due) = blocking(move || catalog.next_due(&names)).await? else {
                return Ok(report);
            };
            // At most a second: a job another worker holds (a part of a split video) may
            // finish any moment and make the next one runnable.
            let wait = (due.0 - UnixMillis::now().0).clamp(10, 1_000);
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
    }

    /// Runs until `stop` completes, waiting for new jobs when the queue is empty.
    pub async fn run(
        &self,
        stop: impl std::future::Future<Output = ()>,
        progress: &(dyn Fn(&WorkerReport) + Sync),
    ) -> aperture_catalog::Result<WorkerReport> {
        let mut report = WorkerReport::default();
        let mut stop = std::pin::pin!(stop);
        loop {
            let Some(ran) = self.pump(&mut report, progress, stop.as_mut()).await? else {
                return Ok(report);
            };
            if ran > 0 {
                continue;
            }
            // Until new work is announced (PostgreSQL's NOTIFY; SQLite polls), or a retry or
            // an abandoned lease comes due.
            let (catalog, names) = (self.catalog.clone(), self.names());
            let due = blocking(move || catalog.next_due(&names)).await?;
            let wait = due.map_or(IDLE_WAIT, |due| {
                let ms = (due.0 - UnixMillis::now().0).clamp(10, IDLE_WAIT.as_millis() as i64);
                Duration::from_millis(ms as u64)
            });
            tokio::select! {
                _ = &mut stop => return Ok(report),
                woken = {
                    let catalog = self.catalog.clone();
                    blocking(move || catalog.wait_for_jobs(wait))
                } => { woken?; }
            }
        }
    }

    /// Runs one job to its end and has `finisher` record it.
    async fn run_job(&self, job: Job, finisher: &Finisher) -> aperture_catalog::Result<RanJob> {
        let analyzed = self.analyze_job(job).await;
        self.record(analyzed, finisher).await
    }

    /// Runs one job's analyzer, renewing its lease meanwhile.
    async fn analyze_job(&self, job: Job) -> Analyzed {
        let started = Instant::now();
        let work = async {
            match self.analyzers.get(&job.analyzer) {
                Some(analyzer) => self.analyze(&job, analyzer.clone()).await,
                None => (
                    Outcome::Failed {
                        error: format!("this worker has no analyzer {:?}", job.analyzer),
                    },
                    false,
                ),
            }
        };
        // Renew the lease while the job runs, so a long one (a scanned book) stays ours.
        // A renewal that fails (the catalog briefly unreachable) is tried again soon, until
        // one succeeds or the lease is found taken; only then does the heartbeat stop.
        let heartbeat = async {
            let mut wait = self.lease / 3;
            loop {
                tokio::time::sleep(wait).await;
                let (catalog, id, worker, lease) =
                    (self.catalog.clone(), job.id, self.id.clone(), self.lease);
                match blocking(move || catalog.renew(id, &worker, lease)).await {
                    Ok(true) => wait = self.lease / 3,
                    // Taken over: the result will be dropped.
                    Ok(false) => std::future::pending::<()>().await,
                    Err(e) => {
                        tracing::warn!(job = id, error = %e, "lease renewal failed; retrying");
                        wait = (self.lease / 20)
                            .clamp(Duration::from_millis(100), Duration::from_secs(5));
                    }
                }
            }
        };
        let (outcome, derived) = tokio::select! {
            outcome = work => outcome,
            () = heartbeat => unreachable!("the heartbeat never ends"),
        };
        let seconds = started.elapsed().as_secs_f64();
        if let Outcome::Unrecoverable { error } | Outcome::Failed { error } = &outcome {
            tracing::warn!(asset = %job.asset, analyzer = %job.analyzer, %error, "job failed");
        }
        Analyzed {
            job,
            seconds,
            outcome,
            derived,
        }
    }

    /// Has `finisher` record how a job ended.
    async fn record(
        &self,
        analyzed: Analyzed,
        finisher: &Finisher,
    ) -> aperture_catalog::Result<RanJob> {
        let Analyzed {
            job,
            seconds,
            outcome,
            derived,
        } = analyzed;
        let finished = Finished {
            job: job.id,
            name: job.asset.to_string(),
            outcome,
            derived,
        };
        let (kept, outcome) =
            finisher
                .submit(finished)
                .await
                .map_err(|e| aperture_catalog::Error::Backend {
                    backend: "catalog",
                    source: format!("the worker's finisher: {e}").into(),
                })??;
        if !kept {
            self.forget_derived_of_erased(job.asset).await;
        }
        Ok(RanJob {
            analyzer: job.analyzer,
            seconds,
            outcome,
            kept,
        })
    }

    /// After a lost lease: if the asset was erased while this job ran, what the job stored
    /// under `derived/<asset>/` after the erasure deleted that prefix goes now. (The erasure
    /// deletes its rows before the prefix, so once the row is gone every later write is ours
    /// to remove; a worker killed before this leaves them to `fsck --repair`.)
    async fn forget_derived_of_erased(&self, asset: AssetId) {
        let catalog = self.catalog.clone();
        let gone = matches!(
            blocking(move || catalog.asset(asset)).await,
            Err(aperture_catalog::Error::NotFound { .. })
        );
        if gone && let Err(e) = self.blobs.delete_derived(asset).await {
            tracing::warn!(%asset, error = %e, "cannot delete what a job made for an erased asset");
        }
    }

    /// Runs the job's analyzer; the outcome, and whether derived objects were stored (they
    /// must be made durable before the outcome is recorded).
    async fn analyze(&self, job: &Job, analyzer: Arc<dyn Analyzer>) -> (Outcome, bool) {
        let outcome = |outcome| (outcome, false);
        let (catalog, asset_id) = (self.catalog.clone(), job.asset);
        let asset = match blocking(move || catalog.asset(asset_id)).await {
            Ok(asset) => asset,
            Err(aperture_catalog::Error::NotFound { .. }) => {
                return outcome(Outcome::Skipped {
                    reason: "the asset was removed".into(),
                });
            }
            Err(e) => {
                return outcome(Outcome::Failed {
                    error: e.to_string(),
                });
            }
        };
        let work = match self.work(job, analyzer.as_ref()).await {
            Ok(Work::Redo(parts)) => return outcome(Outcome::RedoParts { parts }),
            Ok(work) => work,
            Err(e) => {
                return outcome(Outcome::Failed {
                    error: format!("cannot read the parts of {}: {e}", asset.name),
                });
            }
        };
        // The job that split a file checked its bytes; its parts do not read it all again.
        let file = match local_copy(&self.blobs, &asset, job.part.is_some()).await {
            Ok(file) => file,
            Err(e) => {
                return outcome(Outcome::Failed {
                    error: format!("cannot read the bytes of {}: {e}", asset.name),
                });
            }
        };
        let insights = match self.read_insights(asset.id, analyzer.reads()).await {
            Ok(insights) => insights,
            Err(e) => {
                return outcome(Outcome::Failed {
                    error: format!("cannot read the insights of {}: {e}", asset.name),
                });
            }
        };
        let keyframes = match self.keyframes(&asset, &insights, analyzer.as_ref()).await {
            Ok(keyframes) => keyframes,
            Err(e) => {
                return outcome(Outcome::Failed {
                    error: format!("cannot read the keyframes of {}: {e}", asset.name),
                });
            }
        };
        // Licence plates are left out unless the asset's collection reads them.
        // (Only OCR reads text that can be a plate.)
        let (catalog, collection) = (self.catalog.clone(), asset.collection.clone());
        let suppress_plates = analyzer.name() != "ocr"
            || !blocking(move || catalog.collection(&collection))
                .await
                .is_ok_and(|c| c.read_plates);
        let result = blocking({
            let analyzer = analyzer.clone();
            let asset = asset.clone();
            move || {
                let frames = keyframes.as_ref().map_or(&[][..], |k| &k.frames[..]);
                let input = Input {
                    asset: &asset,
                    path: file.path(),
                    insights: &insights,
                    frames,
                    suppress_plates,
                };
                // A panic in an analyzer (a bug its input found) fails this job, not the worker.
                let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match work {
                    Work::Whole => match analyzer.split(&input)? {
                        Some(parts) if parts.len() > 1 => Ok(Done::Split(parts)),
                        _ => analyzer.analyze(&input).map(Done::Output),
                    },
                    Work::Part(part) => analyzer.analyze_part(&input, &part).map(Done::Part),
                    Work::Join(parts) => analyzer.join(&input, &parts).map(Done::Output),
                    Work::Redo(_) => unreachable!("parts to redo are queued before reading"),
                }))
                .unwrap_or_else(|panic| {
                    Err(Error::BadInput {
                        reason: format!(
                            "the {} analyzer failed: {}",
                            analyzer.name(),
                            aperture_media::panic_message(&*panic)
                        ),
                    })
                });
                aperture_analyze::give_back_freed_memory_now_and_then();
                done
            }
        })
        .await;
        // Every error names the file, whichever layer raised it.
        let named = |reason: String| {
            if reason.contains(&asset.name) {
                reason
            } else {
                format!("{}: {reason}", asset.name)
            }
        };
        match result {
            Ok(Done::Output(output)) => self.store(&asset, analyzer.as_ref(), output).await,
            Ok(Done::Split(parts)) => outcome(Outcome::Split { parts }),
            Ok(Done::Part(result)) => outcome(Outcome::PartDone {
                version: analyzer.version(),
                result,
            }),
            Err(Error::NotApplicable { reason }) => outcome(Outcome::Skipped {
                reason: named(reason),
            }),
            Err(Error::BadInput { reason }) => outcome(Outcome::Unrecoverable {
                error: named(reason),
            }),
            Err(Error::Transient { reason }) => outcome(Outcome::Failed {
                error: named(reason),
            }),
        }
    }

    /// What the job asks of its analyzer: the whole file (which it may split), one part, or
    /// joining the parts. Parts left by another version of the analyzer (a worker not yet
    /// upgraded) are not joined: they run again.
    async fn work(&self, job: &Job, analyzer: &dyn Analyzer) -> aperture_catalog::Result<Work> {
        if let Some(part) = job.part {
            return Ok(Work::Part(part));
        }
        if job.parts == 0 {
            return Ok(Work::Whole);
        }
        let (catalog, id) = (self.catalog.clone(), job.id);
        let parts = blocking(move || catalog.part_results(id)).await?;
        let version = analyzer.version();
        let stale: Vec<u32> = parts
            .iter()
            .filter(|p| p.version != version)
            .map(|p| p.part.index)
            .collect();
        if parts.len() != job.parts as usize {
            // Not a split this worker can join (parts lost to a bug or a hand edit): again.
            Ok(Work::Whole)
        } else if !stale.is_empty() {
            Ok(Work::Redo(stale))
        } else {
            Ok(Work::Join(parts))
        }
    }

    /// Stores the derived objects; the outcome, and whether any object was stored. They are
    /// made durable before the outcome is recorded (see [`Worker::finisher`]): a crash in
    /// between leaves objects that the next run overwrites, never an insight naming a missing
    /// object.
    async fn store(
        &self,
        asset: &aperture_catalog::Asset,
        analyzer: &dyn Analyzer,
        output: Output,
    ) -> (Outcome, bool) {
        let derived = !output.derived.is_empty() || !output.derived_files.is_empty();
        for (name, bytes) in output.derived {
            if let Err(e) = self.blobs.put_derived(asset.id, &name, bytes).await {
                let error = format!("cannot store {name} of {}: {e}", asset.name);
                return (Outcome::Failed { error }, false);
            }
        }
        for (name, file) in output.derived_files {
            if let Err(e) = self.blobs.put_derived_file(asset.id, &name, &file).await {
                let error = format!("cannot store {name} of {}: {e}", asset.name);
                return (Outcome::Failed { error }, false);
            }
        }
        let outcome = Outcome::Succeeded {
            version: analyzer.version(),
            insights: output.insights,
            requeue: self.readers_of(analyzer.name()),
        };
        (outcome, derived)
    }

    /// A video's keyframes, as its shots name them, copied to a temporary folder for an
    /// analyzer that looks at pictures; `None` for anything else.
    async fn keyframes(
        &self,
        asset: &aperture_catalog::Asset,
        insights: &[aperture_core::Insight],
        analyzer: &dyn Analyzer,
    ) -> Result<Option<Keyframes>, String> {
        if asset.kind != aperture_core::MediaKind::Video || !analyzer.reads_pictures() {
            return Ok(None);
        }
        let shots: Vec<(String, aperture_core::Place)> = insights
            .iter()
            .filter_map(|i| match &i.value {
                aperture_core::InsightValue::Shot(shot) => {
                    shot.keyframe.clone().map(|k| (k, i.place))
                }
                _ => None,
            })
            .collect();
        if shots.is_empty() {
            return Ok(None);
        }
        let dir = tempfile::Builder::new()
            .prefix("aperture-keyframes-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let mut frames = Vec::with_capacity(shots.len());
        for (name, place) in shots {
            let bytes = self
                .blobs
                .get_derived(asset.id, &name)
                .await
                .map_err(|e| e.to_string())?;
            let path = dir.path().join(&name);
            tokio::fs::write(&path, &bytes)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
            frames.push(aperture_analyze::Frame { place, path });
        }
        Ok(Some(Keyframes { frames, _dir: dir }))
    }

    /// The insights of `asset` from the analyzers `names`.
    async fn read_insights(
        &self,
        asset: aperture_core::AssetId,
        names: &'static [&'static str],
    ) -> aperture_catalog::Result<Vec<aperture_core::Insight>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let catalog = self.catalog.clone();
        let mut insights = blocking(move || catalog.insights(asset)).await?;
        insights.retain(|i| names.contains(&i.analyzer.as_str()));
        Ok(insights)
    }

    /// Every analyzer that reads the insights of `name`, whether this worker runs it or not
    /// (workers with other models installed share the queue).
    fn readers_of(&self, name: &str) -> Vec<String> {
        let mut readers: Vec<String> = aperture_analyze::SPECS
            .iter()
            .filter(|spec| spec.reads_from(name))
            .map(|spec| spec.name.to_owned())
            .collect();
        readers.extend(
            self.analyzers
                .values()
                .filter(|a| a.reads().contains(&name))
                .map(|a| a.name().to_owned()),
        );
        readers.sort();
        readers.dedup();
        readers
    }
}

/// A local file with the asset's verified bytes: the blob itself on a local store (read
/// through to check its hash, unless `verified` says a job of this analysis just did), a
/// temporary copy from a remote one (checked as it is copied).
pub(crate) async fn local_copy(
    blobs: &BlobStore,
    asset: &aperture_catalog::Asset,
    verified: bool,
) -> aperture_blob::Result<LocalFile> {
    if let Some(path) = blobs.local_path(asset.hash) {
        if !verified {
            blobs.verify(asset.hash).await?;
        }
        return Ok(LocalFile::InPlace(path));
    }
    let temp = tempfile::Builder::new()
        .prefix("aperture-analyze-")
        .tempfile()
        .map_err(|source| aperture_blob::Error::Write {
            path: std::env::temp_dir(),
            source,
        })?;
    blobs.read_to_file(asset.hash, temp.path()).await?;
    Ok(LocalFile::Temporary(temp))
}

/// What a job asks of its analyzer.
enum Work {
    Whole,
    Part(aperture_catalog::jobs::Part),
    Join(Vec<aperture_catalog::jobs::PartResult>),
    Redo(Vec<u32>),
}

/// What came of it.
enum Done {
    Output(Output),
    Split(Vec<aperture_catalog::Stretch>),
    Part(Vec<u8>),
}

/// Keyframes on local disk, removed with the folder when dropped.
struct Keyframes {
    frames: Vec<aperture_analyze::Frame>,
    _dir: tempfile::TempDir,
}

pub(crate) enum LocalFile {
    InPlace(PathBuf),
    Temporary(tempfile::NamedTempFile),
}

impl LocalFile {
    pub(crate) fn path(&self) -> &std::path::Path {
        match self {
            LocalFile::InPlace(path) => path,
            LocalFile::Temporary(file) => file.path(),
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
