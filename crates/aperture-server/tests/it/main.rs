//! The server in process, over real HTTP on loopback: every endpoint without a token, with a
//! token of the wrong scope and with a token for another collection; uploads good and
//! hostile; originals and ranges; web sessions. The server runs on a Tokio runtime of the
//! test's own, on `127.0.0.1:0`, against a lake in a temporary folder.

mod api;
mod contract;
mod fuzz;
mod router;
mod slow;

use aperture_catalog::{NewToken, Scope};
use aperture_lake::Lake;
use aperture_server::testing::Client;
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
    client: Client,
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
            client: Client {
                url,
                admin: admin.to_owned(),
            },
        }
    }
}

impl std::ops::Deref for Server {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
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
