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
    send(lake, router, "GET", path, token)
}

/// (status, JSON body) of a request without a body through the router.
fn send(
    lake: &TestLake,
    router: &axum::Router,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
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

/// (status, content type, body) of a GET through the router.
fn get_text(
    lake: &TestLake,
    router: &axum::Router,
    path: &str,
    token: &str,
) -> (StatusCode, String, String) {
    let request = Request::get(path)
        .header("Authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = lake
        .runtime
        .block_on(router.clone().oneshot(request))
        .unwrap();
    let status = response.status();
    let mime = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = lake
        .runtime
        .block_on(axum::body::to_bytes(response.into_body(), 1 << 24))
        .unwrap();
    (status, mime, String::from_utf8_lossy(&body).into_owned())
}

/// One second of silence as a 16 kHz mono WAV (the transcript is written by the test).
fn wav(seed: u8) -> Vec<u8> {
    let samples = vec![seed; 32_000];
    let mut out = Vec::new();
    out.extend(b"RIFF");
    out.extend((36 + samples.len() as u32).to_le_bytes());
    out.extend(b"WAVEfmt ");
    out.extend(16u32.to_le_bytes());
    out.extend(1u16.to_le_bytes()); // PCM
    out.extend(1u16.to_le_bytes()); // mono
    out.extend(16_000u32.to_le_bytes());
    out.extend(32_000u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(16u16.to_le_bytes());
    out.extend(b"data");
    out.extend((samples.len() as u32).to_le_bytes());
    out.extend(samples);
    out
}

#[test]
fn captions_are_served_per_language_to_those_who_may_read_them() {
    use aperture_catalog::AssetQuery;
    use aperture_core::value::TranscriptSegment;
    use aperture_core::{Insight, Place, UnixMillis};

    let (lake, admin) = init_with("");
    ingest(&lake, "calls", &[("call.wav".into(), wav(0))]);
    ingest(&lake, "other", &[("other.wav".into(), wav(1))]);
    let assets = lake
        .runtime
        .block_on(lake.lake.catalog(|c| {
            c.list_assets(&AssetQuery {
                collections: None,
                kind: None,
                after: None,
                limit: 10,
            })
        }))
        .unwrap();
    let id_of = |name: &str| assets.iter().find(|a| a.name == name).unwrap().id;
    let (call, other) = (id_of("call.wav"), id_of("other.wav"));
    let segment = |asset, start_ms, end_ms, text: &str, language: &str| Insight {
        asset,
        analyzer: "speech".into(),
        analyzer_version: "1".into(),
        model: Some("whisper-base".into()),
        model_version: None,
        confidence: Some(0.9),
        language: Some(language.into()),
        place: Place::Time {
            start_ms,
            end_ms,
            rect: None,
        },
        value: TranscriptSegment {
            text: text.into(),
            no_speech_prob: None,
            avg_logprob: None,
            language_prob: Some(0.9),
            words: Vec::new(),
        }
        .into(),
        created_at: UnixMillis(0),
    };
    let insights = vec![
        segment(call, 0, 1_500, "Hola, buenos días.", "es"),
        segment(call, 2_000, 3_000, "Good morning.", "en"),
        segment(other, 0, 900, "Not for you.", "en"),
    ];
    lake.runtime
        .block_on(lake.lake.catalog(move |c| c.add_insights(&insights)))
        .unwrap();
    let router = aperture_server::router(
        lake.runtime
            .block_on(aperture_server::State::new(lake.lake.clone()))
            .unwrap(),
    );

    let (status, mime, vtt) = get_text(
        &lake,
        &router,
        &format!("/api/v1/assets/{call}/captions.vtt"),
        &admin,
    );
    assert_eq!(status, StatusCode::OK, "{vtt}");
    assert_eq!(mime, "text/vtt; charset=utf-8");
    assert!(
        vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHola, buenos días.\n\n"),
        "{vtt}"
    );
    assert!(
        vtt.contains("00:00:02.000 --> 00:00:03.000\nGood morning."),
        "{vtt}"
    );

    let (status, mime, srt) = get_text(
        &lake,
        &router,
        &format!("/api/v1/assets/{call}/captions.srt?lang=en"),
        &admin,
    );
    assert_eq!(status, StatusCode::OK, "{srt}");
    assert!(mime.starts_with("application/x-subrip"), "{mime}");
    assert_eq!(srt, "1\n00:00:02,000 --> 00:00:03,000\nGood morning.\n\n");

    // A language nobody speaks there, a malformed one, and an asset the token cannot see.
    let (status, _, body) = get_text(
        &lake,
        &router,
        &format!("/api/v1/assets/{call}/captions.vtt?lang=fr"),
        &admin,
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("the transcript is in en, es"), "{body}");
    assert!(body.contains(r#""code":"not_spoken""#), "{body}");
    let (status, _, _) = get_text(
        &lake,
        &router,
        &format!("/api/v1/assets/{call}/captions.vtt?lang=EN"),
        &admin,
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let calls_only = lake.new_token("calls", "read", &["calls"]);
    let (status, _, _) = get_text(
        &lake,
        &router,
        &format!("/api/v1/assets/{other}/captions.vtt"),
        &calls_only,
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = get_text(
        &lake,
        &router,
        &format!("/api/v1/assets/{call}/captions.vtt"),
        &calls_only,
    );
    assert_eq!(status, StatusCode::OK);

    // The Spanish segment translated on demand (Apertium, as scripts/setup.sh installs it),
    // for those who may read the file; audited.
    let (status, body) = send(
        &lake,
        &router,
        "POST",
        &format!("/api/v1/assets/{call}/translations?to=en"),
        Some(&calls_only),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let translations = body["translations"].as_array().unwrap();
    assert_eq!(
        translations.len(),
        1,
        "the English segment is left out: {body}"
    );
    assert_eq!(translations[0]["kind"], "translation");
    assert_eq!(translations[0]["value"]["source_language"], "es");
    assert_eq!(translations[0]["place"]["start_ms"], 0);
    assert!(
        translations[0]["value"]["text"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("good morning"),
        "{body}"
    );
    for (path, token, expected) in [
        (
            format!("/api/v1/assets/{call}/translations?to=EN"),
            &admin,
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/v1/assets/{call}/translations"),
            &admin,
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/v1/assets/{other}/translations?to=en"),
            &calls_only,
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (status, body) = send(&lake, &router, "POST", &path, Some(token));
        assert_eq!(status, expected, "{path}: {body}");
    }
    let search_only = lake.new_token("finder", "search", &[]);
    let (status, _) = send(
        &lake,
        &router,
        "POST",
        &format!("/api/v1/assets/{call}/translations?to=en"),
        Some(&search_only),
    );
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Every read that sent captions is in the audit log, with its language.
    let log = lake.audit_log();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "translate" && e["target"] == call.to_string()),
        "{log}"
    );
    let reads: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "read_captions")
        .collect();
    assert_eq!(reads.len(), 3, "{log}");
    let detail =
        |e: &Value| -> Value { serde_json::from_str(e["detail"].as_str().unwrap()).unwrap() };
    assert!(reads.iter().any(|e| detail(e)["lang"] == "en"), "{log}");
    assert!(
        reads.iter().all(|e| e["target"] == call.to_string()),
        "{log}"
    );
}
