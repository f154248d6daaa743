//! The search index on disk, and how it follows the catalog.
//!
//! ```text
//! search/
//!   state.json                  the change-feed position and the vector files it matches
//!   update.lock                 held by the one process that updates
//!   text/                       tantivy
//!   vectors/<space>.<gen>.usearch, .entries   a space's graph (see `vectors/file.rs`)
//!   vectors/<space>.<gen>.tail              its tail's segments, one a save
//! ```
//!
//! An update reads the catalog's change feed after the saved position, re-reads every asset
//! named there (or drops it, when the catalog no longer has it), commits the full-text index,
//! saves what changed in the vector spaces under a new generation (a segment, or a space
//! rewritten), and only then writes
//! `state.json` (temporary file, rename). A crash at any point leaves the old state, and the
//! next update applies the same changes again: applying a change is "make the asset look as
//! the catalog says", so doing it twice is harmless. Hits are checked against the catalog
//! when they are shown, so an index that lags never shows an erased asset either.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use aperture_catalog::{AssetQuery, Catalog};
use aperture_core::AssetId;
use serde::{Deserialize, Serialize};

use crate::document::Indexed;
use crate::fulltext::FullText;
use crate::vectors::{Files, NewVector, Space, sync_file};
use crate::{Error, Result};

/// Changes read from the feed per round.
pub(crate) const FEED_PAGE: usize = 1000;
/// Assets listed per page when building from scratch.
const LIST_PAGE: usize = 1000;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    format: u32,
    /// The change-feed position everything up to which is applied.
    position: i64,
    generation: u64,
    /// This index's name as a follower of the change feed: changes are pruned only once
    /// every follower (one index per server) applied them.
    #[serde(default)]
    consumer: String,
    /// Space name → its files' stem and size.
    spaces: BTreeMap<String, SpaceState>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SpaceState {
    files: Files,
    dims: usize,
    vectors: usize,
}

/// `9`: the graph's 8-bit copies rounded at a scale set by the dimension count (USearch's
/// cast truncated at one scale for all); `8`: a space is its graph's files and the tail's
/// segments; `7`: one file pair a space;
/// `6`: labels and vectors keep their places (a video's shots); `5`: full-text documents
/// store what hits are explained from (`4`: 8-bit graph, full
/// vectors beside it for re-scoring; `3`: 8-bit only; `2`: f32, inner product; `1`: f32,
/// cosine). An index of another format is rebuilt on its next update.
const FORMAT: u32 = 9;

/// The full-text index's folder, named by the format: an index of another format (whose
/// tantivy schema may differ, which tantivy refuses to open) is left beside it, not opened,
/// and removed once this format's is built.
fn text_dir() -> String {
    format!("text-{FORMAT}")
}

/// Full-text folders of other formats (`text` before format 5 named it by version).
fn stale_text_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| (n == "text" || n.starts_with("text-")) && n != text_dir())
        })
        .collect()
}

/// What an update did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Update {
    /// Assets (re)indexed.
    pub indexed: u64,
    /// Assets removed because the catalog no longer has them.
    pub removed: u64,
    /// The change-feed position now applied.
    pub position: i64,
    /// Whether the index was built from scratch.
    pub built: bool,
}

/// The full-text index and the vector spaces in one folder, with the change-feed position they
/// reflect. It is the catalog's only change-feed consumer: an update prunes what it applied.
pub struct LocalIndex {
    dir: PathBuf,
    pub(crate) text: FullText,
    pub(crate) spaces: BTreeMap<String, Space>,
    state: State,
    /// Whether this process told the catalog where this index is in the feed.
    registered: bool,
}

impl LocalIndex {
    /// Opens the index in `dir` (creating an empty one when missing). An index of an older
    /// format opens empty, and [`LocalIndex::update`] builds it again; a damaged one is an
    /// error that names the file and says to run `aperture reindex-search`.
    pub fn open(dir: &Path) -> Result<LocalIndex> {
        finish_swap(dir)?;
        std::fs::create_dir_all(dir.join("vectors")).map_err(|e| Error::io(dir, e))?;
        // An updater may replace the vector files between our reading the state and opening
        // them: then the state is read again.
        let mut tries = 0;
        loop {
            match Self::open_once(dir) {
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && tries < 3 =>
                {
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    fn open_once(dir: &Path) -> Result<LocalIndex> {
        let text = FullText::open(&dir.join(text_dir()))?;
        let state_path = dir.join("state.json");
        let state: State = match std::fs::read(&state_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Index(format!(
                    "{}: {e} (run `aperture reindex-search`)",
                    state_path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(Error::io(&state_path, e)),
        };
        let state = if state.format == FORMAT {
            state
        } else {
            if state.format != 0 {
                tracing::warn!(
                    found = state.format,
                    FORMAT,
                    "search index of another format: it will be rebuilt"
                );
            }
            State::default()
        };
        let mut spaces = BTreeMap::new();
        for (name, s) in &state.spaces {
            spaces.insert(name.clone(), Space::load(&dir.join("vectors"), &s.files)?);
        }
        Ok(LocalIndex {
            dir: dir.to_owned(),
            text,
            spaces,
            state,
            registered: false,
        })
    }

    /// The folder the index is in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the index has ever been built.
    pub fn is_built(&self) -> bool {
        self.state.format == FORMAT
    }

    /// The change-feed position the index reflects (0 before the first build).
    pub fn position(&self) -> i64 {
        self.state.position
    }

    /// Documents deleted from the full-text index but still in its files (0 after an update
    /// that erased assets).
    pub fn deleted_documents(&self) -> u64 {
        self.text.deleted_docs()
    }

    /// Documents in the full-text index.
    pub fn documents(&self) -> u64 {
        self.text.num_docs()
    }

    /// The languages of the documents' text, two letters each.
    pub fn languages(&self) -> Result<Vec<String>> {
        self.text.languages()
    }

    /// Each vector space with its size.
    pub fn spaces(&self) -> impl Iterator<Item = (&str, &Space)> {
        self.spaces.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Brings the index up to date with the catalog: builds it when it was never built,
    /// else applies the change feed. Only one process updates at a time: another one gets
    /// [`Error::Busy`] and can search what is there.
    ///
    /// After any other error this copy is read again from its files (memory may hold changes
    /// that no listed file does); if that fails too, the next update reads it.
    pub fn update(&mut self, catalog: &dyn Catalog) -> Result<Update> {
        let _lock = self.lock()?;
        let result = self.update_locked(catalog);
        if result.is_err() {
            // The old copy goes first: two copies of a large space may not fit.
            self.spaces.clear();
            match Self::open(&self.dir) {
                Ok(fresh) => *self = fresh,
                Err(_) => self.state.generation = u64::MAX,
            }
        }
        result
    }

    fn update_locked(&mut self, catalog: &dyn Catalog) -> Result<Update> {
        // Another process may have updated (or rebuilt) the index since this copy was read:
        // its changes are pruned from the feed, so this copy must start from what it wrote.
        if self.on_disk()? != (self.state.position, self.state.generation) {
            *self = Self::open(&self.dir)?;
        }
        let mut writer = self.text.writer()?;
        let mut report = Update::default();
        let mut position = self.state.position;
        if self.state.consumer.is_empty() {
            self.state.consumer = self.consumer();
        }
        let consumer = self.state.consumer.clone();
        // Followers hold the feed back from their position: this one says where it is before
        // it reads, so nothing it has yet to apply is pruned from now on. Only when there is
        // something to read: a search on an index that is current writes nothing.
        if self.is_built() && !self.registered && !catalog.changes(position, 1)?.is_empty() {
            catalog.ack_changes(&consumer, position)?;
            self.registered = true;
        }
        // Changes this index had not applied were pruned before it said so (it was away for a
        // week, or its copy is an old backup): only a rebuild brings it up to date.
        let missed = self.is_built() && catalog.pruned_through()? > position;
        if missed {
            tracing::warn!(
                position,
                "the change feed moved past this index; rebuilding it"
            );
        }
        if !self.is_built() || missed {
            // Whatever a crashed build or an older format left goes first.
            writer.delete_all_documents()?;
            self.spaces.clear();
            // Everything after this position is applied again below: harmless. Held before the
            // listing, so what changes while it runs stays in the feed for this index.
            position = catalog.last_change()?;
            catalog.ack_changes(&consumer, position)?;
            self.registered = true;
            report.built = true;
            for_every_asset(catalog, |ids| {
                for id in ids {
                    self.apply(catalog, &writer, *id, &mut report)?;
                }
                Ok(())
            })?;
        }
        loop {
            let changes = catalog.changes(position, FEED_PAGE)?;
            let Some(last) = changes.last() else { break };
            position = last.seq;
            let assets: BTreeSet<AssetId> = changes.iter().map(|c| c.asset).collect();
            for asset in assets {
                self.apply(catalog, &writer, asset, &mut report)?;
            }
        }
        report.position = position;
        if position == self.state.position && !report.built {
            return Ok(report);
        }
        let mut commit = writer.prepare_commit()?;
        commit.set_payload(&position.to_string());
        commit.commit()?;
        if report.built {
            // Derived data of an older format: nothing reads it once this one is built.
            for stale in stale_text_dirs(&self.dir) {
                if let Err(e) = std::fs::remove_dir_all(&stale) {
                    tracing::warn!(path = %stale.display(), error = %e, "cannot remove an old index");
                }
            }
        }
        writer.wait_merging_threads()?;
        if report.removed > 0 {
            // After the background merges: none of them may still hold a segment we rewrite.
            let mut writer = self.text.writer()?;
            self.text.purge_deleted(&mut writer)?;
            writer.wait_merging_threads()?;
        }
        self.text.reload()?;
        self.save(position)?;
        // What every follower applied is no longer needed.
        catalog.ack_changes(&consumer, position)?;
        Ok(report)
    }

    /// Makes one asset in the index look as the catalog says: vectors that did not change
    /// stay as they are (see [`Space::replace_asset`]).
    fn apply(
        &mut self,
        catalog: &dyn Catalog,
        writer: &tantivy::IndexWriter,
        id: AssetId,
        report: &mut Update,
    ) -> Result<()> {
        let asset = match catalog.asset(id) {
            Ok(asset) => asset,
            Err(aperture_catalog::Error::NotFound { .. }) => {
                for space in self.spaces.values_mut() {
                    space.erase_asset(id)?;
                }
                self.text.put(writer, id, None)?;
                report.removed += 1;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let indexed = Indexed::new(&asset, &catalog.sources(id)?, &catalog.insights(id)?);
        self.text.put(writer, id, Some(&indexed))?;
        let mut wanted: BTreeMap<&str, Vec<NewVector<'_>>> = BTreeMap::new();
        let mut ordinals: BTreeMap<&str, u32> = BTreeMap::new();
        for v in &indexed.vectors {
            let ordinal = ordinals.entry(&v.space).or_default();
            *ordinal += 1;
            if !self.spaces.contains_key(&v.space) {
                self.spaces
                    .insert(v.space.clone(), Space::new(v.vector.len())?);
            }
            let space = &self.spaces[&v.space];
            if v.vector.len() != space.dims() {
                tracing::warn!(asset = %id, space = v.space, "a vector of the wrong size, skipped");
                continue;
            }
            wanted.entry(&v.space).or_default().push(NewVector {
                asset: id,
                collection: &indexed.collection,
                kind: indexed.kind,
                date: indexed.date.0,
                page: match v.place {
                    aperture_core::Place::Page { page, .. } => page,
                    _ => 0,
                },
                ordinal: *ordinal - 1,
                vector: &v.vector,
            });
        }
        for (name, space) in &mut self.spaces {
            let news = wanted.get(name.as_str()).map_or(&[][..], Vec::as_slice);
            space.replace_asset(id, news)?;
        }
        report.indexed += 1;
        Ok(())
    }

    /// This index's name as a follower of the feed: the one it has, or a new random one.
    fn consumer(&self) -> String {
        if !self.state.consumer.is_empty() {
            return self.state.consumer.clone();
        }
        let mut random = [0u8; 8];
        // Without randomness the time will do: the name only has to differ between indexes.
        if getrandom::fill(&mut random).is_err() {
            random = aperture_core::UnixMillis::now().0.to_be_bytes();
        }
        format!("index-{}", aperture_core::hex(&random))
    }

    fn save(&mut self, position: i64) -> Result<()> {
        let vectors = self.dir.join("vectors");
        let generation = self.state.generation + 1;
        let mut state = State {
            format: FORMAT,
            position,
            generation,
            consumer: self.consumer(),
            spaces: BTreeMap::new(),
        };
        for (name, space) in &mut self.spaces {
            let old = self.state.spaces.get(name).map(|s| &s.files);
            let files = space.persist(&vectors, &slug(name), generation, old)?;
            state.spaces.insert(
                name.clone(),
                SpaceState {
                    files,
                    dims: space.dims(),
                    vectors: space.len(),
                },
            );
        }
        sync_dir(&vectors)?;
        let path = self.dir.join("state.json");
        let tmp = self.dir.join("state.json.tmp");
        let json = serde_json::to_vec_pretty(&state).expect("state serialises");
        std::fs::write(&tmp, json).map_err(|e| Error::io(&tmp, e))?;
        sync_file(&tmp)?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        sync_dir(&self.dir)?;
        // The previous generation goes at once: it may hold erased vectors. A search that read
        // the previous state and finds its files gone reads the state again (`open`).
        remove_unlisted(&vectors, &state);
        self.state = state;
        Ok(())
    }

    /// The position and generation `state.json` holds now.
    fn on_disk(&self) -> Result<(i64, u64)> {
        let path = self.dir.join("state.json");
        match std::fs::read(&path) {
            Ok(bytes) => {
                let state: State = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::Index(format!(
                        "{}: {e} (run `aperture reindex-search`)",
                        path.display()
                    ))
                })?;
                Ok((state.position, state.generation))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((0, 0)),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    fn lock(&self) -> Result<File> {
        lock_dir(&self.dir)
    }

    /// Builds a new index from the catalog beside the current one, then swaps it in: searches
    /// keep working on the old index meanwhile.
    pub fn rebuild(dir: &Path, catalog: &dyn Catalog) -> Result<(LocalIndex, Update)> {
        // No update of the live index meanwhile: it would prune changes the new one has not
        // applied, and write into the directory being swapped.
        finish_swap(dir)?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let _lock = lock_dir(dir)?;
        let fresh = sibling(dir, "new");
        if fresh.exists() {
            std::fs::remove_dir_all(&fresh).map_err(|e| Error::io(&fresh, e))?;
        }
        let mut index = LocalIndex::open(&fresh)?;
        let report = index.update(catalog)?;
        drop(index);
        let old = sibling(dir, "old");
        if dir.exists() {
            std::fs::rename(dir, &old).map_err(|e| Error::io(dir, e))?;
        }
        std::fs::rename(&fresh, dir).map_err(|e| Error::io(dir, e))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        }
        Ok((LocalIndex::open(dir)?, report))
    }
}

/// Calls `f` with every asset id the catalog has, a page at a time: what a build indexes.
pub(crate) fn for_every_asset(
    catalog: &dyn Catalog,
    mut f: impl FnMut(&[AssetId]) -> Result<()>,
) -> Result<()> {
    let mut query = AssetQuery {
        limit: LIST_PAGE,
        ..AssetQuery::default()
    };
    loop {
        let page = catalog.list_assets(&query)?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        query.after = Some(last.id);
        let ids: Vec<AssetId> = page.iter().map(|a| a.id).collect();
        f(&ids)?;
    }
}

/// Takes the index's update lock, or says another process has it.
fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join("update.lock");
    let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Busy(dir.display().to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

/// `search` → `search.new` / `search.old`.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}

/// Finishes a rebuild that a crash interrupted between its two renames, and removes what an
/// interrupted rebuild left (an old index may hold erased data).
fn finish_swap(dir: &Path) -> Result<()> {
    let fresh = sibling(dir, "new");
    if !dir.exists() && fresh.join("state.json").exists() {
        std::fs::rename(&fresh, dir).map_err(|e| Error::io(dir, e))?;
    }
    let old = sibling(dir, "old");
    if old.exists() && dir.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    Ok(())
}

/// A file-name-safe form of a space name (`clip:org/model` → `clip_org_model-1a2b3c4d`); the
/// hash of the exact name keeps names that differ only in punctuation apart.
fn slug(name: &str) -> String {
    let readable: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // FNV-1a: stable across versions and platforms, unlike std's hasher.
    let hash = name.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    });
    format!("{readable}-{hash:08x}")
}

fn remove_unlisted(dir: &Path, now: &State) {
    let keep: BTreeSet<String> = now.spaces.values().flat_map(|s| s.files.names()).collect();
    let Ok(listing) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in listing.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !keep.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(dir, e))
}
