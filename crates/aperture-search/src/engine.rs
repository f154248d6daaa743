//! One search index, two engines: the embedded one in a folder (tantivy and USearch, the
//! default: [`LocalIndex`]) and the one every server shares on PostgreSQL (text search and
//! pgvector: [`SharedIndex`]). Searching, updating and explaining go through [`SearchIndex`]
//! whichever engine is under it; only the ranking of words differs (see [`crate::shared`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use aperture_catalog::Catalog;
use aperture_core::AssetId;
use tantivy::tokenizer::TextAnalyzer;

use crate::document::Explained;
use crate::index::{LocalIndex, Update};
use crate::query::Query;
use crate::shared::SharedIndex;
use crate::vectors::{AssetVectors, Neighbour, VectorFilter};
use crate::{Error, Result};

/// The search index, embedded or shared.
pub struct SearchIndex {
    engine: Engine,
}

// One per process, never in a collection: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Engine {
    Local(LocalIndex),
    Shared(SharedIndex),
}

impl From<LocalIndex> for SearchIndex {
    fn from(index: LocalIndex) -> Self {
        SearchIndex {
            engine: Engine::Local(index),
        }
    }
}

impl From<SharedIndex> for SearchIndex {
    fn from(index: SharedIndex) -> Self {
        SearchIndex {
            engine: Engine::Shared(index),
        }
    }
}

impl SearchIndex {
    /// The embedded index in `dir` ([`LocalIndex::open`]).
    pub fn open(dir: &Path) -> Result<SearchIndex> {
        Ok(LocalIndex::open(dir)?.into())
    }

    /// The shared index on the PostgreSQL server at `url` ([`SharedIndex::open`]).
    pub fn open_shared(url: &str) -> Result<SearchIndex> {
        Ok(SharedIndex::open(url)?.into())
    }

    /// Builds the embedded index in `dir` again beside the current one, then swaps it in
    /// ([`LocalIndex::rebuild`]).
    pub fn rebuild(dir: &Path, catalog: &dyn Catalog) -> Result<(SearchIndex, Update)> {
        let (index, report) = LocalIndex::rebuild(dir, catalog)?;
        Ok((index.into(), report))
    }

    /// Builds this index again from the catalog: the embedded one beside itself (searches
    /// go on meanwhile), the shared one in place (searches find fewer hits until it is done;
    /// an error when another process is updating it).
    pub fn rebuild_here(self, catalog: &dyn Catalog) -> Result<(SearchIndex, Update)> {
        match self.engine {
            Engine::Local(local) => {
                let dir = local.dir().to_owned();
                drop(local);
                SearchIndex::rebuild(&dir, catalog)
            }
            Engine::Shared(shared) => {
                let report = shared.rebuild(catalog)?;
                Ok((
                    SearchIndex {
                        engine: Engine::Shared(shared),
                    },
                    report,
                ))
            }
        }
    }

    /// The embedded index, when that is the engine.
    pub fn local(&self) -> Option<&LocalIndex> {
        match &self.engine {
            Engine::Local(local) => Some(local),
            Engine::Shared(_) => None,
        }
    }

    /// The shared index, when that is the engine.
    pub fn shared(&self) -> Option<&SharedIndex> {
        match &self.engine {
            Engine::Local(_) => None,
            Engine::Shared(shared) => Some(shared),
        }
    }

    /// Whether the index has ever been built.
    pub fn is_built(&self) -> Result<bool> {
        match &self.engine {
            Engine::Local(local) => Ok(local.is_built()),
            Engine::Shared(shared) => shared.is_built(),
        }
    }

    /// The change-feed position the index reflects (0 before the first build).
    pub fn position(&self) -> Result<i64> {
        match &self.engine {
            Engine::Local(local) => Ok(local.position()),
            Engine::Shared(shared) => shared.position(),
        }
    }

    /// Documents in the full-text index.
    pub fn documents(&self) -> Result<u64> {
        match &self.engine {
            Engine::Local(local) => Ok(local.documents()),
            Engine::Shared(shared) => shared.documents(),
        }
    }

    /// Each embedding space with the number of vectors in it.
    pub fn space_sizes(&self) -> Result<Vec<(String, u64)>> {
        match &self.engine {
            Engine::Local(local) => Ok(local
                .spaces()
                .map(|(name, space)| (name.to_owned(), space.len() as u64))
                .collect()),
            Engine::Shared(shared) => shared.space_sizes(),
        }
    }

    /// The languages of the documents' text, two letters each.
    pub fn languages(&self) -> Result<Vec<String>> {
        match &self.engine {
            Engine::Local(local) => local.languages(),
            Engine::Shared(shared) => shared.languages(),
        }
    }

    /// Brings the index up to date with the catalog. Only one process updates at a time:
    /// another one gets [`Error::Busy`] and can search what is there.
    pub fn update(&mut self, catalog: &dyn Catalog) -> Result<Update> {
        match &mut self.engine {
            Engine::Local(local) => local.update(catalog),
            Engine::Shared(shared) => shared.update(catalog),
        }
    }

    /// The best `limit` assets for the query's words within its filters.
    pub(crate) fn text_search(&self, query: &Query, limit: usize) -> Result<Vec<(AssetId, f32)>> {
        match &self.engine {
            Engine::Local(local) => local.text.search(query, limit),
            Engine::Shared(shared) => shared.text_search(query, limit),
        }
    }

    /// Which of `candidates` pass the query's filters and exclusions.
    pub(crate) fn passing_filters(
        &self,
        query: &Query,
        candidates: &[AssetId],
    ) -> Result<HashSet<AssetId>> {
        match &self.engine {
            Engine::Local(local) => local.text.passing(query, candidates),
            Engine::Shared(shared) => shared.passing(query, candidates),
        }
    }

    /// What the index holds to explain hits on `ids`.
    pub(crate) fn explained(&self, ids: &[AssetId]) -> Result<HashMap<AssetId, Explained>> {
        match &self.engine {
            Engine::Local(local) => local.text.explained(ids),
            Engine::Shared(shared) => shared.explained(ids),
        }
    }

    /// A text analyzer by name (the same in both engines).
    pub(crate) fn analyzer(&self, name: &str) -> Option<TextAnalyzer> {
        match &self.engine {
            Engine::Local(local) => local.text.analyzer(name),
            Engine::Shared(shared) => shared.analyzer(name),
        }
    }

    /// Whether the index has vectors in `space`.
    pub(crate) fn has_space(&self, space: &str) -> Result<bool> {
        match &self.engine {
            Engine::Local(local) => Ok(local.spaces.contains_key(space)),
            Engine::Shared(shared) => shared.has_space(space),
        }
    }

    /// The `k` vectors of `space` nearest to `vector` within `filter`; `None` without such
    /// a space.
    pub(crate) fn nearest(
        &self,
        space: &str,
        vector: &[f32],
        k: usize,
        filter: &VectorFilter,
    ) -> Result<Option<Vec<Neighbour>>> {
        match &self.engine {
            Engine::Local(local) => local
                .spaces
                .get(space)
                .map(|s| s.search(vector, k, filter))
                .transpose(),
            Engine::Shared(shared) => shared.nearest(space, vector, k, filter),
        }
    }

    /// The asset's vectors in each space (or in `only` that one), with their ordinals, in
    /// ordinal order.
    pub(crate) fn vectors_of(&self, asset: AssetId, only: Option<&str>) -> Result<AssetVectors> {
        match &self.engine {
            Engine::Local(local) => {
                let mut out = BTreeMap::new();
                for (name, space) in local
                    .spaces
                    .iter()
                    .filter(|(name, _)| only.is_none_or(|o| o == *name))
                {
                    let mut vectors: Vec<(u32, Vec<f32>)> = space
                        .keys_of(asset)
                        .iter()
                        .filter_map(|k| Some((space.entry(*k)?.ordinal, space.vector(*k)?)))
                        .collect();
                    vectors.sort_by_key(|(ordinal, _)| *ordinal);
                    if !vectors.is_empty() {
                        out.insert(name.clone(), vectors);
                    }
                }
                Ok(out)
            }
            Engine::Shared(shared) => shared.vectors_of(asset, only),
        }
    }

    /// The embedded index, or an error saying `what` needs it.
    pub(crate) fn require_local(&self, what: &str) -> Result<&LocalIndex> {
        self.local().ok_or_else(|| {
            Error::Unsupported(format!(
                "{what} needs the embedded search index; the shared one does not do it yet"
            ))
        })
    }
}
