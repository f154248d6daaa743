//! A space on disk: the graph as USearch saves it (`<stem>.usearch`) with its entries and full
//! vectors in our own format (`<stem>.entries`, `APVECS04`), and the tail as segment files
//! (`<stem>.tail`, `APVTAIL1`), each written once: the vectors added since the file before it
//! and the keys removed since. Every file is read back with every length checked.
//!
//! An update writes one segment. The graph's file is written again only when the tail grew
//! past [`SEAL_AT`] vectors, when removed vectors take a quarter of it, or when an erasure
//! removed bytes it holds; an erasure whose bytes are only in segments rewrites the segments
//! into one. So the bytes of an erased asset are gone from disk at the next save.

use std::io::{Read, Write};
use std::path::Path;

use aperture_core::{AssetId, MediaKind};
use serde::{Deserialize, Serialize};

use super::*;

/// Segments kept before they are rewritten into one.
const MAX_SEGMENTS: usize = 32;

/// The most dimensions a file may say its vectors have (models here have up to 1,280).
const MAX_DIMS: usize = 65_536;

/// The files that hold a space: the graph's stem and the tail's segments, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Files {
    /// `<graph>.usearch` and `<graph>.entries`.
    pub graph: String,
    /// `<segment>.tail` each.
    #[serde(default)]
    pub segments: Vec<String>,
}

impl Files {
    /// The name of every file, for telling the files in use from stale ones.
    pub fn names(&self) -> Vec<String> {
        let mut names = vec![
            format!("{}.usearch", self.graph),
            format!("{}.entries", self.graph),
        ];
        names.extend(self.segments.iter().map(|s| format!("{s}.tail")));
        names
    }
}

impl Space {
    /// Brings the files in `dir` up to date with memory and returns those that hold the space
    /// now (`old`: those that held it; `None` for a new space). New files are named
    /// `<name>.<generation>`; old ones are left for the caller to remove once it has recorded
    /// the new list. Writes nothing when nothing changed.
    ///
    /// On an error memory may say saved what no file listed holds: the caller reads the space
    /// again from the files it lists (as `LocalIndex::update` does).
    pub fn persist(
        &mut self,
        dir: &Path,
        name: &str,
        generation: u64,
        old: Option<&Files>,
    ) -> Result<Files> {
        let stem = format!("{name}.{generation}");
        if self.unsaved.scrub {
            self.scrub()?;
            self.unsaved.scrub = false;
        }
        let graph_ghosts = self
            .unsaved
            .ghosts
            .values()
            .filter(|(_, held)| *held == Held::Graph)
            .count();
        let old = match old {
            Some(old)
                if !self.unsaved.never_saved
                    && self.unsaved.erased != Some(Held::Graph)
                    && self.tail.len() <= SEAL_AT
                    && graph_ghosts * 4 <= self.index.size() =>
            {
                old
            }
            _ => {
                self.save(dir, &stem)?;
                return Ok(Files {
                    graph: stem,
                    segments: Vec::new(),
                });
            }
        };
        if self.unsaved.erased.is_some() || old.segments.len() >= MAX_SEGMENTS {
            // One segment for the whole tail; the graph's removed keys are said again.
            let mut removed: Vec<(u64, AssetId)> = self
                .unsaved
                .ghosts
                .iter()
                .filter(|(_, (_, held))| *held == Held::Graph)
                .map(|(key, (asset, _))| (*key, *asset))
                .collect();
            removed.sort_unstable_by_key(|(key, _)| *key);
            let added: Vec<u64> = self.tail.iter().copied().collect();
            self.write_segment(dir, &stem, &removed, added)?;
            self.unsaved
                .ghosts
                .retain(|_, (_, held)| *held == Held::Graph);
            self.unsaved
                .ghost_assets
                .retain(|_, held| *held == Held::Graph);
            self.unsaved.erased = None;
            self.unsaved.added.clear();
            self.unsaved.removed.clear();
            return Ok(Files {
                graph: old.graph.clone(),
                segments: vec![stem],
            });
        }
        if self.unsaved.added.is_empty() && self.unsaved.removed.is_empty() {
            return Ok(old.clone());
        }
        let added: Vec<u64> = self.unsaved.added.iter().copied().collect();
        self.write_segment(dir, &stem, &self.unsaved.removed, added)?;
        self.unsaved.removed.clear();
        self.unsaved.added.clear();
        let mut files = old.clone();
        files.segments.push(stem);
        Ok(files)
    }

    /// Writes the whole space as `<stem>.usearch` and `<stem>.entries` (freed slots scrubbed
    /// first), each through a temporary file and a rename: the tail is empty afterwards.
    pub(super) fn save(&mut self, dir: &Path, stem: &str) -> Result<()> {
        self.scrub()?;
        let index_path = dir.join(format!("{stem}.usearch"));
        let tmp = dir.join(format!("{stem}.usearch.tmp"));
        let tmp_str = tmp
            .to_str()
            .ok_or_else(|| Error::Index(format!("{} is not UTF-8", tmp.display())))?;
        self.index.save(tmp_str).map_err(usearch_error)?;
        sync_file(&tmp)?;
        std::fs::rename(&tmp, &index_path).map_err(|e| Error::io(&index_path, e))?;

        let mut out = Vec::with_capacity(64 + self.entries.len() * (ENTRY_BYTES + self.dims * 4));
        out.extend_from_slice(ENTRIES_MAGIC);
        self.write_header(&mut out);
        let mut keys: Vec<u64> = self.entries.keys().copied().collect();
        keys.sort_unstable();
        self.write_records(&mut out, &keys);
        write_synced(dir, &format!("{stem}.entries"), &out)?;
        self.unsaved = Unsaved::default();
        self.tail.clear();
        Ok(())
    }

    fn write_segment(
        &self,
        dir: &Path,
        stem: &str,
        removed: &[(u64, AssetId)],
        mut added: Vec<u64>,
    ) -> Result<()> {
        added.sort_unstable();
        let mut out = Vec::with_capacity(64 + added.len() * (ENTRY_BYTES + self.dims * 4));
        out.extend_from_slice(TAIL_MAGIC);
        self.write_header(&mut out);
        out.extend_from_slice(&(removed.len() as u64).to_le_bytes());
        for (key, asset) in removed {
            out.extend_from_slice(&key.to_le_bytes());
            out.extend_from_slice(asset.as_bytes());
        }
        self.write_records(&mut out, &added);
        write_synced(dir, &format!("{stem}.tail"), &out)
    }

    /// Dimensions, the next key and the collection names.
    fn write_header(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.dims as u64).to_le_bytes());
        out.extend_from_slice(&self.next_key.to_le_bytes());
        out.extend_from_slice(&(self.collections.len() as u32).to_le_bytes());
        for c in &self.collections {
            out.extend_from_slice(&(c.len() as u32).to_le_bytes());
            out.extend_from_slice(c.as_bytes());
        }
    }

    /// A count, then each key's entry and full vector.
    fn write_records(&self, out: &mut Vec<u8>, keys: &[u64]) {
        out.extend_from_slice(&(keys.len() as u64).to_le_bytes());
        for key in keys {
            let e = &self.entries[key];
            out.extend_from_slice(&key.to_le_bytes());
            out.extend_from_slice(e.asset.as_bytes());
            out.extend_from_slice(&e.collection.to_le_bytes());
            out.push(kind_code(e.kind));
            out.extend_from_slice(&e.date.to_le_bytes());
            out.extend_from_slice(&e.page.to_le_bytes());
            out.extend_from_slice(&e.ordinal.to_le_bytes());
            // Written as f32, as before memory kept half precision: the widening is exact.
            for x in self.raw.get(key).map_or(&[][..], |v| &v[..]) {
                out.extend_from_slice(&x.to_f32().to_le_bytes());
            }
        }
    }

    /// Reads what [`Space::persist`] wrote.
    pub fn load(dir: &Path, files: &Files) -> Result<Space> {
        let entries_path = dir.join(format!("{}.entries", files.graph));
        let bytes = read_file(&entries_path)?;
        let bad = |what: &str| Error::Index(format!("{}: {what}", entries_path.display()));
        let mut r = Reader {
            bytes: &bytes,
            at: 0,
        };
        if r.take(ENTRIES_MAGIC.len()) != Some(&ENTRIES_MAGIC[..]) {
            return Err(bad("not an entries file"));
        }
        let (dims, next_key, collections) = r.header().ok_or_else(|| bad("truncated"))?;
        if !(1..=MAX_DIMS).contains(&dims) {
            return Err(bad("a bad dimension count"));
        }
        if next_key > SCRUB_KEYS {
            return Err(bad("a bad next key"));
        }
        let mut space = Space::new(dims).map_err(|_| bad("no dimensions"))?;
        space.next_key = next_key;
        space.collections = collections;
        let records = r.records(dims).map_err(&bad)?;
        if r.at != r.bytes.len() {
            return Err(bad("its length does not match its count"));
        }
        for (key, entry, vector) in records {
            space.check_record(key, &entry).map_err(bad)?;
            space.register(key, entry, vector);
        }
        let index_path = dir.join(format!("{}.usearch", files.graph));
        let path_str = index_path
            .to_str()
            .ok_or_else(|| Error::Index(format!("{} is not UTF-8", index_path.display())))?;
        if !index_path.exists() {
            return Err(Error::io(
                &index_path,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        space.freed = Index::metadata(path_str)
            .map_err(|e| Error::Index(format!("{}: {e}", index_path.display())))?
            .count_deleted as usize;
        space
            .index
            .load(path_str)
            .map_err(|e| Error::Index(format!("{}: {e}", index_path.display())))?;
        if space.index.dimensions() != dims || space.index.size() != space.entries.len() {
            return Err(bad("the index and its entries disagree"));
        }
        space.index.change_expansion_search(EXPANSION_SEARCH);
        reserve(&space.index, space.index.capacity().max(space.index.size()))?;
        space.unsaved = Unsaved::default();
        for segment in &files.segments {
            space.apply_segment(&dir.join(format!("{segment}.tail")))?;
        }
        space.unsaved.removed.clear();
        // The tail's vectors go into the graph once all segments are read (a later one may
        // remove what an earlier one added).
        let mut tail: Vec<u64> = space.tail.iter().copied().collect();
        tail.sort_unstable();
        let vectors: Vec<&[f16]> = tail.iter().map(|k| &space.raw[k][..]).collect();
        Self::insert_into_graph(&space.index, &mut space.freed, &tail, &vectors)?;
        Ok(space)
    }

    /// Applies one segment file: its removals, then its vectors, into the tail (not yet into
    /// the graph).
    fn apply_segment(&mut self, path: &Path) -> Result<()> {
        let bytes = read_file(path)?;
        let bad = |what: &str| Error::Index(format!("{}: {what}", path.display()));
        let mut r = Reader {
            bytes: &bytes,
            at: 0,
        };
        if r.take(TAIL_MAGIC.len()) != Some(&TAIL_MAGIC[..]) {
            return Err(bad("not a segment file"));
        }
        let (dims, next_key, collections) = r.header().ok_or_else(|| bad("truncated"))?;
        if dims != self.dims {
            return Err(bad("its vectors' dimensions differ from its space's"));
        }
        if !collections.starts_with(&self.collections) {
            return Err(bad("its collections disagree with the files before it"));
        }
        if next_key > SCRUB_KEYS {
            return Err(bad("a bad next key"));
        }
        let n_removed = r.u64().ok_or_else(|| bad("truncated"))?;
        let mut removed = Vec::new();
        for _ in 0..n_removed {
            let key = r.u64().ok_or_else(|| bad("truncated"))?;
            r.take(16).ok_or_else(|| bad("truncated"))?;
            removed.push(key);
        }
        let records = r.records(dims).map_err(&bad)?;
        if r.at != r.bytes.len() {
            return Err(bad("its length does not match its count"));
        }
        self.collections = collections;
        self.next_key = self.next_key.max(next_key);
        for key in removed {
            if let Some(entry) = self.entries.get(&key).copied() {
                self.unregister(key)?;
                if let Some(keys) = self.by_asset.get_mut(&entry.asset) {
                    keys.retain(|k| *k != key);
                    if keys.is_empty() {
                        self.by_asset.remove(&entry.asset);
                    }
                }
            }
        }
        for (key, entry, vector) in records {
            self.check_record(key, &entry).map_err(bad)?;
            self.register(key, entry, vector);
            self.tail.insert(key);
        }
        Ok(())
    }

    /// Whether a record read from a file may join the space: a key never given before (not
    /// live, not removed, below the next key) of a known collection.
    fn check_record(&self, key: u64, entry: &Entry) -> std::result::Result<(), &'static str> {
        if key == 0 || key >= self.next_key {
            return Err("a key out of range");
        }
        if self.entries.contains_key(&key) || self.unsaved.ghosts.contains_key(&key) {
            return Err("a key given twice");
        }
        if entry.collection as usize >= self.collections.len() {
            return Err("a vector of an unknown collection");
        }
        Ok(())
    }
}

/// `04`: each entry is followed by its full vector (the graph holds 8-bit copies).
const ENTRIES_MAGIC: &[u8; 8] = b"APVECS04";
/// A tail segment: the header, the removed keys (key, asset), then entries as in `APVECS04`.
const TAIL_MAGIC: &[u8; 8] = b"APVTAIL1";
const ENTRY_BYTES: usize = 8 + 16 + 4 + 1 + 8 + 4 + 4;

fn read_file(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

/// Writes `dir/name` through a synced temporary file and a rename.
fn write_synced(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    file.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// A key, its entry and its full vector.
type Record = (u64, Entry, Full);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// What [`Space::write_header`] wrote.
    fn header(&mut self) -> Option<(usize, u64, Vec<String>)> {
        let dims = self.u64()? as usize;
        let next_key = self.u64()?;
        let n = self.u32()?;
        let mut collections = Vec::new();
        for _ in 0..n {
            let len = self.u32()? as usize;
            collections.push(String::from_utf8(self.take(len)?.to_vec()).ok()?);
        }
        Some((dims, next_key, collections))
    }

    /// What [`Space::write_records`] wrote, its count checked against what is left.
    fn records(&mut self, dims: usize) -> std::result::Result<Vec<Record>, &'static str> {
        let n = self.u64().ok_or("truncated")? as usize;
        let record = dims
            .checked_mul(4)
            .and_then(|v| v.checked_add(ENTRY_BYTES))
            .ok_or("a bad dimension count")?;
        if n.checked_mul(record)
            .is_none_or(|size| size > self.bytes.len() - self.at)
        {
            return Err("its length does not match its count");
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.record(dims).ok_or("truncated")??);
        }
        Ok(out)
    }

    fn record(&mut self, dims: usize) -> Option<std::result::Result<Record, &'static str>> {
        let key = self.u64()?;
        let asset = AssetId::from_bytes(self.take(16)?.try_into().ok()?);
        let collection = self.u32()?;
        let Some(kind) = kind_from(self.take(1)?[0]) else {
            return Some(Err("an unknown kind"));
        };
        let date = self.u64()? as i64;
        let page = self.u32()?;
        let ordinal = self.u32()?;
        let vector: Vec<f32> = self
            .take(dims * 4)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        let vector = narrowed(&vector);
        let entry = Entry {
            asset,
            collection,
            kind,
            date,
            page,
            ordinal,
        };
        Some(Ok((key, entry, vector)))
    }
}

fn kind_code(kind: MediaKind) -> u8 {
    MediaKind::ALL.iter().position(|k| *k == kind).unwrap_or(0) as u8
}

fn kind_from(code: u8) -> Option<MediaKind> {
    MediaKind::ALL.get(code as usize).copied()
}

pub(crate) fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(path, e))
}
