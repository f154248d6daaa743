//! How this lake ingests: settings from the config and a job for every analyzer it runs.

use aperture_ingest::IngestOptions;
use aperture_media::ProbeOptions;

use crate::{Error, Lake, Result};

impl Lake {
    /// Ingest options for `collection`: settings from the config, and a job for every
    /// analyzer that can run here.
    pub fn ingest_options(&self, collection: String) -> IngestOptions {
        let settings = &self.config.ingest;
        IngestOptions {
            collection,
            concurrency: settings.concurrency,
            large_concurrency: settings.large_concurrency,
            follow_symlinks: settings.follow_symlinks,
            include_hidden: settings.include_hidden,
            report_every_file: false,
            probe: ProbeOptions {
                ffprobe: self.config.media.ffprobe.clone(),
                ..ProbeOptions::default()
            },
            jobs: self.analyzers().0.iter().map(|a| a.spec()).collect(),
            record_under: None,
        }
    }

    /// A worker running every analyzer this data folder can run, with jobs leased for
    /// `lease`, as many at once as `[worker]` says (or `threads`, when given and not 0); and
    /// the analyzers that cannot run, with why.
    pub fn worker(
        &self,
        lease: std::time::Duration,
        threads: Option<usize>,
    ) -> (crate::Worker, Vec<aperture_analyze::Unavailable>) {
        let (analyzers, missing) = self.analyzers();
        let mut worker = crate::Worker::new(self.blobs.clone(), self.catalog.clone(), analyzers)
            .with_lease(lease.max(std::time::Duration::from_secs(1)))
            .with_limits(self.config.worker.concurrency.clone());
        match threads
            .filter(|n| *n > 0)
            .unwrap_or(self.config.worker.threads)
        {
            0 => {}
            n => worker = worker.with_parallelism(n),
        }
        (worker, missing)
    }

    /// Queues again the results of `analyzer` made by another version than the one installed
    /// here; returns that version and how many were queued. Search keeps serving the old
    /// results until the new ones replace them.
    pub async fn reindex(&self, analyzer: &str) -> Result<(String, u64)> {
        let (analyzers, missing) = self.analyzers();
        if let Some(m) = missing.iter().find(|m| m.analyzer == analyzer) {
            return Err(Error::InvalidInput {
                what: format!("analyzer {analyzer}"),
                reason: format!("it cannot run here: {}", m.reason),
            });
        }
        let Some(found) = analyzers.iter().find(|a| a.name() == analyzer) else {
            let known: Vec<_> = analyzers.iter().map(|a| a.name()).collect();
            return Err(Error::InvalidInput {
                what: format!("analyzer {analyzer:?}"),
                reason: format!("no such analyzer; known: {}", known.join(", ")),
            });
        };
        let (name, version) = (found.name().to_owned(), found.version());
        let v = version.clone();
        let stale = self.catalog(move |c| c.requeue_stale(&name, &v)).await?;
        Ok((version, stale))
    }
}
