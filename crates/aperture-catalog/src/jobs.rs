//! The job queue: one job per (asset, analyzer), leased to workers; a job split in time has
//! parts, each a job of its own.
//!
//! A job over long media may be split in time ([`Outcome::Split`]): its parts are jobs of their
//! own, leased to any worker, and the job itself waits ([`JobState::Waiting`]) until the last
//! part has finished ([`Outcome::PartDone`]). It is then queued again, and the worker that
//! claims it joins the parts' results ([`JobQueue::part_results`]) into the job's insights. A
//! worker that dies loses only the part it held.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use aperture_core::{AssetId, Insight, UnixMillis};
use serde::Serialize;

use crate::Result;

/// Attempts before a job is left failed.
pub const MAX_ATTEMPTS: u32 = 3;

/// Parts one job may be split into.
pub const MAX_PARTS: usize = 10_000;

/// Claims of a job whose workers all vanished (killed, out of memory, a panic that took the
/// process) before it is left failed rather than handed to yet another worker: a file that
/// kills every worker that reads it must not do so forever.
pub const MAX_ABANDONED_CLAIMS: u32 = 5;

/// Where a job is in its life. Stored by name, so the names are a stored format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting to be claimed, or waiting out a retry's backoff.
    Queued,
    /// Leased to a worker; runnable again once the lease expires.
    Running,
    /// The analyzer ran and its insights are stored.
    Succeeded,
    /// Out of attempts, or unrecoverable; `last_error` says why. Only a requeue runs it again.
    Failed,
    /// The analyzer does not apply to this asset after all (said so when it ran).
    Skipped,
    /// Split into parts that run as jobs of their own; queued again when they have all
    /// succeeded, failed when one of them fails.
    Waiting,
}

impl JobState {
    /// Every state, in the order of the job's life.
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Running,
        JobState::Waiting,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Skipped,
    ];

    /// Whether work remains: queued, running, or waiting for its parts.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            JobState::Queued | JobState::Running | JobState::Waiting
        )
    }

    /// The lowercase name used in the catalog, JSON and command output.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Skipped => "skipped",
            JobState::Waiting => "waiting",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown job state {s:?}"))
    }
}

/// A job to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The asset to analyse.
    pub asset: AssetId,
    /// The analyzer's name; with `asset`, the job's identity.
    pub analyzer: String,
    /// Higher runs first (thumbnails before heavy models).
    pub priority: i32,
}

/// A job as stored, for reports and for the worker that claimed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    /// The catalog's id for the job, passed back to [`JobQueue::renew`] and [`JobQueue::finish`].
    pub id: i64,
    /// The asset to analyse.
    pub asset: AssetId,
    /// The analyzer's name.
    pub analyzer: String,
    /// Where the job is now.
    pub state: JobState,
    /// Higher runs first.
    pub priority: i32,
    /// Claims so far, this one included when it is running; reset by a requeue.
    pub attempts: u32,
    /// The analyzer version whose results are stored, if any run succeeded.
    pub analyzer_version: Option<String>,
    /// The last failure's message, or why the job was skipped.
    pub last_error: Option<String>,
    /// The last change of state.
    pub updated_at: UnixMillis,
    /// For a part of a split job: which stretch of the file it analyses.
    pub part: Option<Part>,
    /// For a split job: how many parts it was split into (0: it was not).
    pub parts: u32,
}

/// A stretch of a file in time, `(start_ms, end_ms)`: `end_ms` is exclusive, and `None` means
/// "to the end of the file".
pub type Stretch = (u64, Option<u64>);

/// A stretch of time of a long file, analysed by one job of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Part {
    /// Its position among the parts, from 1.
    pub index: u32,
    /// How many parts the file was split into.
    pub count: u32,
    /// Where it starts, in milliseconds from the start of the file.
    pub start_ms: u64,
    /// Where it ends (exclusive); `None` for the last part, which runs to the end of the file
    /// whatever its length turns out to be.
    pub end_ms: Option<u64>,
}

/// What one part of a split job left for the job to join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartResult {
    /// The part.
    pub part: Part,
    /// The analyzer version that produced it: a job joins only parts of its own version.
    pub version: String,
    /// The analyzer's own encoding of what it found in the part.
    pub result: Vec<u8>,
}

/// How one job ended, as a worker reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The analyzer's insights, which replace those of its earlier runs.
    Succeeded {
        /// The version of the analyzer that produced `insights`, recorded on the job.
        version: String,
        /// Everything the analyzer found in the asset; may be empty.
        insights: Vec<Insight>,
        /// Analyzers of the same asset that read these insights: their jobs are queued
        /// again in the same transaction. One of them that is running loses its lease, so
        /// a result computed from the old insights is dropped, never stored.
        requeue: Vec<String>,
    },
    /// Worth another try (a timeout, a busy resource): retried with backoff, then failed.
    Failed {
        /// What went wrong, kept in `last_error`.
        error: String,
    },
    /// Will never work (corrupt or unsupported input): failed at once, error kept.
    Unrecoverable {
        /// What went wrong, kept in `last_error`.
        error: String,
    },
    /// The analyzer does not apply to this asset.
    Skipped {
        /// Why, kept in `last_error`.
        reason: String,
    },
    /// The job is split in time: one part per stretch, each `(start_ms, end_ms)` with `None`
    /// for "to the end". The parts are queued at the job's priority, replacing any parts of
    /// an earlier split, and the job waits for them. The stretches follow one another without
    /// gap or overlap (each starts where the one before ends, from 0; only the last may be
    /// open-ended), at most [`MAX_PARTS`]; an analyzer that wants context past a stretch's
    /// edges decodes it itself. Anything else is refused as [`Error::InvalidInput`].
    ///
    /// [`Error::InvalidInput`]: crate::Error::InvalidInput
    Split {
        /// The stretches, in order.
        parts: Vec<Stretch>,
    },
    /// The job, claimed to join its parts, found some of them made by another version of its
    /// analyzer (a worker not yet upgraded): those parts are queued again, their results
    /// dropped, and the job waits for them; the others are kept.
    RedoParts {
        /// The parts' numbers, from 1.
        parts: Vec<u32>,
    },
    /// A part of a split job finished: its result is kept for the job to join. When it was
    /// the last part, the job is queued again.
    PartDone {
        /// The analyzer version that produced `result`.
        version: String,
        /// The analyzer's encoding of what it found.
        result: Vec<u8>,
    },
}

/// The job queue. Every write is one transaction, so concurrent workers on one catalog never
/// run a job twice: a job is leased to one worker at a time, and a worker whose lease expired
/// (it crashed, or stalled) can no longer finish it.
pub trait JobQueue: Send + Sync {
    /// Queues the jobs that do not exist yet; existing ones are left as they are, so queuing
    /// twice, or after the job succeeded, runs nothing again. Returns how many were added.
    fn enqueue(&self, jobs: &[NewJob]) -> Result<u64>;

    /// Queues a job of the analyzer `spec` describes (at its priority) for every asset of its
    /// kinds that has none: assets ingested before the analyzer existed. Returns how many were
    /// added.
    fn enqueue_missing(&self, spec: &aperture_core::AnalyzerSpec) -> Result<u64>;

    /// Queues again the finished jobs of `analyzer` whose stored results come from another
    /// version. Their insights stay (and stay searchable) until the new run replaces them.
    fn requeue_stale(&self, analyzer: &str, version: &str) -> Result<u64>;

    /// Leases up to `limit` runnable jobs of the given analyzers to `worker`: queued jobs
    /// that are due, and running jobs whose lease expired, highest priority first.
    fn claim(
        &self,
        worker: &str,
        analyzers: &[String],
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Job>>;

    /// Extends the lease of a running job held by `worker` to `lease` from now, for jobs that
    /// run longer than one lease. False when the lease was lost already.
    fn renew(&self, job: i64, worker: &str, lease: Duration) -> Result<bool>;

    /// Records how a leased job ended. False, and nothing written, when `worker` no longer
    /// holds the lease (it expired and the job went to another worker).
    /// [`Error::InvalidInput`](crate::Error::InvalidInput), and nothing written, for an outcome
    /// that does not fit the job: a split that is not one ([`Outcome::Split`]), a part's result
    /// for a whole job, a whole result for a part.
    fn finish(&self, job: i64, worker: &str, outcome: &Outcome) -> Result<bool>;

    /// Records how several leased jobs ended: each answers as [`JobQueue::finish`] would, in
    /// order, and one that is refused (or fails) leaves no trace while the others are kept.
    /// The default finishes them one by one, each in its transaction (PostgreSQL keeps it:
    /// its finishes lock rows of other jobs, which one transaction for many could take in
    /// an order that deadlocks against another worker's); SQLite, whose writers take turns,
    /// records them in one transaction, a savepoint each, and answers `Err` when that
    /// transaction failed as a whole (then nothing is recorded).
    fn finish_many(&self, worker: &str, finished: &[(i64, Outcome)]) -> Result<Vec<Result<bool>>> {
        Ok(finished
            .iter()
            .map(|(job, outcome)| self.finish(*job, worker, outcome))
            .collect())
    }

    /// Gives leased jobs back unrun: queued again at once, the claim not counted as an
    /// attempt. For a worker that stops with jobs it claimed but did not start. Jobs `worker`
    /// no longer holds are left alone; returns how many were given back.
    fn release(&self, worker: &str, jobs: &[i64]) -> Result<u64>;

    /// The earliest time a job of these analyzers may become runnable: a queued job's due time
    /// (now, or after a retry's backoff), a running one's lease expiry. `None` when there is
    /// neither (jobs waiting for their parts count through their parts).
    fn next_due(&self, analyzers: &[String]) -> Result<Option<UnixMillis>>;

    /// Job counts by analyzer and state.
    fn job_counts(&self) -> Result<Vec<(String, JobState, u64)>>;
    /// Job counts by state alone: cheap enough to poll on a large queue.
    fn state_counts(&self) -> Result<Vec<(JobState, u64)>>;
    /// The assets of these collections and their jobs' counts by state, for a caller who
    /// may see only them.
    fn counts_in(&self, collections: &[crate::CollectionId])
    -> Result<(u64, Vec<(JobState, u64)>)>;

    /// The jobs of one asset, parts of split jobs included.
    fn jobs_of(&self, asset: AssetId) -> Result<Vec<Job>>;

    /// The results of the parts of a split job, in order: read by the worker that joins them.
    fn part_results(&self, job: i64) -> Result<Vec<PartResult>>;

    /// Waits until jobs may have been queued, or `timeout` passed: an idle worker calls it
    /// instead of polling. True when woken by new work. The default sleeps (SQLite has no
    /// notifications) at most half a second, which is how often it polls; PostgreSQL's wakes
    /// on `NOTIFY` from any process.
    fn wait_for_jobs(&self, timeout: Duration) -> Result<bool> {
        std::thread::sleep(timeout.min(Duration::from_millis(500)));
        Ok(false)
    }
}

/// The wait before attempt `attempts + 1` of a job that failed `attempts` times: 2 s, 8 s, 32 s.
pub fn retry_backoff(attempts: u32) -> Duration {
    Duration::from_secs(2u64 << (2 * attempts.saturating_sub(1).min(8)))
}
