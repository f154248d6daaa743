//! The search index shared by every server, on PostgreSQL: full text through PostgreSQL's
//! text search (a GIN index over `tsvector`), vectors through pgvector (one HNSW index per
//! embedding space). Selected with `[storage] search = "postgres://…"`; the embedded index
//! ([`crate::LocalIndex`]) is the default.
//!
//! **The same words match in both engines.** PostgreSQL's own text-search configurations stem
//! some twenty languages, but split no Chinese or Japanese text into words and transliterate
//! nothing. So the words are analysed here, by the analyzers the embedded index uses
//! ([`crate::analysis`]), and stored as ready lexemes, each prefixed by its field (`n:` name
//! and paths, `l:` labels, `t:` text, `m:` metadata, `x:` transliterated text, `es:` text
//! stemmed in Spanish, …) and weighted by it (A name, B labels, C text, D metadata). A query is
//! analysed the same way into a `tsquery`: each word must match in one of the fields, phrases
//! as adjacent positions (`<->`), excluded words with `!`.
//!
//! **Ranking differs**: PostgreSQL ranks by `ts_rank_cd` (term proximity and field weight,
//! divided by the log of the document's length), which knows nothing of how rare a word is,
//! where tantivy's BM25 does. And it ranks every matching row: a word in a million documents
//! costs a million ranks, where tantivy stops early. Both are measured in the benchmark and
//! the relevance test.
//!
//! The index follows the catalog's change feed like the embedded one: one process at a time
//! applies changes (a session advisory lock; the others find it [`Error::Busy`] and search
//! what is there), each page of changes in one transaction with the feed position, so a crash
//! leaves the index at a position it reflects.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use aperture_catalog::{Catalog, Migration, Postgres, close_apart};
use aperture_core::{AssetId, MediaKind, Place};
use pgvector::Vector;
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls, Transaction};
use tantivy::tokenizer::{TextAnalyzer, TokenizerManager};

use crate::analysis::{self, LABELS, NEUTRAL, STEMMED};
use crate::document::{Explained, Indexed};
use crate::index::{FEED_PAGE, Update, for_every_asset};
use crate::query::{Filters, Query};
use crate::vectors::{AssetVectors, Entry, Neighbour, VectorFilter, normalized};
use crate::{Error, Result};

const MIGRATIONS: &[Migration] = &[(1, "init", include_str!("0001_init.sql"))];

/// The layout of `search_documents` and the vector tables this code writes. An index of
/// another format is rebuilt on its next update.
const FORMAT: i32 = 1;
/// The advisory lock the one updating process holds (ours: "APER" + 0x0101).
const UPDATE_LOCK: i64 = 0x4150_4552_0101;
/// The shared index's name as a follower of the catalog's change feed.
const CONSUMER: &str = "search-shared";
/// HNSW's search breadth by default: recall@10 1.000 at a million clustered 384-d vectors,
/// p99 under 5 ms (`cargo bench -p aperture-search --bench search -- --shared URL`).
pub const EF_SEARCH: usize = 100;
/// HNSW graph degree and build breadth: pgvector's defaults.
const HNSW_WITH: &str = "m = 16, ef_construction = 64";
/// What a build gives PostgreSQL to make each HNSW index: a graph that fits in memory is built
/// many times faster. A server's own settings may not allow more.
const BUILD_MEMORY: &str = "4GB";
/// pgvector's HNSW indexes `vector` columns of up to this many dimensions; a space of more is
/// searched exactly (a warning says so when it is made).
const HNSW_MAX_DIMS: usize = 2000;
/// A write's documents are sent in parts of about this many bytes.
const WRITE_BYTES: usize = 64 << 20;
/// A document's lexemes stop here (PostgreSQL refuses a `tsvector` over 1 MB): a very long
/// document is found by the words of its first few hundred pages.
const WORDS_BYTES: usize = 900_000;
/// Positions kept per lexeme (PostgreSQL keeps 256).
const POSITIONS_PER_LEXEME: usize = 255;
/// PostgreSQL's highest position; later ones count as this one.
const MAX_POSITION: u32 = 16_383;
/// `ts_rank_cd`'s weights for D, C, B, A: the embedded index's field boosts (metadata 0.5,
/// text 1, labels 1.5, name 2), halved.
const WEIGHTS: &str = "{0.25, 0.5, 0.75, 1.0}";
/// The share of a translated query's words a match needs (as the embedded index).
const TRANSLATED_SHARE: f32 = 0.6;
/// The words of a translation that count (C(8, 5) = 56 combinations at most).
const TRANSLATED_WORDS: usize = 8;
/// Above this many combinations of words, any of them will do (not reached with
/// [`TRANSLATED_WORDS`]).
const MAX_COMBINATIONS: usize = 64;
/// Below this many documents (by PostgreSQL's estimate) they are counted exactly.
pub const COUNTED_BELOW: u64 = 100_000;
/// Matches ranked per query at most. PostgreSQL ranks every row that matches, so a word in a
/// million documents would cost a million ranks; past this many, the best are picked from
/// the first this many found (in storage order, not the best of all: the price of ranking
/// without an index that orders by rank).
const RANKED_AT_MOST: usize = 5_000;

/// A field of the lexemes: its prefix, analyzer and `tsvector` weight.
struct Field {
    prefix: &'static str,
    analyzer: &'static str,
    weight: char,
}

/// The file name and paths.
const NAME: Field = Field {
    prefix: "n:",
    analyzer: NEUTRAL,
    weight: 'A',
};
const LABEL: Field = Field {
    prefix: "l:",
    analyzer: LABELS,
    weight: 'B',
};
/// OCR lines and document text, unstemmed.
const TEXT: Field = Field {
    prefix: "t:",
    analyzer: NEUTRAL,
    weight: 'C',
};
const META: Field = Field {
    prefix: "m:",
    analyzer: NEUTRAL,
    weight: 'D',
};
/// Text in other scripts, in Latin letters.
const TRANSLIT: Field = Field {
    prefix: "x:",
    analyzer: NEUTRAL,
    weight: 'D',
};
/// Text stemmed in a language: prefix `es:`, analyzer [`analysis::stemmed`].
const STEMMED_WEIGHT: char = 'C';

/// The fields a query word is looked up in, as (prefix, analyzer name): all but the
/// transliterations when `translit` is off, and the stemmed text only of the languages some
/// document is in (`present`): each alternative costs every matching row a check.
fn fields(translit: bool, present: &[String]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = [NAME, LABEL, TEXT, META]
        .into_iter()
        .chain(translit.then_some(TRANSLIT))
        .map(|f| (f.prefix.to_owned(), f.analyzer.to_owned()))
        .collect();
    for (code, _) in STEMMED
        .iter()
        .filter(|(c, _)| present.iter().any(|p| p == c))
    {
        out.push((format!("{code}:"), analysis::stemmed(code)));
    }
    out
}

/// The search index on a PostgreSQL server that every server and worker shares.
pub struct SharedIndex {
    db: Postgres,
    analyzers: TokenizerManager,
    ef_search: AtomicUsize,
    /// The connection that holds the update lock while this process updates, kept between
    /// updates (opened on first use, and again after a failure).
    lock: Mutex<Option<Client>>,
}

impl std::fmt::Debug for SharedIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedIndex").field("db", &self.db).finish()
    }
}

/// The lock connection is closed apart, as the pool's are ([`close_apart`]): the last owner
/// may be an async thread.
impl Drop for SharedIndex {
    fn drop(&mut self) {
        let lock = self
            .lock
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        close_apart(lock, "the search index's lock connection");
    }
}

/// The update lock, held: released when dropped. `pid` is the server process holding it,
/// which every write checks still does (a lock connection lost mid-update lets another
/// process take over: this one must then stop writing).
struct Held<'a> {
    slot: MutexGuard<'a, Option<Client>>,
    pid: i32,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let released = self.slot.as_mut().map(|c| {
            c.query_one("SELECT pg_advisory_unlock($1)", &[&UPDATE_LOCK])
                .is_ok()
        });
        if released != Some(true) {
            // A connection that failed is opened afresh next time (closing it frees the lock).
            close_apart(self.slot.take(), "a failed lock connection");
        }
    }
}

/// Where the index is in the feed.
struct State {
    format: i32,
    position: i64,
}

impl SharedIndex {
    /// Connects to the server at `url` and creates the index's tables when missing (and the
    /// `vector` extension: see `0001_init.sql`). An unreachable server or a missing pgvector is
    /// an error that says so.
    pub fn open(url: &str) -> Result<SharedIndex> {
        let db = Postgres::open(url, "search", "search_migrations", MIGRATIONS).map_err(|e| {
            let needs = match sql_state(&e) {
                Some(s) if *s == SqlState::UNDEFINED_FILE => {
                    "pgvector is not installed on the server (`scripts/setup.sh --services` \
                     builds it; see docs/DEPLOYMENT.md)"
                }
                Some(s) if *s == SqlState::INSUFFICIENT_PRIVILEGE => {
                    "creating the `vector` extension needs a superuser: run \
                     `CREATE EXTENSION vector` once in this database as one"
                }
                _ => return Error::Catalog(e),
            };
            Error::Index(format!("the shared search index: {needs}"))
        })?;
        let version: String = db.with_retry(|c| {
            Ok(c.query_one(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
                &[],
            )?
            .get(0))
        })?;
        let number = |part: Option<&str>| part.and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
        let mut parts = version.split('.');
        if (number(parts.next()), number(parts.next())) < (0, 8) {
            return Err(Error::Index(format!(
                "the shared search index needs pgvector 0.8 or newer (iterative scans for \
                 filtered searches); {} has {version}: `ALTER EXTENSION vector UPDATE`",
                db.describe()
            )));
        }
        let analyzers = TokenizerManager::default();
        analysis::register(&analyzers);
        Ok(SharedIndex {
            db,
            analyzers,
            ef_search: AtomicUsize::new(EF_SEARCH),
            lock: Mutex::new(None),
        })
    }

    /// Takes the update lock, or says another process (or thread) has it.
    fn hold(&self) -> Result<Held<'_>> {
        let busy = || Error::Busy(self.db.describe());
        let mut slot = match self.lock.try_lock() {
            Ok(slot) => slot,
            Err(std::sync::TryLockError::WouldBlock) => return Err(busy()),
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
        };
        if slot.as_ref().is_none_or(Client::is_closed) {
            let client = self
                .db
                .config()
                .connect(NoTls)
                .map_err(aperture_catalog::Error::from)?;
            *slot = Some(client);
        }
        let client = slot.as_mut().expect("connected above");
        let row = client
            .query_one(
                "SELECT pg_try_advisory_lock($1), pg_backend_pid()",
                &[&UPDATE_LOCK],
            )
            .map_err(aperture_catalog::Error::from);
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                close_apart(slot.take(), "a failed lock connection");
                return Err(e.into());
            }
        };
        if !row.get::<_, bool>(0) {
            return Err(busy());
        }
        Ok(Held {
            pid: row.get(1),
            slot,
        })
    }

    /// Sets HNSW's search breadth (`hnsw.ef_search`, 1 to 1000): recall against speed.
    pub fn set_expansion_search(&self, n: usize) {
        self.ef_search.store(n.clamp(1, 1000), Ordering::Relaxed);
    }

    fn state(&self) -> Result<Option<State>> {
        Ok(self.db.with_retry(|c| {
            Ok(c.query_opt(
                "SELECT format, position FROM search_state WHERE id = 1",
                &[],
            )?
            .map(|row| State {
                format: row.get(0),
                position: row.get(1),
            }))
        })?)
    }

    /// Whether the index has been built.
    pub fn is_built(&self) -> Result<bool> {
        Ok(self.state()?.is_some_and(|s| s.format == FORMAT))
    }

    /// The change-feed position the index reflects (0 before the first build).
    pub fn position(&self) -> Result<i64> {
        Ok(self.state()?.map_or(0, |s| s.position))
    }

    /// Documents in the index: counted while there are fewer than [`COUNTED_BELOW`] (by
    /// PostgreSQL's estimate), else the estimate: a count reads every row, and a status page
    /// asks every second.
    pub fn documents(&self) -> Result<u64> {
        Ok(self.db.with_retry(|c| {
            let estimate: f32 = c
                .query_one(
                    "SELECT reltuples FROM pg_class WHERE oid = 'search_documents'::regclass",
                    &[],
                )?
                .get(0);
            if estimate >= COUNTED_BELOW as f32 {
                return Ok(estimate as u64);
            }
            Ok(c.query_one("SELECT count(*) FROM search_documents", &[])?
                .get::<_, i64>(0) as u64)
        })?)
    }

    /// The languages some document's text is in or was translated into.
    pub fn languages(&self) -> Result<Vec<String>> {
        Ok(self.db.with_retry(|c| {
            Ok(
                c.query("SELECT code FROM search_languages ORDER BY code", &[])?
                    .iter()
                    .map(|r| r.get(0))
                    .collect(),
            )
        })?)
    }

    /// Each embedding space with its number (its table's) and dimension.
    fn spaces(&self) -> Result<Spaces> {
        Ok(self.db.with_retry(space_map)?)
    }

    /// Whether the index has vectors in `space`.
    pub(crate) fn has_space(&self, space: &str) -> Result<bool> {
        Ok(self.spaces()?.contains_key(space))
    }

    /// Each embedding space with the number of vectors in it.
    pub fn space_sizes(&self) -> Result<Vec<(String, u64)>> {
        let spaces = self.spaces()?;
        let mut out = Vec::new();
        for (name, (number, _)) in spaces {
            let n: i64 = self.db.with_retry(|c| {
                Ok(
                    c.query_one(&format!("SELECT count(*) FROM {}", table(number)), &[])?
                        .get(0),
                )
            })?;
            out.push((name, n as u64));
        }
        Ok(out)
    }

    /// A registered analyzer by name.
    pub(crate) fn analyzer(&self, name: &str) -> Option<TextAnalyzer> {
        self.analyzers.get(name)
    }

    /// Brings the index up to date with the catalog: builds it when it was never built (or
    /// when the feed moved past it), else applies the change feed. One process at a time: the
    /// others get [`Error::Busy`].
    pub fn update(&self, catalog: &dyn Catalog) -> Result<Update> {
        let held = self.hold()?;
        self.update_locked(catalog, &held, false)
    }

    /// Builds the index again from the catalog, in place: searches find fewer hits until it
    /// is done. [`Error::Busy`] while another process updates it.
    pub fn rebuild(&self, catalog: &dyn Catalog) -> Result<Update> {
        let held = self.hold()?;
        self.update_locked(catalog, &held, true)
    }

    /// Writes documents as an update writes the catalog's assets (`None`: the asset is not
    /// there), under the update lock: for loading an index without a catalog, as the
    /// benchmark does. With `build`, the index is emptied first and each space's HNSW index
    /// built once at the end, with that much memory (e.g. "4GB").
    pub fn load(
        &self,
        batches: impl IntoIterator<Item = Vec<(AssetId, Option<Indexed>)>>,
        build: Option<&str>,
    ) -> Result<()> {
        let held = self.hold()?;
        if build.is_some() {
            self.reset(0)?;
        }
        for docs in batches {
            self.write(&held, &docs, None)?;
        }
        if let Some(memory) = build {
            self.index_spaces(memory)?;
        }
        Ok(())
    }

    fn update_locked(&self, catalog: &dyn Catalog, held: &Held<'_>, force: bool) -> Result<Update> {
        let mut report = Update::default();
        let state = self.state()?;
        let built = !force && state.as_ref().is_some_and(|s| s.format == FORMAT);
        let mut position = state.as_ref().map_or(0, |s| s.position);
        if built && !catalog.changes(position, 1)?.is_empty() {
            // Said before reading: nothing this index has yet to apply is pruned from now on.
            catalog.ack_changes(CONSUMER, position)?;
        }
        let missed = built && catalog.pruned_through()? > position;
        if missed {
            tracing::warn!(
                position,
                "the change feed moved past the shared search index; rebuilding it"
            );
        }
        if !built || missed {
            position = catalog.last_change()?;
            catalog.ack_changes(CONSUMER, position)?;
            self.reset(position)?;
            report.built = true;
            for_every_asset(catalog, |ids| {
                self.apply(catalog, held, ids, None, &mut report)
            })?;
            self.index_spaces(BUILD_MEMORY)?;
        }
        loop {
            let changes = catalog.changes(position, FEED_PAGE)?;
            let Some(last) = changes.last() else { break };
            position = last.seq;
            let assets: BTreeSet<AssetId> = changes.iter().map(|c| c.asset).collect();
            let ids: Vec<AssetId> = assets.into_iter().collect();
            self.apply(catalog, held, &ids, Some(position), &mut report)?;
        }
        report.position = position;
        catalog.ack_changes(CONSUMER, position)?;
        Ok(report)
    }

    /// Makes the assets in the index look as the catalog says, in one transaction that also
    /// moves the feed position to `position` (when given).
    fn apply(
        &self,
        catalog: &dyn Catalog,
        held: &Held<'_>,
        ids: &[AssetId],
        position: Option<i64>,
        report: &mut Update,
    ) -> Result<()> {
        let mut docs = Vec::with_capacity(ids.len());
        for id in ids {
            let doc = match catalog.asset(*id) {
                Ok(asset) => Some(Indexed::new(
                    &asset,
                    &catalog.sources(*id)?,
                    &catalog.insights(*id)?,
                )),
                Err(aperture_catalog::Error::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            docs.push((*id, doc));
        }
        // Pages of big documents are written in parts (PostgreSQL takes at most 1 GB per
        // parameter); the last part moves the position.
        let mut parts: Vec<&[(AssetId, Option<Indexed>)]> = Vec::new();
        let (mut start, mut bytes) = (0, 0);
        for (i, (_, doc)) in docs.iter().enumerate() {
            let size = doc.as_ref().map_or(0, approximate_bytes);
            if i > start && bytes + size > WRITE_BYTES {
                parts.push(&docs[start..i]);
                (start, bytes) = (i, 0);
            }
            bytes += size;
        }
        parts.push(&docs[start..]);
        let last = parts.len() - 1;
        for (i, part) in parts.into_iter().enumerate() {
            self.write(held, part, if i == last { position } else { None })?;
        }
        for (_, doc) in &docs {
            match doc {
                Some(_) => report.indexed += 1,
                None => report.removed += 1,
            }
        }
        Ok(())
    }

    /// Makes each asset in the index look as its document says (`None`: not there), in one
    /// transaction that also moves the feed position to `position` (when given), if this
    /// process still holds the update lock. A space seen for the first time gets its table,
    /// and its HNSW index unless a build is under way (a build indexes each space once, at
    /// its end: [`SharedIndex::index_spaces`]).
    fn write(
        &self,
        held: &Held<'_>,
        docs: &[(AssetId, Option<Indexed>)],
        position: Option<i64>,
    ) -> Result<()> {
        let batch = Batch::new(self, docs);
        let lost = std::cell::Cell::new(false);
        let written = self.db.tx(|tx| {
            let holds: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks
                                    WHERE locktype = 'advisory' AND pid = $1 AND granted)",
                    &[&held.pid],
                )?
                .get(0);
            if !holds {
                lost.set(true);
                return Ok(());
            }
            let building: bool = tx
                .query_opt("SELECT format = 0 FROM search_state WHERE id = 1", &[])?
                .is_some_and(|r| r.get(0));
            let mut spaces = space_map(tx)?;
            tx.execute(
                "DELETE FROM search_documents WHERE asset = ANY($1)",
                &[&batch.ids],
            )?;
            for (number, _) in spaces.values() {
                tx.execute(
                    &format!("DELETE FROM {} WHERE asset = ANY($1)", table(*number)),
                    &[&batch.ids],
                )?;
            }
            batch.insert(tx, &mut spaces, !building)?;
            if let Some(position) = position {
                tx.execute(
                    "UPDATE search_state SET position = GREATEST(position, $1)",
                    &[&position],
                )?;
            }
            Ok(())
        });
        written?;
        if lost.get() {
            return Err(Error::Index(format!(
                "lost the update lock of the search index at {} (its connection failed); \
                 another process goes on with the update",
                self.db.describe()
            )));
        }
        Ok(())
    }

    /// Empties the index and marks it as being built: what a build starts with. Until
    /// [`SharedIndex::index_spaces`], new spaces get no HNSW index (one built at the end is
    /// many times faster than one grown row by row). Under the update lock.
    fn reset(&self, position: i64) -> Result<()> {
        Ok(self.db.tx(|tx| {
            let spaces: Vec<i32> = tx
                .query("SELECT number FROM search_spaces", &[])?
                .iter()
                .map(|r| r.get(0))
                .collect();
            for number in spaces {
                tx.batch_execute(&format!("DROP TABLE IF EXISTS {}", table(number)))?;
            }
            tx.batch_execute(
                "TRUNCATE search_documents, search_spaces, search_languages;
                 DELETE FROM search_state",
            )?;
            tx.execute(
                "INSERT INTO search_state (id, format, position) VALUES (1, 0, $1)",
                &[&position],
            )?;
            Ok(())
        })?)
    }

    /// Builds the HNSW index of every space that lacks one, with `memory` for each build
    /// (`maintenance_work_mem`, e.g. "4GB"; the server's parallel workers help), updates the
    /// planner's statistics, and marks the index built. Under the update lock.
    fn index_spaces(&self, memory: &str) -> Result<()> {
        for (name, (number, dims)) in self.spaces()? {
            if dims > HNSW_MAX_DIMS {
                continue;
            }
            let t = table(number);
            tracing::info!(space = name, "building the HNSW index");
            self.db.tx(|tx| {
                tx.execute(
                    "SELECT set_config('maintenance_work_mem', $1, true)",
                    &[&memory],
                )?;
                tx.batch_execute(&format!(
                    "CREATE INDEX IF NOT EXISTS {t}_hnsw ON {t}
                         USING hnsw (embedding vector_ip_ops) WITH ({HNSW_WITH});
                     ANALYZE {t}"
                ))?;
                Ok(())
            })?;
        }
        Ok(self.db.with_retry(|c| {
            c.batch_execute("ANALYZE search_documents")?;
            c.execute("UPDATE search_state SET format = $1", &[&FORMAT])?;
            Ok(())
        })?)
    }

    /// A document's words as a `tsvector` (its text form).
    fn words(&self, a: &Indexed) -> String {
        let mut words = Lexemes::default();
        let mut add = |prefix: &str, analyzer: &str, weight: char, text: &str| {
            if let Some(mut analyzer) = self.analyzer(analyzer) {
                words.add(prefix, &mut analyzer, weight, text);
            }
        };
        let mut put = |f: &Field, text: &str| add(f.prefix, f.analyzer, f.weight, text);
        put(&NAME, &a.name);
        for path in &a.paths {
            put(&NAME, path);
        }
        for label in &a.labels {
            put(&LABEL, &label.name);
        }
        for meta in &a.meta {
            put(&META, meta);
        }
        for passage in &a.passages {
            put(&TEXT, &passage.text);
        }
        for passage in &a.passages {
            if let Some(code) = passage
                .language
                .as_deref()
                .and_then(|l| STEMMED.iter().find(|(code, _)| *code == l))
                .map(|(code, _)| *code)
            {
                let prefix = format!("{code}:");
                add(
                    &prefix,
                    &analysis::stemmed(code),
                    STEMMED_WEIGHT,
                    &passage.text,
                );
            }
        }
        // Transliterations last: of the text, the least worth keeping when space runs out.
        for passage in &a.passages {
            if let Some(latin) = analysis::transliterated(&passage.text) {
                add(TRANSLIT.prefix, TRANSLIT.analyzer, TRANSLIT.weight, &latin);
            }
        }
        words.to_tsvector()
    }

    /// The best `limit` assets for the query's words within its filters, best first, with
    /// their `ts_rank_cd` scores; without words, the newest that pass the filters.
    pub fn text_search(&self, query: &Query, limit: usize) -> Result<Vec<(AssetId, f32)>> {
        let mut p = Params::default();
        let mut clauses = self.filter_sql(&query.filters, &mut p);
        let mut fields = self.field_analyzers(!query.no_translit)?;
        let sql = match words_query(query, &mut fields) {
            Some(words) => {
                let q = p.add(words);
                clauses.push(format!("words @@ {q}::TEXT::tsquery"));
                format!(
                    "SELECT asset, ts_rank_cd('{WEIGHTS}', words, {q}::TEXT::tsquery, 1)::REAL
                         AS score
                     FROM (SELECT asset, words FROM search_documents WHERE {}
                           LIMIT {RANKED_AT_MOST}) AS matched
                     ORDER BY score DESC, asset LIMIT {limit}",
                    clauses.join(" AND ")
                )
            }
            None => {
                if clauses.is_empty() {
                    return Ok(Vec::new());
                }
                for excluded in exclusions(query, &mut fields) {
                    let q = p.add(excluded);
                    clauses.push(format!("NOT words @@ {q}::TEXT::tsquery"));
                }
                format!(
                    "SELECT asset, 0::REAL FROM search_documents WHERE {}
                     ORDER BY date DESC, asset LIMIT {limit}",
                    clauses.join(" AND ")
                )
            }
        };
        let rows = self
            .db
            .with_retry(|c| Ok(c.query(sql.as_str(), &p.refs())?))?;
        rows.iter()
            .map(|r| Ok((asset_id(r.get(0))?, r.get(1))))
            .collect()
    }

    /// Which of `candidates` pass the filters and the exclusions.
    pub(crate) fn passing(
        &self,
        query: &Query,
        candidates: &[AssetId],
    ) -> Result<HashSet<AssetId>> {
        if candidates.is_empty() {
            return Ok(HashSet::new());
        }
        let mut p = Params::default();
        let ids: Vec<Vec<u8>> = candidates.iter().map(|id| id.as_bytes().to_vec()).collect();
        let mut clauses = vec![format!("asset = ANY({})", p.add(ids))];
        clauses.extend(self.filter_sql(&query.filters, &mut p));
        let mut fields = match query.terms.iter().any(|t| t.excluded) {
            true => self.field_analyzers(!query.no_translit)?,
            false => Vec::new(),
        };
        for excluded in exclusions(query, &mut fields) {
            let q = p.add(excluded);
            clauses.push(format!("NOT words @@ {q}::TEXT::tsquery"));
        }
        let sql = format!(
            "SELECT asset FROM search_documents WHERE {}",
            clauses.join(" AND ")
        );
        let rows = self
            .db
            .with_retry(|c| Ok(c.query(sql.as_str(), &p.refs())?))?;
        rows.iter().map(|r| asset_id(r.get(0))).collect()
    }

    /// What the index holds to explain hits on `ids`.
    pub(crate) fn explained(&self, ids: &[AssetId]) -> Result<HashMap<AssetId, Explained>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let keys: Vec<Vec<u8>> = ids.iter().map(|id| id.as_bytes().to_vec()).collect();
        let rows = self.db.with_retry(|c| {
            Ok(c.query(
                "SELECT asset, explained FROM search_documents WHERE asset = ANY($1)",
                &[&keys],
            )?)
        })?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in &rows {
            if let Ok(explained) = serde_json::from_str::<Explained>(r.get(1)) {
                out.insert(asset_id(r.get(0))?, explained);
            }
        }
        Ok(out)
    }

    /// The `k` vectors of `space` nearest to `vector` that pass `filter`, nearest first;
    /// `None` when the index has no such space. HNSW with iterative scans: a filter that
    /// passes few vectors makes the walk go on until `k` are found (or 20,000 were looked at).
    pub fn nearest(
        &self,
        space: &str,
        vector: &[f32],
        k: usize,
        filter: &VectorFilter,
    ) -> Result<Option<Vec<Neighbour>>> {
        let Some((number, dims)) = self.spaces()?.get(space).copied() else {
            return Ok(None);
        };
        if vector.len() != dims {
            return Err(Error::Index(format!(
                "a vector of {} numbers for the space {space}, whose vectors have {dims}",
                vector.len()
            )));
        }
        let mut p = Params::default();
        let v = p.add(Vector::from(normalized(vector)));
        let mut clauses = vec!["TRUE".to_owned()];
        clauses.extend(common_filters(
            &mut p,
            &filter.collections,
            &filter.kinds,
            filter.after,
            filter.before,
        ));
        let sql = format!(
            "SELECT asset, ordinal, page, kind, date, (embedding <#> {v})::REAL FROM {}
             WHERE {} ORDER BY embedding <#> {v} LIMIT {k}",
            table(number),
            clauses.join(" AND ")
        );
        let ef = self.ef_search.load(Ordering::Relaxed);
        let rows = self.db.tx(|tx| {
            tx.batch_execute(&format!(
                "SET LOCAL hnsw.ef_search = {ef}; SET LOCAL hnsw.iterative_scan = relaxed_order"
            ))?;
            Ok(tx.query(sql.as_str(), &p.refs())?)
        });
        let rows = match rows {
            // A rebuild dropped the space's table since it was looked up: nothing there yet.
            Err(e) if sql_state(&e) == Some(&SqlState::UNDEFINED_TABLE) => return Ok(None),
            other => other?,
        };
        let mut out = rows
            .iter()
            .map(|r| {
                let kind: &str = r.get(3);
                Ok(Neighbour {
                    key: 0,
                    entry: Entry {
                        asset: asset_id(r.get(0))?,
                        collection: 0,
                        kind: kind.parse().unwrap_or(MediaKind::Other),
                        date: r.get(4),
                        page: r.get::<_, i32>(2) as u32,
                        ordinal: r.get::<_, i32>(1) as u32,
                    },
                    // Unit vectors: the negative inner product is the cosine similarity.
                    similarity: -r.get::<_, f32>(5),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // Iterative scans may return neighbours slightly out of order.
        out.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        Ok(Some(out))
    }

    /// The asset's vectors in each space (or in `only` that one), by ordinal.
    pub(crate) fn vectors_of(&self, asset: AssetId, only: Option<&str>) -> Result<AssetVectors> {
        let key: &[u8] = asset.as_bytes();
        let mut out = BTreeMap::new();
        let spaces = self.spaces()?;
        for (name, (number, _)) in spaces
            .into_iter()
            .filter(|(name, _)| only.is_none_or(|o| o == name))
        {
            let rows = self.db.with_retry(|c| {
                Ok(c.query(
                    &format!(
                        "SELECT ordinal, embedding FROM {} WHERE asset = $1 ORDER BY ordinal",
                        table(number)
                    ),
                    &[&key],
                )?)
            })?;
            let vectors: Vec<(u32, Vec<f32>)> = rows
                .iter()
                .map(|r| (r.get::<_, i32>(0) as u32, r.get::<_, Vector>(1).to_vec()))
                .collect();
            if !vectors.is_empty() {
                out.insert(name, vectors);
            }
        }
        Ok(out)
    }

    fn field_analyzers(&self, translit: bool) -> Result<Vec<(String, TextAnalyzer)>> {
        let present = self.languages()?;
        Ok(fields(translit, &present)
            .into_iter()
            .filter_map(|(prefix, analyzer)| Some((prefix, self.analyzer(&analyzer)?)))
            .collect())
    }

    /// The filters as SQL conditions on `search_documents`.
    fn filter_sql(&self, f: &Filters, p: &mut Params) -> Vec<String> {
        let mut out = common_filters(
            p,
            &f.collections,
            &f.kinds,
            f.after.map(|t| t.0),
            f.before.map(|t| t.0),
        );
        if !f.langs.is_empty() {
            out.push(format!("langs && {}", p.add(f.langs.clone())));
        }
        if !f.has.is_empty() {
            let has: Vec<String> = f.has.iter().map(|h| h.as_str().to_owned()).collect();
            out.push(format!("has && {}", p.add(has)));
        }
        if !f.labels.is_empty() {
            let labels = self.analyzer(LABELS).map(|mut analyzer| {
                let any: Vec<String> = f
                    .labels
                    .iter()
                    .filter_map(|l| phrase(LABEL.prefix, &analysis::terms(&mut analyzer, l)))
                    .collect();
                any.join(" | ")
            });
            match labels {
                Some(any) if !any.is_empty() => {
                    out.push(format!("words @@ {}::TEXT::tsquery", p.add(any)));
                }
                // A label of no words matches nothing.
                _ => out.push("FALSE".to_owned()),
            }
        }
        out
    }
}

/// The query's words as one `tsquery`, looked up in `fields`: every typed word somewhere, or
/// most of the words of one translation; none of the excluded ones. `None` without words.
fn words_query(query: &Query, fields: &mut [(String, TextAnalyzer)]) -> Option<String> {
    let typed: Vec<String> = query
        .terms
        .iter()
        .filter(|t| !t.excluded)
        .filter_map(|t| anywhere(fields, &t.text))
        .collect();
    if typed.is_empty() {
        return None;
    }
    let mut ways = vec![all_of(&typed)];
    for translated in &query.translations {
        // Its first words only, so that "most of them" stays a handful of combinations.
        let words: Vec<String> = translated
            .text
            .split_whitespace()
            .filter_map(|t| anywhere(fields, t))
            .take(TRANSLATED_WORDS)
            .collect();
        if !words.is_empty() {
            let needed = (words.len() as f32 * TRANSLATED_SHARE).ceil() as usize;
            ways.push(at_least(&words, needed));
        }
    }
    let mut q = format!("({})", ways.join(" | "));
    for excluded in exclusions(query, fields) {
        q.push_str(&format!(" & !{excluded}"));
    }
    Some(q)
}

/// The excluded words, each as a `tsquery` that finds it in any of `fields`.
fn exclusions(query: &Query, fields: &mut [(String, TextAnalyzer)]) -> Vec<String> {
    query
        .terms
        .iter()
        .filter(|t| t.excluded)
        .filter_map(|t| anywhere(fields, &t.text))
        .collect()
}

/// Documents and vectors to write, as columns for `unnest` (one statement per table, not
/// one per row), made before the transaction (which may be retried).
struct Batch {
    /// Every asset written or removed.
    ids: Vec<Vec<u8>>,
    docs: Documents,
    /// Space → its vectors, with the space's dimension.
    vectors: BTreeMap<String, (usize, Vectors)>,
    languages: BTreeSet<String>,
}

#[derive(Default)]
struct Documents {
    asset: Vec<Vec<u8>>,
    collection: Vec<String>,
    kind: Vec<String>,
    date: Vec<i64>,
    /// Space-separated (arrays of arrays do not `unnest` by row).
    langs: Vec<String>,
    translated: Vec<String>,
    has: Vec<String>,
    words: Vec<String>,
    explained: Vec<String>,
}

#[derive(Default)]
struct Vectors {
    asset: Vec<Vec<u8>>,
    ordinal: Vec<i32>,
    page: Vec<i32>,
    collection: Vec<String>,
    kind: Vec<String>,
    date: Vec<i64>,
    embedding: Vec<Vector>,
}

impl Batch {
    fn new(index: &SharedIndex, docs: &[(AssetId, Option<Indexed>)]) -> Batch {
        let mut batch = Batch {
            ids: docs.iter().map(|(id, _)| id.as_bytes().to_vec()).collect(),
            docs: Documents::default(),
            vectors: BTreeMap::new(),
            languages: BTreeSet::new(),
        };
        for a in docs.iter().filter_map(|(_, doc)| doc.as_ref()) {
            let key = a.asset.as_bytes().to_vec();
            let d = &mut batch.docs;
            d.asset.push(key.clone());
            d.collection.push(a.collection.clone());
            d.kind.push(a.kind.as_str().to_owned());
            d.date.push(a.date.0);
            let joined = |set: &mut dyn Iterator<Item = &str>| set.collect::<Vec<_>>().join(" ");
            d.langs
                .push(joined(&mut a.languages.iter().map(String::as_str)));
            d.translated
                .push(joined(&mut a.translated.iter().map(String::as_str)));
            d.has.push(joined(&mut a.has.iter().map(|h| h.as_str())));
            d.words.push(index.words(a));
            d.explained
                .push(serde_json::to_string(&a.explained()).expect("explanations serialise"));
            // Text translated into a language is stemmed in it too: its words are searched.
            batch.languages.extend(a.languages.iter().cloned());
            batch.languages.extend(a.translated.iter().cloned());
            let mut ordinals: BTreeMap<&str, i32> = BTreeMap::new();
            for v in &a.vectors {
                let ordinal = ordinals.entry(&v.space).or_default();
                let this = *ordinal;
                *ordinal += 1;
                let (dims, rows) = batch
                    .vectors
                    .entry(v.space.clone())
                    .or_insert_with(|| (v.vector.len(), Vectors::default()));
                if v.vector.len() != *dims {
                    tracing::warn!(asset = %a.asset, space = v.space, "a vector of the wrong size, skipped");
                    continue;
                }
                rows.asset.push(key.clone());
                rows.ordinal.push(this);
                rows.page.push(match v.place {
                    Place::Page { page, .. } => page as i32,
                    _ => 0,
                });
                rows.collection.push(a.collection.clone());
                rows.kind.push(a.kind.as_str().to_owned());
                rows.date.push(a.date.0);
                rows.embedding.push(Vector::from(normalized(&v.vector)));
            }
        }
        batch
    }

    /// Writes the batch, making the table of a space seen for the first time (with its HNSW
    /// index when `indexed`).
    fn insert(
        &self,
        tx: &mut Transaction<'_>,
        spaces: &mut BTreeMap<String, (i32, usize)>,
        indexed: bool,
    ) -> aperture_catalog::Result<()> {
        let d = &self.docs;
        if !d.asset.is_empty() {
            tx.execute(
                "INSERT INTO search_documents
                     (asset, collection, kind, date, langs, translated, has, words, explained)
                 SELECT asset, collection, kind, date, string_to_array(langs, ' '),
                        string_to_array(translated, ' '), string_to_array(has, ' '),
                        words::tsvector, explained
                 FROM unnest($1::BYTEA[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[],
                             $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[])
                      AS d (asset, collection, kind, date, langs, translated, has, words,
                            explained)",
                &[
                    &d.asset,
                    &d.collection,
                    &d.kind,
                    &d.date,
                    &d.langs,
                    &d.translated,
                    &d.has,
                    &d.words,
                    &d.explained,
                ],
            )?;
        }
        if !self.languages.is_empty() {
            let codes: Vec<&str> = self.languages.iter().map(String::as_str).collect();
            tx.execute(
                "INSERT INTO search_languages (code) SELECT unnest($1::TEXT[])
                 ON CONFLICT DO NOTHING",
                &[&codes],
            )?;
        }
        for (space, (dims, v)) in &self.vectors {
            let number = match spaces.get(space) {
                Some((number, known)) if known == dims => *number,
                Some((_, known)) => {
                    tracing::warn!(
                        space,
                        dims,
                        known,
                        "vectors of the wrong size for their space, skipped"
                    );
                    continue;
                }
                None => {
                    let number = create_space(tx, space, *dims, indexed)?;
                    spaces.insert(space.clone(), (number, *dims));
                    number
                }
            };
            tx.execute(
                &format!(
                    "INSERT INTO {} (asset, ordinal, page, collection, kind, date, embedding)
                     SELECT * FROM unnest($1::BYTEA[], $2::INTEGER[], $3::INTEGER[],
                                          $4::TEXT[], $5::TEXT[], $6::BIGINT[], $7::VECTOR[])",
                    table(number)
                ),
                &[
                    &v.asset,
                    &v.ordinal,
                    &v.page,
                    &v.collection,
                    &v.kind,
                    &v.date,
                    &v.embedding,
                ],
            )?;
        }
        Ok(())
    }
}

/// Registers a space and makes its table (and its HNSW index when `indexed`); returns its
/// number.
fn create_space(
    tx: &mut Transaction<'_>,
    space: &str,
    dims: usize,
    indexed: bool,
) -> aperture_catalog::Result<i32> {
    let number: i32 = tx
        .query_one(
            "INSERT INTO search_spaces (name, dims) VALUES ($1, $2) RETURNING number",
            &[&space, &(dims as i32)],
        )?
        .get(0);
    let t = table(number);
    tx.batch_execute(&format!(
        "CREATE TABLE {t} (
             asset BYTEA NOT NULL, ordinal INTEGER NOT NULL, page INTEGER NOT NULL,
             collection TEXT NOT NULL, kind TEXT NOT NULL, date BIGINT NOT NULL,
             embedding VECTOR({dims}) NOT NULL, PRIMARY KEY (asset, ordinal))"
    ))?;
    if dims > HNSW_MAX_DIMS {
        tracing::warn!(
            space,
            dims,
            "more dimensions than pgvector's HNSW takes: this space is searched exactly"
        );
    } else if indexed {
        tx.batch_execute(&format!(
            "CREATE INDEX {t}_hnsw ON {t} USING hnsw (embedding vector_ip_ops) WITH ({HNSW_WITH})"
        ))?;
    }
    Ok(number)
}

/// The filters documents and vectors share (their tables have the same columns for them).
fn common_filters(
    p: &mut Params,
    collections: &[String],
    kinds: &[MediaKind],
    after: Option<i64>,
    before: Option<i64>,
) -> Vec<String> {
    let mut out = Vec::new();
    if !kinds.is_empty() {
        let kinds: Vec<String> = kinds.iter().map(|k| k.as_str().to_owned()).collect();
        out.push(format!("kind = ANY({})", p.add(kinds)));
    }
    if !collections.is_empty() {
        out.push(format!("collection = ANY({})", p.add(collections.to_vec())));
    }
    if let Some(after) = after {
        out.push(format!("date >= {}", p.add(after)));
    }
    if let Some(before) = before {
        out.push(format!("date < {}", p.add(before)));
    }
    out
}

/// Space name → (number, dimension).
type Spaces = BTreeMap<String, (i32, usize)>;

fn space_map(c: &mut impl GenericClient) -> aperture_catalog::Result<Spaces> {
    Ok(
        c.query("SELECT name, number, dims FROM search_spaces", &[])?
            .iter()
            .map(|r| (r.get(0), (r.get(1), r.get::<_, i32>(2) as usize)))
            .collect(),
    )
}

/// The table of space `number`.
fn table(number: i32) -> String {
    format!("search_vectors_{number}")
}

fn asset_id(bytes: &[u8]) -> Result<AssetId> {
    let bytes: [u8; 16] = bytes
        .try_into()
        .map_err(|_| Error::Index(format!("an asset id of {} bytes", bytes.len())))?;
    Ok(AssetId::from_bytes(bytes))
}

/// The SQLSTATE of a PostgreSQL error, if that is what `e` is.
fn sql_state(e: &aperture_catalog::Error) -> Option<&SqlState> {
    match e {
        aperture_catalog::Error::Backend { source, .. } => {
            source.downcast_ref::<postgres::Error>()?.code()
        }
        _ => None,
    }
}

/// About what a document weighs in a write's parameters.
fn approximate_bytes(a: &Indexed) -> usize {
    let text: usize = a.passages.iter().map(|p| p.text.len()).sum();
    let vectors: usize = a.vectors.iter().map(|v| v.vector.len() * 4).sum();
    // The lexemes (about the text again, stemmed and unstemmed) and the explanation (the
    // text once more, as JSON).
    3 * text + vectors + 4096
}

/// Query parameters, numbered as they are added.
#[derive(Default)]
struct Params {
    values: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Params {
    /// Adds a value and returns its placeholder (`$3`).
    fn add<T: ToSql + Sync + Send + 'static>(&mut self, value: T) -> String {
        self.values.push(Box::new(value));
        format!("${}", self.values.len())
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values
            .iter()
            .map(|v| v.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// A lexeme quoted for a `tsvector` or `tsquery` (quotes and backslashes doubled).
fn quoted(lexeme: &str) -> String {
    format!("'{}'", lexeme.replace('\\', "\\\\").replace('\'', "''"))
}

/// One term, or the terms as a phrase, in the field of `prefix`.
fn phrase(prefix: &str, terms: &[String]) -> Option<String> {
    match terms {
        [] => None,
        [one] => Some(quoted(&format!("{prefix}{one}"))),
        many => Some(format!(
            "({})",
            many.iter()
                .map(|t| quoted(&format!("{prefix}{t}")))
                .collect::<Vec<_>>()
                .join(" <-> ")
        )),
    }
}

/// The text (a word, or words that must be adjacent) in any of the fields; `None` when no
/// analyzer keeps anything of it (punctuation).
fn anywhere(fields: &mut [(String, TextAnalyzer)], text: &str) -> Option<String> {
    let alternatives: BTreeSet<String> = fields
        .iter_mut()
        .filter_map(|(prefix, analyzer)| phrase(prefix, &analysis::terms(analyzer, text)))
        .collect();
    (!alternatives.is_empty()).then(|| {
        format!(
            "({})",
            alternatives.into_iter().collect::<Vec<_>>().join(" | ")
        )
    })
}

fn all_of(parts: &[String]) -> String {
    format!("({})", parts.join(" & "))
}

/// At least `needed` of `parts`: every combination of that many while they are few, else
/// any one.
fn at_least(parts: &[String], needed: usize) -> String {
    let needed = needed.clamp(1, parts.len());
    let mut combinations = Vec::new();
    let mut pick: Vec<usize> = (0..needed).collect();
    loop {
        combinations.push(all_of(
            &pick.iter().map(|i| parts[*i].clone()).collect::<Vec<_>>(),
        ));
        if combinations.len() > MAX_COMBINATIONS {
            return format!("({})", parts.join(" | "));
        }
        // The next combination in lexicographic order.
        let Some(i) = (0..needed)
            .rev()
            .find(|i| pick[*i] < parts.len() - needed + i)
        else {
            break;
        };
        pick[i] += 1;
        for j in i + 1..needed {
            pick[j] = pick[j - 1] + 1;
        }
    }
    format!("({})", combinations.join(" | "))
}

/// A document's lexemes with their positions and weights, as a `tsvector` is written.
#[derive(Default)]
struct Lexemes {
    /// Lexeme → (position, weight).
    positions: BTreeMap<String, Vec<(u32, char)>>,
    /// The next position per field prefix.
    next: HashMap<String, u32>,
    /// About what PostgreSQL will store.
    bytes: usize,
}

impl Lexemes {
    /// Adds the terms `analyzer` makes of `text`, after what the field already has (with a
    /// gap, so no phrase spans two values).
    fn add(&mut self, prefix: &str, analyzer: &mut TextAnalyzer, weight: char, text: &str) {
        let next = self.next.entry(prefix.to_owned()).or_insert(1);
        for term in analysis::terms(analyzer, text) {
            let position = (*next).min(MAX_POSITION);
            *next += 1;
            let lexeme = format!("{prefix}{term}");
            let cost = match self.positions.get(&lexeme) {
                Some(p) if p.len() >= POSITIONS_PER_LEXEME => continue,
                Some(_) => 2,
                None => lexeme.len() + 6,
            };
            if self.bytes + cost > WORDS_BYTES {
                return;
            }
            let at = self.positions.entry(lexeme).or_default();
            if at.last().is_some_and(|(p, _)| *p == position) {
                continue;
            }
            at.push((position, weight));
            self.bytes += cost;
        }
        *next += 1;
    }

    fn to_tsvector(&self) -> String {
        let mut out = String::with_capacity(self.bytes * 2);
        for (lexeme, at) in &self.positions {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&quoted(lexeme));
            out.push(':');
            for (i, (position, weight)) in at.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&position.to_string());
                out.push(*weight);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_of_words() {
        let parts: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(at_least(&parts, 2), "((a & b) | (a & c) | (b & c))");
        assert_eq!(at_least(&parts, 3), "((a & b & c))");
        assert_eq!(at_least(&parts, 1), "((a) | (b) | (c))");
        let many: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        assert!(!at_least(&many, 12).contains('&'), "too many: any one");
    }

    #[test]
    fn lexemes_are_quoted_positioned_and_bounded() {
        let mut analyzer = analysis::neutral();
        let mut words = Lexemes::default();
        words.add("t:", &mut analyzer, 'C', "It's a back\\slash");
        words.add("t:", &mut analyzer, 'C', "it");
        let v = words.to_tsvector();
        assert!(v.contains("'t:it':1C,7C"), "a gap between values: {v}");
        assert!(v.contains("'t:back':4C"), "{v}");
        assert_eq!(quoted(r"it's a\b"), r"'it''s a\\b'");
        let mut huge = Lexemes::default();
        let text: String = (0..200_000).map(|i| format!("w{i} ")).collect();
        huge.add("t:", &mut analyzer, 'C', &text);
        assert!(
            huge.bytes <= WORDS_BYTES,
            "PostgreSQL takes it: see tests/index.rs"
        );
    }

    #[test]
    fn phrases_and_fields() {
        let mut fields: Vec<(String, TextAnalyzer)> = vec![
            ("n:".into(), analysis::neutral()),
            ("t:".into(), analysis::neutral()),
        ];
        assert_eq!(
            anywhere(&mut fields, "no parking").unwrap(),
            "(('n:no' <-> 'n:parking') | ('t:no' <-> 't:parking'))"
        );
        assert_eq!(anywhere(&mut fields, "—"), None);
    }
}
