//! Finding: search, similar and duplicates, each limited to what the caller may see and
//! audited.

use std::sync::Arc;
use std::time::Instant;

use aperture_catalog::Scope;
use aperture_core::AssetId;
use aperture_search::duplicates::{self, DuplicateOptions, Group, Within};
use aperture_search::{Hit, Query, SearchOptions};
use axum::extract::{Path, Query as UrlQuery, State as Shared};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::State;
use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::views::{page_limit, parse_id, views, visible};

/// Search, similar and duplicates.
pub fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/api/v1/assets/{id}/similar", get(similar))
        .route("/api/v1/assets/{id}/duplicates", get(asset_duplicates))
        .route("/api/v1/search", get(search))
        .route("/api/v1/duplicates", get(all_duplicates))
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
        shared
            .lake
            .search_in(&index, query, &encoders, &[], &options)
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
    let view = caller.view.clone();
    let pairs = tokio::task::spawn_blocking(move || match index {
        Some(index) => duplicates::near_of(
            &index,
            shared.lake.catalog.as_ref(),
            id,
            &DuplicateOptions::default(),
            within(&view),
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
    let groups = duplicate_groups(&state, &caller, params.exact_only, threshold).await?;
    state.metrics.observe_search(started.elapsed());
    state
        .audit(
            &caller,
            "duplicates",
            None,
            json!({ "groups": groups.len() }),
        )
        .await?;
    Ok(Json(json!({ "groups": *groups })))
}

/// The collections a caller's duplicates are computed over.
fn within(view: &aperture_lake::View) -> Within<'_> {
    match view.grants() {
        None => Within::All,
        Some(names) => Within::Collections(names),
    }
}

/// What a set of duplicate groups was computed for: the catalog's last change and the index
/// reader it was computed from, the collections, and the options.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct DuplicatesKey {
    last_change: i64,
    index_generation: u64,
    grants: Option<Vec<String>>,
    exact_only: bool,
    threshold: Option<u32>,
}

/// Duplicate groups lately computed (a few callers' worth).
pub(crate) struct DuplicatesCache(lru::LruCache<DuplicatesKey, Arc<Vec<Group>>>);

impl DuplicatesCache {
    const ENTRIES: usize = 32;

    pub(crate) fn new() -> Self {
        let entries =
            std::num::NonZeroUsize::new(Self::ENTRIES).unwrap_or(std::num::NonZeroUsize::MIN);
        Self(lru::LruCache::new(entries))
    }
}

/// Every duplicate group among the caller's collections: from the cache while neither the
/// catalog nor the index has changed since it was computed, else computed now. One such
/// computation runs at a time, whoever asks: the lock goes with it to the blocking pool and is
/// released when it ends, even when the request that started it has given up, so callers who
/// time out cannot pile up work.
async fn duplicate_groups(
    state: &Arc<State>,
    caller: &Caller,
    exact_only: bool,
    threshold: Option<f32>,
) -> ApiResult<Arc<Vec<Group>>> {
    // Hundredths: finer thresholds make no other groups worth a computation of their own.
    let threshold = threshold.map(|t| (t * 100.0).round() / 100.0);
    let last_change = state.lake.catalog(|c| c.last_change()).await?;
    let (index, index_generation) = state.index_with_generation();
    let view = caller.view.clone();
    let key = DuplicatesKey {
        last_change,
        index_generation,
        grants: view.grants().map(<[String]>::to_vec),
        exact_only,
        threshold: threshold.map(f32::to_bits),
    };
    let mut cache = state.duplicates.clone().lock_owned().await;
    if let Some(groups) = cache.0.get(&key) {
        return Ok(groups.clone());
    }
    let shared = state.clone();
    let groups = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        let catalog = shared.lake.catalog.as_ref();
        let index = index.filter(|_| !exact_only);
        let groups =
            aperture_lake::duplicate_groups(catalog, index.as_deref(), threshold, within(&view))?;
        // A second lock: the groups were computed inside the caller's collections.
        let groups = Arc::new(view.visible_groups(catalog, groups)?);
        cache.0.put(key, groups.clone());
        Ok(groups)
    })
    .await??;
    Ok(groups)
}
