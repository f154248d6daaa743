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
enum Source<'a> {
    File(&'a Path),
    /// Built in memory from the weights file named.
    Memory(&'a [u8], &'a Path),
}

/// A session over `model`, running on `threads` threads. ONNX Runtime sessions run one call
/// at a time here (`Session::run` takes `&mut`), so the session sits behind a mutex.
pub fn session(library: &Path, model: &Path, threads: usize) -> Result<Mutex<Session>, Error> {
    open(library, Source::File(model), threads)
}

/// A session over a model built in memory (`what` names it in errors).
pub fn session_from_memory(
    library: &Path,
    model: &[u8],
    threads: usize,
    what: &Path,
) -> Result<Mutex<Session>, Error> {
    open(library, Source::Memory(model, what), threads)
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

/// A single session of all cores over a model built in memory, as [`onnx_engine`]'s
/// `open` (`what` names it in errors).
///
/// [`onnx_engine`]: crate::embed::onnx_engine
pub(crate) fn single_session(
    library: &Path,
    model: &[u8],
    what: &Path,
) -> Result<Mutex<Session>, Error> {
    session_from_memory(library, model, default_threads(), what)
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
    // The runtime is loaded before anything of it is made.
    environment(library)?;
    let shared = ort::session::builder::PrepackedWeights::new();
    let free = (0..count.max(1))
        .map(|_| build(library, Source::Memory(model, what), threads, Some(&shared)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Sessions {
        count: free.len(),
        free: Mutex::new(free),
        returned: Condvar::new(),
    })
}

fn open(library: &Path, source: Source<'_>, threads: usize) -> Result<Mutex<Session>, Error> {
    build(library, source, threads, None).map(Mutex::new)
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

/// Threads per inference: all cores, since jobs of one model take turns on its session
/// (a pool of [`Sessions`] divides them).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
