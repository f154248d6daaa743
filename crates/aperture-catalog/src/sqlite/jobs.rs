//! The job queue on SQLite. Claims run in one IMMEDIATE transaction, which SQLite serialises
//! across connections and processes: two workers never lease the same job.

use std::time::Duration;

use aperture_core::{AssetId, UnixMillis};
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params, params_from_iter};

use super::SqliteCatalog;
use crate::decode::{id_from, millis, part_failure, refusal};
use crate::jobs::{
    Job, JobQueue, JobState, MAX_ABANDONED_CLAIMS, MAX_ATTEMPTS, NewJob, Outcome, Part, PartResult,
    retry_backoff,
};
use crate::{Error, Result};

const JOB_COLUMNS: &str = "id, asset_id, analyzer, state, priority, attempts, analyzer_version, \
     last_error, updated_at, part, parts, start_ms, end_ms";

fn job_from_row(r: &Row<'_>) -> rusqlite::Result<Result<Job>> {
    let asset: Vec<u8> = r.get(1)?;
    let state: String = r.get(3)?;
    let (id, analyzer, priority, attempts, version, error, updated) = (
        r.get(0)?,
        r.get(2)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    );
    let (part, parts): (u32, u32) = (r.get(9)?, r.get(10)?);
    let (start, end): (Option<i64>, Option<i64>) = (r.get(11)?, r.get(12)?);
    let part = (part > 0).then_some((part, parts, start.unwrap_or(0), end));
    Ok((|| {
        Ok(Job {
            id,
            asset: id_from(&asset)?,
            analyzer,
            state: state.parse().map_err(|reason| Error::Corrupt { reason })?,
            priority,
            attempts,
            analyzer_version: version,
            last_error: error,
            updated_at: UnixMillis(updated),
            part: part.map(|(index, count, start, end)| Part {
                index,
                count,
                start_ms: start.max(0) as u64,
                end_ms: end.map(|e| e.max(0) as u64),
            }),
            parts: if part.is_some() { 0 } else { parts },
        })
    })())
}

/// Removes the parts of a job (their results with them) and marks it unsplit.
fn drop_parts(tx: &rusqlite::Connection, asset: &[u8], analyzer: &str) -> Result<()> {
    tx.prepare_cached("DELETE FROM jobs WHERE asset_id = ?1 AND analyzer = ?2 AND part > 0")?
        .execute(params![asset, analyzer])?;
    tx.prepare_cached(
        "UPDATE jobs SET parts = 0 WHERE asset_id = ?1 AND analyzer = ?2 AND part = 0",
    )?
    .execute(params![asset, analyzer])?;
    Ok(())
}

/// Ends a split job whose part failed for good or was skipped: the job takes the part's
/// state, its message names the part, and the other parts are dropped (their work is moot).
fn end_split_job(
    tx: &rusqlite::Connection,
    asset: &[u8],
    analyzer: &str,
    part: Part,
    state: JobState,
    why: &str,
    now: i64,
) -> Result<()> {
    let message = part_failure(part, why);
    drop_parts(tx, asset, analyzer)?;
    tx.prepare_cached(
        "UPDATE jobs SET state = ?3, last_error = ?4, lease_owner = NULL,
             lease_expires_at = NULL, updated_at = ?5
         WHERE asset_id = ?1 AND analyzer = ?2 AND part = 0 AND state = 'waiting'",
    )?
    .execute(params![asset, analyzer, state.as_str(), message, now])?;
    Ok(())
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

impl JobQueue for SqliteCatalog {
    fn enqueue(&self, jobs: &[NewJob]) -> Result<u64> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = UnixMillis::now().0;
        let mut added = 0;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO jobs (asset_id, analyzer, state, priority, run_after, created_at,
                     updated_at)
                 SELECT ?1, ?2, 'queued', ?3, ?4, ?4, ?4
                 WHERE EXISTS (SELECT 1 FROM assets WHERE id = ?1)
                 ON CONFLICT (asset_id, analyzer, part) DO NOTHING",
            )?;
            for job in jobs {
                added += stmt.execute(params![
                    job.asset.as_bytes().as_slice(),
                    job.analyzer,
                    job.priority,
                    now
                ])? as u64;
            }
        }
        tx.commit()?;
        Ok(added)
    }

    fn enqueue_missing(&self, spec: &aperture_core::AnalyzerSpec) -> Result<u64> {
        let (analyzer, kinds, priority) = (spec.name, spec.kinds, spec.priority);
        if kinds.is_empty() {
            return Ok(0);
        }
        let now = UnixMillis::now().0;
        let sql = format!(
            "INSERT INTO jobs (asset_id, analyzer, state, priority, run_after, created_at,
                 updated_at)
             SELECT a.id, ?, 'queued', ?, ?, ?, ? FROM assets a
             WHERE a.kind IN ({})
               AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.asset_id = a.id AND j.analyzer = ?)",
            placeholders(kinds.len())
        );
        let mut values: Vec<rusqlite::types::Value> = vec![
            analyzer.to_owned().into(),
            i64::from(priority).into(),
            now.into(),
            now.into(),
            now.into(),
        ];
        values.extend(kinds.iter().map(|k| k.as_str().to_owned().into()));
        values.push(analyzer.to_owned().into());
        let added = self.write().execute(&sql, params_from_iter(values))?;
        Ok(added as u64)
    }

    fn requeue_stale(&self, analyzer: &str, version: &str) -> Result<u64> {
        let now = UnixMillis::now().0;
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // A stale job that was split (and failed) starts over with a new split.
        tx.execute(
            "DELETE FROM jobs WHERE analyzer = ?1 AND part > 0 AND EXISTS (
                 SELECT 1 FROM jobs j WHERE j.asset_id = jobs.asset_id AND j.analyzer = ?1
                   AND j.part = 0 AND j.state IN ('succeeded', 'failed', 'skipped')
                   AND (j.analyzer_version IS NULL OR j.analyzer_version != ?2))",
            params![analyzer, version],
        )?;
        let changed = tx.execute(
            "UPDATE jobs SET state = 'queued', attempts = 0, run_after = ?3, last_error = NULL,
                 lease_owner = NULL, lease_expires_at = NULL, parts = 0, updated_at = ?3
             WHERE analyzer = ?1 AND part = 0 AND state IN ('succeeded', 'failed', 'skipped')
               AND (analyzer_version IS NULL OR analyzer_version != ?2)",
            params![analyzer, version, now],
        )?;
        tx.commit()?;
        Ok(changed as u64)
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
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = UnixMillis::now().0;
        // Jobs abandoned too often are not handed out again. A part among them fails the job
        // it belongs to; a job abandoned while joining its parts loses them.
        let abandoned: Vec<Job> = {
            let mut stmt = tx.prepare_cached(&format!(
                "UPDATE jobs SET state = 'failed', lease_owner = NULL, lease_expires_at = NULL,
                     last_error = 'its worker stopped (killed, out of memory or crashed) on \
                         each of ' || attempts || ' attempts', updated_at = ?1
                 WHERE state = 'running' AND lease_expires_at < ?1 AND attempts >= ?2
                 RETURNING {JOB_COLUMNS}"
            ))?;
            let rows = stmt.query_map(params![now, MAX_ABANDONED_CLAIMS], job_from_row)?;
            rows.map(|job| job?).collect::<Result<_>>()?
        };
        for job in abandoned {
            let (asset, analyzer) = (job.asset.as_bytes(), job.analyzer.as_str());
            match (job.part, job.last_error.as_deref()) {
                (Some(part), Some(why)) => {
                    end_split_job(&tx, asset, analyzer, part, JobState::Failed, why, now)?;
                }
                (None, _) if job.parts > 0 => drop_parts(&tx, asset, analyzer)?,
                _ => {}
            }
        }
        let ids: Vec<i64> = {
            // Each analyzer's queued jobs in claim order (jobs_claim), then leases that ran out
            // (few): a claim reads about as many rows as it hands out, however long the queue.
            let queued = (0..analyzers.len()).map(|_| {
                "SELECT id, priority FROM (SELECT id, priority FROM jobs
                     WHERE state = 'queued' AND analyzer = ? AND run_after <= ?
                     ORDER BY priority DESC, id LIMIT ?)"
            });
            let sql = format!(
                "SELECT id FROM ({}
                     UNION ALL
                     SELECT id, priority FROM jobs
                     WHERE state = 'running' AND lease_expires_at < ? AND analyzer IN ({}))
                 ORDER BY priority DESC, id LIMIT ?",
                queued.collect::<Vec<_>>().join(" UNION ALL "),
                placeholders(analyzers.len())
            );
            let mut stmt = tx.prepare_cached(&sql)?;
            let limit = limit as i64;
            let mut values: Vec<rusqlite::types::Value> = Vec::new();
            for analyzer in analyzers {
                values.extend([analyzer.clone().into(), now.into(), limit.into()]);
            }
            values.push(now.into());
            values.extend(analyzers.iter().map(|a| a.clone().into()));
            values.push(limit.into());
            let rows = stmt.query_map(params_from_iter(values), |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut claimed = Vec::with_capacity(ids.len());
        {
            let mut update = tx.prepare_cached(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = ?2,
                     lease_expires_at = ?3, updated_at = ?4
                 WHERE id = ?1",
            )?;
            let mut select =
                tx.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))?;
            for id in ids {
                update.execute(params![id, worker, now + millis(lease), now])?;
                claimed.push(select.query_row([id], job_from_row)??);
            }
        }
        tx.commit()?;
        Ok(claimed)
    }

    fn renew(&self, job: i64, worker: &str, lease: Duration) -> Result<bool> {
        let now = UnixMillis::now().0;
        let changed = self.write().execute(
            "UPDATE jobs SET lease_expires_at = ?3, updated_at = ?4
             WHERE id = ?1 AND state = 'running' AND lease_owner = ?2",
            params![job, worker, now + millis(lease), now],
        )?;
        Ok(changed == 1)
    }

    fn release(&self, worker: &str, jobs: &[i64]) -> Result<u64> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = UnixMillis::now().0;
        let mut released = 0;
        {
            let mut back = tx.prepare_cached(
                "UPDATE jobs SET state = 'queued', attempts = MAX(attempts - 1, 0),
                     lease_owner = NULL, lease_expires_at = NULL, run_after = ?3, updated_at = ?3
                 WHERE id = ?1 AND state = 'running' AND lease_owner = ?2",
            )?;
            for job in jobs {
                released += back.execute(params![job, worker, now])? as u64;
            }
        }
        tx.commit()?;
        Ok(released)
    }

    fn finish(&self, job: i64, worker: &str, outcome: &Outcome) -> Result<bool> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let kept = finish_in(&tx, job, worker, outcome)?;
        tx.commit()?;
        Ok(kept)
    }

    fn finish_many(&self, worker: &str, finished: &[(i64, Outcome)]) -> Result<Vec<Result<bool>>> {
        let mut conn = self.write();
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(finished.len());
        for (job, outcome) in finished {
            // One savepoint per job: a job whose finish fails leaves no trace, the others stay.
            let one = tx.savepoint()?;
            let kept = finish_in(&one, *job, worker, outcome);
            if kept.is_ok() {
                one.commit()?;
            }
            out.push(kept);
        }
        tx.commit()?;
        Ok(out)
    }

    fn next_due(&self, analyzers: &[String]) -> Result<Option<UnixMillis>> {
        if analyzers.is_empty() {
            return Ok(None);
        }
        let conn = self.read();
        let sql = format!(
            "SELECT MIN(CASE state WHEN 'queued' THEN run_after ELSE lease_expires_at END)
             FROM jobs WHERE analyzer IN ({}) AND state IN ('queued', 'running')",
            placeholders(analyzers.len())
        );
        let due: Option<i64> = conn.query_row(&sql, params_from_iter(analyzers), |r| r.get(0))?;
        Ok(due.map(UnixMillis))
    }

    fn state_counts(&self) -> Result<Vec<(JobState, u64)>> {
        let conn = self.read();
        // Served by the `jobs_ready` index, which starts with the state.
        let mut stmt =
            conn.prepare_cached("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        rows.map(|row| {
            let (state, n) = row?;
            let state = state.parse().map_err(|reason| Error::Corrupt { reason })?;
            Ok((state, n as u64))
        })
        .collect()
    }

    fn counts_in(
        &self,
        collections: &[crate::CollectionId],
    ) -> Result<(u64, Vec<(JobState, u64)>)> {
        if collections.is_empty() {
            return Ok((0, Vec::new()));
        }
        let marks = (1..=collections.len())
            .map(|n| format!("?{n}"))
            .collect::<Vec<_>>()
            .join(",");
        let ids = || collections.iter().map(|c| c.0);
        let conn = self.read();
        let assets: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM assets WHERE collection_id IN ({marks})"),
            params_from_iter(ids()),
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT j.state, COUNT(*) FROM jobs j JOIN assets a ON a.id = j.asset_id
             WHERE a.collection_id IN ({marks}) GROUP BY j.state ORDER BY j.state"
        ))?;
        let rows = stmt.query_map(params_from_iter(ids()), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        let states = rows
            .map(|row| {
                let (state, n) = row?;
                let state = state.parse().map_err(|reason| Error::Corrupt { reason })?;
                Ok((state, n as u64))
            })
            .collect::<Result<_>>()?;
        Ok((assets as u64, states))
    }

    fn job_counts(&self) -> Result<Vec<(String, JobState, u64)>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT analyzer, state, COUNT(*) FROM jobs GROUP BY analyzer, state
             ORDER BY analyzer, state",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (analyzer, state, n) = row?;
            let state = state.parse().map_err(|reason| Error::Corrupt { reason })?;
            Ok((analyzer, state, n as u64))
        })
        .collect()
    }

    fn jobs_of(&self, asset: AssetId) -> Result<Vec<Job>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE asset_id = ?1
             ORDER BY priority DESC, analyzer, part"
        ))?;
        let rows = stmt.query_map([asset.as_bytes().as_slice()], job_from_row)?;
        rows.map(|r| r?).collect()
    }

    fn part_results(&self, job: i64) -> Result<Vec<PartResult>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT p.part, p.parts, p.start_ms, p.end_ms, p.analyzer_version, p.result
             FROM jobs j JOIN jobs p
               ON p.asset_id = j.asset_id AND p.analyzer = j.analyzer AND p.part > 0
             WHERE j.id = ?1 AND j.part = 0 AND p.state = 'succeeded'
             ORDER BY p.part",
        )?;
        let rows = stmt.query_map([job], |r| {
            Ok(PartResult {
                part: Part {
                    index: r.get(0)?,
                    count: r.get(1)?,
                    start_ms: r.get::<_, i64>(2)?.max(0) as u64,
                    end_ms: r.get::<_, Option<i64>>(3)?.map(|e| e.max(0) as u64),
                },
                version: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                result: r.get::<_, Option<Vec<u8>>>(5)?.unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// Ends a whole job for good (failed or skipped, saying why), dropping its parts.
fn end_whole_job(
    tx: &rusqlite::Connection,
    job: i64,
    (asset, analyzer): (&[u8], &str),
    state: JobState,
    why: &str,
    now: i64,
) -> Result<()> {
    drop_parts(tx, asset, analyzer)?;
    tx.prepare_cached(
        "UPDATE jobs SET state = ?4, last_error = ?2, lease_owner = NULL,
             lease_expires_at = NULL, updated_at = ?3
         WHERE id = ?1",
    )?
    .execute(params![job, why, now, state.as_str()])?;
    Ok(())
}

/// Records how a leased job ended, inside the caller's transaction (see [`JobQueue::finish`]).
fn finish_in(tx: &rusqlite::Connection, job: i64, worker: &str, outcome: &Outcome) -> Result<bool> {
    let now = UnixMillis::now().0;
    let held: Option<Job> = tx
        .prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE id = ?1 AND state = 'running' AND lease_owner = ?2"
        ))?
        .query_row(params![job, worker], job_from_row)
        .optional()?
        .transpose()?;
    let Some(held) = held else {
        return Ok(false);
    };
    let (asset, analyzer, attempts, part) = (
        held.asset.as_bytes().to_vec(),
        held.analyzer.clone(),
        held.attempts,
        held.part,
    );
    if let Some(refused) = refusal(job, &held, outcome) {
        return Err(refused);
    }
    match (outcome, part) {
        (Outcome::RedoParts { parts }, None) => {
            let mut again = tx.prepare_cached(
                "UPDATE jobs SET state = 'queued', attempts = 0, run_after = ?4,
                     analyzer_version = NULL, result = NULL, last_error = NULL,
                     lease_owner = NULL, lease_expires_at = NULL, updated_at = ?4
                 WHERE asset_id = ?1 AND analyzer = ?2 AND part = ?3",
            )?;
            for n in parts.iter().filter(|n| **n > 0) {
                again.execute(params![asset, analyzer, n, now])?;
            }
            tx.prepare_cached(
                "UPDATE jobs SET state = 'waiting', lease_owner = NULL,
                     lease_expires_at = NULL, updated_at = ?2
                 WHERE id = ?1",
            )?
            .execute(params![job, now])?;
        }
        (
            Outcome::Succeeded {
                version,
                insights,
                requeue,
            },
            None,
        ) => {
            debug_assert!(
                insights
                    .iter()
                    .all(|i| i.analyzer == analyzer && i.asset.as_bytes()[..] == asset[..]),
                "a job's insights belong to its asset and analyzer"
            );
            // Replace in one transaction: readers see the old results or the new ones.
            tx.prepare_cached("DELETE FROM insights WHERE asset_id = ?1 AND analyzer = ?2")?
                .execute(params![asset, analyzer])?;
            super::insert_insights(tx, insights)?;
            super::note_change(tx, &asset)?;
            // The parts' results are joined into these insights: they go.
            drop_parts(tx, &asset, &analyzer)?;
            tx.prepare_cached(
                "UPDATE jobs SET state = 'succeeded', analyzer_version = ?2,
                     last_error = NULL, lease_owner = NULL, lease_expires_at = NULL,
                     updated_at = ?3
                 WHERE id = ?1",
            )?
            .execute(params![job, version, now])?;
            let mut again = tx.prepare_cached(
                "UPDATE jobs SET state = 'queued', attempts = 0, run_after = ?3,
                     last_error = NULL, lease_owner = NULL, lease_expires_at = NULL,
                     updated_at = ?3
                 WHERE asset_id = ?1 AND analyzer = ?2 AND part = 0",
            )?;
            for dependent in requeue.iter().filter(|d| **d != analyzer) {
                // Parts computed from the old insights are moot too.
                drop_parts(tx, &asset, dependent)?;
                again.execute(params![asset, dependent, now])?;
            }
        }
        (Outcome::Split { parts }, None) => {
            drop_parts(tx, &asset, &analyzer)?;
            let count = parts.len() as i64;
            let mut insert = tx.prepare_cached(
                "INSERT INTO jobs (asset_id, analyzer, state, priority, run_after,
                     created_at, updated_at, part, parts, start_ms, end_ms)
                 SELECT asset_id, analyzer, 'queued', priority, ?2, ?2, ?2, ?3, ?4, ?5, ?6
                 FROM jobs WHERE id = ?1",
            )?;
            for (n, (start, end)) in parts.iter().enumerate() {
                insert.execute(params![
                    job,
                    now,
                    n as i64 + 1,
                    count,
                    *start as i64,
                    end.map(|e| e as i64)
                ])?;
            }
            tx.prepare_cached(
                "UPDATE jobs SET state = 'waiting', parts = ?2, last_error = NULL,
                     lease_owner = NULL, lease_expires_at = NULL, updated_at = ?3
                 WHERE id = ?1",
            )?
            .execute(params![job, count, now])?;
        }
        (Outcome::PartDone { version, result }, Some(_)) => {
            tx.prepare_cached(
                "UPDATE jobs SET state = 'succeeded', analyzer_version = ?2, result = ?3,
                     last_error = NULL, lease_owner = NULL, lease_expires_at = NULL,
                     updated_at = ?4
                 WHERE id = ?1",
            )?
            .execute(params![job, version, result, now])?;
            // The last part done: the job is queued again, to join them.
            tx.prepare_cached(
                "UPDATE jobs SET state = 'queued', attempts = 0, run_after = ?3,
                     updated_at = ?3
                 WHERE asset_id = ?1 AND analyzer = ?2 AND part = 0 AND state = 'waiting'
                   AND NOT EXISTS (
                       SELECT 1 FROM jobs p WHERE p.asset_id = ?1 AND p.analyzer = ?2
                         AND p.part > 0 AND p.state != 'succeeded')",
            )?
            .execute(params![asset, analyzer, now])?;
        }
        (Outcome::Failed { error }, _) if attempts < MAX_ATTEMPTS => {
            let due = now + millis(retry_backoff(attempts));
            tx.prepare_cached(
                "UPDATE jobs SET state = 'queued', run_after = ?2, last_error = ?3,
                     lease_owner = NULL, lease_expires_at = NULL, updated_at = ?4
                 WHERE id = ?1",
            )?
            .execute(params![job, due, error, now])?;
        }
        (Outcome::Failed { error } | Outcome::Unrecoverable { error }, Some(part)) => {
            end_split_job(tx, &asset, &analyzer, part, JobState::Failed, error, now)?;
        }
        (Outcome::Skipped { reason }, Some(part)) => {
            end_split_job(tx, &asset, &analyzer, part, JobState::Skipped, reason, now)?;
        }
        (Outcome::Failed { error } | Outcome::Unrecoverable { error }, None) => {
            end_whole_job(tx, job, (&asset, &analyzer), JobState::Failed, error, now)?;
        }
        (Outcome::Skipped { reason }, None) => {
            end_whole_job(tx, job, (&asset, &analyzer), JobState::Skipped, reason, now)?;
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
