//! Access in one place: a [`View`] of the lake for one caller (a token, or the CLI, which
//! sees everything). Every read a server answers goes through it: an asset of a collection
//! the caller may not see is answered as not found, lists page through visible assets only,
//! and queries are limited to the visible collections.

use std::sync::Arc;

use aperture_catalog::{Asset, AssetQuery, Backend, Collection, Token};
use aperture_core::{AssetId, MediaKind};
use aperture_search::Query;
use aperture_search::duplicates::Group;

use crate::{Error, Lake, Result};

/// What one caller may see: every collection, or some by name (a grant may name a
/// collection that does not exist yet).
#[derive(Clone)]
pub struct View {
    catalog: Arc<dyn Backend>,
    grants: Option<Arc<[String]>>,
    /// Who the caller is, for messages (the token's name).
    who: String,
}

/// One page of a listing.
#[derive(Debug)]
pub struct Page {
    /// The assets, in ingest order.
    pub items: Vec<Asset>,
    /// Where the next page starts (the last item's id), when there may be one.
    pub next: Option<AssetId>,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// One collection by name (the caller must see it), else every visible one.
    pub collection: Option<String>,
    /// Only this kind.
    pub kind: Option<MediaKind>,
    /// Keyset paging: only assets after this one.
    pub after: Option<AssetId>,
    /// At most this many.
    pub limit: usize,
}

impl Lake {
    /// The view of a caller that sees every collection (the CLI, an admin).
    pub fn view_all(&self) -> View {
        View {
            catalog: self.catalog.clone(),
            grants: None,
            who: "cli".into(),
        }
    }

    /// The view of a token holder.
    pub fn view_of(&self, token: &Token) -> View {
        View {
            catalog: self.catalog.clone(),
            grants: token.collections.as_deref().map(Arc::from),
            who: token.name.clone(),
        }
    }
}

impl View {
    /// The collections it may see by name; `None`: all of them.
    pub fn grants(&self) -> Option<&[String]> {
        self.grants.as_deref()
    }

    /// Whether it sees every collection.
    pub fn sees_all(&self) -> bool {
        self.grants.is_none()
    }

    /// Whether it may see assets of this collection.
    pub fn sees(&self, collection: &str) -> bool {
        self.grants
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == collection))
    }

    /// Fails with [`Error::Forbidden`] for a collection it may not see (named explicitly by
    /// the caller, so refusing tells nothing new).
    pub fn require_collection(&self, name: &str) -> Result<()> {
        if self.sees(name) {
            Ok(())
        } else {
            Err(Error::Forbidden {
                message: format!(
                    "this token ({}) has no grant for collection '{name}'",
                    self.who
                ),
            })
        }
    }

    /// An asset it may see; [`Error::NoSuchAsset`] for one that does not exist and for one
    /// of a collection it may not see alike.
    pub async fn asset(&self, id: AssetId) -> Result<Asset> {
        let view = self.clone();
        crate::blocking(&self.catalog, move |c| view.asset_blocking(c, id)).await
    }

    fn asset_blocking(&self, c: &dyn Backend, id: AssetId) -> Result<Asset> {
        match c.asset(id) {
            Ok(a) if self.sees(&a.collection) => Ok(a),
            Ok(_) | Err(aperture_catalog::Error::NotFound { .. }) => {
                Err(Error::NoSuchAsset { id: id.to_string() })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The one asset it may see whose id starts with `prefix` (a full id too): assets of
    /// other collections neither match nor make a prefix ambiguous, and how many there are
    /// is not told.
    pub async fn resolve(&self, prefix: &str) -> Result<AssetId> {
        let text = prefix.trim().to_ascii_lowercase();
        let view = self.clone();
        let found = crate::blocking(&self.catalog, move |c| -> Result<Vec<AssetId>> {
            if view.sees_all() {
                return Ok(c.assets_with_prefix(&text, 2)?);
            }
            // The visible collections' first two ids from the prefix on, as a listing pages
            // them: ids of other collections are never read, so their number tells nothing.
            if text.is_empty() || text.len() > 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(aperture_catalog::Error::InvalidInput {
                    reason: format!("{text:?} is not an asset id or id prefix (hex digits)"),
                }
                .into());
            }
            let lowest = u128::from_str_radix(&format!("{text:0<32}"), 16).unwrap_or(0);
            let after = lowest
                .checked_sub(1)
                .map(|before| AssetId::from_bytes(before.to_be_bytes()));
            let page = c.list_assets(&AssetQuery {
                collections: Some(view.collection_ids(c, None)?),
                kind: None,
                after,
                limit: 2,
            })?;
            Ok(page
                .into_iter()
                .map(|a| a.id)
                .filter(|id| id.to_string().starts_with(&text))
                .collect())
        })
        .await?;
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(Error::NoSuchAsset {
                id: prefix.to_owned(),
            }),
            _ => Err(aperture_catalog::Error::Ambiguous {
                prefix: prefix.to_owned(),
                count: found.len(),
            }
            .into()),
        }
    }

    /// The ids of the collections it may see (or of `only`, when given) that exist. Blocking.
    pub fn collection_ids(
        &self,
        c: &dyn Backend,
        only: Option<&str>,
    ) -> Result<Vec<aperture_catalog::CollectionId>> {
        let names: Vec<String> = match (only, self.grants()) {
            (Some(name), _) => vec![name.to_owned()],
            (None, Some(granted)) => granted.to_vec(),
            (None, None) => c.collections()?.into_iter().map(|c| c.name).collect(),
        };
        let mut ids = Vec::new();
        for name in names {
            match c.collection(&name) {
                Ok(found) => ids.push(found.id),
                // A grant may name a collection that does not exist yet.
                Err(aperture_catalog::Error::NotFound { .. }) => {}
                Err(e) => return Err(Error::from(e)),
            }
        }
        Ok(ids)
    }

    /// The collections it may see.
    pub async fn collections(&self) -> Result<Vec<Collection>> {
        let all = crate::blocking(&self.catalog, |c| c.collections()).await?;
        Ok(all.into_iter().filter(|c| self.sees(&c.name)).collect())
    }

    /// A page of the assets it may see: the catalog pages through exactly the visible
    /// collections, so every page is full until the last and the cursor is always a
    /// visible asset.
    pub async fn list(&self, query: ListQuery) -> Result<Page> {
        if let Some(name) = &query.collection {
            self.require_collection(name)?;
        }
        let view = self.clone();
        crate::blocking(&self.catalog, move |c| -> Result<Page> {
            let collections = match (&query.collection, view.sees_all()) {
                (None, true) => None,
                (only, _) => Some(view.collection_ids(c, only.as_deref())?),
            };
            let mut items = c.list_assets(&AssetQuery {
                collections,
                kind: query.kind,
                after: query.after,
                limit: query.limit + 1,
            })?;
            debug_assert!(items.iter().all(|a| view.sees(&a.collection)));
            let more = items.len() > query.limit;
            items.truncate(query.limit);
            let next = if more {
                items.last().map(|a| a.id)
            } else {
                None
            };
            Ok(Page { items, next })
        })
        .await
    }

    /// Limits a query to the collections it may see: a named collection it has no grant for
    /// is refused; no collection named means all of its grants.
    pub fn restrict(&self, query: &mut Query) -> Result<()> {
        for name in &query.filters.collections {
            self.require_collection(name)?;
        }
        if query.filters.collections.is_empty()
            && let Some(granted) = self.grants()
        {
            if granted.is_empty() {
                return Err(Error::Forbidden {
                    message: format!("this token ({}) has no grant for any collection", self.who),
                });
            }
            query.filters.collections = granted.to_vec();
        }
        Ok(())
    }

    /// Duplicate groups as this caller may see them. Blocking. Members of other collections
    /// are left out; a group is kept when two members are left (or one asset with several
    /// paths, as it was), and distances measured to a hidden member are not shown.
    pub fn visible_groups(&self, c: &dyn Backend, groups: Vec<Group>) -> Result<Vec<Group>> {
        if self.sees_all() {
            return Ok(groups);
        }
        let mut seen = Vec::new();
        for mut g in groups {
            let before = g.members.len();
            let first = g.members.first().map(|m| m.asset);
            let mut kept = Vec::new();
            for m in g.members {
                match self.asset_blocking(c, m.asset) {
                    Ok(_) => kept.push(m),
                    Err(Error::NoSuchAsset { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            if kept.first().map(|m| m.asset) != first {
                for m in &mut kept {
                    m.similarity = None;
                    m.hamming = None;
                    m.note = None;
                }
            }
            let alone_as_before = before == 1 && kept.len() == 1;
            if kept.len() > 1 || alone_as_before {
                g.members = kept;
                seen.push(g);
            }
        }
        Ok(seen)
    }

    /// The assets of `ids` it may see, in order, with the item each came with; ids of
    /// assets erased meanwhile or hidden are left out. Blocking.
    pub fn visible_assets<T>(
        &self,
        c: &dyn Backend,
        items: Vec<(AssetId, T)>,
    ) -> Result<Vec<(Asset, T)>> {
        let mut out = Vec::with_capacity(items.len());
        for (id, item) in items {
            match self.asset_blocking(c, id) {
                Ok(a) => out.push((a, item)),
                Err(Error::NoSuchAsset { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}
