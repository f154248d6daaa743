//! Models loaded on first use: a worker that never sees an image never loads an image model,
//! and `aperture ingest` can name the model analyzers (to queue their jobs) without loading
//! any weights.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::Error;

/// A model in `folder`, loaded by the first job that needs it. A failed load is not kept:
/// the next job tries again (the model may have been installed in between).
pub(crate) struct Loaded<T> {
    folder: PathBuf,
    model: Mutex<Option<Arc<T>>>,
}

impl<T> Loaded<T> {
    pub(crate) fn new(folder: PathBuf) -> Self {
        Self {
            folder,
            model: Mutex::new(None),
        }
    }

    /// The model, loading it with `load` if this is the first use. Jobs that arrive while
    /// it loads wait for it rather than loading a second copy.
    pub(crate) fn get(
        &self,
        load: impl FnOnce(&Path) -> Result<T, Error>,
    ) -> Result<Arc<T>, Error> {
        let mut slot = self.model.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(model) = slot.as_ref() {
            return Ok(model.clone());
        }
        let model = Arc::new(load(&self.folder)?);
        *slot = Some(model.clone());
        Ok(model)
    }
}
