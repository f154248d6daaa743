//! Conformance: collections, assets, sources, listing, deletion and insights, and a check
//! against a `BTreeMap` model.

use super::*;

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
    assert!(catalog.record_batch_limit() >= batch.len());
    let out = catalog.record(&batch).unwrap();
    assert!(matches!(out[0], Recorded::Created(_)));
    assert!(matches!(out[1], Recorded::Created(_)));
    assert_eq!(out[2], Recorded::Duplicate(id_of(out[0])));

    // A path whose file changed has two sources; the newest one is known. Asked many at once
    // (repeats and misses among them) the answers are the same as asked one by one, in
    // order, and only this collection's sources answer.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let changed = id_of(record_one(
        &catalog,
        &new_asset(photos, b"new bytes", "/in/copy-of-a.jpg"),
    ));
    assert_ne!(changed, id);
    let paths: [&[u8]; 5] = [
        b"/in/copy-of-a.jpg",
        b"/in/zzz",
        b"/in/a.jpg",
        b"/in/copy-of-a.jpg",
        b"/elsewhere/a.jpg",
    ];
    let many = catalog.known_sources(photos, &paths).unwrap();
    let one_by_one: Vec<_> = paths
        .iter()
        .map(|p| catalog.known_source(photos, p).unwrap())
        .collect();
    assert_eq!(many, one_by_one);
    assert_eq!(many[0].as_ref().map(|k| k.asset), Some(changed));
    assert_eq!(many[2].as_ref().map(|k| k.asset), Some(id));
    assert_eq!(catalog.known_sources(photos, &[]).unwrap(), []);
    // Past the size of one query's list too, a known path on both sides of its bounds.
    let misses: Vec<Vec<u8>> = (0..1200)
        .map(|i| format!("/none/{i}").into_bytes())
        .collect();
    let mut long: Vec<&[u8]> = misses.iter().map(Vec::as_slice).collect();
    for at in [0, 499, 500, 501, 999, 1000, 1199] {
        long[at] = b"/in/a.jpg";
    }
    let answers = catalog.known_sources(photos, &long).unwrap();
    assert_eq!(answers.len(), long.len());
    for (path, answer) in long.iter().zip(&answers) {
        let expected = (*path == b"/in/a.jpg").then_some(id);
        assert_eq!(answer.as_ref().map(|k| k.asset), expected);
    }
    // Two sources at one path recorded in one transaction are last seen at the same time:
    // the higher asset id is the newest, whichever way the question is asked.
    let tie = [
        new_asset(photos, b"first", "/tie/x"),
        new_asset(photos, b"second", "/tie/x"),
    ];
    let ids: Vec<AssetId> = catalog
        .record(&tie)
        .unwrap()
        .into_iter()
        .map(id_of)
        .collect();
    let highest = *ids.iter().max_by_key(|id| id.as_bytes()).unwrap();
    let one = catalog.known_source(photos, b"/tie/x").unwrap().unwrap();
    let many = catalog.known_sources(photos, &[b"/tie/x"]).unwrap();
    assert_eq!(one.asset, highest);
    assert_eq!(many, [Some(one)]);
    let there = catalog.known_sources(other, &paths[..3]).unwrap();
    assert_eq!(there[2].as_ref().map(|k| k.asset), Some(elsewhere));
    assert!(there[0].is_none() && there[1].is_none());
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

/// An ingest and a deletion racing over one blob, over and over: never does the ingest record
/// an asset while the deletion claims the blob (the blob would be deleted under it).
pub fn recording_and_deleting_one_blob_at_once<C: Catalog>(make: &dyn Fn() -> C) {
    let catalog = make();
    let first = catalog.ensure_collection("first").unwrap().id;
    let second = catalog.ensure_collection("second").unwrap().id;
    for round in 0..100u32 {
        let content = format!("shared bytes {round}");
        let old = id_of(record_one(
            &catalog,
            &new_asset(first, content.as_bytes(), "/old"),
        ));
        let mut item = new_asset(second, content.as_bytes(), "/new");
        item.generation_seen = catalog.blob_generation(item.hash).unwrap().generation;
        let start = std::sync::Barrier::new(2);
        let (recorded, deleted) = std::thread::scope(|s| {
            let record = s.spawn(|| {
                start.wait();
                record_one(&catalog, &item)
            });
            let delete = s.spawn(|| {
                start.wait();
                catalog.delete_asset(old).unwrap()
            });
            (record.join().unwrap(), delete.join().unwrap())
        });
        match recorded {
            Recorded::Created(new) => {
                assert!(
                    deleted.claim.is_none(),
                    "round {round}: the blob was claimed for deletion under a new asset"
                );
                catalog.delete_asset(new).unwrap();
            }
            Recorded::BlobRaced => assert!(deleted.claim.is_some(), "round {round}"),
            other => panic!("round {round}: {other:?}"),
        }
        if let Some(claim) = catalog.claim_blob_deletion(item.hash).unwrap() {
            catalog.blob_deleted(claim).unwrap();
        }
    }
}

/// Retention lists what ran out, oldest first, in collections not on hold; a hold refuses
/// erasure, and lifting it lets both go on.
pub fn retention_and_legal_hold<C: Catalog>(make: &dyn Fn() -> C) {
    let catalog = make();
    let short = catalog.ensure_collection("short").unwrap();
    assert_eq!((short.retention_secs, short.legal_hold), (None, false));
    let kept = catalog.ensure_collection("kept").unwrap().id;
    let first = id_of(record_one(&catalog, &new_asset(short.id, b"one", "/s/1")));
    let second = id_of(record_one(&catalog, &new_asset(short.id, b"two", "/s/2")));
    let other = id_of(record_one(&catalog, &new_asset(kept, b"three", "/k/3")));
    let now = UnixMillis::now();
    let later = UnixMillis(now.0 + 60_000);
    assert!(
        catalog.expired_assets(later, 10).unwrap().is_empty(),
        "no retention set"
    );

    // "short": 30 s retention, held or not.
    let hold = |on: bool| {
        catalog.change_collection(
            "short",
            &PolicyChange {
                retention_secs: Some(Some(30)),
                legal_hold: Some(on),
                read_plates: Some(false),
            },
        )
    };
    let set = hold(false).unwrap();
    assert_eq!((set.retention_secs, set.legal_hold), (Some(30), false));
    assert!(
        catalog.expired_assets(now, 10).unwrap().is_empty(),
        "not yet"
    );
    let expired = catalog.expired_assets(later, 10).unwrap();
    assert_eq!(expired.len(), 2);
    assert!(expired.contains(&first) && expired.contains(&second) && !expired.contains(&other));
    assert_eq!(catalog.expired_assets(later, 1).unwrap().len(), 1);

    // On hold: nothing expires, and nothing is erased by hand either.
    let held = hold(true).unwrap();
    assert!(held.legal_hold);
    assert!(catalog.expired_assets(later, 10).unwrap().is_empty());
    match catalog.delete_asset(first) {
        Err(Error::LegalHold { collection }) => assert_eq!(collection, "short"),
        other => panic!("erased under hold: {other:?}"),
    }
    assert!(catalog.asset(first).is_ok(), "nothing changed");
    // Other collections are not held.
    catalog.delete_asset(other).unwrap();

    // Lifted: retention and erasure go on.
    hold(false).unwrap();
    assert_eq!(catalog.expired_assets(later, 10).unwrap().len(), 2);
    catalog.delete_asset(first).unwrap();
    assert_eq!(catalog.expired_assets(later, 10).unwrap(), [second]);
    assert!(matches!(
        catalog.change_collection("nope", &PolicyChange::default()),
        Err(Error::NotFound { .. })
    ));

    // Plates are not read unless a collection says so.
    assert!(!catalog.collection("kept").unwrap().read_plates);
    assert!(
        catalog
            .change_collection(
                "kept",
                &PolicyChange {
                    retention_secs: None,
                    legal_hold: Some(false),
                    read_plates: Some(true),
                }
            )
            .unwrap()
            .read_plates
    );
    assert!(catalog.collection("kept").unwrap().read_plates);
    assert!(!catalog.collection("short").unwrap().read_plates);
}
