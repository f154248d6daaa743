//! Conformance: wrapped data keys (encryption at rest), kept once per owner, destroyed with
//! what they encrypt, rewrapped and paged for rotation.

use std::time::Duration;

use aperture_core::KeyOwner;

use super::*;

/// A wrapped key that tells tests apart: the catalog stores opaque bytes.
fn wrapped(name: &str) -> Vec<u8> {
    format!("wrapped {name}").into_bytes()
}

/// The first key kept for an owner stays: a second one is not recorded and the first is
/// returned. An asset that does not exist gets no key.
pub fn data_keys_keep_the_first<C: Catalog>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let asset = id_of(record_one(&catalog, &new_asset(c, b"content", "/a")));
    let hash = ContentHash::of(b"content");
    for owner in [
        KeyOwner::Names,
        KeyOwner::Blob(hash),
        KeyOwner::Asset(asset),
    ] {
        assert_eq!(catalog.data_key(owner).unwrap(), None, "{owner:?}");
        assert_eq!(
            catalog.keep_data_key(owner, &wrapped("first")).unwrap(),
            Some(wrapped("first")),
            "{owner:?}"
        );
        assert_eq!(
            catalog.keep_data_key(owner, &wrapped("second")).unwrap(),
            Some(wrapped("first")),
            "{owner:?}: the first key stays"
        );
        assert_eq!(
            catalog.data_key(owner).unwrap(),
            Some(wrapped("first")),
            "{owner:?}"
        );
    }

    // An asset erased (or never recorded) gets no key, and none is stored.
    let missing = AssetId::new();
    assert_eq!(
        catalog
            .keep_data_key(KeyOwner::Asset(missing), &wrapped("missing"))
            .unwrap(),
        None
    );
    assert_eq!(catalog.data_key(KeyOwner::Asset(missing)).unwrap(), None);
    let stored = catalog.data_keys_page(None, 100).unwrap();
    assert_eq!(stored.len(), 3, "{stored:?}");
    assert!(
        stored
            .iter()
            .all(|(owner, key)| *owner != KeyOwner::Asset(missing) && *key == wrapped("first"))
    );
}

/// Erasing an asset destroys its key, and its blob's key when it was the blob's last asset;
/// a blob still used keeps its key. Claiming an unused blob's deletion destroys its key; a
/// refused erasure (legal hold) destroys nothing.
pub fn erasure_destroys_data_keys<C: Catalog>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let d = catalog.ensure_collection("d").unwrap().id;
    let hash = ContentHash::of(b"shared");
    let in_c = id_of(record_one(&catalog, &new_asset(c, b"shared", "/s")));
    let in_d = id_of(record_one(&catalog, &new_asset(d, b"shared", "/s")));
    for (owner, name) in [
        (KeyOwner::Blob(hash), "blob"),
        (KeyOwner::Asset(in_c), "in c"),
        (KeyOwner::Asset(in_d), "in d"),
        (KeyOwner::Names, "names"),
    ] {
        assert_eq!(
            catalog.keep_data_key(owner, &wrapped(name)).unwrap(),
            Some(wrapped(name))
        );
    }

    // A legal hold refuses the erasure, keys included.
    let hold = |on: bool| {
        catalog
            .change_collection(
                "c",
                &PolicyChange {
                    legal_hold: Some(on),
                    ..PolicyChange::default()
                },
            )
            .unwrap()
    };
    hold(true);
    assert!(matches!(
        catalog.delete_asset(in_c),
        Err(Error::LegalHold { .. })
    ));
    assert_eq!(
        catalog.data_key(KeyOwner::Asset(in_c)).unwrap(),
        Some(wrapped("in c"))
    );
    hold(false);

    // The blob is still used by the asset in `d`: its key stays.
    let deletion = catalog.delete_asset(in_c).unwrap();
    assert_eq!(deletion.claim, None);
    assert_eq!(catalog.data_key(KeyOwner::Asset(in_c)).unwrap(), None);
    assert_eq!(
        catalog
            .keep_data_key(KeyOwner::Asset(in_c), &wrapped("again"))
            .unwrap(),
        None,
        "an erased asset gets no new key"
    );
    assert_eq!(
        catalog.data_key(KeyOwner::Blob(hash)).unwrap(),
        Some(wrapped("blob"))
    );
    assert_eq!(
        catalog.data_key(KeyOwner::Asset(in_d)).unwrap(),
        Some(wrapped("in d"))
    );

    // Its last asset goes: the blob is claimed and its key destroyed with it.
    let deletion = catalog.delete_asset(in_d).unwrap();
    assert!(deletion.claim.is_some());
    assert_eq!(catalog.data_key(KeyOwner::Asset(in_d)).unwrap(), None);
    assert_eq!(catalog.data_key(KeyOwner::Blob(hash)).unwrap(), None);
    assert_eq!(
        catalog.data_key(KeyOwner::Names).unwrap(),
        Some(wrapped("names")),
        "the names' key stays as long as the lake"
    );

    // fsck claims an unused blob: its key goes; a used blob's claim is refused, key kept.
    let orphan = ContentHash::of(b"orphan");
    catalog
        .keep_data_key(KeyOwner::Blob(orphan), &wrapped("orphan"))
        .unwrap();
    assert!(catalog.claim_blob_deletion(orphan).unwrap().is_some());
    assert_eq!(catalog.data_key(KeyOwner::Blob(orphan)).unwrap(), None);
    let used = ContentHash::of(b"used");
    record_one(&catalog, &new_asset(c, b"used", "/u"));
    catalog
        .keep_data_key(KeyOwner::Blob(used), &wrapped("used"))
        .unwrap();
    assert_eq!(catalog.claim_blob_deletion(used).unwrap(), None);
    assert_eq!(
        catalog.data_key(KeyOwner::Blob(used)).unwrap(),
        Some(wrapped("used"))
    );
    let left: Vec<KeyOwner> = catalog
        .data_keys_page(None, 100)
        .unwrap()
        .into_iter()
        .map(|(owner, _)| owner)
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&KeyOwner::Names) && left.contains(&KeyOwner::Blob(used)));
}

/// Rewrapping replaces a key only while it is still the one read (compare-and-swap).
pub fn data_keys_rewrap_compare_and_swap<C: Catalog>(make: &dyn Fn() -> C) {
    let catalog = make();
    let owner = KeyOwner::Blob(ContentHash::of(b"x"));
    assert!(
        !catalog
            .rewrap_data_key(owner, &wrapped("old"), &wrapped("new"))
            .unwrap(),
        "no key to rewrap"
    );
    assert_eq!(catalog.data_key(owner).unwrap(), None);
    catalog.keep_data_key(owner, &wrapped("old")).unwrap();
    assert!(
        !catalog
            .rewrap_data_key(owner, &wrapped("other"), &wrapped("new"))
            .unwrap()
    );
    assert_eq!(catalog.data_key(owner).unwrap(), Some(wrapped("old")));
    assert!(
        catalog
            .rewrap_data_key(owner, &wrapped("old"), &wrapped("new"))
            .unwrap()
    );
    assert_eq!(catalog.data_key(owner).unwrap(), Some(wrapped("new")));
    assert!(
        !catalog
            .rewrap_data_key(owner, &wrapped("old"), &wrapped("newer"))
            .unwrap(),
        "a rotation that read the old key changes nothing"
    );
    assert_eq!(catalog.data_key(owner).unwrap(), Some(wrapped("new")));
    // Other owners are untouched.
    catalog
        .keep_data_key(KeyOwner::Names, &wrapped("new"))
        .unwrap();
    assert!(
        catalog
            .rewrap_data_key(owner, &wrapped("new"), &wrapped("newest"))
            .unwrap()
    );
    assert_eq!(
        catalog.data_key(KeyOwner::Names).unwrap(),
        Some(wrapped("new"))
    );
}

/// Paging returns every key once, in the order of its owner's bytes.
pub fn data_keys_page_through_every_owner<C: Catalog>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let mut owners = vec![KeyOwner::Names];
    for n in 0..6u8 {
        let content = [n; 3];
        let asset = id_of(record_one(
            &catalog,
            &new_asset(c, &content, &format!("/{n}")),
        ));
        owners.push(KeyOwner::Asset(asset));
        owners.push(KeyOwner::Blob(ContentHash::of(&content)));
    }
    for owner in &owners {
        let key = owner.to_bytes();
        catalog.keep_data_key(*owner, &key).unwrap();
    }
    owners.sort_by_key(KeyOwner::to_bytes);
    assert_eq!(catalog.data_keys_page(None, 0).unwrap(), []);

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = catalog.data_keys_page(after, 4).unwrap();
        assert!(page.len() <= 4);
        let Some(last) = page.last() else {
            break;
        };
        after = Some(last.0);
        seen.extend(page);
    }
    let expected: Vec<(KeyOwner, Vec<u8>)> = owners.iter().map(|o| (*o, o.to_bytes())).collect();
    assert_eq!(seen, expected, "every key once, in owner-bytes order");
    assert_eq!(catalog.data_keys_page(None, 100).unwrap(), expected);
    let from_middle = catalog.data_keys_page(Some(owners[5]), 3).unwrap();
    assert_eq!(from_middle, expected[6..9]);
}

/// fsck drops the keys of blobs no asset uses that are older than asked, as a claim: an
/// ingest that read the blob's generation before records nothing. Used or young keys stay.
pub fn unused_blob_keys_are_dropped<C: Catalog>(make: &dyn Fn() -> C) {
    let catalog = make();
    let c = catalog.ensure_collection("c").unwrap().id;
    let used = ContentHash::of(b"used");
    let asset = id_of(record_one(&catalog, &new_asset(c, b"used", "/u")));
    let orphan = ContentHash::of(b"orphan");
    for owner in [
        KeyOwner::Blob(orphan),
        KeyOwner::Blob(used),
        KeyOwner::Asset(asset),
        KeyOwner::Names,
    ] {
        catalog.keep_data_key(owner, &wrapped("old")).unwrap();
    }
    std::thread::sleep(Duration::from_millis(5));
    let cutoff = UnixMillis::now();
    std::thread::sleep(Duration::from_millis(5));
    let young = ContentHash::of(b"young");
    catalog
        .keep_data_key(KeyOwner::Blob(young), &wrapped("young"))
        .unwrap();

    assert_eq!(catalog.drop_unused_blob_keys(UnixMillis(0)).unwrap(), 0);
    let seen = catalog.blob_generation(orphan).unwrap();
    assert_eq!(catalog.drop_unused_blob_keys(cutoff).unwrap(), 1);
    assert_eq!(catalog.data_key(KeyOwner::Blob(orphan)).unwrap(), None);
    for (owner, key) in [
        (KeyOwner::Blob(used), "old"),
        (KeyOwner::Asset(asset), "old"),
        (KeyOwner::Names, "old"),
        (KeyOwner::Blob(young), "young"),
    ] {
        assert_eq!(
            catalog.data_key(owner).unwrap(),
            Some(wrapped(key)),
            "{owner:?}"
        );
    }
    assert_eq!(catalog.drop_unused_blob_keys(cutoff).unwrap(), 0);

    // An ingest that was handed the dropped key records nothing; with a new key it does.
    let mut item = new_asset(c, b"orphan", "/o");
    item.generation_seen = seen.generation;
    assert_eq!(record_one(&catalog, &item), Recorded::BlobRaced);
    item.generation_seen = catalog.blob_generation(orphan).unwrap().generation;
    assert_eq!(
        catalog
            .keep_data_key(KeyOwner::Blob(orphan), &wrapped("new"))
            .unwrap(),
        Some(wrapped("new"))
    );
    assert!(matches!(record_one(&catalog, &item), Recorded::Created(_)));
    let later = UnixMillis(UnixMillis::now().0 + 60_000);
    assert_eq!(
        catalog.drop_unused_blob_keys(later).unwrap(),
        1,
        "only the young orphan: the others are used"
    );
    assert_eq!(catalog.data_key(KeyOwner::Blob(young)).unwrap(), None);
    assert_eq!(
        catalog.data_key(KeyOwner::Blob(orphan)).unwrap(),
        Some(wrapped("new"))
    );
}

/// Keys made at once by many processes end up one; an asset's key never outlives an erasure
/// that races with its making; and an asset recorded while its blob's last other asset is
/// erased still has the blob key it was handed, or records nothing.
pub fn data_keys_under_races<C: Catalog>(make: &dyn Fn() -> C) {
    let catalog = make();
    let racers = 8;
    let start = std::sync::Barrier::new(racers);
    let kept: Vec<Option<Vec<u8>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..racers)
            .map(|n| {
                let start = &start;
                let catalog = &catalog;
                s.spawn(move || {
                    start.wait();
                    catalog
                        .keep_data_key(KeyOwner::Names, &wrapped(&n.to_string()))
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let stored = catalog.data_key(KeyOwner::Names).unwrap();
    assert!(stored.is_some());
    assert!(kept.iter().all(|k| *k == stored), "{kept:?} vs {stored:?}");

    let first = catalog.ensure_collection("first").unwrap().id;
    let second = catalog.ensure_collection("second").unwrap().id;
    for round in 0..50u32 {
        let content = format!("shared bytes {round}");
        let old = id_of(record_one(
            &catalog,
            &new_asset(first, content.as_bytes(), "/old"),
        ));
        let mut item = new_asset(second, content.as_bytes(), "/new");
        let blob = KeyOwner::Blob(item.hash);
        catalog.keep_data_key(blob, &wrapped("old")).unwrap();
        item.generation_seen = catalog.blob_generation(item.hash).unwrap().generation;
        let start = std::sync::Barrier::new(3);
        let (ingested, deleted) = std::thread::scope(|s| {
            let ingest = s.spawn(|| {
                start.wait();
                let key = catalog.keep_data_key(blob, &wrapped("new")).unwrap();
                (key, record_one(&catalog, &item))
            });
            let delete = s.spawn(|| {
                start.wait();
                catalog.delete_asset(old).unwrap()
            });
            let derive = s.spawn(|| {
                start.wait();
                catalog
                    .keep_data_key(KeyOwner::Asset(old), &wrapped("derived"))
                    .unwrap()
            });
            derive.join().unwrap();
            (ingest.join().unwrap(), delete.join().unwrap())
        });
        assert_eq!(
            catalog.data_key(KeyOwner::Asset(old)).unwrap(),
            None,
            "round {round}: an erased asset's key outlived it"
        );
        match ingested {
            (key, Recorded::Created(new)) => {
                assert!(deleted.claim.is_none(), "round {round}");
                assert_eq!(
                    catalog.data_key(blob).unwrap(),
                    key,
                    "round {round}: the recorded asset's blob lost the key it was handed"
                );
                catalog.delete_asset(new).unwrap();
            }
            (_, Recorded::BlobRaced) => assert!(deleted.claim.is_some(), "round {round}"),
            other => panic!("round {round}: {other:?}"),
        }
        if let Some(claim) = catalog.claim_blob_deletion(item.hash).unwrap() {
            catalog.blob_deleted(claim).unwrap();
        }
        assert_eq!(catalog.data_key(blob).unwrap(), None, "round {round}");
    }
}
