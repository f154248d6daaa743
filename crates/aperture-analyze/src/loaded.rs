//! Models loaded on first use: a worker that never sees an image never loads an image model,
//! and `aperture ingest` can name the model analyzers (to queue their jobs) without loading
//! any weights.
//!
//! The process keeps the models it loaded within a memory budget ([`set_budget`]): before a
//! model loads, models no job is using are unloaded, least recently used first, until the new
//! one fits. A model in use is never unloaded: a load that does not fit beside the models in
//! use waits until they are let go of (up to [`MAX_WAIT_FOR_ROOM`]), so jobs running at once do
//! not add their models past the budget. Only a model larger than the budget on its own passes
//! it, and then alone.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::Error;

/// The longest a load waits for models in use to be let go of before it goes past the budget
/// (with a warning): a job that held a model while it asked for another would wait forever.
pub(crate) const MAX_WAIT_FOR_ROOM: Duration = Duration::from_secs(600);

/// Models loaded, and the memory they may take together.
struct Pool {
    /// In bytes; 0: no limit.
    budget: AtomicU64,
    resident: Mutex<Vec<Resident>>,
    /// Bytes of models being loaded now, counted against the budget before they are resident.
    loading: AtomicU64,
}

/// The process's pool.
static POOL: Pool = Pool::new();

struct Resident {
    slot: Weak<dyn Unload>,
    folder: PathBuf,
    /// What loading it took, as the process's resident memory grew (at least its weights).
    bytes: u64,
    used: Instant,
}

/// Sets the memory the models loaded in this process may take together (0: no limit).
pub fn set_budget(bytes: u64) {
    POOL.budget.store(bytes, Ordering::Relaxed);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A loaded model's slot, which the budget may empty.
///
/// Locks are taken in one order: a model's slot, then the pool's list. The pool only
/// `try_lock`s slots, so it never waits on one while holding the list.
trait Unload: Send + Sync {
    /// Takes the model out of its slot when nothing else holds it and the slot is free, for
    /// the caller to drop (after it let go of the pool's lock: freeing a model takes time).
    fn take_if_idle(&self) -> Option<Box<dyn std::any::Any + Send>>;
}

impl<T: Send + Sync + 'static> Unload for Mutex<Option<Arc<T>>> {
    fn take_if_idle(&self) -> Option<Box<dyn std::any::Any + Send>> {
        // A slot that is locked is loading or being handed out: not idle.
        let mut slot = self.try_lock().ok()?;
        if slot.as_ref().is_some_and(|m| Arc::strong_count(m) == 1) {
            return slot
                .take()
                .map(|m| Box::new(m) as Box<dyn std::any::Any + Send>);
        }
        None
    }
}

/// Hands the allocator's free memory back to the system: what unloaded models and earlier
/// jobs freed stays in glibc's heaps otherwise, and a model loaded next comes on top of it.
fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of glibc's heaps to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Hands the allocator's free memory back to the system, at most once a second, for workers
/// to call after each job: jobs free their tensors in blocks that glibc keeps (up to 32 MiB
/// each once the first such block is freed), and without it the hostile corpus's embedding
/// jobs held 300 MB more than they used. A trim takes about a millisecond.
pub fn give_back_freed_memory_now_and_then() {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    static LAST_MS: AtomicU64 = AtomicU64::new(0);
    // Counted from a second after start, so that the first call trims.
    let now = START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1_000;
    let last = LAST_MS.load(Ordering::Relaxed);
    if now >= last + 1_000
        && LAST_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        give_back_freed_memory();
    }
}

/// The process's resident memory, in bytes.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages.saturating_mul(page_size()))
}

fn page_size() -> u64 {
    // SAFETY: sysconf reads a system value.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

/// The size of the weights in `folder` (its `.safetensors` and `.onnx` files, not the
/// sources they were converted from at install): what a model takes at least.
fn weights_bytes(folder: &Path) -> u64 {
    std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "safetensors" || x == "onnx")
        })
        // Following links: a model folder may link to its files.
        .filter_map(|p| std::fs::metadata(p).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

impl Pool {
    /// The models loaded now, by folder, with the memory each took to load.
    #[cfg(test)]
    fn resident(&self) -> Vec<(PathBuf, u64)> {
        lock(&self.resident)
            .iter()
            .filter(|r| r.slot.strong_count() > 0)
            .map(|r| (r.folder.clone(), r.bytes))
            .collect()
    }

    const fn new() -> Self {
        Self {
            budget: AtomicU64::new(0),
            resident: Mutex::new(Vec::new()),
            loading: AtomicU64::new(0),
        }
    }

    /// Makes room for a model of `wanted` bytes about to load, waiting while the models in
    /// use leave too little (up to [`MAX_WAIT_FOR_ROOM`]), and counts it as loading until the
    /// returned guard is dropped.
    fn wait_for_room(&self, wanted: u64, folder: &Path) -> LoadingGuard<'_> {
        // A model larger than the budget needs it all: counted as the budget, it loads when
        // nothing else is loaded or loading.
        let wanted = match self.budget.load(Ordering::Relaxed) {
            0 => wanted,
            budget => wanted.min(budget),
        };
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        let mut said = false;
        while !self.make_room(wanted, None) {
            if started.elapsed() >= MAX_WAIT_FOR_ROOM {
                tracing::warn!(
                    model = %folder.display(),
                    "models in use left no room for this one; loading it past the memory budget"
                );
                // Counted as loading all the same: the guard takes it off again.
                self.loading.fetch_add(wanted, Ordering::Relaxed);
                break;
            }
            if !said {
                tracing::info!(model = %folder.display(), "waiting for models in use to make room");
                said = true;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        LoadingGuard {
            pool: self,
            bytes: wanted,
        }
    }

    /// Unloads idle models, least recently used first, until `wanted` more bytes fit in the
    /// budget (or nothing idle is left). `used`: the slot of a model handed out now, marked
    /// most recently used first. True when `wanted` fits, or when nothing is loaded or
    /// loading (a model larger than the budget then loads alone); for a `wanted` model, the
    /// caller is counted as loading it before the pool's list is let go of.
    fn make_room(&self, wanted: u64, used: Option<*const ()>) -> bool {
        let budget = self.budget.load(Ordering::Relaxed);
        let mut unloaded = Vec::new();
        let mut resident = lock(&self.resident);
        if let Some(r) = used.and_then(|me| {
            resident
                .iter_mut()
                .find(|r| r.slot.as_ptr() as *const () == me)
        }) {
            r.used = Instant::now();
        }
        resident.retain(|r| r.slot.strong_count() > 0);
        let loading = self.loading.load(Ordering::Relaxed);
        let mut held = resident
            .iter()
            .fold(loading, |sum, r| sum.saturating_add(r.bytes));
        let over = |held: u64| budget != 0 && held.saturating_add(wanted) > budget;
        if over(held) {
            resident.sort_by_key(|r| r.used);
            let mut i = 0;
            while over(held) && i < resident.len() {
                let taken = resident[i].slot.upgrade().and_then(|s| s.take_if_idle());
                if let Some(model) = taken {
                    unloaded.push(model);
                    let gone = resident.remove(i);
                    held -= gone.bytes;
                    let mib = gone.bytes >> 20;
                    tracing::info!(model = %gone.folder.display(), mib, "model unloaded to make room");
                } else {
                    i += 1;
                }
            }
        }
        let fits = !over(held) || held == 0;
        if fits {
            self.loading.fetch_add(wanted, Ordering::Relaxed);
        }
        // The models are freed after the list is let go of.
        drop(resident);
        drop(unloaded);
        fits
    }
}

/// A model counted as loading until it is resident (or its load failed).
struct LoadingGuard<'a> {
    pool: &'a Pool,
    bytes: u64,
}

impl Drop for LoadingGuard<'_> {
    fn drop(&mut self) {
        let before = self.pool.loading.fetch_sub(self.bytes, Ordering::Relaxed);
        debug_assert!(
            before >= self.bytes,
            "a load taken off that was never counted"
        );
    }
}

/// A model in `folder`, loaded by the first job that needs it. A failed load is not kept:
/// the next job tries again (the model may have been installed in between).
pub(crate) struct Loaded<T> {
    pool: &'static Pool,
    folder: PathBuf,
    model: Arc<Mutex<Option<Arc<T>>>>,
    /// What its last load took (0: never loaded), to make room for the next.
    took: AtomicU64,
}

impl<T: Send + Sync + 'static> Loaded<T> {
    pub(crate) fn new(folder: PathBuf) -> Self {
        Self::in_pool(&POOL, folder)
    }

    fn in_pool(pool: &'static Pool, folder: PathBuf) -> Self {
        Self {
            pool,
            folder,
            model: Arc::new(Mutex::new(None)),
            took: AtomicU64::new(0),
        }
    }

    /// The model, loading it with `load` if it is not loaded. Jobs that arrive while it loads
    /// wait for it rather than loading a second copy.
    pub(crate) fn get(
        &self,
        load: impl FnOnce(&Path) -> Result<T, Error>,
    ) -> Result<Arc<T>, Error> {
        let mut slot = lock(&self.model);
        if let Some(model) = slot.as_ref() {
            let model = model.clone();
            drop(slot);
            // Idle others go while the pool is over its budget (they may have been in use
            // when the last model loaded).
            let me = Arc::as_ptr(&self.model) as *const ();
            self.pool.make_room(0, Some(me));
            return Ok(model);
        }
        let files = weights_bytes(&self.folder);
        // Room for what it took last time, or at first for the most a load is counted as
        // taking: the weights' files take 2 to 4 times their size once loaded (the ONNX
        // models here 4, MiniLM 2.8, Whisper 2.3), and room for the files alone let three
        // models in at once where the budget held one.
        let wanted = match self.took.load(Ordering::Relaxed) {
            0 => files.saturating_mul(4),
            took => took,
        };
        let loading = self.pool.wait_for_room(wanted, &self.folder);
        give_back_freed_memory();
        let before = resident_bytes();
        let model = Arc::new(load(&self.folder)?);
        // Other jobs run meanwhile, so the growth is a guess: bounded by the files' size
        // below and four times it above.
        let bytes = resident_bytes()
            .saturating_sub(before)
            .clamp(files, files.saturating_mul(4));
        tracing::info!(model = %self.folder.display(), mib = bytes >> 20, "model loaded");
        self.took.store(bytes, Ordering::Relaxed);
        *slot = Some(model.clone());
        let weak = Arc::downgrade(&self.model);
        let mut resident = lock(&self.pool.resident);
        resident.push(Resident {
            slot: weak,
            folder: self.folder.clone(),
            bytes,
            used: Instant::now(),
        });
        // Resident now: no longer counted as loading (under the list's lock, so that no one
        // counts it twice or not at all).
        drop(loading);
        drop(resident);
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_models_are_unloaded_least_recently_used_first_to_fit_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let folder = |name: &str, bytes: usize| {
            let f = dir.path().join(name);
            std::fs::create_dir_all(&f).unwrap();
            std::fs::write(f.join("model.safetensors"), vec![1u8; bytes]).unwrap();
            // Sources converted at install are not counted.
            std::fs::write(f.join("model.bin"), vec![1u8; bytes]).unwrap();
            f
        };
        let mib = 1 << 20;
        // A pool of its own: other tests' models are not in it.
        let pool: &'static Pool = Box::leak(Box::new(Pool::new()));
        let set_budget = |bytes: u64| pool.budget.store(bytes, Ordering::Relaxed);
        let (a, b, c) = (
            Loaded::<Vec<u8>>::in_pool(pool, folder("a", mib)),
            Loaded::<Vec<u8>>::in_pool(pool, folder("b", mib)),
            Loaded::<Vec<u8>>::in_pool(pool, folder("c", mib)),
        );
        let loads = AtomicU64::new(0);
        let load = |_: &Path| {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok(vec![0u8; 16])
        };
        set_budget(10 * mib as u64);
        a.get(load).unwrap();
        b.get(load).unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        // Within the budget both stay, and a second get loads nothing.
        a.get(load).unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        let mine = |l: &Loaded<Vec<u8>>| lock(&l.model).is_some();
        assert!(mine(&a) && mine(&b));

        // Less room than a first load of one more model is counted as taking (four times
        // its files), but room enough once one goes: b was used before a, so b goes.
        let held: u64 = pool.resident().iter().map(|(_, b)| b).sum();
        assert_eq!(
            held,
            2 * mib as u64,
            "a load is counted as at least its files"
        );
        set_budget(held + 4 * mib as u64 - mib as u64 / 2);
        std::thread::sleep(std::time::Duration::from_millis(2));
        a.get(load).unwrap();
        c.get(load).unwrap();
        assert!(
            mine(&a) && !mine(&b) && mine(&c),
            "the least recently used went"
        );

        // A model in use is never unloaded, whatever the budget: a load that does not fit
        // beside it waits until it is let go of.
        let in_use = c.get(load).unwrap();
        set_budget(1);
        std::thread::scope(|s| {
            let waiting = s.spawn(|| b.get(load).unwrap());
            std::thread::sleep(std::time::Duration::from_millis(200));
            assert!(!waiting.is_finished(), "b loaded beside a model in use");
            assert!(mine(&c), "a model a job holds stays");
            assert!(!mine(&a), "an idle one went");
            drop(in_use);
            waiting.join().unwrap();
        });
        assert!(mine(&b) && !mine(&c), "once let go of, c made room for b");
        // Larger than the budget on its own, a model still loads when nothing else is.
        assert_eq!(pool.resident().len(), 1);
    }

    #[test]
    fn threads_loading_models_past_the_budget_take_turns_and_never_lose_a_model_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let pool: &'static Pool = Box::leak(Box::new(Pool::new()));
        pool.budget.store(1, Ordering::Relaxed);
        let models: Vec<Loaded<u64>> = (0..3)
            .map(|n| {
                let f = dir.path().join(format!("m{n}"));
                std::fs::create_dir_all(&f).unwrap();
                std::fs::write(f.join("model.onnx"), [0u8; 64]).unwrap();
                Loaded::in_pool(pool, f)
            })
            .collect();
        let loads = AtomicU64::new(0);
        std::thread::scope(|s| {
            for t in 0..6 {
                let (models, loads) = (&models, &loads);
                s.spawn(move || {
                    for i in 0..200 {
                        let model = &models[(t + i) % models.len()];
                        let held = model
                            .get(|_| {
                                loads.fetch_add(1, Ordering::Relaxed);
                                Ok(7)
                            })
                            .unwrap();
                        // Its slot still holds it while it is in use: never unloaded then.
                        std::thread::yield_now();
                        assert!(Arc::strong_count(&held) >= 2, "a model in use was unloaded");
                        // None fits beside another: one is loaded at a time.
                        assert!(pool.resident().len() <= 1, "two models past the budget");
                    }
                });
            }
        });
        // Under a budget of one byte, models were unloaded and loaded again.
        assert!(loads.load(Ordering::Relaxed) > 3);
    }
}
