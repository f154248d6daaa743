//! Group commit: items submitted by many tasks are committed in few batches. Whatever is
//! waiting when one commit ends goes into the next, so under load one commit (and its fsync)
//! serves many callers, and when idle an item is committed at once.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::{mpsc, oneshot};

/// A batch's commit: takes the items, answers one result per item, in order.
pub type Commit<T, R> =
    Box<dyn FnMut(Vec<T>) -> Pin<Box<dyn Future<Output = Vec<R>> + Send>> + Send>;

/// A queue in front of a commit function that takes a batch. Cheap to clone; the committing
/// task ends when the last clone is dropped, after committing what was submitted.
pub struct GroupCommit<T, R> {
    queue: mpsc::Sender<(T, oneshot::Sender<R>)>,
}

impl<T, R> Clone for GroupCommit<T, R> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

/// The committing task stopped (it panicked, or the runtime is shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the committing task stopped")]
pub struct Stopped;

impl<T: Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    /// Starts the committing task on the current Tokio runtime: up to `max_batch` items at
    /// a time go to `commit`, which must answer one result per item, in order.
    pub fn start(max_batch: usize, mut commit: Commit<T, R>) -> Self {
        let max_batch = max_batch.max(1);
        let (queue, mut rx) = mpsc::channel::<(T, oneshot::Sender<R>)>(max_batch * 2);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < max_batch {
                    match rx.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let (items, acks): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                let results = commit(items).await;
                debug_assert_eq!(results.len(), acks.len(), "one result per item");
                for (ack, result) in acks.into_iter().zip(results) {
                    // The submitter may be gone (cancelled); its item is committed all the same.
                    let _ = ack.send(result);
                }
            }
        });
        Self { queue }
    }

    /// Submits items together (they go into the same batch or the next few); returns when all
    /// are committed, with their results in order.
    pub async fn submit_many(&self, items: Vec<T>) -> Vec<Result<R, Stopped>> {
        let mut waiting = Vec::with_capacity(items.len());
        for item in items {
            let (ack, done) = oneshot::channel();
            let sent = self.queue.send((item, ack)).await.map_err(|_| Stopped);
            waiting.push(sent.map(|()| done));
        }
        let mut results = Vec::with_capacity(waiting.len());
        for waiting in waiting {
            results.push(match waiting {
                Ok(done) => done.await.map_err(|_| Stopped),
                Err(stopped) => Err(stopped),
            });
        }
        results
    }

    /// Submits an item; returns when the batch that holds it is committed, with its result.
    pub async fn submit(&self, item: T) -> Result<R, Stopped> {
        let (ack, done) = oneshot::channel();
        self.queue.send((item, ack)).await.map_err(|_| Stopped)?;
        done.await.map_err(|_| Stopped)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_submitters_share_commits_and_each_hears_its_own_result() {
        let commits = Arc::new(Mutex::new(Vec::<Vec<u32>>::new()));
        let seen = commits.clone();
        let batcher: GroupCommit<u32, Result<u32, String>> = GroupCommit::start(
            16,
            Box::new(move |items: Vec<u32>| {
                seen.lock().unwrap().push(items.clone());
                Box::pin(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    items
                        .into_iter()
                        .map(|n| {
                            if n == 13 {
                                Err("13 refused".into())
                            } else {
                                Ok(n * 2)
                            }
                        })
                        .collect()
                })
            }),
        );
        let tasks: Vec<_> = (0..100u32)
            .map(|n| {
                let b = batcher.clone();
                tokio::spawn(async move { (n, b.submit(n).await.unwrap()) })
            })
            .collect();
        for t in tasks {
            let (n, result) = t.await.unwrap();
            if n == 13 {
                assert_eq!(result, Err("13 refused".into()));
            } else {
                assert_eq!(result, Ok(n * 2), "each submitter hears its own result");
            }
        }
        let commits = commits.lock().unwrap();
        assert_eq!(
            commits.iter().map(Vec::len).sum::<usize>(),
            100,
            "each item once"
        );
        assert!(commits.len() < 100, "some commits served several items");
        assert!(commits.iter().all(|b| b.len() <= 16));
    }
}
