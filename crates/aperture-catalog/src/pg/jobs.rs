//! The job queue on PostgreSQL. Claims pick rows with `FOR UPDATE SKIP LOCKED`, so workers
//! never wait for each other and never lease one job twice; finishing locks the whole job
//! (its part 0), so parts finishing at once still queue the job to join them.

use std::time::Duration;

use aperture_core::{AssetId, UnixMillis};
use postgres::{Row, Transaction};

use super::PgCatalog;
use super::catalog::{insert_insights, note_change};
use crate::decode::{id_from, millis, part_failure, refusal};
use crate::jobs::{
    Job, JobQueue, JobState, MAX_ABANDONED_CLAIMS, MAX_ATTEMPTS, NewJob, Outcome, Part, PartResult,
    retry_backoff,
};
use crate::{Error, Result};

const JOB_COLUMNS: &str = "id, asset_id, analyzer, state, priority, attempts, analyzer_version, \
     last_error, updated_at, part, parts, start_ms, end_ms";

fn job_from_row(r: &Row) -> Result<Job> {
    let state: String = r.get(3);
    let (part, parts): (i32, i32) = (r.get(9), r.get(10));
    let (start, end): (Option<i64>, Option<i64>) = (r.get(11), r.get(12));
    let part = (part > 0).then(|| Part {
        index: part as u32,
        count: parts.max(0) as u32,
        start_ms: start.unwrap_or(0).max(0) as u64,
        end_ms: end.map(|e| e.max(0) as u64),
    });
    Ok(Job {
        id: r.get(0),
        asset: id_from(r.get(1))?,
        analyzer: r.get(2),
        state: state.parse().map_err(|reason| Error::Corrupt { reason })?,
        priority: r.get(4),
        attempts: r.get::<_, i32>(5).max(0) as u32,
        analyzer_version: r.get(6),
        last_error: r.get(7),
        updated_at: UnixMillis(r.get(8)),
        parts: if part.is_some() {
            0
        } else {
            parts.max(0) as u32
        },
        part,
    })
}

/// Removes the parts of a job (their results with them) and marks it unsplit.
fn drop_parts(tx: &mut Transaction<'_>, asset: &[u8], analyzer: &str) -> Result<()> {
    tx.execute(
        "DELETE FROM jobs WHERE asset_id = $1 AND analyzer = $2 AND part > 0",
        &[&asset, &analyzer],
    )?;
    tx.execute(
        "UPDATE jobs SET parts = 0 WHERE asset_id = $1 AND analyzer = $2 AND part = 0",
        &[&asset, &analyzer],
    )?;
    Ok(())
}

/// Ends a split job whose part failed for good or was skipped (see the SQLite queue).
fn end_split_job(
    tx: &mut Transaction<'_>,
    asset: &[u8],
    analyzer: &str,
    part: Part,
    state: JobState,
    why: &str,
    now: i64,
) -> Result<()> {
    let message = part_failure(part, why);
    drop_parts(tx, asset, analyzer)?;
    tx.execute(
        "UPDATE jobs SET state = $3, last_error = $4, lease_owner = NULL,
             lease_expires_at = NULL, updated_at = $5
         WHERE asset_id = $1 AND analyzer = $2 AND part = 0 AND state = 'waiting'",
        &[&asset, &analyzer, &state.as_str(), &message, &now],
    )?;
    Ok(())
}

impl JobQueue for PgCatalog {
    fn enqueue(&self, jobs: &[NewJob]) -> Result<u64> {
        self.tx_again(|tx| {
            let now = UnixMillis::now().0;
            let mut added = 0;
            for job in jobs {
                added += tx.execute(
                    "INSERT INTO jobs (asset_id, analyzer, state, priority, run_after,
                         created_at, updated_at)
                     SELECT $1, $2, 'queued', $3, $4, $4, $4
                     WHERE EXISTS (SELECT 1 FROM assets WHERE id = $1)
                     ON CONFLICT (asset_id, analyzer, part) DO NOTHING",
                    &[
                        &job.asset.as_bytes().as_slice(),
                        &job.analyzer,
                        &job.priority,
                        &now,
                    ],
                )?;
            }
            Ok(added)
        })
    }

    fn enqueue_missing(&self, spec: &aperture_core::AnalyzerSpec) -> Result<u64> {
        if spec.kinds.is_empty() {
            return Ok(0);
        }
        let kinds: Vec<&str> = spec.kinds.iter().map(|k| k.as_str()).collect();
        let now = UnixMillis::now().0;
        self.tx_again(|tx| {
            Ok(tx.execute(
                "INSERT INTO jobs (asset_id, analyzer, state, priority, run_after, created_at,
                     updated_at)
                 SELECT a.id, $1, 'queued', $2, $3, $3, $3 FROM assets a
                 WHERE a.kind = ANY($4)
                   AND NOT EXISTS (SELECT 1 FROM jobs j
                                   WHERE j.asset_id = a.id AND j.analyzer = $1)
                 ON CONFLICT (asset_id, analyzer, part) DO NOTHING",
                &[&spec.name, &spec.priority, &now, &kinds],
            )?)
        })
    }

    fn requeue_stale(&self, analyzer: &str, version: &str) -> Result<u64> {
        let now = UnixMillis::now().0;
        self.tx_again(|tx| {
            tx.execute(
                "DELETE FROM jobs p WHERE p.analyzer = $1 AND p.part > 0 AND EXISTS (
                     SELECT 1 FROM jobs j WHERE j.asset_id = p.asset_id AND j.analyzer = $1
                       AND j.part = 0 AND j.state IN ('succeeded', 'failed', 'skipped')
                       AND (j.analyzer_version IS NULL OR j.analyzer_version <> $2))",
                &[&analyzer, &version],
            )?;
            Ok(tx.execute(
                "UPDATE jobs SET state = 'queued', attempts = 0, run_after = $3,
                     last_error = NULL, lease_owner = NULL, lease_expires_at = NULL, parts = 0,
                     updated_at = $3
                 WHERE analyzer = $1 AND part = 0 AND state IN ('succeeded', 'failed', 'skipped')
                   AND (analyzer_version IS NULL OR analyzer_version <> $2)",
                &[&analyzer, &version, &now],
            )?)
        })
    }

    fn claim(
        &self,
        worker: &str,
        analyzers: &[String],
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Job>> {
        if analyzers.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let max_abandoned = MAX_ABANDONED_CLAIMS as i32;
        // A claim whose outcome stayed unknown hands out nothing: jobs it may have leased run
        // when their lease runs out (`Postgres::tx` says when that can happen).
        let claimed = self.tx(|tx| {
            let now = UnixMillis::now().0;
            // Jobs abandoned too often are not handed out again (see the SQLite queue).
            let abandoned = tx.query(
                &format!(
                    "UPDATE jobs SET state = 'failed', lease_owner = NULL,
                         lease_expires_at = NULL,
                         last_error = 'its worker stopped (killed, out of memory or crashed) on \
                             each of ' || attempts || ' attempts',
                         updated_at = $1
                     WHERE id IN (SELECT id FROM jobs
                                  WHERE state = 'running' AND lease_expires_at < $1
                                    AND attempts >= $2
                                  FOR UPDATE SKIP LOCKED)
                     RETURNING {JOB_COLUMNS}"
                ),
                &[&now, &max_abandoned],
            )?;
            for row in &abandoned {
                let job = job_from_row(row)?;
                let (asset, analyzer) = (job.asset.as_bytes().as_slice(), job.analyzer.as_str());
                match (job.part, job.last_error.as_deref()) {
                    (Some(part), Some(why)) => {
                        end_split_job(tx, asset, analyzer, part, JobState::Failed, why, now)?;
                    }
                    (None, _) if job.parts > 0 => drop_parts(tx, asset, analyzer)?,
                    _ => {}
                }
            }
            let rows = tx.query(
                &format!(
                    "UPDATE jobs SET state = 'running', attempts = attempts + 1,
                         lease_owner = $4, lease_expires_at = $5, updated_at = $2
                     WHERE id IN (SELECT id FROM jobs
                                  WHERE state IN ('queued', 'running') AND analyzer = ANY($1)
                                    AND ((state = 'queued' AND run_after <= $2)
                                         OR (state = 'running' AND lease_expires_at < $2))
                                  ORDER BY priority DESC, id LIMIT $3
                                  FOR UPDATE SKIP LOCKED)
                     RETURNING {JOB_COLUMNS}"
                ),
                &[&analyzers, &now, &limit, &worker, &(now + millis(lease))],
            )?;
            let mut claimed = rows.iter().map(job_from_row).collect::<Result<Vec<_>>>()?;
            claimed.sort_by_key(|j| (std::cmp::Reverse(j.priority), j.id));
            Ok(claimed)
        });
        match claimed {
            Err(e) if e.is_outcome_unknown() => {
                tracing::warn!(error = %e, "a claim may have leased jobs: they wait out the lease");
                Ok(Vec::new())
            }
            other => other,
        }
    }

    fn renew(&self, job: i64, worker: &str, lease: Duration) -> Result<bool> {
        self.with_retry(|c| {
            let now = UnixMillis::now().0;
            let changed = c.execute(
                "UPDATE jobs SET lease_expires_at = $3, updated_at = $4
                 WHERE id = $1 AND state = 'running' AND lease_owner = $2",
                &[&job, &worker, &(now + millis(lease)), &now],
            )?;
            Ok(changed == 1)
        })
    }

    fn release(&self, worker: &str, jobs: &[i64]) -> Result<u64> {
        self.tx(|tx| {
            Ok(tx.execute(
                "UPDATE jobs SET state = 'queued', attempts = GREATEST(attempts - 1, 0),
                     lease_owner = NULL, lease_expires_at = NULL, run_after = $3,
                     updated_at = $3
                 WHERE id = ANY($1) AND state = 'running' AND lease_owner = $2",
                &[&jobs, &worker, &UnixMillis::now().0],
            )?)
        })
    }

    fn finish(&self, job: i64, worker: &str, outcome: &Outcome) -> Result<bool> {
        self.tx(|tx| finish_in(tx, job, worker, outcome))
    }

    fn next_due(&self, analyzers: &[String]) -> Result<Option<UnixMillis>> {
        if analyzers.is_empty() {
            return Ok(None);
        }
        let due: Option<i64> = self.with_retry(|c| {
            Ok(c.query_one(
                "SELECT MIN(CASE state WHEN 'queued' THEN run_after ELSE lease_expires_at END)
                 FROM jobs WHERE analyzer = ANY($1) AND state IN ('queued', 'running')",
                &[&analyzers],
            )?
            .get(0))
        })?;
        Ok(due.map(UnixMillis))
    }

    fn job_counts(&self) -> Result<Vec<(String, JobState, u64)>> {
        let rows = self.with_retry(|c| {
            Ok(c.query(
                "SELECT analyzer, state, COUNT(*) FROM jobs GROUP BY analyzer, state
                 ORDER BY analyzer, state",
                &[],
            )?)
        })?;
        rows.iter()
            .map(|r| {
                let state: String = r.get(1);
                let state = state.parse().map_err(|reason| Error::Corrupt { reason })?;
                Ok((r.get(0), state, r.get::<_, i64>(2) as u64))
            })
            .collect()
    }

    fn state_counts(&self) -> Result<Vec<(JobState, u64)>> {
        let rows = self.with_retry(|c| {
            Ok(c.query(
                "SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state",
                &[],
            )?)
        })?;
        rows.iter()
            .map(|r| {
                let state: String = r.get(0);
                let state = state.parse().map_err(|reason| Error::Corrupt { reason })?;
                Ok((state, r.get::<_, i64>(1) as u64))
            })
            .collect()
    }

    fn counts_in(
        &self,
        collections: &[crate::CollectionId],
    ) -> Result<(u64, Vec<(JobState, u64)>)> {
        let ids: Vec<i64> = collections.iter().map(|c| c.0).collect();
        let (assets, rows) = self.with_retry(|c| {
            let assets: i64 = c
                .query_one(
                    "SELECT COUNT(*) FROM assets WHERE collection_id = ANY($1)",
                    &[&ids],
                )?
                .get(0);
            let rows = c.query(
                "SELECT j.state, COUNT(*) FROM jobs j JOIN assets a ON a.id = j.asset_id
                 WHERE a.collection_id = ANY($1) GROUP BY j.state ORDER BY j.state",
                &[&ids],
            )?;
            Ok((assets, rows))
        })?;
        let states = rows
            .iter()
            .map(|r| {
                let state: String = r.get(0);
                let state = state.parse().map_err(|reason| Error::Corrupt { reason })?;
                Ok((state, r.get::<_, i64>(1) as u64))
            })
            .collect::<Result<_>>()?;
        Ok((assets as u64, states))
    }

    fn jobs_of(&self, asset: AssetId) -> Result<Vec<Job>> {
        let rows = self.with_retry(|c| {
            Ok(c.query(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE asset_id = $1
                     ORDER BY priority DESC, analyzer, part"
                ),
                &[&asset.as_bytes().as_slice()],
            )?)
        })?;
        rows.iter().map(job_from_row).collect()
    }

    fn part_results(&self, job: i64) -> Result<Vec<PartResult>> {
        let rows = self.with_retry(|c| {
            Ok(c.query(
                "SELECT p.part, p.parts, p.start_ms, p.end_ms, p.analyzer_version, p.result
                 FROM jobs j JOIN jobs p
                   ON p.asset_id = j.asset_id AND p.analyzer = j.analyzer AND p.part > 0
                 WHERE j.id = $1 AND j.part = 0 AND p.state = 'succeeded'
                 ORDER BY p.part",
                &[&job],
            )?)
        })?;
        Ok(rows
            .iter()
            .map(|r| PartResult {
                part: Part {
                    index: r.get::<_, i32>(0).max(0) as u32,
                    count: r.get::<_, i32>(1).max(0) as u32,
                    start_ms: r.get::<_, Option<i64>>(2).unwrap_or(0).max(0) as u64,
                    end_ms: r.get::<_, Option<i64>>(3).map(|e| e.max(0) as u64),
                },
                version: r.get::<_, Option<String>>(4).unwrap_or_default(),
                result: r.get::<_, Option<Vec<u8>>>(5).unwrap_or_default(),
            })
            .collect())
    }

    fn wait_for_jobs(&self, timeout: Duration) -> Result<bool> {
        Ok(self.wait_notified(timeout))
    }
}

/// [`JobQueue::finish`] in one transaction.
fn finish_in(tx: &mut Transaction<'_>, job: i64, worker: &str, outcome: &Outcome) -> Result<bool> {
    let now = UnixMillis::now().0;
    // The whole job first (its part 0), then this row: every finish of one job's parts takes
    // the locks in this order, so they run one after the other.
    tx.execute(
        "SELECT 1 FROM jobs j JOIN jobs o ON o.asset_id = j.asset_id AND o.analyzer = j.analyzer
         WHERE j.id = $1 AND o.part = 0 FOR UPDATE OF o",
        &[&job],
    )?;
    let held = tx.query_opt(
        &format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE id = $1 AND state = 'running' AND lease_owner = $2 FOR UPDATE"
        ),
        &[&job, &worker],
    )?;
    let Some(held) = held else {
        return Ok(false);
    };
    let held = job_from_row(&held)?;
    let asset = held.asset.as_bytes().to_vec();
    let asset = asset.as_slice();
    let analyzer = held.analyzer.as_str();
    if let Some(refused) = refusal(job, &held, outcome) {
        return Err(refused);
    }
    match (outcome, held.part) {
        (Outcome::RedoParts { parts }, None) => {
            for n in parts.iter().filter(|n| **n > 0) {
                let n = i32::try_from(*n).unwrap_or(i32::MAX);
                tx.execute(
                    "UPDATE jobs SET state = 'queued', attempts = 0, run_after = $4,
                         analyzer_version = NULL, result = NULL, last_error = NULL,
                         lease_owner = NULL, lease_expires_at = NULL, updated_at = $4
                     WHERE asset_id = $1 AND analyzer = $2 AND part = $3",
                    &[&asset, &analyzer, &n, &now],
                )?;
            }
            tx.execute(
                "UPDATE jobs SET state = 'waiting', lease_owner = NULL,
                     lease_expires_at = NULL, updated_at = $2
                 WHERE id = $1",
                &[&job, &now],
            )?;
        }
        (
            Outcome::Succeeded {
                version,
                insights,
                requeue,
            },
            None,
        ) => {
            tx.execute(
                "DELETE FROM insights WHERE asset_id = $1 AND analyzer = $2",
                &[&asset, &analyzer],
            )?;
            insert_insights(tx, insights)?;
            note_change(tx, asset)?;
            drop_parts(tx, asset, analyzer)?;
            tx.execute(
                "UPDATE jobs SET state = 'succeeded', analyzer_version = $2,
                     last_error = NULL, lease_owner = NULL, lease_expires_at = NULL,
                     updated_at = $3
                 WHERE id = $1",
                &[&job, version, &now],
            )?;
            for dependent in requeue.iter().filter(|d| d.as_str() != analyzer) {
                drop_parts(tx, asset, dependent)?;
                tx.execute(
                    "UPDATE jobs SET state = 'queued', attempts = 0, run_after = $3,
                         last_error = NULL, lease_owner = NULL, lease_expires_at = NULL,
                         updated_at = $3
                     WHERE asset_id = $1 AND analyzer = $2 AND part = 0",
                    &[&asset, dependent, &now],
                )?;
            }
        }
        (Outcome::Split { parts }, None) => {
            drop_parts(tx, asset, analyzer)?;
            let count = parts.len() as i32;
            for (n, (start, end)) in parts.iter().enumerate() {
                tx.execute(
                    "INSERT INTO jobs (asset_id, analyzer, state, priority, run_after,
                         created_at, updated_at, part, parts, start_ms, end_ms)
                     SELECT asset_id, analyzer, 'queued', priority, $2, $2, $2, $3, $4, $5, $6
                     FROM jobs WHERE id = $1",
                    &[
                        &job,
                        &now,
                        &(n as i32 + 1),
                        &count,
                        &(*start as i64),
                        &end.map(|e| e as i64),
                    ],
                )?;
            }
            tx.execute(
                "UPDATE jobs SET state = 'waiting', parts = $2, last_error = NULL,
                     lease_owner = NULL, lease_expires_at = NULL, updated_at = $3
                 WHERE id = $1",
                &[&job, &count, &now],
            )?;
        }
        (Outcome::PartDone { version, result }, Some(_)) => {
            tx.execute(
                "UPDATE jobs SET state = 'succeeded', analyzer_version = $2, result = $3,
                     last_error = NULL, lease_owner = NULL, lease_expires_at = NULL,
                     updated_at = $4
                 WHERE id = $1",
                &[&job, version, result, &now],
            )?;
            tx.execute(
                "UPDATE jobs SET state = 'queued', attempts = 0, run_after = $3, updated_at = $3
                 WHERE asset_id = $1 AND analyzer = $2 AND part = 0 AND state = 'waiting'
                   AND NOT EXISTS (
                       SELECT 1 FROM jobs p WHERE p.asset_id = $1 AND p.analyzer = $2
                         AND p.part > 0 AND p.state <> 'succeeded')",
                &[&asset, &analyzer, &now],
            )?;
        }
        (Outcome::Failed { error }, _) if held.attempts < MAX_ATTEMPTS => {
            let due = now + millis(retry_backoff(held.attempts));
            tx.execute(
                "UPDATE jobs SET state = 'queued', run_after = $2, last_error = $3,
                     lease_owner = NULL, lease_expires_at = NULL, updated_at = $4
                 WHERE id = $1",
                &[&job, &due, error, &now],
            )?;
        }
        (Outcome::Failed { error } | Outcome::Unrecoverable { error }, Some(part)) => {
            end_split_job(tx, asset, analyzer, part, JobState::Failed, error, now)?;
        }
        (Outcome::Skipped { reason }, Some(part)) => {
            end_split_job(tx, asset, analyzer, part, JobState::Skipped, reason, now)?;
        }
        (Outcome::Failed { error } | Outcome::Unrecoverable { error }, None) => {
            drop_parts(tx, asset, analyzer)?;
            tx.execute(
                "UPDATE jobs SET state = 'failed', last_error = $2, lease_owner = NULL,
                     lease_expires_at = NULL, updated_at = $3
                 WHERE id = $1",
                &[&job, error, &now],
            )?;
        }
        (Outcome::Skipped { reason }, None) => {
            drop_parts(tx, asset, analyzer)?;
            tx.execute(
                "UPDATE jobs SET state = 'skipped', last_error = $2, lease_owner = NULL,
                     lease_expires_at = NULL, updated_at = $3
                 WHERE id = $1",
                &[&job, reason, &now],
            )?;
        }
        // Refused above.
        (
            Outcome::Succeeded { .. } | Outcome::Split { .. } | Outcome::RedoParts { .. },
            Some(_),
        )
        | (Outcome::PartDone { .. }, None) => unreachable!("refusal() refuses these"),
    }
    Ok(true)
}
