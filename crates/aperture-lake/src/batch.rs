//! Group commit: items submitted by many tasks are written in few transactions. Whatever is
//! waiting when one commit ends goes into the next, so under load a commit (and its fsync)
//! serves many callers, and when idle an item is written at once.

use tokio::sync::{mpsc, oneshot};

type Ack = oneshot::Sender<Result<(), String>>;

/// A queue in front of a commit function that takes a batch. Cheap to clone.
pub struct GroupCommit<T> {
    queue: mpsc::Sender<(T, Ack)>,
}

impl<T> Clone for GroupCommit<T> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<T: Send + 'static> GroupCommit<T> {
    /// Starts the committing task. `commit` runs on the blocking pool with up to `max_batch`
    /// items; its result answers every submitter of the batch. Needs a Tokio runtime.
    pub fn start<F>(max_batch: usize, commit: F) -> Self
    where
        F: Fn(Vec<T>) -> Result<(), String> + Send + Sync + 'static,
    {
        let (queue, mut rx) = mpsc::channel::<(T, Ack)>(max_batch.max(1) * 8);
        let commit = std::sync::Arc::new(commit);
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
                let commit = commit.clone();
                let result = tokio::task::spawn_blocking(move || commit(items))
                    .await
                    .unwrap_or_else(|e| Err(format!("the commit failed: {e}")));
                for ack in acks {
                    let _ = ack.send(result.clone());
                }
            }
        });
        Self { queue }
    }

    /// Submits an item; returns when the batch that holds it is committed, with its outcome.
    pub async fn submit(&self, item: T) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.queue
            .send((item, ack))
            .await
            .map_err(|_| "the committing task stopped".to_owned())?;
        done.await
            .map_err(|_| "the committing task stopped".to_owned())?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_submitters_share_commits_and_hear_the_outcome() {
        let commits = Arc::new(Mutex::new(Vec::<Vec<u32>>::new()));
        let seen = commits.clone();
        let batcher = GroupCommit::start(16, move |items: Vec<u32>| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            let refused = items.contains(&13);
            seen.lock().unwrap().push(items);
            if refused {
                Err("13 refused".into())
            } else {
                Ok(())
            }
        });
        let tasks: Vec<_> = (0..100u32)
            .map(|n| {
                let b = batcher.clone();
                tokio::spawn(async move { (n, b.submit(n).await) })
            })
            .collect();
        let mut failed = Vec::new();
        for t in tasks {
            let (n, result) = t.await.unwrap();
            if result.is_err() {
                failed.push(n);
            }
        }
        let commits = commits.lock().unwrap();
        let all: usize = commits.iter().map(Vec::len).sum();
        assert_eq!(all, 100, "every item committed once");
        assert!(commits.len() < 100, "some commits served several items");
        assert!(commits.iter().all(|b| b.len() <= 16));
        let with_13 = commits.iter().find(|b| b.contains(&13)).unwrap();
        failed.sort();
        let mut expected = with_13.clone();
        expected.sort();
        assert_eq!(
            failed, expected,
            "exactly the batch with 13 hears the failure"
        );
    }
}
