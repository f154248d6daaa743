//! Vector indexes: one per embedding space (MiniLM text descriptions, EfficientNet image
//! features, a CLIP model's images), approximate (HNSW, by USearch) with exact search beside
//! it, both as the reference in tests and for filters so narrow that a graph walk would find
//! too few neighbours.
//!
//! Each vector has a key; [`Entry`] says whose it is and what filters need (collection, kind,
//! date), so vector search filters without asking anyone. Deleting an asset removes its keys
//! and overwrites their vectors in place (see [`Space::remove_asset`]): erased vectors are not
//! only unreachable, their bytes are gone from memory and from the next saved file.

pub use aperture_core::dot;
use std::collections::HashMap;

use aperture_core::{AssetId, MediaKind, Place};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use crate::{Error, Result};

mod file;

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
    /// The vectors in full (normalised f32): the graph holds 8-bit copies, which find the
    /// candidates; these give them their exact order and similarity.
    raw: HashMap<u64, Box<[f32]>>,
    /// Searches running in the graph now: USearch has one search context per slot.
    slots: Slots,
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

/// Candidates the 8-bit graph returns per wanted neighbour, to be re-scored exactly.
pub const RESCORE: usize = 4;

/// Keys for the filler vectors that scrub freed slots; never given to a real vector.
const SCRUB_KEYS: u64 = u64::MAX - (1 << 40);

fn usearch_error(e: impl std::fmt::Display) -> Error {
    Error::Index(format!("vector index: {e}"))
}

fn options(dims: usize) -> IndexOptions {
    IndexOptions {
        dimensions: dims,
        // Cosine: on 8-bit vectors USearch's inner product is the raw integer sum, its cosine
        // is scaled. Vectors are normalised before they are quantised.
        metric: MetricKind::Cos,
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

    /// The bytes a key's vector is stored as (8-bit integers), for tests of erasure.
    pub fn stored_bytes(&self, key: u64) -> Option<Vec<u8>> {
        let mut out = vec![0i8; self.dims];
        match self.index.get(key, &mut out) {
            Ok(1) => Some(out.into_iter().map(|x| x as u8).collect()),
            _ => None,
        }
    }

    /// A key's vector, normalised.
    pub fn vector(&self, key: u64) -> Option<Vec<f32>> {
        self.raw.get(&key).map(|v| v.to_vec())
    }

    /// Changes the HNSW search breadth (recall against speed).
    pub fn set_expansion_search(&self, n: usize) {
        self.index.change_expansion_search(n);
    }

    /// Adds one vector and returns its new key. Keys are never reused within a space, so a
    /// stale key finds nothing rather than another asset's vector.
    pub fn add(&mut self, new: &NewVector<'_>) -> Result<u64> {
        if new.vector.len() != self.dims {
            return Err(Error::Index(format!(
                "a vector of {} dimensions in a space of {}",
                new.vector.len(),
                self.dims
            )));
        }
        if self.index.size() + 1 > self.index.capacity() {
            let grown = (self.index.capacity() * 2).max(1024);
            reserve(&self.index, grown)?;
        }
        let key = self.next_key;
        let vector = normalized(new.vector);
        self.index.add(key, &vector).map_err(usearch_error)?;
        self.raw.insert(key, vector.into_boxed_slice());
        self.freed = self.freed.saturating_sub(1);
        self.next_key += 1;
        let collection = self.intern(new.collection);
        self.entries.insert(
            key,
            Entry {
                asset: new.asset,
                collection,
                kind: new.kind,
                date: new.date,
                page: new.page,
                ordinal: new.ordinal,
            },
        );
        self.by_asset.entry(new.asset).or_default().push(key);
        Ok(key)
    }

    /// Adds many vectors, on every core (a rebuild, a large import). Returns their keys.
    pub fn add_many(&mut self, items: &[NewVector<'_>]) -> Result<Vec<u64>> {
        if let Some(bad) = items.iter().find(|v| v.vector.len() != self.dims) {
            return Err(Error::Index(format!(
                "a vector of {} dimensions in a space of {}",
                bad.vector.len(),
                self.dims
            )));
        }
        let needed = self.index.size() + items.len();
        if needed > self.index.capacity() {
            reserve(&self.index, needed.max(self.index.capacity() * 2))?;
        }
        let first = self.next_key;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let index = &self.index;
        let failed =
            std::thread::scope(|s| {
                let workers: Vec<_> =
                    (0..threads)
                        .map(|t| {
                            s.spawn(move || {
                                items.iter().enumerate().skip(t).step_by(threads).find_map(
                                    |(i, v)| {
                                        index.add(first + i as u64, &normalized(v.vector)).err()
                                    },
                                )
                            })
                        })
                        .collect();
                workers
                    .into_iter()
                    .find_map(|w| w.join().expect("an add thread panicked"))
            });
        if let Some(e) = failed {
            // Nothing half-added stays: the vectors that went in come out again.
            for i in 0..items.len() as u64 {
                if self.index.contains(first + i) {
                    let _ = self.index.remove(first + i);
                    self.freed += 1;
                }
            }
            self.next_key += items.len() as u64;
            return Err(usearch_error(e));
        }
        self.next_key += items.len() as u64;
        self.freed = self.freed.saturating_sub(items.len());
        let mut keys = Vec::with_capacity(items.len());
        for (i, v) in items.iter().enumerate() {
            let key = first + i as u64;
            let collection = self.intern(v.collection);
            self.entries.insert(
                key,
                Entry {
                    asset: v.asset,
                    collection,
                    kind: v.kind,
                    date: v.date,
                    page: v.page,
                    ordinal: v.ordinal,
                },
            );
            self.by_asset.entry(v.asset).or_default().push(key);
            self.raw
                .insert(key, normalized(v.vector).into_boxed_slice());
            keys.push(key);
        }
        Ok(keys)
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

    /// Removes every vector of an asset, and overwrites their bytes (see `Space::scrub`).
    pub fn remove_asset(&mut self, asset: AssetId) -> Result<usize> {
        let Some(keys) = self.by_asset.remove(&asset) else {
            return Ok(0);
        };
        for &key in &keys {
            self.entries.remove(&key);
            self.raw.remove(&key);
            self.index.remove(key).map_err(usearch_error)?;
            self.freed += 1;
        }
        self.scrub()?;
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
        let mut filler = vec![0.0f32; self.dims];
        filler[0] = 1.0;
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
        if query.len() != self.dims {
            return Err(Error::Index(format!(
                "a query of {} dimensions in a space of {}",
                query.len(),
                self.dims
            )));
        }
        if k == 0 || self.entries.is_empty() {
            return Ok(Vec::new());
        }
        let query = &normalized(query);
        let passes = self.predicate(filter);
        let wanted = k.saturating_mul(RESCORE);
        let matches = if filter.is_empty() {
            let _slot = self.slots.take();
            self.index.search(query, wanted)
        } else {
            let passing = self
                .entries
                .iter()
                .filter(|(_, e)| passes(e))
                .map(|(k, _)| *k)
                .take(EXACT_BELOW)
                .collect::<Vec<_>>();
            if passing.len() < EXACT_BELOW {
                return Ok(self.exact_among(query, k, &passing));
            }
            let _slot = self.slots.take();
            self.index.filtered_search(query, wanted, |key| {
                self.entries.get(&key).is_some_and(&passes)
            })
        }
        .map_err(usearch_error)?;
        Ok(self.exact_among(query, k, &matches.keys))
    }

    /// Exact search over every vector: the reference the approximate search is measured by.
    pub fn exact(&self, query: &[f32], k: usize) -> Vec<Neighbour> {
        let keys: Vec<u64> = self.entries.keys().copied().collect();
        self.exact_among(query, k, &keys)
    }

    /// The `k` of `keys` nearest to the query, by the full vectors.
    fn exact_among(&self, query: &[f32], k: usize, keys: &[u64]) -> Vec<Neighbour> {
        let q = normalized(query);
        let mut scored: Vec<Neighbour> = keys
            .iter()
            .filter_map(|&key| {
                Some(Neighbour {
                    key,
                    entry: *self.entries.get(&key)?,
                    similarity: dot(&q, self.raw.get(&key)?),
                })
            })
            .collect();
        scored.sort_by(|a, b| {
            b.similarity
                .total_cmp(&a.similarity)
                .then(a.key.cmp(&b.key))
        });
        scored.truncate(k);
        scored
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
        let loaded = Space::load(dir.path(), "s").unwrap();
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

        assert_eq!(space.remove_asset(b).unwrap(), 1);
        assert!(!only(&space, VectorFilter::default()).contains(&b));
        space.save(dir.path(), "s").unwrap();
        let loaded = Space::load(dir.path(), "s").unwrap();
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
        let secret = |seed: u64| -> Vec<f32> {
            // Unit length, as stored; distinct from any other test vector.
            normalized(
                &(0..16)
                    .map(|i| 0.1 + seed as f32 * 0.37 + i as f32 * 0.011)
                    .collect::<Vec<_>>(),
            )
        };
        let saved = |space: &Space, stem: &str| -> Vec<u8> {
            space.save(dir.path(), stem).unwrap();
            std::fs::read(dir.path().join(format!("{stem}.usearch"))).unwrap()
        };
        let holds = |bytes: &[u8], v: &[u8]| bytes.windows(v.len()).any(|w| w == v);

        let mut space = Space::new(16).unwrap();
        let keep = AssetId::new();
        add(&mut space, keep, "c", MediaKind::Image, &unit(7, 16));
        let (two, one, later) = (AssetId::new(), AssetId::new(), AssetId::new());
        let owners = [two, two, one, later];
        // The vectors' bytes as stored: 8-bit in the graph, f32 beside it.
        let mut full: Vec<Vec<u8>> = Vec::new();
        let vectors: Vec<Vec<u8>> = (1..=4)
            .zip(owners)
            .map(|(seed, owner)| {
                let key = add(&mut space, owner, "c", MediaKind::Image, &secret(seed));
                full.push(
                    space
                        .vector(key)
                        .unwrap()
                        .iter()
                        .flat_map(|x| x.to_le_bytes())
                        .collect(),
                );
                space.stored_bytes(key).unwrap()
            })
            .collect();
        let before = saved(&space, "before");
        assert!(
            vectors.iter().all(|v| holds(&before, v)),
            "the test must see them first"
        );

        space.remove_asset(two).unwrap();
        space.remove_asset(one).unwrap();
        let after = saved(&space, "after");
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

        let mut reloaded = Space::load(dir.path(), "after").unwrap();
        reloaded.remove_asset(later).unwrap();
        let last = saved(&reloaded, "last");
        assert!(vectors.iter().all(|v| !holds(&last, v)));
        assert_eq!(reloaded.len(), 1);
        let found = reloaded
            .search(&unit(7, 16), 5, &VectorFilter::default())
            .unwrap();
        assert_eq!(found.len(), 1, "fillers are never found");
        assert_eq!(found[0].entry.asset, keep);
    }

    #[test]
    fn damaged_entries_are_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut space = Space::new(4).unwrap();
        add(
            &mut space,
            AssetId::new(),
            "c",
            MediaKind::Image,
            &unit(1, 4),
        );
        space.save(dir.path(), "s").unwrap();
        let path = dir.path().join("s.entries");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = Space::load(dir.path(), "s").err().unwrap().to_string();
        assert!(err.contains("s.entries"), "{err}");
    }
}
