//! Vector indexes: one per embedding space (MiniLM text descriptions, EfficientNet image
//! features, a CLIP model's images), approximate (HNSW, by USearch) with exact search beside
//! it, both as the reference in tests and for filters so narrow that a graph walk would find
//! too few neighbours.
//!
//! Every vector is in the graph in memory. On disk a space is the graph's file, written whole
//! now and then, and the **tail**: the vectors added since, appended as small segment files
//! (see `file.rs`), so an update writes what changed, not the whole space. Opening a space
//! inserts its tail into the graph; past [`SEAL_AT`] vectors in the tail, the next save writes
//! the graph whole again. (Searching the tail exactly instead, as segments of a log-structured
//! index often are, cost 3.7 ms a query for 8,192 vectors of 384 dimensions here, against
//! 0.15 ms for the graph: `benches/search.rs`.)
//!
//! Each vector has a key; [`Entry`] says whose it is and what filters need (collection, kind,
//! date), and postings by collection, kind and date find the few vectors a narrow filter lets
//! through without reading every entry. Erasing an asset removes its keys and overwrites their
//! vectors in place (see [`Space::erase_asset`]), and the next save rewrites the files that held
//! them: erased vectors are not only unreachable, their bytes are gone from memory and disk.

pub use aperture_core::dot;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use aperture_core::{AssetId, MediaKind, Place};
use half::f16;
use half::slice::HalfFloatSliceExt;
use half::vec::HalfFloatVecExt;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use crate::{Error, Result};

mod file;

pub use file::Files;
pub(crate) use file::sync_file;

/// The HNSW graph's degree. This and the two expansions below were measured by
/// `benches/search.rs` (recall@10 against exact search at 100k and 1M vectors).
pub const CONNECTIVITY: usize = 16;
/// Candidates kept while inserting into the graph.
pub const EXPANSION_ADD: usize = 128;
/// Candidates kept while searching the graph, unless [`Space::set_expansion_search`] changes it.
pub const EXPANSION_SEARCH: usize = 64;

/// When a filter lets fewer vectors than this through, they are searched exactly: a graph
/// walk that may only stop at a few nodes finds too few of them.
pub const EXACT_BELOW: usize = 20_000;

/// A tail longer than this is sealed when the space is saved: the graph's file is written whole
/// again. Opening a space inserts its tail into the graph (`benches/search.rs` times it).
pub const SEAL_AT: usize = 8192;

/// A vector's owner, and what filters ask of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    /// The asset the vector belongs to.
    pub asset: AssetId,
    /// Index into [`Space::collections`].
    pub collection: u32,
    /// The asset's kind, for `kind:`.
    pub kind: MediaKind,
    /// The capture day, else the ingest time, in Unix milliseconds, for `after:` and `before:`.
    pub date: i64,
    /// The document page the vector is about (0: the whole asset).
    pub page: u32,
    /// Which of the asset's vectors in this space it is (in insight order).
    pub ordinal: u32,
}

impl Entry {
    /// Where in the asset the vector applies: a page, or the whole asset. Other places are
    /// stored as the whole asset.
    pub fn place(&self) -> Place {
        match self.page {
            0 => Place::Whole,
            page => Place::Page { page, rect: None },
        }
    }
}

/// A vector to add, with its owner.
#[derive(Debug, Clone)]
pub struct NewVector<'a> {
    /// The asset it belongs to.
    pub asset: AssetId,
    /// The name of its collection.
    pub collection: &'a str,
    /// The asset's kind.
    pub kind: MediaKind,
    /// The capture day, else the ingest time, in Unix milliseconds.
    pub date: i64,
    /// The document page it is about (0: the whole asset).
    pub page: u32,
    /// Which of the asset's vectors in this space it is.
    pub ordinal: u32,
    /// The vector; it is normalised on the way in, so any length will do.
    pub vector: &'a [f32],
}

/// What a filtered search may return.
#[derive(Debug, Clone, Default)]
pub struct VectorFilter {
    /// Only these collections (empty: all).
    pub collections: Vec<String>,
    /// Only these kinds (empty: all).
    pub kinds: Vec<MediaKind>,
    /// Only dates from this one on (Unix milliseconds, inclusive).
    pub after: Option<i64>,
    /// Only dates before this one (Unix milliseconds, exclusive).
    pub before: Option<i64>,
}

impl VectorFilter {
    /// Whether it lets everything through.
    pub fn is_empty(&self) -> bool {
        self.collections.is_empty()
            && self.kinds.is_empty()
            && self.after.is_none()
            && self.before.is_none()
    }
}

/// One asset's vectors: space → (ordinal, vector), in ordinal order.
pub(crate) type AssetVectors = std::collections::BTreeMap<String, Vec<(u32, Vec<f32>)>>;

/// A nearest neighbour: the key, its entry, and the cosine similarity (1 is identical).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    /// The vector's key in its space.
    pub key: u64,
    /// Whose vector it is.
    pub entry: Entry,
    /// Cosine similarity to the query vector.
    pub similarity: f32,
}

/// The vectors of one embedding space.
pub struct Space {
    dims: usize,
    index: Index,
    entries: HashMap<u64, Entry>,
    by_asset: HashMap<AssetId, Vec<u64>>,
    collections: Vec<String>,
    next_key: u64,
    /// Slots USearch marked free (removed vectors) and will reuse, oldest first.
    freed: usize,
    /// The vectors in full (normalised, half precision): the graph holds 8-bit copies, which
    /// find the candidates; these give them their exact order and similarity.
    raw: HashMap<u64, Full>,
    /// Keys added since the graph's file was written: on disk only in segments, if at all.
    tail: HashSet<u64>,
    postings: Postings,
    /// How the files differ from memory.
    unsaved: Unsaved,
    /// Searches running in the graph now: USearch has one search context per slot.
    slots: Slots,
}

/// The keys each filter value lets through.
#[derive(Default)]
struct Postings {
    /// By [`Entry::collection`].
    collections: Vec<HashSet<u64>>,
    kinds: HashMap<MediaKind, HashSet<u64>>,
    dates: BTreeSet<(i64, u64)>,
}

impl Postings {
    fn insert(&mut self, key: u64, e: &Entry) {
        let c = e.collection as usize;
        if self.collections.len() <= c {
            self.collections.resize_with(c + 1, HashSet::new);
        }
        self.collections[c].insert(key);
        self.kinds.entry(e.kind).or_default().insert(key);
        self.dates.insert((e.date, key));
    }

    fn remove(&mut self, key: u64, e: &Entry) {
        if let Some(c) = self.collections.get_mut(e.collection as usize) {
            c.remove(&key);
        }
        if let Some(k) = self.kinds.get_mut(&e.kind) {
            k.remove(&key);
        }
        self.dates.remove(&(e.date, key));
    }
}

/// Where a removed vector's bytes still are on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// In the graph's file.
    Graph,
    /// In a tail segment file.
    Segment,
}

/// What memory holds that the files do not, and what the files hold that memory does not.
#[derive(Default)]
struct Unsaved {
    /// The space has no files yet: the first save writes it whole.
    never_saved: bool,
    /// Tail keys added since the last save: in no file yet.
    added: HashSet<u64>,
    /// Saved keys removed since the last save: the next segment says so.
    removed: Vec<(u64, AssetId)>,
    /// Removed keys whose bytes a file still holds (replaced vectors of assets that remain).
    ghosts: HashMap<u64, (AssetId, Held)>,
    /// The assets of `ghosts`, each with the strongest place (the graph's file before a
    /// segment): what an erasure looks up.
    ghost_assets: HashMap<AssetId, Held>,
    /// Vectors were erased: freed slots are scrubbed before the next save.
    scrub: bool,
    /// An erasure removed bytes held in the graph's file (rewrite it) or only in segments
    /// (rewrite those).
    erased: Option<Held>,
}

/// Searches one space runs at once. USearch keeps a search context per slot and fails a
/// search that finds none free; more searches than this wait for one.
pub const SEARCH_SLOTS: usize = 64;

/// A counting semaphore over [`SEARCH_SLOTS`].
#[derive(Default)]
struct Slots {
    busy: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
}

struct Slot<'a>(&'a Slots);

impl Slots {
    fn take(&self) -> Slot<'_> {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        while *busy >= SEARCH_SLOTS {
            busy = self.freed.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        *busy += 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut busy = self.0.busy.lock().unwrap_or_else(|e| e.into_inner());
        *busy -= 1;
        self.0.freed.notify_one();
    }
}

/// Makes room for `capacity` vectors and for [`SEARCH_SLOTS`] searches at once (USearch's
/// plain `reserve` gives as many search contexts as there are cores).
fn reserve(index: &Index, capacity: usize) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    index
        .reserve_capacity_and_threads(capacity, SEARCH_SLOTS.max(cores))
        .map_err(usearch_error)
}

/// Candidates the 8-bit graph returns per wanted neighbour, to be re-scored exactly (never
/// more than the search breadth, which sets how many the walk keeps).
pub const RESCORE: usize = 4;

/// How far the 8-bit copies reach, in typical components of a unit vector (1/√dims): a
/// component of `QUANT_REACH / √dims` or more becomes ±127. USearch's own cast maps 1.0 to 127
/// and truncates, so at 1280 dimensions a typical component took 3 of its 255 steps and one
/// under 1/127 became 0. On the bench's clustered vectors nothing reaches 6/√dims; exact
/// search by the 8-bit copies found 0.977 of the true ten that way, 0.995 this way (brute
/// force, 30,000 vectors, 384 and 1280 dimensions alike).
const QUANT_REACH: f32 = 8.0;

/// What a unit vector's components are multiplied by in its 8-bit copy: never less than 127
/// (a vector of under 64 dimensions can have a component near 1).
fn quant_scale(dims: usize) -> f32 {
    127.0 * ((dims as f32).sqrt() / QUANT_REACH).max(1.0)
}

/// The 8-bit copy of a unit vector that the graph holds: every component scaled alike (so the
/// integer inner product ranks as the cosine does) and made a step by [`step`].
fn quantized(v: &[f32]) -> Vec<i8> {
    let scale = quant_scale(v.len());
    v.iter().map(|x| step(x * scale)).collect()
}

/// `x` clamped to ±127 and rounded half away from zero, as `f32::round` does, but by adding
/// just under ±0.5 and truncating, which the compiler turns into vector instructions
/// (`f32::round` is a call per component on x86-64's baseline). Just under: 0.49999997 + 0.5
/// is 1.0 in f32. NaN becomes 0.
fn step(x: f32) -> i8 {
    const HALF: f32 = 0.499_999_97;
    let clamped = x.clamp(-127.0, 127.0);
    (clamped + HALF.copysign(clamped)) as i8
}

/// A vector in full as memory keeps it: half precision, half the bytes of f32. It re-scores the
/// 8-bit graph's candidates and answers exact searches; its rounding (a relative 2⁻¹¹ per
/// component, about 10⁻⁵ on a cosine at 384 dimensions) is far below the gaps between
/// neighbours.
type Full = Box<[f16]>;

/// `v` narrowed to its [`Full`] copy.
fn narrowed(v: &[f32]) -> Full {
    Vec::<f16>::from_f32_slice(v).into_boxed_slice()
}

/// The inner product of a query and a [`Full`] vector, widened a piece at a time on the stack.
fn dot_full(q: &[f32], v: &[f16]) -> f32 {
    debug_assert_eq!(q.len(), v.len());
    const PIECE: usize = 256;
    let mut piece = [0.0f32; PIECE];
    q.chunks(PIECE)
        .zip(v.chunks(PIECE))
        .map(|(q, v)| {
            let piece = &mut piece[..v.len()];
            v.convert_to_f32_slice(piece);
            dot(q, piece)
        })
        .sum()
}

/// Adds to the graph the 8-bit copies of every `stride`th of the half-precision copies
/// ([`Full`]) `vectors`, starting at the `first`, under their `keys`. Each is widened into one
/// buffer (widening a whole batch first left its f32 size with the allocator). Stops at its
/// first error, which raises `stop`, and when another thread raised it.
fn add_every(
    index: &Index,
    keys: &[u64],
    vectors: &[&[f16]],
    first: usize,
    stride: usize,
    stop: &AtomicBool,
) -> Option<String> {
    let mut wide = vec![0.0; index.dimensions()];
    for (key, v) in keys.iter().zip(vectors).skip(first).step_by(stride) {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        debug_assert_eq!(v.len(), wide.len());
        v.convert_to_f32_slice(&mut wide);
        if let Err(e) = index.add(*key, &quantized(&wide)) {
            stop.store(true, Ordering::Relaxed);
            return Some(e.to_string());
        }
    }
    None
}

/// Keys for the filler vectors that scrub freed slots; never given to a real vector.
const SCRUB_KEYS: u64 = u64::MAX - (1 << 40);

fn usearch_error(e: impl std::fmt::Display) -> Error {
    Error::Index(format!("vector index: {e}"))
}

fn options(dims: usize) -> IndexOptions {
    IndexOptions {
        dimensions: dims,
        // Inner product on 8-bit copies of unit vectors: USearch sums the raw integers, which
        // ranks as the cosine does (every vector was normalised before it was quantised) and
        // skips the two norms its cosine computes per pair: 1.2–1.4× the queries/s and 1.5×
        // the build speed at equal recall (benches/search.rs, 200k × 384).
        metric: MetricKind::IP,
        // The graph holds 8-bit copies: 2.5–4× the queries/s of f32 (benches/search.rs, 100k
        // vectors of 384, 512 and 1280 dims). Their recall stops near 0.94–0.96, so the graph
        // returns RESCORE × k candidates that the full vectors put in exact order.
        quantization: ScalarKind::I8,
        connectivity: CONNECTIVITY,
        expansion_add: EXPANSION_ADD,
        expansion_search: EXPANSION_SEARCH,
        multi: false,
    }
}

impl Space {
    /// An empty space of vectors with `dims` dimensions; 0 is [`Error::Index`].
    pub fn new(dims: usize) -> Result<Space> {
        if dims == 0 {
            return Err(Error::Index(
                "a vector space needs at least one dimension".into(),
            ));
        }
        let index = Index::new(&options(dims)).map_err(usearch_error)?;
        Ok(Space {
            dims,
            index,
            entries: HashMap::new(),
            by_asset: HashMap::new(),
            collections: Vec::new(),
            next_key: 1,
            freed: 0,
            raw: HashMap::new(),
            tail: HashSet::new(),
            postings: Postings::default(),
            unsaved: Unsaved {
                never_saved: true,
                ..Unsaved::default()
            },
            slots: Slots::default(),
        })
    }

    /// How many dimensions every vector of the space has.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// How many vectors it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many of its vectors were added since the graph's file was written.
    pub fn tail_len(&self) -> usize {
        self.tail.len()
    }

    /// The collection names [`Entry::collection`] indexes into.
    pub fn collections(&self) -> &[String] {
        &self.collections
    }

    /// The entry of a key, if the key is live.
    pub fn entry(&self, key: u64) -> Option<&Entry> {
        self.entries.get(&key)
    }

    /// Every key with its entry, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = (u64, Entry)> + '_ {
        self.entries.iter().map(|(k, e)| (*k, *e))
    }

    /// The keys of an asset's vectors.
    pub fn keys_of(&self, asset: AssetId) -> &[u64] {
        self.by_asset.get(&asset).map_or(&[], Vec::as_slice)
    }

    /// The bytes a key's vector is stored as in the graph (8-bit integers), for tests of
    /// erasure.
    pub fn stored_bytes(&self, key: u64) -> Option<Vec<u8>> {
        let mut out = vec![0i8; self.dims];
        match self.index.get(key, &mut out) {
            Ok(1) => Some(out.into_iter().map(|x| x as u8).collect()),
            _ => None,
        }
    }

    /// A key's vector as the space keeps it: normalised, then narrowed to half precision (its
    /// length is 1 within about 10⁻⁴).
    pub fn vector(&self, key: u64) -> Option<Vec<f32>> {
        self.raw.get(&key).map(|v| v.to_f32_vec())
    }

    /// Changes the HNSW search breadth (recall against speed).
    pub fn set_expansion_search(&self, n: usize) {
        self.index.change_expansion_search(n);
    }

    /// Adds one vector and returns its new key. Keys are never reused within a space, so a
    /// stale key finds nothing rather than another asset's vector.
    pub fn add(&mut self, new: &NewVector<'_>) -> Result<u64> {
        Ok(self.add_many(std::slice::from_ref(new))?[0])
    }

    /// Adds many vectors, into the graph on every core (a rebuild, a large import). Returns
    /// their keys; on an error none of them is added.
    pub fn add_many(&mut self, items: &[NewVector<'_>]) -> Result<Vec<u64>> {
        if let Some(bad) = items.iter().find(|v| v.vector.len() != self.dims) {
            self.check_dims(bad.vector.len(), "vector")?;
        }
        let first = self.next_key;
        self.next_key += items.len() as u64;
        let keys: Vec<u64> = (first..self.next_key).collect();
        let kept: Vec<Full> = items
            .iter()
            .map(|v| narrowed(&normalized(v.vector)))
            .collect();
        // The graph's copies are made from what is kept, as they are when a space is opened.
        let vectors: Vec<&[f16]> = kept.iter().map(|v| &v[..]).collect();
        Self::insert_into_graph(&self.index, &mut self.freed, &keys, &vectors)?;
        for ((key, v), vector) in keys.iter().zip(items).zip(kept) {
            let collection = self.intern(v.collection);
            let entry = Entry {
                asset: v.asset,
                collection,
                kind: v.kind,
                date: v.date,
                page: v.page,
                ordinal: v.ordinal,
            };
            self.register(*key, entry, vector);
            self.tail.insert(*key);
            self.unsaved.added.insert(*key);
        }
        Ok(keys)
    }

    /// Inserts the 8-bit copies of the half-precision `vectors` under `keys` into the graph,
    /// on every core when there are many ([`add_every`]); on an error, those that went in come
    /// out again. Takes the graph and its count of freed slots, not the space, so that the
    /// vectors can be borrowed from the space's own copies.
    fn insert_into_graph(
        index: &Index,
        freed: &mut usize,
        keys: &[u64],
        vectors: &[&[f16]],
    ) -> Result<()> {
        debug_assert_eq!(keys.len(), vectors.len());
        let needed = index.size() + vectors.len();
        if needed > index.capacity() {
            let grown = needed.max(index.capacity() * 2).max(1024);
            reserve(index, grown)?;
        }
        let threads = match vectors.len() {
            0..64 => 1,
            _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        // The first error stops every thread: what went in comes out again.
        let stop = &AtomicBool::new(false);
        let failed = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|t| s.spawn(move || add_every(index, keys, vectors, t, threads, stop)))
                .collect();
            let errors: Vec<String> = workers
                .into_iter()
                .filter_map(|w| w.join().expect("an add thread panicked"))
                .collect();
            errors.into_iter().next()
        });
        if let Some(e) = failed {
            for key in keys {
                if index.contains(*key) && index.remove(*key).is_ok() {
                    *freed += 1;
                }
            }
            return Err(usearch_error(e));
        }
        *freed = freed.saturating_sub(vectors.len());
        Ok(())
    }

    /// Makes an asset's vectors in this space be `news` (in ordinal order). Vectors that are
    /// already there as given stay, with their keys: an asset whose labels changed keeps its
    /// vectors. Others replace them: the old ones are removed (their bytes may stay in the
    /// files until the space is next rewritten; see [`Space::erase_asset`] for erasure).
    /// Returns whether anything changed.
    pub fn replace_asset(&mut self, asset: AssetId, news: &[NewVector<'_>]) -> Result<bool> {
        if let Some(bad) = news.iter().find(|v| v.vector.len() != self.dims) {
            self.check_dims(bad.vector.len(), "vector")?;
        }
        if self.holds_as_given(asset, news) {
            return Ok(false);
        }
        // The new vectors go in first: if that fails, the asset keeps its old ones.
        let old = self.by_asset.get(&asset).cloned().unwrap_or_default();
        self.add_many(news)?;
        for &key in &old {
            self.unregister(key)?;
            if let Some(left) = self.by_asset.get_mut(&asset) {
                left.retain(|k| *k != key);
            }
        }
        if self.by_asset.get(&asset).is_some_and(Vec::is_empty) {
            self.by_asset.remove(&asset);
        }
        Ok(true)
    }

    /// Whether the asset's vectors are `news`, in order: the same entries, and vectors that are
    /// the same in half precision (as kept).
    fn holds_as_given(&self, asset: AssetId, news: &[NewVector<'_>]) -> bool {
        let keys = self.keys_of(asset);
        keys.len() == news.len()
            && keys.iter().zip(news).all(|(key, new)| {
                let (Some(e), Some(raw)) = (self.entries.get(key), self.raw.get(key)) else {
                    return false;
                };
                e.kind == new.kind
                    && e.date == new.date
                    && e.page == new.page
                    && e.ordinal == new.ordinal
                    && self
                        .collections
                        .get(e.collection as usize)
                        .map(String::as_str)
                        == Some(new.collection)
                    && *raw == narrowed(&normalized(new.vector))
            })
    }

    fn check_dims(&self, len: usize, what: &str) -> Result<()> {
        if len == self.dims {
            return Ok(());
        }
        Err(Error::Index(format!(
            "a {what} of {len} dimensions in a space of {}",
            self.dims
        )))
    }

    /// Records a live key (not yet placed in the graph or the tail).
    fn register(&mut self, key: u64, entry: Entry, vector: Full) {
        self.postings.insert(key, &entry);
        self.entries.insert(key, entry);
        self.by_asset.entry(entry.asset).or_default().push(key);
        self.raw.insert(key, vector);
    }

    /// Removes a key from the graph or the tail and from the lookups (not from `by_asset`,
    /// which the caller changes), remembering where a file still holds its bytes.
    fn unregister(&mut self, key: u64) -> Result<()> {
        let Some(entry) = self.entries.remove(&key) else {
            return Ok(());
        };
        self.postings.remove(key, &entry);
        self.raw.remove(&key);
        if self.index.contains(key) {
            self.index.remove(key).map_err(usearch_error)?;
            self.freed += 1;
        }
        let held = if self.tail.remove(&key) {
            // Added since the last save: no file holds it.
            if self.unsaved.added.remove(&key) {
                return Ok(());
            }
            Held::Segment
        } else {
            if self.unsaved.never_saved {
                return Ok(());
            }
            Held::Graph
        };
        self.unsaved.removed.push((key, entry.asset));
        self.unsaved.ghosts.insert(key, (entry.asset, held));
        let strongest = self.unsaved.ghost_assets.entry(entry.asset).or_insert(held);
        if held == Held::Graph {
            *strongest = Held::Graph;
        }
        Ok(())
    }

    fn intern(&mut self, collection: &str) -> u32 {
        match self.collections.iter().position(|c| c == collection) {
            Some(i) => i as u32,
            None => {
                self.collections.push(collection.to_owned());
                (self.collections.len() - 1) as u32
            }
        }
    }

    /// Removes every vector of an asset and makes the next save overwrite their bytes in
    /// memory (see `Space::scrub`) and rewrite every file that held them (also vectors of the
    /// asset that were replaced earlier). Returns how many live vectors it had.
    pub fn erase_asset(&mut self, asset: AssetId) -> Result<usize> {
        let keys = self.by_asset.get(&asset).cloned().unwrap_or_default();
        for &key in &keys {
            self.unregister(key)?;
            if let Some(left) = self.by_asset.get_mut(&asset) {
                left.retain(|k| *k != key);
            }
        }
        self.by_asset.remove(&asset);
        if let Some(held) = self.unsaved.ghost_assets.get(&asset).copied() {
            self.unsaved.erased = match (self.unsaved.erased, held) {
                (Some(Held::Graph), _) | (_, Held::Graph) => Some(Held::Graph),
                _ => Some(Held::Segment),
            };
        }
        // Replaced vectors of the asset may still sit in freed slots of the graph in memory.
        if !keys.is_empty() || self.unsaved.ghost_assets.contains_key(&asset) {
            self.unsaved.scrub = true;
        }
        Ok(keys.len())
    }

    /// Overwrites every freed slot with a constant vector. USearch only marks a removed
    /// vector's slot free and keeps its bytes (in memory and in saved files) until an `add`
    /// reuses the slot, oldest freed first: so one filler is added per freed slot, which takes
    /// every one of them in turn, and the fillers are removed again.
    fn scrub(&mut self) -> Result<()> {
        let n = self.freed;
        if n == 0 {
            return Ok(());
        }
        let mut filler = vec![0i8; self.dims];
        filler[0] = 127;
        if self.index.size() + n > self.index.capacity() {
            reserve(&self.index, self.index.size() + n)?;
        }
        for i in 0..n as u64 {
            self.index
                .add(SCRUB_KEYS + i, &filler)
                .map_err(usearch_error)?;
        }
        for i in 0..n as u64 {
            self.index.remove(SCRUB_KEYS + i).map_err(usearch_error)?;
        }
        Ok(())
    }

    /// The `k` nearest vectors to `query` that pass the filter, most similar first.
    pub fn search(&self, query: &[f32], k: usize, filter: &VectorFilter) -> Result<Vec<Neighbour>> {
        self.check_dims(query.len(), "query")?;
        if k == 0 || self.entries.is_empty() {
            return Ok(Vec::new());
        }
        let query = &normalized(query);
        let query_i8 = &quantized(query);
        let passes = self.predicate(filter);
        // Every candidate the walk kept is re-scored (a few µs): asking USearch for fewer than
        // its breadth saves nothing, and asking for more widens the walk.
        let wanted = k
            .saturating_mul(RESCORE)
            .min(self.index.expansion_search())
            .max(k);
        let candidates = if filter.is_empty() {
            let _slot = self.slots.take();
            self.index
                .search(query_i8, wanted)
                .map_err(usearch_error)?
                .keys
        } else {
            let (passing, _) = self.passing(filter, &passes);
            if passing.len() < EXACT_BELOW {
                return Ok(self.exact_among(query, k, &passing));
            }
            let _slot = self.slots.take();
            self.index
                .filtered_search(query_i8, wanted, |key| {
                    self.entries.get(&key).is_some_and(&passes)
                })
                .map_err(usearch_error)?
                .keys
        };
        Ok(self.exact_among(query, k, &candidates))
    }

    /// Up to [`EXACT_BELOW`] keys that pass a filter, read from its narrowest posting (the
    /// named collections, the named kinds or the date range, whichever holds fewest keys), so
    /// a narrow filter never reads every entry.
    /// Also returns how many keys it read.
    fn passing(
        &self,
        filter: &VectorFilter,
        passes: &impl Fn(&Entry) -> bool,
    ) -> (Vec<u64>, usize) {
        let mut narrowest: Option<(usize, Keys<'_>)> = None;
        if !filter.collections.is_empty() {
            let sets: Vec<&HashSet<u64>> = filter
                .collections
                .iter()
                .filter_map(|c| self.collections.iter().position(|x| x == c))
                .filter_map(|i| self.postings.collections.get(i))
                .collect();
            consider(sets, &mut narrowest);
        }
        if !filter.kinds.is_empty() {
            let sets: Vec<&HashSet<u64>> = filter
                .kinds
                .iter()
                .filter_map(|k| self.postings.kinds.get(k))
                .collect();
            consider(sets, &mut narrowest);
        }
        if let (Some(after), Some(before)) = (filter.after, filter.before)
            && after >= before
        {
            return (Vec::new(), 0);
        }
        if filter.after.is_some() || filter.before.is_some() {
            use std::ops::Bound;
            let from = filter
                .after
                .map_or(Bound::Unbounded, |a| Bound::Included((a, 0)));
            let to = filter
                .before
                .map_or(Bound::Unbounded, |b| Bound::Excluded((b, 0)));
            let range = || self.postings.dates.range((from, to)).map(|(_, key)| *key);
            // Counted only as far as it could be the narrower.
            match &narrowest {
                Some((n, _)) if range().take(*n).count() >= *n => {}
                _ => narrowest = Some((0, Box::new(range()))),
            }
        }
        let keys: Keys<'_> = match narrowest {
            Some((_, keys)) => keys,
            None => Box::new(self.entries.keys().copied()),
        };
        let mut read = 0;
        let passing = keys
            .inspect(|_| read += 1)
            .filter(|key| self.entries.get(key).is_some_and(passes))
            .take(EXACT_BELOW)
            .collect();
        (passing, read)
    }

    /// Exact search over every vector: the reference the approximate search is measured by.
    pub fn exact(&self, query: &[f32], k: usize) -> Vec<Neighbour> {
        let keys: Vec<u64> = self.entries.keys().copied().collect();
        self.exact_among(&normalized(query), k, &keys)
    }

    /// The `k` of `keys` nearest to `q` (normalised), by the full vectors; `keys` holds each
    /// key once. Only the best `k` are sorted.
    fn exact_among(&self, q: &[f32], k: usize, keys: &[u64]) -> Vec<Neighbour> {
        let mut scored: Vec<(f32, u64)> = keys
            .iter()
            .filter_map(|&key| Some((dot_full(q, self.raw.get(&key)?), key)))
            .collect();
        let order = |a: &(f32, u64), b: &(f32, u64)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if scored.len() > k {
            scored.select_nth_unstable_by(k, order);
            scored.truncate(k);
        }
        scored.sort_unstable_by(order);
        scored
            .into_iter()
            .filter_map(|(similarity, key)| {
                Some(Neighbour {
                    key,
                    entry: *self.entries.get(&key)?,
                    similarity,
                })
            })
            .collect()
    }

    fn predicate<'a>(&'a self, filter: &'a VectorFilter) -> impl Fn(&Entry) -> bool + 'a {
        let collections: Vec<u32> = filter
            .collections
            .iter()
            .filter_map(|c| {
                self.collections
                    .iter()
                    .position(|x| x == c)
                    .map(|i| i as u32)
            })
            .collect();
        move |e: &Entry| {
            (filter.collections.is_empty() || collections.contains(&e.collection))
                && (filter.kinds.is_empty() || filter.kinds.contains(&e.kind))
                && filter.after.is_none_or(|a| e.date >= a)
                && filter.before.is_none_or(|b| e.date < b)
        }
    }
}

/// Keys read from a posting.
type Keys<'a> = Box<dyn Iterator<Item = u64> + 'a>;

/// Keeps the union of `sets` as the narrowest posting if it is narrower than the one kept.
fn consider<'a>(sets: Vec<&'a HashSet<u64>>, narrowest: &mut Option<(usize, Keys<'a>)>) {
    let size = sets.iter().map(|s| s.len()).sum();
    if narrowest.as_ref().is_none_or(|(n, _)| size < *n) {
        *narrowest = Some((size, Box::new(sets.into_iter().flatten().copied())));
    }
}

/// `v` scaled to length 1 (a zero vector as it is).
pub(crate) fn normalized(v: &[f32]) -> Vec<f32> {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 {
        v.iter().map(|x| x / norm).collect()
    } else {
        v.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u64, dims: usize) -> Vec<f32> {
        // A small xorshift: deterministic, spread over the sphere well enough for tests.
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let v: Vec<f32> = (0..dims)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        normalized(&v)
    }

    #[test]
    fn the_half_precision_copies_score_as_the_floats_do() {
        // 300 leaves a partial piece of the widening; 1280 is whole pieces.
        for dims in [300, 384, 1280] {
            let q = unit(1, dims);
            let v = unit(2, dims);
            let kept = narrowed(&v);
            for (x, h) in v.iter().zip(kept.to_f32_vec()) {
                assert!((x - h).abs() <= x.abs() / 2048.0 + 1e-7, "{x} kept as {h}");
            }
            let exact = dot(&q, &v);
            let scored = dot_full(&q, &kept);
            assert!(
                (exact - scored).abs() < 1e-4,
                "{dims}: {exact} against {scored}"
            );
            assert!((dot_full(&v, &kept) - 1.0).abs() < 1e-4);
        }
        // What a space answers with is the half-precision copy, widened.
        let mut space = Space::new(384).unwrap();
        let v = unit(5, 384);
        let key = add(&mut space, AssetId::new(), "c", MediaKind::Image, &v);
        assert_eq!(space.vector(key).unwrap(), narrowed(&v).to_f32_vec());
        let hit = &space.search(&v, 1, &VectorFilter::default()).unwrap()[0];
        assert_eq!(hit.key, key);
        assert!((hit.similarity - 1.0).abs() < 1e-4, "{}", hit.similarity);
    }

    #[test]
    fn the_graphs_8_bit_copies_round_at_a_scale_that_uses_their_range() {
        for dims in [384, 1280] {
            let v = unit(3, dims);
            let q = quantized(&v);
            let scale = quant_scale(dims);
            for (x, q) in v.iter().zip(&q) {
                // Rounded, not truncated toward zero.
                assert!((x * scale - f32::from(*q)).abs() <= 0.5, "{x} became {q}");
            }
            // A typical component takes tens of steps, not the 3 to 6 of a cast that maps
            // 1.0 to 127.
            let typical = q.iter().map(|q| f32::from(*q).abs()).sum::<f32>() / dims as f32;
            assert!(typical > 10.0, "{dims} dims: {typical}");
        }
        // Past the reach, components are clamped.
        let mut spike = vec![0.0; 1280];
        spike[7] = 1.0;
        assert_eq!(quantized(&spike)[7], 127);
        spike[7] = -1.0;
        assert_eq!(quantized(&spike)[7], -127);
        // Few dimensions keep the whole range: 1.0 is 127, not clamped there from further.
        assert_eq!(quantized(&[0.6, 0.8]), [76, 102]);
        // A step is what rounding half away from zero and clamping make, at the edges too.
        for x in [
            0.0,
            0.499_999_97,
            0.5,
            2.5,
            126.5,
            127.4,
            127.5,
            200.0,
            f32::INFINITY,
        ] {
            for x in [x, -x] {
                assert_eq!(step(x), x.round().clamp(-127.0, 127.0) as i8, "{x}");
            }
        }
        assert_eq!(step(f32::NAN), 0);
        // What the graph holds is what the quantiser made of the vector as kept (normalised,
        // in half precision), as a space opened from its files makes it.
        let mut space = Space::new(48).unwrap();
        let v = unit(9, 48);
        let key = add(&mut space, AssetId::new(), "c", MediaKind::Image, &v);
        let held: Vec<i8> = space
            .stored_bytes(key)
            .unwrap()
            .into_iter()
            .map(|b| b as i8)
            .collect();
        assert_eq!(held, quantized(&narrowed(&v).to_f32_vec()));
    }

    fn graph(stem: &str) -> Files {
        Files {
            graph: stem.into(),
            segments: Vec::new(),
        }
    }

    fn add(space: &mut Space, asset: AssetId, collection: &str, kind: MediaKind, v: &[f32]) -> u64 {
        space
            .add(&NewVector {
                asset,
                collection,
                kind,
                date: 1000,
                page: 0,
                ordinal: 0,
                vector: v,
            })
            .unwrap()
    }

    /// Many vectors at once go into the graph on several threads, each taking every n-th:
    /// every key gets its own vector's 8-bit copy, whether added at once or opened from a tail
    /// of segments.
    #[test]
    fn vectors_added_in_bulk_hold_their_own_8_bit_copies() {
        let dims = 32;
        let vectors: Vec<Vec<f32>> = (0..300).map(|i| unit(7000 + i, dims)).collect();
        let news = |range: std::ops::Range<usize>| -> Vec<NewVector<'_>> {
            range
                .map(|i| NewVector {
                    asset: AssetId::new(),
                    collection: "c",
                    kind: MediaKind::Image,
                    date: 1000,
                    page: 0,
                    ordinal: 0,
                    vector: &vectors[i],
                })
                .collect()
        };
        let expected = |i: usize| -> Vec<u8> {
            quantized(&narrowed(&normalized(&vectors[i])).to_f32_vec())
                .into_iter()
                .map(|q| q as u8)
                .collect()
        };
        let dir = tempfile::tempdir().unwrap();
        let mut space = Space::new(dims).unwrap();
        let first = space.add_many(&news(0..200)).unwrap();
        let files = space.persist(dir.path(), "s", 1, None).unwrap();
        // A tail of 100 (past the 64 that take more than one thread), in a segment.
        let tail = space.add_many(&news(200..300)).unwrap();
        let files = space.persist(dir.path(), "s", 2, Some(&files)).unwrap();
        assert_eq!(files.segments.len(), 1);
        let opened = Space::load(dir.path(), &files).unwrap();
        for (i, key) in first.iter().chain(&tail).enumerate() {
            assert_eq!(space.stored_bytes(*key).unwrap(), expected(i), "vector {i}");
            assert_eq!(
                opened.stored_bytes(*key).unwrap(),
                expected(i),
                "opened, {i}"
            );
        }
    }

    #[test]
    fn approximate_agrees_with_exact_on_a_small_set() {
        let mut space = Space::new(32).unwrap();
        let ids: Vec<AssetId> = (0..2000).map(|_| AssetId::new()).collect();
        for (i, id) in ids.iter().enumerate() {
            add(&mut space, *id, "c", MediaKind::Image, &unit(i as u64, 32));
        }
        let mut found = 0;
        for q in 0..50 {
            let query = unit(10_000 + q, 32);
            let approx = space.search(&query, 10, &VectorFilter::default()).unwrap();
            let exact = space.exact(&query, 10);
            found += exact
                .iter()
                .filter(|e| approx.iter().any(|a| a.key == e.key))
                .count();
            // Similarities are of the 8-bit vectors: close to the true ones, not equal.
            let stored = space.vector(approx[0].key).unwrap();
            assert!(
                (approx[0].similarity - dot(&query, &stored)).abs() < 0.02,
                "{} vs {} (norm {})",
                approx[0].similarity,
                dot(&query, &stored),
                dot(&stored, &stored)
            );
        }
        // `exact` also reads the stored (8-bit) vectors: this is the graph's recall alone.
        assert!(found >= 480, "recall@10 {found}/500");
    }

    /// More searches at once than the machine has cores (a server's blocking pool), fresh and
    /// after a reload: USearch fails a search that finds no free context.
    #[test]
    fn many_searches_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut space = Space::new(16).unwrap();
        for i in 0..500 {
            add(
                &mut space,
                AssetId::new(),
                "c",
                MediaKind::Image,
                &unit(i, 16),
            );
        }
        space.save(dir.path(), "s").unwrap();
        let loaded = Space::load(dir.path(), &graph("s")).unwrap();
        for space in [&space, &loaded] {
            std::thread::scope(|s| {
                for t in 0..SEARCH_SLOTS + 16 {
                    s.spawn(move || {
                        for q in 0..20 {
                            let query = unit(10_000 + (t * 100 + q) as u64, 16);
                            let hits = space.search(&query, 5, &VectorFilter::default()).unwrap();
                            assert_eq!(hits.len(), 5);
                        }
                    });
                }
            });
        }
    }

    #[test]
    fn filters_and_removal_and_persistence() {
        let dir = tempfile::tempdir().unwrap();
        let mut space = Space::new(8).unwrap();
        let (a, b, c) = (AssetId::new(), AssetId::new(), AssetId::new());
        add(&mut space, a, "press", MediaKind::Image, &unit(1, 8));
        add(&mut space, b, "archive", MediaKind::Image, &unit(2, 8));
        add(&mut space, c, "press", MediaKind::Document, &unit(3, 8));
        let query = unit(2, 8);
        let only = |space: &Space, filter: VectorFilter| -> Vec<AssetId> {
            space
                .search(&query, 10, &filter)
                .unwrap()
                .iter()
                .map(|n| n.entry.asset)
                .collect()
        };
        assert_eq!(only(&space, VectorFilter::default())[0], b, "itself first");
        let press = only(
            &space,
            VectorFilter {
                collections: vec!["press".into()],
                ..VectorFilter::default()
            },
        );
        assert!(press.len() == 2 && !press.contains(&b));
        let docs = only(
            &space,
            VectorFilter {
                kinds: vec![MediaKind::Document],
                ..VectorFilter::default()
            },
        );
        assert_eq!(docs, [c]);
        let none = only(
            &space,
            VectorFilter {
                after: Some(2000),
                ..VectorFilter::default()
            },
        );
        assert!(none.is_empty());

        assert_eq!(space.erase_asset(b).unwrap(), 1);
        assert!(!only(&space, VectorFilter::default()).contains(&b));
        space.save(dir.path(), "s").unwrap();
        let loaded = Space::load(dir.path(), &graph("s")).unwrap();
        assert_eq!(loaded.len(), 2);
        let found: Vec<AssetId> = loaded
            .search(&query, 10, &VectorFilter::default())
            .unwrap()
            .iter()
            .map(|n| n.entry.asset)
            .collect();
        assert!(found.contains(&a) && found.contains(&c) && !found.contains(&b));
    }

    /// The bytes of erased vectors are gone from the saved file: for an asset with two
    /// vectors, for erasures one after another, and for an erasure after a reload (when the
    /// index already has freed slots).
    #[test]
    fn removed_vectors_are_gone_from_the_saved_file() {
        let dir = tempfile::tempdir().unwrap();
        let saved = |space: &mut Space, stem: &str| -> Vec<u8> {
            space.save(dir.path(), stem).unwrap();
            std::fs::read(dir.path().join(format!("{stem}.usearch"))).unwrap()
        };

        let mut space = Space::new(16).unwrap();
        let keep = AssetId::new();
        add(&mut space, keep, "c", MediaKind::Image, &unit(7, 16));
        let (two, one, later) = (AssetId::new(), AssetId::new(), AssetId::new());
        let owners = [two, two, one, later];
        let keys: Vec<u64> = (1..=4)
            .zip(owners)
            .map(|(seed, owner)| add(&mut space, owner, "c", MediaKind::Image, &secret(seed)))
            .collect();
        // The vectors' bytes as stored: 8-bit in the graph.
        let vectors: Vec<Vec<u8>> = keys
            .iter()
            .map(|k| space.stored_bytes(*k).unwrap())
            .collect();
        let before = saved(&mut space, "before");
        assert!(
            vectors.iter().all(|v| holds(&before, v)),
            "the test must see them first"
        );

        space.erase_asset(two).unwrap();
        space.erase_asset(one).unwrap();
        let after = saved(&mut space, "after");
        for v in &vectors[..3] {
            assert!(
                !holds(&after, v),
                "an erased vector's bytes stay in the index file"
            );
        }
        assert!(holds(&after, &vectors[3]));
        let entries = std::fs::read(dir.path().join("after.entries")).unwrap();
        assert!(
            !entries
                .windows(16)
                .any(|w| w == two.as_bytes() || w == one.as_bytes())
        );

        let mut reloaded = Space::load(dir.path(), &graph("after")).unwrap();
        reloaded.erase_asset(later).unwrap();
        let last = saved(&mut reloaded, "last");
        assert!(vectors.iter().all(|v| !holds(&last, v)));
        assert_eq!(reloaded.len(), 1);
        let found = reloaded
            .search(&unit(7, 16), 5, &VectorFilter::default())
            .unwrap();
        assert_eq!(found.len(), 1, "fillers are never found");
        assert_eq!(found[0].entry.asset, keep);
    }

    /// Unit length, as stored; distinct from any other test vector.
    fn secret(seed: u64) -> Vec<f32> {
        normalized(
            &(0..16)
                .map(|i| 0.1 + seed as f32 * 0.37 + i as f32 * 0.011)
                .collect::<Vec<_>>(),
        )
    }

    fn holds(bytes: &[u8], v: &[u8]) -> bool {
        bytes.windows(v.len()).any(|w| w == v)
    }

    /// The bytes a file holds for `v`: its half-precision copy, normalised as a space does
    /// it, widened.
    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        narrowed(&normalized(v))
            .to_f32_vec()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect()
    }

    /// Every byte of the files that hold a space.
    fn on_disk(dir: &std::path::Path, files: &Files) -> Vec<u8> {
        let mut names = vec![
            format!("{}.usearch", files.graph),
            format!("{}.entries", files.graph),
        ];
        names.extend(files.segments.iter().map(|s| format!("{s}.tail")));
        names
            .iter()
            .flat_map(|n| std::fs::read(dir.join(n)).unwrap())
            .collect()
    }

    fn similar_to(space: &Space, v: &[f32]) -> Option<(AssetId, f32)> {
        let hits = space.search(v, 1, &VectorFilter::default()).unwrap();
        hits.first().map(|n| (n.entry.asset, n.similarity))
    }

    /// An update appends a segment and leaves the graph's files alone; what is loaded from
    /// the graph and its segments is what memory held; an erasure rewrites the files that held
    /// the asset (the segments only, or the graph too) and its bytes are gone from them.
    #[test]
    fn updates_append_segments_and_erasure_rewrites_what_held_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        let mut space = Space::new(16).unwrap();
        let assets: Vec<AssetId> = (0..50).map(|_| AssetId::new()).collect();
        for (i, a) in assets.iter().enumerate() {
            add(
                &mut space,
                *a,
                "c",
                MediaKind::Image,
                &unit(100 + i as u64, 16),
            );
        }
        let files = space.persist(path, "s", 1, None).unwrap();
        assert_eq!(files, graph("s.1"));
        let graph_file = std::fs::read(path.join("s.1.usearch")).unwrap();
        // The first asset's vector as the graph holds it (8-bit), replaced and erased below.
        let first_i8 = space.stored_bytes(space.keys_of(assets[0])[0]).unwrap();
        assert!(holds(&graph_file, &first_i8));

        // A new asset, and one asset's vector replaced.
        let fresh = AssetId::new();
        add(&mut space, fresh, "c", MediaKind::Image, &secret(1));
        let replaced = space
            .replace_asset(
                assets[0],
                &[NewVector {
                    asset: assets[0],
                    collection: "c",
                    kind: MediaKind::Image,
                    date: 1000,
                    page: 0,
                    ordinal: 0,
                    vector: &secret(2),
                }],
            )
            .unwrap();
        assert!(replaced);
        let files = space.persist(path, "s", 2, Some(&files)).unwrap();
        assert_eq!(files.graph, "s.1");
        assert_eq!(files.segments, ["s.2"]);
        assert_eq!(std::fs::read(path.join("s.1.usearch")).unwrap(), graph_file);
        assert_eq!(
            space.persist(path, "s", 3, Some(&files)).unwrap(),
            files,
            "nothing changed, nothing written"
        );
        assert!(!path.join("s.3.tail").exists());
        // Unchanged vectors stay as they are.
        let same = NewVector {
            asset: assets[5],
            collection: "c",
            kind: MediaKind::Image,
            date: 1000,
            page: 0,
            ordinal: 0,
            vector: &unit(105, 16),
        };
        assert!(!space.replace_asset(assets[5], &[same]).unwrap());

        let mut loaded = Space::load(path, &files).unwrap();
        assert_eq!(loaded.len(), space.len());
        assert_eq!(loaded.tail_len(), 2);
        assert_eq!(similar_to(&loaded, &secret(1)).unwrap().0, fresh);
        assert_eq!(similar_to(&loaded, &secret(2)).unwrap().0, assets[0]);
        let (_, old) = similar_to(&loaded, &unit(100, 16)).unwrap();
        assert!(old < 0.99, "the replaced vector is gone ({old})");
        for q in 0..20 {
            let query = unit(5000 + q, 16);
            let a = space.search(&query, 5, &VectorFilter::default()).unwrap();
            let b = loaded.search(&query, 5, &VectorFilter::default()).unwrap();
            assert_eq!(
                a.iter().map(|n| n.key).collect::<Vec<_>>(),
                b.iter().map(|n| n.key).collect::<Vec<_>>()
            );
        }

        // Erased from the tail: the segments are rewritten, the graph's files are not.
        assert!(holds(&on_disk(path, &files), &f32_bytes(&secret(1))));
        loaded.erase_asset(fresh).unwrap();
        let files = loaded.persist(path, "s", 4, Some(&files)).unwrap();
        assert_eq!(files.graph, "s.1");
        assert_eq!(files.segments, ["s.4"]);
        assert!(!holds(&on_disk(path, &files), &f32_bytes(&secret(1))));
        let reloaded = Space::load(path, &files).unwrap();
        assert_ne!(similar_to(&reloaded, &secret(1)).unwrap().0, fresh);
        let (_, old) = similar_to(&reloaded, &unit(100, 16)).unwrap();
        assert!(old < 0.99, "the replaced vector stays removed ({old})");

        // The asset whose old vector is in the graph's file, erased: the graph is rewritten.
        let old_bytes = f32_bytes(&unit(100, 16));
        assert!(holds(&on_disk(path, &files), &old_bytes));
        assert!(holds(&on_disk(path, &files), &f32_bytes(&secret(2))));
        loaded.erase_asset(assets[0]).unwrap();
        let files = loaded.persist(path, "s", 5, Some(&files)).unwrap();
        assert_eq!(files, graph("s.5"));
        let bytes = on_disk(path, &files);
        assert!(!holds(&bytes, &old_bytes));
        assert!(!holds(&bytes, &first_i8), "the 8-bit copy is gone too");
        assert!(!holds(&bytes, &f32_bytes(&secret(2))));
        assert!(!holds(&bytes, assets[0].as_bytes()));
        assert_eq!(Space::load(path, &files).unwrap().len(), 49);
    }

    /// A filter that lets few vectors through reads only its narrowest posting, and finds
    /// what an exact search over everything would.
    #[test]
    fn narrow_filters_read_only_their_posting() {
        let mut space = Space::new(8).unwrap();
        for i in 0..3000u64 {
            let (collection, kind) = match i % 300 {
                0 => ("small", MediaKind::Image),
                1 => ("big", MediaKind::Document),
                _ => ("big", MediaKind::Image),
            };
            space
                .add(&NewVector {
                    asset: AssetId::new(),
                    collection,
                    kind,
                    date: i as i64 * 1000,
                    page: 0,
                    ordinal: 0,
                    vector: &unit(i, 8),
                })
                .unwrap();
        }
        let filters = [
            (
                VectorFilter {
                    collections: vec!["small".into()],
                    ..VectorFilter::default()
                },
                10,
            ),
            (
                VectorFilter {
                    kinds: vec![MediaKind::Document],
                    ..VectorFilter::default()
                },
                10,
            ),
            (
                VectorFilter {
                    collections: vec!["big".into()],
                    after: Some(100_000),
                    before: Some(130_000),
                    ..VectorFilter::default()
                },
                30,
            ),
            (
                VectorFilter {
                    collections: vec!["small".into(), "nowhere".into()],
                    kinds: vec![MediaKind::Image],
                    after: Some(0),
                    ..VectorFilter::default()
                },
                10,
            ),
        ];
        // An empty date range is no error.
        let backwards = VectorFilter {
            after: Some(2_000_000),
            before: Some(1_000),
            ..VectorFilter::default()
        };
        assert!(space.search(&unit(1, 8), 5, &backwards).unwrap().is_empty());
        for (filter, most) in &filters {
            let passes = space.predicate(filter);
            let (passing, read) = space.passing(filter, &passes);
            assert!(read <= *most, "{filter:?} read {read} keys");
            let every = space.keys().filter(|(_, e)| passes(e)).count();
            assert_eq!(passing.len(), every, "{filter:?}");
            let query = unit(77_777, 8);
            let found = space.search(&query, 5, filter).unwrap();
            let mut expected: Vec<(u64, f32)> = space
                .keys()
                .filter(|(_, e)| passes(e))
                .map(|(k, _)| (k, dot(&query, &space.vector(k).unwrap())))
                .collect();
            expected.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            assert_eq!(
                found.iter().map(|n| n.key).collect::<Vec<_>>(),
                expected.iter().take(5).map(|(k, _)| *k).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn damaged_entries_are_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let one = |space: &mut Space, seed: u64| {
            add(space, AssetId::new(), "c", MediaKind::Image, &unit(seed, 4))
        };
        let mut space = Space::new(4).unwrap();
        one(&mut space, 1);
        space.save(dir.path(), "s").unwrap();
        let path = dir.path().join("s.entries");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = Space::load(dir.path(), &graph("s"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("s.entries"), "{err}");

        // A damaged segment, too.
        let mut space = Space::new(4).unwrap();
        one(&mut space, 1);
        let files = space.persist(dir.path(), "t", 1, None).unwrap();
        one(&mut space, 2);
        let files = space.persist(dir.path(), "t", 2, Some(&files)).unwrap();
        assert_eq!(files.segments, ["t.2"]);
        let path = dir.path().join("t.2.tail");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let err = Space::load(dir.path(), &files).err().unwrap().to_string();
        assert!(err.contains("t.2.tail"), "{err}");

        // A segment that adds a key the graph already has (two assets would share it).
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(Space::load(dir.path(), &files).unwrap().len(), 2);
        let mut forged = bytes.clone();
        let record = 8 + 16 + 4 + 1 + 8 + 4 + 4 + 4 * 4;
        let at = forged.len() - record;
        forged[at..at + 8].copy_from_slice(&1u64.to_le_bytes());
        std::fs::write(&path, &forged).unwrap();
        let err = Space::load(dir.path(), &files).err().unwrap().to_string();
        assert!(err.contains("t.2.tail") && err.contains("twice"), "{err}");
    }
}
