//! The behaviour every [`Catalog`] must show. Each backend runs the whole suite with one line:
//!
//! ```ignore
//! aperture_catalog::catalog_conformance!(|| SqliteCatalog::open_in_memory().unwrap());
//! ```
//!
//! The functions panic on failure, like test assertions: they are meant to be called by tests.

use aperture_core::{
    AnalyzerSpec, AssetId, ContentHash, Gps, Insight, InsightValue, MediaKind, MediaMetadata,
    Place, Rect, UnixMillis, value,
};

use std::time::Duration;

use crate::jobs::{JobQueue, MAX_ABANDONED_CLAIMS, MAX_ATTEMPTS};
use crate::*;

/// Generates one `#[test]` per conformance check; `$make` builds a fresh, empty catalog.
#[macro_export]
macro_rules! catalog_conformance {
    ($make:expr) => {
        $crate::catalog_conformance!(@tests $make;
            collections, record_outcomes, metadata_round_trip, listing_and_paging,
            id_prefixes, deletion_and_races, insights_round_trip, referenced_blobs,
            against_a_model, queue_is_idempotent_and_ordered, queue_results_replace_old_ones,
            queue_retries_then_fails, queue_leases_expire, queue_never_runs_a_job_twice,
            queue_requeues_dependents, queue_renews_leases_and_gives_up_on_abandoned_jobs,
            change_feed, tokens_and_grants, audit_chain);
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                let make = $make;
                $crate::conformance::$name(&make);
            }
        )*
    };
}

fn source(path: &str, size: u64) -> NewSource {
    NewSource {
        path_bytes: path.as_bytes().to_vec(),
        path: path.to_owned(),
        name: path.rsplit('/').next().unwrap_or(path).to_owned(),
        file_size: size,
        modified_ns: Some(1_700_000_000_000_000_000),
    }
}

fn new_asset(collection: CollectionId, content: &[u8], path: &str) -> NewAsset {
    NewAsset {
        collection,
        hash: ContentHash::of(content),
        size: content.len() as u64,
        kind: MediaKind::Other,
        mime: "application/octet-stream".into(),
        metadata: MediaMetadata::default(),
        source: source(path, content.len() as u64),
        generation_seen: 0,
        jobs: Vec::new(),
    }
}

fn record_one(catalog: &dyn Catalog, item: &NewAsset) -> Recorded {
    let out = catalog.record(std::slice::from_ref(item)).unwrap();
    assert_eq!(out.len(), 1);
    out[0]
}

fn id_of(recorded: Recorded) -> AssetId {
    match recorded {
        Recorded::Created(id) | Recorded::Duplicate(id) | Recorded::Known(id) => id,
        Recorded::BlobRaced => panic!("unexpected BlobRaced"),
    }
}

/// Collections are created once by name, listed by name, and refuse empty, overlong or
/// slash-bearing names.
pub fn collections<C: Catalog>(make: &dyn Fn() -> C) {
    let catalog = make();
    let a = catalog.ensure_collection("photos").unwrap();
    let again = catalog.ensure_collection("photos").unwrap();
    assert_eq!(a, again);
    let b = catalog.ensure_collection("Field notes 2024").unwrap();
    assert_ne!(a.id, b.id);
    let names: Vec<_> = catalog
        .collections()
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["Field notes 2024", "photos"]);
    assert!(matches!(
        catalog.collection("nope"),
        Err(Error::NotFound { .. })
    ));
    for bad in ["", "../x", "a/b", &"x".repeat(200)] {
        assert!(
            matches!(
                catalog.ensure_collection(bad),
                Err(Error::InvalidInput { .. })
            ),
            "{bad:?}"
        );
    }
}

/// Recording tells created, duplicate and known files apart, per item and in order, and
/// deduplicates within a collection only.
pub fn record_outcomes<C: Catalog>(make: &dyn Fn() -> C) {
    let catalog = make();
    let photos = catalog.ensure_collection("photos").unwrap().id;
    let other = catalog.ensure_collection("other").unwrap().id;
    let content = b"same bytes".as_slice();

    let first = record_one(&catalog, &new_asset(photos, content, "/in/a.jpg"));
    let Recorded::Created(id) = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        record_one(&catalog, &new_asset(photos, content, "/in/copy-of-a.jpg")),
        Recorded::Duplicate(id)
    );
    assert_eq!(
        record_one(&catalog, &new_asset(photos, content, "/in/a.jpg")),
        Recorded::Known(id)
    );
    let elsewhere = id_of(record_one(
        &catalog,
        &new_asset(other, content, "/in/a.jpg"),
    ));
    assert_ne!(elsewhere, id, "another collection gets its own asset");

    let sources = catalog.sources(id).unwrap();
    let paths: Vec<_> = sources.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths, ["/in/a.jpg", "/in/copy-of-a.jpg"]);

    let known = catalog.known_source(photos, b"/in/a.jpg").unwrap().unwrap();
    assert_eq!(known.asset, id);
    assert_eq!(known.file_size, content.len() as u64);
    assert_eq!(catalog.known_source(photos, b"/in/zzz").unwrap(), None);

    let stats = catalog.stats().unwrap();
    assert_eq!(stats.collections, 2);
    assert_eq!(stats.assets, 2);
    assert_eq!(stats.sources, 3);
    assert_eq!(stats.distinct_blobs, 1);
    assert_eq!(stats.stored_bytes, content.len() as u64);
    assert_eq!(stats.logical_bytes, 3 * content.len() as u64);
    assert_eq!(stats.dedupe_savings(), 2 * content.len() as u64);
    assert_eq!(stats.by_kind[&MediaKind::Other].assets, 2);

    // A batch gets one outcome per item, in order, including duplicates within the batch.
    let batch = [
        new_asset(photos, b"x", "/b/x"),
        new_asset(photos, b"y", "/b/y"),
        new_asset(photos, b"x", "/b/x2"),
    ];
    let out = catalog.record(&batch).unwrap();
    assert!(matches!(out[0], Recorded::Created(_)));
    assert!(matches!(out[1], Recorded::Created(_)));
    assert_eq!(out[2], Recorded::Duplicate(id_of(out[0])));
}

/// An asset reads back as recorded; a source is found by its exact path bytes, not their
/// lossy text.
pub fn metadata_round_trip<C: Catalog>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let metadata = MediaMetadata {
        width: Some(4000),
        height: Some(3000),
        orientation: Some(6),
        captured_at: Some("2021-07-04T10:20:30".into()),
        camera_make: Some("TestCam".into()),
        camera_model: Some("Model X".into()),
        gps: Some(Gps {
            latitude: 48.858_222,
            longitude: 2.294_5,
            altitude: Some(35.5),
        }),
        problems: vec!["truncated jpeg: no end-of-image marker".into()],
        ..MediaMetadata::default()
    };
    let mut item = new_asset(c, b"jpeg bytes", "/photos/odd name \u{fffd}.jpg");
    item.source.path_bytes = b"/photos/odd name \xff.jpg".to_vec();
    item.kind = MediaKind::Image;
    item.mime = "image/jpeg".into();
    item.metadata = metadata.clone();
    let before = UnixMillis::now();
    let id = id_of(record_one(&catalog, &item));
    let asset = catalog.asset(id).unwrap();
    assert_eq!(asset.id, id);
    assert_eq!(asset.collection, "c");
    assert_eq!(asset.hash, item.hash);
    assert_eq!(asset.size, item.size);
    assert_eq!(asset.kind, MediaKind::Image);
    assert_eq!(asset.mime, "image/jpeg");
    assert_eq!(asset.metadata, metadata);
    assert_eq!(asset.captured_at.as_deref(), Some("2021-07-04T10:20:30"));
    assert_eq!(asset.name, "odd name \u{fffd}.jpg");
    assert!(asset.ingested_at >= before);
    // Exact path bytes are the key: the lossy text form is a different path.
    assert!(
        catalog
            .known_source(c, b"/photos/odd name \xff.jpg")
            .unwrap()
            .is_some()
    );
    assert!(
        catalog
            .known_source(c, "/photos/odd name \u{fffd}.jpg".as_bytes())
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        catalog.asset(AssetId::new()),
        Err(Error::NotFound { .. })
    ));
}

/// Keyset paging returns every asset once in ingest order, and a collection filter pages
/// through exactly those collections.
pub fn listing_and_paging<C: Catalog>(make: &dyn Fn() -> C) {
    let catalog = make();
    let a = catalog.ensure_collection("a").unwrap().id;
    let b = catalog.ensure_collection("b").unwrap().id;
    let mut ids = Vec::new();
    for i in 0..25u32 {
        let mut item = new_asset(
            if i % 5 == 0 { b } else { a },
            &i.to_le_bytes(),
            &format!("/f/{i}"),
        );
        if i % 2 == 0 {
            item.kind = MediaKind::Image;
        }
        ids.push(id_of(record_one(&catalog, &item)));
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = catalog
            .list_assets(&AssetQuery {
                after,
                limit: 10,
                ..AssetQuery::default()
            })
            .unwrap();
        assert!(page.len() <= 10);
        if page.is_empty() {
            break;
        }
        after = page.last().map(|p| p.id);
        seen.extend(page.into_iter().map(|p| p.id));
    }
    assert_eq!(
        seen, ids,
        "paging returns every asset once, in ingest order"
    );

    let images = catalog
        .list_assets(&AssetQuery {
            kind: Some(MediaKind::Image),
            limit: 100,
            ..AssetQuery::default()
        })
        .unwrap();
    assert_eq!(images.len(), 13);
    assert!(images.iter().all(|x| x.kind == MediaKind::Image));
    let in_b = catalog
        .list_assets(&AssetQuery {
            collections: Some(vec![b]),
            limit: 100,
            ..AssetQuery::default()
        })
        .unwrap();
    assert_eq!(in_b.len(), 5);
    assert!(in_b.iter().all(|x| x.collection == "b"));

    // A set of collections pages through exactly its assets: every page is full until the
    // last, and the cursor is always one of them.
    let c = catalog.ensure_collection("c").unwrap().id;
    for i in 0..7u32 {
        let item = new_asset(c, &(1000 + i).to_le_bytes(), &format!("/c/{i}"));
        record_one(&catalog, &item);
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = catalog
            .list_assets(&AssetQuery {
                collections: Some(vec![b, c]),
                after,
                limit: 4,
                ..AssetQuery::default()
            })
            .unwrap();
        assert!(page.iter().all(|x| x.collection != "a"), "no asset of a");
        if page.len() < 4 {
            seen.extend(page.into_iter().map(|p| p.id));
            break;
        }
        after = page.last().map(|p| p.id);
        seen.extend(page.into_iter().map(|p| p.id));
    }
    assert_eq!(seen.len(), 12, "5 of b and 7 of c, each once");
    let none = catalog
        .list_assets(&AssetQuery {
            collections: Some(Vec::new()),
            limit: 10,
            ..AssetQuery::default()
        })
        .unwrap();
    assert!(none.is_empty(), "no collection, no assets");
}

/// Short ids resolve, ignoring case; a prefix shared by two ids finds both; bad prefixes are
/// invalid input.
pub fn id_prefixes<C: Catalog>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let id = id_of(record_one(&catalog, &new_asset(c, b"1", "/1")));
    let other = id_of(record_one(&catalog, &new_asset(c, b"2", "/2")));
    let full = id.to_string();
    assert_eq!(catalog.assets_with_prefix(&full, 10).unwrap(), [id]);
    assert_eq!(
        catalog
            .assets_with_prefix(&full.to_uppercase(), 10)
            .unwrap(),
        [id]
    );
    // UUIDv7 ids made in the same millisecond share their first 12 digits.
    let common = full
        .chars()
        .zip(other.to_string().chars())
        .take_while(|(a, b)| a == b)
        .count();
    let both = catalog.assets_with_prefix(&full[..common], 10).unwrap();
    assert_eq!(both.len(), 2);
    assert_eq!(
        catalog
            .assets_with_prefix(&full[..common + 1], 10)
            .unwrap()
            .len(),
        1
    );
    for bad in ["", "xyz", &"0".repeat(33)] {
        assert!(matches!(
            catalog.assets_with_prefix(bad, 10),
            Err(Error::InvalidInput { .. })
        ));
    }
}

/// Deleting removes an asset with its sources and insights; the last user of a blob hands out
/// a claim, and ingests that raced a deletion record nothing.
pub fn deletion_and_races<C: Catalog>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let d = catalog.ensure_collection("d").unwrap().id;
    let item = new_asset(c, b"shared", "/s");
    let in_c = id_of(record_one(&catalog, &item));
    let in_d = id_of(record_one(&catalog, &new_asset(d, b"shared", "/s")));
    catalog
        .add_insights(&[insight(in_c, Place::Whole)])
        .unwrap();

    // The blob is still used by the asset in `d`.
    let deletion = catalog.delete_asset(in_c).unwrap();
    assert_eq!(deletion.hash, item.hash);
    assert_eq!(deletion.claim, None);
    assert!(matches!(catalog.asset(in_c), Err(Error::NotFound { .. })));
    assert!(catalog.sources(in_c).unwrap().is_empty());
    assert!(catalog.insights(in_c).unwrap().is_empty());
    assert!(matches!(
        catalog.delete_asset(in_c),
        Err(Error::NotFound { .. })
    ));

    // An ingest reads the generation, then the last user of the blob is deleted.
    let seen = catalog.blob_generation(item.hash).unwrap();
    assert!(!seen.deleting);
    let claim = catalog.delete_asset(in_d).unwrap().claim.unwrap();
    assert!(catalog.still_claimed(claim).unwrap());
    let later = UnixMillis(UnixMillis::now().0 + 1);
    assert_eq!(
        catalog.unfinished_blob_deletions(later).unwrap(),
        [item.hash]
    );
    assert!(
        catalog
            .unfinished_blob_deletions(UnixMillis(0))
            .unwrap()
            .is_empty(),
        "a young deletion may still be running"
    );
    let during = catalog.blob_generation(item.hash).unwrap();
    assert!(during.deleting);
    let mut racing = item.clone();
    for generation in [seen.generation, during.generation] {
        racing.generation_seen = generation;
        assert_eq!(record_one(&catalog, &racing), Recorded::BlobRaced);
    }

    // A repair takes the stalled deletion over: the first deleter's claim is void.
    let takeover = catalog.claim_blob_deletion(item.hash).unwrap().unwrap();
    assert!(!catalog.still_claimed(claim).unwrap());
    assert!(catalog.still_claimed(takeover).unwrap());
    catalog.blob_deleted(claim).unwrap(); // the stale claim changes nothing
    assert!(catalog.blob_generation(item.hash).unwrap().deleting);
    catalog.blob_deleted(takeover).unwrap();
    assert!(catalog.unfinished_blob_deletions(later).unwrap().is_empty());

    // An ingest that read the generation while the blob was being deleted found the old
    // blob, which is gone now: it must not record.
    racing.generation_seen = during.generation;
    assert_eq!(record_one(&catalog, &racing), Recorded::BlobRaced);
    let after = catalog.blob_generation(item.hash).unwrap();
    assert!(!after.deleting);
    racing.generation_seen = after.generation;
    assert!(matches!(
        record_one(&catalog, &racing),
        Recorded::Created(_)
    ));

    // An unreferenced blob (what fsck finds) can be claimed; a used one cannot.
    let orphan = ContentHash::of(b"orphan");
    assert!(catalog.claim_blob_deletion(orphan).unwrap().is_some());
    assert!(catalog.blob_generation(orphan).unwrap().deleting);
    assert_eq!(catalog.claim_blob_deletion(item.hash).unwrap(), None);
    assert_eq!(catalog.stats().unwrap().assets, 1);
}

/// A spec of an analyzer that reads nothing.
fn spec(name: &'static str, kinds: &'static [MediaKind], priority: i32) -> AnalyzerSpec {
    AnalyzerSpec {
        name,
        version: "1",
        kinds,
        priority,
        reads: &[],
        produces: &[],
    }
}

/// A label value.
fn label(name: &str) -> InsightValue {
    value::Label {
        name: name.into(),
        class: 22,
        rank: 1,
        taxonomy: "imagenet-1k".into(),
    }
    .into()
}

fn insight(asset: AssetId, place: Place) -> Insight {
    Insight {
        asset,
        analyzer: "labels".into(),
        analyzer_version: "1".into(),
        model: Some("efficientnet-lite0".into()),
        model_version: Some("57934424".into()),
        value: label("bald eagle"),
        confidence: Some(0.93),
        language: Some("en".into()),
        place,
        created_at: UnixMillis(1_700_000_000_000),
    }
}

/// Every [`Place`] survives the catalog, a batch of insights is all or nothing, and picking
/// kinds keeps the order.
pub fn insights_round_trip<C: Catalog>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let id = id_of(record_one(&catalog, &new_asset(c, b"x", "/x")));
    let rect = Rect {
        x: 0.25,
        y: 0.5,
        w: 0.125,
        h: 0.0625,
    };
    let insights: Vec<_> = [
        Place::Whole,
        Place::Region { rect },
        Place::Page {
            page: 2,
            rect: None,
        },
        Place::Page {
            page: 7,
            rect: Some(rect),
        },
        Place::Time {
            start_ms: 1_500,
            end_ms: 4_250,
            rect: None,
        },
        Place::Time {
            start_ms: 0,
            end_ms: 40,
            rect: Some(rect),
        },
    ]
    .into_iter()
    .map(|place| insight(id, place))
    .collect();
    catalog.add_insights(&insights).unwrap();
    assert_eq!(catalog.insights(id).unwrap(), insights);

    // All or nothing: a batch naming a missing asset adds none of its insights.
    let err = catalog
        .add_insights(&[
            insight(id, Place::Whole),
            insight(AssetId::new(), Place::Whole),
        ])
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert_eq!(catalog.insights(id).unwrap().len(), insights.len());

    // Picking kinds: only those, in the same order.
    let mut thumb = insight(id, Place::Whole);
    thumb.value = value::Thumbnail {
        name: "thumbnail-256.jpg".into(),
        mime: "image/jpeg".into(),
        width: 256,
        height: 192,
        bytes: 9000,
    }
    .into();
    catalog.add_insights(std::slice::from_ref(&thumb)).unwrap();
    assert_eq!(
        catalog
            .insights_of_kinds(&[id], &["thumbnail", "sensitive"])
            .unwrap(),
        [thumb.clone()]
    );
    assert_eq!(
        catalog.insights_of_kinds(&[id], &["label"]).unwrap(),
        insights
    );
    assert!(
        catalog
            .insights_of_kinds(&[id], &["nothing"])
            .unwrap()
            .is_empty()
    );

    // Many assets in one read: each one's, none of another's; unknown ids add nothing.
    let other = id_of(record_one(&catalog, &new_asset(c, b"y", "/y")));
    let mut other_thumb = thumb.clone();
    other_thumb.asset = other;
    catalog
        .add_insights(std::slice::from_ref(&other_thumb))
        .unwrap();
    let lonely = id_of(record_one(&catalog, &new_asset(c, b"z", "/z")));
    let both = catalog
        .insights_of_kinds(&[id, other, lonely, AssetId::new()], &["thumbnail"])
        .unwrap();
    assert_eq!(both.len(), 2);
    assert!(both.contains(&thumb) && both.contains(&other_thumb));
    let mut found: Vec<AssetId> = catalog
        .assets(&[lonely, AssetId::new(), id])
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    found.sort();
    let mut expected = vec![lonely, id];
    expected.sort();
    assert_eq!(found, expected, "existing assets only, each once");
    assert!(catalog.assets(&[]).unwrap().is_empty());
}

/// Every referenced blob comes once, in hash order, however many assets share it.
pub fn referenced_blobs<C: Catalog>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let d = catalog.ensure_collection("d").unwrap().id;
    let mut expected = Vec::new();
    for i in 0..7u8 {
        let content = vec![i; usize::from(i) + 1];
        record_one(&catalog, &new_asset(c, &content, &format!("/{i}")));
        record_one(&catalog, &new_asset(d, &content, &format!("/{i}")));
        expected.push((ContentHash::of(&content), content.len() as u64));
    }
    expected.sort();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = catalog.referenced_blobs(after, 3).unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|p| p.0);
        seen.extend(page);
    }
    assert_eq!(seen, expected);
}

/// Random sequences of records and deletions, checked against a plain map.
pub fn against_a_model<C: Catalog>(make: &dyn Fn() -> C) {
    use std::collections::{BTreeMap, BTreeSet};

    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    for _case in 0..8 {
        let catalog = make();
        let collections = [
            catalog.ensure_collection("m1").unwrap().id,
            catalog.ensure_collection("m2").unwrap().id,
        ];
        // (collection, content) -> (asset id, set of paths)
        let mut model: BTreeMap<(usize, u8), (AssetId, BTreeSet<String>)> = BTreeMap::new();
        for _step in 0..60 {
            let col = next(2) as usize;
            let content = next(6) as u8;
            if next(4) == 0 {
                if let Some((id, _)) = model.remove(&(col, content)) {
                    let deletion = catalog.delete_asset(id).unwrap();
                    let shared = model.keys().any(|(_, c)| *c == content);
                    assert_eq!(deletion.claim.is_some(), !shared);
                    if let Some(claim) = deletion.claim {
                        catalog.blob_deleted(claim).unwrap();
                    }
                }
                continue;
            }
            let path = format!("/p{}", next(4));
            let mut item = new_asset(collections[col], &[content], &path);
            item.generation_seen = catalog.blob_generation(item.hash).unwrap().generation;
            let got = record_one(&catalog, &item);
            match model.get_mut(&(col, content)) {
                None => {
                    let Recorded::Created(id) = got else {
                        panic!("expected Created, got {got:?}")
                    };
                    model.insert((col, content), (id, BTreeSet::from([path])));
                }
                Some((id, paths)) => {
                    let expected = if paths.insert(path) {
                        Recorded::Duplicate(*id)
                    } else {
                        Recorded::Known(*id)
                    };
                    assert_eq!(got, expected);
                }
            }
        }
        let stats = catalog.stats().unwrap();
        assert_eq!(stats.assets, model.len() as u64);
        let sources: usize = model.values().map(|(_, p)| p.len()).sum();
        assert_eq!(stats.sources, sources as u64);
        let contents: BTreeSet<u8> = model.keys().map(|(_, c)| *c).collect();
        assert_eq!(stats.distinct_blobs, contents.len() as u64);
        for (id, paths) in model.values() {
            let got: BTreeSet<String> = catalog
                .sources(*id)
                .unwrap()
                .into_iter()
                .map(|s| s.path)
                .collect();
            assert_eq!(&got, paths);
        }
    }
}

fn jobs_for(asset: AssetId, analyzers: &[(&str, i32)]) -> Vec<NewJob> {
    analyzers
        .iter()
        .map(|(name, priority)| NewJob {
            asset,
            analyzer: (*name).to_owned(),
            priority: *priority,
        })
        .collect()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

const LEASE: Duration = Duration::from_secs(60);

fn succeeded(asset: AssetId, analyzer: &str, version: &str, label: &str) -> Outcome {
    let mut i = insight(asset, Place::Whole);
    i.analyzer = analyzer.to_owned();
    i.analyzer_version = version.to_owned();
    i.value = self::label(label);
    Outcome::Succeeded {
        version: version.to_owned(),
        insights: vec![i],
        requeue: Vec::new(),
    }
}

/// Queuing twice adds nothing, jobs for missing assets are not queued, and claims go by
/// priority.
pub fn queue_is_idempotent_and_ordered<C: Catalog + JobQueue>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let a = id_of(record_one(&catalog, &new_asset(c, b"a", "/a")));
    let b = id_of(record_one(&catalog, &new_asset(c, b"b", "/b")));
    let mut all = jobs_for(a, &[("labels", 0), ("thumbnail", 10)]);
    all.extend(jobs_for(b, &[("labels", 0), ("thumbnail", 10)]));
    assert_eq!(catalog.enqueue(&all).unwrap(), 4);
    assert_eq!(
        catalog.enqueue(&all).unwrap(),
        0,
        "queuing twice adds nothing"
    );
    // A job for an asset that does not exist is not queued.
    assert_eq!(
        catalog
            .enqueue(&jobs_for(AssetId::new(), &[("labels", 0)]))
            .unwrap(),
        0
    );

    let both = names(&["labels", "thumbnail"]);
    let first = catalog.claim("w1", &both, 3, LEASE).unwrap();
    let order: Vec<_> = first.iter().map(|j| j.analyzer.as_str()).collect();
    assert_eq!(
        order,
        ["thumbnail", "thumbnail", "labels"],
        "priority first"
    );
    assert!(
        first
            .iter()
            .all(|j| j.state == JobState::Running && j.attempts == 1)
    );
    // Only the analyzers a worker can run.
    assert!(
        catalog
            .claim("w2", &names(&["ocr"]), 10, LEASE)
            .unwrap()
            .is_empty()
    );
    let rest = catalog.claim("w2", &both, 10, LEASE).unwrap();
    assert_eq!(rest.len(), 1);
    assert!(catalog.claim("w3", &both, 10, LEASE).unwrap().is_empty());

    for job in first.iter().chain(&rest) {
        let outcome = succeeded(job.asset, &job.analyzer, "1", "x");
        let worker = if rest.contains(job) { "w2" } else { "w1" };
        assert!(catalog.finish(job.id, worker, &outcome).unwrap());
    }
    assert_eq!(catalog.enqueue(&all).unwrap(), 0);
    assert!(
        catalog.claim("w1", &both, 10, LEASE).unwrap().is_empty(),
        "nothing re-runs"
    );
    let counts = catalog.job_counts().unwrap();
    assert_eq!(
        counts,
        [
            ("labels".to_owned(), JobState::Succeeded, 2),
            ("thumbnail".to_owned(), JobState::Succeeded, 2)
        ]
    );
    assert_eq!(catalog.state_counts().unwrap(), [(JobState::Succeeded, 4)]);
    assert_eq!(
        catalog.asset_count().unwrap(),
        catalog.stats().unwrap().assets
    );
    // Same version: nothing stale. A new version: both labels jobs again.
    assert_eq!(catalog.requeue_stale("labels", "1").unwrap(), 0);
    assert_eq!(catalog.requeue_stale("labels", "2").unwrap(), 2);
    let again = catalog.claim("w1", &both, 10, LEASE).unwrap();
    assert_eq!(again.len(), 2);
    assert!(
        again
            .iter()
            .all(|j| j.analyzer == "labels" && j.attempts == 1)
    );
    // Jobs queued with the asset, in the same transaction as its row.
    let mut with_jobs = new_asset(c, b"e", "/e");
    with_jobs.kind = MediaKind::Image;
    with_jobs.jobs = vec![("thumbnail".into(), 10)];
    let e = id_of(record_one(&catalog, &with_jobs));
    assert_eq!(catalog.jobs_of(e).unwrap()[0].state, JobState::Queued);
    // An analyzer added later: one job per asset of its kinds, once.
    assert_eq!(
        catalog
            .enqueue_missing(&spec("phash", &[MediaKind::Image], 5))
            .unwrap(),
        1
    );
    assert_eq!(
        catalog
            .enqueue_missing(&spec("phash", &[MediaKind::Image], 5))
            .unwrap(),
        0
    );
    assert_eq!(
        catalog
            .enqueue_missing(&spec("text", &[MediaKind::Other], 0))
            .unwrap(),
        2
    );
    assert_eq!(catalog.jobs_of(e).unwrap().len(), 2);

    // Deleting an asset takes its jobs with it.
    catalog.delete_asset(a).unwrap();
    assert!(catalog.jobs_of(a).unwrap().is_empty());
    assert_eq!(catalog.jobs_of(b).unwrap().len(), 3);
}

/// Every change a search index must follow is in the feed, in commit order: a new asset, a new
/// path for it, new insights (added, or a job's results), and its deletion.
pub fn change_feed<C: Catalog + JobQueue>(make: &dyn Fn() -> C) {
    let catalog = make();
    assert_eq!(catalog.last_change().unwrap(), 0);
    let c = catalog.ensure_collection("c").unwrap().id;
    let a = id_of(record_one(&catalog, &new_asset(c, b"a", "/a")));
    let start = catalog.last_change().unwrap();
    assert!(start > 0, "ingest is a change");
    let b = id_of(record_one(&catalog, &new_asset(c, b"b", "/b")));
    assert_eq!(
        record_one(&catalog, &new_asset(c, b"a", "/copy-of-a")),
        Recorded::Duplicate(a)
    );
    catalog.add_insights(&[insight(b, Place::Whole)]).unwrap();
    catalog.enqueue(&jobs_for(a, &[("labels", 0)])).unwrap();
    let job = &catalog.claim("w", &names(&["labels"]), 1, LEASE).unwrap()[0];
    assert!(
        catalog
            .finish(job.id, "w", &succeeded(a, "labels", "1", "cat"))
            .unwrap()
    );
    catalog.delete_asset(b).unwrap();

    let feed = catalog.changes(start, 100).unwrap();
    let assets: Vec<AssetId> = feed.iter().map(|change| change.asset).collect();
    assert_eq!(
        assets,
        [b, a, b, a, b],
        "ingest, new path, insights, job, delete"
    );
    assert!(
        feed.windows(2).all(|w| w[0].seq < w[1].seq),
        "in commit order"
    );
    assert_eq!(catalog.last_change().unwrap(), feed.last().unwrap().seq);
    assert_eq!(
        catalog.changes(start, 2).unwrap(),
        feed[..2],
        "paged by limit"
    );
    assert_eq!(catalog.changes(feed[2].seq, 100).unwrap(), feed[3..]);

    // Pruning forgets what a consumer applied, never what comes after.
    assert_eq!(catalog.prune_changes(feed[2].seq).unwrap() as usize, 4);
    assert_eq!(catalog.changes(0, 100).unwrap(), feed[3..]);
    let last = catalog.last_change().unwrap();
    catalog.prune_changes(last).unwrap();
    assert!(catalog.changes(0, 100).unwrap().is_empty());
    assert_eq!(
        catalog.last_change().unwrap(),
        last,
        "pruning keeps the position"
    );
    let c2 = id_of(record_one(&catalog, &new_asset(c, b"c", "/c")));
    let after = catalog.changes(last, 100).unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].asset, c2);
    assert!(after[0].seq > last, "numbers are never reused");
}

/// A job's new results replace its old ones (which stay until then) and leave other
/// analyzers' results alone.
pub fn queue_results_replace_old_ones<C: Catalog + JobQueue>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let a = id_of(record_one(&catalog, &new_asset(c, b"a", "/a")));
    let mut other = insight(a, Place::Whole);
    other.analyzer = "ocr".into();
    catalog.add_insights(&[other]).unwrap();
    catalog.enqueue(&jobs_for(a, &[("labels", 0)])).unwrap();
    let job = &catalog.claim("w", &names(&["labels"]), 1, LEASE).unwrap()[0];
    assert!(
        catalog
            .finish(job.id, "w", &succeeded(a, "labels", "1", "old"))
            .unwrap()
    );
    catalog.requeue_stale("labels", "2").unwrap();
    // While the new version runs, the old results are still there.
    let job = &catalog.claim("w", &names(&["labels"]), 1, LEASE).unwrap()[0];
    let labels = |c: &C| -> Vec<InsightValue> {
        c.insights(a)
            .unwrap()
            .into_iter()
            .filter(|i| i.analyzer == "labels")
            .map(|i| i.value)
            .collect()
    };
    assert_eq!(labels(&catalog), [label("old")]);
    assert!(
        catalog
            .finish(job.id, "w", &succeeded(a, "labels", "2", "new"))
            .unwrap()
    );
    assert_eq!(labels(&catalog), [label("new")]);
    assert_eq!(
        catalog.insights(a).unwrap().len(),
        2,
        "other analyzers' results stay"
    );
    let jobs = catalog.jobs_of(a).unwrap();
    assert_eq!(jobs[0].analyzer_version.as_deref(), Some("2"));
}

/// A job whose insights others read queues those others again, in its own transaction; a
/// dependent running on the old insights loses its lease and its result is dropped.
pub fn queue_requeues_dependents<C: Catalog + JobQueue>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let a = id_of(record_one(&catalog, &new_asset(c, b"a", "/a")));
    let b = id_of(record_one(&catalog, &new_asset(c, b"b", "/b")));
    catalog
        .enqueue(&jobs_for(a, &[("labels", 10), ("embedding", 0)]))
        .unwrap();
    catalog.enqueue(&jobs_for(b, &[("embedding", 0)])).unwrap();
    let state = |asset: AssetId, analyzer: &str| {
        let jobs = catalog.jobs_of(asset).unwrap();
        jobs.into_iter()
            .find(|j| j.analyzer == analyzer)
            .map(|j| j.state)
    };

    // The dependent ran first (on no labels) and succeeded.
    let embed = catalog
        .claim("w1", &names(&["embedding"]), 2, LEASE)
        .unwrap();
    assert_eq!(embed.len(), 2);
    for job in &embed {
        let done = succeeded(job.asset, "embedding", "1", "from nothing");
        assert!(catalog.finish(job.id, "w1", &done).unwrap());
    }
    assert_eq!(state(a, "embedding"), Some(JobState::Succeeded));

    // Labels land: the embedding of that asset, and only that one, is queued again.
    let labels = &catalog.claim("w2", &names(&["labels"]), 1, LEASE).unwrap()[0];
    let mut done = succeeded(a, "labels", "1", "cat");
    if let Outcome::Succeeded { requeue, .. } = &mut done {
        requeue.push("embedding".into());
        requeue.push("not-queued-here".into());
    }
    assert!(catalog.finish(labels.id, "w2", &done).unwrap());
    assert_eq!(state(a, "embedding"), Some(JobState::Queued));
    assert_eq!(state(b, "embedding"), Some(JobState::Succeeded));
    assert_eq!(state(a, "not-queued-here"), None, "requeue adds no job");

    // A dependent that is running when its inputs change loses its lease.
    let running = &catalog
        .claim("w1", &names(&["embedding"]), 1, LEASE)
        .unwrap()[0];
    let labels_again = {
        catalog.requeue_stale("labels", "2").unwrap();
        catalog.claim("w2", &names(&["labels"]), 1, LEASE).unwrap()[0].clone()
    };
    let mut done = succeeded(a, "labels", "2", "dog");
    if let Outcome::Succeeded { requeue, .. } = &mut done {
        requeue.push("embedding".into());
    }
    assert!(catalog.finish(labels_again.id, "w2", &done).unwrap());
    let stale = succeeded(a, "embedding", "1", "from cat");
    assert!(
        !catalog.finish(running.id, "w1", &stale).unwrap(),
        "a result computed from replaced insights is dropped"
    );
    assert_eq!(state(a, "embedding"), Some(JobState::Queued));
    let fresh = &catalog
        .claim("w1", &names(&["embedding"]), 1, LEASE)
        .unwrap()[0];
    assert_eq!(
        fresh.attempts, 1,
        "a requeued job starts its attempts afresh"
    );
}

/// A renewed lease keeps a long job with its worker; a job whose workers keep vanishing is
/// failed after [`MAX_ABANDONED_CLAIMS`] claims, with an error that says so.
pub fn queue_renews_leases_and_gives_up_on_abandoned_jobs<C: Catalog + JobQueue>(
    make: &dyn Fn() -> C,
) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let a = id_of(record_one(&catalog, &new_asset(c, b"a", "/a")));
    catalog.enqueue(&jobs_for(a, &[("ocr", 0)])).unwrap();
    let short = Duration::from_millis(30);
    let job = catalog.claim("w1", &names(&["ocr"]), 1, short).unwrap()[0].clone();
    assert!(catalog.renew(job.id, "w1", LEASE).unwrap());
    assert!(
        !catalog.renew(job.id, "w2", LEASE).unwrap(),
        "only the holder renews"
    );
    std::thread::sleep(Duration::from_millis(60));
    assert!(
        catalog
            .claim("w2", &names(&["ocr"]), 1, short)
            .unwrap()
            .is_empty(),
        "a renewed lease has not run out"
    );
    assert!(
        catalog
            .finish(job.id, "w1", &succeeded(a, "ocr", "1", "x"))
            .unwrap()
    );
    assert!(
        !catalog.renew(job.id, "w1", LEASE).unwrap(),
        "a finished job has no lease"
    );

    // Every worker that takes this job vanishes.
    let b = id_of(record_one(&catalog, &new_asset(c, b"b", "/b")));
    catalog.enqueue(&jobs_for(b, &[("ocr", 0)])).unwrap();
    for n in 0..MAX_ABANDONED_CLAIMS {
        let claimed = catalog
            .claim(&format!("doomed{n}"), &names(&["ocr"]), 1, short)
            .unwrap();
        assert_eq!(claimed.len(), 1, "claim {n}");
        std::thread::sleep(Duration::from_millis(40));
    }
    assert!(
        catalog
            .claim("w", &names(&["ocr"]), 1, short)
            .unwrap()
            .is_empty()
    );
    let job = &catalog.jobs_of(b).unwrap()[0];
    assert_eq!(job.state, JobState::Failed);
    assert!(
        job.last_error
            .as_deref()
            .unwrap_or("")
            .contains("worker stopped"),
        "{job:?}"
    );
}

/// A retryable failure waits for its backoff, an unrecoverable one fails at once, and every
/// lease uses up an attempt.
pub fn queue_retries_then_fails<C: Catalog + JobQueue>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let a = id_of(record_one(&catalog, &new_asset(c, b"a", "/a")));
    let b = id_of(record_one(&catalog, &new_asset(c, b"b", "/b")));
    catalog.enqueue(&jobs_for(a, &[("ocr", 0)])).unwrap();
    catalog.enqueue(&jobs_for(b, &[("ocr", 0)])).unwrap();
    let ocr = names(&["ocr"]);
    let jobs = catalog.claim("w", &ocr, 2, LEASE).unwrap();
    let failed = Outcome::Failed {
        error: "timed out".into(),
    };
    assert!(catalog.finish(jobs[0].id, "w", &failed).unwrap());
    let unrecoverable = Outcome::Unrecoverable {
        error: "cannot decode image /x.jpg: truncated".into(),
    };
    assert!(catalog.finish(jobs[1].id, "w", &unrecoverable).unwrap());
    // The retry waits for its backoff.
    assert!(catalog.claim("w", &ocr, 10, LEASE).unwrap().is_empty());
    let due = catalog.next_due(&ocr).unwrap().unwrap();
    assert!(due > UnixMillis::now());
    let states: Vec<_> = catalog
        .jobs_of(a)
        .unwrap()
        .into_iter()
        .chain(catalog.jobs_of(b).unwrap())
        .map(|j| (j.state, j.last_error))
        .collect();
    assert_eq!(
        states,
        [
            (JobState::Queued, Some("timed out".to_owned())),
            (
                JobState::Failed,
                Some("cannot decode image /x.jpg: truncated".to_owned())
            ),
        ]
    );
    // Past the last attempt a retryable failure is final. Attempts are counted at each lease,
    // so leases that run out (a crashing worker) use them up too.
    let d = id_of(record_one(&catalog, &new_asset(c, b"d", "/d")));
    catalog.enqueue(&jobs_for(d, &[("ocr", 0)])).unwrap();
    let mut last = None;
    for n in 1..=MAX_ATTEMPTS {
        std::thread::sleep(Duration::from_millis(3));
        let jobs = catalog.claim("w", &ocr, 1, Duration::ZERO).unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!((jobs[0].asset, jobs[0].attempts), (d, n));
        last = Some(jobs[0].id);
    }
    assert!(catalog.finish(last.unwrap(), "w", &failed).unwrap());
    let job = catalog.jobs_of(d).unwrap().remove(0);
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.last_error.as_deref(), Some("timed out"));
}

/// An expired lease is taken over, and the worker that lost it can no longer finish the job.
pub fn queue_leases_expire<C: Catalog + JobQueue>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let a = id_of(record_one(&catalog, &new_asset(c, b"a", "/a")));
    catalog.enqueue(&jobs_for(a, &[("labels", 0)])).unwrap();
    let labels = names(&["labels"]);
    // A worker takes the job and dies: its lease runs out.
    let dead = catalog.claim("dead", &labels, 1, Duration::ZERO).unwrap();
    assert_eq!(dead.len(), 1);
    std::thread::sleep(Duration::from_millis(5));
    let alive = catalog.claim("alive", &labels, 1, LEASE).unwrap();
    assert_eq!(alive.len(), 1, "an expired lease is taken over");
    assert_eq!(alive[0].id, dead[0].id);
    assert_eq!(alive[0].attempts, 2);
    // The first worker comes back to life: its result is refused, not recorded twice.
    assert!(
        !catalog
            .finish(dead[0].id, "dead", &succeeded(a, "labels", "1", "stale"))
            .unwrap()
    );
    assert!(
        catalog
            .finish(alive[0].id, "alive", &succeeded(a, "labels", "1", "ok"))
            .unwrap()
    );
    assert!(
        !catalog
            .finish(alive[0].id, "alive", &succeeded(a, "labels", "1", "ok"))
            .unwrap()
    );
    let found = catalog.insights(a).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].value, label("ok"));
}

/// Many workers on threads claim from one catalog at once: every job is leased exactly once.
pub fn queue_never_runs_a_job_twice<C: Catalog + JobQueue>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let mut all = Vec::new();
    for i in 0..200u32 {
        let id = id_of(record_one(
            &catalog,
            &new_asset(c, &i.to_le_bytes(), &format!("/{i}")),
        ));
        all.extend(jobs_for(id, &[("labels", 0)]));
    }
    catalog.enqueue(&all).unwrap();
    let labels = names(&["labels"]);
    let claimed: Vec<i64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|w| {
                let (catalog, labels) = (&catalog, &labels);
                s.spawn(move || {
                    let worker = format!("w{w}");
                    let mut mine = Vec::new();
                    loop {
                        let jobs = catalog.claim(&worker, labels, 7, LEASE).unwrap();
                        if jobs.is_empty() {
                            break;
                        }
                        for job in jobs {
                            let outcome = succeeded(job.asset, "labels", "1", "x");
                            assert!(catalog.finish(job.id, &worker, &outcome).unwrap());
                            mine.push(job.id);
                        }
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut sorted = claimed.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), claimed.len(), "no job leased twice");
    assert_eq!(claimed.len(), 200, "no job lost");
}

/// Tokens round-trip, check their secret, scopes and collections, and stay listed when
/// revoked.
pub fn tokens_and_grants<C: Catalog + crate::Access>(make: &dyn Fn() -> C) {
    use crate::access::{NewToken, Scope, split_token};
    let catalog = make();
    let admin = NewToken::generate("admin", vec![Scope::Admin], None).unwrap();
    let narrow = NewToken::generate(
        "press desk",
        vec![Scope::Read, Scope::Search],
        Some(vec!["press".into()]),
    )
    .unwrap();
    catalog.create_token(&admin.token).unwrap();
    catalog.create_token(&narrow.token).unwrap();

    let (id, secret) = split_token(&narrow.text).unwrap();
    let stored = catalog.token(id).unwrap().unwrap();
    assert_eq!(stored, narrow.token, "round trip");
    assert!(stored.verify(secret));
    assert!(!stored.verify(split_token(&admin.text).unwrap().1));
    assert!(stored.sees("press") && !stored.sees("archive"));
    assert!(stored.allows(Scope::Search) && !stored.allows(Scope::Ingest));
    assert_eq!(catalog.token("000000000000").unwrap(), None);
    assert_eq!(catalog.tokens().unwrap().len(), 2);

    catalog
        .set_token_collections(id, Some(&["archive".into(), "press".into()]))
        .unwrap();
    assert!(catalog.token(id).unwrap().unwrap().sees("archive"));
    catalog.set_token_collections(id, None).unwrap();
    assert_eq!(catalog.token(id).unwrap().unwrap().collections, None);
    assert!(catalog.set_token_collections("nope", None).is_err());

    assert!(catalog.revoke_token(id).unwrap());
    assert!(
        !catalog.revoke_token(id).unwrap(),
        "second revoke is a no-op"
    );
    let revoked = catalog.token(id).unwrap().unwrap();
    assert!(revoked.revoked_at.is_some() && !revoked.allows(Scope::Read));
    assert!(matches!(
        catalog.revoke_token("nope"),
        Err(Error::NotFound { .. })
    ));
}

/// Appends, batched or from many threads, make one unbroken chain.
pub fn audit_chain<C: Catalog + crate::Access>(make: &dyn Fn() -> C) {
    use crate::access::{ChainCheck, GENESIS, NewAuditEntry};
    let catalog = make();
    let entry = |n: u32| NewAuditEntry {
        actor: "token:test".into(),
        action: "search".into(),
        target: n.is_multiple_of(2).then(|| format!("asset-{n}")),
        detail: serde_json::json!({ "query": format!("q{n}"), "hits": n }),
    };
    let mut written = catalog.append_audit(&[entry(0)]).unwrap();
    written.extend(
        catalog
            .append_audit(&(1..5).map(entry).collect::<Vec<_>>())
            .unwrap(),
    );
    assert_eq!(written[0].prev, GENESIS);
    for pair in written.windows(2) {
        assert_eq!(pair[1].prev, pair[0].hash);
        assert_eq!(pair[1].seq, pair[0].seq + 1);
    }
    let read = catalog.audit_entries(0, 100).unwrap();
    assert_eq!(read, written);
    assert_eq!(catalog.audit_entries(3, 1).unwrap(), written[3..4]);
    let mut check = ChainCheck::default();
    for e in &read {
        check.next(e).unwrap();
    }
    assert_eq!(check.head().0, 5);

    // Appends from many threads still make one chain.
    std::thread::scope(|s| {
        for t in 0..4 {
            let catalog = &catalog;
            s.spawn(move || {
                for n in 0..10 {
                    catalog.append_audit(&[entry(t * 100 + n)]).unwrap();
                }
            });
        }
    });
    let mut check = ChainCheck::default();
    for e in catalog.audit_entries(0, 1000).unwrap() {
        check.next(&e).unwrap();
    }
    assert_eq!(check.checked, 45);
}
