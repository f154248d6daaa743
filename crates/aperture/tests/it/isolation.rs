//! Collection isolation over HTTP with the real models: tokens granted several collections
//! see those and nothing of the others — not in listings, search, similar, duplicates,
//! thumbnails, status or errors. The lake: three collections sharing a photo (the same bytes
//! in two of them) and near copies of photos across them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::real_media::{env_dir, with_models};
use crate::server::Server;

/// A photo made smaller and recompressed: a near duplicate of it.
fn half(from: &Path, to: &Path) {
    let image = image::open(from).unwrap().to_rgb8();
    let (w, h) = image.dimensions();
    let small =
        image::imageops::resize(&image, w / 2, h / 2, image::imageops::FilterType::Triangle);
    let mut out = std::fs::File::create(to).unwrap();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&small)
        .unwrap();
}

fn token(ap: &crate::Aperture, name: &str, scopes: &str, collections: &[&str]) -> String {
    let mut args = vec!["token", "create", "--name", name, "--scopes", scopes];
    for c in collections {
        args.extend(["--collection", c]);
    }
    ap.json(&args)["token"].as_str().unwrap().to_owned()
}

#[test]
fn tokens_for_several_collections_see_only_those() {
    let ap = with_models();
    let samples = env_dir("APERTURE_TEST_SAMPLES").join("photos/imagenet");
    let mut photos: Vec<PathBuf> = std::fs::read_dir(&samples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    photos.sort();
    let (a, b, c) = (&photos[0], &photos[7], &photos[14]);
    let root = ap.inputs();
    let place = |collection: &str, name: &str, make: &dyn Fn(&Path)| {
        let dir = root.join(collection);
        std::fs::create_dir_all(&dir).unwrap();
        make(&dir.join(name));
    };
    place("press", "a.jpg", &|to| {
        std::fs::copy(a, to).unwrap();
    });
    place("press", "b-half.jpg", &|to| half(b, to));
    place("archive", "b.jpg", &|to| {
        std::fs::copy(b, to).unwrap();
    });
    // The same bytes as press's a.jpg and archive's b.jpg, a near copy of a, and a photo of
    // its own. Ingested first, so its assets are the oldest: the first member of groups.
    place("leaks", "a.jpg", &|to| {
        std::fs::copy(a, to).unwrap();
    });
    place("leaks", "a-half.jpg", &|to| half(a, to));
    place("leaks", "b.jpg", &|to| {
        std::fs::copy(b, to).unwrap();
    });
    place("leaks", "c.jpg", &|to| {
        std::fs::copy(c, to).unwrap();
    });
    for collection in ["leaks", "press", "archive"] {
        ap.ingest(&root.join(collection), collection);
    }
    let done = ap.json(&["index"]);
    assert_eq!(done["failed"], 0, "{done}");

    let admin = token(&ap, "admin", "admin", &[]);
    let desk = token(&ap, "desk", "read,search", &["press", "archive"]);
    let source = token(&ap, "source", "read,search", &["leaks"]);
    let server = Server::start(&ap, &admin);
    server.wait_indexed(7);
    let listing = server.json("/api/v1/assets?limit=100", &admin);
    let id: BTreeMap<String, String> = listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                format!(
                    "{}/{}",
                    a["collection"].as_str().unwrap(),
                    a["name"].as_str().unwrap()
                ),
                a["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(id.len(), 7, "{listing}");
    let collection_of: BTreeMap<String, String> = id
        .iter()
        .map(|(k, v)| (v.clone(), k.split('/').next().unwrap().to_owned()))
        .collect();
    let get = |path: &str, token: &str| -> (u16, Value) {
        let (status, body) = server.call("GET", path, Some(token));
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    };
    let group_collections = |groups: &Value| -> Vec<(String, BTreeSet<String>)> {
        groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                let names = g["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| collection_of[m["asset"].as_str().unwrap()].clone())
                    .collect();
                (g["kind"].as_str().unwrap().to_owned(), names)
            })
            .collect()
    };

    // The admin sees what spans collections: the shared bytes and the near copy in leaks.
    let all = get("/api/v1/duplicates", &admin).1;
    let groups = group_collections(&all);
    assert!(
        groups.contains(&("exact".into(), ["leaks".into(), "press".into()].into())),
        "{all}"
    );
    assert!(
        groups
            .iter()
            .any(|(kind, c)| kind == "near" && c.contains("leaks") && c.contains("press")),
        "{all}"
    );

    for (token, sees) in [(&desk, vec!["press", "archive"]), (&source, vec!["leaks"])] {
        let sees: BTreeSet<String> = sees.into_iter().map(String::from).collect();
        let visible = |asset: &str| sees.contains(&collection_of[asset]);
        let hidden: Vec<&String> = id.values().filter(|a| !visible(a)).collect();
        let shown: Vec<&String> = id.values().filter(|a| visible(a)).collect();
        let message_for = |path: String| {
            let (status, body) = get(&path, token);
            assert_eq!(status, 404, "{path}: {body}");
            body["error"]["message"].as_str().unwrap().to_owned()
        };
        let unknown = "0190c00000007000800000000000abcd";

        // Listings: exactly the visible assets.
        let listed: BTreeSet<String> = get("/api/v1/assets?limit=100", token).1["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(listed, shown.iter().map(|s| s.to_string()).collect());
        // Status counts the visible collections only.
        let status = get("/api/v1/status", token).1;
        assert_eq!(status["assets"], shown.len(), "{status}");
        assert_eq!(status["jobs"]["queued"], 0, "{status}");

        // Duplicates: computed among the visible assets, every distance shown; the near
        // copies each token can see are found (b and its half for the desk, a and its half
        // for the source).
        let dup = get("/api/v1/duplicates", token).1;
        let near_within = group_collections(&dup)
            .into_iter()
            .filter(|(kind, _)| kind == "near")
            .count();
        assert!(near_within >= 1, "no near group found: {dup}");
        for (kind, collections) in group_collections(&dup) {
            assert!(collections.is_subset(&sees), "{kind} group across: {dup}");
        }
        for group in dup["groups"].as_array().unwrap() {
            assert!(group["kind"] != "exact", "the other copy is hidden: {dup}");
            for member in &group["members"].as_array().unwrap()[1..] {
                assert!(member["similarity"].is_number(), "a distance hidden: {dup}");
            }
        }

        for asset in &shown {
            // Similar and an asset's own duplicates: only visible assets come back.
            for path in [
                format!("/api/v1/assets/{asset}/similar?limit=50"),
                format!("/api/v1/search?q=similar:{}", &asset[..28]),
            ] {
                let (status, found) = get(&path, token);
                assert_eq!(status, 200, "{path}: {found}");
                assert!(
                    !found["hits"].as_array().unwrap().is_empty(),
                    "{path}: {found}"
                );
                for hit in found["hits"].as_array().unwrap() {
                    assert!(
                        visible(hit["asset"]["id"].as_str().unwrap()),
                        "{path}: {found}"
                    );
                }
            }
            let (status, near) = get(&format!("/api/v1/assets/{asset}/duplicates"), token);
            assert_eq!(status, 200);
            for n in near["near"].as_array().unwrap() {
                assert!(visible(n["asset"]["id"].as_str().unwrap()), "{near}");
            }
        }
        // Semantic search finds photos, never hidden ones.
        let (status, found) = get("/api/v1/search?q=a%20photo%20of%20an%20animal", token);
        assert_eq!(status, 200);
        for hit in found["hits"].as_array().unwrap() {
            assert!(visible(hit["asset"]["id"].as_str().unwrap()), "{found}");
        }

        // A hidden asset is answered as an unknown one, everywhere, in the same words.
        for asset in &hidden {
            for (what, path) in [
                ("asset", "".to_owned()),
                ("thumbnail", "/thumbnail".to_owned()),
                ("original", "/original".to_owned()),
                ("similar", "/similar".to_owned()),
                ("duplicates", "/duplicates".to_owned()),
            ] {
                let hidden_says = message_for(format!("/api/v1/assets/{asset}{path}"));
                let unknown_says = message_for(format!("/api/v1/assets/{unknown}{path}"));
                assert_eq!(
                    hidden_says.replace(asset.as_str(), "ID"),
                    unknown_says.replace(unknown, "ID"),
                    "{what}"
                );
            }
            let via_prefix = message_for(format!("/api/v1/search?q=similar:{}", &asset[..28]));
            let unknown_prefix =
                message_for(format!("/api/v1/search?q=similar:{}", &unknown[..28]));
            assert_eq!(
                via_prefix.replace(&asset[..28], "P"),
                unknown_prefix.replace(&unknown[..28], "P")
            );
        }
        // Naming a collection it has no grant for is refused outright.
        let other = if sees.contains("leaks") {
            "press"
        } else {
            "leaks"
        };
        let (status, _) = get(&format!("/api/v1/search?q=collection:{other}"), token);
        assert_eq!(status, 403);
    }
}
