//! The HTTP API, the web UI and the metrics (`aperture serve`), from one process that also
//! analyses what arrives and keeps the search index current.
//!
//! [`State::new`] loads what requests share (query encoders, token cache, audit writer);
//! [`router`] is every route, for tests to drive in process; [`run`] serves a listener with
//! the connection limits and runs the analysis workers and the index follower beside it.
//!
//! Searches never wait for indexing: the follower updates its own copy of the index, then
//! opens a fresh reader and swaps it in; searches hold an `Arc` of whichever was current.

mod api;
mod auth;
mod error;
mod files;
mod find;
mod guard;
mod metrics;
mod status;
mod upload;
mod views;

#[cfg(feature = "testing")]
pub mod testing;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use aperture_lake::{AuditWriter, Follower, Lake, SearchEncoder};
use aperture_search::{QueryEncoder, SearchIndex};
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

pub use auth::Caller;
pub use error::{ApiError, ApiResult};

/// Limits from the config.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest upload body in bytes.
    pub max_upload_bytes: u64,
    /// How long an upload may send nothing before it is cut off.
    pub idle_timeout: Duration,
    /// How long any other request may take.
    pub request_timeout: Duration,
    /// Whether session cookies are always marked `Secure` (TLS in front of the server).
    pub tls_in_front: bool,
}

/// File descriptors kept free of connections, for uploads, the catalog and the index.
const SPARE_FILES: usize = 256;
/// A client must send its request headers within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the search index follows the catalog.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// What every request shares.
pub struct State {
    /// The lake: config, blob store, catalog.
    pub lake: Lake,
    index: RwLock<Option<Arc<SearchIndex>>>,
    /// Query encoders loaded at start (MiniLM, CLIP's text tower), one per space.
    pub encoders: Vec<Box<dyn SearchEncoder>>,
    /// Tokens recently read from the catalog; a revocation takes effect within seconds.
    pub tokens: auth::TokenCache,
    /// Request counters and latencies for `/metrics`.
    pub metrics: metrics::Metrics,
    /// Appends audit entries in batches; the request waits for its entry.
    pub audit: AuditWriter,
    /// Limits from the config.
    pub limits: Limits,
    /// Where uploads are staged before ingest (same file system as the data folder).
    pub upload_dir: PathBuf,
    /// The last status and when it was computed.
    status: tokio::sync::Mutex<Option<(std::time::Instant, serde_json::Value)>>,
    /// Wakes the index follower before its next tick.
    follow_now: tokio::sync::Notify,
    /// Counts the readers swapped in, so what was computed from one is known stale.
    index_generation: std::sync::atomic::AtomicU64,
    /// Duplicate groups lately computed, by what they were computed for; the lock also makes
    /// the computations run one at a time, so repeated calls cost one core at most.
    pub(crate) duplicates: Arc<tokio::sync::Mutex<find::DuplicatesCache>>,
}

impl State {
    /// Puts a fresh reader in place for the searches that start from now on.
    fn swap_reader(&self, reader: Option<SearchIndex>) {
        if let Some(reader) = reader {
            *self.index.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(reader));
            self.index_generation.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The current search index; `None` before the first one is built.
    pub fn index(&self) -> Option<Arc<SearchIndex>> {
        self.index.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The current search index and its generation (how many readers were swapped in).
    pub(crate) fn index_with_generation(&self) -> (Option<Arc<SearchIndex>>, u64) {
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        (index.clone(), self.index_generation.load(Ordering::Relaxed))
    }

    /// The indexing status, at most a second old: one computation serves every page polling.
    pub async fn status_cached(&self) -> ApiResult<serde_json::Value> {
        let mut cached = self.status.lock().await;
        if let Some((at, value)) = cached.as_ref()
            && at.elapsed() < Duration::from_secs(1)
        {
            return Ok(value.clone());
        }
        let value = status::compute_status(self).await?;
        *cached = Some((std::time::Instant::now(), value.clone()));
        Ok(value)
    }

    /// Forgets the cached status, after a change the caller will look for at once.
    pub async fn status_changed(&self) {
        *self.status.lock().await = None;
    }

    /// The query encoders, as search takes them.
    pub fn encoders(&self) -> Vec<&dyn QueryEncoder> {
        self.encoders
            .iter()
            .map(|e| e.as_ref() as &dyn QueryEncoder)
            .collect()
    }

    /// Appends an audit entry; the request fails when the log cannot be written.
    pub async fn audit(
        &self,
        caller: &Caller,
        action: &str,
        target: Option<String>,
        detail: serde_json::Value,
    ) -> ApiResult<()> {
        self.record(aperture_catalog::NewAuditEntry::new(
            caller.actor(),
            action,
            target,
            detail,
        ))
        .await
    }

    /// Appends an entry about one asset: `detail` in the chain, what names the asset (its
    /// name) beside it, erased with the asset.
    pub async fn audit_asset(
        &self,
        caller: &Caller,
        action: &str,
        asset: &aperture_catalog::Asset,
        detail: serde_json::Value,
    ) -> ApiResult<()> {
        self.record(
            aperture_catalog::NewAuditEntry::new(
                caller.actor(),
                action,
                Some(asset.id.to_string()),
                detail,
            )
            .naming(asset.id, serde_json::json!({ "name": asset.name })),
        )
        .await
    }

    /// Appends an entry; the request fails when the log cannot be written.
    pub async fn record(&self, entry: aperture_catalog::NewAuditEntry) -> ApiResult<()> {
        self.audit.record(entry).await.map_err(ApiError::from)
    }

    /// Asks the index follower to step now (after an erasure: the reader in use goes at once).
    pub fn follow_now(&self) {
        self.follow_now.notify_one();
    }
}

impl State {
    /// Everything requests share, for `lake`: the query encoders are loaded now, so the first
    /// search after start or idle is as fast as any other. Fails when no token is active.
    /// Needs a Tokio runtime (the audit writer runs on it).
    pub async fn new(lake: Lake) -> aperture_lake::Result<Arc<Self>> {
        let tokens = lake.catalog(|c| c.tokens()).await?;
        aperture_lake::require_tokens_exist(&tokens)?;
        let server = &lake.config.server;
        let limits = Limits {
            max_upload_bytes: server.max_upload_mib.saturating_mul(1 << 20),
            idle_timeout: Duration::from_secs(server.idle_timeout_secs.max(1)),
            request_timeout: Duration::from_secs(server.request_timeout_secs.max(1)),
            tls_in_front: server.tls_in_front,
        };
        let upload_dir = lake.config.data_dir.join("uploads");
        // What a crash left mid-upload is of no use to anyone.
        let _ = std::fs::remove_dir_all(&upload_dir);
        std::fs::create_dir_all(&upload_dir).map_err(|source| aperture_lake::Error::Io {
            action: "create",
            path: upload_dir.clone(),
            source,
        })?;
        let config = lake.config.clone();
        let encoders =
            tokio::task::spawn_blocking(move || aperture_lake::encoders(&config)).await?;
        let audit = AuditWriter::start(&lake);
        Ok(Arc::new(State {
            lake,
            index: RwLock::new(None),
            encoders,
            tokens: auth::TokenCache::default(),
            metrics: metrics::Metrics::default(),
            audit,
            limits,
            upload_dir,
            status: tokio::sync::Mutex::new(None),
            follow_now: tokio::sync::Notify::new(),
            index_generation: std::sync::atomic::AtomicU64::new(0),
            duplicates: Arc::new(tokio::sync::Mutex::new(find::DuplicatesCache::new())),
        }))
    }
}

/// Serves `listener` until `shutdown` completes: at most the configured connections in all
/// and per address, each with a header timeout, request bodies at a minimum rate; beside it an analysis worker running `workers` jobs at once
/// (none when 0) and the search-index follower. On shutdown the jobs in progress finish first.
pub async fn run(
    state: Arc<State>,
    listener: TcpListener,
    workers: usize,
    shutdown: impl Future<Output = ()>,
) -> aperture_lake::Result<()> {
    let mut follower = Follower::with_readers(&state.lake);
    state.swap_reader(follower.step(true).await);

    let stop = tokio::sync::watch::channel(false);
    let worker = (workers > 0).then(|| {
        let (worker, missing) = state.lake.worker(Duration::from_secs(600), Some(workers));
        for m in missing {
            tracing::warn!(analyzer = m.analyzer, reason = %m.reason, "analyzer not running");
        }
        let mut rx = stop.1.clone();
        tokio::spawn(async move {
            if let Err(e) = worker.enqueue_missing().await {
                tracing::warn!(error = %e, "cannot queue missing jobs");
            }
            let stopped = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = worker.run(stopped, &|_| {}).await {
                tracing::error!(error = %e, "analysis stopped");
            }
        })
    });
    let retention = {
        let (lake, mut rx) = (state.lake.clone(), stop.1.clone());
        let every = Duration::from_secs(lake.config.retention.sweep_every_secs);
        tokio::spawn(async move {
            lake.run_retention(every, async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await;
        })
    };
    let follower = {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(FOLLOW_EVERY) => {}
                    () = state.follow_now.notified() => {}
                }
                state.swap_reader(follower.step(false).await);
            }
        })
    };

    let router = router(state.clone());
    let server = &state.lake.config.server;
    let files = raise_file_limit();
    let most = server
        .max_connections
        .min(files.saturating_sub(SPARE_FILES))
        .max(16);
    if most < server.max_connections {
        tracing::warn!(
            connections = most,
            files,
            "serving fewer connections than configured: the process may open only {files} files"
        );
    }
    let per_address = server.max_connections_per_address.max(1);
    let connections = Arc::new(tokio::sync::Semaphore::new(most));
    let addresses = guard::PerAddress::default();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = connections.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, remote) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // One address may not take every connection (another's slow clients cannot lock
        // out the rest); its extra connections are closed at once.
        let Some(slot) = addresses.admit(remote.ip(), per_address) else {
            tracing::debug!(%remote, "connection refused: too many from this address");
            drop(permit);
            // Said and closed gently (a close with the request unread would reset the
            // connection, and the answer with it), within a second whatever the client does.
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut stream = stream;
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    stream.write_all(&too_many()).await?;
                    stream.shutdown().await?;
                    let mut sink = [0u8; 1024];
                    while tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await? > 0 {}
                    Ok::<_, std::io::Error>(())
                })
                .await;
            });
            continue;
        };
        let router = router.clone();
        tokio::spawn(async move {
            serve_connection(stream, remote, router).await;
            drop((permit, slot));
        });
    }
    tracing::info!("stopping: finishing the jobs in progress");
    let _ = stop.0.send(true);
    follower.abort();
    let _ = retention.await;
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    Ok(())
}

/// The whole answer to a connection over its address's limit.
fn too_many() -> Vec<u8> {
    let body = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_connections",
        "too many connections from your address: close some, or try again later",
    )
    .json()
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Raises this process's open-file limit to its hard limit (a server holds a descriptor per
/// connection); returns the limit now in force.
fn raise_file_limit() -> usize {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write the struct passed.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return 1024;
            }
            if limit.rlim_cur < limit.rlim_max {
                let wanted = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                    limit = wanted;
                }
            }
        }
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    }
    #[cfg(not(unix))]
    {
        1024
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, remote: SocketAddr, router: Router) {
    let _ = stream.set_nodelay(true);
    let service = hyper_util::service::TowerToHyperService::new(router);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true);
    if let Err(e) = builder
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%remote, error = %e, "connection ended with an error");
    }
}

/// Every route. `/healthz` is the only one that answers without a token.
pub fn router(state: Arc<State>) -> Router {
    let api = api::routes()
        .merge(find::routes())
        .merge(status::routes())
        .merge(files::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), deadline))
        .merge(upload::routes(state.limits.max_upload_bytes));
    Router::new()
        .merge(api)
        .merge(files::ui_routes())
        .layer(middleware::from_fn(guard::guard_body))
        .layer(middleware::from_fn_with_state(state.clone(), common))
        .with_state(state)
}

/// Security headers on every answer, errors as JSON whoever made them (an unknown route, a
/// query string that does not parse), and the request counters.
async fn common(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    request: Request,
    next: Next,
) -> Response {
    state.metrics.requests.fetch_add(1, Ordering::Relaxed);
    let what = format!("{} {}", request.method(), request.uri().path());
    let mut response = next.run(request).await;
    if response.status().is_server_error() {
        state.metrics.errors.fetch_add(1, Ordering::Relaxed);
    }
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let status = response.status();
    if (status.is_client_error() || status.is_server_error()) && !json {
        response = as_json_error(response, &what).await;
    }
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; \
             script-src 'self'; object-src 'none'; frame-ancestors 'none'",
        ));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Turns an error answer made outside our handlers (axum's rejections, unknown routes) into
/// the API's JSON error, keeping its status and its message.
async fn as_json_error(response: Response, what: &str) -> Response {
    let status = response.status();
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let (code, fallback) = match status {
        StatusCode::NOT_FOUND => ("not_found", format!("no such route: {what}")),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            format!("{what}: this route does not take that method"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("too_large", "the request body is too large".into()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "the request body has the wrong content type".into(),
        ),
        s if s.is_server_error() => ("internal", "internal error".into()),
        _ => ("bad_request", format!("{what}: bad request")),
    };
    // A server error's own text may name internals: it stays in the log.
    let message = if text.is_empty() || status.is_server_error() {
        if status.is_server_error() {
            tracing::error!(%what, %text, "request failed");
        }
        fallback
    } else {
        text
    };
    let mut answer = ApiError::new(status, code, message).into_response();
    // Keep what the original said besides its body (`Allow` on a 405).
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in parts.headers.drain().filter_map(|(n, v)| Some((n?, v))) {
        answer.headers_mut().entry(name).or_insert(value);
    }
    answer
}

/// Every API request but an upload must be answered within the configured time (an upload
/// is cut off when it stalls instead, in `upload`).
async fn deadline(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(state.limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        // The server was too slow, not the client: 503, try again later.
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request took longer than {} s",
                state.limits.request_timeout.as_secs()
            ),
        )
        .into_response(),
    }
}
