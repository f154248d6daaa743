//! `aperture serve`: the HTTP API, the web UI and the metrics, from one process that also
//! analyses what arrives and keeps the search index current.
//!
//! Searches never wait for indexing: the follower updates its own copy of the index, then
//! opens a fresh reader and swaps it in; searches hold an `Arc` of whichever was current.

mod api;
mod auth;
mod error;
mod files;
mod metrics;
mod upload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use aperture_search::{QueryEncoder, SearchIndex};
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::access::AuditWriter;
use crate::app::App;
use crate::search::SearchEncoder;

pub use auth::Caller;
pub use error::{ApiError, ApiResult};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (default from the config: 127.0.0.1:7878); port 0 picks a free one.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Analysis workers to run in this process (default from the config).
    #[arg(long)]
    workers: Option<usize>,
}

/// Limits from the config.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_upload_bytes: u64,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
}

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 1024;
/// A client must send its request headers within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the search index follows the catalog.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

pub struct State {
    pub app: App,
    index: RwLock<Option<Arc<SearchIndex>>>,
    pub encoders: Vec<Box<dyn SearchEncoder>>,
    pub tokens: auth::TokenCache,
    pub sessions: auth::Sessions,
    pub metrics: metrics::Metrics,
    pub audit: AuditWriter,
    pub limits: Limits,
    /// Where uploads are staged before ingest (same file system as the data folder).
    pub upload_dir: PathBuf,
    /// The last status and when it was computed.
    status: tokio::sync::Mutex<Option<(std::time::Instant, serde_json::Value)>>,
}

impl State {
    /// The current search index; `None` before the first one is built.
    pub fn index(&self) -> Option<Arc<SearchIndex>> {
        self.index.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The indexing status, at most a second old: one computation serves every page polling.
    pub async fn status_cached(&self) -> ApiResult<serde_json::Value> {
        let mut cached = self.status.lock().await;
        if let Some((at, value)) = cached.as_ref()
            && at.elapsed() < Duration::from_secs(1)
        {
            return Ok(value.clone());
        }
        let value = api::compute_status(self).await?;
        *cached = Some((std::time::Instant::now(), value.clone()));
        Ok(value)
    }

    /// Forgets the cached status, after a change the caller will look for at once.
    pub async fn status_changed(&self) {
        *self.status.lock().await = None;
    }

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
        self.audit
            .record(aperture_catalog::NewAuditEntry {
                actor: caller.actor(),
                action: action.to_owned(),
                target,
                detail,
            })
            .await
            .map_err(ApiError::from)
    }
}

pub async fn run(app: App, args: Args) -> anyhow::Result<ExitCode> {
    let listen = args
        .listen
        .unwrap_or_else(|| app.config.server.listen.clone());
    let workers = args.workers.unwrap_or(app.config.server.workers);
    let tokens = app.catalog(|c| c.tokens()).await?;
    crate::access::require_tokens_exist(&tokens)?;
    let server = &app.config.server;
    let limits = Limits {
        max_upload_bytes: server.max_upload_mib.saturating_mul(1 << 20),
        idle_timeout: Duration::from_secs(server.idle_timeout_secs.max(1)),
        request_timeout: Duration::from_secs(server.request_timeout_secs.max(1)),
    };
    let upload_dir = app.config.data_dir.join("uploads");
    // What a crash left mid-upload is of no use to anyone.
    let _ = std::fs::remove_dir_all(&upload_dir);
    std::fs::create_dir_all(&upload_dir)
        .with_context(|| format!("cannot create {}", upload_dir.display()))?;
    // Load the query encoders once, now: the first search after start or idle is as fast
    // as any other.
    let config = app.config.clone();
    let encoders = tokio::task::spawn_blocking(move || crate::search::encoders(&config)).await?;
    let audit = AuditWriter::start(app.catalog.clone());
    let state = Arc::new(State {
        app,
        index: RwLock::new(None),
        encoders,
        tokens: auth::TokenCache::default(),
        sessions: auth::Sessions::default(),
        metrics: metrics::Metrics::default(),
        audit,
        limits,
        upload_dir,
        status: tokio::sync::Mutex::new(None),
    });
    let mut follower = Follower::default();
    follower.step(&state).await;

    let listener = TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    // The first line on stdout, for scripts that start the server on port 0.
    println!("listening on http://{addr}");
    eprintln!(
        "Aperture serves {} at http://{addr}/ (Ctrl-C stops it)",
        state.app.config.data_dir.display()
    );

    let stop = tokio::sync::watch::channel(false);
    let worker = (workers > 0).then(|| {
        let app = &state.app;
        let worker = crate::index::worker_for(app, 600).with_parallelism(workers);
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
    let follower = {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(FOLLOW_EVERY).await;
                follower.step(&state).await;
            }
        })
    };

    let router = router(state.clone());
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let shutdown = crate::index::stop_signal();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = connections.clone().acquire_owned() => permit?,
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
        let router = router.clone();
        tokio::spawn(async move {
            serve_connection(stream, remote, router).await;
            drop(permit);
        });
    }
    eprintln!("stopping: finishing the jobs in progress");
    let _ = stop.0.send(true);
    follower.abort();
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    Ok(ExitCode::SUCCESS)
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

/// Keeps the search index current: its own copy applies the catalog's changes, and when
/// anything changed a fresh reader is opened and swapped in for searches.
#[derive(Default)]
struct Follower {
    writer: Option<SearchIndex>,
}

impl Follower {
    async fn step(&mut self, state: &Arc<State>) {
        let (catalog, dir) = (
            state.app.catalog.clone(),
            crate::search::index_dir(&state.app),
        );
        let first = state.index().is_none();
        let writer = self.writer.take();
        let result = tokio::task::spawn_blocking(move || {
            let mut writer = match writer {
                Some(w) => w,
                None => SearchIndex::open(&dir)?,
            };
            let changed = match writer.update(catalog.as_ref()) {
                Ok(update) => update.indexed > 0 || update.removed > 0,
                // Another process is updating it; read what is there.
                Err(aperture_search::Error::Busy(_)) => false,
                Err(e) => return Err(e),
            };
            let reader = if changed || first {
                Some(SearchIndex::open(&dir)?)
            } else {
                None
            };
            Ok((writer, reader))
        })
        .await;
        match result {
            Ok(Ok((writer, reader))) => {
                self.writer = Some(writer);
                if let Some(reader) = reader {
                    *state.index.write().unwrap_or_else(|e| e.into_inner()) =
                        Some(Arc::new(reader));
                }
            }
            // Opened afresh next time, so memory never drifts from what is on disk.
            Ok(Err(e)) => tracing::warn!(error = %e, "search index update failed"),
            Err(e) => tracing::warn!(error = %e, "search index update panicked"),
        }
    }
}

/// Every route. `/healthz` is the only one that answers without a token.
pub fn router(state: Arc<State>) -> Router {
    let api = api::routes()
        .route_layer(middleware::from_fn_with_state(state.clone(), deadline))
        .merge(upload::routes(state.limits.max_upload_bytes));
    Router::new()
        .merge(api)
        .merge(files::ui_routes())
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
