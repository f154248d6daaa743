//! The search index against a real (SQLite) catalog: following the change feed, filters,
//! erasure, crashes between the index's writes, one updater at a time, and rebuilds. What
//! searching does is tested on both engines: the embedded index and the shared one on
//! PostgreSQL (when `APERTURE_TEST_POSTGRES` names a server with pgvector).
//! The insights are written by the test (no models): the plumbing, not the quality, is
//! under test here; `aperture`'s tests run the real models.

use std::path::Path;

use aperture_catalog::conformance::{fresh_database, shared_server};
use aperture_catalog::{Catalog, NewAsset, NewSource, Recorded, SqliteCatalog};
use aperture_core::{
    AssetId, ContentHash, Insight, InsightValue, MediaKind, MediaMetadata, Place, Rect, UnixMillis,
    encode_vector,
};
use aperture_search::{Error, QueryEncoder, SearchIndex, SearchOptions, parse};

fn record(catalog: &SqliteCatalog, collection: &str, name: &str, kind: MediaKind) -> AssetId {
    let c = catalog.ensure_collection(collection).unwrap().id;
    let path = format!("/in/{collection}/{name}");
    let out = catalog
        .record(&[NewAsset {
            collection: c,
            hash: ContentHash::of(path.as_bytes()),
            size: 1,
            kind,
            mime: "application/octet-stream".into(),
            metadata: MediaMetadata::default(),
            source: NewSource {
                path_bytes: path.as_bytes().to_vec(),
                path: path.clone(),
                name: name.into(),
                file_size: 1,
                modified_ns: None,
            },
            generation_seen: 0,
            jobs: Vec::new(),
        }])
        .unwrap();
    match out[0] {
        Recorded::Created(id) => id,
        other => panic!("{other:?}"),
    }
}

/// An insight of `kind` with the fields of `value`; the fields the test does not care about
/// get plain defaults.
fn insight(asset: AssetId, kind: &str, value: serde_json::Value, lang: Option<&str>) -> Insight {
    let mut full = match kind {
        "label" => serde_json::json!({"class": 0, "rank": 1, "taxonomy": "imagenet-1k"}),
        "ocr_line" => {
            serde_json::json!({"quad": [[0, 0], [1, 0], [1, 1], [0, 1]], "engine": "test"})
        }
        "text" => serde_json::json!({"chars": 0}),
        _ => serde_json::json!({}),
    };
    for (k, v) in value.as_object().unwrap() {
        full[k] = v.clone();
    }
    Insight {
        asset,
        analyzer: kind.into(),
        analyzer_version: "1".into(),
        model: None,
        model_version: None,
        value: InsightValue::from_parts(kind, full).unwrap(),
        confidence: Some(0.9),
        language: lang.map(str::to_owned),
        place: Place::Whole,
        created_at: UnixMillis::now(),
    }
}

fn vector(asset: AssetId, space: &str, v: &[f32]) -> Insight {
    insight(
        asset,
        "image_features",
        serde_json::json!({"space": space, "dims": v.len(), "vector": encode_vector(v)}),
        None,
    )
}

/// A small lake: photos with labels and OCR, documents in Spanish, Russian and Chinese.
struct Lake {
    catalog: SqliteCatalog,
    cat: AssetId,
    sign: AssetId,
    spanish: AssetId,
    russian: AssetId,
    chinese: AssetId,
}

fn lake() -> Lake {
    let catalog = SqliteCatalog::open_in_memory().unwrap();
    let cat = record(&catalog, "photos", "IMG_0001.jpg", MediaKind::Image);
    let sign = record(&catalog, "photos", "IMG_0002.jpg", MediaKind::Image);
    let spanish = record(&catalog, "press", "nota.txt", MediaKind::Document);
    let russian = record(&catalog, "press", "zametka.txt", MediaKind::Document);
    let chinese = record(&catalog, "archive", "tongzhi.txt", MediaKind::Document);
    let mut ocr = insight(
        sign,
        "ocr_line",
        serde_json::json!({"text": "NO PARKING"}),
        Some("en"),
    );
    ocr.place = Place::Region {
        rect: Rect {
            x: 0.1,
            y: 0.2,
            w: 0.5,
            h: 0.1,
        },
    };
    catalog
        .add_insights(&[
            insight(
                cat,
                "label",
                serde_json::json!({"name": "tabby, tabby cat"}),
                None,
            ),
            vector(cat, "img", &[1.0, 0.0, 0.0]),
            ocr,
            vector(sign, "img", &[0.0, 1.0, 0.0]),
            insight(
                spanish,
                "text",
                serde_json::json!({"text": "Las estaciones de tren cierran por la huelga."}),
                Some("es"),
            ),
            insight(
                russian,
                "text",
                serde_json::json!({"text": "Поезда отменены из-за забастовки."}),
                Some("ru"),
            ),
            insight(
                chinese,
                "text",
                serde_json::json!({"text": "今天北京的火车站关闭了。"}),
                Some("zh"),
            ),
        ])
        .unwrap();
    Lake {
        catalog,
        cat,
        sign,
        spanish,
        russian,
        chinese,
    }
}

/// An empty index of each engine: the embedded one (with the folder it lives in) and, when a
/// test server is given, the shared one on a database of its own.
fn engines() -> Vec<(&'static str, SearchIndex, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let mut out = vec![(
        "embedded",
        SearchIndex::open(dir.path()).unwrap(),
        Some(dir),
    )];
    if let Some(url) = shared_url() {
        out.push(("shared", SearchIndex::open_shared(&url).unwrap(), None));
    }
    out
}

/// A database of its own on the test server for a shared index (`None`: skipped).
fn shared_url() -> Option<String> {
    Some(fresh_database(&shared_server()?, "search"))
}

fn found(index: &SearchIndex, catalog: &dyn Catalog, query: &str) -> Vec<AssetId> {
    let query = parse(query).unwrap();
    index
        .search(catalog, &query, &[], &SearchOptions::default())
        .unwrap()
        .into_iter()
        .map(|h| h.asset.id)
        .collect()
}

#[test]
fn words_filters_and_languages() {
    for (engine, mut index, _dir) in engines() {
        eprintln!("engine: {engine}");
        words_filters_and_languages_on(&mut index);
    }
}

fn words_filters_and_languages_on(index: &mut SearchIndex) {
    let lake = lake();
    let built = index.update(&lake.catalog).unwrap();
    assert!(built.built);
    assert_eq!(built.indexed, 5);
    let c = &lake.catalog;

    assert_eq!(found(index, c, "cat"), [lake.cat], "a label word");
    assert_eq!(found(index, c, "cats"), [lake.cat], "labels are stemmed");
    assert_eq!(found(index, c, "parking"), [lake.sign], "an OCR word");
    assert_eq!(found(index, c, "\"no parking\""), [lake.sign]);
    assert!(
        found(index, c, "\"parking no\"").is_empty(),
        "a phrase keeps its order"
    );
    assert_eq!(
        found(index, c, "estación"),
        [lake.spanish],
        "Spanish stemming"
    );
    assert_eq!(found(index, c, "поезд"), [lake.russian], "Russian stemming");
    assert_eq!(
        found(index, c, "北京"),
        [lake.chinese],
        "Chinese by character pairs"
    );
    assert_eq!(found(index, c, "火车站"), [lake.chinese]);
    assert!(
        found(index, c, "京火").is_empty(),
        "pairs that do not occur"
    );
    assert_eq!(found(index, c, "IMG_0002"), [lake.sign], "file names");

    assert_eq!(found(index, c, "kind:document").len(), 3);
    assert_eq!(found(index, c, "collection:press").len(), 2);
    assert_eq!(found(index, c, "lang:ru"), [lake.russian]);
    assert_eq!(found(index, c, "label:cat"), [lake.cat]);
    assert_eq!(found(index, c, "has:ocr"), [lake.sign]);
    assert_eq!(found(index, c, "has:text").len(), 4);
    assert!(found(index, c, "cat kind:document").is_empty());
    assert!(found(index, c, "kind:image after:2000 before:2001").is_empty());
    assert_eq!(
        found(index, c, "kind:image -parking"),
        [lake.cat],
        "exclusions with filters alone"
    );
    assert_eq!(found(index, c, "img -parking"), [lake.cat], "exclusions");

    // Why: the OCR line, with its box.
    let hits = index
        .search(
            c,
            &parse("parking").unwrap(),
            &[],
            &SearchOptions::default(),
        )
        .unwrap();
    let json = serde_json::to_value(&hits[0].reasons).unwrap();
    assert_eq!(json[0]["field"], "ocr");
    assert_eq!(json[0]["text"], "NO PARKING");
    assert_eq!(
        json[0]["highlights"][0],
        serde_json::json!({"start": 3, "end": 10})
    );
    assert_eq!(json[0]["place"]["type"], "region");
}

/// A query encoder that maps words to fixed directions: enough to test the plumbing of
/// semantic and hybrid search without a model.
struct Directions;

impl QueryEncoder for Directions {
    fn space(&self) -> &str {
        "img"
    }

    fn encode(&self, text: &str) -> Result<Vec<f32>, String> {
        match text {
            "kitty" => Ok(vec![0.9, 0.1, 0.0]),
            "road sign" => Ok(vec![0.1, 0.9, 0.0]),
            _ => Err(format!("no direction for {text:?}")),
        }
    }
}

#[test]
fn semantic_and_similar_search() {
    for (engine, mut index, _dir) in engines() {
        eprintln!("engine: {engine}");
        semantic_and_similar_search_on(&mut index);
    }
}

fn semantic_and_similar_search_on(index: &mut SearchIndex) {
    let lake = lake();
    index.update(&lake.catalog).unwrap();
    let c = &lake.catalog;
    let search = |q: &str| {
        index
            .search(
                c,
                &parse(q).unwrap(),
                &[&Directions],
                &SearchOptions::default(),
            )
            .unwrap()
    };
    let hits = search("kitty");
    assert_eq!(
        hits[0].asset.id, lake.cat,
        "no word matches; the meaning does"
    );
    assert!(matches!(
        hits[0].reasons[0],
        aperture_search::Reason::Meaning { .. }
    ));
    assert_eq!(search("road sign")[0].asset.id, lake.sign);
    assert!(
        search("kitty kind:document").is_empty(),
        "filters apply to vectors"
    );
    assert!(
        search("kitty lang:ru").is_empty(),
        "full-text-only filters too"
    );

    let similar = search(&format!("similar:{}", lake.cat));
    assert_eq!(similar.len(), 1, "the other image, not itself");
    assert_eq!(similar[0].asset.id, lake.sign);
    let err = index
        .search(
            c,
            &parse("similar:ffffffff").unwrap(),
            &[],
            &SearchOptions::default(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("no asset id starts with"), "{err}");
    let err = index
        .search(c, &parse("").unwrap(), &[], &SearchOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("empty query"), "{err}");
}

#[test]
fn erasure_leaves_both_indexes_and_a_lagging_index_never_shows_it() {
    for (engine, index, dir) in engines() {
        eprintln!("engine: {engine}");
        erasure_on(index, dir.as_ref().map(|d| d.path()));
    }
}

/// `dir`: the embedded index's folder, reopened at the end.
fn erasure_on(mut index: SearchIndex, dir: Option<&Path>) {
    let lake = lake();
    let c = &lake.catalog;
    index.update(c).unwrap();
    assert_eq!(found(&index, c, "cat"), [lake.cat]);

    c.delete_asset(lake.cat).unwrap();
    // Not updated yet: the hit is checked against the catalog.
    assert!(found(&index, c, "cat").is_empty());
    let update = index.update(c).unwrap();
    assert_eq!(update.removed, 1);
    let sizes = index.space_sizes().unwrap();
    assert_eq!(
        sizes,
        [("img".to_owned(), 1)],
        "the erased asset's vector is gone"
    );
    if let Some(local) = index.local() {
        assert_eq!(local.documents(), 4);
        assert_eq!(
            local.deleted_documents(),
            0,
            "no segment file keeps the erased document"
        );
        let (_, img) = local.spaces().find(|(n, _)| *n == "img").unwrap();
        assert!(img.keys_of(lake.cat).is_empty());
    }
    let similar = format!("similar:{}", lake.sign);
    assert!(
        found(&index, c, &similar).is_empty(),
        "no vector left to be similar to"
    );

    // Reopened, it is still gone.
    if let Some(dir) = dir {
        drop(index);
        let index = SearchIndex::open(dir).unwrap();
        assert_eq!(index.documents().unwrap(), 4);
        assert!(found(&index, c, "cat").is_empty());
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn copy_catalog(from: &Path, to: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let name = format!("catalog.db{suffix}");
        let _ = std::fs::remove_file(to.join(&name));
        if from.join(&name).exists() {
            std::fs::copy(from.join(&name), to.join(&name)).unwrap();
        }
    }
}

/// A crash after the full-text commit and before `state.json` (and before the change feed is
/// pruned) leaves the new full-text index beside the old vectors and position: searches
/// still never show an erased asset, and the next update applies the changes again.
#[test]
fn a_crash_between_the_indexes_writes_is_repaired_by_the_next_update() {
    let root = tempfile::tempdir().unwrap();
    let (dir, db, saved) = (
        root.path().join("search"),
        root.path().join("db"),
        root.path().join("saved"),
    );
    std::fs::create_dir_all(&db).unwrap();
    std::fs::create_dir_all(&saved).unwrap();
    let open = || SqliteCatalog::open(&db.join("catalog.db")).unwrap();
    // A small lake, in a catalog on disk (so the test can take its files back in time).
    let c = open();
    let mut ids = Vec::new();
    for name in ["cat.jpg", "sign.jpg"] {
        ids.push(record(&c, "photos", name, MediaKind::Image));
    }
    let (cat, sign) = (ids[0], ids[1]);
    c.add_insights(&[
        insight(cat, "label", serde_json::json!({"name": "tabby cat"}), None),
        vector(cat, "img", &[1.0, 0.0, 0.0]),
        insight(
            sign,
            "ocr_line",
            serde_json::json!({"text": "NO PARKING"}),
            Some("en"),
        ),
        vector(sign, "img", &[0.0, 1.0, 0.0]),
    ])
    .unwrap();
    SearchIndex::open(&dir).unwrap().update(&c).unwrap();
    let before = root.path().join("before");
    copy_dir(&dir, &before);

    c.delete_asset(sign).unwrap();
    let other = record(&c, "photos", "other.jpg", MediaKind::Image);
    c.add_insights(&[vector(other, "img", &[0.0, 0.0, 1.0])])
        .unwrap();
    drop(c);
    copy_catalog(&db, &saved);
    let c = open();
    SearchIndex::open(&dir).unwrap().update(&c).unwrap();
    drop(c);

    // The crash: the catalog as it was (its change feed not yet pruned), the old state and
    // vectors, and the new full-text index.
    copy_catalog(&saved, &db);
    std::fs::copy(before.join("state.json"), dir.join("state.json")).unwrap();
    std::fs::remove_dir_all(dir.join("vectors")).unwrap();
    copy_dir(&before.join("vectors"), &dir.join("vectors"));

    let c = open();
    let mut index = SearchIndex::open(&dir).unwrap();
    let (_, img) = index
        .local()
        .unwrap()
        .spaces()
        .find(|(n, _)| *n == "img")
        .unwrap();
    assert_eq!(img.keys_of(sign).len(), 1, "the old vectors are back");
    assert!(
        found(&index, &c, "parking").is_empty(),
        "the erased asset is never shown"
    );
    let similar = format!("similar:{cat}");
    assert!(!found(&index, &c, &similar).contains(&sign));

    let update = index.update(&c).unwrap();
    assert_eq!(update.removed, 1);
    let (_, img) = index
        .local()
        .unwrap()
        .spaces()
        .find(|(n, _)| *n == "img")
        .unwrap();
    assert!(img.keys_of(sign).is_empty(), "erased on the second try");
    assert_eq!(img.keys_of(other).len(), 1, "added once, not twice");
    assert_eq!(img.len(), 2);
    assert_eq!(
        index.documents().unwrap(),
        2,
        "cat and other; applying twice duplicates nothing"
    );
}

#[test]
fn one_updater_at_a_time_and_rebuilds_swap_in_whole() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("search");
    let lake = lake();
    let c = &lake.catalog;
    let mut first = SearchIndex::open(&dir).unwrap();
    first.update(c).unwrap();
    let lock = std::fs::File::open(dir.join("update.lock")).unwrap();
    lock.try_lock().unwrap();
    let mut second = SearchIndex::open(&dir).unwrap();
    assert!(matches!(second.update(c), Err(Error::Busy(_))));
    drop(lock);
    second.update(c).unwrap();

    // What an interrupted rebuild left (it may hold erased data) goes.
    std::fs::create_dir_all(root.path().join("search.old/text")).unwrap();
    let (rebuilt, report) = SearchIndex::rebuild(&dir, c).unwrap();
    assert!(report.built);
    assert_eq!(report.indexed, 5);
    assert_eq!(rebuilt.documents().unwrap(), 5);
    assert_eq!(found(&rebuilt, c, "北京"), [lake.chinese]);
    assert!(!root.path().join("search.new").exists());
    assert!(!root.path().join("search.old").exists());
}

/// A server keeps its index open between updates while a CLI updates the same folder: the
/// server's next update starts from what the CLI wrote, whose changes are gone from the feed.
#[test]
fn an_index_kept_open_sees_what_another_updater_wrote() {
    let lake = lake();
    let dir = tempfile::tempdir().unwrap();
    let mut server = SearchIndex::open(dir.path()).unwrap();
    server.update(&lake.catalog).unwrap();
    let mut cli = SearchIndex::open(dir.path()).unwrap();
    let late = record(&lake.catalog, "photos", "IMG_0003.jpg", MediaKind::Image);
    lake.catalog
        .add_insights(&[vector(late, "img", &[0.0, 0.0, 1.0])])
        .unwrap();
    cli.update(&lake.catalog).unwrap();
    let later = record(&lake.catalog, "photos", "IMG_0004.jpg", MediaKind::Image);
    server.update(&lake.catalog).unwrap();
    let reopened = SearchIndex::open(dir.path()).unwrap();
    for index in [&server, &reopened] {
        assert_eq!(found(index, &lake.catalog, "IMG_0003"), [late]);
        assert_eq!(found(index, &lake.catalog, "IMG_0004"), [later]);
        assert_eq!(
            index
                .local()
                .unwrap()
                .spaces()
                .find(|(n, _)| *n == "img")
                .unwrap()
                .1
                .len(),
            3
        );
    }
}

#[test]
fn a_damaged_state_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake();
    SearchIndex::open(dir.path())
        .unwrap()
        .update(&lake.catalog)
        .unwrap();
    std::fs::write(dir.path().join("state.json"), b"{ not json").unwrap();
    let err = SearchIndex::open(dir.path()).err().unwrap().to_string();
    assert!(
        err.contains("state.json") && err.contains("reindex-search"),
        "{err}"
    );
}

/// Counts the catalog calls a search makes, delegating to a real catalog.
#[derive(Debug)]
struct Counting<'a> {
    inner: &'a SqliteCatalog,
    /// Calls that read one asset's rows (`asset`, `sources`, `insights`, ...).
    per_asset: std::sync::atomic::AtomicUsize,
    /// Calls of the batched `assets`.
    batched: std::sync::atomic::AtomicUsize,
}

impl Counting<'_> {
    fn per_asset(&self) {
        self.per_asset
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

type R<T> = aperture_catalog::Result<T>;

impl Catalog for Counting<'_> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn ensure_collection(&self, name: &str) -> R<aperture_catalog::Collection> {
        self.inner.ensure_collection(name)
    }
    fn collection(&self, name: &str) -> R<aperture_catalog::Collection> {
        self.inner.collection(name)
    }
    fn collections(&self) -> R<Vec<aperture_catalog::Collection>> {
        self.inner.collections()
    }
    fn known_source(
        &self,
        c: aperture_catalog::CollectionId,
        path: &[u8],
    ) -> R<Option<aperture_catalog::KnownSource>> {
        self.inner.known_source(c, path)
    }
    fn blob_generation(&self, hash: ContentHash) -> R<aperture_catalog::BlobGeneration> {
        self.inner.blob_generation(hash)
    }
    fn data_key(&self, owner: aperture_core::KeyOwner) -> R<Option<Vec<u8>>> {
        self.inner.data_key(owner)
    }
    fn keep_data_keys(
        &self,
        keys: &[(aperture_core::KeyOwner, Vec<u8>)],
    ) -> R<Vec<Option<Vec<u8>>>> {
        self.inner.keep_data_keys(keys)
    }
    fn data_keys_page(
        &self,
        after: Option<aperture_core::KeyOwner>,
        limit: usize,
    ) -> R<Vec<(aperture_core::KeyOwner, Vec<u8>)>> {
        self.inner.data_keys_page(after, limit)
    }
    fn rewrap_data_key(&self, owner: aperture_core::KeyOwner, old: &[u8], new: &[u8]) -> R<bool> {
        self.inner.rewrap_data_key(owner, old, new)
    }
    fn drop_unused_blob_keys(&self, older_than: aperture_core::UnixMillis) -> R<u64> {
        self.inner.drop_unused_blob_keys(older_than)
    }
    fn record(&self, batch: &[NewAsset]) -> R<Vec<Recorded>> {
        self.inner.record(batch)
    }
    fn asset(&self, id: AssetId) -> R<aperture_catalog::Asset> {
        self.per_asset();
        self.inner.asset(id)
    }
    fn assets(&self, ids: &[AssetId]) -> R<Vec<aperture_catalog::Asset>> {
        self.batched
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.assets(ids)
    }
    fn assets_with_prefix(&self, prefix: &str, limit: usize) -> R<Vec<AssetId>> {
        self.inner.assets_with_prefix(prefix, limit)
    }
    fn list_assets(&self, q: &aperture_catalog::AssetQuery) -> R<Vec<aperture_catalog::Asset>> {
        self.inner.list_assets(q)
    }
    fn sources(&self, id: AssetId) -> R<Vec<aperture_catalog::Source>> {
        self.per_asset();
        self.inner.sources(id)
    }
    fn stats(&self) -> R<aperture_catalog::Stats> {
        self.inner.stats()
    }
    fn asset_count(&self) -> R<u64> {
        self.inner.asset_count()
    }
    fn referenced_blobs(
        &self,
        after: Option<ContentHash>,
        limit: usize,
    ) -> R<Vec<(ContentHash, u64)>> {
        self.inner.referenced_blobs(after, limit)
    }
    fn delete_asset(&self, id: AssetId) -> R<aperture_catalog::Deletion> {
        self.inner.delete_asset(id)
    }
    fn change_collection(
        &self,
        name: &str,
        change: &aperture_catalog::PolicyChange,
    ) -> R<aperture_catalog::Collection> {
        self.inner.change_collection(name, change)
    }
    fn expired_assets(&self, now: UnixMillis, limit: usize) -> R<Vec<AssetId>> {
        self.inner.expired_assets(now, limit)
    }
    fn scrub(&self) -> R<bool> {
        self.inner.scrub()
    }
    fn key_deletion_buckets(&self, key: [u8; 32]) {
        self.inner.key_deletion_buckets(key)
    }
    fn claim_blob_deletion(&self, hash: ContentHash) -> R<Option<aperture_catalog::BlobClaim>> {
        self.inner.claim_blob_deletion(hash)
    }
    fn still_claimed(&self, claim: aperture_catalog::BlobClaim) -> R<bool> {
        self.inner.still_claimed(claim)
    }
    fn blob_deleted(&self, claim: aperture_catalog::BlobClaim) -> R<()> {
        self.inner.blob_deleted(claim)
    }
    fn unfinished_blob_deletions(&self, before: UnixMillis) -> R<Vec<ContentHash>> {
        self.inner.unfinished_blob_deletions(before)
    }
    fn add_insights(&self, insights: &[Insight]) -> R<()> {
        self.inner.add_insights(insights)
    }
    fn insights(&self, asset: AssetId) -> R<Vec<Insight>> {
        self.per_asset();
        self.inner.insights(asset)
    }
    fn insights_of_kinds(&self, assets: &[AssetId], kinds: &[&str]) -> R<Vec<Insight>> {
        self.per_asset();
        self.inner.insights_of_kinds(assets, kinds)
    }
    fn changes(&self, after: i64, limit: usize) -> R<Vec<aperture_catalog::Change>> {
        self.inner.changes(after, limit)
    }
    fn last_change(&self) -> R<i64> {
        self.inner.last_change()
    }
    fn ack_changes(&self, consumer: &str, through: i64) -> R<u64> {
        self.inner.ack_changes(consumer, through)
    }
    fn pruned_through(&self) -> R<i64> {
        self.inner.pruned_through()
    }
}

/// Issue 10: hits are explained from what the index holds; the catalog is read once per
/// search, to confirm the hits still exist, never per hit.
#[test]
fn r10_hits_are_explained_from_the_index_with_one_catalog_read() {
    for (engine, mut index, _dir) in engines() {
        eprintln!("engine: {engine}");
        explained_on(&mut index);
    }
}

fn explained_on(index: &mut SearchIndex) {
    let lake = lake();
    index.update(&lake.catalog).unwrap();
    let counting = Counting {
        inner: &lake.catalog,
        per_asset: Default::default(),
        batched: Default::default(),
    };
    let hits = index
        .search(
            &counting,
            &parse("kind:image").unwrap(),
            &[],
            &SearchOptions::default(),
        )
        .unwrap();
    assert_eq!(hits.len(), 2, "{hits:?}");
    let hits = index
        .search(
            &counting,
            &parse("parking").unwrap(),
            &[],
            &SearchOptions::default(),
        )
        .unwrap();
    assert_eq!(hits.len(), 1);
    let json = serde_json::to_value(&hits[0].reasons).unwrap();
    assert_eq!(json[0]["field"], "ocr", "{json}");
    assert_eq!(json[0]["text"], "NO PARKING", "{json}");
    assert!(json[0]["place"]["rect"].is_object(), "the box: {json}");
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(
        counting.per_asset.load(Relaxed),
        0,
        "no per-hit catalog reads"
    );
    assert_eq!(
        counting.batched.load(Relaxed),
        2,
        "one batched read per search"
    );

    // An asset erased after the index saw it is confirmed gone by that one read.
    lake.catalog.delete_asset(lake.sign).unwrap();
    assert!(found(index, &counting, "parking").is_empty());
}

/// An index of an older format (whose full-text schema tantivy would refuse to open) is
/// rebuilt by the next update, and its old full-text files are removed.
#[test]
fn an_index_of_an_older_format_is_rebuilt_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake();
    SearchIndex::open(dir.path())
        .unwrap()
        .update(&lake.catalog)
        .unwrap();
    // What format 4 left: its full-text folder under the old name, and its state.
    let state_path = dir.path().join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    state["format"] = 4.into();
    std::fs::write(&state_path, state.to_string()).unwrap();
    std::fs::create_dir_all(dir.path().join("text")).unwrap();
    std::fs::write(
        dir.path().join("text/meta.json"),
        b"{\"an\": \"old schema\"}",
    )
    .unwrap();

    let mut index = SearchIndex::open(dir.path()).unwrap();
    assert!(!index.is_built().unwrap());
    let update = index.update(&lake.catalog).unwrap();
    assert!(update.built);
    assert_eq!(update.indexed, 5);
    assert!(!dir.path().join("text").exists(), "the old folder is gone");
    assert_eq!(found(&index, &lake.catalog, "parking"), [lake.sign]);
}

/// `similar:` of a photo ranks by the picture spaces: a photo described in the same words
/// (the same name-and-labels vector) but looking different comes after one that looks alike
/// and is described otherwise. A document, which has no picture vectors, still compares by
/// its text's.
#[test]
fn similar_photos_are_ranked_by_how_they_look_not_how_they_are_described() {
    for (engine, mut index, _dir) in engines() {
        eprintln!("engine: {engine}");
        similar_photos_on(&mut index);
    }
}

fn similar_photos_on(index: &mut SearchIndex) {
    let catalog = SqliteCatalog::open_in_memory().unwrap();
    let photo = record(&catalog, "photos", "harbour.jpg", MediaKind::Image);
    let looks_alike = record(&catalog, "photos", "boats.jpg", MediaKind::Image);
    let described_alike = record(&catalog, "photos", "harbour-plan.jpg", MediaKind::Image);
    let doc = record(&catalog, "press", "a.txt", MediaKind::Document);
    let other_doc = record(&catalog, "press", "b.txt", MediaKind::Document);
    let description = |asset, v: &[f32]| {
        insight(
            asset,
            "text_embedding",
            serde_json::json!({"space": "words", "dims": v.len(), "vector": encode_vector(v),
                "source": "description", "text": "harbour"}),
            None,
        )
    };
    catalog
        .add_insights(&[
            vector(photo, "img", &[1.0, 0.0, 0.0]),
            description(photo, &[0.0, 0.0, 1.0]),
            vector(looks_alike, "img", &[0.9, 0.1, 0.0]),
            description(looks_alike, &[1.0, 0.0, 0.0]),
            vector(described_alike, "img", &[0.0, 1.0, 0.0]),
            description(described_alike, &[0.0, 0.0, 1.0]),
            description(doc, &[0.0, 1.0, 1.0]),
            description(other_doc, &[0.0, 1.0, 0.9]),
        ])
        .unwrap();
    index.update(&catalog).unwrap();
    let hits = index
        .search(
            &catalog,
            &parse(&format!("similar:{photo}")).unwrap(),
            &[],
            &SearchOptions::default(),
        )
        .unwrap();
    assert_eq!(hits[0].asset.id, looks_alike);
    assert!(hits.iter().all(|h| h.reasons.iter().all(|r| matches!(
        r,
        aperture_search::Reason::Similar { space, .. } if space == "img"
    ))));
    let documents = found(index, &catalog, &format!("similar:{doc}"));
    assert_eq!(documents[0], other_doc);
}

/// Two servers, each with an index of its own (its own folder), follow one catalog: each sees
/// every change, however they interleave, because the feed is pruned only up to the slower
/// one. An index whose position was pruned anyway (a copy restored from an old backup)
/// notices and rebuilds instead of missing what it skipped.
#[test]
fn indexes_of_several_servers_each_see_every_change() {
    let lake = lake();
    let (one_dir, two_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut one = SearchIndex::open(one_dir.path()).unwrap();
    let mut two = SearchIndex::open(two_dir.path()).unwrap();
    one.update(&lake.catalog).unwrap();
    two.update(&lake.catalog).unwrap();
    let backup = tempfile::tempdir().unwrap();
    copy_dir(two_dir.path(), backup.path());

    let a = record(&lake.catalog, "photos", "IMG_0101.jpg", MediaKind::Image);
    one.update(&lake.catalog).unwrap();
    let b = record(&lake.catalog, "photos", "IMG_0102.jpg", MediaKind::Image);
    one.update(&lake.catalog).unwrap();
    two.update(&lake.catalog).unwrap();
    for index in [&one, &two] {
        assert_eq!(found(index, &lake.catalog, "IMG_0101"), [a]);
        assert_eq!(found(index, &lake.catalog, "IMG_0102"), [b]);
    }
    lake.catalog.delete_asset(a).unwrap();
    two.update(&lake.catalog).unwrap();
    one.update(&lake.catalog).unwrap();
    assert!(found(&one, &lake.catalog, "IMG_0101").is_empty());
    assert!(found(&two, &lake.catalog, "IMG_0101").is_empty());
    assert!(
        lake.catalog.changes(0, 100).unwrap().is_empty(),
        "both applied everything: nothing is kept"
    );

    // The backup is behind what was pruned: it rebuilds, and has b, not a.
    let mut restored = SearchIndex::open(backup.path()).unwrap();
    assert!(lake.catalog.pruned_through().unwrap() > restored.position().unwrap());
    let report = restored.update(&lake.catalog).unwrap();
    assert!(report.built, "rebuilt");
    assert_eq!(found(&restored, &lake.catalog, "IMG_0102"), [b]);
    assert!(found(&restored, &lake.catalog, "IMG_0101").is_empty());
}

/// The shared index: one process updates at a time (the others are told it is busy, and
/// search what is there), the feed position moves with the changes in one transaction, and a
/// rebuild in place gives the same answers.
/// The advisory lock the shared index's updater holds (`shared::UPDATE_LOCK`).
const UPDATE_LOCK: i64 = 0x4150_4552_0101;

#[test]
fn the_shared_index_has_one_updater_and_rebuilds_in_place() {
    let Some(url) = shared_url() else {
        return;
    };
    let lake = lake();
    let c = &lake.catalog;
    let mut index = SearchIndex::open_shared(&url).unwrap();
    let built = index.update(c).unwrap();
    assert!(built.built && built.indexed == 5, "{built:?}");
    assert_eq!(index.position().unwrap(), c.last_change().unwrap());

    // Another process holds the update lock: this one is told, and searches what is there.
    let mut other = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    other
        .execute("SELECT pg_advisory_lock($1)", &[&UPDATE_LOCK])
        .unwrap();
    c.delete_asset(lake.cat).unwrap();
    let mut second = SearchIndex::open_shared(&url).unwrap();
    let err = second.update(c).unwrap_err();
    assert!(matches!(err, Error::Busy(_)), "{err}");
    assert!(err.to_string().contains("PostgreSQL at"), "{err}");
    assert_eq!(found(&second, c, "parking"), [lake.sign]);
    // Let go of explicitly: a dropped connection's backend ends (and frees the lock) a moment
    // after the client has gone, and the update below raced it.
    let unlocked: bool = other
        .query_one("SELECT pg_advisory_unlock($1)", &[&UPDATE_LOCK])
        .unwrap()
        .get(0);
    assert!(unlocked, "the lock taken above was held");
    drop(other);

    // The next update applies the erasure, for every handle at once.
    let update = second.update(c).unwrap();
    assert_eq!((update.indexed, update.removed), (0, 1));
    assert!(found(&index, c, "cat").is_empty());
    assert_eq!(index.space_sizes().unwrap(), [("img".to_owned(), 1)]);

    // A document of more words than a `tsvector` holds is found by its first ones.
    let huge = record(c, "press", "huge.txt", MediaKind::Document);
    let text: String = (0..300_000).map(|i| format!("w{i} ")).collect();
    c.add_insights(&[insight(
        huge,
        "text",
        serde_json::json!({ "text": text }),
        Some("en"),
    )])
    .unwrap();
    index.update(c).unwrap();
    assert_eq!(found(&index, c, "w12345"), [huge]);

    // Near duplicates of one image come through the engine; grouping every one needs the
    // embedded index's vectors in memory, and says so.
    let near = aperture_search::duplicates::near_of(
        &index,
        c,
        lake.sign,
        &aperture_search::duplicates::DuplicateOptions::default(),
        aperture_search::duplicates::Within::All,
    );
    assert!(near.unwrap().is_empty(), "no other image is alike");
    let err = aperture_search::duplicates::near(
        &index,
        c,
        &aperture_search::duplicates::DuplicateOptions::default(),
        aperture_search::duplicates::Within::All,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");

    // Rebuilt in place: the same answers.
    let (index, report) = index.rebuild_here(c).unwrap();
    assert!(report.built && report.indexed == 5, "{report:?}");
    assert_eq!(found(&index, c, "estación"), [lake.spanish]);
    assert_eq!(found(&index, c, "北京"), [lake.chinese]);
    assert_eq!(index.languages().unwrap(), ["en", "es", "ru", "zh"]);
}

/// The update lock lives on a connection of its own: when that connection dies mid-update
/// (and another process may take over), this one writes nothing more and says why; its next
/// update opens a new one.
#[test]
fn a_shared_updater_that_lost_its_lock_stops_writing() {
    let Some(url) = shared_url() else {
        return;
    };
    let lake = lake();
    let c = &lake.catalog;
    let index = SearchIndex::open_shared(&url).unwrap();
    let shared = index.shared().unwrap();
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let asset = |i: u8| AssetId::from_bytes([i; 16]);
    let doc = |i: u8| {
        let mut d = aperture_search::Indexed::new(
            &c.asset(lake.spanish).unwrap(),
            &c.sources(lake.spanish).unwrap(),
            &c.insights(lake.spanish).unwrap(),
        );
        d.asset = asset(i);
        (asset(i), Some(d))
    };
    let batches = (1..=3u8).map(|i| {
        if i == 2 {
            // Between the first batch and the second, the lock's connection is cut.
            let cut: i64 = admin
                .query_one(
                    // This database's only: tests beside it hold locks of their own. The
                    // timeout waits until the backend is gone, and its lock with it.
                    "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_locks
                     WHERE locktype = 'advisory' AND granted
                       AND database = (SELECT oid FROM pg_database
                                       WHERE datname = current_database())",
                    &[],
                )
                .unwrap()
                .get(0);
            assert_eq!(cut, 1, "one connection held the lock");
        }
        vec![doc(i)]
    });
    let err = shared.load(batches, None).unwrap_err();
    assert!(err.to_string().contains("lost the update lock"), "{err}");
    let written: i64 = admin
        .query_one("SELECT count(*) FROM search_documents", &[])
        .unwrap()
        .get(0);
    assert_eq!(written, 1, "nothing written after the lock was lost");
    // The next update takes a new connection and the lock again.
    let mut index = index;
    let built = index.update(c).unwrap();
    assert!(built.built && built.indexed == 5, "{built:?}");
}
