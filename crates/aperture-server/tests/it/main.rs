//! The server in process, over real HTTP on loopback: every endpoint without a token, with a
//! token of the wrong scope and with a token for another collection; uploads good and
//! hostile; originals and ranges; web sessions. The server runs on a Tokio runtime of the
//! test's own, on `127.0.0.1:0`, against a lake in a temporary folder.

mod api;
mod contract;
mod router;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use aperture_catalog::{NewToken, Scope};
use aperture_lake::Lake;
use serde_json::Value;

/// A lake in a temporary folder.
pub struct TestLake {
    /// The temporary folder; the lake's data folder is `<dir>/data`.
    pub dir: tempfile::TempDir,
    /// The lake, opened.
    pub lake: Lake,
    /// The runtime the lake and its servers run on.
    pub runtime: tokio::runtime::Runtime,
}

/// An initialised lake with `config` as its config file, and its admin token.
pub fn init_with(config: &str) -> (TestLake, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("aperture.toml"), config).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let made = runtime
        .block_on(Lake::init(&data, None, Vec::new(), "test"))
        .unwrap();
    let token = made.admin_token.expect("a fresh lake has an admin token");
    (
        TestLake {
            dir,
            lake: made.lake,
            runtime,
        },
        token,
    )
}

impl TestLake {
    /// Creates a token; `scopes` comma-separated, `collections` empty for all.
    pub fn new_token(&self, name: &str, scopes: &str, collections: &[&str]) -> String {
        let scopes = Scope::parse_list(scopes).unwrap();
        let collections =
            (!collections.is_empty()).then(|| collections.iter().map(|c| c.to_string()).collect());
        let new = NewToken::generate(name, scopes, collections).unwrap();
        self.runtime
            .block_on(self.lake.create_token("test", &new))
            .unwrap();
        new.text
    }

    /// Revokes the token with this id (the `<id>` of `apt_<id>_<secret>`).
    pub fn revoke(&self, id: &str) {
        let id = id.to_owned();
        self.runtime
            .block_on(self.lake.catalog(move |c| c.revoke_token(&id)))
            .unwrap();
    }

    /// The whole audit log as JSON.
    pub fn audit_log(&self) -> Value {
        let entries = self
            .runtime
            .block_on(self.lake.catalog(|c| c.audit_entries(0, 1_000_000)))
            .unwrap();
        serde_json::to_value(entries).unwrap()
    }
}

/// A server on a free port of 127.0.0.1, in this process; stopped when dropped.
pub struct Server {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
    handle: tokio::runtime::Handle,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The admin token of the lake.
    pub admin: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = self.handle.block_on(done);
        }
    }
}

impl Server {
    /// Starts serving `lake` with its configured workers; `admin` is kept for the helpers.
    pub fn start(lake: &TestLake, admin: &str) -> Server {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = lake
            .runtime
            .block_on(aperture_server::State::new(lake.lake.clone()))
            .unwrap();
        let listener = lake
            .runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let workers = lake.lake.config.server.workers;
        let done = lake.runtime.spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            aperture_server::run(state, listener, workers, shutdown)
                .await
                .unwrap();
        });
        Server {
            stop: Some(stop),
            done: Some(done),
            handle: lake.runtime.handle().clone(),
            url,
            admin: admin.to_owned(),
        }
    }
    /// An HTTP client that returns error statuses as responses and waits at most two minutes.
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

    /// GETs `path` with `token`, asserts 200 and parses the JSON.
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

    /// Sends raw bytes on a fresh connection and reads the answer until the server closes
    /// it (true) or `wait` passes (false).
    pub fn raw(&self, request: &[u8], wait: Duration) -> (String, bool) {
        let addr = self.url.strip_prefix("http://").unwrap();
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(wait)).unwrap();
        stream.write_all(request).unwrap();
        let mut out = Vec::new();
        let closed = stream.read_to_end(&mut out).is_ok();
        (String::from_utf8_lossy(&out).into_owned(), closed)
    }
}

/// A small PNG drawn from `seed`: different seeds make different images.
pub fn png(seed: u8) -> Vec<u8> {
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

/// Deterministic pseudo-random bytes (xorshift64), so failures reproduce.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut state = seed | 1;
    for chunk in out.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    out
}
