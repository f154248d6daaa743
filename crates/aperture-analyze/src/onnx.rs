//! ONNX models through ONNX Runtime (`ort`), loaded at run time from the offline pack's
//! `onnxruntime` model (the shared library of the PyPI `onnxruntime` wheel): nothing is
//! downloaded at build time, and a build without the library still runs every other analyzer.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

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

fn open(library: &Path, source: Source<'_>, threads: usize) -> Result<Mutex<Session>, Error> {
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
        // Without the arena, what a run needs is handed back when it ends: the arena keeps
        // its largest run's memory for the life of the session, and grows in powers of two
        // (256 MB held after one batch of long texts).
        .with_execution_providers([ort::ep::CPU::default().with_arena_allocator(false).build()])
        .map_err(|e| failed(&e))?
        .with_memory_pattern(false)
        .map_err(|e| failed(&e))?;
    let session = match source {
        Source::File(path) => builder.commit_from_file(path),
        Source::Memory(bytes, _) => builder.commit_from_memory(bytes),
    }
    .map_err(|e| failed(&e))?;
    Ok(Mutex::new(session))
}

/// Threads per inference: all cores, since jobs of one model take turns on its session.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
