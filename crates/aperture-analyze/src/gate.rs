//! A counting gate: at most so many runs of a model at once. A run's memory (Whisper holds
//! about 60 MB for a 30 s window, its features, the decoder's caches and the encoder's
//! attention one head at a time) is paid once per run in flight, and on a CPU runs beyond a
//! few gain nothing: each already spreads its matrix products over the cores.

use std::sync::{Condvar, Mutex};

pub(crate) struct Gate {
    free: Mutex<usize>,
    freed: Condvar,
}

/// A place in the gate, given back when dropped.
pub(crate) struct Pass<'a>(&'a Gate);

impl Gate {
    pub(crate) fn new(places: usize) -> Self {
        Self {
            free: Mutex::new(places.max(1)),
            freed: Condvar::new(),
        }
    }

    /// One run in flight per four cores, at least one.
    pub(crate) fn per_cores() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get() / 4))
    }

    /// Waits for a place.
    pub(crate) fn enter(&self) -> Pass<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Pass(self)
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn no_more_than_its_places_are_inside_at_once() {
        let gate = Gate::new(2);
        let (inside, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..20 {
                        let _pass = gate.enter();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_micros(200));
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(*gate.free.lock().unwrap(), 2, "every place given back");
    }
}
