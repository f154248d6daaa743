//! What the OpenAPI document promises, where a contract tester (scripts/contract.sh) once found
//! the server answering otherwise: ids, limits, an empty query, sign-in bodies, upload parts.

use serde_json::Value;

use aperture_server::testing::Client;

use crate::{Server, init_with, png};

/// A multipart body of `(field, filename, bytes)` parts; `None`: a part with no filename.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, filename, bytes) in parts {
        let filename = filename.map_or(String::new(), |f| format!("; filename=\"{f}\""));
        body.extend_from_slice(
            format!("--b\r\nContent-Disposition: form-data; name=\"{field}\"{filename}\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--b--\r\n");
    body
}

fn post(server: &Server, path: &str, content_type: Option<&str>, body: &[u8]) -> (u16, Value) {
    let mut request = Client::agent()
        .post(&format!("{}{path}", server.url))
        .header("Authorization", &format!("Bearer {}", server.admin));
    if let Some(t) = content_type {
        request = request.header("Content-Type", t);
    }
    let mut response = request.send(body).unwrap();
    let text = response.body_mut().read_to_string().unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (response.status().as_u16(), json)
}

fn code(server: &Server, path: &str, token: &str) -> (u16, Value) {
    let (status, body) = server.call("GET", path, Some(token));
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, json["error"]["code"].clone())
}

#[test]
fn the_server_answers_what_its_openapi_document_says() {
    let (aperture, admin) = init_with("");
    let server = Server::start(&aperture, &admin);
    let (status, up) = server.upload(&admin, "press", &[("a.png", &png(3))]);
    assert_eq!(status, 200, "{up}");
    let id = up["files"][0]["asset"].as_str().unwrap().to_owned();
    server.wait_indexed(1);
    let press_only = aperture.new_token("press desk", "read,search", &["press"]);

    // Every `$ref` of the document names something it holds.
    let doc = server.json("/api/v1/openapi.json", &admin);
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let pointer = reference.split('"').next().unwrap();
        let target = doc.pointer(pointer.trim_start_matches('#'));
        assert!(target.is_some(), "{pointer} resolves to nothing");
    }

    // Ids: 32 hex digits, either case; no other spelling of a UUID.
    let hyphenated = format!(
        "{}-{}-{}-{}-{}",
        &id[..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..]
    );
    for (path, want) in [
        (format!("/api/v1/assets/{id}"), 200),
        (format!("/api/v1/assets/{}", id.to_uppercase()), 200),
        (format!("/api/v1/assets/{hyphenated}"), 400),
        (format!("/api/v1/assets/{}", &id[..31]), 400),
        (format!("/api/v1/assets?cursor={hyphenated}"), 400),
        ("/api/v1/assets?cursor=".into(), 200),
    ] {
        let (status, code) = code(&server, &path, &admin);
        assert_eq!(status, want, "{path}: {code}");
    }

    // Limits outside 1-200 are refused, not cut down.
    for (path, want) in [
        ("/api/v1/assets?limit=200", 200),
        ("/api/v1/assets?limit=201", 400),
        ("/api/v1/assets?limit=0", 400),
        ("/api/v1/search?q=png&limit=201", 400),
        ("/api/v1/search?q=png&limit=200", 200),
    ] {
        let (status, code) = code(&server, path, &admin);
        assert_eq!(status, want, "{path}: {code}");
    }

    // Kinds as the enum spells them; empty means any.
    for (path, want) in [
        ("/api/v1/assets?kind=image", 200),
        ("/api/v1/assets?kind=", 200),
        ("/api/v1/assets?kind=IMAGE", 400),
    ] {
        let (status, code) = code(&server, path, &admin);
        assert_eq!(status, want, "{path}: {code}");
    }

    // An empty query is refused for every token, also one whose collections would make it a
    // filter.
    for token in [&admin, &press_only] {
        for path in [
            "/api/v1/search?q=",
            "/api/v1/search",
            "/api/v1/search?q=-boat",
        ] {
            let (status, code) = code(&server, path, token);
            assert_eq!((status, code.as_str()), (400, Some("bad_query")), "{path}");
        }
    }

    // A threshold is a similarity: 0 to 1, compared as the document's numbers are.
    for (path, want) in [
        ("/api/v1/duplicates?threshold=1", 200),
        ("/api/v1/duplicates?threshold=1.0000000000000002", 400),
        ("/api/v1/duplicates?threshold=-0.1", 400),
        ("/api/v1/duplicates?threshold=NaN", 400),
    ] {
        let (status, code) = code(&server, path, &admin);
        assert_eq!(status, want, "{path}: {code}");
    }

    // Sign-in: 415 for a body that is not JSON, 400 for JSON that is not {"token": "..."}.
    let json = Some("application/json");
    for (content_type, body, want) in [
        (None, &b""[..], (415, "unsupported_media_type")),
        (json, b"\x00", (400, "bad_request")),
        (json, b"{}", (400, "bad_request")),
        (json, b"{\"token\": 5}", (400, "bad_request")),
        (json, b"{\"token\": \"apt_x\"}", (401, "unauthorized")),
    ] {
        let (status, body) = post(&server, "/api/v1/session", content_type, body);
        assert_eq!(
            (status, body["error"]["code"].as_str().unwrap()),
            want,
            "{body}"
        );
    }

    // Uploads: the collection may follow the files; a `file` part must be a file.
    let multi = Some("multipart/form-data; boundary=b");
    let body = multipart(&[
        ("file", Some("late.png"), &png(7)),
        ("collection", None, b"archive"),
    ]);
    let (status, up) = post(&server, "/api/v1/assets", multi, &body);
    assert_eq!((status, up["collection"].as_str()), (200, Some("archive")));
    let body = multipart(&[("collection", None, b""), ("file", Some("b.png"), &png(8))]);
    let (status, up) = post(&server, "/api/v1/assets", multi, &body);
    assert_eq!((status, up["collection"].as_str()), (200, Some("default")));
    for (parts, why) in [
        (
            &[("file", None, &b"{}"[..])][..],
            "a file part without a filename",
        ),
        (
            &[("collection", None, b"a/b"), ("file", Some("c.txt"), b"x")],
            "a collection name the catalog refuses",
        ),
        (
            &[
                ("collection", None, b" press"),
                ("file", Some("c.txt"), b"x"),
            ],
            "a name with a leading space (not trimmed away)",
        ),
        (
            &[
                ("collection", None, b"press"),
                ("file", Some("c.txt"), b"x"),
                ("collection", None, b"archive"),
            ],
            "two collections",
        ),
        (&[("collection", None, b"press")], "no file"),
    ] {
        let (status, body) = post(&server, "/api/v1/assets", multi, &multipart(parts));
        assert_eq!(status, 400, "{why}: {body}");
    }
    // A name of 128 letters of two bytes each is a name of 128 letters.
    let long = "é".repeat(128);
    let body = multipart(&[
        ("collection", None, long.as_bytes()),
        ("file", Some("d.txt"), b"x"),
    ]);
    let (status, up) = post(&server, "/api/v1/assets", multi, &body);
    assert_eq!(status, 200, "{up}");
    // Refused uploads stored nothing and made no collection.
    let names: Vec<String> = server
        .json("/api/v1/collections", &admin)
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
}
