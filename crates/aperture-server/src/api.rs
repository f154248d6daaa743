//! The JSON API: session, collections, assets, search, similar, duplicates, status, metrics.

use std::sync::Arc;
use std::time::Instant;

use aperture_catalog::{Asset, JobState, Scope, Source};
use aperture_core::{AssetId, Insight, InsightValue, MediaKind};
use aperture_search::duplicates::{self, DuplicateOptions};
use aperture_search::{Hit, Query, SearchOptions};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query as UrlQuery, State as Shared};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::State;
use super::auth::{COOKIE, Caller, SESSION_LIFE, authenticate, session_of};
use super::error::{ApiError, ApiResult};

/// The most hits or assets one request returns. A `limit` above it is refused, not cut down:
/// the OpenAPI document says `maximum: 200`, and a client asking for more has a bug to hear of.
const MAX_LIMIT: usize = 200;

pub fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/healthz", get(health))
        .route(
            "/api/v1/session",
            axum::routing::post(sign_in).delete(sign_out),
        )
        .route("/api/v1/me", get(me))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/collections", get(collections))
        .route("/api/v1/assets", get(list_assets))
        .route("/api/v1/assets/{id}", get(asset).delete(delete_asset))
        .route("/api/v1/assets/{id}/similar", get(similar))
        .route("/api/v1/assets/{id}/duplicates", get(asset_duplicates))
        .route("/api/v1/search", get(search))
        .route("/api/v1/duplicates", get(all_duplicates))
        .route("/api/v1/status", get(status))
        .route("/metrics", get(metrics))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

#[derive(Deserialize)]
struct SignIn {
    token: String,
}

/// Signs the web UI in: a new session, whose random id goes into an HttpOnly cookie that
/// scripts cannot read. The token itself never leaves the page that typed it.
async fn sign_in(
    Shared(state): Shared<Arc<State>>,
    body: Result<Json<SignIn>, JsonRejection>,
) -> ApiResult<Response> {
    // axum answers a body that parses but lacks `token` with 422; the document promises 400
    // for every body that is not `{"token": "..."}`, and 415 for one that is not JSON at all.
    let Json(body) = body.map_err(|e| match e {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the token as JSON: {\"token\": \"apt_...\"} with Content-Type: application/json",
        ),
        e => ApiError::bad_request(format!("sign-in: {}", e.body_text())),
    })?;
    let token = authenticate(&state, &body.token).await?;
    let session = state.sessions.open(&token)?;
    let cookie = format!(
        "{COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_LIFE.as_secs()
    );
    tracing::info!(token = %token.id, "signed in");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// Ends the session (not the token): its cookie stops working at once.
async fn sign_out(Shared(state): Shared<Arc<State>>, request: axum::extract::Request) -> Response {
    let (parts, _) = request.into_parts();
    if let Some(session) = session_of(&parts) {
        state.sessions.close(session);
    }
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
}

async fn me(caller: Caller) -> Json<Value> {
    Json(json!({
        "id": caller.token.id,
        "name": caller.token.name,
        "scopes": caller.token.scopes,
        "collections": caller.token.collections,
    }))
}

async fn openapi(_caller: Caller) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

/// An asset id as the API writes it: 32 hex digits, the pattern the OpenAPI document
/// declares. (A UUID parser would also take hyphens, braces and `urn:uuid:`; one spelling
/// keeps the document exact.) Prefixes are for `similar:` in a query only.
pub fn parse_id(text: &str) -> ApiResult<AssetId> {
    let hex = text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit());
    let id = hex.then(|| text.parse().ok()).flatten();
    id.ok_or_else(|| {
        ApiError::bad_request(format!(
            "'{text}' is not an asset id: expected 32 hex digits"
        ))
    })
}

/// `limit` of a list or search: `default` when absent, refused outside 1..=[`MAX_LIMIT`].
fn page_limit(limit: Option<usize>, default: usize) -> ApiResult<usize> {
    match limit {
        None => Ok(default),
        Some(n @ 1..=MAX_LIMIT) => Ok(n),
        Some(n) => Err(ApiError::bad_request(format!(
            "limit={n}: give a number from 1 to {MAX_LIMIT}"
        ))),
    }
}

/// An asset of a collection the caller may see, or 404: an asset it has no grant for is
/// not told apart from one that does not exist.
pub async fn visible(caller: &Caller, id: AssetId) -> ApiResult<Asset> {
    caller.view.asset(id).await.map_err(|e| match e {
        aperture_lake::Error::NoSuchAsset { .. } => {
            ApiError::not_found(format!("asset {id} not found"))
        }
        e => e.into(),
    })
}

/// The one asset the caller may see whose id starts with `prefix` (for `similar:`).
async fn visible_prefix(caller: &Caller, prefix: String) -> ApiResult<AssetId> {
    caller.view.resolve(&prefix).await.map_err(|e| match e {
        aperture_lake::Error::NoSuchAsset { .. } => {
            ApiError::not_found(format!("similar: no asset id starts with {prefix}"))
        }
        aperture_lake::Error::Catalog(aperture_catalog::Error::Ambiguous { .. }) => {
            ApiError::bad_request(format!(
                "similar: more than one asset id starts with {prefix}; give more digits"
            ))
        }
        aperture_lake::Error::InvalidInput { .. } => ApiError::bad_request(format!(
            "similar: too many asset ids start with {prefix}; give more digits"
        )),
        e => e.into(),
    })
}

/// An asset the caller may read (scope `read`, and a grant for its collection).
pub async fn readable(caller: &Caller, id: AssetId) -> ApiResult<Asset> {
    caller.require(Scope::Read)?;
    visible(caller, id).await
}

/// What the API says of an asset in lists and hits.
#[derive(Serialize)]
pub struct AssetView {
    id: AssetId,
    collection: String,
    name: String,
    kind: MediaKind,
    mime: String,
    size: u64,
    ingested_at: i64,
    captured_at: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    sensitive: Option<Value>,
    thumbnail: Option<String>,
    original: String,
}

impl AssetView {
    pub fn new(asset: &Asset, insights: &[Insight]) -> Self {
        let sensitive = insights.iter().find_map(|i| match &i.value {
            InsightValue::Sensitive(s) => Some(json!({ "score": s.score, "blur": s.blur })),
            _ => None,
        });
        let thumbnail = insights
            .iter()
            .any(|i| matches!(i.value, InsightValue::Thumbnail(_)))
            .then(|| format!("/api/v1/assets/{}/thumbnail", asset.id));
        let m = &asset.metadata;
        // Sideways EXIF orientations swap what people see as width and height.
        let (width, height) = match m.orientation {
            Some(5..=8) => (m.height, m.width),
            _ => (m.width, m.height),
        };
        Self {
            id: asset.id,
            collection: asset.collection.clone(),
            name: asset.name.clone(),
            kind: asset.kind,
            mime: asset.mime.clone(),
            size: asset.size,
            ingested_at: asset.ingested_at.0,
            captured_at: asset.captured_at.clone(),
            width,
            height,
            sensitive,
            thumbnail,
            original: format!("/api/v1/assets/{}/original", asset.id),
        }
    }
}

/// Views of many assets, reading the insights a view shows (not the large ones).
async fn views(state: &State, assets: Vec<Asset>) -> ApiResult<Vec<AssetView>> {
    let views = state
        .lake
        .catalog(move |c| {
            let ids: Vec<AssetId> = assets.iter().map(|a| a.id).collect();
            let shown = c.insights_of_kinds(&ids, &["thumbnail", "sensitive"])?;
            Ok(assets
                .iter()
                .map(|a| {
                    let own: Vec<Insight> =
                        shown.iter().filter(|i| i.asset == a.id).cloned().collect();
                    AssetView::new(a, &own)
                })
                .collect())
        })
        .await?;
    Ok(views)
}

async fn collections(caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let visible: Vec<Value> = caller
        .view
        .collections()
        .await?
        .into_iter()
        .map(|c| json!({ "name": c.name, "created_at": c.created_at.0 }))
        .collect();
    Ok(Json(Value::Array(visible)))
}

#[derive(Deserialize)]
struct ListParams {
    collection: Option<String>,
    kind: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn list_assets(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    UrlQuery(params): UrlQuery<ListParams>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let limit = page_limit(params.limit, 48)?;
    // Exactly the names the document's enum lists (an empty value means any kind).
    let kind = match params.kind.as_deref().filter(|k| !k.is_empty()) {
        Some(k) => Some(
            MediaKind::ALL
                .into_iter()
                .find(|kind| kind.as_str() == k)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "unknown kind '{k}': use image, video, audio, document or other"
                    ))
                })?,
        ),
        None => None,
    };
    let after = match params.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(parse_id(c)?),
        None => None,
    };
    let page = caller
        .view
        .list(aperture_lake::ListQuery {
            collection: params.collection.filter(|c| !c.is_empty()),
            kind,
            after,
            limit,
        })
        .await?;
    let (items, next) = (page.items, page.next);
    let items = views(&state, items).await?;
    Ok(Json(json!({
        "items": items,
        "next": next.map(|id| id.to_string()),
    })))
}

/// Insights as the API shows them: without their vectors (which say their `dims`) unless
/// `?vectors=true`.
fn shown(insight: Insight, vectors: bool) -> Value {
    let mut json = serde_json::to_value(insight).unwrap_or(Value::Null);
    // Any kind's vector, known or not (a newer writer's), stays out unless asked for.
    if !vectors && let Some(value) = json.get_mut("value").and_then(Value::as_object_mut) {
        value.remove("vector");
    }
    json
}

#[derive(Deserialize)]
struct AssetParams {
    #[serde(default)]
    vectors: bool,
}

async fn asset(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    Path(id): Path<String>,
    UrlQuery(params): UrlQuery<AssetParams>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let asset = readable(&caller, id).await?;
    let (sources, insights): (Vec<Source>, Vec<Insight>) = state
        .lake
        .catalog(move |c| Ok((c.sources(id)?, c.insights(id)?)))
        .await?;
    let view = AssetView::new(&asset, &insights);
    let insights: Vec<Value> = insights
        .into_iter()
        .map(|i| shown(i, params.vectors))
        .collect();
    Ok(Json(json!({
        "asset": view,
        "metadata": asset.metadata,
        "hash": asset.hash.to_string(),
        "sources": sources,
        "insights": insights,
    })))
}

async fn delete_asset(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    caller.require(Scope::Admin)?;
    let asset = readable(&caller, id).await?;
    // The entry first: an erasure that is not in the log must not happen.
    state
        .audit(
            &caller,
            "delete",
            Some(id.to_string()),
            json!({ "name": asset.name, "collection": asset.collection }),
        )
        .await?;
    state.lake.erase(id).await?;
    state.status_changed().await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct SearchParams {
    #[serde(default)]
    q: String,
    limit: Option<usize>,
}

/// A search's hits as the API shows them.
async fn hits_json(state: &State, hits: Vec<Hit>) -> ApiResult<Vec<Value>> {
    let scores: Vec<(f32, Vec<aperture_search::Reason>)> =
        hits.iter().map(|h| (h.score, h.reasons.clone())).collect();
    let views = views(state, hits.into_iter().map(|h| h.asset).collect()).await?;
    Ok(views
        .into_iter()
        .zip(scores)
        .map(|(asset, (score, reasons))| json!({ "asset": asset, "score": score, "reasons": reasons }))
        .collect())
}

fn parse_query(text: &str) -> ApiResult<Query> {
    Ok(aperture_search::parse(text).map_err(aperture_search::Error::from)?)
}

async fn run_search(
    state: &Arc<State>,
    caller: &Caller,
    query: Query,
    limit: Option<usize>,
    text: &str,
    action: &str,
) -> ApiResult<Json<Value>> {
    let started = Instant::now();
    let limit = page_limit(limit, 24)?;
    let Some(index) = state.index() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "index_not_ready",
            "the search index is being built; try again in a moment",
        ));
    };
    // What the search was limited to, for the audit log.
    let collections = query.filters.collections.clone();
    let shared = state.clone();
    let hits = tokio::task::spawn_blocking(move || {
        let encoders = shared.encoders();
        let options = SearchOptions {
            limit,
            ..SearchOptions::default()
        };
        index.search(shared.lake.catalog.as_ref(), &query, &encoders, &options)
    })
    .await??;
    // The query was restricted to the caller's collections; this is the second lock.
    let hits: Vec<Hit> = hits
        .into_iter()
        .filter(|h| caller.view.sees(&h.asset.collection))
        .collect();
    let count = hits.len();
    let hits = hits_json(state, hits).await?;
    let took = started.elapsed();
    state.metrics.observe_search(took);
    state
        .audit(
            caller,
            action,
            None,
            json!({
                "query": text,
                "collections": collections,
                "limit": limit,
                "hits": count,
            }),
        )
        .await?;
    Ok(Json(json!({
        "query": text,
        "took_ms": took.as_secs_f64() * 1000.0,
        "hits": hits,
    })))
}

async fn search(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    UrlQuery(params): UrlQuery<SearchParams>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Search)?;
    let mut query = parse_query(&params.q)?;
    // Refused here, before the caller's collections become filters: otherwise a token for
    // some collections would list them all where an admin token is refused.
    if !query.ranks() && query.filters.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "an empty query: give words, filters or `similar:`",
        ));
    }
    if let Some(prefix) = query.similar.take() {
        query.similar = Some(visible_prefix(&caller, prefix).await?.to_string());
    }
    caller.view.restrict(&mut query)?;
    run_search(&state, &caller, query, params.limit, &params.q, "search").await
}

#[derive(Deserialize)]
struct SimilarParams {
    #[serde(default)]
    filter: String,
    limit: Option<usize>,
}

async fn similar(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    Path(id): Path<String>,
    UrlQuery(params): UrlQuery<SimilarParams>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    caller.require(Scope::Search)?;
    visible(&caller, id).await?;
    let mut query = parse_query(&params.filter)?;
    query.similar = Some(id.to_string());
    caller.view.restrict(&mut query)?;
    let text = format!("similar:{id} {}", params.filter);
    run_search(&state, &caller, query, params.limit, text.trim(), "similar").await
}

async fn asset_duplicates(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    caller.require(Scope::Search)?;
    visible(&caller, id).await?;
    let index = state.index();
    let shared = state.clone();
    let pairs = tokio::task::spawn_blocking(move || match index {
        Some(index) => duplicates::near_of(
            &index,
            shared.lake.catalog.as_ref(),
            id,
            &DuplicateOptions::default(),
        ),
        None => Ok(Vec::new()),
    })
    .await??;
    let view = caller.view.clone();
    let assets = aperture_lake::blocking(&state.lake.catalog, move |c| {
        view.visible_assets(c, pairs.into_iter().map(|p| (p.b, p)).collect())
    })
    .await?;
    let pairs: Vec<_> = assets.iter().map(|(_, p)| *p).collect();
    let views = views(&state, assets.into_iter().map(|(a, _)| a).collect()).await?;
    let near: Vec<Value> = views
        .into_iter()
        .zip(pairs)
        .map(|(asset, p)| json!({ "asset": asset, "similarity": p.similarity, "hamming": p.hamming }))
        .collect();
    state
        .audit(
            &caller,
            "duplicates",
            Some(id.to_string()),
            json!({ "hits": near.len() }),
        )
        .await?;
    Ok(Json(json!({ "near": near })))
}

#[derive(Deserialize)]
struct DuplicatesParams {
    #[serde(default)]
    exact_only: bool,
    /// f64, as the document's numbers are: 1.0000000000000002 is over 1, not rounded to it.
    threshold: Option<f64>,
}

async fn all_duplicates(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    UrlQuery(params): UrlQuery<DuplicatesParams>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Search)?;
    let threshold = match params.threshold {
        Some(t) if !(0.0..=1.0).contains(&t) => {
            return Err(ApiError::bad_request(format!(
                "threshold={t}: give a similarity from 0 to 1"
            )));
        }
        t => t.map(|t| t as f32),
    };
    let started = Instant::now();
    let index = state.index();
    let shared = state.clone();
    let view = caller.view.clone();
    let exact_only = params.exact_only;
    let groups = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        let catalog = shared.lake.catalog.as_ref();
        let index = index.filter(|_| !exact_only);
        let groups = aperture_lake::duplicate_groups(catalog, index.as_deref(), threshold)?;
        Ok(view.visible_groups(catalog, groups)?)
    })
    .await??;
    state.metrics.observe_search(started.elapsed());
    state
        .audit(
            &caller,
            "duplicates",
            None,
            json!({ "groups": groups.len() }),
        )
        .await?;
    Ok(Json(json!({ "groups": groups })))
}

async fn status(Shared(state): Shared<Arc<State>>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let status = state.status_cached().await?;
    if caller.view.sees_all() {
        return Ok(Json(status));
    }
    // Counts span every collection (jobs per analyzer times the analyzers give the assets;
    // the queue grows with uploads to any collection): a token for some collections learns
    // only whether work is under way.
    let busy = status["jobs"]["queued"].as_u64().unwrap_or(0)
        + status["jobs"]["running"].as_u64().unwrap_or(0)
        + status["index"]["pending_changes"].as_u64().unwrap_or(0)
        > 0;
    Ok(Json(
        json!({ "busy": busy, "assets": null, "jobs": null, "index": null }),
    ))
}

/// What `/api/v1/status` says, computed at most once a second however many pages poll it.
pub async fn compute_status(state: &State) -> ApiResult<Value> {
    let (counts, assets, last) = state
        .lake
        .catalog(|c| Ok((c.state_counts()?, c.asset_count()?, c.last_change()?)))
        .await?;
    let mut jobs = serde_json::Map::new();
    for s in [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Skipped,
    ] {
        let n: u64 = counts.iter().filter(|(k, _)| *k == s).map(|(_, n)| n).sum();
        jobs.insert(s.as_str().to_owned(), Value::from(n));
    }
    let index = state.index();
    let queued = counts
        .iter()
        .filter(|(s, _)| matches!(s, JobState::Queued | JobState::Running))
        .map(|(_, n)| n)
        .sum::<u64>();
    let pending = last - index.as_ref().map_or(0, |i| i.position());
    let busy = queued > 0 || pending > 0;
    Ok(json!({
        "assets": assets,
        "jobs": jobs,
        "index": {
            "documents": index.as_ref().map_or(0, |i| i.documents()),
            "pending_changes": (last - index.as_ref().map_or(0, |i| i.position())).max(0),
        },
        "busy": busy,
    }))
}

async fn metrics(Shared(state): Shared<Arc<State>>, caller: Caller) -> ApiResult<Response> {
    caller.require(Scope::Admin)?;
    let (counts, assets) = state
        .lake
        .catalog(|c| Ok((c.state_counts()?, c.asset_count()?)))
        .await?;
    let jobs: Vec<(String, u64)> = counts
        .into_iter()
        .map(|(s, n)| (s.as_str().to_owned(), n))
        .collect();
    let documents = state.index().map_or(0, |i| i.documents());
    let text = state.metrics.render(&jobs, assets, documents);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
