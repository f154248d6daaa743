//! Hybrid search: full-text and vector candidates fused by reciprocal rank, each hit checked
//! against the catalog and explained.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use aperture_catalog::{Asset, Catalog};
use aperture_core::{AssetId, Place};
use serde::Serialize;
use tantivy::tokenizer::{TextAnalyzer, TokenStream};

use crate::analysis::{self, LABELS};
use crate::document::Explained;
use crate::engine::SearchIndex;
use crate::query::Query;
use crate::vectors::VectorFilter;
use crate::{Error, QueryError, Result};

/// Candidates each ranked list contributes to the fusion.
const POOL: usize = 100;
/// Reciprocal rank fusion's constant: a hit ranked r in a list scores 1 / (RRF_K + r).
/// 60 is the value of the original paper (Cormack et al., 2009), and works untuned.
const RRF_K: f32 = 60.0;
/// Characters of document text shown around a match.
const SNIPPET_CHARS: usize = 160;
/// Word matches listed per hit.
const MAX_WORD_REASONS: usize = 3;
/// Words too common to explain a match on their own (they still count in ranking).
const STOP_WORDS: [&str; 24] = [
    "a", "an", "and", "are", "as", "at", "be", "by", "de", "for", "from", "in", "is", "it", "la",
    "el", "of", "on", "or", "the", "to", "was", "with", "y",
];

/// Turns query text into a vector of one embedding space (MiniLM for descriptions, CLIP's
/// text tower for CLIP image embeddings). Implemented where the models are.
pub trait QueryEncoder {
    /// The space its vectors are compared in.
    fn space(&self) -> &str;
    /// The text's vector in [`QueryEncoder::space`], or why it could not be made. Called on
    /// the caller's thread: an encoder that runs a model blocks.
    fn encode(&self, text: &str) -> std::result::Result<Vec<f32>, String>;
}

/// How many hits, and how loose a meaning match may be.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// Hits to return.
    pub limit: usize,
    /// Text-to-vector matches below this cosine similarity are not candidates: below it,
    /// MiniLM's neighbours share no meaning with the query.
    pub min_similarity: f32,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            limit: 10,
            min_similarity: 0.25,
        }
    }
}

/// One result.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    /// The asset, as the catalog has it now (an asset erased since indexing is never a hit).
    pub asset: Asset,
    /// The fused score (higher is better); only the order means something.
    pub score: f32,
    /// Why it matched: words first, then meaning and likeness.
    pub reasons: Vec<Reason>,
}

/// The original of a translation that matched, with what matched in it (the query's words
/// translated into its language).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OriginalText {
    /// The line or excerpt, in its language.
    pub text: String,
    /// Its language, two letters.
    pub language: String,
    /// Byte ranges of `text` that matched.
    pub highlights: Vec<Range<usize>>,
}

/// `text` with `highlights` in «».
fn marked(text: &str, highlights: &[Range<usize>]) -> String {
    let mut marked = String::new();
    let mut at = 0;
    for r in highlights {
        if r.start < at || r.end > text.len() {
            continue;
        }
        marked.push_str(&text[at..r.start]);
        marked.push('«');
        marked.push_str(&text[r.clone()]);
        marked.push('»');
        at = r.end;
    }
    marked.push_str(&text[at..]);
    marked.replace('\n', " ")
}

/// Why a hit matched.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reason {
    /// Query words found in a field: `name`, `path`, `label`, `ocr`, `text` or `meta`.
    Words {
        /// Which field.
        field: &'static str,
        /// The line, label or excerpt that matched.
        text: String,
        /// Byte ranges of `text` that matched.
        highlights: Vec<Range<usize>>,
        /// Where in the asset (an OCR line's box, a page).
        #[serde(skip_serializing_if = "Option::is_none")]
        place: Option<Place>,
        /// The label's confidence, for a label match.
        #[serde(skip_serializing_if = "Option::is_none")]
        confidence: Option<f32>,
        /// For a match in a translation: the text it was translated from.
        #[serde(skip_serializing_if = "Option::is_none")]
        original: Option<OriginalText>,
    },
    /// The query's meaning is close to a text embedding of the asset.
    Meaning {
        /// The embedding space.
        space: String,
        /// Cosine similarity between the query and the vector.
        similarity: f32,
        /// What the matched vector embeds (an excerpt of the description or passage).
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// Where in the asset the matched vector applies.
        place: Place,
        /// Which of the asset's vectors in the space matched.
        #[serde(skip)]
        vector: u32,
    },
    /// The asset looks like the `similar:` one.
    Similar {
        /// The space compared in.
        space: String,
        /// Cosine similarity of the closest pair of vectors.
        similarity: f32,
        /// Where in the hit the closest vector applies (a video's shot).
        place: Place,
        /// Which of the asset's vectors in the space matched.
        #[serde(skip)]
        vector: u32,
    },
    /// Listed by the filters alone (newest first).
    Filters,
}

impl Reason {
    /// One line saying why a hit matched, with the matches in «».
    pub fn describe(&self) -> String {
        match self {
            Reason::Words {
                field,
                text,
                highlights,
                place,
                confidence,
                original,
            } => {
                let mut line = format!("{field}: {}", marked(text, highlights));
                if let Some(o) = original {
                    line.push_str(&format!(
                        " (from {}: {})",
                        o.language,
                        marked(&o.text, &o.highlights)
                    ));
                }
                if let Some(c) = confidence {
                    line.push_str(&format!(" ({:.0}%)", c * 100.0));
                }
                if let Some(place) = place {
                    line.push_str(&aperture_core::human::where_in(place));
                }
                line
            }
            Reason::Meaning {
                space,
                similarity,
                text,
                place,
                ..
            } => {
                let mut line = format!("meaning ({space}, {similarity:.2})");
                if let Some(text) = text {
                    line.push_str(&format!(": {}", aperture_core::human::clip(text, 90)));
                }
                line.push_str(&aperture_core::human::where_in(place));
                line
            }
            Reason::Similar {
                space,
                similarity,
                place,
                ..
            } => format!(
                "looks similar ({space}, {similarity:.2}){}",
                aperture_core::human::where_in(place)
            ),
            Reason::Filters => "matches the filters".to_owned(),
        }
    }
}

impl SearchIndex {
    /// Runs a parsed query. `encoders` turn the words into vectors for the spaces they serve;
    /// spaces without an encoder are searched only through `similar:`.
    pub fn search(
        &self,
        catalog: &dyn Catalog,
        query: &Query,
        encoders: &[&dyn QueryEncoder],
        options: &SearchOptions,
    ) -> Result<Vec<Hit>> {
        self.search_with_examples(catalog, query, encoders, &[], options)
    }

    /// [`SearchIndex::search`], also ranking by likeness to example vectors (an uploaded
    /// image's, as `(space, vector)`), as `similar:` ranks by a stored asset's.
    pub fn search_with_examples(
        &self,
        catalog: &dyn Catalog,
        query: &Query,
        encoders: &[&dyn QueryEncoder],
        examples: &[(String, Vec<f32>)],
        options: &SearchOptions,
    ) -> Result<Vec<Hit>> {
        let ranks = query.ranks() || !examples.is_empty();
        if !ranks && query.filters.is_empty() {
            return Err(QueryError {
                message: "an empty query: give words, filters or `similar:`".into(),
            }
            .into());
        }
        let mut lists: Vec<Vec<AssetId>> = Vec::new();
        let mut found: HashMap<AssetId, Vec<Reason>> = HashMap::new();
        if !ranks {
            let listed = self.text_search(query, options.limit.max(POOL))?;
            lists.push(listed.into_iter().map(|(id, _)| id).collect());
        } else {
            if query.terms.iter().any(|t| !t.excluded) {
                let words = self.text_search(query, POOL)?;
                lists.push(words.into_iter().map(|(id, _)| id).collect());
                self.semantic(query, encoders, options, &mut lists, &mut found)?;
            }
            if let Some(prefix) = &query.similar {
                let target = resolve(catalog, prefix)?;
                let places = self.explained(&[target])?.remove(&target);
                // "Looks like" is for the spaces of pictures (image features, CLIP): a space
                // whose vectors embed text (the name and labels described) only when the
                // asset has no pictures, as a document has not.
                let textual: HashSet<&str> = places
                    .iter()
                    .flat_map(|e| e.vector_texts.iter())
                    .filter(|(_, text)| text.is_some())
                    .map(|(space, _)| space.as_str())
                    .collect();
                let of_target = self.vectors_of(target, None)?;
                let visual = of_target
                    .keys()
                    .any(|name| !textual.contains(name.as_str()));
                let mut vectors = Vec::new();
                for (name, of_space) in &of_target {
                    if visual && textual.contains(name.as_str()) {
                        continue;
                    }
                    // Its first vector (the image itself, a document's description, a video's
                    // first shot), or the one whose shot holds the moment asked for.
                    let pick = match (query.similar_at, &places) {
                        (Some(at), Some(explained)) => {
                            let ordinal = explained
                                .vector_texts
                                .iter()
                                .zip(&explained.vector_places)
                                .filter(|((s, _), _)| s == name)
                                .position(|(_, place)| match place {
                                    Place::Time {
                                        start_ms, end_ms, ..
                                    } => (*start_ms..*end_ms).contains(&at),
                                    _ => false,
                                });
                            ordinal.and_then(|o| of_space.iter().find(|(n, _)| *n as usize == o))
                        }
                        _ => of_space.first(),
                    };
                    if let Some((_, v)) = pick {
                        vectors.push((name.clone(), v.clone()));
                    }
                }
                if vectors.is_empty() {
                    return Err(Error::NoVectors(format!(
                        "asset {target} has no vectors to compare{} (it is not analysed yet, or \
                         no model that embeds its kind is installed)",
                        query.similar_at.map_or_else(String::new, |at| format!(
                            " at {}",
                            aperture_core::human::clock(at)
                        ))
                    )));
                }
                self.similar(Some(target), &vectors, query, &mut lists, &mut found)?;
            }
            self.similar(None, examples, query, &mut lists, &mut found)?;
        }

        let fused = fuse(&lists);
        let terms: Vec<&str> = query
            .terms
            .iter()
            .filter(|t| !t.excluded)
            .map(|t| t.text.as_str())
            .collect();
        // Candidates in batches: one catalog read confirms which still exist (the index may
        // lag the catalog, and an erased asset is never shown); the index explains them.
        let mut hits = Vec::new();
        for batch in fused.chunks(options.limit.max(1) * 2) {
            if hits.len() == options.limit {
                break;
            }
            let ids: Vec<AssetId> = batch.iter().map(|(id, _)| *id).collect();
            let mut assets: HashMap<AssetId, Asset> = catalog
                .assets(&ids)?
                .into_iter()
                .map(|a| (a.id, a))
                .collect();
            let explained = self.explained(&ids)?;
            for (id, score) in batch {
                if hits.len() == options.limit {
                    break;
                }
                let Some(asset) = assets.remove(id) else {
                    continue;
                };
                let empty = Explained::default();
                let explained = explained.get(id).unwrap_or(&empty);
                let mut reasons = self.word_reasons(explained, &terms, query);
                for mut reason in found.remove(id).unwrap_or_default() {
                    let (space, vector, place, text) = match &mut reason {
                        Reason::Meaning {
                            space,
                            text,
                            vector,
                            place,
                            ..
                        } => (space, vector, place, Some(text)),
                        Reason::Similar {
                            space,
                            vector,
                            place,
                            ..
                        } => (space, vector, place, None),
                        _ => {
                            reasons.push(reason);
                            continue;
                        }
                    };
                    // The vector's own text and place, from what the index stored.
                    let at = explained
                        .vector_texts
                        .iter()
                        .enumerate()
                        .filter(|(_, (s, _))| s == space)
                        .nth(*vector as usize)
                        .map(|(at, _)| at);
                    if let Some(text) = text {
                        *text = at.and_then(|at| explained.vector_texts[at].1.clone());
                    }
                    if let Some(p) = at.and_then(|at| explained.vector_places.get(at)) {
                        *place = *p;
                    }
                    reasons.push(reason);
                }
                if reasons.is_empty() && !ranks {
                    reasons.push(Reason::Filters);
                }
                hits.push(Hit {
                    asset,
                    score: *score,
                    reasons,
                });
            }
        }
        Ok(hits)
    }

    /// Nearest text embeddings to the query's sentence, one list per space with an encoder.
    fn semantic(
        &self,
        query: &Query,
        encoders: &[&dyn QueryEncoder],
        options: &SearchOptions,
        lists: &mut Vec<Vec<AssetId>>,
        found: &mut HashMap<AssetId, Vec<Reason>>,
    ) -> Result<()> {
        let sentence = query.sentence();
        for encoder in encoders {
            if !self.has_space(encoder.space())? {
                continue;
            }
            let vector = encoder
                .encode(&sentence)
                .map_err(|message| Error::Encoder {
                    space: encoder.space().to_owned(),
                    message,
                })?;
            // Passages make several vectors per asset: ask for more, keep each asset's best.
            let neighbours = self
                .nearest(encoder.space(), &vector, POOL * 4, &vector_filter(query))?
                .unwrap_or_default();
            let mut list = Vec::new();
            let mut best: HashMap<AssetId, (f32, Place, u32)> = HashMap::new();
            for n in neighbours
                .iter()
                .filter(|n| n.similarity >= options.min_similarity)
            {
                if let std::collections::hash_map::Entry::Vacant(slot) = best.entry(n.entry.asset) {
                    list.push(n.entry.asset);
                    slot.insert((n.similarity, n.entry.place(), n.entry.ordinal));
                }
            }
            let list = self.passing(query, list)?;
            for id in &list {
                let (similarity, place, ordinal) = best[id];
                found.entry(*id).or_default().push(Reason::Meaning {
                    space: encoder.space().to_owned(),
                    similarity,
                    text: None,
                    place,
                    vector: ordinal,
                });
            }
            lists.push(list);
        }
        Ok(())
    }

    /// Assets whose vectors are nearest to the examples', one list per example; `target`
    /// (the `similar:` asset) is left out.
    fn similar(
        &self,
        target: Option<AssetId>,
        examples: &[(String, Vec<f32>)],
        query: &Query,
        lists: &mut Vec<Vec<AssetId>>,
        found: &mut HashMap<AssetId, Vec<Reason>>,
    ) -> Result<()> {
        for (name, vector) in examples {
            let Some(neighbours) = self.nearest(name, vector, POOL * 2, &vector_filter(query))?
            else {
                continue;
            };
            let mut seen = HashSet::new();
            let mut list = Vec::new();
            for n in &neighbours {
                if Some(n.entry.asset) != target && seen.insert(n.entry.asset) {
                    list.push(n.entry.asset);
                    found
                        .entry(n.entry.asset)
                        .or_default()
                        .push(Reason::Similar {
                            space: name.clone(),
                            similarity: n.similarity,
                            place: n.entry.place(),
                            vector: n.entry.ordinal,
                        });
                }
            }
            lists.push(self.passing(query, list)?);
        }
        Ok(())
    }

    /// `list` without the assets the query's other filters and exclusions rule out.
    fn passing(&self, query: &Query, list: Vec<AssetId>) -> Result<Vec<AssetId>> {
        let f = &query.filters;
        let only_vector_filters = f.langs.is_empty() && f.labels.is_empty() && f.has.is_empty();
        if only_vector_filters && query.terms.iter().all(|t| !t.excluded) {
            return Ok(list);
        }
        let passing = self.passing_filters(query, &list)?;
        Ok(list.into_iter().filter(|id| passing.contains(id)).collect())
    }

    /// Where the query's words (`terms`, and its translations) occur in the asset.
    fn word_reasons(&self, indexed: &Explained, terms: &[&str], query: &Query) -> Vec<Reason> {
        let (Some(mut neutral), Some(mut labels)) = (
            self.text_analyzer(analysis::NEUTRAL),
            self.text_analyzer(LABELS),
        ) else {
            return Vec::new();
        };
        let keep = |t: &&str| !STOP_WORDS.contains(&t.to_lowercase().as_str());
        let typed: Vec<&str> = terms.iter().copied().filter(keep).collect();
        // The typed words and their translations: a passage in Spanish matches "farmacia" of
        // the query "pharmacy" translated.
        let mut any: Vec<&str> = typed.clone();
        any.extend(
            query
                .translations
                .iter()
                .flat_map(|t| t.text.split_whitespace())
                .filter(keep),
        );
        let mut reasons = Vec::new();
        let mut find = |text: &str, language: Option<&str>, wanted: &[&str]| {
            let mut found = matches(&mut neutral, text, wanted);
            if found.is_empty()
                && let Some(mut stemmer) =
                    language.and_then(|l| self.text_analyzer(&analysis::stemmed(l)))
            {
                found = matches(&mut stemmer, text, wanted);
            }
            if found.is_empty() && !query.no_translit {
                found = analysis::transliterated_matches(&mut neutral, text, wanted);
            }
            found
        };
        let found = find(&indexed.name, None, &typed);
        push(&mut reasons, "name", &indexed.name, found, None, None, None);
        for label in &indexed.labels {
            let found = matches(&mut labels, &label.name, &typed);
            let (place, confidence) = (label.place, Some(label.confidence));
            push(
                &mut reasons,
                "label",
                &label.name,
                found,
                place,
                confidence,
                None,
            );
        }
        for p in &indexed.passages {
            let wanted = if p.source == "translation" {
                &typed
            } else {
                &any
            };
            let found = find(&p.text, p.language.as_deref(), wanted);
            let original = match (&p.original, found.is_empty()) {
                (Some(o), false) => {
                    let marks = find(&o.text, Some(&o.language), &any);
                    let (text, highlights) = snippet(&o.text, &marks);
                    Some(OriginalText {
                        text,
                        language: o.language.clone(),
                        highlights,
                    })
                }
                _ => None,
            };
            push(
                &mut reasons,
                p.source,
                &p.text,
                found,
                Some(p.place),
                None,
                original,
            );
        }
        if reasons.is_empty() {
            for path in &indexed.paths {
                let found = find(path, None, &typed);
                push(&mut reasons, "path", path, found, None, None, None);
            }
            for meta in &indexed.meta {
                let found = find(meta, None, &typed);
                push(&mut reasons, "meta", meta, found, None, None, None);
            }
        }
        reasons.truncate(MAX_WORD_REASONS);
        reasons
    }

    fn text_analyzer(&self, name: &str) -> Option<TextAnalyzer> {
        self.analyzer(name)
    }
}

/// `similar:` takes an id or a unique prefix.
fn resolve(catalog: &dyn Catalog, prefix: &str) -> Result<AssetId> {
    let prefix: String = prefix.chars().filter(|c| *c != '-').collect();
    let ids = catalog.assets_with_prefix(&prefix, 2)?;
    match ids.as_slice() {
        [one] => Ok(*one),
        [] => Err(Error::NoSuchAsset(format!(
            "no asset id starts with {prefix}"
        ))),
        _ => Err(Error::NoSuchAsset(format!(
            "more than one asset id starts with {prefix}: give more digits"
        ))),
    }
}

fn vector_filter(query: &Query) -> VectorFilter {
    let f = &query.filters;
    VectorFilter {
        collections: f.collections.clone(),
        kinds: f.kinds.clone(),
        after: f.after.map(|t| t.0),
        before: f.before.map(|t| t.0),
    }
}

/// Reciprocal rank fusion: each list gives its r-th asset 1 / (RRF_K + r); best first, ties
/// broken by the first list an asset appears in, then by rank there.
pub fn fuse(lists: &[Vec<AssetId>]) -> Vec<(AssetId, f32)> {
    let mut scores: HashMap<AssetId, (f32, usize, usize)> = HashMap::new();
    for (l, list) in lists.iter().enumerate() {
        for (rank, id) in list.iter().enumerate() {
            let entry = scores.entry(*id).or_insert((0.0, l, rank));
            entry.0 += 1.0 / (RRF_K + rank as f32 + 1.0);
        }
    }
    let mut fused: Vec<(AssetId, (f32, usize, usize))> = scores.into_iter().collect();
    fused.sort_by(|a, b| {
        b.1.0
            .total_cmp(&a.1.0)
            .then(a.1.1.cmp(&b.1.1))
            .then(a.1.2.cmp(&b.1.2))
    });
    fused.into_iter().map(|(id, (s, _, _))| (id, s)).collect()
}

/// A word reason for `found` in `text`, cut to a snippet, when something was found.
fn push(
    reasons: &mut Vec<Reason>,
    field: &'static str,
    text: &str,
    found: Vec<Range<usize>>,
    place: Option<Place>,
    confidence: Option<f32>,
    original: Option<OriginalText>,
) {
    if !found.is_empty() {
        let (text, highlights) = snippet(text, &found);
        reasons.push(Reason::Words {
            field,
            text,
            highlights,
            place,
            confidence,
            original,
        });
    }
}

/// Byte ranges of `text` where one of the terms (each a word or phrase) occurs, as the
/// analyzer sees both.
pub fn matches(analyzer: &mut TextAnalyzer, text: &str, terms: &[&str]) -> Vec<Range<usize>> {
    if terms.is_empty() {
        return Vec::new();
    }
    let mut tokens: Vec<(String, Range<usize>)> = Vec::new();
    {
        let mut stream = analyzer.token_stream(text);
        while stream.advance() {
            let t = stream.token();
            tokens.push((t.text.clone(), t.offset_from..t.offset_to));
        }
    }
    let mut out: Vec<Range<usize>> = Vec::new();
    for term in terms {
        let wanted = analysis::terms(analyzer, term);
        if wanted.is_empty() || wanted.len() > tokens.len() {
            continue;
        }
        for (i, window) in tokens.windows(wanted.len()).enumerate() {
            if window.iter().zip(&wanted).all(|((t, _), w)| t == w) {
                out.push(tokens[i].1.start..tokens[i + wanted.len() - 1].1.end);
            }
        }
    }
    out.sort_by_key(|r| (r.start, r.end));
    out.dedup();
    out
}

/// The text around the first match (at most [`SNIPPET_CHARS`] characters, on character
/// boundaries), with the matches inside it, relative to the snippet.
fn snippet(text: &str, highlights: &[Range<usize>]) -> (String, Vec<Range<usize>>) {
    if text.chars().count() <= SNIPPET_CHARS {
        return (text.to_owned(), highlights.to_vec());
    }
    let first = highlights.first().map_or(0, |r| r.start);
    let mut start = first.saturating_sub(SNIPPET_CHARS / 3);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = text[start..]
        .char_indices()
        .nth(SNIPPET_CHARS)
        .map_or(text.len(), |(i, _)| start + i);
    while !text.is_char_boundary(end) {
        end += 1;
    }
    let prefix = if start > 0 { "…" } else { "" };
    let suffix = if end < text.len() { "…" } else { "" };
    let shift = prefix.len() as isize - start as isize;
    let inside: Vec<Range<usize>> = highlights
        .iter()
        .filter(|r| r.start >= start && r.end <= end)
        .map(|r| ((r.start as isize + shift) as usize)..((r.end as isize + shift) as usize))
        .collect();
    (format!("{prefix}{}{suffix}", &text[start..end]), inside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusion_rewards_agreement() {
        let (a, b, c) = (AssetId::new(), AssetId::new(), AssetId::new());
        let fused = fuse(&[vec![a, b], vec![c, b]]);
        assert_eq!(fused[0].0, b, "in both lists");
        assert_eq!(fused[1].0, a, "ties go to the first list");
        assert_eq!(fused[2].0, c);
        assert!(fuse(&[]).is_empty());
    }

    #[test]
    fn matches_find_words_and_phrases_by_analysis() {
        let mut a = analysis::neutral();
        let text = "Café: NO PARKING — no parking here";
        let ranges = matches(&mut a, text, &["no parking", "cafe"]);
        let found: Vec<&str> = ranges.iter().map(|r| &text[r.clone()]).collect();
        assert_eq!(found, ["Café", "NO PARKING", "no parking"]);
        assert!(matches(&mut a, text, &["parking lot"]).is_empty());
    }

    #[test]
    fn snippets_cut_on_characters_and_keep_highlights() {
        let text = format!("{}needle{}", "ü".repeat(300), "ö".repeat(300));
        let start = text.find("needle").unwrap();
        let highlight = std::iter::once(start..start + 6).collect::<Vec<_>>();
        let (snip, marks) = snippet(&text, &highlight);
        assert!(snip.starts_with('…') && snip.ends_with('…'));
        assert_eq!(&snip[marks[0].clone()], "needle");
        assert!(snip.chars().count() <= SNIPPET_CHARS + 2);
    }
}
