//! Scopes, collections, originals, hostile uploads and web sessions.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use aperture_server::testing::Client;

use crate::{Server, init_with, png, pseudo_random};

/// What each endpoint needs. `{press}` and `{archive}` stand for an asset of that collection.
const ENDPOINTS: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/collections", "read"),
    ("GET", "/api/v1/assets", "read"),
    ("GET", "/api/v1/assets/{asset}", "read"),
    ("GET", "/api/v1/assets/{asset}/original", "read"),
    ("GET", "/api/v1/assets/{asset}/thumbnail", "read"),
    ("GET", "/api/v1/assets/{asset}/similar", "search"),
    ("GET", "/api/v1/assets/{asset}/duplicates", "search"),
    ("GET", "/api/v1/search?q=photo", "search"),
    ("GET", "/api/v1/duplicates", "search"),
    ("GET", "/api/v1/status", "read"),
    ("GET", "/metrics", "admin"),
    ("POST", "/api/v1/assets", "ingest"),
    ("DELETE", "/api/v1/assets/{asset}", "admin"),
];

#[test]
fn every_endpoint_checks_token_scope_and_collection() {
    let (aperture, admin) = init_with("");
    let server = Server::start(&aperture, &admin);
    let (status, up) = server.upload(&admin, "press", &[("press.png", &png(3))]);
    assert_eq!(status, 200, "{up}");
    let press = up["files"][0]["asset"].as_str().unwrap().to_owned();
    let (_, up) = server.upload(&admin, "archive", &[("archive.png", &png(7))]);
    let archive = up["files"][0]["asset"].as_str().unwrap().to_owned();
    server.wait_indexed(2);

    // Every documented route, without a token: 401, except the health check and sign-in.
    let doc = server.json("/api/v1/openapi.json", &admin);
    let mut documented = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented += 1;
            let path = path.replace("{id}", &press);
            let (status, body) = server.call(&method.to_uppercase(), &path, None);
            let open = path == "/healthz" || path == "/api/v1/session";
            if open {
                assert_ne!(status, 401, "{method} {path} should answer without a token");
            } else {
                assert_eq!(status, 401, "{method} {path} answered without a token");
                let e: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(e["error"]["code"], "unauthorized");
            }
        }
    }
    assert!(
        documented >= 16,
        "the OpenAPI document lists {documented} operations"
    );
    let (status, _) = server.call("GET", "/api/v1/status", Some("apt_000000000000_nope"));
    assert_eq!(status, 401, "a malformed token");

    let tokens: Vec<(&str, String)> = ["read", "search", "ingest", "admin"]
        .iter()
        .map(|s| (*s, aperture.new_token(&format!("only-{s}"), s, &[])))
        .collect();
    let press_only = aperture.new_token("press desk", "read,search,ingest", &["press"]);

    for (method, template, needs) in ENDPOINTS {
        let path = template.replace("{asset}", &press);
        for (scope, token) in &tokens {
            if *method == "POST" || *method == "DELETE" {
                continue; // below, with real bodies and assets
            }
            let (status, body) = server.call(method, &path, Some(token));
            let allowed = scope == needs || *scope == "admin";
            if allowed {
                // Without image models nothing has vectors to compare: 422, not a refusal.
                let no_vectors = path.contains("/similar") && status == 422;
                assert!(
                    status == 200 || no_vectors,
                    "{method} {path} with scope {scope}: {status} {}",
                    String::from_utf8_lossy(&body)
                );
            } else {
                assert_eq!(status, 403, "{method} {path} with scope {scope}");
                let e: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(e["error"]["code"], "forbidden");
                assert!(e["error"]["message"].as_str().unwrap().contains(needs));
            }
        }
        // A token for another collection sees nothing of the archive's asset.
        if template.contains("{asset}") && *needs != "admin" {
            let path = template.replace("{asset}", &archive);
            let (status, _) = server.call(method, &path, Some(&press_only));
            assert_eq!(status, 404, "{method} {path} with a press-only token");
            let path = template.replace("{asset}", &press);
            let (status, _) = server.call(method, &path, Some(&press_only));
            let no_vectors = path.contains("/similar") && status == 422;
            assert!(
                status < 300 || no_vectors,
                "{method} {path} with a press-only token: {status}"
            );
        }
    }

    // Lists and searches with the press-only token show the press asset alone.
    let list = server.json("/api/v1/assets", &press_only);
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [press.as_str()]);
    assert_eq!(
        server.json("/api/v1/assets", &admin)["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let names: Vec<String> = server
        .json("/api/v1/collections", &press_only)
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["press"]);
    let hits = server.json("/api/v1/search?q=png", &press_only);
    let found: Vec<&str> = hits["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["asset"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(found, [press.as_str()], "{hits}");
    // similar: names no asset of another collection, not even by a prefix.
    let shared = archive
        .chars()
        .zip(press.chars())
        .take_while(|(a, b)| a == b)
        .count();
    for q in [archive.clone(), archive[..shared + 1].to_owned()] {
        let (status, body) = server.call(
            "GET",
            &format!("/api/v1/search?q=similar:{q}"),
            Some(&press_only),
        );
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 404, "similar:{q}: {body}");
        // A prefix reveals no more of the id than was sent.
        assert!(q == archive || !body.contains(&archive), "{body}");
    }
    // Duplicates and status: nothing of the archive.
    let (_, archive_copy) = server.upload(&admin, "archive", &[("copy.png", &png(3))]);
    assert_eq!(
        archive_copy["files"][0]["status"], "new",
        "same bytes, other collection"
    );
    let copy = archive_copy["files"][0]["asset"].as_str().unwrap();
    let groups = server.json("/api/v1/duplicates", &admin);
    let text = groups.to_string();
    assert!(
        text.contains(copy) && text.contains(&press),
        "admin sees the copy: {groups}"
    );
    let groups = server.json("/api/v1/duplicates", &press_only);
    assert_eq!(groups["groups"], serde_json::json!([]), "{groups}");
    // Status counts the token's collections only; the index spans all, so it is not shown.
    let status = server.json("/api/v1/status", &press_only);
    assert!(
        status["assets"] == 1 && status["index"].is_null(),
        "{status}"
    );
    assert!(
        server.json("/api/v1/status", &admin)["assets"]
            .as_u64()
            .unwrap()
            >= 3
    );
    assert_eq!(
        server.json("/api/v1/search?q=png", &admin)["hits"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (status, _) = server.call(
        "GET",
        "/api/v1/search?q=collection:archive",
        Some(&press_only),
    );
    assert_eq!(status, 403);
    let (status, _) = server.call(
        "GET",
        "/api/v1/assets?collection=archive",
        Some(&press_only),
    );
    assert_eq!(status, 403);

    // Uploads: ingest scope, and a grant for the collection.
    for (scope, token) in &tokens {
        let (status, _) = server.upload(token, "press", &[("x.png", &png(11))]);
        let allowed = *scope == "ingest" || *scope == "admin";
        assert_eq!(
            status,
            if allowed { 200 } else { 403 },
            "upload with {scope}"
        );
    }
    let (status, body) = server.upload(&press_only, "archive", &[("y.png", &png(12))]);
    assert_eq!(status, 403, "{body}");
    // One collection per upload: a second one is refused, before a file is stored.
    let boundary = "b";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"collection\"\r\n\r\npress\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../x\"\r\n\r\nx\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"collection\"\r\n\r\narchive\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.txt\"\r\n\r\nsneaky\r\n\
         --{boundary}--\r\n"
    );
    let mut response = Client::agent()
        .post(&format!("{}/api/v1/assets", server.url))
        .header("Authorization", &format!("Bearer {press_only}"))
        .header("Content-Type", "multipart/form-data; boundary=b")
        .send(body.as_bytes())
        .unwrap();
    assert_eq!(
        response.status(),
        400,
        "{}",
        response.body_mut().read_to_string().unwrap()
    );
    let archived = server.json("/api/v1/assets?collection=archive", &admin);
    assert!(!archived.to_string().contains("in.txt"), "{archived}");

    // Unknown routes and methods answer JSON errors too.
    let (status, body) = server.call("GET", "/api/v1/nothing", Some(&admin));
    assert_eq!(status, 404);
    let e: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(e["error"]["code"], "not_found");
    let agent = Client::agent();
    let response = agent
        .put(&format!("{}/api/v1/search", server.url))
        .header("Authorization", &format!("Bearer {admin}"))
        .send_empty()
        .unwrap();
    assert!(
        response.headers().contains_key("allow"),
        "a 405 says what is allowed"
    );
    let (status, body) = server.call("PUT", "/api/v1/search", Some(&admin));
    assert_eq!(status, 405);
    let e: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(e["error"]["code"], "method_not_allowed");
    let (status, body) = server.call("GET", "/api/v1/assets?limit=lots", Some(&admin));
    assert_eq!(status, 400);
    let e: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(e["error"]["code"], "bad_request", "{e}");

    // Deleting: admin only, and the asset is gone with its bytes' routes.
    for token in [&tokens[0].1, &tokens[1].1, &tokens[2].1, &press_only] {
        let (status, _) = server.call("DELETE", &format!("/api/v1/assets/{press}"), Some(token));
        assert_eq!(status, 403);
    }
    let (status, _) = server.call("DELETE", &format!("/api/v1/assets/{press}"), Some(&admin));
    assert_eq!(status, 204);
    let (status, _) = server.call(
        "GET",
        &format!("/api/v1/assets/{press}/original"),
        Some(&admin),
    );
    assert_eq!(status, 404);

    // A revoked token stops working (the server trusts a looked-up token for 5 s at most).
    let reader = &tokens[0].1;
    let id = reader.split('_').nth(1).unwrap();
    aperture.revoke(id);
    std::thread::sleep(Duration::from_secs(6));
    let (status, _) = server.call("GET", "/api/v1/status", Some(reader));
    assert_eq!(status, 401);

    // Metrics count what happened.
    let (status, body) = server.call("GET", "/metrics", Some(&admin));
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("aperture_ingested_bytes_total "), "{text}");
    assert!(
        text.contains("aperture_search_duration_seconds_count "),
        "{text}"
    );
    assert!(
        text.contains("aperture_jobs{state=\"succeeded\"}"),
        "{text}"
    );
}

/// A GET of an asset's original with `token`, and a `Range` header when given.
fn get_original(
    server: &Server,
    id: &str,
    token: &str,
    range: Option<&str>,
) -> ureq::http::Response<ureq::Body> {
    let url = format!("{}/api/v1/assets/{id}/original", server.url);
    let mut request = Client::agent()
        .get(&url)
        .header("Authorization", &format!("Bearer {token}"));
    if let Some(range) = range {
        request = request.header("Range", range);
    }
    request.call().unwrap()
}

#[test]
fn originals_come_back_whole_and_in_ranges() {
    let (aperture, admin) = init_with("");
    let server = Server::start(&aperture, &admin);
    let bytes = pseudo_random(300_000, 9);
    let (status, up) = server.upload(&admin, "default", &[("Ünïcode 'name'.bin", &bytes)]);
    assert_eq!(status, 200, "{up}");
    let id = up["files"][0]["asset"].as_str().unwrap();
    let mut whole = get_original(&server, id, &admin, None);
    assert_eq!(whole.status(), 200);
    let disposition = whole.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"_n_code 'name'.bin\"; filename*=UTF-8''%C3%9Cn%C3%AFcode%20%27name%27.bin"),
        "{disposition}"
    );
    let got = whole
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    assert!(got == bytes, "the original differs");

    let mut part = get_original(&server, id, &admin, Some("bytes=1000-1999"));
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 1000-1999/300000");
    assert!(part.body_mut().read_to_vec().unwrap() == bytes[1000..2000]);
    let past = get_original(&server, id, &admin, Some("bytes=400000-"));
    assert_eq!(past.status(), 416);

    // Every read that sent bytes is in the audit log (the refused range sent none).
    let log = aperture.audit_log();
    let reads = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "read_original" && e["target"] == id)
        .count();
    assert_eq!(reads, 2, "{log}");
}

#[test]
fn a_damaged_original_is_refused_never_sent_whole() {
    let (aperture, admin) = init_with("");
    let server = Server::start(&aperture, &admin);
    let bytes = pseudo_random(300_000, 11);
    let (status, up) = server.upload(&admin, "default", &[("evidence.bin", &bytes)]);
    assert_eq!(status, 200, "{up}");
    let id = up["files"][0]["asset"].as_str().unwrap();
    // Bit rot: one byte flipped in the blob on disk, its size unchanged.
    let blobs = aperture.dir.path().join("data/blobs/blobs");
    let blob = std::fs::read_dir(&blobs)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .find(|p| std::fs::metadata(p).unwrap().len() == bytes.len() as u64)
        .expect("the upload's blob on disk");
    let mut damaged = std::fs::read(&blob).unwrap();
    assert!(damaged == bytes);
    damaged[250_000] ^= 0x20;
    std::fs::write(&blob, &damaged).unwrap();

    // The whole file: the length was announced, so the body stops short and the client
    // sees an error; it never holds the damaged file as if it were complete.
    let mut whole = get_original(&server, id, &admin, None);
    assert_eq!(whole.status(), 200);
    let read = whole.body_mut().with_config().limit(1 << 30).read_to_vec();
    assert!(read.is_err(), "a damaged original was read to its end");
    // A range, even one before the damage, is refused before a byte goes out.
    for range in ["bytes=0-99", "bytes=249990-250009"] {
        let mut part = get_original(&server, id, &admin, Some(range));
        assert_eq!(part.status(), 500, "{range}");
        let answer: Value =
            serde_json::from_slice(&part.body_mut().read_to_vec().unwrap()).unwrap();
        assert_eq!(answer["error"]["code"], "damaged", "{answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(id),
            "{answer}"
        );
    }
    // The server goes on serving other files.
    let (status, _) = server.call("GET", "/api/v1/status", Some(&admin));
    assert_eq!(status, 200);
}

#[test]
fn hostile_uploads_are_refused_and_the_server_keeps_serving() {
    let (aperture, admin) = init_with("[server]\nmax_upload_mib = 1\nidle_timeout_secs = 2\n");
    let server = Server::start(&aperture, &admin);

    // Too large: refused while it streams in; nothing is stored.
    let big = pseudo_random(3 << 20, 1);
    let (status, body) = server.upload(&admin, "default", &[("big.bin", &big)]);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("big.bin")
    );

    // Many files under the limit add up past it: the request's total is what counts.
    let half = pseudo_random(600 << 10, 2);
    let (status, body) = server.upload(&admin, "default", &[("a.bin", &half), ("b.bin", &half)]);
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("b.bin"),
        "{body}"
    );

    // Bad names and a decompression bomb are refused one by one; the good file is stored.
    let bomb = aperture_media::fixtures::bomb_png();
    let good = png(5);
    let (status, body) = server.upload(
        &admin,
        "default",
        &[
            ("../../etc/passwd", b"x"),
            ("a\tb.txt", b"x"),
            ("bomb.png", &bomb),
            ("good.png", &good),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let files = body["files"].as_array().unwrap();
    assert_eq!(files[0]["status"], "failed");
    assert!(
        files[0]["error"].as_str().unwrap().contains("is a path"),
        "{body}"
    );
    assert_eq!(files[1]["status"], "failed");
    assert!(
        files[1]["error"].as_str().unwrap().contains("control"),
        "{body}"
    );
    assert_eq!(files[2]["status"], "failed");
    assert!(
        files[2]["error"]
            .as_str()
            .unwrap()
            .contains("30000 × 30000"),
        "{body}"
    );
    assert_eq!(files[3]["status"], "new", "{body}");
    assert_eq!(server.json("/api/v1/status", &admin)["assets"], 1);
    let data = aperture.dir.path().join("data");
    let names_no_folder = |body: &Value| {
        assert!(
            !body.to_string().contains(&*data.to_string_lossy()),
            "an answer names the server's folders: {body}"
        );
    };
    names_no_folder(&body);

    // A file the server cannot store (a file stands where its blob's folder goes): the
    // answer names it as sent, with the id its full error was logged under, and never the
    // server's folders (the blob store's message names them).
    let doomed = png(9);
    let hash = aperture_core::ContentHash::of(&doomed).to_string();
    let blobs = data.join("blobs/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let taken = blobs.join(&hash[..3]);
    assert!(
        !taken.exists(),
        "another blob shares the prefix {}",
        &hash[..3]
    );
    std::fs::write(&taken, b"in the way").unwrap();
    let (status, body) = server.upload(&admin, "default", &[("doomed.png", &doomed)]);
    assert_eq!(status, 200, "{body}");
    let file = &body["files"][0];
    assert_eq!(file["status"], "failed", "{body}");
    let error = file["error"].as_str().unwrap();
    assert!(
        error.contains("doomed.png") && error.contains("logged as"),
        "{body}"
    );
    names_no_folder(&body);
    assert_eq!(server.json("/api/v1/status", &admin)["assets"], 1);

    // Not multipart: 415. A broken multipart body: 400.
    let mut response = Client::agent()
        .post(&format!("{}/api/v1/assets", server.url))
        .header("Authorization", &format!("Bearer {admin}"))
        .header("Content-Type", "application/json")
        .send("{}")
        .unwrap();
    assert_eq!(response.status(), 415);
    let e: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(e["error"]["code"], "unsupported_media_type");
    let mut response = Client::agent()
        .post(&format!("{}/api/v1/assets", server.url))
        .header("Authorization", &format!("Bearer {admin}"))
        .header("Content-Type", "multipart/form-data; boundary=xyz")
        .send(
            "--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nno end",
        )
        .unwrap();
    assert_eq!(response.status(), 400);
    let e: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(e["error"]["code"], "bad_multipart", "{e}");

    // A client that stops sending mid-upload is cut off after the idle time, while others
    // are served meanwhile.
    let addr = server.url.strip_prefix("http://").unwrap().to_owned();
    let token = admin.clone();
    let slow = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let head = format!(
            "POST /api/v1/assets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n\
             --b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.bin\"\r\n\r\nsome bytes"
        );
        stream.write_all(head.as_bytes()).unwrap();
        let started = Instant::now();
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        (
            String::from_utf8_lossy(&out).into_owned(),
            started.elapsed(),
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    let (status, _) = server.call("GET", "/healthz", None);
    assert_eq!(
        status, 200,
        "the server answers others during a stalled upload"
    );
    let (answer, took) = slow.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("stalled"), "{answer}");
    assert!(took < Duration::from_secs(15), "cut off after {took:?}");

    // Headers that never finish: the server closes the connection (after 10 s).
    let (answer, closed) = server.raw(
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
        Duration::from_secs(20),
    );
    assert!(closed, "the connection stayed open");
    assert!(!answer.contains("200 OK"), "{answer}");
    let (status, _) = server.call("GET", "/healthz", None);
    assert_eq!(status, 200);
    assert_eq!(
        server.json("/api/v1/status", &admin)["assets"],
        1,
        "nothing half-stored"
    );
    assert!(
        std::fs::read_dir(aperture.lake.config.data_dir.join("uploads"))
            .unwrap()
            .count()
            <= 1
    );
}

/// The web UI's session: a random id in an HttpOnly cookie (never the token), refused for
/// changes without `X-Aperture`, and dead after sign-out or when its token is revoked.
#[test]
fn web_sessions_hold_no_token_and_end_on_sign_out() {
    let (aperture, admin) = init_with("");
    let server = Server::start(&aperture, &admin);
    let agent = Client::agent();
    let sign_in = |token: &str| -> String {
        let response = agent
            .post(&format!("{}/api/v1/session", server.url))
            .header("Content-Type", "application/json")
            .send(serde_json::json!({ "token": token }).to_string().as_bytes())
            .unwrap();
        assert_eq!(response.status(), 204);
        let cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        assert!(
            !cookie.contains("Secure"),
            "plain HTTP cannot keep a Secure cookie: {cookie}"
        );
        cookie.split(';').next().unwrap().to_owned()
    };
    // Behind a proxy that terminates TLS, the cookie is Secure.
    let behind_tls = agent
        .post(&format!("{}/api/v1/session", server.url))
        .header("Content-Type", "application/json")
        .header("X-Forwarded-Proto", "https")
        .send(serde_json::json!({ "token": admin }).to_string().as_bytes())
        .unwrap();
    assert_eq!(behind_tls.status(), 204);
    let cookie = behind_tls.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // The data folder is its owner's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(aperture.dir.path().join("data"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "data folder mode {mode:o}");
    }
    let with_cookie = |method: &str, path: &str, cookie: &str, csrf: bool| -> u16 {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", server.url))
            .header("Cookie", cookie);
        if csrf {
            request = request.header("X-Aperture", "1");
        }
        agent
            .run(request.body(()).unwrap())
            .unwrap()
            .status()
            .as_u16()
    };

    let cookie = sign_in(&admin);
    let secret = admin.rsplit('_').next().unwrap();
    assert!(
        !cookie.contains(secret),
        "the cookie holds the token: {cookie}"
    );
    assert_eq!(with_cookie("GET", "/api/v1/me", &cookie, false), 200);
    // A change by cookie needs the header no other site can send.
    let (_, up) = server.upload(&admin, "default", &[("a.png", &png(4))]);
    let id = up["files"][0]["asset"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/assets/{id}");
    assert_eq!(with_cookie("DELETE", &path, &cookie, false), 403);
    assert_eq!(with_cookie("GET", &path, &cookie, false), 200);
    assert_eq!(with_cookie("DELETE", &path, &cookie, true), 204);

    // Sign-out ends the session; the token lives on.
    assert_eq!(with_cookie("DELETE", "/api/v1/session", &cookie, true), 204);
    assert_eq!(with_cookie("GET", "/api/v1/me", &cookie, false), 401);
    assert_eq!(server.call("GET", "/api/v1/me", Some(&admin)).0, 200);
    // A forged cookie is no session.
    assert_eq!(
        with_cookie("GET", "/api/v1/me", "aperture_session=00ff", false),
        401
    );

    // Revoking the token ends its sessions (within the token cache's 5 s).
    let reader = aperture.new_token("reader", "read", &[]);
    let cookie = sign_in(&reader);
    assert_eq!(with_cookie("GET", "/api/v1/me", &cookie, false), 200);
    aperture.revoke(reader.split('_').nth(1).unwrap());
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(with_cookie("GET", "/api/v1/me", &cookie, false), 401);
}

#[test]
fn collections_take_retention_and_legal_hold_from_admins_and_a_hold_stops_erasure() {
    let (aperture, admin) = init_with("");
    let server = Server::start(&aperture, &admin);
    let (status, up) = server.upload(&admin, "press", &[("press.png", &png(3))]);
    assert_eq!(status, 200, "{up}");
    let asset = up["files"][0]["asset"].as_str().unwrap().to_owned();
    let reader = aperture.new_token("reader", "read,search", &[]);
    let path = "/api/v1/collections/press";

    let (status, _) = server.send_json(
        "PATCH",
        path,
        &reader,
        &serde_json::json!({ "legal_hold": true }),
    );
    assert_eq!(status, 403, "only admins set a hold");
    for bad in [
        serde_json::json!({}),
        serde_json::json!({ "retention": "90 days" }),
        serde_json::json!({ "retention": "0s" }),
        serde_json::json!({ "hold": true }),
        serde_json::json!({ "legal_hold": null, "retention": "1d" }),
    ] {
        let (status, body) = server.send_json("PATCH", path, &admin, &bad);
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _) = server.send_json(
        "PATCH",
        "/api/v1/collections/nope",
        &admin,
        &serde_json::json!({ "legal_hold": true }),
    );
    assert_eq!(status, 404);

    let (status, set) = server.send_json(
        "PATCH",
        path,
        &admin,
        &serde_json::json!({ "retention": "90d", "legal_hold": true }),
    );
    assert_eq!(status, 200, "{set}");
    assert_eq!(
        (set["retention"].as_str(), set["legal_hold"].as_bool()),
        (Some("90d"), Some(true))
    );
    let listed = server.json("/api/v1/collections", &reader);
    assert_eq!(listed[0]["legal_hold"], true, "{listed}");

    // Held: the erasure is refused and nothing changes.
    let (status, body) = server.call("DELETE", &format!("/api/v1/assets/{asset}"), Some(&admin));
    let e: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("legal_hold")),
        "{e}"
    );
    assert!(e["error"]["message"].as_str().unwrap().contains("press"));
    server.json(&format!("/api/v1/assets/{asset}"), &admin);

    // Lifted (only the hold: the retention stays), the erasure goes through.
    let (status, set) = server.send_json(
        "PATCH",
        path,
        &admin,
        &serde_json::json!({ "legal_hold": false }),
    );
    assert_eq!(
        (status, set["retention"].as_str()),
        (200, Some("90d")),
        "{set}"
    );
    let (status, _) = server.call("DELETE", &format!("/api/v1/assets/{asset}"), Some(&admin));
    assert_eq!(status, 204);

    // Each change is in the log, with what it was before.
    let log = aperture.audit_log();
    let sets: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "collection_set")
        .collect();
    assert_eq!(sets.len(), 2, "{log}");
    let last: Value = serde_json::from_str(sets[1]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(
        last,
        serde_json::json!({ "legal_hold": false }),
        "only what was asked"
    );
}
