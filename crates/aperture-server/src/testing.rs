//! Test helpers for other crates' tests (feature `testing`): an HTTP client for a running
//! server, over loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The URL a starting `aperture serve` prints on its first line (its stdout piped).
pub fn listening_url(child: &mut std::process::Child) -> String {
    let mut stdout = child.stdout.take().expect("serve's stdout piped");
    let mut line = Vec::new();
    let mut byte = [0u8];
    while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let line = String::from_utf8(line).unwrap();
    line.strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("serve printed {line:?}"))
        .to_owned()
}

/// A client of one server: its base URL and an admin token.
pub struct Client {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// A token with every scope.
    pub admin: String,
}

impl Client {
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
        let agent = Client::agent();
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

    /// (status, JSON body) of a request carrying `body` as JSON, with this token.
    pub fn send_json(&self, method: &str, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let agent = Client::agent();
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .unwrap();
        let mut response = agent.run(request).unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
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
        let mut response = Client::agent()
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

/// How a slow client holds its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slowness {
    /// Connects and sends nothing.
    Silent,
    /// Sends a request's headers a byte a second.
    Headers,
    /// Sends a sign-in's headers, then its body a byte a second.
    Body,
    /// Sends an upload whose first part's headers never end.
    PartHeaders,
}

/// Slow clients holding connections to a server from loopback addresses 127.0.0.2 and up
/// (`per_address` connections each), reconnecting whenever the server closes one. They stop
/// when dropped.
pub struct SlowClients {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    open: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    cut: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SlowClients {
    /// Starts `count` slow clients against `target` (on the current Tokio runtime), taking
    /// the kinds of `kinds` in turn.
    pub fn start(
        target: std::net::SocketAddr,
        count: usize,
        per_address: usize,
        kinds: &[Slowness],
    ) -> SlowClients {
        Self::start_from(target, 2, count, per_address, kinds)
    }

    /// [`SlowClients::start`] from the `first`-th loopback address on (2: 127.0.0.2).
    pub fn start_from(
        target: std::net::SocketAddr,
        first: usize,
        count: usize,
        per_address: usize,
        kinds: &[Slowness],
    ) -> SlowClients {
        use std::sync::Arc;
        use std::sync::atomic::AtomicUsize;
        let open = Arc::new(AtomicUsize::new(0));
        let cut = Arc::new(AtomicUsize::new(0));
        let tasks = (0..count)
            .map(|i| {
                let n = first + i / per_address.max(1);
                let source = std::net::Ipv4Addr::new(127, 0, (n / 250) as u8, (n % 250) as u8);
                let kind = kinds[i % kinds.len()];
                let (open, cut) = (open.clone(), cut.clone());
                tokio::spawn(async move {
                    loop {
                        hold_once(target, source, kind, &open).await;
                        cut.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                })
            })
            .collect();
        SlowClients { tasks, open, cut }
    }

    /// Connections the slow clients hold now.
    pub fn open(&self) -> usize {
        self.open.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Connections the server has closed on them so far.
    pub fn cut(&self) -> usize {
        self.cut.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for SlowClients {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// One slow connection, until the server closes it.
async fn hold_once(
    target: std::net::SocketAddr,
    source: std::net::Ipv4Addr,
    kind: Slowness,
    open: &std::sync::atomic::AtomicUsize,
) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(socket) = tokio::net::TcpSocket::new_v4() else {
        return;
    };
    if socket.bind((source, 0).into()).is_err() {
        return;
    }
    let Ok(mut stream) = socket.connect(target).await else {
        return;
    };
    open.fetch_add(1, Ordering::Relaxed);
    let host = format!("Host: {target}\r\n");
    let (start, trickle): (Vec<u8>, &[u8]) = match kind {
        Slowness::Silent => (Vec::new(), b""),
        Slowness::Headers => (
            Vec::new(),
            b"GET /api/v1/me HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaa",
        ),
        Slowness::Body => (
            format!(
                "POST /api/v1/session HTTP/1.1\r\n{host}Content-Type: application/json\r\n\
                 Content-Length: 4096\r\n\r\n"
            )
            .into_bytes(),
            b"{\"token\": \"apt_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ),
        Slowness::PartHeaders => (
            format!(
                "POST /api/v1/assets HTTP/1.1\r\n{host}Content-Type: multipart/form-data; \
                 boundary=b\r\nContent-Length: 100000000\r\n\r\n--b\r\nX-Long: "
            )
            .into_bytes(),
            b"",
        ),
    };
    let mut buf = [0u8; 1024];
    let (mut reader, mut writer) = stream.split();
    let mut alive = writer.write_all(&start).await.is_ok();
    if kind == Slowness::PartHeaders {
        // Headers without end, as fast as the server takes them.
        let filler = vec![b'a'; 4096];
        while alive {
            tokio::select! {
                wrote = writer.write_all(&filler) => alive = wrote.is_ok(),
                read = reader.read(&mut buf) => alive = matches!(read, Ok(n) if n > 0),
            }
        }
    }
    let mut next = trickle.iter().cycle();
    while alive {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                if let Some(&byte) = next.next() {
                    alive = writer.write_all(&[byte]).await.is_ok();
                }
            }
            read = reader.read(&mut buf) => alive = matches!(read, Ok(n) if n > 0),
        }
    }
    open.fetch_sub(1, Ordering::Relaxed);
}
