//! The full-text index (tantivy): one document per asset.
//!
//! Every text field is indexed language-neutral ([`analysis::NEUTRAL`]); text whose language
//! was detected is indexed a second time, stemmed, in that language's field (`text_es`, ...).
//! A query word is looked up in the neutral fields and, stemmed, in every language's field, so
//! `estación` finds `estaciones` without knowing the query's language. Stored are the asset id
//! and what hits are explained from ([`Explained`]), so a search reads no catalog rows but one
//! batched check that its hits still exist.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::path::Path;

use aperture_core::{AssetId, MediaKind};
use tantivy::collector::TopDocs;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, DisjunctionMaxQuery, Occur, PhraseQuery,
    Query as TantivyQuery, RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{
    Field, INDEXED, IndexRecordOption, NumericOptions, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term};

use crate::analysis::{self, LABELS, NEUTRAL, STEMMED};
use crate::document::{Explained, Indexed};
use crate::query::{Filters, Query};
use crate::{Error, Result};

/// Memory for the writer's indexing buffer.
const WRITER_MEMORY: usize = 64 << 20;

/// The fields of the schema.
#[derive(Debug, Clone)]
pub struct Fields {
    /// The asset id, stored: the only field a hit reads back.
    pub id: Field,
    /// The collection's name, for filtering by what a caller may see.
    pub collection: Field,
    /// The media kind (`kind:`).
    pub kind: Field,
    /// Detected languages of the text (`lang:`).
    pub lang: Field,
    /// Languages the text was translated into (which stemmed fields to search).
    pub translated: Field,
    /// What the asset has (`has:`).
    pub has: Field,
    /// The capture day, else the ingest time, in Unix milliseconds (`after:`, `before:`).
    pub date: Field,
    /// The file name and paths.
    pub name: Field,
    /// Label names, each synonym on its own.
    pub labels: Field,
    /// OCR lines and document text, unstemmed.
    pub text: Field,
    /// MIME type, camera and codecs.
    pub meta: Field,
    /// Text in scripts other than Latin, transliterated into Latin letters (`аптека` as
    /// `apteka`), for Latin queries.
    pub translit: Field,
    /// Stored only: the asset's [`Explained`] as JSON, what hits are explained from.
    pub explain: Field,
    /// Stemmed text, per language code.
    pub stemmed: Vec<(&'static str, Field)>,
}

fn text_options(analyzer: &str) -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(analyzer)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    )
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        collection: b.add_text_field("collection", STRING),
        kind: b.add_text_field("kind", STRING),
        lang: b.add_text_field("lang", STRING),
        translated: b.add_text_field("translated", STRING),
        has: b.add_text_field("has", STRING),
        date: b.add_i64_field(
            "date",
            NumericOptions::default() | INDEXED | tantivy::schema::FAST,
        ),
        name: b.add_text_field("name", text_options(NEUTRAL)),
        labels: b.add_text_field("labels", text_options(LABELS)),
        text: b.add_text_field("text", text_options(NEUTRAL)),
        meta: b.add_text_field("meta", text_options(NEUTRAL)),
        translit: b.add_text_field("translit", text_options(NEUTRAL)),
        explain: b.add_text_field("explain", STORED),
        stemmed: STEMMED
            .iter()
            .map(|(code, _)| {
                let field = b.add_text_field(
                    &format!("text_{code}"),
                    text_options(&analysis::stemmed(code)),
                );
                (*code, field)
            })
            .collect(),
    };
    (b.build(), fields)
}

/// Field weights: a word in the file name or a label says more than one in a long text.
const NAME_BOOST: f32 = 2.0;
const LABEL_BOOST: f32 = 1.5;
const META_BOOST: f32 = 0.5;
const STEMMED_BOOST: f32 = 0.8;
const TRANSLIT_BOOST: f32 = 0.6;
const TRANSLATED_BOOST: f32 = 0.7;
/// The share of a translated query's words a match needs.
const TRANSLATED_SHARE: f32 = 0.6;

/// The full-text index: one tantivy document per asset, replaced whole on every change.
pub struct FullText {
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

impl FullText {
    /// Opens the index in `dir`, creating it when missing.
    pub fn open(dir: &Path) -> Result<FullText> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let (schema, fields) = schema();
        let directory =
            tantivy::directory::MmapDirectory::open(dir).map_err(tantivy::TantivyError::from)?;
        let index = Index::open_or_create(directory, schema)?;
        Self::with_index(index, fields)
    }

    /// An index in memory, for tests.
    pub fn in_memory() -> Result<FullText> {
        let (schema, fields) = schema();
        Self::with_index(Index::create_in_ram(schema), fields)
    }

    fn with_index(index: Index, fields: Fields) -> Result<FullText> {
        analysis::register(index.tokenizers());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(FullText {
            index,
            reader,
            fields,
        })
    }

    /// The schema's fields, for building queries.
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// A writer; only one may exist at a time, across processes (tantivy holds a lock file).
    pub fn writer(&self) -> Result<IndexWriter> {
        Ok(self.index.writer(WRITER_MEMORY)?)
    }

    /// The payload of the last commit (the change-feed position it reflects).
    pub fn committed_payload(&self) -> Result<Option<String>> {
        Ok(self.index.load_metas()?.payload)
    }

    /// Makes the last commit visible to searches.
    pub fn reload(&self) -> Result<()> {
        Ok(self.reader.reload()?)
    }

    /// Rewrites the segments that hold deleted documents without them, and removes the old
    /// files: after an erasure, no segment file keeps the erased asset's terms.
    pub fn purge_deleted(&self, writer: &mut IndexWriter) -> Result<()> {
        let with_deletes: Vec<tantivy::index::SegmentId> = self
            .index
            .searchable_segment_metas()?
            .into_iter()
            .filter(|m| m.num_deleted_docs() > 0)
            .map(|m| m.id())
            .collect();
        if !with_deletes.is_empty() {
            writer.merge(&with_deletes).wait()?;
        }
        writer.garbage_collect_files().wait()?;
        Ok(())
    }

    /// Documents deleted but still in segment files.
    pub fn deleted_docs(&self) -> u64 {
        self.reader
            .searcher()
            .segment_readers()
            .iter()
            .map(|r| r.num_deleted_docs() as u64)
            .sum()
    }

    /// Documents searchable now (as of the last [`FullText::reload`]).
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Replaces the asset's document (or removes it, when `indexed` is `None`).
    pub fn put(
        &self,
        writer: &IndexWriter,
        asset: AssetId,
        indexed: Option<&Indexed>,
    ) -> Result<()> {
        writer.delete_term(Term::from_field_text(self.fields.id, &asset.to_string()));
        if let Some(indexed) = indexed {
            writer.add_document(self.document(indexed))?;
        }
        Ok(())
    }

    fn document(&self, a: &Indexed) -> TantivyDocument {
        let f = &self.fields;
        let mut doc = TantivyDocument::new();
        if let Ok(json) = serde_json::to_string(&a.explained()) {
            doc.add_text(f.explain, json);
        }
        doc.add_text(f.id, a.asset.to_string());
        doc.add_text(f.collection, &a.collection);
        doc.add_text(f.kind, a.kind.as_str());
        doc.add_i64(f.date, a.date.0);
        for lang in &a.languages {
            doc.add_text(f.lang, lang);
        }
        for lang in &a.translated {
            doc.add_text(f.translated, lang);
        }
        for has in &a.has {
            doc.add_text(f.has, has.as_str());
        }
        doc.add_text(f.name, &a.name);
        for path in &a.paths {
            doc.add_text(f.name, path);
        }
        for meta in &a.meta {
            doc.add_text(f.meta, meta);
        }
        for label in &a.labels {
            doc.add_text(f.labels, &label.name);
        }
        for passage in &a.passages {
            doc.add_text(f.text, &passage.text);
            if let Some(latin) = analysis::transliterated(&passage.text) {
                doc.add_text(f.translit, latin);
            }
            if let Some(field) = passage
                .language
                .as_deref()
                .and_then(|l| f.stemmed.iter().find(|(code, _)| *code == l))
            {
                doc.add_text(field.1, &passage.text);
            }
        }
        doc
    }

    /// The best `limit` assets for the query's words within its filters, best first, with
    /// their BM25 scores. A query without words lists the newest assets that pass the filters.
    pub fn search(&self, query: &Query, limit: usize) -> Result<Vec<(AssetId, f32)>> {
        let searcher = self.reader.searcher();
        let words = self.words_query(query);
        let filter = self.filter_query(&query.filters);
        if words.is_none() {
            let Some(filter) = filter else {
                return Ok(Vec::new());
            };
            let mut clauses: Vec<(Occur, Box<dyn TantivyQuery>)> = vec![(Occur::Must, filter)];
            clauses.extend(
                self.exclusions(query)
                    .into_iter()
                    .map(|q| (Occur::MustNot, q)),
            );
            let newest = TopDocs::with_limit(limit).order_by_fast_field::<i64>("date", Order::Desc);
            let hits = searcher.search(&BooleanQuery::new(clauses), &newest)?;
            return hits
                .into_iter()
                .map(|(_, address)| Ok((self.id_of(&searcher, address)?, 0.0)))
                .collect();
        }
        let query = and([words, filter]);
        let hits = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        hits.into_iter()
            .map(|(score, address)| Ok((self.id_of(&searcher, address)?, score)))
            .collect()
    }

    /// Which of `candidates` pass the filters (and the exclusions): how vector hits are
    /// filtered by what only the full-text index knows (language, labels, text).
    pub fn passing(&self, query: &Query, candidates: &[AssetId]) -> Result<HashSet<AssetId>> {
        if candidates.is_empty() {
            return Ok(HashSet::new());
        }
        let searcher = self.reader.searcher();
        let ids = TermSetQuery::new(
            candidates
                .iter()
                .map(|id| Term::from_field_text(self.fields.id, &id.to_string())),
        );
        let mut clauses: Vec<(Occur, Box<dyn TantivyQuery>)> = vec![(Occur::Must, Box::new(ids))];
        if let Some(filter) = self.filter_query(&query.filters) {
            clauses.push((Occur::Must, filter));
        }
        clauses.extend(
            self.exclusions(query)
                .into_iter()
                .map(|q| (Occur::MustNot, q)),
        );
        let hits = searcher.search(
            &BooleanQuery::new(clauses),
            &TopDocs::with_limit(candidates.len()).order_by_score(),
        )?;
        hits.into_iter()
            .map(|(_, address)| self.id_of(&searcher, address))
            .collect()
    }

    /// What the index holds to explain hits on `ids`, read from its stored documents (an id
    /// without a document, or whose document predates the stored explanation, is absent).
    pub fn explained(&self, ids: &[AssetId]) -> Result<HashMap<AssetId, Explained>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let searcher = self.reader.searcher();
        let query = TermSetQuery::new(
            ids.iter()
                .map(|id| Term::from_field_text(self.fields.id, &id.to_string())),
        );
        let hits = searcher.search(&query, &TopDocs::with_limit(ids.len()).order_by_score())?;
        let mut out = HashMap::with_capacity(ids.len());
        for (_, address) in hits {
            let doc: TantivyDocument = searcher.doc(address)?;
            let id = self.id_in(&doc)?;
            let explained = doc
                .get_first(self.fields.explain)
                .and_then(|v| v.as_str())
                .and_then(|json| serde_json::from_str::<Explained>(json).ok());
            if let Some(explained) = explained {
                out.insert(id, explained);
            }
        }
        Ok(out)
    }

    fn id_of(&self, searcher: &tantivy::Searcher, address: tantivy::DocAddress) -> Result<AssetId> {
        let doc: TantivyDocument = searcher.doc(address)?;
        self.id_in(&doc)
    }

    fn id_in(&self, doc: &TantivyDocument) -> Result<AssetId> {
        let id = doc
            .get_first(self.fields.id)
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::Index("a document without an asset id".into()))?;
        id.parse()
            .map_err(|_| Error::Index(format!("a document with a bad asset id {id:?}")))
    }

    /// Every word or phrase must match somewhere (name, labels, text, metadata, the text
    /// stemmed in any language, or transliterated); none of the excluded ones may. Where the
    /// query was translated, all the words of any one translation will do instead.
    fn words_query(&self, query: &Query) -> Option<Box<dyn TantivyQuery>> {
        let mut fields = self.searched_fields(!query.no_translit);
        let all_of = |fields: &mut Vec<(Field, TextAnalyzer, f32)>,
                      terms: &mut dyn Iterator<Item = &str>| {
            let clauses: Vec<(Occur, Box<dyn TantivyQuery>)> = terms
                // A word no analyzer keeps (punctuation) constrains nothing.
                .filter_map(|t| anywhere(fields, t))
                .map(|q| (Occur::Must, q))
                .collect();
            (!clauses.is_empty()).then(|| Box::new(BooleanQuery::new(clauses)) as Box<_>)
        };
        let typed = all_of(
            &mut fields,
            &mut query
                .terms
                .iter()
                .filter(|t| !t.excluded)
                .map(|t| t.text.as_str()),
        )?;
        // The best way counts, not their sum (text that matches in two languages is no
        // better a match), and a translated way a little less than the words as typed.
        let mut ways: Vec<Box<dyn TantivyQuery>> = vec![typed];
        // A machine translation is approximate: most of its words will do.
        for translated in &query.translations {
            let words: Vec<Box<dyn TantivyQuery>> = translated
                .text
                .split_whitespace()
                .filter_map(|t| anywhere(&mut fields, t))
                .collect();
            if words.is_empty() {
                continue;
            }
            let needed = (words.len() as f32 * TRANSLATED_SHARE).ceil() as usize;
            let q = BooleanQuery::with_minimum_required_clauses(
                words.into_iter().map(|q| (Occur::Should, q)).collect(),
                needed,
            );
            ways.push(Box::new(BoostQuery::new(Box::new(q), TRANSLATED_BOOST)));
        }
        let mut clauses: Vec<(Occur, Box<dyn TantivyQuery>)> = vec![(
            Occur::Must,
            if ways.len() == 1 {
                ways.remove(0)
            } else {
                Box::new(DisjunctionMaxQuery::new(ways))
            },
        )];
        clauses.extend(
            excluded(&mut fields, query)
                .into_iter()
                .map(|q| (Occur::MustNot, q)),
        );
        Some(Box::new(BooleanQuery::new(clauses)))
    }

    fn exclusions(&self, query: &Query) -> Vec<Box<dyn TantivyQuery>> {
        excluded(&mut self.searched_fields(!query.no_translit), query)
    }

    /// The fields a query word is looked up in, with their analyzers and boosts; worked out
    /// once per query. Stemmed fields only for the languages some document is in or was
    /// translated into: most collections have a handful of the 18. The transliterations when
    /// `translit`.
    fn searched_fields(&self, translit: bool) -> Vec<(Field, TextAnalyzer, f32)> {
        let f = &self.fields;
        let searcher = self.reader.searcher();
        let present = |code: &str| {
            [f.lang, f.translated].iter().any(|field| {
                searcher
                    .doc_freq(&Term::from_field_text(*field, code))
                    .is_ok_and(|n| n > 0)
            })
        };
        let stemmed = f
            .stemmed
            .iter()
            .filter(|(code, _)| present(code))
            .map(|(code, field)| (*field, analysis::stemmed(code), STEMMED_BOOST));
        [
            (f.name, NEUTRAL.to_owned(), NAME_BOOST),
            (f.labels, LABELS.to_owned(), LABEL_BOOST),
            (f.text, NEUTRAL.to_owned(), 1.0),
            (f.meta, NEUTRAL.to_owned(), META_BOOST),
        ]
        .into_iter()
        .chain(translit.then(|| (f.translit, NEUTRAL.to_owned(), TRANSLIT_BOOST)))
        .chain(stemmed)
        .filter_map(|(field, name, boost)| Some((field, self.analyzer(&name)?, boost)))
        .collect()
    }

    /// The languages of the documents' text (what `lang:` finds), from the index's terms.
    pub fn languages(&self) -> Result<Vec<String>> {
        let searcher = self.reader.searcher();
        let mut out = std::collections::BTreeSet::new();
        for segment in searcher.segment_readers() {
            let index = segment.inverted_index(self.fields.lang)?;
            let mut terms = index
                .terms()
                .stream()
                .map_err(tantivy::TantivyError::from)?;
            while terms.advance() {
                if let Ok(code) = std::str::from_utf8(terms.key()) {
                    out.insert(code.to_owned());
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// A registered analyzer by name.
    pub fn analyzer(&self, name: &str) -> Option<TextAnalyzer> {
        self.index.tokenizers().get(name)
    }

    /// The filters as one query; `None` when there are none. `similar:` is not a filter.
    pub fn filter_query(&self, filters: &Filters) -> Option<Box<dyn TantivyQuery>> {
        let f = &self.fields;
        let any_of = |field: Field, values: &mut dyn Iterator<Item = String>| {
            let terms: Vec<Term> = values.map(|v| Term::from_field_text(field, &v)).collect();
            (!terms.is_empty()).then(|| Box::new(TermSetQuery::new(terms)) as Box<dyn TantivyQuery>)
        };
        let mut clauses: Vec<Option<Box<dyn TantivyQuery>>> = vec![
            any_of(
                f.kind,
                &mut filters
                    .kinds
                    .iter()
                    .map(|k: &MediaKind| k.as_str().to_owned()),
            ),
            any_of(f.collection, &mut filters.collections.iter().cloned()),
            any_of(f.lang, &mut filters.langs.iter().cloned()),
            any_of(
                f.has,
                &mut filters.has.iter().map(|h| h.as_str().to_owned()),
            ),
        ];
        if !filters.labels.is_empty() {
            let mut analyzer = self.analyzer(LABELS)?;
            let any: Vec<(Occur, Box<dyn TantivyQuery>)> = filters
                .labels
                .iter()
                .filter_map(|label| field_query(f.labels, &analysis::terms(&mut analyzer, label)))
                .map(|q| (Occur::Should, q))
                .collect();
            clauses.push(Some(Box::new(BooleanQuery::new(any))));
        }
        if filters.after.is_some() || filters.before.is_some() {
            let bound = |t: Option<aperture_core::UnixMillis>, inclusive: bool| match t {
                Some(t) if inclusive => Bound::Included(Term::from_field_i64(f.date, t.0)),
                Some(t) => Bound::Excluded(Term::from_field_i64(f.date, t.0)),
                None => Bound::Unbounded,
            };
            clauses.push(Some(Box::new(RangeQuery::new(
                bound(filters.after, true),
                bound(filters.before, false),
            ))));
        }
        let clauses: Vec<_> = clauses.into_iter().flatten().collect();
        match clauses.len() {
            0 => None,
            _ => Some(Box::new(BooleanQuery::new(
                clauses.into_iter().map(|q| (Occur::Must, q)).collect(),
            ))),
        }
    }
}

/// The excluded words of a query, each as [`anywhere`].
fn excluded(
    fields: &mut [(Field, TextAnalyzer, f32)],
    query: &Query,
) -> Vec<Box<dyn TantivyQuery>> {
    query
        .terms
        .iter()
        .filter(|t| t.excluded)
        .filter_map(|t| anywhere(fields, &t.text))
        .collect()
}

/// The text (a word, or words that must be adjacent) in any of the fields.
fn anywhere(
    fields: &mut [(Field, TextAnalyzer, f32)],
    text: &str,
) -> Option<Box<dyn TantivyQuery>> {
    let alternatives: Vec<(Occur, Box<dyn TantivyQuery>)> = fields
        .iter_mut()
        .filter_map(|(field, analyzer, boost)| {
            let q = field_query(*field, &analysis::terms(analyzer, text))?;
            Some((
                Occur::Should,
                Box::new(BoostQuery::new(q, *boost)) as Box<_>,
            ))
        })
        .collect();
    (!alternatives.is_empty()).then(|| Box::new(BooleanQuery::new(alternatives)) as Box<_>)
}

/// One term, or a phrase of several (a quoted phrase, a hyphenated word, CJK pairs).
fn field_query(field: Field, terms: &[String]) -> Option<Box<dyn TantivyQuery>> {
    match terms {
        [] => None,
        [one] => Some(Box::new(TermQuery::new(
            Term::from_field_text(field, one),
            IndexRecordOption::WithFreqs,
        ))),
        many => Some(Box::new(PhraseQuery::new(
            many.iter()
                .map(|t| Term::from_field_text(field, t))
                .collect(),
        ))),
    }
}

/// All of the queries present; everything when none is.
fn and<const N: usize>(queries: [Option<Box<dyn TantivyQuery>>; N]) -> Box<dyn TantivyQuery> {
    let present: Vec<(Occur, Box<dyn TantivyQuery>)> = queries
        .into_iter()
        .flatten()
        .map(|q| (Occur::Must, q))
        .collect();
    if present.is_empty() {
        Box::new(AllQuery)
    } else {
        Box::new(BooleanQuery::new(present))
    }
}
