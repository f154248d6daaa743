//! The real binary end to end: `aperture serve` over HTTP on loopback, then `aperture audit
//! --verify` on what it logged. (The API's own tests run the server in process, in
//! `aperture-server`.)

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Aperture;

/// A running server on a free port; killed when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    pub admin: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An initialised data folder with `config` as its config file, and its admin token.
pub fn init_with(config: &str) -> (Aperture, String) {
    let dir = tempfile::tempdir().unwrap();
    let me = Aperture { dir };
    std::fs::create_dir_all(me.data()).unwrap();
    std::fs::write(me.data().join("aperture.toml"), config).unwrap();
    let out = me.ok(&["init"]);
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("admin token: "))
        .unwrap_or_else(|| panic!("init printed no admin token:\n{out}"))
        .to_owned();
    (me, token)
}

impl Server {
    pub fn start(aperture: &Aperture, admin: &str) -> Server {
        let mut child = aperture
            .command(&["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8];
        while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        let line = String::from_utf8(line).unwrap();
        let url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("serve printed {line:?}"))
            .to_owned();
        Server {
            child,
            url,
            admin: admin.to_owned(),
        }
    }

    pub fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into()
    }

    /// (status, body) of a request with this token (none: no Authorization header).
    pub fn call(&self, method: &str, path: &str, token: Option<&str>) -> (u16, Vec<u8>) {
        let agent = Self::agent();
        let url = format!("{}{path}", self.url);
        let mut request = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(t) = token {
            request = request.header("Authorization", format!("Bearer {t}"));
        }
        let mut response = agent.run(request.body(()).unwrap()).unwrap();
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .unwrap();
        (status, body)
    }

    pub fn json(&self, path: &str, token: &str) -> Value {
        let (status, body) = self.call("GET", path, Some(token));
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    /// Uploads files as multipart/form-data; returns (status, JSON body).
    pub fn upload(&self, token: &str, collection: &str, files: &[(&str, &[u8])]) -> (u16, Value) {
        let boundary = "----aperture-test-boundary";
        let mut body = Vec::new();
        write!(
            body,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"collection\"\r\n\r\n{collection}\r\n"
        )
        .unwrap();
        for (name, bytes) in files {
            write!(
                body,
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .unwrap();
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        write!(body, "--{boundary}--\r\n").unwrap();
        let mut response = Self::agent()
            .post(&format!("{}/api/v1/assets", self.url))
            .header("Authorization", &format!("Bearer {token}"))
            .header(
                "Content-Type",
                &format!("multipart/form-data; boundary={boundary}"),
            )
            .send(&body[..])
            .unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    /// Waits until no job is queued or running and the index holds `documents` assets.
    pub fn wait_indexed(&self, documents: u64) {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let s = self.json("/api/v1/status", &self.admin);
            let busy =
                s["jobs"]["queued"].as_u64().unwrap() + s["jobs"]["running"].as_u64().unwrap();
            if busy == 0 && s["index"]["documents"].as_u64() == Some(documents) {
                return;
            }
            assert!(Instant::now() < deadline, "not indexed in time: {s}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn png(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([
            (x as u8).wrapping_mul(seed),
            (y as u8).wrapping_mul(3),
            seed,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn audit_verify_finds_tampered_deleted_and_reordered_entries() {
    let (aperture, admin) = init_with("");
    {
        let server = Server::start(&aperture, &admin);
        server.upload(&admin, "default", &[("a.png", &png(1))]);
        server.wait_indexed(1);
        for q in ["one", "two", "three", "four"] {
            server.json(&format!("/api/v1/search?q={q}"), &admin);
        }
    }
    let verify = |extra: &[&str]| {
        let mut args = vec!["audit", "--verify"];
        args.extend(extra);
        let out = aperture.run(&args);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, text) = verify(&[]);
    assert!(ok, "{text}");
    let head = text
        .split_whitespace()
        .skip_while(|w| *w != "head")
        .nth(1)
        .unwrap()
        .to_owned();
    let log = aperture.json(&["audit"]);
    let searches: Vec<i64> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "search")
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(searches.len(), 4, "{log}");
    let (a, b) = (searches[1], searches[2]);

    let db = rusqlite::Connection::open(aperture.data().join("catalog.db")).unwrap();
    db.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
        .unwrap();
    // The triggers refused these before they were dropped; the chain must catch them now.
    let sql = |s: &str| db.execute_batch(s).unwrap();

    // Tampered: a query rewritten.
    sql(&format!(
        "UPDATE audit SET detail = replace(detail, 'two', 'owt') WHERE seq = {a}"
    ));
    let (ok, text) = verify(&[]);
    assert!(!ok);
    assert!(
        text.contains(&format!("#{a}:")) && text.contains("changed"),
        "{text}"
    );
    sql(&format!(
        "UPDATE audit SET detail = replace(detail, 'owt', 'two') WHERE seq = {a}"
    ));
    assert!(verify(&[]).0);

    // Deleted: the entry after the gap is named.
    sql(&format!(
        "CREATE TABLE saved AS SELECT * FROM audit WHERE seq = {a}; DELETE FROM audit WHERE seq = {a}"
    ));
    let (ok, text) = verify(&[]);
    assert!(!ok);
    assert!(
        text.contains(&format!("#{b}:")) && text.contains("missing"),
        "{text}"
    );
    sql("INSERT INTO audit SELECT * FROM saved; DROP TABLE saved");
    assert!(verify(&[]).0);

    // Reordered: two entries swap places (their numbers stay in order).
    sql(&format!(
        "CREATE TABLE saved AS SELECT * FROM audit WHERE seq IN ({a}, {b});
         UPDATE audit SET at = (SELECT at FROM saved WHERE seq = {b}),
                          detail = (SELECT detail FROM saved WHERE seq = {b}),
                          prev = (SELECT prev FROM saved WHERE seq = {b}),
                          hash = (SELECT hash FROM saved WHERE seq = {b}) WHERE seq = {a};
         UPDATE audit SET at = (SELECT at FROM saved WHERE seq = {a}),
                          detail = (SELECT detail FROM saved WHERE seq = {a}),
                          prev = (SELECT prev FROM saved WHERE seq = {a}),
                          hash = (SELECT hash FROM saved WHERE seq = {a}) WHERE seq = {b};"
    ));
    let (ok, text) = verify(&[]);
    assert!(!ok);
    assert!(text.contains(&format!("#{a}:")), "{text}");
    sql(&format!(
        "DELETE FROM audit WHERE seq IN ({a}, {b}); INSERT INTO audit SELECT * FROM saved; DROP TABLE saved"
    ));
    assert!(verify(&[]).0);

    // Cut short: the chain alone cannot tell; the head recorded earlier can.
    sql("DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)");
    assert!(verify(&[]).0, "a shorter chain is still a chain");
    let (ok, text) = verify(&["--head", &head]);
    assert!(!ok);
    assert!(text.contains("cut short"), "{text}");
    drop(db);
    assert!(Path::new(&aperture.data().join("catalog.db")).exists());
}
