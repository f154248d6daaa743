//! Keeping a search index current in a long-running process (a server, a worker).

use std::sync::Arc;

use aperture_catalog::Backend;
use aperture_search::SearchIndex;

use crate::Lake;
use crate::config::SearchLocation;

/// Applies the catalog's changes to its own copy of the search index, which stays open
/// between steps (opening reads every vector file). After a failed update the copy is
/// dropped and opened afresh, so memory never drifts from what is on disk. Another process
/// updating the index at the same time is no failure: it did the work.
///
/// The shared index (on PostgreSQL) is one for all: whichever process's step takes its lock
/// applies the changes, and a reader sees them at once, so a server opens its reader once.
pub struct Follower {
    location: SearchLocation,
    catalog: Arc<dyn Backend>,
    writer: Option<SearchIndex>,
    /// Whether steps open fresh readers for searches in this process.
    readers: bool,
    /// The change-feed position of the last reader handed out.
    served: Option<i64>,
}

impl Follower {
    /// A follower of `lake`'s index for a process that does not search (a worker).
    pub fn new(lake: &Lake) -> Self {
        Self {
            location: lake.config.search.clone(),
            catalog: lake.catalog.clone(),
            writer: None,
            readers: false,
            served: None,
        }
    }

    /// A follower whose steps hand out fresh readers for searches (a server).
    pub fn with_readers(lake: &Lake) -> Self {
        Self {
            readers: true,
            ..Self::new(lake)
        }
    }

    /// One update. With readers, returns a freshly opened reader when the update changed the
    /// index, or when `want_reader` (the first step of a server): searches then use it while the next
    /// update goes on in the writer. Failures are logged and retried at the next step.
    pub async fn step(&mut self, want_reader: bool) -> Option<SearchIndex> {
        let (catalog, location, readers, served) = (
            self.catalog.clone(),
            self.location.clone(),
            self.readers,
            self.served,
        );
        let writer = self.writer.take();
        let result = tokio::task::spawn_blocking(move || {
            let mut writer = match writer {
                Some(w) => w,
                None => location.open()?,
            };
            // Moved on since the last reader, by this step or by another process (`aperture
            // rm` updates the index itself): the reader in use may hold erased assets.
            let position = match writer.update(catalog.as_ref()) {
                Ok(update) => Some(update.position),
                Err(aperture_search::Error::Busy(_)) => None,
                Err(e) => return Err(e),
            };
            let moved = position.is_some() && position != served && writer.local().is_some();
            let reader = if readers && (moved || want_reader) {
                let reader = location.open()?;
                let at = reader.position()?;
                Some((reader, at))
            } else {
                None
            };
            Ok((writer, reader))
        })
        .await;
        match result {
            Ok(Ok((writer, reader))) => {
                self.writer = Some(writer);
                reader.map(|(reader, at)| {
                    self.served = Some(at);
                    reader
                })
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "search index update failed; retrying");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "search index update panicked; retrying");
                None
            }
        }
    }
}
