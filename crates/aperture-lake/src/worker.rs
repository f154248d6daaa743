//! Workers: lease jobs from the queue, run their analyzers, store what they found.
//!
//! Any number of workers, in any number of processes, may share one catalog: each job is
//! leased to one worker at a time, and a worker that dies simply lets its lease run out.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aperture_blob::BlobStore;
use aperture_catalog::{Backend, Job, JobState, Outcome};
use aperture_core::{AssetId, UnixMillis};
use serde::Serialize;

use aperture_analyze::{Analyzer, Error, Input, Output};
use aperture_ingest::GroupCommit;

/// The longest an idle worker waits before it looks at the queue again.
const IDLE_WAIT: Duration = Duration::from_secs(5);

/// How long a job is leased: a worker that has not finished by then is presumed dead.
pub const LEASE: Duration = Duration::from_secs(10 * 60);

/// Jobs claimed at once at most: cheap jobs are claimed many at a time, so that a claim (a
/// transaction) is shared by many. Not more: each claim counts as an attempt of its job, and a
/// worker that dies (a poison file) takes the attempts of all it had claimed with it.
const MAX_CLAIM: usize = 64;

/// The work a claim should hold per job slot, judged by how long jobs took so far: long
/// enough that claiming costs little, short enough that claimed jobs do not wait long for a
/// slot.
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
    asset: AssetId,
    /// When its outcome went to the finisher (it was recorded after).
    submitted: Instant,
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
    /// The asset's name, for messages (its id when it could not be read).
    name: String,
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
        for ran in results {
            report.add(ran);
        }
        Ok(count)
    }

    /// Leases up to `limit` jobs of the analyzers `names` (all of this worker's when `None`).
    async fn claim_of(
        &self,
        names: Option<Vec<String>>,
        limit: usize,
    ) -> aperture_catalog::Result<Vec<Job>> {
        let names = names.unwrap_or_else(|| self.names());
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let (catalog, id, lease) = (self.catalog.clone(), self.id.clone(), self.lease);
        blocking(move || catalog.claim(&id, &names, limit, lease)).await
    }

    async fn claim(&self, limit: usize) -> aperture_catalog::Result<Vec<Job>> {
        self.claim_of(None, limit).await
    }

    /// Runs jobs, `parallel` at a time, until none is runnable or `stop` completes: a slot
    /// that frees takes the next claimed job at once, so a long job (a scanned book) holds
    /// only its own slot while the others go on. Returns how many jobs it ran; `None` when
    /// stopped (jobs claimed and not started are given back).
    ///
    /// A job goes `claimed` (leased, waiting for a slot; its lease renewed while it waits)
    /// → `running` (its analyzer runs in a slot) → `recording` (slot given back, the result
    /// waiting for the finisher's next group) → reported. Claims grow with how quick jobs
    /// are, and take only analyzers under their limit.
    async fn pump<S: std::future::Future<Output = ()>>(
        &self,
        report: &mut WorkerReport,
        progress: &(dyn Fn(&WorkerReport) + Sync),
        mut stop: std::pin::Pin<&mut S>,
    ) -> aperture_catalog::Result<Option<usize>> {
        let finisher = self.finisher();
        let mut queue = Queue::default();
        let mut running = futures::stream::FuturesUnordered::new();
        let mut recording = futures::stream::FuturesUnordered::new();
        let (mut ran, mut claim_size) = (0, self.parallel);
        // Seconds per job, smoothed; judges how many to claim.
        let mut per_job: Option<f64> = None;
        loop {
            let mut claimed_none = false;
            while running.len() < self.parallel {
                if let Some((job, claim)) = queue.next_startable(&self.limits, &self.analyzers) {
                    running.push(async move { (claim, self.analyze_job(job).await) });
                    continue;
                }
                if claimed_none || queue.claimed.len() >= MAX_CLAIM {
                    break;
                }
                let names = queue.under_limit(self.names(), &self.limits);
                let jobs = match self.claim_of(Some(names), claim_size).await {
                    Ok(jobs) => jobs,
                    Err(e) => {
                        self.give_back(&mut queue).await;
                        while let Some(ran_job) = futures::StreamExt::next(&mut recording).await {
                            report.add(ran_job);
                        }
                        return Err(e);
                    }
                };
                claimed_none = jobs.is_empty();
                queue.claimed_now(jobs, self.lease);
            }
            if running.is_empty() && recording.is_empty() {
                // Nothing left that could start (none is left, unless analyzers read each
                // other in a circle): what is claimed goes back.
                self.give_back(&mut queue).await;
                return Ok(Some(ran));
            }
            let renew_at = queue.renewals_due();
            tokio::select! {
                _ = &mut stop => {
                    // What was claimed and not started goes back; what ran is recorded; what
                    // runs is dropped, its lease left to run out.
                    self.give_back(&mut queue).await;
                    while let Some(ran_job) = futures::StreamExt::next(&mut recording).await {
                        report.add(ran_job);
                    }
                    return Ok(None);
                }
                () = sleep_until(renew_at) => self.renew_waiting(&mut queue).await,
                Some((claim, analyzed)) = futures::StreamExt::next(&mut running) => {
                    queue.stopped_running(&analyzed.job.analyzer);
                    if !queue.is_latest(analyzed.job.id, claim) {
                        // Claimed again while it ran (a job it reads finished and queued it
                        // again): this run read old results and its lease is the new claim's.
                        queue.recorded(analyzed.job.asset, &analyzed.job.analyzer);
                        report.add(RanJob {
                            asset: analyzed.job.asset,
                            submitted: Instant::now(),
                            analyzer: analyzed.job.analyzer,
                            seconds: analyzed.seconds,
                            outcome: analyzed.outcome,
                            kept: false,
                        });
                        continue;
                    }
                    per_job = Some(match per_job {
                        None => analyzed.seconds,
                        Some(mean) => 0.9 * mean + 0.1 * analyzed.seconds,
                    });
                    recording.push(self.record(analyzed, &finisher));
                }
                Some(ran_job) = futures::StreamExt::next(&mut recording) => {
                    queue.recorded(ran_job.asset, &ran_job.analyzer);
                    // Its readers of the same asset were queued again, their leases taken
                    // back: those claimed here and not started are no longer ours.
                    if let (Outcome::Succeeded { requeue, .. }, true) =
                        (&ran_job.outcome, ran_job.kept)
                    {
                        let unsure = queue.requeued(ran_job.asset, requeue, ran_job.submitted);
                        if !unsure.is_empty() {
                            self.confirm(&mut queue, unsure).await;
                        }
                    }
                    ran += 1;
                    report.add(ran_job);
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

    /// Renews the leases of claimed jobs still waiting for a slot; a job whose lease was lost
    /// meanwhile is dropped (its new holder runs it).
    async fn renew_waiting(&self, queue: &mut Queue) {
        let ids: Vec<i64> = queue.claimed.iter().map(|c| c.job.id).collect();
        match self.renew_leases(ids).await {
            Ok(kept) => queue.renewed(&kept, self.lease / 3),
            // Tried again soon (as a running job's heartbeat is): the leases have two thirds of
            // their time left.
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew the leases of waiting jobs");
                queue.renew_again_in(
                    (self.lease / 20).clamp(Duration::from_millis(100), Duration::from_secs(5)),
                );
            }
        }
    }

    /// Keeps these claimed jobs only if their leases are still ours (renewed); those lost are
    /// dropped. When the catalog cannot say, they are given back (a stale one is no longer
    /// ours and stays as it is) rather than run on a lease that may be gone.
    async fn confirm(&self, queue: &mut Queue, ids: Vec<i64>) {
        match self.renew_leases(ids.clone()).await {
            Ok(kept) => queue.renewed(&kept, self.lease / 3),
            Err(e) => {
                tracing::warn!(error = %e, "cannot check the leases of re-queued readers");
                let mut back = queue.take(&ids);
                self.give_back_claims(&mut back).await;
            }
        }
    }

    /// Renews these jobs' leases: for each, whether it is still ours.
    async fn renew_leases(&self, ids: Vec<i64>) -> aperture_catalog::Result<Vec<(i64, bool)>> {
        let (catalog, worker, lease) = (self.catalog.clone(), self.id.clone(), self.lease);
        blocking(move || {
            ids.into_iter()
                .map(|id| catalog.renew(id, &worker, lease).map(|kept| (id, kept)))
                .collect()
        })
        .await
    }

    /// Gives the jobs claimed and not started back to the queue, unrun.
    async fn give_back(&self, queue: &mut Queue) {
        let mut all: Vec<Claim> = queue.claimed.drain(..).collect();
        self.give_back_claims(&mut all).await;
    }

    /// Gives these claims, taken out of the queue, back to the catalog.
    async fn give_back_claims(&self, claims: &mut Vec<Claim>) {
        let ids: Vec<i64> = claims.drain(..).map(|c| c.job.id).collect();
        if ids.is_empty() {
            return;
        }
        let (catalog, worker) = (self.catalog.clone(), self.id.clone());
        if let Err(e) = blocking(move || catalog.release(&worker, &ids)).await {
            tracing::warn!(error = %e, "cannot give back claimed jobs; their leases run out");
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
    async fn run_job(&self, job: Job, finisher: &Finisher) -> RanJob {
        let analyzed = self.analyze_job(job).await;
        self.record(analyzed, finisher).await
    }

    /// Runs one job's analyzer, renewing its lease meanwhile.
    async fn analyze_job(&self, job: Job) -> Analyzed {
        let started = Instant::now();
        let mut name = job.asset.to_string();
        let work = async {
            match self.analyzers.get(&job.analyzer) {
                Some(analyzer) => self.analyze(&job, analyzer.clone(), &mut name).await,
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
            name,
            seconds,
            outcome,
            derived,
        }
    }

    /// Has `finisher` record how a job ended.
    async fn record(&self, analyzed: Analyzed, finisher: &Finisher) -> RanJob {
        let Analyzed {
            job,
            name,
            seconds,
            outcome,
            derived,
        } = analyzed;
        let finished = Finished {
            job: job.id,
            name: name.clone(),
            outcome,
            derived,
        };
        let submitted = Instant::now();
        let recorded = match finisher.submit(finished).await {
            Ok(recorded) => recorded,
            Err(stopped) => Err(aperture_catalog::Error::Backend {
                backend: "catalog",
                source: format!("the worker's finisher: {stopped}").into(),
            }),
        };
        let (kept, outcome) = match recorded {
            Ok(recorded) => recorded,
            // Not recorded: the job stays leased until its lease runs out, then runs again.
            // The other jobs of the group go on.
            Err(e) => {
                let error = format!(
                    "cannot record the result of {} for {name}: {e}",
                    job.analyzer
                );
                tracing::warn!(job = job.id, %error, "job not recorded");
                (true, Outcome::Failed { error })
            }
        };
        if !kept {
            self.forget_derived_of_erased(job.asset).await;
        }
        RanJob {
            asset: job.asset,
            submitted,
            analyzer: job.analyzer,
            seconds,
            outcome,
            kept,
        }
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
    async fn analyze(
        &self,
        job: &Job,
        analyzer: Arc<dyn Analyzer>,
        name: &mut String,
    ) -> (Outcome, bool) {
        let outcome = |outcome| (outcome, false);
        // What comes from the catalog and, on a local store, the check of the bytes: one hop
        // to a blocking thread (cheap jobs are bounded by hops, not work).
        let gathered = {
            let (catalog, blobs, asset) = (self.catalog.clone(), self.blobs.clone(), job.asset);
            let (name, reads) = (analyzer.name(), analyzer.reads());
            // The job that split a file checked its bytes; its parts do not read it all again.
            let verified = job.part.is_some();
            blocking(move || gather(catalog.as_ref(), &blobs, asset, name, reads, verified)).await
        };
        let Gathered {
            asset,
            insights,
            found_before,
            read_plates,
            in_place,
        } = match gathered {
            Ok(gathered) => gathered,
            Err(failed) => return outcome(failed),
        };
        name.clone_from(&asset.name);
        let work = match self.work(job, analyzer.as_ref()).await {
            Ok(Work::Redo(parts)) => return outcome(Outcome::RedoParts { parts }),
            Ok(work) => work,
            Err(e) => {
                return outcome(Outcome::Failed {
                    error: format!("cannot read the parts of {}: {e}", asset.name),
                });
            }
        };
        let file = match in_place {
            Some(path) => LocalFile::InPlace(path),
            None => match local_copy(&self.blobs, &asset, job.part.is_some()).await {
                Ok(file) => file,
                Err(e) => {
                    return outcome(Outcome::Failed {
                        error: format!("cannot read the bytes of {}: {e}", asset.name),
                    });
                }
            },
        };
        let keyframes = match self.keyframes(&asset, &insights, analyzer.as_ref()).await {
            Ok(keyframes) => keyframes,
            Err(e) => {
                return outcome(Outcome::Failed {
                    error: format!("cannot read the keyframes of {}: {e}", asset.name),
                });
            }
        };
        let suppress_plates = !read_plates;
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
            Ok(Done::Output(output)) => {
                self.store(&asset, analyzer.as_ref(), output, found_before.as_ref())
                    .await
            }
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
    /// object. Readers whose results, made from what it `found_before`, hold for what it found
    /// now are not queued again ([`aperture_analyze::still_current`]).
    async fn store(
        &self,
        asset: &aperture_catalog::Asset,
        analyzer: &dyn Analyzer,
        output: Output,
        found_before: Option<&FoundBefore>,
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
        let mut requeue = self.readers_of(analyzer.name());
        if let Some(before) = found_before {
            requeue.retain(|reader| {
                let kept = before.succeeded.contains(reader)
                    && aperture_analyze::still_current(
                        reader,
                        analyzer.name(),
                        &before.insights,
                        &output.insights,
                    );
                if kept {
                    tracing::debug!(asset = %asset.id, %reader, "its result holds: not queued again");
                }
                !kept
            });
        }
        let outcome = Outcome::Succeeded {
            version: analyzer.version(),
            insights: output.insights,
            requeue,
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

/// The jobs a worker holds and has not finished: claimed (waiting for a slot), running per
/// analyzer, and every (asset, analyzer) held, so that a job that reads another of the same
/// asset waits for its result instead of running on old insights and then again.
#[derive(Default)]
struct Queue {
    claimed: std::collections::VecDeque<Claim>,
    running: BTreeMap<String, usize>,
    /// (asset, analyzer) of the jobs claimed and not yet recorded; parts count one each.
    held: std::collections::HashMap<(AssetId, String), usize>,
    /// Each job's latest claim here: a run of an older claim of the same job is stale.
    latest: std::collections::HashMap<i64, u64>,
    claims: u64,
}

/// A claimed job waiting for a slot.
struct Claim {
    job: Job,
    /// Its claim's number here.
    number: u64,
    /// When it was claimed.
    at: Instant,
    /// When its lease is next renewed.
    renew: Instant,
}

impl Queue {
    fn claimed_now(&mut self, jobs: Vec<Job>, lease: Duration) {
        let now = Instant::now();
        for job in jobs {
            // Claimed again: the catalog queued it again meanwhile (a job it reads finished),
            // so an entry still here is stale.
            if let Some(i) = self.claimed.iter().position(|c| c.job.id == job.id) {
                self.claimed.remove(i);
                self.recorded(job.asset, &job.analyzer);
            }
            *self
                .held
                .entry((job.asset, job.analyzer.clone()))
                .or_insert(0) += 1;
            self.claims += 1;
            self.latest.insert(job.id, self.claims);
            self.claimed.push_back(Claim {
                job,
                number: self.claims,
                at: now,
                renew: now + lease / 3,
            });
        }
    }

    /// Whether `claim`, whose run just ended, is the latest claim of `job` here (then it is
    /// forgotten: the job is no longer claimed).
    fn is_latest(&mut self, job: i64, claim: u64) -> bool {
        let latest = self.latest.get(&job) == Some(&claim);
        if latest {
            self.latest.remove(&job);
        }
        latest
    }

    /// Forgets a claim dropped unrun.
    fn forget(&mut self, claim: &Claim) {
        if self.latest.get(&claim.job.id) == Some(&claim.number) {
            self.latest.remove(&claim.job.id);
        }
        self.recorded(claim.job.asset, &claim.job.analyzer);
    }

    fn under_limit(&self, names: Vec<String>, limits: &BTreeMap<String, usize>) -> Vec<String> {
        names
            .into_iter()
            .filter(|name| {
                limits
                    .get(name)
                    .is_none_or(|limit| self.running.get(name).copied().unwrap_or(0) < *limit)
            })
            .collect()
    }

    /// The first claimed job under its analyzer's limit and reading no job still held, taken
    /// out and counted as running, with its claim's number.
    fn next_startable(
        &mut self,
        limits: &BTreeMap<String, usize>,
        analyzers: &BTreeMap<String, Arc<dyn Analyzer>>,
    ) -> Option<(Job, u64)> {
        let i = self.claimed.iter().position(|c| {
            let job = &c.job;
            let under_limit = limits
                .get(&job.analyzer)
                .is_none_or(|limit| self.running.get(&job.analyzer).copied().unwrap_or(0) < *limit);
            let reads = analyzers.get(&job.analyzer).map_or(&[][..], |a| a.reads());
            under_limit
                && reads
                    .iter()
                    .all(|r| !self.held.contains_key(&(job.asset, (*r).to_owned())))
        })?;
        let claim = self.claimed.remove(i)?;
        *self.running.entry(claim.job.analyzer.clone()).or_insert(0) += 1;
        Some((claim.job, claim.number))
    }

    fn stopped_running(&mut self, analyzer: &str) {
        if let Some(n) = self.running.get_mut(analyzer) {
            *n = n.saturating_sub(1);
        }
    }

    fn recorded(&mut self, asset: AssetId, analyzer: &str) {
        let key = (asset, analyzer.to_owned());
        if let Some(n) = self.held.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.held.remove(&key);
            }
        }
    }

    /// Drops the jobs of `asset` by these analyzers claimed before `before`: finishing a job
    /// they read, submitted then, queued them again (another claim takes them, to run on the
    /// new results). Returns the ids of those claimed after: each is that new claim if it
    /// came after the finish was written, and stale if it came between the submission and
    /// the write, so their leases are to be checked before they run.
    fn requeued(&mut self, asset: AssetId, analyzers: &[String], before: Instant) -> Vec<i64> {
        let reads = |c: &Claim| c.job.asset == asset && analyzers.contains(&c.job.analyzer);
        let (dropped, kept): (Vec<Claim>, Vec<Claim>) = self
            .claimed
            .drain(..)
            .partition(|c| c.at < before && reads(c));
        self.claimed = kept.into();
        for claim in &dropped {
            self.forget(claim);
        }
        self.claimed
            .iter()
            .filter(|c| reads(c))
            .map(|c| c.job.id)
            .collect()
    }

    /// Takes the claims of these jobs out, forgotten.
    fn take(&mut self, ids: &[i64]) -> Vec<Claim> {
        let (taken, kept): (Vec<Claim>, Vec<Claim>) = self
            .claimed
            .drain(..)
            .partition(|c| ids.contains(&c.job.id));
        self.claimed = kept.into();
        for claim in &taken {
            self.forget(claim);
        }
        taken
    }

    /// When the next lease of a waiting job is due for renewal.
    fn renewals_due(&self) -> Option<Instant> {
        self.claimed.iter().map(|c| c.renew).min()
    }

    /// After renewing: kept jobs are renewed again a third of a lease on; lost ones are
    /// dropped (their new holder runs them).
    fn renewed(&mut self, kept: &[(i64, bool)], every: Duration) {
        let next = Instant::now() + every;
        let lost = |c: &Claim| kept.iter().any(|(id, held)| *id == c.job.id && !*held);
        let (dropped, mut waiting): (Vec<Claim>, Vec<Claim>) =
            self.claimed.drain(..).partition(lost);
        for c in &mut waiting {
            if kept.iter().any(|(id, _)| *id == c.job.id) {
                c.renew = next;
            }
        }
        self.claimed = waiting.into();
        for claim in &dropped {
            self.forget(claim);
        }
    }

    /// A renewal failed: try again after `wait`.
    fn renew_again_in(&mut self, wait: Duration) {
        let next = Instant::now() + wait;
        for c in &mut self.claimed {
            c.renew = c.renew.max(next);
        }
    }
}

/// Sleeps until `at`, or for ever when there is none.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// What an analyzer found before its new run, and the readers whose jobs last succeeded: only
/// their stored results were made from it (one that failed keeps older results, one that is
/// queued or running will read the new ones), so only they may be spared a new run.
struct FoundBefore {
    insights: Vec<aperture_core::Insight>,
    succeeded: Vec<String>,
}

/// What a job's analyzer is given, read before it runs.
struct Gathered {
    asset: aperture_catalog::Asset,
    /// The insights of the analyzers it reads.
    insights: Vec<aperture_core::Insight>,
    /// What the analyzer itself found before, and which of its readers last succeeded, when
    /// that may spare them a new run ([`aperture_analyze::may_keep_readers`]).
    found_before: Option<FoundBefore>,
    /// Whether licence plates are read: only OCR reads text that can be a plate, and only in
    /// a collection that asks for them.
    read_plates: bool,
    /// The blob's file, its bytes checked, on a local store; `None` elsewhere.
    in_place: Option<PathBuf>,
}

/// Reads what a job's analyzer is given (on a blocking thread): the asset, the insights it
/// reads, whether plates are read, and on a local store the blob's checked file. A failure is
/// the job's outcome, naming the file.
fn gather(
    catalog: &dyn Backend,
    blobs: &BlobStore,
    id: AssetId,
    name: &str,
    reads: &[&str],
    verified: bool,
) -> Result<Gathered, Outcome> {
    let asset = match catalog.asset(id) {
        Ok(asset) => asset,
        Err(aperture_catalog::Error::NotFound { .. }) => {
            return Err(Outcome::Skipped {
                reason: "the asset was removed".into(),
            });
        }
        Err(e) => {
            return Err(Outcome::Failed {
                error: e.to_string(),
            });
        }
    };
    let failed = |what: &str, e: &dyn std::fmt::Display| Outcome::Failed {
        error: format!("cannot read the {what} of {}: {e}", asset.name),
    };
    let own = aperture_analyze::may_keep_readers(name);
    let (insights, found_before) = if reads.is_empty() && !own {
        (Vec::new(), None)
    } else {
        let all = catalog.insights(id).map_err(|e| failed("insights", &e))?;
        let found_before = if own {
            let jobs = catalog.jobs_of(id).map_err(|e| failed("jobs", &e))?;
            Some(FoundBefore {
                insights: all.iter().filter(|i| i.analyzer == name).cloned().collect(),
                succeeded: jobs
                    .into_iter()
                    .filter(|j| j.part.is_none() && j.state == JobState::Succeeded)
                    .map(|j| j.analyzer)
                    .collect(),
            })
        } else {
            None
        };
        let read = all
            .into_iter()
            .filter(|i| reads.contains(&i.analyzer.as_str()));
        (read.collect(), found_before)
    };
    let read_plates = name == aperture_analyze::ocr::SPEC.name
        && catalog
            .collection(&asset.collection)
            .is_ok_and(|c| c.read_plates);
    let in_place = if verified {
        blobs.local_path(asset.hash)
    } else {
        blobs
            .verify_local_blocking(asset.hash)
            .map_err(|e| failed("bytes", &e))?
    };
    Ok(Gathered {
        asset,
        insights,
        found_before,
        read_plates,
        in_place,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: i64, asset: AssetId, analyzer: &str) -> Job {
        Job {
            id,
            asset,
            analyzer: analyzer.into(),
            state: JobState::Running,
            priority: 0,
            attempts: 1,
            analyzer_version: None,
            last_error: None,
            updated_at: UnixMillis(0),
            part: None,
            parts: 0,
        }
    }

    /// A finish that queues readers again: claims of them made before its submission are
    /// stale and go; those made after are returned to be checked; other assets' and other
    /// analyzers' claims stay, and what is held follows.
    #[test]
    fn readers_requeued_by_a_finish_go_or_are_checked_by_when_they_were_claimed() {
        let (a, b) = (AssetId::from_bytes([1; 16]), AssetId::from_bytes([2; 16]));
        let lease = Duration::from_secs(60);
        let mut queue = Queue::default();
        queue.claimed_now(vec![job(1, a, "reader"), job(2, b, "reader")], lease);
        std::thread::sleep(Duration::from_millis(2));
        let submitted = Instant::now();
        queue.claimed_now(vec![job(3, a, "reader"), job(4, a, "other")], lease);

        let unsure = queue.requeued(a, &["reader".to_owned()], submitted);
        assert_eq!(unsure, vec![3]);
        let left: Vec<i64> = queue.claimed.iter().map(|c| c.job.id).collect();
        assert_eq!(left, vec![2, 3, 4]);
        assert_eq!(queue.held.get(&(a, "reader".to_owned())), Some(&1));

        // Unconfirmed and given back: no longer claimed or held here.
        let taken = queue.take(&unsure);
        assert_eq!(taken.len(), 1);
        assert_eq!(queue.held.get(&(a, "reader".to_owned())), None);
        let left: Vec<i64> = queue.claimed.iter().map(|c| c.job.id).collect();
        assert_eq!(left, vec![2, 4]);
    }
}
