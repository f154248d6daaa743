//! The router driven in process, without a socket (tower's `oneshot`).

use aperture_ingest::{Ingester, NoProgress};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

use crate::{TestLake, init_with, png};

/// (status, JSON body) of a GET through the router.
fn get(
    lake: &TestLake,
    router: &axum::Router,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::get(path);
    if let Some(t) = token {
        request = request.header("Authorization", format!("Bearer {t}"));
    }
    let response = lake
        .runtime
        .block_on(router.clone().oneshot(request.body(Body::empty()).unwrap()))
        .unwrap();
    let status = response.status();
    let body = lake
        .runtime
        .block_on(axum::body::to_bytes(response.into_body(), 1 << 24))
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Stores `files` (name, bytes) into `collection` through the ingest path the CLI uses.
fn ingest(lake: &TestLake, collection: &str, files: &[(String, Vec<u8>)]) {
    let dir = lake.dir.path().join("in").join(collection);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let options = lake.lake.ingest_options(collection.to_owned());
    let ingester = Ingester::new(lake.lake.blobs.clone(), lake.lake.catalog.clone());
    let report = lake
        .runtime
        .block_on(ingester.ingest(&[dir], &options, &NoProgress))
        .unwrap();
    assert_eq!(report.totals.failed, 0, "{:?}", report.files);
}

#[test]
fn healthz_answers_and_the_rest_needs_a_token() {
    let (lake, _admin) = init_with("");
    let state = lake
        .runtime
        .block_on(aperture_server::State::new(lake.lake.clone()))
        .unwrap();
    let router = aperture_server::router(state);
    assert_eq!(get(&lake, &router, "/healthz", None).0, StatusCode::OK);
    for path in ["/api/v1/assets", "/api/v1/search?q=x", "/api/v1/status"] {
        let (status, body) = get(&lake, &router, path, None);
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["error"]["code"], "unauthorized", "{path}");
    }
}

/// Issue 10: a cursor handed to a token for some collections never names an asset of
/// another collection, however the collections interleave, and pages are full until the last.
#[test]
fn r10_a_cursor_never_names_an_asset_the_caller_cannot_see() {
    let (lake, admin) = init_with("[server]\nworkers = 0\n");
    // Interleaved ingests: the hidden collection's assets sit between the visible ones.
    for round in 0..6u8 {
        for (collection, seed) in [
            ("press", round),
            ("archive", 100 + round),
            ("archive", 200 + round),
        ] {
            ingest(
                &lake,
                collection,
                &[(
                    format!("{collection}-{seed}.png"),
                    png(seed.wrapping_add(1)),
                )],
            );
        }
    }
    ingest(&lake, "legal", &[("legal.png".to_owned(), png(250))]);
    let press = lake.new_token("press desk", "read", &["press", "legal", "not-yet"]);
    let state = lake
        .runtime
        .block_on(aperture_server::State::new(lake.lake.clone()))
        .unwrap();
    let router = aperture_server::router(state);

    let (status, all) = get(&lake, &router, "/api/v1/assets?limit=200", Some(&admin));
    assert_eq!(status, StatusCode::OK);
    let hidden: Vec<String> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["collection"] == "archive")
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(hidden.len(), 12);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/assets?limit=2&cursor={c}"),
            None => "/api/v1/assets?limit=2".to_owned(),
        };
        let (status, page) = get(&lake, &router, &path, Some(&press));
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        for a in items {
            assert_ne!(a["collection"], "archive", "{page}");
            seen.push(a["id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => {
                assert!(
                    !hidden.iter().any(|h| h == next),
                    "the cursor names a hidden asset"
                );
                assert_eq!(items.len(), 2, "a page before the last is full");
                assert_eq!(Some(next), items.last().and_then(|a| a["id"].as_str()));
                cursor = Some(next.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(
        seen.len(),
        7,
        "6 press and 1 legal asset, each once: {seen:?}"
    );

    // A collection named outright without a grant is refused; one granted lists its own.
    let (status, body) = get(
        &lake,
        &router,
        "/api/v1/assets?collection=archive",
        Some(&press),
    );
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = get(
        &lake,
        &router,
        "/api/v1/assets?collection=legal",
        Some(&press),
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
}
