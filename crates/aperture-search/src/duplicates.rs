//! Exact and near-duplicate groups.
//!
//! Exact duplicates are the same bytes: one asset ingested from several paths, or assets in
//! several collections sharing a blob. Near-duplicates are images that show the same picture
//! (resized, recompressed, cropped): each image's nearest neighbours in the image-feature
//! space are candidates, and a pair is kept when the features are close enough **and** the
//! perceptual hashes agree roughly, or the features are closer still. Two different photos of
//! the same kind of thing have close features but different hashes, which is what keeps
//! them apart ("false duplicates" are what users of such tools complain about most).
//!
//! Videos are compared by their keyframes: two videos are near-duplicates (a re-encode, a
//! trim, a copy with another container) when at least half of the keyframes of the one with
//! fewer find a keyframe of the other at [`DuplicateOptions::sure_similarity`].

use std::collections::{BTreeMap, HashMap};

use aperture_catalog::{AssetQuery, Catalog};
use aperture_core::{AssetId, ContentHash, MediaKind};
use serde::Serialize;

use crate::document::Indexed;
use crate::engine::SearchIndex;
use crate::vectors::VectorFilter;
use crate::{Error, Result};

/// The space near-duplicates are judged in: EfficientNet-Lite0's image features.
/// It must equal `aperture_analyze::EFFICIENTNET_SPACE`, which search does not depend on.
pub const IMAGE_SPACE: &str = "efficientnet-lite0";

/// How alike two images must be to count as near-duplicates.
#[derive(Debug, Clone)]
pub struct DuplicateOptions {
    /// Feature similarity (cosine) from which a pair is a duplicate when the perceptual
    /// hashes also agree within `max_hamming` bits.
    pub min_similarity: f32,
    /// Perceptual-hash distance (bits of 64) within which hashes "agree".
    pub max_hamming: u32,
    /// Feature similarity from which a pair is a duplicate whatever the hashes say (crops
    /// move the hash a lot, and the features little).
    pub sure_similarity: f32,
    /// Neighbours looked at per image.
    pub neighbours: usize,
}

impl Default for DuplicateOptions {
    /// Calibrated on real photos and the copies `crates/aperture/tests/it/search.rs` makes.
    fn default() -> Self {
        DuplicateOptions {
            min_similarity: 0.80,
            max_hamming: 22,
            sure_similarity: 0.93,
            neighbours: 10,
        }
    }
}

/// Why a group's members are duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupKind {
    /// The same bytes.
    Exact,
    /// The same picture, altered.
    Near,
}

impl GroupKind {
    /// The lowercase name used in JSON and command output.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupKind::Exact => "exact",
            GroupKind::Near => "near",
        }
    }
}

/// One asset of a group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    /// The asset.
    pub asset: AssetId,
    /// Feature similarity to the group's first member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f32>,
    /// Perceptual-hash distance to the group's first member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hamming: Option<u32>,
    /// For exact groups: the collection and paths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Assets that are duplicates of each other.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// Exact or near.
    pub kind: GroupKind,
    /// The oldest asset first.
    pub members: Vec<Member>,
}

/// The collections a grouping is computed over: every one, or these by name. Groups are
/// formed inside them only, so nothing of another collection shapes what is shown (a
/// missing member, a distance, a group joined through a hidden asset).
#[derive(Debug, Clone, Copy)]
pub enum Within<'a> {
    /// Every collection.
    All,
    /// Only these.
    Collections(&'a [String]),
}

impl Within<'_> {
    /// Whether assets of `collection` take part.
    pub fn holds(&self, collection: &str) -> bool {
        match self {
            Within::All => true,
            Within::Collections(names) => names.iter().any(|n| n == collection),
        }
    }

    /// A vector filter of these collections and `kinds`.
    fn filter(&self, kinds: Vec<MediaKind>) -> VectorFilter {
        VectorFilter {
            collections: match self {
                Within::All => Vec::new(),
                // An empty grant sees nothing; a name no collection has matches nothing.
                Within::Collections([]) => vec![String::new()],
                Within::Collections(names) => names.to_vec(),
            },
            kinds,
            ..VectorFilter::default()
        }
    }
}

/// Assets with the same bytes: several paths of one asset, or one blob in several
/// collections; only among the assets of `within`.
pub fn exact(catalog: &dyn Catalog, within: Within<'_>) -> Result<Vec<Group>> {
    // Hash → (asset, paths, collection) of every asset with those bytes.
    let mut by_hash: BTreeMap<ContentHash, Vec<(AssetId, usize, String)>> = BTreeMap::new();
    let mut query = AssetQuery {
        limit: 1000,
        ..AssetQuery::default()
    };
    loop {
        let page = catalog.list_assets(&query)?;
        let Some(last) = page.last() else { break };
        query.after = Some(last.id);
        for asset in page.into_iter().filter(|a| within.holds(&a.collection)) {
            let paths: Vec<String> = catalog
                .sources(asset.id)?
                .into_iter()
                .map(|s| s.path)
                .collect();
            let note = format!("{}: {}", asset.collection, paths.join(", "));
            by_hash
                .entry(asset.hash)
                .or_default()
                .push((asset.id, paths.len(), note));
        }
    }
    Ok(by_hash
        .into_values()
        .filter(|assets| assets.len() > 1 || assets[0].1 > 1)
        .map(|assets| Group {
            kind: GroupKind::Exact,
            members: assets
                .into_iter()
                .map(|(asset, _, note)| Member {
                    asset,
                    similarity: None,
                    hamming: None,
                    note: Some(note),
                })
                .collect(),
        })
        .collect())
}

/// An asset's perceptual hash; `None` when it has none or is gone.
fn phash_of(catalog: &dyn Catalog, id: AssetId) -> Result<Option<u64>> {
    match catalog.asset(id) {
        Ok(found) => Ok(Indexed::new(&found, &[], &catalog.insights(id)?).phash),
        Err(aperture_catalog::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(Error::Catalog(e)),
    }
}

/// A candidate pair and how alike its images are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    /// One asset of the pair.
    pub a: AssetId,
    /// The other.
    pub b: AssetId,
    /// Cosine similarity of their image features.
    pub similarity: f32,
    /// Perceptual-hash distance in bits, when both have a hash.
    pub hamming: Option<u32>,
}

impl DuplicateOptions {
    /// Whether the pair counts as a near-duplicate under these options.
    pub fn is_duplicate(&self, pair: &Pair) -> bool {
        pair.similarity >= self.sure_similarity
            || (pair.similarity >= self.min_similarity
                && pair.hamming.is_some_and(|h| h <= self.max_hamming))
    }
}

/// Every image's nearest neighbours with feature similarity of at least `floor`, each pair
/// once, with the distance of their perceptual hashes; both of each pair in `within`.
pub fn candidate_pairs(
    index: &SearchIndex,
    catalog: &dyn Catalog,
    neighbours: usize,
    floor: f32,
    within: Within<'_>,
) -> Result<Vec<Pair>> {
    let Some(space) = index
        .require_local("grouping near duplicates")?
        .spaces
        .get(IMAGE_SPACE)
    else {
        return Ok(Vec::new());
    };
    let mut phashes: HashMap<AssetId, Option<u64>> = HashMap::new();
    let mut phash = |id: AssetId| -> Result<Option<u64>> {
        if let Some(h) = phashes.get(&id) {
            return Ok(*h);
        }
        let h = phash_of(catalog, id)?;
        phashes.insert(id, h);
        Ok(h)
    };
    let mut pairs: BTreeMap<(AssetId, AssetId), Pair> = BTreeMap::new();
    let images = within.filter(vec![MediaKind::Image]);
    let inside = |entry: &crate::vectors::Entry| {
        space
            .collections()
            .get(entry.collection as usize)
            .is_some_and(|c| within.holds(c))
    };
    for (key, entry) in space.keys() {
        if entry.kind != MediaKind::Image || !inside(&entry) {
            continue;
        }
        let Some(vector) = space.vector(key) else {
            continue;
        };
        for n in space.search(&vector, neighbours + 1, &images)? {
            if n.entry.asset == entry.asset || n.similarity < floor {
                continue;
            }
            let (a, b) = if entry.asset < n.entry.asset {
                (entry.asset, n.entry.asset)
            } else {
                (n.entry.asset, entry.asset)
            };
            if pairs.contains_key(&(a, b)) {
                continue;
            }
            let hamming = match (phash(a)?, phash(b)?) {
                (Some(x), Some(y)) => Some((x ^ y).count_ones()),
                _ => None,
            };
            pairs.insert(
                (a, b),
                Pair {
                    a,
                    b,
                    similarity: n.similarity,
                    hamming,
                },
            );
        }
    }
    Ok(pairs.into_values().collect())
}

/// Pairs of videos of which at least half the keyframes of the one with fewer have a keyframe
/// of the other at `options.sure_similarity` or more; the pair's similarity is the mean of
/// those matches.
pub fn video_pairs(
    index: &SearchIndex,
    options: &DuplicateOptions,
    within: Within<'_>,
) -> Result<Vec<Pair>> {
    let Some(space) = index
        .require_local("grouping near duplicates")?
        .spaces
        .get(IMAGE_SPACE)
    else {
        return Ok(Vec::new());
    };
    let videos = within.filter(vec![MediaKind::Video]);
    let mut keyframes: BTreeMap<AssetId, usize> = BTreeMap::new();
    for (_, entry) in space.keys() {
        let inside = space
            .collections()
            .get(entry.collection as usize)
            .is_some_and(|c| within.holds(c));
        if entry.kind == MediaKind::Video && inside {
            *keyframes.entry(entry.asset).or_default() += 1;
        }
    }
    // (this video, other video) → how many of this video's keyframes match, and the sum of
    // their best similarities.
    let mut matched: HashMap<(AssetId, AssetId), (usize, f32)> = HashMap::new();
    for (&video, &own) in &keyframes {
        // The video's own shots are among each keyframe's neighbours: look past them.
        let k = options.neighbours + own.min(256) + 1;
        for &key in space.keys_of(video) {
            let Some(vector) = space.vector(key) else {
                continue;
            };
            let mut best: HashMap<AssetId, f32> = HashMap::new();
            for n in space.search(&vector, k, &videos)? {
                if n.entry.asset != video && n.similarity >= options.sure_similarity {
                    let b = best.entry(n.entry.asset).or_default();
                    *b = b.max(n.similarity);
                }
            }
            for (other, similarity) in best {
                let m = matched.entry((video, other)).or_default();
                m.0 += 1;
                m.1 += similarity;
            }
        }
    }
    let unordered: std::collections::BTreeSet<(AssetId, AssetId)> =
        matched.keys().map(|&(x, y)| (x.min(y), x.max(y))).collect();
    let mut pairs = Vec::new();
    for (a, b) in unordered {
        // Judged from the side of the video with fewer keyframes.
        let (shorter, longer) = if keyframes[&a] <= keyframes[&b] {
            (a, b)
        } else {
            (b, a)
        };
        let (count, sum) = matched.get(&(shorter, longer)).copied().unwrap_or_default();
        if count > 0 && count * 2 >= keyframes[&shorter] {
            pairs.push(Pair {
                a,
                b,
                similarity: sum / count as f32,
                hamming: None,
            });
        }
    }
    pairs.sort_by_key(|p| (p.a, p.b));
    Ok(pairs)
}

/// The near-duplicates of one image among the assets of `within`: its feature neighbours
/// that pass [`DuplicateOptions::is_duplicate`], most alike first, erased assets left out.
pub fn near_of(
    index: &SearchIndex,
    catalog: &dyn Catalog,
    asset: AssetId,
    options: &DuplicateOptions,
    within: Within<'_>,
) -> Result<Vec<Pair>> {
    let Some(vectors) = index
        .vectors_of(asset, Some(IMAGE_SPACE))?
        .remove(IMAGE_SPACE)
    else {
        return Ok(Vec::new());
    };
    let own = phash_of(catalog, asset)?;
    let mut found: BTreeMap<AssetId, Pair> = BTreeMap::new();
    for (_, vector) in vectors {
        let neighbours = index
            .nearest(
                IMAGE_SPACE,
                &vector,
                options.neighbours + 1,
                &within.filter(Vec::new()),
            )?
            .unwrap_or_default();
        for n in neighbours {
            let other = n.entry.asset;
            if other == asset || n.similarity < options.min_similarity || found.contains_key(&other)
            {
                continue;
            }
            match catalog.asset(other) {
                Ok(found) if within.holds(&found.collection) => {}
                Ok(_) | Err(aperture_catalog::Error::NotFound { .. }) => continue,
                Err(e) => return Err(Error::Catalog(e)),
            }
            let hamming = match (own, phash_of(catalog, other)?) {
                (Some(x), Some(y)) => Some((x ^ y).count_ones()),
                _ => None,
            };
            let pair = Pair {
                a: asset,
                b: other,
                similarity: n.similarity,
                hamming,
            };
            if options.is_duplicate(&pair) {
                found.insert(other, pair);
            }
        }
    }
    let mut pairs: Vec<Pair> = found.into_values().collect();
    pairs.sort_by(|x, y| y.similarity.total_cmp(&x.similarity));
    Ok(pairs)
}

/// Groups of near-duplicate images among the assets of `within` (transitively: a copy of a
/// copy joins the group, but only through assets of `within`).
pub fn near(
    index: &SearchIndex,
    catalog: &dyn Catalog,
    options: &DuplicateOptions,
    within: Within<'_>,
) -> Result<Vec<Group>> {
    let mut pairs = candidate_pairs(
        index,
        catalog,
        options.neighbours,
        options.min_similarity,
        within,
    )?;
    pairs.extend(video_pairs(index, options, within)?);
    // The index may lag the catalog: an erased asset is in no group.
    let mut exists: HashMap<AssetId, bool> = HashMap::new();
    let mut present = |id: AssetId| -> Result<bool> {
        if let Some(e) = exists.get(&id) {
            return Ok(*e);
        }
        // The index may also lag a move to another collection.
        let e = match catalog.asset(id) {
            Ok(found) => within.holds(&found.collection),
            Err(aperture_catalog::Error::NotFound { .. }) => false,
            Err(e) => return Err(Error::Catalog(e)),
        };
        exists.insert(id, e);
        Ok(e)
    };
    let mut kept: Vec<&Pair> = Vec::new();
    for p in pairs.iter().filter(|p| options.is_duplicate(p)) {
        if present(p.a)? && present(p.b)? {
            kept.push(p);
        }
    }
    let mut parent: HashMap<AssetId, AssetId> = HashMap::new();
    fn root(parent: &mut HashMap<AssetId, AssetId>, x: AssetId) -> AssetId {
        let p = *parent.entry(x).or_insert(x);
        if p == x {
            return x;
        }
        let r = root(parent, p);
        parent.insert(x, r);
        r
    }
    for p in &kept {
        let (ra, rb) = (root(&mut parent, p.a), root(&mut parent, p.b));
        if ra != rb {
            // The older asset (smaller id) stays the root.
            let (keep, join) = if ra < rb { (ra, rb) } else { (rb, ra) };
            parent.insert(join, keep);
        }
    }
    let mut groups: BTreeMap<AssetId, Vec<AssetId>> = BTreeMap::new();
    let ids: Vec<AssetId> = parent.keys().copied().collect();
    for id in ids {
        let r = root(&mut parent, id);
        groups.entry(r).or_default().push(id);
    }
    let pair_of: HashMap<(AssetId, AssetId), &Pair> =
        pairs.iter().map(|p| ((p.a, p.b), p)).collect();
    Ok(groups
        .into_values()
        .map(|mut members| {
            members.sort();
            let first = members[0];
            Group {
                kind: GroupKind::Near,
                members: members
                    .into_iter()
                    .map(|asset| {
                        let key = if first < asset {
                            (first, asset)
                        } else {
                            (asset, first)
                        };
                        let pair = pair_of.get(&key);
                        Member {
                            asset,
                            similarity: pair.map(|p| p.similarity),
                            hamming: pair.and_then(|p| p.hamming),
                            note: None,
                        }
                    })
                    .collect(),
            }
        })
        .collect())
}
