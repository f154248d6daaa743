//! ONNX models through ONNX Runtime (`ort`), loaded at run time from the offline pack's
//! `onnxruntime` model (the shared library of the PyPI `onnxruntime` wheel): nothing is
//! downloaded at build time, and a build without the library still runs every other analyzer.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use crate::{Error, models};

/// The manifest name of the runtime library.
pub const RUNTIME_MODEL: &str = "onnxruntime";

/// The process's one ONNX Runtime environment (sessions hold it weakly, so it lives here,
/// for the life of the process). A failed start is not kept: the next model load tries again.
static ENVIRONMENT: Mutex<Option<&'static ort::environment::Environment>> = Mutex::new(None);

/// The runtime library in an installed `onnxruntime` model folder.
pub fn runtime_library(models_dir: &Path) -> Result<PathBuf, models::Error> {
    let folder = models::require(models_dir, RUNTIME_MODEL)?;
    let library = std::fs::read_dir(&folder)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime") || n.starts_with("onnxruntime"))
        });
    library.ok_or_else(|| models::Error::Stale {
        name: RUNTIME_MODEL.into(),
        reason: format!("{} has no ONNX Runtime library", folder.display()),
    })
}

fn environment(library: &Path) -> Result<&'static ort::environment::Environment, Error> {
    let mut slot = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(env) = *slot {
        return Ok(env);
    }
    let env = ort::init_from(library)
        .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", library.display()))
        .and_then(|builder| {
            builder
                .with_name("aperture")
                .build()
                .map_err(|e| format!("cannot start ONNX Runtime: {e}"))
        })
        .map_err(|reason| Error::Transient { reason })?;
    let env: &'static _ = Box::leak(Box::new(env));
    *slot = Some(env);
    Ok(env)
}

/// Where a session's graph comes from.
#[derive(Clone, Copy)]
enum Source<'a> {
    File(&'a Path),
    /// Built in memory from the weights file named.
    Memory(&'a [u8], &'a Path),
}

/// Sessions of one model, lent out one call at a time: calls on different inputs (the passes
/// of one text embedding, the jobs of several slots) run side by side, each on its share of
/// the cores. For small products (a pass of short sentences is 32 × 25 tokens) this beats one
/// session splitting each product over every core, which waits at every operator for its
/// slowest thread: MiniLM went from about 450 to 510 sentences/s on two cores with two
/// sessions of one thread. The sessions share their pre-packed weights; the rest of each
/// model is held once a session (MiniLM: about 70 MB more, mostly its word embeddings).
pub struct Sessions {
    free: Mutex<Vec<Session>>,
    returned: Condvar,
    count: usize,
}

impl Sessions {
    /// How many calls can run at once.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Runs `f` on a free session, waiting for one when all are lent.
    pub fn with<T>(&self, f: impl FnOnce(&mut Session) -> T) -> T {
        let mut lent = Lent {
            pool: self,
            session: Some({
                let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if let Some(session) = free.pop() {
                        break session;
                    }
                    free = self.returned.wait(free).unwrap_or_else(|e| e.into_inner());
                }
            }),
        };
        f(lent.session.as_mut().expect("lent until dropped"))
    }
}

/// A session out of its pool; back when dropped, also when the call panicked.
struct Lent<'a> {
    pool: &'a Sessions,
    session: Option<Session>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let mut free = self.pool.free.lock().unwrap_or_else(|e| e.into_inner());
            free.push(session);
            self.pool.returned.notify_one();
        }
    }
}

/// Image models' sessions: at most this many side by side, sharing the cores. Each holds its
/// own copy of the weights that are not pre-packed, and a call in flight its own activations;
/// four bounds both on machines of many cores. The model budget (`loaded.rs`) counts what a
/// load grows by, not what calls hold.
const MAX_SIDE_BY_SIDE: usize = 4;

/// The sessions of an image model, side by side (four at most, one per core up to there),
/// the cores shared between them (rounded up: six cores give four sessions of two threads).
/// A worker runs its jobs side by side, one per core, and a call on a small image split over
/// every core waits for its slowest thread at each layer, where whole calls side by side do
/// not. Measured by the re-index bench (400 photos, the tests' models, 2 cores): the whole
/// image pipeline took 35.5 s with PP-OCR (both models), EfficientNet and open-nsfw on two
/// sessions of one thread, and 38.2 s on one session of two threads. A call alone (one job, or a video's
/// keyframes one after another) runs on its session's share of the cores.
pub fn image_sessions(library: &Path, model: &Path) -> Result<Sessions, Error> {
    let (count, threads) = image_shares();
    pool(library, Source::File(model), count, threads)
}

/// One session of every core over the model in a file: for a model whose calls hold much
/// memory (PP-OCR's detector on a photo 960 pixels a side), so that two never run at once.
pub fn one_session(library: &Path, model: &Path) -> Result<Sessions, Error> {
    pool(library, Source::File(model), 1, default_threads())
}

/// [`image_sessions`] over a graph built in memory, as [`onnx_engine`]'s `open` (`what` names
/// it in errors).
///
/// [`onnx_engine`]: crate::embed::onnx_engine
pub(crate) fn image_sessions_from_memory(
    library: &Path,
    model: &[u8],
    what: &Path,
) -> Result<Sessions, Error> {
    let (count, threads) = image_shares();
    pool(library, Source::Memory(model, what), count, threads)
}

/// (sessions, threads each) of an image model.
pub fn image_shares() -> (usize, usize) {
    let cores = default_threads();
    let count = cores.clamp(1, MAX_SIDE_BY_SIDE);
    (count, cores.div_ceil(count))
}

/// `count` sessions of `threads` threads each over a model built in memory (`what` names it
/// in errors).
pub fn sessions_from_memory(
    library: &Path,
    model: &[u8],
    count: usize,
    threads: usize,
    what: &Path,
) -> Result<Sessions, Error> {
    pool(library, Source::Memory(model, what), count, threads)
}

fn pool(
    library: &Path,
    source: Source<'_>,
    count: usize,
    threads: usize,
) -> Result<Sessions, Error> {
    // The runtime is loaded before anything of it is made.
    environment(library)?;
    let shared = ort::session::builder::PrepackedWeights::new();
    let free = (0..count.max(1))
        .map(|_| build(library, source, threads, Some(&shared)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Sessions {
        count: free.len(),
        free: Mutex::new(free),
        returned: Condvar::new(),
    })
}

fn build(
    library: &Path,
    source: Source<'_>,
    threads: usize,
    shared: Option<&ort::session::builder::PrepackedWeights>,
) -> Result<Session, Error> {
    let env = environment(library)?;
    let failed = |e: &dyn std::fmt::Display| Error::Transient {
        reason: match source {
            Source::File(path) => format!("cannot load {}: {e}", path.display()),
            Source::Memory(_, what) => format!(
                "cannot load the ONNX graph made from {}: {e}",
                what.display()
            ),
        },
    };
    let mut builder = Session::builder(env)
        .map_err(|e| failed(&e))?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| failed(&e))?
        .with_intra_threads(threads.max(1))
        .map_err(|e| failed(&e))?
        // Threads that wait for work sleep rather than spin: a worker runs several models at
        // once, and a spinning thread takes the core another model's call needs. The whole
        // image pipeline (the re-index bench: 400 photos, the tests' models, 2 cores) took
        // 38.2 s without spinning and 45.5 s with it.
        .with_intra_op_spinning(false)
        .map_err(|e| failed(&e))?
        // Without the arena, what a run needs is handed back when it ends. An arena keeps its
        // largest run's memory for the life of the session, grown in powers of two (256 MB
        // held after one batch of long texts). With ONNX Runtime's shrinking at the end of
        // each run, MiniLM's two sessions went from about 510 to 540 sentences/s, but the
        // hostile-corpus ingest (tests/it/hostile.rs, bound 600 MB) peaked at 609 MB in CI
        // with it and at 567–571 MB without; EfficientNet on one image a run was slower with
        // it (81 images/s, against 101 without).
        .with_execution_providers([ort::ep::CPU::default().with_arena_allocator(false).build()])
        .map_err(|e| failed(&e))?
        .with_memory_pattern(false)
        .map_err(|e| failed(&e))?;
    if let Some(shared) = shared {
        builder = builder
            .with_prepacked_weights(shared)
            .map_err(|e| failed(&e))?;
    }
    match source {
        Source::File(path) => builder.commit_from_file(path),
        Source::Memory(bytes, _) => builder.commit_from_memory(bytes),
    }
    .map_err(|e| failed(&e))
}

/// The cores inference shares out: the threads of a model's one session, or divided among
/// the sessions of a pool ([`Sessions`]).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
