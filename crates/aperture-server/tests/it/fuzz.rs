//! Fuzzing the server's parsers over real HTTP: multipart upload bodies, mutated from a valid
//! one (cut, bits flipped, bytes spliced in), and `Range` headers of any text. The server must
//! answer each with a client error or success, never a server error, and keep serving.
//! `APERTURE_FUZZ_CASES` sets the cases (default 200; CI runs more).

use proptest::prelude::*;

use aperture_server::testing::Client;

use crate::{Server, init_with, png};

fn cases() -> u32 {
    std::env::var("APERTURE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
        / 4
}

const BOUNDARY: &str = "----fuzz-boundary";

fn valid_body() -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"collection\"\r\n\r\nfuzz\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&png(7));
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

#[test]
fn mutated_uploads_and_ranges_never_make_a_server_error() {
    let (lake, admin) = init_with("");
    let server = Server::start(&lake, &admin);
    let (status, up) = server.upload(&admin, "default", &[("r.bin", &[7u8; 5000][..])]);
    assert_eq!(status, 200, "{up}");
    let id = up["files"][0]["asset"].as_str().unwrap().to_owned();
    let seed = valid_body();
    let config = ProptestConfig {
        cases: cases().max(10),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(
        edits in proptest::collection::vec((any::<usize>(), 0u8..3, any::<u8>()), 0..6),
        range in "(bytes=)?[0-9 ,-]{0,12}|\\PC{0,16}",
    )| {
        let mut body = seed.clone();
        for (at, how, byte) in &edits {
            let at = at % (body.len() + 1);
            match how {
                0 => body.truncate(at),
                1 if at < body.len() => body[at] ^= *byte | 1,
                _ => body.insert(at, *byte),
            }
        }
        let mut answer = Client::agent()
            .post(&format!("{}/api/v1/assets", server.url))
            .header("Authorization", &format!("Bearer {admin}"))
            .header("Content-Type", &format!("multipart/form-data; boundary={BOUNDARY}"))
            .send(&body[..])
            .unwrap();
        let status = answer.status().as_u16();
        let text = answer.body_mut().read_to_string().unwrap_or_default();
        prop_assert!(status < 500, "upload answered {status}: {text}");

        let request = ureq::http::Request::builder()
            .uri(format!("{}/api/v1/assets/{id}/original", server.url))
            .header("Authorization", format!("Bearer {admin}"))
            .header("Range", range.as_str())
            .body(())
            .unwrap();
        if let Ok(mut got) = Client::agent().run(request) {
            let status = got.status().as_u16();
            prop_assert!(matches!(status, 200 | 206 | 416), "range {range:?}: {status}");
            let body = got.body_mut().read_to_vec().unwrap();
            prop_assert!(body.len() <= 5000, "range {range:?}: {} bytes", body.len());
        }
    });
    let (status, _) = server.call("GET", "/healthz", None);
    assert_eq!(status, 200);
}
